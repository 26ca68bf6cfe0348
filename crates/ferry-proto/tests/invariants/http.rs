//! The HTTP session fed arbitrary request streams.
//!
//! Input: byte 0 picks small limits (odd) or the defaults, bytes 1-4 a
//! [`Split`], byte 5 a read window (512 + 64 x byte), the rest the
//! stream: a byte below 0x80 stands for itself, one from 0x80 up for a
//! piece of a plausible request ([`TOKENS`]).
//!
//! Invariants:
//! - the output and the end are the same whether the stream arrives whole
//!   or cut into pieces, and whether the client reads it all at once or a
//!   window at a time while the pipeline waits (split independence);
//! - the session never queues more than [`MAX_QUEUED`] bytes, in one pass
//!   however much input it is handed, or over a connection whose client
//!   does not read (bounded queue);
//! - the output is a sequence of complete, well-formed responses, and one
//!   that says `Connection: close` is the last, on a connection that
//!   closes; after a close the connection sends and the session queues
//!   nothing more (nothing after a close);
//! - no answer holds anything from outside the served root.

use super::drive::{self, End, Outcome};
use super::source::{Source, Split, repeat_to};
use super::tree::Tree;

/// The session stops a pass once 256 KiB of text is queued
/// (`MAX_QUEUED_TEXT` in `src/http/session.rs`); one more answer may
/// follow, at most a 16 KiB copied body with its head or a redirect
/// echoing a 4 KiB target percent-encoded (12 KiB) and its query.
pub const MAX_QUEUED: usize = 256 * 1024 + 24 * 1024;

/// A request sent after a close, which must get no answer.
pub const PROBE: &[u8] = b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n";

/// Pieces of requests the stream is built from.
pub const TOKENS: &[&[u8]] = &[
    b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    b"HEAD /sub/ HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /edge.bin HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /hello.txt HTTP/1.0\r\n\r\n",
    b"GET ",
    b"HEAD ",
    b"POST ",
    b"OPTIONS ",
    b"BREW ",
    b"get ",
    b" HTTP/1.1\r\n",
    b" HTTP/1.0\r\n",
    b" HTTP/2.0\r\n",
    b"Host: t\r\n",
    b"Host: a b\r\n",
    b"Connection: close\r\n",
    b"Connection: keep-alive\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Transfer-Encoding: chunked, gzip\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: 100\r\n",
    b"Expect: 100-continue\r\n",
    b"Range: bytes=",
    b"Range: bytes=2-5\r\n",
    b"Range: bytes=-3\r\n",
    b"If-None-Match: *\r\n",
    b"If-Match: \"x\"\r\n",
    b"If-Range: \"x\"\r\n",
    b"If-Modified-Since: Tue, 01 Dec 2026 00:00:00 GMT\r\n",
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"/",
    b"/hello.txt",
    b"/sub",
    b"/sub/",
    b"/site/",
    b"/in/file.txt",
    b"/edge.bin",
    b"/big.bin",
    b"/empty.txt",
    b"/out/",
    b"/up",
    b"/abs",
    b"/absdir/",
    b"/proc/",
    b"/loop",
    b"/sub/upup",
    b"/sub/deeper/top/",
    b"/..",
    b"/%2e%2e/secret.txt",
    b"%2f",
    b"%",
    b"%00",
    b"?q=1",
    b"http://h",
    b"5\r\nhello\r\n",
    b"0\r\n\r\n",
    b"3;x=y\r\nabc\r\n",
    b"0-",
    b"-",
    b",",
    b"\xff",
];

/// The stream the rest of `src` stands for.
pub fn decode_stream(src: &mut Source<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    while !src.is_empty() {
        match src.byte() {
            b @ 0..0x80 => out.push(b),
            b => out.extend_from_slice(TOKENS[usize::from(b - 0x80) % TOKENS.len()]),
        }
    }
    out
}

/// Every invariant of the module on one input.
pub fn check(data: &[u8]) {
    let mut src = Source::new(data);
    let small = src.flag();
    let split = Split::decode(&mut src);
    let window = 512 + 64 * usize::from(src.byte());
    let stream = decode_stream(&mut src);
    let tree = Tree::new("http");
    check_stream(&tree, small, &stream, &split);
    let flood = repeat_to(&stream, 4 * 1024, 512);
    check_undrained(&tree, small, &flood, window);
}

