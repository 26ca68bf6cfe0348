//! The client's TLS layer (rustls, ring provider) over any `Read + Write`
//! byte stream: `tls://host:port` addresses, trusting the system's roots,
//! a CA file, or one pinned certificate (its SHA-256, as `ferry serve
//! --tls-self-signed` prints it).
//!
//! System roots come from the operating system's store
//! (`rustls-native-certs`), not a bundled copy (`webpki-roots`): the
//! machine's administrator decides what is trusted (a company CA, a
//! removed root) and the OS's updates keep the list current, as curl and
//! wget do.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

/// What a TLS client trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Trust {
    /// The operating system's certificate store.
    #[default]
    System,
    /// The CA certificates in this PEM file (only them).
    CaFile(PathBuf),
    /// Exactly the server certificate with this SHA-256 (of its DER),
    /// whatever its name, issuer or dates: pinning, as for a
    /// self-signed server.
    Fingerprint([u8; 32]),
}

impl Trust {
    /// Parses a SHA-256 fingerprint: 64 hex digits, colons allowed
    /// (`AB:CD:...`, as openssl prints it).
    pub fn parse_fingerprint(text: &str) -> Result<Trust, String> {
        let hex: String = text.chars().filter(|c| *c != ':').collect();
        let bad = || format!("{text:?} is not a SHA-256 fingerprint (64 hex digits, colons allowed)");
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(bad());
        }
        let mut pin = [0u8; 32];
        for (i, byte) in pin.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Trust::Fingerprint(pin))
    }
}

/// The address without its `tls://` prefix, and whether it had one.
pub fn strip_tls_scheme(addr: &str) -> (bool, &str) {
    match addr.strip_prefix("tls://") {
        Some(rest) => (true, rest),
        None => (false, addr),
    }
}

/// One connection's client-side TLS state; the stream is passed to each
/// call, so it wraps any `Read + Write` (TCP, a Unix socket).
pub struct TlsLayer {
    conn: ClientConnection,
}

impl fmt::Debug for TlsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsLayer").finish_non_exhaustive()
    }
}

impl TlsLayer {
    /// Runs the handshake with `host` (its name or address, port-less)
    /// over `io`. Errors are `io::Error`s (a refused certificate is
    /// `InvalidData` saying why).
    pub fn handshake<S: Read + Write>(io: &mut S, host: &str, trust: &Trust) -> io::Result<TlsLayer> {
        let config = client_config(trust)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: not a TLS server name: {e}")))?;
        let mut conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        while conn.is_handshaking() {
            let (read, wrote) = conn.complete_io(io)?;
            if read == 0 && wrote == 0 && conn.is_handshaking() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed during the TLS handshake"));
            }
        }
        Ok(TlsLayer { conn })
    }

    /// Reads plaintext (0 at the server's close).
    pub fn read<S: Read + Write>(&mut self, io: &mut S, buf: &mut [u8]) -> io::Result<usize> {
        match rustls::Stream::new(&mut self.conn, io).read(buf) {
            // A server that closes without close_notify ends the stream too
            // (ferry's own answers are framed, so no truncation goes unseen).
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        }
    }

    /// Encrypts and sends all of `bytes`.
    pub fn write_all<S: Read + Write>(&mut self, io: &mut S, bytes: &[u8]) -> io::Result<()> {
        let mut stream = rustls::Stream::new(&mut self.conn, io);
        stream.write_all(bytes)?;
        stream.flush()
    }

    /// Sends our `close_notify` (before a half-close).
    pub fn close<S: Read + Write>(&mut self, io: &mut S) -> io::Result<()> {
        self.conn.send_close_notify();
        while self.conn.wants_write() {
            self.conn.write_tls(io)?;
        }
        io.flush()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration for `trust`.
fn client_config(trust: &Trust) -> io::Result<Arc<ClientConfig>> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?;
    let config = match trust {
        Trust::Fingerprint(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                pin: *pin,
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        Trust::CaFile(path) => {
            let mut roots = RootCertStore::empty();
            let bad =
                |e: &dyn fmt::Display| io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {e}", path.display()));
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            if roots.is_empty() {
                return Err(bad(&"no CERTIFICATE in it"));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::System => {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "no trusted root certificates found on this system: give --ca FILE or --fingerprint SHA256",
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

/// Trusts one certificate, by its SHA-256; the handshake's signatures are
/// still checked against it (so the server holds its key).
#[derive(Debug)]
struct Pinned {
    pin: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if seen == self.pin {
            return Ok(ServerCertVerified::assertion());
        }
        Err(rustls::Error::General(format!(
            "the server's certificate has SHA-256 {}, not the --fingerprint given",
            colon_hex(&seen)
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `AB:CD:...`.
fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let plain = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(Trust::parse_fingerprint(&plain), Ok(Trust::Fingerprint([0xab; 32])));
        assert_eq!(Trust::parse_fingerprint(&colons), Ok(Trust::Fingerprint([0xab; 32])));
        assert!(Trust::parse_fingerprint("abcd").is_err());
        assert!(Trust::parse_fingerprint(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn the_scheme_is_stripped() {
        assert_eq!(strip_tls_scheme("tls://h:1"), (true, "h:1"));
        assert_eq!(strip_tls_scheme("h:1"), (false, "h:1"));
    }
}
