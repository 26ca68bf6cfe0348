//! The HTTP session answers the same bytes the same way however they are
//! split into reads (issue 11 row 24), above all near its limits: a long
//! method, a target around the target and request-line limits, a head
//! around the head limit, a long version and bad bytes. And the target
//! limit RFC 9112 section 3 recommends: 8,000 octets (row 18).

mod common;
mod http;

use std::sync::Arc;

use ferry_proto::Flow;
use ferry_proto::http::{HttpConfig, HttpSession};
use http::{Run, Tree, drive_pieces, file_cache, one, run};

/// Feeds `head` in `pieces` to a fresh session.
fn feed(config: &Arc<HttpConfig>, pieces: &[&[u8]]) -> Run {
    let mut s = HttpSession::new(Arc::clone(config), file_cache());
    drive_pieces(&mut s, pieces, config.max_head)
}

/// `METHOD TARGET VERSION`, a Host, `pad` bytes of an extra header field
/// (none if 0), and the blank line.
fn head(method: &[u8], target_len: usize, version: &[u8], pad: usize, bad: Option<u8>) -> Vec<u8> {
    let mut target = b"/hello.txt?".to_vec();
    target.resize(target_len.max(target.len()), b'q');
    target.truncate(target_len.max(1));
    if let Some(b) = bad {
        // A byte a target must not hold, near its end.
        let at = target.len().saturating_sub(2).max(1);
        target.insert(at, b);
    }
    let mut h = [method, b" ", &target, b" ", version, b"\r\nHost: t\r\n"].concat();
    if pad > 0 {
        h.extend_from_slice(b"X-Pad: ");
        h.resize(h.len() + pad, b'p');
        h.extend_from_slice(b"\r\n");
    }
    h.extend_from_slice(b"\r\n");
    h
}

/// The offsets worth splitting at: around the target limit, the request
/// line's end, every multiple of 1 KiB up to the head limit and past it,
/// and the head's end.
fn cuts(h: &[u8], config: &HttpConfig) -> Vec<usize> {
    let lf = h.iter().position(|&b| b == b'\n').unwrap_or(h.len());
    let mut at: Vec<usize> = Vec::new();
    let around = |at: &mut Vec<usize>, x: usize, r: usize| at.extend(x.saturating_sub(r)..=x + r);
    around(&mut at, config.max_uri, 4);
    // The request-line limit lies a little past the target limit.
    at.extend(config.max_uri..=config.max_uri + 128);
    around(&mut at, lf, 3);
    around(&mut at, config.max_head, 4);
    around(&mut at, h.len(), 3);
    at.extend((1..=config.max_head / 1024 + 1).map(|k| k * 1024));
    at.retain(|&c| c > 0 && c < h.len());
    at.sort_unstable();
    at.dedup();
    at
}

/// Whole, byte by byte, in 7- and 1000-byte reads, and split in two at
/// every offset of [`cuts`]: the same answer bytes and the same end.
fn assert_split_independent(config: &Arc<HttpConfig>, h: &[u8]) -> Run {
    let shown = format!(
        "{:?}... ({} bytes, line {})",
        String::from_utf8_lossy(&h[..h.len().min(40)]),
        h.len(),
        h.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1)
    );
    let whole = feed(config, &[h]);
    assert!(!whole.sent.is_empty(), "{shown}: answered");
    for step in [1, 7, 1000] {
        let pieces: Vec<&[u8]> = h.chunks(step).collect();
        let got = feed(config, &pieces);
        assert_eq!((got.text(), got.flow()), (whole.text(), whole.flow()), "{shown}: in {step}-byte reads");
    }
    for cut in cuts(h, config) {
        let got = feed(config, &[&h[..cut], &h[cut..]]);
        assert_eq!((got.text(), got.flow()), (whole.text(), whole.flow()), "{shown}: split at {cut}");
    }
    whole
}

#[test]
fn answers_do_not_depend_on_how_a_head_was_split() {
    let t = Tree::new("splits");
    let config = Arc::new(t.config());
    let (u, h) = (config.max_uri, config.max_head);
    let long_method = vec![b'M'; 100];
    let long_version = [&b"HTTP/1.1"[..], &[b'9'; 100]].concat();
    let methods: [&[u8]; 4] = [b"GET", b"POST", &long_method, b"G\0T"];
    let versions: [&[u8]; 3] = [b"HTTP/1.1", b"HTTP/2.0", &long_version];
    let mut targets = vec![1, 100, u - 120, u - 100, u - 1, u, u + 1, u + 100, 2 * u, h - 200, h + 10];
    targets.extend((u + 30..=u + 70).step_by(5));
    let mut statuses = std::collections::BTreeSet::new();
    for method in methods {
        for version in versions {
            for &target in &targets {
                for bad in [None, Some(b'\x01')] {
                    let r = assert_split_independent(&config, &head(method, target, version, 0, bad));
                    statuses.insert(one(&r).status);
                }
            }
        }
    }
    // Heads around the head limit: a long method and a long target, then
    // header bytes up to, at and past `max_head`.
    let base = head(&long_method, u - 1, b"HTTP/1.1", 0, None).len();
    for pad in (h - base - 20..=h - base).chain([h]) {
        for method in [&long_method[..], b"GET"] {
            let r = assert_split_independent(&config, &head(method, u - 1, b"HTTP/1.1", pad, None));
            statuses.insert(one(&r).status);
        }
    }
    // The cases cover what the limits decide between.
    for status in [200, 400, 405, 414, 431, 501, 505] {
        assert!(statuses.contains(&status), "no case answered {status}: {statuses:?}");
    }
}

/// RFC 9112 section 3: "at a minimum, request-line lengths of 8000
/// octets". An 8 KiB target is served; a longer one is 414; a head over
/// the head limit is 431.
#[test]
fn eight_kib_targets_are_served() {
    let t = Tree::new("long-target");
    let config = t.config();
    assert!(config.max_uri >= 8192, "max_uri {}", config.max_uri);
    assert_eq!(config.max_head, http::DEFAULT_MAX_HEAD);
    assert!(config.max_head <= ferry_proto::conn::MAX_INPUT, "a whole head fits the driver's input buffer");
    let long_get = |target_len: usize, file: &str| {
        let mut target = format!("/{file}?");
        target.extend(std::iter::repeat_n('q', target_len - target.len()));
        format!("GET {target} HTTP/1.1\r\nHost: t\r\nUser-Agent: a-browser/1.0\r\nAccept: */*\r\n\r\n")
    };
    let mut s = t.session();
    let r = run(&mut s, &long_get(8192, "hello.txt"));
    let resp = one(&r);
    assert_eq!((resp.status, resp.body_text().as_str()), (200, "Hello, world!"));
    assert_eq!(r.flow(), Flow::Continue);
    let mut s = t.session();
    assert_eq!(one(&run(&mut s, &long_get(8192, "missing"))).status, 404);
    let mut s = t.session();
    let r = run(&mut s, &long_get(config.max_uri + 1, "hello.txt"));
    assert_eq!((one(&r).status, r.flow()), (414, Flow::CloseAfterFlush));
    let mut s = t.session();
    let padded = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Pad: {}\r\n\r\n", "p".repeat(config.max_head));
    let r = run(&mut s, &padded);
    assert_eq!((one(&r).status, r.flow()), (431, Flow::CloseAfterFlush));
}
