//! The uring bridge: completions in, connection core ([`Conn`]) calls,
//! actions out as submissions. Every rule about when to read, send, time
//! out or close is the core's.
//!
//! - multishot receive -> `handle_input` (copied out of the provided
//!   buffer, which goes straight back to the pool), 0 -> `handle_eof`;
//! - `Send`/`SendFile` -> the connection's [`Output`] (reported with
//!   `handle_queued`: the session sees no more input until it is out, a
//!   high-water mark of zero), sent by one operation chain at a time;
//!   its completions -> `handle_write_progress`, empty -> `handle_flushed`;
//! - `WriteFile` (payload that came with the request) -> `pwrite` on the
//!   ring thread; `Splice` (the rest of an upload) -> socket -> pipe ->
//!   file splices ([`Upload`]), with the multishot receive off meanwhile;
//!   its completions -> `handle_spliced`; `RunJob` -> the job pool, whose
//!   worker posts the answer to this thread's mailbox; `Shutdown` ->
//!   half-close; `Close` -> cancel the connection's operations, and once
//!   the last one completed, close the socket and free the slot (no
//!   buffer or descriptor the kernel may still use is ever freed).
//! - Receiving stops (the multishot receive is cancelled) whenever the
//!   core does not want input, so a peer that sends without reading
//!   cannot grow its input without bound.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Instant;

use ferry_proto::conn::{Action, Conn};
use ferry_proto::{FileSlice, Now, Session};
use io_uring::{cqueue, opcode, types};

use super::bufs::{BufRing, GROUP};
use super::output::Output;
use super::ring::{Op, Ring, Token, cqe_error};
use super::shared::{Mailbox, Msg, Shared};
use super::upload::Upload;
use crate::net::Peer;
use crate::reactor::jobs::Task;

/// The state of a connection's multishot receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recv {
    Idle,
    Armed,
    /// A cancellation is on its way.
    Cancelling,
}

/// One open connection.
pub(super) struct Live {
    socket: OwnedFd,
    /// For the log line (`None`: the socket could not tell).
    peer: Option<Peer>,
    opened: Instant,
    core: Conn<Box<dyn Session + Send>>,
    out: Output,
    up: Upload,
    /// The core asked to splice an upload at the last drive: receiving
    /// stays off (the socket's bytes go to the file).
    splicing: bool,
    recv: Recv,
    /// The peer's end of stream arrived: no receive is armed again.
    eof: bool,
    /// The connection is over; its slot is freed once no operation is
    /// in flight.
    closing: bool,
}

/// What the bridge needs of its thread besides the connection.
pub(super) struct Ctx<'a> {
    pub(super) ring: &'a mut Ring,
    pub(super) shared: &'a Arc<Shared>,
    pub(super) mailbox: &'a Arc<Mailbox>,
    /// When the batch of completions being handled was reaped.
    pub(super) now: Now,
}

impl Live {
    pub(super) fn new(
        socket: OwnedFd,
        peer: Option<Peer>,
        core: Conn<Box<dyn Session + Send>>,
        opened: Instant,
    ) -> Live {
        Live {
            socket,
            peer,
            opened,
            core,
            out: Output::default(),
            up: Upload::default(),
            splicing: false,
            recv: Recv::Idle,
            eof: false,
            closing: false,
        }
    }

    /// True once closing and no operation is in flight: the slot may go.
    pub(super) fn finished(&self) -> bool {
        self.closing && self.recv == Recv::Idle && !self.out.busy() && !self.up.busy()
    }

    /// A completion of the multishot receive.
    pub(super) fn on_recv(&mut self, ctx: &mut Ctx<'_>, me: Token, bufs: &mut BufRing, result: i32, flags: u32) {
        if let Some(bid) = cqueue::buffer_select(flags) {
            if result > 0 && !self.closing {
                self.core.handle_input(ctx.now, bufs.get(bid, result as usize));
            }
            bufs.recycle(bid);
        }
        if !cqueue::more(flags) {
            self.recv = Recv::Idle;
        } else if self.recv == Recv::Cancelling {
            // The cancellation met the receive between two completions and
            // missed it: ask again.
            ctx.ring.cancel(me.encode());
        }
        if self.closing {
            return;
        }
        let now = ctx.now;
        match result {
            0 => {
                self.eof = true;
                self.core.handle_eof(now);
            }
            n if n > 0 => {}
            // Out of pool buffers (re-armed below, after this batch gave
            // some back) or our own cancellation.
            n if n == -rustix::io::Errno::NOBUFS.raw_os_error() || n == -rustix::io::Errno::CANCELED.raw_os_error() => {
            }
            n => self.core.handle_send_error(cqe_error(n)),
        }
        self.drive(ctx, me, now);
    }

