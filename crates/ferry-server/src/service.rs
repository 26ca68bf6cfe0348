//! What a listener serves. One server may run several listeners, each
//! tagged with its service; a connection gets a fresh session of it.

use std::sync::Arc;
use std::time::Duration;

use ferry_proto::Session;
use ferry_proto::conn::ConnConfig;
use ferry_proto::echo::EchoSession;
use ferry_proto::files::{FileSession, FilesConfig, MAX_LINE};
use ferry_proto::http::{FileCache, HttpConfig, HttpSession};

use crate::PumpConfig;
use crate::net::{Peer, login_key};
use crate::tls::ServerTls;
use ferry_reactor::{ListenAddr, ListenOptions, TcpKeepalive};

/// A service ferry can run on a listener. Cheap to clone (the file service
/// shares its root).
#[derive(Debug, Clone)]
pub enum Service {
    /// The file-transfer protocol of `docs/PROTOCOL.md`.
    Files(FilesConfig),
    /// Sends back every byte received.
    Echo,
    /// HTTP/1.1 static files (`ferry_proto::http`).
    Http(Arc<HttpConfig>),
}

impl Service {
    /// A short name for logs and the "listening on" lines.
    pub fn name(&self) -> &'static str {
        match self {
            Service::Files(_) => "files",
            Service::Echo => "echo",
            Service::Http(_) => "http",
        }
    }

    /// The protocol state of one new connection, with a cache of its own
    /// (for a thread that serves one connection in its life).
    pub fn new_session(&self, peer: Option<Peer>) -> Box<dyn Session + Send> {
        self.new_session_in(&FileCache::new(), peer)
    }

    /// The protocol state of one new connection that shares `cache` with
    /// the other sessions of the same thread (an event loop, a worker).
    /// `peer` is the client (failed logins from one IP address, or one
    /// Unix user, are slowed down; `None` when unknown).
    pub fn new_session_in(&self, cache: &FileCache, peer: Option<Peer>) -> Box<dyn Session + Send> {
        let observer = crate::observe::ConnObserver::new(self, peer.as_ref());
        let peer = peer.as_ref().map(login_key);
        match (self, observer) {
            (Service::Files(config), None) => Box::new(FileSession::new(config.clone()).with_peer(peer)),
            (Service::Files(config), Some(o)) => {
                Box::new(FileSession::new(config.clone()).with_peer(peer).with_observer(Box::new(o)))
            }
            (Service::Echo, None) => Box::new(EchoSession),
            (Service::Echo, Some(o)) => Box::new(crate::observe::Counted { inner: EchoSession, _observer: o }),
            (Service::Http(config), observer) => {
                let session = HttpSession::new(Arc::clone(config), cache.clone()).with_peer(peer);
                match observer {
                    Some(o) => Box::new(session.with_observer(Box::new(o))),
                    None => Box::new(session),
                }
            }
        }
    }

    /// The timeouts a user expects of this service when none are given:
    /// 300 s idle for files and echo; for HTTP 60 s keep-alive idle and
    /// 10 s to finish a request head once it has begun.
    pub fn default_timeouts(&self) -> PumpConfig {
        match self {
            Service::Files(_) | Service::Echo => PumpConfig::with_idle(Duration::from_secs(300)),
            Service::Http(_) => {
                PumpConfig { idle_timeout: Duration::from_secs(60), request_timeout: Duration::from_secs(10) }
            }
        }
    }

    /// How many bytes the pools peek at to judge a connection's first
    /// request ([`Service::first_request`]): the largest the session
    /// accepts, and a little room for blank lines before it. A peek that
    /// fills this much without a complete request is handed over anyway;
    /// the session refuses an oversize one with its usual answer.
    pub(crate) fn first_request_limit(&self) -> usize {
        match self {
            Service::Files(_) => MAX_LINE + BLANK_ROOM,
            Service::Echo => 1,
            Service::Http(config) => config.max_head + BLANK_ROOM,
        }
    }

    /// How far the first request has arrived in `peeked`, the bytes at the
    /// front of a new connection (peeked, not consumed). The pools hand a
    /// connection to a worker only once it is [`FirstRequest::Complete`],
    /// so no worker waits on a slow sender. Never says `Complete` before
    /// the session could answer: file protocol, a line with a word in it
    /// (blank lines get no answer); HTTP, a head ended by its blank line
    /// (blank lines before the request line are ignored, RFC 9112 2.2);
    /// echo, any byte.
    pub(crate) fn first_request(&self, peeked: &[u8]) -> FirstRequest {
        match self {
            Service::Echo if peeked.is_empty() => FirstRequest::NotBegun,
            Service::Echo => FirstRequest::Complete,
            Service::Files(_) => after_blank_lines(peeked, b" \t\r\n", |rest| rest.contains(&b'\n')),
            Service::Http(_) => after_blank_lines(peeked, b"\r\n", http_head_ends),
        }
    }
}

/// Room for blank lines before a first request in [`Service::first_request_limit`].
const BLANK_ROOM: usize = 64;

/// How much of a connection's first request has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstRequest {
    /// Nothing that begins a request: no byte yet, or only blank lines.
    NotBegun,
    /// Begun and not complete: a worker given it now would wait.
    Partial,
    /// Complete: a worker can answer without waiting for the client.
    Complete,
}

