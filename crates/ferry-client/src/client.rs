//! [`Client`]: a blocking connection to a ferry file server and the
//! browsing commands; transfers live in `get.rs` and `put.rs`.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use ferry_proto::files::MAX_LINE;
use ferry_proto::files::codec::parse_df;
use ferry_proto::files::codec::{
    EntryInfo, Reply, encode_request, is_sha256_hex, parse_entry, parse_listing, parse_number,
};
use ferry_proto::files::escape::split_words;
use ferry_proto::root::DiskSpace;

use crate::address::{connect, normalize_address};
use crate::connection::{Connection, Stream};
use crate::tls::{TlsLayer, Trust, strip_tls_scheme};
use crate::{ClientError, Result};

/// The largest listing or help text accepted in one answer.
const MAX_TEXT_PAYLOAD: u64 = 64 * 1024 * 1024;

/// Connection settings: the two timeouts that keep a client from waiting
/// forever on a peer that does not speak.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long connecting may take over all the addresses a name resolves
    /// to (a listener with a full accept queue never completes the
    /// handshake); `None` leaves it to the kernel (about two minutes).
    pub connect_timeout: Option<Duration>,
    /// How long any read or write may wait without moving a byte: the
    /// first answer, a reply line, a payload in either direction. Past it
    /// the call fails with [`ClientError::Timeout`]; `None` waits forever.
    pub stall_timeout: Option<Duration>,
    /// What a `tls://` address's server must prove (unused for plain
    /// addresses).
    pub trust: Trust,
}

impl ClientOptions {
    /// Default for [`ClientOptions::connect_timeout`] (curl's is longer;
    /// a file server on a LAN answers at once or not at all).
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default for [`ClientOptions::stall_timeout`].
    pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            connect_timeout: Some(ClientOptions::CONNECT_TIMEOUT),
            stall_timeout: Some(ClientOptions::STALL_TIMEOUT),
            trust: Trust::System,
        }
    }
}

/// A complete answer to a raw request: the reply line and, for the
/// commands that have one (`ls`, `help`), the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `OK ...` or `ERR CODE MESSAGE`.
    pub reply: Reply,
    /// The bytes announced by the `OK LEN` line, if the command has any.
    pub payload: Option<Vec<u8>>,
}

/// A connection to a ferry file server.
///
/// Requests are answered in order; each method sends one request and reads
/// its whole answer. An `ERR` answer becomes [`ClientError::Server`] and the
/// connection stays usable; a failure half-way through an answer (timeout,
/// early end of stream) leaves it [`ClientError::Broken`].
pub struct Client {
    pub(crate) conn: Connection,
    /// Rate limit and deadline of the command this connection serves.
    pub(crate) pace: Option<std::sync::Arc<crate::Pace>>,
}

impl Client {
    /// Connects to `addr` (`host[:port]`, port 7070 by default) with
    /// default options.
    pub fn connect(addr: &str) -> Result<Client> {
        Client::connect_with(addr, &ClientOptions::default())
    }

    /// Connects to `addr` with the given timeouts.
    pub fn connect_with(addr: &str, options: &ClientOptions) -> Result<Client> {
        let (tls, addr) = strip_tls_scheme(addr);
        let addr = normalize_address(addr)?;
        // A zero timeout means none (the socket calls refuse zero).
        let connect_timeout = options.connect_timeout.filter(|t| !t.is_zero());
        let stall_timeout = options.stall_timeout.filter(|t| !t.is_zero());
        let stream = connect(&addr, connect_timeout)?;
        stream.configure(stall_timeout).map_err(|source| ClientError::Connect { addr: addr.clone(), source })?;
        tracing::debug!(%addr, "connected");
        let handshake = |mut stream: &Stream| {
            let host = addr.rsplit_once(':').map_or(addr.as_str(), |(host, _)| host);
            TlsLayer::handshake(&mut stream, host, &options.trust)
        };
        let layer = if tls {
            Some(handshake(&stream).map_err(|source| ClientError::Connect { addr: addr.clone(), source })?)
        } else {
            None
        };
        let conn = Connection::new(stream, addr, stall_timeout);
        Ok(Client {
            conn: match layer {
                Some(layer) => conn.with_tls(layer),
                None => conn,
            },
            pace: None,
        })
    }

