//! Folders as archives: `GET /dir/?archive=tar` (or `zip`) streams the
//! tree in constant memory (zip: plus its central directory, about 60
//! bytes and the name per entry, which the format puts at the end).
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
//!
//! Zip entries are stored (not compressed) and carry their CRC-32 in the
//! local header: a small file's is computed on the bytes copied, a larger
//! file's by a job (on the jobs pool under the event loops) that reads it
//! once before `sendfile` sends it, so zip costs one extra read of each
//! large file (from the page cache when it fits). A file rewritten between
//! the two shows as a CRC error in the client's unzip, not silently.

pub(crate) mod answer;
mod tar;
pub(crate) mod walk;
mod zip;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

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

/// The archive formats, by their query value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// POSIX tar (pax).
    Tar,
    /// Zip with stored entries and zip64.
    Zip,
}

impl Format {
    /// The format named `archive=NAME`, if ferry makes it.
    pub(crate) fn from_query(name: &[u8]) -> Option<Format> {
        match name {
            b"tar" => Some(Format::Tar),
            b"zip" => Some(Format::Zip),
            _ => None,
        }
    }

    /// The file name extension and media type.
    pub(crate) fn extension_and_type(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Format::Tar => (b".tar", b"application/x-tar"),
            Format::Zip => (b".zip", b"application/zip"),
        }
    }
}

/// A zip entry whose CRC a job may still be computing.
#[derive(Debug)]
struct Pending {
    entry: zip::Entry,
    crc: Option<Arc<AtomicU32>>,
}

/// What the format keeps between entries.
#[derive(Debug)]
enum State {
    Tar,
    /// The archive's length so far (entries' offsets), and the entries for
    /// the central directory.
    Zip {
        offset: u64,
        entries: Vec<Pending>,
    },
}

/// An archive on its way out.
#[derive(Debug)]
pub(crate) struct Archive {
    walk: Walk,
    access: Arc<Access>,
    who: Identity,
    state: State,
    /// Frame the stream in chunks (HTTP/1.1).
    chunked: bool,
    /// Files up to this size are copied behind their header.
    copy_threshold: u64,
}

/// The access rules of one identity, as the walk asks them (archives and
/// listing searches).
pub(crate) struct Rules<'a> {
    pub access: &'a Access,
    pub who: &'a Identity,
}

impl Allowed for Rules<'_> {
    fn list(&self, path: &VirtualPath) -> bool {
        self.access.rights(self.who, path).allows(Op::List)
    }
    fn read(&self, path: &VirtualPath) -> bool {
        self.access.rights(self.who, path).allows(Op::Read)
    }
}

/// Where an archive comes from and how it goes out.
#[derive(Debug)]
pub(crate) struct Source {
    /// The directory, open.
    pub dir: std::os::fd::OwnedFd,
    /// Its served path (for access rules).
    pub vpath: VirtualPath,
    /// The archive's top folder.
    pub name: Vec<u8>,
    pub access: Arc<Access>,
    pub who: Identity,
    /// Which names go in (the root's).
    pub visibility: crate::root::Visibility,
}

impl Archive {
    /// The archive of `source` in `format`; `chunked` frames it for
    /// HTTP/1.1, `copy_threshold` is the largest file copied instead of
    /// sent with `sendfile`.
    pub(crate) fn new(source: Source, format: Format, chunked: bool, copy_threshold: u64) -> io::Result<Archive> {
        let state = match format {
            Format::Tar => State::Tar,
            Format::Zip => State::Zip { offset: 0, entries: Vec::new() },
        };
        let Source { dir, vpath, name, access, who, visibility } = source;
        Ok(Archive { walk: Walk::new(dir, vpath, name, visibility)?, access, who, state, chunked, copy_threshold })
    }

    /// Queues the next part of the archive. `Ok(true)` once the end (and
    /// the last chunk) is queued; an error means the archive cannot be
    /// finished correctly and the connection must be cut.
    pub(crate) fn fill(&mut self, out: &mut Outbox) -> io::Result<bool> {
        for _ in 0..ENTRIES_PER_FILL {
            if out.queued_bytes() >= QUEUE_TEXT || out.has_file_range() {
                return Ok(false);
            }
            let rules = Rules { access: &self.access, who: &self.who };
            let Some(item) = self.walk.next(&rules) else {
                self.finish(out);
                return Ok(true);
            };
            if matches!(self.state, State::Tar) {
                self.tar_entry(out, item)?;
            } else {
                self.zip_entry(out, item)?;
            }
        }
        Ok(false)
    }

    /// The end of the archive, and the last chunk.
    fn finish(&mut self, out: &mut Outbox) {
        let mut end = Vec::new();
        match &mut self.state {
            State::Tar => tar::push_end(&mut end),
            State::Zip { offset, entries } => {
                // Every job has run: its bytes were sent before these.
                let entries: Vec<zip::Entry> = entries
                    .drain(..)
                    .map(|p| {
                        let crc = p.crc.map_or(p.entry.crc, |slot| slot.load(Ordering::Acquire));
                        zip::Entry { crc, ..p.entry }
                    })
                    .collect();
                zip::push_central_directory(&mut end, &entries, *offset);
            }
        }
        self.frame(out, end.len() as u64);
        out.push_bytes(&end);
        self.end_frame(out);
        if self.chunked {
            out.push_bytes(b"0\r\n\r\n");
        }
    }

