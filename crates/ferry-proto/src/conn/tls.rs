//! The optional TLS layer of a [`Conn`](super::Conn): ciphertext from the
//! driver is decrypted (rustls, itself sans-IO) before the session sees it,
//! and whatever the session queues is encrypted before the driver sends it.
//! Drivers need no TLS code: a TLS connection only ever asks them to
//! [`Action::Send`](super::Action::Send) ciphertext, never to `sendfile` or
//! `splice` (the kernel cannot encrypt here: no kTLS).
//!
//! Memory per connection stays bounded: ciphertext not yet taken by rustls
//! ([`MAX_INPUT`]), rustls's own buffers (16 KiB of received plaintext, one
//! record in, at most [`CHUNK`] of plaintext being encrypted), the
//! ciphertext being sent (one [`CHUNK`] encrypted, a little over 64 KiB)
//! and one reused buffer a file range is read into, [`CHUNK`] at a time.
//! A connection waiting for its next request releases its own buffers.

use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::MAX_INPUT;
use super::input::Input;
use crate::{Chunk, Outbox};

/// Most plaintext encrypted per send (four full TLS records), and the size
/// of the buffer a file range is read into.
pub const CHUNK: usize = 64 * 1024;

/// A listener's TLS settings, shared by its connections.
#[derive(Clone)]
pub struct TlsConfig {
    /// The rustls server configuration (certificate resolver, ALPN).
    pub server: Arc<rustls::ServerConfig>,
    /// Sent as is, then the connection closes, when a peer speaks plain
    /// text to this TLS port (an HTTP `400` saying so, nginx-like). `None`:
    /// rustls answers with its alert and the connection closes.
    pub plaintext_answer: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").field("alpn", &self.server.alpn_protocols).finish_non_exhaustive()
    }
}

/// Where the TLS session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing received yet: the first byte tells TLS from plain text.
    Fresh,
    /// Records flow.
    Running,
    /// Our `close_notify` is queued: nothing more is encrypted.
    Notified,
    /// The peer broke the protocol: only the alert (or the plain-text
    /// answer) goes out, then the connection closes.
    Failed,
}

/// What [`Tls::decrypt`] found besides plaintext.
#[derive(Debug)]
pub(super) enum Decrypted {
    /// Nothing special (plaintext, if any, is in the input).
    Data,
    /// The peer sent `close_notify`: its end of stream.
    PeerClosed,
    /// The peer broke the protocol (or spoke plain text); the answer is
    /// queued as ciphertext, the connection must close after sending it.
    Failed(io::Error),
}

/// One connection's TLS state and buffers.
pub(super) struct Tls {
    conn: rustls::ServerConnection,
    state: State,
    plaintext_answer: Option<Arc<[u8]>>,
    /// Ciphertext received and not yet taken by rustls.
    cipher_in: Input,
    /// Ciphertext to send: `cipher_out[sent..]`.
    cipher_out: Vec<u8>,
    sent: usize,
    /// File contents on their way to rustls (reused).
    file_buf: Vec<u8>,
}

impl Tls {
    /// A server-side TLS session for a new connection.
    pub(super) fn new(config: &TlsConfig) -> Result<Tls, rustls::Error> {
        let mut conn = rustls::ServerConnection::new(Arc::clone(&config.server))?;
        conn.set_buffer_limit(Some(CHUNK));
        Ok(Tls {
            conn,
            state: State::Fresh,
            plaintext_answer: config.plaintext_answer.clone(),
            cipher_in: Input::default(),
            cipher_out: Vec::new(),
            sent: 0,
            file_buf: Vec::new(),
        })
    }

    /// Where received ciphertext goes.
    pub(super) fn cipher_in(&mut self) -> &mut Input {
        &mut self.cipher_in
    }

