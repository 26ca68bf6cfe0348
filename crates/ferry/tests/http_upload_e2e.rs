//! HTTP uploads and WebDAV under every model, with real clients: curl's
//! PUT (Content-Length, chunked, Expect: 100-continue), the size limit,
//! an upload interrupted by killing curl and resumed with `curl -C`
//! from the offset `HEAD` tells, byte-compared; broken chunked framing;
//! path traversal; rights (401/403); and rclone's WebDAV remote listing,
//! getting, putting, making and removing.

mod http_util;
mod util;

use std::io::BufReader;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http_util::{ALL_MODELS, HttpServer, PATIENCE, closed_by_peer, read_response, require_tool, run_bounded, send_raw};
use util::{ferry, random_file, scratch};

/// Runs curl (silent, errors shown) and returns its stdout.
fn curl(args: &[&str]) -> String {
    let out = run_bounded(Command::new("curl").args(["-sS"]).args(args), PATIENCE);
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The status code of a curl request.
fn code(args: &[&str]) -> String {
    curl(&[&["-o", "/dev/null", "-w", "%{http_code}"][..], args].concat())
}

fn partials(root: &Path) -> Vec<u64> {
    let dir = std::fs::read_dir(root.join(".ferry-partials")).expect("the partials' home");
    dir.map(|e| e.unwrap().metadata().unwrap().len()).collect()
}

/// Waits (bounded, polling the disk: there is no other signal of how far
/// an upload got) until `check` holds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn curl_uploads_resume_and_limits_under_every_model() {
    require_tool("curl", "curl");
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let small = dir.path().join("small.bin");
    let sum = random_file(&small, 300_000, 1);
    let large = dir.path().join("large.bin");
    random_file(&large, 6 << 20, 2);
    let over = dir.path().join("over.bin");
    random_file(&over, (8 << 20) + 1, 3);
    let (small_s, large_s, over_s) = (small.to_str().unwrap(), large.to_str().unwrap(), over.to_str().unwrap());
    for &model in ALL_MODELS {
        let m = model.name;
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let server = HttpServer::start(&root, model, &["--allow-write", "--max-upload", "8M"]);

        // Content-Length (curl sends Expect: 100-continue for it), then a
        // replacement, then a chunked body from a pipe.
        assert_eq!(code(&["-T", small_s, &server.url("/sub/a.bin")]), "201", "{m}");
        assert_eq!(util::sha256_file(&root.join("sub/a.bin")), sum, "{m}");
        assert_eq!(code(&["-T", small_s, &server.url("/sub/a.bin")]), "204", "{m}");
        let piped = run_bounded(
            Command::new("sh")
                .args(["-c", &format!("cat {small_s} | curl -sS -o /dev/null -w %{{http_code}} -T - $0")])
                .arg(server.url("/sub/piped.bin")),
            PATIENCE,
        );
        assert_eq!(String::from_utf8_lossy(&piped.stdout), "201", "{m}: chunked");
        assert_eq!(util::sha256_file(&root.join("sub/piped.bin")), sum, "{m}");

        // Over --max-upload: 413 before the body, nothing on disk.
        assert_eq!(code(&["-T", over_s, &server.url("/over.bin")]), "413", "{m}");
        assert!(!root.join("over.bin").exists() && partials(&root).is_empty(), "{m}: no disk used");

        // Path traversal, literal and encoded: refused, nothing outside.
        for path in ["/../escape.bin", "/%2e%2e/escape.bin", "/sub/../../escape.bin"] {
            let status = code(&["--path-as-is", "-T", small_s, &server.url(path)]);
            assert_eq!(status, "404", "{m}: {path}");
        }
        assert!(!dir.path().join("escape.bin").exists(), "{m}");

        // Interrupted: curl killed mid-body leaves no file under the name,
        // and a partial that HEAD reports and `curl -C` continues.
        let url = server.url("/big.bin");
        let mut slow = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "--limit-rate", "2M", "-T", large_s, &url])
            .stderr(Stdio::null())
            .spawn()
            .expect("curl");
        eventually("part of the upload to arrive", || partials(&root).iter().any(|&n| n >= 1 << 20));
        slow.kill().expect("kill curl");
        slow.wait().expect("reap curl");
        assert!(!root.join("big.bin").exists(), "{m}: never visible under its name before complete");
        let offset = |url: &str| -> u64 {
            let head = curl(&["-I", url]);
            let line = head.lines().find(|l| l.to_ascii_lowercase().starts_with("upload-offset:"));
            line.unwrap_or_else(|| panic!("{m}: no Upload-Offset in {head}"))[14..].trim().parse().unwrap()
        };
        let mut resumed = String::new();
        let deadline = Instant::now() + PATIENCE;
        while resumed != "201" {
            // The server may not have seen curl's end yet (its upload still
            // holds the partial: 409); ask again.
            assert!(Instant::now() < deadline, "{m}: resume kept failing: {resumed}");
            let at = offset(&url);
            assert!((1 << 20..6 << 20).contains(&at), "{m}: offset {at}");
            resumed = code(&["-C", &at.to_string(), "-T", large_s, &url]);
        }
        assert_eq!(std::fs::read(root.join("big.bin")).unwrap(), std::fs::read(&large).unwrap(), "{m}: byte-identical");
        assert!(partials(&root).is_empty(), "{m}");

        // Broken chunked framing: 400, and the connection closes.
        let mut raw = server.connect();
        send_raw(&mut raw, b"PUT /bad.bin HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX\r\n");
        let mut reader = BufReader::new(raw);
        assert_eq!(read_response(&mut reader, false).status, 400, "{m}");
        assert!(closed_by_peer(&mut reader), "{m}: closed after broken framing");
        assert!(!root.join("bad.bin").exists(), "{m}");
    }
}

