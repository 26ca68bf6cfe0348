//! Content codings over HTTP with real curl under every model: gzip, br
//! and zstd answers decoded by the `gzip`, `brotli` and `zstd` tools (and
//! by `curl --compressed`), precompressed siblings served byte for byte,
//! ranges never compressed, `Vary` and the representation's own `ETag`
//! (304 on it), HEAD saying what GET says, a large file streamed in chunks;
//! then `--compress off`, `--precompressed off`, `--cache-control` and
//! `--qr`.

mod http_util;
mod util;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use http_util::{ALL_MODELS, HttpServer, PATIENCE, require_tool, run_bounded};
use util::scratch;

/// A response fetched by curl: status, headers (lower-case names) and the
/// body exactly as sent (curl does not decode without --compressed).
struct Got {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

fn curl(dir: &Path, args: &[&str]) -> Got {
    let (head, body) = (dir.join("curl-head"), dir.join("curl-body"));
    let _ = std::fs::remove_file(&body);
    let out =
        run_bounded(Command::new("curl").args(["-sS", "-D"]).arg(&head).arg("-o").arg(&body).args(args), PATIENCE);
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let head = std::fs::read_to_string(&head).expect("curl wrote the head");
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Got { status, headers, body: std::fs::read(&body).unwrap_or_default() }
}

/// `data` decoded by the command-line tool of `coding`.
fn decode(coding: &str, data: &[u8]) -> Vec<u8> {
    let tool = match coding {
        "gzip" => "gzip",
        "br" => "brotli",
        "zstd" => "zstd",
        other => panic!("no decoder for {other}"),
    };
    let out = util::run_fed(Command::new(tool).args(["-d", "-c"]), data, PATIENCE);
    assert!(out.status.success(), "{tool} -d: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Text that compresses the way real pages do (not a run of one byte).
fn text(lines: usize) -> Vec<u8> {
    let words = ["ferry", "river", "crossing", "harbour", "ticket", "deck", "rope", "tide", "north", "quay"];
    let mut out = Vec::new();
    for i in 0..lines {
        let line: Vec<&str> = (0..12).map(|j| words[(i * 7 + j * j * 3 + i / 5) % words.len()]).collect();
        out.extend_from_slice(format!("<p id=\"l{i}\">{}</p>\n", line.join(" ")).as_bytes());
    }
    out
}

struct Tree {
    root: PathBuf,
    page: Vec<u8>,
    app: Vec<u8>,
    big: Vec<u8>,
}

fn tree(dir: &Path) -> Tree {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let page = text(1500);
    std::fs::write(root.join("page.html"), &page).unwrap();
    let app = text(800).iter().map(|&b| if b == b'<' { b'(' } else { b }).collect::<Vec<u8>>();
    std::fs::write(root.join("app.js"), &app).unwrap();
    // Precompressed siblings: .br and .gz, not .zst.
    for (tool, ext) in [("gzip", "gz"), ("brotli", "br")] {
        let out = util::run_fed(Command::new(tool).args(["-c", "-9"]), &app, PATIENCE);
        assert!(out.status.success());
        std::fs::write(root.join(format!("app.js.{ext}")), &out.stdout).unwrap();
    }
    // Over 1 MiB: streamed in chunks.
    let big = text(40_000);
    assert!(big.len() > 1 << 21);
    std::fs::write(root.join("big.json"), &big).unwrap();
    std::fs::write(root.join("photo.png"), util::random_bytes(50_000, 7)).unwrap();
    std::fs::write(root.join("tiny.txt"), b"too small to be worth it\n").unwrap();
    Tree { root, page, app, big }
}

#[test]
fn codings_under_every_model() {
    for (tool, package) in [("curl", "curl"), ("gzip", "gzip"), ("brotli", "brotli"), ("zstd", "zstd")] {
        require_tool(tool, package);
    }
    let dir = scratch();
    let t = tree(dir.path());
    for &model in ALL_MODELS {
        let m = model.name;
        let server = HttpServer::start(&t.root, model, &[]);
        let page = server.url("/page.html");

        // Each coding alone: decoded by its own tool, a weak tag of its own.
        let mut tags = Vec::new();
        for coding in ["gzip", "br", "zstd"] {
            let got = curl(dir.path(), &["-H", &format!("Accept-Encoding: {coding}"), &page]);
            assert_eq!(got.status, 200, "{m}");
            assert_eq!(got.header("content-encoding"), Some(coding), "{m}");
            assert_eq!(got.header("vary"), Some("Accept-Encoding"), "{m}");
            assert!(got.body.len() < t.page.len() / 3, "{m} {coding}: {} bytes", got.body.len());
            assert_eq!(got.header("content-length"), Some(got.body.len().to_string().as_str()), "{m}");
            assert_eq!(decode(coding, &got.body), t.page, "{m}: {coding} decodes to the page");
            let tag = got.header("etag").expect("etag").to_string();
            assert!(tag.starts_with("W/\"") && tag.ends_with(&format!("-{coding}\"")), "{m}: {tag}");
            tags.push(tag.clone());

            // HEAD says what GET says, length included.
            let head = curl(dir.path(), &["-I", "-H", &format!("Accept-Encoding: {coding}"), &page]);
            assert_eq!(head.header("content-length"), got.header("content-length"), "{m}: HEAD {coding}");
            assert_eq!(head.header("etag"), got.header("etag"), "{m}: HEAD {coding}");

            // The representation's tag revalidates it.
            let again = curl(
                dir.path(),
                &["-H", &format!("Accept-Encoding: {coding}"), "-H", &format!("If-None-Match: {tag}"), &page],
            );
            assert_eq!(again.status, 304, "{m}: If-None-Match {tag}");
            assert_eq!(again.header("etag"), Some(tag.as_str()), "{m}");
            assert_eq!(again.header("vary"), Some("Accept-Encoding"), "{m}");
        }
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), 3, "{m}: one tag per coding");

        // What a browser sends: q-values first, then zstd > br > gzip.
        let got = curl(dir.path(), &["-H", "Accept-Encoding: gzip, deflate, br, zstd", &page]);
        assert_eq!(got.header("content-encoding"), Some("zstd"), "{m}");
        let got = curl(dir.path(), &["-H", "Accept-Encoding: zstd;q=0.5, br;q=0.2, gzip", &page]);
        assert_eq!(got.header("content-encoding"), Some("gzip"), "{m}");
        // No Accept-Encoding, or identity preferred: the file as it is,
        // still saying it varies, with the file's strong tag.
        for ask in [&[][..], &["-H", "Accept-Encoding: gzip;q=0.5, identity"][..]] {
            let got = curl(dir.path(), &[ask, &[page.as_str()]].concat());
            assert_eq!(got.header("content-encoding"), None, "{m}: {ask:?}");
            assert_eq!(got.body, t.page, "{m}");
            assert_eq!(got.header("vary"), Some("Accept-Encoding"), "{m}");
            assert!(got.header("etag").is_some_and(|e| e.starts_with('"')), "{m}");
        }
        // An identity tag does not revalidate a compressed answer.
        let identity_tag = curl(dir.path(), &[&page]).header("etag").unwrap().to_string();
        let got =
            curl(dir.path(), &["-H", "Accept-Encoding: gzip", "-H", &format!("If-None-Match: {identity_tag}"), &page]);
        assert_eq!(got.status, 200, "{m}: the gzip representation is not the one the client holds");

        // A range is of the identity bytes, whatever the client accepts.
        let got = curl(dir.path(), &["-H", "Accept-Encoding: gzip, br, zstd", "-r", "100-1099", &page]);
        assert_eq!(got.status, 206, "{m}");
        assert_eq!(got.header("content-encoding"), None, "{m}: a range is never compressed");
        assert_eq!(got.body, &t.page[100..1100], "{m}");
        assert_eq!(got.header("vary"), Some("Accept-Encoding"), "{m}");

        // Precompressed siblings, byte for byte; zstd has none: on the fly.
        for (coding, ext) in [("br", "br"), ("gzip", "gz")] {
            let got = curl(dir.path(), &["-H", &format!("Accept-Encoding: {coding}"), &server.url("/app.js")]);
            assert_eq!(got.header("content-encoding"), Some(coding), "{m}");
            let sibling = std::fs::read(t.root.join(format!("app.js.{ext}"))).unwrap();
            assert_eq!(got.body, sibling, "{m}: app.js.{ext} served as it is");
            assert!(got.header("content-type").is_some_and(|ty| ty.contains("javascript")), "{m}");
            assert!(got.header("etag").is_some_and(|e| e.starts_with('"')), "{m}: a sibling's tag is strong");
        }
        let got = curl(dir.path(), &["-H", "Accept-Encoding: zstd, br", &server.url("/app.js")]);
        assert_eq!(got.header("content-encoding"), Some("br"), "{m}: a sibling beats compressing on the fly");
        let got = curl(dir.path(), &["-H", "Accept-Encoding: zstd", &server.url("/app.js")]);
        assert_eq!(got.header("content-encoding"), Some("zstd"), "{m}");
        assert_eq!(decode("zstd", &got.body), t.app, "{m}");

        // Over 1 MiB: chunks, decoded by curl itself and by the tools.
        let got = curl(dir.path(), &["--compressed", &server.url("/big.json")]);
        assert_eq!(got.header("transfer-encoding"), Some("chunked"), "{m}");
        assert!(got.header("content-encoding").is_some(), "{m}");
        assert_eq!(got.body.len(), t.big.len(), "{m}: curl --compressed decoded it");
        assert!(got.body == t.big, "{m}: big.json decoded differs");
        let got =
            curl(dir.path(), &["-H", "Accept-Encoding: gzip", "-H", "Connection: close", &server.url("/big.json")]);
        assert!(decode("gzip", &got.body) == t.big, "{m}: the stream ends whole under Connection: close");

        // Not compressed: types compressed already, and tiny files.
        let got = curl(dir.path(), &["-H", "Accept-Encoding: gzip", &server.url("/photo.png")]);
        assert_eq!((got.header("content-encoding"), got.header("vary")), (None, None), "{m}");
        let got = curl(dir.path(), &["-H", "Accept-Encoding: gzip", &server.url("/tiny.txt")]);
        assert_eq!(got.header("content-encoding"), None, "{m}");
        assert_eq!(got.header("vary"), Some("Accept-Encoding"), "{m}");
    }
}

#[test]
fn switches_cache_control_and_qr() {
    require_tool("curl", "curl");
    let dir = scratch();
    let t = tree(dir.path());
    let model = ALL_MODELS[5];
    let m = model.name;

    let args = ["--compress", "off", "--cache-control", "text/html=max-age=60", "--cache-control", "image/png=off"];
    let server = HttpServer::start(&t.root, model, &args);
    let got = curl(dir.path(), &["-H", "Accept-Encoding: gzip", &server.url("/page.html")]);
    assert_eq!(got.header("content-encoding"), None, "{m}: --compress off");
    assert_eq!(got.header("cache-control"), Some("max-age=60"), "{m}");
    let got = curl(dir.path(), &["-H", "Accept-Encoding: br", &server.url("/app.js")]);
    assert_eq!(got.header("content-encoding"), Some("br"), "{m}: siblings still served");
    assert_eq!(got.header("cache-control"), Some("no-cache"), "{m}: the default for the rest");
    let got = curl(dir.path(), &[&server.url("/photo.png")]);
    assert_eq!(got.header("cache-control"), None, "{m}: off for that type");
    drop(server);

    let server = HttpServer::start(&t.root, model, &["--precompressed", "off", "--compress", "fast"]);
    let got = curl(dir.path(), &["-H", "Accept-Encoding: br", &server.url("/app.js")]);
    assert_eq!(got.header("content-encoding"), Some("br"), "{m}");
    let sibling = std::fs::read(t.root.join("app.js.br")).unwrap();
    assert_ne!(got.body, sibling, "{m}: compressed on the fly, not the sibling");
    assert_eq!(decode("br", &got.body), t.app, "{m}");
    drop(server);

    let bad = run_bounded(
        Command::new(util::ferry_bin()).args(["serve", "--cache-control", "no-cache"]).arg(&t.root),
        PATIENCE,
    );
    assert!(!bad.status.success(), "a rule without TYPE= is refused");

    // --qr: the code and the URL under the listening line.
    let (mut child, addr, lines) =
        util::spawn_serve(&t.root, &["--files", "off", "--http", "127.0.0.1:0", "--quiet", "--qr"], "http");
    let mut art = Vec::new();
    let url_line = loop {
        let line = lines.recv_timeout(PATIENCE).expect("the QR code lines");
        if line.starts_with("ferry: scan to open") {
            break line;
        }
        art.push(line);
    };
    assert_eq!(url_line, format!("ferry: scan to open http://{addr}/"));
    assert!(art.len() > 10, "a QR code is at least 21 modules high: {art:?}");
    assert!(art.iter().all(|l| l.chars().all(|c| " ▀▄█".contains(c))), "{art:?}");
    let _ = child.kill();
    let _ = child.wait();
}
