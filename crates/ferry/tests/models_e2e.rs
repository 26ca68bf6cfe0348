//! One end-to-end suite for every concurrency model of `ferry serve`: the
//! real binary, real sockets on loopback, both the HTTP and the file
//! service. Plus what only some models have: iterative serialising its
//! clients, the prefork pool surviving a killed worker and carrying the
//! client's address to it, daemon mode.
//!
//! To cover another model, add it to [`MODELS`].

mod util;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use util::*;

/// Every model the suite runs, as `--model` spells it.
const MODELS: &[&str] = &["iterative", "fork", "thread", "prefork", "threadpool", "reactor", "multi-reactor"];

/// Concurrent clients for the models that serve clients side by side.
const CLIENTS: usize = 50;

/// Big enough that it cannot sit in loopback socket buffers whole, so a
/// client that stops reading keeps its transfer in flight.
const BIG: usize = 24 * 1024 * 1024;

/// The services the suite runs every model with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Svc {
    Files,
    Http,
}

impl Svc {
    fn name(self) -> &'static str {
        match self {
            Svc::Files => "files",
            Svc::Http => "http",
        }
    }
}

/// A running `ferry serve` with one service, killed on drop if alive.
struct Running {
    child: Child,
    addr: SocketAddr,
    /// Its log lines, when started with [`start_logged`].
    log: Option<mpsc::Receiver<String>>,
}

impl Running {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid()).expect("pid");
        rustix::process::kill_process(pid, sig).expect("kill");
    }

    /// SIGTERM, then a bounded wait for exit; asserts status 0.
    fn stop(&mut self) {
        self.signal(rustix::process::Signal::TERM);
        let status = wait_child(&mut self.child, PATIENCE).expect("ferry serve exited in time");
        assert!(status.success(), "ferry serve exited with {status}");
    }

    /// Waits (bounded) for a log line containing `needle`.
    fn log_line(&self, needle: &str) -> String {
        let log = self.log.as_ref().expect("started with start_logged");
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line containing {needle:?}"),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How to run the server process.
#[derive(Default)]
struct Opts {
    /// Capture info-level logs line by line instead of `--quiet`.
    logged: bool,
    /// Run it in a process group of its own, as a shell runs a foreground
    /// job, so a "Ctrl-C" can be sent to the whole group.
    own_group: bool,
}

fn start(model: &str, svc: Svc, root: &Path, extra: &[&str]) -> Running {
    spawn_server(model, svc, root, extra, Opts::default())
}

/// Like [`start`], with info-level logs captured line by line.
fn start_logged(model: &str, svc: Svc, root: &Path, extra: &[&str]) -> Running {
    spawn_server(model, svc, root, extra, Opts { logged: true, ..Opts::default() })
}

fn spawn_server(model: &str, svc: Svc, root: &Path, extra: &[&str], opts: Opts) -> Running {
    let (files, http) = match svc {
        Svc::Files => ("127.0.0.1:0", "off"),
        Svc::Http => ("off", "127.0.0.1:0"),
    };
    let mut cmd = Command::new(ferry_bin());
    cmd.arg("serve").arg(root).args(["--model", model, "--files", files, "--http", http]);
    cmd.args(extra).stdin(Stdio::null()).stdout(Stdio::piped());
    if opts.own_group {
        cmd.process_group(0);
    }
    if opts.logged {
        cmd.stderr(Stdio::piped()).env("RUST_LOG", "info").env("NO_COLOR", "1");
    } else {
        cmd.arg("--quiet").stderr(Stdio::inherit());
    }
    let mut child = cmd.spawn().expect("spawn ferry serve");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next().expect("a listening line").expect("read stdout");
    let prefix = format!("ferry: {} listening on ", svc.name());
    let addr = line.strip_prefix(&prefix).unwrap_or_else(|| panic!("unexpected first line: {line}")).parse().unwrap();
    // Keep draining stdout so the server never blocks on it.
    thread::spawn(move || lines.for_each(drop));
    let log = child.stderr.take().map(|stderr| {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    });
    Running { child, addr, log }
}

/// A connection with read/write timeouts so a bug fails instead of hangs.
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream.set_write_timeout(Some(PATIENCE)).expect("timeout");
    stream
}

