//! The HTTP session's parsers for ranges, request targets and chunked
//! bodies. They are private to the crate, so they are driven through the
//! session, whose answers show what they decided; every request also goes
//! through [`http::check_stream`] (split independence, well-formed
//! answers, nothing after a close, nothing from outside the root).
//!
//! Input: byte 0 picks the parser, bytes 1-4 a [`Split`], the rest what
//! to send (see [`range`], [`target`], [`chunked`]).

use super::http::{check_stream, responses};
use super::source::{Source, Split};
use super::tree::{Tree, served_files};

/// Every invariant of the module on one input.
pub fn check(data: &[u8]) {
    let mut src = Source::new(data);
    let which = src.byte();
    let split = Split::decode(&mut src);
    let tree = Tree::new("parsers");
    match which % 3 {
        0 => range(&tree, &split, &mut src),
        1 => target(&tree, &split, &mut src),
        _ => chunked(&tree, &split, &mut src),
    }
}

/// What a served file holds.
fn content(path: &str) -> Vec<u8> {
    served_files().into_iter().find(|(p, _)| *p == path).map(|(_, c)| c).expect("a served file")
}

/// Pieces of `Range` values.
const RANGE_TOKENS: &[&str] = &[
    "bytes=",
    "BYTES=",
    "bytes =",
    "items=",
    "0",
    "1",
    "2",
    "5",
    "12",
    "13",
    "16383",
    "16384",
    "19999",
    "20000",
    "99999999999999999999999",
    "-",
    ",",
    " ",
    "\t",
    "x",
    "=",
    "+1",
    "0x1",
];

/// `Range: VALUE` on `GET` of a file. A canonical value (`bytes=A-B`,
/// `bytes=A-`, `bytes=-N`) is answered as RFC 9110 section 14 says (206
/// with the bytes asked for, clamped to the file; 416 if none; the whole
/// file if `B < A`); any other value with the whole file (200), one range
/// of it (206, `Content-Range` and body agreeing with the file) or 416
/// (`Content-Range: bytes */SIZE`).
pub fn range(tree: &Tree, split: &Split, src: &mut Source<'_>) {
    let path = *src.pick(&["hello.txt", "empty.txt", "edge.bin", "big.bin", "sub/file.txt"]);
    let file = content(path);
    let size = file.len() as u64;
    let number = |src: &mut Source<'_>| -> u64 {
        match src.below(4) {
            0 => u64::from(src.byte()),
            1 => size.saturating_sub(u64::from(src.byte())),
            2 => size + u64::from(src.byte()),
            _ => u64::from_le_bytes(std::array::from_fn(|_| src.byte())),
        }
    };
    let (value, expected) = match src.below(4) {
        0 => {
            let (a, b) = (number(src), number(src));
            let expect = if b < a {
                Some(Answer::Full)
            } else if a >= size {
                Some(Answer::Unsatisfiable)
            } else {
                Some(Answer::Part(a, b.min(size - 1)))
            };
            (format!("bytes={a}-{b}"), expect)
        }
        1 => {
            let a = number(src);
            let expect = if a >= size { Answer::Unsatisfiable } else { Answer::Part(a, size - 1) };
            (format!("bytes={a}-"), Some(expect))
        }
        2 => {
            let n = number(src);
            let expect =
                if n == 0 || size == 0 { Answer::Unsatisfiable } else { Answer::Part(size - n.min(size), size - 1) };
            (format!("bytes=-{n}"), Some(expect))
        }
        _ => {
            let mut value = String::new();
            for _ in 0..=src.below(8) {
                value.push_str(RANGE_TOKENS[src.below(RANGE_TOKENS.len())]);
            }
            (value, None)
        }
    };
    let request = format!("GET /{path} HTTP/1.1\r\nHost: t\r\nRange: {value}\r\n\r\n");
    let run = check_stream(tree, false, request.as_bytes(), split);
    let all = responses(&run.received);
    assert_eq!(all.len(), 1, "{request:?}: one answer");
    let resp = &all[0];
    let what = format!("Range: {value} of {size} bytes answered {}", run.text());
    let got = match resp.status {
        200 => {
            assert_eq!(resp.body, file, "{what}");
            Answer::Full
        }
        206 => {
            let range = resp.header("Content-Range").map(|v| String::from_utf8_lossy(v).into_owned());
            let (a, b, total) = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes "))
                .and_then(|r| r.split_once('/'))
                .and_then(|(ab, total)| {
                    let (a, b) = ab.split_once('-')?;
                    Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?, total.parse::<u64>().ok()?))
                })
                .unwrap_or_else(|| panic!("{what}: a bad Content-Range"));
            assert!(a <= b && b < size && total == size, "{what}");
            assert_eq!(resp.body, file[a as usize..=b as usize], "{what}");
            Answer::Part(a, b)
        }
        416 => {
            assert_eq!(resp.header("Content-Range"), Some(format!("bytes */{size}").as_bytes()), "{what}");
            Answer::Unsatisfiable
        }
        other => panic!("{what}: status {other}"),
    };
    if let Some(expected) = expected {
        assert_eq!(got, expected, "{what}");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Full,
    Part(u64, u64),
    Unsatisfiable,
}

/// Segments of decoded paths.
const SEGMENTS: &[&[u8]] = &[
    b"hello.txt",
    b"sub",
    b"file.txt",
    b"site",
    b"index.html",
    b"..",
    b".",
    b"",
    b"in",
    b"out",
    b"up",
    b"deeper",
    b"top",
    b"with space.txt",
    b"a?b",
    b"a#b",
    b"100%",
    b"\xc3\xa9",
    b"\xff",
    b"\0",
    b"secret.txt",
    b"edge.bin",
];

