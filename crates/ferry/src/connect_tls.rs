//! The client commands' TLS options, for `tls://HOST:PORT` addresses:
//! trust the system's roots, a CA file, or one pinned certificate.

use std::path::PathBuf;

use ferry_client::tls::Trust;

/// `--ca` and `--fingerprint`.
#[derive(Debug, Clone, clap::Args)]
pub struct TlsClientArgs {
    /// With a tls:// address: trust only the CA certificates in FILE (PEM)
    /// instead of the system's roots.
    #[arg(long, value_name = "FILE", conflicts_with = "fingerprint")]
    ca: Option<PathBuf>,
    /// With a tls:// address: trust exactly the server certificate with
    /// this SHA-256 (64 hex digits, colons allowed), as `ferry serve
    /// --tls-self-signed` prints it; its name and dates are not checked.
    #[arg(long, value_name = "SHA256", value_parser = Trust::parse_fingerprint)]
    fingerprint: Option<Trust>,
}

impl TlsClientArgs {
    /// What the server of a tls:// address must prove.
    pub fn trust(&self) -> Trust {
        match (&self.fingerprint, &self.ca) {
            (Some(pin), _) => pin.clone(),
            (None, Some(ca)) => Trust::CaFile(ca.clone()),
            (None, None) => Trust::System,
        }
    }
}
