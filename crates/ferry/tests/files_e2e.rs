//! End-to-end tests of the file service: the real `ferry` binary serving a
//! real directory on loopback, driven by the real client subcommands, raw
//! sockets and `nc`. The client subcommands' own behaviour (`ls`, `shell`,
//! their errors) is in `files_cli_e2e.rs`.

mod util;

use std::io::Write;
use std::net::Shutdown;
use std::process::Command;
use std::time::{Duration, Instant};

use util::*;

const BIG: usize = 64 * 1024 * 1024;

#[test]
fn big_file_downloads_and_uploads_identically() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let sum = random_file(&root.join("big.bin"), BIG, 1);
    let server = Server::start(&root, &["--allow-write"]);
    let local = dir.path().join("big.copy");
    ferry_ok(&["get", &server.addr_arg(), "/big.bin", local.to_str().unwrap()], None);
    assert_eq!(sha256_file(&local), sum, "downloaded bytes are identical");
    assert!(!dir.path().join("big.copy.part").exists(), "the .part was renamed");

    let up = dir.path().join("up.bin");
    let up_sum = random_file(&up, BIG, 2);
    ferry_ok(&["put", &server.addr_arg(), up.to_str().unwrap(), "/sub/up.bin"], None);
    assert_eq!(sha256_file(&root.join("sub/up.bin")), up_sum, "uploaded bytes are identical");
    assert!(!root.join("sub/.up.bin.ferry-part").exists(), "the temporary was renamed");
}

#[test]
fn interrupted_download_resumes_identically() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let size = 8 * 1024 * 1024 + 123;
    let sum = random_file(&root.join("big.bin"), size, 3);
    let server = Server::start(&root, &[]);
    // Cut a download at a pseudo-random offset, keeping what arrived as the .part.
    let cut = 1 + (random_bytes(8, 99).iter().map(|&b| b as usize).sum::<usize>() * 7919) % (size - 1);
    let mut conn = server.connect();
    assert!(conn.ask("get big.bin").starts_with(&format!("OK {size} 0 {size} ")), "the head names the file\'s version");
    let partial = conn.bytes(cut);
    drop(conn);
    let local = dir.path().join("big.bin");
    std::fs::write(dir.path().join("big.bin.part"), &partial).unwrap();

    let out = ferry_ok(&["get", &server.addr_arg(), "big.bin", local.to_str().unwrap(), "--verify"], None);
    assert_eq!(sha256_file(&local), sum, "resumed download (cut at {cut}) is identical");
    assert!(!dir.path().join("big.bin.part").exists());
    let _ = out;

    // --restart ignores a .part whose bytes are wrong.
    std::fs::write(dir.path().join("big.bin.part"), vec![0u8; 1000]).unwrap();
    std::fs::remove_file(&local).unwrap();
    ferry_ok(&["get", &server.addr_arg(), "big.bin", local.to_str().unwrap(), "--restart"], None);
    assert_eq!(sha256_file(&local), sum, "--restart downloads everything again");
}

#[test]
fn interrupted_upload_resumes_and_is_never_visible_early() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let size = 4 * 1024 * 1024 + 7;
    let data = random_bytes(size, 4);
    let local = dir.path().join("up.bin");
    std::fs::write(&local, &data).unwrap();
    let server = Server::start(&root, &["--allow-write"]);

    let mut conn = server.connect();
    assert_eq!(conn.ask(&format!("put up.bin {size}")), "OK 0");
    let cut = size / 3;
    conn.send(&data[..cut]);
    assert!(!root.join("up.bin").exists(), "not visible under its final name mid-upload");
    conn.reader.get_ref().shutdown(Shutdown::Write).unwrap();
    assert!(conn.at_eof(), "the server drops an upload cut short");
    assert!(!root.join("up.bin").exists(), "not visible under its final name after the cut");
    let listing = ferry_ok(&["ls", &server.addr_arg(), "/"], None);
    assert!(!listing.contains("up.bin"), "partial uploads are hidden from listings: {listing}");

    ferry_ok(&["put", &server.addr_arg(), local.to_str().unwrap(), "up.bin", "--verify"], None);
    assert_eq!(sha256_file(&root.join("up.bin")), sha256(&data), "resumed upload is identical");
    assert!(!root.join(".up.bin.ferry-part").exists());
}