/// A path, percent-encoded where it must be (spaces, `%`, `?`, `#`,
/// controls, non-ASCII) and, by the input's choice, anywhere else, with
/// either hex case, in origin or absolute form: every way of writing it
/// is answered alike (decoded exactly once, then resolved), and `HEAD`
/// gets the status and header fields `GET` gets.
pub fn target(tree: &Tree, split: &Split, src: &mut Source<'_>) {
    let mut path = Vec::new();
    for _ in 0..=src.below(5) {
        path.push(b'/');
        path.extend_from_slice(SEGMENTS[src.below(SEGMENTS.len())]);
    }
    if src.flag() {
        path.push(b'/');
    }
    let must = |b: u8| !(0x21..0x7f).contains(&b) || matches!(b, b'%' | b'?' | b'#');
    let encode = |b: u8, lower: bool| if lower { format!("%{b:02x}") } else { format!("%{b:02X}") };
    let minimal: String =
        path.iter().map(|&b| if must(b) { encode(b, false) } else { char::from(b).to_string() }).collect();
    // The leading `/` stays: it is what makes a target a path.
    let mut chosen = String::from("/");
    for &b in &path[1..] {
        let choice = src.byte();
        if must(b) || choice & 1 == 1 {
            chosen.push_str(&encode(b, choice & 2 == 2));
        } else {
            chosen.push(char::from(b));
        }
    }
    let absolute = format!("http://h{chosen}");
    let query = if src.flag() { "?x=%2e%2e/&y" } else { "" };
    let ask = |method: &str, target: &str| {
        let request = format!("{method} {target}{query} HTTP/1.1\r\nHost: t\r\n\r\n");
        check_stream(tree, false, request.as_bytes(), split)
    };
    let expected = ask("GET", &minimal);
    for other in [&chosen, &absolute] {
        let got = ask("GET", other);
        assert!(
            got == expected,
            "{other:?} and {minimal:?} answered differently:\n{}\n{}",
            got.text(),
            expected.text()
        );
    }
    // HEAD is answered as GET, without the body.
    let head = ask("HEAD", &chosen);
    let (get, head) = (responses(&expected.received), responses(&head.received));
    assert_eq!(get.len(), 1, "{minimal:?}: one answer");
    assert_eq!(head.len(), 1, "{chosen:?}: one answer to HEAD");
    assert_eq!((head[0].status, &head[0].headers), (get[0].status, &get[0].headers), "HEAD {chosen:?} and GET");
    assert!(head[0].body.is_empty(), "HEAD {chosen:?} answered with a body");
}

/// A request with a chunked body, cut into chunks (with extensions,
/// leading zeros, either hex case and trailers as the input says), then
/// another request: answered exactly as the same body sent with
/// `Content-Length`, unless a `GET` (or `HEAD`, `OPTIONS`) is answered
/// before its too-large body turns out too large.
pub fn chunked(tree: &Tree, split: &Split, src: &mut Source<'_>) {
    let small = src.flag();
    let method = *src.pick(&["POST", "OPTIONS", "BREW", "GET", "HEAD"]);
    let len = src.below(100) + if src.flag() { 0 } else { 10 };
    let payload: Vec<u8> = (0..len).map(|_| src.byte()).collect();
    let mut body = Vec::new();
    let mut at = 0;
    while at < payload.len() {
        let n = (1 + src.below(40)).min(payload.len() - at);
        chunk_line(&mut body, n, src);
        body.extend_from_slice(&payload[at..at + n]);
        body.extend_from_slice(b"\r\n");
        at += n;
    }
    chunk_line(&mut body, 0, src);
    for _ in 0..src.below(3) {
        body.extend_from_slice(b"X-Trailer: t\r\n");
    }
    body.extend_from_slice(b"\r\n");
    let next = b"GET /sub/file.txt HTTP/1.1\r\nHost: t\r\n\r\n";
    let head = |framing: &str| format!("{method} /hello.txt HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n").into_bytes();
    let chunked = [head("Transfer-Encoding: chunked"), body, next.to_vec()].concat();
    let sized = [head(&format!("Content-Length: {len}")), payload, next.to_vec()].concat();
    let got = check_stream(tree, small, &chunked, split);
    let expected = check_stream(tree, small, &sized, &Split::Whole);
    let max_body = if small { 64 } else { 1024 * 1024 };
    // GET, HEAD and the WebDAV methods (OPTIONS here) are answered before
    // their body is skipped.
    let answered_first = matches!(method, "GET" | "HEAD" | "OPTIONS");
    if !(answered_first && len > max_body) {
        assert!(
            got == expected,
            "a chunked body and the same sent with Content-Length were answered differently:\n{:?}\n{}\n{}",
            String::from_utf8_lossy(&chunked),
            got.text(),
            expected.text()
        );
    }
}

/// A chunk-size line for `n` bytes: hex in either case, maybe with
/// leading zeros and an extension.
fn chunk_line(body: &mut Vec<u8>, n: usize, src: &mut Source<'_>) {
    let style = src.byte();
    for _ in 0..style % 3 {
        body.push(b'0');
    }
    let hex = if style & 4 == 4 { format!("{n:X}") } else { format!("{n:x}") };
    body.extend_from_slice(hex.as_bytes());
    match (style >> 3) % 4 {
        0 => body.extend_from_slice(b";name=value"),
        1 => body.extend_from_slice(b" ;quoted=\"a;b\""),
        _ => {}
    }
    body.extend_from_slice(b"\r\n");
}
