//! One connection to a server (TCP or Unix-domain): sends request lines,
//! reads reply lines through a small bounded buffer, and tracks whether the
//! byte stream is still in step with the requests.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use ferry_proto::files::codec::{Reply, parse_reply};

use crate::tls::TlsLayer;
use crate::{ClientError, Result};

/// The longest reply line accepted, `\n` included. Real replies are far
/// shorter; anything longer means the peer is not a ferry server.
pub(crate) const MAX_REPLY_LINE: usize = 64 * 1024;

/// The socket under a [`Connection`]: every byte to and from the server
/// goes through this one type (`address::connect` makes it).
#[derive(Debug)]
pub(crate) enum Stream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix-domain stream connection (`unix:/path`, `unix:@name`).
    Unix(UnixStream),
}

impl Stream {
    /// Stall timeouts on both directions, and for TCP no Nagle delay
    /// (requests are written whole, so it would only delay the last
    /// segment of an upload; a Unix socket has no such option).
    pub(crate) fn configure(&self, stall_timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_nodelay(true)?;
                s.set_read_timeout(stall_timeout)?;
                s.set_write_timeout(stall_timeout)
            }
            Stream::Unix(s) => {
                s.set_read_timeout(stall_timeout)?;
                s.set_write_timeout(stall_timeout)
            }
        }
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(timeout),
            Stream::Unix(s) => s.set_read_timeout(timeout),
        }
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write(buf),
            Stream::Unix(s) => (&*s).write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

/// A connection and its input buffer.
pub(crate) struct Connection {
    stream: Stream,
    addr: String,
    stall_timeout: Option<Duration>,
    buf: Box<[u8]>,
    /// Unconsumed input is `buf[start..end]`.
    start: usize,
    end: usize,
    /// A request was sent and its answer is not fully consumed yet. If a
    /// call fails in that state, the stream is out of step for good.
    pub(crate) pending: bool,
    /// TLS between the socket and the protocol, for `tls://` addresses:
    /// every byte then goes through [`Connection::read_raw`] and
    /// [`Connection::write_raw`] (no sendfile or splice).
    tls: Option<TlsLayer>,
}

impl Connection {
    pub(crate) fn new(stream: Stream, addr: String, stall_timeout: Option<Duration>) -> Connection {
        Connection {
            stream,
            addr,
            stall_timeout,
            buf: vec![0; MAX_REPLY_LINE].into_boxed_slice(),
            start: 0,
            end: 0,
            pending: false,
            tls: None,
        }
    }

    /// Speaks TLS from now on (after the handshake).
    pub(crate) fn with_tls(mut self, tls: TlsLayer) -> Connection {
        self.tls = Some(tls);
        self
    }

    /// True if bytes must go through the TLS layer (no zero-copy calls on
    /// the socket).
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// One read of the byte stream (decrypted under TLS); 0 at its end.
    pub(crate) fn read_raw(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_stream(&mut self.tls, &self.stream, buf)
    }

