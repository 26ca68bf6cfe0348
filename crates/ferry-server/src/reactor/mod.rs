//! The reactor models: sessions driven by `ferry-reactor` event loops,
//! through its [`TcpServer`].
//!
//! - **reactor** (`io_threads: 0`): the calling thread's loop accepts on
//!   every listener and does all connection I/O.
//! - **multi-reactor** (`io_threads: N`): the calling thread's loop only
//!   accepts; each accepted connection goes to one of N sub-loop threads
//!   (round-robin, or the least loaded with `assign`) and lives there
//!   until it closes.
//!
//! Every listener (files, HTTP, echo) is a listener of the one
//! `TcpServer`, so they share its loops. Each loop has a [`LoopState`]
//! (draining, timeout sweep, open-file cache) that its callbacks carry;
//! each connection's state is its connection core (`session_conn`).
//! Blocking work of sessions (`sum`'s hash, listings, an upload's fsyncs)
//! runs on the job pool (`jobs`), never on a loop.
//!
//! Shutdown (SIGINT, SIGTERM through the loop's signalfd, or
//! [`Shutdown::signal`]): the listeners close, every loop closes its idle
//! connections at once and the others as soon as their in-flight answer or
//! upload is done; the last one to close wakes the main loop (no polling),
//! or the drain timeout (a timer) or a second signal cuts what is left.
//! Then the loops quit and their threads are joined.

pub(crate) mod jobs;
mod loop_state;
mod session_conn;
mod shared;
pub(crate) mod shutdown_watch;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

pub use ferry_proto::conn::MAX_INPUT;
/// How connections are spread over the sub-loops.
pub use ferry_reactor::Assignment;
/// The readiness backend of the loops (epoll or poll).
pub use ferry_reactor::PollerKind;
use ferry_reactor::sys::signals::SignalFd;
use ferry_reactor::{EventLoop, ServerConfig, TcpServer, Token};
use nix::sys::signal::Signal;

use self::jobs::JobPool;
use self::loop_state::LoopState;
use self::shared::{ListenerShared, ServerShared};
use self::shutdown_watch::ShutdownWatch;
use crate::{BoundListener, ListenerConfig, Report, ServerError, Shutdown, UdpEcho};

/// Settings of a [`ReactorServer`].
#[derive(Debug, Clone)]
pub struct ReactorConfig {
    /// The addresses to listen on, each with its service and timeouts.
    pub listeners: Vec<ListenerConfig>,
    /// Sub-loop threads doing connection I/O; 0 = a single reactor (the
    /// main loop accepts and serves everything).
    pub io_threads: usize,
    /// Which sub-loop a new connection goes to.
    pub assign: Assignment,
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
    /// per CPU, round-robin, epoll, 30 s drain timeout, signals handled.
    pub fn new(listeners: Vec<ListenerConfig>) -> ReactorConfig {
        ReactorConfig {
            listeners,
            io_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            assign: Assignment::RoundRobin,
            poller: PollerKind::Epoll,
            drain_timeout: Duration::from_secs(30),
            handle_signals: true,
        }
    }
}

/// A bound reactor or multi-reactor server: [`bind`](Self::bind) opens the
/// listeners (so their addresses can be printed; no thread starts yet, so
/// `--daemon` may fork), [`run`](Self::run) serves until shutdown.
pub struct ReactorServer {
    server: TcpServer,
    bound: Vec<BoundListener>,
    /// One per loop, in the server's loop order.
    loops: Vec<Arc<LoopState>>,
    shared: Arc<ServerShared>,
    config: ReactorConfig,
    shutdown: Shutdown,
    signals: Option<SignalFd>,
    /// The datagram echo service, served on the main loop.
    udp_echo: Option<UdpEcho>,
}

impl ReactorServer {
    /// Ignores SIGPIPE, blocks SIGINT/SIGTERM into a signalfd (if
    /// `handle_signals`) and binds every listener. Call it before spawning
    /// other threads, so they inherit the blocked signal mask.
    pub fn bind(config: ReactorConfig) -> Result<ReactorServer, ServerError> {
        let signals = crate::listen::server_signals(config.handle_signals, false)?;
        let shared = Arc::new(ServerShared {
            live: Default::default(),
            draining: Default::default(),
            main: Default::default(),
            jobs: JobPool::new(),
        });
        let mut server = TcpServer::new(ServerConfig {
            threads: config.io_threads,
            poller: config.poller,
            assign: config.assign,
            ..ServerConfig::default()
        });
        let sweep_every = sweep_interval(&config.listeners);
        let loops: Vec<Arc<LoopState>> = (0..server.loop_count()).map(|_| LoopState::new(sweep_every)).collect();
        let mut bound = Vec::with_capacity(config.listeners.len());
        for lc in &config.listeners {
            let listener = Arc::new(ListenerShared {
                service: Arc::new(lc.service.clone()),
                conn_config: Arc::new(lc.conn_config(false)),
                server: Arc::clone(&shared),
            });
            let callbacks_for = |i: usize| session_conn::callbacks(Arc::clone(&listener), Arc::clone(&loops[i]));
            let socket = ferry_reactor::Listener::bind(&lc.addr, &lc.listen_options())
                .map_err(|error| ServerError::Listen { addr: lc.addr.clone(), error })?;
            crate::upgrade::offer(lc.service.name(), &socket);
            let addr = server.listen_on(socket, callbacks_for);
            bound.push(BoundListener { service: lc.service.name(), addr });
        }
        let shutdown = Shutdown::new().map_err(ServerError::setup("create the shutdown eventfd"))?;
        Ok(ReactorServer { server, bound, loops, shared, config, shutdown, signals, udp_echo: None })
    }

