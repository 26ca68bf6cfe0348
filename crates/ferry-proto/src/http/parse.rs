//! Request heads: found incrementally, parsed by `httparse`, and reduced to
//! the few fields a static-file server acts on.

use std::mem::MaybeUninit;

use super::HttpConfig;
pub(crate) use super::dav::headers::WriteHeaders;
use super::errors::HttpError;

mod fields;

use self::fields::{TransferEncoding, valid_host};
pub(crate) use self::fields::{parse_decimal, trim};

/// Most header fields accepted in one request (more is answered 431).
const MAX_HEADERS: usize = 64;

/// Bytes a request line may hold besides its target (method, version,
/// spaces, CRLF): a line longer than the longest target plus this is
/// answered 414 without waiting for its end. `OPTIONS`, two spaces,
/// `HTTP/1.1` and CRLF take 19, so no request with a known method and an
/// acceptable target comes near it.
const REQUEST_LINE_SLACK: usize = 64;

/// The request method, as far as this server cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    /// An upload (with `--allow-write`; see `upload/`).
    Put,
    /// WebDAV class 1 (`dav/`): listing, creating, removing, renaming.
    Options,
    Propfind,
    Mkcol,
    Delete,
    Move,
    /// A form upload to a directory (the listing page without JavaScript).
    Post,
    /// Another method RFC 9110 section 9 defines: answered 405.
    Other,
    /// A method RFC 9110 does not define: answered 501.
    Unknown,
}

/// The protocol version of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    Http10,
    Http11,
}

/// How the request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head, borrowing from the input buffer.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub method: Method,
    pub target: &'a [u8],
    pub version: Version,
    /// `Connection: close` was sent.
    pub close: bool,
    /// `Connection: keep-alive` was sent (what keeps an HTTP/1.0 connection).
    pub keep_alive: bool,
    pub body: BodyFraming,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    pub if_match: Option<&'a [u8]>,
    pub if_none_match: Option<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
    pub range: Option<&'a [u8]>,
    pub if_range: Option<&'a [u8]>,
    /// `Authorization` (Basic or Bearer credentials).
    pub authorization: Option<&'a [u8]>,
    /// `Accept` (a listing may be JSON).
    pub accept: Option<&'a [u8]>,
    /// `Accept-Encoding` (the first one: content codings, see `encoding`).
    pub accept_encoding: Option<&'a [u8]>,
    /// The fields uploads and WebDAV methods read.
    pub write: WriteHeaders<'a>,
    /// `Referer` and `User-Agent`, for the access log.
    pub referer: Option<&'a [u8]>,
    /// See `referer`.
    pub user_agent: Option<&'a [u8]>,
}

/// The outcome of looking at the front of the input.
// A transient value on the stack, never stored: boxing the request would
// cost an allocation per request for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Head<'a> {
    /// No complete head yet.
    Partial,
    /// A request and the length of its head in bytes.
    Complete(Request<'a>, usize),
}

