//! The server side of the file protocol as a sans-IO [`Session`].

use crate::access::PeerId;
use std::io;
use std::sync::{Arc, Mutex};

use super::answer::{
    Failure, answer, check_new_name, denied_failure, err_line, fs_failure, ok_line, request_failure, upload_failure,
};
use super::config::FilesConfig;
use super::escape::escape_text;
use super::listing::{kind_letter, log_in, render_listing};
use super::partials::{Announced, Partials, sha256_hex};
use super::request::{MAX_LINE, Request};
use super::upload::Upload;
use crate::access::{Identity, Op};
use crate::observe::{Observer, Tracker, sniff_files};
use crate::root::{FsError, Kind, Root, VirtualPath};
use crate::session::{Flow, Now, Progress, Session};
use crate::{FileRange, Outbox, Sink};

/// Stop answering pipelined requests in one pass once this much text is
/// queued, so a client that never reads cannot make the server buffer more.
const MAX_QUEUED_TEXT: usize = 256 * 1024;

/// One connection of the file service: its working directory, whether
/// an upload is in flight, and whether it asked to close.
#[derive(Debug)]
pub struct FileSession {
    config: FilesConfig,
    /// Who the connection acts as; a login job writes it, requests read it
    /// (never at once: a pass stops at a job until its answer is out).
    who: Arc<Mutex<Identity>>,
    /// The client's address, for throttling failed logins.
    peer: Option<PeerId>,
    cwd: VirtualPath,
    upload: Option<Upload>,
    /// Set once the session returned a closing [`Flow`]: from then on it
    /// answers nothing, whatever its driver still hands it.
    closing: bool,
    /// Part of a request line has arrived and the rest has not: the line
    /// must be complete within the request timeout (its first byte starts
    /// the clock; more bytes do not extend it).
    partial_line: bool,
    /// Command records for the access log and metrics.
    log: Tracker,
}

const HELP: &str = "\
commands (paths may be \"quoted\"; / is the served root):
  pwd                 print the working directory
  cd [PATH]           change directory (to / without PATH)
  ls [PATH]           list a directory: TYPE SIZE MTIME NAME per line
  stat PATH           TYPE SIZE MTIME PATH
  get PATH [OFFSET [VERSION]]
                      download: OK SIZE OFFSET LEN VERSION, then LEN bytes
                      (from 0 if the file is no longer VERSION)
  put PATH SIZE [SHA256]
                      upload: OK HAVE, send SIZE-HAVE bytes, then OK SIZE
                      (resumes only an upload with the same SIZE and SHA256)
  mkdir PATH          create a directory
  rm PATH             remove a file or an empty directory
  rename OLD NEW      rename or move, atomically (never over a directory)
  df                  OK TOTAL FREE AVAILABLE: bytes of the served filesystem
  sum PATH            SHA-256 of a file
  auth USER PASSWORD  log in (auth token TOKEN for a token)
  ping                answered OK pong
  quit                close the connection
";

impl FileSession {
    /// A new connection, starting in `/`.
    pub fn new(config: FilesConfig) -> FileSession {
        FileSession {
            config,
            who: Arc::default(),
            peer: None,
            cwd: VirtualPath::root(),
            upload: None,
            closing: false,
            partial_line: false,
            log: Tracker::default(),
        }
    }

    /// The same session reporting each command to `observer`.
    pub fn with_observer(self, observer: Box<dyn Observer>) -> FileSession {
        FileSession { log: Tracker::new(observer), ..self }
    }