/// Judges `peeked` from its first byte not in `blank`: no such byte, not
/// begun; complete if `ends` says so of the rest.
fn after_blank_lines(peeked: &[u8], blank: &[u8], ends: impl Fn(&[u8]) -> bool) -> FirstRequest {
    match peeked.iter().position(|b| !blank.contains(b)) {
        None => FirstRequest::NotBegun,
        Some(start) if ends(&peeked[start..]) => FirstRequest::Complete,
        Some(_) => FirstRequest::Partial,
    }
}

/// True if `head` (starting at a request line) holds the blank line that
/// ends an HTTP head: `\n\n` or `\n\r\n`, bare LF line ends included as
/// the HTTP session's parser accepts them.
fn http_head_ends(head: &[u8]) -> bool {
    head.windows(2).any(|w| w == b"\n\n") || head.windows(3).any(|w| w == b"\n\r\n")
}

/// One address to listen on and the service it offers.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Where to listen: TCP (port 0 picks a free port), or a Unix-domain
    /// socket (a path or an abstract name).
    pub addr: ListenAddr,
    /// What connections accepted there are served with.
    pub service: Service,
    /// Timeouts of connections accepted there.
    pub pump: PumpConfig,
    /// TCP keep-alive on the connections accepted there (`None`: off; not
    /// applied to a Unix socket).
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// The mode of a Unix socket's file (`None`: what the umask leaves).
    pub unix_mode: Option<u32>,
    /// Speak TLS there with this identity (`None`: plain text).
    pub tls: Option<Arc<ServerTls>>,
    /// `SO_REUSEPORT` on a TCP listener: independent ferry processes may
    /// listen on the same port, the kernel spreading new connections among
    /// them (`ferry serve --reuseport`). The uring model sets it anyway,
    /// for its own rings.
    pub reuse_port: bool,
}

impl ListenerConfig {
    /// A listener with the service's default timeouts.
    pub fn new(addr: ListenAddr, service: Service) -> ListenerConfig {
        let pump = service.default_timeouts();
        ListenerConfig { addr, service, pump, tcp_keepalive: None, unix_mode: None, tls: None, reuse_port: false }
    }

    /// How its socket is bound: TCP-only options (keep-alive,
    /// `SO_REUSEPORT`) only on TCP, the mode only on a Unix socket file; a
    /// stale socket file is replaced.
    pub(crate) fn listen_options(&self) -> ListenOptions {
        let unix = self.addr.is_unix();
        ListenOptions {
            tcp_keepalive: self.tcp_keepalive.filter(|_| !unix),
            unix_mode: self.unix_mode.filter(|_| unix),
            reuse_port: self.reuse_port && !unix,
            ..ListenOptions::default()
        }
    }

    /// How the connections accepted here are run: the one place where a
    /// listener's settings (timeouts, TLS) become its connections' core
    /// settings, for every driver. `splice`: the driver can splice upload
    /// payload into files (the core ignores it under TLS).
    pub fn conn_config(&self, splice: bool) -> ConnConfig {
        ConnConfig { timeouts: self.pump, splice, tls: self.tls.as_ref().map(|tls| tls.for_service(&self.service)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::FirstRequest::*;

    fn max_head() -> usize {
        let root = ferry_proto::root::Root::open(&std::env::temp_dir()).expect("open a root");
        HttpConfig::new(Arc::new(root)).max_head
    }

    fn http() -> Service {
        let root = ferry_proto::root::Root::open(&std::env::temp_dir()).expect("open a root");
        Service::Http(Arc::new(HttpConfig::new(Arc::new(root))))
    }

    #[test]
    fn http_is_complete_at_the_blank_line_ending_the_head() {
        let http = http();
        for (peeked, want) in [
            (&b""[..], NotBegun),
            (b"\r\n\r\n", NotBegun),
            (b"G", Partial),
            (b"GET / HTTP/1.1\r\nHost: a\r\n", Partial),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r", Partial),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Complete),
            (b"\r\nGET / HTTP/1.0\n\n", Complete),
            (b"GET / HTTP/1.0\nHost: a\n\nmore", Complete),
        ] {
            assert_eq!(http.first_request(peeked), want, "{:?}", String::from_utf8_lossy(peeked));
        }
        assert_eq!(http.first_request_limit(), max_head() + BLANK_ROOM);
    }

    #[test]
    fn files_is_complete_at_the_end_of_a_line_with_a_word() {
        let root = ferry_proto::root::Root::open(&std::env::temp_dir()).expect("open a root");
        let files = Service::Files(FilesConfig::read_only(Arc::new(root)));
        for (peeked, want) in [
            (&b""[..], NotBegun),
            (b"\n \t\r\n", NotBegun),
            (b"pi", Partial),
            (b"\nping", Partial),
            (b"ping\n", Complete),
            (b"  ping\r\nput x 5\n", Complete),
        ] {
            assert_eq!(files.first_request(peeked), want, "{:?}", String::from_utf8_lossy(peeked));
        }
    }

    #[test]
    fn echo_is_complete_at_any_byte() {
        assert_eq!(Service::Echo.first_request(b""), NotBegun);
        assert_eq!(Service::Echo.first_request(b"\n"), Complete);
        assert_eq!(Service::Echo.first_request_limit(), 1);
    }
}