/// Asks for `name` and reads the answer's header; returns the stream
/// positioned at the first byte of the body and the body's length.
fn request(svc: Svc, addr: SocketAddr, name: &str) -> (BufReader<TcpStream>, usize) {
    let mut stream = connect(addr);
    match svc {
        Svc::Files => stream.write_all(format!("get {name}\n").as_bytes()),
        Svc::Http => {
            stream.write_all(format!("GET /{name} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        }
    }
    .expect("send request");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read status line");
    let len = match svc {
        Svc::Files => {
            // OK SIZE OFFSET LEN
            assert!(line.starts_with("OK "), "get answered {line:?}");
            line.trim_end().rsplit(' ').next().and_then(|n| n.parse().ok()).expect("LEN")
        }
        Svc::Http => {
            assert!(line.starts_with("HTTP/1.1 200"), "GET answered {line:?}");
            let mut len = None;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).expect("read header");
                if header == "\r\n" {
                    break;
                }
                let lower = header.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().ok();
                }
            }
            len.expect("Content-Length")
        }
    };
    (reader, len)
}

/// Downloads `name` whole; returns its SHA-256.
fn download(svc: Svc, addr: SocketAddr, name: &str) -> String {
    let (mut reader, len) = request(svc, addr, name);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).expect("read body");
    sha256(&body)
}

/// Pids of the server's descendants (threads' children included).
fn descendants(pid: i32) -> HashSet<i32> {
    let mut found = HashSet::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else { continue };
        for task in tasks.flatten() {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if found.insert(child) {
                    todo.push(child);
                }
            }
        }
    }
    found
}

/// The process state letter of `pid` (`Z` for a zombie), if it exists.
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next())
}

/// Waits (bounded, polling /proc: there is no readiness signal for "the
/// parent reaped its children") until `check` holds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// After the server exited: none of the processes it had is left, as
/// zombie or orphan, and nothing is in its process group.
fn assert_no_leftovers(server_pid: i32, seen: &HashSet<i32>) {
    for &pid in seen {
        assert_eq!(state(pid), None, "process {pid} of the server outlived it");
    }
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(") ") else { continue };
        let fields: Vec<&str> = rest.split(' ').collect();
        let (ppid, pgid) = (fields[1].parse::<i32>().unwrap_or(0), fields[2].parse::<i32>().unwrap_or(0));
        assert!(ppid != server_pid && pgid != server_pid, "process {pid} belongs to the exited server {server_pid}");
    }
}

fn serve_tree(dir: &Path) -> (std::path::PathBuf, String, String) {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let small = random_file(&root.join("small.bin"), 256 * 1024 + 17, 11);
    let big = random_file(&root.join("big.bin"), BIG, 12);
    (root, small, big)
}

#[test]
fn every_model_serves_concurrent_clients_correct_bytes_and_reaps_everything() {
    let dir = scratch();
    let (root, small, _) = serve_tree(dir.path());
    for &model in MODELS {
        for svc in [Svc::Files, Svc::Http] {
            let mut server = start(model, svc, &root, &[]);
            let clients = if model == "iterative" { 5 } else { CLIENTS };
            let addr = server.addr;
            let handles: Vec<_> =
                (0..clients).map(|_| thread::spawn(move || download(svc, addr, "small.bin"))).collect();
            for handle in handles {
                assert_eq!(handle.join().expect("client"), small, "{model}/{svc:?}: bytes differ");
            }
            // Finished connections leave no zombie behind while serving on.
            let pid = server.pid();
            eventually(&format!("{model} reaped its finished children"), || {
                descendants(pid).iter().all(|&p| state(p) != Some('Z'))
            });
            let seen = descendants(pid);
            server.stop();
            assert_no_leftovers(pid, &seen);
        }
    }
}

