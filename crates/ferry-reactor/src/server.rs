//! `TcpServer`: an acceptor on a main loop plus a pool of sub-loops.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::acceptor::{AcceptCallback, Acceptor};
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

/// A callback-style server: acceptors on the caller's main loop (one per
/// listening address), N sub-loops each serving the connections assigned
/// to it (round-robin or least-loaded, [`Assignment`]); each connection
/// lives entirely on its loop. Several listeners (say a file service and
/// an HTTP service) share the sub-loops, each with its own callbacks, and
/// callbacks may differ per loop ([`listen`](Self::listen)), so per-loop
/// state is captured by the callbacks instead of kept in thread-locals.
///
/// Owned by the main loop's thread (`start`/`stop_accepting` take that loop).
/// Dropping it (or [`shutdown`](Self::shutdown)) quits and joins the
/// sub-loops, closing their connections.
pub struct TcpServer {
    config: ServerConfig,
    listeners: Vec<ServerListener>,
    pool: Option<LoopThreadPool>,
    live: Arc<AtomicUsize>,
    /// Open connections per sub-loop (see [`Assignment`]).
    loads: Vec<Arc<AtomicUsize>>,
    accepted: Arc<AtomicU64>,
}

/// One listening address of a server.
struct ServerListener {
    /// Until `start` hands it to its acceptor.
    listener: Option<Listener>,
    addr: ListenAddr,
    /// The callbacks of its connections, by loop (index = sub-loop; one
    /// entry, the main loop's, in single-reactor mode).
    callbacks: Vec<Callbacks>,
    acceptor: Option<Token>,
}

impl std::fmt::Debug for TcpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpServer")
            .field("addrs", &self.local_addrs())
            .field("threads", &self.config.threads)
            .field("live", &self.live_connections())
            .finish()
    }
}

