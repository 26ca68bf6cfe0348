//! The HTTP session over a stream, driven without sockets: pipelined
//! requests, requests split at any boundary, timeouts on the Pair's fake
//! clock, and random input that must never panic or overrun the limits.

mod common;
mod http;

use std::sync::Arc;
use std::time::Duration;

use ferry_proto::Now;
use ferry_proto::conn::{Pair, Timeouts};
use ferry_proto::http::HttpSession;
use ferry_proto::{Flow, Outbox, Session};
use http::{Tree, drive_pieces, drive_step, file_cache, get, get_with, one_of, parse_responses, run};
use proptest::prelude::*;

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
    assert_eq!(statuses, [200, 200, 206, 304, 301, 200, 404, 405, 200, 200, 200]);
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

/// A session with small limits, so random inputs hit them.
fn small_limits(t: &Tree) -> HttpSession {
    let mut config = t.config();
    config.max_head = 512;
    config.max_uri = 128;
    config.max_body = 64;
    HttpSession::new(Arc::new(config), file_cache())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_or_overrun_limits(
        raw in proptest::collection::vec(any::<u8>(), 0..3000),
        step in 1usize..600,
    ) {
        let t = Tree::new("prop-raw");
        let mut s = small_limits(&t);
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
        let mut s = small_limits(&t);
        let input = tokens.concat();
        let pieces: Vec<&[u8]> = input.chunks(step).collect();
        let r = drive_pieces(&mut s, &pieces, 512);
        prop_assert!(r.sent.is_empty() || r.sent.starts_with(b"HTTP/1.1 "), "{}", r.text());
    }
}

/// A graceful stop that finds an answer in flight: the answers still to
/// come on that connection say `Connection: close`, and it closes after
/// them instead of being cut without a word (issue 11 row 21).
#[test]
fn answers_during_a_drain_say_connection_close() {
    let t = Tree::new("drain");
    let mut s = t.session();
    let mut pair = Pair::new(&mut s, Timeouts::default()).window(4096);
    // The big body is in flight when the drain begins; the client asks
    // for more while it reads.
    pair.send(get("/big.bin").as_bytes());
    pair.server_shutdown();
    assert!(pair.closed().is_none(), "the answer in flight is finished first");
    pair.send(get("/hello.txt").as_bytes());
    while pair.closed().is_none() && !pair.server_fin() {
        pair.client_read();
    }
    let all = parse_responses(pair.received(), &[]);
    assert_eq!(all.len(), 2, "both answered");
    assert_eq!(all[0].header("Connection"), None, "the first went out before the drain began");
    assert_eq!((all[1].status, all[1].header("Connection")), (200, Some("close")));
}
