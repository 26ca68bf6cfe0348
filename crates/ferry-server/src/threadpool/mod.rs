//! The thread-pool model: one accept loop (the thread that calls
//! [`ThreadPoolServer::run`]) feeds a bounded [`TaskQueue`] that N worker
//! threads drain, each serving one connection at a time with the blocking
//! pump ([`crate::serve_connection`]). A connection is queued only once
//! its first request is complete: until then it waits in the accept
//! loop's gate (`crate::gate`), so a slow sender never holds a worker
//! while it sends its first request.
//!
//! Back-pressure: while the queue is full the accept loop stops accepting
//! and the kernel's backlog holds new connections; a worker taking a task
//! wakes the loop again.
//!
//! Shutdown (SIGINT, SIGTERM or [`Shutdown::signal`]): stop accepting, close
//! the listeners, close the connections still sending their first request
//! and the queued ones nobody started serving, signal
//! the workers, then the drain every thread model shares: in-flight
//! transfers finish for at most the drain timeout, what is left is cut,
//! and the workers are joined.

mod workers;

use std::sync::Arc;
use std::time::Duration;

use self::workers::{Conn, Shared};
use crate::accept::{Cap, accept_until_stop};
use crate::drain::{drain, join_threads};
use crate::gate::{Gate, WAITING_LIMIT};
use crate::in_flight::InFlight;
use crate::listen::{Accepted, Base, Listener};
use crate::task_queue::{PushError, TaskQueue};
use crate::{
    BlockingConfig, BlockingModel, BlockingServer, BoundListener, ListenerConfig, Report, ServerError, Shutdown,
};

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

/// A bound thread-pool server: a [`BlockingServer`] running
/// [`BlockingModel::ThreadPool`], kept as its own type for the thread
/// pool's configuration. [`ThreadPoolServer::bind`] opens the listeners (so
/// their addresses can be printed before serving); [`ThreadPoolServer::run`]
/// serves until shutdown.
pub struct ThreadPoolServer(BlockingServer);

impl ThreadPoolServer {
    /// Ignores SIGPIPE, blocks SIGINT/SIGTERM into a signalfd (if
    /// `handle_signals`) and binds every listener. Call it before spawning
    /// other threads, so they inherit the blocked signal mask.
    pub fn bind(config: ThreadPoolConfig) -> Result<ThreadPoolServer, ServerError> {
        let model = BlockingModel::ThreadPool { workers: config.workers, queue_capacity: config.queue_capacity };
        let ThreadPoolConfig { listeners, drain_timeout, handle_signals, .. } = config;
        BlockingServer::bind(BlockingConfig { listeners, model, drain_timeout, handle_signals }).map(ThreadPoolServer)
    }

    /// The bound addresses, in the order of the configuration.
    pub fn listeners(&self) -> Vec<BoundListener> {
        self.0.listeners()
    }

    /// A handle that starts the orderly shutdown from any thread, like
    /// SIGTERM does.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.0.shutdown_handle()
    }

    /// Spawns the workers and runs the accept loop on the calling thread
    /// until shutdown, then drains and joins the workers. Returns `Ok` after
    /// an orderly shutdown, even when the drain timeout forced connections
    /// closed (the report says how many).
    pub fn run(self) -> Result<Report, ServerError> {
        self.0.run()
    }
}

/// Runs the thread pool on `base` until shutdown, then drains.
pub(crate) fn run(
    mut base: Base,
    workers: usize,
    queue_capacity: usize,
    drain_timeout: Duration,
) -> Result<Report, ServerError> {
    let workers = workers.max(1);
    let shared = Arc::new(Shared {
        queue: TaskQueue::new(queue_capacity.max(1)),
        in_flight: InFlight::new().map_err(ServerError::setup("create the accept loop's wake-up eventfd"))?,
        shutdown: base.shutdown.clone(),
    });
    let mut handles = Vec::with_capacity(workers);
    for id in 0..workers {
        match workers::spawn(id, &shared) {
            Ok(handle) => handles.push(handle),
            Err(error) => {
                // The workers started so far are idle: they exit as the
                // queue closes.
                shared.queue.close();
                base.shutdown.signal();
                join_threads(handles, 0, "a worker thread");
                return Err(ServerError::Setup { what: "spawn a worker thread", error });
            }
        }
    }
    crate::observe::pool_size(workers);
    tracing::info!(
        "thread pool: {workers} workers, queue of {}, drain timeout {}s",
        shared.queue.capacity(),
        drain_timeout.as_secs_f64()
    );

    let mut gate = Gate::new(&base.listeners, WAITING_LIMIT)
        .map_err(ServerError::setup("create the poller for connections waiting for their first request"))?;
    let mut accepted = 0;
    let mut dropped_unserved = 0;
    let left = || shared.queue.capacity().saturating_sub(shared.queue.len());
    let queued = || shared.queue.len();
    let cap = Cap { room: shared.in_flight.room(), left: &left, queued: &queued };
    let signals = base.signals.as_mut();
    let stopped = accept_until_stop(&base.listeners, &base.shutdown, signals, Some(cap), Some(&mut gate), |l, conn| {
        accepted += 1;
        if !push(&shared, l, conn) {
            dropped_unserved += 1;
        }
    });
    let signal = base.begin_shutdown(&stopped, || {
        let waiting = gate.close_all();
        if waiting > 0 {
            tracing::info!("closed {waiting} connection(s) still sending their first request");
        }
        let unserved = shared.queue.close().len();
        if unserved > 0 {
            tracing::info!("closed {unserved} queued connection(s) that no worker had started");
        }
        dropped_unserved += unserved;
    });
    // Every connection accepted reached `push` or was closed by the gate.
    let accepted = accepted + gate.closed() as u64;
    dropped_unserved += gate.closed();
    let outcome = drain(base.stop_signals(), &shared.in_flight, drain_timeout);
    let left_behind = join_threads(handles, outcome.left, "a worker thread");
    stopped.map(|_| Report { signal, accepted, dropped_unserved, cut: outcome.cut, left_behind })
}

/// Queues an accepted connection for a worker; false if it was dropped.
fn push(shared: &Shared, listener: &Listener, conn: Accepted) -> bool {
    let Accepted { stream, peer, at: accepted } = conn;
    let Some(entry) = shared.in_flight.enter(&stream) else { return false };
    let conn = Conn {
        stream,
        peer,
        service: Arc::clone(&listener.service),
        pump: listener.pump,
        conn: Arc::clone(&listener.conn),
        entry,
        accepted,
    };
    match shared.queue.try_push(conn) {
        Ok(()) => {
            crate::observe::pool_queued(shared.queue.len());
            true
        }
        // Only the accept loop pushes, and it checked for room.
        Err(PushError::Full(conn)) => {
            tracing::warn!("{}: task queue full; dropping connection", conn.peer);
            false
        }
        Err(PushError::Closed(_)) => false,
    }
}

#[cfg(test)]
mod tests;
