//! In-process tests of the reactor models over loopback: both models, both
//! pollers; timeouts from the sweep; the shutdown sequence (idle closed at
//! once, in-flight finished, cut at the drain timeout).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_proto::http::HttpConfig;
use ferry_proto::root::Root;

use super::{PollerKind, ReactorConfig, ReactorServer};

use crate::{ListenerConfig, Service};

use crate::test_server::{PATIENCE, Running, echo, is_closed};

/// Starts a reactor server on its own thread.
fn start(listeners: Vec<ListenerConfig>, io_threads: usize, poller: PollerKind, drain: Duration) -> Running {
    let config = ReactorConfig {
        drain_timeout: drain,
        io_threads,
        poller,
        handle_signals: false,
        ..ReactorConfig::new(listeners)
    };
    let server = ReactorServer::bind(config).expect("bind");
    Running::spawn(&server.listeners(), server.shutdown_handle(), move || server.run())
}

fn configurations() -> [(usize, PollerKind); 6] {
    [
        (0, PollerKind::Epoll),
        (0, PollerKind::Poll),
        (0, PollerKind::Select),
        (2, PollerKind::Epoll),
        (2, PollerKind::Poll),
        (2, PollerKind::Select),
    ]
}

#[test]
fn echo_on_every_model_and_poller_then_idle_clients_close_at_shutdown() {
    for (threads, poller) in configurations() {
        let mut server = start(vec![echo("127.0.0.1:0", PATIENCE)], threads, poller, PATIENCE);
        let mut clients: Vec<TcpStream> = (0..8).map(|_| server.connect(0)).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            let msg = format!("hello {i}\n");
            c.write_all(msg.as_bytes()).expect("write");
            let mut got = vec![0; msg.len()];
            c.read_exact(&mut got).expect("echo");
            assert_eq!(got, msg.as_bytes(), "{threads} threads, {poller:?}");
        }
        let report = server.stop();
        assert_eq!((report.accepted, report.cut), (8, 0), "{threads} threads, {poller:?}");
        for c in &mut clients {
            assert!(is_closed(c), "idle client closed at shutdown ({threads} threads, {poller:?})");
        }
    }
}

#[test]
fn idle_timeout_closes_a_silent_connection_but_not_a_busy_one() {
    for (threads, poller) in configurations() {
        let mut server = start(vec![echo("127.0.0.1:0", Duration::from_millis(400))], threads, poller, PATIENCE);
        let mut silent = server.connect(0);
        let mut busy = server.connect(0);
        let started = Instant::now();
        // Busy: a byte every 100 ms for 1 s keeps it alive past the timeout.
        while started.elapsed() < Duration::from_secs(1) {
            busy.write_all(b"x").expect("write");
            let mut b = [0u8; 1];
            busy.read_exact(&mut b).expect("echo");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(is_closed(&mut silent), "silent connection timed out ({threads} threads, {poller:?})");
        busy.write_all(b"y").expect("busy still open");
        let mut b = [0u8; 1];
        busy.read_exact(&mut b).expect("busy still answered");
        assert_eq!(&b, b"y");
        server.stop();
    }
}

#[test]
fn shutdown_finishes_an_in_flight_download_or_cuts_it_at_the_drain_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = vec![7u8; 32 << 20];
    std::fs::write(dir.path().join("big.bin"), &big).expect("write");
    let root = Arc::new(Root::open(dir.path()).expect("root"));
    let http = || {
        ListenerConfig::new(
            "127.0.0.1:0".parse().expect("addr"),
            Service::Http(Arc::new(HttpConfig::new(Arc::clone(&root)))),
        )
    };
    for (drain, finishes) in [(PATIENCE, true), (Duration::from_millis(300), false)] {
        let mut server = start(vec![http()], 2, PollerKind::Epoll, drain);
        let mut dl = server.connect(0);
        dl.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n").expect("request");
        let mut reader = BufReader::new(dl.try_clone().expect("clone"));
        let mut line = String::new();
        reader.read_line(&mut line).expect("status");
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        if finishes {
            // Read everything while the server drains in the background.
            let shutdown = server.shutdown.clone();
            shutdown.signal();
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).expect("download completes");
            assert!(rest.ends_with(&big[..1024]), "body arrived to its end");
            assert!(rest.len() > big.len(), "whole body ({} bytes) after the head", rest.len());
            assert_eq!(server.stop().cut, 0);
        } else {
            // Never read: the transfer cannot finish, so it is cut.
            let report = server.stop();
            assert_eq!(report.cut, 1, "the stalled download is cut at the drain timeout");
        }
    }
}
