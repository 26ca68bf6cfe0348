//! The request header fields that uploads and WebDAV methods act on,
//! collected by the head parser and interpreted here.

use super::super::errors::HttpError;
use super::super::parse::{parse_decimal, trim};

/// Header fields of writes, as sent (only the first of each is kept).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WriteHeaders<'a> {
    /// `Content-Range` of a resumed upload.
    pub content_range: Option<&'a [u8]>,
    /// `Repr-Digest` (RFC 9530): digests of the whole file.
    pub repr_digest: Option<&'a [u8]>,
    /// `Content-Digest` (RFC 9530): digests of this message's body.
    pub content_digest: Option<&'a [u8]>,
    /// `Destination` of a `MOVE`.
    pub destination: Option<&'a [u8]>,
    /// `Overwrite` of a `MOVE` (`T` or `F`).
    pub overwrite: Option<&'a [u8]>,
    /// `Depth` of a `PROPFIND`.
    pub depth: Option<&'a [u8]>,
    /// `Content-Type` (a multipart form's boundary).
    pub content_type: Option<&'a [u8]>,
}

impl<'a> WriteHeaders<'a> {
    /// Keeps `value` if `name` is one of the fields above.
    pub fn note(&mut self, name: &[u8], value: &'a [u8]) {
        let slot = match name.to_ascii_lowercase().as_slice() {
            b"content-range" => &mut self.content_range,
            b"repr-digest" => &mut self.repr_digest,
            b"content-digest" => &mut self.content_digest,
            b"destination" => &mut self.destination,
            b"overwrite" => &mut self.overwrite,
            b"depth" => &mut self.depth,
            b"content-type" => &mut self.content_type,
            _ => return,
        };
        slot.get_or_insert(value);
    }
}

/// `Content-Range: bytes FIRST-LAST/TOTAL` of an upload piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentRange {
    /// Offset of the body's first byte in the file.
    pub first: u64,
    /// Offset of the body's last byte.
    pub last: u64,
    /// The whole file's size.
    pub total: u64,
}

/// Parses a `Content-Range` value; anything but a satisfiable
/// `bytes a-b/n` (with `a <= b < n`) is a bad request.
pub(crate) fn content_range(value: &[u8]) -> Result<ContentRange, HttpError> {
    let bad = HttpError::BadRequest("invalid Content-Range (want bytes FIRST-LAST/TOTAL)");
    let rest = value.strip_prefix(b"bytes ").ok_or(bad)?;
    let (range, total) = split_once(rest, b'/').ok_or(bad)?;
    let (first, last) = split_once(range, b'-').ok_or(bad)?;
    let (first, last, total) = (
        parse_decimal(trim(first)).ok_or(bad)?,
        parse_decimal(trim(last)).ok_or(bad)?,
        parse_decimal(trim(total)).ok_or(bad)?,
    );
    if first > last || last >= total {
        return Err(bad);
    }
    Ok(ContentRange { first, last, total })
}

/// The SHA-256 in an RFC 9530 digest field (`sha-256=:BASE64:`, among
/// other algorithms' members), as lowercase hex. `Ok(None)` when the field
/// names no SHA-256 (other algorithms are ignored, as RFC 9530 allows).
pub(crate) fn sha256_of_field(value: &[u8]) -> Result<Option<String>, HttpError> {
    let bad = HttpError::BadRequest("invalid sha-256 digest (want sha-256=:BASE64:)");
    for member in value.split(|&b| b == b',').map(trim) {
        let Some((key, val)) = split_once(member, b'=') else { continue };
        if !trim(key).eq_ignore_ascii_case(b"sha-256") {
            continue;
        }
        let b64 = trim(val).strip_prefix(b":").and_then(|v| v.strip_suffix(b":")).ok_or(bad)?;
        let bytes = super::super::auth::decode_base64(b64).ok_or(bad)?;
        if bytes.len() != 32 {
            return Err(bad);
        }
        return Ok(Some(bytes.iter().map(|b| format!("{b:02x}")).collect()));
    }
    Ok(None)
}

/// `Depth` of a `PROPFIND`: 0, 1, or (absent or `infinity`) infinite.
pub(crate) fn depth(value: Option<&[u8]>) -> Option<u8> {
    match value.map(trim) {
        Some(b"0") => Some(0),
        Some(b"1") => Some(1),
        _ => None,
    }
}

/// `Overwrite: F` forbids replacing an existing destination.
pub(crate) fn may_overwrite(value: Option<&[u8]>) -> bool {
    !value.map(trim).is_some_and(|v| v.eq_ignore_ascii_case(b"F"))
}

fn split_once(bytes: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == sep)?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(content_range(b"bytes 5-9/10"), Ok(ContentRange { first: 5, last: 9, total: 10 }));
        assert_eq!(content_range(b"bytes 0-0/1"), Ok(ContentRange { first: 0, last: 0, total: 1 }));
        for bad in [&b"bytes 5-4/10"[..], b"bytes 5-10/10", b"bytes */10", b"5-9/10", b"bytes 5-9/x", b"bytes 5-/10"] {
            assert!(content_range(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn digests() {
        // printf hello | sha256sum; as base64 of the raw bytes.
        let field = b"sha-512=:AAAA:, sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:";
        let hex = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert_eq!(sha256_of_field(field), Ok(Some(hex.to_string())));
        assert_eq!(sha256_of_field(b"sha-512=:AAAA:"), Ok(None));
        assert!(sha256_of_field(b"sha-256=:AAAA:").is_err());
        assert!(sha256_of_field(b"sha-256=LPJN").is_err());
    }

    #[test]
    fn depth_and_overwrite() {
        assert_eq!(depth(Some(b"0")), Some(0));
        assert_eq!(depth(Some(b" 1 ")), Some(1));
        assert_eq!(depth(Some(b"infinity")), None);
        assert_eq!(depth(None), None);
        assert!(!may_overwrite(Some(b"F")));
        assert!(may_overwrite(Some(b"T")));
        assert!(may_overwrite(None));
    }
}
