//! Everything that can go wrong talking to a ferry server, each variant
//! naming the address and, where there is one, the path. Underlying I/O
//! errors are each variant's `source()`, not repeated in its message:
//! print with the chain (`{:#}` through anyhow) to see both.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::DEFAULT_PORT;
use crate::address::secs;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address is not `host`, `host:port`, `[v6]` or `[v6]:port`.
    #[error("bad address {addr:?}: {reason}")]
    BadAddress {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The TCP connection could not be made (refused, unreachable, timed
    /// out, name not resolved).
    #[error("cannot connect to {addr}")]
    Connect {
        /// The address, with its port.
        addr: String,
        /// The last error seen.
        source: io::Error,
    },
    /// Reading from or writing to the connection failed.
    #[error("connection to {addr} failed")]
    Network {
        /// The server's address.
        addr: String,
        /// The socket error.
        source: io::Error,
    },
    /// No byte moved either way for the stall timeout: the server did not
    /// answer, or stopped sending, or stopped taking an upload.
    #[error("no byte from or to {addr} for {} (stall timeout)", secs(*after))]
    Timeout {
        /// The server's address.
        addr: String,
        /// The stall timeout in force.
        after: Duration,
    },
    /// The peer answered like an HTTP server (`HTTP/1.1 400 ...`): the
    /// address is an HTTP port, not a ferry file service.
    #[error(
        "{addr} answered {line:?}: this looks like an HTTP server; the ferry file service listens on port \
         {DEFAULT_PORT} unless `ferry serve --files ADDR` moved it"
    )]
    HttpServer {
        /// The server's address.
        addr: String,
        /// The status line it sent.
        line: String,
    },
    /// The server closed the connection where an answer was due.
    #[error("{addr} closed the connection")]
    Closed {
        /// The server's address.
        addr: String,
    },
    /// An earlier call failed half-way through an answer, so the byte
    /// stream can no longer be trusted; reconnect.
    #[error("connection to {addr} is unusable after an earlier error; reconnect")]
    Broken {
        /// The server's address.
        addr: String,
    },
    /// The server sent something the protocol does not allow.
    #[error("protocol error from {addr}: {detail}")]
    Protocol {
        /// The server's address.
        addr: String,
        /// What was wrong.
        detail: String,
    },
    /// The server answered `ERR CODE MESSAGE`; the message names the path.
    #[error("{addr}: {message} (ERR {code})")]
    Server {
        /// The server's address.
        addr: String,
        /// The protocol status code (404, 409, ...).
        code: u16,
        /// The server's message.
        message: String,
    },
    /// A local file operation failed.
    #[error("cannot {action} {}", path.display())]
    Local {
        /// What was being done: "open", "write", "rename", ...
        action: &'static str,
        /// The local path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Moving file bytes between the socket and a local file failed (the
    /// zero-copy calls cannot tell which side failed, so both are named).
    #[error("transfer of {remote} between {addr} and {} failed after {done} bytes", local.display())]
    Transfer {
        /// The server's address.
        addr: String,
        /// The remote path, as sent.
        remote: String,
        /// The local file.
        local: PathBuf,
        /// Bytes moved in this attempt before the failure.
        done: u64,
        /// The error.
        source: io::Error,
    },
    /// A download ended early: the server went away or the file shrank.
    /// The partial file is kept so a later `get` resumes it.
    #[error(
        "download of {remote} from {addr} stopped after {got} of {expected} bytes; {} kept for resuming",
        part.display()
    )]
    ShortPayload {
        /// The server's address.
        addr: String,
        /// The remote path, as sent.
        remote: String,
        /// The partial local file.
        part: PathBuf,
        /// Bytes received in this attempt.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// A download written to a stream (standard output, a pipe, a
    /// device) ended early; there is no partial file to resume from.
    #[error("download of {remote} from {addr} to {} stopped after {got} of {expected} bytes", local.display())]
    ShortStream {
        /// The server's address.
        addr: String,
        /// The remote path, as sent.
        remote: String,
        /// Where the bytes went.
        local: PathBuf,
        /// Bytes written.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// `--verify` found different SHA-256 sums on the two sides.
    #[error("SHA-256 mismatch for {remote} on {addr}: {} has {local_sum}, the server has {remote_sum}", local.display())]
    VerifyMismatch {
        /// The server's address.
        addr: String,
        /// The remote path, as sent.
        remote: String,
        /// The local file that was hashed.
        local: PathBuf,
        /// Its SHA-256, lowercase hex.
        local_sum: String,
        /// The server's `sum`.
        remote_sum: String,
    },
    /// The time allowed for the command (`--max-time`) ran out in the
    /// middle of a transfer; `detail` says what was kept.
    #[error("the time allowed ran out (max time): {detail}")]
    Deadline {
        /// What stopped and what was kept.
        detail: String,
    },
    /// A file of a batch was never tried (its connection was lost and
    /// could not be made again, or the time ran out before it).
    #[error("not transferred: {detail}")]
    Abandoned {
        /// Why.
        detail: String,
    },
    /// The call itself is invalid (a request too long for the protocol, a
    /// path with no file name, ...); nothing was sent.
    #[error("{0}")]
    Usage(String),
}

impl ClientError {
    /// The server's status code if this is an `ERR` answer.
    pub fn server_code(&self) -> Option<u16> {
        match self {
            ClientError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}
