//! The accept loop of the thread models (iterative, thread per connection,
//! thread pool), written once: poll the shutdown flag, the signalfd, the
//! listeners and (thread pool) the gate where connections wait for their
//! first request; accept what is pending and hand it over.
//!
//! Back-pressure: at the model's cap (its threads all busy, its queue
//! full) the listeners and the gate leave the poll set, so nothing is
//! accepted or taken from the gate and the kernel's listen backlog holds
//! new clients; the "room" eventfd, readable once room may have been made,
//! takes their place until then. With the gate full, the listeners leave
//! the poll set too, while the gate stays in it.

use std::os::fd::AsFd;
use std::time::Instant;

use ferry_reactor::Waker;
use ferry_reactor::sys::signals::SignalFd;
use nix::sys::signal::Signal;

use crate::drain::StopSignals;
use crate::gate::Gate;
use crate::listen::{Accepted, Listener, accept_one, poll_readable};
use crate::{ServerError, Shutdown};

/// A limit on what an accept loop takes on.
pub(crate) struct Cap<'a> {
    /// Readable once room may have been made; reset by the loop before it
    /// checks `left` again.
    pub(crate) room: &'a Waker,
    /// How many more connections may be taken now (0: none until room is
    /// made).
    pub(crate) left: &'a dyn Fn() -> usize,
    /// How many taken connections wait for a worker (a queue's length).
    pub(crate) queued: &'a dyn Fn() -> usize,
}

/// Accepts from `listeners` and passes each connection to `take` until
/// the shutdown flag is raised (returns `None`) or SIGINT/SIGTERM arrives
/// on `signals` (returns it). With no listeners it only waits for the stop.
/// Stops accepting at `cap` until its room eventfd wakes the loop. With a
/// `gate`, a connection reaches `take` only once its first request is
/// complete.
pub(crate) fn accept_until_stop(
    listeners: &[Listener],
    shutdown: &Shutdown,
    mut signals: Option<&mut SignalFd>,
    cap: Option<Cap<'_>>,
    mut gate: Option<&mut Gate>,
    mut take: impl FnMut(&Listener, Accepted),
) -> Result<Option<Signal>, ServerError> {
    let left = || cap.as_ref().map_or(usize::MAX, |cap| (cap.left)());
    // After an upgrade handed the listeners over, a stop signal first waits
    // (not accepting) until what was accepted reached a worker.
    let mut stopping: Option<(Signal, Instant)> = None;
    loop {
        if let Some((signal, since)) = stopping {
            let pending = gate.as_deref().map_or(0, Gate::len) + cap.as_ref().map_or(0, |cap| (cap.queued)());
            if pending == 0 || since.elapsed() > crate::upgrade::HANDOVER_GRACE {
                return Ok(Some(signal));
            }
        }
        let mut at_cap = None;
        if let Some(cap) = cap.as_ref().filter(|_| left() == 0) {
            // Reset before re-checking, so room made after the check still
            // wakes the poll below.
            cap.room.drain().map_err(ServerError::setup("reset the accept loop's wake-up eventfd"))?;
            at_cap = (left() == 0).then_some(cap.room);
        }
        let gate_full = gate.as_deref().is_some_and(Gate::is_full);
        let ready = {
            let mut fds = vec![shutdown.as_fd()];
            fds.extend(signals.as_ref().map(|s| s.as_fd()));
            match at_cap {
                Some(room) => fds.push(room.as_fd()),
                None => {
                    fds.extend(gate.as_deref().map(|g| g.as_fd()));
                    if !gate_full && stopping.is_none() {
                        fds.extend(listeners.iter().map(|l| l.socket.as_fd()));
                    }
                }
            }
            poll_readable(&fds, stopping.map(|_| crate::upgrade::HANDOVER_STEP))?
        };
        if ready[0] {
            return Ok(None);
        }
        if let Some(s) = signals.as_deref_mut()
            && ready[1]
            && let Some(signal) = s.read_stop().map_err(ServerError::setup("read the signalfd"))?
        {
            if stopping.is_none() && crate::upgrade::handed_over() {
                stopping = Some((signal, Instant::now()));
                continue;
            }
            return Ok(Some(signal));
        }
        if at_cap.is_some() {
            continue;
        }
        let mut next = 1 + usize::from(signals.is_some());
        if let Some(gate) = gate.as_deref_mut() {
            if ready[next] {
                for (index, conn) in gate.take_ready(listeners, left()) {
                    take(&listeners[index], conn);
                }
            }
            next += 1;
        }
        if gate_full || stopping.is_some() {
            continue;
        }
        for (index, _) in ready[next..].iter().enumerate().filter(|(_, ready)| **ready) {
            let listener = &listeners[index];
            while left() > 0 && !gate.as_deref().is_some_and(Gate::is_full) && !shutdown.is_signalled() {
                let Some(conn) = accept_one(listener) else { break };
                let conn = match gate.as_deref_mut() {
                    Some(gate) => gate.admit(listeners, index, conn),
                    None => Some(conn),
                };
                if let Some(conn) = conn {
                    take(listener, conn);
                }
            }
        }
    }
}
