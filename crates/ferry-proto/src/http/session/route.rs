//! Which answer a parsed request gets: the method and target decide
//! between a file, a listing, an archive, an upload or an error.

use std::ffi::OsStr;

use crate::Outbox;
use crate::access::Op;
use crate::http::archive::answer::{self as archive, Ask};
use crate::http::auth;
use crate::http::body::Discard;
use crate::http::date::HttpDate;
use crate::http::errors::{HttpError, fs_error};
use crate::http::listing;
use crate::http::parse::{BodyFraming, Method, Request, Version};
use crate::http::respond::{self, Persist};
use crate::http::target;
use crate::root::{FsError, VirtualPath};
use crate::session::{Flow, Now};

use super::{AfterBody, Budget, HttpSession, State};

impl HttpSession {
    /// Answers one request whose head was parsed. Returns what the
    /// connection does next.
    pub(super) fn answer(
        &mut self,
        req: &Request<'_>,
        date: &HttpDate,
        now: Now,
        out: &mut Outbox,
        budget: &mut Budget,
    ) -> Flow {
        let head_only = req.method == Method::Head;
        let mut persist = match (req.version, req.close || self.draining, req.keep_alive) {
            (_, true, _) => Persist::Close,
            (Version::Http11, false, _) => Persist::KeepAlive,
            (Version::Http10, false, true) => Persist::KeepAlive10,
            (Version::Http10, false, false) => Persist::Close,
        };
        let method = super::writes::effective(req.method, &self.config);
        if method == Method::Put {
            return self.answer_put(req, persist, date, now, out);
        }
        if method == Method::Post {
            return self.answer_post(req, persist, date, now, out);
        }
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
        match method {
            Method::Other | Method::Unknown => {
                let refusal =
                    if method == Method::Other { HttpError::MethodNotAllowed } else { HttpError::MethodNotImplemented };
                match body {
                    Some(discard) if persist != Persist::Close => {
                        self.state = State::Body { discard, then: AfterBody::Refuse(refusal, persist) };
                        return Flow::Continue;
                    }
                    _ => respond::error(out.text(), refusal, persist, false, date),
                }
            }
            Method::Get | Method::Head => {
                let checked = self.login.take().and_then(|slot| slot.lock().ok()?.take());
                let mark = self.upload_offset_mark(req, now, out);
                if let Err(err) = self.serve(req, checked, persist, date, now, out, budget) {
                    respond::error(out.text(), err, persist, head_only, date);
                    if err.closes() {
                        return Flow::CloseAfterFlush;
                    }
                }
                if let Some((mark, path)) = mark {
                    self.annotate_upload_offset(mark, &path, out);
                }
                if let Some(discard) = body {
                    self.state = State::Body { discard, then: AfterBody::Nothing };
                }
            }
            _ => {
                let flow = self.answer_dav(req, body.is_some(), persist, date, now, out);
                if flow != Flow::Continue {
                    return flow;
                }
                if let Some(discard) = body {
                    self.state = State::Body { discard, then: AfterBody::Nothing };
                }
            }
        }
        // A streamed answer (archive, compressed file) closes when it ends
        // (see `after_step`): closing after this flush would cut it short.
        let streaming = self.archive.is_some() || self.compressing.is_some();
        if persist == Persist::Close && !streaming { Flow::CloseAfterFlush } else { Flow::Continue }
    }

    /// GET or HEAD of a path: a file, a redirect, an index page or a
    /// listing. Errors are answered by the caller.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn serve(
        &mut self,
        req: &Request<'_>,
        checked: Option<auth::Checked>,
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
        let who = auth::identify(access, req.authorization, self.peer, now.wall, checked)?;
        match self.cache.open(&self.config, &path, now.mono) {
            Ok(file) => {
                if target.trailing_slash() {
                    // `/file.txt/` names a directory that is not there.
                    return Err(HttpError::NotFound);
                }
                auth::check(access, &who, Op::Read, &path)?;
                self.send_file(req, file, &path, persist, date, now, out, budget);
                Ok(())
            }
            Err(FsError::IsADirectory) if !target.trailing_slash() => {
                respond::redirect_to_dir(&path, &target, req.method == Method::Head, persist, date, out);
                Ok(())
            }
            Err(FsError::IsADirectory) => {
                auth::check(access, &who, Op::List, &path)?;
                if let Some(format) = target.query.and_then(archive::format_in) {
                    let (http11, head_only) = (req.version == Version::Http11, req.method == Method::Head);
                    let ask = Ask { format, path: &path, who, http11, head_only, persist };
                    self.archive = archive::start(&self.config, ask, date, out)?;
                    return Ok(());
                }
                let index = path.join_name(OsStr::new("index.html"));
                match self.cache.open(&self.config, &index, now.mono) {
                    Ok(file) => {
                        auth::check(access, &who, Op::Read, &index)?;
                        self.send_file(req, file, &index, persist, date, now, out, budget);
                        Ok(())
                    }
                    Err(
                        FsError::NotFound
                        | FsError::IsADirectory
                        | FsError::NotRegular
                        | FsError::Escapes
                        | FsError::SymlinkLoop,
                    ) => {
                        let mut view = listing::View::of(target.query, req.accept);
                        view.writable = self.config.partials.is_some() && access.rights(&who, &path).allows(Op::Write);
                        let page = listing::Page { root, access, who, dir: &path, view };
                        listing::push(out, page, req.method == Method::Head, persist, date);
                        Ok(())
                    }
                    Err(e) => Err(fs_error(e)),
                }
            }
            Err(e) => Err(fs_error(e)),
        }
    }
}
