//! What the connections of a reactor server share: server-wide counters
//! and drain (one [`ServerShared`]) and, per listener, its service and
//! timeouts ([`ListenerShared`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use ferry_reactor::LoopHandle;

use super::jobs::JobPool;
use ferry_proto::conn::ConnConfig;

use crate::Service;

/// What every connection of the server counts on (one per server).
pub(crate) struct ServerShared {
    /// Connections open across all loops.
    pub(crate) live: AtomicUsize,
    /// The server is draining: the last connection to close wakes `main`.
    pub(crate) draining: AtomicBool,
    /// The main loop, once it runs.
    pub(crate) main: OnceLock<LoopHandle>,
    /// Where sessions' blocking jobs run.
    pub(crate) jobs: JobPool,
}

impl ServerShared {
    /// Starts the drain: from now on the last connection to close quits
    /// the main loop.
    pub(crate) fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Connections open now.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

/// What every connection of one listener shares.
pub(crate) struct ListenerShared {
    /// The service each connection gets a fresh session of.
    pub(crate) service: Arc<Service>,
    /// The listener's connection settings (its timeouts).
    pub(crate) conn_config: Arc<ConnConfig>,
    /// The server's counters, drain and jobs.
    pub(crate) server: Arc<ServerShared>,
}
