//! Every TCP service of `ferry serve` on Unix-domain stream sockets, under
//! every model: the file protocol through the `ferry` client, HTTP through
//! `curl --unix-socket`, echo through `nc -U`; abstract names; the socket
//! file's mode, its stale/live handling and its removal at exit; the peer's
//! credentials in the per-connection log line.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use util::serve::MODELS;
use util::*;

/// A `ferry serve` with info-level logs captured, killed on drop if alive.
struct Served {
    child: Child,
    log: mpsc::Receiver<String>,
}

impl Served {
    /// Starts `ferry serve ROOT --model MODEL ARGS...` (every service off
    /// unless ARGS turns it on) and waits for its first "listening on"
    /// line, which it prints once every listener is bound.
    fn start(model: &str, root: &Path, args: &[&str]) -> Served {
        let off = ["--files", "--http"].into_iter().filter(|flag| !args.contains(flag)).flat_map(|flag| [flag, "off"]);
        let mut child = Command::new(ferry_bin())
            .arg("serve")
            .arg(root)
            .args(["--model", model])
            .args(off)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferry serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().expect("a listening line").expect("read stdout");
        assert!(first.contains(" listening on unix:"), "{model}: unexpected first line {first:?}");
        thread::spawn(move || lines.for_each(drop));
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Served { child, log }
    }

    /// Waits (bounded) for a log line containing `needle`.
    fn log_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.log.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line containing {needle:?}"),
            }
        }
    }

    /// SIGTERM, a bounded wait, exit status 0.
    fn stop(&mut self, model: &str) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("kill");
        let status = wait_child(&mut self.child, PATIENCE).expect("ferry serve exited in time");
        assert!(status.success(), "{model}: ferry serve exited with {status}");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).expect("socket file").permissions().mode() & 0o7777
}

/// One line asked, one line answered, on a fresh connection.
fn ask(stream: &mut UnixStream, line: &str) -> String {
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream.write_all(format!("{line}\n").as_bytes()).expect("send");
    let mut reply = String::new();
    BufReader::new(&*stream).read_line(&mut reply).expect("reply");
    reply.trim_end().to_string()
}

/// `ferry put`, `get` and `ls` over `unix:/path`: the bytes come back
/// identical. The socket file has mode 0660, outlives the connections (a
/// forked child or worker that served one does not remove it), the closing
/// log line names the client by uid and pid, and SIGTERM removes the file.
#[test]
fn files_over_a_unix_socket_under_every_model() {
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("root");
    let local = dir.path().join("up.bin");
    let sum = random_file(&local, 3 * 1024 * 1024 + 17, 12);
    for &model in MODELS {
        let sock = dir.path().join(format!("{model}.sock"));
        let addr = format!("unix:{}", sock.display());
        let mut server = Served::start(model, &root, &["--files", &addr, "--allow-write"]);
        assert_eq!(mode_of(&sock), 0o660, "{model}: default mode");
        let remote = format!("{model}.bin");
        ferry_ok(&["put", &addr, local.to_str().expect("utf-8"), &remote], None);
        let back = dir.path().join(format!("{model}.back"));
        ferry_ok(&["get", &addr, &remote, back.to_str().expect("utf-8")], None);
        assert_eq!(sha256_file(&back), sum, "{model}: identical bytes");
        assert!(ferry_ok(&["ls", &addr], None).contains(&remote), "{model}: ls");
        let mut raw = UnixStream::connect(&sock).expect("connect");
        assert_eq!(ask(&mut raw, "ping"), "OK pong", "{model}");
        assert_eq!(ask(&mut raw, "quit"), "OK bye", "{model}");
        let (uid, pid) = (rustix::process::getuid().as_raw(), std::process::id());
        let line = server.log_line(&format!("unix uid={uid} pid={pid}: connection closed"));
        assert!(line.contains("10 bytes in, 15 bytes out"), "{model}: {line}");
        assert!(sock.exists(), "{model}: the socket file outlives the connections it served");
        assert_eq!(ask(&mut UnixStream::connect(&sock).expect("connect again"), "ping"), "OK pong", "{model}");
        server.stop(model);
        assert!(!sock.exists(), "{model}: the socket file is removed at exit");
    }
}

