//! The reactor bridge: syscall glue that performs a connection core's
//! ([`Conn`]) actions on a `ferry-reactor` [`TcpConnection`]. Every rule
//! about when to read, send, time out or close is the core's; this file
//! turns reactor callbacks into `handle_*` calls and actions into
//! connection calls.
//!
//! - message -> `handle_input`, half-close -> `handle_eof`,
//!   write-complete -> `handle_flushed`; the loop's sweep -> progress of
//!   buffered output (`TcpConnection::flushed_bytes` moved) and
//!   `handle_timeout`; the loop's drain -> `handle_shutdown`.
//! - `Send` -> `TcpConnection::send`, `SendFile` -> `send_file` (both
//!   buffered by the connection: reported with `handle_queued`, so the
//!   session sees no input while output waits: a high-water mark of zero),
//!   `WriteFile` -> `pwrite` on the loop thread (at most one read's worth,
//!   about 64 KiB: microseconds on a local disk), `RunJob` -> the server's
//!   [`JobPool`], whose worker posts the answer back to this loop
//!   (`handle_job_done`), `Shutdown` -> half-close, `Close` -> close.
//! - Reading pauses whenever the core does not want input
//!   ([`Conn::wants_read`]): the kernel's window then holds the peer back.
//!
//! Timeouts: no timer per connection. One periodic sweep per loop
//! ([`super::registry`]) calls [`check_deadline`]; deadlines fire up to one
//! sweep interval late (an eighth of the shortest timeout, 100 ms to 1 s).
//!
//! Memory of an idle connection: the session, the core (no output queue,
//! a small input allocation at most) and the reactor's connection state.

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use ferry_proto::conn::{Action, CloseReason, Conn, ConnConfig};
use ferry_proto::{Now, Session};
use ferry_reactor::{Callbacks, TcpConnection};

use super::jobs::{JobPool, Task};
use super::registry;
use crate::{PumpConfig, Service};

/// What every connection of one listener shares.
pub(crate) struct ListenerShared {
    /// The service each connection gets a fresh session of.
    pub(crate) service: Arc<Service>,
    /// The listener's timeouts.
    pub(crate) timeouts: PumpConfig,
    /// How often each loop checks its connections' deadlines.
    pub(crate) sweep_every: Duration,
    /// Connections open across all loops (shutdown waits for 0).
    pub(crate) live: Arc<AtomicUsize>,
    /// Where sessions' blocking jobs run (one pool per server).
    pub(crate) jobs: Arc<JobPool>,
}

/// The callbacks that run `shared.service` on every connection of a listener.
pub(crate) fn callbacks(shared: Arc<ListenerShared>) -> Callbacks {
    Callbacks::new()
        .on_connected(move |c| on_connected(c, &shared))
        .on_message(|c, buf| {
            let now = clock(c);
            with_core(c, |c, core| {
                core.conn.handle_input(now, buf.peek());
                drive(c, core, now);
            });
            buf.consume_all();
        })
        .on_write_complete(|c| {
            let now = clock(c);
            with_core(c, |c, core| {
                core.conn.handle_flushed(now);
                drive(c, core, now);
            });
        })
        .on_half_closed(|c| {
            let now = clock(c);
            with_core(c, |c, core| {
                core.conn.handle_eof(now);
                drive(c, core, now);
            });
        })
}

/// One connection's context: the core, boxed so a callback can take it
/// out (no allocation) and use the connection beside it.
struct Slot(Option<Box<Core>>);

/// The core and what the bridge keeps beside it.
struct Core {
    conn: Conn<Box<dyn Session + Send>>,
    /// The listener's settings; also counts this connection as live.
    shared: Arc<ListenerShared>,
    /// `TcpConnection::flushed_bytes` at the last sweep, to tell a slow
    /// reader from one that stopped reading.
    flushed_at_check: u64,
}

