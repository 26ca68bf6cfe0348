//! One HTTP/1.x connection as a sans-IO [`Session`].

use crate::access::PeerId;
use std::ffi::OsStr;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::HttpConfig;
use super::auth;
use super::body::{BodyError, Discard};
use super::conditional;
use super::date::{DateMemo, HttpDate};
use super::errors::{HttpError, Status, fs_error};
use super::file_cache::{Body, FileCache, FileInfo, Opened};
use super::listing;
use super::parse::{BodyFraming, Head, Method, Request, Version, parse_head};
use super::range::{self, RangeAnswer};
use super::respond::{self, Persist};
use super::target;
use crate::access::Op;
use crate::root::{FsError, VirtualPath};
use crate::session::{Flow, Now, Progress, Session};
use crate::{FileRange, Outbox};

/// Most requests answered in one `on_input` pass; the rest wait for the
/// driver's next call after [`Session::on_drained`].
const MAX_REQUESTS_PER_PASS: usize = 64;
/// No new request is answered while this much text is already queued.
const MAX_QUEUED_TEXT: usize = 256 * 1024;
/// Most file ranges (each holding an open descriptor) queued in one pass;
/// a pass starts only when no file range from an earlier one is left.
const MAX_FILES_PER_PASS: usize = 16;

/// One HTTP connection: where it stands between, or inside, requests.
///
/// Small and buffer-free: the input is the driver's, the output goes into
/// the driver's [`Outbox`], so an idle keep-alive connection costs a few
/// words here.
#[derive(Debug)]
pub struct HttpSession {
    config: Arc<HttpConfig>,
    /// The open-file cache of the thread this session runs on.
    cache: FileCache,
    date: DateMemo,
    state: State,
    /// The server is shutting down: every answer from now on says
    /// `Connection: close` and ends the connection.
    draining: bool,
    /// The client's address, for throttling failed logins.
    peer: Option<PeerId>,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Waiting for a request head. `seen`: how much of a partial head was
    /// already looked at (0: none of it has arrived).
    Head { seen: usize },
    /// Skipping a request body, then answering `then`.
    Body { discard: Discard, then: AfterBody },
    /// An answer said `Connection: close`; input is ignored.
    Closing,
}

/// What is still owed once a body has been skipped.
#[derive(Debug, Clone, Copy)]
enum AfterBody {
    /// The request was answered before its body (GET/HEAD with a body).
    Nothing,
    /// A 405 or 501 (the error), sent only once the body is gone so the
    /// connection stays in sync, or replaced by a 413/400 if the body turns
    /// out bad.
    Refuse(HttpError, Persist),
}

/// What one pass may still do.
struct Budget {
    requests: usize,
    files: usize,
}

impl Budget {
    fn exhausted(&self, out: &Outbox) -> bool {
        // A job (a listing) ends the pass: its answer is not counted in
        // `queued_bytes`, and what follows waits for it anyway.
        self.requests == 0 || self.files == 0 || out.queued_bytes() >= MAX_QUEUED_TEXT || out.has_job()
    }
}

impl HttpSession {
    /// A new connection, serving `config.root`, with the open-file cache
    /// of the thread it runs on (see [`FileCache`]).
    pub fn new(config: Arc<HttpConfig>, cache: FileCache) -> HttpSession {
        let state = State::Head { seen: 0 };
        HttpSession { config, cache, date: DateMemo::default(), state, draining: false, peer: None }
    }

    /// The same session for a client at `peer` (failed logins from one
    /// address are slowed down).
    pub fn with_peer(self, peer: Option<PeerId>) -> HttpSession {
        HttpSession { peer, ..self }
    }

