//! The bridge between a sans-IO [`Session`] and a reactor
//! [`TcpConnection`]: the event-driven counterpart of the blocking pump,
//! following the driver contract of `ferry_proto::session`.
//!
//! Each connection's context is a [`SessionConn`]. Input the reactor read
//! is swapped (not copied) into the context's own buffer, so the bridge can
//! offer it again from write-complete, where the reactor hands over no
//! buffer. One pass of [`pump`] does, in order: finish a drain
//! (`on_drained`), feed an upload sink, offer input (`on_input`), deliver
//! end-of-file (`on_eof`); everything a session queues is moved into the
//! connection at once (bytes with `send`, file ranges with `send_file`, so
//! they leave in order and file bodies go by `sendfile`).
//!
//! # Backpressure
//! The high-water mark is zero: while anything (bytes or a file range) is
//! still queued in the connection, the session is not offered more input;
//! it gets `on_drained` on write-complete and then the input again. Each
//! session pass is bounded already (HTTP: 64 requests, 256 KiB of text, 16
//! files), so output queued per connection stays bounded, and so does
//! input: once [`MAX_INPUT`] bytes wait unconsumed, reading pauses (the
//! kernel's window then holds the peer back) until the queue drains.
//!
//! # Uploads
//! When a session queues an upload [`Sink`] the next `remaining()` input
//! bytes are written into its file with `Sink::write_from` (`pwrite`) right
//! on the loop thread. A disk write of at most one read's worth (about 64
//! KiB) stalls the loop's other connections for that long; for a local disk
//! that is microseconds, and it keeps the bridge free of worker threads.
//! (The blocking pump `splice`s instead, which only pays off when a thread
//! may block on the socket.) Finishing an upload (fsync, rename, fsync of
//! the directory) can take much longer, so the session makes it a job.
//!
//! # Jobs
//! A session's blocking work ([`ferry_proto::Job`]: `sum` hashing a file,
//! `ls` reading a directory, the fsyncs that finish an upload) goes to the server's [`JobPool`]; what
//! the session queued behind it waits in the context, and the session gets
//! no call, until the worker posts the answer back to this loop. So answers
//! keep their order, and the loop keeps serving its other connections.
//!
//! # Timeouts
//! Progress only moves a deadline stored in the context (no timer call per
//! read); one periodic timer per loop ([`registry`]) sweeps its connections
//! and times out those past their deadline, so an idle connection owns no
//! timer entry. Timeouts fire up to one sweep interval late (an eighth of
//! the shortest timeout, between 100 ms and 1 s). The deadline is
//! `request_timeout` after a request began to arrive (not extended by more
//! bytes, so a slowloris client is cut at the header timeout),
//! `idle_timeout` after the last progress otherwise. While output is
//! queued, progress means the kernel took some of it
//! (`TcpConnection::flushed_bytes` moved since the last check): a slow but
//! live download keeps its connection, a peer that stays connected but
//! stopped reading is closed after one idle timeout without progress.
//!
//! # Memory of an idle connection
//! The session, this context (about 100 bytes) and the reactor's
//! connection state; no timer and no buffers: an empty input buffer is
//! released, and the outbox sessions write into is one scratch per loop
//! thread, emptied into the connection after every call.

use std::cell::RefCell;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_proto::{Chunk, Flow, Outbox, Session, Sink};
use ferry_reactor::{Buffer, Callbacks, TcpConnection};

use super::jobs::{JobPool, Task};
use super::registry;
use crate::{PumpConfig, Service};

/// Most input bytes held per connection before reading pauses. Sessions
/// consume or reject far less (HTTP heads are limited to 8 KiB by default,
/// file-protocol lines to 4 KiB).
pub const MAX_INPUT: usize = 64 * 1024;

thread_local! {
    /// The outbox every session on this thread writes into; always empty
    /// between calls (its contents move into the connection right away), so
    /// no connection keeps one.
    static SCRATCH: RefCell<Outbox> = RefCell::new(Outbox::new());
}

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
        .on_message(on_message)
        .on_write_complete(pump)
        .on_half_closed(on_peer_eof)
}

