//! Accepts connections from a [`Listener`] on a loop, and survives running
//! out of file descriptors.
//!
//! When `accept` fails with `EMFILE`/`ENFILE` the pending connection stays
//! in the backlog and a level-triggered listener stays readable: a naive
//! acceptor spins at 100% CPU. This one sheds such connections with a
//! [`ReserveFd`] (accept with a reserved slot, close at once, so the client
//! sees the connection closed instead of hanging). If even that fails it
//! stops listening for a short while (a timer) instead of spinning.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::event_loop::{EventLoop, Handler, Token};
use crate::listener::{Listener, PeerAddr};
use crate::poller::{Interest, Ready};
use crate::reserve_fd::{AcceptOutcome, ReserveFd};

/// Connections accepted per readiness event before yielding to other work.
const ACCEPT_BATCH: usize = 64;
/// How long to stop accepting when no fd can be had at all.
const BACKOFF: Duration = Duration::from_millis(100);

/// What to do with each accepted socket (runs on the acceptor's loop).
pub type AcceptCallback = Box<dyn FnMut(&mut EventLoop, OwnedFd, PeerAddr)>;

/// A listener registered on a loop that hands each accepted, non-blocking
/// socket to a callback. Loop-thread only (it is a registry handler).
pub struct Acceptor {
    listener: Listener,
    reserve: ReserveFd,
    on_accept: AcceptCallback,
    paused: bool,
}

impl AsFd for Acceptor {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

impl Acceptor {
    /// Wraps `listener`; nothing is accepted until [`register`](Self::register).
    pub fn new(listener: Listener, on_accept: AcceptCallback) -> Acceptor {
        Acceptor { listener, reserve: ReserveFd::new(), on_accept, paused: false }
    }

    /// Starts accepting on `lp`; deregistering the token stops it and closes
    /// the listener.
    pub fn register(self, lp: &mut EventLoop) -> io::Result<Token> {
        lp.register_owned(Interest::READABLE, self)
    }

    /// Total connections accepted and closed at once for lack of fds.
    pub fn shed_count(&self) -> u64 {
        self.reserve.shed_count()
    }

    fn pause(&mut self, lp: &mut EventLoop, token: Token) {
        self.paused = true;
        if let Err(e) = lp.set_interest(token, Interest::NONE) {
            tracing::error!(error = %e, "pausing acceptor failed");
        }
        lp.run_after(BACKOFF, move |lp| {
            lp.with_handler::<Acceptor, _>(token, |acc, lp| {
                acc.paused = false;
                if let Err(e) = lp.set_interest(token, Interest::READABLE) {
                    tracing::error!(error = %e, "resuming acceptor failed");
                }
            });
        });
    }
}

impl Handler for Acceptor {
    fn ready(&mut self, lp: &mut EventLoop, token: Token, _ready: Ready) {
        if self.paused {
            return;
        }
        for _ in 0..ACCEPT_BATCH {
            match self.reserve.accept(&self.listener) {
                Ok(AcceptOutcome::Accepted((fd, peer))) => (self.on_accept)(lp, fd, peer),
                Ok(AcceptOutcome::Shed) => {}
                Ok(AcceptOutcome::WouldBlock) => break,
                Err(e) => {
                    // Out of fds even with the reserve, or ENOBUFS, ENOMEM,
                    // ...: transient, but would repeat at once; back off
                    // rather than spin.
                    tracing::warn!(error = %e, "accept failed; backing off");
                    self.pause(lp, token);
                    break;
                }
            }
        }
    }
}
