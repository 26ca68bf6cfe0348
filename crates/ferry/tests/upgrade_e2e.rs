//! SIGUSR2 under every model: the binary on disk (a copy in a temporary
//! directory, so the test can replace it) takes over the listeners while
//! clients keep connecting, with no connection refused or reset and the
//! downloads in flight finishing byte-identical; the pid file names the
//! new process; with --daemon too; an upgrade to a broken binary leaves
//! the old one serving and says why.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use rustix::process::Signal;
use util::serve::{BIG, MODELS, Svc, eventually, request, state};
use util::{PATIENCE, ferry_bin, random_file, scratch, sha256, wait_child};

/// A directory with a copy of the binary (`bin/ferry`), a served root
/// (`a.txt`, a big file) and room for a pid file.
struct Setup {
    _dir: tempfile::TempDir,
    bin: PathBuf,
    root: PathBuf,
    pid_file: PathBuf,
    big_sha: String,
}

fn setup() -> Setup {
    let dir = scratch();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let bin = bin.join("ferry");
    std::fs::copy(ferry_bin(), &bin).expect("copy the binary");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("a.txt"), b"hello").unwrap();
    let big_sha = random_file(&root.join("big.bin"), BIG, 7);
    let pid_file = dir.path().join("ferry.pid");
    Setup { bin, root, pid_file, big_sha, _dir: dir }
}

/// A server started from the copy; its stdout lines and log lines (the
/// new binary inherits both pipes).
struct Server {
    child: Child,
    stdout: mpsc::Receiver<String>,
    log: mpsc::Receiver<String>,
    files: SocketAddr,
    http: SocketAddr,
}

fn lines(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn start(s: &Setup, model: &str, extra: &[&str]) -> Server {
    let mut child = Command::new(&s.bin)
        .arg("serve")
        .arg(&s.root)
        .args(["--model", model, "--files", "127.0.0.1:0", "--http", "127.0.0.1:0", "--pid-file"])
        .arg(&s.pid_file)
        .args(extra)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry serve");
    let stdout = lines(child.stdout.take().expect("stdout"));
    let log = lines(child.stderr.take().expect("stderr"));
    let (files, http) = listening(&stdout);
    Server { child, stdout, log, files, http }
}

/// The next two "listening on" lines: the files and HTTP addresses.
fn listening(stdout: &mpsc::Receiver<String>) -> (SocketAddr, SocketAddr) {
    let next = |service: &str| {
        let line = stdout.recv_timeout(PATIENCE).expect("a listening line");
        let prefix = format!("ferry: {service} listening on ");
        line.strip_prefix(&prefix).unwrap_or_else(|| panic!("unexpected line {line:?}")).parse().expect("addr")
    };
    (next("files"), next("http"))
}

/// Waits (bounded) for a log line containing `needle`.
fn log_line(log: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match log.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!("no log line containing {needle:?}"),
        }
    }
}

fn signal(pid: i32, sig: Signal) {
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid).expect("pid"), sig).expect("kill");
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// One request for a.txt on a new connection; an error for anything but
/// the whole answer (refused, reset, closed early).
fn fetch(svc: Svc, addr: SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(PATIENCE)).map_err(|e| e.to_string())?;
    let ask: &[u8] = match svc {
        Svc::Http => b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Svc::Files => b"get a.txt\nquit\n",
    };
    s.write_all(ask).map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).map_err(|e| format!("read: {e}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let whole = match svc {
        Svc::Http => answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello"),
        Svc::Files => answer.starts_with("OK 5 ") && answer.contains("hello"),
    };
    if whole { Ok(()) } else { Err(format!("answer {answer:?}")) }
}

/// Clients connecting one after another on both services until stopped;
/// returns (answered, failures).
fn load(files: SocketAddr, http: SocketAddr, stop: Arc<AtomicBool>, done: Arc<AtomicUsize>) -> Vec<String> {
    let mut failures = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        for (svc, addr) in [(Svc::Http, http), (Svc::Files, files)] {
            match fetch(svc, addr) {
                Ok(()) => {
                    done.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => failures.push(format!("{}: {e}", svc.name())),
            }
        }
    }
    failures
}

/// Waits until `pid` is gone (not ours to reap: init reaps it).
fn gone(pid: i32) {
    eventually(&format!("process {pid} is gone"), || matches!(state(pid), None | Some('Z')));
}