/// One connection's driver state, kept as its reactor context. Kept small:
/// 10,000 idle keep-alive connections hold 10,000 of these.
struct SessionConn {
    session: Box<dyn Session + Send>,
    /// Unconsumed input (the reactor's read buffer, swapped in).
    input: Buffer,
    /// The upload in progress (boxed: rare, and keeps the context small).
    sink: Option<Box<Sink>>,
    /// While a job runs on a worker: the output queued behind it (its front
    /// is the job's placeholder).
    after_job: Option<Box<Outbox>>,
    /// The session asked to close while a job ran: half-close once its
    /// answer and what follows are queued.
    shutdown_after_job: bool,
    /// The listener's settings; also counts this connection as live.
    shared: Arc<ListenerShared>,
    /// When the connection times out unless it makes progress.
    deadline: Instant,
    /// `TcpConnection::flushed_bytes` at the last deadline check, to tell a
    /// slow reader from one that stopped reading.
    flushed_at_check: u64,
    /// The session was inside a request at the last check.
    in_request: bool,
    /// Input should be offered again (new bytes, or the session made
    /// progress and may have stopped early).
    offer: bool,
    /// Output was queued since the last `on_drained`.
    awaiting_drain: bool,
    /// The peer half-closed; `eof_delivered` once the session heard of it.
    peer_eof: bool,
    eof_delivered: bool,
    /// The session asked to close; input is ignored from now on.
    closing: bool,
}

impl SessionConn {
    fn new(shared: &Arc<ListenerShared>, now: Instant) -> SessionConn {
        shared.live.fetch_add(1, Ordering::AcqRel);
        SessionConn {
            session: shared.service.new_session(),
            input: Buffer::new(),
            sink: None,
            after_job: None,
            shutdown_after_job: false,
            shared: Arc::clone(shared),
            deadline: now + shared.timeouts.idle_timeout,
            flushed_at_check: 0,
            in_request: false,
            offer: false,
            awaiting_drain: false,
            peer_eof: false,
            eof_delivered: false,
            closing: false,
        }
    }
}

/// The context is dropped with the connection, also when a loop is dropped
/// with connections still open, so `live` never stays too high.
impl Drop for SessionConn {
    fn drop(&mut self) {
        self.shared.live.fetch_sub(1, Ordering::AcqRel);
    }
}

fn on_connected(c: &mut TcpConnection<'_>, shared: &Arc<ListenerShared>) {
    let now = c.event_loop().now();
    c.set_context(SessionConn::new(shared, now));
    registry::connection_opened(c.event_loop(), shared.sweep_every);
    if registry::draining() {
        // Accepted just before the listener closed: nothing in flight yet.
        c.force_close();
    }
}

fn on_message(c: &mut TcpConnection<'_>, buf: &mut Buffer) {
    let Some(sc) = c.context_mut::<SessionConn>() else {
        buf.consume_all();
        return;
    };
    if sc.closing {
        // Read only to see the peer's end (lingering close).
        buf.consume_all();
        return;
    }
    if sc.input.is_empty() {
        std::mem::swap(&mut sc.input, buf);
    } else {
        sc.input.append(buf.peek());
    }
    buf.consume_all();
    sc.offer = true;
    pump(c);
}

fn on_peer_eof(c: &mut TcpConnection<'_>) {
    if let Some(sc) = c.context_mut::<SessionConn>() {
        sc.peer_eof = true;
    }
    pump(c);
}

/// What one step of [`pump`] did.
enum Step {
    /// Nothing more to do until the next event.
    Wait,
    /// A session call returned this; its output is in the scratch outbox.
    Called(Flow),
}

/// Runs the session as far as it can go now, then updates reading, the
/// deadline and (when shutting down) closes the connection if it went idle.
pub(crate) fn pump(c: &mut TcpConnection<'_>) {
    with_scratch(|out| {
        while let Step::Called(flow) = step(c, out) {
            deliver(c, out);
            if !obey(c, flow) {
                break;
            }
        }
    });
    settle(c);
}

