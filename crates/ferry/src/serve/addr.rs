//! How `ferry serve` reads a service's address: as the client does, a bare
//! port (`8000`: loopback), a host name (`localhost:7070`), `IP:PORT`,
//! `unix:/path`, `unix:@name`, or `off`; and `--public`, the one switch that
//! moves the loopback addresses onto every interface.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use ferry_server::ListenAddr;

/// A service's address, or `None` when it is turned off.
pub(super) type ServiceAddr = Option<ListenAddr>;

/// Parses a service address (see the module's doc).
pub(super) fn parse_service_addr(text: &str) -> Result<ServiceAddr, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    if let Ok(port) = text.parse::<u16>() {
        return Ok(Some(ListenAddr::Tcp(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))));
    }
    if text.starts_with("unix:") {
        return text.parse().map(Some).map_err(|e| format!("{e} (or off)"));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(Some(ListenAddr::Tcp(addr)));
    }
    // HOST:PORT: the host's first IPv4 address, else its first address.
    let resolved: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("{text:?} is not an address (PORT, HOST:PORT, IP:PORT, unix:/path or off): {e}"))?
        .collect();
    let addr = resolved.iter().find(|a| a.is_ipv4()).or(resolved.first());
    addr.map(|a| Some(ListenAddr::Tcp(*a))).ok_or_else(|| format!("{text:?} resolves to no address"))
}

/// `--public`: every service on the IPv4 loopback address listens on all
/// IPv4 interfaces instead, same port (an explicit other address or a Unix
/// socket is left alone).
pub(super) fn make_public(addr: &mut ServiceAddr) {
    if let Some(ListenAddr::Tcp(sock)) = addr
        && sock.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST)
    {
        sock.set_ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(text: &str) -> SocketAddr {
        match parse_service_addr(text) {
            Ok(Some(ListenAddr::Tcp(addr))) => addr,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn ports_host_names_ips_unix_and_off() {
        assert_eq!(tcp("8000"), "127.0.0.1:8000".parse().unwrap());
        assert_eq!(tcp("localhost:7070").port(), 7070);
        assert!(tcp("localhost:7070").ip().is_loopback());
        assert_eq!(tcp("[::1]:9"), "[::1]:9".parse().unwrap());
        assert_eq!(tcp("0.0.0.0:80"), "0.0.0.0:80".parse().unwrap());
        assert!(matches!(parse_service_addr("unix:/tmp/x.sock"), Ok(Some(ListenAddr::Unix(_)))));
        assert!(matches!(parse_service_addr("OFF"), Ok(None)));
        let err = parse_service_addr("no such host.invalid:80").unwrap_err();
        assert!(err.contains("not an address"), "{err}");
        assert!(parse_service_addr("70000").is_err());
    }

    #[test]
    fn public_moves_only_loopback_v4() {
        let mut addr = parse_service_addr("8000").unwrap();
        make_public(&mut addr);
        assert_eq!(addr, Some(ListenAddr::Tcp("0.0.0.0:8000".parse().unwrap())));
        for text in ["192.0.2.1:80", "[::1]:80", "unix:/tmp/y.sock"] {
            let mut addr = parse_service_addr(text).unwrap();
            let before = addr.clone();
            make_public(&mut addr);
            assert_eq!(addr, before, "{text}");
        }
    }
}
