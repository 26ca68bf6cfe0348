//! One `PUT` from its head to its answer: which partial, from which
//! offset, how its body reaches the file, and how it ends.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use super::super::HttpConfig;
use super::super::body::{BodyError, Chunked, Framing};
use super::super::date::HttpDate;
use super::super::dav::headers::{content_range, sha256_of_field};
use super::super::errors::{HttpError, Status};
use super::super::parse::{BodyFraming, Request};
use super::super::respond::{self, Persist};
use super::answer_empty;
use crate::Sink;
use crate::files::Partials;
use crate::files::answer::{Failure, check_new_name, upload_failure};
use crate::files::partials::Announced;
use crate::files::upload::Upload;
use crate::root::{FsError, VirtualPath};

/// How the body arrives.
#[derive(Debug)]
enum Body {
    /// This many bytes (`Content-Length`), all handed to one sink.
    Length(u64),
    /// Chunked: the session decodes the framing, each chunk's data goes to
    /// a sink of its own.
    Chunked(Chunked),
}

/// A `PUT` whose body is being received.
#[derive(Debug)]
pub(crate) struct Receiving {
    upload: Upload,
    file: Arc<File>,
    body: Body,
    /// Where the next body byte goes in the file.
    offset: u64,
    /// The whole file's size, when known (`Content-Length` or the total of
    /// `Content-Range`); the partial is resumable then.
    total: Option<u64>,
    /// The final name did not exist when the upload began (201, not 204).
    created: bool,
    /// How the connection goes on after the answer.
    pub persist: Persist,
}

/// Why a `PUT` is refused before its body: the error, and the offset the
/// server holds when that is what the client must hear (409).
#[derive(Debug)]
pub(crate) struct Refusal {
    pub err: HttpError,
    pub offset: Option<u64>,
}

impl From<HttpError> for Refusal {
    fn from(err: HttpError) -> Refusal {
        Refusal { err, offset: None }
    }
}

/// What the body's chunked framing says next.
pub(crate) enum Next {
    /// More input is needed; this much was framing.
    More(usize),
    /// This much was framing, then route the sink's bytes to the file.
    Sink(usize, Sink),
    /// This much ended the body: answer with [`Receiving::finish`].
    Done(usize),
}

impl Receiving {
    /// Checks a `PUT` of `path` (rights were checked by the caller) and
    /// opens its partial. The caller sends `100 Continue` if asked, then
    /// the body: [`Receiving::first_sink`] or [`Receiving::framing`].
    pub fn begin(
        config: &HttpConfig,
        partials: &Arc<Partials>,
        path: &VirtualPath,
        req: &Request<'_>,
        persist: Persist,
        wall: SystemTime,
    ) -> Result<Receiving, Refusal> {
        let range = req.write.content_range.map(content_range).transpose()?;
        let digest = match (req.write.repr_digest, req.write.content_digest) {
            (Some(repr), _) => sha256_of_field(repr)?,
            (None, Some(_)) if range.is_some() => {
                return Err(HttpError::BadRequest("Content-Digest on a Content-Range piece: send Repr-Digest").into());
            }
            (None, Some(content)) => sha256_of_field(content)?,
            (None, None) => None,
        };
        let (len, chunked) = match req.body {
            BodyFraming::None => (0, false),
            BodyFraming::Length(n) => (n, false),
            BodyFraming::Chunked => (0, true),
        };
        if let Some(r) = range
            && (chunked || len != r.last - r.first + 1)
        {
            return Err(HttpError::BadRequest("Content-Range does not match the body's length").into());
        }
        let total = if chunked { None } else { Some(range.map_or(len, |r| r.total)) };
        if let (Some(max), Some(total)) = (config.max_upload, total)
            && total > max
        {
            return Err(HttpError::BodyTooLarge.into());
        }
        check_new_name(path).map_err(|f| Refusal::from(from_failure(&f)))?;
        let created = match config.root.stat(path) {
            Ok(_) => false,
            Err(FsError::NotFound) => true,
            Err(e) => return Err(super::super::errors::fs_error(e).into()),
        };
        let identity = Announced { size: total.unwrap_or(0), sha256: digest };
        let (upload, have) = Upload::start_as(partials, &config.root, path, identity, total.is_some(), wall)
            .map_err(|f| Refusal::from(from_failure(&f)))?;
        let first = range.map_or(0, |r| r.first);
        if first > have {
            return Err(Refusal { err: HttpError::Refused(409), offset: Some(have) });
        }
        if first < have {
            upload.truncate(first).map_err(|e| Refusal::from(from_failure(&upload_failure(&e))))?;
        }
        let body = if chunked {
            Body::Chunked(Chunked::new(config.max_upload.unwrap_or(u64::MAX)))
        } else {
            Body::Length(len)
        };
        let file = upload.file();
        Ok(Receiving { upload, file, body, offset: first, total, created, persist })
    }

