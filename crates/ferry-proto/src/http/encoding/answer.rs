//! Answering GET/HEAD of a regular file in the representation the client
//! takes: a precompressed sibling, the file compressed on the fly (from
//! the cache, by a job, or as a stream), or the identity bytes.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use super::encoder::{self, Encoder, STEP};
use super::negotiate::Accepted;
use super::stream::{self, Stream};
use super::{Coding, Encoding, Level, WHOLE_MAX, cache, compressible, siblings};
use crate::Outbox;
use crate::http::HttpConfig;
use crate::http::conditional;
use crate::http::date::HttpDate;
use crate::http::errors::{HttpError, Status};
use crate::http::file_answer::{self, Extra};
use crate::http::file_cache::{Body, FileCache, FileInfo, Opened};
use crate::http::parse::{Method, Request, Version};
use crate::http::respond::{self, Persist};
use crate::root::{Meta, VirtualPath};

/// What answering a file left for the session.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// A file range was queued (it counts against the pass's budget).
    pub file_range: bool,
    /// A compressed stream to go on with as output drains.
    pub stream: Option<Stream>,
}

/// Where the file is and how the connection goes on.
pub(crate) struct Ask<'a> {
    pub config: &'a HttpConfig,
    pub cache: &'a FileCache,
    pub req: &'a Request<'a>,
    pub path: &'a VirtualPath,
    pub persist: Persist,
    pub date: &'a HttpDate,
    pub now: Instant,
}

/// Answers a GET or HEAD of the regular file `file`.
pub(crate) fn send(ask: &Ask<'_>, file: Opened, out: &mut Outbox) -> Sent {
    let Ask { config, req, .. } = *ask;
    let mime = file.info.content_type.mime();
    let encoding = &config.encoding;
    let varies = compressible(mime) && (encoding.compress.is_some() || encoding.precompressed);
    let extra = Extra { vary: varies, cache_control: config.cache_control.for_type(mime), coding: None };
    // A range is always of the identity bytes.
    let ranged = req.range.is_some() && req.method == Method::Get;
    let accepted = Accepted::parse(req.accept_encoding);
    if !varies || ranged || accepted.ranked().next().is_none() {
        return identity(ask, file, out, &extra);
    }
    if encoding.precompressed
        && let Some((coding, sibling)) =
            siblings::find(config, ask.cache, ask.path, &file.info.meta, &accepted, ask.now)
    {
        let info = FileInfo { content_type: file.info.content_type, ..sibling.info };
        let extra = Extra { coding: Some(coding), ..extra };
        return identity(ask, Opened { info, body: sibling.body }, out, &extra);
    }
    let size = file.info.meta.size;
    let (Some(level), Some(coding)) = (encoding.compress, accepted.best(|_| true)) else {
        return identity(ask, file, out, &extra);
    };
    if size < encoding.min_size {
        return identity(ask, file, out, &extra);
    }
    let slot = if size > WHOLE_MAX {
        // Streamed: chunked framing needs HTTP/1.1, and a slot.
        match (req.version, stream::Slot::take(encoding)) {
            (Version::Http11, Some(slot)) => Some(slot),
            _ => return identity(ask, file, out, &extra),
        }
    } else {
        None
    };
    let rep = Compressed { coding, level, extra };
    compressed(ask, file, rep, slot, out)
}

/// The file's own bytes (or a sibling's), by the ordinary file answer.
fn identity(ask: &Ask<'_>, file: Opened, out: &mut Outbox, extra: &Extra<'_>) -> Sent {
    let Ask { config, req, path, persist, date, .. } = *ask;
    Sent { file_range: file_answer::send_file(config, req, file, path, persist, date, out, extra), stream: None }
}

/// An on-the-fly representation.
struct Compressed<'a> {
    coding: Coding,
    level: Level,
    extra: Extra<'a>,
}

