//! HTTP/1.1 conformance on raw sockets under all seven models: what RFC 9110
//! and 9112 say a server must answer to an invalid Host, a failed
//! precondition, a bad Transfer-Encoding, a malformed request line and an
//! unknown method, and whether the connection stays open after it.

mod http_util;
mod util;

use std::io::BufReader;

use http_util::{closed_by_peer, read_response, send_raw};
use util::scratch;
use util::serve::{MODELS, Svc, connect, start};

#[test]
fn conformance_of_host_if_match_transfer_encoding_and_request_line() {
    // Issue 11 rows 14-17: (request, status, closes?). A connection kept
    // open must answer a following request.
    let cases: &[(&[u8], u16, bool)] = &[
        (b"GET /hello.txt HTTP/1.1\r\nHost: a b\r\n\r\n", 400, true),
        (b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-Match: \"x\"\r\n\r\n", 412, false),
        (b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-Match: *\r\n\r\n", 200, false),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, true),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, true),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, true),
        (b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n", 400, true),
        (b"FOO /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", 501, false),
        (b"PUT /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", 405, false),
    ];
    let dir = scratch();
    let root = dir.path().to_path_buf();
    std::fs::write(root.join("hello.txt"), b"Hello, world!").expect("write");
    for &model in MODELS {
        let mut server = start(model, Svc::Http, &root, &[]);
        let m = model;
        let mut wrong = Vec::new();
        for &(request, status, closes) in cases {
            let shown = String::from_utf8_lossy(&request[..request.len().min(60)]);
            let mut s = connect(server.addr);
            let mut rd = BufReader::new(s.try_clone().expect("clone"));
            send_raw(&mut s, request);
            let r = read_response(&mut rd, false);
            let got = (r.status, r.header("connection") == Some("close"));
            if got != (status, closes) {
                wrong.push(format!("{shown:?}: got {got:?}, want {:?}", (status, closes)));
            } else if closes {
                assert!(closed_by_peer(&mut rd), "{m}: closes after {shown}");
            } else {
                send_raw(&mut s, b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
                assert_eq!(read_response(&mut rd, false).status, 200, "{m}: kept open after {shown}");
            }
        }
        assert!(wrong.is_empty(), "{m}:\n{}", wrong.join("\n"));
        server.stop();
    }
}
