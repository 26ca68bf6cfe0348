//! TLS end to end, in every concurrency model: real clients (curl, wget,
//! openssl s_client) against `ferry serve --tls-self-signed`; plain HTTP
//! to the TLS port; a stalled handshake cut by the header timeout; the
//! self-signed certificate's fingerprint and its reuse.

mod util;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use util::serve::{MODELS, Running, Svc, connect, start};
use util::{PATIENCE, run_fed, spawn_serve, wait_child};

/// The header (request) timeout the servers here run with.
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("root")).expect("mkdir");
    std::fs::write(dir.path().join("root/hello.txt"), b"Hello, TLS!\n").expect("write");
    dir
}

fn start_tls(model: &str, svc: Svc, dir: &Path, extra: &[&str]) -> Running {
    let state = dir.join("state");
    let state = state.to_str().expect("utf-8 path");
    let mut args = vec!["--tls-self-signed", "--state-dir", state, "--header-timeout", "1"];
    args.extend_from_slice(extra);
    start(model, svc, &dir.join("root"), &args)
}

fn run(cmd: &mut Command) -> Output {
    run_fed(cmd, b"", PATIENCE)
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn https_serves_curl_wget_and_openssl_in_every_model() {
    let dir = tree();
    let cert = dir.path().join("state/tls-cert.pem");
    for &model in MODELS {
        let mut server = start_tls(model, Svc::Http, dir.path(), &[]);
        let base = format!("https://127.0.0.1:{}", server.addr.port());
        // Two requests, one connection (keep-alive), then a listing.
        let out = run(Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert"])
            .arg(&cert)
            .args(["-w", "[%{http_code} %{num_connects}]\n"])
            .arg(format!("{base}/hello.txt"))
            .arg(format!("{base}/hello.txt"))
            .arg(format!("{base}/")));
        let got = text(&out);
        assert!(out.status.success(), "{model}: curl: {got}");
        assert!(
            got.starts_with("Hello, TLS!\n[200 1]\nHello, TLS!\n[200 0]\n"),
            "{model}: two answers on one connection: {got}"
        );
        assert!(got.contains("hello.txt") && got.ends_with("[200 0]\n"), "{model}: listing: {got}");

        let out = run(Command::new("wget")
            .args(["-q", "-O", "-", "--timeout=20"])
            .arg(format!("--ca-certificate={}", cert.display()))
            .arg(format!("{base}/hello.txt")));
        assert_eq!(text(&out), "Hello, TLS!\n", "{model}: wget");

        let port = format!("127.0.0.1:{}", server.addr.port());
        let out = run(Command::new("openssl")
            .args(["s_client", "-connect", &port, "-alpn", "http/1.1", "-CAfile"])
            .arg(&cert));
        let got = text(&out);
        assert!(got.contains("TLSv1.3"), "{model}: s_client: {got}");
        assert!(got.contains("ALPN protocol: http/1.1"), "{model}: s_client: {got}");
        assert!(got.contains("Verify return code: 0 (ok)"), "{model}: s_client: {got}");
        let out = run(Command::new("openssl").args(["s_client", "-tls1_2", "-connect", &port, "-CAfile"]).arg(&cert));
        let got = text(&out);
        assert!(got.contains("Protocol  : TLSv1.2") || got.contains("New, TLSv1.2"), "{model}: -tls1_2: {got}");

        plain_http_is_answered_and_closed(model, &server);
        stalled_handshake_is_cut(model, &server);
        server.stop();
    }
}

/// Plain HTTP to the HTTPS port: nginx's 400 and a close, promptly.
fn plain_http_is_answered_and_closed(model: &str, server: &Running) {
    let mut stream = connect(server.addr);
    stream.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let mut got = Vec::new();
    stream.read_to_end(&mut got).unwrap_or_else(|e| panic!("{model}: plain HTTP: no close: {e}"));
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{model}: {got}");
    assert!(got.contains("plain HTTP request was sent to HTTPS port"), "{model}: {got}");
}

/// A client that begins a handshake and stalls is cut by the header
/// timeout (1 s), not kept for the keep-alive timeout (60 s).
fn stalled_handshake_is_cut(model: &str, server: &Running) {
    let mut stream = connect(server.addr);
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let began = Instant::now();
    // The first bytes of a ClientHello record, and no more.
    stream.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).expect("send");
    let mut got = Vec::new();
    let closed = stream.read_to_end(&mut got).is_ok() || began.elapsed() < Duration::from_secs(9);
    let took = began.elapsed();
    assert!(closed, "{model}: a stalled handshake was not cut");
    assert!(took >= HEADER_TIMEOUT - Duration::from_millis(100), "{model}: cut after {took:?}, before the timeout");
    assert!(took < Duration::from_secs(6), "{model}: cut after {took:?}");
}