    /// True until the handshake is complete (it counts as a request for the
    /// request timeout).
    pub(super) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking() && self.state != State::Failed
    }

    /// Most ciphertext bytes the driver should read now.
    pub(super) fn room(&self) -> usize {
        MAX_INPUT.saturating_sub(self.cipher_in.len())
    }

    /// Buffered bytes: ciphertext not yet sent.
    pub(super) fn queued(&self) -> usize {
        self.cipher_out.len() - self.sent
    }

    /// Moves received ciphertext through rustls and the plaintext into
    /// `input` (as far as it has room).
    pub(super) fn decrypt(&mut self, input: &mut Input) -> Decrypted {
        if self.state == State::Fresh {
            let Some(&first) = self.cipher_in.data().first() else { return Decrypted::Data };
            // 0x16: a TLS handshake record. A letter: an HTTP method or a
            // file-protocol command sent in plain text.
            if first != 0x16
                && first.is_ascii_alphabetic()
                && let Some(answer) = self.plaintext_answer.clone()
            {
                self.state = State::Failed;
                self.cipher_out = answer.to_vec();
                self.sent = 0;
                self.cipher_in.clear();
                return Decrypted::Failed(io::Error::new(io::ErrorKind::InvalidData, "plain text sent to a TLS port"));
            }
            self.state = State::Running;
        }
        if self.state == State::Failed {
            self.cipher_in.clear();
            return Decrypted::Data;
        }
        loop {
            let mut state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => return self.fail(e),
            };
            let want = state.plaintext_bytes_to_read().min(input.room());
            if want > 0 {
                match input.fill(want, |buf| self.conn.reader().read(buf)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Decrypted::Failed(e),
                }
                state = match self.conn.process_new_packets() {
                    Ok(state) => state,
                    Err(e) => return self.fail(e),
                };
            }
            if state.peer_has_closed() && state.plaintext_bytes_to_read() == 0 {
                self.cipher_in.clear();
                return Decrypted::PeerClosed;
            }
            if self.cipher_in.is_empty() || !self.conn.wants_read() {
                return Decrypted::Data;
            }
            let mut data = self.cipher_in.data();
            match self.conn.read_tls(&mut data) {
                Ok(0) => return Decrypted::Data,
                Ok(n) => self.cipher_in.consume(n),
                Err(e) => return Decrypted::Failed(e),
            }
        }
    }

    /// rustls refused the peer's bytes: its alert is queued; nothing else
    /// is read or encrypted.
    fn fail(&mut self, e: rustls::Error) -> Decrypted {
        self.state = State::Failed;
        self.cipher_in.clear();
        Decrypted::Failed(io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}")))
    }

    /// True when ciphertext is ready to send (rustls's own records, such as
    /// handshake messages and alerts, are taken here).
    pub(super) fn has_output(&mut self) -> bool {
        if self.sent < self.cipher_out.len() {
            return true;
        }
        self.cipher_out.clear();
        self.sent = 0;
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.cipher_out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        !self.cipher_out.is_empty()
    }

    /// The ciphertext to send next (after [`Tls::has_output`]).
    pub(super) fn output(&self) -> &[u8] {
        &self.cipher_out[self.sent..]
    }

    /// The driver sent `n` bytes of [`Tls::output`].
    pub(super) fn advance(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.cipher_out.len());
    }

    /// Encrypts the next piece of the outbox's front (bytes, or a file
    /// range read into the reused buffer); true if anything was taken.
    pub(super) fn encrypt(&mut self, out: &mut Outbox) -> io::Result<bool> {
        if matches!(self.state, State::Failed | State::Notified) {
            return Ok(false);
        }
        let taken = match out.front() {
            Some(Chunk::Bytes(bytes)) => self.conn.writer().write(&bytes[..bytes.len().min(CHUNK)])?,
            Some(Chunk::File(slice)) => {
                let want = usize::try_from(slice.len).unwrap_or(usize::MAX).min(CHUNK);
                self.file_buf.resize(want, 0);
                let got = slice.file.read_at(&mut self.file_buf, slice.offset)?;
                if got == 0 && want > 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file ended before its range was sent"));
                }
                self.conn.writer().write(&self.file_buf[..got])?
            }
            _ => 0,
        };
        out.advance(taken as u64);
        Ok(taken > 0)
    }

    /// Drops the output buffers if nothing is in them (a connection
    /// waiting for its next request keeps no file or ciphertext buffer).
    pub(super) fn release_buffers(&mut self) {
        if self.sent == self.cipher_out.len() {
            self.cipher_out = Vec::new();
            self.sent = 0;
        }
        self.file_buf = Vec::new();
    }

    /// Heap bytes held by this layer's own buffers (rustls's not counted).
    pub(super) fn buffer_bytes(&self) -> usize {
        self.cipher_in.capacity() + self.cipher_out.capacity() + self.file_buf.capacity()
    }

    /// Queues our `close_notify` once (an orderly end); false if it was
    /// queued already or the session failed.
    pub(super) fn notify_close(&mut self) -> bool {
        if matches!(self.state, State::Failed | State::Notified) {
            return false;
        }
        self.state = State::Notified;
        self.conn.send_close_notify();
        true
    }
}