/// The context is dropped with the connection, also when a loop is dropped
/// with connections still open, so `live` never stays too high.
impl Drop for Core {
    fn drop(&mut self) {
        self.shared.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `f` with the connection's core taken out of its context.
fn with_core(c: &mut TcpConnection<'_>, f: impl FnOnce(&mut TcpConnection<'_>, &mut Core)) {
    let Some(mut core) = c.context_mut::<Slot>().and_then(|slot| slot.0.take()) else {
        return;
    };
    f(c, &mut core);
    if let Some(slot) = c.context_mut::<Slot>() {
        slot.0 = Some(core);
    }
}

fn on_connected(c: &mut TcpConnection<'_>, shared: &Arc<ListenerShared>) {
    let now = clock(c);
    shared.live.fetch_add(1, Ordering::AcqRel);
    let config = ConnConfig::new(shared.timeouts);
    let mut core = Box::new(Core {
        conn: Conn::new(registry::with_file_cache(|cache| shared.service.new_session_in(cache)), config, now),
        shared: Arc::clone(shared),
        flushed_at_check: 0,
    });
    registry::connection_opened(c.event_loop(), shared.sweep_every);
    if registry::draining() {
        // Accepted just before the listener closed: nothing in flight yet.
        core.conn.handle_shutdown();
    }
    drive(c, &mut core, now);
    c.set_context(Slot(Some(core)));
}

/// Performs the core's actions until it waits, then sets reading on or off.
fn drive(c: &mut TcpConnection<'_>, core: &mut Core, now: Now) {
    loop {
        if !c.has_pending_output() {
            core.conn.handle_flushed(now);
        }
        let Some(action) = core.conn.poll_action(now) else { break };
        match action {
            Action::Send(bytes) => {
                let n = bytes.len() as u64;
                if c.send(bytes) {
                    core.conn.handle_queued(now, n);
                } else {
                    core.conn.handle_send_error(gone());
                }
            }
            Action::SendFile { file, offset, len } => {
                if c.send_file(Arc::clone(file), offset, len) {
                    core.conn.handle_queued(now, len);
                } else {
                    core.conn.handle_send_error(gone());
                }
            }
            Action::WriteFile { file, offset, data } => {
                let n = data.len();
                match file.write_all_at(data, offset) {
                    Ok(()) => core.conn.handle_written(now, n),
                    Err(e) => core.conn.handle_upload_error(now, e),
                }
            }
            Action::Splice { .. } => {
                let e = io::Error::new(io::ErrorKind::Unsupported, "the reactor does not splice uploads");
                core.conn.handle_upload_error(now, e);
            }
            Action::RunJob(job) => {
                let conn = c.handle();
                let task: Task = Box::new(move || {
                    let answer = job();
                    // Refused only if the connection or its loop is gone.
                    conn.run_in_loop(move |c| {
                        let now = clock(c);
                        with_core(c, |c, core| {
                            core.conn.handle_job_done(now, answer);
                            drive(c, core, now);
                        });
                    });
                });
                if let Err(task) = core.shared.jobs.submit(task) {
                    // The answer is posted to this loop, so running it
                    // here cannot re-enter this call.
                    task();
                }
            }
            Action::Shutdown => c.shutdown(),
            Action::Close(reason) => {
                log_close(c, &reason);
                c.force_close();
                return;
            }
        }
    }
    if core.conn.wants_read() {
        c.resume_reading();
    } else {
        c.pause_reading();
    }
}

/// The loop's cached monotonic time and the wall clock.
fn clock(c: &mut TcpConnection<'_>) -> Now {
    Now { mono: c.event_loop().now(), wall: SystemTime::now() }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection closed while output was queued")
}

fn log_close(c: &TcpConnection<'_>, reason: &CloseReason) {
    match reason {
        CloseReason::Error(e) => tracing::debug!(token = ?c.token(), peer = %c.peer_addr(), "closing: {e}"),
        other => tracing::trace!(token = ?c.token(), "closing: {other}"),
    }
}

/// The loop's sweep: reports progress of buffered output, then lets the
/// core time the connection out if its deadline passed.
pub(crate) fn check_deadline(c: &mut TcpConnection<'_>, now: Now) {
    let flushed = c.flushed_bytes();
    with_core(c, |c, core| {
        if flushed != core.flushed_at_check {
            core.flushed_at_check = flushed;
            core.conn.handle_write_progress(now);
        }
        if core.conn.next_deadline().is_some_and(|d| d <= now.mono) {
            core.conn.handle_timeout(now);
            drive(c, core, now);
        }
    });
}

/// The server began to shut down: the connection closes now if it has
/// nothing in flight, otherwise once it has.
pub(crate) fn close_if_idle(c: &mut TcpConnection<'_>) {
    let now = clock(c);
    with_core(c, |c, core| {
        core.conn.handle_shutdown();
        drive(c, core, now);
    });
}