    /// Answers one request whose head was parsed. Returns what the
    /// connection does next.
    fn answer(&mut self, req: &Request<'_>, date: &HttpDate, now: Now, out: &mut Outbox, budget: &mut Budget) -> Flow {
        let head_only = req.method == Method::Head;
        let mut persist = match (req.version, req.close || self.draining, req.keep_alive) {
            (_, true, _) => Persist::Close,
            (Version::Http11, false, _) => Persist::KeepAlive,
            (Version::Http10, false, true) => Persist::KeepAlive10,
            (Version::Http10, false, false) => Persist::Close,
        };
        let body = match req.body {
            BodyFraming::None | BodyFraming::Length(0) => None,
            BodyFraming::Length(n) if n > self.config.max_body => {
                respond::error(out.text(), HttpError::BodyTooLarge, persist, head_only, date);
                return Flow::CloseAfterFlush;
            }
            BodyFraming::Length(n) => Some(Discard::Length(n)),
            BodyFraming::Chunked => Some(Discard::chunked(self.config.max_body)),
        };
        if body.is_some() && req.expect_continue {
            // The client holds the body back until it hears "100 Continue".
            // Answer at once and close rather than invite a body to discard.
            persist = Persist::Close;
        }
        match req.method {
            Method::Other | Method::Unknown => {
                let refusal = if req.method == Method::Other {
                    HttpError::MethodNotAllowed
                } else {
                    HttpError::MethodNotImplemented
                };
                match body {
                    Some(discard) if persist != Persist::Close => {
                        self.state = State::Body { discard, then: AfterBody::Refuse(refusal, persist) };
                        return Flow::Continue;
                    }
                    _ => respond::error(out.text(), refusal, persist, false, date),
                }
            }
            Method::Get | Method::Head => {
                if let Err(err) = self.serve(req, persist, date, now, out, budget) {
                    respond::error(out.text(), err, persist, head_only, date);
                    if err.closes() {
                        return Flow::CloseAfterFlush;
                    }
                }
                if let Some(discard) = body {
                    self.state = State::Body { discard, then: AfterBody::Nothing };
                }
            }
        }
        if persist == Persist::Close { Flow::CloseAfterFlush } else { Flow::Continue }
    }

    /// GET or HEAD of a path: a file, a redirect, an index page or a
    /// listing. Errors are answered by the caller.
    fn serve(
        &self,
        req: &Request<'_>,
        persist: Persist,
        date: &HttpDate,
        now: Now,
        out: &mut Outbox,
        budget: &mut Budget,
    ) -> Result<(), HttpError> {
        let target = target::parse(req.target)?;
        let root = &self.config.root;
        let path = root.resolve(&VirtualPath::root(), &target.path).map_err(fs_error)?;
        let access = &self.config.access;
        let who = auth::identify(access, req.authorization, self.peer, now.wall)?;
        match self.cache.open(&self.config, &path, now.mono) {
            Ok(file) => {
                if target.trailing_slash() {
                    // `/file.txt/` names a directory that is not there.
                    return Err(HttpError::NotFound);
                }
                auth::check(access, &who, Op::Read, &path)?;
                self.send_file(req, file, &path, persist, date, out, budget);
                Ok(())
            }
            Err(FsError::IsADirectory) if !target.trailing_slash() => {
                respond::redirect_to_dir(&path, &target, req.method == Method::Head, persist, date, out);
                Ok(())
            }
            Err(FsError::IsADirectory) => {
                auth::check(access, &who, Op::List, &path)?;
                let index = path.join_name(OsStr::new("index.html"));
                match self.cache.open(&self.config, &index, now.mono) {
                    Ok(file) => {
                        auth::check(access, &who, Op::Read, &index)?;
                        self.send_file(req, file, &index, persist, date, out, budget);
                        Ok(())
                    }
                    Err(
                        FsError::NotFound
                        | FsError::IsADirectory
                        | FsError::NotRegular
                        | FsError::Escapes
                        | FsError::SymlinkLoop,
                    ) => {
                        let page = listing::Page { root, access, who, dir: &path };
                        listing::push(out, page, req.method == Method::Head, persist, date);
                        Ok(())
                    }
                    Err(e) => Err(fs_error(e)),
                }
            }
            Err(e) => Err(fs_error(e)),
        }
    }

