//! The driver's reports to a [`Conn`] (`handle_*`) and what it asks of it
//! between actions (deadline, reading, stats).

use std::io;
use std::mem;
use std::time::{Duration, Instant};

use super::core::{Conn, ConnStats, Peer, Phase, Written};
use super::input::Input;
use super::{CloseReason, LINGER, LINGER_BYTES, MAX_INPUT};
use crate::{Flow, Now, Session};

impl<S: Session> Conn<S> {
    /// `bytes` arrived from the peer.
    pub fn handle_input(&mut self, now: Now, bytes: &[u8]) {
        self.receive(now, bytes.len(), |input| input.extend(bytes));
    }

    /// Bytes arrived from the peer in a buffer the driver gives away
    /// (`buf[start..]`): taken over without a copy when nothing is
    /// buffered.
    pub fn handle_input_buf(&mut self, now: Now, buf: Vec<u8>, start: usize) {
        let len = buf.len().saturating_sub(start);
        self.receive(now, len, |input| input.adopt(buf, start));
    }

    /// `len` bytes arrived; `store` puts them in the input buffer if the
    /// connection still reads them.
    fn receive(&mut self, now: Now, len: usize, store: impl FnOnce(&mut Input)) {
        if len == 0 {
            return;
        }
        self.stats.bytes_in += len as u64;
        self.last_progress = now.mono;
        match &mut self.phase {
            Phase::Open => {
                match self.tls.as_deref_mut() {
                    Some(tls) => {
                        if tls.is_handshaking() && self.request_started.is_none() {
                            // The handshake is timed like a request head.
                            self.request_started = Some(now.mono);
                        }
                        store(tls.cipher_in());
                    }
                    None => store(&mut self.input),
                }
                self.offer = true;
            }
            Phase::Flushing { unread, .. } => *unread = true,
            Phase::Lingering { until, discarded, extended, .. } => {
                *discarded = discarded.saturating_add(u32::try_from(len).unwrap_or(u32::MAX));
                if !*extended {
                    // `until` is still the moment of our FIN.
                    *until += LINGER;
                    *extended = true;
                }
                if *discarded as usize >= LINGER_BYTES {
                    self.end_linger();
                }
            }
            Phase::Closing(_) | Phase::Closed => {}
        }
    }

    /// The peer half-closed: no more input will come.
    pub fn handle_eof(&mut self, _now: Now) {
        if self.peer == Peer::Sending {
            self.peer = Peer::Closed;
        }
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
        match self.tls.as_deref_mut() {
            Some(tls) => tls.advance(usize::try_from(n).unwrap_or(usize::MAX)),
            None => self.out.advance(n),
        }
        self.stats.bytes_out += n;
        if self.written == Written::Nothing {
            self.written = Written::Sent;
        }
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
        self.written = Written::Buffered;
    }

    /// The driver's output buffer is empty again.
    pub fn handle_flushed(&mut self, now: Now) {
        if self.written == Written::Buffered {
            self.written = Written::Sent;
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
        if let Some(sink) = self.out.sink_mut() {
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
        if let Some(sink) = self.out.sink_mut() {
            sink.advance(n as u64);
            self.stats.bytes_in += n as u64;
            self.last_progress = now.mono;
        }
    }

    /// Writing or splicing the upload failed; the session hears of it.
    pub fn handle_upload_error(&mut self, now: Now, error: io::Error) {
        if self.out.has_sink() {
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
        if !std::mem::replace(&mut self.draining, true) {
            self.session.on_draining();
        }
    }

    /// [`Conn::handle_shutdown`], except that a connection that has
    /// received nothing yet waits for its first request (within its
    /// timeouts) and answers it before it closes: after a binary upgrade
    /// the listener belongs to the new process, so a client that was
    /// accepted just before the drain has nobody else to answer it.
    pub fn handle_shutdown_serving_fresh(&mut self) {
        self.serve_fresh = true;
        self.handle_shutdown();
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
        if !self.out.is_empty() || self.written == Written::Buffered || self.tls_queued() > 0 {
            // Not one byte taken in a whole timeout: holding the
            // descriptor and file range forever would let such peers
            // exhaust the server's descriptors.
            self.fail(io::Error::new(
                io::ErrorKind::TimedOut,
                "peer stopped reading (nothing sent for the idle timeout)",
            ));
            return;
        }
        let flow = match self.out.take_sink() {
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
        let busy =
            !self.out.is_empty() || self.written == Written::Buffered || self.out.has_sink() || self.tls_queued() > 0;
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
            Phase::Open => match self.tls.as_deref() {
                Some(tls) => tls.room(),
                None => self.input.room(),
            },
            Phase::Flushing { .. } | Phase::Lingering { .. } => MAX_INPUT,
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
        self.out.queued_bytes() + self.tls_queued()
    }

    /// Ciphertext encrypted and not yet sent.
    fn tls_queued(&self) -> usize {
        self.tls.as_deref().map_or(0, |tls| tls.queued())
    }

    /// Heap bytes held by the connection's own buffers: input, and under
    /// TLS the ciphertext and file buffers (for tests of the memory
    /// bound; the session's and rustls's own are not counted).
    pub fn buffer_bytes(&self) -> usize {
        self.input.capacity() + self.tls.as_deref().map_or(0, |tls| tls.buffer_bytes())
    }

    /// True if this connection speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
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
