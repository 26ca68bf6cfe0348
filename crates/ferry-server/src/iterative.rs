//! The iterative model: one connection at a time, start to finish, on the
//! calling thread. The next client waits in the kernel's listen backlog
//! until the current one leaves: the model every other one improves on.
//!
//! A small watcher thread turns SIGINT/SIGTERM into the shutdown flag (the
//! serving thread is blocked inside a connection and cannot poll the
//! signalfd) and, once shutdown begins, cuts the connection still being
//! served when the drain timeout passes.

use std::net::{Shutdown as How, TcpStream};
use std::os::fd::AsFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferry_reactor::sys::signals::SignalFd;
use nix::sys::signal::Signal;

use crate::listen::{Base, accept_one, log_stop, poll_readable};
use crate::second_signal::SecondSignal;
use crate::threadpool::RunReport;
use crate::{ServerError, Shutdown, serve_connection};

/// A second handle on the connection being served, for the watcher to cut.
type Current = Arc<Mutex<Option<TcpStream>>>;

/// Serves connections one at a time until shutdown.
pub(crate) fn run(mut base: Base, drain_timeout: Duration) -> Result<RunReport, ServerError> {
    let current: Current = Arc::new(Mutex::new(None));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watcher = {
        let signals = base.signals.take();
        let shutdown = base.shutdown.clone();
        let current = Arc::clone(&current);
        std::thread::Builder::new()
            .name("ferry-signals".into())
            .spawn(move || watch(signals, &shutdown, &current, &done_rx, drain_timeout))
            .map_err(ServerError::setup("spawn the signal watcher thread"))?
    };
    tracing::info!("iterative: one connection at a time");

    let mut served = 0;
    let result = serve_until_shutdown(&base, &current, &mut served);
    base.listeners.clear();
    base.shutdown.signal();
    let _ = done_tx.send(());
    let (signal, cut) = watcher.join().unwrap_or_else(|_| {
        tracing::error!("the signal watcher thread panicked");
        (None, 0)
    });
    result.map(|()| RunReport { signal, served, dropped_unserved: 0, cut, workers_left_behind: 0 })
}

fn serve_until_shutdown(base: &Base, current: &Current, served: &mut u64) -> Result<(), ServerError> {
    loop {
        let mut fds = vec![base.shutdown.as_fd()];
        fds.extend(base.listeners.iter().map(|l| l.socket.as_fd()));
        let ready = poll_readable(&fds, None)?;
        if ready[0] || base.shutdown.is_signalled() {
            return Ok(());
        }
        for (listener, _) in base.listeners.iter().zip(&ready[1..]).filter(|(_, r)| **r) {
            // Shutdown may have begun while the previous one was served.
            if base.shutdown.is_signalled() {
                return Ok(());
            }
            let Some((stream, peer)) = accept_one(listener) else { continue };
            *lock(current) = stream.try_clone().ok();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let mut session = listener.service.new_session();
                serve_connection(stream, &mut *session, &listener.pump, &base.shutdown);
            }));
            if outcome.is_err() {
                // A bug in a session must not take the server down.
                tracing::error!("{} session for {peer} panicked; connection dropped", listener.service.name());
            }
            *lock(current) = None;
            *served += 1;
        }
    }
}

/// The watcher thread: waits for a signal or a shutdown request, raises
/// the flag, then gives the connection in flight the drain timeout before
/// cutting it. Returns the signal (if one started it) and how many
/// connections it cut.
fn watch(
    mut signals: Option<SignalFd>,
    shutdown: &Shutdown,
    current: &Current,
    done: &mpsc::Receiver<()>,
    drain_timeout: Duration,
) -> (Option<Signal>, usize) {
    let mut signal = None;
    while signal.is_none() && !shutdown.is_signalled() {
        let mut fds = vec![shutdown.as_fd()];
        fds.extend(signals.as_ref().map(|s| s.as_fd()));
        match poll_readable(&fds, None) {
            Ok(_) => {}
            Err(e) => {
                tracing::error!("{e}; shutting down");
                break;
            }
        }
        if let Some(s) = signals.as_mut() {
            match s.read() {
                Ok(got) => signal = got,
                Err(e) => {
                    tracing::error!("cannot read the signalfd: {e}; shutting down");
                    break;
                }
            }
        }
    }
    log_stop(signal);
    shutdown.signal();
    let second = SecondSignal::watch(signals.take(), {
        let current = Arc::clone(current);
        move || usize::from(cut_current(&current))
    });
    let waited = done.recv_timeout(drain_timeout);
    let mut cut = second.finish();
    if let Err(RecvTimeoutError::Timeout) = waited {
        if cut_current(current) {
            cut += 1;
            tracing::warn!(
                "drain timeout of {}s passed; cut the connection still in flight",
                drain_timeout.as_secs_f64()
            );
        }
        let _ = done.recv();
    }
    (signal, cut)
}

/// Shuts down the connection being served, if any; true if there was one.
fn cut_current(current: &Current) -> bool {
    lock(current).as_ref().is_some_and(|s| s.shutdown(How::Both).is_ok())
}

fn lock(current: &Current) -> std::sync::MutexGuard<'_, Option<TcpStream>> {
    // Only assignments happen under this lock; it cannot be left half-done.
    current.lock().unwrap_or_else(PoisonError::into_inner)
}
