//! End-to-end tests of the HTTP service with the real `ferry` binary and
//! real clients: `ureq` (in-process), `curl`, `wget`, headless Chromium and
//! raw sockets. Every behaviour runs under every model (thread pool,
//! reactor and multi-reactor, each reactor with epoll and with poll),
//! except slowloris, which only the event-driven models are built to
//! survive (a thread pool of N workers is held by N slow clients).
//!
//! External tools are required, never skipped: a missing one fails its
//! test with the package to install.

mod http_util;
mod util;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use http_util::{
    ALL_MODELS, HttpServer, PATIENCE, closed_by_peer, concurrent_models, raise_fd_limit, read_response, require_tool,
    run_bounded, send_raw,
};
use util::{random_file, scratch, sha256, sha256_file};

/// A file name with spaces, HTML specials and non-ASCII letters.
const TRICKY_NAME: &str = "a b <c> & café 日本.txt";

/// `hello.txt` (13 bytes), `big.bin` (3 MiB), `sub/file.txt`,
/// `sub/deeper/x.bin`, the tricky name, and `index-dir/index.html`.
fn http_tree(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    std::fs::create_dir_all(root.join("index-dir")).expect("mkdir");
    std::fs::write(root.join("hello.txt"), b"Hello, world!").expect("write");
    std::fs::write(root.join("sub/file.txt"), b"abc").expect("write");
    random_file(&root.join("big.bin"), 3 << 20, 7);
    random_file(&root.join("sub/deeper/x.bin"), 100_000, 8);
    std::fs::write(root.join(TRICKY_NAME), b"tricky\n").expect("write");
    std::fs::write(root.join("index-dir/index.html"), b"<h1>index</h1>").expect("write");
    root
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(PATIENCE)).build().into()
}

