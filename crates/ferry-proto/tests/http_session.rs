//! The HTTP session driven from byte strings, without sockets: every status
//! it can answer, keep-alive rules, pipelining, bodies skipped, escapes
//! refused, requests split at any boundary, and the per-thread open-file
//! cache (hits, revalidation, bounds, what it refuses to keep).

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_proto::Now;
use ferry_proto::conn::{Pair, PairEvent, Timeouts};
use ferry_proto::http::{FileCache, FileCacheStats, HttpConfig, HttpSession};
use ferry_proto::root::Root;
use ferry_proto::{Chunk, Flow, Outbox, Session};
use proptest::prelude::*;

/// What the session may queue in text before it stops answering (its
/// 256 KiB budget) plus one response.
const MAX_QUEUED: usize = 256 * 1024 + 64 * 1024;

/// A served directory for one test, removed on drop.
struct Tree(PathBuf);

impl Tree {
    fn new(name: &str) -> Tree {
        let dir = std::env::temp_dir().join(format!("ferry-http-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        fs::create_dir_all(dir.join("site")).unwrap();
        fs::write(dir.join("hello.txt"), b"Hello, world!").unwrap();
        fs::write(dir.join("sub/file.txt"), b"abc").unwrap();
        fs::write(dir.join("site/index.html"), b"<h1>hi</h1>").unwrap();
        fs::write(dir.join("big.bin"), big_content()).unwrap();
        Tree(dir)
    }

    fn config(&self) -> HttpConfig {
        HttpConfig::new(Arc::new(Root::open(&self.0).unwrap()))
    }

    fn session(&self) -> HttpSession {
        HttpSession::new(Arc::new(self.config()), file_cache())
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// 100 KiB, above the copy threshold, so it goes by file range.
fn big_content() -> Vec<u8> {
    (0..100 * 1024).map(|i| (i % 251) as u8).collect()
}

/// What a run over a [`Pair`] saw.
#[derive(Debug)]
struct Run {
    /// Everything the client received, file ranges read back in place.
    sent: Vec<u8>,
    /// What the session asked of the connection ([`common::flow_of`]).
    flow: Flow,
    /// `on_input` calls made.
    passes: u64,
    /// Byte chunks written, and file ranges sent.
    writes: usize,
    file_ranges: usize,
}

impl Run {
    fn flow(&self) -> Flow {
        self.flow
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.sent).into_owned()
    }
}

/// Sends `pieces` one after the other over a [`Pair`], as a client would,
/// and checks the bounds the session promises after every step: at most
/// [`MAX_QUEUED`] bytes queued, and less than `max_head` bytes left
/// unconsumed while it waits for more.
fn drive_pieces(session: &mut HttpSession, pieces: &[&[u8]], max_head: usize) -> Run {
    let mut pair = Pair::new(session, Timeouts::default()).max_queued(MAX_QUEUED);
    for piece in pieces {
        pair.send(piece);
        if pair.closed().is_some() || pair.server_fin() {
            break;
        }
        let left = pair.conn().buffered_input();
        assert!(left < max_head, "session left {left} bytes it will never consume");
    }
    let count = |want: fn(&PairEvent) -> bool| pair.events().iter().filter(|e| want(e)).count();
    Run {
        sent: pair.received().to_vec(),
        flow: common::flow_of(&pair),
        passes: pair.conn().stats().input_passes,
        writes: count(|e| matches!(e, PairEvent::Send(_))),
        file_ranges: count(|e| matches!(e, PairEvent::SendFile(_))),
    }
}

fn drive_step(session: &mut HttpSession, input: &[u8], step: usize) -> Run {
    let pieces: Vec<&[u8]> = input.chunks(step.max(1)).collect();
    drive_pieces(session, &pieces, 8 * 1024)
}

fn run(session: &mut HttpSession, input: &str) -> Run {
    drive_step(session, input.as_bytes(), usize::MAX)
}

thread_local! {
    /// The open-file cache this test's sessions share, as the sessions of
    /// one event loop do.
    static CACHE: FileCache = FileCache::new();
}

fn file_cache() -> FileCache {
    CACHE.with(FileCache::clone)
}

fn file_cache_stats() -> FileCacheStats {
    file_cache().stats()
}

/// One parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits output into responses; `head[i]` says response i answers a
/// HEAD (no body whatever `Content-Length` says).
fn parse_responses(mut bytes: &[u8], head: &[bool]) -> Vec<Resp> {
    let mut all = Vec::new();
    while !bytes.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(len) = resp.parse(bytes).expect("well-formed response") else {
            panic!("incomplete response head: {}", String::from_utf8_lossy(bytes));
        };
        assert_eq!(resp.version, Some(1), "answers are HTTP/1.1");
        let status = resp.code.unwrap();
        let headers: Vec<(String, String)> =
            resp.headers.iter().map(|h| (h.name.to_string(), String::from_utf8(h.value.to_vec()).unwrap())).collect();
        let content_length = headers.iter().find(|(n, _)| n == "Content-Length").map(|(_, v)| v.parse().unwrap());
        let no_body = head.get(all.len()).copied().unwrap_or(false) || status == 304;
        let body_len = if no_body { 0 } else { content_length.expect("every body has a Content-Length") };
        assert!(bytes.len() >= len + body_len, "body shorter than Content-Length");
        let body = bytes[len..len + body_len].to_vec();
        bytes = &bytes[len + body_len..];
        all.push(Resp { status, headers, body });
    }
    all
}

fn one(run: &Run) -> Resp {
    let mut all = parse_responses(&run.sent, &[]);
    assert_eq!(all.len(), 1, "exactly one response: {}", run.text());
    all.remove(0)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

fn get_with(path: &str, header: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n{header}\r\n\r\n")
}

#[test]
fn get_a_file() {
    let t = Tree::new("get");
    let mut s = t.session();
    let r = run(&mut s, &get("/hello.txt"));
    assert_eq!(r.flow(), Flow::Continue, "HTTP/1.1 keeps the connection");
    let resp = one(&r);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"Hello, world!");
    assert_eq!(resp.header("Content-Length"), Some("13"));
    assert_eq!(resp.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(resp.header("Server"), Some("ferry"));
    assert_eq!(resp.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(resp.header("Connection"), None);
    let date = resp.header("Date").unwrap();
    assert!(date.len() == 29 && date.ends_with(" GMT"), "{date}");
    let meta = fs::metadata(t.0.join("hello.txt")).unwrap();
    let mtime = meta.modified().unwrap();
    assert_eq!(resp.header("Last-Modified"), Some(httpdate::fmt_http_date(mtime).as_str()));
    let etag = resp.header("ETag").unwrap();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.contains("-d-"), "{etag}");
    assert_eq!(r.writes, 1, "a small file leaves with its head in one write");
    assert_eq!(r.file_ranges, 0);
    // Types by extension; query strings are ignored.
    let resp = one(&run(&mut s, &get("/site/index.html?v=2")));
    assert_eq!(resp.header("Content-Type"), Some("text/html; charset=utf-8"));
    let resp = one(&run(&mut s, &get("/big.bin")));
    assert_eq!(resp.header("Content-Type"), Some("application/octet-stream"));
}

#[test]
fn large_files_go_by_sendfile() {
    let t = Tree::new("big");
    let mut s = t.session();
    let r = run(&mut s, &get("/big.bin"));
    let resp = one(&r);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, big_content());
    assert_eq!(r.file_ranges, 1, "the body is a file range, not copied");
    // A range of it too.
    let r = run(&mut s, &get_with("/big.bin", "Range: bytes=1000-60999"));
    let resp = one(&r);
    assert_eq!(resp.status, 206);
    assert_eq!(resp.body, &big_content()[1000..61000]);
    assert_eq!(r.file_ranges, 1);
    // Every body by sendfile when the threshold is 0.
    let mut config = t.config();
    config.copy_threshold = 0;
    let mut s = HttpSession::new(Arc::new(config), file_cache());
    let r = run(&mut s, &get("/hello.txt"));
    assert_eq!(one(&r).body, b"Hello, world!");
    assert_eq!(r.file_ranges, 1);
}

#[test]
fn head_has_the_same_headers_and_no_body() {
    let t = Tree::new("head");
    let mut s = t.session();
    for path in ["/hello.txt", "/big.bin", "/sub/", "/sub", "/missing", "/site/"] {
        let g = one(&run(&mut s, &get(path)));
        let r = run(&mut s, &format!("HEAD {path} HTTP/1.1\r\nHost: test\r\n\r\n"));
        let h = parse_responses(&r.sent, &[true]);
        assert_eq!(h.len(), 1, "{path}");
        assert_eq!(h[0].status, g.status, "{path}");
        assert_eq!(h[0].headers, g.headers, "{path}");
        assert!(h[0].body.is_empty());
        assert_eq!(r.file_ranges, 0, "{path}");
        assert_eq!(r.flow(), Flow::Continue);
    }
    // HEAD ignores Range (defined for GET only).
    let r = run(&mut s, "HEAD /hello.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\n\r\n");
    assert_eq!(parse_responses(&r.sent, &[true])[0].status, 200);
}

#[test]
fn ranges() {
    let t = Tree::new("range");
    let mut s = t.session();
    let cases = [
        ("bytes=0-4", 206, "Hello", Some("bytes 0-4/13")),
        ("bytes=7-", 206, "world!", Some("bytes 7-12/13")),
        ("bytes=-6", 206, "world!", Some("bytes 7-12/13")),
        ("bytes=5-100", 206, ", world!", Some("bytes 5-12/13")),
        ("bytes=0-0,2-3", 200, "Hello, world!", None),
        ("bytes=4-2", 200, "Hello, world!", None),
        ("pages=1-2", 200, "Hello, world!", None),
        ("bytes=13-", 416, "416 Range Not Satisfiable\n", Some("bytes */13")),
        ("bytes=-0", 416, "416 Range Not Satisfiable\n", Some("bytes */13")),
    ];
    for (range, status, body, content_range) in cases {
        let r = run(&mut s, &get_with("/hello.txt", &format!("Range: {range}")));
        let resp = one(&r);
        assert_eq!(resp.status, status, "{range}");
        assert_eq!(resp.body_text(), body, "{range}");
        assert_eq!(resp.header("Content-Range"), content_range, "{range}");
        assert_eq!(r.flow(), Flow::Continue, "{range}: the stream is still in sync");
    }
    // If-Range: the current ETag or Last-Modified keeps the range,
    // anything else gets the whole file.
    let full = one(&run(&mut s, &get("/hello.txt")));
    let etag = full.header("ETag").unwrap().to_string();
    let modified = full.header("Last-Modified").unwrap().to_string();
    for (if_range, status) in [
        (etag.clone(), 206),
        (modified, 206),
        ("\"other\"".to_string(), 200),
        (format!("W/{etag}"), 200),
        ("Sun, 06 Nov 1994 08:49:37 GMT".to_string(), 200),
    ] {
        let resp = one(&run(&mut s, &get_with("/hello.txt", &format!("Range: bytes=0-4\r\nIf-Range: {if_range}"))));
        assert_eq!(resp.status, status, "If-Range: {if_range}");
    }
}

#[test]
fn conditional_requests() {
    let t = Tree::new("cond");
    let mut s = t.session();
    let full = one(&run(&mut s, &get("/hello.txt")));
    let etag = full.header("ETag").unwrap().to_string();
    let modified = full.header("Last-Modified").unwrap().to_string();
    let future = "Fri, 31 Dec 9999 23:59:59 GMT";
    let past = "Sun, 06 Nov 1994 08:49:37 GMT";
    let cases = [
        (format!("If-None-Match: {etag}"), 304),
        (format!("If-None-Match: \"x\", W/{etag}"), 304),
        ("If-None-Match: *".to_string(), 304),
        ("If-None-Match: \"x\"".to_string(), 200),
        (format!("If-Modified-Since: {modified}"), 304),
        (format!("If-Modified-Since: {future}"), 304),
        (format!("If-Modified-Since: {past}"), 200),
        ("If-Modified-Since: not a date".to_string(), 200),
        // If-None-Match wins over If-Modified-Since.
        (format!("If-None-Match: \"x\"\r\nIf-Modified-Since: {future}"), 200),
        (format!("If-Modified-Since: {past}\r\nIf-None-Match: {etag}"), 304),
    ];
    for (header, status) in cases {
        let r = run(&mut s, &get_with("/hello.txt", &header));
        let resp = one(&r);
        assert_eq!(resp.status, status, "{header}");
        if status == 304 {
            assert_eq!(resp.header("ETag"), Some(etag.as_str()));
            assert_eq!(resp.header("Content-Length"), None);
            assert!(r.sent.ends_with(b"\r\n\r\n"), "304 has no body");
        }
    }
}

#[test]
fn directories_redirect_index_and_list() {
    let t = Tree::new("dirs");
    let mut s = t.session();
    let resp = one(&run(&mut s, &get("/sub")));
    assert_eq!(resp.status, 301);
    assert_eq!(resp.header("Location"), Some("/sub/"));
    let resp = one(&run(&mut s, &get("/sub/deeper?sort=name&x=%20")));
    assert_eq!(resp.header("Location"), Some("/sub/deeper/?sort=name&x=%20"), "query kept");
    let resp = one(&run(&mut s, &get("http://test/sub")));
    assert_eq!(resp.header("Location"), Some("/sub/"), "absolute-form accepted");
    // `//host` in a target must not become a scheme-relative Location.
    fs::create_dir(t.0.join("evil.example")).unwrap();
    let resp = one(&run(&mut s, &get("//evil.example")));
    assert_eq!(resp.header("Location"), Some("/evil.example/"));
    let resp = one(&run(&mut s, &get("/site/")));
    assert_eq!((resp.status, resp.body_text().as_str()), (200, "<h1>hi</h1>"));
    let resp = one(&run(&mut s, &get("/sub/")));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Content-Type"), Some("text/html; charset=utf-8"));
    let html = resp.body_text();
    let deeper = html.find("<a href=\"deeper/\">deeper/</a>").expect("directory link");
    let file = html.find("<a href=\"file.txt\">file.txt</a>").expect("file link");
    assert!(deeper < file, "directories first");
    assert!(html.contains("<a href=\"../\">../</a>"), "parent link");
    assert!(html.contains("3 B"), "size");
    // The root has no parent link.
    let html = one(&run(&mut s, &get("/"))).body_text();
    assert!(!html.contains("href=\"../\""));
    assert!(html.contains("<title>Index of /</title>"));
    // A file named as a directory does not exist.
    assert_eq!(one(&run(&mut s, &get("/hello.txt/"))).status, 404);
}

#[test]
fn listing_escapes_names() {
    let t = Tree::new("listing");
    let weird = t.0.join("weird");
    fs::create_dir(&weird).unwrap();
    fs::write(weird.join("<b>&\"x y'.txt"), b"1").unwrap();
    fs::write(weird.join("naïve 日本.txt"), b"22").unwrap();
    fs::write(weird.join("a:b#c?d%e"), b"").unwrap();
    fs::write(weird.join(std::ffi::OsStr::from_bytes(b"bad\xffname")), b"").unwrap();
    fs::create_dir(weird.join("dir with space")).unwrap();
    fs::write(weird.join(".secret.ferry-part"), b"partial upload").unwrap();
    std::os::unix::fs::symlink("/etc", weird.join("out-link")).unwrap();
    std::os::unix::fs::symlink("../hello.txt", weird.join("in-link")).unwrap();
    let mut s = t.session();
    let resp = one(&run(&mut s, &get("/weird/")));
    let html = resp.body_text();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(html.contains("<a href=\"%3Cb%3E%26%22x%20y%27.txt\">&lt;b&gt;&amp;&quot;x y&#39;.txt</a>"));
    assert!(html.contains("<a href=\"na%C3%AFve%20%E6%97%A5%E6%9C%AC.txt\">naïve 日本.txt</a>"));
    assert!(html.contains("<a href=\"a%3Ab%23c%3Fd%25e\">a:b#c?d%e</a>"));
    assert!(html.contains("<a href=\"bad%FFname\">bad\u{fffd}name</a>"));
    assert!(html.contains("<a href=\"dir%20with%20space/\">dir with space/</a>"));
    assert!(html.contains("<a href=\"in-link\">in-link</a>"), "a symlink inside the root is listed");
    assert!(!html.contains("out-link"), "a symlink out of the root is not listed");
    assert!(!html.contains("ferry-part"), "partial uploads are hidden");
    assert!(!html.contains("<b>"), "no markup from names");
    // Every link leads back to its entry.
    for (href, status) in [
        ("%3Cb%3E%26%22x%20y%27.txt", 200),
        ("na%C3%AFve%20%E6%97%A5%E6%9C%AC.txt", 200),
        ("a%3Ab%23c%3Fd%25e", 200),
        ("bad%FFname", 200),
        ("dir%20with%20space/", 200),
        ("in-link", 200),
    ] {
        let resp = one(&run(&mut s, &get(&format!("/weird/{href}"))));
        assert_eq!(resp.status, status, "{href}");
    }
    let resp = one(&run(&mut s, &get("/weird/%3Cb%3E%26%22x%20y%27.txt")));
    assert_eq!(resp.body, b"1");
}

#[test]
fn escapes_are_not_found() {
    let t = Tree::new("escape");
    std::os::unix::fs::symlink("/etc", t.0.join("etc-link")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../etc/passwd", t.0.join("sub/passwd-link")).unwrap();
    std::os::unix::fs::symlink("self-loop", t.0.join("self-loop")).unwrap();
    let mut s = t.session();
    let missing = one(&run(&mut s, &get("/no-such-file")));
    assert_eq!(missing.status, 404);
    for path in [
        "/../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/%2E%2E/%2e%2e/etc/passwd",
        "/sub/%2e%2e/%2e%2e/etc/passwd",
        "/sub/..%2f..%2fetc/passwd",
        "/etc-link/passwd",
        "/etc-link/",
        "/etc-link",
        "/sub/passwd-link",
        "/self-loop",
        "http://test/../etc/passwd",
    ] {
        let r = run(&mut s, &get(path));
        let resp = one(&r);
        assert_eq!(resp.headers, missing.headers, "{path}: same answer as a missing file");
        assert_eq!(resp.body, missing.body, "{path}");
        assert_eq!(r.flow(), Flow::Continue, "{path}");
    }
    // A NUL byte is a bad request.
    let r = run(&mut s, &get("/hello.txt%00.png"));
    assert_eq!(one(&r).status, 400);
    assert_eq!(r.flow(), Flow::CloseAfterFlush);
}

#[test]
fn every_error_status() {
    let t = Tree::new("errors");
    let long_target = format!("/{}", "a".repeat(5000));
    let big_header = format!("X-Big: {}", "b".repeat(9000));
    let many_headers: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
    let cases: Vec<(String, u16, Flow)> = vec![
        ("hello\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        ("GET / HTTP/1.1\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        ("GET /a%zz HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        ("GET relative HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        ("GET / HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        ("GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        (
            "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".into(),
            400,
            Flow::CloseAfterFlush,
        ),
        ("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        (
            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
            400,
            Flow::CloseAfterFlush,
        ),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        (get("/missing"), 404, Flow::Continue),
        ("DELETE /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n".into(), 405, Flow::Continue),
        ("get /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n".into(), 405, Flow::Continue),
        ("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n".into(), 413, Flow::CloseAfterFlush),
        (format!("GET {long_target} HTTP/1.1\r\nHost: t\r\n\r\n"), 414, Flow::CloseAfterFlush),
        (format!("GET / HTTP/1.1\r\nHost: t\r\n{big_header}\r\n\r\n"), 431, Flow::CloseAfterFlush),
        (format!("GET / HTTP/1.1\r\nHost: t\r\n{many_headers}\r\n"), 431, Flow::CloseAfterFlush),
        ("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n".into(), 501, Flow::CloseAfterFlush),
        ("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".into(), 501, Flow::CloseAfterFlush),
        ("GET / HTTP/2.0\r\nHost: t\r\n\r\n".into(), 505, Flow::CloseAfterFlush),
        ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".into(), 505, Flow::CloseAfterFlush),
    ];
    for (input, status, flow) in cases {
        let mut s = t.session();
        let r = run(&mut s, &input);
        let shown = &input[..input.len().min(60)];
        let resp = one(&r);
        assert_eq!(resp.status, status, "for {shown:?}");
        assert_eq!(r.flow(), flow, "for {shown:?}");
        let closes = flow == Flow::CloseAfterFlush;
        assert_eq!(resp.header("Connection") == Some("close"), closes, "for {shown:?}");
        assert_eq!(resp.header("Content-Type"), Some("text/plain; charset=utf-8"));
        assert!(resp.body_text().starts_with(&status.to_string()), "for {shown:?}");
        if status == 405 {
            assert_eq!(resp.header("Allow"), Some("GET, HEAD"));
        }
    }
}

#[test]
fn heads_too_large_are_refused_before_they_end() {
    let t = Tree::new("limits");
    // A request line that never ends: 414 once past the target limit.
    let mut s = t.session();
    let line = format!("GET /{}", "a".repeat(10_000));
    let r = drive_step(&mut s, line.as_bytes(), 1000);
    assert_eq!(one(&r).status, 414);
    // Header fields that never end: 431 at the head limit.
    let mut s = t.session();
    let head = format!("GET / HTTP/1.1\r\n{}", "X: y\r\n".repeat(3000));
    let r = drive_step(&mut s, head.as_bytes(), 1000);
    assert_eq!(one(&r).status, 431);
    assert_eq!(r.flow(), Flow::CloseAfterFlush);
    // Configurable: a 100-byte head limit.
    let mut config = t.config();
    config.max_head = 100;
    config.max_uri = 20;
    let mut s = HttpSession::new(Arc::new(config.clone()), file_cache());
    let r = run(&mut s, &get_with("/hello.txt", &format!("X-Pad: {}", "p".repeat(80))));
    assert_eq!(one(&r).status, 431);
    let mut s = HttpSession::new(Arc::new(config), file_cache());
    let r = run(&mut s, &get("/0123456789012345678901234"));
    assert_eq!(one(&r).status, 414);
}

#[test]
fn keep_alive_and_close_rules() {
    let t = Tree::new("keepalive");
    let cases = [
        ("GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", None, Flow::Continue),
        ("GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", Some("close"), Flow::CloseAfterFlush),
        (
            "GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: Keep-Alive, CLOSE\r\n\r\n",
            Some("close"),
            Flow::CloseAfterFlush,
        ),
        ("GET /hello.txt HTTP/1.0\r\n\r\n", Some("close"), Flow::CloseAfterFlush),
        ("GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Some("keep-alive"), Flow::Continue),
        ("GET /missing HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Some("keep-alive"), Flow::Continue),
        ("GET /missing HTTP/1.0\r\n\r\n", Some("close"), Flow::CloseAfterFlush),
        ("HEAD /sub HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", Some("close"), Flow::CloseAfterFlush),
    ];
    for (input, connection, flow) in cases {
        let mut s = t.session();
        let r = run(&mut s, input);
        let resp = parse_responses(&r.sent, &[input.starts_with("HEAD")]);
        assert_eq!(resp.len(), 1);
        assert_eq!(resp[0].header("Connection"), connection, "{input:?}");
        assert_eq!(r.flow(), flow, "{input:?}");
    }
    // After a close, nothing more is answered.
    let mut s = t.session();
    let r = run(&mut s, "GET /hello.txt HTTP/1.0\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(parse_responses(&r.sent, &[]).len(), 1);
    let mut out = Outbox::new();
    let p = s.on_input(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", &mut out, Now::read());
    assert_eq!(p.flow, Flow::CloseAfterFlush);
    assert!(out.is_empty());
}

#[test]
fn request_bodies_are_skipped() {
    let t = Tree::new("bodies");
    let input = "GET /hello.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
                 5\r\nhello\r\n1a;ext=\"x\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: v\r\n\r\n\
                 POST /sub/file.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 14\r\n\r\nGET / HTTP/1.1\
                 POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
                 GET /sub/file.txt HTTP/1.1\r\nHost: t\r\n\r\n";
    for step in [usize::MAX, 1, 2, 3, 7] {
        let mut s = t.session();
        let r = drive_step(&mut s, input.as_bytes(), step);
        let all = parse_responses(&r.sent, &[]);
        let statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 405, 405, 200], "step {step}");
        assert_eq!(all[0].body, b"Hello, world!");
        assert_eq!(all[3].body, b"abc");
        assert_eq!(r.flow(), Flow::Continue);
    }
    // A chunked body over the limit: 413 instead of 405, then close.
    let mut config = t.config();
    config.max_body = 10;
    let mut s = HttpSession::new(Arc::new(config.clone()), file_cache());
    let r = run(&mut s, "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n");
    assert_eq!(one(&r).status, 413);
    assert_eq!(r.flow(), Flow::CloseAfterFlush);
    // Content-Length over the limit is refused before any of it is read.
    let mut s2 = HttpSession::new(Arc::new(config), file_cache());
    let r = run(&mut s2, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n");
    assert_eq!(one(&r).status, 413);
    // Broken chunked framing after a GET: already answered, so just close.
    s = t.session();
    let r = run(&mut s, "GET /hello.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert_eq!(one(&r).status, 200);
    assert_eq!(r.flow(), Flow::CloseAfterFlush);
    // Expect: 100-continue with a body: answered at once, then closed.
    let mut s = t.session();
    let r = run(&mut s, "PUT /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let resp = one(&r);
    assert_eq!((resp.status, resp.header("Connection")), (405, Some("close")));
    assert_eq!(r.flow(), Flow::CloseAfterFlush);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let t = Tree::new("pipeline");
    let mut s = t.session();
    let paths = ["/hello.txt", "/sub/file.txt", "/missing", "/sub", "/big.bin", "/hello.txt"];
    let mut input = String::new();
    for i in 0..150 {
        input.push_str(&get(paths[i % paths.len()]));
    }
    let r = run(&mut s, &input);
    let all = parse_responses(&r.sent, &[]);
    assert_eq!(all.len(), 150);
    for (i, resp) in all.iter().enumerate() {
        let expected: (u16, &[u8]) = match paths[i % paths.len()] {
            "/hello.txt" => (200, b"Hello, world!"),
            "/sub/file.txt" => (200, b"abc"),
            "/missing" => (404, b"404 Not Found\n"),
            "/sub" => (301, b"301 Moved Permanently\n"),
            _ => (200, &[]),
        };
        assert_eq!(resp.status, expected.0, "response {i}");
        if !expected.1.is_empty() {
            assert_eq!(resp.body, expected.1, "response {i}");
        }
    }
    assert_eq!(r.file_ranges, 25, "each big.bin is one file range");
    assert!(r.passes >= 3, "work is split into bounded passes ({} passes)", r.passes);
    // Small answers leave together: 16 small requests, one write.
    let mut s = t.session();
    let r = run(&mut s, &get("/hello.txt").repeat(16));
    assert_eq!(parse_responses(&r.sent, &[]).len(), 16);
    assert_eq!(r.writes, 1, "all 16 answers in one buffer");
    // The first pass stops at its request budget and leaves the rest.
    let mut s = t.session();
    let mut out = Outbox::new();
    let input = get("/hello.txt").repeat(100);
    let p = s.on_input(input.as_bytes(), &mut out, Now::read());
    assert_eq!(p.consumed, get("/hello.txt").len() * 64);
    assert_eq!(p.flow, Flow::Continue);
}

#[test]
fn split_at_every_boundary_gives_the_same_answers() {
    let t = Tree::new("split");
    let script = [
        get("/hello.txt"),
        "\r\nHEAD /sub/file.txt HTTP/1.1\r\nHost: t\r\n\r\n".to_string(),
        get_with("/big.bin", "Range: bytes=-10"),
        get_with("/hello.txt", "If-None-Match: *"),
        get("/sub"),
        get("/sub/"),
        get("/%2e%2e/x"),
        "POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\n\r\n".to_string(),
        "GET /hello.txt HTTP/1.0\nConnection: keep-alive\n\n".to_string(),
        "OPTIONS * HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi".to_string(),
        get_with("/hello.txt", "Connection: close"),
    ]
    .concat();
    let mut whole = t.session();
    let expected = drive_step(&mut whole, script.as_bytes(), usize::MAX);
    let statuses: Vec<u16> = parse_responses(&expected.sent, &[false, true]).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 206, 304, 301, 200, 404, 405, 200, 405, 200]);
    assert_eq!(expected.flow(), Flow::CloseAfterFlush);
    for step in 1..=9 {
        let mut s = t.session();
        let got = drive_step(&mut s, script.as_bytes(), step);
        assert_eq!(got.text(), expected.text(), "step {step}");
    }
    let bytes = script.as_bytes();
    for cut in 0..=bytes.len() {
        let mut s = t.session();
        let got = drive_pieces(&mut s, &[&bytes[..cut], &bytes[cut..]], 8 * 1024);
        assert_eq!(got.text(), expected.text(), "split at byte {cut}");
    }
}

/// The header timeout runs on the Pair's fake clock: it starts when a
/// request begins to arrive and more bytes do not extend it (slowloris);
/// the 408 goes out and the connection half-closes. Between requests the
/// idle timeout closes silently.
#[test]
fn timeouts_know_whether_a_request_is_under_way() {
    let t = Tree::new("timeout");
    let timeouts = Timeouts { idle_timeout: Duration::from_secs(60), request_timeout: Duration::from_secs(10) };
    let mut s = t.session();
    let mut pair = Pair::new(&mut s, timeouts);
    pair.send(b"\r\n");
    assert_eq!(pair.conn().buffered_input(), 0, "blank lines between requests are dropped");
    pair.send(b"GET /hello.txt HT");
    for _ in 0..9 {
        pair.advance(Duration::from_millis(999)).send(b"T");
    }
    assert!(pair.received().is_empty() && !pair.server_fin(), "not yet: 8.991 s into the request");
    pair.advance(Duration::from_millis(1009));
    let resp = parse_responses(pair.received(), &[]);
    assert_eq!((resp[0].status, resp[0].header("Connection")), (408, Some("close")));
    assert!(pair.server_fin(), "10 s after the request began, however many bytes trickled in");
    drop(pair);
    // Between requests, the idle timer closes silently.
    let mut s = t.session();
    let mut pair = Pair::new(&mut s, timeouts);
    pair.send(get("/hello.txt").as_bytes());
    let answered = pair.take_received();
    assert_eq!(one_of(&answered).status, 200);
    assert_eq!(pair.advance_to_deadline(), Some(Duration::from_secs(60)), "the idle timeout, from the answer");
    assert!(pair.received().is_empty() && pair.server_fin(), "closed without a word");
    drop(pair);
    // Skipping a body counts as a request under way.
    let mut s = t.session();
    let mut pair = Pair::new(&mut s, timeouts);
    pair.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345");
    assert!(pair.conn().session().in_request());
    assert_eq!(pair.advance_to_deadline(), Some(Duration::from_secs(10)));
    assert!(pair.server_fin());
}

fn one_of(bytes: &[u8]) -> Resp {
    let all = parse_responses(bytes, &[]);
    assert_eq!(all.len(), 1, "one response");
    all[0].clone()
}

/// Pieces of plausible requests, so random inputs reach deep states.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"GET /hello.txt HTTP/1.1\r\n".to_vec()),
        Just(b"HEAD /sub/ HTTP/1.0\r\n".to_vec()),
        Just(b"POST /x HTTP/1.1\r\n".to_vec()),
        Just(b"Host: t\r\n".to_vec()),
        Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        Just(b"Content-Length: 5\r\n".to_vec()),
        Just(b"Range: bytes=2-\r\n".to_vec()),
        Just(b"Connection: keep-alive\r\n".to_vec()),
        Just(b"5\r\nhello\r\n".to_vec()),
        Just(b"0\r\n\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_or_overrun_limits(
        raw in proptest::collection::vec(any::<u8>(), 0..3000),
        step in 1usize..600,
    ) {
        let t = Tree::new("prop-raw");
        let mut config = t.config();
        config.max_head = 512;
        config.max_uri = 128;
        config.max_body = 64;
        let mut s = HttpSession::new(Arc::new(config), file_cache());
        let pieces: Vec<&[u8]> = raw.chunks(step).collect();
        let r = drive_pieces(&mut s, &pieces, 512);
        let _ = r.flow();
    }

    #[test]
    fn request_like_bytes_never_panic_or_overrun_limits(
        tokens in proptest::collection::vec(token(), 0..40),
        step in 1usize..200,
    ) {
        let t = Tree::new("prop-tokens");
        let mut config = t.config();
        config.max_head = 512;
        config.max_uri = 128;
        config.max_body = 64;
        let mut s = HttpSession::new(Arc::new(config), file_cache());
        let input = tokens.concat();
        let pieces: Vec<&[u8]> = input.chunks(step).collect();
        let r = drive_pieces(&mut s, &pieces, 512);
        prop_assert!(r.sent.is_empty() || r.sent.starts_with(b"HTTP/1.1 "), "{}", r.text());
    }
}

/// Waits (bounded) until the kernel's coarse clock, which file timestamps
/// come from, has moved past the file's ctime: only then does the open-file
/// cache keep the file (a write in the same clock tick would be invisible).
fn settle(path: &Path) {
    let meta = fs::metadata(path).unwrap();
    let ctime = (meta.ctime(), meta.ctime_nsec());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        if (now.tv_sec, now.tv_nsec) > ctime {
            return;
        }
        assert!(Instant::now() < deadline, "the coarse clock did not pass {}'s ctime", path.display());
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A session on `root` with the open-file cache set up by `tune`.
fn session_with(root: &Arc<Root>, tune: impl FnOnce(&mut HttpConfig)) -> HttpSession {
    let mut config = HttpConfig::new(Arc::clone(root));
    tune(&mut config);
    HttpSession::new(Arc::new(config), file_cache())
}

#[test]
fn cache_hits_answer_exactly_like_the_disk() {
    let t = Tree::new("cache-hit");
    let root = Arc::new(Root::open(&t.0).unwrap());
    for file in ["hello.txt", "site/index.html"] {
        settle(&t.0.join(file));
    }
    let etag = one(&run(&mut session_with(&root, |_| {}), &get("/hello.txt"))).header("ETag").unwrap().to_string();
    let script = [
        get("/hello.txt"),
        "HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n".to_string(),
        get_with("/hello.txt", "Range: bytes=7-11"),
        get_with("/hello.txt", "Range: bytes=20-"),
        get_with("/hello.txt", &format!("If-None-Match: {etag}")),
        get("/site/"),
        get("/hello.txt/"),
    ]
    .concat();
    let heads = [false, true, false, false, false, false, false];
    let uncached = parse_responses(&run(&mut session_with(&root, |c| c.file_cache_entries = 0), &script).sent, &heads);
    let mut cached = session_with(&root, |c| c.file_cache_valid = Duration::from_secs(3600));
    let warm = parse_responses(&run(&mut cached, &script).sent, &heads);
    let before = file_cache_stats();
    let hits = parse_responses(&run(&mut cached, &script).sent, &heads);
    let after = file_cache_stats();
    // Every file lookup is a hit; only `/site/` goes to the disk, to find
    // the directory (only regular files are cached), then hits its index.
    assert_eq!(after.hits - before.hits, 7, "{before:?} -> {after:?}");
    assert_eq!(after.opens - before.opens, 1, "{before:?} -> {after:?}");
    assert_eq!(uncached.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 200, 206, 416, 304, 200, 404]);
    for (i, ((u, w), h)) in uncached.iter().zip(&warm).zip(&hits).enumerate() {
        assert_eq!((u.status, &u.headers, &u.body), (w.status, &w.headers, &w.body), "response {i}");
        assert_eq!((u.status, &u.headers, &u.body), (h.status, &h.headers, &h.body), "response {i}");
    }
    assert_eq!(hits[2].body, b"world");
    // Inside the validity window the cache is trusted: a same-size change
    // on disk is not seen yet (what the window documents), while a session
    // without the cache sees it at once.
    fs::write(t.0.join("hello.txt"), b"Hello, WORLD!").unwrap();
    assert_eq!(one(&run(&mut cached, &get("/hello.txt"))).body, b"Hello, world!");
    let fresh = one(&run(&mut session_with(&root, |c| c.file_cache_entries = 0), &get("/hello.txt")));
    assert_eq!(fresh.body, b"Hello, WORLD!");
}

#[test]
fn changed_files_are_seen_after_the_validity_window() {
    let t = Tree::new("cache-stale");
    let root = Arc::new(Root::open(&t.0).unwrap());
    let file = t.0.join("hello.txt");
    settle(&file);
    let mut s = session_with(&root, |c| c.file_cache_valid = Duration::ZERO);
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).body, b"Hello, world!");
    // Unchanged: checked (opened) again, body kept.
    let before = file_cache_stats();
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).body, b"Hello, world!");
    let after = file_cache_stats();
    assert_eq!((after.opens - before.opens, after.entries), (1, before.entries), "{before:?} -> {after:?}");
    // Same size, same second: only ctime (and mtime's nanoseconds) move.
    fs::write(&file, b"Hello, WORLD!").unwrap();
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).body, b"Hello, WORLD!");
    settle(&file);
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).body, b"Hello, WORLD!");
    // Same size and the old mtime put back (to the nanosecond): ctime
    // still tells.
    let mtime = fs::metadata(&file).unwrap().modified().unwrap();
    fs::write(&file, b"Jello, world!").unwrap();
    fs::File::options().write(true).open(&file).unwrap().set_modified(mtime).unwrap();
    assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), mtime);
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).body, b"Jello, world!");
    // Another size.
    fs::write(&file, b"short").unwrap();
    let resp = one(&run(&mut s, &get("/hello.txt")));
    assert_eq!((resp.body.as_slice(), resp.header("Content-Length")), (&b"short"[..], Some("5")));
    settle(&file);
    run(&mut s, &get("/hello.txt"));
    // Replaced by a directory, then deleted: 301, then 404, and the entry
    // is gone.
    let entries = file_cache_stats().entries;
    fs::remove_file(&file).unwrap();
    fs::create_dir(&file).unwrap();
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).status, 301);
    assert_eq!(file_cache_stats().entries, entries - 1);
    fs::remove_dir(&file).unwrap();
    assert_eq!(one(&run(&mut s, &get("/hello.txt"))).status, 404);
    assert_eq!(file_cache_stats().entries, entries - 1);
}

