//! `TcpServer`: an acceptor on a main loop plus a pool of sub-loops.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::acceptor::Acceptor;
use crate::callbacks::Callbacks;
use crate::connection::adopt_counted;
use crate::event_loop::{EventLoop, LoopHandle, Token};
use crate::listener::{ListenAddr, ListenOptions, Listener};
use crate::loop_pool::LoopThreadPool;
use crate::poller::PollerKind;

/// How a [`TcpServer`] runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Sub-loop threads doing connection I/O. 0 = single reactor: the main
    /// loop accepts and serves every connection.
    pub threads: usize,
    /// Backend for the sub-loops (the main loop is the caller's).
    pub poller: PollerKind,
    /// Listening socket options.
    pub listen: ListenOptions,
    /// Thread name prefix for the sub-loops.
    pub name: String,
    /// Sub-loops yield once before sleeping after busy iterations
    /// ([`EventLoop::set_idle_yield`]); on by default.
    pub idle_yield: bool,
    /// Which sub-loop a new connection goes to.
    pub assign: Assignment,
}

/// How a [`TcpServer`] spreads connections over its sub-loops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Assignment {
    /// In turn, whatever each loop holds: right when connections live about
    /// as long as each other (the default).
    #[default]
    RoundRobin,
    /// To the loop with the fewest open connections (ties in turn): keeps
    /// loops even when connections close unevenly, e.g. short requests
    /// mixed with long downloads. Costs one atomic read per loop per accept.
    LeastLoaded,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            threads: 0,
            poller: PollerKind::Epoll,
            listen: ListenOptions::default(),
            name: "ferry-io".to_owned(),
            idle_yield: true,
            assign: Assignment::RoundRobin,
        }
    }
}

/// A callback-style server: one acceptor on the caller's main loop, N
/// sub-loops each serving the connections assigned to it (round-robin or
/// least-loaded, [`Assignment`]); each
/// connection lives entirely on its loop.
///
/// Owned by the main loop's thread (`start`/`stop_accepting` take that loop).
/// Dropping it (or [`shutdown`](Self::shutdown)) quits and joins the
/// sub-loops, closing their connections.
pub struct TcpServer {
    listener: Option<Listener>,
    addr: ListenAddr,
    config: ServerConfig,
    callbacks: Callbacks,
    pool: Option<LoopThreadPool>,
    acceptor: Option<Token>,
    live: Arc<AtomicUsize>,
    /// Open connections per sub-loop (see [`Assignment`]).
    loads: Vec<Arc<AtomicUsize>>,
    accepted: Arc<AtomicU64>,
}

impl std::fmt::Debug for TcpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpServer")
            .field("addr", &self.addr)
            .field("threads", &self.config.threads)
            .field("live", &self.live_connections())
            .finish()
    }
}

