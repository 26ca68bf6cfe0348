//! [`Conn`]: one connection's driving rules as a state machine (see the
//! module docs of [`crate::conn`] for the driver's side).

use std::io;
use std::mem;
use std::sync::Arc;
use std::time::Instant;

use super::input::Input;
use super::tls::{Decrypted, Tls};
use super::{Action, CloseReason, ConnConfig, LINGER};
use crate::{Chunk, Flow, Now, Outbox, Session};

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
pub(super) enum Phase {
    /// Serving requests.
    Open,
    /// Closing once the queued output is out; input is discarded.
    /// `unread`: the peer sent bytes nobody read, so it may still be
    /// sending and closing must linger.
    Flushing { reason: CloseReason, unread: bool },
    /// Our FIN is sent; discarding input until the peer's end or `until`.
    /// `extended`: `until` is the full [`LINGER`] after the FIN (at first
    /// it is the FIN itself when nothing unread was seen).
    Lingering { reason: CloseReason, until: Instant, discarded: u32, extended: bool },
    /// [`Action::Close`] is due.
    Closing(CloseReason),
    /// [`Action::Close`] was returned.
    Closed,
}

/// Where the output sent since the session last heard
/// [`Session::on_drained`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    /// Nothing was sent since.
    Nothing,
    /// It reached the kernel: `on_drained` is due.
    Sent,
    /// The driver holds some in its own buffer: wait for `handle_flushed`.
    Buffered,
}

/// The peer's side of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Peer {
    /// It may send more.
    Sending,
    /// It half-closed; the session has not heard yet.
    Closed,
    /// It half-closed and the session heard (`on_eof`).
    ClosedAndTold,
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
    pub(super) session: S,
    /// Shared by the connections of one listener.
    pub(super) config: Arc<ConnConfig>,
    /// What the session queued and the driver has not taken yet.
    pub(super) out: Outbox,
    pub(super) input: Input,
    pub(super) phase: Phase,
    /// Input should be offered again (new bytes, or the session made
    /// progress and may have stopped early).
    pub(super) offer: bool,
    /// Where the output since the last [`Session::on_drained`] is.
    pub(super) written: Written,
    /// A job is out; nothing is sent until its answer is back.
    pub(super) job_running: bool,
    /// Whether the peer still sends.
    pub(super) peer: Peer,
    /// The server is draining: close as soon as nothing is in flight.
    pub(super) draining: bool,
    /// While draining, a connection that has received nothing yet waits
    /// for its first request and answers it (see
    /// [`Conn::handle_shutdown_serving_fresh`]).
    pub(super) serve_fresh: bool,
    /// The last time bytes moved in either direction.
    pub(super) last_progress: Instant,
    /// When the request under way began to arrive.
    pub(super) request_started: Option<Instant>,
    pub(super) stats: ConnStats,
    /// The TLS layer between the driver and the session, if any.
    pub(super) tls: Option<Box<Tls>>,
}

impl<S: Session> Conn<S> {
    /// A connection opened at `now`, with the settings of its listener
    /// (shared by its connections).
    pub fn new(session: S, config: Arc<ConnConfig>, now: Now) -> Conn<S> {
        let (tls, phase) = match config.tls.as_ref().map(Tls::new) {
            None => (None, Phase::Open),
            Some(Ok(tls)) => (Some(Box::new(tls)), Phase::Open),
            Some(Err(e)) => (None, Phase::Closing(CloseReason::Error(io::Error::other(format!("TLS: {e}"))))),
        };
        Conn {
            session,
            config,
            out: Outbox::new(),
            input: Input::default(),
            phase,
            offer: false,
            written: Written::Nothing,
            job_running: false,
            peer: Peer::Sending,
            draining: false,
            serve_fresh: false,
            last_progress: now.mono,
            request_started: None,
            stats: ConnStats::default(),
            tls,
        }
    }