/// `--assign least-loaded` is the multi-reactor model's other way of
/// picking a sub-loop: it says so at start and serves concurrent clients
/// of both services the same bytes.
#[test]
fn multi_reactor_assigns_least_loaded_when_asked() {
    let dir = scratch();
    let (root, small, _) = serve_tree(dir.path());
    for svc in [Svc::Files, Svc::Http] {
        let mut server = start_logged("multi-reactor", svc, &root, &["--io-threads", "2", "--assign", "least-loaded"]);
        let line = server.log_line("I/O loop(s)");
        assert!(line.contains("2 I/O loop(s)") && line.contains("LeastLoaded"), "{line}");
        let addr = server.addr;
        let handles: Vec<_> = (0..CLIENTS).map(|_| thread::spawn(move || download(svc, addr, "small.bin"))).collect();
        for handle in handles {
            assert_eq!(handle.join().expect("client"), small, "{svc:?}: bytes differ");
        }
        server.stop();
    }
}

#[test]
fn every_model_finishes_transfers_in_flight_on_sigterm_and_exits_0() {
    let dir = scratch();
    let (root, _, big) = serve_tree(dir.path());
    let upload = random_bytes(4 * 1024 * 1024 + 3, 21);
    for &model in MODELS {
        for svc in [Svc::Files, Svc::Http] {
            let mut server = start(model, svc, &root, &["--workers", "6", "--allow-write"]);
            let in_flight = if model == "iterative" { 1 } else { 3 };
            // Each client reads the first bytes, then stops reading, so the
            // server is blocked mid-send when the signal arrives.
            let mut transfers: Vec<_> = (0..in_flight)
                .map(|_| {
                    let (mut reader, len) = request(svc, server.addr, "big.bin");
                    let mut first = vec![0; 64 * 1024];
                    reader.read_exact(&mut first).expect("first bytes");
                    (reader, len, first)
                })
                .collect();
            // A keep-alive client between requests is closed at shutdown,
            // not waited for (the models with room for it).
            let idle = (model != "iterative").then(|| {
                let mut idle = connect(server.addr);
                match svc {
                    Svc::Files => idle.write_all(b"ping\n").unwrap(),
                    Svc::Http => idle.write_all(b"GET /small.bin HTTP/1.1\r\nHost: t\r\n\r\n").unwrap(),
                }
                let mut b = [0u8; 1];
                idle.read_exact(&mut b).expect("idle client answered");
                idle
            });
            // An upload that has begun is received whole.
            let name = format!("up-{model}.bin");
            let uploading = (svc == Svc::Files && model != "iterative").then(|| {
                let mut up = connect(server.addr);
                assert_eq!(ask(&mut up, &format!("put {name} {}", upload.len())), "OK 0");
                up.write_all(&upload[..1 << 20]).expect("first part of the upload");
                up
            });
            let pid = server.pid();
            let seen = descendants(pid);
            server.signal(rustix::process::Signal::TERM);
            for (reader, len, first) in transfers.iter_mut() {
                let mut rest = vec![0; *len - first.len()];
                reader.read_exact(&mut rest).expect("the rest of the transfer after SIGTERM");
                first.extend_from_slice(&rest);
                assert_eq!(sha256(first), big, "{model}/{svc:?}: transfer in flight lost bytes");
            }
            if let Some(mut up) = uploading {
                up.write_all(&upload[1 << 20..]).expect("the rest of the upload after SIGTERM");
                assert_eq!(read_line(&mut up), format!("OK {}", upload.len()), "{model}: upload completed");
                assert_eq!(sha256_file(&root.join(&name)), sha256(&upload), "{model}: uploaded bytes differ");
            }
            if let Some(mut idle) = idle {
                let mut sink = Vec::new();
                idle.read_to_end(&mut sink).expect("the idle connection is closed, not reset");
            }
            let status = wait_child(&mut server.child, PATIENCE).expect("exited in time");
            assert!(status.success(), "{model}/{svc:?}: exit status {status}");
            assert_no_leftovers(pid, &seen);
        }
    }
}