#[test]
fn escape_attempts_are_refused_and_the_connection_stays_usable() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, b"TOP SECRET").unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", root.join("secret-link")).unwrap();
    std::os::unix::fs::symlink(&secret, root.join("sub/abs-secret-link")).unwrap();
    std::os::unix::fs::symlink("/proc/self/root", root.join("proc-root")).unwrap();
    std::os::unix::fs::symlink("loop-b", root.join("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", root.join("loop-b")).unwrap();
    std::os::unix::fs::symlink("..", root.join("sub/up-link")).unwrap();
    let server = Server::start(&root, &["--allow-write"]);
    let mut conn = server.connect();
    let long = format!("get {}", "../".repeat(1300));
    let attempts = [
        "get ../secret.txt",
        "get ../../../../etc/passwd",
        "get /../secret.txt",
        "cd ..",
        "cd /..",
        "ls ..",
        "get %2e%2e/secret.txt",
        "get %2e%2e%2fsecret.txt",
        "get ..%2fsecret.txt",
        "get \"\\x2e\\x2e/secret.txt\"",
        "get /etc/passwd",
        "get etc-link/passwd",
        "ls etc-link",
        "cd etc-link",
        "get secret-link",
        "stat secret-link",
        "sum secret-link",
        "get sub/abs-secret-link",
        "get proc-root/etc/passwd",
        "get loop-a",
        "get sub/up-link/../secret.txt",
        "get sub/up-link/up-link/secret.txt",
        "get a\\x00b",
        "get \"secret.txt\\x00\"",
        long.as_str(),
        "put ../evil.txt 1",
        "put etc-link/evil 1",
        "mkdir ../evil",
        "rm ../secret.txt",
        "rm secret-link/..",
    ];
    assert!(attempts.len() >= 20);
    for attempt in attempts {
        let reply = conn.ask(attempt);
        assert!(reply.starts_with("ERR "), "{attempt:?} must be refused, got {reply:?}");
        assert!(!reply.contains("SECRET") && !reply.contains("root:"), "{attempt:?} leaked: {reply}");
        assert_eq!(conn.ask("pwd"), "OK /", "connection still usable after {attempt:?}");
    }
    assert_eq!(conn.ask("get secret-link"), "ERR 403 path escapes the served root");
    assert_eq!(std::fs::read(&secret).unwrap(), b"TOP SECRET", "nothing outside the root changed");
    assert!(!dir.path().join("evil").exists() && !dir.path().join("evil.txt").exists());
    assert!(conn.ask("get hello.txt").starts_with("OK 13 0 13 "), "the head names the file\'s version");
    assert_eq!(conn.bytes(13), b"Hello, world!");
}

#[test]
fn oversize_line_closes_only_that_connection() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &[]);
    let mut good = server.connect();
    assert_eq!(good.ask("cd sub"), "OK /sub");
    let mut bad = server.connect();
    bad.send(&vec![b'x'; 10_000]);
    let reply = bad.line();
    assert!(reply.starts_with("ERR 413 "), "{reply}");
    assert!(bad.at_eof(), "the oversize line closes its connection");
    assert_eq!(good.ask("pwd"), "OK /sub", "the other connection is untouched");
}

