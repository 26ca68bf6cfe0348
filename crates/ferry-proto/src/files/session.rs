//! The server side of the file protocol as a sans-IO [`Session`].

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write as _};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use rustix::fs::{AtFlags, FlockOperation};
use sha2::{Digest, Sha256};

use super::answer::{
    Answer, Failure, answer, check_new_name, err_line, fs_failure, ok_line, request_failure, upload_failure,
};
use super::escape::escape_text;
use super::request::{MAX_LINE, Request};
use crate::root::{Entry, FsError, Kind, Meta, Root, VirtualPath, open_in_dir};
use crate::session::{Flow, Now, Progress, Session};
use crate::{FileRange, Outbox, Sink};

/// Suffix of the hidden temporary an upload is written to, next to its
/// final name (`.NAME.ferry-part`). Listings hide these.
pub const PART_SUFFIX: &str = ".ferry-part";

/// Stop answering pipelined requests in one pass once this much text is
/// queued, so a client that never reads cannot make the server buffer more.
const MAX_QUEUED_TEXT: usize = 256 * 1024;

/// Settings shared by every file session of a server.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// The served directory.
    pub root: Arc<Root>,
    /// Whether `put`, `mkdir` and `rm` are allowed.
    pub allow_write: bool,
}

/// An upload between `OK <have>` and its final answer.
#[derive(Debug)]
struct Upload {
    file: Arc<File>,
    dir: OwnedFd,
    temp: OsString,
    name: OsString,
    size: u64,
}

impl Upload {
    /// Makes a complete upload durable and gives it its name: data to
    /// disk, rename over the final name, directory entry to disk.
    fn commit(&self) -> io::Result<()> {
        self.file.sync_all()?;
        rustix::fs::renameat(&self.dir, &self.temp, &self.dir, &self.name)?;
        rustix::fs::fsync(&self.dir)?;
        Ok(())
    }
}

/// One connection of the file service: its working directory, whether
/// an upload is in flight, and whether it asked to close.
#[derive(Debug)]
pub struct FileSession {
    config: FilesConfig,
    cwd: VirtualPath,
    upload: Option<Upload>,
    /// Set once the session returned a closing [`Flow`]: from then on it
    /// answers nothing, whatever its driver still hands it.
    closing: bool,
    /// Part of a request line has arrived and the rest has not: the line
    /// must be complete within the request timeout (its first byte starts
    /// the clock; more bytes do not extend it).
    partial_line: bool,
}

fn kind_letter(kind: Kind) -> char {
    match kind {
        Kind::File => 'f',
        Kind::Dir => 'd',
        Kind::Symlink => 'l',
        Kind::Other => 'o',
    }
}

/// True for the hidden temporaries of uploads in progress.
pub fn is_partial_upload(name: &OsStr) -> bool {
    let b = name.as_bytes();
    b.starts_with(b".") && b.ends_with(PART_SUFFIX.as_bytes())
}

const HELP: &str = "\
commands (paths may be \"quoted\"; / is the served root):
  pwd                 print the working directory
  cd [PATH]           change directory (to / without PATH)
  ls [PATH]           list a directory: TYPE SIZE MTIME NAME per line
  stat PATH           TYPE SIZE MTIME PATH
  get PATH [OFFSET]   download: OK SIZE OFFSET LEN, then LEN bytes
  put PATH SIZE       upload: OK HAVE, send SIZE-HAVE bytes, then OK SIZE
  mkdir PATH          create a directory
  rm PATH             remove a file or an empty directory
  sum PATH            SHA-256 of a file
  ping                answered OK pong
  quit                close the connection
";

impl FileSession {
    /// A new connection, starting in `/`.
    pub fn new(config: FilesConfig) -> FileSession {
        FileSession { config, cwd: VirtualPath::root(), upload: None, closing: false, partial_line: false }
    }

    /// The connection's working directory.
    pub fn cwd(&self) -> &VirtualPath {
        &self.cwd
    }

    fn root(&self) -> &Root {
        &self.config.root
    }

    fn resolve(&self, path: &[u8]) -> Result<VirtualPath, Failure> {
        self.root().resolve(&self.cwd, path).map_err(|e| fs_failure(e, None))
    }

    fn require_write(&self) -> Answer {
        if self.config.allow_write {
            Ok(())
        } else {
            Err(Failure::new(403, "read-only (the server runs without --allow-write)"))
        }
    }

