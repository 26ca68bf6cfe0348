//! Signals as readable file descriptors.
//!
//! A signal handler may only do async-signal-safe work, so ferry never does
//! real work in one. Instead the signals a server cares about are *blocked*
//! in every thread and delivered through a `signalfd`, which a loop polls
//! like any socket. Block them with [`SignalFd::block`] on the main thread
//! **before** spawning threads, so every thread inherits the mask.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd as NixSignalFd};

/// A non-blocking, close-on-exec `signalfd` for a fixed set of signals.
pub struct SignalFd {
    inner: NixSignalFd,
    set: SigSet,
}

impl SignalFd {
    /// Blocks `signals` in the calling thread (and so in threads it spawns
    /// later) and returns a descriptor that becomes readable when one is
    /// pending.
    pub fn block(signals: &[Signal]) -> io::Result<SignalFd> {
        let mut set = SigSet::empty();
        for &s in signals {
            set.add(s);
        }
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(io::Error::from)?;
        let inner =
            NixSignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).map_err(io::Error::from)?;
        Ok(SignalFd { inner, set })
    }

    /// Returns the next pending signal, or `None` if none is pending.
    pub fn read(&mut self) -> io::Result<Option<Signal>> {
        match self.inner.read_signal() {
            Ok(Some(info)) => Ok(Signal::try_from(info.ssi_signo as i32).ok()),
            Ok(None) => Ok(None),
            Err(e) => Err(io::Error::from(e)),
        }
    }

    /// Unblocks this set again in the calling thread; a forked child that
    /// runs other code calls this so it gets default signal behaviour.
    pub fn unblock_in_this_thread(&self) -> io::Result<()> {
        pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&self.set), None).map_err(io::Error::from)
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_fd().as_raw_fd()
    }
}

/// Makes writes to a closed socket fail with `EPIPE` instead of killing the
/// process. Call once at start-up; ferry also passes `MSG_NOSIGNAL` where it
/// can, but `sendfile` and `splice` have no such flag.
pub fn ignore_sigpipe() -> io::Result<()> {
    ignore(Signal::SIGPIPE)
}

/// Makes a write past the file-size limit (`RLIMIT_FSIZE`) fail with
/// `EFBIG` instead of killing the process with SIGXFSZ. Call once at
/// start-up; forked children inherit it.
pub fn ignore_sigxfsz() -> io::Result<()> {
    ignore(Signal::SIGXFSZ)
}

fn ignore(sig: Signal) -> io::Result<()> {
    use nix::sys::signal::{SigHandler, signal};
    // SAFETY: installing SIG_IGN runs no handler code, so there is nothing
    // async-signal-unsafe about it; no other thread races on the signal's
    // disposition at start-up.
    unsafe { signal(sig, SigHandler::SigIgn) }.map(|_| ()).map_err(io::Error::from)
}
