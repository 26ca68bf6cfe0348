//! Shared helpers for the client tests: a real thread-pool file server on
//! 127.0.0.1 port 0 serving a scratch directory, random data, hashes, and
//! scripted fake servers for misbehaviour a real server never shows.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_client::{Client, ClientOptions};
use ferry_proto::files::FilesConfig;
use ferry_proto::root::Root;
use ferry_server::{ListenerConfig, PumpConfig, Service, Shutdown, ThreadPoolConfig, ThreadPoolServer};
use sha2::{Digest, Sha256};

/// Timeouts that turn a hang into a failure quickly.
pub fn options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Some(Duration::from_secs(5)),
        stall_timeout: Some(Duration::from_secs(10)),
        ..ClientOptions::default()
    }
}

/// A `ferry serve`-equivalent server running in this process.
pub struct TestServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The served directory.
    pub root: tempfile::TempDir,
    shutdown: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on a free port; `allow_write` as `--allow-write`.
    pub fn start(allow_write: bool) -> TestServer {
        let root = tempfile::tempdir().expect("scratch root");
        let files =
            FilesConfig::new(Arc::new(Root::open(root.path()).expect("open root")), allow_write).expect("files config");
        let mut listener = ListenerConfig::new("127.0.0.1:0".parse().unwrap(), Service::Files(files));
        listener.pump = PumpConfig::with_idle(Duration::from_secs(20));
        let mut config = ThreadPoolConfig::new(vec![listener]);
        config.workers = 4;
        config.handle_signals = false;
        config.drain_timeout = Duration::from_secs(5);
        let server = ThreadPoolServer::bind(config).expect("bind");
        let addr = server.listeners()[0].addr.to_string();
        let shutdown = server.shutdown_handle();
        let thread = std::thread::spawn(move || {
            server.run().expect("server run");
        });
        TestServer { addr, root, shutdown, thread: Some(thread) }
    }

    /// A connected client with test timeouts.
    pub fn client(&self) -> Client {
        Client::connect_with(&self.addr, &options()).expect("connect")
    }

    /// A path inside the served directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.signal();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A seed that differs between runs, printed so a failure can be replayed
/// (`FERRY_TEST_SEED=...`).
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("FERRY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1);
    eprintln!("{test}: FERRY_TEST_SEED={seed}");
    seed
}

/// A small xorshift generator: enough for test data and offsets.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Writes `len` random bytes to `path` and returns them.
pub fn random_file(path: &Path, rng: &mut Rng, len: usize) -> Vec<u8> {
    let data = rng.bytes(len);
    std::fs::write(path, &data).expect("write test file");
    data
}

pub fn sha256(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A fake server for one connection: reads one request line, hands it to
/// `answer`, which writes whatever it likes, then closes. Returns the
/// address and the thread (which yields the request line).
pub fn fake_server(answer: impl FnOnce(&mut TcpStream, &str) + Send + 'static) -> (String, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
    let addr = listener.local_addr().unwrap().to_string();
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut line = String::new();
        BufReader::new(stream.try_clone().unwrap()).read_line(&mut line).expect("request line");
        answer(&mut stream, line.trim_end());
        stream.flush().unwrap();
        line
    });
    (addr, thread)
}

/// One accepted connection of a [`scripted_server`], as the script sees it.
pub struct Peer {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Peer {
    /// The next request line, without its `\n` ("" at end of stream).
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("request line");
        line.trim_end_matches('\n').to_string()
    }

    /// Exactly `n` payload bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.reader.read_exact(&mut buf).expect("payload");
        buf
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("answer");
    }
}

/// A fake server speaking the protocol as `script` dictates, for one
/// connection: answers a real server could give but the one under test
/// does not (yet). Returns the address and the script's thread.
pub fn scripted_server<T: Send + 'static>(
    script: impl FnOnce(&mut Peer) -> T + Send + 'static,
) -> (String, JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
    let addr = listener.local_addr().unwrap().to_string();
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut peer = Peer { reader: BufReader::new(stream.try_clone().unwrap()), writer: stream };
        script(&mut peer)
    });
    (addr, thread)
}

/// Records what a transfer reported, to check progress and notices.
#[derive(Default)]
pub struct Recorder {
    pub total: u64,
    pub already: u64,
    pub advanced: u64,
    pub hashed: u64,
    pub finished: bool,
    pub notices: Vec<String>,
}

impl ferry_client::Progress for Recorder {
    fn start(&mut self, total: u64, already: u64) {
        (self.total, self.already) = (total, already);
    }
    fn advance(&mut self, n: u64) {
        self.advanced += n;
    }
    fn finish(&mut self) {
        self.finished = true;
    }
    fn hash_advance(&mut self, n: u64) {
        self.hashed += n;
    }
    fn notice(&mut self, text: &str) {
        self.notices.push(text.to_string());
    }
}

/// The extended attribute in which a `.part` records the server's version
/// of its bytes (documented in the README).
pub const VERSION_XATTR: &str = "user.ferry.version";

/// The version recorded on a part, if any.
pub fn part_version(part: &Path) -> Option<String> {
    let mut buf = [0u8; 128];
    let n = rustix::fs::getxattr(part, VERSION_XATTR, &mut buf[..]).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Writes a part as an interrupted download of `version` would leave it.
pub fn write_part(part: &Path, bytes: &[u8], version: Option<&str>) {
    std::fs::write(part, bytes).expect("write part");
    if let Some(version) = version {
        rustix::fs::setxattr(part, VERSION_XATTR, version.as_bytes(), rustix::fs::XattrFlags::empty())
            .expect("this test needs a filesystem with user extended attributes");
    }
}