    /// Whether the connection is in step with its requests (no answer
    /// left half-read by a failure), so it can carry another request.
    pub fn in_step(&self) -> bool {
        !self.conn.pending
    }

    /// The server's address as connected to (`host:port`).
    pub fn address(&self) -> &str {
        self.conn.addr()
    }

    /// The connection's working directory on the server, as the server
    /// prints it (escaped text).
    pub fn pwd(&mut self) -> Result<String> {
        self.simple("pwd", &[])
    }

    /// Changes the working directory; returns the new one.
    pub fn cd(&mut self, path: &[u8]) -> Result<String> {
        self.simple("cd", &[path])
    }

    /// Lists a directory (the working directory if `path` is `None`).
    pub fn ls(&mut self, path: Option<&[u8]>) -> Result<Vec<EntryInfo>> {
        let args: Vec<&[u8]> = path.into_iter().collect();
        self.send("ls", &args)?;
        let text = self.conn.read_ok()?;
        let len = parse_number(&text).map_err(|e| self.conn.protocol_error(e.to_string()))?;
        let payload = self.conn.read_payload(len, MAX_TEXT_PAYLOAD)?;
        self.conn.end();
        parse_listing(&payload).map_err(|e| self.conn.protocol_error(e.to_string()))
    }

    /// Kind, size and modification time of a path; `name` is its virtual
    /// path.
    pub fn stat(&mut self, path: &[u8]) -> Result<EntryInfo> {
        let text = self.simple("stat", &[path])?;
        parse_entry(&text).map_err(|e| self.conn.protocol_error(e.to_string()))
    }

    /// The SHA-256 of a remote file, lowercase hex.
    pub fn sum(&mut self, path: &[u8]) -> Result<String> {
        let text = self.simple("sum", &[path])?;
        if !is_sha256_hex(&text) {
            return Err(self.conn.protocol_error(format!("sum answered {text:?}, not a SHA-256")));
        }
        Ok(text)
    }

    /// Renames or moves `from` to `to` on the server, atomically; a file
    /// at `to` is replaced, a directory never.
    pub fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<()> {
        self.simple("rename", &[from, to]).map(drop)
    }

    /// The size, free and available bytes of the server's filesystem.
    pub fn df(&mut self) -> Result<DiskSpace> {
        let text = self.simple("df", &[])?;
        parse_df(&text).map_err(|e| self.conn.protocol_error(e.to_string()))
    }

    /// Checks the server is alive (`ping` -> `OK pong`).
    pub fn ping(&mut self) -> Result<()> {
        self.simple("ping", &[]).map(drop)
    }