impl TcpServer {
    /// Binds the listening socket now (so the real port is known before
    /// `start`).
    pub fn bind(addr: &ListenAddr, config: ServerConfig) -> io::Result<TcpServer> {
        let listener = Listener::bind(addr, &config.listen)?;
        Ok(TcpServer {
            addr: listener.local_addr().clone(),
            listener: Some(listener),
            config,
            callbacks: Callbacks::default(),
            pool: None,
            acceptor: None,
            live: Arc::new(AtomicUsize::new(0)),
            loads: Vec::new(),
            accepted: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Sets the callbacks every connection reports to (before `start`).
    pub fn set_callbacks(&mut self, callbacks: Callbacks) {
        self.callbacks = callbacks;
    }

    /// Builder form of [`set_callbacks`](Self::set_callbacks).
    pub fn with_callbacks(mut self, callbacks: Callbacks) -> Self {
        self.callbacks = callbacks;
        self
    }

    /// The bound address (real port if 0 was asked for).
    pub fn local_addr(&self) -> &ListenAddr {
        &self.addr
    }

    /// Starts the sub-loops and registers the acceptor on `lp` (the main
    /// loop, which the caller then runs).
    pub fn start(&mut self, lp: &mut EventLoop) -> io::Result<()> {
        let listener = self.listener.take().ok_or_else(|| io::Error::other("server already started"))?;
        let idle_yield = self.config.idle_yield;
        let pool = LoopThreadPool::with_init(self.config.threads, self.config.poller, &self.config.name, move |lp| {
            lp.set_idle_yield(idle_yield);
        })?;
        let handles: Vec<LoopHandle> = pool.handles().to_vec();
        self.loads = (0..handles.len()).map(|_| Arc::new(AtomicUsize::new(0))).collect();
        let loads = self.loads.clone();
        let assign = self.config.assign;
        let callbacks = self.callbacks.clone();
        let live = self.live.clone();
        let accepted = self.accepted.clone();
        let mut next = 0usize;
        let on_accept = Box::new(move |lp: &mut EventLoop, fd, peer| {
            accepted.fetch_add(1, Ordering::Relaxed);
            if handles.is_empty() {
                let count = LiveCount::new(live.clone(), None);
                if let Err(e) = adopt_counted(lp, fd, peer, callbacks.clone(), Some(count)) {
                    tracing::warn!(error = %e, "registering connection failed");
                }
                return;
            }
            let i = pick_loop(assign, &loads, next);
            next = next.wrapping_add(1);
            // Counted on its loop from now, so a burst of accepts sees it.
            let count = LiveCount::new(live.clone(), Some(loads[i].clone()));
            let callbacks = callbacks.clone();
            // If that loop has exited the task (the socket and the count
            // with it) is dropped.
            handles[i].run_in_loop(move |lp| {
                if let Err(e) = adopt_counted(lp, fd, peer, callbacks, Some(count)) {
                    tracing::warn!(error = %e, "registering connection failed");
                }
            });
        });
        let token = Acceptor::new(listener, on_accept).register(lp)?;
        self.acceptor = Some(token);
        self.pool = Some(pool);
        Ok(())
    }

    /// Stops accepting and closes the listening socket; open connections
    /// are unaffected (the first step of a graceful shutdown).
    pub fn stop_accepting(&mut self, lp: &mut EventLoop) {
        if let Some(token) = self.acceptor.take() {
            drop(lp.deregister(token));
        }
        self.listener = None;
    }

    /// Connections currently open (accepted and not yet freed).
    pub fn live_connections(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// The live-connection counter itself, for watching from other threads
    /// (it is decremented when a connection's state is freed).
    pub fn live_counter(&self) -> Arc<AtomicUsize> {
        self.live.clone()
    }

    /// Open connections per sub-loop, in loop order (empty in
    /// single-reactor mode or before `start`).
    pub fn loop_loads(&self) -> Vec<usize> {
        self.loads.iter().map(|l| l.load(Ordering::Acquire)).collect()
    }

    /// Connections accepted so far (shed ones not included).
    pub fn accepted_connections(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// The sub-loops (empty in single-reactor mode), e.g. to post to all.
    pub fn sub_loops(&self) -> Vec<LoopHandle> {
        self.pool.as_ref().map(|p| p.handles().to_vec()).unwrap_or_default()
    }

    /// Graceful shutdown, step 2: asks every open connection (on `lp`, the
    /// main loop, and on every sub-loop) to half-close once its output
    /// drains. Watch [`live_connections`](Self::live_connections) reach 0,
    /// with a drain timeout of your choice, then [`shutdown`](Self::shutdown).
    pub fn shutdown_connections(&self, lp: &mut EventLoop) {
        lp.shutdown_connections();
        for h in self.sub_loops() {
            h.run_in_loop(|lp| {
                lp.shutdown_connections();
            });
        }
    }

    /// Force-closes every open connection (main loop and sub-loops), e.g.
    /// when the drain timeout expired.
    pub fn close_connections(&self, lp: &mut EventLoop) {
        lp.close_connections();
        for h in self.sub_loops() {
            h.run_in_loop(|lp| {
                lp.close_connections();
            });
        }
    }

    /// Quits and joins the sub-loops (their connections are dropped, fds
    /// closed). The acceptor stays on the main loop until it is dropped or
    /// `stop_accepting` is called. Idempotent.
    pub fn shutdown(&mut self) {
        if let Some(mut pool) = self.pool.take() {
            pool.quit_and_join();
        }
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One open connection in a server's counters: the server-wide count and,
/// under a `TcpServer` with sub-loops, its loop's count (what least-loaded
/// assignment compares). Counted from creation to drop, so a connection
/// posted to a loop counts from the moment it is assigned, and one whose
/// loop is gone stops counting when the task carrying it is dropped.
pub(crate) struct LiveCount {
    server: Arc<AtomicUsize>,
    sub_loop: Option<Arc<AtomicUsize>>,
}

impl LiveCount {
    pub(crate) fn new(server: Arc<AtomicUsize>, sub_loop: Option<Arc<AtomicUsize>>) -> LiveCount {
        server.fetch_add(1, Ordering::AcqRel);
        if let Some(l) = &sub_loop {
            l.fetch_add(1, Ordering::AcqRel);
        }
        LiveCount { server, sub_loop }
    }
}

impl Drop for LiveCount {
    fn drop(&mut self) {
        // The loop's count first: whoever sees the server's count drop
        // sees the loop's too.
        if let Some(l) = &self.sub_loop {
            l.fetch_sub(1, Ordering::AcqRel);
        }
        self.server.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The sub-loop for the `turn`-th accepted connection.
fn pick_loop(assign: Assignment, loads: &[Arc<AtomicUsize>], turn: usize) -> usize {
    let n = loads.len();
    match assign {
        Assignment::RoundRobin => turn % n,
        Assignment::LeastLoaded => {
            // Start the scan at the round-robin choice, so ties rotate.
            (0..n).map(|k| (turn + k) % n).min_by_key(|&i| loads[i].load(Ordering::Acquire)).unwrap_or(0)
        }
    }
}
