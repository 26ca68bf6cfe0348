//! Errors that stop a server (as opposed to ending one connection, which
//! is only logged).
//!
//! Each message carries its cause already (`cannot listen on ADDR: Address
//! already in use`), so the cause is not also exposed as `source()`, which
//! would print it twice in an error chain.

use ferry_reactor::ListenAddr;
use std::io;

/// Why a server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding or listening on an address failed.
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address asked for.
        addr: ListenAddr,
        /// What the kernel said.
        error: io::Error,
    },
    /// Setting up or running the server's own machinery failed (signal
    /// handling, eventfds, threads, polling).
    #[error("cannot {what}: {error}")]
    Setup {
        /// What was being done, as a verb phrase ("spawn worker thread").
        what: &'static str,
        /// The underlying error.
        error: io::Error,
    },
}

impl ServerError {
    pub(crate) fn setup(what: &'static str) -> impl FnOnce(io::Error) -> ServerError {
        move |error| ServerError::Setup { what, error }
    }
}
