//! # HTTP service
//!
//! A static-file HTTP/1.1 server as a sans-IO [`Session`](crate::Session):
//! [`HttpSession`] turns request bytes into response bytes and file ranges
//! in an [`Outbox`](crate::Outbox); the drivers in `ferry-server` move them.
//!
//! ## What it serves
//! - `GET` and `HEAD` of regular files under the root, with
//!   `Content-Length`, `Content-Type` (by extension; text types with
//!   `; charset=utf-8`), `Last-Modified`, `ETag` (`"inode-size-mtime"` in
//!   hex), `Date`, `Server: ferry` and `Accept-Ranges: bytes`.
//! - Content codings: `gzip`, `br` and `zstd` by `Accept-Encoding` for
//!   compressible types, compressed off the event loop or served from
//!   precompressed siblings (`x.js.br`); never for `Range` requests; each
//!   representation with its own `ETag` and `Vary: Accept-Encoding` (see
//!   [`encoding`]). `Cache-Control` by media type ([`cache_control`]).
//! - Conditional requests: `If-Match` (strong comparison, `*`) that does
//!   not hold answers 412, before anything else is looked at;
//!   `If-None-Match` (weak comparison, `*`) and `If-Modified-Since` answer
//!   304; `If-None-Match` wins when both are present.
//! - One `Range: bytes=a-b | a- | -n` answers 206 with `Content-Range`; a
//!   range outside the file answers 416 with `Content-Range: bytes */SIZE`;
//!   several ranges, other units and invalid syntax get the whole file
//!   (200). `If-Range` (strong `ETag` or exact `Last-Modified`) is honoured.
//! - Directories: `/dir` answers 301 to `/dir/` (query kept); `/dir/`
//!   serves `index.html` if there is one, else an HTML listing
//!   (directories first, then files, names HTML-escaped and linked
//!   percent-encoded, sizes, UTC modification times, a parent link).
//!   Symlinks are listed as what they point to, and only when that is
//!   inside the root; partial uploads of the file service and names
//!   starting with `.` (unless `--hidden`) are hidden.
//! - HTTP/1.0 and 1.1. Keep-alive is the default in 1.1 and needs
//!   `Connection: keep-alive` in 1.0; `Connection: close` from the client
//!   is answered with `Connection: close` and the connection closes after
//!   the answer ([`Flow::CloseAfterFlush`](crate::Flow::CloseAfterFlush)).
//!
//! ## Writes (with `--allow-write`)
//! `PUT` (resumable with `Content-Range` after `HEAD`'s `Upload-Offset`,
//! through the file service's partials: `upload/`), WebDAV `OPTIONS`,
//! `PROPFIND` (depth 0/1), `MKCOL`, `DELETE`, `MOVE` (`dav/`), a
//! `multipart/form-data` `POST` to a directory (`upload/form.rs`), and the
//! listing page's upload, new folder and delete controls for clients who
//! may write there. `docs/HTTP_WRITES.md` describes them. On a read-only
//! server the write methods are 405.
//!
//! ## Paths
//! Origin-form targets (`/path?query`) and absolute-form
//! (`http://host/path`). The query is ignored, the path is percent-decoded
//! exactly once (a bad `%` escape is 400) and then handed to
//! [`Root::resolve`](crate::root::Root::resolve) and the root's
//! `openat2(RESOLVE_BENEATH)` accessors, the same confinement as the file
//! service: `..` above the root (also as `%2e%2e`), symlinks leading out,
//! symlink loops, FIFOs and devices are all answered 404, exactly like a
//! missing file, so nothing about the outside is revealed. A NUL byte is
//! 400.
//!
//! ## Errors
//! Every error has a one-line `text/plain` body (`404 Not Found`) and goes
//! through [`HttpError::status`] / [`HttpError::closes`]: 400 malformed
//! (also a request line that is not three parts, such as a space in the
//! target, and a missing, repeated or invalid `Host`: not RFC 3986
//! `host [":" port]`), 403 unreadable, 404, 405 with `Allow: GET, HEAD,
//! OPTIONS, PROPFIND` for CONNECT and TRACE (and, on a read-only
//! server, POST, PUT, DELETE, MKCOL and MOVE; POST anywhere but to a
//! directory), 408 (request started but not finished when
//! the driver's timer fired), 412 `If-Match` failed, 413 body over
//! [`HttpConfig::max_body`], 414 target over [`HttpConfig::max_uri`] (8 KiB;
//! or a request line over it plus 64 bytes, method and version included),
//! 431 head over [`HttpConfig::max_head`] (16 KiB, or more than 64 header
//! fields), 500
//! read error, 501 an unknown method (methods are case-sensitive) or a
//! `Transfer-Encoding` other than `chunked` alone that does not put
//! anything after `chunked` (`gzip`, `gzip, chunked`), 505 a version other
//! than 1.0/1.1. After 400, 408, 413, 414, 431, 505 and a 501 for a
//! transfer coding the stream cannot be trusted to be at a request
//! boundary, so the answer says `Connection: close` and the connection
//! closes. Requests whose body's end cannot be found for sure are 400:
//! framed two ways (`Content-Length` with `Transfer-Encoding`, conflicting
//! lengths, `Transfer-Encoding` in HTTP/1.0) or with a coding after
//! `chunked` (`chunked, gzip`, `chunked` twice: RFC 9112 section 6.3).
//!
//! Request bodies (`Content-Length` or chunked, up to `max_body`) are read
//! and discarded without buffering, so the next pipelined request is found.
//! GET/HEAD (and the WebDAV methods but `PUT`, whose body is the upload)
//! are answered before their body is skipped; other methods get
//! their 405 or 501 after it (or 413/400 if it turns out too large or malformed).
//! A request with a body and `Expect: 100-continue` is answered at once
//! and the connection closed, instead of inviting a body only to drop it.
//!
//! ## Pipelining and bounded work
//! `on_input` answers every complete request in the input, formatting
//! heads (and small bodies) straight into the outbox's byte buffer, so the
//! answers to a pipelined batch leave in one write. A pass stops after 64
//! requests, once 256 KiB of text is queued, or after 16 file ranges (each
//! holds an open descriptor), and does not start while a file range from
//! an earlier pass is unsent; the driver calls `on_input` again after
//! [`Session::on_drained`](crate::Session::on_drained). The session keeps
//! no input: a partial head stays in the driver's buffer, and a head that
//! reaches `max_head` without ending is answered 431 (414 as soon as its
//! request line is known to be too long), so the driver never needs to
//! buffer more than `max_head` bytes of input for it. These early answers
//! are the ones the complete head would get, by the same rules, so how a
//! head is split into reads never changes its answer.
//!
//! ## Small bodies are copied, large ones go by `sendfile`
//! Bodies up to [`HttpConfig::copy_threshold`] (16 KiB by default) are
//! read with one `pread` into the output buffer right behind their head;
//! larger ones are queued as [`FileRange`](crate::FileRange)s for
//! `sendfile`. For a small file, `sendfile` saves a copy of a few KiB but
//! costs the driver an extra syscall per response (`write` head +
//! `sendfile` body), and a pipelined batch of N answers becomes 2N
//! syscalls instead of N `pread`s and a single `write`; the copy of at most
//! 16 KiB costs about as much as one syscall. A throwaway micro-benchmark
//! (one loopback TCP connection drained by another thread, 200-byte head,
//! sender's wall time per response, machine shared and loaded, so +-30%):
//!
//! | body | write + sendfile | pread + write | 16 pipelined: 16 preads, 1 write |
//! |---|---|---|---|
//! | 13 B | 7.4-11.6 us | 4.4-6.6 us | 1.5-2.0 us |
//! | 4 KiB | 8.7-10.4 us | 7.9-8.6 us | 3.3-4.2 us |
//! | 16 KiB | 13-20 us | 15 us | 11-16 us |
//! | 64 KiB | 47-48 us | 40-54 us | 41-60 us |
//!
//! Copying wins clearly for small bodies, most of all pipelined; around
//! 16 KiB the two are even, and beyond it the copy only costs memory
//! bandwidth and outbox space, so 16 KiB is the default threshold.
//!
//! ## Open-file cache (a changed file may be served as it was for 1 s)
//! Each event loop or worker thread keeps (in a [`FileCache`] its driver
//! owns and hands to the sessions it starts) the answers' ingredients for small regular files (up
//! to `copy_threshold`): metadata, `ETag`, `Last-Modified`,
//! `Content-Type` and the bytes, keyed by root and normalised path, so a
//! hot small file costs no syscall at all and a pipelined batch of 16
//! leaves with the driver's `read` and `write` only. An entry is trusted
//! for [`HttpConfig::file_cache_valid`] (1 s by default; nginx's
//! `open_file_cache_valid` is 60 s), then the next request for it reopens
//! the file and compares device, inode, size, mtime and ctime: **a file
//! changed or deleted on disk may be served as it was for up to that
//! long.** Every path still goes through `Root::resolve`, and every miss
//! through `openat2(RESOLVE_BENEATH)`; 404s, escapes, directories and
//! errors are never cached, so confinement is exactly as strict. At most
//! 1024 entries and 16 MiB per thread ([`HttpConfig::file_cache_entries`],
//! [`HttpConfig::file_cache_bytes`]); the cache is cleared when an insertion
//! would pass either. Larger files are opened per request (their
//! descriptors go to `sendfile`). Details in `file_cache.rs`;
//! [`FileCache::stats`] shows a cache's counters.
//!
//! ## Timeouts and time
//! Timers are the connection core's ([`crate::conn`]). [`Session::in_request`](crate::Session::in_request)
//! tells it which one applies: true while a request head is partly
//! received or a body is being skipped (use the header-read timeout, 10 s
//! by default, against slowloris), false between requests (use the
//! keep-alive idle timeout, 60 s). When it fires, `on_idle_timeout` queues
//! a 408 if a request was under way and asks to close. The `Date` header
//! is the wall time the session is called with ([`Now`](crate::Now)),
//! formatted at most once a second per session.

