//! Server addresses as users type them: `host`, `host:port`, `[v6]`,
//! `[v6]:port` (a missing port means [`DEFAULT_PORT`]), or a Unix-domain
//! socket `unix:/path` or `unix:@name` (Linux abstract name); and the one
//! place where an address becomes a connected [`Stream`].

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::connection::Stream;
use crate::{ClientError, Result};

/// The port `ferry serve` listens on for the file service by default.
pub const DEFAULT_PORT: u16 = 7070;

/// Adds the default port to an address that has none, checking its shape.
/// `example.org` -> `example.org:7070`, `::1` -> `[::1]:7070`.
pub fn normalize_address(addr: &str) -> Result<String> {
    let bad = |reason| ClientError::BadAddress { addr: addr.to_string(), reason };
    if addr.is_empty() {
        return Err(bad("empty"));
    }
    if let Some(path) = addr.strip_prefix("unix:") {
        return match path {
            "" | "@" => Err(bad("expected unix:/path or unix:@name")),
            _ => Ok(addr.to_string()),
        };
    }
    if addr.parse::<SocketAddr>().is_ok() {
        return Ok(addr.to_string());
    }
    if let Ok(IpAddr::V6(ip)) = addr.parse::<IpAddr>() {
        return Ok(format!("[{ip}]:{DEFAULT_PORT}"));
    }
    if addr.starts_with('[') {
        return match addr.strip_suffix(']').and_then(|a| a[1..].parse::<std::net::Ipv6Addr>().ok()) {
            Some(ip) => Ok(format!("[{ip}]:{DEFAULT_PORT}")),
            None => Err(bad("expected [IPv6] or [IPv6]:PORT")),
        };
    }
    match addr.rsplit_once(':') {
        Some((host, port)) => {
            if host.is_empty() {
                return Err(bad("missing host"));
            }
            port.parse::<u16>().map_err(|_| bad("port is not a number from 0 to 65535"))?;
            Ok(addr.to_string())
        }
        None => Ok(format!("{addr}:{DEFAULT_PORT}")),
    }
}

/// Connects to `addr` (already normalized): a Unix socket, or over TCP
/// the first address the name resolves to that accepts. For TCP, `timeout`
/// bounds the whole attempt over every candidate (`None`: only the
/// kernel's own limit, about two minutes); a listener that never completes
/// the handshake (a full accept queue, a filtered port) fails with
/// `TimedOut` when it runs out. A local Unix socket answers at once.
pub(crate) fn connect(addr: &str, timeout: Option<Duration>) -> Result<Stream> {
    let fail = |source| ClientError::Connect { addr: addr.to_string(), source };
    if let Some(path) = addr.strip_prefix("unix:") {
        return connect_unix(path, timeout).map(Stream::Unix).map_err(fail);
    }
    connect_tcp(addr, timeout).map(Stream::Tcp).map_err(fail)
}

/// [`connect`] to a Unix socket: `/path` or `@name`. A server's full
/// accept queue makes `connect` wait for room, for at most `timeout`
/// (the kernel bounds that wait by the socket's send timeout).
fn connect_unix(path: &str, timeout: Option<Duration>) -> io::Result<UnixStream> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType, sockopt};
    let sa = match path.strip_prefix('@') {
        Some(name) => SocketAddrUnix::new_abstract_name(name.as_bytes())?,
        None => SocketAddrUnix::new(path)?,
    };
    let fd = rustix::net::socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, timeout)?;
    loop {
        match rustix::net::connect(&fd, &sa) {
            Ok(()) => return Ok(UnixStream::from(fd)),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => {
                let t = timeout.unwrap_or_default();
                let why =
                    format!("no connection within {} (connect timeout): the server's accept queue is full", secs(t));
                return Err(io::Error::new(io::ErrorKind::TimedOut, why));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// [`connect`] over TCP.
fn connect_tcp(addr: &str, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let candidates = addr.to_socket_addrs()?;
    let mut last = None;
    for candidate in candidates {
        let attempt = match deadline {
            None => TcpStream::connect(candidate),
            Some(deadline) => match deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
                Some(left) => TcpStream::connect_timeout(&candidate, left),
                None => break,
            },
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                tracing::debug!(%candidate, error = %e, "connect failed");
                last = Some(e);
            }
        }
    }
    let timed_out = |t: Duration| {
        io::Error::new(io::ErrorKind::TimedOut, format!("no connection within {} (connect timeout)", secs(t)))
    };
    let error = match (last, timeout) {
        (Some(e), Some(t)) if e.kind() == io::ErrorKind::TimedOut => timed_out(t),
        (Some(e), _) => e,
        (None, Some(t)) if deadline.is_some_and(|d| Instant::now() >= d) => timed_out(t),
        (None, _) => io::Error::other("the name resolved to no address"),
    };
    Err(error)
}

/// A duration for messages: `10 s`, `0.5 s`.
pub(crate) fn secs(t: Duration) -> String {
    format!("{} s", t.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_port_is_added_only_when_missing() {
        assert_eq!(normalize_address("127.0.0.1").unwrap(), "127.0.0.1:7070");
        assert_eq!(normalize_address("127.0.0.1:9").unwrap(), "127.0.0.1:9");
        assert_eq!(normalize_address("localhost").unwrap(), "localhost:7070");
        assert_eq!(normalize_address("localhost:80").unwrap(), "localhost:80");
        assert_eq!(normalize_address("::1").unwrap(), "[::1]:7070");
        assert_eq!(normalize_address("[::1]").unwrap(), "[::1]:7070");
        assert_eq!(normalize_address("[::1]:8").unwrap(), "[::1]:8");
        assert_eq!(normalize_address("unix:/run/f.sock").unwrap(), "unix:/run/f.sock");
        assert_eq!(normalize_address("unix:@ferry").unwrap(), "unix:@ferry");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for addr in ["", ":80", "host:port", "host:70000", "[nope]", "[::1", "unix:", "unix:@"] {
            assert!(matches!(normalize_address(addr), Err(ClientError::BadAddress { .. })), "{addr}");
        }
    }
}
