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
//! ([`LoopState`]) calls [`check_deadline`]; deadlines fire up to one sweep
//! interval late (an eighth of the shortest timeout, 100 ms to 1 s).
//!
//! The core is the connection's typed state (`StatefulCallbacks<Core>`):
//! every callback gets it beside the connection, no lookup by type here.
//!
//! Memory of an idle connection: the session, the core (no output queue,
//! a small input allocation at most) and the reactor's connection state.

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use ferry_proto::conn::{Action, Conn};
use ferry_proto::{FileSlice, Now, Session};
use ferry_reactor::{Callbacks, StatefulCallbacks, TcpConnection};

use super::jobs::Task;
use super::loop_state::LoopState;
use super::shared::{ListenerShared, ServerShared};

/// The callbacks that run `shared.service` on the connections of one
/// listener on one loop (`lp_state`'s).
pub(crate) fn callbacks(shared: Arc<ListenerShared>, lp_state: Arc<LoopState>) -> Callbacks {
    StatefulCallbacks::new(move |c| on_connected(c, &shared, &lp_state))
        .on_message(|c, core, buf| {
            let now = clock(c);
            // The read buffer's storage moves into the core (no copy; the
            // connection keeps no buffer while idle).
            let (storage, start) = buf.take_storage();
            core.conn.handle_input_buf(now, storage, start);
            drive(c, core, now);
        })
        .on_write_complete(|c, core| {
            let now = clock(c);
            core.conn.handle_flushed(now);
            drive(c, core, now);
        })
        .on_half_closed(|c, core| {
            let now = clock(c);
            core.conn.handle_eof(now);
            drive(c, core, now);
        })
        // A close the core did not ask for: a reset, a socket error.
        .on_closed(|c, core| log_closed(c, core, &"connection reset or failed"))
        .build()
}

/// One connection's state: the core and what the bridge keeps beside it.
pub(crate) struct Core {
    conn: Conn<Box<dyn Session + Send>>,
    /// The server's counters; also counts this connection as live.
    server: Arc<ServerShared>,
    /// `TcpConnection::flushed_bytes` at the last sweep, to tell a slow
    /// reader from one that stopped reading.
    flushed_at_check: u64,
    /// When the connection was accepted, for its log line.
    opened: Instant,
    /// Its log line was written.
    logged: bool,
}

/// The state is dropped with the connection, also when a loop is dropped
/// with connections still open, so `live` never stays too high. The last
/// connection of a draining server wakes the main loop.
impl Drop for Core {
    fn drop(&mut self) {
        let server = &self.server;
        if server.live.fetch_sub(1, Ordering::SeqCst) == 1
            && server.draining.load(Ordering::SeqCst)
            && let Some(main) = server.main.get()
        {
            main.quit();
        }
    }
}

fn on_connected(c: &mut TcpConnection<'_>, shared: &ListenerShared, lp_state: &LoopState) -> Core {
    let now = clock(c);
    shared.server.live.fetch_add(1, Ordering::SeqCst);
    let session = shared.service.new_session_in(&lp_state.file_cache, Some(*c.peer_addr()));
    let mut core = Core {
        conn: Conn::new(session, Arc::clone(&shared.conn_config), now),
        server: Arc::clone(&shared.server),
        flushed_at_check: 0,
        opened: now.mono,
        logged: false,
    };
    tracing::debug!("{}: connection opened", c.peer_addr());
    lp_state.connection_opened(c.event_loop());
    if lp_state.draining() {
        // Accepted just before the listener closed: nothing in flight yet.
        crate::upgrade::shut_down_conn(&mut core.conn);
    }
    drive(c, &mut core, now);
    core
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
            Action::SendFile(FileSlice { file, offset, len }) => {
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
                        c.with_state(|c, core: &mut Core| {
                            core.conn.handle_job_done(now, answer);
                            drive(c, core, now);
                        });
                    });
                });
                if let Err(task) = core.server.jobs.submit(task) {
                    // The answer is posted to this loop, so running it
                    // here cannot re-enter this call.
                    task();
                }
            }
            Action::Shutdown => c.shutdown(),
            Action::Close(reason) => {
                log_closed(c, core, &reason);
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

/// The connection's one info line, as every model writes it: peer, why,
/// bytes each way, how long.
fn log_closed(c: &TcpConnection<'_>, core: &mut Core, reason: &dyn std::fmt::Display) {
    if std::mem::replace(&mut core.logged, true) {
        return;
    }
    let stats = core.conn.stats();
    tracing::info!(
        "{}: connection closed ({reason}): {} bytes in, {} bytes out, {:.3}s",
        c.peer_addr(),
        stats.bytes_in,
        stats.bytes_out,
        core.opened.elapsed().as_secs_f64()
    );
}

/// The loop's sweep: reports progress of buffered output, then lets the
/// core time the connection out if its deadline passed.
pub(crate) fn check_deadline(c: &mut TcpConnection<'_>, core: &mut Core, now: Now) {
    let flushed = c.flushed_bytes();
    if flushed != core.flushed_at_check {
        core.flushed_at_check = flushed;
        core.conn.handle_write_progress(now);
    }
    if core.conn.next_deadline().is_some_and(|d| d <= now.mono) {
        core.conn.handle_timeout(now);
        drive(c, core, now);
    }
}

/// The server began to shut down: the connection closes now if it has
/// nothing in flight, otherwise once it has.
pub(crate) fn close_if_idle(c: &mut TcpConnection<'_>, core: &mut Core) {
    let now = clock(c);
    crate::upgrade::shut_down_conn(&mut core.conn);
    drive(c, core, now);
}