/// Answers with the file compressed on the fly: 412/304 by the
/// representation's own tag, else the cached result, a job, or a stream.
fn compressed(ask: &Ask<'_>, file: Opened, rep: Compressed<'_>, slot: Option<stream::Slot>, out: &mut Outbox) -> Sent {
    let Ask { config, req, path, persist, date, .. } = *ask;
    let FileInfo { meta, etag, last_modified, content_type } = file.info;
    let etag = etag.encoded(rep.coding.token());
    let head_only = req.method == Method::Head;
    if !conditional::if_match_holds(req, &etag) {
        respond::error(out.text(), HttpError::PreconditionFailed, persist, head_only, date);
        return Sent::default();
    }
    if conditional::not_modified(req, &etag, meta.mtime) {
        let buf = out.text();
        respond::start(buf, Status::NOT_MODIFIED, date);
        respond::header(buf, b"ETag", etag.as_bytes());
        respond::header(buf, b"Last-Modified", &last_modified);
        rep.extra.push(buf);
        respond::finish(buf, persist);
        return Sent::default();
    }
    let mut head = Vec::with_capacity(320);
    respond::start(&mut head, Status::OK, date);
    respond::content_type(&mut head, content_type);
    respond::header(&mut head, b"Last-Modified", &last_modified);
    respond::header(&mut head, b"ETag", etag.as_bytes());
    Extra { coding: Some(rep.coding), ..rep.extra }.push(&mut head);
    if let Some(slot) = slot {
        // Large: chunks, as they are made.
        let buf = out.text();
        buf.extend_from_slice(&head);
        respond::header(buf, b"Transfer-Encoding", b"chunked");
        respond::finish(buf, persist);
        if head_only {
            return Sent::default();
        }
        let Body::File(file) = file.body else {
            // Cached bodies are small; never streamed.
            return Sent::default();
        };
        let mut stream = match Stream::new(file, meta.size, rep.coding, rep.level, persist, slot) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!("http: starting {} compression of {path} failed: {e}", rep.coding.token());
                return Sent::default();
            }
        };
        stream.queue_part(out);
        return Sent { file_range: false, stream: Some(stream) };
    }
    let key = cache::key(config.root.id(), path, &meta, rep.coding, rep.level);
    let encoding = Arc::clone(&config.encoding);
    let kept = encoding.results.lock().unwrap_or_else(PoisonError::into_inner).get(&key);
    if let Some(body) = kept {
        // Not `out.text()` before here: an empty text item ahead of the
        // job below would be sent as a zero-length write.
        let buf = out.text();
        finish_head(buf, head, body.len(), persist);
        if !head_only {
            buf.extend_from_slice(&body);
        }
        return Sent::default();
    }
    // Compress off the loop; the job writes the head too, once the length
    // is known. HEAD compresses as well, so its Content-Length is GET's.
    let (coding, level, date, log_path) = (rep.coding, rep.level, *date, path.to_string());
    out.push_job(move || {
        let made = match &file.body {
            Body::Cached(bytes) => encoder::compress(coding, level, bytes),
            Body::File(f) => compress_file(f, meta.size, coding, level),
        };
        let mut buf = Vec::new();
        match made {
            Ok(body) => {
                let unchanged = match &file.body {
                    Body::Cached(_) => true,
                    Body::File(f) => still(f, &meta),
                };
                let body: Arc<[u8]> = body.into();
                if unchanged {
                    keep(&encoding, key, Arc::clone(&body));
                }
                finish_head(&mut buf, head, body.len(), persist);
                if !head_only {
                    buf.extend_from_slice(&body);
                }
            }
            Err(e) => {
                tracing::warn!("http: {} compression of {log_path} failed: {e}", coding.token());
                respond::error(&mut buf, HttpError::Internal, persist, head_only, &date);
            }
        }
        buf
    });
    Sent::default()
}

/// Appends `head` (complete but for its length and end) to `buf`.
fn finish_head(buf: &mut Vec<u8>, head: Vec<u8>, len: usize, persist: Persist) {
    buf.extend_from_slice(&head);
    respond::content_length(buf, len as u64);
    respond::finish(buf, persist);
}

/// Keeps a compressed body in the server's cache.
fn keep(encoding: &Encoding, key: Box<[u8]>, body: Arc<[u8]>) {
    let mut results = encoding.results.lock().unwrap_or_else(PoisonError::into_inner);
    results.insert(key, body, encoding.cache_bytes);
}

/// True when `file` still has the size and mtime it was answered with, so
/// what was read from it may be cached under that version's key.
fn still(file: &File, meta: &Meta) -> bool {
    file.metadata()
        .is_ok_and(|m| m.len() == meta.size && m.mtime() == meta.mtime && m.mtime_nsec() == i64::from(meta.mtime_nsec))
}

/// The first `size` bytes of `file` compressed, read [`STEP`] at a time.
fn compress_file(file: &File, size: u64, coding: Coding, level: Level) -> io::Result<Vec<u8>> {
    let mut encoder = Encoder::new(coding, level)?;
    let mut piece = vec![0; STEP.min(size as usize)];
    let mut out = Vec::new();
    let mut at = 0;
    while at < size {
        let want = piece.len().min((size - at) as usize);
        let n = file.read_at(&mut piece[..want], at)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank"));
        }
        encoder.write(&piece[..n])?;
        out.append(&mut encoder.take());
        at += n as u64;
    }
    out.extend_from_slice(&encoder.finish()?);
    Ok(out)
}
