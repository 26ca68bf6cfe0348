//! Running `ferry serve` under any concurrency model, with one service,
//! for the model tests: start it (logs captured if asked), talk to it over
//! raw sockets, and watch its processes through /proc.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::{PATIENCE, ferry_bin, random_file, sha256, wait_child};

/// Every model the suite runs, as `--model` spells it.
pub const MODELS: &[&str] =
    &["iterative", "fork", "thread", "prefork", "threadpool", "reactor", "multi-reactor", "uring"];

/// Concurrent clients for the models that serve clients side by side.
pub const CLIENTS: usize = 50;

/// Big enough that it cannot sit in loopback socket buffers whole, so a
/// client that stops reading keeps its transfer in flight.
pub const BIG: usize = 24 * 1024 * 1024;

/// The services the suite runs every model with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Svc {
    Files,
    Http,
}

impl Svc {
    pub fn name(self) -> &'static str {
        match self {
            Svc::Files => "files",
            Svc::Http => "http",
        }
    }
}

/// A running `ferry serve` with one service, killed on drop if alive.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    /// Its log lines, when started with [`start_logged`].
    pub log: Option<mpsc::Receiver<String>>,
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid()).expect("pid");
        rustix::process::kill_process(pid, sig).expect("kill");
    }

    /// SIGTERM, then a bounded wait for exit; asserts status 0.
    pub fn stop(&mut self) {
        self.signal(rustix::process::Signal::TERM);
        let status = wait_child(&mut self.child, PATIENCE).expect("ferry serve exited in time");
        assert!(status.success(), "ferry serve exited with {status}");
    }

    /// Waits (bounded) for a log line containing `needle`.
    pub fn log_line(&self, needle: &str) -> String {
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
pub struct Opts {
    /// Capture info-level logs line by line instead of `--quiet`.
    pub logged: bool,
    /// Run it in a process group of its own, as a shell runs a foreground
    /// job, so a "Ctrl-C" can be sent to the whole group.
    pub own_group: bool,
    /// With `logged`: leave `NO_COLOR` unset, as most environments do.
    pub colour_allowed: bool,
    /// Lower `RLIMIT_FSIZE` (bytes) for the server process only.
    pub fsize_limit: Option<u64>,
    /// Serve a fresh tmpfs of this size (`2m`) mounted over the root in a
    /// mount namespace of the server's own (`unshare -m`, needs root): a
    /// small disk that fills up, gone when the server exits.
    pub tmpfs: Option<&'static str>,
    /// Extra environment variables for the server process.
    pub env: Vec<(String, String)>,
}

pub fn start(model: &str, svc: Svc, root: &Path, extra: &[&str]) -> Running {
    spawn_server(model, svc, root, extra, Opts::default())
}

/// Like [`start`], with info-level logs captured line by line.
pub fn start_logged(model: &str, svc: Svc, root: &Path, extra: &[&str]) -> Running {
    spawn_server(model, svc, root, extra, Opts { logged: true, ..Opts::default() })
}

pub fn spawn_server(model: &str, svc: Svc, root: &Path, extra: &[&str], opts: Opts) -> Running {
    let (files, http) = match svc {
        Svc::Files => ("127.0.0.1:0", "off"),
        Svc::Http => ("off", "127.0.0.1:0"),
    };
    let mut cmd = match opts.tmpfs {
        None => Command::new(ferry_bin()),
        Some(size) => {
            let mut cmd = Command::new("unshare");
            let script = format!(r#"mount -t tmpfs -o size={size} ferry-test "$0" && exec "$@""#);
            cmd.args(["-m", "sh", "-c", &script]).arg(root).arg(ferry_bin());
            cmd
        }
    };
    cmd.arg("serve").arg(root).args(["--model", model, "--files", files, "--http", http]);
    cmd.args(extra).stdin(Stdio::null()).stdout(Stdio::piped());
    cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
    if opts.own_group {
        cmd.process_group(0);
    }
    if let Some(limit) = opts.fsize_limit {
        let rlimit = rustix::process::Rlimit { current: Some(limit), maximum: Some(limit) };
        // SAFETY: the closure runs in the forked child before exec and only
        // makes one raw syscall (prlimit64): no allocation, no lock.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::setrlimit(rustix::process::Resource::Fsize, rlimit).map_err(std::io::Error::from)
            });
        }
    }
    if opts.logged {
        cmd.stderr(Stdio::piped()).env("RUST_LOG", "info");
        if opts.colour_allowed {
            cmd.env_remove("NO_COLOR");
        } else {
            cmd.env("NO_COLOR", "1");
        }
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
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream.set_write_timeout(Some(PATIENCE)).expect("timeout");
    stream
}

/// Asks for `name` and reads the answer's header; returns the stream
/// positioned at the first byte of the body and the body's length.
pub fn request(svc: Svc, addr: SocketAddr, name: &str) -> (BufReader<TcpStream>, usize) {
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
            // OK SIZE OFFSET LEN VERSION
            assert!(line.starts_with("OK "), "get answered {line:?}");
            line.split(' ').nth(3).and_then(|n| n.parse().ok()).expect("LEN")
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
pub fn download(svc: Svc, addr: SocketAddr, name: &str) -> String {
    let (mut reader, len) = request(svc, addr, name);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).expect("read body");
    sha256(&body)
}

/// Pids of the server's descendants (threads' children included).
pub fn descendants(pid: i32) -> HashSet<i32> {
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
pub fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next())
}

/// Waits (bounded, polling /proc: there is no readiness signal for "the
/// parent reaped its children") until `check` holds.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// After the server exited: none of the processes it had is left, as
/// zombie or orphan, and nothing is in its process group.
pub fn assert_no_leftovers(server_pid: i32, seen: &HashSet<i32>) {
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

pub fn serve_tree(dir: &Path) -> (std::path::PathBuf, String, String) {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let small = random_file(&root.join("small.bin"), 256 * 1024 + 17, 11);
    let big = random_file(&root.join("big.bin"), BIG, 12);
    (root, small, big)
}

/// Reads one byte with a short timeout: true if nothing came.
pub fn silent_for(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    let silent = matches!(stream.read(&mut b), Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    silent
}

/// Sends `line` and reads one reply line.
pub fn ask(stream: &mut TcpStream, line: &str) -> String {
    stream.write_all(format!("{line}\n").as_bytes()).expect("send");
    read_line(stream)
}

/// Reads one line (without `\n`) a byte at a time, leaving the rest unread.
pub fn read_line(stream: &mut TcpStream) -> String {
    let mut reply = Vec::new();
    let mut b = [0u8; 1];
    while stream.read(&mut b).expect("reply") == 1 && b[0] != b'\n' {
        reply.push(b[0]);
    }
    String::from_utf8_lossy(&reply).into_owned()
}