    /// A completion of a send or splice.
    pub(super) fn on_output(&mut self, ctx: &mut Ctx<'_>, me: Token, result: i32) {
        let moved = self.out.complete(me.op, result);
        if self.closing {
            return;
        }
        let now = ctx.now;
        if moved.sent > 0 {
            self.core.handle_write_progress(now);
        }
        if let Some(e) = moved.error {
            self.core.handle_send_error(e);
        }
        self.drive(ctx, me, now);
    }

    /// A completion of an upload splice.
    pub(super) fn on_upload(&mut self, ctx: &mut Ctx<'_>, me: Token, result: i32) {
        let moved = self.up.complete(me.op, result);
        if self.closing {
            return;
        }
        let now = ctx.now;
        if moved.into_file > 0 {
            self.core.handle_spliced(now, moved.into_file);
        }
        if moved.eof {
            self.eof = true;
            self.core.handle_spliced(now, 0);
        }
        if let Some(e) = moved.error {
            self.core.handle_upload_error(now, e);
        }
        self.drive(ctx, me, now);
    }

    /// A job's answer came back.
    pub(super) fn on_job_done(&mut self, ctx: &mut Ctx<'_>, me: Token, answer: Vec<u8>) {
        if self.closing {
            return;
        }
        let now = ctx.now;
        self.core.handle_job_done(now, answer);
        self.drive(ctx, me, now);
    }

    /// The sweep: time the connection out if its deadline passed.
    pub(super) fn check_deadline(&mut self, ctx: &mut Ctx<'_>, me: Token, now: Now) {
        if !self.closing && self.core.next_deadline().is_some_and(|d| d <= now.mono) {
            self.core.handle_timeout(now);
            self.drive(ctx, me, now);
        }
    }

    /// The server drains: close now if nothing is in flight, else once it
    /// is done.
    pub(super) fn drain(&mut self, ctx: &mut Ctx<'_>, me: Token) {
        if !self.closing {
            crate::upgrade::shut_down_conn(&mut self.core);
            let now = ctx.now;
            self.drive(ctx, me, now);
        }
    }

    /// The drain is over: close whatever is still open.
    pub(super) fn cut(&mut self, ctx: &mut Ctx<'_>, me: Token) {
        if !self.closing {
            self.log_closed(&"cut: the server stopped before it finished");
            self.begin_close(ctx, me);
        }
    }

