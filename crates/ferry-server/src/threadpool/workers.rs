//! The worker threads: each takes accepted connections from the queue and
//! serves them one at a time until the queue is closed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use ferry_proto::http::FileCache;

use crate::blocking::{PumpConfig, serve_connection_since, went_stale};
use crate::in_flight::{Entry, InFlight};
use crate::net::{Peer, Stream};
use crate::task_queue::TaskQueue;
use crate::{Service, Shutdown};

/// An accepted connection waiting in the queue for a worker. It is in
/// flight from the moment it is accepted: its entry leaves the list when
/// it is served, or when the queue is dropped unserved at shutdown.
pub(super) struct Conn {
    pub(super) stream: Stream,
    pub(super) peer: Peer,
    pub(super) service: Arc<Service>,
    pub(super) pump: PumpConfig,
    /// Its listener's connection settings (TLS).
    pub(super) conn: Arc<ferry_proto::conn::ConnConfig>,
    pub(super) entry: Entry,
    /// When it was accepted: its timeouts count from here, not from when a
    /// worker takes it.
    pub(super) accepted: Instant,
}

/// Everything the accept loop and the workers share.
pub(super) struct Shared {
    pub(super) queue: TaskQueue<Conn>,
    /// The accepted connections; its room eventfd is also woken each time
    /// a worker takes a task, so an accept loop that stopped accepting on a
    /// full queue resumes.
    pub(super) in_flight: Arc<InFlight>,
    pub(super) shutdown: Shutdown,
}

/// Starts worker `id`, which serves queued connections one at a time until
/// the queue is closed.
pub(super) fn spawn(id: usize, shared: &Arc<Shared>) -> std::io::Result<JoinHandle<()>> {
    let shared = Arc::clone(shared);
    thread::Builder::new().name(format!("ferry-worker-{id}")).spawn(move || {
        // The sessions this worker serves share its open-file cache.
        let cache = FileCache::new();
        while let Some(conn) = shared.queue.pop() {
            if let Err(e) = shared.in_flight.room().wake() {
                tracing::error!("worker {id}: cannot wake the accept loop: {e}");
            }
            crate::observe::pool_worker(true, shared.queue.len());
            serve_one(id, &shared, conn, &cache);
            crate::observe::pool_worker(false, shared.queue.len());
        }
    })
}

fn serve_one(id: usize, shared: &Shared, conn: Conn, cache: &FileCache) {
    let Conn { stream, peer, service, pump, conn, entry, accepted } = conn;
    if went_stale(&stream, accepted, &pump) {
        tracing::info!("{peer}: waited in the queue past its idle timeout without a word; closed unserved");
        return;
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut session = service.new_session_in(cache, Some(peer));
        serve_connection_since(stream, &mut *session, &conn, &shared.shutdown, accepted);
    }));
    if outcome.is_err() {
        // A bug in a session must not shrink the pool; the socket was
        // dropped while unwinding.
        tracing::error!("worker {id}: {} session for {peer} panicked; connection dropped", service.name());
    }
    drop(entry);
}
