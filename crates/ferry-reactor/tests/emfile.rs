//! The acceptor survives fd exhaustion (EMFILE): it sheds the connection
//! instead of spinning, and serves again once fds are free. A separate test
//! binary (its own process), because it lowers RLIMIT_NOFILE.

mod util;

use std::io::Read;
use std::os::fd::OwnedFd;
use std::time::Duration;

use ferry_reactor::{EventLoop, PollerKind};
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::process::{Resource, getrlimit, setrlimit};
use util::*;

fn iterations(server: &ServerThread) -> u64 {
    let (tx, rx) = std::sync::mpsc::channel();
    server.main.run_in_loop(move |lp: &mut EventLoop| tx.send(lp.iterations()).unwrap());
    rx.recv_timeout(TEST_TIMEOUT).unwrap()
}

/// Both configurations in one test: RLIMIT_NOFILE is process-wide, so they
/// must not run in parallel.
#[test]
fn acceptor_survives_emfile_with_0_and_4_sub_loops() {
    acceptor_survives_emfile(0);
    acceptor_survives_emfile(4);
}

fn acceptor_survives_emfile(threads: usize) {
    let server = start_server("127.0.0.1:0", threads, PollerKind::Epoll, echo_callbacks());
    let addr = server.tcp_addr();
    // A working connection first.
    let mut a = client(addr);
    assert_eq!(roundtrip(&mut a, b"before"), b"before");

    // Client sockets for later, created while fds are available.
    let make =
        || rustix::net::socket_with(AddressFamily::INET, SocketType::STREAM, SocketFlags::CLOEXEC, None).unwrap();
    let shed_me = make();
    let later = make();

    // Lower the limit close to what is open, then fill the rest.
    let saved = getrlimit(Resource::Nofile);
    let mut low = saved;
    low.current = Some(open_fds() as u64 + 16);
    setrlimit(Resource::Nofile, low).unwrap();
    let mut fillers: Vec<OwnedFd> = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => fillers.push(f.into()),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(rustix::io::Errno::MFILE.raw_os_error()));
                break;
            }
        }
    }

    // The server cannot accept this one: it must shed it (we see EOF or a
    // reset), not leave it hanging, and not spin.
    rustix::net::connect(&shed_me, &addr).unwrap();
    let mut shed_stream = std::net::TcpStream::from(shed_me);
    shed_stream.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    let mut buf = [0u8; 8];
    match shed_stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("unexpected {n} bytes from a shed connection"),
        Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "connection left hanging"),
    }

    // Idle while still exhausted: the loop must sleep, not spin.
    let before = iterations(&server);
    std::thread::sleep(Duration::from_millis(300));
    let after = iterations(&server);
    assert!(after - before < 20, "acceptor spins: {} iterations in 300 ms", after - before);

    // The old connection still works.
    assert_eq!(roundtrip(&mut a, b"during"), b"during");

    // Free fds: new connections are served again.
    drop(fillers);
    setrlimit(Resource::Nofile, saved).unwrap();
    rustix::net::connect(&later, &addr).unwrap();
    let mut later = std::net::TcpStream::from(later);
    later.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    assert_eq!(roundtrip(&mut later, b"after"), b"after");
}
