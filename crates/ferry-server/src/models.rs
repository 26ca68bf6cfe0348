//! One front door for the classic blocking models (iterative, fork,
//! thread per connection, prefork process pool): bind, print the
//! addresses, maybe detach, run. Each model lives in its own module; this
//! file only picks one.

use std::time::Duration;

use crate::listen::{Base, bound};
use crate::{
    BoundListener, ListenerConfig, Report, ServerError, Shutdown, UdpEcho, fork, iterative, prefork, thread, threadpool,
};

/// Which blocking model runs the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockingModel {
    /// One connection at a time on the calling thread.
    Iterative,
    /// A child process per connection, at most `max_conns` at once; beyond
    /// that the parent stops accepting until a child exits. Forks, so the
    /// process must have a single thread (checked: each fork is refused
    /// otherwise).
    Fork {
        /// Most child processes alive at once (at least 1).
        max_conns: usize,
    },
    /// A thread per connection, at most `max_conns` at once; beyond that
    /// the server stops accepting and the kernel's backlog holds clients.
    Thread {
        /// Most connections served at once (at least 1).
        max_conns: usize,
    },
    /// An accept loop feeding a bounded task queue (mutex + condvar) that
    /// `workers` threads drain, each serving one connection at a time; at
    /// `queue_capacity` waiting connections the server stops accepting.
    ThreadPool {
        /// Worker threads (at least 1).
        workers: usize,
        /// Accepted connections that may wait for a free worker (at least 1).
        queue_capacity: usize,
    },
    /// A pool of `workers` processes fed accepted connections over
    /// socketpairs (SCM_RIGHTS); up to `queue_capacity` accepted
    /// connections wait while every worker is busy. Forks, so the process
    /// must have a single thread (checked: `run` fails otherwise).
    Prefork {
        /// Worker processes (at least 1).
        workers: usize,
        /// Accepted connections that may wait for a free worker (at least 1).
        queue_capacity: usize,
    },
}

impl BlockingModel {
    /// The model's name as `ferry serve --model` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            BlockingModel::Iterative => "iterative",
            BlockingModel::Fork { .. } => "fork",
            BlockingModel::Thread { .. } => "thread",
            BlockingModel::ThreadPool { .. } => "threadpool",
            BlockingModel::Prefork { .. } => "prefork",
        }
    }
}

/// Settings of a [`BlockingServer`].
#[derive(Debug, Clone)]
pub struct BlockingConfig {
    /// The addresses to listen on, each with its service.
    pub listeners: Vec<ListenerConfig>,
    /// The model.
    pub model: BlockingModel,
    /// How long in-flight transfers may take to finish after shutdown
    /// begins before their connections are cut (or their processes killed).
    pub drain_timeout: Duration,
    /// Turn SIGINT and SIGTERM into an orderly shutdown.
    pub handle_signals: bool,
}

/// A bound server running one of the blocking models. Like
/// [`crate::ThreadPoolServer`]: [`BlockingServer::bind`] opens the
/// listeners and spawns nothing (a daemon can still fork afterwards);
/// [`BlockingServer::run`] serves until shutdown.
pub struct BlockingServer {
    base: Base,
    config: BlockingConfig,
    /// The datagram echo service, served beside the model.
    udp_echo: Option<UdpEcho>,
}

impl BlockingServer {
    /// Ignores SIGPIPE, blocks the handled signals into a signalfd (SIGCHLD
    /// too for the process models) and binds every listener. Call it
    /// before spawning threads, so they inherit the signal mask.
    pub fn bind(config: BlockingConfig) -> Result<BlockingServer, ServerError> {
        let forks = matches!(config.model, BlockingModel::Fork { .. } | BlockingModel::Prefork { .. });
        let base = Base::bind(&config.listeners, config.handle_signals, forks)?;
        Ok(BlockingServer { base, config, udp_echo: None })
    }

    /// Also serves the datagram echo service, from an event loop of its own
    /// beside the model (see [`crate::udp_echo`]); it stops with the rest.
    pub fn with_udp_echo(mut self, echo: UdpEcho) -> BlockingServer {
        self.udp_echo = Some(echo);
        self
    }

    /// The bound addresses, in the order of the configuration.
    pub fn listeners(&self) -> Vec<BoundListener> {
        bound(&self.base.listeners)
    }

    /// A handle that starts the orderly shutdown, like SIGTERM does.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.base.shutdown.clone()
    }

    /// Serves until SIGINT, SIGTERM or [`Shutdown::signal`], then lets
    /// in-flight transfers finish (bounded by the drain timeout), cuts the
    /// rest, waits for every thread or child process, and returns.
    pub fn run(self) -> Result<Report, ServerError> {
        let BlockingServer { mut base, config, udp_echo } = self;
        let drain = config.drain_timeout;
        let forks = matches!(config.model, BlockingModel::Fork { .. } | BlockingModel::Prefork { .. });
        let shutdown = base.shutdown.clone();
        let beside = match udp_echo {
            Some(echo) => Some(echo.start_beside(forks, &shutdown, || base.forget_in_child())?),
            None => None,
        };
        let report = match config.model {
            BlockingModel::Iterative => iterative::run(base, drain),
            BlockingModel::Fork { max_conns } => fork::run(base, max_conns.max(1), drain),
            BlockingModel::Thread { max_conns } => thread::run(base, max_conns.max(1), drain),
            BlockingModel::ThreadPool { workers, queue_capacity } => {
                threadpool::run(base, workers, queue_capacity, drain)
            }
            BlockingModel::Prefork { workers, queue_capacity } => {
                prefork::run(base, workers.max(1), queue_capacity.max(1), drain)
            }
        };
        // Every model raises it as it stops accepting; raised again in case
        // it failed before that.
        shutdown.signal();
        if let Some(beside) = beside {
            beside.finish();
        }
        report
    }
}