#[test]
fn cache_stays_within_its_bounds() {
    let t = Tree::new("cache-bounds");
    // A new root for each part, so no entry of an earlier part is hit.
    let root = Arc::new(Root::open(&t.0).unwrap());
    for i in 0..10 {
        fs::write(t.0.join(format!("f{i}.txt")), format!("file number {i:02}")).unwrap();
    }
    fs::write(t.0.join("forty.txt"), [b'x'; 40]).unwrap();
    settle(&t.0.join("forty.txt"));
    // At most 3 entries.
    let mut s = session_with(&root, |c| c.file_cache_entries = 3);
    for round in 0..2 {
        for i in 0..10 {
            let resp = one(&run(&mut s, &get(&format!("/f{i}.txt"))));
            assert_eq!(resp.body, format!("file number {i:02}").as_bytes(), "round {round}");
            let stats = file_cache_stats();
            assert!(stats.entries <= 3, "round {round}, file {i}: {stats:?}");
        }
    }
    // At most 40 bytes: two 14-byte files fit, a third clears the cache,
    // and a file of more than the whole budget is served but never kept.
    let root = Arc::new(Root::open(&t.0).unwrap());
    let mut s = session_with(&root, |c| c.file_cache_bytes = 40);
    for i in 0..10 {
        one(&run(&mut s, &get(&format!("/f{i}.txt"))));
        let stats = file_cache_stats();
        assert!(stats.bytes <= 40 && stats.entries <= 2, "file {i}: {stats:?}");
    }
    let root = Arc::new(Root::open(&t.0).unwrap());
    let mut s = session_with(&root, |c| c.file_cache_bytes = 39);
    let before = file_cache_stats();
    for _ in 0..3 {
        assert_eq!(one(&run(&mut s, &get("/forty.txt"))).body, [b'x'; 40]);
    }
    let after = file_cache_stats();
    assert_eq!((after.hits, after.opens - before.opens), (before.hits, 3), "{before:?} -> {after:?}");
    // Files above the copy threshold go by sendfile and are not kept.
    let mut s = t.session();
    let before = file_cache_stats();
    for _ in 0..2 {
        let r = run(&mut s, &get("/big.bin"));
        assert_eq!((one(&r).body, r.file_ranges), (big_content(), 1));
    }
    let after = file_cache_stats();
    assert_eq!((after.hits, after.opens - before.opens), (before.hits, 2), "{before:?} -> {after:?}");
}