#[test]
fn ctrl_c_reaches_only_the_parent_which_lets_transfers_finish() {
    let dir = scratch();
    let (root, _, big) = serve_tree(dir.path());
    for &model in MODELS {
        let opts = Opts { own_group: true, ..Opts::default() };
        let mut server = spawn_server(model, Svc::Files, &root, &["--workers", "2"], opts);
        let (mut reader, len) = request(Svc::Files, server.addr, "big.bin");
        let mut body = vec![0; 64 * 1024];
        reader.read_exact(&mut body).expect("first bytes");
        let pid = server.pid();
        let seen = descendants(pid);
        // What the terminal does on Ctrl-C: SIGINT to the foreground group.
        rustix::process::kill_process_group(rustix::process::Pid::from_raw(pid).unwrap(), rustix::process::Signal::INT)
            .expect("signal the process group");
        let mut rest = vec![0; len - body.len()];
        reader.read_exact(&mut rest).unwrap_or_else(|e| panic!("{model}: transfer cut by Ctrl-C: {e}"));
        body.extend_from_slice(&rest);
        assert_eq!(sha256(&body), big, "{model}: bytes differ");
        drop(reader);
        let status = wait_child(&mut server.child, PATIENCE).expect("exited in time");
        assert!(status.success(), "{model}: exit status {status}");
        assert_no_leftovers(pid, &seen);
    }
}

/// "Press Ctrl-C again": a second SIGTERM during the drain cuts the
/// transfer still in flight and the server exits at once, well before its
/// (here ten-minute) drain timeout, with nothing left behind.
#[test]
fn a_second_stop_signal_cuts_the_drain_short() {
    let dir = scratch();
    let (root, _, _) = serve_tree(dir.path());
    for &model in MODELS {
        let mut server = start_logged(model, Svc::Files, &root, &["--workers", "2", "--drain-timeout", "600"]);
        // A client that read the first bytes and stopped: the server is
        // blocked mid-send and would wait for it for the whole drain.
        let (mut reader, len) = request(Svc::Files, server.addr, "big.bin");
        let mut got = vec![0; 64 * 1024];
        reader.read_exact(&mut got).expect("first bytes");
        let pid = server.pid();
        let seen = descendants(pid);
        server.signal(rustix::process::Signal::TERM);
        server.log_line("shutting down");
        server.signal(rustix::process::Signal::TERM);
        server.log_line("again");
        let status = wait_child(&mut server.child, PATIENCE).expect("exited long before the drain timeout");
        assert!(status.success(), "{model}: exit status {status}");
        // Whatever the socket buffers held still arrives; the rest does not.
        let _ = reader.read_to_end(&mut got);
        assert!(got.len() < len, "{model}: the transfer was not cut ({} of {len} bytes)", got.len());
        assert_no_leftovers(pid, &seen);
    }
}