    /// Writes all of `bytes` to the byte stream (encrypted under TLS).
    pub(crate) fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.tls {
            Some(tls) => tls.write_all(&mut &self.stream, bytes),
            None => (&self.stream).write_all(bytes),
        }
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    pub(crate) fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Turns a socket error into a client error naming the address.
    pub(crate) fn net_error(&self, source: io::Error) -> ClientError {
        match source.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                ClientError::Timeout { addr: self.addr.clone(), after: self.stall_timeout.unwrap_or_default() }
            }
            io::ErrorKind::UnexpectedEof => ClientError::Closed { addr: self.addr.clone() },
            _ => ClientError::Network { addr: self.addr.clone(), source },
        }
    }

    pub(crate) fn protocol_error(&self, detail: impl Into<String>) -> ClientError {
        ClientError::Protocol { addr: self.addr.clone(), detail: detail.into() }
    }

    /// Sends one request line (with its `\n`) and marks an answer as due.
    /// Fails with [`ClientError::Broken`] if an earlier answer was left
    /// half-read.
    pub(crate) fn begin(&mut self, line: &[u8]) -> Result<()> {
        if self.pending {
            return Err(ClientError::Broken { addr: self.addr.clone() });
        }
        self.pending = true;
        tracing::trace!(request = %String::from_utf8_lossy(line).trim_end(), "send");
        self.write_raw(line).map_err(|e| self.net_error(e))
    }

    /// The current answer has been read completely.
    pub(crate) fn end(&mut self) {
        self.pending = false;
    }

    /// Reads the next reply line and parses it. An HTTP status line means
    /// the address is an HTTP port: [`ClientError::HttpServer`].
    pub(crate) fn read_reply(&mut self) -> Result<Reply> {
        let line = self.read_line()?;
        tracing::trace!(reply = %String::from_utf8_lossy(&line), "receive");
        parse_reply(&line).map_err(|e| match line.strip_prefix(b"HTTP/1.") {
            Some(_) => ClientError::HttpServer {
                addr: self.addr.clone(),
                line: String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(&line)).into_owned(),
            },
            None => self.protocol_error(e.to_string()),
        })
    }

    /// Reads an answer that must be `OK`: returns its text, or turns `ERR`
    /// into [`ClientError::Server`] (the answer is then complete).
    pub(crate) fn read_ok(&mut self) -> Result<String> {
        match self.read_reply()? {
            Reply::Ok(text) => Ok(text),
            Reply::Err { code, message } => {
                self.end();
                Err(ClientError::Server { addr: self.addr.clone(), code, message })
            }
        }
    }

    /// Reads a line, without its `\n`.
    fn read_line(&mut self) -> Result<Vec<u8>> {
        loop {
            if let Some(line) = self.take_line() {
                return Ok(line);
            }
            if self.fill()? == 0 {
                return Err(ClientError::Closed { addr: self.addr.clone() });
            }
        }
    }

    /// Removes and returns a complete buffered line, if there is one.
    pub(crate) fn take_line(&mut self) -> Option<Vec<u8>> {
        let input = &self.buf[self.start..self.end];
        let at = input.iter().position(|&b| b == b'\n')?;
        let line = input[..at].to_vec();
        self.start += at + 1;
        Some(line)
    }

    /// Bytes received but not consumed yet.
    pub(crate) fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// One `read` from the socket into the buffer. Returns 0 at end of
    /// stream. A buffer full without a line end is a protocol error.
    pub(crate) fn fill(&mut self) -> Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(self.protocol_error(format!("reply line longer than {} KiB", MAX_REPLY_LINE / 1024)));
        }
        loop {
            match read_stream(&mut self.tls, &self.stream, &mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.net_error(e)),
            }
        }
    }

    /// Removes up to `max` buffered bytes (payload that arrived together
    /// with its head line) and returns them.
    pub(crate) fn take_buffered(&mut self, max: u64) -> &[u8] {
        let n = self.buffered().min(usize::try_from(max).unwrap_or(usize::MAX));
        let taken = &self.buf[self.start..self.start + n];
        self.start += n;
        taken
    }

    /// Reads a whole payload of `len` bytes into memory (listings, help
    /// text), refusing one longer than `limit`.
    pub(crate) fn read_payload(&mut self, len: u64, limit: u64) -> Result<Vec<u8>> {
        if len > limit {
            return Err(self.protocol_error(format!("announced payload of {len} bytes exceeds {limit}")));
        }
        // `len <= limit`, which is far below usize::MAX.
        let len = len as usize;
        let mut payload = Vec::with_capacity(len);
        payload.extend_from_slice(self.take_buffered(len as u64));
        let missing = len - payload.len();
        if missing > 0 {
            let reader = StreamReader { tls: &mut self.tls, stream: &self.stream };
            let read = reader.take(missing as u64).read_to_end(&mut payload);
            read.map_err(|e| self.net_error(e))?;
            if payload.len() < len {
                return Err(ClientError::Closed { addr: self.addr.clone() });
            }
        }
        Ok(payload)
    }

    /// Half-closes the connection: the server sees end of input, and
    /// answers what it still owes.
    pub(crate) fn shutdown_write(&mut self) -> Result<()> {
        if let Some(tls) = &mut self.tls {
            tls.close(&mut &self.stream).map_err(|e| self.net_error(e))?;
        }
        self.stream.shutdown(Shutdown::Write).map_err(|e| self.net_error(e))
    }

    /// Sets or clears the read timeout for a while (e.g. a short wait for
    /// an explanation after a failed upload).
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) {
        if let Err(e) = self.stream.set_read_timeout(timeout) {
            tracing::debug!(error = %e, "cannot set the read timeout");
        }
    }

    pub(crate) fn stall_timeout(&self) -> Option<Duration> {
        self.stall_timeout
    }
}

/// One read of `stream`, through `tls` if there is one.
fn read_stream(tls: &mut Option<TlsLayer>, stream: &Stream, buf: &mut [u8]) -> io::Result<usize> {
    match tls {
        Some(tls) => tls.read(&mut &*stream, buf),
        None => (&*stream).read(buf),
    }
}

/// The byte stream as a `Read` (for `take`).
struct StreamReader<'a> {
    tls: &'a mut Option<TlsLayer>,
    stream: &'a Stream,
}

impl Read for StreamReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_stream(self.tls, self.stream, buf)
    }
}
