//! `ferry serve --udp-echo` (issue 12) under every model: many peers'
//! datagrams (up to 64 KiB) come back whole and to the right peer, over UDP
//! and a Unix datagram socket; the socket file's life (stale replaced, live
//! refused, mode 0660, removed on exit); an oversized datagram reported,
//! not echoed cut; and SIGTERM stopping the service with the listeners,
//! while a TCP transfer still drains (a connected client sees the closed
//! port as ECONNREFUSED).

#[path = "../../ferry-reactor/tests/datagram_util/load.rs"]
mod load;
mod util;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use util::serve::{MODELS, Svc, ask, assert_no_leftovers, connect, descendants, request, serve_tree};
use util::{PATIENCE, ferry, ferry_bin, scratch, wait_child};

/// A running `ferry serve` with the file service and udp-echo; killed on
/// drop if still alive.
struct Server {
    child: Child,
    files: SocketAddr,
    /// The udp-echo address as printed.
    udp_echo: String,
    /// Its log lines.
    log: mpsc::Receiver<String>,
}

impl Server {
    /// `ferry serve ROOT --model MODEL --files 127.0.0.1:0 --udp-echo ADDR`;
    /// waits for both listening lines (files first, as bound).
    fn start(model: &str, root: &Path, udp_echo: &str) -> Server {
        Server::start_with(model, root, udp_echo, &[])
    }