/// Runs `stream` whole and cut by `split`, checks the answers, and
/// returns what the whole run gave.
pub fn check_stream(tree: &Tree, small: bool, stream: &[u8], split: &Split) -> Outcome {
    let mut session = tree.http_session(small);
    let whole = drive::run(&mut session, &[stream], MAX_QUEUED, PROBE);
    if whole.end != End::Open {
        drive::assert_silent_after_close(&mut session, PROBE);
    }
    let mut session = tree.http_session(small);
    let cut = drive::run(&mut session, &split.pieces(stream), MAX_QUEUED, PROBE);
    assert!(
        cut == whole,
        "the answers depend on how the input was split ({split:?}):\nwhole ({:?}): {}\ncut ({:?}): {}",
        whole.end,
        whole.text(),
        cut.end,
        cut.text()
    );
    check_responses(&whole);
    tree.assert_not_revealed(&whole.received, stream);
    whole
}

/// A client that sends all of `flood` and reads slowly gets the same
/// answers as one that reads at once, and the queue stays bounded, also
/// when one pass is handed all of it.
pub fn check_undrained(tree: &Tree, small: bool, flood: &[u8], window: usize) {
    let mut session = tree.http_session(small);
    drive::assert_one_pass_bounded(&mut session, flood, MAX_QUEUED);
    let mut session = tree.http_session(small);
    let fast = drive::run(&mut session, &[flood], MAX_QUEUED, &[]);
    let mut session = tree.http_session(small);
    let slow = drive::run_undrained(&mut session, flood, MAX_QUEUED, window);
    assert!(
        slow == fast,
        "a slow reader got other answers (window {window}): {} bytes {:?} instead of {} bytes {:?}",
        slow.received.len(),
        slow.end,
        fast.received.len(),
        fast.end
    );
}

/// One response as sent.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }
}

/// Splits output into responses, failing on anything that is not a
/// complete response. An answer to HEAD is recognised by what follows its
/// head: nothing, or the next response (no served body starts like one).
pub fn responses(mut bytes: &[u8]) -> Vec<Resp> {
    let mut all = Vec::new();
    while !bytes.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(bytes) {
            Ok(httparse::Status::Complete(len)) => len,
            other => panic!("not a complete response head ({other:?}): {}", String::from_utf8_lossy(bytes)),
        };
        assert_eq!(resp.version, Some(1), "answers are HTTP/1.1");
        let status = resp.code.unwrap_or(0);
        let headers: Vec<(String, Vec<u8>)> =
            resp.headers.iter().map(|h| (h.name.to_string(), h.value.to_vec())).collect();
        let length = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("Content-Length")).map(|(_, v)| {
            std::str::from_utf8(v).ok().and_then(|v| v.parse::<usize>().ok()).expect("a numeric Content-Length")
        });
        let rest = &bytes[len..];
        let body_len = match length {
            _ if status == 304 => 0,
            None => panic!("a {status} without Content-Length"),
            Some(n) if n > 0 && (rest.is_empty() || rest.starts_with(b"HTTP/1.1 ")) => 0,
            Some(n) => n,
        };
        assert!(rest.len() >= body_len, "a body shorter than its Content-Length: {}", String::from_utf8_lossy(bytes));
        all.push(Resp { status, headers, body: rest[..body_len].to_vec() });
        bytes = &rest[body_len..];
    }
    all
}

/// The output is well-formed and a `Connection: close` answer is the last
/// one, on a connection that closes.
pub fn check_responses(run: &Outcome) {
    let all = responses(&run.received);
    for (i, resp) in all.iter().enumerate() {
        if resp.header("Connection").is_some_and(|v| v.eq_ignore_ascii_case(b"close")) {
            assert_eq!(i + 1, all.len(), "an answer after `Connection: close`: {}", run.text());
            assert_ne!(run.end, End::Open, "`Connection: close` said, connection kept open: {}", run.text());
        }
    }
}
