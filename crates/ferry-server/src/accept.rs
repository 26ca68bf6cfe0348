//! The accept loop of the thread models (iterative, thread per connection,
//! thread pool), written once: poll the shutdown flag, the signalfd and the
//! listeners; accept what is pending and hand it over.
//!
//! Back-pressure: at the model's cap (its threads all busy, its queue
//! full) the listeners leave the poll set, so nothing is accepted and the
//! kernel's listen backlog holds new clients; the "room" eventfd, readable
//! once room may have been made, takes their place until then.

use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;

use ferry_reactor::Waker;
use ferry_reactor::sys::signals::SignalFd;
use nix::sys::signal::Signal;

use crate::drain::StopSignals;
use crate::listen::{Listener, accept_one, poll_readable};
use crate::{ServerError, Shutdown};

/// A limit on what an accept loop takes on.
pub(crate) struct Cap<'a> {
    /// Readable once room may have been made; reset by the loop before it
    /// checks `full` again.
    pub(crate) room: &'a Waker,
    /// True while nothing more may be accepted.
    pub(crate) full: &'a dyn Fn() -> bool,
}

/// Accepts from `listeners` and passes each connection to `take` until
/// the shutdown flag is raised (returns `None`) or SIGINT/SIGTERM arrives
/// on `signals` (returns it). With no listeners it only waits for the stop.
/// Stops accepting at `cap` until its room eventfd wakes the loop.
pub(crate) fn accept_until_stop(
    listeners: &[Listener],
    shutdown: &Shutdown,
    mut signals: Option<&mut SignalFd>,
    cap: Option<Cap<'_>>,
    mut take: impl FnMut(&Listener, TcpStream, SocketAddr),
) -> Result<Option<Signal>, ServerError> {
    let full = || cap.as_ref().is_some_and(|cap| (cap.full)());
    loop {
        let mut at_cap = None;
        if let Some(cap) = cap.as_ref().filter(|_| full()) {
            // Reset before re-checking, so room made after the check still
            // wakes the poll below.
            cap.room.drain().map_err(ServerError::setup("reset the accept loop's wake-up eventfd"))?;
            at_cap = full().then_some(cap.room);
        }
        let ready = {
            let mut fds = vec![shutdown.as_fd()];
            fds.extend(signals.as_ref().map(|s| s.as_fd()));
            match at_cap {
                Some(room) => fds.push(room.as_fd()),
                None => fds.extend(listeners.iter().map(|l| l.socket.as_fd())),
            }
            poll_readable(&fds, None)?
        };
        if ready[0] {
            return Ok(None);
        }
        if let Some(s) = signals.as_deref_mut()
            && ready[1]
            && let Some(signal) = s.read_stop().map_err(ServerError::setup("read the signalfd"))?
        {
            return Ok(Some(signal));
        }
        if at_cap.is_some() {
            continue;
        }
        let first = 1 + usize::from(signals.is_some());
        for (listener, _) in listeners.iter().zip(&ready[first..]).filter(|(_, ready)| **ready) {
            while !full() && !shutdown.is_signalled() {
                let Some((stream, peer)) = accept_one(listener) else { break };
                take(listener, stream, peer);
            }
        }
    }
}