    /// A file (or one range of it), or 304 / 416. `path` is for logs.
    #[allow(clippy::too_many_arguments)]
    fn send_file(
        &self,
        req: &Request<'_>,
        file: Opened,
        path: &VirtualPath,
        persist: Persist,
        date: &HttpDate,
        out: &mut Outbox,
        budget: &mut Budget,
    ) {
        let FileInfo { meta, etag, last_modified, content_type } = file.info;
        let buf = out.text();
        if !conditional::if_match_holds(req, &etag) {
            let head_only = req.method == Method::Head;
            respond::error(buf, HttpError::PreconditionFailed, persist, head_only, date);
            return;
        }
        if conditional::not_modified(req, &etag, meta.mtime) {
            respond::start(buf, Status::NOT_MODIFIED, date);
            respond::header(buf, b"ETag", etag.as_bytes());
            respond::header(buf, b"Last-Modified", &last_modified);
            respond::finish(buf, persist);
            return;
        }
        let answer = match req.range {
            // Range is defined for GET only (RFC 9110 section 14.2).
            Some(value) if req.method == Method::Get && conditional::if_range_holds(req, &etag, meta.mtime) => {
                range::evaluate(value, meta.size)
            }
            _ => RangeAnswer::Full,
        };
        let (status, offset, len) = match answer {
            RangeAnswer::Full => (Status::OK, 0, meta.size),
            RangeAnswer::Partial { start, len } => (Status::PARTIAL_CONTENT, start, len),
            RangeAnswer::Unsatisfiable => {
                let status = Status::RANGE_NOT_SATISFIABLE;
                respond::start(buf, status, date);
                respond::header(buf, b"Content-Type", b"text/plain; charset=utf-8");
                buf.extend_from_slice(b"Content-Range: bytes */");
                respond::push_u64(buf, meta.size);
                buf.extend_from_slice(b"\r\n");
                let body = b"416 Range Not Satisfiable\n";
                respond::content_length(buf, body.len() as u64);
                respond::finish(buf, persist);
                buf.extend_from_slice(body);
                return;
            }
        };
        let response_start = buf.len();
        respond::start(buf, status, date);
        respond::content_type(buf, content_type);
        respond::content_length(buf, len);
        respond::header(buf, b"Last-Modified", &last_modified);
        respond::header(buf, b"ETag", etag.as_bytes());
        respond::header(buf, b"Accept-Ranges", b"bytes");
        if status == Status::PARTIAL_CONTENT {
            buf.extend_from_slice(b"Content-Range: bytes ");
            respond::push_u64(buf, offset);
            buf.push(b'-');
            respond::push_u64(buf, offset + len - 1);
            buf.push(b'/');
            respond::push_u64(buf, meta.size);
            buf.extend_from_slice(b"\r\n");
        }
        respond::finish(buf, persist);
        if req.method == Method::Head {
            return;
        }
        let file = match file.body {
            Body::Cached(bytes) => {
                // Cached bodies are whole small files: copy the range behind
                // its head, like the `pread` below.
                let range = offset as usize..(offset + len) as usize;
                buf.extend_from_slice(&bytes[range]);
                return;
            }
            Body::File(file) => file,
        };
        if len <= self.config.copy_threshold {
            // Small body: copy it behind its head, so pipelined answers
            // leave in one write (see the module docs). `O_NONBLOCK` does
            // not matter to `pread` of a regular file.
            let body_start = buf.len();
            buf.resize(body_start + len as usize, 0);
            if let Err(e) = file.read_exact_at(&mut buf[body_start..], offset) {
                tracing::warn!("http: reading {path} failed: {e}");
                buf.truncate(response_start);
                respond::error(buf, HttpError::Internal, persist, false, date);
            }
        } else {
            // The descriptor leaves the session: make it an ordinary
            // blocking one (for a regular file, only a flag) before it does.
            if let Err(e) = rustix::fs::fcntl_setfl(&file, rustix::fs::OFlags::empty()) {
                tracing::warn!("http: clearing O_NONBLOCK on {path} failed: {e}");
                buf.truncate(response_start);
                respond::error(buf, HttpError::Internal, persist, false, date);
                return;
            }
            out.push_file(FileRange { file: Arc::new(file), offset, len });
            budget.files -= 1;
        }
    }
}