    /// Opens a chunk of `len` bytes (when chunked).
    fn frame(&self, out: &mut Outbox, len: u64) {
        if self.chunked && len > 0 {
            out.text().extend_from_slice(format!("{len:x}\r\n").as_bytes());
        }
    }

    /// Closes the chunk [`Archive::frame`] opened.
    fn end_frame(&self, out: &mut Outbox) {
        if self.chunked {
            out.push_bytes(b"\r\n");
        }
    }

    /// Queues a file's bytes: copied behind what is queued when small,
    /// else as a file range for `sendfile`.
    fn push_data(&self, out: &mut Outbox, file: File, size: u64) -> io::Result<()> {
        if size <= self.copy_threshold {
            let mut data = vec![0; size as usize];
            file.read_exact_at(&mut data, 0)?;
            out.push_bytes(&data);
        } else {
            out.push_file(FileRange { file: Arc::new(file), offset: 0, len: size });
        }
        Ok(())
    }

    /// One tar entry: header(s), data, padding, in one chunk.
    fn tar_entry(&self, out: &mut Outbox, item: Item) -> io::Result<()> {
        let mut head = Vec::new();
        let (file, size) = match item {
            Item::Dir { path, mode, mtime } => {
                tar::push_header(&mut head, &Header { path: &path, kind: EntryKind::Dir, mode, mtime });
                (None, 0)
            }
            Item::File { path, file, size, mode, mtime } => {
                tar::push_header(&mut head, &Header { path: &path, kind: EntryKind::File { size }, mode, mtime });
                (Some(file), size)
            }
        };
        let padding = tar::padding(size);
        self.frame(out, head.len() as u64 + size + padding as u64);
        out.push_bytes(&head);
        if let Some(file) = file {
            self.push_data(out, file, size)?;
        }
        let text = out.text();
        text.resize(text.len() + padding, 0);
        self.end_frame(out);
        Ok(())
    }

    /// One zip entry: local header, data, in one chunk. A large file's
    /// header comes from a job that reads the file for its CRC first.
    fn zip_entry(&mut self, out: &mut Outbox, item: Item) -> io::Result<()> {
        let offset = match &self.state {
            State::Zip { offset, .. } => *offset,
            State::Tar => return Err(io::Error::other("a zip entry in a tar archive")),
        };
        let (mut entry, file) = match item {
            Item::Dir { mut path, mode, mtime } => {
                path.push(b'/');
                (zip::Entry { name: path, is_dir: true, mode, mtime, size: 0, crc: 0, offset }, None)
            }
            Item::File { path, file, size, mode, mtime } => {
                (zip::Entry { name: path, is_dir: false, mode, mtime, size, crc: 0, offset }, Some(file))
            }
        };
        let head_len = zip::local_header_len(&entry) as u64;
        self.frame(out, head_len + entry.size);
        let mut slot = None;
        match file {
            Some(file) if entry.size > self.copy_threshold => {
                let file = Arc::new(file);
                let crc = Arc::new(AtomicU32::new(0));
                slot = Some(Arc::clone(&crc));
                let (job_file, job_entry) = (Arc::clone(&file), entry.clone());
                out.push_job(move || {
                    let value = match crc_of(&job_file, job_entry.size) {
                        Ok(value) => value,
                        Err(e) => {
                            // sendfile of the same bytes fails next and
                            // cuts the connection.
                            tracing::warn!("http: zip: reading a file for its CRC failed: {e}");
                            0
                        }
                    };
                    crc.store(value, Ordering::Release);
                    let mut head = Vec::with_capacity(head_len as usize);
                    zip::push_local_header(&mut head, &zip::Entry { crc: value, ..job_entry });
                    head
                });
                out.push_file(FileRange { file, offset: 0, len: entry.size });
            }
            Some(file) => {
                let mut data = vec![0; entry.size as usize];
                file.read_exact_at(&mut data, 0)?;
                entry.crc = crc32fast::hash(&data);
                let mut head = Vec::with_capacity(head_len as usize + data.len());
                zip::push_local_header(&mut head, &entry);
                head.extend_from_slice(&data);
                out.push_bytes(&head);
            }
            None => {
                let mut head = Vec::with_capacity(head_len as usize);
                zip::push_local_header(&mut head, &entry);
                out.push_bytes(&head);
            }
        }
        self.end_frame(out);
        if let State::Zip { offset, entries } = &mut self.state {
            *offset += head_len + entry.size;
            entries.push(Pending { entry, crc: slot });
        }
        Ok(())
    }
}

/// The CRC-32 of the first `len` bytes of `file`.
fn crc_of(file: &File, len: u64) -> io::Result<u32> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0; 256 * 1024];
    let mut at = 0;
    while at < len {
        let want = buf.len().min((len - at) as usize);
        let n = file.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank"));
        }
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(hasher.finalize())
}