#[test]
fn write_rights_under_every_model() {
    require_tool("curl", "curl");
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("ro")).unwrap();
    let file = dir.path().join("accounts.toml");
    let accounts = file.to_str().unwrap();
    assert!(ferry(&["passwd", accounts, "alice"], None, b"pw\n").status.success());
    let rules = "\n[[rule]]\nwho = \"anonymous\"\npath = \"/\"\nallow = [\"list\", \"read\"]\n\n\
                 [[rule]]\nwho = \"*\"\npath = \"/ro\"\nallow = [\"list\", \"read\"]\n";
    std::fs::write(&file, std::fs::read_to_string(&file).unwrap() + rules).unwrap();
    let body = dir.path().join("b.txt");
    std::fs::write(&body, b"hello").unwrap();
    let body = body.to_str().unwrap();
    for &model in ALL_MODELS {
        let m = model.name;
        // Read-only: the write methods are not allowed at all.
        let server = HttpServer::start(&root, model, &[]);
        assert_eq!(code(&["-T", body, &server.url("/x.txt")]), "405", "{m}");
        assert_eq!(code(&["-X", "MKCOL", &server.url("/d")]), "405", "{m}");
        drop(server);

        let server = HttpServer::start(&root, model, &["--allow-write", "--auth", accounts]);
        assert_eq!(code(&["-T", body, &server.url("/x.txt")]), "401", "{m}: anonymous");
        assert_eq!(code(&["-X", "DELETE", &server.url("/ro")]), "401", "{m}");
        assert_eq!(code(&["-u", "alice:pw", "-T", body, &server.url("/ro/x.txt")]), "403", "{m}: no write right");
        assert_eq!(code(&["-u", "alice:pw", "-X", "DELETE", &server.url("/ro")]), "403", "{m}");
        assert!(!root.join("x.txt").exists() && !root.join("ro/x.txt").exists(), "{m}");
        assert_eq!(code(&["-u", "alice:pw", "-T", body, &server.url("/x.txt")]), "201", "{m}");
        assert_eq!(std::fs::read(root.join("x.txt")).unwrap(), b"hello", "{m}");
        assert_eq!(code(&["-u", "alice:pw", "-X", "DELETE", &server.url("/x.txt")]), "204", "{m}");
    }
}

