//! The session's side of uploads (`../upload/`) and WebDAV (`../dav/`):
//! dispatching their methods, receiving a `PUT`'s body, and telling a
//! `HEAD` the offset held for an interrupted upload.

use std::io;

use super::{HttpSession, State};
use crate::Outbox;
use crate::access::Op;
use crate::http::HttpConfig;
use crate::http::auth;
use crate::http::body::{BodyError, Discard};
use crate::http::date::HttpDate;
use crate::http::dav::{self, headers, propfind};
use crate::http::errors::{HttpError, fs_error};
use crate::http::parse::{BodyFraming, Method, Request};
use crate::http::respond::{self, Persist};
use crate::http::target;
use crate::http::upload::{self, CONTINUE, Form, FormStep, Receiving, Refusal};
use crate::root::VirtualPath;
use crate::session::{Flow, Now};

/// The method as this server treats it: the write methods are "other"
/// (405) on a server without `--allow-write`.
pub(super) fn effective(method: Method, config: &HttpConfig) -> Method {
    match method {
        Method::Put | Method::Post | Method::Mkcol | Method::Delete | Method::Move if config.partials.is_none() => {
            Method::Other
        }
        m => m,
    }
}

impl HttpSession {
    /// Resolves a request's path and who it comes from.
    fn who_and_path(
        &mut self,
        req: &Request<'_>,
        now: Now,
    ) -> Result<(crate::access::Identity, VirtualPath), HttpError> {
        let checked = self.login.take().and_then(|slot| slot.lock().ok()?.take());
        let target = target::parse(req.target)?;
        let path = self.config.root.resolve(&VirtualPath::root(), &target.path).map_err(fs_error)?;
        let who = auth::identify(&self.config.access, req.authorization, self.peer, now.wall, checked)?;
        if target.trailing_slash() && req.method == Method::Put {
            return Err(HttpError::Refused(409));
        }
        Ok((who, path))
    }

    /// `PUT`: starts receiving the body into the path's partial, or
    /// refuses (reading a small body first so the connection stays usable).
    pub(super) fn answer_put(
        &mut self,
        req: &Request<'_>,
        persist: Persist,
        date: &HttpDate,
        now: Now,
        out: &mut Outbox,
    ) -> Flow {
        let started = self.who_and_path(req, now).map_err(Refusal::from).and_then(|(who, path)| {
            auth::check(&self.config.access, &who, Op::Write, &path)?;
            let partials = self.config.partials.as_ref().ok_or(HttpError::MethodNotAllowed)?;
            Receiving::begin(&self.config, partials, &path, req, persist, now.wall)
        });
        let rx = match started {
            Ok(rx) => rx,
            Err(refusal) => return self.refuse_put(req, refusal, persist, date, out),
        };
        if req.expect_continue {
            out.push_bytes(CONTINUE);
        }
        if let Some(sink) = rx.first_sink() {
            out.expect_upload(sink);
        } else if !rx.is_chunked() {
            // An empty body: the file is complete now.
            rx.finish(*date, out);
            return if persist == Persist::Close { Flow::CloseAfterFlush } else { Flow::Continue };
        }
        self.upload = Some(Box::new(rx));
        self.state = State::Upload;
        Flow::Continue
    }

    /// Answers a refused `PUT`. A body that is small and not held back by
    /// `Expect` is read and dropped first; otherwise the connection closes
    /// after the answer (the body is never read).
    fn refuse_put(
        &mut self,
        req: &Request<'_>,
        Refusal { err, offset }: Refusal,
        persist: Persist,
        date: &HttpDate,
        out: &mut Outbox,
    ) -> Flow {
        let max = self.config.max_body;
        let discard = match req.body {
            BodyFraming::None | BodyFraming::Length(0) => None,
            _ if req.expect_continue || err.closes() || offset.is_some() => Some(None),
            BodyFraming::Length(n) if n <= max => Some(Some(Discard::Length(n))),
            BodyFraming::Chunked => Some(Some(Discard::chunked(max))),
            BodyFraming::Length(_) => Some(None),
        };
        match discard {
            Some(Some(discard)) => {
                self.state = State::Body { discard, then: super::AfterBody::Refuse(err, persist) };
                Flow::Continue
            }
            Some(None) => {
                refusal(out.text(), err, offset, Persist::Close, date);
                Flow::CloseAfterFlush
            }
            None => {
                refusal(out.text(), err, offset, persist, date);
                if err.closes() || persist == Persist::Close { Flow::CloseAfterFlush } else { Flow::Continue }
            }
        }
    }