#[test]
fn errors_and_escapes_are_never_cached() {
    let t = Tree::new("cache-errors");
    std::os::unix::fs::symlink("../../../../../../../../etc/passwd", t.0.join("passwd-link")).unwrap();
    std::os::unix::fs::symlink("/etc", t.0.join("etc-link")).unwrap();
    let root = Arc::new(Root::open(&t.0).unwrap());
    let mut s = session_with(&root, |c| c.file_cache_valid = Duration::from_secs(3600));
    let before = file_cache_stats();
    let paths = ["/missing.txt", "/passwd-link", "/etc-link/passwd", "/%2e%2e/etc/passwd", "/sub", "/sub/"];
    for round in 0..2 {
        for path in paths {
            let status = one(&run(&mut s, &get(path))).status;
            assert!(matches!(status, 404 | 301 | 200), "{path}: {status}");
            assert_eq!(status == 404, !path.starts_with("/sub"), "round {round}, {path}: {status}");
        }
    }
    let after = file_cache_stats();
    assert_eq!((after.hits, after.entries), (before.hits, before.entries), "{before:?} -> {after:?}");
    // A 404 is not remembered: the file is served as soon as it exists.
    fs::write(t.0.join("missing.txt"), b"here now").unwrap();
    assert_eq!(one(&run(&mut s, &get("/missing.txt"))).body, b"here now");
}