    /// Answers one request. Returns whether the connection should close.
    fn handle(&mut self, request: Request, out: &mut Outbox) -> Result<Flow, Failure> {
        match request {
            Request::Pwd => ok_line(out.text(), &escape_text(&self.cwd.to_bytes())),
            Request::Cd(path) => {
                let target = self.resolve(&path)?;
                let meta = self.root().stat(&target).map_err(|e| fs_failure(e, Some(&target)))?;
                if meta.kind != Kind::Dir {
                    return Err(fs_failure(FsError::NotADirectory, Some(&target)));
                }
                self.cwd = target;
                ok_line(out.text(), &escape_text(&self.cwd.to_bytes()));
            }
            Request::Ls(path) => {
                let target = match path {
                    Some(p) => self.resolve(&p)?,
                    None => self.cwd.clone(),
                };
                // Reading and stat-ing every entry of a big directory takes
                // a while: a job, like `sum`.
                let root = Arc::clone(&self.config.root);
                out.push_job(move || {
                    answer(|line| match root.list(&target, is_partial_upload) {
                        Ok(entries) => {
                            let listing = render_listing(&entries);
                            ok_line(line, &listing.len().to_string());
                            line.extend_from_slice(&listing);
                        }
                        Err(e) => err_line(line, &fs_failure(e, Some(&target))),
                    })
                });
            }
            Request::Stat(path) => {
                let target = self.resolve(&path)?;
                let meta = self.root().stat(&target).map_err(|e| fs_failure(e, Some(&target)))?;
                let text = format!(
                    "{} {} {} {}",
                    kind_letter(meta.kind),
                    meta.size,
                    meta.mtime,
                    escape_text(&target.to_bytes())
                );
                ok_line(out.text(), &text);
            }
            Request::Get(path, offset) => {
                let target = self.resolve(&path)?;
                let (file, meta) = self.root().open_file(&target).map_err(|e| fs_failure(e, Some(&target)))?;
                if offset > meta.size {
                    return Err(Failure::new(
                        416,
                        format!("offset {offset} is beyond the end of the file ({} bytes)", meta.size),
                    ));
                }
                let len = meta.size - offset;
                ok_line(out.text(), &format!("{} {offset} {len}", meta.size));
                out.push_file(FileRange { file: Arc::new(file), offset, len });
            }
            Request::Put(path, size) => {
                self.require_write()?;
                let target = self.resolve(&path)?;
                check_new_name(&target)?;
                return self.start_upload(&target, size, out);
            }
            Request::Mkdir(path) => {
                self.require_write()?;
                let target = self.resolve(&path)?;
                check_new_name(&target)?;
                self.root().mkdir(&target).map_err(|e| fs_failure(e, Some(&target)))?;
                ok_line(out.text(), "");
            }
            Request::Rm(path) => {
                self.require_write()?;
                let target = self.resolve(&path)?;
                if target.is_root() {
                    return Err(Failure::new(403, "the served root cannot be removed"));
                }
                self.root().remove(&target).map_err(|e| fs_failure(e, Some(&target)))?;
                ok_line(out.text(), "");
            }
            Request::Sum(path) => {
                let target = self.resolve(&path)?;
                let (file, _) = self.root().open_file(&target).map_err(|e| fs_failure(e, Some(&target)))?;
                // Hashing reads the whole file: a job, so an event loop
                // hands it to a worker instead of stalling its connections.
                out.push_job(move || {
                    answer(|line| match sha256(file) {
                        Ok(digest) => ok_line(line, &digest),
                        Err(e) => err_line(line, &fs_failure(e.into(), Some(&target))),
                    })
                });
            }
            Request::Ping => ok_line(out.text(), "pong"),
            Request::Help => {
                ok_line(out.text(), &HELP.len().to_string());
                out.push_bytes(HELP.as_bytes());
            }
            Request::Quit => {
                ok_line(out.text(), "bye");
                return Ok(Flow::CloseAfterFlush);
            }
        }
        Ok(Flow::Continue)
    }

