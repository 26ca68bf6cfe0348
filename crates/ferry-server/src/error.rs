//! Errors that stop a server (as opposed to ending one connection, which
//! is only logged).

use std::io;
use std::net::SocketAddr;

/// Why a server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding or listening on an address failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// What the kernel said.
        source: io::Error,
    },
    /// Setting up or running the server's own machinery failed (signal
    /// handling, eventfds, threads, polling).
    #[error("cannot {what}: {source}")]
    Setup {
        /// What was being done, as a verb phrase ("spawn worker thread").
        what: &'static str,
        /// The underlying error.
        source: io::Error,
    },
}

impl ServerError {
    pub(crate) fn setup(what: &'static str) -> impl FnOnce(io::Error) -> ServerError {
        move |source| ServerError::Setup { what, source }
    }
}
