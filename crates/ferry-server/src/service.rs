//! What a listener serves. One server may run several listeners, each
//! tagged with its service; a connection gets a fresh session of it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferry_proto::Session;
use ferry_proto::echo::EchoSession;
use ferry_proto::files::{FileSession, FilesConfig};
use ferry_proto::http::{FileCache, HttpConfig, HttpSession};

use crate::PumpConfig;

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
    pub fn new_session(&self) -> Box<dyn Session + Send> {
        self.new_session_in(&FileCache::new())
    }

    /// The protocol state of one new connection that shares `cache` with
    /// the other sessions of the same thread (an event loop, a worker).
    pub fn new_session_in(&self, cache: &FileCache) -> Box<dyn Session + Send> {
        match self {
            Service::Files(config) => Box::new(FileSession::new(config.clone())),
            Service::Echo => Box::new(EchoSession),
            Service::Http(config) => Box::new(HttpSession::new(Arc::clone(config), cache.clone())),
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
}

/// One address to listen on and the service it offers.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// What connections accepted there are served with.
    pub service: Service,
    /// Timeouts of connections accepted there.
    pub pump: PumpConfig,
}

impl ListenerConfig {
    /// A listener with the service's default timeouts.
    pub fn new(addr: SocketAddr, service: Service) -> ListenerConfig {
        let pump = service.default_timeouts();
        ListenerConfig { addr, service, pump }
    }
}
