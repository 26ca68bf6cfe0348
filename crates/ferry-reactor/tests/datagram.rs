//! Datagram sockets on the event loop (issue 12): UDP v4/v6 and Unix
//! datagram echo under load, batching, truncation, connected mode, socket
//! files; every test under every poller.

mod datagram_util;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use datagram_util::load::{self, Spec, Target};
use datagram_util::{EchoServer, PATIENCE, Scratch};
use ferry_reactor::{
    DatagramAddr, DatagramCallbacks, DatagramOp, DatagramOptions, DatagramSocket, DatagramStats, EventLoop, PollerKind,
    Token,
};

/// Batching off, and on.
const BATCHES: [usize; 2] = [1, 32];

fn udp_addr(addr: &DatagramAddr) -> SocketAddr {
    match addr {
        DatagramAddr::Udp(a) => *a,
        DatagramAddr::Unix(_) => panic!("not UDP"),
    }
}

/// Runs `lp` until `done` holds (checked after every iteration), at most
/// [`PATIENCE`].
fn run_until(lp: &mut EventLoop, what: &str, mut done: impl FnMut(&mut EventLoop) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done(lp) {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        lp.run_once(Some(Duration::from_millis(50))).expect("run_once");
    }
}

fn stats(lp: &mut EventLoop, token: Token) -> DatagramStats {
    lp.with_datagram(token, |ep| ep.stats()).expect("endpoint alive")
}

#[test]
fn udp_echo_over_v4_and_v6_brings_every_datagram_back_whole_to_its_peer() {
    for poller in PollerKind::ALL {
        for batch in BATCHES {
            for addr in ["127.0.0.1:0", "[::1]:0"] {
                let what = format!("{poller:?}, batch {batch}, {addr}");
                let options = DatagramOptions { batch, recv_buffer: Some(4 << 20), ..DatagramOptions::default() };
                let mut server = EchoServer::start(&addr.parse().unwrap(), options, poller);
                let target = Target::Udp(udp_addr(&server.addr));
                let spec = Spec {
                    peers: 16,
                    per_peer: 8,
                    max_len: 65507,
                    seed: 7,
                    rto: Duration::from_millis(500),
                    deadline: Duration::from_secs(60),
                };
                let report = load::run(&target, &spec);
                assert_eq!(report.echoed, 16 * 8, "{what}");
                let stats = server.stop();
                assert!(stats.received >= 16 * 8, "{what}: {stats:?}");
                assert_eq!((stats.truncated, stats.dropped), (0, 0), "{what}: {stats:?}");
                if batch == 1 {
                    assert_eq!(stats.largest_batch, 1, "{what}: batching off means one datagram per call");
                }
            }
        }
    }
}

#[test]
fn unix_datagram_echo_reaches_peers_of_every_path_length() {
    for poller in PollerKind::ALL {
        for batch in BATCHES {
            let what = format!("{poller:?}, batch {batch}");
            let dir = Scratch::new("echo");
            let server_path = dir.path("s.sock");
            let options = DatagramOptions { batch, send_buffer: Some(4 << 20), ..DatagramOptions::default() };
            let mut server = EchoServer::start(&DatagramAddr::Unix(server_path.clone()), options, poller);
            let target = Target::Unix { server: server_path.clone(), client_dir: dir.0.clone() };
            // Unix datagrams are not lost, so (given the send buffer room to
            // hold every reply until it is read) a retransmission means a
            // reply went astray, e.g. to a sender address cut to an earlier,
            // shorter one.
            let roomy = load::roomy_send_buffers();
            let spec = Spec {
                peers: 24,
                per_peer: 6,
                max_len: 65536,
                seed: 11,
                rto: if roomy { Duration::from_secs(10) } else { Duration::from_millis(500) },
                deadline: Duration::from_secs(30),
            };
            let report = load::run(&target, &spec);
            assert_eq!(report.echoed, 24 * 6, "{what}");
            if roomy {
                assert_eq!(report.retransmits, 0, "{what}: a reply went astray");
            }
            // A socket bound to no name cannot be answered: reported, and the
            // server carries on.
            let unnamed = UnixDatagram::unbound().unwrap();
            unnamed.send_to(b"who am I", &server_path).unwrap();
            let err = server.errors.recv_timeout(PATIENCE).expect("the failed reply is reported");
            assert_eq!(err.op, DatagramOp::Send, "{what}: {err}");
            assert!(err.peer.as_ref().is_some_and(|p| p.is_unnamed()), "{what}: {err}");
            let again = load::run(&target, &Spec { peers: 2, per_peer: 2, ..spec });
            assert_eq!(again.echoed, 4, "{what}");
            let stats = server.stop();
            if roomy {
                assert_eq!(stats.dropped, 1, "{what}: only the reply to the unnamed socket: {stats:?}");
            }
            assert!(!server_path.exists(), "{what}: the socket file is removed with the socket");
        }
    }
}

