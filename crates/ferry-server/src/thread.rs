//! The thread-per-connection model: the calling thread accepts and spawns
//! one thread per connection, at most `max_conns` at once. At the cap the
//! accept loop stops accepting, so the kernel's backlog holds new clients
//! until a connection ends (its [`InFlight`] entry wakes the loop). Every
//! thread is joined, finished ones as the server goes and the rest after
//! the drain.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::accept::{Cap, accept_until_stop};
use crate::drain::{drain, join_threads};
use crate::in_flight::{Entry, InFlight};
use crate::listen::{Accepted, Base, Listener};
use crate::{Report, ServerError, Shutdown, serve_connection_since};

/// Accepts and spawns a thread per connection until shutdown, then drains.
pub(crate) fn run(mut base: Base, max_conns: usize, drain_timeout: Duration) -> Result<Report, ServerError> {
    let in_flight = InFlight::new().map_err(ServerError::setup("create the in-flight wake-up eventfd"))?;
    tracing::info!(
        "thread per connection: at most {max_conns} at once, drain timeout {}s",
        drain_timeout.as_secs_f64()
    );
    let mut handles = Vec::new();
    let (mut accepted, mut dropped_unserved) = (0, 0);
    let left = || max_conns.saturating_sub(in_flight.count());
    let cap = Cap { room: in_flight.room(), left: &left, queued: &|| 0 };
    let signals = base.signals.as_mut();
    let stopped = accept_until_stop(&base.listeners, &base.shutdown, signals, Some(cap), None, |l, conn| {
        accepted += 1;
        join_finished(&mut handles);
        match in_flight.enter(&conn.stream).and_then(|entry| spawn(l, conn, entry, &base.shutdown)) {
            Some(handle) => handles.push(handle),
            None => dropped_unserved += 1,
        }
    });
    let signal = base.begin_shutdown(&stopped, || {});
    let outcome = drain(base.stop_signals(), &in_flight, drain_timeout);
    let left_behind = join_threads(handles, outcome.left, "a connection thread");
    stopped.map(|_| Report { signal, accepted, dropped_unserved, cut: outcome.cut, left_behind })
}

/// Joins the threads whose connections ended.
fn join_finished(handles: &mut Vec<JoinHandle<()>>) {
    let (finished, running): (Vec<_>, Vec<_>) = std::mem::take(handles).into_iter().partition(|h| h.is_finished());
    *handles = running;
    for handle in finished {
        if handle.join().is_err() {
            tracing::error!("a connection thread panicked");
        }
    }
}

/// Starts the thread serving `stream`; on failure the connection (and its
/// entry) is dropped.
fn spawn(listener: &Listener, conn: Accepted, entry: Entry, shutdown: &Shutdown) -> Option<JoinHandle<()>> {
    let service = Arc::clone(&listener.service);
    let conn_config = Arc::clone(&listener.conn);
    let shutdown = shutdown.clone();
    let spawned = std::thread::Builder::new().name(format!("ferry-conn-{}", entry.id())).spawn(move || {
        // Ends the entry however the thread ends.
        let _entry = entry;
        let mut session = service.new_session(Some(conn.peer));
        serve_connection_since(conn.stream, &mut *session, &conn_config, &shutdown, conn.at);
    });
    spawned.map_err(|e| tracing::warn!("cannot spawn a connection thread: {e}; dropping the connection")).ok()
}
