//! Writing response heads straight into the outbox's byte buffer: no
//! intermediate strings, no per-response allocation once the buffer has
//! grown to its working size.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::date::HttpDate;
use super::errors::{HttpError, Status};
use super::target::{Target, push_encoded_segment};
use crate::Outbox;
use crate::root::VirtualPath;

/// Whether the connection stays open after a response, and how that is
/// said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Persist {
    /// HTTP/1.1 default: nothing to say.
    KeepAlive,
    /// HTTP/1.0 with `Connection: keep-alive`: say it back.
    KeepAlive10,
    /// `Connection: close`, then close.
    Close,
}

/// Starts a response: status line, `Server` and `Date`.
pub(crate) fn start(buf: &mut Vec<u8>, status: Status, date: &HttpDate) {
    buf.extend_from_slice(b"HTTP/1.1 ");
    push_u64(buf, u64::from(status.0));
    buf.push(b' ');
    buf.extend_from_slice(status.reason().as_bytes());
    buf.extend_from_slice(b"\r\nServer: ferry\r\nDate: ");
    buf.extend_from_slice(date);
    buf.extend_from_slice(b"\r\n");
}

/// One header line.
pub(crate) fn header(buf: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    buf.extend_from_slice(name);
    buf.extend_from_slice(b": ");
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

/// `Content-Length: n`.
pub(crate) fn content_length(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(b"Content-Length: ");
    push_u64(buf, n);
    buf.extend_from_slice(b"\r\n");
}

/// `Content-Disposition: attachment` naming `filename`: a quoted ASCII
/// form (other bytes, quotes and backslashes as `_`) for old clients and
/// the exact name percent-encoded as UTF-8 (RFC 6266 / 8187) for the rest.
pub(crate) fn content_disposition(buf: &mut Vec<u8>, filename: &[u8]) {
    buf.extend_from_slice(b"Content-Disposition: attachment; filename=\"");
    buf.extend(filename.iter().map(|&b| if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' { b } else { b'_' }));
    buf.extend_from_slice(b"\"; filename*=UTF-8''");
    push_encoded_segment(buf, filename);
    buf.extend_from_slice(b"\r\n");
}

/// A `Content-Type` value, guessed from a file name's extension once and
/// kept (by the open-file cache) for every answer about that file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentType {
    mime: &'static str,
    /// Text types say they are UTF-8 (what editors write today, and what
    /// browsers otherwise guess wrong).
    utf8: bool,
}

impl ContentType {
    /// The type of a file called `name`.
    pub fn of(name: &OsStr) -> ContentType {
        let mime = Path::new(name)
            .extension()
            .and_then(OsStr::to_str)
            .and_then(|ext| mime_guess::from_ext(ext).first_raw())
            .unwrap_or("application/octet-stream");
        let utf8 = mime.starts_with("text/")
            || matches!(mime, "application/javascript" | "application/json" | "application/xml" | "image/svg+xml");
        ContentType { mime, utf8 }
    }

    /// The media type, without parameters.
    pub fn mime(&self) -> &'static str {
        self.mime
    }
}

/// The `Content-Type` header line.
pub(crate) fn content_type(buf: &mut Vec<u8>, ty: ContentType) {
    buf.extend_from_slice(b"Content-Type: ");
    buf.extend_from_slice(ty.mime.as_bytes());
    if ty.utf8 {
        buf.extend_from_slice(b"; charset=utf-8");
    }
    buf.extend_from_slice(b"\r\n");
}

/// Ends the head: the `Connection` header when one is needed, and the
/// blank line.
pub(crate) fn finish(buf: &mut Vec<u8>, persist: Persist) {
    match persist {
        Persist::KeepAlive => {}
        Persist::KeepAlive10 => buf.extend_from_slice(b"Connection: keep-alive\r\n"),
        Persist::Close => buf.extend_from_slice(b"Connection: close\r\n"),
    }
    buf.extend_from_slice(b"\r\n");
}

/// A complete error response with a one-line `text/plain` body (none for
/// HEAD). The body says only the status: nothing from the request is
/// echoed back.
pub(crate) fn error(buf: &mut Vec<u8>, err: HttpError, persist: Persist, head_only: bool, date: &HttpDate) {
    let status = err.status();
    let persist = if err.closes() { Persist::Close } else { persist };
    start(buf, status, date);
    header(buf, b"Content-Type", b"text/plain; charset=utf-8");
    // "404 Not Found\n"
    let body_len = 3 + 1 + status.reason().len() + 1;
    content_length(buf, body_len as u64);
    if err == HttpError::MethodNotAllowed {
        header(buf, b"Allow", super::dav::ALLOW_READ_ONLY);
    }
    if err == HttpError::Unauthorized {
        header(buf, b"WWW-Authenticate", b"Basic realm=\"ferry\", charset=\"UTF-8\"");
    }
    finish(buf, persist);
    if !head_only {
        push_u64(buf, u64::from(status.0));
        buf.push(b' ');
        buf.extend_from_slice(status.reason().as_bytes());
        buf.push(b'\n');
    }
}

/// Appends a number in decimal without going through `fmt`.
pub(crate) fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
}

/// 301 from `/dir` to `/dir/`. The location is rebuilt from the normalised
/// path (so `//evil.example` can never become a scheme-relative URL),
/// keeping the query string.
pub(crate) fn redirect_to_dir(
    path: &VirtualPath,
    target: &Target<'_>,
    head_only: bool,
    persist: Persist,
    date: &HttpDate,
    out: &mut Outbox,
) {
    let buf = out.text();
    start(buf, Status::MOVED_PERMANENTLY, date);
    buf.extend_from_slice(b"Location: ");
    for name in path.names() {
        buf.push(b'/');
        push_encoded_segment(buf, name.as_bytes());
    }
    buf.push(b'/');
    if let Some(query) = target.query {
        buf.push(b'?');
        buf.extend_from_slice(query);
    }
    buf.extend_from_slice(b"\r\n");
    header(buf, b"Content-Type", b"text/plain; charset=utf-8");
    let body = b"301 Moved Permanently\n";
    content_length(buf, body.len() as u64);
    finish(buf, persist);
    if !head_only {
        buf.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_types() {
        let mut buf = Vec::new();
        for n in [0, 7, 10, 12345, u64::MAX] {
            buf.clear();
            push_u64(&mut buf, n);
            assert_eq!(buf, n.to_string().as_bytes());
        }
        let ty = |name: &str| {
            let mut buf = Vec::new();
            content_type(&mut buf, ContentType::of(OsStr::new(name)));
            String::from_utf8(buf).unwrap()
        };
        assert_eq!(ty("a.html"), "Content-Type: text/html; charset=utf-8\r\n");
        assert_eq!(ty("a.PNG"), "Content-Type: image/png\r\n");
        assert_eq!(ty("README"), "Content-Type: application/octet-stream\r\n");
    }
}