    /// The sink for a `Content-Length` body; `None` for a chunked or empty
    /// one.
    pub fn first_sink(&self) -> Option<Sink> {
        match self.body {
            Body::Length(len) if len > 0 => Some(Sink::new(Arc::clone(&self.file), self.offset, len)),
            _ => None,
        }
    }

    /// True for a chunked body (the session decodes its framing).
    pub fn is_chunked(&self) -> bool {
        matches!(self.body, Body::Chunked(_))
    }

    /// Decodes chunked framing at the front of `input`.
    pub fn framing(&mut self, input: &[u8]) -> Result<Next, BodyError> {
        let Body::Chunked(chunked) = &mut self.body else {
            return Ok(Next::Done(0));
        };
        Ok(match chunked.framing(input)? {
            Framing::More(n) => Next::More(n),
            Framing::Done(n) => Next::Done(n),
            Framing::Data(n, len) => {
                let sink = Sink::new(Arc::clone(&self.file), self.offset, len);
                chunked.data_taken(len);
                self.offset += len;
                Next::Sink(n, sink)
            }
        })
    }

    /// A `Content-Length` body's sink finished writing it all.
    pub fn length_received(&mut self) {
        if let Body::Length(len) = self.body {
            self.offset += len;
        }
    }

    /// The body did not all arrive (`e`): a resumable partial stays for
    /// the next attempt unless the disk failed; a chunked one (no size to
    /// resume by) is removed.
    pub fn abandon(self, e: &io::Error) {
        if self.total.is_some() {
            self.upload.abandon(e);
        } else {
            self.upload.discard();
        }
    }

    /// The whole body is in: answers a piece that leaves the file
    /// incomplete at once (202 with `Upload-Offset`), or queues the commit
    /// (digest check, `fsync`, rename: blocking, so a job) answering 201 or
    /// 204, or the failure.
    pub fn finish(self, date: HttpDate, out: &mut crate::Outbox) {
        let persist = self.persist;
        if let Some(total) = self.total
            && self.offset < total
        {
            let at = self.offset;
            answer_empty(out.text(), Status(202), &[(b"Upload-Offset", at), (b"Upload-Length", total)], persist, &date);
            return;
        }
        let (upload, created) = (self.upload, self.created);
        out.push_job(move || {
            let mut buf = Vec::new();
            match upload.commit() {
                Ok(_) => answer_empty(&mut buf, Status(if created { 201 } else { 204 }), &[], persist, &date),
                Err(f) => respond::error(&mut buf, from_failure(&f), persist, false, &date),
            }
            buf
        });
    }
}

/// The HTTP answer to a failure of the partials machinery (its codes are
/// the file protocol's): a missing parent directory is 409 as WebDAV has
/// it, a digest mismatch 400; none of them closes the connection.
pub(crate) fn from_failure(f: &Failure) -> HttpError {
    match f.code {
        403 => HttpError::Forbidden,
        404 => HttpError::Refused(409),
        422 => HttpError::Refused(400),
        413 => HttpError::BodyTooLarge,
        500 => {
            tracing::warn!("http: upload failed: {}", f.message);
            HttpError::Internal
        }
        code => HttpError::Refused(code),
    }
}
