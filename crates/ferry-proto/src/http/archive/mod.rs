//! Folders as archives: `GET /dir/?archive=tar` streams the tree as a tar
//! file in constant memory.
//!
//! The walk ([`walk`]) keeps one open directory per level and reads it as
//! the archive leaves, so nothing is listed or built whole. Each entry is
//! queued as its header block(s) ([`tar`]), then its data: small files
//! copied behind the header (one write for many small files), larger ones
//! as a file range the driver sends with `sendfile` (or encrypts, under
//! TLS), then the padding. The session queues a little at a time
//! (at most [`QUEUE_TEXT`] bytes or one file range) and more on
//! [`Session::on_drained`](crate::Session::on_drained), so a slow reader
//! holds the server to one open file and a few KiB.
//!
//! HTTP/1.1 gets `Transfer-Encoding: chunked` (the size is not known before
//! the walk ends); HTTP/1.0 gets the bare stream and the connection closes
//! after it. A file that shrinks while it is sent cannot keep the promise
//! of its header: the connection is cut (the client sees a truncated
//! archive, never a silently wrong one). A file that grows is archived at
//! the size it had when it was reached.

mod tar;
mod walk;

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use self::tar::{EntryKind, Header};
use self::walk::{Allowed, Item, Walk};
use crate::access::{Access, Identity, Op};
use crate::root::VirtualPath;
use crate::{FileRange, Outbox};

/// Most text queued by one [`Archive::fill`].
const QUEUE_TEXT: usize = 64 * 1024;

/// Most entries looked at by one [`Archive::fill`] (skipped ones count),
/// so one call does a bounded amount of disk work.
const ENTRIES_PER_FILL: usize = 256;

/// An archive on its way out.
#[derive(Debug)]
pub(crate) struct Archive {
    walk: Walk,
    access: Arc<Access>,
    who: Identity,
    /// Frame the stream in chunks (HTTP/1.1).
    chunked: bool,
    /// Files up to this size are copied behind their header.
    copy_threshold: u64,
}

/// The access rules of one identity, as the walk asks them.
struct Rules<'a> {
    access: &'a Access,
    who: &'a Identity,
}

impl Allowed for Rules<'_> {
    fn list(&self, path: &VirtualPath) -> bool {
        self.access.rights(self.who, path).allows(Op::List)
    }
    fn read(&self, path: &VirtualPath) -> bool {
        self.access.rights(self.who, path).allows(Op::Read)
    }
}

impl Archive {
    /// The archive of the directory open as `dir` (the served `vpath`), its
    /// entries under `name/`.
    pub(crate) fn new(
        dir: std::os::fd::OwnedFd,
        vpath: VirtualPath,
        name: Vec<u8>,
        access: Arc<Access>,
        who: Identity,
        chunked: bool,
        copy_threshold: u64,
    ) -> io::Result<Archive> {
        Ok(Archive { walk: Walk::new(dir, vpath, name)?, access, who, chunked, copy_threshold })
    }

    /// Queues the next part of the archive. `Ok(true)` once the end (and
    /// the last chunk) is queued; an error means the archive cannot be
    /// finished correctly and the connection must be cut.
    pub(crate) fn fill(&mut self, out: &mut Outbox) -> io::Result<bool> {
        let rules = Rules { access: &self.access, who: &self.who };
        for _ in 0..ENTRIES_PER_FILL {
            if out.queued_bytes() >= QUEUE_TEXT || out.has_file_range() {
                return Ok(false);
            }
            let Some(item) = self.walk.next(&rules) else {
                let mut end = Vec::new();
                tar::push_end(&mut end);
                self.chunk(out, &end, None)?;
                if self.chunked {
                    out.push_bytes(b"0\r\n\r\n");
                }
                return Ok(true);
            };
            let mut head = Vec::new();
            match item {
                Item::Dir { path, mode, mtime } => {
                    tar::push_header(&mut head, &Header { path: &path, kind: EntryKind::Dir, mode, mtime });
                    self.chunk(out, &head, None)?;
                }
                Item::File { path, file, size, mode, mtime } => {
                    tar::push_header(&mut head, &Header { path: &path, kind: EntryKind::File { size }, mode, mtime });
                    self.chunk(out, &head, Some((file, size)))?;
                }
            }
        }
        Ok(false)
    }

    /// Queues `head`, then the file's bytes and padding if there is one, as
    /// one chunk when chunked.
    fn chunk(&self, out: &mut Outbox, head: &[u8], file: Option<(std::fs::File, u64)>) -> io::Result<()> {
        let size = file.as_ref().map_or(0, |&(_, size)| size);
        let padding = tar::padding(size);
        let text = out.text();
        if self.chunked {
            let total = head.len() as u64 + size + padding as u64;
            text.extend_from_slice(format!("{total:x}\r\n").as_bytes());
        }
        text.extend_from_slice(head);
        if let Some((file, size)) = file {
            if size <= self.copy_threshold {
                let start = text.len();
                text.resize(start + size as usize, 0);
                if let Err(e) = file.read_exact_at(&mut text[start..], 0) {
                    text.truncate(start);
                    return Err(e);
                }
            } else {
                out.push_file(FileRange { file: Arc::new(file), offset: 0, len: size });
            }
        }
        let text = out.text();
        text.resize(text.len() + padding, 0);
        if self.chunked {
            text.extend_from_slice(b"\r\n");
        }
        Ok(())
    }
}
