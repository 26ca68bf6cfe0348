//! Datagram addresses: where a socket binds ([`DatagramAddr`]) and who a
//! datagram came from or goes to ([`DatagramPeer`]).

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rustix::net::{AddressFamily, SocketAddrAny, SocketAddrUnix};

/// Where a datagram socket binds or connects: `host:port` (UDP over IPv4 or
/// IPv6: `127.0.0.1:7`, `[::1]:7`) or `unix-dgram:/path` (a Unix-domain
/// datagram socket file).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DatagramAddr {
    /// UDP over IPv4 or IPv6.
    Udp(SocketAddr),
    /// A Unix-domain datagram socket at a filesystem path.
    Unix(PathBuf),
}

/// The text prefix that names a Unix datagram socket.
const UNIX_PREFIX: &str = "unix-dgram:";

/// Error for an address that is neither `host:port` nor `unix-dgram:/path`.
#[derive(Debug, thiserror::Error)]
#[error("bad datagram address {0:?}: expected IP:PORT, [IPv6]:PORT or unix-dgram:/path")]
pub struct ParseDatagramAddrError(String);

impl FromStr for DatagramAddr {
    type Err = ParseDatagramAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix(UNIX_PREFIX) {
            if path.is_empty() {
                return Err(ParseDatagramAddrError(s.to_owned()));
            }
            return Ok(DatagramAddr::Unix(PathBuf::from(path)));
        }
        s.parse::<SocketAddr>().map(DatagramAddr::Udp).map_err(|_| ParseDatagramAddrError(s.to_owned()))
    }
}

impl fmt::Display for DatagramAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatagramAddr::Udp(a) => write!(f, "{a}"),
            DatagramAddr::Unix(p) => write!(f, "{UNIX_PREFIX}{}", p.display()),
        }
    }
}

impl From<SocketAddr> for DatagramAddr {
    fn from(a: SocketAddr) -> Self {
        DatagramAddr::Udp(a)
    }
}

/// The sender of a received datagram, and where a reply goes: a UDP
/// address, a Unix socket path, an abstract Unix name, or an unnamed Unix
/// socket (which cannot be replied to). Cheap to clone (a `sockaddr`
/// copy), `Eq + Hash` (a key for per-peer state).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DatagramPeer(pub(super) SocketAddrAny);

impl DatagramPeer {
    /// The peer's IP address and port, for UDP.
    pub fn ip(&self) -> Option<SocketAddr> {
        SocketAddr::try_from(self.0.clone()).ok()
    }

    /// The peer's socket path, for a Unix socket bound to one.
    pub fn unix_path(&self) -> Option<&Path> {
        let bytes = self.unix_bytes()?;
        (!bytes.is_empty() && bytes[0] != 0).then(|| Path::new(OsStr::from_bytes(trim_nul(bytes))))
    }

    /// True for a Unix socket that is bound to no name: a datagram from it
    /// cannot be answered.
    pub fn is_unnamed(&self) -> bool {
        self.unix_bytes().is_some_and(<[u8]>::is_empty)
    }

    /// The peer for a bound address (a Unix path must fit `sun_path`).
    pub fn of(addr: &DatagramAddr) -> io::Result<DatagramPeer> {
        Ok(match addr {
            DatagramAddr::Udp(a) => DatagramPeer::from(*a),
            DatagramAddr::Unix(p) => DatagramPeer(SocketAddrUnix::new(p.as_path())?.into()),
        })
    }

    /// The bytes of `sun_path` the kernel reported, for Unix peers.
    fn unix_bytes(&self) -> Option<&[u8]> {
        if self.0.address_family() != AddressFamily::UNIX {
            return None;
        }
        let len = self.0.addr_len() as usize;
        // `sa_family_t` is two bytes; `sun_path` follows it.
        let header = 2;
        // SAFETY: `SocketAddrAny` keeps its first `addr_len()` bytes
        // initialized, and a Unix address is the 2-byte family followed by
        // `sun_path`; `len >= header` is one of its invariants.
        let all = unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<u8>(), len) };
        all.get(header..)
    }
}

/// `sun_path` up to its NUL terminator, if it has one.
fn trim_nul(bytes: &[u8]) -> &[u8] {
    bytes.iter().position(|&b| b == 0).map_or(bytes, |end| &bytes[..end])
}

impl From<SocketAddr> for DatagramPeer {
    fn from(a: SocketAddr) -> Self {
        DatagramPeer(a.into())
    }
}

impl fmt::Display for DatagramPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ip) = self.ip() {
            return write!(f, "{ip}");
        }
        if let Some(path) = self.unix_path() {
            return write!(f, "{UNIX_PREFIX}{}", path.display());
        }
        match self.unix_bytes() {
            Some([]) => write!(f, "{UNIX_PREFIX}(unnamed)"),
            Some([0, name @ ..]) => write!(f, "{UNIX_PREFIX}@{}", String::from_utf8_lossy(trim_nul(name))),
            _ => write!(f, "{:?}", self.0),
        }
    }
}

impl fmt::Debug for DatagramPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatagramPeer({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_print_back() {
        for text in ["127.0.0.1:7", "[::1]:9", "unix-dgram:/tmp/x.sock"] {
            let addr: DatagramAddr = text.parse().expect(text);
            assert_eq!(addr.to_string(), text);
        }
        assert!("unix-dgram:".parse::<DatagramAddr>().is_err());
        assert!("unix:/tmp/x".parse::<DatagramAddr>().is_err());
    }

    #[test]
    fn peers_know_their_kind() {
        let ip = DatagramPeer::from("127.0.0.1:5".parse::<SocketAddr>().unwrap());
        assert_eq!(ip.ip(), Some("127.0.0.1:5".parse().unwrap()));
        assert_eq!(ip.unix_path(), None);
        assert!(!ip.is_unnamed());
        let unix = DatagramPeer::of(&"unix-dgram:/run/a.sock".parse().unwrap()).unwrap();
        assert_eq!(unix.unix_path(), Some(Path::new("/run/a.sock")));
        assert_eq!(unix.to_string(), "unix-dgram:/run/a.sock");
        assert!(!unix.is_unnamed());
        let unnamed = DatagramPeer(SocketAddrUnix::new_unnamed().into());
        assert!(unnamed.is_unnamed());
        assert_eq!(unnamed.unix_path(), None);
        let abs = DatagramPeer(SocketAddrUnix::new_abstract_name(b"ferry").unwrap().into());
        assert_eq!(abs.to_string(), "unix-dgram:@ferry");
    }
}
