//! Outgoing connections over real sockets on 127.0.0.1: non-blocking
//! connect with both pollers, sends queued before it completes, refusal
//! reported, and a half-close that waits for the connect.

mod util;

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_reactor::{Callbacks, PollerKind};
use util::*;

fn nonblocking_connect(kind: PollerKind) {
    use ferry_reactor::{EventLoop, ListenAddr, connect_nonblocking};
    let server = start_server("127.0.0.1:0", 0, kind, echo_callbacks());
    let mut lp = EventLoop::new(kind).unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g2 = got.clone();
    let callbacks = Callbacks::new()
        .on_connected(|c| {
            assert!(c.is_connected());
            c.send(b"hello");
        })
        .on_message(move |c, buf| {
            let mut g = g2.lock().unwrap();
            g.extend_from_slice(&buf.take_all());
            if g.len() >= 10 {
                c.force_close();
            }
        });
    let h = connect_nonblocking(&mut lp, &ListenAddr::Tcp(server.tcp_addr()), callbacks).unwrap();
    // Sent while (probably) still connecting: queued, flushed once connected.
    lp.with_connection(h.token(), |c| c.send(b"early"));
    let start = std::time::Instant::now();
    while lp.handler_count() > 0 {
        lp.run_once(Some(Duration::from_millis(100))).unwrap();
        assert!(start.elapsed() < TEST_TIMEOUT, "non-blocking connect did not finish");
    }
    let mut g = got.lock().unwrap().clone();
    g.sort();
    let mut want = b"earlyhello".to_vec();
    want.sort();
    assert_eq!(g, want);

    // Refused: connect_failed runs, connected never does.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let failed = Arc::new(Mutex::new(None));
    let f2 = failed.clone();
    let callbacks =
        Callbacks::new().on_connected(|_| panic!("connected to a closed port")).on_connect_failed(move |c, e| {
            assert!(!c.is_connected());
            *f2.lock().unwrap() = Some(e.kind());
        });
    connect_nonblocking(&mut lp, &ListenAddr::Tcp(closed_port), callbacks).unwrap();
    while failed.lock().unwrap().is_none() {
        lp.run_once(Some(Duration::from_millis(100))).unwrap();
        assert!(start.elapsed() < TEST_TIMEOUT, "refused connect never reported");
    }
    assert_eq!(failed.lock().unwrap().unwrap(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(lp.handler_count(), 0, "failed connection freed");

    // Send and shut down before the connect (probably) completed: the
    // half-close waits for it; the peer gets the bytes, then EOF.
    let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let connected = Arc::new(AtomicBool::new(false));
    let c2 = connected.clone();
    let callbacks = Callbacks::new().on_connected(move |_| c2.store(true, Ordering::Release));
    let h = connect_nonblocking(&mut lp, &ListenAddr::Tcp(peer.local_addr().unwrap()), callbacks).unwrap();
    lp.with_connection(h.token(), |c| {
        assert!(c.send(b"bye"));
        c.shutdown();
        assert!(!c.send(b"refused after shutdown"));
    });
    while !connected.load(Ordering::Acquire) {
        assert_eq!(lp.handler_count(), 1, "closed before it connected");
        lp.run_once(Some(Duration::from_millis(100))).unwrap();
        assert!(start.elapsed() < TEST_TIMEOUT, "connect never completed");
    }
    let (mut theirs, _) = peer.accept().unwrap();
    theirs.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    theirs.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"bye");
    drop(theirs);
    while lp.handler_count() > 0 {
        lp.run_once(Some(Duration::from_millis(100))).unwrap();
        assert!(start.elapsed() < TEST_TIMEOUT, "half-closed connection never freed");
    }
}

#[test]
fn nonblocking_connect_epoll() {
    nonblocking_connect(PollerKind::Epoll);
}

#[test]
fn nonblocking_connect_poll() {
    nonblocking_connect(PollerKind::Poll);
}
