//! Request targets: origin-form (`/path?query`) or absolute-form
//! (`http://host/path`), percent-decoded exactly once; and the reverse,
//! percent-encoding names for links and redirects.

use std::borrow::Cow;

use super::errors::HttpError;

/// The parts of a request target a file server uses.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    /// The percent-decoded path, starting with `/`.
    pub path: Cow<'a, [u8]>,
    /// The raw query string after `?` (kept only for redirects).
    pub query: Option<&'a [u8]>,
}

impl Target<'_> {
    /// True when the path names a directory explicitly (`/dir/`).
    pub fn trailing_slash(&self) -> bool {
        self.path.ends_with(b"/")
    }
}

/// Splits and decodes a request target.
pub(crate) fn parse(raw: &[u8]) -> Result<Target<'_>, HttpError> {
    let origin = if raw.starts_with(b"/") {
        raw
    } else if let Some(after_scheme) = strip_scheme(raw) {
        // Absolute-form: drop the authority; an empty path is `/`.
        match after_scheme.iter().position(|&b| b == b'/' || b == b'?') {
            Some(i) if after_scheme[i] == b'/' => &after_scheme[i..],
            _ => b"/",
        }
    } else {
        return Err(HttpError::BadRequest("request target must be a path"));
    };
    let (path, query) = match origin.iter().position(|&b| b == b'?') {
        Some(i) => (&origin[..i], Some(&origin[i + 1..])),
        None => (origin, None),
    };
    Ok(Target { path: percent_decode(path)?, query })
}

fn strip_scheme(raw: &[u8]) -> Option<&[u8]> {
    ["http://", "https://"].iter().find_map(|scheme| {
        let head = raw.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme.as_bytes()).then(|| &raw[scheme.len()..])
    })
}

/// Decodes `%XX` escapes once. A `%` not followed by two hex digits is a
/// malformed request.
pub(crate) fn percent_decode(raw: &[u8]) -> Result<Cow<'_, [u8]>, HttpError> {
    if !raw.contains(&b'%') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw.get(i + 1..i + 3).ok_or(HttpError::BadRequest("bad percent-encoding"))?;
            let (Some(hi), Some(lo)) = (hex_value(hex[0]), hex_value(hex[1])) else {
                return Err(HttpError::BadRequest("bad percent-encoding"));
            };
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Ok(Cow::Owned(out))
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Appends `name` percent-encoded so that it is one path segment of a URL:
/// everything but unreserved characters (`A-Z a-z 0-9 - . _ ~`) is escaped,
/// including `/`, `:` (a first segment `a:b` would read as a scheme), `?`
/// and `#`.
pub(crate) fn push_encoded_segment(out: &mut Vec<u8>, name: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in name {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(raw: &str) -> Result<Vec<u8>, HttpError> {
        parse(raw.as_bytes()).map(|t| t.path.into_owned())
    }

    #[test]
    fn forms_and_queries() {
        assert_eq!(path("/a/b.txt").unwrap(), b"/a/b.txt");
        assert_eq!(parse(b"/a?x=1?y").unwrap().query, Some(&b"x=1?y"[..]));
        assert_eq!(path("http://example.com/a%20b?q").unwrap(), b"/a b");
        assert_eq!(path("HTTP://example.com").unwrap(), b"/");
        assert_eq!(path("http://example.com?q").unwrap(), b"/");
        assert!(path("*").is_err());
        assert!(path("example.com/a").is_err());
    }

    #[test]
    fn decodes_once() {
        assert_eq!(path("/%2e%2e/x").unwrap(), b"/../x");
        assert_eq!(path("/%252e").unwrap(), b"/%2e", "decoded exactly once");
        assert_eq!(path("/a+b%2Fc").unwrap(), b"/a+b/c");
        assert_eq!(path("/%00").unwrap(), b"/\0");
        assert!(path("/%").is_err());
        assert!(path("/%4").is_err());
        assert!(path("/%zz").is_err());
    }

    #[test]
    fn encodes_segments() {
        let mut out = Vec::new();
        push_encoded_segment(&mut out, "a b<&\"é:/?#%.txt".as_bytes());
        assert_eq!(out, b"a%20b%3C%26%22%C3%A9%3A%2F%3F%23%25.txt");
    }
}