    /// The next thing the driver should do, or `None` to wait (for input
    /// if [`Conn::wants_read`], a job's answer, or the driver's own output
    /// buffer to drain) until [`Conn::next_deadline`].
    pub fn poll_action(&mut self, now: Now) -> Option<Action<'_>> {
        match self.step(now) {
            Next::Wait => None,
            Next::Out if self.tls.is_some() => self.tls.as_deref().map(|tls| Action::Send(tls.output())),
            Next::Out => match self.out.front()? {
                Chunk::Bytes(bytes) => Some(Action::Send(bytes)),
                Chunk::File(slice) => Some(Action::SendFile(slice)),
                Chunk::Job | Chunk::Waiting => None,
            },
            Next::Job => {
                let job = self.out.take_job()?;
                self.job_running = true;
                Some(Action::RunJob(job))
            }
            Next::Write => {
                let sink = self.out.sink()?;
                let n = usize::try_from(sink.remaining()).unwrap_or(usize::MAX).min(self.input.len());
                Some(Action::WriteFile { file: sink.file(), offset: sink.offset(), data: &self.input.data()[..n] })
            }
            Next::Splice => {
                let sink = self.out.sink()?;
                Some(Action::Splice { file: sink.file(), offset: sink.offset(), max: sink.remaining() })
            }
            Next::Shutdown => {
                let Phase::Flushing { reason, unread } = mem::replace(&mut self.phase, Phase::Closed) else {
                    return None;
                };
                if self.peer != Peer::Sending {
                    // The peer is done sending: nothing to linger for.
                    self.session.on_closed(now);
                    return Some(Action::Close(reason));
                }
                let until = if unread { now.mono + LINGER } else { now.mono };
                self.phase = Phase::Lingering { reason, until, discarded: 0, extended: unread };
                Some(Action::Shutdown)
            }
            Next::Close => match mem::replace(&mut self.phase, Phase::Closed) {
                Phase::Closing(reason) => {
                    self.session.on_closed(now);
                    Some(Action::Close(reason))
                }
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
            if self.tls.is_some() && self.tls_step() {
                return Next::Out;
            }
            if self.job_running {
                return Next::Wait;
            }
            match self.out.front() {
                Some(Chunk::Bytes(_) | Chunk::File(_)) if self.tls.is_some() => {
                    // One encrypted chunk at a time: while the driver holds
                    // the last one in its own buffer, encrypting more would
                    // move the whole file into that buffer.
                    if self.written == Written::Buffered || !self.tls_encrypt() {
                        return Next::Wait;
                    }
                    continue;
                }
                Some(Chunk::Bytes(_) | Chunk::File(_)) => return Next::Out,
                Some(Chunk::Job) => return Next::Job,
                Some(Chunk::Waiting) => {
                    self.fail(io::Error::other("output held behind a job that was never finished"));
                    continue;
                }
                None => {}
            }
            if self.written == Written::Buffered {
                return Next::Wait;
            }
            if matches!(self.phase, Phase::Flushing { .. }) {
                if self.tls.as_deref_mut().is_some_and(Tls::notify_close) {
                    // Our close_notify goes out before the FIN.
                    continue;
                }
                return Next::Shutdown;
            }
            if self.written == Written::Sent {
                self.written = Written::Nothing;
                self.offer = true;
                let flow = self.session.on_drained(&mut self.out, now);
                self.obey(now, flow, CloseReason::SessionClosed);
                continue;
            }
            // The outbox is empty here: its sink, if any, is the upload
            // being received now.
            if let Some(sink) = self.out.sink() {
                let missing = sink.remaining();
                if missing == 0 {
                    self.upload_done(now, Ok(()));
                } else if !self.input.is_empty() {
                    return Next::Write;
                } else if self.peer != Peer::Sending {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("peer closed with {missing} upload bytes missing"),
                    );
                    self.upload_done(now, Err(e));
                } else if self.config.splice && self.tls.is_none() {
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
            if self.peer == Peer::Closed {
                self.peer = Peer::ClosedAndTold;
                // No more input can come: whatever the session says, the
                // connection ends once its answer is out.
                let flow = match self.session.on_eof(&mut self.out, now) {
                    Flow::CloseNow => Flow::CloseNow,
                    _ => Flow::CloseAfterFlush,
                };
                self.obey(now, flow, CloseReason::PeerClosed);
                continue;
            }
            if self.draining && !(self.serve_fresh && self.stats.bytes_in == 0) {
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
            if let Some(tls) = self.tls.as_deref_mut() {
                // Waiting for the next request: hold no output buffers.
                tls.release_buffers();
            }
            return Next::Wait;
        }
    }

    /// Applies a session's [`Flow`]; `reason` is why the connection ends
    /// if it asks to close.
    pub(super) fn obey(&mut self, now: Now, flow: Flow, reason: CloseReason) {
        // A TLS handshake under way is part of the first request.
        let in_request = self.session.in_request() || self.tls.as_ref().is_some_and(|t| t.is_handshaking());
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
    pub(super) fn close_now(&mut self, reason: CloseReason) {
        self.out.clear();
        self.input.clear();
        self.phase = Phase::Closing(reason);
    }

    /// Ends the connection at once because of an error.
    pub(super) fn fail(&mut self, error: io::Error) {
        if !matches!(self.phase, Phase::Closed) {
            self.close_now(CloseReason::Error(error));
        }
    }

    pub(super) fn upload_done(&mut self, now: Now, result: io::Result<()>) {
        if let Err(e) = &result {
            tracing::debug!("upload ended early: {e}");
        }
        drop(self.out.take_sink());
        self.offer = true;
        let flow = self.session.on_upload_done(result, &mut self.out, now);
        self.obey(now, flow, CloseReason::SessionClosed);
    }
}

impl<S: Session> Conn<S> {
    /// Runs received ciphertext through the TLS layer; true when ciphertext
    /// is ready to send.
    fn tls_step(&mut self) -> bool {
        let Some(tls) = self.tls.as_deref_mut() else { return false };
        if matches!(self.phase, Phase::Open) {
            let before = self.input.len();
            match tls.decrypt(&mut self.input) {
                Decrypted::Data => {}
                Decrypted::PeerClosed => {
                    if self.peer == Peer::Sending {
                        self.peer = Peer::Closed;
                    }
                }
                Decrypted::Failed(e) => {
                    tracing::debug!("{e}");
                    // Only the alert (or the plain-text answer) goes out.
                    self.out.clear();
                    self.input.clear();
                    self.phase = Phase::Flushing { reason: CloseReason::Error(e), unread: true };
                }
            }
            if self.input.len() > before {
                self.offer = true;
            }
        }
        self.tls.as_deref_mut().is_some_and(Tls::has_output)
    }

    /// Encrypts the next piece of the session's output; false if nothing
    /// could be taken now (the handshake holds it back).
    fn tls_encrypt(&mut self) -> bool {
        let Some(tls) = self.tls.as_deref_mut() else { return false };
        match tls.encrypt(&mut self.out) {
            Ok(taken) => taken,
            Err(e) => {
                self.fail(e);
                true
            }
        }
    }
}