/// Looks for a complete request head at the front of `buf` (which starts
/// at a request line, not at blank lines) and parses it.
///
/// `seen` carries how much of the head earlier calls looked at, so a head
/// arriving one byte at a time costs linear, not quadratic, time; reset it
/// to 0 when the head is consumed.
///
/// The answer never depends on how the head was split into calls: the
/// only refusals made before a head is complete (414, 431) are the ones
/// its complete form gets first, decided by the same rules, and made only
/// once no further byte can change them.
pub(crate) fn parse_head<'a>(buf: &'a [u8], seen: &mut usize, config: &HttpConfig) -> Result<Head<'a>, HttpError> {
    let line_limit = line_limit(config);
    let Some(end) = find_head_end(buf, seen.saturating_sub(2)) else {
        // The line is judged when the buffer first holds `line_limit`
        // bytes; once it passes, more bytes cannot change that.
        let before = std::mem::replace(seen, buf.len());
        if before < line_limit && line_too_long(buf, line_limit) {
            return Err(HttpError::UriTooLong);
        }
        // The head ends after more bytes than there are now: too large.
        if buf.len() >= config.max_head {
            return Err(HttpError::HeadTooLarge);
        }
        return Ok(Head::Partial);
    };
    if line_too_long(buf, line_limit) {
        return Err(HttpError::UriTooLong);
    }
    if end > config.max_head {
        return Err(HttpError::HeadTooLarge);
    }
    let mut headers = [const { MaybeUninit::<httparse::Header<'a>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(&buf[..end], &mut headers) {
        Ok(httparse::Status::Complete(n)) if n == end => {}
        Ok(_) => return Err(HttpError::BadRequest("malformed request head")),
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(httparse::Error::HeaderName) => return Err(HttpError::BadRequest("invalid header name")),
        Err(httparse::Error::HeaderValue) => return Err(HttpError::BadRequest("invalid header value")),
        Err(httparse::Error::NewLine) => return Err(HttpError::BadRequest("invalid line ending")),
        Err(_) => return Err(HttpError::BadRequest("invalid request line")),
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HttpError::BadRequest("incomplete request line"));
    };
    if target.len() > config.max_uri {
        return Err(HttpError::UriTooLong);
    }
    let mut request = Request {
        method: match method {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "PUT" => Method::Put,
            "OPTIONS" => Method::Options,
            "PROPFIND" => Method::Propfind,
            "MKCOL" => Method::Mkcol,
            "DELETE" => Method::Delete,
            "MOVE" => Method::Move,
            "POST" => Method::Post,
            // The other methods RFC 9110 section 9.3 defines are "known"
            // and get 405 (as do the write methods on a read-only server);
            // anything else (methods are
            // case-sensitive, so `get` too) gets 501 (section 9.1).
            "CONNECT" | "TRACE" => Method::Other,
            _ => Method::Unknown,
        },
        target: target.as_bytes(),
        version: if version == 0 { Version::Http10 } else { Version::Http11 },
        close: false,
        keep_alive: false,
        body: BodyFraming::None,
        expect_continue: false,
        if_match: None,
        if_none_match: None,
        if_modified_since: None,
        range: None,
        if_range: None,
        authorization: None,
        accept: None,
        accept_encoding: None,
        write: WriteHeaders::default(),
        referer: None,
        user_agent: None,
    };
    let mut hosts = 0;
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = TransferEncoding::Absent;
    for header in req.headers.iter() {
        let name = header.name.as_bytes();
        let value = trim(header.value);
        let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
        if is("connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                request.close |= token.eq_ignore_ascii_case(b"close");
                request.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if is("content-length") {
            let n = parse_decimal(value).ok_or(HttpError::BadRequest("invalid Content-Length"))?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(HttpError::BadRequest("conflicting Content-Length headers"));
            }
            content_length = Some(n);
        } else if is("transfer-encoding") {
            for token in value.split(|&b| b == b',').map(trim) {
                transfer_encoding = transfer_encoding.then(token.eq_ignore_ascii_case(b"chunked"));
            }
        } else if is("host") {
            hosts += 1;
            if !valid_host(value) {
                return Err(HttpError::BadRequest("invalid Host"));
            }
        } else if is("expect") {
            request.expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
        } else if is("if-match") {
            request.if_match.get_or_insert(value);
        } else if is("if-none-match") {
            request.if_none_match.get_or_insert(value);
        } else if is("if-modified-since") {
            request.if_modified_since.get_or_insert(value);
        } else if is("range") {
            request.range.get_or_insert(value);
        } else if is("if-range") {
            request.if_range.get_or_insert(value);
        } else if is("authorization") {
            request.authorization.get_or_insert(value);
        } else if is("accept") {
            request.accept.get_or_insert(value);
        } else if is("accept-encoding") {
            request.accept_encoding.get_or_insert(value);
        } else if is("referer") {
            request.referer.get_or_insert(value);
        } else if is("user-agent") {
            request.user_agent.get_or_insert(value);
        } else {
            request.write.note(name, value);
        }
    }
    if request.version == Version::Http11 && hosts == 0 {
        return Err(HttpError::BadRequest("HTTP/1.1 request without Host"));
    }
    if hosts > 1 {
        return Err(HttpError::BadRequest("more than one Host header"));
    }
    request.body = match (transfer_encoding, content_length) {
        // The body's end cannot be found (RFC 9112 section 6.3).
        (TransferEncoding::ChunkedNotLast, _) => {
            return Err(HttpError::BadRequest("Transfer-Encoding with chunked not last, or twice"));
        }
        (TransferEncoding::Absent, None) => BodyFraming::None,
        (TransferEncoding::Absent, Some(n)) => BodyFraming::Length(n),
        // A request that could be framed two ways is how smuggling starts.
        (_, Some(_)) => return Err(HttpError::BadRequest("both Content-Length and Transfer-Encoding")),
        (_, None) if request.version == Version::Http10 => {
            return Err(HttpError::BadRequest("Transfer-Encoding in an HTTP/1.0 request"));
        }
        (TransferEncoding::Chunked, None) => BodyFraming::Chunked,
        (TransferEncoding::Unknown | TransferEncoding::UnknownThenChunked, None) => {
            return Err(HttpError::UnknownTransferEncoding);
        }
    };
    Ok(Head::Complete(request, end))
}

