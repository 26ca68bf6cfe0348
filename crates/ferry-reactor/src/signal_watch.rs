//! Signals as loop events: a [`SignalFd`] registered like any socket.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::Signal;

use crate::event_loop::{EventLoop, Handler, Token};
use crate::poller::{Interest, Ready};
use crate::sys::signals::SignalFd;

struct SignalHandler<F> {
    fd: SignalFd,
    on_signal: F,
}

impl<F> AsFd for SignalHandler<F> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl<F: FnMut(&mut EventLoop, Signal) + 'static> Handler for SignalHandler<F> {
    fn ready(&mut self, lp: &mut EventLoop, _token: Token, _ready: Ready) {
        loop {
            match self.fd.read() {
                Ok(Some(sig)) => (self.on_signal)(lp, sig),
                Ok(None) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::error!(error = %e, "reading signalfd failed");
                    break;
                }
            }
        }
    }
}

impl EventLoop {
    /// Delivers the signals of `fd` (made with [`SignalFd::block`] on the
    /// main thread before any thread was spawned) to `on_signal`, on this
    /// loop's thread, as ordinary events. Deregister the token to stop.
    pub fn watch_signals(
        &mut self,
        fd: SignalFd,
        on_signal: impl FnMut(&mut EventLoop, Signal) + 'static,
    ) -> io::Result<Token> {
        self.register_owned(Interest::READABLE, SignalHandler { fd, on_signal })
    }
}
