//! Ctrl-C while a command runs (a `get` or `put` above all): the command
//! is abandoned, the shell stays.
//!
//! The protocol has no way to stop a transfer half way (the payload's
//! length was announced; the only way out of a `get` is to read the rest),
//! so an interrupted command gives up its connection: SIGINT is blocked in
//! every thread and taken by a watcher thread (`sigwait`: no work in a
//! handler), which, while a command is armed, shuts the socket down (to
//! be closed with a reset, so the server hears of it even when unsent
//! bytes fill the way). The
//! command then fails at once with a network error; the shell sees
//! [`Interrupts::fired`] and reconnects. At the prompt the editor has the
//! terminal raw, so Ctrl-C is a key there, not a signal. Programs run with
//! `!` start with an empty signal mask (std's `Command` resets it) and get
//! the terminal's SIGINT themselves.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nix::sys::signal::{SigSet, Signal};

/// The watcher's shared state.
#[derive(Default)]
struct State {
    /// The socket of the running command (a duplicate descriptor).
    armed: Mutex<Option<OwnedFd>>,
    /// Ctrl-C came while armed.
    fired: AtomicBool,
}

/// Ctrl-C handling for commands (see the module's text).
pub struct Interrupts {
    state: Arc<State>,
}

impl Interrupts {
    /// Blocks SIGINT in this thread (and so in every thread started after)
    /// and starts the watcher.
    pub fn start() -> anyhow::Result<Interrupts> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.thread_block()?;
        let state = Arc::new(State::default());
        let watched = Arc::clone(&state);
        std::thread::Builder::new().name("ferry-sigint".into()).spawn(move || {
            while let Ok(signal) = set.wait() {
                if signal != Signal::SIGINT {
                    continue;
                }
                let armed = watched.armed.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(socket) = armed.as_ref() {
                    watched.fired.store(true, Ordering::SeqCst);
                    // Closed with a reset, not a FIN queued behind unsent
                    // bytes: the server learns at once that the transfer
                    // is abandoned (and lets go of an upload).
                    let _ = rustix::net::sockopt::set_socket_linger(socket, Some(std::time::Duration::ZERO));
                    let _ = rustix::net::shutdown(socket, rustix::net::Shutdown::Both);
                }
            }
        })?;
        Ok(Interrupts { state })
    }

    /// Until the guard is dropped, Ctrl-C shuts `socket` down.
    pub fn arm(&self, socket: BorrowedFd<'_>) -> Armed<'_> {
        self.state.fired.store(false, Ordering::SeqCst);
        let copy = socket.try_clone_to_owned().ok();
        *self.state.armed.lock().unwrap_or_else(|e| e.into_inner()) = copy;
        Armed { state: &self.state }
    }

    /// Ctrl-C came during the last armed command (its connection is shut).
    pub fn fired(&self) -> bool {
        self.state.fired.load(Ordering::SeqCst)
    }
}

/// Disarms on drop.
pub struct Armed<'a> {
    state: &'a State,
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        *self.state.armed.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