    /// [`start`](Self::start) with extra arguments.
    fn start_with(model: &str, root: &Path, udp_echo: &str, extra: &[&str]) -> Server {
        let mut child = spawn(model, root, udp_echo, extra);
        let mut lines = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
        let mut line = || lines.next().expect("a listening line").expect("read stdout");
        let files = line();
        let files = files.strip_prefix("ferry: files listening on ").unwrap_or_else(|| panic!("first line: {files}"));
        let udp = line();
        let udp_echo = udp
            .strip_prefix("ferry: udp-echo listening on ")
            .unwrap_or_else(|| panic!("{model}: second line: {udp}"))
            .to_owned();
        thread::spawn(move || lines.for_each(drop));
        let log = log_lines(&mut child);
        Server { files: files.parse().expect("files address"), udp_echo, log, child }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn terminate(&self) {
        let pid = rustix::process::Pid::from_raw(self.pid()).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("kill");
    }

    /// SIGTERM, then a bounded wait; asserts exit status 0.
    fn stop(&mut self) {
        self.terminate();
        let status = wait_child(&mut self.child, PATIENCE).expect("ferry serve exited in time");
        assert!(status.success(), "ferry serve exited with {status}");
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
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn(model: &str, root: &Path, udp_echo: &str, extra: &[&str]) -> Child {
    Command::new(ferry_bin())
        .arg("serve")
        .arg(root)
        .args(["--model", model, "--files", "127.0.0.1:0", "--http", "off", "--udp-echo", udp_echo])
        .args(["--workers", "2"])
        .args(extra)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry serve")
}

/// Its stderr, line by line, read on a thread.
fn log_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// 50 peers x 20 datagrams of random sizes, the first of each 64 KiB.
fn heavy(max_len: usize, rto: Duration) -> load::Spec {
    load::Spec { peers: 50, per_peer: 20, max_len, seed: 12, rto, deadline: Duration::from_secs(90) }
}

#[test]
fn udp_echo_brings_many_peers_datagrams_back_whole_under_every_model() {
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    // Every model, and the reactor models' other pollers too.
    let runs = MODELS
        .iter()
        .map(|m| (*m, &[][..]))
        .chain([("reactor", &["--poller", "poll"][..]), ("multi-reactor", &["--poller", "select"][..])]);
    for (model, extra) in runs {
        let mut server = Server::start_with(model, &root, "127.0.0.1:0", extra);
        let udp: SocketAddr = server.udp_echo.parse().expect("a UDP address");
        // The TCP services keep working beside it.
        assert_eq!(ask(&mut connect(server.files), "ping"), "OK pong", "{model} {extra:?}");
        // UDP may drop on a full buffer, so lost datagrams are sent again;
        // what comes back must be whole and at the right peer.
        let report = load::run(&load::Target::Udp(udp), &heavy(65507, Duration::from_millis(500)));
        assert_eq!(report.echoed, 50 * 20, "{model} {extra:?}");
        let seen = descendants(server.pid());
        server.stop();
        assert_no_leftovers(server.pid(), &seen);
    }
}

#[test]
fn unix_dgram_echo_under_every_model_and_its_socket_file() {
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let clients = dir.path().join("c");
    std::fs::create_dir(&clients).unwrap();
    let path = dir.path().join("echo.sock");
    let arg = format!("unix-dgram:{}", path.display());
    for model in MODELS {
        // A socket file left behind by a server that died is replaced.
        drop(UnixDatagram::bind(&path).unwrap());
        let mut server = Server::start(model, &root, &arg);
        assert_eq!(server.udp_echo, arg, "{model}: the listening line names the socket");
        let mode = std::fs::metadata(&path).expect("socket file").permissions().mode();
        assert_eq!(mode & 0o777, 0o660, "{model}: mode {mode:o}");
        // Unix datagrams are not lost: given send buffers that can hold the
        // replies until they are read, every one arrives first time.
        let roomy = load::roomy_send_buffers();
        let target = load::Target::Unix { server: path.clone(), client_dir: clients.clone() };
        let rto = if roomy { Duration::from_secs(30) } else { Duration::from_millis(500) };
        let report = load::run(&target, &heavy(64 * 1024, rto));
        assert_eq!(report.echoed, 50 * 20, "{model}");
        if roomy {
            assert_eq!(report.retransmits, 0, "{model}: a reply went astray");
        }
        // Longer than 64 KiB: reported, not echoed cut.
        let peer = UnixDatagram::bind(clients.join("big")).unwrap();
        peer.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        peer.send_to(&vec![7u8; 70_000], &path).unwrap();
        let line = server.log_line("truncated, not echoed");
        assert!(line.contains("70000 bytes"), "{model}: {line}");
        peer.send_to(b"small", &path).unwrap();
        let mut buf = vec![0u8; 80_000];
        let (n, _) = peer.recv_from(&mut buf).expect("the next datagram is echoed");
        assert_eq!(&buf[..n], b"small", "{model}: the oversized one was not echoed");
        drop(peer);
        std::fs::remove_file(clients.join("big")).unwrap();
        let seen = descendants(server.pid());
        server.stop();
        assert!(!path.exists(), "{model}: the socket file is removed on exit");
        assert_no_leftovers(server.pid(), &seen);
    }
}

#[test]
fn a_second_server_on_a_live_unix_dgram_socket_is_refused() {
    let dir = scratch();
    let path: PathBuf = dir.path().join("echo.sock");
    let arg = format!("unix-dgram:{}", path.display());
    let mut first = Server::start("reactor", dir.path(), &arg);
    let mut second = spawn("reactor", dir.path(), &arg, &[]);
    let log = log_lines(&mut second);
    let status = wait_child(&mut second, PATIENCE).expect("the second server gives up at once");
    assert!(!status.success(), "a second server on a live socket must not start");
    // The sender ends with the server's stderr, which it closed on exit.
    let error = log.iter().collect::<Vec<String>>().join("\n");
    assert!(error.contains("live server") && error.contains(&arg), "a clear error naming the socket: {error}");
    // The first one is untouched.
    let peer = UnixDatagram::bind(dir.path().join("p")).unwrap();
    peer.set_read_timeout(Some(PATIENCE)).unwrap();
    peer.send_to(b"still here", &path).unwrap();
    let mut buf = [0u8; 32];
    let n = peer.recv(&mut buf).expect("echo from the first server");
    assert_eq!(&buf[..n], b"still here");
    first.stop();
}

#[test]
fn sigterm_stops_udp_echo_with_the_listeners_while_transfers_drain() {
    let dir = scratch();
    let (root, _, _) = serve_tree(dir.path());
    for model in MODELS {
        let mut server = Server::start(model, &root, "127.0.0.1:0");
        // A download the client does not read stays in flight, so the
        // server drains (and stays alive) after SIGTERM.
        let (transfer, len) = request(Svc::Files, server.files, "big.bin");
        assert!(len > 0);
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(&server.udp_echo).unwrap();
        client.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut buf = [0u8; 16];
        client.send(b"before").unwrap();
        let n = client.recv(&mut buf).expect("echo before the shutdown");
        assert_eq!(&buf[..n], b"before", "{model}");
        server.terminate();
        // Once the service stopped, the port is closed: the kernel answers
        // with port unreachable, which a connected socket reports as
        // ECONNREFUSED on its next call.
        let deadline = Instant::now() + PATIENCE;
        loop {
            assert!(Instant::now() < deadline, "{model}: udp-echo still answers after SIGTERM");
            let _ = client.send(b"after");
            match client.recv(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("{model}: {e}"),
            }
        }
        assert!(matches!(server.child.try_wait(), Ok(None)), "{model}: the server is still draining the download");
        drop(transfer);
        let status = wait_child(&mut server.child, PATIENCE).expect("exits once the transfer is gone");
        assert!(status.success(), "{model}: exited with {status}");
    }
}

/// `ferry ping --udp` against the datagram echo of every model: every
/// datagram comes back and the summary says so (issue 12, `ferry ping`).
#[test]
fn ferry_ping_udp_gets_every_datagram_back_under_every_model() {
    let dir = scratch();
    for model in MODELS {
        let mut server = Server::start(model, dir.path(), "127.0.0.1:0");
        let out = ferry(&["ping", "--udp", &server.udp_echo, "-c", "3", "-i", "0.05"], None, b"");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{model}: {text}");
        assert!(text.contains("3 sent, 3 received, 0% loss"), "{model}: {text}");
        server.stop();
    }
}