/// Reads one byte with a short timeout: true if nothing came.
fn silent_for(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    let silent = matches!(stream.read(&mut b), Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    silent
}

/// Sends `line` and reads one reply line.
fn ask(stream: &mut TcpStream, line: &str) -> String {
    stream.write_all(format!("{line}\n").as_bytes()).expect("send");
    read_line(stream)
}

/// Reads one line (without `\n`) a byte at a time, leaving the rest unread.
fn read_line(stream: &mut TcpStream) -> String {
    let mut reply = Vec::new();
    let mut b = [0u8; 1];
    while stream.read(&mut b).expect("reply") == 1 && b[0] != b'\n' {
        reply.push(b[0]);
    }
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn iterative_serves_one_client_at_a_time() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let mut server = start("iterative", Svc::Files, &root, &[]);
    let mut first = connect(server.addr);
    assert_eq!(ask(&mut first, "ping"), "OK pong");
    let mut second = connect(server.addr);
    second.write_all(b"ping\n").unwrap();
    assert!(silent_for(&mut second, Duration::from_millis(400)), "iterative answered a second client concurrently");
    assert_eq!(ask(&mut first, "quit"), "OK bye");
    assert_eq!(ask(&mut second, "ping"), "OK pong", "the second client is served once the first leaves");
    // ("OK pong" twice: the queued ping, then this one.)
    server.stop();
}

#[test]
fn prefork_queues_connections_while_every_worker_is_busy() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let mut server = start("prefork", Svc::Files, &root, &["--workers", "2"]);
    let mut a = connect(server.addr);
    let mut b = connect(server.addr);
    assert_eq!(ask(&mut a, "ping"), "OK pong");
    assert_eq!(ask(&mut b, "ping"), "OK pong");
    let mut waiting: Vec<TcpStream> = (0..3).map(|_| connect(server.addr)).collect();
    for w in &mut waiting {
        w.write_all(b"ping\n").unwrap();
        assert!(silent_for(w, Duration::from_millis(300)), "served while both workers were busy");
    }
    assert_eq!(ask(&mut a, "quit"), "OK bye");
    assert_eq!(ask(&mut b, "quit"), "OK bye");
    for w in &mut waiting {
        assert_eq!(read_line(w), "OK pong", "a queued connection is served, not dropped");
        assert_eq!(ask(w, "quit"), "OK bye");
    }
    server.stop();
}

#[test]
fn prefork_replaces_a_killed_worker_and_only_its_connection_fails() {
    let dir = scratch();
    let (root, small, big) = serve_tree(dir.path());
    let mut server = start_logged("prefork", Svc::Files, &root, &["--workers", "3"]);
    let pid = server.pid();
    eventually("3 workers started", || descendants(pid).len() == 3);

    // Three transfers stalled mid-file keep all three workers busy.
    let mut transfers: Vec<_> = (0..3)
        .map(|_| {
            let (mut reader, len) = request(Svc::Files, server.addr, "big.bin");
            let mut first = vec![0; 64 * 1024];
            reader.read_exact(&mut first).expect("first bytes");
            (reader, len, first)
        })
        .collect();

    // Each worker's log names its client's address, passed with the fd.
    let ports: Vec<u16> = transfers.iter().map(|(r, _, _)| r.get_ref().local_addr().unwrap().port()).collect();
    let mut workers = vec![0; ports.len()];
    while workers.contains(&0) {
        let line = server.log_line("client 127.0.0.1:");
        let worker: i32 = line
            .split("worker ")
            .nth(1)
            .and_then(|w| w.split(':').next())
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no worker pid in {line:?}"));
        if let Some(i) = ports.iter().position(|p| line.ends_with(&format!("client 127.0.0.1:{p}"))) {
            workers[i] = worker;
        }
    }
    let distinct: HashSet<i32> = workers.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "three workers serve the three clients: {workers:?}");
    assert!(distinct.is_subset(&descendants(pid)), "the logged workers are the server's children");
    let worker = workers[1];

    rustix::process::kill_process(rustix::process::Pid::from_raw(worker).unwrap(), rustix::process::Signal::KILL)
        .expect("kill the worker");
    eventually("the pool is back to 3 workers", || {
        let now = descendants(pid);
        now.len() == 3 && !now.contains(&worker) && now.iter().all(|&p| state(p) != Some('Z'))
    });

    for (i, (reader, len, first)) in transfers.iter_mut().enumerate() {
        if i == 1 {
            // EOF or a reset, at once: the worker holding it is gone.
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
            assert!(first.len() + rest.len() < *len, "the killed worker's transfer cannot have completed");
        } else {
            let mut rest = vec![0; *len - first.len()];
            reader.read_exact(&mut rest).expect("the rest of a transfer on a surviving worker");
            first.extend_from_slice(&rest);
            assert_eq!(sha256(first), big, "transfer {i} on a surviving worker is intact");
        }
    }
    // Later clients are served, by the replacement too.
    let addr = server.addr;
    let handles: Vec<_> = (0..9).map(|_| thread::spawn(move || download(Svc::Files, addr, "small.bin"))).collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), small);
    }
    let seen = descendants(pid);
    server.stop();
    assert_no_leftovers(pid, &seen);
}