    /// Chunked framing of the body being received, at the front of `rest`:
    /// the bytes used, the flow, and whether the request is over (the
    /// caller goes on to the next one).
    pub(super) fn upload_input(&mut self, rest: &[u8], date: &HttpDate, out: &mut Outbox) -> (usize, Flow, bool) {
        let Some(rx) = self.upload.as_mut() else {
            self.state = State::Head { seen: 0 };
            return (0, Flow::Continue, true);
        };
        if !rx.is_chunked() {
            // A Content-Length body goes through its sink, not here.
            return (0, Flow::Continue, false);
        }
        match rx.framing(rest) {
            Ok(upload::Next::More(n)) => (n, Flow::Continue, false),
            Ok(upload::Next::Sink(n, sink)) => {
                out.expect_upload(sink);
                (n, Flow::Continue, false)
            }
            Ok(upload::Next::Done(n)) => (n, self.finish_put(date, out), true),
            Err(e) => {
                let err = match e {
                    BodyError::TooLarge => HttpError::BodyTooLarge,
                    BodyError::Malformed(why) => HttpError::BadRequest(why),
                };
                if let Some(rx) = self.upload.take() {
                    rx.abandon(&io::Error::new(io::ErrorKind::InvalidData, err.to_string()));
                }
                respond::error(out.text(), err, Persist::Close, false, date);
                (rest.len(), Flow::CloseAfterFlush, false)
            }
        }
    }

    /// The body is all in: answer (or queue the commit), then the next
    /// request.
    fn finish_put(&mut self, date: &HttpDate, out: &mut Outbox) -> Flow {
        self.state = State::Head { seen: 0 };
        let Some(rx) = self.upload.take() else { return Flow::Continue };
        let persist = rx.persist;
        rx.finish(*date, out);
        if persist == Persist::Close { Flow::CloseAfterFlush } else { Flow::Continue }
    }

    /// `POST` of a form to a directory: starts receiving its file parts.
    pub(super) fn answer_post(
        &mut self,
        req: &Request<'_>,
        persist: Persist,
        date: &HttpDate,
        now: Now,
        out: &mut Outbox,
    ) -> Flow {
        let started = self.who_and_path(req, now).and_then(|(who, path)| {
            auth::check(&self.config.access, &who, Op::Write, &path)?;
            if !self.config.root.stat(&path).is_ok_and(|m| m.kind == crate::root::Kind::Dir) {
                return Err(HttpError::MethodNotAllowed);
            }
            let BodyFraming::Length(len) = req.body else { return Err(HttpError::Refused(411)) };
            Form::begin(req.write.content_type, len, path, who, persist)
        });
        match started {
            Ok(form) => {
                if req.expect_continue {
                    out.push_bytes(CONTINUE);
                }
                self.form = Some(Box::new(form));
                self.state = State::Upload;
                Flow::Continue
            }
            Err(err) => self.refuse_put(req, Refusal::from(err), persist, date, out),
        }
    }

    /// The form being received, at the front of `rest` (as
    /// [`HttpSession::upload_input`]).
    pub(super) fn form_input(
        &mut self,
        rest: &[u8],
        date: &HttpDate,
        now: Now,
        out: &mut Outbox,
    ) -> (usize, Flow, bool) {
        let Some(form) = self.form.as_mut() else {
            self.state = State::Head { seen: 0 };
            return (0, Flow::Continue, true);
        };
        match form.step(&self.config, rest, date, now.wall, out) {
            Ok(FormStep::More(n)) => (n, Flow::Continue, false),
            Ok(FormStep::Sink(n, sink)) => {
                out.expect_upload(sink);
                (n, Flow::Continue, false)
            }
            Ok(FormStep::Done(n)) => {
                self.state = State::Head { seen: 0 };
                let persist = self.form.take().map_or(Persist::Close, |f| f.persist());
                (n, if persist == Persist::Close { Flow::CloseAfterFlush } else { Flow::Continue }, true)
            }
            Err(err) => {
                // The partial of a form part cannot resume: dropping it
                // removes it.
                self.form = None;
                respond::error(out.text(), err, Persist::Close, false, date);
                (rest.len(), Flow::CloseAfterFlush, false)
            }
        }
    }

