//! Helpers for the HTTP end-to-end tests: the server configurations every
//! behaviour runs under, starting `ferry serve` with only HTTP on, external
//! tools that must be installed, and raw HTTP/1.1 over a socket.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

/// Upper bound for anything a test waits on.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// One way of running the server: `--model`, and for the reactor models
/// `--poller` (and `--io-threads`).
#[derive(Debug, Clone, Copy)]
pub struct Model {
    pub name: &'static str,
    pub args: &'static [&'static str],
}

/// Every model HTTP must behave the same under.
pub const ALL_MODELS: &[Model] = &[
    Model { name: "iterative", args: &["--model", "iterative"] },
    Model { name: "fork", args: &["--model", "fork"] },
    Model { name: "thread", args: &["--model", "thread"] },
    Model { name: "prefork", args: &["--model", "prefork"] },
    Model { name: "threadpool", args: &["--model", "threadpool"] },
    Model { name: "reactor/epoll", args: &["--model", "reactor", "--poller", "epoll"] },
    Model { name: "reactor/poll", args: &["--model", "reactor", "--poller", "poll"] },
    Model { name: "reactor/select", args: &["--model", "reactor", "--poller", "select"] },
    Model {
        name: "multi-reactor/epoll",
        args: &["--model", "multi-reactor", "--io-threads", "2", "--poller", "epoll"],
    },
    Model { name: "multi-reactor/poll", args: &["--model", "multi-reactor", "--io-threads", "2", "--poller", "poll"] },
    Model { name: "uring", args: &["--model", "uring", "--io-threads", "2"] },
];

/// Every model that serves connections side by side: all but iterative,
/// which serves one connection at a time (a second client waits until the
/// first leaves, however idle its keep-alive connection is), so tests that
/// hold two connections at once, or a slowloris beside a normal client,
/// cannot apply to it.
pub fn concurrent_models() -> impl Iterator<Item = &'static Model> {
    ALL_MODELS.iter().filter(|m| m.name != "iterative")
}

/// A running `ferry serve --files off --http 127.0.0.1:0`, killed on drop
/// if still alive.
pub struct HttpServer {
    pub child: Child,
    pub addr: SocketAddr,
    pub model: Model,
}

impl HttpServer {
    /// Starts the server on `root` under `model` (plus `extra` flags) and
    /// waits for its `ferry: http listening on ADDR` line.
    pub fn start(root: &Path, model: Model, extra: &[&str]) -> HttpServer {
        let mut args = vec!["--files", "off", "--http", "127.0.0.1:0", "--quiet"];
        args.extend_from_slice(model.args);
        args.extend_from_slice(extra);
        let (child, addr, _) = crate::util::spawn_serve(root, &args, "http");
        HttpServer { child, addr, model }
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A raw connection with read and write timeouts.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect_timeout(&self.addr, PATIENCE)
            .unwrap_or_else(|e| panic!("{}: connect to ferry: {e}", self.model.name));
        s.set_read_timeout(Some(PATIENCE)).expect("timeout");
        s.set_write_timeout(Some(PATIENCE)).expect("timeout");
        s
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, sig).expect("kill");
    }

    /// Waits (bounded) for the server to exit.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        crate::util::wait_child(&mut self.child, within)
            .unwrap_or_else(|| panic!("{}: ferry serve did not exit within {within:?}", self.model.name))
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Fails the test (never skips it) if `tool` is not installed.
pub fn require_tool(tool: &str, package: &str) {
    let found =
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    assert!(found, "`{tool}` is not installed; this test needs it: apt-get install {package}");
}

/// Runs a command to completion, at most `within`, and returns its output.
pub fn run_bounded(cmd: &mut Command, within: Duration) -> Output {
    crate::util::run_fed(cmd, b"", within)
}

/// A parsed HTTP response read off a raw socket.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads one response (head plus `Content-Length` body; no body if
/// `head_request`) from `reader`.
pub fn read_response(reader: &mut BufReader<TcpStream>, head_request: bool) -> Response {
    try_read_response(reader, head_request).unwrap_or_else(|e| panic!("{e}"))
}

/// [`read_response`] that says what went wrong instead of panicking.
pub fn try_read_response(reader: &mut BufReader<TcpStream>, head_request: bool) -> Result<Response, String> {
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| format!("read status line: {e}"))?;
    let mut parts = line.split_whitespace();
    let status = match (parts.next(), parts.next().and_then(|s| s.parse().ok())) {
        (Some("HTTP/1.1"), Some(status)) => status,
        _ => return Err(format!("status line: {line:?}")),
    };
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).map_err(|e| format!("read header line: {e}"))?;
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').ok_or_else(|| format!("header line: {h:?}"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut resp = Response { status, headers, body: Vec::new() };
    if !head_request && status != 304 {
        let len: usize =
            resp.header("content-length").and_then(|v| v.parse().ok()).ok_or("no Content-Length".to_string())?;
        resp.body = vec![0; len];
        reader.read_exact(&mut resp.body).map_err(|e| format!("read body: {e}"))?;
    }
    Ok(resp)
}

/// Writes `bytes` on a raw socket.
pub fn send_raw(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).expect("send request bytes");
}

/// Sends `pieces` on a new connection, each written and flushed before the
/// next (`TCP_NODELAY`, so each leaves as its own segment), and returns the
/// status of the answer. Between pieces it waits up to 100 ms for an
/// early answer, so the server most likely reads the first piece alone;
/// the answer must be the same either way. A piece the server no longer
/// reads (it answered and closed) is not an error.
pub fn status_of_pieces(addr: SocketAddr, pieces: &[&[u8]]) -> u16 {
    let mut s = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.set_write_timeout(Some(PATIENCE)).expect("timeout");
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            s.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
            let answered = matches!(s.peek(&mut [0u8; 1]), Ok(n) if n > 0);
            if answered {
                break;
            }
        }
        if s.write_all(piece).and_then(|()| s.flush()).is_err() {
            break;
        }
    }
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    read_response(&mut BufReader::new(s), true).status
}

/// True if the peer closed (EOF, or reset) within the socket's timeout.
pub fn closed_by_peer(reader: &mut impl Read) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        match reader.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
    false
}

/// Raises this process's soft fd limit to the hard one (children inherit
/// it): the slowloris test holds hundreds of sockets.
pub fn raise_fd_limit() -> u64 {
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let hard = lim.maximum;
    let new = rustix::process::Rlimit { current: hard, maximum: hard };
    rustix::process::setrlimit(rustix::process::Resource::Nofile, new).expect("raise RLIMIT_NOFILE");
    hard.unwrap_or(u64::MAX)
}
