//! One upload from its `put` to its final answer: which partial its bytes
//! go to (`partials.rs`) and how it ends: committed under its name, kept
//! for a resume, or removed.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::SystemTime;

use rustix::fs::AtFlags;
use rustix::io::Errno;

use super::answer::{Failure, fs_failure};
use super::escape::escape_text;
use super::partials::{Announced, Partial, Partials};
use crate::root::{FsError, Kind, Meta, Root, VirtualPath};

/// An upload between `OK <have>` and its final answer.
#[derive(Debug)]
pub(crate) struct Upload {
    partial: Partial,
    identity: Announced,
    /// The directory the file will appear in, and its name there.
    dir: OwnedFd,
    name: OsString,
    /// The virtual path, for answers.
    path: VirtualPath,
}

impl Upload {
    /// Checks that `target` can take a file and opens its partial; returns
    /// the upload and how many bytes of it the server already holds.
    pub(crate) fn start(
        partials: &Arc<Partials>,
        root: &Root,
        target: &VirtualPath,
        identity: Announced,
        now: SystemTime,
    ) -> Result<(Upload, u64), Failure> {
        Upload::start_as(partials, root, target, identity, false, now)
    }

    /// [`Upload::start`], for a client that may resume by naming an
    /// offset when `by_size` (HTTP's `Content-Range`): the size alone
    /// identifies the partial.
    pub(crate) fn start_as(
        partials: &Arc<Partials>,
        root: &Root,
        target: &VirtualPath,
        identity: Announced,
        by_size: bool,
        now: SystemTime,
    ) -> Result<(Upload, u64), Failure> {
        let fail = |e: FsError| fs_failure(e, Some(target));
        if target.is_root() {
            return Err(fail(FsError::IsADirectory));
        }
        let (dir, name) = root.parent_of(target).map_err(fail)?;
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if Meta::of(&st).kind == Kind::Dir => return Err(fail(FsError::IsADirectory)),
            _ => {}
        }
        let name = name.to_os_string();
        let (partial, have) = partials.begin(target, &dir, &identity, by_size, now)?;
        Ok((Upload { partial, identity, dir, name, path: target.clone() }, have))
    }

    /// The file the payload goes into.
    pub(crate) fn file(&self) -> Arc<File> {
        Arc::clone(self.partial.file())
    }

    /// Keeps only the first `len` bytes of the partial (see
    /// [`Partial::truncate`]).
    pub(crate) fn truncate(&self, len: u64) -> io::Result<()> {
        self.partial.truncate(len)
    }

    /// The announced size.
    pub(crate) fn size(&self) -> u64 {
        self.identity.size
    }

    /// The payload is all in: checks it against the announced digest,
    /// makes it durable and gives it its name. Blocking (two `fsync`s, and
    /// reading the file back when a digest was announced): run it as a job.
    pub(crate) fn commit(mut self) -> Result<u64, Failure> {
        let shown = escape_text(&self.path.to_bytes());
        match self.partial.commit(&self.identity, &self.dir, &self.name) {
            Ok(()) => Ok(self.identity.size),
            Err(f) => Err(Failure::new(f.code, format!("{shown}: {}", f.message))),
        }
    }

    /// The payload did not all arrive. A connection that broke off or
    /// stalled leaves a resumable partial for the next attempt; an error of
    /// the disk (full, quota, file-size limit, read-only, I/O) removes it:
    /// its space is needed, and resuming could only fail the same way.
    pub(crate) fn abandon(mut self, e: &io::Error) {
        let disk = [Errno::NOSPC, Errno::DQUOT, Errno::FBIG, Errno::ROFS, Errno::IO];
        if disk.iter().any(|d| e.raw_os_error() == Some(d.raw_os_error())) {
            self.partial.discard();
        }
    }

    /// The upload is given up and cannot be resumed: its partial goes now.
    pub(crate) fn discard(mut self) {
        self.partial.discard();
    }
}