/// One session call, chosen by priority: drained, upload, input, EOF.
fn step(c: &mut TcpConnection<'_>, out: &mut Outbox) -> Step {
    let pending = c.has_pending_output();
    if !c.is_connected() {
        return Step::Wait;
    }
    let Some(sc) = c.context_mut::<SessionConn>() else {
        return Step::Wait;
    };
    if sc.closing || sc.after_job.is_some() {
        return Step::Wait;
    }
    if pending {
        return Step::Wait;
    }
    if sc.awaiting_drain {
        sc.awaiting_drain = false;
        sc.offer = true;
        return Step::Called(sc.session.on_drained(out));
    }
    if let Some(sink) = &mut sc.sink {
        if sc.input.is_empty() && !sc.peer_eof {
            return Step::Wait;
        }
        let result = if sc.input.is_empty() {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("peer closed with {} upload bytes missing", sink.remaining()),
            ))
        } else {
            match sink.write_from(sc.input.peek()) {
                Ok(n) => {
                    sc.input.consume(n);
                    if sink.remaining() > 0 {
                        return Step::Wait;
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            }
        };
        if let Err(e) = &result {
            tracing::debug!("upload ended early: {e}");
        }
        sc.sink = None;
        sc.offer = true;
        return Step::Called(sc.session.on_upload_done(result, out));
    }
    if sc.offer && !sc.input.is_empty() {
        let progress = sc.session.on_input(sc.input.peek(), out);
        sc.input.consume(progress.consumed.min(sc.input.readable_bytes()));
        sc.offer = progress.consumed > 0 || !out.is_empty() || out.has_sink();
        return Step::Called(progress.flow);
    }
    if sc.peer_eof && !sc.eof_delivered {
        sc.eof_delivered = true;
        let flow = sc.session.on_eof(out);
        // No more input can come: whatever the session said, the
        // connection ends once its answer is out.
        return Step::Called(if flow == Flow::CloseNow { flow } else { Flow::CloseAfterFlush });
    }
    Step::Wait
}

/// Moves everything the session queued into the connection, in order, and
/// takes over an upload sink. A job stops the move: it goes to a worker and
/// the rest waits in the context for its answer ([`job_done`]).
fn deliver(c: &mut TcpConnection<'_>, out: &mut Outbox) {
    let mut queued = false;
    let mut job = None;
    while let Some(chunk) = out.front() {
        let n = match chunk {
            Chunk::Bytes(bytes) => {
                c.send(bytes);
                bytes.len() as u64
            }
            Chunk::File { file, offset, len } => {
                c.send_file(Arc::clone(file), offset, len);
                len
            }
            Chunk::Job => {
                job = out.take_job();
                break;
            }
            Chunk::Waiting => {
                // Only a context holds a taken job's placeholder.
                tracing::error!(token = ?c.token(), "output held behind a lost job; closing");
                out.clear();
                c.force_close();
                return;
            }
        };
        out.advance(n);
        queued = true;
    }
    let Some(sc) = c.context_mut::<SessionConn>() else {
        out.clear();
        return;
    };
    sc.awaiting_drain |= queued;
    if let Some(job) = job {
        sc.after_job = Some(Box::new(out.take_all()));
        let jobs = Arc::clone(&sc.shared.jobs);
        let conn = c.handle();
        let task: Task = Box::new(move || {
            let answer = job();
            // Refused only if the connection or its loop is gone.
            conn.run_in_loop(move |c| job_done(c, answer));
        });
        if let Err(task) = jobs.submit(task) {
            task();
        }
        return;
    }
    if let Some(sink) = out.take_sink() {
        sc.sink = Some(Box::new(sink));
    }
}

/// A worker's answer to this connection's job is back: send it and what
/// the session queued behind it, then carry on.
fn job_done(c: &mut TcpConnection<'_>, answer: Vec<u8>) {
    let Some(sc) = c.context_mut::<SessionConn>() else {
        return;
    };
    let Some(mut rest) = sc.after_job.take() else {
        return;
    };
    rest.finish_job(answer);
    deliver(c, &mut rest);
    let Some(sc) = c.context_mut::<SessionConn>() else {
        return;
    };
    if sc.after_job.is_none() && std::mem::take(&mut sc.shutdown_after_job) {
        c.shutdown();
    }
    pump(c);
}

/// Applies a session's [`Flow`]; returns whether the pump may go on.
fn obey(c: &mut TcpConnection<'_>, flow: Flow) -> bool {
    match flow {
        Flow::Continue => true,
        Flow::CloseAfterFlush => {
            let mut job_running = false;
            if let Some(sc) = c.context_mut::<SessionConn>() {
                sc.closing = true;
                sc.sink = None;
                sc.input = Buffer::new();
                job_running = sc.after_job.is_some();
                sc.shutdown_after_job = job_running;
            }
            // A running job's answer still has to go out first.
            if !job_running {
                c.shutdown();
            }
            false
        }
        Flow::CloseNow => {
            c.force_close();
            false
        }
    }
}

