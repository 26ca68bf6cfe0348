//! The accept loop: one thread polls the listeners, the signalfd and the
//! shutdown flag, and pushes accepted connections onto the task queue.
//!
//! Back-pressure: while the queue is full the listeners are left out of the
//! poll set, so the loop accepts nothing and the kernel's backlog holds new
//! connections; the "room" eventfd a worker signals after taking a task
//! brings the listeners back.

use std::sync::Arc;

use ferry_reactor::sys::signals::SignalFd;
use rustix::event::{PollFd, PollFlags, poll};

use super::workers::{Conn, Shared};
use crate::ServerError;
use crate::listen::{Listener, accept_one};
use crate::task_queue::PushError;

/// Why the accept loop returned.
#[derive(Debug)]
pub(super) enum Stop {
    /// SIGINT or SIGTERM arrived.
    Signal(nix::sys::signal::Signal),
    /// [`crate::Shutdown::signal`] was called.
    Requested,
}

/// Accepts until a signal or a shutdown request.
pub(super) fn accept_loop(
    listeners: &[Listener],
    shared: &Shared,
    mut signals: Option<&mut SignalFd>,
) -> Result<Stop, ServerError> {
    loop {
        let mut full = shared.queue.is_full();
        if full {
            // Reset before re-checking, so a worker taking a task after the
            // check still wakes the poll below.
            shared.room.drain().map_err(ServerError::setup("reset the accept loop's wake-up eventfd"))?;
            full = shared.queue.is_full();
        }

        let (shutdown_ready, signal_ready, ready) = {
            let mut fds = Vec::with_capacity(listeners.len() + 3);
            fds.push(PollFd::new(&shared.shutdown, PollFlags::IN));
            if let Some(s) = signals.as_deref() {
                fds.push(PollFd::new(s, PollFlags::IN));
            }
            let first_listener = fds.len();
            if full {
                fds.push(PollFd::new(&shared.room, PollFlags::IN));
            } else {
                fds.extend(listeners.iter().map(|l| PollFd::new(&l.socket, PollFlags::IN)));
            }
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(ServerError::Setup { what: "poll the listeners", error: e.into() }),
            }
            let ready: Vec<bool> = if full {
                Vec::new()
            } else {
                fds[first_listener..].iter().map(|fd| !fd.revents().is_empty()).collect()
            };
            (!fds[0].revents().is_empty(), signals.is_some() && !fds[1].revents().is_empty(), ready)
        };

        if shutdown_ready {
            return Ok(Stop::Requested);
        }
        if signal_ready && let Some(s) = signals.as_deref_mut() {
            match s.read() {
                Ok(Some(signal)) => return Ok(Stop::Signal(signal)),
                Ok(None) => {}
                Err(e) => return Err(ServerError::Setup { what: "read the signalfd", error: e }),
            }
        }
        for (listener, _) in listeners.iter().zip(&ready).filter(|(_, ready)| **ready) {
            accept_ready(listener, shared);
        }
    }
}

/// Accepts what `listener` has pending, as long as the queue has room.
fn accept_ready(listener: &Listener, shared: &Shared) {
    while !shared.queue.is_full() {
        let Some((stream, peer)) = accept_one(listener) else { return };
        let conn = Conn { stream, peer, service: Arc::clone(&listener.service), pump: listener.pump };
        match shared.queue.try_push(conn) {
            Ok(()) => {}
            // Only this thread pushes, and it checked for room.
            Err(PushError::Full(conn)) => {
                tracing::warn!("{}: task queue full; dropping connection", conn.peer);
            }
            Err(PushError::Closed(_)) => return,
        }
    }
}