/// A directory listing is a job (the driver may build it on a worker): the
/// pass stops at it, nothing behind it is answered first, and its answer is
/// the listing page.
#[test]
fn a_listing_is_a_job_that_ends_the_pass() {
    let tree = Tree::new("listing-job");
    let mut s = tree.session();
    let mut out = Outbox::new();
    let first: &[u8] = b"GET /sub/ HTTP/1.1\r\nHost: t\r\n\r\n";
    let input = [first, b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"].concat();
    let p = s.on_input(&input, &mut out, Now::read());
    assert_eq!(p.flow, Flow::Continue);
    assert_eq!(p.consumed, first.len(), "the pass stops after the listing's job");
    assert!(matches!(out.front(), Some(Chunk::Job)), "the listing is a job");
    let job = out.take_job().unwrap();
    let page = String::from_utf8(job()).unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("file.txt") && page.contains("deeper/"), "{page}");
}

/// Time is the driver's: `Date` follows the Pair's fake clock, and a
/// cached file is trusted for exactly `file_cache_valid` of it.
#[test]
fn date_and_cache_expiry_follow_the_clock_they_are_given() {
    let t = Tree::new("clock");
    let root = Arc::new(Root::open(&t.0).unwrap());
    let file = t.0.join("hello.txt");
    settle(&file);
    let mut s = session_with(&root, |c| c.file_cache_valid = Duration::from_secs(1));
    let mut pair = Pair::new(&mut s, Timeouts::default());
    pair.send(get("/hello.txt").as_bytes());
    let first = one_of(&pair.take_received());
    assert_eq!(first.header("Date"), Some("Tue, 01 Dec 2026 00:00:00 GMT"));
    assert_eq!(first.body, b"Hello, world!");
    fs::write(&file, b"Hello, WORLD!").unwrap();
    pair.advance(Duration::from_millis(999)).send(get("/hello.txt").as_bytes());
    let trusted = one_of(&pair.take_received());
    assert_eq!(trusted.body, b"Hello, world!", "within the window the entry is trusted");
    pair.advance(Duration::from_millis(1)).send(get("/hello.txt").as_bytes());
    let checked = one_of(&pair.take_received());
    assert_eq!(checked.body, b"Hello, WORLD!", "after it the file is checked again");
    assert_eq!(checked.header("Date"), Some("Tue, 01 Dec 2026 00:00:01 GMT"));
}