#[test]
fn a_burst_is_received_several_datagrams_per_call_and_answered_in_batches() {
    const BURST: usize = 50;
    for poller in PollerKind::ALL {
        for batch in BATCHES {
            let what = format!("{poller:?}, batch {batch}");
            let mut lp = EventLoop::new(poller).unwrap();
            let options = DatagramOptions { batch, recv_buffer: Some(1 << 20), ..DatagramOptions::default() };
            let socket = DatagramSocket::bind(&"127.0.0.1:0".parse().unwrap(), options).unwrap();
            let server = udp_addr(socket.local_addr());
            let echo = DatagramCallbacks::new().on_message(|ep, d| {
                ep.send_to(d.data(), d.peer());
            });
            let token = socket.register(&mut lp, echo).unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client.set_read_timeout(Some(PATIENCE)).unwrap();
            // The whole burst is queued before the loop looks.
            for i in 0..BURST {
                client.send_to(&[i as u8; 100], server).unwrap();
            }
            run_until(&mut lp, "the burst is echoed", |lp| stats(lp, token).sent == BURST as u64);
            let mut seen = [false; BURST];
            let mut buf = [0u8; 200];
            for _ in 0..BURST {
                let n = client.recv(&mut buf).expect("an echo");
                assert_eq!(n, 100, "{what}");
                seen[buf[0] as usize] = true;
            }
            assert!(seen.iter().all(|&s| s), "{what}: every datagram came back");
            let s = stats(&mut lp, token);
            assert_eq!(s.received, BURST as u64, "{what}");
            if batch == 1 {
                assert_eq!((s.largest_batch, s.receive_calls, s.send_calls), (1, 50, 50), "{what}: {s:?}");
            } else {
                assert!(s.largest_batch > 1, "{what}: recvmmsg brought one datagram per call: {s:?}");
                assert!(s.receive_calls < BURST as u64, "{what}: {s:?}");
                assert!(s.send_calls < BURST as u64, "{what}: replies were not sent in batches: {s:?}");
            }
        }
    }
}

#[test]
fn a_datagram_longer_than_its_slot_is_delivered_cut_and_marked_truncated() {
    const SLOT: usize = 1000;
    const SIZES: [usize; 4] = [999, 1000, 1001, 5000];
    for poller in PollerKind::ALL {
        for batch in BATCHES {
            for unix in [false, true] {
                let what = format!("{poller:?}, batch {batch}, unix {unix}");
                let dir = Scratch::new("trunc");
                let addr = if unix { DatagramAddr::Unix(dir.path("t.sock")) } else { "127.0.0.1:0".parse().unwrap() };
                let mut lp = EventLoop::new(poller).unwrap();
                let options = DatagramOptions { batch, max_datagram: SLOT, ..DatagramOptions::default() };
                let socket = DatagramSocket::bind(&addr, options).unwrap();
                let addr = socket.local_addr().clone();
                let (tx, rx) = mpsc::channel();
                let record = DatagramCallbacks::new().on_message(move |_, d| {
                    let _ = tx.send((d.len(), d.data().to_vec(), d.is_truncated()));
                });
                let token = socket.register(&mut lp, record).unwrap();
                let pattern: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
                match &addr {
                    DatagramAddr::Udp(a) => {
                        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
                        for size in SIZES {
                            client.send_to(&pattern[..size], a).unwrap();
                        }
                    }
                    DatagramAddr::Unix(p) => {
                        let client = UnixDatagram::unbound().unwrap();
                        for size in SIZES {
                            client.send_to(&pattern[..size], p).unwrap();
                        }
                    }
                }
                run_until(&mut lp, "every datagram arrived", |lp| stats(lp, token).received == 4);
                for size in SIZES {
                    let (len, data, truncated) = rx.try_recv().expect("one callback per datagram");
                    assert_eq!(len, size, "{what}: the real length is reported");
                    assert_eq!(truncated, size > SLOT, "{what}: {size} bytes");
                    assert_eq!(data[..], pattern[..size.min(SLOT)], "{what}: {size} bytes");
                }
                assert_eq!(stats(&mut lp, token).truncated, 2, "{what}");
            }
        }
    }
}

