//! The thread-pool model: one accept loop (the thread that calls
//! [`ThreadPoolServer::run`]) feeds a bounded [`TaskQueue`] that N worker
//! threads drain, each serving one connection at a time with the blocking
//! pump ([`crate::serve_connection`]).
//!
//! Shutdown (SIGINT, SIGTERM or [`Shutdown::signal`]): stop accepting, close
//! the listeners, close queued connections nobody started serving, signal
//! the workers, let in-flight transfers finish for at most the drain
//! timeout, cut what is left, join the workers.

mod accept;
mod workers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ferry_reactor::sys::signals::SignalFd;
use nix::sys::signal::Signal;

use self::accept::{Stop, accept_loop};
use self::workers::{Shared, Tracker};
use crate::listen::{Listener, bind_listeners, bound};
use crate::second_signal::SecondSignal;
use crate::task_queue::TaskQueue;
use crate::{ListenerConfig, ServerError, Shutdown};
use ferry_reactor::Waker;

/// How long workers get to notice their connections were cut after the
/// drain timeout before they are left behind.
const CUT_GRACE: Duration = Duration::from_secs(2);

/// Settings of a [`ThreadPoolServer`].
#[derive(Debug, Clone)]
pub struct ThreadPoolConfig {
    /// The addresses to listen on, each with its service.
    pub listeners: Vec<ListenerConfig>,
    /// Worker threads, each serving one connection at a time (at least 1).
    pub workers: usize,
    /// Accepted connections that may wait for a free worker (at least 1).
    /// When this many wait, the server stops accepting and the kernel's
    /// listen backlog holds further connections.
    pub queue_capacity: usize,
    /// How long in-flight transfers may take to finish after shutdown
    /// begins before their connections are cut.
    pub drain_timeout: Duration,
    /// Turn SIGINT and SIGTERM into an orderly shutdown (blocks them in the
    /// thread calling [`ThreadPoolServer::bind`] and the threads it
    /// spawns). Tests that shut down through [`Shutdown`] may turn it off.
    pub handle_signals: bool,
}

impl ThreadPoolConfig {
    /// A configuration for `listeners` with the CLI's defaults: 2 workers
    /// per CPU, a queue of 64, 30 s drain timeout, signals handled.
    /// Timeouts are per listener ([`ListenerConfig::pump`]).
    pub fn new(listeners: Vec<ListenerConfig>) -> ThreadPoolConfig {
        ThreadPoolConfig {
            listeners,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            queue_capacity: 64,
            drain_timeout: Duration::from_secs(30),
            handle_signals: true,
        }
    }
}

/// A listener as bound: the real address (port 0 resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundListener {
    /// The service's name ("files", "echo").
    pub service: &'static str,
    /// The address the socket is bound to.
    pub addr: SocketAddr,
}

/// What happened during [`ThreadPoolServer::run`], for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The signal that started the shutdown, if one did.
    pub signal: Option<Signal>,
    /// Connections workers took from the queue (and finished or cut).
    pub served: u64,
    /// Queued connections closed unserved at shutdown.
    pub dropped_unserved: usize,
    /// Connections cut because the drain timeout passed.
    pub cut: usize,
    /// Workers that had not exited when `run` returned (0 normally).
    pub workers_left_behind: usize,
}

/// A bound thread-pool server. [`ThreadPoolServer::bind`] opens the
/// listeners (so their addresses can be printed before serving);
/// [`ThreadPoolServer::run`] serves until shutdown.
pub struct ThreadPoolServer {
    listeners: Vec<Listener>,
    config: ThreadPoolConfig,
    shutdown: Shutdown,
    signals: Option<SignalFd>,
}