impl TcpServer {
    /// A server with no listener yet ([`listen`](Self::listen) adds them).
    pub fn new(config: ServerConfig) -> TcpServer {
        TcpServer {
            config,
            listeners: Vec::new(),
            pool: None,
            live: Arc::new(AtomicUsize::new(0)),
            loads: Vec::new(),
            accepted: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A server with one listener, bound now (so the real port is known
    /// before `start`); set its callbacks with
    /// [`set_callbacks`](Self::set_callbacks).
    pub fn bind(addr: &ListenAddr, config: ServerConfig) -> io::Result<TcpServer> {
        let mut server = TcpServer::new(config);
        server.listen(addr, |_| Callbacks::default())?;
        Ok(server)
    }

    /// Binds one more listening address now and returns its real address.
    /// `callbacks_for(i)` gives the callbacks of its connections on loop
    /// `i` (`0..loop_count()`), e.g. closures that capture that loop's
    /// state. Before `start`.
    pub fn listen(
        &mut self,
        addr: &ListenAddr,
        callbacks_for: impl FnMut(usize) -> Callbacks,
    ) -> io::Result<ListenAddr> {
        let options = self.config.listen.clone();
        self.listen_with(addr, &options, callbacks_for)
    }

    /// [`TcpServer::listen`] with this listener's own socket options.
    pub fn listen_with(
        &mut self,
        addr: &ListenAddr,
        options: &ListenOptions,
        callbacks_for: impl FnMut(usize) -> Callbacks,
    ) -> io::Result<ListenAddr> {
        let listener = Listener::bind(addr, options)?;
        Ok(self.listen_on(listener, callbacks_for))
    }

    /// [`TcpServer::listen`] on a socket bound already; returns its
    /// address.
    pub fn listen_on(&mut self, listener: Listener, callbacks_for: impl FnMut(usize) -> Callbacks) -> ListenAddr {
        let addr = listener.local_addr().clone();
        let callbacks = (0..self.loop_count()).map(callbacks_for).collect();
        self.listeners.push(ServerListener { listener: Some(listener), addr: addr.clone(), callbacks, acceptor: None });
        addr
    }

    /// How many loops serve connections: the sub-loops, or the main loop
    /// alone in single-reactor mode.
    pub fn loop_count(&self) -> usize {
        self.config.threads.max(1)
    }

    /// Sets the callbacks of the first listener's connections on every
    /// loop (before `start`).
    pub fn set_callbacks(&mut self, callbacks: Callbacks) {
        if let Some(first) = self.listeners.first_mut() {
            first.callbacks.iter_mut().for_each(|c| *c = callbacks.clone());
        }
    }

    /// Builder form of [`set_callbacks`](Self::set_callbacks).
    pub fn with_callbacks(mut self, callbacks: Callbacks) -> Self {
        self.set_callbacks(callbacks);
        self
    }

    /// The first listener's bound address (real port if 0 was asked for).
    /// A server made with [`new`](Self::new) must [`listen`](Self::listen)
    /// first (this panics otherwise: a programming error).
    pub fn local_addr(&self) -> &ListenAddr {
        &self.listeners[0].addr
    }

    /// Every listener's bound address, in the order they were added.
    pub fn local_addrs(&self) -> Vec<ListenAddr> {
        self.listeners.iter().map(|l| l.addr.clone()).collect()
    }

    /// Starts the sub-loops and registers the acceptors on `lp` (the main
    /// loop, which the caller then runs).
    pub fn start(&mut self, lp: &mut EventLoop) -> io::Result<()> {
        if self.pool.is_some() {
            return Err(io::Error::other("server already started"));
        }
        let idle_yield = self.config.idle_yield;
        let pool = LoopThreadPool::with_init(self.config.threads, self.config.poller, &self.config.name, move |lp| {
            lp.set_idle_yield(idle_yield);
        })?;
        let handles: Rc<[LoopHandle]> = pool.handles().into();
        self.loads = (0..handles.len()).map(|_| Arc::new(AtomicUsize::new(0))).collect();
        // One turn for every listener: the sub-loop choice is made here only.
        let turn = Rc::new(Cell::new(0usize));
        for l in &mut self.listeners {
            let Some(listener) = l.listener.take() else { continue };
            let on_accept = accept_handler(
                Rc::clone(&handles),
                self.loads.clone(),
                self.config.assign,
                Rc::clone(&turn),
                l.callbacks.clone(),
                Arc::clone(&self.live),
                Arc::clone(&self.accepted),
            );
            l.acceptor = Some(Acceptor::new(listener, on_accept).register(lp)?);
        }
        self.pool = Some(pool);
        Ok(())
    }

    /// Stops accepting and closes the listening sockets; open connections
    /// are unaffected (the first step of a graceful shutdown).
    pub fn stop_accepting(&mut self, lp: &mut EventLoop) {
        for l in &mut self.listeners {
            if let Some(token) = l.acceptor.take() {
                drop(lp.deregister(token));
            }
            l.listener = None;
        }
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

/// The acceptor callback of one listener: hands each connection to the
/// next sub-loop (or serves it on the main loop in single-reactor mode)
/// with that loop's callbacks.
fn accept_handler(
    handles: Rc<[LoopHandle]>,
    loads: Vec<Arc<AtomicUsize>>,
    assign: Assignment,
    turn: Rc<Cell<usize>>,
    callbacks: Vec<Callbacks>,
    live: Arc<AtomicUsize>,
    accepted: Arc<AtomicU64>,
) -> AcceptCallback {
    Box::new(move |lp: &mut EventLoop, fd, peer| {
        accepted.fetch_add(1, Ordering::Relaxed);
        if handles.is_empty() {
            let count = LiveCount::new(live.clone(), None);
            let shown = peer;
            if let Err(e) = adopt_counted(lp, fd, peer, callbacks[0].clone(), Some(count)) {
                refused(&shown, &e);
            }
            return;
        }
        let i = pick_loop(assign, &loads, turn.get());
        turn.set(turn.get().wrapping_add(1));
        // Counted on its loop from now, so a burst of accepts sees it.
        let count = LiveCount::new(live.clone(), Some(loads[i].clone()));
        let callbacks = callbacks[i].clone();
        // If that loop has exited the task (the socket and the count with
        // it) is dropped.
        handles[i].run_in_loop(move |lp| {
            let shown = peer;
            if let Err(e) = adopt_counted(lp, fd, peer, callbacks, Some(count)) {
                refused(&shown, &e);
            }
        });
    })
}

/// A connection its loop could not watch (e.g. a descriptor beyond
/// select's FD_SETSIZE) is closed at once, with a line that says why.
fn refused(peer: &crate::listener::PeerAddr, e: &io::Error) {
    tracing::warn!("{peer}: connection refused and closed: cannot watch it: {e}");
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
