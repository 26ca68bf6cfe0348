//! The reactor models: sessions driven by `ferry-reactor` event loops.
//!
//! - **reactor** (`io_threads: 0`): the calling thread's loop accepts on
//!   every listener and does all connection I/O.
//! - **multi-reactor** (`io_threads: N`): the calling thread's loop only
//!   accepts; each accepted connection is handed round-robin to one of N
//!   sub-loop threads and lives there until it closes.
//!
//! Every listener (files, HTTP, echo) shares the same loops. The
//! connection side is the `session_conn` module: any `Session` over a
//! `TcpConnection`.
//!
//! Shutdown (SIGINT, SIGTERM through the loop's signalfd, or
//! [`Shutdown::signal`]): the listeners close, every loop closes its idle
//! connections at once and the others as soon as their in-flight answer or
//! upload is done; when none is left, or the drain timeout passes (what is
//! left is cut), the loops quit and their threads are joined.
//!
//! The file service's `sum` hashes a file inside the session, so under
//! these models it blocks its loop (and that loop's other connections)
//! while it reads the file; the thread-pool model does not have that cost.

mod jobs;
mod registry;
mod session_conn;
mod shutdown_watch;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_reactor::AcceptCallback;
/// The readiness backend of the loops (epoll or poll).
pub use ferry_reactor::PollerKind;
use ferry_reactor::sys::signals::SignalFd;
use ferry_reactor::{
    Acceptor, EventLoop, ListenAddr, ListenOptions, Listener, LoopHandle, LoopThreadPool, PeerAddr, Token, adopt,
};
use nix::sys::signal::Signal;

use self::jobs::JobPool;
use self::session_conn::ListenerShared;
use self::shutdown_watch::ShutdownWatch;
use crate::{BoundListener, ListenerConfig, Report, ServerError, Shutdown};
pub use ferry_proto::conn::MAX_INPUT;

/// How often the main loop checks whether the drain has finished.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// Settings of a [`ReactorServer`].
#[derive(Debug, Clone)]
pub struct ReactorConfig {
    /// The addresses to listen on, each with its service and timeouts.
    pub listeners: Vec<ListenerConfig>,
    /// Sub-loop threads doing connection I/O; 0 = a single reactor (the
    /// main loop accepts and serves everything).
    pub io_threads: usize,
    /// The readiness backend of every loop.
    pub poller: PollerKind,
    /// How long in-flight transfers may take to finish after shutdown
    /// begins before their connections are cut.
    pub drain_timeout: Duration,
    /// Turn SIGINT and SIGTERM into an orderly shutdown (blocks them in the
    /// thread calling [`ReactorServer::bind`] and the threads it spawns).
    pub handle_signals: bool,
}

impl ReactorConfig {
    /// A multi-reactor configuration with the CLI's defaults: one sub-loop
    /// per CPU, epoll, 30 s drain timeout, signals handled.
    pub fn new(listeners: Vec<ListenerConfig>) -> ReactorConfig {
        ReactorConfig {
            listeners,
            io_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            poller: PollerKind::Epoll,
            drain_timeout: Duration::from_secs(30),
            handle_signals: true,
        }
    }
}

/// A bound reactor or multi-reactor server: [`bind`](Self::bind) opens the
/// listeners (so their addresses can be printed), [`run`](Self::run)
/// serves until shutdown.
pub struct ReactorServer {
    listeners: Vec<(Listener, SocketAddr, Arc<ListenerShared>)>,
    config: ReactorConfig,
    shutdown: Shutdown,
    signals: Option<SignalFd>,
    live: Arc<AtomicUsize>,
    jobs: Arc<JobPool>,
}