#[test]
fn plain_text_to_the_tls_file_port_gets_an_error_line_in_every_model() {
    let dir = tree();
    for &model in MODELS {
        let mut server = start_tls(model, Svc::Files, dir.path(), &[]);
        let mut stream = connect(server.addr);
        stream.write_all(b"ls\n").expect("send");
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap_or_else(|e| panic!("{model}: no close: {e}"));
        assert_eq!(String::from_utf8_lossy(&got), "ERR 400 this port speaks TLS: connect to tls://HOST:PORT\n");
        server.stop();
    }
}

/// What `openssl x509 -fingerprint -sha256` says of `cert`.
fn openssl_fingerprint(cert: &Path) -> String {
    let out = run(Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(cert));
    let got = text(&out);
    got.trim().rsplit_once('=').map(|(_, fp)| fp.to_string()).unwrap_or_else(|| panic!("openssl: {got}"))
}

/// Starts `ferry serve --tls-self-signed` and returns its fingerprint line's
/// fingerprint.
fn self_signed_start(dir: &Path) -> String {
    let state = dir.join("state");
    let args = ["--tls-self-signed", "--state-dir", state.to_str().expect("utf-8"), "--files", "off", "--http"];
    let mut args: Vec<&str> = args.to_vec();
    args.extend(["127.0.0.1:0", "--quiet"]);
    let (mut child, _addr, lines) = spawn_serve(&dir.join("root"), &args, "http");
    let line = lines.recv_timeout(PATIENCE).expect("a fingerprint line");
    let fp = line.strip_prefix("ferry: TLS certificate SHA-256 ").unwrap_or_else(|| panic!("unexpected: {line}"));
    let fp = fp.to_string();
    child.kill().expect("kill");
    wait_child(&mut child, PATIENCE).expect("exited");
    fp
}

#[test]
fn self_signed_certificate_is_made_once_printed_and_reused() {
    let dir = tree();
    let first = self_signed_start(dir.path());
    let cert = dir.path().join("state/tls-cert.pem");
    assert_eq!(first, openssl_fingerprint(&cert), "the printed fingerprint is the certificate's");
    let key = dir.path().join("state/tls-key.pem");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).expect("key").permissions());
    assert_eq!(mode & 0o077, 0, "the key is readable by its owner only");
    let second = self_signed_start(dir.path());
    assert_eq!(first, second, "reused on the next start");
}

#[test]
fn headless_chromium_renders_an_https_listing_in_every_model() {
    let dir = tree();
    for (i, &model) in MODELS.iter().enumerate() {
        let mut server = start_tls(model, Svc::Http, dir.path(), &[]);
        let profile = dir.path().join(format!("profile-{i}"));
        let out = run(Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--ignore-certificate-errors",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("https://127.0.0.1:{}/", server.addr.port())));
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{model}: chromium: {}", String::from_utf8_lossy(&out.stderr));
        assert!(dom.contains("<a href=\"hello.txt\">"), "{model}: the listing over HTTPS:\n{dom}");
        server.stop();
    }
}

/// Makes a fresh self-signed pair at `dir/cert.pem`, `dir/key.pem` with
/// openssl; returns its fingerprint.
fn openssl_pair(dir: &Path) -> String {
    let out = run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-subj", "/CN=localhost", "-days", "2", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem")));
    assert!(out.status.success(), "openssl req: {}", text(&out));
    openssl_fingerprint(&dir.join("cert.pem"))
}

/// The fingerprint of the certificate a server at `port` presents.
fn served_fingerprint(port: u16) -> String {
    let script = format!(
        "openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
    );
    let out = run(Command::new("sh").args(["-c", &script]));
    let got = text(&out);
    got.trim().rsplit_once('=').map(|(_, fp)| fp.to_string()).unwrap_or_else(|| panic!("served: {got}"))
}

#[test]
fn sighup_reloads_the_certificate_in_every_model() {
    let dir = tree();
    for &model in MODELS {
        let first = openssl_pair(dir.path());
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let args = ["--tls-cert", cert.to_str().expect("utf-8"), "--tls-key", key.to_str().expect("utf-8")];
        let mut server = util::serve::start_logged(model, Svc::Http, &dir.path().join("root"), &args);
        assert_eq!(served_fingerprint(server.addr.port()), first, "{model}: the first certificate");
        let second = openssl_pair(dir.path());
        server.signal(rustix::process::Signal::HUP);
        server.log_line(&format!("TLS certificate reloaded from {}: SHA-256 {second}", cert.display()));
        assert_eq!(served_fingerprint(server.addr.port()), second, "{model}: a new handshake gets the new one");
        // A broken key changes nothing.
        std::fs::write(&key, "not a key").expect("write");
        server.signal(rustix::process::Signal::HUP);
        server.log_line("keeping the TLS certificate in use");
        assert_eq!(served_fingerprint(server.addr.port()), second, "{model}: still the second");
        server.stop();
    }
}
