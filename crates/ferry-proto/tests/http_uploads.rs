//! HTTP uploads and WebDAV writes without sockets, on the in-memory
//! driver: PUT through the partials (never visible before complete),
//! `Expect: 100-continue`, chunked bodies in any split, the size limit,
//! resuming with `Content-Range` after `HEAD`'s `Upload-Offset`, digests,
//! and the WebDAV answers.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_proto::access::Access;
use ferry_proto::conn::{Pair, Timeouts};
use ferry_proto::files::{PartialLimits, Partials};
use ferry_proto::http::{FileCache, HttpConfig, HttpSession};
use ferry_proto::root::Root;
use sha2::{Digest, Sha256};

/// A served directory for one test, removed on drop.
struct Tree(PathBuf);

impl Tree {
    fn new(name: &str) -> Tree {
        let dir = std::env::temp_dir().join(format!("ferry-http-up-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("old.txt"), b"old").unwrap();
        Tree(dir)
    }

    fn config(&self, max_upload: Option<u64>) -> HttpConfig {
        let root = Arc::new(Root::open(&self.0).unwrap());
        let partials = Arc::new(Partials::open(&root, PartialLimits::default()).unwrap());
        HttpConfig::new(root).with_access(Arc::new(Access::open(true))).with_writes(partials, max_upload)
    }

    fn session(&self) -> HttpSession {
        HttpSession::new(Arc::new(self.config(None)), FileCache::new())
    }

    fn partials(&self) -> Vec<u64> {
        let dir = fs::read_dir(self.0.join(".ferry-partials")).unwrap();
        dir.map(|e| e.unwrap().metadata().unwrap().len()).collect()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Status codes of the responses in `bytes`, in order (interim 100s too),
/// with each head's text.
fn responses(mut bytes: &[u8]) -> Vec<(u16, String)> {
    let mut all = Vec::new();
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let status = head[9..12].parse().unwrap();
        let len =
            head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).map_or(0, |v| v.parse::<usize>().unwrap());
        bytes = &bytes[end + 4 + len..];
        all.push((status, head));
    }
    all
}

fn statuses(bytes: &[u8]) -> Vec<u16> {
    responses(bytes).into_iter().map(|(s, _)| s).collect()
}

/// Sends `input` in pieces of `step` bytes, finishing jobs, and returns
/// what came back and whether the server closed.
fn exchange(session: &mut HttpSession, input: &[u8], step: usize) -> (Vec<u8>, bool) {
    let mut pair = Pair::new(session, Timeouts::default());
    for piece in input.chunks(step.max(1)) {
        pair.send(piece).finish_jobs();
    }
    pair.finish_jobs();
    let closed = pair.closed().is_some() || pair.server_fin();
    (pair.received().to_vec(), closed)
}

fn put(path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let head = format!("PUT {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n{headers}\r\n", body.len());
    [head.as_bytes(), body].concat()
}

fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in body.chunks(chunk) {
        out.extend_from_slice(format!("{:x};ext=1\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    out
}

#[test]
fn put_creates_then_replaces_and_the_connection_goes_on() {
    let t = Tree::new("create");
    let body: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    let input =
        [put("/new.bin", "", &body), put("/old.txt", "", b"fresh"), b"GET /sub/ HTTP/1.1\r\nHost: t\r\n\r\n".to_vec()]
            .concat();
    for step in [usize::MAX, 4096, 7] {
        let _ = fs::remove_file(t.0.join("new.bin"));
        let (out, closed) = exchange(&mut t.session(), &input, step);
        let got = statuses(&out);
        assert_eq!(got, [201, 204, 200], "step {step}: {}", String::from_utf8_lossy(&out));
        assert!(!closed, "step {step}");
        assert_eq!(fs::read(t.0.join("new.bin")).unwrap(), body, "step {step}");
        assert_eq!(fs::read(t.0.join("old.txt")).unwrap(), b"fresh");
        assert!(t.partials().is_empty(), "the partial became the file");
    }
}

#[test]
fn expect_continue_is_answered_before_the_body() {
    let t = Tree::new("expect");
    let mut s = t.session();
    let mut pair = Pair::new(&mut s, Timeouts::default());
    pair.send(b"PUT /e.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(pair.received(), b"HTTP/1.1 100 Continue\r\n\r\n", "100 before a byte of the body");
    pair.send(b"hello").finish_jobs();
    assert_eq!(statuses(pair.received()), [100, 201]);
    assert_eq!(fs::read(t.0.join("e.txt")).unwrap(), b"hello");

    // A PUT the server refuses gets its final answer instead, and the
    // body is never invited.
    let mut s = HttpSession::new(Arc::new(t.config(Some(4))), FileCache::new());
    let (out, closed) = exchange(
        &mut s,
        b"PUT /f.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        usize::MAX,
    );
    assert_eq!(statuses(&out), [413]);
    assert!(closed);
    assert!(!t.0.join("f.txt").exists() && t.partials().is_empty(), "no disk used");
}

#[test]
fn chunked_bodies_in_any_split() {
    let t = Tree::new("chunked");
    let body: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let head = b"PUT /c.bin HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    let input = [&head[..], &chunked(&body, 3000), b"GET /c.bin HTTP/1.1\r\nHost: t\r\n\r\n"].concat();
    for step in [usize::MAX, 1000, 3] {
        let _ = fs::remove_file(t.0.join("c.bin"));
        let (out, closed) = exchange(&mut t.session(), &input, step);
        assert_eq!(statuses(&out), [201, 200], "step {step}");
        assert!(!closed);
        assert_eq!(fs::read(t.0.join("c.bin")).unwrap(), body, "step {step}");
    }
}

#[test]
fn bad_chunked_framing_is_400_and_closes_leaving_nothing() {
    let t = Tree::new("badchunk");
    let input =
        b"PUT /b.bin HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX3\r\nabc\r\n0\r\n\r\n";
    let (out, closed) = exchange(&mut t.session(), input, usize::MAX);
    assert_eq!(statuses(&out), [400]);
    assert!(closed, "the stream cannot be trusted after broken framing");
    assert!(!t.0.join("b.bin").exists());
    assert!(t.partials().is_empty(), "a chunked upload cannot resume: its partial goes");
}

#[test]
fn over_the_limit_is_413_before_the_disk_fills() {
    let t = Tree::new("limit");
    let mut s = HttpSession::new(Arc::new(t.config(Some(1000))), FileCache::new());
    let (out, closed) = exchange(&mut s, &put("/big.bin", "", &[7; 1001]), usize::MAX);
    assert_eq!(statuses(&out), [413]);
    assert!(closed);
    assert!(t.partials().is_empty() && !t.0.join("big.bin").exists());

    // Chunked: refused at the chunk that passes the limit, before its data.
    let mut s = HttpSession::new(Arc::new(t.config(Some(1000))), FileCache::new());
    let head = b"PUT /big.bin HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    let (out, closed) = exchange(&mut s, &[&head[..], &chunked(&[7; 3000], 600)].concat(), usize::MAX);
    assert_eq!(statuses(&out), [413]);
    assert!(closed);
    assert!(t.partials().is_empty() && !t.0.join("big.bin").exists());
}

#[test]
fn an_interrupted_put_resumes_from_the_offset_head_tells() {
    let t = Tree::new("resume");
    let body: Vec<u8> = (0..10_000u32).map(|i| (i % 241) as u8).collect();
    let mut s = t.session();
    {
        let mut pair = Pair::new(&mut s, Timeouts::default());
        let whole = put("/r.bin", "", &body);
        pair.send(&whole[..whole.len() - 6000]).client_close().finish_jobs();
        assert!(pair.received().is_empty(), "no answer to a body cut short");
    }
    assert!(!t.0.join("r.bin").exists(), "never visible under its name before complete");
    assert_eq!(t.partials(), [4000], "the partial stays for a resume");

    let (out, _) = exchange(&mut t.session(), b"HEAD /r.bin HTTP/1.1\r\nHost: t\r\n\r\n", usize::MAX);
    let head = String::from_utf8_lossy(&out).into_owned();
    assert!(head.starts_with("HTTP/1.1 404 ") && head.ends_with("\r\n\r\n"), "{head}");
    assert!(head.contains("\r\nUpload-Offset: 4000\r\n") && head.contains("\r\nUpload-Length: 10000"), "{head}");

    // An offset beyond what is held: 409 naming the offset held.
    let beyond = put("/r.bin", "Content-Range: bytes 5000-9999/10000\r\n", &body[5000..]);
    let (out, closed) = exchange(&mut t.session(), &beyond, usize::MAX);
    let (status, head) = responses(&out).remove(0);
    assert_eq!((status, closed), (409, true));
    assert!(head.contains("Upload-Offset: 4000"), "{head}");

    // A piece that does not reach the end: 202 and the new offset.
    let piece = put("/r.bin", "Content-Range: bytes 4000-6999/10000\r\n", &body[4000..7000]);
    let (out, _) = exchange(&mut t.session(), &piece, usize::MAX);
    let (status, head) = responses(&out).remove(0);
    assert_eq!(status, 202);
    assert!(head.contains("Upload-Offset: 7000"), "{head}");
    assert!(!t.0.join("r.bin").exists());

    let rest = put("/r.bin", "Content-Range: bytes 7000-9999/10000\r\n", &body[7000..]);
    let (out, _) = exchange(&mut t.session(), &rest, usize::MAX);
    assert_eq!(statuses(&out), [201]);
    assert_eq!(fs::read(t.0.join("r.bin")).unwrap(), body);
    assert!(t.partials().is_empty());
}

#[test]
fn another_total_size_starts_over() {
    let t = Tree::new("identity");
    let mut s = t.session();
    {
        let mut pair = Pair::new(&mut s, Timeouts::default());
        let whole = put("/i.bin", "", &[1; 100]);
        pair.send(&whole[..whole.len() - 50]).client_close();
    }
    assert_eq!(t.partials(), [50]);
    // The same offset of a file of another size does not continue it.
    let other = put("/i.bin", "Content-Range: bytes 50-119/120\r\n", &[2; 70]);
    let (out, _) = exchange(&mut t.session(), &other, usize::MAX);
    let (status, head) = responses(&out).remove(0);
    assert_eq!(status, 409);
    assert!(head.contains("Upload-Offset: 0"), "{head}");
    let (out, _) = exchange(&mut t.session(), &put("/i.bin", "", &[2; 120]), usize::MAX);
    assert_eq!(statuses(&out), [201]);
    assert_eq!(fs::read(t.0.join("i.bin")).unwrap(), [2; 120]);
}

/// Standard base64 (with padding) of the SHA-256 of `body`.
fn digest_field(body: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in Sha256::digest(body).chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| n << 8 | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ABC[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

#[test]
fn digests_are_checked_before_the_rename() {
    let t = Tree::new("digest");
    let good = format!("Repr-Digest: sha-256=:{}:\r\n", digest_field(b"hello"));
    let bad = format!("Content-Digest: sha-256=:{}:\r\n", digest_field(b"other"));
    let mut s = t.session();
    let mut pair = Pair::new(&mut s, Timeouts::default());
    pair.send(&put("/d.txt", &bad, b"hello")).finish_jobs();
    assert_eq!(statuses(pair.received()), [400], "a mismatch is refused");
    assert!(!t.0.join("d.txt").exists(), "nothing renamed on a mismatch");
    pair.send(&put("/d.txt", &good, b"hello")).finish_jobs();
    assert_eq!(statuses(pair.received()), [400, 201], "the connection goes on");
    assert_eq!(fs::read(t.0.join("d.txt")).unwrap(), b"hello");
}

#[test]
fn writes_on_a_read_only_server_are_405_and_paths_stay_inside() {
    let t = Tree::new("readonly");
    let root = Arc::new(Root::open(&t.0).unwrap());
    let mut s = HttpSession::new(Arc::new(HttpConfig::new(root)), FileCache::new());
    let (out, _) = exchange(&mut s, &put("/x.txt", "", b"abc"), usize::MAX);
    let (status, head) = responses(&out).remove(0);
    assert_eq!(status, 405);
    assert!(head.contains("Allow: GET, HEAD, OPTIONS, PROPFIND"), "{head}");
    assert!(!t.0.join("x.txt").exists());

    let outside = t.0.parent().unwrap().join("escaped.txt");
    let (out, _) = exchange(&mut t.session(), &put("/../escaped.txt", "", b"abc"), usize::MAX);
    assert_eq!(statuses(&out), [404]);
    let (out, _) = exchange(&mut t.session(), &put("/%2e%2e/escaped.txt", "", b"abc"), usize::MAX);
    assert_eq!(statuses(&out), [404]);
    assert!(!outside.exists());
    let (out, _) = exchange(&mut t.session(), &put("/.ferry-partials/x", "", b"abc"), usize::MAX);
    assert_ne!(statuses(&out)[0] / 100, 2, "the partials' home is out of reach");
}

fn request(method: &str, path: &str, headers: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").into_bytes()
}

#[test]
fn webdav_answers() {
    let t = Tree::new("dav");
    fs::write(t.0.join("sub/in.txt"), b"x").unwrap();
    let cases: &[(&str, &str, &str, u16)] = &[
        ("MKCOL", "/made", "", 201),
        ("MKCOL", "/made", "", 405),
        ("MKCOL", "/no/such", "", 409),
        ("DELETE", "/sub", "", 409),
        ("MOVE", "/old.txt", "Destination: http://t/made/new.txt\r\n", 201),
        ("MOVE", "/sub/in.txt", "Destination: /made/new.txt\r\nOverwrite: F\r\n", 412),
        ("MOVE", "/sub/in.txt", "Destination: /made/new.txt\r\n", 204),
        ("MOVE", "/made/new.txt", "Destination: /missing/new.txt\r\n", 409),
        ("MOVE", "/made/new.txt", "Destination: /../new.txt\r\n", 404),
        ("DELETE", "/made/new.txt", "", 204),
        ("DELETE", "/made/new.txt", "", 404),
        ("DELETE", "/made", "", 204),
        ("PROPFIND", "/sub/", "Depth: infinity\r\n", 403),
        ("PROPFIND", "/sub/", "Depth: 1\r\n", 207),
        ("OPTIONS", "/", "", 200),
    ];
    let mut s = t.session();
    let mut pair = Pair::new(&mut s, Timeouts::default());
    for (i, &(method, path, headers, want)) in cases.iter().enumerate() {
        pair.send(&request(method, path, headers)).finish_jobs();
        let got = responses(pair.received());
        assert_eq!(got.len(), i + 1, "{method} {path}: one answer each");
        assert_eq!(got[i].0, want, "{method} {path} {headers}: {}", got[i].1);
    }
    assert_eq!(fs::read_dir(t.0.join("sub")).unwrap().count(), 0);
    let options = &responses(pair.received())[cases.len() - 1].1;
    assert!(options.contains("\r\nDAV: 1") && options.contains("PUT, DELETE, MKCOL, MOVE"), "{options}");
}

/// A `multipart/form-data` body as a browser sends it.
fn form(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes());
        if let Some(f) = filename {
            body.extend_from_slice(format!("; filename=\"{f}\"\r\nContent-Type: application/octet-stream").as_bytes());
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

fn post(path: &str, boundary: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

#[test]
fn a_form_post_uploads_each_file_part_in_any_split() {
    let t = Tree::new("form");
    let big: Vec<u8> = (0..150_000u32).map(|i| (i % 250) as u8).collect();
    // Data that holds most of a delimiter, and CRLFs.
    let tricky = b"a\r\n--XyZ\r\n-\r\n--Xy\r\nend".to_vec();
    let boundary = "XyZzy42";
    let body =
        form(boundary, &[("file", Some("big.bin"), &big), ("note", None, b"text"), ("file", Some("t.txt"), &tricky)]);
    let input = [post("/sub/", boundary, &body), b"GET /sub/t.txt HTTP/1.1\r\nHost: t\r\n\r\n".to_vec()].concat();
    for step in [usize::MAX, 10_000, 7] {
        let _ = fs::remove_file(t.0.join("sub/big.bin"));
        let (out, closed) = exchange(&mut t.session(), &input, step);
        let got = responses(&out);
        assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), [303, 200], "step {step}");
        assert!(got[0].1.contains("\r\nLocation: /sub/"), "{}", got[0].1);
        assert!(!closed);
        assert_eq!(fs::read(t.0.join("sub/big.bin")).unwrap(), big, "step {step}");
        assert_eq!(fs::read(t.0.join("sub/t.txt")).unwrap(), tricky, "step {step}");
        assert!(!t.0.join("sub/note").exists() && t.partials().is_empty());
    }
    // A body that breaks off mid-part: 400, nothing under the name.
    let cut = &body[..body.len() - 40];
    let head = format!(
        "POST /sub/ HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        cut.len()
    );
    let _ = fs::remove_file(t.0.join("sub/t.txt"));
    let (out, closed) = exchange(&mut t.session(), &[head.as_bytes(), cut].concat(), usize::MAX);
    assert_eq!(statuses(&out), [400]);
    assert!(closed && !t.0.join("sub/t.txt").exists() && t.partials().is_empty());
    // A traversal in the part's name stays in the folder.
    let body = form(boundary, &[("file", Some("../../up.txt"), b"x")]);
    let (out, _) = exchange(&mut t.session(), &post("/sub/", boundary, &body), usize::MAX);
    assert_eq!(statuses(&out), [303]);
    assert!(t.0.join("sub/up.txt").exists() && !t.0.join("up.txt").exists());
}