    /// A sink of the upload finished (see [`crate::Session::on_upload_done`]).
    pub(super) fn upload_done(&mut self, result: io::Result<()>, out: &mut Outbox, now: Now) -> Flow {
        if self.form.is_some() {
            if result.is_ok() {
                return Flow::Continue;
            }
            self.form = None;
            return Flow::CloseNow;
        }
        let Some(rx) = self.upload.as_mut() else {
            return if result.is_ok() { Flow::Continue } else { Flow::CloseNow };
        };
        match result {
            Ok(()) if rx.is_chunked() => Flow::Continue,
            Ok(()) => {
                rx.length_received();
                let date = self.date.at(now.wall);
                self.finish_put(&date, out)
            }
            Err(e) => {
                let rx = self.upload.take();
                let peer_gone = matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::TimedOut);
                if !peer_gone {
                    let failure = crate::files::answer::upload_failure(&e);
                    let date = self.date.at(now.wall);
                    respond::error(out.text(), upload::from_failure(&failure), Persist::Close, false, &date);
                }
                if let Some(rx) = rx {
                    rx.abandon(&e);
                }
                if peer_gone { Flow::CloseNow } else { Flow::CloseAfterFlush }
            }
        }
    }

    /// The connection timed out: an upload under way is left for a resume.
    pub(super) fn drop_upload(&mut self, _now: Now) {
        self.form = None;
        if let Some(rx) = self.upload.take() {
            rx.abandon(&io::Error::new(io::ErrorKind::TimedOut, "upload stalled"));
        }
    }

    /// For a `HEAD` on a writable server by a client who may write there:
    /// where its answer will start in the outbox's text, and the path,
    /// when an interrupted upload of that path is held.
    pub(super) fn upload_offset_mark(
        &mut self,
        req: &Request<'_>,
        now: Now,
        out: &mut Outbox,
    ) -> Option<(usize, VirtualPath)> {
        if req.method != Method::Head {
            return None;
        }
        let partials = self.config.partials.as_ref()?;
        let target = target::parse(req.target).ok()?;
        let path = self.config.root.resolve(&VirtualPath::root(), &target.path).ok()?;
        partials.held(&path)?;
        // Only credentials already checked (no slow hash here).
        let who = auth::identify(&self.config.access, req.authorization, self.peer, now.wall, None).ok()?;
        self.config.access.check(&who, Op::Write, &path).ok()?;
        Some((out.text().len(), path))
    }

    /// Adds `Upload-Offset` to the `HEAD` answer written from `mark`.
    pub(super) fn annotate_upload_offset(&self, mark: usize, path: &VirtualPath, out: &mut Outbox) {
        if let Some(partials) = &self.config.partials {
            upload::annotate_head(out, mark, partials, path);
        }
    }

    /// `OPTIONS`, `PROPFIND`, `MKCOL`, `DELETE`, `MOVE`: answered before
    /// their body (which the caller then skips).
    pub(super) fn answer_dav(
        &mut self,
        req: &Request<'_>,
        has_body: bool,
        persist: Persist,
        date: &HttpDate,
        now: Now,
        out: &mut Outbox,
    ) -> Flow {
        match self.dav(req, has_body, persist, date, now, out) {
            Ok(()) => Flow::Continue,
            Err(err) => {
                respond::error(out.text(), err, persist, false, date);
                if err.closes() { Flow::CloseAfterFlush } else { Flow::Continue }
            }
        }
    }

    fn dav(
        &mut self,
        req: &Request<'_>,
        has_body: bool,
        persist: Persist,
        date: &HttpDate,
        now: Now,
        out: &mut Outbox,
    ) -> Result<(), HttpError> {
        if req.method == Method::Options && req.target == b"*" {
            dav::options(out.text(), self.config.partials.is_some(), persist, date);
            return Ok(());
        }
        let (who, path) = self.who_and_path(req, now)?;
        let (root, access) = (&self.config.root, &self.config.access);
        let status = match req.method {
            Method::Options => {
                dav::options(out.text(), self.config.partials.is_some(), persist, date);
                return Ok(());
            }
            Method::Propfind => {
                let depth = headers::depth(req.write.depth).ok_or(HttpError::Forbidden)?;
                auth::check(access, &who, Op::List, &path)?;
                let meta = root.stat(&path).map_err(fs_error)?;
                let ask = propfind::Ask {
                    root: root.clone(),
                    access: access.clone(),
                    who,
                    path,
                    meta,
                    children: depth == 1,
                    persist,
                };
                propfind::push(out, ask, date);
                return Ok(());
            }
            Method::Mkcol if has_body => return Err(HttpError::Refused(415)),
            Method::Mkcol => {
                auth::check(access, &who, Op::Write, &path)?;
                dav::mkcol(root, &path)?
            }
            Method::Delete => {
                auth::check(access, &who, Op::Delete, &path)?;
                dav::delete(root, &path)?
            }
            Method::Move => {
                let raw = req.write.destination.ok_or(HttpError::BadRequest("MOVE without Destination"))?;
                let dest = target::parse(raw)?;
                let to = root.resolve(&VirtualPath::root(), &dest.path).map_err(fs_error)?;
                auth::check(access, &who, Op::Delete, &path)?;
                auth::check(access, &who, Op::Write, &to)?;
                dav::rename(root, &path, &to, headers::may_overwrite(req.write.overwrite))?
            }
            _ => return Err(HttpError::MethodNotAllowed),
        };
        upload::answer_empty(out.text(), status, &[], persist, date);
        Ok(())
    }
}

/// An error answer, with `Upload-Offset` when the client must resume from
/// elsewhere.
fn refusal(buf: &mut Vec<u8>, err: HttpError, offset: Option<u64>, persist: Persist, date: &HttpDate) {
    let mark = buf.len();
    respond::error(buf, err, persist, false, date);
    if let Some(offset) = offset {
        upload::insert_headers(buf, mark, &[(b"Upload-Offset", offset)]);
    }
}
