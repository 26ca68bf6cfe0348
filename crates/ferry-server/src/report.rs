//! What every model's `run` hands back: the bound addresses before serving
//! and one report after, so the CLI and the tests read every model the
//! same way.

use ferry_reactor::ListenAddr;

use nix::sys::signal::Signal;

/// A listener as bound: the real address (port 0 resolved), so it can be
/// announced before serving starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundListener {
    /// The service's name ("files", "echo").
    pub service: &'static str,
    /// The address the socket is bound to.
    pub addr: ListenAddr,
}

/// What happened during a server's `run`, for the last log line and for
/// tests. Every model fills in every field (0 where the model has no such
/// thing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The SIGINT/SIGTERM that started the shutdown; `None` when
    /// [`crate::Shutdown::signal`] did (or the server failed).
    pub signal: Option<Signal>,
    /// Connections accepted from the listeners, served or not.
    pub accepted: u64,
    /// Accepted connections closed without being served: still queued
    /// for a worker at shutdown (threadpool, prefork), closed while they
    /// waited for their first request (the client left, its deadline
    /// passed, shutdown came: threadpool, prefork), or dropped because no
    /// thread or process could be started for them.
    pub dropped_unserved: usize,
    /// Connections cut (for the process models: child processes killed)
    /// because the drain timeout passed or a second SIGINT/SIGTERM came.
    pub cut: usize,
    /// Threads still running when `run` returned: stuck where a socket
    /// shutdown cannot reach (a hung disk); they die with the process.
    /// 0 normally, and always for the process and reactor models.
    pub left_behind: usize,
}

impl Report {
    /// Connections handed to something that served them (a thread, a
    /// worker, a child process, an event loop), whether they finished or
    /// were cut.
    pub fn served(&self) -> u64 {
        self.accepted.saturating_sub(self.dropped_unserved as u64)
    }
}
