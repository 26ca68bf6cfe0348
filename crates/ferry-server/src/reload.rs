//! SIGHUP: re-read configuration without dropping a connection.
//!
//! One mechanism for every model. The binary registers what can be re-read
//! ([`on_reload`]: the accounts file today, certificates later); every
//! model blocks SIGHUP with SIGINT/SIGTERM into its signalfd, and wherever
//! that signalfd is read ([`handle`]: the thread models' accept loop, the
//! fork and prefork parents, the reactor's main loop, the uring control
//! ring) a SIGHUP runs the hooks, in that thread, once, in order. The hooks
//! swap what new logins read; connections in flight keep theirs.
//!
//! Processes: the hooks run in the parent only, the process that reads the
//! signal; children keep SIGHUP blocked ([`block_in_child`]) and never act
//! on it, so they never re-read a file at a different moment than the
//! parent. A fork child serves one connection with the copy of the
//! parent's state it was forked with, so a reload reaches every later
//! connection. A prefork worker serves many, so after a reload the parent
//! replaces its workers: idle ones at once, busy ones when their
//! connection ends (which it keeps serving as it was); the new workers are
//! forked from the reloaded parent ([`count`] tells it a reload happened).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

/// What a reload runs: re-read a file and swap it in, logging the outcome.
type Hook = Box<dyn Fn() + Send + Sync>;

/// The hooks of this process, in registration order.
static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// How many reloads this process has run (so a parent can tell that one
/// happened while it read its signals).
static RELOADS: AtomicU64 = AtomicU64::new(0);

/// Registers `hook` to run on every SIGHUP, in the process that receives
/// it (and in prefork workers, see the module's doc). A hook must not block
/// for long: it runs on a loop's or an accept loop's thread.
pub fn on_reload(hook: impl Fn() + Send + Sync + 'static) {
    HOOKS.lock().unwrap_or_else(PoisonError::into_inner).push(Box::new(hook));
}

/// Runs every hook now, as a SIGHUP does, telling a service manager
/// (`RELOADING=1`, then `READY=1`; see [`crate::notify`]).
pub fn reload() {
    RELOADS.fetch_add(1, Ordering::SeqCst);
    crate::notify::reloading();
    let hooks = HOOKS.lock().unwrap_or_else(PoisonError::into_inner);
    if hooks.is_empty() {
        tracing::info!("received SIGHUP: nothing to reload");
    }
    for hook in hooks.iter() {
        hook();
    }
    crate::notify::ready();
}

/// How many reloads have run in this process.
pub(crate) fn count() -> u64 {
    RELOADS.load(Ordering::SeqCst)
}

/// The one place a read signal is looked at for a reload: runs the hooks
/// when it is SIGHUP, starts an upgrade when it is SIGUSR2
/// ([`crate::upgrade`]), reopens the access log when it is SIGUSR1, and
/// says whether it was one of them.
pub(crate) fn handle(signal: Signal) -> bool {
    match signal {
        Signal::SIGHUP => reload(),
        Signal::SIGUSR2 => crate::upgrade::begin(),
        // Not a reload, but read in the same places: reopen the access
        // log, in every process (see `crate::observe`).
        Signal::SIGUSR1 => crate::observe::reopen(),
        _ => return false,
    }
    true
}

/// Blocks SIGHUP in the calling thread of a forked child, which unblocked
/// its parent's signals: a hang-up sent to the whole process group must
/// not end a connection (the default action of SIGHUP is to exit).
pub(crate) fn block_in_child() {
    let mut set = SigSet::empty();
    set.add(Signal::SIGHUP);
    // Nor may an upgrade signal sent to the group (its default ends it).
    set.add(Signal::SIGUSR2);
    // SIGUSR1 (reopen the access log) is the parent's to read too; its
    // default action would end the child.
    set.add(Signal::SIGUSR1);
    if let Err(e) = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None) {
        tracing::warn!("child {}: cannot block SIGHUP: {e}", std::process::id());
    }
}