    fn start_upload(&mut self, target: &VirtualPath, size: u64, out: &mut Outbox) -> Result<Flow, Failure> {
        let fail = |e: FsError| fs_failure(e, Some(target));
        if target.is_root() {
            return Err(fail(FsError::IsADirectory));
        }
        let (dir, name) = self.root().parent_of(target).map_err(fail)?;
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if Meta::of(&st).kind == Kind::Dir => return Err(fail(FsError::IsADirectory)),
            _ => {}
        }
        if name.as_bytes().ends_with(PART_SUFFIX.as_bytes()) {
            return Err(Failure::new(400, "names ending in .ferry-part are reserved for uploads in progress"));
        }
        let mut temp = OsString::from(".");
        temp.push(name);
        temp.push(PART_SUFFIX);
        if temp.len() > crate::root::MAX_NAME {
            return Err(Failure::new(400, "name too long"));
        }
        let file = open_in_dir(&dir, &temp, true).map_err(fail)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(Failure::new(
                    409,
                    format!("an upload of {} is already in progress", escape_text(&target.to_bytes())),
                ));
            }
            Err(e) => return Err(fail(e.into())),
        }
        let mut have = file.metadata().map_err(|e| fail(e.into()))?.len();
        if have > size {
            // A partial upload of a larger file: it cannot be resumed.
            file.set_len(0).map_err(|e| fail(e.into()))?;
            have = 0;
        }
        ok_line(out.text(), &have.to_string());
        let file = Arc::new(file);
        self.upload = Some(Upload { file: Arc::clone(&file), dir, temp, name: name.to_os_string(), size });
        if have == size {
            return Ok(self.finish_upload(Ok(()), out));
        }
        out.expect_upload(Sink::new(file, have, size - have));
        Ok(Flow::Continue)
    }

    fn finish_upload(&mut self, result: io::Result<()>, out: &mut Outbox) -> Flow {
        let Some(upload) = self.upload.take() else {
            return Flow::Continue;
        };
        match result {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Flow::CloseNow,
            Err(e) => {
                // The payload was not all consumed: the byte stream is out
                // of step, so the connection ends after the answer.
                err_line(out.text(), &upload_failure(&e));
                Flow::CloseAfterFlush
            }
            Ok(()) => {
                // The payload is all in; making it durable and visible
                // (two fsyncs and a rename) may take long on a busy disk,
                // so it is a job: off the thread of an event loop.
                out.push_job(move || {
                    answer(|line| match upload.commit() {
                        Ok(()) => ok_line(line, &upload.size.to_string()),
                        Err(e) => err_line(line, &upload_failure(&e)),
                    })
                });
                Flow::Continue
            }
        }
    }
}

fn render_listing(entries: &[Entry]) -> Vec<u8> {
    let mut text = Vec::with_capacity(entries.len() * 40);
    for e in entries {
        let _ = writeln!(
            text,
            "{} {} {} {}",
            kind_letter(e.meta.kind),
            e.meta.size,
            e.meta.mtime,
            escape_text(e.name.as_bytes())
        );
    }
    text
}

fn sha256(mut file: File) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

impl Session for FileSession {
    fn on_input(&mut self, input: &[u8], out: &mut Outbox, _now: Now) -> Progress {
        let progress = self.answer_lines(input, out);
        self.closing |= progress.flow != Flow::Continue;
        let rest = input.get(progress.consumed..).unwrap_or_default();
        self.partial_line = !self.closing && self.upload.is_none() && !rest.is_empty() && !rest.contains(&b'\n');
        progress
    }

    fn in_request(&self) -> bool {
        self.partial_line
    }

    fn on_upload_done(&mut self, result: io::Result<()>, out: &mut Outbox, _now: Now) -> Flow {
        if self.closing {
            return Flow::CloseAfterFlush;
        }
        let flow = self.finish_upload(result, out);
        self.closing = flow != Flow::Continue;
        flow
    }

    fn on_idle_timeout(&mut self, out: &mut Outbox, _now: Now) -> Flow {
        if !self.closing {
            err_line(out.text(), &Failure::new(408, "idle timeout; closing"));
            self.closing = true;
        }
        Flow::CloseAfterFlush
    }
}

impl FileSession {
    /// Answers the complete request lines at the front of `input`, stopping
    /// at an upload's payload, a pass's budget or a closing answer; answers
    /// nothing once the session is closing.
    fn answer_lines(&mut self, input: &[u8], out: &mut Outbox) -> Progress {
        if self.closing {
            return Progress { consumed: input.len(), flow: Flow::CloseAfterFlush };
        }
        let mut consumed = 0;
        loop {
            if self.upload.is_some() || out.has_sink() {
                // Payload bytes belong to the sink; the driver routes them.
                return Progress { consumed, flow: Flow::Continue };
            }
            let rest = &input[consumed..];
            let window = &rest[..rest.len().min(MAX_LINE)];
            let Some(end) = window.iter().position(|&b| b == b'\n') else {
                if rest.len() >= MAX_LINE {
                    err_line(
                        out.text(),
                        &Failure::new(413, format!("request line longer than {MAX_LINE} bytes; closing")),
                    );
                    return Progress { consumed: input.len(), flow: Flow::CloseAfterFlush };
                }
                return Progress { consumed, flow: Flow::Continue };
            };
            let mut line = &rest[..end];
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            consumed += end + 1;
            let flow = match Request::parse(line) {
                Ok(None) => Flow::Continue,
                Ok(Some(request)) => self.handle(request, out).unwrap_or_else(|failure| {
                    err_line(out.text(), &failure);
                    Flow::Continue
                }),
                Err(e) => {
                    err_line(out.text(), &request_failure(&e));
                    Flow::Continue
                }
            };
            if flow != Flow::Continue {
                return Progress { consumed, flow };
            }
            // One file or job per pass, and bounded text: the rest waits for
            // on_drained.
            if !out.is_empty() && (out.queued_bytes() >= MAX_QUEUED_TEXT || out.has_file_range() || out.has_job()) {
                return Progress { consumed, flow: Flow::Continue };
            }
        }
    }
}
