//! The gate on loopback: real listeners, real clients, its own descriptor
//! polled as an owner would poll it.

use std::io::{Read, Write};
use std::net::{Shutdown as How, TcpStream};
use std::sync::Arc;

use ferry_proto::files::{FilesConfig, MAX_LINE};
use ferry_proto::root::Root;

use super::*;
use crate::listen::{accept_one, bind_listeners, poll_readable};
use crate::{ListenerConfig, PumpConfig, Service};

const WAIT: Duration = Duration::from_secs(10);

fn files_listener(pump: PumpConfig) -> Vec<Listener> {
    let root = Root::open(&std::env::temp_dir()).expect("open a root");
    let service = Service::Files(FilesConfig::read_only(Arc::new(root)));
    let config =
        ListenerConfig { addr: "127.0.0.1:0".parse().expect("addr"), service, pump, tcp_keepalive: None, tls: None };
    bind_listeners(&[config]).expect("bind")
}

fn default_listener() -> Vec<Listener> {
    files_listener(PumpConfig::with_idle(Duration::from_secs(300)))
}

/// A client that sent `first` (if anything), and its connection as the
/// server accepted it.
fn connect(listeners: &[Listener], first: &[u8]) -> (TcpStream, Accepted) {
    let mut client = TcpStream::connect(listeners[0].addr).expect("connect");
    client.write_all(first).expect("send");
    assert!(poll_readable(&[listeners[0].socket.as_fd()], Some(WAIT)).expect("poll")[0], "nothing to accept");
    let accepted = accept_one(&listeners[0]).expect("accept");
    if !first.is_empty() {
        // Until the bytes are there, the peek would not see them.
        assert!(poll_readable(&[accepted.stream.as_fd()], Some(WAIT)).expect("poll")[0], "bytes never arrived");
    }
    (client, accepted)
}

fn gate_readable(gate: &Gate, within: Duration) -> bool {
    poll_readable(&[gate.as_fd()], Some(within)).expect("poll")[0]
}

#[test]
fn a_request_that_came_with_the_connection_goes_straight_on() {
    let listeners = default_listener();
    let mut gate = Gate::new(&listeners, 8).expect("gate");
    let (_client, accepted) = connect(&listeners, b"ping\n");
    let mut through = gate.admit(&listeners, 0, accepted).expect("handed over at once");
    assert_eq!(gate.len(), 0);
    let mut line = [0u8; 5];
    through.stream.read_exact(&mut line).expect("read");
    assert_eq!(&line, b"ping\n", "the peek consumed nothing");
}

#[test]
fn a_partial_request_waits_until_its_line_ends_without_spinning() {
    let listeners = default_listener();
    let mut gate = Gate::new(&listeners, 8).expect("gate");
    let (mut client, accepted) = connect(&listeners, b"pi");
    assert!(gate.admit(&listeners, 0, accepted).is_none(), "handed over half a request");
    assert_eq!(gate.len(), 1);
    client.write_all(b"n").expect("send");
    assert!(gate_readable(&gate, WAIT), "a new byte did not wake the gate");
    assert!(gate.take_ready(&listeners, 8).is_empty(), "still half a request");
    // Edge-triggered: bytes peeked at and left in place do not report again.
    assert!(!gate_readable(&gate, Duration::from_millis(100)), "the gate reports the same bytes again");
    client.write_all(b"g\n").expect("send");
    assert!(gate_readable(&gate, WAIT));
    let ready = gate.take_ready(&listeners, 8);
    assert_eq!(ready.len(), 1);
    assert_eq!(gate.len(), 0);
    let mut line = [0u8; 5];
    (&ready[0].1.stream).read_exact(&mut line).expect("read");
    assert_eq!(&line, b"ping\n");
    // Out of the epoll set: more bytes on the handed-over socket are not
    // the gate's business.
    client.write_all(b"ping\n").expect("send");
    assert!(!gate_readable(&gate, Duration::from_millis(100)), "a handed-over socket still reports");
    assert_eq!(gate.closed(), 0);
}