#[test]
fn vanishing_client_does_not_disturb_another() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let size = 32 * 1024 * 1024;
    let sum = random_file(&root.join("big.bin"), size, 5);
    let server = Server::start(&root, &[]);
    let mut quitter = server.connect();
    assert!(
        quitter.ask("get big.bin").starts_with(&format!("OK {size} 0 {size} ")),
        "the head names the file\'s version"
    );
    let _ = quitter.bytes(1024 * 1024);
    let mut steady = server.connect();
    assert!(
        steady.ask("get big.bin").starts_with(&format!("OK {size} 0 {size} ")),
        "the head names the file\'s version"
    );
    let first = steady.bytes(1024 * 1024);
    drop(quitter); // vanishes mid-download, with unread data: the server gets a reset
    let rest = steady.bytes(size - first.len());
    let mut all = first;
    all.extend_from_slice(&rest);
    assert_eq!(sha256(&all), sum);
    assert_eq!(steady.ask("ping"), "OK pong");
}

#[test]
fn sigterm_lets_a_download_finish_then_exits_zero() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let sum = random_file(&root.join("big.bin"), BIG, 6);
    let mut server = Server::start(&root, &[]);
    let mut conn = server.connect();
    assert!(conn.ask("get big.bin").starts_with(&format!("OK {BIG} 0 {BIG} ")), "the head names the file\'s version");
    let first = conn.bytes(1024 * 1024);
    server.signal(rustix::process::Signal::TERM);
    let rest = conn.bytes(BIG - first.len());
    let mut all = first;
    all.extend_from_slice(&rest);
    assert_eq!(sha256(&all), sum, "the in-flight download completed intact");
    assert!(conn.at_eof(), "after the transfer the server closes the connection");
    let status = server.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "ferry serve exits 0 after SIGTERM, got {status}");
}

#[test]
fn sigint_with_idle_clients_exits_promptly() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let mut server = Server::start(&root, &[]);
    let mut idle = server.connect();
    assert_eq!(idle.ask("pwd"), "OK /");
    let started = Instant::now();
    server.signal(rustix::process::Signal::INT);
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(5), "an idle connection does not hold up shutdown");
    assert!(idle.at_eof());
}

#[test]
fn nc_session_shows_pwd_cd_and_listing() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &[]);
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf 'pwd\\ncd sub\\npwd\\nls\\nquit\\n' | timeout 20 nc {} {}",
            server.addr.ip(),
            server.addr.port()
        ))
        .output()
        .expect("run nc (install netcat-openbsd)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "nc failed: {text} {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "OK /");
    assert_eq!(lines[1], "OK /sub");
    assert_eq!(lines[2], "OK /sub");
    assert!(lines[3].starts_with("OK "), "ls announces its length: {text}");
    assert!(lines.iter().any(|l| l.starts_with("d ") && l.ends_with(" deeper")), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("f 3 ") && l.ends_with(" file.txt")), "{text}");
    assert_eq!(lines.last(), Some(&"OK bye"));
}

#[test]
fn idle_connections_are_closed_after_the_timeout() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let server = Server::start(&root, &["--idle-timeout", "1"]);
    let mut conn = server.connect();
    assert_eq!(conn.ask("ping"), "OK pong");
    let started = Instant::now();
    let reply = conn.line();
    assert!(reply.starts_with("ERR 408"), "{reply}");
    assert!(conn.at_eof());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(10), "{waited:?}");
}

#[test]
fn concurrent_clients_are_all_served() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let sum = random_file(&root.join("mid.bin"), 2 * 1024 * 1024, 7);
    let server = Server::start(&root, &["--workers", "4"]);
    let addr = server.addr;
    let handles: Vec<_> = (0..16)
        .map(|_| {
            std::thread::spawn(move || {
                let mut conn = util::Conn::new(std::net::TcpStream::connect(addr).unwrap());
                assert!(
                    conn.ask("get mid.bin").starts_with("OK 2097152 0 2097152 "),
                    "the head names the file\'s version"
                );
                let data = conn.bytes(2 * 1024 * 1024);
                conn.send(b"quit\n");
                assert_eq!(conn.line(), "OK bye");
                sha256(&data)
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), sum);
    }
    let mut c = server.connect();
    c.send(b"ping\nping\n");
    c.reader.get_mut().flush().unwrap();
    assert_eq!(c.line(), "OK pong");
    assert_eq!(c.line(), "OK pong");
}

