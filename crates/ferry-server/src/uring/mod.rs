//! The uring model: a proactor on io_uring. Completion-based end to end,
//! with the same sessions through the same connection core as every
//! other model.
//!
//! - One ring per thread (`io_threads`), each with its own listening
//!   socket per TCP listener (`SO_REUSEPORT`: the kernel spreads
//!   connections over the threads) and a multishot accept on it. A Unix
//!   socket cannot be bound twice: every ring accepts from a descriptor
//!   of the one socket (docs/URING.md says why).
//! - Per connection: a multishot receive into the thread's provided-buffer
//!   pool (`bufs`: no receive buffer per connection), sends with adjacent
//!   answers coalesced, file ranges spliced file -> pipe -> socket by two
//!   linked operations (`output`), cancellation on close (`conn`).
//! - Deadlines: a multishot timeout per ring sweeps the connections'
//!   deadlines (the core's `next_deadline`), as the reactor's timer does.
//! - Blocking work (listings, hashing, fsync) runs on the reactor's job
//!   pool; answers come back through the thread's mailbox (`shared`).
//! - The calling thread runs a small control ring: it reads the signalfd
//!   and polls the shutdown eventfd; on a stop it tells every ring to
//!   drain, then waits on the ring for "no connection left", the drain
//!   timeout (a timeout operation) or a second signal, which cut what is
//!   left (`control`).
//!
//! If the kernel refuses `io_uring_setup` (too old, `kernel.io_uring_disabled`,
//! a seccomp filter), [`UringServer::bind`] fails with a message saying so.

mod bufs;
mod conn;
mod control;
mod output;
mod ring;
mod shared;
mod slab;
mod upload;
mod worker;

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use ferry_reactor::sys::signals::SignalFd;
use ferry_reactor::{ListenAddr, ListenOptions, Listener};

use self::shared::{Mailbox, Msg, Shared};
use self::worker::{RingListener, Worker};
use crate::{BoundListener, ListenerConfig, Report, ServerError, Shutdown};

/// Settings of a [`UringServer`].
#[derive(Debug, Clone)]
pub struct UringConfig {
    /// The addresses to listen on, each with its service and timeouts.
    pub listeners: Vec<ListenerConfig>,
    /// Ring threads, each accepting and serving its share (at least 1).
    pub io_threads: usize,
    /// How long in-flight transfers may take to finish after shutdown
    /// begins before their connections are cut.
    pub drain_timeout: Duration,
    /// Turn SIGINT and SIGTERM into an orderly shutdown.
    pub handle_signals: bool,
}

impl UringConfig {
    /// The CLI's defaults: a ring per CPU, 30 s drain timeout, signals
    /// handled.
    pub fn new(listeners: Vec<ListenerConfig>) -> UringConfig {
        UringConfig {
            listeners,
            io_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            drain_timeout: Duration::from_secs(30),
            handle_signals: true,
        }
    }
}

/// What the message of a refused `io_uring_setup` says.
const REFUSED: &str = "set up io_uring, which --model uring needs (the kernel refused it: \
     too old (before 6.0), io_uring turned off by the kernel.io_uring_disabled sysctl, \
     or a seccomp filter such as a container's; pick another --model)";

/// A bound uring server: [`bind`](Self::bind) checks that io_uring is
/// available and opens the listeners (no thread starts, so `--daemon` may
/// fork); [`run`](Self::run) serves until shutdown.
pub struct UringServer {
    /// Per ring thread, one socket per listener.
    sockets: Vec<Vec<Listener>>,
    bound: Vec<BoundListener>,
    config: UringConfig,
    shutdown: Shutdown,
    signals: Option<SignalFd>,
    /// A datagram echo served beside the rings, on a thread of its own.
    udp_echo: Option<crate::UdpEcho>,
}

