//! Validators and conditional requests: the `ETag` of a file, and whether
//! `If-Match`, `If-None-Match`, `If-Modified-Since` and `If-Range` hold.

use std::fmt::Write as _;

use super::date;
use super::parse::{Request, trim};
use crate::root::Meta;

/// An entity tag formatted on the stack: a file's is strong,
/// `"INODE-SIZE-MTIME"` in hex, and changes whenever the file is replaced
/// (new inode), resized or touched; an on-the-fly compressed
/// representation's is weak with the coding appended ([`Etag::encoded`]).
#[derive(Clone, Copy)]
pub(crate) struct Etag {
    buf: [u8; 64],
    len: usize,
}

impl Etag {
    /// The tag of a file with this metadata.
    pub fn of(meta: &Meta) -> Etag {
        let mut tag = Etag { buf: [0; 64], len: 0 };
        // Cannot fail: 2 quotes, 2 dashes and 3 x 16 hex digits fit in 64.
        let _ = write!(tag, "\"{:x}-{:x}-{:x}\"", meta.ino, meta.size, meta.mtime as u64);
        tag
    }

    /// The tag as sent, quotes included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The weak tag of this (strong) tag's representation in another
    /// content coding: `W/"INODE-SIZE-MTIME-CODING"`. Weak because another
    /// library version or level makes equivalent, not identical, bytes.
    pub fn encoded(&self, coding: &str) -> Etag {
        let inner = &self.as_bytes()[1..self.len - 1];
        let mut tag = Etag { buf: [0; 64], len: 0 };
        // Cannot fail: a file's tag is at most 52 bytes, plus `W/`, a dash
        // and a coding of at most 4.
        let _ = write!(tag, "W/\"{}-{coding}\"", String::from_utf8_lossy(inner));
        tag
    }

    /// True for a weak tag, which strong comparison never matches.
    pub fn is_weak(&self) -> bool {
        self.as_bytes().starts_with(b"W/")
    }
}

impl std::fmt::Write for Etag {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// True when the client's copy is current and a 304 answers the request.
/// `If-None-Match` wins over `If-Modified-Since` when both are present
/// (RFC 9110 section 13.2.2).
pub(crate) fn not_modified(req: &Request<'_>, etag: &Etag, mtime: i64) -> bool {
    if let Some(list) = req.if_none_match {
        let list = trim(list);
        return list == b"*" || list.split(|&b| b == b',').map(trim).any(|t| weak_eq(t, etag.as_bytes()));
    }
    match req.if_modified_since.and_then(date::parse) {
        Some(since) => mtime <= since,
        None => false,
    }
}

/// False when `If-Match` is present and names neither `*` nor the current
/// tag by strong comparison (a weak tag never matches): the answer is 412
/// (RFC 9110 section 13.1.1). Only called for an existing file.
pub(crate) fn if_match_holds(req: &Request<'_>, etag: &Etag) -> bool {
    let Some(list) = req.if_match.map(trim) else {
        return true;
    };
    list == b"*" || (!etag.is_weak() && list.split(|&b| b == b',').map(trim).any(|t| t == etag.as_bytes()))
}

/// True when a `Range` should be honoured given the request's `If-Range`
/// (absent, or naming the current version: the same strong tag, or
/// exactly the file's `Last-Modified` date).
pub(crate) fn if_range_holds(req: &Request<'_>, etag: &Etag, mtime: i64) -> bool {
    let Some(value) = req.if_range.map(trim) else {
        return true;
    };
    if value.starts_with(b"\"") {
        return !etag.is_weak() && value == etag.as_bytes();
    }
    if value.starts_with(b"W/") {
        return false;
    }
    date::parse(value) == Some(mtime)
}

/// Weak comparison: tags equal once any `W/` prefix is dropped (from
/// either side).
fn weak_eq(theirs: &[u8], ours: &[u8]) -> bool {
    theirs.strip_prefix(b"W/").unwrap_or(theirs) == ours.strip_prefix(b"W/").unwrap_or(ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root::Kind;

    #[test]
    fn etag_format() {
        let meta = Meta { kind: Kind::File, size: 13, mtime: 0x5f00_0000, mtime_nsec: 0, ino: 0xabc };
        assert_eq!(Etag::of(&meta).as_bytes(), b"\"abc-d-5f000000\"");
        let meta = Meta { kind: Kind::File, size: u64::MAX, mtime: -1, mtime_nsec: 0, ino: u64::MAX };
        assert_eq!(Etag::of(&meta).as_bytes().len(), 2 + 2 + 3 * 16);
    }

    #[test]
    fn weak_comparison() {
        assert!(weak_eq(b"W/\"a\"", b"\"a\""));
        assert!(weak_eq(b"\"a\"", b"\"a\""));
        assert!(!weak_eq(b"\"b\"", b"\"a\""));
        assert!(weak_eq(b"W/\"a\"", b"W/\"a\""));
        assert!(weak_eq(b"\"a\"", b"W/\"a\""));
    }

    #[test]
    fn encoded_tags_are_weak_and_distinct() {
        let meta = Meta { kind: Kind::File, size: 13, mtime: 0x5f00_0000, mtime_nsec: 0, ino: 0xabc };
        let tag = Etag::of(&meta);
        assert!(!tag.is_weak());
        assert_eq!(tag.encoded("gzip").as_bytes(), b"W/\"abc-d-5f000000-gzip\"");
        assert_ne!(tag.encoded("br").as_bytes(), tag.encoded("zstd").as_bytes());
        let meta = Meta { kind: Kind::File, size: u64::MAX, mtime: -1, mtime_nsec: 0, ino: u64::MAX };
        let longest = Etag::of(&meta).encoded("zstd");
        assert_eq!(longest.as_bytes().len(), 2 + 52 + 5, "fits, nothing cut");
        assert!(longest.as_bytes().ends_with(b"-zstd\""));
    }
}