impl ReactorServer {
    /// Ignores SIGPIPE, blocks SIGINT/SIGTERM into a signalfd (if
    /// `handle_signals`) and binds every listener. Call it before spawning
    /// other threads, so they inherit the blocked signal mask.
    pub fn bind(config: ReactorConfig) -> Result<ReactorServer, ServerError> {
        let signals = crate::listen::server_signals(config.handle_signals, false)?;
        let live = Arc::new(AtomicUsize::new(0));
        let jobs = Arc::new(JobPool::new());
        let sweep_every = sweep_interval(&config.listeners);
        let mut listeners = Vec::with_capacity(config.listeners.len());
        for lc in &config.listeners {
            let listen_err = |error| ServerError::Listen { addr: lc.addr, error };
            let listener = Listener::bind(&ListenAddr::Tcp(lc.addr), &ListenOptions::default()).map_err(listen_err)?;
            let addr = match listener.local_addr() {
                ListenAddr::Tcp(addr) => *addr,
                ListenAddr::Unix(_) => lc.addr,
            };
            let shared = Arc::new(ListenerShared {
                service: Arc::new(lc.service.clone()),
                timeouts: lc.pump,
                sweep_every,
                live: Arc::clone(&live),
                jobs: Arc::clone(&jobs),
            });
            listeners.push((listener, addr, shared));
        }
        let shutdown = Shutdown::new().map_err(ServerError::setup("create the shutdown eventfd"))?;
        Ok(ReactorServer { listeners, config, shutdown, signals, live, jobs })
    }

    /// The bound addresses, in the order of the configuration.
    pub fn listeners(&self) -> Vec<BoundListener> {
        self.listeners.iter().map(|(_, addr, s)| BoundListener { service: s.service.name(), addr: *addr }).collect()
    }

    /// A handle that starts the orderly shutdown from any thread, like
    /// SIGTERM does.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Starts the sub-loops and runs the main loop on the calling thread
    /// until shutdown, then drains and joins the sub-loops. Returns `Ok`
    /// after an orderly shutdown, even when the drain timeout forced
    /// connections closed (the report says how many).
    pub fn run(mut self) -> Result<Report, ServerError> {
        registry::reset();
        let poller = self.config.poller;
        let mut lp = EventLoop::new(poller).map_err(ServerError::setup("create the main event loop"))?;
        let mut pool = LoopThreadPool::new(self.config.io_threads, poller, "ferry-io")
            .map_err(ServerError::setup("start the I/O loop threads"))?;
        let sub_loops = pool.handles().to_vec();
        let accepted = Rc::new(Cell::new(0u64));
        let next = Rc::new(Cell::new(0usize));
        let mut acceptors = Vec::with_capacity(self.listeners.len());
        for (listener, addr, shared) in self.listeners.drain(..) {
            let on_accept = accept_handler(shared, sub_loops.clone(), Rc::clone(&accepted), Rc::clone(&next));
            let token = Acceptor::new(listener, on_accept)
                .register(&mut lp)
                .map_err(|error| ServerError::Listen { addr, error })?;
            acceptors.push(token);
        }
        let drain = Rc::new(RefCell::new(Drain {
            acceptors,
            sub_loops,
            live: Arc::clone(&self.live),
            timeout: self.config.drain_timeout,
            started: false,
            signal: None,
            cut: 0,
        }));
        if let Some(signals) = self.signals.take() {
            let drain = Rc::clone(&drain);
            lp.watch_signals(signals, move |lp, signal| begin_shutdown(lp, &drain, Some(signal)))
                .map_err(ServerError::setup("watch SIGINT and SIGTERM"))?;
        }
        let watch = ShutdownWatch::new(self.shutdown.clone(), {
            let drain = Rc::clone(&drain);
            move |lp: &mut EventLoop| begin_shutdown(lp, &drain, None)
        });
        watch.register(&mut lp).map_err(ServerError::setup("watch the shutdown eventfd"))?;
        tracing::info!(
            "{}: {} I/O loop(s), {poller:?}, drain timeout {}s",
            if self.config.io_threads == 0 { "reactor" } else { "multi-reactor" },
            self.config.io_threads.max(1),
            self.config.drain_timeout.as_secs_f64()
        );
        let ran = lp.run();
        pool.quit_and_join();
        self.jobs.close();
        // The main loop's own connections (single reactor) close with it.
        drop(lp);
        let drain = drain.borrow();
        let report = Report {
            signal: drain.signal,
            accepted: accepted.get(),
            dropped_unserved: 0,
            cut: drain.cut,
            left_behind: 0,
        };
        ran.map_err(ServerError::setup("run the main event loop"))?;
        Ok(report)
    }
}

