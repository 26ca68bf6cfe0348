//! [`Conn`]: one connection's driving rules as a state machine (see the
//! module docs of [`crate::conn`] for the driver's side).

use std::io;
use std::mem;
use std::time::{Duration, Instant};

use super::input::Input;
use super::{Action, CloseReason, ConnConfig, LINGER, LINGER_BYTES};
use crate::{Chunk, Flow, Now, Outbox, Session, Sink};

/// What one connection moved, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Bytes received (requests and upload payloads).
    pub bytes_in: u64,
    /// Bytes handed to the kernel or the driver's output buffer.
    pub bytes_out: u64,
    /// Calls of [`Session::on_input`].
    pub input_passes: u64,
}

/// Where the connection is in its life.
#[derive(Debug)]
enum Phase {
    /// Serving requests.
    Open,
    /// Closing once the queued output is out; input is discarded.
    /// `unread`: the peer sent bytes nobody read, so it may still be
    /// sending and closing must linger.
    Flushing { reason: CloseReason, unread: bool },
    /// Our FIN is sent; discarding input until the peer's end or `until`.
    Lingering { reason: CloseReason, started: Instant, until: Instant, discarded: usize },
    /// [`Action::Close`] is due.
    Closing(CloseReason),
    /// [`Action::Close`] was returned.
    Closed,
}

/// The next action's kind, found without holding borrows of the state.
enum Next {
    Wait,
    Out,
    Job,
    Write,
    Splice,
    Shutdown,
    Close,
}

/// One connection: a [`Session`] plus every rule about when to read,
/// send, pause, time out and close. Syscall-free; see [`crate::conn`].
pub struct Conn<S> {
    session: S,
    config: ConnConfig,
    /// What the session queued and the driver has not taken yet.
    out: Outbox,
    input: Input,
    /// The upload being received, once the output ahead of it is out.
    sink: Option<Sink>,
    phase: Phase,
    /// Input should be offered again (new bytes, or the session made
    /// progress and may have stopped early).
    offer: bool,
    /// Output went out since the last [`Session::on_drained`].
    awaiting_drain: bool,
    /// The driver holds output of ours it has not flushed yet.
    backlog: bool,
    /// A job is out; nothing is sent until its answer is back.
    job_running: bool,
    peer_eof: bool,
    eof_delivered: bool,
    /// The server is draining: close as soon as nothing is in flight.
    draining: bool,
    /// The last time bytes moved in either direction.
    last_progress: Instant,
    /// When the request under way began to arrive.
    request_started: Option<Instant>,
    stats: ConnStats,
}

impl<S: Session> Conn<S> {
    /// A connection opened at `now`.
    pub fn new(session: S, config: ConnConfig, now: Now) -> Conn<S> {
        Conn {
            session,
            config,
            out: Outbox::new(),
            input: Input::default(),
            sink: None,
            phase: Phase::Open,
            offer: false,
            awaiting_drain: false,
            backlog: false,
            job_running: false,
            peer_eof: false,
            eof_delivered: false,
            draining: false,
            last_progress: now.mono,
            request_started: None,
            stats: ConnStats::default(),
        }
    }