#[test]
fn connected_udp_reports_a_closed_port_as_connection_refused() {
    for poller in PollerKind::ALL {
        let what = format!("{poller:?}");
        // A port nobody listens on: bound, then closed.
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut lp = EventLoop::new(poller).unwrap();
        let mut socket = DatagramSocket::bind(&"127.0.0.1:0".parse().unwrap(), DatagramOptions::default()).unwrap();
        socket.connect(&DatagramAddr::Udp(closed)).unwrap();
        let (tx, rx) = mpsc::channel();
        let callbacks = DatagramCallbacks::new().on_error(move |_, e| {
            let _ = tx.send((e.error.kind(), e.op, e.peer.and_then(|p| p.ip())));
        });
        let token = socket.register(&mut lp, callbacks).unwrap();

        // The port-unreachable answer to a first datagram surfaces on the
        // loop, from the socket itself.
        assert_eq!(lp.with_datagram(token, |ep| ep.send(b"ping")), Some(true));
        let mut error = None;
        run_until(&mut lp, "the refusal is reported", |_| {
            error = rx.try_recv().ok();
            error.is_some()
        });
        assert_eq!(error, Some((io::ErrorKind::ConnectionRefused, DatagramOp::Receive, Some(closed))), "{what}");

        // When the loop does not look in between, the next send is the one
        // refused (and that datagram dropped).
        let fd = lp.with_datagram(token, |ep| ep.socket().try_clone_to_owned().unwrap()).unwrap();
        assert_eq!(lp.with_datagram(token, |ep| ep.send(b"again")), Some(true));
        assert!(rx.try_recv().is_err(), "{what}: that one went out");
        let mut pfd = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::ERR)];
        let timeout = rustix::event::Timespec::try_from(PATIENCE).unwrap();
        assert_eq!(rustix::event::poll(&mut pfd, Some(&timeout)).unwrap(), 1, "{what}: the ICMP error arrived");
        lp.with_datagram(token, |ep| ep.send(b"third"));
        let refused = rx.try_recv().expect("the refused send is reported at once");
        assert_eq!(refused, (io::ErrorKind::ConnectionRefused, DatagramOp::Send, Some(closed)), "{what}");
        assert_eq!(stats(&mut lp, token).dropped, 1, "{what}");
    }
}

#[test]
fn connected_mode_exchanges_datagrams_with_its_peer_only() {
    for poller in PollerKind::ALL {
        let what = format!("{poller:?}");
        let mut server = EchoServer::start(&"127.0.0.1:0".parse().unwrap(), DatagramOptions::default(), poller);
        let mut lp = EventLoop::new(poller).unwrap();
        let mut socket = DatagramSocket::bind(&"127.0.0.1:0".parse().unwrap(), DatagramOptions::default()).unwrap();
        let me = udp_addr(socket.local_addr());
        socket.connect(&server.addr).unwrap();
        let (tx, rx) = mpsc::channel();
        let callbacks = DatagramCallbacks::new().on_message(move |_, d| {
            let _ = tx.send((d.data().to_vec(), d.peer().ip()));
        });
        let token = socket.register(&mut lp, callbacks).unwrap();
        // A stranger's datagram is filtered out by the kernel.
        UdpSocket::bind("127.0.0.1:0").unwrap().send_to(b"stranger", me).unwrap();
        lp.with_datagram(token, |ep| ep.send(b"hello"));
        let mut got = None;
        run_until(&mut lp, "the echo arrives", |_| {
            got = rx.try_recv().ok();
            got.is_some()
        });
        assert_eq!(got, Some((b"hello".to_vec(), Some(udp_addr(&server.addr)))), "{what}");
        assert_eq!(stats(&mut lp, token).received, 1, "{what}: only the peer's datagram");
        server.stop();
    }
}