/// The acceptor callback of one listener: hands the socket (non-blocking,
/// `TCP_NODELAY` already, from the reactor's listener) to the next sub-loop,
/// or serves it here when there are none.
fn accept_handler(
    shared: Arc<ListenerShared>,
    sub_loops: Vec<LoopHandle>,
    accepted: Rc<Cell<u64>>,
    next: Rc<Cell<usize>>,
) -> AcceptCallback {
    let callbacks = session_conn::callbacks(shared);
    Box::new(move |lp: &mut EventLoop, fd: OwnedFd, peer: PeerAddr| {
        accepted.set(accepted.get() + 1);
        if sub_loops.is_empty() {
            if let Err(e) = adopt(lp, fd, peer.clone(), callbacks.clone()) {
                tracing::warn!("{peer}: cannot register the connection: {e}");
            }
            return;
        }
        let i = next.get();
        next.set(i.wrapping_add(1));
        let callbacks = callbacks.clone();
        // If that loop has already exited the task, and the socket, are dropped.
        sub_loops[i % sub_loops.len()].run_in_loop(move |lp| {
            if let Err(e) = adopt(lp, fd, peer.clone(), callbacks) {
                tracing::warn!("{peer}: cannot register the connection: {e}");
            }
        });
    })
}

/// How often loops check their connections' deadlines: an eighth of the
/// shortest timeout, between 100 ms and 1 s (so a 10 s header timeout
/// fires within 10-11 s).
fn sweep_interval(listeners: &[ListenerConfig]) -> Duration {
    let shortest = listeners
        .iter()
        .flat_map(|l| [l.pump.idle_timeout, l.pump.request_timeout])
        .min()
        .unwrap_or(Duration::from_secs(8));
    (shortest / 8).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// The shutdown sequence's state, on the main loop.
struct Drain {
    acceptors: Vec<Token>,
    sub_loops: Vec<LoopHandle>,
    live: Arc<AtomicUsize>,
    timeout: Duration,
    started: bool,
    signal: Option<Signal>,
    cut: usize,
}

/// Stops accepting, tells every loop to drain, and quits the main loop
/// once no connection is left or the drain timeout passed. Called again by
/// a second SIGINT/SIGTERM, it quits at once: the loops close what is left.
fn begin_shutdown(lp: &mut EventLoop, drain: &Rc<RefCell<Drain>>, signal: Option<Signal>) {
    let deadline = {
        let mut d = drain.borrow_mut();
        if d.started {
            // A second SIGINT/SIGTERM: stop waiting for what is in flight.
            if let Some(signal) = signal {
                let live = d.live.load(Ordering::Acquire);
                tracing::warn!("received {signal} again; cutting the {live} connection(s) still in flight now");
                d.cut = live;
                lp.quit();
            }
            return;
        }
        crate::listen::log_stop(signal);
        d.started = true;
        d.signal = signal;
        for token in d.acceptors.drain(..) {
            drop(lp.deregister(token));
        }
        for sub in &d.sub_loops {
            sub.run_in_loop(registry::begin_drain);
        }
        Instant::now() + d.timeout
    };
    registry::begin_drain(lp);
    let drain = Rc::clone(drain);
    let check = move |lp: &mut EventLoop| {
        let mut d = drain.borrow_mut();
        let live = d.live.load(Ordering::Acquire);
        if live == 0 {
            lp.quit();
        } else if Instant::now() >= deadline {
            tracing::warn!(
                "drain timeout of {}s passed; cutting {live} connection(s) still in flight",
                d.timeout.as_secs_f64()
            );
            d.cut = live;
            lp.quit();
        }
    };
    check(lp);
    if !lp.is_quitting() {
        lp.run_every(DRAIN_POLL, check);
    }
}

#[cfg(test)]
mod tests;
