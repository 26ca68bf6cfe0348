//! Turns a [`Shutdown`] flag into a main-loop event, so tests and other
//! threads can stop a reactor server the way SIGTERM does.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use ferry_reactor::{EventLoop, Handler, Interest, Ready, Token};

use crate::Shutdown;

/// A handler on the shutdown eventfd: runs `on_shutdown` once, then
/// deregisters itself (the eventfd stays readable forever once signalled).
pub(crate) struct ShutdownWatch<F> {
    shutdown: Shutdown,
    on_shutdown: Option<F>,
}

impl<F: FnOnce(&mut EventLoop) + 'static> ShutdownWatch<F> {
    pub(crate) fn new(shutdown: Shutdown, on_shutdown: F) -> Self {
        ShutdownWatch { shutdown, on_shutdown: Some(on_shutdown) }
    }

    /// Registers the watch on the main loop.
    pub(crate) fn register(self, lp: &mut EventLoop) -> io::Result<Token> {
        lp.register_owned(Interest::READABLE, self)
    }
}

impl<F> AsFd for ShutdownWatch<F> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.shutdown.as_fd()
    }
}

impl<F: FnOnce(&mut EventLoop) + 'static> Handler for ShutdownWatch<F> {
    fn ready(&mut self, lp: &mut EventLoop, token: Token, _ready: Ready) {
        drop(lp.deregister(token));
        if let Some(f) = self.on_shutdown.take() {
            f(lp);
        }
    }
}
