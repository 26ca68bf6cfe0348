//! One HTTP/1.x connection as a sans-IO [`Session`].

use crate::access::PeerId;
use std::sync::Arc;

use super::HttpConfig;
use super::archive::answer::{Step, Streaming};
use super::auth;
use super::body::{BodyError, Discard};
use super::date::DateMemo;
use super::encoding::stream::Stream;
use super::errors::HttpError;
use super::file_cache::FileCache;
use super::parse::{Head, Method, Request, parse_head};
use super::respond::{self, Persist};
use crate::Outbox;
use crate::observe::{Observer, Tracker, sniff_http};
use crate::session::{Flow, Now, Progress, Session};

mod route;
mod streams;
mod writes;

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
    /// A folder archive being sent, and whether the connection stays open
    /// after it. No other request is answered meanwhile.
    archive: Option<Streaming>,
    /// A password check running as a job for the request left unread.
    login: Option<auth::LoginSlot>,
    /// A large file being compressed as it is sent. No other request is
    /// answered meanwhile.
    compressing: Option<Stream>,
    /// A `PUT` whose body is being received (`writes.rs`).
    upload: Option<Box<super::upload::Receiving>>,
    /// A form upload (`POST`) being received (`writes.rs`).
    form: Option<Box<super::upload::Form>>,
    /// Request records for the access log and metrics.
    log: Tracker,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Waiting for a request head. `seen`: how much of a partial head was
    /// already looked at (0: none of it has arrived).
    Head { seen: usize },
    /// Skipping a request body, then answering `then`.
    Body { discard: Discard, then: AfterBody },
    /// Receiving a `PUT`'s body into its partial (`writes.rs`).
    Upload,
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
        let date = DateMemo::default();
        HttpSession {
            config,
            cache,
            date,
            state,
            draining: false,
            peer: None,
            archive: None,
            login: None,
            compressing: None,
            upload: None,
            form: None,
            log: Tracker::default(),
        }
    }

    /// The same session for a client at `peer` (failed logins from one
    /// address are slowed down).
    pub fn with_peer(self, peer: Option<PeerId>) -> HttpSession {
        HttpSession { peer, ..self }
    }

    /// The same session reporting each request to `observer`.
    pub fn with_observer(self, observer: Box<dyn Observer>) -> HttpSession {
        HttpSession { log: Tracker::new(observer), ..self }
    }

    /// A GET or HEAD whose password needs the slow hash: starts that check
    /// as a job and says so; the caller leaves the request unread, and the
    /// core offers it again once the job is back, which answers it with the
    /// job's outcome. False when the request can be answered now.
    fn defer_login(&mut self, req: &Request<'_>, now: Now, out: &mut Outbox) -> bool {
        if matches!(req.method, Method::Other | Method::Unknown) {
            return false;
        }
        if self.login.as_ref().is_some_and(|slot| slot.lock().map(|done| done.is_some()).unwrap_or(true)) {
            return false;
        }
        let Some((slot, job)) = auth::slow_login(&self.config.access, req.authorization, self.peer, now.wall) else {
            return false;
        };
        self.login = Some(slot);
        out.push_job(job);
        true
    }
}

