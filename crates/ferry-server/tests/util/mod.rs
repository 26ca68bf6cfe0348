//! Shared helpers: a server (thread pool or another blocking model) on
//! loopback with a temporary root,
//! and a raw line-protocol client with timeouts on every read and write.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use ferry_proto::files::FilesConfig;
use ferry_proto::root::Root;
use ferry_server::{
    BlockingConfig, BlockingModel, BlockingServer, BoundListener, ListenerConfig, Report, ServerError, Service,
    Shutdown, ThreadPoolConfig, ThreadPoolServer,
};

/// Upper bound on any single blocking step of a test.
pub const STEP: Duration = Duration::from_secs(20);

/// A running server and its temporary root.
pub struct TestServer {
    pub files: SocketAddr,
    pub echo: SocketAddr,
    pub root: tempfile::TempDir,
    shutdown: Shutdown,
    done: Receiver<Result<Report, ServerError>>,
}

impl TestServer {
    /// Starts a writable thread-pool server with 2 workers; `tweak`
    /// adjusts the rest.
    pub fn start(tweak: impl FnOnce(&mut ThreadPoolConfig)) -> TestServer {
        let root = tempfile::tempdir().expect("tempdir");
        let mut config = ThreadPoolConfig::new(listeners(&root, true));
        config.workers = 2;
        config.handle_signals = false;
        tweak(&mut config);
        let server = ThreadPoolServer::bind(config).expect("bind");
        let (bound, shutdown) = (server.listeners(), server.shutdown_handle());
        TestServer::launch(root, bound, shutdown, move || server.run())
    }

    /// Starts a read-only server running the blocking `model`, its root
    /// holding `files`.
    pub fn blocking(model: BlockingModel, drain_timeout: Duration, files: &[(&str, &[u8])]) -> TestServer {
        let root = tempfile::tempdir().expect("tempdir");
        for (name, data) in files {
            std::fs::write(root.path().join(name), data).expect("write test file");
        }
        let listeners = listeners(&root, false);
        let config = BlockingConfig { listeners, model, drain_timeout, handle_signals: false };
        let server = BlockingServer::bind(config).expect("bind");
        let (bound, shutdown) = (server.listeners(), server.shutdown_handle());
        TestServer::launch(root, bound, shutdown, move || server.run())
    }

    /// Runs `run` on its own thread.
    fn launch(
        root: tempfile::TempDir,
        bound: Vec<BoundListener>,
        shutdown: Shutdown,
        run: impl FnOnce() -> Result<Report, ServerError> + Send + 'static,
    ) -> TestServer {
        assert_eq!((bound[0].service, bound[1].service), ("files", "echo"));
        let (tx, done) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(run());
        });
        TestServer {
            files: bound[0].addr.as_tcp().expect("tcp"),
            echo: bound[1].addr.as_tcp().expect("tcp"),
            root,
            shutdown,
            done,
        }
    }

    /// What `run` returned, once it has (bounded wait), also an error.
    pub fn outcome(&self, within: Duration) -> Result<Report, ServerError> {
        self.done.recv_timeout(within).expect("run() did not return in time")
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.files)
    }

    /// Starts the orderly shutdown without waiting for it.
    pub fn trigger_shutdown(&self) {
        self.shutdown.signal();
    }

    /// Waits (bounded) for `run` to return; panics if it does not.
    pub fn wait_stopped(&self, within: Duration) -> Report {
        self.outcome(within).expect("run() failed")
    }

    /// Shuts down and waits for `run` to return.
    pub fn stop(self) -> Report {
        self.trigger_shutdown();
        self.wait_stopped(STEP)
    }

    pub fn write_file(&self, name: &str, data: &[u8]) {
        std::fs::write(self.root.path().join(name), data).expect("write test file");
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.root.path().join(name)
    }
}

/// A file service (writable or not) and an echo service on free ports.
fn listeners(root: &tempfile::TempDir, allow_write: bool) -> Vec<ListenerConfig> {
    let files = FilesConfig::new(Arc::new(Root::open(root.path()).expect("root")), allow_write).expect("files config");
    vec![
        ListenerConfig::new("127.0.0.1:0".parse().expect("addr"), Service::Files(files)),
        ListenerConfig::new("127.0.0.1:0".parse().expect("addr"), Service::Echo),
    ]
}

/// A raw client: a buffered reader over the socket plus the socket for
/// writing. Every read and write times out after [`STEP`].
pub struct Client {
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, STEP).expect("connect");
        stream.set_read_timeout(Some(STEP)).expect("read timeout");
        stream.set_write_timeout(Some(STEP)).expect("write timeout");
        Client { reader: BufReader::with_capacity(256 * 1024, stream) }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("send");
    }

    /// One answer line without its `\n`.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read line");
        assert!(n > 0, "connection closed while a line was expected");
        assert!(line.ends_with('\n'), "unterminated line {line:?}");
        line.pop();
        line
    }

    /// Sends one request line and returns the answer line.
    pub fn request(&mut self, line: &str) -> String {
        self.send(format!("{line}\n").as_bytes());
        self.line()
    }

    pub fn read_exact(&mut self, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.reader.read_exact(&mut buf).expect("read payload");
        buf
    }

    /// True when the server closed the connection (end of stream or reset)
    /// before sending anything more.
    pub fn closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe) => true,
            Err(e) => panic!("expected the server to close, got {e}"),
        }
    }

    /// True when nothing arrives within `wait` (the connection is open but
    /// not being answered).
    pub fn silent_for(&mut self, wait: Duration) -> bool {
        self.stream().set_read_timeout(Some(wait)).expect("timeout");
        let mut byte = [0u8; 1];
        let silent = match self.reader.read(&mut byte) {
            Err(e) => matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            Ok(_) => false,
        };
        self.stream().set_read_timeout(Some(STEP)).expect("timeout");
        silent
    }
}

/// Deterministic pseudo-random bytes (xorshift), fast enough for tens of MiB.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
