//! `ferry get/put/ls` over TLS (`tls://` addresses) in every concurrency
//! model: 64 MiB each way with identical SHA-256, a download and an upload
//! broken off and resumed, trust by `--ca` and by `--fingerprint` (right
//! and wrong).

mod util;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::thread::{self, JoinHandle};

use util::serve::{MODELS, Svc, start};
use util::{PATIENCE, ferry, random_file, run_fed, scratch, sha256_file};

const SIZE: usize = 64 * 1024 * 1024;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What `openssl x509 -fingerprint -sha256` says of `cert`.
fn openssl_fingerprint(cert: &Path) -> String {
    let out = run_fed(
        Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(cert),
        b"",
        PATIENCE,
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.trim().rsplit_once('=').map(|(_, fp)| fp.to_string()).unwrap_or_else(|| panic!("openssl: {text}"))
}

/// Forwards one connection to `server`, cutting it after `limit` bytes
/// from the server (`download`) or from the client.
fn cutting_relay(server: SocketAddr, download: bool, limit: u64) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let thread = thread::spawn(move || {
        let (client, _) = listener.accept().expect("accept");
        let upstream = TcpStream::connect(server).expect("connect");
        for s in [&client, &upstream] {
            s.set_read_timeout(Some(PATIENCE)).expect("timeout");
        }
        let (from, to) = if download { (upstream, client) } else { (client, upstream) };
        let (back_from, back_to) = (to.try_clone().expect("clone"), from.try_clone().expect("clone"));
        let back = thread::spawn(move || {
            let _ = io::copy(&mut &back_from, &mut &back_to);
            let _ = back_to.shutdown(Shutdown::Write);
        });
        let _ = io::copy(&mut (&from).take(limit), &mut &to);
        let _ = (&to).flush();
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Both);
        let _ = back.join();
    });
    (addr, thread)
}

#[test]
fn big_transfers_over_tls_are_exact_and_resume_in_every_model() {
    let dir = scratch();
    let root = dir.path().join("root");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::create_dir_all(&work).expect("mkdir");
    let state = dir.path().join("state");
    let state_arg = state.to_str().expect("utf-8");
    let down = random_file(&root.join("down.bin"), SIZE, 14);
    let up = random_file(&work.join("up.bin"), SIZE, 41);
    let cert = state.join("tls-cert.pem");
    for &model in MODELS {
        let mut server =
            start(model, Svc::Files, &root, &["--allow-write", "--tls-self-signed", "--state-dir", state_arg]);
        let tls = format!("tls://127.0.0.1:{}", server.addr.port());
        let ca = cert.to_str().expect("utf-8");

        // Whole, with the CA file.
        let out = ferry(&["get", &tls, "/down.bin", "--ca", ca], Some(&work), b"");
        assert!(out.status.success(), "{model}: get: {}", stderr(&out));
        assert_eq!(sha256_file(&work.join("down.bin")), down, "{model}: the download is exact");
        std::fs::remove_file(work.join("down.bin")).expect("rm");
        let out = ferry(&["put", &tls, "up.bin", "/up.bin", "--ca", ca], Some(&work), b"");
        assert!(out.status.success(), "{model}: put: {}", stderr(&out));
        assert_eq!(sha256_file(&root.join("up.bin")), up, "{model}: the upload is exact");
        std::fs::remove_file(root.join("up.bin")).expect("rm");

        // Broken off after 8 MB of ciphertext, then resumed (pinned).
        let fp = openssl_fingerprint(&cert);
        let (relay, cutter) = cutting_relay(server.addr, true, 8_000_000);
        let out = ferry(&["get", &format!("tls://{relay}"), "/down.bin", "--fingerprint", &fp], Some(&work), b"");
        cutter.join().expect("relay");
        assert!(!out.status.success(), "{model}: the cut download fails");
        let part = std::fs::metadata(work.join("down.bin.part")).expect("a part is kept").len();
        assert!(part > 0 && part < SIZE as u64, "{model}: part of {part} bytes");
        let out = ferry(&["get", &tls, "/down.bin", "--fingerprint", &fp], Some(&work), b"");
        assert!(out.status.success(), "{model}: resumed get: {}", stderr(&out));
        assert!(stderr(&out).contains("resum"), "{model}: {}", stderr(&out));
        assert_eq!(sha256_file(&work.join("down.bin")), down, "{model}: the resumed download is exact");
        std::fs::remove_file(work.join("down.bin")).expect("rm");

        let (relay, cutter) = cutting_relay(server.addr, false, 8_000_000);
        let out =
            ferry(&["put", &format!("tls://{relay}"), "up.bin", "/up.bin", "--fingerprint", &fp], Some(&work), b"");
        cutter.join().expect("relay");
        assert!(!out.status.success(), "{model}: the cut upload fails");
        let out = ferry(&["put", &tls, "up.bin", "/up.bin", "--fingerprint", &fp], Some(&work), b"");
        assert!(out.status.success(), "{model}: resumed put: {}", stderr(&out));
        assert!(stderr(&out).contains("resum"), "{model}: {}", stderr(&out));
        assert_eq!(sha256_file(&root.join("up.bin")), up, "{model}: the resumed upload is exact");
        std::fs::remove_file(root.join("up.bin")).expect("rm");
        server.stop();
    }
}

#[test]
fn a_pinned_fingerprint_is_trusted_and_a_wrong_one_refused_in_every_model() {
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(root.join("hello.txt"), b"hi\n").expect("write");
    let state = dir.path().join("state");
    for &model in MODELS {
        let mut server =
            start(model, Svc::Files, &root, &["--tls-self-signed", "--state-dir", state.to_str().expect("utf-8")]);
        let tls = format!("tls://127.0.0.1:{}", server.addr.port());
        let fp = openssl_fingerprint(&state.join("tls-cert.pem"));
        let out = ferry(&["ls", &tls, "--fingerprint", &fp], None, b"");
        assert!(out.status.success(), "{model}: {}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("hello.txt"), "{model}: the listing arrives");
        let lower: String = fp.chars().filter(|c| *c != ':').flat_map(char::to_lowercase).collect();
        let out = ferry(&["ls", &tls, "--fingerprint", &lower], None, b"");
        assert!(out.status.success(), "{model}: lower-case, no colons: {}", stderr(&out));

        let wrong = "00".repeat(32);
        let out = ferry(&["ls", &tls, "--fingerprint", &wrong], None, b"");
        assert!(!out.status.success(), "{model}: a wrong pin is refused");
        assert!(stderr(&out).contains(&fp), "{model}: the error names the real fingerprint: {}", stderr(&out));
        // No CA and no pin: the system's roots do not know a self-signed one.
        let out = ferry(&["ls", &tls], None, b"");
        assert!(!out.status.success(), "{model}: untrusted without --ca or --fingerprint");
        // A plain client at the TLS port is told what to do.
        let out = ferry(&["ls", &server.addr.to_string()], None, b"");
        assert!(stderr(&out).contains("tls://"), "{model}: {}", stderr(&out));
        server.stop();
    }
}