/// Not under iterative: ureq's pool may open a second connection while it
/// keeps the first alive (see `concurrent_models`).
#[test]
fn ureq_get_head_range_conditional_and_errors() {
    let dir = scratch();
    let root = http_tree(dir.path());
    for &model in concurrent_models() {
        let server = HttpServer::start(&root, model, &[]);
        let m = model.name;
        let agent = agent();

        let mut r = agent.get(server.url("/hello.txt")).call().expect("GET");
        assert_eq!(r.status(), 200, "{m}");
        let h = |r: &ureq::http::Response<ureq::Body>, k: &str| {
            r.headers().get(k).and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        assert_eq!(h(&r, "content-length").as_deref(), Some("13"), "{m}");
        assert_eq!(h(&r, "content-type").as_deref(), Some("text/plain; charset=utf-8"), "{m}");
        assert_eq!(h(&r, "server").as_deref(), Some("ferry"), "{m}");
        assert_eq!(h(&r, "accept-ranges").as_deref(), Some("bytes"), "{m}");
        assert!(h(&r, "date").is_some(), "{m}");
        let etag = h(&r, "etag").expect("ETag");
        let modified = h(&r, "last-modified").expect("Last-Modified");
        assert_eq!(r.body_mut().read_to_vec().expect("body"), b"Hello, world!", "{m}");

        let mut r = agent.get(server.url("/big.bin")).call().expect("GET big");
        assert_eq!(r.status(), 200, "{m}");
        let body = r.body_mut().with_config().limit(10 << 20).read_to_vec().expect("big body");
        assert_eq!(sha256(&body), sha256_file(&root.join("big.bin")), "{m}: big.bin differs");

        let mut r = agent.head(server.url("/hello.txt")).call().expect("HEAD");
        assert_eq!(r.status(), 200, "{m}");
        assert_eq!(h(&r, "content-length").as_deref(), Some("13"), "{m}: HEAD keeps the length");
        assert!(r.body_mut().read_to_vec().expect("HEAD body").is_empty(), "{m}: HEAD has no body");

        let mut r = agent.get(server.url("/hello.txt")).header("Range", "bytes=7-11").call().expect("Range");
        assert_eq!(r.status(), 206, "{m}");
        assert_eq!(h(&r, "content-range").as_deref(), Some("bytes 7-11/13"), "{m}");
        assert_eq!(r.body_mut().read_to_vec().expect("range body"), b"world", "{m}");

        let mut r = agent.get(server.url("/big.bin")).header("Range", "bytes=-100").call().expect("suffix");
        assert_eq!(r.status(), 206, "{m}");
        let tail = r.body_mut().read_to_vec().expect("suffix body");
        let whole = std::fs::read(root.join("big.bin")).expect("read");
        assert_eq!(tail, &whole[whole.len() - 100..], "{m}: suffix range");

        let r = agent.get(server.url("/hello.txt")).header("Range", "bytes=100-").call().expect("416");
        assert_eq!(r.status(), 416, "{m}");
        assert_eq!(h(&r, "content-range").as_deref(), Some("bytes */13"), "{m}");

        let r = agent.get(server.url("/hello.txt")).header("If-None-Match", &etag).call().expect("INM");
        assert_eq!(r.status(), 304, "{m}: If-None-Match");
        let r = agent.get(server.url("/hello.txt")).header("If-Modified-Since", &modified).call().expect("IMS");
        assert_eq!(r.status(), 304, "{m}: If-Modified-Since");

        assert_eq!(agent.get(server.url("/missing")).call().expect("404").status(), 404, "{m}");
        assert_eq!(agent.get(server.url("/../../etc/passwd")).call().expect("dotdot").status(), 404, "{m}");
        let r = agent.post(server.url("/hello.txt")).send(&b"x"[..]).expect("405");
        assert_eq!(r.status(), 405, "{m}");
        assert_eq!(h(&r, "allow").as_deref(), Some("GET, HEAD, OPTIONS, PROPFIND"), "{m}");

        let r = agent.get(server.url("/sub")).config().max_redirects(0).build().call().expect("301");
        assert_eq!(r.status(), 301, "{m}");
        assert_eq!(h(&r, "location").as_deref(), Some("/sub/"), "{m}");
        let mut r = agent.get(server.url("/index-dir/")).call().expect("index");
        assert_eq!(r.body_mut().read_to_string().expect("index body"), "<h1>index</h1>", "{m}");
    }
}

#[test]
fn keep_alive_pipelining_and_connection_close_on_a_raw_socket() {
    let dir = scratch();
    let root = http_tree(dir.path());
    for &model in ALL_MODELS {
        let server = HttpServer::start(&root, model, &[]);
        let m = model.name;
        let mut stream = server.connect();
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));

        // Keep-alive: two requests one after the other on one connection.
        for _ in 0..2 {
            send_raw(&mut stream, b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
            let r = read_response(&mut reader, false);
            assert_eq!((r.status, r.body.as_slice()), (200, &b"Hello, world!"[..]), "{m}");
        }

        // Pipelining: many requests in one write, answered in order.
        let targets = ["/hello.txt", "/sub/file.txt", "/missing", "/sub/deeper/x.bin", "/big.bin"];
        let mut batch = Vec::new();
        for i in 0..60 {
            let target = targets[i % targets.len()];
            let method = if i % 7 == 3 { "HEAD" } else { "GET" };
            write!(batch, "{method} {target} HTTP/1.1\r\nHost: t\r\n\r\n").expect("format");
        }
        send_raw(&mut stream, &batch);
        for i in 0..60 {
            let target = targets[i % targets.len()];
            let head = i % 7 == 3;
            let r = read_response(&mut reader, head);
            if target == "/missing" {
                assert_eq!(r.status, 404, "{m}: answer {i}");
                continue;
            }
            assert_eq!(r.status, 200, "{m}: answer {i} ({target})");
            if !head {
                let want = sha256_file(&root.join(&target[1..]));
                assert_eq!(sha256(&r.body), want, "{m}: answer {i} is {target}'s body, in order");
            }
        }

        // Connection: close is honoured both ways.
        send_raw(&mut stream, b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let r = read_response(&mut reader, false);
        assert_eq!(r.header("connection"), Some("close"), "{m}");
        assert!(closed_by_peer(&mut reader), "{m}: server closes after Connection: close");

        // HTTP/1.0 without keep-alive closes too; malformed input is 400 + close.
        let mut s = server.connect();
        send_raw(&mut s, b"GET /hello.txt HTTP/1.0\r\n\r\n");
        let mut rd = BufReader::new(s.try_clone().expect("clone"));
        assert_eq!(read_response(&mut rd, false).status, 200, "{m}");
        assert!(closed_by_peer(&mut rd), "{m}: HTTP/1.0 closes");
        let mut s = server.connect();
        send_raw(&mut s, b"GARBAGE\r\n\r\n");
        let mut rd = BufReader::new(s.try_clone().expect("clone"));
        assert_eq!(read_response(&mut rd, false).status, 400, "{m}");
        assert!(closed_by_peer(&mut rd), "{m}: closes after 400");
    }
}

#[test]
fn curl_headers_range_head_conditional_and_http10() {
    require_tool("curl", "curl");
    let dir = scratch();
    let root = http_tree(dir.path());
    let reference = dir.path().join("reference");
    std::fs::write(&reference, b"").expect("write");
    let curl = |args: &[&str]| {
        let out = run_bounded(Command::new("curl").args(["-sS", "--max-time", "10"]).args(args), PATIENCE);
        assert!(out.status.success(), "curl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for &model in ALL_MODELS {
        let server = HttpServer::start(&root, model, &[]);
        let m = model.name;
        let url = server.url("/hello.txt");

        let out = curl(&["-i", &url]);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{m}: {out}");
        assert!(out.contains("Content-Length: 13\r\n") && out.ends_with("\r\n\r\nHello, world!"), "{m}: {out}");

        let out = curl(&["-r", "0-4", &url]);
        assert_eq!(out, "Hello", "{m}: curl -r");
        let out = curl(&["-r", "0-4", "-o", "/dev/null", "-w", "%{http_code}", &url]);
        assert_eq!(out, "206", "{m}");

        let out = curl(&["-I", &url]);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.contains("Content-Length: 13\r\n"), "{m}: {out}");

        // -z with a file older than ours: still 200; with a date after it: 304.
        let out = curl(&["-z", "Mon, 01 Jan 2001 00:00:00 GMT", "-o", "/dev/null", "-w", "%{http_code}", &url]);
        assert_eq!(out, "200", "{m}");
        let out = curl(&["-z", "Fri, 01 Jan 2100 00:00:00 GMT", "-o", "/dev/null", "-w", "%{http_code}", &url]);
        assert_eq!(out, "304", "{m}: If-Modified-Since in the future of the file");

        let out = curl(&["--http1.0", "-i", &url]);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("Hello, world!"), "{m}: {out}");

        let out = curl(&["-o", "/dev/null", "-w", "%{http_code}", &server.url("/nope")]);
        assert_eq!(out, "404", "{m}");
        let out = curl(&["-X", "DELETE", "-o", "/dev/null", "-w", "%{http_code}", &url]);
        assert_eq!(out, "405", "{m}");
        let big = dir.path().join(format!("big-{}", m.replace('/', "-")));
        curl(&["-o", big.to_str().expect("utf-8 path"), &server.url("/big.bin")]);
        assert_eq!(sha256_file(&big), sha256_file(&root.join("big.bin")), "{m}: curl download");
    }
}

