//! The iterative model: one connection at a time, start to finish, on the
//! calling thread. The next client waits in the kernel's listen backlog
//! until the current one leaves: the model every other one improves on.
//!
//! The serving thread is blocked inside a connection and cannot poll the
//! signalfd, so one watcher thread does: it waits for SIGINT/SIGTERM (or a
//! shutdown request), raises the shutdown flag, stops the listeners (new
//! clients are refused, as in every model once its drain begins, instead
//! of waiting in the backlog for a server that will not answer them), and
//! runs the drain that every thread model shares (second signal and drain
//! timeout included) on the connection being served.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use ferry_proto::http::FileCache;
use ferry_reactor::sys::signals::SignalFd;
use nix::sys::signal::Signal;

use crate::accept::accept_until_stop;
use crate::drain::{DrainOutcome, StopSignals, drain};
use crate::in_flight::InFlight;
use crate::listen::{Base, ListenStop, log_stopped};
use crate::{Report, ServerError, Shutdown, serve_connection_since};

/// Serves connections one at a time until shutdown.
pub(crate) fn run(mut base: Base, drain_timeout: Duration) -> Result<Report, ServerError> {
    let in_flight = InFlight::new().map_err(ServerError::setup("create the in-flight wake-up eventfd"))?;
    let listeners = Arc::new(std::mem::take(&mut base.listeners));
    let watcher = {
        let listeners = ListenStop(Arc::clone(&listeners));
        let signals = base.signals.take();
        let shutdown = base.shutdown.clone();
        let in_flight = Arc::clone(&in_flight);
        std::thread::Builder::new()
            .name("ferry-signals".into())
            .spawn(move || watch(signals, &shutdown, listeners, &in_flight, drain_timeout))
            .map_err(ServerError::setup("spawn the signal watcher thread"))?
    };
    tracing::info!("iterative: one connection at a time");

    let (mut accepted, mut dropped_unserved) = (0, 0);
    // Every session of this one serving thread shares its open-file cache.
    let cache = FileCache::new();
    let served = accept_until_stop(&listeners, &base.shutdown, None, None, None, |listener, conn| {
        accepted += 1;
        // Refused once the drain began: it would not wait for this one.
        let Some(_entry) = in_flight.enter(&conn.stream) else {
            dropped_unserved += 1;
            return;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut session = listener.service.new_session_in(&cache, Some(conn.peer));
            serve_connection_since(conn.stream, &mut *session, &listener.conn, &base.shutdown, conn.at);
        }));
        if outcome.is_err() {
            // A bug in a session must not take the server down.
            tracing::error!("{} session for {} panicked; connection dropped", listener.service.name(), conn.peer);
        }
    });
    // (The watcher stops them too, once it has seen the stop.)
    drop(listeners);
    // Also ends the watcher's wait when serving failed.
    base.shutdown.signal();
    let (signal, outcome) = watcher.join().unwrap_or_else(|_| {
        tracing::error!("the signal watcher thread panicked");
        (None, DrainOutcome { cut: 0, left: 0, again: None })
    });
    served.map(|_| Report {
        signal,
        accepted,
        dropped_unserved,
        cut: outcome.cut,
        // This thread served the last connection itself, so it has ended.
        left_behind: 0,
    })
}

/// The watcher thread: waits for the stop, logs it, raises the flag,
/// stops `listeners`, and drains. Returns the signal (if one started it)
/// and how the drain went.
fn watch(
    mut signals: Option<SignalFd>,
    shutdown: &Shutdown,
    listeners: ListenStop,
    in_flight: &InFlight,
    drain_timeout: Duration,
) -> (Option<Signal>, DrainOutcome) {
    let stopped = accept_until_stop(&[], shutdown, signals.as_mut(), None, None, |_, _| {});
    let signal = log_stopped(&stopped);
    // The flag first: a serving thread between connections leaves its
    // accept loop instead of trying a socket that no longer listens.
    shutdown.signal();
    listeners.now();
    let outcome = drain(signals.as_mut().map(|s| s as &mut dyn StopSignals), in_flight, drain_timeout);
    (signal, outcome)
}