    /// The same session for a client at `peer` (failed logins from one
    /// address are slowed down).
    pub fn with_peer(self, peer: Option<PeerId>) -> FileSession {
        FileSession { peer, ..self }
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

    /// Who the connection acts as now.
    fn who(&self) -> Identity {
        self.who.lock().map(|who| who.clone()).unwrap_or_default()
    }

    /// Resolves `path` and checks that the connection may `op` there.
    fn resolve_for(&self, op: Op, path: &[u8]) -> Result<VirtualPath, Failure> {
        let target = self.resolve(path)?;
        self.allow(op, &target)?;
        Ok(target)
    }

    fn allow(&self, op: Op, target: &VirtualPath) -> Result<(), Failure> {
        // Checked under the lock: no copy of the identity per request.
        let anonymous = Identity::Anonymous;
        let who = self.who.lock();
        let who = who.as_deref().unwrap_or(&anonymous);
        self.config.access.check(who, op, target).map_err(|denied| denied_failure(&denied))
    }

    fn require_write(&self) -> Result<&Arc<Partials>, Failure> {
        self.config
            .partials
            .as_ref()
            .ok_or_else(|| Failure::new(403, "read-only (the server runs without --allow-write)"))
    }

    /// Answers one request. Returns whether the connection should close.
    fn handle(&mut self, request: Request, out: &mut Outbox, now: Now) -> Result<Flow, Failure> {
        match request {
            Request::Pwd => ok_line(out.text(), &escape_text(&self.cwd.to_bytes())),
            Request::Cd(path) => {
                let target = self.resolve_for(Op::List, &path)?;
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
                self.allow(Op::List, &target)?;
                let (access, who) = (Arc::clone(&self.config.access), self.who());
                // Reading and stat-ing every entry of a big directory takes
                // a while: a job, like `sum`.
                let root = Arc::clone(&self.config.root);
                out.push_job(move || {
                    answer(|line| match root.list(&target) {
                        Ok(entries) => {
                            let listing = render_listing(&entries, &target, &access, &who);
                            ok_line(line, &listing.len().to_string());
                            line.extend_from_slice(&listing);
                        }
                        Err(e) => err_line(line, &fs_failure(e, Some(&target))),
                    })
                });
            }
            Request::Stat(path) => {
                let target = self.resolve_for(Op::List, &path)?;
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
            Request::Get(path, offset, version) => {
                let target = self.resolve_for(Op::Read, &path)?;
                let (file, meta) = self.root().open_file(&target).map_err(|e| fs_failure(e, Some(&target)))?;
                let current = meta.version();
                // Like HTTP's If-Range: bytes of another version of the file
                // cannot continue a download, so it starts over.
                let offset = if version.is_some_and(|v| v != current) { 0 } else { offset };
                if offset > meta.size {
                    return Err(Failure::new(
                        416,
                        format!("offset {offset} is beyond the end of the file ({} bytes)", meta.size),
                    ));
                }
                let len = meta.size - offset;
                ok_line(out.text(), &format!("{} {offset} {len} {current}", meta.size));
                out.push_file(FileRange { file: Arc::new(file), offset, len });
            }
            Request::Put(path, size, sha256) => {
                let partials = Arc::clone(self.require_write()?);
                let target = self.resolve_for(Op::Write, &path)?;
                check_new_name(&target)?;
                let identity = Announced { size, sha256 };
                let (upload, have) = Upload::start(&partials, self.root(), &target, identity, now.wall)?;
                return Ok(self.begin_upload(upload, have, out));
            }
            Request::Mkdir(path) => {
                self.require_write()?;
                let target = self.resolve_for(Op::Write, &path)?;
                check_new_name(&target)?;
                self.root().mkdir(&target).map_err(|e| fs_failure(e, Some(&target)))?;
                ok_line(out.text(), "");
            }
            Request::Rm(path) => {
                self.require_write()?;
                let target = self.resolve_for(Op::Delete, &path)?;
                if target.is_root() {
                    return Err(Failure::new(403, "the served root cannot be removed"));
                }
                self.root().remove(&target).map_err(|e| fs_failure(e, Some(&target)))?;
                ok_line(out.text(), "");
            }
            Request::Rename(from, to) => {
                self.require_write()?;
                // Moving a name away removes it from OLD's directory.
                let from = self.resolve_for(Op::Delete, &from)?;
                let to = self.resolve_for(Op::Write, &to)?;
                check_new_name(&to)?;
                self.root().rename(&from, &to, true).map_err(|(e, at)| fs_failure(e, Some(at)))?;
                ok_line(out.text(), "");
            }
            Request::Df => {
                self.allow(Op::List, &self.cwd)?;
                let space = self.root().disk_space().map_err(|e| fs_failure(e, None))?;
                ok_line(out.text(), &format!("{} {} {}", space.total, space.free, space.available));
            }
            Request::Sum(path) => {
                let target = self.resolve_for(Op::Read, &path)?;
                let (file, _) = self.root().open_file(&target).map_err(|e| fs_failure(e, Some(&target)))?;
                // Hashing reads the whole file: a job, so an event loop
                // hands it to a worker instead of stalling its connections.
                out.push_job(move || {
                    answer(|line| match sha256_hex(&file) {
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
            Request::Auth(credentials) => {
                // Checking a password takes tens of milliseconds: a job.
                let (access, slot, wall, peer) =
                    (Arc::clone(&self.config.access), Arc::clone(&self.who), now.wall, self.peer);
                out.push_job(move || answer(|line| log_in(&access, &credentials, (peer, wall), &slot, line)));
            }
            Request::Quit => {
                ok_line(out.text(), "bye");
                return Ok(Flow::CloseAfterFlush);
            }
        }
        Ok(Flow::Continue)
    }

    /// Answers `OK HAVE` and routes the payload into the upload's file
    /// (or commits at once when nothing is missing).
    fn begin_upload(&mut self, upload: Upload, have: u64, out: &mut Outbox) -> Flow {
        ok_line(out.text(), &have.to_string());
        let (file, size) = (upload.file(), upload.size());
        self.upload = Some(upload);
        if have == size {
            return self.finish_upload(Ok(()), out);
        }
        out.expect_upload(Sink::new(file, have, size - have));
        Flow::Continue
    }

    fn finish_upload(&mut self, result: io::Result<()>, out: &mut Outbox) -> Flow {
        let Some(upload) = self.upload.take() else {
            return Flow::Continue;
        };
        match result {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                upload.abandon(&e);
                Flow::CloseNow
            }
            Err(e) => {
                // The payload was not all consumed: the byte stream is out
                // of step, so the connection ends after the answer.
                err_line(out.text(), &upload_failure(&e));
                upload.abandon(&e);
                Flow::CloseAfterFlush
            }
            Ok(()) => {
                // The payload is all in; checking it, making it durable and
                // visible (a read-back, two fsyncs and a rename) may take
                // long, so it is a job: off the thread of an event loop.
                out.push_job(move || {
                    answer(|line| match upload.commit() {
                        Ok(size) => ok_line(line, &size.to_string()),
                        Err(failure) => err_line(line, &failure),
                    })
                });
                Flow::Continue
            }
        }
    }
}

impl FileSession {
    /// Records the command `line` (`len` bytes with its end) answered
    /// after `mark`; an upload's record waits for its payload and commit.
    fn record(&mut self, mark: Option<crate::outbox::Mark>, line: &[u8], len: usize, out: &mut Outbox, now: Now) {
        let user = match self.who() {
            Identity::User { name, .. } => Some(name),
            Identity::Anonymous => None,
        };
        let payload = out.sink().map_or(0, Sink::remaining);
        let asked = crate::observe::Asked {
            request: super::log::shown(line),
            user,
            bytes_in: len as u64 + payload,
            ..Default::default()
        };
        self.log.answered(mark, out, now, asked, sniff_files);
        self.log.hold(self.upload.is_some());
    }
}

impl Session for FileSession {
    fn on_input(&mut self, input: &[u8], out: &mut Outbox, now: Now) -> Progress {
        let progress = self.answer_lines(input, out, now);
        self.closing |= progress.flow != Flow::Continue;
        let rest = input.get(progress.consumed..).unwrap_or_default();
        self.partial_line = !self.closing && self.upload.is_none() && !rest.is_empty() && !rest.contains(&b'\n');
        progress
    }

    fn in_request(&self) -> bool {
        self.partial_line
    }

    fn on_drained(&mut self, _out: &mut Outbox, now: Now) -> Flow {
        self.log.drained(now);
        Flow::Continue
    }

    fn on_closed(&mut self, now: Now) {
        self.log.closed(now);
    }

    fn on_upload_done(&mut self, result: io::Result<()>, out: &mut Outbox, now: Now) -> Flow {
        if self.closing {
            return Flow::CloseAfterFlush;
        }
        let mark = self.log.begin(out);
        let flow = self.finish_upload(result, out);
        self.log.amend(mark, out, now, 0, sniff_files);
        self.log.hold(false);
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
    fn answer_lines(&mut self, input: &[u8], out: &mut Outbox, now: Now) -> Progress {
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
            let mark = self.log.begin(out);
            let flow = match Request::parse(line) {
                Ok(None) => Flow::Continue,
                Ok(Some(request)) => self.handle(request, out, now).unwrap_or_else(|failure| {
                    err_line(out.text(), &failure);
                    Flow::Continue
                }),
                Err(e) => {
                    err_line(out.text(), &request_failure(&e));
                    Flow::Continue
                }
            };
            if self.log.on() && !line.trim_ascii().is_empty() {
                self.record(mark, line, end + 1, out, now);
            }
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
