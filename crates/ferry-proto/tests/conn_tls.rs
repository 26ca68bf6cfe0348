//! The connection core's TLS layer on the Pair's fake clock: a rustls
//! client talks to an HTTP session through it; files are read, encrypted
//! and sent (never `sendfile`); plain text gets the configured answer; a
//! stalled handshake is cut by the request timeout; memory stays bounded.

use std::fs;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_proto::conn::{ConnConfig, Pair, PairEvent, TLS_CHUNK, Timeouts, TlsConfig};
use ferry_proto::http::{FileCache, HttpConfig, HttpSession};
use ferry_proto::root::Root;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

const IDLE: Duration = Duration::from_secs(60);
const REQUEST: Duration = Duration::from_secs(10);
const BIG: usize = 3 * 1024 * 1024 + 123;
/// The TLS connection's own buffers at their largest: unread ciphertext
/// and unconsumed plaintext (64 KiB each), the file buffer (64 KiB) and one
/// encrypted chunk (64 KiB and record overhead), with allocator slack.
const BUFFERS: usize = 4 * 64 * 1024 + 64 * 1024;

struct Setup {
    dir: PathBuf,
    tls: TlsConfig,
    client: Arc<rustls::ClientConfig>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn setup(name: &str) -> Setup {
    let dir = std::env::temp_dir().join(format!("ferry-tls-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("hello.txt"), b"Hello, world!").unwrap();
    fs::write(dir.join("big.bin"), big()).unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = CertificateDer::from(made.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    let answer: Arc<[u8]> = Arc::from(&b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nplain HTTP to HTTPS"[..]);
    Setup { dir, tls: TlsConfig { server: Arc::new(server), plaintext_answer: Some(answer) }, client: Arc::new(client) }
}

fn big() -> Vec<u8> {
    (0..BIG).map(|i| (i % 251) as u8).collect()
}

fn pair(s: &Setup) -> Pair<HttpSession> {
    let http = HttpSession::new(Arc::new(HttpConfig::new(Arc::new(Root::open(&s.dir).unwrap()))), FileCache::new());
    let mut config = ConnConfig::new(Timeouts { idle_timeout: IDLE, request_timeout: REQUEST });
    config.tls = Some(s.tls.clone());
    Pair::with_config(http, config)
}

/// A rustls client on the other end of a Pair.
struct Client {
    tls: rustls::ClientConnection,
    plain: Vec<u8>,
}

impl Client {
    fn new(s: &Setup) -> Client {
        let name = ServerName::try_from("localhost").unwrap();
        Client { tls: rustls::ClientConnection::new(Arc::clone(&s.client), name).unwrap(), plain: Vec::new() }
    }

    /// Moves bytes both ways until neither side has anything to say.
    fn exchange(&mut self, pair: &mut Pair<HttpSession>) {
        for _ in 0..100_000 {
            let mut out = Vec::new();
            while self.tls.wants_write() {
                self.tls.write_tls(&mut out).unwrap();
            }
            if !out.is_empty() {
                pair.send(&out);
            }
            let got = pair.take_received();
            pair.client_read();
            if got.is_empty() && out.is_empty() {
                return;
            }
            let mut rest = &got[..];
            while !rest.is_empty() {
                self.tls.read_tls(&mut rest).unwrap();
                self.tls.process_new_packets().unwrap();
                let mut buf = vec![0; 64 * 1024];
                loop {
                    match self.tls.reader().read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => self.plain.extend_from_slice(&buf[..n]),
                    }
                }
            }
        }
        panic!("the exchange did not settle");
    }
}

#[test]
fn a_file_is_encrypted_from_a_bounded_buffer_and_never_sendfiled() {
    let s = setup("get");
    // A small receive window: the server must hold at most one encrypted
    // chunk, not the file.
    let mut pair = pair(&s).window(32 * 1024).max_queued(TLS_CHUNK + 4096).max_buffers(BUFFERS);
    let mut client = Client::new(&s);
    client.exchange(&mut pair);
    assert!(!client.tls.is_handshaking(), "handshake completes");
    assert_eq!(client.tls.alpn_protocol(), Some(&b"http/1.1"[..]));
    client.tls.writer().write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    client.exchange(&mut pair);
    let text = String::from_utf8_lossy(&client.plain).into_owned();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.ends_with("Hello, world!"), "{text}");
    client.plain.clear();
    client.tls.writer().write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    client.exchange(&mut pair);
    let end = client.plain.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(client.plain[end..] == big()[..], "the body arrives whole and in order");
    assert!(!pair.events().iter().any(|e| matches!(e, PairEvent::SendFile(_))), "no sendfile under TLS");
    assert!(pair.closed().is_none(), "keep-alive");
    assert_eq!(pair.conn().buffer_bytes(), 0, "an idle keep-alive TLS connection holds no buffers");
    // The client's close_notify ends the connection in order.
    client.tls.send_close_notify();
    client.exchange(&mut pair);
    assert!(pair.closed().is_some_and(|r| r.is_orderly()), "{:?}", pair.closed());
}

#[test]
fn plain_http_to_the_tls_port_gets_the_answer_and_a_close() {
    let s = setup("plain");
    let mut pair = pair(&s);
    pair.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let got = String::from_utf8_lossy(pair.received()).into_owned();
    assert!(got.starts_with("HTTP/1.1 400"), "{got:?}");
    assert!(pair.server_fin(), "closes after the answer");
}

#[test]
fn a_stalled_handshake_is_cut_by_the_request_timeout() {
    let s = setup("stall");
    let mut pair = pair(&s);
    let mut client = Client::new(&s);
    let mut hello = Vec::new();
    client.tls.write_tls(&mut hello).unwrap();
    pair.send(&hello[..10]);
    let waited = pair.advance_to_deadline().unwrap();
    assert_eq!(waited, REQUEST, "a begun handshake is timed like a request head");
    pair.advance(Duration::from_secs(3));
    assert!(pair.closed().is_some(), "closed at the request timeout");
}

#[test]
fn a_buffering_driver_holds_one_encrypted_chunk_not_the_file() {
    let s = setup("buffered");
    // An event loop takes every Send into its own buffer and reports it
    // queued; the core must wait for the flush before encrypting more.
    let mut pair = pair(&s).buffering_driver(TLS_CHUNK + 4096).max_buffers(BUFFERS);
    let mut client = Client::new(&s);
    client.exchange(&mut pair);
    client.tls.writer().write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    client.exchange(&mut pair);
    let end = client.plain.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(client.plain[end..] == big()[..], "the body arrives whole and in order");
}