    /// Also serves the datagram echo service, on the main loop; it stops
    /// when the listeners close.
    pub fn with_udp_echo(mut self, echo: UdpEcho) -> ReactorServer {
        self.udp_echo = Some(echo);
        self
    }

    /// The bound addresses, in the order of the configuration.
    pub fn listeners(&self) -> Vec<BoundListener> {
        self.bound.clone()
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
        let poller = self.config.poller;
        let mut lp = EventLoop::new(poller).map_err(ServerError::setup("create the main event loop"))?;
        let _ = self.shared.main.set(lp.handle());
        self.server.start(&mut lp).map_err(ServerError::setup("start the I/O loops and acceptors"))?;
        let udp_echo = match self.udp_echo.take() {
            Some(echo) => Some(echo.register(&mut lp).map_err(ServerError::setup("serve udp-echo on the main loop"))?),
            None => None,
        };
        let stop = Rc::new(RefCell::new(Stop {
            server: self.server,
            loops: self.loops,
            shared: Arc::clone(&self.shared),
            timeout: self.config.drain_timeout,
            started: false,
            signal: None,
            cut: 0,
            udp_echo,
        }));
        if let Some(signals) = self.signals.take() {
            let stop = Rc::clone(&stop);
            lp.watch_signals(signals, move |lp, signal| {
                if !crate::reload::handle(signal) {
                    begin_shutdown(lp, &stop, Some(signal));
                }
            })
            .map_err(ServerError::setup("watch SIGINT, SIGTERM and SIGHUP"))?;
        }
        let watch = ShutdownWatch::new(self.shutdown.clone(), {
            let stop = Rc::clone(&stop);
            move |lp: &mut EventLoop| begin_shutdown(lp, &stop, None)
        });
        watch.register(&mut lp).map_err(ServerError::setup("watch the shutdown eventfd"))?;
        tracing::info!(
            "{}: {} I/O loop(s), {poller:?}, {:?}, drain timeout {}s",
            if self.config.io_threads == 0 { "reactor" } else { "multi-reactor" },
            self.config.io_threads.max(1),
            self.config.assign,
            self.config.drain_timeout.as_secs_f64()
        );
        let ran = lp.run();
        let mut stop = stop.borrow_mut();
        let accepted = stop.server.accepted_connections();
        stop.server.shutdown();
        self.shared.jobs.close();
        // The main loop's own connections (single reactor) close with it.
        drop(lp);
        let report = Report { signal: stop.signal, accepted, dropped_unserved: 0, cut: stop.cut, left_behind: 0 };
        ran.map_err(ServerError::setup("run the main event loop"))?;
        Ok(report)
    }
}

/// How often loops check their connections' deadlines: an eighth of the
/// shortest timeout, between 100 ms and 1 s (so a 10 s header timeout
/// fires within 10-11 s).
pub(crate) fn sweep_interval(listeners: &[ListenerConfig]) -> Duration {
    let shortest = listeners
        .iter()
        .flat_map(|l| [l.pump.idle_timeout, l.pump.request_timeout])
        .min()
        .unwrap_or(Duration::from_secs(8));
    (shortest / 8).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// The shutdown sequence's state, on the main loop.
struct Stop {
    server: TcpServer,
    loops: Vec<Arc<LoopState>>,
    shared: Arc<ServerShared>,
    timeout: Duration,
    started: bool,
    signal: Option<Signal>,
    cut: usize,
    /// The datagram echo endpoint on the main loop, until it stops.
    udp_echo: Option<Token>,
}

/// Stops accepting and tells every loop to drain; the main loop quits when
/// the last connection closes (see `Core`'s drop) or the drain timeout
/// passes. Called again by a second SIGINT/SIGTERM, it quits at once: the
/// loops close what is left.
fn begin_shutdown(lp: &mut EventLoop, stop: &Rc<RefCell<Stop>>, signal: Option<Signal>) {
    let mut s = stop.borrow_mut();
    if s.started {
        if let Some(signal) = signal {
            let live = s.shared.live();
            tracing::warn!("received {signal} again; cutting the {live} connection(s) still in flight now");
            s.cut = live;
            lp.quit();
        }
        return;
    }
    crate::listen::log_stop(signal);
    s.started = true;
    s.signal = signal;
    s.server.stop_accepting(lp);
    // Nothing of a datagram service is in flight: it stops with the
    // listeners (its socket closes, a Unix socket file is removed).
    if let Some(token) = s.udp_echo.take() {
        drop(lp.deregister(token));
    }
    // Before the loops close anything, so the last close sees it.
    s.shared.begin_drain();
    let sub_loops = s.server.sub_loops();
    if sub_loops.is_empty() {
        if let Some(state) = s.loops.first() {
            state.begin_drain(lp);
        }
    } else {
        for (handle, state) in sub_loops.iter().zip(&s.loops) {
            let state = Arc::clone(state);
            handle.run_in_loop(move |lp| state.begin_drain(lp));
        }
    }
    if s.shared.live() == 0 {
        lp.quit();
        return;
    }
    let stop = Rc::clone(stop);
    lp.run_after(s.timeout, move |lp| {
        let mut s = stop.borrow_mut();
        let live = s.shared.live();
        if live > 0 {
            tracing::warn!(
                "drain timeout of {}s passed; cutting {live} connection(s) still in flight",
                s.timeout.as_secs_f64()
            );
            s.cut = live;
        }
        lp.quit();
    });
}

#[cfg(test)]
mod tests;