/// The longest request line accepted, its line end included: the longest
/// target plus [`REQUEST_LINE_SLACK`], and never more than a whole head
/// (so a head that reaches `max_head` without a line end is judged by its
/// line, as it would be complete).
fn line_limit(config: &HttpConfig) -> usize {
    (config.max_uri + REQUEST_LINE_SLACK).min(config.max_head)
}

/// True when the request line at the front of `buf` is known to be longer
/// than `limit` bytes (its line end included): `limit` bytes are there and
/// none of them is its LF. The same rule for a complete head and a partial
/// one, so a line is judged the same however it arrived.
fn line_too_long(buf: &[u8], limit: usize) -> bool {
    buf.len() >= limit && !buf[..limit].contains(&b'\n')
}

/// The offset just past the blank line ending a head (`\n\n` or `\n\r\n`:
/// `httparse` accepts bare LF line ends, as RFC 9112 allows), searching
/// from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = buf.get(at..)?.iter().position(|&b| b == b'\n') {
        let nl = at + i;
        match buf.get(nl + 1..nl + 3) {
            Some([b'\n', _]) => return Some(nl + 2),
            Some([b'\r', b'\n']) => return Some(nl + 3),
            None if buf.get(nl + 1) == Some(&b'\n') => return Some(nl + 2),
            _ => {}
        }
        at = nl + 1;
    }
    None
}

/// 505 when the request line is three parts ending in something shaped
/// like an HTTP version (`HTTP/2.0`, `HTTP/3`), 400 otherwise (a space in
/// the target, `GET /a b HTTP/1.1`, is a malformed line, not a version).
fn version_error(buf: &[u8]) -> HttpError {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.split(|&b| b == b' ').count() != 3 {
        return HttpError::BadRequest("invalid request line");
    }
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    let looks_like_version = version.strip_prefix(b"HTTP/").is_some_and(|v| {
        matches!(v, [d] | [d, b'.', _] if d.is_ascii_digit()) && v.iter().all(|&b| b.is_ascii_digit() || b == b'.')
    });
    if looks_like_version { HttpError::VersionNotSupported } else { HttpError::BadRequest("invalid HTTP version") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_head_end_across_calls() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nX", 0), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\n\nX", 0), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r", 0), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\n", 21), Some(24));
    }

    #[test]
    fn version_errors() {
        assert_eq!(version_error(b"GET / HTTP/2.0\r\n\r\n"), HttpError::VersionNotSupported);
        assert_eq!(version_error(b"GET / HTTP/3\r\n\r\n"), HttpError::VersionNotSupported);
        assert_eq!(version_error(b"GET / HTTX/1.1\r\n\r\n"), HttpError::BadRequest("invalid HTTP version"));
        assert_eq!(version_error(b"GET /a b HTTP/1.1\r\n\r\n"), HttpError::BadRequest("invalid request line"));
    }

    #[test]
    fn hosts() {
        for ok in [&b""[..], b"t", b"a.b:8080", b"10.0.0.1", b"[::1]", b"[::1]:443", b"%41b", b"t:"] {
            assert!(valid_host(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [&b"a b"[..], b"a/b", b"a@b", b"[::1", b"[]", b"[::1]x", b"t:8o", b"t:1:2", b"%4", b"a\x01"] {
            assert!(!valid_host(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn transfer_codings() {
        let end = |codings: &[bool]| codings.iter().fold(TransferEncoding::Absent, |te, &c| te.then(c));
        assert!(matches!(end(&[true]), TransferEncoding::Chunked));
        assert!(matches!(end(&[false, true]), TransferEncoding::UnknownThenChunked));
        assert!(matches!(end(&[false]), TransferEncoding::Unknown));
        assert!(matches!(end(&[true, false]), TransferEncoding::ChunkedNotLast));
        assert!(matches!(end(&[true, true]), TransferEncoding::ChunkedNotLast));
        assert!(matches!(end(&[false, true, false]), TransferEncoding::ChunkedNotLast));
    }

    #[test]
    fn decimal_and_trim() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
        assert_eq!(parse_decimal(b"+1"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(trim(b" \tgzip \t"), b"gzip");
        assert_eq!(trim(b"  "), b"");
    }
}