    /// The next thing the driver should do, or `None` to wait (for input
    /// if [`Conn::wants_read`], a job's answer, or the driver's own output
    /// buffer to drain) until [`Conn::next_deadline`].
    pub fn poll_action(&mut self, now: Now) -> Option<Action<'_>> {
        match self.step(now) {
            Next::Wait => None,
            Next::Out => match self.out.front()? {
                Chunk::Bytes(bytes) => Some(Action::Send(bytes)),
                Chunk::File { file, offset, len } => Some(Action::SendFile { file, offset, len }),
                Chunk::Job | Chunk::Waiting => None,
            },
            Next::Job => {
                let job = self.out.take_job()?;
                self.job_running = true;
                Some(Action::RunJob(job))
            }
            Next::Write => {
                let sink = self.sink.as_ref()?;
                let n = usize::try_from(sink.remaining()).unwrap_or(usize::MAX).min(self.input.len());
                Some(Action::WriteFile { file: sink.file(), offset: sink.offset(), data: &self.input.data()[..n] })
            }
            Next::Splice => {
                let sink = self.sink.as_ref()?;
                Some(Action::Splice { file: sink.file(), offset: sink.offset(), max: sink.remaining() })
            }
            Next::Shutdown => {
                let Phase::Flushing { reason, unread } = mem::replace(&mut self.phase, Phase::Closed) else {
                    return None;
                };
                if self.peer_eof {
                    // The peer is done sending: nothing to linger for.
                    return Some(Action::Close(reason));
                }
                let until = if unread { now.mono + LINGER } else { now.mono };
                self.phase = Phase::Lingering { reason, started: now.mono, until, discarded: 0 };
                Some(Action::Shutdown)
            }
            Next::Close => match mem::replace(&mut self.phase, Phase::Closed) {
                Phase::Closing(reason) => Some(Action::Close(reason)),
                _ => None,
            },
        }
    }

    /// Runs session calls until the next action is known.
    fn step(&mut self, now: Now) -> Next {
        loop {
            match self.phase {
                Phase::Closed | Phase::Lingering { .. } => return Next::Wait,
                Phase::Closing(_) => return Next::Close,
                Phase::Open | Phase::Flushing { .. } => {}
            }
            if self.job_running {
                return Next::Wait;
            }
            match self.out.front() {
                Some(Chunk::Bytes(_) | Chunk::File { .. }) => return Next::Out,
                Some(Chunk::Job) => return Next::Job,
                Some(Chunk::Waiting) => {
                    self.fail(io::Error::other("output held behind a job that was never finished"));
                    continue;
                }
                None => {}
            }
            if self.backlog {
                return Next::Wait;
            }
            if matches!(self.phase, Phase::Flushing { .. }) {
                return Next::Shutdown;
            }
            if self.awaiting_drain {
                self.awaiting_drain = false;
                self.offer = true;
                let flow = self.session.on_drained(&mut self.out, now);
                self.obey(now, flow, CloseReason::SessionClosed);
                continue;
            }
            if self.sink.is_none() {
                self.sink = self.out.take_sink();
            }
            if let Some(sink) = &self.sink {
                let missing = sink.remaining();
                if missing == 0 {
                    self.upload_done(now, Ok(()));
                } else if !self.input.is_empty() {
                    return Next::Write;
                } else if self.peer_eof {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("peer closed with {missing} upload bytes missing"),
                    );
                    self.upload_done(now, Err(e));
                } else if self.config.splice {
                    return Next::Splice;
                } else {
                    return Next::Wait;
                }
                continue;
            }
            if self.offer && !self.input.is_empty() {
                let progress = self.session.on_input(self.input.data(), &mut self.out, now);
                self.stats.input_passes += 1;
                debug_assert!(progress.consumed <= self.input.len(), "a session consumed more than it was given");
                self.input.consume(progress.consumed);
                self.offer = progress.consumed > 0 || !self.out.is_empty() || self.out.has_sink();
                self.obey(now, progress.flow, CloseReason::SessionClosed);
                continue;
            }
            if self.peer_eof && !self.eof_delivered {
                self.eof_delivered = true;
                // No more input can come: whatever the session says, the
                // connection ends once its answer is out.
                let flow = match self.session.on_eof(&mut self.out, now) {
                    Flow::CloseNow => Flow::CloseNow,
                    _ => Flow::CloseAfterFlush,
                };
                self.obey(now, flow, CloseReason::PeerClosed);
                continue;
            }
            if self.draining {
                self.phase = Phase::Closing(CloseReason::Shutdown);
                continue;
            }
            if self.input.room() == 0 {
                self.fail(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "session left its whole input buffer unconsumed (protocol bug)",
                ));
                continue;
            }
            return Next::Wait;
        }
    }

    /// Applies a session's [`Flow`]; `reason` is why the connection ends
    /// if it asks to close.
    fn obey(&mut self, now: Now, flow: Flow, reason: CloseReason) {
        let in_request = self.session.in_request();
        if !in_request {
            self.request_started = None;
        } else if self.request_started.is_none() {
            self.request_started = Some(now.mono);
        }
        match flow {
            Flow::Continue => {}
            Flow::CloseAfterFlush => {
                if matches!(self.phase, Phase::Open) {
                    self.phase = Phase::Flushing { reason, unread: !self.input.is_empty() };
                    self.input.clear();
                    self.sink = None;
                    drop(self.out.take_sink());
                }
            }
            Flow::CloseNow => {
                let reason = match mem::replace(&mut self.phase, Phase::Closed) {
                    Phase::Flushing { reason, .. } | Phase::Lingering { reason, .. } | Phase::Closing(reason) => reason,
                    Phase::Open | Phase::Closed => reason,
                };
                self.close_now(reason);
            }
        }
    }

    /// Ends the connection at once, dropping what is queued.
    fn close_now(&mut self, reason: CloseReason) {
        self.out.clear();
        self.sink = None;
        self.input.clear();
        self.phase = Phase::Closing(reason);
    }

    /// Ends the connection at once because of an error.
    fn fail(&mut self, error: io::Error) {
        if !matches!(self.phase, Phase::Closed) {
            self.close_now(CloseReason::Error(error));
        }
    }

    fn upload_done(&mut self, now: Now, result: io::Result<()>) {
        if let Err(e) = &result {
            tracing::debug!("upload ended early: {e}");
        }
        self.sink = None;
        self.offer = true;
        let flow = self.session.on_upload_done(result, &mut self.out, now);
        self.obey(now, flow, CloseReason::SessionClosed);
    }

    /// `bytes` arrived from the peer.
    pub fn handle_input(&mut self, now: Now, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.stats.bytes_in += bytes.len() as u64;
        self.last_progress = now.mono;
        match &mut self.phase {
            Phase::Open => {
                self.input.extend(bytes);
                self.offer = true;
            }
            Phase::Flushing { unread, .. } => *unread = true,
            Phase::Lingering { started, until, discarded, .. } => {
                *discarded += bytes.len();
                *until = (*until).max(*started + LINGER);
                if *discarded >= LINGER_BYTES {
                    self.end_linger();
                }
            }
            Phase::Closing(_) | Phase::Closed => {}
        }
    }

    /// The peer half-closed: no more input will come.
    pub fn handle_eof(&mut self, _now: Now) {
        self.peer_eof = true;
        if matches!(self.phase, Phase::Lingering { .. }) {
            self.end_linger();
        }
    }

    fn end_linger(&mut self) {
        if let Phase::Lingering { reason, .. } = mem::replace(&mut self.phase, Phase::Closed) {
            self.phase = Phase::Closing(reason);
        }
    }

    /// The kernel took `n` bytes of the front [`Action::Send`] or
    /// [`Action::SendFile`].
    pub fn handle_sent(&mut self, now: Now, n: u64) {
        self.out.advance(n);
        self.stats.bytes_out += n;
        self.awaiting_drain = true;
        if n > 0 {
            self.last_progress = now.mono;
        }
    }

    /// The driver took `n` bytes of the front send into its own output
    /// buffer; the core waits for [`Conn::handle_flushed`] before it tells
    /// the session its output drained or offers it more input (a high-water
    /// mark of zero).
    pub fn handle_queued(&mut self, now: Now, n: u64) {
        self.handle_sent(now, n);
        self.backlog = true;
    }

    /// The driver's output buffer is empty again.
    pub fn handle_flushed(&mut self, now: Now) {
        if mem::take(&mut self.backlog) {
            self.last_progress = now.mono;
        }
    }

    /// The kernel took some of the driver's buffered output (a slow but
    /// live reader keeps its connection).
    pub fn handle_write_progress(&mut self, now: Now) {
        self.last_progress = now.mono;
    }

    /// A send failed (reset by peer, a file that shrank): the connection
    /// ends at once.
    pub fn handle_send_error(&mut self, error: io::Error) {
        self.fail(error);
    }

    /// `n` bytes of the [`Action::WriteFile`] reached the file.
    pub fn handle_written(&mut self, now: Now, n: usize) {
        if let Some(sink) = &mut self.sink {
            sink.advance(n as u64);
            self.input.consume(n);
            self.last_progress = now.mono;
        }
    }

    /// [`Action::Splice`] moved `n` payload bytes into the file; 0 means
    /// the peer closed.
    pub fn handle_spliced(&mut self, now: Now, n: usize) {
        if n == 0 {
            self.handle_eof(now);
            return;
        }
        if let Some(sink) = &mut self.sink {
            sink.advance(n as u64);
            self.stats.bytes_in += n as u64;
            self.last_progress = now.mono;
        }
    }

    /// Writing or splicing the upload failed; the session hears of it.
    pub fn handle_upload_error(&mut self, now: Now, error: io::Error) {
        if self.sink.is_some() {
            self.upload_done(now, Err(error));
        }
    }

    /// The job of the last [`Action::RunJob`] finished with `answer`.
    pub fn handle_job_done(&mut self, now: Now, answer: Vec<u8>) {
        if !mem::take(&mut self.job_running) {
            return;
        }
        self.last_progress = now.mono;
        self.out.finish_job(answer);
    }

    /// The server is shutting down: close as soon as nothing is in flight
    /// (an answer being sent, an upload, a job); a connection waiting for
    /// its next request closes at once.
    pub fn handle_shutdown(&mut self) {
        self.draining = true;
    }

    /// [`Conn::next_deadline`] may have passed.
    pub fn handle_timeout(&mut self, now: Now) {
        if self.next_deadline().is_none_or(|deadline| now.mono < deadline) {
            return;
        }
        if matches!(self.phase, Phase::Lingering { .. }) {
            self.end_linger();
            return;
        }
        if !self.out.is_empty() || self.backlog {
            // Not one byte taken in a whole timeout: holding the
            // descriptor and file range forever would let such peers
            // exhaust the server's descriptors.
            self.fail(io::Error::new(
                io::ErrorKind::TimedOut,
                "peer stopped reading (nothing sent for the idle timeout)",
            ));
            return;
        }
        let flow = match self.sink.take() {
            Some(sink) => {
                let missing = sink.remaining();
                let e = io::Error::new(io::ErrorKind::TimedOut, format!("upload stalled with {missing} bytes missing"));
                tracing::debug!("upload ended early: {e}");
                self.session.on_upload_done(Err(e), &mut self.out, now)
            }
            None => self.session.on_idle_timeout(&mut self.out, now),
        };
        // Whatever the session says, a timed-out connection ends.
        let flow = if flow == Flow::CloseNow { flow } else { Flow::CloseAfterFlush };
        self.obey(now, flow, CloseReason::IdleTimeout);
    }

    /// When [`Conn::handle_timeout`] is due, if anything can time out.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Closing(_) | Phase::Closed => return None,
            Phase::Lingering { until, .. } => return Some(*until),
            Phase::Open | Phase::Flushing { .. } => {}
        }
        if self.job_running {
            // A job working for this connection is progress.
            return None;
        }
        let timeouts = self.config.timeouts;
        let busy = !self.out.is_empty() || self.backlog || self.sink.is_some();
        match self.request_started {
            Some(started) if !busy => started.checked_add(timeouts.request_timeout),
            _ => self.last_progress.checked_add(timeouts.idle_timeout),
        }
    }

    /// True while the driver should read from the peer (input is
    /// discarded while closing; reading pauses while the input buffer is
    /// full).
    pub fn wants_read(&self) -> bool {
        self.read_limit() > 0
    }

    /// Most bytes the driver should read now.
    pub fn read_limit(&self) -> usize {
        match self.phase {
            Phase::Open => self.input.room(),
            Phase::Flushing { .. } | Phase::Lingering { .. } => super::MAX_INPUT,
            Phase::Closing(_) | Phase::Closed => 0,
        }
    }

    /// True once [`Action::Close`] was returned.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Received bytes the session has not consumed (a partial request).
    pub fn buffered_input(&self) -> usize {
        self.input.len()
    }

    /// Unsent bytes of queued plain-byte output (file ranges not counted).
    pub fn queued_bytes(&self) -> usize {
        self.out.queued_bytes()
    }

    /// What the connection moved so far.
    pub fn stats(&self) -> ConnStats {
        self.stats
    }

    /// The session, for tests and logs.
    pub fn session(&self) -> &S {
        &self.session
    }

    /// The configured timeouts' longest wait, for drivers that need a
    /// bound on a single blocking call.
    pub fn idle_timeout(&self) -> Duration {
        self.config.timeouts.idle_timeout
    }
}
