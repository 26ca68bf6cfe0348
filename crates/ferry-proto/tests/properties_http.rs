//! The HTTP session's invariants as proptest properties, on stable in CI:
//! the same checks the `http_session` and `http_parsers` fuzz targets run
//! (`tests/invariants/`, `docs/FUZZING.md`), on random inputs.

mod invariants;

use invariants::source::repeat_to;
use invariants::tree::Tree;
use invariants::{http, http_parsers};
use proptest::prelude::*;

/// Bytes that mostly stand for pieces of requests (0x80 and up; see
/// `invariants::http::TOKENS`), sometimes for themselves.
fn request_like() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(prop_oneof![3 => 0x80u8..=0xff, 1 => any::<u8>()], 0..300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(invariants::cases(64)))]

    #[test]
    fn http_session_invariants(data in request_like()) {
        http::check(&data);
    }

    #[test]
    fn http_parser_invariants(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        http_parsers::check(&data);
    }
}

/// Thousands of pipelined requests, the client reading nothing until
/// they are all sent: the queue stays bounded (and one pass handed all of
/// them too), and a client reading slowly gets the same answers.
#[test]
fn thousands_of_undrained_requests_keep_the_queue_bounded() {
    let tree = Tree::new("http-flood");
    let mixes: [&[u8]; 4] = [
        b"GET /edge.bin HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\nHEAD /sub HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /site/ HTTP/1.1\r\nHost: t\r\n\r\nGET /sub/ HTTP/1.1\r\nHost: t\r\n\r\n",
    ];
    for mix in mixes {
        let flood = repeat_to(mix, 3000 * mix.len().min(40), 3000);
        http::check_undrained(&tree, false, &flood, 64 * 1024);
    }
}

/// Every known way out of the root: the fuzzer's requests reach these by
/// chance, this test always.
#[test]
fn every_way_out_is_closed() {
    let tree = Tree::new("http-ways-out");
    let targets = [
        "/up",
        "/sub/upup",
        "/abs",
        "/absdir/",
        "/out/",
        "/out",
        "/proc/",
        "/sub/deeper/top/",
        "/loop",
        "/..",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/in/../../secret.txt",
        "http://h/%2e%2e/%2e%2e/secret.txt",
    ];
    for target in targets {
        let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
        let run = http::check_stream(&tree, false, request.as_bytes(), &invariants::source::Split::Step(1));
        let status = http::responses(&run.received).first().map(|r| r.status);
        assert!(matches!(status, Some(400 | 403 | 404)), "{target}: {}", run.text());
    }
}