#[test]
fn an_upgrade_under_load_refuses_nothing_and_finishes_downloads_under_every_model() {
    let only = std::env::var("FERRY_TEST_MODEL").ok();
    for model in MODELS.iter().filter(|m| only.as_deref().is_none_or(|o| o == **m)) {
        let s = setup();
        let mut old = start(&s, model, &[]);
        let old_pid = old.child.id() as i32;
        // Written after the listening lines.
        eventually("the pid file names it", || read_pid(&s.pid_file) == Some(old_pid));
        // Downloads in flight: begun, then paused (the iterative model
        // serves one connection at a time: one download there).
        let services: &[Svc] = if *model == "iterative" { &[Svc::Http] } else { &[Svc::Http, Svc::Files] };
        let mut downloads: Vec<_> = services
            .iter()
            .map(|&svc| {
                let addr = if svc == Svc::Http { old.http } else { old.files };
                let (mut reader, len) = request(svc, addr, "big.bin");
                let mut body = vec![0; 64 * 1024];
                reader.read_exact(&mut body).expect("the first bytes");
                (reader, len, body)
            })
            .collect();
        let (stop, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let loader = {
            let (stop, done, files, http) = (Arc::clone(&stop), Arc::clone(&done), old.files, old.http);
            std::thread::spawn(move || load(files, http, stop, done))
        };
        if *model != "iterative" {
            eventually("the load is served", || done.load(Ordering::SeqCst) > 10);
        }
        signal(old_pid, Signal::USR2);
        // The new binary announces the same addresses.
        assert_eq!(listening(&old.stdout), (old.files, old.http), "{model}");
        log_line(&old.log, "is serving; this process drains");
        for (reader, len, body) in &mut downloads {
            let mut rest = vec![0; *len - body.len()];
            reader.read_exact(&mut rest).expect("the rest of the download");
            body.extend_from_slice(&rest);
            assert_eq!(sha256(body), s.big_sha, "{model}: a download in flight");
        }
        let status = wait_child(&mut old.child, PATIENCE).expect("the old process exits");
        assert!(status.success(), "{model}: the old process exited with {status}");
        let new_pid = read_pid(&s.pid_file).expect("the pid file names the new process");
        assert_ne!(new_pid, old_pid, "{model}");
        // Served by the new process alone now.
        let after = done.load(Ordering::SeqCst);
        eventually("the new process serves the load", || done.load(Ordering::SeqCst) > after + 10);
        stop.store(true, Ordering::SeqCst);
        let failures = loader.join().expect("load thread");
        if !failures.is_empty() {
            let log: Vec<String> = old.log.try_iter().collect();
            panic!(
                "{model}: {} failed: {:?}\nlog:\n{}",
                failures.len(),
                &failures[..failures.len().min(5)],
                log.join("\n")
            );
        }
        signal(new_pid, Signal::TERM);
        gone(new_pid);
        assert!(!s.pid_file.exists(), "{model}: the new process removes its pid file");
    }
}

#[test]
fn an_upgrade_to_a_broken_binary_keeps_the_old_one_serving_under_every_model() {
    for model in MODELS {
        let s = setup();
        let mut old = start(&s, model, &[]);
        let pid = old.child.id() as i32;
        eventually("the pid file names it", || read_pid(&s.pid_file) == Some(pid));
        // Replaced as a package manager does: a new file renamed over it.
        let broken = s.bin.with_file_name("broken");
        std::fs::write(&broken, "#!/bin/sh\nexit 1\n").unwrap();
        std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::rename(&broken, &s.bin).unwrap();
        signal(pid, Signal::USR2);
        let line = log_line(&old.log, "upgrade failed");
        assert!(line.contains("exited before it was ready: status 1"), "{model}: {line}");
        assert!(line.contains("goes on serving"), "{model}: {line}");
        fetch(Svc::Http, old.http).unwrap_or_else(|e| panic!("{model}: {e}"));
        fetch(Svc::Files, old.files).unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(read_pid(&s.pid_file), Some(pid), "{model}");
        // And a binary that cannot be executed at all.
        std::fs::write(&s.bin, "not a program").unwrap();
        signal(pid, Signal::USR2);
        let line = log_line(&old.log, "upgrade failed");
        assert!(line.contains("cannot execute"), "{model}: {line}");
        fetch(Svc::Http, old.http).unwrap_or_else(|e| panic!("{model}: {e}"));
        signal(pid, Signal::TERM);
        let status = wait_child(&mut old.child, PATIENCE).expect("exits");
        assert!(status.success(), "{model}: {status}");
    }
}

#[test]
fn a_daemon_upgrades_and_its_pid_file_names_the_new_process_under_every_model() {
    for model in MODELS {
        let s = setup();
        let out = Command::new(&s.bin)
            .arg("serve")
            .arg(&s.root)
            .args(["--model", model, "--files", "127.0.0.1:0", "--http", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
            .args(["--daemon", "--pid-file"])
            .arg(&s.pid_file)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("ferry serve --daemon");
        assert!(out.status.success(), "{model}");
        let text = String::from_utf8_lossy(&out.stdout);
        let http: SocketAddr = text
            .lines()
            .find_map(|l| l.strip_prefix("ferry: http listening on "))
            .expect("an http line")
            .parse()
            .unwrap();
        let metrics: SocketAddr = text
            .lines()
            .find_map(|l| l.strip_prefix("ferry: metrics listening on "))
            .expect("a metrics line")
            .parse()
            .unwrap();
        assert_eq!(healthz(metrics), "200", "{model}");
        let old = read_pid(&s.pid_file).expect("a pid file");
        signal(old, Signal::USR2);
        eventually("the pid file names the new process", || read_pid(&s.pid_file).is_some_and(|p| p != old));
        gone(old);
        let new = read_pid(&s.pid_file).expect("a pid file");
        fetch(Svc::Http, http).unwrap_or_else(|e| panic!("{model}: {e}"));
        // The metrics socket was handed over too: the same address, healthy.
        for _ in 0..5 {
            assert_eq!(healthz(metrics), "200", "{model}: the new process answers the health check");
        }
        signal(new, Signal::TERM);
        gone(new);
    }
}

/// The status code of `GET /healthz` at `addr`.
fn healthz(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics address");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.split_whitespace().nth(1).unwrap_or_default().to_string()
}
