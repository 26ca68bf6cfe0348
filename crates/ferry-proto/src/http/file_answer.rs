//! Answering GET/HEAD of a regular file: validators (304, 412), ranges
//! (206, 416), and the body copied behind the head when small or queued as
//! a file range for `sendfile`.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::HttpConfig;
use super::conditional;
use super::date::HttpDate;
use super::encoding::Coding;
use super::errors::{HttpError, Status};
use super::file_cache::{Body, FileInfo, Opened};
use super::parse::{Method, Request};
use super::range::{self, RangeAnswer};
use super::respond::{self, Persist};
use crate::root::VirtualPath;
use crate::{FileRange, Outbox};

/// Header lines an answer about a file carries besides its own (see
/// [`super::encoding`] and [`super::cache_control`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Extra<'a> {
    /// `Vary: Accept-Encoding`: the answer depends on it.
    pub vary: bool,
    /// The `Cache-Control` value for the file's type.
    pub cache_control: Option<&'a [u8]>,
    /// The file is a precompressed sibling in this coding: say so, and
    /// ignore `Range` (ranges are served from the identity only).
    pub coding: Option<Coding>,
}

impl Extra<'_> {
    /// The lines, behind the others of a head.
    pub(crate) fn push(&self, buf: &mut Vec<u8>) {
        if let Some(coding) = self.coding {
            respond::header(buf, b"Content-Encoding", coding.token().as_bytes());
        }
        if self.vary {
            respond::header(buf, b"Vary", b"Accept-Encoding");
        }
        if let Some(value) = self.cache_control {
            respond::header(buf, b"Cache-Control", value);
        }
    }
}

/// A file (or one range of it), or 304 / 416. `path` is for logs. True
/// when a file range was queued (it counts against the pass's budget).
#[allow(clippy::too_many_arguments)]
pub(super) fn send_file(
    config: &HttpConfig,
    req: &Request<'_>,
    file: Opened,
    path: &VirtualPath,
    persist: Persist,
    date: &HttpDate,
    out: &mut Outbox,
    extra: &Extra<'_>,
) -> bool {
    let FileInfo { meta, etag, last_modified, content_type } = file.info;
    let buf = out.text();
    if !conditional::if_match_holds(req, &etag) {
        let head_only = req.method == Method::Head;
        respond::error(buf, HttpError::PreconditionFailed, persist, head_only, date);
        return false;
    }
    if conditional::not_modified(req, &etag, meta.mtime) {
        respond::start(buf, Status::NOT_MODIFIED, date);
        respond::header(buf, b"ETag", etag.as_bytes());
        respond::header(buf, b"Last-Modified", &last_modified);
        extra.push(buf);
        respond::finish(buf, persist);
        return false;
    }
    let answer = match req.range {
        // Range is defined for GET only (RFC 9110 section 14.2).
        Some(value)
            if req.method == Method::Get
                && extra.coding.is_none()
                && conditional::if_range_holds(req, &etag, meta.mtime) =>
        {
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
            return false;
        }
    };
    let response_start = buf.len();
    respond::start(buf, status, date);
    respond::content_type(buf, content_type);
    respond::content_length(buf, len);
    respond::header(buf, b"Last-Modified", &last_modified);
    respond::header(buf, b"ETag", etag.as_bytes());
    if extra.coding.is_none() {
        respond::header(buf, b"Accept-Ranges", b"bytes");
    }
    extra.push(buf);
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
        return false;
    }
    let file = match file.body {
        Body::Cached(bytes) => {
            // Cached bodies are whole small files: copy the range behind
            // its head, like the `pread` below.
            let range = offset as usize..(offset + len) as usize;
            buf.extend_from_slice(&bytes[range]);
            return false;
        }
        Body::File(file) => file,
    };
    if len <= config.copy_threshold {
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
            return false;
        }
        out.push_file(FileRange { file: Arc::new(file), offset, len });
        return true;
    }
    false
}