#[test]
fn wget_mirrors_a_directory_tree_with_identical_checksums() {
    require_tool("wget", "wget");
    let dir = scratch();
    let root = http_tree(dir.path());
    for &model in ALL_MODELS {
        let server = HttpServer::start(&root, model, &[]);
        let m = model.name;
        let dest = dir.path().join(format!("mirror-{}", m.replace('/', "-")));
        let out = run_bounded(
            Command::new("wget")
                .args(["-r", "-np", "-nH", "-q", "--timeout=10", "--tries=1", "-e", "robots=off", "-P"])
                .arg(&dest)
                .arg(server.url("/")),
            PATIENCE,
        );
        assert!(out.status.success(), "{m}: wget failed: {}", String::from_utf8_lossy(&out.stderr));
        for rel in ["hello.txt", "big.bin", "sub/file.txt", "sub/deeper/x.bin", TRICKY_NAME, "index-dir/index.html"] {
            let got = dest.join(rel);
            assert!(got.is_file(), "{m}: wget did not fetch {rel}");
            assert_eq!(sha256_file(&got), sha256_file(&root.join(rel)), "{m}: {rel} differs");
        }
    }
}

/// Chromium flags for a quiet, self-contained headless run.
fn chromium(profile: &Path) -> Command {
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1000,600",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// The `href`s of a page's `<a>` elements.
fn hrefs(html: &str) -> Vec<String> {
    html.split("<a href=\"").skip(1).filter_map(|rest| rest.split_once('"').map(|(h, _)| h.to_string())).collect()
}

#[test]
fn browser_renders_a_listing_with_tricky_names_and_its_links_work() {
    require_tool("chromium", "chromium");
    let dir = scratch();
    let root = http_tree(dir.path());
    for (i, &model) in ALL_MODELS.iter().enumerate() {
        let server = HttpServer::start(&root, model, &[]);
        let m = model.name;
        let profile = dir.path().join(format!("profile-{i}"));
        if i == 0 {
            // One screenshot proves the page renders; the DOM checks below
            // run under every model.
            let shot = dir.path().join("listing.png");
            let out = run_bounded(
                chromium(&profile).arg(format!("--screenshot={}", shot.display())).arg(server.url("/")),
                PATIENCE,
            );
            assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
            let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "screenshot is a PNG");
            assert!(png.len() > 5_000, "screenshot of {} bytes is too small to show a listing", png.len());
        }
        let out = run_bounded(chromium(&profile).arg("--dump-dom").arg(server.url("/")), PATIENCE);
        assert!(out.status.success(), "{m}: chromium --dump-dom failed: {}", String::from_utf8_lossy(&out.stderr));
        let dom = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(dom.contains("a b &lt;c&gt; &amp; café 日本.txt"), "{m}: rendered name missing from the DOM:\n{dom}");
        let links = hrefs(&dom);
        for want in ["sub/", "hello.txt", "big.bin", "index-dir/"] {
            assert!(links.iter().any(|l| l == want), "{m}: no link to {want} in {links:?}");
        }
        let agent = agent();
        let (mut checked, mut checked_archives, mut checked_sorts) = (0, 0, 0);
        for link in &links {
            let mut r = agent.get(format!("{}{link}", server.url("/"))).call().expect("follow link");
            assert_eq!(r.status(), 200, "{m}: link {link} answers {}", r.status());
            let body = r.body_mut().with_config().limit(10 << 20).read_to_vec().expect("link body");
            if link.starts_with("?sort=") {
                // The column headers re-sort the same listing.
                assert!(body.starts_with(b"<!DOCTYPE html>"), "{m}: {link} serves the listing");
                checked_sorts += 1;
            } else if let Some(format) = link.strip_prefix("?archive=") {
                // The folder's archive links (their contents: http_archive_e2e).
                let magic: &[u8] = if format == "zip" { b"PK\x03\x04" } else { b"root/" };
                assert!(body.starts_with(magic), "{m}: {link} serves a {format} archive");
                checked_archives += 1;
            } else if !link.ends_with('/') {
                let name = percent_decode(link);
                assert_eq!(sha256(&body), sha256_file(&root.join(&name)), "{m}: link {link} serves {name}");
                checked += 1;
            }
        }
        assert!(checked >= 3, "{m}: only {checked} file links checked");
        assert_eq!(checked_archives, 2, "{m}: the tar and zip links");
        assert_eq!(checked_sorts, 3, "{m}: the three sort links");
    }
}