#[test]
fn a_client_that_stops_reading_is_dropped_after_the_idle_timeout() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let size = 64 * 1024 * 1024;
    random_file(&root.join("big.bin"), size, 8);
    for model in ["multi-reactor", "threadpool"] {
        let server = Server::start(&root, &["--idle-timeout", "1", "--model", model]);
        let pid = server.child.id();
        let open_fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
        // A first exchange makes sure every I/O loop is up (they create their
        // descriptors after the listening line is printed).
        let mut warm = server.connect();
        assert_eq!(warm.ask("ping"), "OK pong");
        let with_warm = open_fds();
        assert_eq!(warm.ask("quit"), "OK bye");
        assert!(warm.at_eof());
        let closing = Instant::now();
        while open_fds() >= with_warm && closing.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let before = open_fds();
        assert!(before < with_warm, "{model}: the server closed the warm-up connection");
        let mut stuck = server.connect();
        assert!(
            stuck.ask("get big.bin").starts_with(&format!("OK {size} 0 {size} ")),
            "the head names the file\'s version"
        );
        // The server now holds the socket and the file, and the client reads
        // nothing more: the kernel's buffers fill and the transfer stops.
        let holding = open_fds();
        assert!(holding >= before + 2, "socket and file open while sending ({before} -> {holding})");
        let started = Instant::now();
        while open_fds() > holding - 2 && started.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let waited = started.elapsed();
        assert!(
            open_fds() <= holding - 2,
            "{model}: the stalled connection still holds its descriptors after {waited:?}"
        );
        assert!(waited >= Duration::from_millis(900), "{model}: dropped before the idle timeout: {waited:?}");
        // What the kernel had buffered still arrives, then the stream ends short.
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stuck.reader, &mut rest);
        assert!(rest.len() < size, "the stalled client cannot have received the whole file");
        // Everyone else is still served.
        let mut other = server.connect();
        assert_eq!(other.ask("ping"), "OK pong");
    }
}

/// `sum` reads the whole file. On the single reactor every connection
/// shares one loop; the hash runs on a job worker, so another client's
/// `ping` is answered while it is still going, and a request pipelined
/// behind the `sum` is answered after it, in order.
#[test]
fn a_long_sum_does_not_stall_the_reactor_loop() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    // Sparse: 1 GiB of zeros to hash (about a second or more), no disk space.
    std::fs::File::create(root.join("huge.bin")).unwrap().set_len(1 << 30).unwrap();
    let server = Server::start(&root, &["--model", "reactor"]);
    let mut hashing = server.connect();
    hashing.send(b"sum huge.bin\nping\n");
    let mut other = server.connect();
    assert_eq!(other.ask("ping"), "OK pong");
    // The hash is still running: nothing has come back on its connection.
    let stream = hashing.reader.get_mut();
    stream.set_nonblocking(true).unwrap();
    let early = stream.peek(&mut [0u8; 1]);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the sum answered before another client's ping: {early:?}"
    );
    stream.set_nonblocking(false).unwrap();
    let sum = hashing.line();
    let hex = sum.strip_prefix("OK ").unwrap_or_else(|| panic!("unexpected answer {sum:?}"));
    assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "not a SHA-256: {sum:?}");
    assert_eq!(hashing.line(), "OK pong", "the pipelined request is answered after the sum");
    // A `quit` behind a `sum`: both answers, then the close.
    let mut quitting = server.connect();
    quitting.send(b"sum hello.txt\nquit\n");
    assert!(quitting.line().starts_with("OK "), "sum answered");
    assert_eq!(quitting.line(), "OK bye");
    assert!(quitting.at_eof(), "closed after the answers");
}