#[test]
fn prefork_workers_die_with_a_killed_parent() {
    let dir = scratch();
    let (root, _, _) = serve_tree(dir.path());
    let mut server = start("prefork", Svc::Files, &root, &["--workers", "3"]);
    let pid = server.pid();
    eventually("3 workers started", || descendants(pid).len() == 3);
    let workers = descendants(pid);
    // One worker is busy with a stalled transfer: only the death signal,
    // not EOF on its socketpair, can end it now.
    let (mut stalled, _) = request(Svc::Files, server.addr, "big.bin");
    let mut first = vec![0; 64 * 1024];
    stalled.read_exact(&mut first).expect("first bytes");
    server.signal(rustix::process::Signal::KILL);
    wait_child(&mut server.child, PATIENCE).expect("the parent died");
    for worker in workers {
        assert!(wait_gone(worker, PATIENCE), "worker {worker} outlived its parent (PR_SET_PDEATHSIG)");
    }
}

/// Waits (bounded) for a process that is not our child to exit, through a
/// pidfd. True if it exited.
fn wait_gone(pid: i32, within: Duration) -> bool {
    let Ok(pidfd) =
        rustix::process::pidfd_open(rustix::process::Pid::from_raw(pid).unwrap(), rustix::process::PidfdFlags::empty())
    else {
        return true; // already gone
    };
    let ts = rustix::event::Timespec::try_from(within).unwrap();
    let mut fds = [rustix::event::PollFd::new(&pidfd, rustix::event::PollFlags::IN)];
    rustix::event::poll(&mut fds, Some(&ts)).expect("poll pidfd") == 1
}

/// Kills a process that is not our child when the test ends, however it
/// ends (a failing assertion must not leave a daemon behind).
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

#[test]
fn daemon_writes_its_pid_file_serves_and_cleans_up_on_sigterm() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let pid_file = dir.path().join("ferry.pid");
    let log_file = dir.path().join("ferry.log");
    let mut cmd = Command::new(ferry_bin());
    cmd.arg("serve").arg(&root).args(["--files", "127.0.0.1:0", "--http", "off", "--model", "prefork"]);
    cmd.args(["--workers", "2", "--daemon", "--pid-file"]).arg(&pid_file).arg("--log-file").arg(&log_file);
    // A descriptor the launcher inherits beyond stdio, as from a shell: the
    // daemon must not keep it open.
    let (extra_read, extra_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let extra = extra_write.as_raw_fd();
    // SAFETY: the hook only clears close-on-exec on a descriptor this
    // process keeps open until after the spawn; fcntl is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let fd = std::os::fd::BorrowedFd::borrow_raw(extra);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).map_err(std::io::Error::from)
        });
    }
    let mut launcher = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(extra_write);
    let mut out = String::new();
    launcher.stdout.take().unwrap().read_to_string(&mut out).expect("launcher stdout");
    let status = wait_child(&mut launcher, PATIENCE).expect("the launcher returns once the daemon is ready");
    assert!(status.success(), "ferry serve --daemon exited with {status}");
    let mut fds = [rustix::event::PollFd::new(&extra_read, rustix::event::PollFlags::IN)];
    let ts = rustix::event::Timespec::try_from(PATIENCE).unwrap();
    let ready = rustix::event::poll(&mut fds, Some(&ts)).expect("poll");
    assert_eq!(ready, 1, "the daemon kept an inherited descriptor open");
    let mut byte = [0u8; 1];
    assert_eq!(
        rustix::io::read(&extra_read, &mut byte).ok(),
        Some(0),
        "EOF: the daemon closed the descriptor it inherited"
    );
    let addr: SocketAddr = out
        .trim()
        .strip_prefix("ferry: files listening on ")
        .expect("listening line before detaching")
        .parse()
        .unwrap();

    let pid: i32 = std::fs::read_to_string(&pid_file).expect("pid file written").trim().parse().unwrap();
    let reaper = KillOnDrop(pid);
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap().trim(), "ferry");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    assert_ne!(fields[3], pid.to_string(), "the daemon is not a session leader (it forked twice)");
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(), Path::new("/"));

    let mut conn = connect(addr);
    assert_eq!(ask(&mut conn, "ping"), "OK pong");
    assert_eq!(ask(&mut conn, "quit"), "OK bye");

    // A second daemon with the same pid file refuses to start.
    let second = ferry(
        &[
            "serve",
            root.to_str().unwrap(),
            "--files",
            "127.0.0.1:0",
            "--http",
            "off",
            "--daemon",
            "--pid-file",
            pid_file.to_str().unwrap(),
        ],
        None,
        b"",
    );
    assert!(!second.status.success(), "a second daemon started");
    assert!(String::from_utf8_lossy(&second.stderr).contains("already running"), "{second:?}");

    rustix::process::kill_process(rustix::process::Pid::from_raw(pid).unwrap(), rustix::process::Signal::TERM).unwrap();
    assert!(wait_gone(pid, PATIENCE), "the daemon exits on SIGTERM");
    std::mem::forget(reaper); // gone: its pid may be reused
    assert!(!pid_file.exists(), "the pid file is removed on exit");
    let log = std::fs::read_to_string(&log_file).expect("log file");
    assert!(log.contains("received SIGTERM"), "the log file has the daemon's log: {log}");
}

