//! Content codings: `gzip`, `br` and `zstd` answers to `Accept-Encoding`,
//! made on the fly off the event loop or served from precompressed
//! siblings (`x.js.br` next to `x.js`, as nginx's `gzip_static`).
//!
//! ## What is compressed
//! Only types that compress well and are not compressed already
//! ([`compressible`]: text, JSON, JavaScript, XML, SVG, wasm, uncompressed
//! fonts), only whole `200` answers (a `Range` request always gets the
//! identity bytes, so ranges mean the same thing on every request), and
//! on the fly only from [`Encoding::min_size`] bytes (1 KiB: below it
//! the coding's framing eats most of the gain). Every answer about a
//! compressible file says `Vary: Accept-Encoding`, including identity
//! ones and 304s, so a shared cache never hands gzip to a client that did
//! not ask for it.
//!
//! ## Which coding
//! The client's q-values first ([`negotiate`]); among equal ones the
//! server prefers zstd, then br, then gzip. On a 100 KiB JavaScript file
//! (docs/BENCHMARKS.md) zstd -3 took 0.26x the CPU of gzip -6 for 5% more
//! bytes, and brotli -5 was 5% smaller than gzip -6 at 1.7x its CPU: zstd
//! wins on CPU, br on bytes, gzip only on being taken by every client.
//! (Compressed answers are cached, so the CPU is spent once per file
//! version.) A precompressed sibling wins over any on-the-fly coding,
//! since it costs no CPU at all.
//!
//! ## Validators
//! Each representation has its own `ETag`: an on-the-fly one is the
//! file's tag with the coding appended and made weak (`W/"i-s-m-gz"`):
//! the same file compressed by another version or level of the library is
//! equivalent but not byte-identical, which is what a weak tag promises.
//! A precompressed sibling is a file whose bytes are fixed, so it keeps
//! the strong tag of that file. `If-None-Match` compares weakly, so both
//! give 304s; `If-Match`/`If-Range` compare strongly, so a weak tag never
//! satisfies them.
//!
//! ## Off the event loop, bounded
//! Compression runs as a [`Job`](crate::Job): inline under the blocking
//! models, on the jobs pool under the event loops. A file up to
//! [`WHOLE_MAX`] (1 MiB) is compressed by one job, 64 KiB of input at a
//! time, into an answer with `Content-Length`; the result is kept in a
//! cache ([`cache`]) keyed by path, inode, size, mtime, coding and level,
//! at most [`Encoding::cache_bytes`] (16 MiB) per server, so a hot file is
//! compressed once. A larger file (HTTP/1.1 only) is sent with
//! `Transfer-Encoding: chunked`, one job per 256 KiB of input, the next
//! queued only when the previous part has drained: memory per connection
//! is the encoder and one part, whatever the file's size. At most
//! [`MAX_STREAMS`] such streams run at once per server; beyond that (and
//! under HTTP/1.0) a large file goes out uncompressed by `sendfile`.

pub(crate) mod answer;
pub(crate) mod cache;
pub(crate) mod encoder;
pub(crate) mod negotiate;
pub(crate) mod siblings;
pub(crate) mod stream;

use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

/// Largest file compressed whole by one job (with `Content-Length`, and
/// cached); larger ones stream.
pub const WHOLE_MAX: u64 = 1024 * 1024;

/// Most large files compressed as streams at once per server.
pub const MAX_STREAMS: usize = 32;

/// A content coding ferry makes, in the server's order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    /// Zstandard (RFC 8878).
    Zstd = 0,
    /// Brotli (RFC 7932).
    Br = 1,
    /// gzip (RFC 1952).
    Gzip = 2,
}

impl Coding {
    /// Every coding, most preferred first.
    pub const ALL: [Coding; 3] = [Coding::Zstd, Coding::Br, Coding::Gzip];

    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Zstd => "zstd",
            Coding::Br => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// The extension of a precompressed sibling (`x.js.zst`).
    pub fn extension(self) -> &'static str {
        match self {
            Coding::Zstd => ".zst",
            Coding::Br => ".br",
            Coding::Gzip => ".gz",
        }
    }

    /// The coding an `Accept-Encoding` token names (case-insensitive;
    /// `x-gzip` is gzip, RFC 9110 section 8.4.1.3).
    fn from_token(token: &[u8]) -> Option<Coding> {
        Coding::ALL
            .into_iter()
            .find(|c| token.eq_ignore_ascii_case(c.token().as_bytes()))
            .or_else(|| (token.eq_ignore_ascii_case(b"x-gzip")).then_some(Coding::Gzip))
    }
}