/// HTTP through `curl --unix-socket`, echo through `nc -U` on a path and
/// on an abstract name; `--unix-mode 0600` is honoured.
#[test]
fn http_and_echo_over_unix_sockets_under_every_model() {
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("root");
    let sum = random_file(&root.join("page.bin"), 256 * 1024, 5);
    for &model in MODELS {
        let http = dir.path().join(format!("{model}.http"));
        let echo = dir.path().join(format!("{model}.echo"));
        let name = format!("ferry-test-{}-{model}", std::process::id());
        let (http_arg, echo_arg) = (format!("unix:{}", http.display()), format!("unix:{}", echo.display()));
        let mut server =
            Served::start(model, &root, &["--http", &http_arg, "--echo", &echo_arg, "--unix-mode", "0600"]);
        assert_eq!((mode_of(&http), mode_of(&echo)), (0o600, 0o600), "{model}: --unix-mode");
        let out = dir.path().join(format!("{model}.page"));
        let mut curl = Command::new("curl");
        curl.args(["-sSf", "--max-time", "20", "--unix-socket"]).arg(&http).args(["-o"]).arg(&out);
        let done = run_fed(curl.arg("http://ferry/page.bin"), b"", PATIENCE);
        assert!(done.status.success(), "{model}: curl: {}", String::from_utf8_lossy(&done.stderr));
        assert_eq!(sha256_file(&out), sum, "{model}: the page over HTTP");
        let mut nc = Command::new("nc");
        let done = run_fed(nc.args(["-N", "-U"]).arg(&echo), b"over a unix socket\n", PATIENCE);
        assert_eq!(String::from_utf8_lossy(&done.stdout), "over a unix socket\n", "{model}: nc -U echo");
        server.stop(model);

        let abstract_arg = format!("unix:@{name}");
        let mut server = Served::start(model, &root, &["--echo", &abstract_arg]);
        let at = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
        let mut stream = UnixStream::connect_addr(&at).expect("connect to the abstract name");
        stream.write_all(b"abstract\n").expect("send");
        stream.shutdown(std::net::Shutdown::Write).expect("half-close");
        stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let mut back = String::new();
        stream.read_to_string(&mut back).expect("echo");
        assert_eq!(back, "abstract\n", "{model}: echo on unix:@name");
        server.stop(model);
        assert!(UnixStream::connect_addr(&at).is_err(), "{model}: the abstract name is gone after exit");
    }
}

/// A socket file left by a server that died is replaced; one a live server
/// listens on is refused: the second server exits non-zero with a message
/// naming the path, and the first keeps serving.
#[test]
fn a_stale_socket_file_is_replaced_and_a_live_one_refused() {
    let dir = scratch();
    for &model in MODELS {
        let sock = dir.path().join(format!("{model}.sock"));
        let addr = format!("unix:{}", sock.display());
        // A listener that is gone leaves its file behind (std does not
        // remove it): nothing listens there any more.
        drop(UnixListener::bind(&sock).expect("bind a soon stale socket"));
        assert!(UnixStream::connect(&sock).is_err(), "stale");
        let mut server = Served::start(model, dir.path(), &["--files", &addr]);
        assert_eq!(ask(&mut UnixStream::connect(&sock).expect("connect"), "ping"), "OK pong", "{model}: replaced");

        let mut second = Command::new(ferry_bin());
        second.arg("serve").arg(dir.path()).args(["--model", model, "--http", "off", "--files", &addr, "--quiet"]);
        let refused = run_fed(&mut second, b"", PATIENCE);
        let error = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{model}: a second server on a live socket must fail");
        assert!(error.contains(&addr) && error.contains("live server"), "{model}: a clear error: {error}");
        assert_eq!(ask(&mut UnixStream::connect(&sock).expect("connect"), "ping"), "OK pong", "{model}: still served");
        server.stop(model);
        assert!(!sock.exists(), "{model}: removed at exit");
    }
}

/// A Unix server whose accept queue is full: the client gives up after
/// `--connect-timeout` with a message saying so, instead of waiting for
/// room for good (a Unix `connect` blocks until the queue has room).
#[test]
fn a_full_unix_accept_queue_fails_after_the_connect_timeout() {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let dir = scratch();
    let sock = dir.path().join("full.sock");
    let unix = || rustix::net::socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::NONBLOCK, None);
    let listener = unix().expect("socket");
    let at = SocketAddrUnix::new(sock.as_path()).expect("path");
    rustix::net::bind(&listener, &at).expect("bind");
    rustix::net::listen(&listener, 0).expect("listen");
    let mut held = Vec::new();
    loop {
        let client = unix().expect("socket");
        match rustix::net::connect(&client, &at) {
            Ok(()) => held.push(client),
            Err(rustix::io::Errno::AGAIN) => break,
            Err(e) => panic!("connect: {e}"),
        }
        assert!(held.len() < 64, "the accept queue never filled");
    }
    let addr = format!("unix:{}", sock.display());
    let started = Instant::now();
    let out = ferry(&["ls", &addr, "--connect-timeout", "0.5"], None, b"");
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && error.contains("connect timeout"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "gave up in time");
}

/// `--daemon`: the daemon (not the process that bound the socket and then
/// detached) removes the socket file when SIGTERM stops it.
#[test]
fn a_daemon_removes_its_socket_file_at_exit() {
    let dir = scratch();
    let sock = dir.path().join("daemon.sock");
    let pid_file = dir.path().join("daemon.pid");
    let addr = format!("unix:{}", sock.display());
    let mut serve = Command::new(ferry_bin());
    serve.arg("serve").arg(dir.path()).args(["--http", "off", "--files", &addr, "--daemon", "--pid-file"]);
    let started = run_fed(serve.arg(&pid_file), b"", PATIENCE);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    assert_eq!(ask(&mut UnixStream::connect(&sock).expect("connect"), "ping"), "OK pong");
    let pid: i32 = std::fs::read_to_string(&pid_file).expect("pid file").trim().parse().expect("a pid");
    let pid = rustix::process::Pid::from_raw(pid).expect("pid");
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).expect("pidfd");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("kill");
    let timeout = rustix::event::Timespec::try_from(PATIENCE).expect("timespec");
    let mut fds = [rustix::event::PollFd::new(&pidfd, rustix::event::PollFlags::IN)];
    assert_eq!(rustix::event::poll(&mut fds, Some(&timeout)).expect("poll"), 1, "the daemon exited");
    assert!(!sock.exists(), "the daemon removed its socket file");
}
