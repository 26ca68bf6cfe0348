//! TcpServer end to end over real sockets on 127.0.0.1: which sub-loop a
//! new connection goes to, round-robin or least-loaded.

mod util;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use ferry_reactor::{Assignment, ServerConfig, TcpConnection};
use util::*;

/// Opens 4 connections on 2 sub-loops, closes the 2 on the first loop,
/// opens 2 more; returns how many each loop then serves, sorted (which
/// loop served a connection is the thread its `connected` callback ran on).
fn loops_after_uneven_closes(assign: Assignment) -> Vec<usize> {
    let placed: Arc<Mutex<HashMap<u16, String>>> = Arc::default();
    let (on_open, on_close) = (placed.clone(), placed.clone());
    let callbacks = echo_callbacks()
        .on_connected(move |c| {
            let port = peer_port(c);
            let thread = std::thread::current().name().unwrap_or("?").to_owned();
            on_open.lock().unwrap().insert(port, thread);
        })
        .on_closed(move |c| {
            let port = peer_port(c);
            on_close.lock().unwrap().remove(&port);
        });
    let config = ServerConfig { threads: 2, assign, ..ServerConfig::default() };
    let server = start_server_with("127.0.0.1:0", config, callbacks);
    let count = || placed.lock().unwrap().len();
    let mut conns: Vec<_> = (0..4).map(|_| client(server.tcp_addr())).collect();
    wait_until("4 connections placed", || count() == 4);
    let loop_of = |s: &std::net::TcpStream| placed.lock().unwrap()[&s.local_addr().unwrap().port()].clone();
    let first = loop_of(&conns[0]);
    conns.retain(|s| loop_of(s) != first);
    assert_eq!(conns.len(), 2, "round-robin placed 2 of the first 4 on each loop");
    // Freed on the server (its per-loop count drops before the total).
    wait_until("2 connections freed", || server.live.load(Ordering::Acquire) == 2);
    conns.extend((0..2).map(|_| client(server.tcp_addr())));
    wait_until("2 more placed", || count() == 4);
    let mut per_loop: HashMap<String, usize> = HashMap::new();
    for thread in placed.lock().unwrap().values() {
        *per_loop.entry(thread.clone()).or_default() += 1;
    }
    let mut loads: Vec<usize> = per_loop.into_values().collect();
    loads.sort();
    loads
}

fn peer_port(c: &TcpConnection<'_>) -> u16 {
    match c.peer_addr() {
        ferry_reactor::PeerAddr::Tcp(addr) => addr.port(),
        ferry_reactor::PeerAddr::Unix { .. } => panic!("a TCP test"),
    }
}

#[test]
fn least_loaded_assignment_refills_the_emptied_loop() {
    assert_eq!(loops_after_uneven_closes(Assignment::LeastLoaded), vec![2, 2]);
}

#[test]
fn round_robin_assignment_ignores_load() {
    assert_eq!(loops_after_uneven_closes(Assignment::RoundRobin), vec![1, 3]);
}