#[test]
fn unix_socket_files_stale_replaced_live_refused_removed_on_close() {
    let dir = Scratch::new("files");
    let path = dir.path("s.sock");
    let addr = DatagramAddr::Unix(path.clone());
    let options = DatagramOptions { unix_mode: Some(0o660), ..DatagramOptions::default() };

    // A socket file left by a server that is gone is replaced.
    drop(UnixDatagram::bind(&path).unwrap());
    assert!(path.exists());
    let live = DatagramSocket::bind(&addr, options.clone()).expect("a stale socket file is replaced");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660, "mode {mode:o}");

    // One something is bound to is not.
    let err = DatagramSocket::bind(&addr, options.clone()).expect_err("a live socket file is refused");
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    assert!(err.to_string().contains("live server"), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()), "the error names the path: {err}");
    let client = UnixDatagram::unbound().unwrap();
    client.send_to(b"still there", &path).expect("the live socket still receives");

    // Closing removes the file.
    drop(live);
    assert!(!path.exists(), "the socket file is removed on close");

    // Nor is a live stream socket, or a file that is no socket at all.
    let stream = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let err = DatagramSocket::bind(&addr, options.clone()).expect_err("a live stream socket is refused");
    assert!(err.to_string().contains("stream socket"), "{err}");
    drop(stream);
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"not a socket").unwrap();
    let err = DatagramSocket::bind(&addr, options.clone()).expect_err("a regular file is refused");
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket", "and left alone");
    std::fs::remove_file(&path).unwrap();

    // A socket given up with into_fd leaves the file to whoever holds it.
    let fd = DatagramSocket::bind(&addr, options.clone()).unwrap().into_fd();
    assert!(path.exists());
    drop(fd);
    assert!(path.exists(), "into_fd does not remove the file");
    drop(DatagramSocket::bind(&addr, options).expect("and once nobody holds it, it is stale"));
}

#[test]
fn a_handle_sends_and_closes_from_another_thread() {
    for poller in PollerKind::ALL {
        let what = format!("{poller:?}");
        let dir = Scratch::new("handle");
        let path = dir.path("h.sock");
        let socket = DatagramSocket::bind(&DatagramAddr::Unix(path.clone()), DatagramOptions::default()).unwrap();
        let (tx, rx) = mpsc::channel();
        let server = std::thread::spawn(move || {
            let mut lp = EventLoop::new(poller).unwrap();
            let token = socket.register(&mut lp, DatagramCallbacks::new()).unwrap();
            tx.send(lp.with_datagram(token, |ep| ep.handle()).unwrap()).unwrap();
            lp.run().unwrap();
        });
        let handle = rx.recv_timeout(PATIENCE).unwrap();
        let client_path = dir.path("c.sock");
        let client = UnixDatagram::bind(&client_path).unwrap();
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        let peer = ferry_reactor::DatagramPeer::of(&DatagramAddr::Unix(client_path)).unwrap();
        assert!(handle.send_to(b"from afar".to_vec(), peer));
        let mut buf = [0u8; 64];
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"from afar", "{what}");
        assert_eq!(from.as_pathname(), Some(path.as_path()), "{what}");
        assert!(handle.close());
        // Tasks run in order: once this one ran, the close has.
        let (done_tx, done_rx) = mpsc::channel();
        handle.loop_handle().run_in_loop(move |lp| done_tx.send(lp.datagram_tokens().len()).unwrap());
        assert_eq!(done_rx.recv_timeout(PATIENCE).unwrap(), 0, "{what}");
        assert!(!path.exists(), "{what}: closing removed the socket file");
        handle.loop_handle().quit();
        server.join().unwrap();
    }
}