impl Session for HttpSession {
    fn on_input(&mut self, input: &[u8], out: &mut Outbox, now: Now) -> Progress {
        if self.archive.is_some() || self.compressing.is_some() {
            // Pipelined requests wait for the archive's (or stream's) end.
            return Progress { consumed: 0, flow: Flow::Continue };
        }
        let date = self.date.at(now.wall);
        let files = if out.has_file_range() { 0 } else { MAX_FILES_PER_PASS };
        let mut budget = Budget { requests: MAX_REQUESTS_PER_PASS, files };
        let mut consumed = 0;
        let close = Progress { consumed: input.len(), flow: Flow::CloseAfterFlush };
        loop {
            let rest = &input[consumed..];
            match self.state {
                State::Closing => return close,
                State::Upload if self.form.is_some() => {
                    match self.logged_body(out, now, |s, out| s.form_input(rest, &date, now, out)) {
                        (n, Flow::Continue, true) => consumed += n,
                        (n, Flow::Continue, false) => return Progress { consumed: consumed + n, flow: Flow::Continue },
                        (_, flow, _) => {
                            self.state = State::Closing;
                            return Progress { consumed: input.len(), flow };
                        }
                    }
                }
                State::Upload => match self.logged_body(out, now, |s, out| s.upload_input(rest, &date, out)) {
                    (n, Flow::Continue, true) => consumed += n,
                    (n, Flow::Continue, false) => return Progress { consumed: consumed + n, flow: Flow::Continue },
                    (_, flow, _) => {
                        self.state = State::Closing;
                        return Progress { consumed: input.len(), flow };
                    }
                },
                State::Body { mut discard, then } => match discard.discard(rest) {
                    Ok((n, false)) => {
                        self.state = State::Body { discard, then };
                        return Progress { consumed: consumed + n, flow: Flow::Continue };
                    }
                    Ok((n, true)) => {
                        consumed += n;
                        self.state = State::Head { seen: 0 };
                        if let AfterBody::Refuse(refusal, persist) = then {
                            let mark = self.log.begin(out);
                            respond::error(out.text(), refusal, persist, false, &date);
                            self.log.amend(mark, out, now, n as u64, sniff_http);
                            self.log.hold(false);
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
                            let mark = self.log.begin(out);
                            respond::error(out.text(), err, Persist::Close, false, &date);
                            self.log.amend(mark, out, now, 0, sniff_http);
                            self.log.hold(false);
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
                            if self.defer_login(&req, now, out) {
                                self.state = State::Head { seen: 0 };
                                return Progress { consumed, flow: Flow::Continue };
                            }
                            consumed += len;
                            budget.requests -= 1;
                            self.state = State::Head { seen: 0 };
                            let mark = self.log.begin(out);
                            let flow = self.answer(&req, &date, now, out, &mut budget);
                            if self.log.on() {
                                self.log.answered(mark, out, now, super::log::asked(&req, &rest[..len]), sniff_http);
                                let owed = matches!(
                                    self.state,
                                    State::Body { then: AfterBody::Refuse(..), .. } | State::Upload
                                );
                                self.log.hold(owed || self.archive.is_some() || self.compressing.is_some());
                            }
                            if flow != Flow::Continue {
                                self.state = State::Closing;
                                return Progress { consumed: input.len(), flow };
                            }
                            if self.archive.is_some() || self.compressing.is_some() {
                                return Progress { consumed, flow: Flow::Continue };
                            }
                        }
                        Err(err) => {
                            let mark = self.log.begin(out);
                            respond::error(out.text(), err, Persist::Close, false, &date);
                            if self.log.on() {
                                self.log.answered(mark, out, now, super::log::malformed(rest), sniff_http);
                            }
                            self.state = State::Closing;
                            return close;
                        }
                    }
                }
            }
        }
    }

    fn on_drained(&mut self, out: &mut Outbox, now: Now) -> Flow {
        self.log.drained(now);
        if self.compressing.is_none() && self.archive.is_none() {
            return Flow::Continue;
        }
        let mark = self.log.begin(out);
        let step = match (self.compressing.as_mut(), self.archive.as_mut()) {
            (Some(stream), _) => stream.resume(out),
            (None, Some(streaming)) => streaming.resume(out),
            (None, None) => Step::More,
        };
        self.log.amend(mark, out, now, 0, sniff_http);
        self.after_step(step)
    }

    fn in_request(&self) -> bool {
        matches!(self.state, State::Head { seen: 1.. } | State::Body { .. })
    }

    fn on_draining(&mut self) {
        self.draining = true;
    }

    fn on_upload_done(&mut self, result: std::io::Result<()>, out: &mut Outbox, now: Now) -> Flow {
        let mark = self.log.begin(out);
        let flow = self.upload_done(result, out, now);
        self.log.amend(mark, out, now, 0, sniff_http);
        if flow != Flow::Continue || !matches!(self.state, State::Upload) {
            self.log.hold(false);
        }
        if flow != Flow::Continue {
            self.state = State::Closing;
        }
        flow
    }

    fn on_closed(&mut self, now: Now) {
        self.log.closed(now);
    }

    fn on_idle_timeout(&mut self, out: &mut Outbox, now: Now) -> Flow {
        self.drop_upload(now);
        if self.in_request() {
            let date = self.date.at(now.wall);
            respond::error(out.text(), HttpError::Timeout, Persist::Close, false, &date);
        }
        self.state = State::Closing;
        Flow::CloseAfterFlush
    }
}
