//! "Press Ctrl-C again to stop now": while a server drains after the first
//! SIGINT/SIGTERM, a second one cuts the connections still in flight instead
//! of waiting out the drain timeout (30 s by default).
//!
//! The fork and prefork parents and the reactor's main loop already wait on
//! the signalfd while they drain and handle the second signal there. The
//! iterative, thread and thread-pool models wait for their connections on
//! condvars and channels, which cannot watch a descriptor, so this small
//! thread watches the signalfd for them and runs their "cut everything"
//! step; the connections then end, and the drain wait returns.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::JoinHandle;

use ferry_reactor::Waker;
use ferry_reactor::sys::signals::SignalFd;
use nix::sys::signal::Signal;

use crate::listen::poll_readable;

/// A running watch for the second stop signal; [`SecondSignal::finish`]
/// ends it.
pub(crate) struct SecondSignal {
    /// The wake-up that ends the watch, and the watching thread.
    running: Option<(Arc<Waker>, JoinHandle<usize>)>,
}

impl SecondSignal {
    /// Watches `signals` (when the server handles signals): on SIGINT or
    /// SIGTERM it logs and runs `cut`, which closes what is in flight and
    /// returns how many connections it closed. If the thread cannot be
    /// started the drain goes on without it (logged).
    pub(crate) fn watch(signals: Option<SignalFd>, cut: impl FnOnce() -> usize + Send + 'static) -> SecondSignal {
        let Some(signals) = signals else {
            return SecondSignal { running: None };
        };
        let started = Waker::new().map(Arc::new).and_then(|stop| {
            let theirs = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("ferry-2nd-signal".into())
                .spawn(move || wait_for_second(signals, &theirs, cut))
                .map(|thread| (stop, thread))
        });
        match started {
            Ok(running) => SecondSignal { running: Some(running) },
            Err(e) => {
                tracing::error!("cannot watch for a second stop signal: {e}; draining without it");
                SecondSignal { running: None }
            }
        }
    }

    /// Stops watching; returns how many connections a second signal cut
    /// (0 if none came).
    pub(crate) fn finish(self) -> usize {
        let Some((stop, thread)) = self.running else { return 0 };
        if let Err(e) = stop.wake() {
            tracing::error!("cannot stop the second-signal watch: {e}");
            return 0;
        }
        thread.join().unwrap_or_else(|_| {
            tracing::error!("the second-signal watch panicked");
            0
        })
    }
}

fn wait_for_second(mut signals: SignalFd, stop: &Waker, cut: impl FnOnce() -> usize) -> usize {
    loop {
        let ready = match poll_readable(&[stop.as_fd(), signals.as_fd()], None) {
            Ok(ready) => ready,
            Err(e) => {
                tracing::error!("{e}; no longer watching for a second stop signal");
                return 0;
            }
        };
        if ready[0] {
            return 0;
        }
        loop {
            match signals.read() {
                Ok(Some(signal @ (Signal::SIGINT | Signal::SIGTERM))) => {
                    tracing::warn!("received {signal} again; cutting the connections still in flight now");
                    return cut();
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    tracing::error!("cannot read the signalfd: {e}; no longer watching for a second stop signal");
                    return 0;
                }
            }
        }
    }
}
