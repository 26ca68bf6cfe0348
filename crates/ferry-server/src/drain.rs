//! The one shutdown drain. Every model, once it stopped accepting, waits
//! for what it is serving to end, bounded by the drain timeout, and cuts
//! what is left when the timeout passes or a second SIGINT/SIGTERM comes
//! ("press Ctrl-C again to stop now").
//!
//! [`wait_until_empty`] is that wait, written once: one `poll` on "something
//! ended" and the signalfd, until nothing is left, the deadline passes or a
//! second stop signal arrives. The thread models (iterative, thread,
//! thread pool) wait on their [`InFlight`] through [`drain`]; the process
//! models (fork, prefork) wait on their children through
//! `children::drain_children`, where SIGCHLD on the same signalfd is the
//! "something ended".

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_reactor::sys::signals::SignalFd;
use nix::sys::signal::Signal;

use crate::in_flight::InFlight;
use crate::listen::poll_readable;

/// How long cut connections get to end before their threads are left
/// behind.
pub(crate) const CUT_GRACE: Duration = Duration::from_secs(2);

/// Without a descriptor that announces an end, how often the wait looks.
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// Where a waiting loop hears SIGINT/SIGTERM: the server's signalfd, or a
/// stand-in in tests. Readable (`AsFd`) when something is pending.
pub(crate) trait StopSignals: AsFd {
    /// Reads every pending signal; returns the first SIGINT/SIGTERM among
    /// them (a SIGHUP reloads, see [`crate::reload`]; others, such as
    /// SIGCHLD, are consumed: they only woke the poll).
    fn read_stop(&mut self) -> io::Result<Option<Signal>>;
}

impl StopSignals for SignalFd {
    fn read_stop(&mut self) -> io::Result<Option<Signal>> {
        let mut stop = None;
        while let Some(signal) = self.read()? {
            if matches!(signal, Signal::SIGINT | Signal::SIGTERM) {
                stop = stop.or(Some(signal));
            } else {
                crate::reload::handle(signal);
            }
        }
        Ok(stop)
    }
}

/// Why [`wait_until_empty`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited {
    /// Nothing is left.
    Empty,
    /// The deadline passed first.
    TimedOut,
    /// A second SIGINT/SIGTERM arrived first.
    Again(Signal),
}

/// Waits until `left()` is 0, `deadline` passes (`None`: no deadline) or
/// `signals` delivers a SIGINT/SIGTERM. `left` must reset `wake` before it
/// counts, so an end after the count makes `wake` readable for the poll
/// that follows. With no `wake` descriptor, something else must announce
/// ends (SIGCHLD on `signals`), or `step` makes the wait look again that
/// often. A failing poll or signalfd is logged and the wait goes on
/// looking every 20 ms.
pub(crate) fn wait_until_empty(
    mut signals: Option<&mut dyn StopSignals>,
    mut wake: Option<BorrowedFd<'_>>,
    deadline: Option<Instant>,
    mut step: Option<Duration>,
    mut left: impl FnMut() -> usize,
) -> Waited {
    loop {
        if left() == 0 {
            return Waited::Empty;
        }
        let remaining = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
        if remaining.is_zero() {
            return Waited::TimedOut;
        }
        let mut fds = Vec::with_capacity(2);
        fds.extend(wake);
        fds.extend(signals.as_deref().map(|s| s.as_fd()));
        let ready = match poll_readable(&fds, Some(step.map_or(remaining, |s| s.min(remaining)))) {
            Ok(ready) => ready,
            Err(e) => {
                tracing::error!("{e}; no longer watching for a second stop signal");
                (signals, wake, step) = (None, None, Some(LOOK_EVERY));
                continue;
            }
        };
        if ready.last() == Some(&true)
            && let Some(s) = signals.as_deref_mut()
        {
            match s.read_stop() {
                Ok(Some(signal)) => return Waited::Again(signal),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!("cannot read the signalfd: {e}; no longer watching for a second stop signal");
                    signals = None;
                    step = step.or(wake.is_none().then_some(LOOK_EVERY));
                }
            }
        }
    }
}

/// How a thread model's drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DrainOutcome {
    /// Connections cut (0 if everything ended in time).
    pub(crate) cut: usize,
    /// Connections still registered after the cut and the grace period:
    /// their threads are stuck beyond a socket shutdown's reach.
    pub(crate) left: usize,
    /// The second SIGINT/SIGTERM that cut the drain short, if one did.
    pub(crate) again: Option<Signal>,
}

/// The thread models' drain, after the stop was logged, the listeners
/// closed and the shutdown flag raised: refuses new entries, waits for the
/// connections in flight at most `timeout` (a second stop signal on
/// `signals` cuts at once), cuts what is left, and gives the cut ones
/// [`CUT_GRACE`] to end.
pub(crate) fn drain(signals: Option<&mut dyn StopSignals>, in_flight: &InFlight, timeout: Duration) -> DrainOutcome {
    in_flight.close();
    let deadline = Instant::now().checked_add(timeout);
    let waited = wait_until_empty(signals, Some(in_flight.room().as_fd()), deadline, None, || in_flight.reset_room());
    let (cut, again) = match waited {
        Waited::Empty => return DrainOutcome { cut: 0, left: 0, again: None },
        Waited::Again(signal) => {
            tracing::warn!("received {signal} again; cutting the connections still in flight now");
            (in_flight.cut_all(), Some(signal))
        }
        Waited::TimedOut => {
            let cut = in_flight.cut_all();
            tracing::warn!(
                "drain timeout of {}s passed; cut {cut} connection(s) still in flight",
                timeout.as_secs_f64()
            );
            (cut, None)
        }
    };
    DrainOutcome { cut, left: in_flight.wait_empty(CUT_GRACE), again }
}

/// Joins the threads that served connections (`what` names them in the
/// log) once the drain is over. With no connection `left` every thread is
/// past its last line of work and joins at once; otherwise only finished
/// ones are joined and the rest are left to die with the process. Returns
/// how many were left behind.
pub(crate) fn join_threads(handles: Vec<JoinHandle<()>>, left: usize, what: &str) -> usize {
    let mut left_behind = 0;
    for handle in handles {
        if left == 0 || handle.is_finished() {
            if handle.join().is_err() {
                tracing::error!("{what} panicked");
            }
        } else {
            // Stuck in a syscall a socket shutdown cannot interrupt (a
            // hung disk).
            tracing::warn!("leaving {what} behind that did not exit");
            left_behind += 1;
        }
    }
    left_behind
}

#[cfg(test)]
mod tests;
