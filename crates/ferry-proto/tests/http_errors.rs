//! The HTTP session's refusals and connection rules, driven from byte
//! strings without sockets: every error status, heads too large, keep-alive
//! and close, and request bodies skipped.

mod common;
mod http;

use std::sync::Arc;

use ferry_proto::Now;
use ferry_proto::http::HttpSession;
use ferry_proto::{Flow, Outbox, Session};
use http::{Tree, drive_step, file_cache, get, get_with, one, parse_responses, run};

#[test]
fn every_error_status() {
    let t = Tree::new("errors");
    let long_target = format!("/{}", "a".repeat(9000));
    let big_header = format!("X-Big: {}", "b".repeat(17_000));
    let many_headers: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
    let cases: Vec<(String, u16, Flow)> = vec![
        ("hello\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        ("GET / HTTP/1.1\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        ("GET /a%zz HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        ("GET relative HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        ("GET / HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        // Issue 11 row 14: an invalid Host value (RFC 9112 section 3.2).
        ("GET /hello.txt HTTP/1.1\r\nHost: a b\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        ("GET /hello.txt HTTP/1.1\r\nHost: a/b\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        ("GET /hello.txt HTTP/1.1\r\nHost: t:80x\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        ("GET /hello.txt HTTP/1.1\r\nHost: [::1\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        ("GET /hello.txt HTTP/1.1\r\nHost: a%zz\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        ("GET /hello.txt HTTP/1.0\r\nHost: a\"b\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
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
        ("TRACE / HTTP/1.1\r\nHost: t\r\n\r\n".into(), 405, Flow::Continue),
        // Issue 11 row 15: a failed If-Match (RFC 9110 section 13.1.1).
        (get_with("/hello.txt", "If-Match: \"x\""), 412, Flow::Continue),
        (get_with("/hello.txt", "If-Match: W/\"x\", \"y\""), 412, Flow::Continue),
        (get_with("/missing", "If-Match: *"), 404, Flow::Continue),
        // Issue 11 row 17: methods are case-sensitive, so `get` and `FOO`
        // are unknown methods: 501 (RFC 9110 section 9.1).
        ("get /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n".into(), 501, Flow::Continue),
        ("FOO /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n".into(), 501, Flow::Continue),
        ("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n".into(), 413, Flow::CloseAfterFlush),
        (format!("GET {long_target} HTTP/1.1\r\nHost: t\r\n\r\n"), 414, Flow::CloseAfterFlush),
        (format!("GET / HTTP/1.1\r\nHost: t\r\n{big_header}\r\n\r\n"), 431, Flow::CloseAfterFlush),
        (format!("GET / HTTP/1.1\r\nHost: t\r\n{many_headers}\r\n"), 431, Flow::CloseAfterFlush),
        ("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n".into(), 501, Flow::CloseAfterFlush),
        ("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".into(), 501, Flow::CloseAfterFlush),
        // Issue 11 row 16: chunked not last, or twice (RFC 9112 section 6.3).
        ("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        (
            "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
            400,
            Flow::CloseAfterFlush,
        ),
        (
            "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n".into(),
            400,
            Flow::CloseAfterFlush,
        ),
        // Issue 11 row 17: a space in the target is a malformed request line.
        ("GET /a b HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
        ("GET /a  HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400, Flow::CloseAfterFlush),
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
        assert_eq!(resp.header("Allow").is_some(), status == 405, "for {shown:?}");
        if status == 405 {
            assert_eq!(resp.header("Allow"), Some("GET, HEAD, OPTIONS, PROPFIND"));
        }
    }
}

#[test]
fn heads_too_large_are_refused_before_they_end() {
    let t = Tree::new("limits");
    // A request line that never ends: 414 once past the target limit.
    let mut s = t.session();
    let line = format!("GET /{}", "a".repeat(20_000));
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
fn valid_hosts_if_match_and_known_methods_are_kept() {
    let t = Tree::new("conformance");
    // Valid Host values (RFC 3986 host [":" port]) are served.
    for host in ["", "t", "example.com:8080", "127.0.0.1", "[::1]:80", "[v1.x]", "a%41-b_~.c!$&'()*+,;=", "t:"] {
        let mut s = t.session();
        let r = run(&mut s, &format!("GET /hello.txt HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        assert_eq!((one(&r).status, r.flow()), (200, Flow::Continue), "Host: {host:?}");
    }
    // If-Match that holds (strong comparison, or `*`), also beside If-None-Match.
    let mut s = t.session();
    let etag = one(&run(&mut s, &get("/hello.txt"))).header("ETag").map(str::to_owned).unwrap();
    let holds = [format!("If-Match: {etag}"), format!("If-Match: \"x\", {etag}"), "If-Match: *".into()];
    for header in holds {
        let r = run(&mut s, &get_with("/hello.txt", &header));
        assert_eq!(one(&r).status, 200, "{header}");
    }
    // A weak tag never matches strongly; a failed If-Match wins over a Range.
    for header in [format!("If-Match: W/{etag}"), "If-Match: \"x\"\r\nRange: bytes=0-1".into()] {
        let r = run(&mut s, &get_with("/hello.txt", &header));
        assert_eq!(one(&r).status, 412, "{header}");
    }
    let r = run(&mut s, "HEAD /hello.txt HTTP/1.1\r\nHost: t\r\nIf-Match: \"x\"\r\n\r\n");
    assert_eq!(parse_responses(&r.sent, &[true])[0].status, 412);
    // Every method RFC 9110 section 9 defines besides GET, HEAD and
    // OPTIONS is 405 on a read-only server (uploads: http_uploads.rs).
    for method in ["POST", "PUT", "DELETE", "CONNECT", "TRACE"] {
        let r = run(&mut s, &format!("{method} /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"));
        assert_eq!(one(&r).status, 405, "{method}");
    }
    // An unknown method's body is skipped like a known one's before its 501.
    let r = run(
        &mut s,
        "FOO / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcGET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let statuses: Vec<u16> = parse_responses(&r.sent, &[]).iter().map(|r| r.status).collect();
    assert_eq!((statuses, r.flow()), (vec![501, 200], Flow::Continue));
}