#[test]
fn a_client_that_leaves_is_dropped_or_handed_over_with_what_it_sent() {
    let listeners = default_listener();
    let mut gate = Gate::new(&listeners, 8).expect("gate");
    let (silent, accepted) = connect(&listeners, b"");
    assert!(gate.admit(&listeners, 0, accepted).is_none());
    let (partial, accepted) = connect(&listeners, b"pi");
    assert!(gate.admit(&listeners, 0, accepted).is_none());
    drop(silent);
    partial.shutdown(How::Write).expect("half-close");
    let mut ready = Vec::new();
    while gate.len() > 0 {
        assert!(gate_readable(&gate, WAIT), "a leaving client did not wake the gate");
        ready.extend(gate.take_ready(&listeners, 8));
    }
    assert_eq!(ready.len(), 1, "the half request goes to its session, which answers at its end");
    assert_eq!(gate.closed(), 1, "the silent one is closed");
}

#[test]
fn a_request_that_fills_the_peek_is_handed_over_and_blank_lines_alone_are_not() {
    let listeners = default_listener();
    let mut gate = Gate::new(&listeners, 8).expect("gate");
    let limit = listeners[0].service.first_request_limit();
    assert!(limit > MAX_LINE);
    let (_client, accepted) = connect(&listeners, &vec![b'a'; limit]);
    assert!(gate.admit(&listeners, 0, accepted).is_some(), "an oversize line must reach the session's refusal");
    let (_blank, accepted) = connect(&listeners, &vec![b'\n'; limit]);
    assert!(gate.admit(&listeners, 0, accepted).is_none());
    assert_eq!((gate.len(), gate.closed()), (0, 1), "nothing but blank lines is closed");
}

/// At its deadline a connection is answered by its own session, as in
/// every model (here the file protocol's `ERR 408`), and closed: one with
/// half a request at the request timeout from its first byte, a silent one
/// at the idle timeout from its accept.
#[test]
fn deadlines_answer_and_close_with_the_sessions_timeouts() {
    let idle = Duration::from_millis(400);
    let request = Duration::from_millis(150);
    let listeners = files_listener(PumpConfig { idle_timeout: idle, request_timeout: request });
    let mut gate = Gate::new(&listeners, 8).expect("gate");
    let started = Instant::now();
    let (silent, accepted) = connect(&listeners, b"");
    assert!(gate.admit(&listeners, 0, accepted).is_none());
    let (partial, accepted) = connect(&listeners, b"pi");
    assert!(gate.admit(&listeners, 0, accepted).is_none());
    let mut answered = Vec::new();
    while gate.len() > 0 {
        assert!(gate_readable(&gate, WAIT), "no deadline woke the gate");
        assert!(gate.take_ready(&listeners, 8).is_empty(), "a timed-out connection was handed over");
        for (name, client) in [("partial", &partial), ("silent", &silent)] {
            if !answered.iter().any(|(n, _, _)| n == &name)
                && poll_readable(&[client.as_fd()], Some(Duration::ZERO)).expect("poll")[0]
            {
                answered.push((name, started.elapsed(), read_all(client)));
            }
        }
    }
    assert_eq!(gate.closed(), 2);
    let names: Vec<_> = answered.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(names, ["partial", "silent"], "answered in the wrong order: {answered:?}");
    for (name, at, text) in &answered {
        assert_eq!(text, "ERR 408 idle timeout; closing\n", "{name}");
        let due = if *name == "partial" { request } else { idle };
        assert!(*at >= due && *at < due + Duration::from_secs(2), "{name} answered after {at:?}");
    }
}

/// Everything a client receives until the server closes.
fn read_all(mut client: &TcpStream) -> String {
    client.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut got = Vec::new();
    client.read_to_end(&mut got).expect("answered and closed, not reset");
    String::from_utf8_lossy(&got).into_owned()
}

