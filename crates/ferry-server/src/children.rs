//! Child processes of the process models (fork, prefork): forking safely,
//! reaping on SIGCHLD without blocking, and their shutdown: the shared
//! drain wait (`crate::drain`) over the children, killing the ones that
//! outstay it.

use std::collections::HashSet;
use std::io;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

use crate::ServerError;
use crate::drain::{Waited, wait_until_empty};
use crate::listen::Base;

/// Forks, after checking that the process has a single thread: a child of
/// a threaded process inherits locks (the allocator's, a logger's) held by
/// threads that do not exist in it. The process models' parents spawn no
/// threads, and a daemon detaches before anything does.
pub(crate) fn fork_process() -> Result<ForkResult, ServerError> {
    let fork_err = |error| ServerError::Setup { what: "fork", error };
    let threads = thread_count().map_err(fork_err)?;
    if threads != 1 {
        return Err(fork_err(io::Error::other(format!("refusing to fork a process with {threads} threads"))));
    }
    // SAFETY: the process has one thread (checked above, and nothing in it
    // can start another between the check and the fork), so no lock can be
    // held by a thread missing from the child; the child runs ordinary
    // Rust code and leaves through `exit_child`.
    unsafe { nix::unistd::fork() }.map_err(|e| fork_err(e.into()))
}

/// The number of threads of this process, from `/proc/self/status`.
pub(crate) fn thread_count() -> io::Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no thread count in /proc/self/status"))
}

/// Ends a forked child without unwinding into the parent's code: no
/// destructor of state the child only has a copy of runs. (ferry registers
/// no atexit handler, and stdout is flushed before any fork, so the libc
/// exit path has nothing of the parent's to repeat.)
pub(crate) fn exit_child(code: i32) -> ! {
    crate::observe::flush();
    std::process::exit(code)
}

/// Runs `child` in a forked child and exits with its status; a panic exits
/// with 101 instead of unwinding into the parent's code, which the child
/// only has a copy of.
pub(crate) fn run_child(child: impl FnOnce() -> i32) -> ! {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)) {
        Ok(code) => exit_child(code),
        Err(_) => exit_child(101),
    }
}

/// Reaps every child that has exited, without blocking; returns their pids
/// and a description of how each ended.
pub(crate) fn reap_exited() -> Vec<(Pid, String)> {
    let mut reaped = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => reaped.push((pid, format!("exited with status {code}"))),
            Ok(WaitStatus::Signaled(pid, signal, _)) => reaped.push((pid, format!("killed by {signal}"))),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return reaped,
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::error!("waitpid failed: {e}");
                return reaped;
            }
        }
    }
}

/// The process models' orderly exit once they stopped accepting, written
/// once for fork and prefork: log why, close the listeners, run
/// `ask_to_finish` (prefork drops its queue and tells its workers to exit),
/// raise the shutdown flag the children inherited (an idle connection
/// closes, a transfer finishes), then [`drain_children`]. Returns the
/// stopping signal and how many children had to be killed.
pub(crate) fn shut_down(
    base: &mut Base,
    stopped: &Result<Option<Signal>, ServerError>,
    live: &mut HashSet<Pid>,
    drain_timeout: Duration,
    ask_to_finish: impl FnOnce(),
) -> (Option<Signal>, usize) {
    let signal = base.begin_shutdown(stopped, ask_to_finish);
    (signal, drain_children(base, live, drain_timeout))
}

/// Waits for every child in `live` to exit, reaping them as SIGCHLD
/// arrives, at most `drain_timeout` or until a second SIGINT/SIGTERM; then
/// kills (SIGKILL) and reaps the rest. Returns how many had to be killed.
pub(crate) fn drain_children(base: &mut Base, live: &mut HashSet<Pid>, drain_timeout: Duration) -> usize {
    // SIGCHLD through the signalfd is the wake-up; without one (embedded
    // use), look in short steps.
    let step = base.signals.is_none().then_some(Duration::from_millis(20));
    let deadline = Instant::now().checked_add(drain_timeout);
    let waited = wait_until_empty(base.stop_signals(), None, deadline, step, || {
        for (pid, how) in reap_exited() {
            if live.remove(&pid) {
                tracing::debug!("child {pid} {how}");
            }
        }
        live.len()
    });
    let cut = live.len();
    match waited {
        Waited::Empty => {}
        Waited::Again(signal) => {
            tracing::warn!("received {signal} again; killing the {cut} child process(es) still serving now");
        }
        Waited::TimedOut => {
            tracing::warn!("drain timeout of {}s passed; killing {cut} child process(es)", drain_timeout.as_secs_f64());
        }
    }
    for pid in live.drain() {
        let _ = kill(pid, Signal::SIGKILL);
        while let Err(Errno::EINTR) = waitpid(pid, None) {}
    }
    cut
}