/// After a pump: reading on or off, buffers released, deadline moved, and
/// an idle connection closed if the server is shutting down.
fn settle(c: &mut TcpConnection<'_>) {
    let pending = c.has_pending_output();
    let connected = c.is_connected();
    let Some(sc) = c.context_mut::<SessionConn>() else {
        return;
    };
    let idle = !pending && sc.sink.is_none() && !sc.closing && sc.after_job.is_none();
    let stuck = idle && sc.input.readable_bytes() >= MAX_INPUT;
    let full = sc.input.readable_bytes() >= MAX_INPUT;
    if sc.input.is_empty() {
        // Release the read buffer: idle connections hold no buffers.
        sc.input = Buffer::new();
    }
    if stuck {
        tracing::warn!("session left {} input bytes unconsumed (protocol bug); closing", MAX_INPUT);
        c.force_close();
        return;
    }
    if full {
        c.pause_reading();
    } else {
        c.resume_reading();
    }
    if connected && idle && registry::draining() {
        c.force_close();
        return;
    }
    update_deadline(c);
}

/// Moves the deadline after progress: `request_timeout` from the start
/// of a request, `idle_timeout` from now otherwise.
fn update_deadline(c: &mut TcpConnection<'_>) {
    let now = c.event_loop().now();
    let Some(sc) = c.context_mut::<SessionConn>() else {
        return;
    };
    let timeouts = sc.shared.timeouts;
    let in_request = sc.session.in_request();
    if sc.closing && sc.after_job.is_none() {
        // Waiting for the peer to close after our answer: not forever.
        sc.deadline = sc.deadline.min(now + timeouts.request_timeout);
    } else if sc.sink.is_some() || sc.after_job.is_some() {
        sc.deadline = now + timeouts.idle_timeout;
    } else if in_request {
        if !sc.in_request {
            sc.deadline = now + timeouts.request_timeout;
        }
    } else {
        sc.deadline = now + timeouts.idle_timeout;
    }
    sc.in_request = in_request;
}

/// The loop's sweep: times the connection out if it is past its deadline.
pub(crate) fn check_deadline(c: &mut TcpConnection<'_>, now: Instant) {
    let pending = c.has_pending_output();
    let flushed = c.flushed_bytes();
    let Some(sc) = c.context_mut::<SessionConn>() else {
        return;
    };
    if sc.deadline > now {
        return;
    }
    if sc.after_job.is_some() {
        // A job is working for this connection (hashing a big file takes
        // a while): that is progress.
        sc.deadline = now + sc.shared.timeouts.idle_timeout;
        return;
    }
    if sc.closing {
        c.force_close();
        return;
    }
    if pending {
        if flushed != sc.flushed_at_check {
            // A transfer is in flight and the peer is taking it, however
            // slowly: give it another idle timeout.
            sc.flushed_at_check = flushed;
            sc.deadline = now + sc.shared.timeouts.idle_timeout;
            return;
        }
        // Not one byte left in a whole timeout: the peer stopped reading.
        // Holding its descriptor and file range forever would let such
        // clients exhaust the server's descriptors.
        tracing::debug!(token = ?c.token(), "peer stopped reading; closing");
        c.force_close();
        return;
    }
    // After the goodbye (HTTP's 408) and our FIN, the peer gets one more
    // request timeout to close its side before the connection is cut.
    sc.deadline = now + sc.shared.timeouts.request_timeout;
    tracing::debug!(token = ?c.token(), "connection timed out");
    with_scratch(|out| {
        let Some(sc) = c.context_mut::<SessionConn>() else {
            return;
        };
        let flow = match sc.sink.take() {
            Some(sink) => {
                let missing = sink.remaining();
                let err =
                    io::Error::new(io::ErrorKind::TimedOut, format!("upload stalled with {missing} bytes missing"));
                sc.session.on_upload_done(Err(err), out)
            }
            None => sc.session.on_idle_timeout(out),
        };
        deliver(c, out);
        // Whatever the session said, a timed-out connection ends.
        obey(c, if flow == Flow::CloseNow { flow } else { Flow::CloseAfterFlush });
    });
    settle(c);
}

/// Runs `f` with this thread's scratch outbox.
fn with_scratch<R>(f: impl FnOnce(&mut Outbox) -> R) -> R {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut out) => f(&mut out),
        // Sessions never reach the scratch, so it is never borrowed twice;
        // a fresh outbox would do if it ever were.
        Err(_) => f(&mut Outbox::new()),
    })
}

/// Closes the connection now if it has nothing in flight (used when the
/// server starts shutting down); otherwise it closes when it goes idle.
pub(crate) fn close_if_idle(c: &mut TcpConnection<'_>) {
    pump(c);
}