#[test]
fn fork_stops_accepting_at_max_conns_until_a_child_exits() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let mut server = start("fork", Svc::Files, &root, &["--max-conns", "2"]);
    let mut a = connect(server.addr);
    let mut b = connect(server.addr);
    assert_eq!(ask(&mut a, "ping"), "OK pong");
    assert_eq!(ask(&mut b, "ping"), "OK pong");
    let mut c = connect(server.addr);
    c.write_all(b"ping\n").unwrap();
    assert!(silent_for(&mut c, Duration::from_millis(400)), "a third child was forked beyond --max-conns 2");
    assert_eq!(ask(&mut a, "quit"), "OK bye");
    assert_eq!(read_line(&mut c), "OK pong", "the waiting client is served once a child exits");
    assert_eq!(ask(&mut c, "quit"), "OK bye");
    assert_eq!(ask(&mut b, "quit"), "OK bye");
    server.stop();
}

#[test]
fn prefork_backs_off_replacing_workers_that_die_young() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let mut server = start_logged("prefork", Svc::Files, &root, &["--workers", "1"]);
    let pid = server.pid();
    let kill_the_worker = |server: &Running| {
        let mut worker = None;
        eventually("a live worker", || {
            worker = descendants(server.pid()).into_iter().find(|&p| state(p).is_some_and(|s| s != 'Z'));
            worker.is_some()
        });
        let worker = worker.unwrap();
        rustix::process::kill_process(rustix::process::Pid::from_raw(worker).unwrap(), rustix::process::Signal::KILL)
            .expect("kill the worker");
        worker
    };
    // Two deaths in a row, each well within a second of the worker's start:
    // the replacement waits, and the wait doubles.
    let first = kill_the_worker(&server);
    let line = server.log_line(&format!("worker {first} "));
    assert!(line.contains("replacing it in 100ms"), "{line}");
    eventually("the replacement", || descendants(pid).iter().any(|&p| p != first));
    let second = kill_the_worker(&server);
    let line = server.log_line(&format!("worker {second} "));
    assert!(line.contains("replacing it in 200ms"), "{line}");
    // The pool comes back and serves.
    let mut conn = connect(server.addr);
    assert_eq!(ask(&mut conn, "ping"), "OK pong");
    assert_eq!(ask(&mut conn, "quit"), "OK bye");
    server.stop();
}
