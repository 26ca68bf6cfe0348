//! The HTTP session's answers, driven from byte strings without sockets:
//! files, HEAD, ranges, conditional requests, directories and their
//! listings, and escapes out of the root refused.

mod common;
mod http;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use ferry_proto::Now;
use ferry_proto::http::HttpSession;
use ferry_proto::{Chunk, Flow, Outbox, Session};
use http::{Tree, big_content, file_cache, get, get_with, one, parse_responses, run};

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
    fs::create_dir(weird.join(".ferry-partials")).unwrap();
    fs::write(weird.join(".ferry-partials/0123.part"), b"partial upload").unwrap();
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
    assert!(!html.contains("ferry-partials"), "partial uploads are hidden");
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
    // Partials cannot be reached by name either.
    for href in [".ferry-partials/0123.part", "%2Eferry-partials/"] {
        let resp = one(&run(&mut t.session(), &get(&format!("/weird/{href}"))));
        assert_eq!(resp.status, 400, "{href}");
    }
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
