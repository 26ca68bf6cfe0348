//! Socket activation under every model: listening sockets bound by the
//! test and passed as systemd passes them (descriptors 3.., `LISTEN_FDS`,
//! `LISTEN_FDNAMES`, `LISTEN_PID` = the server's pid), TCP and Unix, named
//! and unnamed; descriptors that are no listeners are refused with the
//! reason; and the same through `systemd-socket-activate` when installed.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use util::serve::MODELS;
use util::{PATIENCE, ferry_bin, scratch, wait_child};

/// `ferry serve ROOT ARGS` with `sockets` passed as systemd passes them:
/// the shell that execs ferry sets `LISTEN_PID` to its own pid, which
/// ferry keeps.
fn spawn_with(root: &Path, sockets: Vec<(OwnedFd, &str)>, args: &[&str]) -> Child {
    let names: Vec<&str> = sockets.iter().map(|(_, name)| *name).collect();
    // Above 3 + n, so no dup2 below overwrites a source.
    let sources: Vec<OwnedFd> =
        sockets.iter().map(|(fd, _)| rustix::io::fcntl_dupfd_cloexec(fd, 100).expect("dup")).collect();
    let raw: Vec<i32> = sources.iter().map(AsRawFd::as_raw_fd).collect();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", r#"export LISTEN_PID=$$; exec "$0" "$@""#, ferry_bin(), "serve"]).arg(root).args(args);
    cmd.env("LISTEN_FDS", sockets.len().to_string()).env("LISTEN_FDNAMES", names.join(":"));
    cmd.env("RUST_LOG", "info").env("NO_COLOR", "1");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and makes
    // only dup2 calls (async-signal-safe), on descriptors that exist.
    unsafe {
        cmd.pre_exec(move || {
            for (i, fd) in raw.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn ferry serve");
    drop(sources);
    child
}

/// The "listening on" lines (read until `n` of them), or the failed
/// server's stderr.
fn listening(child: &mut Child, n: usize) -> Result<Vec<String>, String> {
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = Vec::new();
    while lines.len() < n {
        let mut line = String::new();
        if stdout.read_line(&mut line).expect("read stdout") == 0 {
            let mut err = String::new();
            let _ = child.stderr.take().expect("stderr").read_to_string(&mut err);
            wait_child(child, PATIENCE);
            return Err(err);
        }
        lines.push(line.trim_end().to_owned());
    }
    // Keep the pipe drained, and stderr too (the log).
    std::thread::spawn(move || stdout.lines().for_each(drop));
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || BufReader::new(stderr).lines().for_each(drop));
    Ok(lines)
}

fn stop(child: &mut Child) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("kill");
    let status = wait_child(child, PATIENCE).expect("ferry serve exited in time");
    assert!(status.success(), "ferry serve exited with {status}");
}

/// One HTTP GET of /a.txt; the body.
fn http_get(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    s.write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer.rsplit("\r\n\r\n").next().unwrap_or_default().to_owned()
}

/// The file protocol's first answer line to `get a.txt` over a Unix socket.
fn files_get(path: &Path) -> String {
    let mut s = UnixStream::connect(path).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    s.write_all(b"get a.txt\n").expect("send");
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).expect("read");
    line
}

fn tcp_listener() -> (OwnedFd, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    (l.into(), addr)
}

#[test]
fn every_model_serves_the_passed_tcp_and_unix_sockets() {
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("a.txt"), b"hello").unwrap();
    for model in MODELS {
        let (http, addr) = tcp_listener();
        let path = dir.path().join(format!("{model}.sock"));
        let files: OwnedFd = UnixListener::bind(&path).expect("bind unix").into();
        // The configured addresses are not bound: the passed sockets are
        // used instead (a port taken by another server proves it).
        let (_taken, taken) = tcp_listener();
        let taken = taken.to_string();
        let mut child = spawn_with(
            &root,
            vec![(http, "http"), (files, "files")],
            &["--model", model, "--http", &taken, "--files", &taken],
        );
        let lines = listening(&mut child, 2).unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(
            lines,
            [format!("ferry: files listening on unix:{}", path.display()), format!("ferry: http listening on {addr}")],
            "{model}"
        );
        for _ in 0..3 {
            assert_eq!(http_get(addr), "hello", "{model}");
            assert!(files_get(&path).starts_with("OK 5 "), "{model}");
        }
        stop(&mut child);
        assert!(path.exists(), "{model}: the socket file belongs to whoever made it; ferry leaves it");
    }
}

#[test]
fn an_unnamed_socket_goes_to_the_first_enabled_service() {
    let dir = scratch();
    std::fs::write(dir.path().join("a.txt"), b"hello").unwrap();
    // systemd's default name is the socket unit's.
    for (args, service) in [(&["--echo", "127.0.0.1:0"][..], "http"), (&["--http", "off"][..], "files")] {
        let (fd, addr) = tcp_listener();
        let mut child = spawn_with(dir.path(), vec![(fd, "ferry.socket")], args);
        let lines = listening(&mut child, 1).expect("starts");
        assert_eq!(lines, [format!("ferry: {service} listening on {addr}")], "{args:?}");
        if service == "http" {
            assert_eq!(http_get(addr), "hello");
        }
        stop(&mut child);
    }
}

#[test]
fn descriptors_that_are_no_listeners_are_refused_with_the_reason() {
    let dir = scratch();
    let udp: OwnedFd = UdpSocket::bind("127.0.0.1:0").expect("udp").into();
    let (server, addr) = tcp_listener();
    let connected: OwnedFd = TcpStream::connect(addr).expect("connect").into();
    let file: OwnedFd = std::fs::File::open(dir.path()).expect("open").into();
    let (echo, _) = tcp_listener();
    let cases: Vec<(OwnedFd, &str, &str)> = vec![
        (udp, "http", "not a stream socket"),
        (connected, "http", "not listening"),
        (file, "files", "not a socket"),
        (echo, "echo", "the echo service is off"),
    ];
    for (fd, name, why) in cases {
        let mut child = spawn_with(dir.path(), vec![(fd, name)], &[]);
        let err = listening(&mut child, 1).expect_err("refused");
        assert!(err.contains(why) && err.contains("socket activation"), "{name}: {err}");
    }
    drop(server);
}

#[test]
fn systemd_socket_activate_starts_it() {
    if Command::new("systemd-socket-activate").arg("--help").output().is_err() {
        eprintln!("skipped: systemd-socket-activate is not installed");
        return;
    }
    let dir = scratch();
    std::fs::write(dir.path().join("a.txt"), b"hello").unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Command::new("systemd-socket-activate")
        .args(["-l", &addr.to_string(), "--fdname=http", ferry_bin(), "serve"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // It says when it listens; it starts ferry on the first connection.
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains("Listening on") {
        line.clear();
        assert!(stderr.read_line(&mut line).expect("read stderr") > 0, "systemd-socket-activate failed");
    }
    std::thread::spawn(move || stderr.lines().for_each(drop));
    assert_eq!(http_get(addr), "hello");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    line.clear();
    stdout.read_line(&mut line).expect("read stdout");
    assert_eq!(line.trim_end(), format!("ferry: http listening on {addr}"));
    stop(&mut child);
}
