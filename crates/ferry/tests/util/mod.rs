//! Helpers for the end-to-end tests: run the real `ferry` binary, wait for
//! readiness signals (the "listening on" line, process exit through a
//! pidfd), make random files, talk the protocol over raw sockets.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub mod relay;
pub mod serve;
pub mod tty;

/// Upper bound for anything a test waits on.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The `ferry` binary under test.
pub fn ferry_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ferry")
}

/// A running `ferry serve`, killed on drop if still alive.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// Lines the server printed on stdout after the listening line.
    pub stdout: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `ferry serve ROOT --files 127.0.0.1:0 EXTRA...` and waits for
    /// its `ferry: files listening on ADDR` line.
    pub fn start(root: &Path, extra: &[&str]) -> Server {
        let mut args = vec!["--files", "127.0.0.1:0", "--http", "off", "--quiet"];
        args.extend_from_slice(extra);
        let (child, addr, stdout) = spawn_serve(root, &args, "files");
        Server { child, addr, stdout }
    }

    /// `host:port` for the CLI.
    pub fn addr_arg(&self) -> String {
        self.addr.to_string()
    }

    /// A raw protocol connection.
    pub fn connect(&self) -> Conn {
        Conn::new(TcpStream::connect(self.addr).expect("connect to ferry"))
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, sig).expect("kill");
    }

    /// Waits (bounded) for the server to exit.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        wait_child(&mut self.child, within).expect("ferry serve exited in time")
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

/// Runs `ferry serve ROOT ARGS...` with stdout piped and waits for its
/// `ferry: SERVICE listening on ADDR` line (the first it prints). Returns
/// the child, that address, and the lines printed after it.
pub fn spawn_serve(root: &Path, args: &[&str], service: &str) -> (Child, SocketAddr, mpsc::Receiver<String>) {
    let mut child = Command::new(ferry_bin())
        .arg("serve")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ferry serve");
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("ferry serve {args:?}: no listening line"));
    let addr = line
        .strip_prefix(&format!("ferry: {service} listening on "))
        .unwrap_or_else(|| panic!("ferry serve {args:?}: unexpected first line: {line}"))
        .parse()
        .expect("listening address parses");
    (child, addr, rx)
}

/// Waits for a child to exit, at most `within`, using a pidfd as the
/// readiness signal. Returns `None` on timeout.
pub fn wait_child(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).expect("pidfd_open");
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let ts = rustix::event::Timespec::try_from(left).expect("timespec");
        let fd = pidfd.as_fd();
        let mut fds = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::IN)];
        let _ = rustix::event::poll(&mut fds, Some(&ts));
    }
}

/// Runs `ferry ARGS...` (in `cwd` if given) to completion, bounded in time,
/// feeding `stdin`.
pub fn ferry(args: &[&str], cwd: Option<&Path>, stdin: &[u8]) -> Output {
    let mut cmd = Command::new(ferry_bin());
    cmd.args(args);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    run_fed(&mut cmd, stdin, PATIENCE)
}

/// Runs a command to completion, at most `within` (killed and the test
/// failed past it), feeding it `stdin`; returns its output.
pub fn run_fed(cmd: &mut Command, stdin: &[u8], within: Duration) -> Output {
    let child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let mut child = child.unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let drain = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = from.read_to_end(&mut v);
            v
        })
    };
    let out_reader = drain(Box::new(child.stdout.take().expect("stdout")));
    let err_reader = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = match wait_child(&mut child, within) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {within:?}");
        }
    };
    let _ = writer.join();
    Output { status, stdout: out_reader.join().expect("stdout"), stderr: err_reader.join().expect("stderr") }
}

/// Like [`ferry`] but asserts success and returns stdout as text.
pub fn ferry_ok(args: &[&str], cwd: Option<&Path>) -> String {
    let out = ferry(args, cwd, b"");
    assert!(
        out.status.success(),
        "ferry {args:?} failed: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Writes a random file and returns its SHA-256.
pub fn random_file(path: &Path, len: usize, seed: u64) -> String {
    let data = random_bytes(len, seed);
    std::fs::write(path, &data).expect("write random file");
    sha256(&data)
}

/// Lowercase hex SHA-256.
pub fn sha256(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file's contents.
pub fn sha256_file(path: &Path) -> String {
    sha256(&std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

/// A scratch directory, removed on drop.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("ferry-e2e-").tempdir().expect("tempdir")
}

/// A raw protocol connection with a read timeout so a bug fails the test
/// instead of hanging it.
pub struct Conn {
    pub reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
        Conn { reader: BufReader::new(stream) }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("send");
    }

    /// Reads one reply line (without `\n`); empty string at EOF.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read reply line");
        line.trim_end_matches('\n').to_string()
    }

    /// Sends a request line and returns the reply line.
    pub fn ask(&mut self, request: &str) -> String {
        self.send(format!("{request}\n").as_bytes());
        self.line()
    }

    /// Reads exactly `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.reader.read_exact(&mut buf).expect("read payload");
        buf
    }

    /// True if the server closed the connection (reads EOF).
    pub fn at_eof(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }
}

/// The tree most tests serve: `hello.txt`, `sub/file.txt`, `sub/deeper/`.
pub fn sample_tree(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    std::fs::write(root.join("hello.txt"), b"Hello, world!").expect("write");
    std::fs::write(root.join("sub/file.txt"), b"abc").expect("write");
    root
}
