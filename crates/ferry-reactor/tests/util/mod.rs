//! Shared helpers for the integration tests: a server on its own thread,
//! a reactor-driven echo client, fd limits, a tiny deterministic RNG.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ferry_reactor::{
    Buffer, Callbacks, EventLoop, ListenAddr, LoopHandle, PollerKind, ServerConfig, TcpConnection, TcpServer,
};

/// Every test is bounded by this.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// xorshift64*: deterministic, good enough for message sizes and contents.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (at most `want`).
pub fn raise_fd_limit(want: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    let hard = lim.maximum.unwrap_or(want);
    let target = want.min(hard);
    if lim.current.is_some_and(|c| c < target) {
        lim.current = Some(target);
        setrlimit(Resource::Nofile, lim).expect("raise RLIMIT_NOFILE");
    }
}

pub mod fds;
#[allow(unused_imports)] // not every test binary counts descriptors
pub use fds::open_fds;

/// A server running on its own main-loop thread; quits and joins on drop.
pub struct ServerThread {
    pub addr: ListenAddr,
    pub main: LoopHandle,
    pub live: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    pub fn tcp_addr(&self) -> std::net::SocketAddr {
        match &self.addr {
            ListenAddr::Tcp(a) => *a,
            _ => panic!("not a TCP server"),
        }
    }

    /// Quits the main loop and joins everything (sub-loops included).
    pub fn stop(&mut self) {
        self.main.quit();
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread panicked");
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.main.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a server on `addr` with `threads` sub-loops and `callbacks`.
pub fn start_server(addr: &str, threads: usize, poller: PollerKind, callbacks: Callbacks) -> ServerThread {
    start_server_with(addr, ServerConfig { threads, poller, ..ServerConfig::default() }, callbacks)
}

/// Starts a server on `addr` with `config` (its main loop uses the same
/// poller as the sub-loops).
pub fn start_server_with(addr: &str, config: ServerConfig, callbacks: Callbacks) -> ServerThread {
    let addr: ListenAddr = addr.parse().unwrap();
    let (tx, rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name("test-main-loop".into())
        .spawn(move || {
            let mut lp = EventLoop::new(config.poller).unwrap();
            let mut server = TcpServer::bind(&addr, config).unwrap().with_callbacks(callbacks);
            server.start(&mut lp).unwrap();
            let live = live_counter(&server);
            tx.send((server.local_addr().clone(), lp.handle(), live)).unwrap();
            lp.run().unwrap();
            server.shutdown();
            drop(lp);
        })
        .unwrap();
    let (addr, main, live) = rx.recv_timeout(TEST_TIMEOUT).unwrap();
    ServerThread { addr, main, live, thread: Some(thread) }
}

fn live_counter(server: &TcpServer) -> Arc<AtomicUsize> {
    server.live_counter()
}

/// Echo callbacks: every byte comes back.
pub fn echo_callbacks() -> Callbacks {
    Callbacks::new().on_message(|c: &mut TcpConnection<'_>, buf: &mut Buffer| {
        c.send(buf.peek());
        buf.consume_all();
    })
}

/// Blocking client with timeouts.
pub fn client(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TEST_TIMEOUT)).unwrap();
    s
}

/// Sends `msg` and reads it back.
pub fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    let mut got = vec![0; msg.len()];
    s.read_exact(&mut got).unwrap();
    got
}

/// Polls `cond` until true or the timeout (for values with no readiness
/// signal of their own, such as a counter owned by another thread).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < TEST_TIMEOUT, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

struct EchoClient {
    rng: Rng,
    left: usize,
    pending: Vec<u8>,
    got: usize,
}

/// Runs `clients` concurrent echo clients against `addr` on one client loop:
/// each sends `messages` messages of random sizes in `1..=max_size`, one at a
/// time, checking every echoed byte in order. Returns total bytes echoed.
pub fn run_echo_clients(addr: std::net::SocketAddr, clients: usize, messages: usize, max_size: usize) -> usize {
    let done = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicUsize::new(0));
    let (d2, b2) = (done.clone(), bytes.clone());
    let callbacks = Callbacks::new()
        .on_connected(move |c| {
            let seed = c.token().index() as u64 + 1;
            let mut st = EchoClient { rng: Rng::new(seed), left: messages, pending: Vec::new(), got: 0 };
            let n = st.rng.range(1, max_size);
            st.pending = st.rng.bytes(n);
            let msg = st.pending.clone();
            c.set_context(st);
            c.send(&msg);
        })
        .on_message(move |c, buf| {
            let mut next = None;
            let mut finished = false;
            {
                let st = c.context_mut::<EchoClient>().unwrap();
                let data = buf.peek();
                let want = st.pending.len() - st.got;
                assert!(data.len() <= want, "echo returned more bytes than sent");
                assert_eq!(data, &st.pending[st.got..st.got + data.len()], "echo corrupted");
                st.got += data.len();
                b2.fetch_add(data.len(), Ordering::Relaxed);
                if st.got == st.pending.len() {
                    st.left -= 1;
                    st.got = 0;
                    if st.left == 0 {
                        finished = true;
                    } else {
                        let n = st.rng.range(1, max_size);
                        st.pending = st.rng.bytes(n);
                        next = Some(st.pending.clone());
                    }
                }
            }
            buf.consume_all();
            if let Some(msg) = next {
                c.send(&msg);
            }
            if finished {
                d2.fetch_add(1, Ordering::Relaxed);
                c.force_close();
            }
        });
    let mut lp = EventLoop::new(PollerKind::Epoll).unwrap();
    let target = ListenAddr::Tcp(addr);
    for _ in 0..clients {
        let (fd, peer) = ferry_reactor::connect(&target).unwrap();
        ferry_reactor::adopt(&mut lp, fd, peer, callbacks.clone()).unwrap();
    }
    let start = Instant::now();
    while done.load(Ordering::Relaxed) < clients {
        assert!(
            start.elapsed() < TEST_TIMEOUT,
            "echo clients timed out: {}/{} done",
            done.load(Ordering::Relaxed),
            clients
        );
        lp.run_once(Some(Duration::from_millis(100))).unwrap();
    }
    // Let the closes go through.
    while lp.handler_count() > 0 {
        assert!(start.elapsed() < TEST_TIMEOUT);
        lp.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    bytes.load(Ordering::Relaxed)
}