/// Decodes `%XX` escapes (the listing's links) into a file name.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("ascii");
            out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf-8 name")
}

#[test]
fn slowloris_does_not_starve_a_normal_client_and_is_cut_at_the_header_timeout() {
    const SLOW: usize = 500;
    let limit = raise_fd_limit();
    assert!(limit >= 2 * SLOW as u64 + 100, "the hard fd limit {limit} is too low for {SLOW} slow clients");
    let dir = scratch();
    let root = http_tree(dir.path());
    for &model in concurrent_models() {
        let server = HttpServer::start(&root, model, &["--header-timeout", "2"]);
        let m = model.name;
        let started = Instant::now();
        let request = b"GET /hello.txt HTTP/1.1\r\nHost: slow\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let mut slow: Vec<TcpStream> = (0..SLOW)
            .map(|_| {
                let s = server.connect();
                s.set_read_timeout(Some(Duration::from_millis(1))).expect("timeout");
                s
            })
            .collect();
        let agent = agent();
        let mut sent = 0;
        let mut normal_served = 0;
        // One header byte per second from every slow client; a normal
        // client is served promptly in between.
        while sent < 4 && started.elapsed() < Duration::from_secs(8) {
            for s in &mut slow {
                // A client the server already cut fails here; ignore it.
                let _ = s.write_all(&request[sent..=sent]);
            }
            sent += 1;
            let t = Instant::now();
            let mut r = agent.get(server.url("/hello.txt")).call().expect("normal GET");
            assert_eq!(r.body_mut().read_to_vec().expect("body"), b"Hello, world!", "{m}");
            assert!(t.elapsed() < Duration::from_millis(1000), "{m}: normal client waited {:?}", t.elapsed());
            normal_served += 1;
            if sent == 2 {
                // About 1 s in, before the 2 s header timeout: still open.
                for (i, s) in slow.iter_mut().take(20).enumerate() {
                    let mut b = [0u8; 64];
                    let open = matches!(std::io::Read::read(s, &mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut);
                    assert!(open, "{m}: slow client {i} was closed before the header timeout");
                }
            }
            std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
        }
        assert!(normal_served >= 3, "{m}");
        // By now (>= 3 s after the first byte) every slow client must be cut,
        // the first ones told why.
        let deadline = started + Duration::from_secs(6);
        slow[0].set_read_timeout(Some(PATIENCE)).expect("timeout");
        let mut answer = Vec::new();
        let _ = std::io::Read::read_to_end(&mut slow[0], &mut answer);
        assert!(answer.starts_with(b"HTTP/1.1 408 "), "{m}: slow client got {:?}", String::from_utf8_lossy(&answer));
        for (i, s) in slow.iter_mut().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(50));
            s.set_read_timeout(Some(left)).expect("timeout");
            assert!(closed_by_peer(s), "{m}: slow client {i} still open {:?} after it began", started.elapsed());
        }
    }
}

