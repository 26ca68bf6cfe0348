//! The thread pool's accept loop with its gate, driven through the one
//! interleaving that once let a later request overtake an earlier one.

use std::cell::RefCell;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use ferry_proto::files::FilesConfig;
use ferry_proto::root::Root;
use ferry_reactor::Waker;

use crate::accept::{Cap, accept_until_stop};
use crate::gate::Gate;
use crate::listen::{bind_listeners, poll_readable};
use crate::{ListenerConfig, Service, Shutdown};

const WAIT: Duration = Duration::from_secs(10);

/// `second` is accepted into the gate before its request comes; its
/// request then comes before `third` is accepted with its own, all in one
/// pass of the accept loop (the test's `left` runs in the loop between the
/// two accepts). The loop must hand `second` over first: with one worker
/// and a queue of one, `third` in its place would hold the worker while
/// `second` waits (the full-queue test once failed so, under load).
#[test]
fn a_request_that_came_first_is_taken_first() {
    let root = Root::open(&std::env::temp_dir()).expect("open a root");
    let service = Service::Files(FilesConfig::read_only(Arc::new(root)));
    let config = ListenerConfig::new("127.0.0.1:0".parse().expect("addr"), service);
    let listeners = bind_listeners(&[config]).expect("bind");
    let addr = listeners[0].addr.as_tcp().expect("tcp");
    let listening = |within| poll_readable(&[listeners[0].socket.as_fd()], Some(within)).expect("poll")[0];
    let mut gate = Gate::new(&listeners, 8).expect("gate");
    // The gate's epoll instance, to see it report while the loop has it.
    let gate_fd = gate.as_fd().try_clone_to_owned().expect("dup");
    let shutdown = Shutdown::new().expect("shutdown");
    let room = Waker::new().expect("waker");

    let second = TcpStream::connect(addr).expect("connect");
    assert!(listening(WAIT), "second is not pending");
    let third: RefCell<Option<TcpStream>> = RefCell::new(None);
    let taken: RefCell<Vec<SocketAddr>> = RefCell::new(Vec::new());
    // Room for both; once `second` is accepted (nothing pending on the
    // listener), `second` sends, then `third` connects and sends.
    let left = || {
        if third.borrow().is_none() && !listening(Duration::ZERO) {
            (&second).write_all(b"ping\n").expect("send");
            let reported = poll_readable(&[gate_fd.as_fd()], Some(WAIT)).expect("poll")[0];
            assert!(reported, "second's request did not reach the gate");
            let mut stream = TcpStream::connect(addr).expect("connect");
            stream.write_all(b"ping\n").expect("send");
            assert!(listening(WAIT), "third is not pending");
            *third.borrow_mut() = Some(stream);
        }
        2 - taken.borrow().len()
    };

    // A bound on the test: stop the loop if it hangs.
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = thread::spawn({
        let shutdown = shutdown.clone();
        move || {
            if finished.recv_timeout(WAIT).is_err() {
                shutdown.signal();
            }
        }
    });
    let cap = Cap { room: &room, left: &left, queued: &|| 0 };
    let stopped = accept_until_stop(&listeners, &shutdown, None, Some(cap), Some(&mut gate), |_, conn| {
        taken.borrow_mut().push(conn.peer.to_string().parse().expect("a TCP peer"));
        if taken.borrow().len() == 2 {
            shutdown.signal();
        }
    });
    let _ = done.send(());
    watchdog.join().expect("watchdog");
    assert!(matches!(stopped, Ok(None)), "{stopped:?}");

    let third = third.borrow_mut().take().expect("third connected");
    let names = |peer: &SocketAddr| match peer {
        p if *p == second.local_addr().expect("addr") => "second",
        p if *p == third.local_addr().expect("addr") => "third",
        _ => "unknown",
    };
    let order: Vec<_> = taken.borrow().iter().map(names).collect();
    assert_eq!(order, ["second", "third"], "taken in the wrong order");
}
