//! A peer that never answers, one whose accept queue is full, and one that
//! speaks HTTP: the client fails within its timeouts, saying what it met.

mod support;

use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use ferry_client::{Client, ClientError, ClientOptions, GetOptions, NoProgress};
use rustix::net::{AddressFamily, SocketType, bind, listen, socket};
use support::scripted_server;

const SHORT: Duration = Duration::from_millis(700);
/// Slack for a loaded machine; far below the defaults (10 s, 60 s).
const MARGIN: Duration = Duration::from_secs(4);

fn short_options() -> ClientOptions {
    ClientOptions { connect_timeout: Some(SHORT), stall_timeout: Some(SHORT), ..ClientOptions::default() }
}

/// A listener that accepts and then says nothing: the first answer never
/// comes, and the stall timeout ends the wait.
#[test]
fn a_silent_server_fails_the_first_request_after_the_stall_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut client = Client::connect_with(&addr, &short_options()).unwrap();
    let (held, _) = listener.accept().unwrap();
    let started = Instant::now();
    let err = client.pwd().unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert!(took >= SHORT && took < SHORT + MARGIN, "{took:?}");
    let message = err.to_string();
    assert!(message.contains(&addr) && message.contains("stall timeout"), "{message}");

    // The same for a download: no part is left behind for nothing.
    let local = tempfile::tempdir().unwrap();
    let mut client = Client::connect_with(&addr, &short_options()).unwrap();
    let err = client.get(b"/x", &local.path().join("x"), GetOptions::default(), &mut NoProgress).unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert!(!local.path().join("x.part").exists());
    drop(held);
}

/// A payload that stops half-way fails after the stall timeout too.
#[test]
fn a_download_that_stalls_fails_after_the_stall_timeout() {
    let (addr, server) = scripted_server(|peer| {
        peer.line();
        peer.send(b"OK 100 0 100 v1\n0123456789");
        // Hold the connection open, sending nothing more.
        peer.line()
    });
    let local = tempfile::tempdir().unwrap();
    let mut client = Client::connect_with(&addr, &short_options()).unwrap();
    let started = Instant::now();
    let err = client.get(b"/x", &local.path().join("x"), GetOptions::default(), &mut NoProgress).unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < SHORT + MARGIN);
    drop(client);
    server.join().unwrap();
    assert_eq!(std::fs::read(local.path().join("x.part")).unwrap(), b"0123456789", "kept for resuming");
}

/// A listener whose accept queue is full never completes the handshake
/// (Linux drops the SYN): the connect timeout ends the wait.
#[test]
fn a_full_accept_queue_fails_after_the_connect_timeout() {
    let listener: OwnedFd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    bind(&listener, &"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap()).unwrap();
    // Backlog 1: Linux queues up to two connections, then drops SYNs.
    listen(&listener, 1).unwrap();
    let listener = TcpListener::from(listener);
    let addr = listener.local_addr().unwrap();
    // Fill the queue (never accepted). A filler whose SYN races the
    // previous handshake may be dropped; the next one then gets in.
    let fillers: Vec<_> =
        (0..3).map(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300))).collect();
    assert!(fillers.iter().filter(|f| f.is_ok()).count() >= 2, "{fillers:?}");

    let started = Instant::now();
    let err = Client::connect_with(&addr.to_string(), &short_options()).unwrap_err();
    let took = started.elapsed();
    let ClientError::Connect { source, .. } = &err else { panic!("expected a connect error: {err}") };
    assert_eq!(source.kind(), std::io::ErrorKind::TimedOut, "{source}");
    assert!(source.to_string().contains("connect timeout"), "{source}");
    assert!(took >= SHORT && took < SHORT + MARGIN, "{took:?}");
}

/// An HTTP status line where an answer was due: a clear error and a hint.
#[test]
fn an_http_answer_names_the_mistake() {
    let (addr, server) = scripted_server(|peer| {
        peer.line();
        peer.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    let mut client = Client::connect_with(&addr, &short_options()).unwrap();
    let err = client.ls(None).unwrap_err();
    server.join().unwrap();
    let ClientError::HttpServer { line, .. } = &err else { panic!("expected the HTTP hint: {err}") };
    assert_eq!(line, "HTTP/1.1 400 Bad Request");
    let message = err.to_string();
    assert!(message.contains("looks like an HTTP server") && message.contains("7070"), "{message}");
}