/// Runs rclone against an on-the-fly WebDAV remote at `url`.
fn rclone(url: &str, args: &[&str]) -> String {
    let out = run_bounded(
        Command::new("rclone").args(args).env("RCLONE_CONFIG", "/dev/null").env("RCLONE_WEBDAV_URL", url).args([
            "--retries",
            "1",
            "--low-level-retries",
            "1",
        ]),
        PATIENCE,
    );
    assert!(out.status.success(), "rclone {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn rclone_webdav_under_every_model() {
    require_tool("rclone", "rclone");
    let dir = scratch();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("one.txt"), b"one\n").unwrap();
    random_file(&src.join("sub/two.bin"), 200_000, 4);
    let src_s = src.to_str().unwrap();
    for &model in ALL_MODELS {
        let m = model.name;
        let root = dir.path().join(format!("root-{}", m.replace('/', "-")));
        std::fs::create_dir_all(&root).unwrap();
        // rclone keeps idle connections open beside busy ones; the iterative
        // model serves one connection at a time, so it must drop idle ones
        // soon for the next to be served.
        let keepalive = if m == "iterative" { "1" } else { "60" };
        let server = HttpServer::start(&root, model, &["--allow-write", "--keepalive-timeout", keepalive]);
        let url = server.url("/");
        rclone(&url, &["copy", src_s, ":webdav:up"]);
        assert_eq!(
            std::fs::read(root.join("up/sub/two.bin")).unwrap(),
            std::fs::read(src.join("sub/two.bin")).unwrap()
        );
        let listed = rclone(&url, &["lsf", "-R", ":webdav:"]);
        assert_eq!(listed, "up/\nup/one.txt\nup/sub/\nup/sub/two.bin\n", "{m}");
        assert_eq!(rclone(&url, &["cat", ":webdav:up/one.txt"]), "one\n", "{m}");
        rclone(&url, &["check", src_s, ":webdav:up"]);
        rclone(&url, &["mkdir", ":webdav:made/deep"]);
        assert!(root.join("made/deep").is_dir(), "{m}");
        rclone(&url, &["moveto", ":webdav:up/one.txt", ":webdav:made/one.txt"]);
        rclone(&url, &["deletefile", ":webdav:made/one.txt"]);
        rclone(&url, &["rmdir", ":webdav:made/deep"]);
        let listed = rclone(&url, &["lsf", "-R", ":webdav:"]);
        assert_eq!(listed, "made/\nup/\nup/sub/\nup/sub/two.bin\n", "{m}");
        assert!(!root.join("made/one.txt").exists() && !root.join("up/one.txt").exists(), "{m}");
    }
}

#[test]
fn browser_form_and_controls_under_every_model() {
    require_tool("curl", "curl");
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let (a, b) = (dir.path().join("a.bin"), dir.path().join("b b.txt"));
    let (sum_a, sum_b) = (random_file(&a, 500_000, 5), random_file(&b, 1000, 6));
    let (fa, fb) = (format!("file=@{}", a.display()), format!("file=@{}", b.display()));
    for &model in ALL_MODELS {
        let m = model.name;
        let _ = std::fs::remove_dir_all(root.join("sub"));
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let server = HttpServer::start(&root, model, &["--allow-write"]);
        // The page offers the controls to a client who may write...
        let page = curl(&[&server.url("/sub/")]);
        assert!(page.contains("enctype=\"multipart/form-data\"") && page.contains("'DELETE'"), "{m}");
        // ...and its no-JavaScript form posts the files as multipart.
        let posted = curl(&["-i", "-F", &fa, "-F", "note=x", "-F", &fb, &server.url("/sub/")]);
        assert!(posted.starts_with("HTTP/1.1 303") && posted.contains("Location: /sub/"), "{m}: {posted}");
        assert_eq!(util::sha256_file(&root.join("sub/a.bin")), sum_a, "{m}");
        assert_eq!(util::sha256_file(&root.join("sub/b b.txt")), sum_b, "{m}");
        assert!(partials(&root).is_empty(), "{m}");
        drop(server);
        // A read-only server shows none of them.
        let server = HttpServer::start(&root, model, &[]);
        let page = curl(&[&server.url("/sub/")]);
        assert!(!page.contains("ferry-write") && !page.contains("<script"), "{m}");
        assert_eq!(code(&["-F", &fa, &server.url("/sub/")]), "405", "{m}");
    }
}
