//! The acceptor survives fd exhaustion (EMFILE): it sheds the connection
//! instead of spinning, and serves again once fds are free; so does any
//! accept loop built on `ReserveFd` (here a std listener). A separate test
//! binary (its own process), because it lowers RLIMIT_NOFILE.

mod util;

use std::io::Read;
use std::os::fd::OwnedFd;
use std::time::Duration;

use ferry_reactor::{AcceptOutcome, EventLoop, PollerKind, ReserveFd};
use util::fds::{client_socket, exhaust_fds, restore};
use util::*;

fn iterations(server: &ServerThread) -> u64 {
    let (tx, rx) = std::sync::mpsc::channel();
    server.main.run_in_loop(move |lp: &mut EventLoop| tx.send(lp.iterations()).unwrap());
    rx.recv_timeout(TEST_TIMEOUT).unwrap()
}

/// Every case in one test: RLIMIT_NOFILE is process-wide, so they must not
/// run in parallel.
#[test]
fn accept_loops_survive_emfile() {
    acceptor_survives_emfile(0);
    acceptor_survives_emfile(4);
    reserve_fd_sheds_for_a_std_listener();
}

/// Connects `socket` to `addr` and asserts the server closed the connection
/// (EOF or a reset) rather than leaving it hanging.
fn assert_shed(socket: OwnedFd, addr: std::net::SocketAddr) {
    rustix::net::connect(&socket, &addr).unwrap();
    assert_closed_by_server(socket);
}

fn assert_closed_by_server(socket: OwnedFd) {
    let mut stream = std::net::TcpStream::from(socket);
    stream.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    let mut buf = [0u8; 8];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("unexpected {n} bytes from a shed connection"),
        Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "connection left hanging"),
    }
}

/// The reserve-fd step on its own, over a std listener (what ferry-server's
/// blocking accept loops use).
fn reserve_fd_sheds_for_a_std_listener() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let reserve = ReserveFd::new();
    assert!(matches!(reserve.accept(&listener).unwrap(), AcceptOutcome::WouldBlock));
    let (shed_me, later) = (client_socket(), client_socket());

    let (saved, fillers) = exhaust_fds();
    // Opened while exhausted: no reserve to use, so the error comes back
    // (the caller backs off) instead of a shed.
    let no_reserve = ReserveFd::new();
    rustix::net::connect(&shed_me, &addr).unwrap();
    let err = no_reserve.accept(&listener).expect_err("accepted with no fd to spare");
    assert_eq!(err.raw_os_error(), Some(rustix::io::Errno::MFILE.raw_os_error()));
    // The one opened earlier sheds that connection: the client sees it closed.
    assert!(matches!(reserve.accept(&listener).unwrap(), AcceptOutcome::Shed));
    assert_eq!(reserve.shed_count(), 1);
    assert_closed_by_server(shed_me);
    assert!(matches!(reserve.accept(&listener).unwrap(), AcceptOutcome::WouldBlock));

    // Free fds: connections are accepted again.
    drop(fillers);
    restore(saved);
    rustix::net::connect(&later, &addr).unwrap();
    match reserve.accept(&listener).unwrap() {
        AcceptOutcome::Accepted((_stream, peer)) => assert_eq!(peer.port(), local_port(&later)),
        other => panic!("expected a connection, got {other:?}"),
    }
}

fn local_port(socket: &OwnedFd) -> u16 {
    match rustix::net::getsockname(socket).unwrap().try_into() {
        Ok(std::net::SocketAddr::V4(a)) => a.port(),
        other => panic!("not a v4 socket: {other:?}"),
    }
}

fn acceptor_survives_emfile(threads: usize) {
    let server = start_server("127.0.0.1:0", threads, PollerKind::Epoll, echo_callbacks());
    let addr = server.tcp_addr();
    // A working connection first.
    let mut a = client(addr);
    assert_eq!(roundtrip(&mut a, b"before"), b"before");

    // Client sockets for later, created while fds are available.
    let (shed_me, later) = (client_socket(), client_socket());
    let (saved, fillers) = exhaust_fds();

    // The server cannot accept this one: it must shed it (we see EOF or a
    // reset), not leave it hanging, and not spin.
    assert_shed(shed_me, addr);

    // Idle while still exhausted: the loop must sleep, not spin.
    let before = iterations(&server);
    std::thread::sleep(Duration::from_millis(300));
    let after = iterations(&server);
    assert!(after - before < 20, "acceptor spins: {} iterations in 300 ms", after - before);

    // The old connection still works.
    assert_eq!(roundtrip(&mut a, b"during"), b"during");

    // Free fds: new connections are served again.
    drop(fillers);
    restore(saved);
    rustix::net::connect(&later, &addr).unwrap();
    let mut later = std::net::TcpStream::from(later);
    later.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    assert_eq!(roundtrip(&mut later, b"after"), b"after");
}
