//! TcpServer end to end over real sockets on 127.0.0.1: how connections
//! close. A peer's half-close (flushed, then closed; reported), shutdown and
//! force-close from the server, graceful shutdown of every connection, and
//! data sent before a FIN delivered after we half-closed.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_reactor::{Callbacks, PollerKind, ServerConfig};
use util::*;

fn peer_half_close_default_flushes_then_closes(config: ServerConfig) {
    let server = start_server_with("127.0.0.1:0", config, echo_callbacks());
    let mut s = client(server.tcp_addr());
    let data: Vec<u8> = Rng::new(7).bytes(300 * 1024);
    let mut w = s.try_clone().unwrap();
    let d2 = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&d2).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data);
    wait_until("connection freed", || server.live.load(Ordering::Acquire) == 0);
}

#[test]
fn half_close_single_reactor() {
    peer_half_close_default_flushes_then_closes(ServerConfig::default());
}

#[test]
fn half_close_four_sub_loops() {
    peer_half_close_default_flushes_then_closes(ServerConfig { threads: 4, ..ServerConfig::default() });
}

#[test]
fn half_close_poll_backend() {
    peer_half_close_default_flushes_then_closes(ServerConfig {
        threads: 1,
        poller: PollerKind::Poll,
        ..ServerConfig::default()
    });
}

#[test]
fn peer_half_close_is_reported() {
    let reported = Arc::new(AtomicBool::new(false));
    let r2 = reported.clone();
    let callbacks = Callbacks::new().on_message(|_c, _buf| {}).on_half_closed(move |c| {
        assert!(c.peer_closed());
        r2.store(true, Ordering::SeqCst);
        c.send(b"bye after your FIN");
        c.shutdown();
    });
    let server = start_server("127.0.0.1:0", 0, PollerKind::Poll, callbacks);
    let mut s = client(server.tcp_addr());
    s.write_all(b"hello").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"bye after your FIN");
    assert!(reported.load(Ordering::SeqCst));
}

#[test]
fn shutdown_and_force_close_from_server() {
    let callbacks = Callbacks::new().on_message(|c, buf| {
        let line = buf.take_all();
        match &line[..] {
            b"quit" => {
                c.send(b"goodbye");
                c.shutdown();
            }
            b"kill" => {
                c.send(b"never sent? maybe");
                c.force_close();
            }
            other => {
                c.send(other);
            }
        }
    });
    let server = start_server("127.0.0.1:0", 1, PollerKind::Epoll, callbacks);
    let mut s = client(server.tcp_addr());
    assert_eq!(roundtrip(&mut s, b"ping"), b"ping");
    s.write_all(b"quit").unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"goodbye");
    // The server half-closed; it frees the connection once we close too.
    drop(s);
    let mut s = client(server.tcp_addr());
    s.write_all(b"kill").unwrap();
    let mut rest = Vec::new();
    // Either EOF or a reset: the server closed without waiting.
    let _ = s.read_to_end(&mut rest);
    wait_until("connections freed", || server.live.load(Ordering::Acquire) == 0);
}

#[test]
fn graceful_shutdown_of_all_connections() {
    use ferry_reactor::{EventLoop, ServerConfig, TcpServer};
    let mut lp = EventLoop::new(PollerKind::Epoll).unwrap();
    let config = ServerConfig { threads: 2, ..ServerConfig::default() };
    let mut server = TcpServer::bind(&"127.0.0.1:0".parse().unwrap(), config).unwrap().with_callbacks(echo_callbacks());
    server.start(&mut lp).unwrap();
    let addr = match server.local_addr() {
        ferry_reactor::ListenAddr::Tcp(a) => *a,
        _ => unreachable!(),
    };
    // Clients on their own thread: connect, echo once, then read until EOF.
    let (echoed_tx, echoed) = std::sync::mpsc::channel();
    let clients = std::thread::spawn(move || {
        let mut cs: Vec<_> = (0..10).map(|_| client(addr)).collect();
        for c in cs.iter_mut() {
            assert_eq!(roundtrip(c, b"x"), b"x");
        }
        echoed_tx.send(()).unwrap();
        for c in cs.iter_mut() {
            let mut rest = Vec::new();
            c.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty());
        }
        // Dropping the clients completes the close on the server side.
    });
    let start = std::time::Instant::now();
    while server.live_connections() < 10 || server.accepted_connections() < 10 {
        lp.run_once(Some(Duration::from_millis(10))).unwrap();
        assert!(start.elapsed() < TEST_TIMEOUT);
    }
    // Once the clients finished their round trips, stop and drain.
    echoed.recv_timeout(TEST_TIMEOUT).unwrap();
    server.stop_accepting(&mut lp);
    server.shutdown_connections(&mut lp);
    while server.live_connections() > 0 {
        lp.run_once(Some(Duration::from_millis(10))).unwrap();
        assert!(start.elapsed() < TEST_TIMEOUT, "connections did not drain");
    }
    clients.join().unwrap();
    server.shutdown();
    assert!(std::net::TcpStream::connect(addr).is_err(), "listener still open");
}

#[test]
fn data_before_fin_is_delivered_after_we_half_closed() {
    // We shut down our side first; the peer then sends a lot and closes, so
    // the kernel reports HUP while data is still buffered. All of it must
    // reach the message callback before `closed`.
    let received = Arc::new(AtomicUsize::new(0));
    let (r1, r2) = (received.clone(), received.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    let callbacks = Callbacks::new()
        .on_connected(|c| c.shutdown())
        .on_message(move |_c, buf| {
            r1.fetch_add(buf.readable_bytes(), Ordering::SeqCst);
            buf.consume_all();
            // A slow consumer, so data piles up in the socket.
            std::thread::sleep(Duration::from_millis(1));
        })
        .on_closed(move |_c| {
            tx.lock().unwrap().send(r2.load(Ordering::SeqCst)).unwrap();
        });
    let server = start_server("127.0.0.1:0", 1, PollerKind::Epoll, callbacks);
    let mut s = client(server.tcp_addr());
    let mut nothing = Vec::new();
    s.read_to_end(&mut nothing).unwrap(); // the server's FIN
    let data = vec![7u8; 4 * 1024 * 1024];
    s.write_all(&data).unwrap();
    drop(s);
    let total = rx.recv_timeout(TEST_TIMEOUT).unwrap();
    assert_eq!(total, data.len());
    assert_eq!(received.load(Ordering::SeqCst), data.len());
}
