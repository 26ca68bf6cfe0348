//! Runs one [`Session`] over one blocking `TcpStream`, following the
//! driver contract of `ferry_proto::session`.
//!
//! Model-agnostic: the thread pool calls it from a worker; an iterative,
//! fork, thread-per-connection or prefork driver calls it the same way.
//! One call serves one connection from open to close on the calling thread.

mod close;
mod input;
mod io;
mod pump;

use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ferry_proto::Session;

use crate::Shutdown;

/// Most unconsumed input bytes the pump holds per connection, and the
/// largest single read. Sessions consume or reject lines long before this
/// (the file protocol's limit is 4 KiB).
pub const MAX_INPUT_BUFFER: usize = 64 * 1024;

/// Per-connection limits of the blocking pump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PumpConfig {
    /// How long a connection may wait for the peer's next bytes (between
    /// requests, or in the middle of an upload) and how long one send may
    /// block on a peer that does not read, before the connection is closed.
    pub idle_timeout: Duration,
    /// How long the rest of a request may take once it has begun to arrive
    /// (the session's [`Session::in_request`]): HTTP's header-read timeout,
    /// against slowloris clients. Sessions that never report being inside
    /// a request only see `idle_timeout`.
    pub request_timeout: Duration,
}

impl PumpConfig {
    /// The same timeout between requests and within one.
    pub fn with_idle(idle_timeout: Duration) -> PumpConfig {
        PumpConfig { idle_timeout, request_timeout: idle_timeout }
    }
}

impl Default for PumpConfig {
    fn default() -> PumpConfig {
        PumpConfig::with_idle(Duration::from_secs(300))
    }
}

/// Why a connection ended.
#[derive(Debug)]
pub enum CloseReason {
    /// The session asked to close (`quit`, a fatal protocol error).
    SessionClosed,
    /// The peer closed its side.
    PeerClosed,
    /// Nothing arrived for the idle timeout.
    IdleTimeout,
    /// The server is shutting down and the connection had nothing in flight.
    Shutdown,
    /// A socket or file error (reset by peer, send timeout, file shrank...).
    Error(std::io::Error),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::SessionClosed => f.write_str("closed by the session"),
            CloseReason::PeerClosed => f.write_str("closed by the peer"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::Shutdown => f.write_str("server shutting down"),
            CloseReason::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// What one connection moved, for logs and tests.
#[derive(Debug)]
pub struct ConnStats {
    /// The peer, if the socket could still tell.
    pub peer: Option<SocketAddr>,
    /// Bytes received (requests and upload payloads).
    pub bytes_in: u64,
    /// Bytes sent (answers and file contents).
    pub bytes_out: u64,
    /// From the start of [`serve_connection`] to the close.
    pub duration: Duration,
    /// Why it ended.
    pub reason: CloseReason,
}

/// Serves `stream` with `session` until either side closes, the idle
/// timeout passes, or `shutdown` is signalled while nothing is in flight.
/// Closes the socket before returning. Never panics on peer or disk errors;
/// they end the connection and show up in [`ConnStats::reason`].
///
/// On shutdown, what is in flight finishes first: queued output (including
/// a file being sent) and an upload being received. A connection waiting
/// for its next request closes at once.
pub fn serve_connection<S: Session + ?Sized>(
    stream: TcpStream,
    session: &mut S,
    config: &PumpConfig,
    shutdown: &Shutdown,
) -> ConnStats {
    let started = Instant::now();
    let peer = stream.peer_addr().ok();
    let shown = peer.map_or_else(|| "unknown peer".to_string(), |p| p.to_string());
    tracing::debug!("{shown}: connection opened");
    let (reason, bytes_in, bytes_out) = match pump::configure(&stream) {
        Ok(()) => {
            let mut pump = pump::Pump::new(&stream, session, config, shutdown);
            // Whatever the pump or the session logs names the peer.
            let reason = tracing::debug_span!("conn", peer = %shown).in_scope(|| pump.run());
            let unread = pump.has_unread_input();
            if matches!(reason, CloseReason::SessionClosed | CloseReason::IdleTimeout) {
                close::lingering_close(&stream, unread);
            }
            (reason, pump.bytes_in(), pump.bytes_out())
        }
        Err(e) => (CloseReason::Error(e), 0, 0),
    };
    drop(stream);
    let stats = ConnStats { peer, bytes_in, bytes_out, duration: started.elapsed(), reason };
    tracing::info!(
        "{shown}: connection closed ({}): {} bytes in, {} bytes out, {:.3}s",
        stats.reason,
        stats.bytes_in,
        stats.bytes_out,
        stats.duration.as_secs_f64()
    );
    stats
}
