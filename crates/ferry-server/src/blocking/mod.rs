//! Runs one [`Session`] over one [`Stream`] (TCP or Unix): the connection
//! core (`ferry_proto::conn`) decides, the pump (`pump.rs`) performs.
//!
//! Model-agnostic: the thread pool calls it from a worker; an iterative,
//! fork, thread-per-connection or prefork driver calls it the same way.
//! One call serves one connection from open to close on the calling thread.

mod io;
mod pump;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use ferry_proto::conn::CloseReason;
use ferry_proto::conn::ConnConfig;
/// Per-connection timeouts (the connection core's [`Timeouts`](ferry_proto::conn::Timeouts)).
pub use ferry_proto::conn::Timeouts as PumpConfig;
use ferry_proto::{Now, Session};

use crate::Shutdown;
use crate::net::{Peer, Stream};

/// Most unconsumed input bytes a connection holds (the core's cap).
pub const MAX_INPUT_BUFFER: usize = ferry_proto::conn::MAX_INPUT;

/// What one connection moved, for logs and tests.
#[derive(Debug)]
pub struct ConnStats {
    /// The peer, if the socket could still tell.
    pub peer: Option<Peer>,
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
    stream: impl Into<Stream>,
    session: &mut S,
    config: &PumpConfig,
    shutdown: &Shutdown,
) -> ConnStats {
    let config = Arc::new(ConnConfig { splice: true, ..ConnConfig::new(*config) });
    serve_connection_since(stream, session, &config, shutdown, Instant::now())
}

/// [`serve_connection`] for a connection accepted at `accepted` that then
/// waited (in a queue, for a worker): its timeouts count from the accept.
/// `config` is its listener's ([`crate::ListenerConfig::conn_config`]):
/// TLS, if any, is chosen there.
pub fn serve_connection_since<S: Session + ?Sized>(
    stream: impl Into<Stream>,
    session: &mut S,
    config: &Arc<ConnConfig>,
    shutdown: &Shutdown,
    accepted: Instant,
) -> ConnStats {
    let stream: Stream = stream.into();
    let started = accepted;
    let peer = stream.peer().ok();
    let shown = peer.map_or_else(|| "unknown peer".to_string(), |p| p.to_string());
    tracing::debug!("{shown}: connection opened");
    let (reason, bytes_in, bytes_out) = match stream.configure() {
        Ok(()) => {
            let opened = Now { mono: accepted, wall: SystemTime::now() };
            let mut pump = pump::Pump::new(&stream, session, Arc::clone(config), shutdown, opened);
            // Whatever the pump or the session logs names the peer.
            let reason = tracing::debug_span!("conn", peer = %shown).in_scope(|| pump.run());
            let stats = pump.stats();
            (reason, stats.bytes_in, stats.bytes_out)
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

/// True for a connection accepted at `accepted` that waited for a worker
/// longer than its idle timeout without sending anything: it is closed
/// unserved, so silent clients queued behind busy workers time out on
/// their own clock instead of each taking a worker for a full timeout.
/// A client that sent its request while it waited is still served.
pub(crate) fn went_stale(stream: &Stream, accepted: Instant, config: &PumpConfig) -> bool {
    if accepted.elapsed() < config.idle_timeout {
        return false;
    }
    let mut byte = [0u8; 1];
    let waiting = matches!(
        rustix::net::recv(stream, &mut byte, rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT),
        Ok((n, _)) if n > 0
    );
    !waiting
}