impl Session for HttpSession {
    fn on_input(&mut self, input: &[u8], out: &mut Outbox, now: Now) -> Progress {
        let date = self.date.at(now.wall);
        let files = if out.has_file_range() { 0 } else { MAX_FILES_PER_PASS };
        let mut budget = Budget { requests: MAX_REQUESTS_PER_PASS, files };
        let mut consumed = 0;
        let close = Progress { consumed: input.len(), flow: Flow::CloseAfterFlush };
        loop {
            let rest = &input[consumed..];
            match self.state {
                State::Closing => return close,
                State::Body { mut discard, then } => match discard.discard(rest) {
                    Ok((n, false)) => {
                        self.state = State::Body { discard, then };
                        return Progress { consumed: consumed + n, flow: Flow::Continue };
                    }
                    Ok((n, true)) => {
                        consumed += n;
                        self.state = State::Head { seen: 0 };
                        if let AfterBody::Refuse(refusal, persist) = then {
                            respond::error(out.text(), refusal, persist, false, &date);
                            if persist == Persist::Close {
                                self.state = State::Closing;
                                return close;
                            }
                        }
                    }
                    Err(err) => {
                        if let AfterBody::Refuse(..) = then {
                            let err = match err {
                                BodyError::TooLarge => HttpError::BodyTooLarge,
                                BodyError::Malformed(why) => HttpError::BadRequest(why),
                            };
                            respond::error(out.text(), err, Persist::Close, false, &date);
                        }
                        // Otherwise the request was answered already; all
                        // that is left is to stop reading a stream that
                        // cannot be resynchronised.
                        self.state = State::Closing;
                        return close;
                    }
                },
                State::Head { mut seen } => {
                    if budget.exhausted(out) {
                        return Progress { consumed, flow: Flow::Continue };
                    }
                    // Blank lines before a request line are ignored (RFC 9112
                    // section 2.2); they can only come before a head starts.
                    let blank =
                        if seen == 0 { rest.iter().take_while(|&&b| b == b'\r' || b == b'\n').count() } else { 0 };
                    consumed += blank;
                    let rest = &rest[blank..];
                    if rest.is_empty() {
                        self.state = State::Head { seen: 0 };
                        return Progress { consumed, flow: Flow::Continue };
                    }
                    match parse_head(rest, &mut seen, &self.config) {
                        Ok(Head::Partial) => {
                            self.state = State::Head { seen };
                            return Progress { consumed, flow: Flow::Continue };
                        }
                        Ok(Head::Complete(req, len)) => {
                            consumed += len;
                            budget.requests -= 1;
                            self.state = State::Head { seen: 0 };
                            let flow = self.answer(&req, &date, now, out, &mut budget);
                            if flow != Flow::Continue {
                                self.state = State::Closing;
                                return Progress { consumed: input.len(), flow };
                            }
                        }
                        Err(err) => {
                            respond::error(out.text(), err, Persist::Close, false, &date);
                            self.state = State::Closing;
                            return close;
                        }
                    }
                }
            }
        }
    }

    fn in_request(&self) -> bool {
        matches!(self.state, State::Head { seen: 1.. } | State::Body { .. })
    }

    fn on_draining(&mut self) {
        self.draining = true;
    }

    fn on_idle_timeout(&mut self, out: &mut Outbox, now: Now) -> Flow {
        if self.in_request() {
            let date = self.date.at(now.wall);
            respond::error(out.text(), HttpError::Timeout, Persist::Close, false, &date);
        }
        self.state = State::Closing;
        Flow::CloseAfterFlush
    }
}