impl ThreadPoolServer {
    /// Ignores SIGPIPE, blocks SIGINT/SIGTERM into a signalfd (if
    /// `handle_signals`) and binds every listener. Call it before spawning
    /// other threads, so they inherit the blocked signal mask.
    pub fn bind(config: ThreadPoolConfig) -> Result<ThreadPoolServer, ServerError> {
        let signals = crate::listen::server_signals(config.handle_signals, false)?;
        let listeners = bind_listeners(&config.listeners)?;
        let shutdown = Shutdown::new().map_err(ServerError::setup("create the shutdown eventfd"))?;
        Ok(ThreadPoolServer { listeners, config, shutdown, signals })
    }

    /// The bound addresses, in the order of the configuration.
    pub fn listeners(&self) -> Vec<BoundListener> {
        bound(&self.listeners)
    }

    /// A handle that starts the orderly shutdown from any thread, like
    /// SIGTERM does.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Spawns the workers and runs the accept loop on the calling thread
    /// until shutdown, then drains and joins the workers. Returns `Ok` after
    /// an orderly shutdown, even when the drain timeout forced connections
    /// closed (the report says how many).
    pub fn run(mut self) -> Result<RunReport, ServerError> {
        let workers = self.config.workers.max(1);
        let shared = Arc::new(Shared {
            queue: TaskQueue::new(self.config.queue_capacity),
            room: Waker::new().map_err(ServerError::setup("create the accept loop's wake-up eventfd"))?,
            tracker: Tracker::new(workers),
            shutdown: self.shutdown.clone(),
        });
        let mut handles = Vec::with_capacity(workers);
        for id in 0..workers {
            match workers::spawn(id, &shared) {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    self.drain(&shared, handles, None);
                    return Err(ServerError::Setup { what: "spawn a worker thread", error });
                }
            }
        }
        tracing::info!(
            "thread pool: {workers} workers, queue of {}, drain timeout {}s",
            shared.queue.capacity(),
            self.config.drain_timeout.as_secs_f64()
        );

        let stopped = accept_loop(&self.listeners, &shared, self.signals.as_mut());
        let signal = match &stopped {
            Ok(Stop::Signal(signal)) => {
                tracing::info!("received {signal}; shutting down");
                Some(*signal)
            }
            Ok(Stop::Requested) => {
                tracing::info!("shutdown requested; shutting down");
                None
            }
            Err(e) => {
                tracing::error!("accept loop failed: {e}; shutting down");
                None
            }
        };
        let report = self.drain(&shared, handles, signal);
        stopped.map(|_| report)
    }

    /// The shutdown sequence after the accept loop ended.
    fn drain(&mut self, shared: &Arc<Shared>, handles: Vec<JoinHandle<()>>, signal: Option<Signal>) -> RunReport {
        self.listeners.clear();
        let unserved = shared.queue.close();
        let dropped_unserved = unserved.len();
        drop(unserved);
        if dropped_unserved > 0 {
            tracing::info!("closed {dropped_unserved} queued connection(s) that no worker had started");
        }
        self.shutdown.signal();

        let second = SecondSignal::watch(self.signals.take(), {
            let shared = Arc::clone(shared);
            move || shared.tracker.cut_all()
        });
        let mut left = shared.tracker.wait_for_workers(self.config.drain_timeout);
        let mut cut = second.finish();
        if left > 0 {
            cut += shared.tracker.cut_all();
            tracing::warn!(
                "drain timeout of {}s passed; cut {cut} connection(s) still in flight",
                self.config.drain_timeout.as_secs_f64()
            );
            left = shared.tracker.wait_for_workers(CUT_GRACE);
        }
        for handle in handles {
            // With no live worker left, each thread is past its last line of
            // work and joins at once; otherwise only join the finished ones.
            if left == 0 || handle.is_finished() {
                if handle.join().is_err() {
                    tracing::error!("a worker thread panicked");
                }
            } else {
                // Stuck in a syscall a socket shutdown cannot interrupt
                // (a hung disk); it dies with the process.
                tracing::warn!("leaving a worker thread behind that did not exit");
            }
        }
        RunReport { signal, served: shared.tracker.served(), dropped_unserved, cut, workers_left_behind: left }
    }
}
