//! What a listener serves. One server may run several listeners, each
//! tagged with its service; a connection gets a fresh session of it.

use std::net::SocketAddr;

use ferry_proto::Session;
use ferry_proto::echo::EchoSession;
use ferry_proto::files::{FileSession, FilesConfig};

/// A service ferry can run on a listener. Cheap to clone (the file service
/// shares its root).
#[derive(Debug, Clone)]
pub enum Service {
    /// The file-transfer protocol of `docs/PROTOCOL.md`.
    Files(FilesConfig),
    /// Sends back every byte received.
    Echo,
}

impl Service {
    /// A short name for logs and the "listening on" lines.
    pub fn name(&self) -> &'static str {
        match self {
            Service::Files(_) => "files",
            Service::Echo => "echo",
        }
    }

    /// The protocol state of one new connection.
    pub fn new_session(&self) -> Box<dyn Session + Send> {
        match self {
            Service::Files(config) => Box::new(FileSession::new(config.clone())),
            Service::Echo => Box::new(EchoSession),
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
}