#[test]
fn sigterm_closes_idle_keepalive_finishes_a_download_and_exits_zero() {
    let dir = scratch();
    let root = http_tree(dir.path());
    let big = root.join("huge.bin");
    random_file(&big, 48 << 20, 9);
    for &model in concurrent_models() {
        let mut server = HttpServer::start(&root, model, &[]);
        let m = model.name;
        // An idle keep-alive connection.
        let mut idle = server.connect();
        send_raw(&mut idle, b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
        let mut idle_reader = BufReader::new(idle.try_clone().expect("clone"));
        assert_eq!(read_response(&mut idle_reader, false).status, 200, "{m}");
        // A download in flight: read its head and a little of the body.
        let mut dl = server.connect();
        send_raw(&mut dl, b"GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n");
        let mut dl_reader = BufReader::new(dl.try_clone().expect("clone"));
        let mut line = String::new();
        std::io::BufRead::read_line(&mut dl_reader, &mut line).expect("status line");
        assert!(line.starts_with("HTTP/1.1 200"), "{m}: {line}");

        server.signal(rustix::process::Signal::TERM);
        assert!(closed_by_peer(&mut idle_reader), "{m}: idle keep-alive connection closed at shutdown");
        loop {
            let mut h = String::new();
            std::io::BufRead::read_line(&mut dl_reader, &mut h).expect("header");
            if h == "\r\n" {
                break;
            }
        }
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut dl_reader, &mut body).expect("download finishes");
        assert_eq!(sha256(&body), sha256_file(&big), "{m}: the in-flight download completed intact");
        let status = server.wait_exit(PATIENCE);
        assert!(status.success(), "{m}: exit status {status}");
    }
}