mod archive;
mod auth;
mod body;
pub mod cache_control;
mod conditional;
mod date;
mod dav;
pub mod encoding;
mod errors;
mod file_answer;
mod file_cache;
mod listing;
mod log;
mod parse;
mod range;
mod respond;
mod session;
mod target;
mod upload;

use crate::access::Access;
use std::sync::Arc;
use std::time::Duration;

pub use cache_control::CacheControl;
pub use date::civil_from_days;
pub use encoding::{Coding, Encoding, Level};
pub use errors::{HttpError, Status};
pub use file_cache::{FileCache, FileCacheStats};
pub use session::HttpSession;

use crate::files::Partials;
use crate::root::Root;

/// Settings shared by every HTTP connection of a server (wrap it in an
/// `Arc` once; each [`HttpSession`] holds a clone of that `Arc`).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The served directory.
    pub root: Arc<Root>,
    /// Largest request head (request line and header fields) in bytes;
    /// larger is answered 431. Default 16 KiB: room for a request line
    /// with the longest target and a browser's header fields.
    pub max_head: usize,
    /// Longest request target in bytes; longer is answered 414, and so is
    /// a request line longer than this plus 64 bytes (the method, version
    /// and spaces take at most 19 of them). Default 8 KiB: RFC 9112
    /// section 3 recommends accepting request lines of at least 8,000
    /// octets.
    pub max_uri: usize,
    /// Largest request body read and discarded; larger is answered 413.
    /// Default 1 MiB.
    pub max_body: u64,
    /// Bodies up to this many bytes are copied into the output buffer
    /// instead of sent with `sendfile` (see the module docs). Default
    /// 16 KiB; 0 sends every body with `sendfile`.
    pub copy_threshold: u64,
    /// How long a cached small file is trusted before the next request
    /// for it checks the disk again (see "Open-file cache" in the module
    /// docs): a file changed on disk may be served as it was for this
    /// long. Default 1 s; zero checks on every request.
    pub file_cache_valid: Duration,
    /// Most files kept in each thread's open-file cache. Default 1024; 0
    /// turns the cache off.
    pub file_cache_entries: usize,
    /// Most body bytes kept in each thread's open-file cache. Default
    /// 16 MiB.
    pub file_cache_bytes: usize,
    /// Who may read and list what (accounts, rules); everyone by default.
    pub access: Arc<Access>,
    /// Content codings (`Accept-Encoding`) and their caches; on by default.
    pub encoding: Arc<Encoding>,
    /// `Cache-Control` by media type; `*=no-cache` by default.
    pub cache_control: CacheControl,
    /// Where uploads in progress are kept (the file service's, shared:
    /// one home and TTL); `None` on a read-only server, which answers the
    /// write methods 405. See `upload/` and `dav/`.
    pub partials: Option<Arc<Partials>>,
    /// Largest file a `PUT` may create (`--max-upload`); larger is 413
    /// before a byte of the body is read. `None`: no limit but the
    /// partials' and the disk's.
    pub max_upload: Option<u64>,
}

impl HttpConfig {
    /// Default limits for serving `root`.
    pub fn new(root: Arc<Root>) -> HttpConfig {
        HttpConfig {
            root,
            max_head: 16 * 1024,
            max_uri: 8 * 1024,
            max_body: 1024 * 1024,
            copy_threshold: 16 * 1024,
            file_cache_valid: Duration::from_secs(1),
            file_cache_entries: 1024,
            file_cache_bytes: 16 * 1024 * 1024,
            access: Arc::new(Access::open(false)),
            encoding: Arc::new(Encoding::default()),
            cache_control: CacheControl::default(),
            partials: None,
            max_upload: None,
        }
    }

    /// The same settings accepting uploads and WebDAV writes into
    /// `partials` (opened by the caller, usually shared with the file
    /// service), files up to `max_upload` bytes.
    pub fn with_writes(self, partials: Arc<Partials>, max_upload: Option<u64>) -> HttpConfig {
        HttpConfig { partials: Some(partials), max_upload, ..self }
    }

    /// The same settings under `access` (accounts and rules).
    pub fn with_access(self, access: Arc<Access>) -> HttpConfig {
        HttpConfig { access, ..self }
    }
}
