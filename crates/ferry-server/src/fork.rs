//! The fork-per-connection model: the parent accepts and forks a child for
//! each connection; the child closes the listeners, serves, and exits. The
//! parent is single-threaded (fork in a threaded process is a trap) and
//! reaps children when SIGCHLD arrives through its signalfd, never inside
//! a signal handler, so no zombie outlives a connection for long.
//!
//! At most `max_conns` children live at once: at the cap the parent stops
//! polling the listeners (the kernel's backlog holds new clients) until
//! SIGCHLD reports an exit, so a flood of connections cannot fork the
//! machine to death.
//!
//! Children live in their own process groups, so a Ctrl-C on the terminal
//! reaches the parent only. Shutdown: stop accepting; the children see the shutdown eventfd they
//! inherited (a connection between requests closes, a transfer finishes);
//! after the drain timeout the stragglers are killed; all are reaped.

use std::collections::HashSet;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid};

use crate::children::{fork_process, reap_exited, run_child, shut_down};
use crate::listen::{Accepted, Base, accept_one, poll_readable};
use crate::net::Stream;
use crate::{Report, ServerError, serve_connection_since};

/// Accepts and forks until shutdown, then drains the children.
pub(crate) fn run(mut base: Base, max_conns: usize, drain_timeout: Duration) -> Result<Report, ServerError> {
    tracing::info!(
        "fork: a process per connection, at most {max_conns} at once, drain timeout {}s",
        drain_timeout.as_secs_f64()
    );
    let mut live = HashSet::new();
    let mut counts = Counts::default();
    let stopped = accept_loop(&mut base, &mut live, max_conns, &mut counts);
    let (signal, cut) = shut_down(&mut base, &stopped, &mut live, drain_timeout, || {});
    let Counts { accepted, dropped_unserved } = counts;
    stopped.map(|_| Report { signal, accepted, dropped_unserved, cut, left_behind: 0 })
}

/// Connections accepted, and those dropped because no child could be
/// forked for them.
#[derive(Default)]
struct Counts {
    accepted: u64,
    dropped_unserved: usize,
}

/// Returns the stopping signal (or `None` for a shutdown request).
fn accept_loop(
    base: &mut Base,
    live: &mut HashSet<Pid>,
    max_conns: usize,
    counts: &mut Counts,
) -> Result<Option<Signal>, ServerError> {
    let mut was_full = false;
    loop {
        let full = live.len() >= max_conns;
        if full && !was_full {
            tracing::info!("{} child processes (--max-conns): not accepting until one exits", live.len());
        }
        was_full = full;
        let ready = {
            let mut fds = vec![base.shutdown.as_fd()];
            fds.extend(base.signals.as_ref().map(|s| s.as_fd()));
            if !full {
                fds.extend(base.listeners.iter().map(|l| l.socket.as_fd()));
            }
            // Without a signalfd (embedded use) nothing announces an exit:
            // look again in short steps while full.
            let timeout = (full && base.signals.is_none()).then_some(Duration::from_millis(20));
            poll_readable(&fds, timeout)?
        };
        if ready[0] {
            return Ok(None);
        }
        let mut stop = None;
        if base.signals.is_some() && ready[1] {
            stop = base.read_stop()?;
        }
        // Reaping on every wake-up is cheap and catches coalesced SIGCHLDs
        // too (and never waits on anything but our own children).
        for (pid, how) in if live.is_empty() { Vec::new() } else { reap_exited() } {
            if live.remove(&pid) {
                tracing::debug!("child {pid} {how}");
            }
        }
        if let Some(signal) = stop {
            return Ok(Some(signal));
        }
        if full {
            continue;
        }
        let first = 1 + usize::from(base.signals.is_some());
        for index in (0..base.listeners.len()).filter(|i| ready[first + i]) {
            if live.len() >= max_conns {
                break;
            }
            let Some(Accepted { stream, .. }) = accept_one(&base.listeners[index]) else { continue };
            counts.accepted += 1;
            match fork_process() {
                Ok(ForkResult::Child) => run_child(|| serve_in_child(base, index, stream)),
                Ok(ForkResult::Parent { child }) => {
                    live.insert(child);
                }
                Err(e) => {
                    tracing::warn!("{e}; dropping the connection");
                    counts.dropped_unserved += 1;
                }
            }
            // The parent's copy of the socket closes here.
        }
    }
}

/// The child: forget the parent's descriptors, serve; returns the exit
/// status.
fn serve_in_child(base: &mut Base, index: usize, stream: Stream) -> i32 {
    let service = std::sync::Arc::clone(&base.listeners[index].service);
    let conn = Arc::clone(&base.listeners[index].conn);
    base.forget_in_child();
    // Its own process group, like prefork's workers: a Ctrl-C on the
    // terminal reaches the parent only, which lets this connection finish.
    if let Err(e) = rustix::process::setpgid(None, None) {
        tracing::warn!("child {}: cannot move to its own process group: {e}", std::process::id());
    }
    let mut session = service.new_session(stream.peer().ok());
    serve_connection_since(stream, &mut *session, &conn, &base.shutdown, std::time::Instant::now());
    0
}