/// How hard on-the-fly compression works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// gzip 1, brotli 1, zstd 1: least CPU.
    Fast,
    /// gzip 6, brotli 5, zstd 3: the usual choice for dynamic compression.
    Default,
    /// gzip 9, brotli 9, zstd 12: smallest, several times the CPU.
    Best,
}

impl Level {
    /// (gzip level, brotli quality, zstd level).
    fn params(self) -> (u32, u32, i32) {
        match self {
            Level::Fast => (1, 1, 1),
            Level::Default => (6, 5, 3),
            Level::Best => (9, 9, 12),
        }
    }
}

/// A server's content-coding settings and its caches; shared by all its
/// connections (in [`HttpConfig::encoding`](super::HttpConfig::encoding)).
#[derive(Debug)]
pub struct Encoding {
    /// On-the-fly compression and its level; `None` turns it off.
    pub compress: Option<Level>,
    /// Smallest file compressed on the fly.
    pub min_size: u64,
    /// Serve precompressed siblings (`x.js.br`, `.zst`, `.gz`).
    pub precompressed: bool,
    /// Most bytes of compressed answers kept (0: none).
    pub cache_bytes: usize,
    pub(crate) results: Mutex<cache::Results>,
    pub(crate) siblings: Mutex<siblings::Known>,
    pub(crate) streams: AtomicUsize,
}

impl Encoding {
    /// Settings with `compress` (None: off) and precompressed siblings on
    /// or off; the rest default.
    pub fn new(compress: Option<Level>, precompressed: bool) -> Encoding {
        Encoding {
            compress,
            min_size: 1024,
            precompressed,
            cache_bytes: 16 * 1024 * 1024,
            results: Mutex::default(),
            siblings: Mutex::default(),
            streams: AtomicUsize::new(0),
        }
    }
}

impl Default for Encoding {
    /// On the fly at [`Level::Default`], precompressed siblings served.
    fn default() -> Encoding {
        Encoding::new(Some(Level::Default), true)
    }
}

/// True for media types worth compressing: text and text-like formats
/// (JSON, JavaScript, XML and their `+json`/`+xml` kin, SVG), WebAssembly
/// (compiled code shrinks to about a third) and uncompressed fonts. Images,
/// audio, video, archives and `woff`/`woff2` are compressed already.
pub(crate) fn compressible(mime: &str) -> bool {
    mime.starts_with("text/")
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
        || matches!(
            mime,
            "application/json"
                | "application/javascript"
                | "application/x-javascript"
                | "application/ecmascript"
                | "application/xml"
                | "application/wasm"
                | "application/x-sh"
                | "application/toml"
                | "application/yaml"
                | "application/x-yaml"
                | "image/svg+xml"
                | "image/x-icon"
                | "image/vnd.microsoft.icon"
                | "image/bmp"
                | "font/ttf"
                | "font/otf"
                | "application/x-font-ttf"
                | "application/vnd.ms-fontobject"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_types() {
        for yes in ["text/html", "text/css", "application/json", "application/javascript", "image/svg+xml"] {
            assert!(compressible(yes), "{yes}");
        }
        for yes in ["application/wasm", "application/ld+json", "application/atom+xml", "font/ttf"] {
            assert!(compressible(yes), "{yes}");
        }
        for no in ["image/png", "image/jpeg", "application/zip", "application/gzip", "video/mp4", "font/woff2"] {
            assert!(!compressible(no), "{no}");
        }
        assert!(!compressible("application/octet-stream"));
    }

    #[test]
    fn tokens() {
        assert_eq!(Coding::from_token(b"GZip"), Some(Coding::Gzip));
        assert_eq!(Coding::from_token(b"x-gzip"), Some(Coding::Gzip));
        assert_eq!(Coding::from_token(b"zstd"), Some(Coding::Zstd));
        assert_eq!(Coding::from_token(b"deflate"), None);
    }
}
