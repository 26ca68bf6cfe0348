//! Helpers of the datagram tests: an echo server on a loop thread of its
//! own, and the echo load client (`load.rs`, shared with ferry's e2e
//! tests).

#![allow(dead_code)]

pub mod load;

use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ferry_reactor::{
    DatagramAddr, DatagramCallbacks, DatagramError, DatagramOptions, DatagramSocket, DatagramStats, EventLoop,
    LoopHandle, PollerKind,
};

/// Bound on anything a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A datagram echo server on its own loop thread; quits and joins on
/// [`stop`](Self::stop) or drop.
pub struct EchoServer {
    pub addr: DatagramAddr,
    lp: LoopHandle,
    /// The errors its error callback saw.
    pub errors: mpsc::Receiver<DatagramError>,
    thread: Option<JoinHandle<DatagramStats>>,
}

impl EchoServer {
    /// Binds `addr` with `options` and echoes every datagram (a truncated
    /// one too, cut: the tests that care look at the stats).
    pub fn start(addr: &DatagramAddr, options: DatagramOptions, poller: PollerKind) -> EchoServer {
        let socket = DatagramSocket::bind(addr, options).expect("bind the echo server");
        let addr = socket.local_addr().clone();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (err_tx, errors) = mpsc::channel();
        let thread = thread::spawn(move || {
            let mut lp = EventLoop::new(poller).expect("event loop");
            let callbacks = DatagramCallbacks::new()
                .on_message(|ep, d| {
                    ep.send_to(d.data(), d.peer());
                })
                .on_error(move |_, e| {
                    let _ = err_tx.send(e);
                });
            let token = socket.register(&mut lp, callbacks).expect("register");
            ready_tx.send(lp.handle()).expect("report ready");
            lp.run().expect("run");
            lp.with_datagram(token, |ep| ep.stats()).expect("the endpoint outlives the run")
        });
        let lp = ready_rx.recv_timeout(PATIENCE).expect("server started");
        EchoServer { addr, lp, errors, thread: Some(thread) }
    }

    /// Quits the loop; returns what the endpoint counted.
    pub fn stop(&mut self) -> DatagramStats {
        self.lp.quit();
        self.thread.take().map(|t| t.join().expect("server thread")).unwrap_or_default()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.lp.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A scratch directory (for Unix socket paths), removed on drop. Short,
/// so paths stay well inside `sun_path`'s 108 bytes.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("fdg-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
