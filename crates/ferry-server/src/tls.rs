//! The server's TLS identity: a certificate chain and key read from PEM
//! files, behind a resolver that can be swapped while the server runs
//! ([`ServerTls::reload`], for a SIGHUP), and the per-service rustls
//! configurations built on it (ALPN `http/1.1` for HTTP).
//!
//! rustls with the `ring` provider: TLS 1.3 and 1.2, no OpenSSL, and it
//! builds with the stock toolchain (aws-lc-rs would need cmake and a C
//! toolchain on every build machine). Kernel TLS is not available here,
//! so records are encrypted in user space by the connection core
//! (`ferry_proto::conn`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use ferry_proto::conn::TlsConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use crate::Service;

/// A certificate or key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the certificate or key (a key that does not match
    /// the certificate, an unsupported key type).
    #[error("cannot use the certificate {cert} with the key {key}: {error}")]
    Unusable {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        error: rustls::Error,
    },
}

/// The certificate every handshake gets, swapped by [`ServerTls::reload`]
/// (connections already open keep theirs).
#[derive(Debug)]
struct SwapResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SwapResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A poisoned lock still holds a whole Arc: use it.
        Some(Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner())))
    }
}

/// The server's TLS identity, shared by its TLS listeners.
pub struct ServerTls {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    resolver: Arc<SwapResolver>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").field("cert", &self.cert).field("key", &self.key).finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads the certificate chain (leaf first) and private key (PKCS#8,
    /// PKCS#1 or SEC1) from PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let loaded = load(cert, key, &provider)?;
        // Absolute, so a reload after the daemon's chdir finds them.
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        Ok(ServerTls {
            cert: absolute(cert),
            key: absolute(key),
            provider,
            resolver: Arc::new(SwapResolver { current: RwLock::new(Arc::new(loaded)) }),
        })
    }

    /// Reads the PEM files again and serves the new certificate to every
    /// later handshake; on error the old one stays. For the server's
    /// reload signal.
    pub fn reload(&self) -> Result<(), TlsError> {
        let loaded = load(&self.cert, &self.key, &self.provider)?;
        *self.resolver.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        tracing::info!("TLS certificate reloaded from {}: SHA-256 {}", self.cert.display(), self.fingerprint());
        Ok(())
    }

    /// The SHA-256 fingerprint of the certificate served now (the leaf's
    /// DER), as colon-separated upper-case hex like `openssl x509
    /// -fingerprint -sha256` prints it.
    pub fn fingerprint(&self) -> String {
        let current = Arc::clone(&self.resolver.current.read().unwrap_or_else(|p| p.into_inner()));
        current.cert.first().map(|leaf| fingerprint(leaf)).unwrap_or_default()
    }

    /// The connection core's TLS settings for `service`'s listeners:
    /// ALPN `http/1.1` and a `400` for plain HTTP on HTTPS; a protocol
    /// error line for the file service.
    pub fn for_service(&self, service: &Service) -> TlsConfig {
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12]);
        // The versions are the provider's own: this cannot fail.
        let mut server = match builder {
            Ok(b) => b.with_no_client_auth().with_cert_resolver(Arc::clone(&self.resolver) as _),
            Err(e) => unreachable!("ring supports TLS 1.2 and 1.3: {e}"),
        };
        let answer: Option<&[u8]> = match service {
            Service::Http(_) => {
                server.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some(PLAIN_HTTP)
            }
            Service::Files(_) => Some(b"ERR 400 this port speaks TLS: connect to tls://HOST:PORT\n"),
            Service::Echo => None,
        };
        TlsConfig { server: Arc::new(server), plaintext_answer: answer.map(Arc::from) }
    }
}

/// nginx's answer to plain HTTP on an HTTPS port, in its words.
const PLAIN_HTTP: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 47\r\n\
Connection: close\r\n\r\nThe plain HTTP request was sent to HTTPS port.\n";

/// The SHA-256 of a certificate's DER, colon-separated upper-case hex.
pub fn fingerprint(cert: &[u8]) -> String {
    let digest = Sha256::digest(cert);
    digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    fn read_err(path: &Path) -> impl Fn(rustls::pki_types::pem::Error) -> TlsError + '_ {
        move |e| TlsError::Read { path: path.to_path_buf(), reason: e.to_string() }
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(read_err(cert))?
        .collect::<Result<_, _>>()
        .map_err(read_err(cert))?;
    if chain.is_empty() {
        return Err(TlsError::Read { path: cert.to_path_buf(), reason: "no CERTIFICATE in it".into() });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(read_err(key))?;
    CertifiedKey::from_der(chain, private, provider).map_err(|error| TlsError::Unusable {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a fresh self-signed pair to `dir`; returns its fingerprint.
    fn make_pair(dir: &Path) -> String {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
        std::fs::write(dir.join("cert.pem"), made.cert.pem()).expect("write");
        std::fs::write(dir.join("key.pem"), made.key_pair.serialize_pem()).expect("write");
        fingerprint(made.cert.der())
    }

    /// The certificate a new handshake with `tls` gets.
    fn served_fingerprint(tls: &ServerTls) -> String {
        let service = Service::Echo;
        let server = tls.for_service(&service).server;
        let mut server = rustls::ServerConnection::new(server).expect("server");
        let verifier = Arc::new(AnyCert(Arc::new(rustls::crypto::ring::default_provider())));
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut client = rustls::ClientConnection::new(Arc::new(client), name).expect("client");
        for _ in 0..10 {
            let mut bytes = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut bytes).expect("client out");
            }
            server.read_tls(&mut &bytes[..]).expect("server in");
            server.process_new_packets().expect("server");
            let mut bytes = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut bytes).expect("server out");
            }
            client.read_tls(&mut &bytes[..]).expect("client in");
            client.process_new_packets().expect("client");
        }
        let certs = client.peer_certificates().expect("the server sent its certificate");
        fingerprint(&certs[0])
    }

    /// Accepts any certificate (the test compares fingerprints itself).
    #[derive(Debug)]
    struct AnyCert(Arc<CryptoProvider>);

    impl rustls::client::danger::ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    #[test]
    fn reload_serves_the_new_certificate_to_later_handshakes_and_keeps_the_old_on_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = make_pair(dir.path());
        let tls = ServerTls::from_pem_files(&dir.path().join("cert.pem"), &dir.path().join("key.pem")).expect("load");
        assert_eq!(tls.fingerprint(), first);
        assert_eq!(served_fingerprint(&tls), first);
        let second = make_pair(dir.path());
        assert_ne!(first, second);
        tls.reload().expect("reload");
        assert_eq!(tls.fingerprint(), second);
        assert_eq!(served_fingerprint(&tls), second, "a new handshake gets the new certificate");
        std::fs::write(dir.path().join("key.pem"), "not a key").expect("write");
        assert!(tls.reload().is_err(), "a broken key is refused");
        assert_eq!(served_fingerprint(&tls), second, "and the served certificate stays");
    }

    #[test]
    fn plain_http_answer_has_the_right_length() {
        let text = std::str::from_utf8(PLAIN_HTTP).unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(text.contains(&format!("Content-Length: {}\r\n", body.len())));
    }
}