impl UringServer {
    /// Checks that the kernel grants an io_uring, ignores SIGPIPE, blocks
    /// SIGINT/SIGTERM into a signalfd (if `handle_signals`) and binds every
    /// TCP listener once per ring thread (`SO_REUSEPORT`), every Unix one
    /// once (the rings share it).
    pub fn bind(config: UringConfig) -> Result<UringServer, ServerError> {
        probe().map_err(ServerError::setup(REFUSED))?;
        let signals = crate::listen::server_signals(config.handle_signals, false)?;
        let threads = config.io_threads.max(1);
        let mut sockets: Vec<Vec<Listener>> = (0..threads).map(|_| Vec::new()).collect();
        let mut bound = Vec::with_capacity(config.listeners.len());
        for lc in &config.listeners {
            let listen_err = |error| ServerError::Listen { addr: lc.addr.clone(), error };
            // An inherited socket (socket activation, an upgrade) is one
            // socket, shared by the rings as a Unix one is.
            let adopted = ferry_reactor::inherited::is_adopted(&lc.addr);
            if let ListenAddr::Tcp(addr) = &lc.addr
                && addr.port() != 0
                && !lc.reuse_port
                && !adopted
            {
                // The rings share the port with SO_REUSEPORT, which would
                // let this process join another server's port unnoticed:
                // a plain bind first says whether the port is taken, as
                // every other model's bind does (`--reuseport` allows it).
                drop(Listener::bind(&lc.addr, &lc.listen_options()).map_err(listen_err)?);
            }
            let options = ListenOptions { reuse_port: true, ..lc.listen_options() };
            let first = Listener::bind(&lc.addr, &options).map_err(listen_err)?;
            let addr = first.local_addr().clone();
            // One socket, one descriptor per ring, for a Unix listener (the
            // first ring's, the binder's, removes the file at exit) and an
            // inherited one; a socket of its own per ring otherwise, each
            // handed over by an upgrade (the kernel queues connections on
            // every one of them).
            let own_per_ring = matches!(addr, ListenAddr::Tcp(_)) && !adopted;
            for per_thread in sockets.iter_mut().skip(1) {
                let socket = if own_per_ring { Listener::bind(&addr, &options) } else { first.try_clone() };
                let socket = socket.map_err(listen_err)?;
                if own_per_ring {
                    crate::upgrade::offer(lc.service.name(), &socket);
                }
                per_thread.push(socket);
            }
            crate::upgrade::offer(lc.service.name(), &first);
            sockets[0].push(first);
            bound.push(BoundListener { service: lc.service.name(), addr });
        }
        let shutdown = Shutdown::new().map_err(ServerError::setup("create the shutdown eventfd"))?;
        Ok(UringServer { sockets, bound, config, shutdown, signals, udp_echo: None })
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

    /// Also serves `echo` (`--udp-echo`) until shutdown, on an event-loop
    /// thread of its own beside the rings (see [`crate::udp_echo`]).
    pub fn with_udp_echo(mut self, echo: crate::UdpEcho) -> UringServer {
        self.udp_echo = Some(echo);
        self
    }

    /// Starts the ring threads and runs the control ring on the calling
    /// thread until shutdown, then drains and joins them. Returns `Ok`
    /// after an orderly shutdown, even when connections were cut (the
    /// report says how many).
    pub fn run(self) -> Result<Report, ServerError> {
        let UringServer { sockets, config, shutdown, signals, udp_echo, .. } = self;
        let beside = match udp_echo {
            Some(echo) => Some(echo.start_beside(false, &shutdown, || {})?),
            None => None,
        };
        let report = run_rings(sockets, config, &shutdown, signals);
        // Raised again in case the rings failed before raising it.
        shutdown.signal();
        if let Some(beside) = beside {
            beside.finish();
        }
        report
    }
}

/// [`UringServer::run`] without the datagram echo beside it.
fn run_rings(
    sockets: Vec<Vec<Listener>>,
    config: UringConfig,
    shutdown: &Shutdown,
    signals: Option<SignalFd>,
) -> Result<Report, ServerError> {
    {
        let control_ring = control::new()?;
        let shared = Arc::new(Shared::new().map_err(ServerError::setup("create the idle eventfd"))?);
        let sweep_every = crate::reactor::sweep_interval(&config.listeners);
        let (started_tx, started_rx) = mpsc::channel();
        let mut mailboxes = Vec::new();
        let mut gos = Vec::new();
        let mut threads: Vec<JoinHandle<()>> = Vec::new();
        for (i, per_thread) in sockets.into_iter().enumerate() {
            let mailbox = Arc::new(Mailbox::new().map_err(ServerError::setup("create a ring mailbox"))?);
            let listeners = per_thread
                .into_iter()
                .zip(&config.listeners)
                .map(|(socket, lc)| {
                    RingListener::new(socket, Arc::new(lc.service.clone()), Arc::new(lc.conn_config(true)))
                })
                .collect();
            let (shared, mailbox2, started) = (Arc::clone(&shared), Arc::clone(&mailbox), started_tx.clone());
            let (go_tx, go_rx) = mpsc::channel::<bool>();
            let spawned = std::thread::Builder::new().name(format!("ferry-ring-{i}")).spawn(move || {
                let worker = match Worker::new(listeners, mailbox2, shared, sweep_every) {
                    Ok(worker) => worker,
                    Err(e) => return drop(started.send(Err(e))),
                };
                let _ = started.send(Ok(()));
                // Accept only once every ring is set up: a ring that
                // accepted at once could take the descriptors the others
                // still need.
                if go_rx.recv() == Ok(true)
                    && let Err(e) = worker.run()
                {
                    tracing::error!("io_uring thread {i} failed: {e}");
                }
            });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => return Err(stop_threads(&gos, threads, ServerError::setup("spawn a ring thread")(e))),
            }
            gos.push(go_tx);
            mailboxes.push(mailbox);
        }
        for _ in 0..threads.len() {
            match started_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(stop_threads(&gos, threads, ServerError::setup(REFUSED)(e))),
                Err(_) => break,
            }
        }
        for go in &gos {
            let _ = go.send(true);
        }
        tracing::info!(
            "uring: {} ring thread(s), SO_REUSEPORT accept, drain timeout {}s",
            threads.len(),
            config.drain_timeout.as_secs_f64()
        );
        let outcome = control::run(control_ring, &shared, &mailboxes, shutdown, signals, config.drain_timeout);
        for mailbox in &mailboxes {
            mailbox.post(Msg::Quit);
        }
        for handle in threads {
            if handle.join().is_err() {
                tracing::error!("an io_uring thread panicked");
            }
        }
        shared.jobs.close();
        let stopped = outcome?;
        let accepted = shared.accepted.load(std::sync::atomic::Ordering::SeqCst);
        Ok(Report { signal: stopped.signal, accepted, dropped_unserved: 0, cut: stopped.cut, left_behind: 0 })
    }
}

/// Tells the threads started so far not to serve (they wait for the go
/// before their first operation), joins them, returns `error`.
fn stop_threads(gos: &[mpsc::Sender<bool>], threads: Vec<JoinHandle<()>>, error: ServerError) -> ServerError {
    for go in gos {
        let _ = go.send(false);
    }
    for handle in threads {
        let _ = handle.join();
    }
    error
}

/// Asks the kernel for a ring and drops it: fails as `io_uring_setup`
/// fails when io_uring is unavailable.
fn probe() -> std::io::Result<()> {
    ring::new_ring().map(drop)
}

#[cfg(test)]
mod tests;