    /// A heartbeat: sends `ping` and waits at most `within` for its pong and
    /// for `owed` pongs of earlier heartbeats that timed out. Returns the
    /// round trip, or `None` if the pongs did not all come in time (they
    /// are then still owed: call again with one more). Answers in between
    /// that are not pongs (an idle timeout's `ERR 408`) are errors.
    pub fn ping_within(&mut self, within: Duration, owed: usize) -> Result<Option<Duration>> {
        let started = Instant::now();
        self.send("ping", &[])?;
        let deadline = started + within;
        let mut outcome = Some(Duration::ZERO);
        for _ in 0..=owed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                outcome = None;
                break;
            }
            self.conn.set_read_timeout(Some(left));
            match self.conn.read_ok() {
                Ok(text) if text == "pong" => {}
                Ok(text) => return Err(self.conn.protocol_error(format!("heartbeat answered {text:?}"))),
                Err(ClientError::Timeout { .. }) => {
                    outcome = None;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        self.conn.set_read_timeout(self.conn.stall_timeout());
        self.conn.end();
        Ok(outcome.map(|_| started.elapsed()))
    }

    /// Logs in with an account's password (`auth USER PASSWORD`); returns
    /// the account name the server confirms.
    pub fn login(&mut self, user: &str, password: &str) -> Result<String> {
        let text = self.simple("auth", &[user.as_bytes(), password.as_bytes()])?;
        Ok(text.strip_prefix("user ").unwrap_or(&text).to_string())
    }

    /// Logs in with a token made by `ferry token` (`auth token TOKEN`).
    pub fn login_token(&mut self, token: &str) -> Result<String> {
        let text = self.simple("auth", &[b"token", token.as_bytes()])?;
        Ok(text.strip_prefix("user ").unwrap_or(&text).to_string())
    }

    /// Creates a directory (needs a server with `--allow-write`).
    pub fn mkdir(&mut self, path: &[u8]) -> Result<()> {
        self.simple("mkdir", &[path]).map(drop)
    }

    /// Removes a file, a symlink or an empty directory (needs
    /// `--allow-write`).
    pub fn rm(&mut self, path: &[u8]) -> Result<()> {
        self.simple("rm", &[path]).map(drop)
    }

    /// Says goodbye; the server closes the connection after answering.
    pub fn quit(&mut self) -> Result<()> {
        self.simple("quit", &[]).map(drop)
    }

    /// Sends a request line as typed by a person (without `\n`) and reads
    /// its whole answer. `ERR` answers are returned, not turned into
    /// errors. `get` and `put` are refused here: their payloads are files,
    /// use [`Client::get`] and [`Client::put`].
    pub fn request(&mut self, line: &str) -> Result<Answer> {
        if line.contains(['\n', '\r']) {
            return Err(ClientError::Usage("a request is a single line".into()));
        }
        if line.len() + 1 > MAX_LINE {
            return Err(ClientError::Usage(format!("request longer than the protocol's {MAX_LINE} bytes")));
        }
        // The server splits words the same way, so this finds the command
        // it will see (bad quoting: it answers 400, with no payload).
        let command = match split_words(line) {
            Ok(words) => words.first().map(|w| String::from_utf8_lossy(w).to_ascii_lowercase()),
            Err(_) => line.split_ascii_whitespace().next().map(str::to_ascii_lowercase),
        };
        let Some(command) = command else {
            return Err(ClientError::Usage("empty request (the server does not answer blank lines)".into()));
        };
        if command == "get" || command == "put" {
            return Err(ClientError::Usage(format!("`{command}` moves a file; use Client::{command}")));
        }
        self.conn.begin(format!("{line}\n").as_bytes())?;
        let reply = self.conn.read_reply()?;
        let payload = match &reply {
            Reply::Ok(text) if command == "ls" || command == "help" => {
                let len = parse_number(text).map_err(|e| self.conn.protocol_error(e.to_string()))?;
                Some(self.conn.read_payload(len, MAX_TEXT_PAYLOAD)?)
            }
            _ => None,
        };
        self.conn.end();
        Ok(Answer { reply, payload })
    }

    /// Replies that arrived without a request (`ERR 408 idle timeout`
    /// before the server closes) and are already buffered; no I/O.
    pub fn buffered_replies(&mut self) -> Result<Vec<Reply>> {
        let mut replies = Vec::new();
        while let Some(line) = self.conn.take_line() {
            replies.push(
                ferry_proto::files::codec::parse_reply(&line).map_err(|e| self.conn.protocol_error(e.to_string()))?,
            );
        }
        Ok(replies)
    }

    /// Reads once from the socket (call it when the socket is readable
    /// while no answer is due) and returns the complete lines that
    /// arrived. Fails with [`ClientError::Closed`] at end of stream.
    pub fn receive_unsolicited(&mut self) -> Result<Vec<Reply>> {
        if self.conn.fill()? == 0 {
            return Err(ClientError::Closed { addr: self.conn.addr().to_string() });
        }
        self.buffered_replies()
    }

    /// Half-closes the connection: no more requests; the server answers
    /// what it already received and then closes.
    pub fn shutdown_write(&mut self) -> Result<()> {
        self.conn.shutdown_write()
    }

    /// Sends `command args...` (quoted as needed).
    pub(crate) fn send(&mut self, command: &str, args: &[&[u8]]) -> Result<()> {
        let line = encode_request(command, args)
            .ok_or_else(|| ClientError::Usage(format!("{command}: request longer than {MAX_LINE} bytes")))?;
        self.conn.begin(&line)
    }

    /// A request whose whole answer is one `OK TEXT` line.
    fn simple(&mut self, command: &str, args: &[&[u8]]) -> Result<String> {
        self.send(command, args)?;
        let text = self.conn.read_ok()?;
        self.conn.end();
        Ok(text)
    }
}

impl AsFd for Client {
    /// The socket, for `poll`ing it together with other descriptors.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.conn.stream().as_fd()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("addr", &self.conn.addr()).finish_non_exhaustive()
    }
}