    /// Performs the core's actions until it waits, then starts the output
    /// and sets receiving on or off.
    pub(super) fn drive(&mut self, ctx: &mut Ctx<'_>, me: Token, now: Now) {
        self.splicing = false;
        loop {
            if self.out.is_empty() {
                self.core.handle_flushed(now);
            }
            let Some(action) = self.core.poll_action(now) else { break };
            match action {
                Action::Send(bytes) => {
                    let n = bytes.len() as u64;
                    self.out.push_bytes(bytes);
                    self.core.handle_queued(now, n);
                }
                Action::SendFile(FileSlice { file, offset, len }) => {
                    self.out.push_file(Arc::clone(file), offset, len);
                    self.core.handle_queued(now, len);
                }
                Action::WriteFile { file, offset, data } => {
                    let n = data.len();
                    match file.write_all_at(data, offset) {
                        Ok(()) => self.core.handle_written(now, n),
                        Err(e) => self.core.handle_upload_error(now, e),
                    }
                }
                Action::Splice { file, offset, max } => {
                    self.splicing = true;
                    // One splice at a time, and only once the receive ended
                    // (`steer_recv` cancels it): its bytes come first.
                    if self.up.busy() || self.recv != Recv::Idle {
                        break;
                    }
                    match self.up.next_ops(&self.socket, file, offset, max) {
                        Ok(ops) => {
                            for (op, entry) in ops.into_iter().flatten() {
                                // SAFETY: the pipe and the file are held by
                                // `self.up` until the last completion; the
                                // socket lives as long as the slot.
                                unsafe { ctx.ring.push(entry, Token { op, ..me }) };
                            }
                            break;
                        }
                        Err(e) => self.core.handle_upload_error(now, e),
                    }
                }
                Action::RunJob(job) => {
                    let mailbox = Arc::clone(ctx.mailbox);
                    let (index, generation) = (me.index, me.generation);
                    let task: Task = Box::new(move || {
                        let answer = job();
                        mailbox.post(Msg::JobDone { index, generation, answer });
                    });
                    if let Err(task) = ctx.shared.jobs.submit(task) {
                        // The answer is posted to the mailbox, so running
                        // it here cannot re-enter this call.
                        task();
                    }
                }
                Action::Shutdown => {
                    // Already gone if the peer reset: the close says so.
                    let _ = rustix::net::shutdown(&self.socket, rustix::net::Shutdown::Write);
                }
                Action::Close(reason) => {
                    self.log_closed(&reason);
                    self.begin_close(ctx, me);
                    return;
                }
            }
        }
        match self.out.next_ops(&self.socket) {
            Ok(ops) => {
                for (op, entry) in ops.into_iter().flatten() {
                    // SAFETY: the bytes, file and pipe these entries name
                    // belong to `self.out`, which keeps them until their
                    // completions (and the slot lives until then).
                    unsafe { ctx.ring.push(entry, Token { op, ..me }) };
                }
            }
            Err(e) => {
                self.core.handle_send_error(e);
                return self.drive(ctx, me, now);
            }
        }
        self.steer_recv(ctx, me);
    }

    /// Arms the multishot receive when the core wants input and cancels
    /// it when it does not.
    fn steer_recv(&mut self, ctx: &mut Ctx<'_>, me: Token) {
        let wants = self.core.wants_read() && !self.eof && !self.splicing;
        match self.recv {
            Recv::Idle if wants => {
                let entry = opcode::RecvMulti::new(types::Fd(self.socket.as_raw_fd()), GROUP).build();
                // SAFETY: the receive writes only into the pool's buffers,
                // which outlive every operation of the ring; the socket
                // stays open until the receive completed.
                unsafe { ctx.ring.push(entry, Token { op: Op::Recv, ..me }) };
                self.recv = Recv::Armed;
            }
            Recv::Armed if !wants => {
                ctx.ring.cancel(Token { op: Op::Recv, ..me }.encode());
                self.recv = Recv::Cancelling;
            }
            _ => {}
        }
    }

    /// Ends the connection: stops its operations; the slot is freed once
    /// they all completed ([`Live::finished`]).
    fn begin_close(&mut self, ctx: &mut Ctx<'_>, me: Token) {
        self.closing = true;
        if self.recv == Recv::Armed || self.out.busy() || self.up.busy() {
            // Makes a pending receive end and a send or splice blocked on a
            // full socket fail at once; the cancellations catch the rest.
            let _ = rustix::net::shutdown(&self.socket, rustix::net::Shutdown::Both);
        }
        if self.recv == Recv::Armed {
            ctx.ring.cancel(Token { op: Op::Recv, ..me }.encode());
            self.recv = Recv::Cancelling;
        }
        if self.out.busy() {
            for op in [Op::Send, Op::FileIn, Op::FileOut] {
                ctx.ring.cancel(Token { op, ..me }.encode());
            }
        }
        if self.up.busy() {
            for op in [Op::UpIn, Op::UpOut] {
                ctx.ring.cancel(Token { op, ..me }.encode());
            }
        }
    }

    /// The connection's one info line, as every model writes it.
    fn log_closed(&self, reason: &dyn std::fmt::Display) {
        let stats = self.core.stats();
        let peer = self.peer.map_or_else(|| "unknown peer".to_string(), |p| p.to_string());
        tracing::info!(
            "{peer}: connection closed ({reason}): {} bytes in, {} bytes out, {:.3}s",
            stats.bytes_in,
            stats.bytes_out,
            self.opened.elapsed().as_secs_f64()
        );
    }
}