/// A client still trickling its request when it times out gets its answer
/// and a linger (its bytes read and dropped) from the gate, not a reset.
#[test]
fn a_client_still_sending_at_its_deadline_gets_the_answer() {
    let request = Duration::from_millis(100);
    let listeners = files_listener(PumpConfig { idle_timeout: Duration::from_secs(60), request_timeout: request });
    let mut gate = Gate::new(&listeners, 8).expect("gate");
    let (mut client, accepted) = connect(&listeners, b"p");
    assert!(gate.admit(&listeners, 0, accepted).is_none());
    client.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
    let mut got = Vec::new();
    let mut byte = [0u8; 64];
    let started = Instant::now();
    while !got.ends_with(b"\n") {
        assert!(started.elapsed() < WAIT, "no answer");
        // One more byte each round, the gate's turn, then the client's.
        let _ = client.write_all(b"i");
        if gate_readable(&gate, Duration::from_millis(20)) {
            assert!(gate.take_ready(&listeners, 8).is_empty());
        }
        match client.read(&mut byte) {
            Ok(n) => got.extend_from_slice(&byte[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("reset instead of answered: {e}"),
        }
    }
    assert_eq!(String::from_utf8_lossy(&got), "ERR 408 idle timeout; closing\n");
    assert_eq!(gate.len(), 1, "lingering while the client still sends");
}

#[test]
fn take_ready_takes_no_more_than_room_and_close_all_counts() {
    let listeners = default_listener();
    let mut gate = Gate::new(&listeners, 2).expect("gate");
    let (mut a, accepted) = connect(&listeners, b"");
    assert!(gate.admit(&listeners, 0, accepted).is_none());
    let (mut b, accepted) = connect(&listeners, b"");
    assert!(gate.admit(&listeners, 0, accepted).is_none());
    assert!(gate.is_full());
    a.write_all(b"ping\n").expect("send");
    b.write_all(b"ping\n").expect("send");
    let mut ready = Vec::new();
    while ready.is_empty() {
        assert!(gate_readable(&gate, WAIT));
        ready = gate.take_ready(&listeners, 1);
    }
    assert_eq!(ready.len(), 1, "took more than there was room for");
    assert!(gate_readable(&gate, WAIT), "the other stays pending");
    assert_eq!(gate.take_ready(&listeners, 1).len(), 1);
    let (_c, accepted) = connect(&listeners, b"");
    assert!(gate.admit(&listeners, 0, accepted).is_none());
    assert_eq!(gate.close_all(), 1);
    assert_eq!((gate.len(), gate.closed()), (0, 1));
}

/// Requests are handed over in the order they came: one that came with
/// its connection does not overtake a waiting connection whose request
/// came first but that the owner has not taken yet (no room then).
#[test]
fn a_request_that_came_with_its_connection_does_not_overtake_one_that_came_first() {
    let listeners = default_listener();
    let mut gate = Gate::new(&listeners, 8).expect("gate");
    let (mut early, accepted) = connect(&listeners, b"");
    assert!(gate.admit(&listeners, 0, accepted).is_none());
    early.write_all(b"ping\n").expect("send");
    assert!(gate_readable(&gate, WAIT), "the early request did not wake the gate");
    let (late, accepted) = connect(&listeners, b"ping\n");
    assert!(gate.admit(&listeners, 0, accepted).is_none(), "overtook a request that came before it");
    let peers = |ready: Vec<(usize, Accepted)>| ready.into_iter().map(|(_, conn)| conn.peer).collect::<Vec<_>>();
    let early_addr = early.local_addr().expect("addr");
    let late_addr = late.local_addr().expect("addr");
    assert_eq!(peers(gate.take_ready(&listeners, 1)), [early_addr], "the one that came first goes first");
    assert!(gate_readable(&gate, WAIT), "the held one does not report");
    assert_eq!(peers(gate.take_ready(&listeners, 1)), [late_addr]);
    assert_eq!((gate.len(), gate.closed()), (0, 0));

    // With nothing waiting the fast path stays: straight on.
    let (_next, accepted) = connect(&listeners, b"ping\n");
    assert!(gate.admit(&listeners, 0, accepted).is_some());
}
