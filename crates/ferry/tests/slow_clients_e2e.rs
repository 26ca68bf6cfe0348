//! Slow clients (slowloris) against every concurrency model of `ferry
//! serve`: two hundred connections sending their first request a byte at
//! a time must not keep a fresh client waiting. The pools (prefork,
//! threadpool) hold such connections in their acceptor until the request
//! is whole; thread and fork give each its own thread or process; the
//! reactor models are event-driven. The iterative model serves one client
//! at a time by design and only cuts a slow one at its deadline, so it is
//! not asked to. Nor does a graceful stop wait on them.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use util::serve::*;
use util::*;

/// Slow clients per server.
const SLOW: usize = 200;

/// How long a fresh request may take with them around.
const FRESH_WITHIN: Duration = Duration::from_secs(1);

/// How long a graceful stop may take with them connected (their header
/// timeout is 10 s, the drain timeout 30 s).
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// How often each slow client sends its next byte.
const DRIP: Duration = Duration::from_millis(200);

#[test]
fn slow_senders_keep_neither_fresh_requests_nor_a_stop_waiting() {
    raise_fd_limit(4 * SLOW as u64);
    let dir = scratch();
    let root = sample_tree(dir.path());
    for &model in MODELS.iter().filter(|&&m| m != "iterative") {
        for svc in [Svc::Http, Svc::Files] {
            // Two workers: the pools' default (two per CPU) would not
            // change the outcome, only how many slow clients it takes.
            let mut server = start_logged(model, svc, &root, &["--workers", "2"]);
            let (slow_head, fresh, answer) = match svc {
                Svc::Http => (
                    &b"GET /hello.txt HTTP/1.1\r\nHost: slow\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"[..],
                    "GET /hello.txt HTTP/1.1\r\nHost: fresh\r\nConnection: close\r\n\r\n",
                    "HTTP/1.1 200 ",
                ),
                Svc::Files => {
                    (&b"stat hello.txtaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"[..], "ping\n", "OK pong")
                }
            };
            let slow: Vec<TcpStream> = (0..SLOW)
                .map(|_| {
                    let mut stream = connect(server.addr);
                    stream.write_all(&slow_head[..1]).expect("first byte");
                    stream
                })
                .collect();
            let (stop, dripping) = drip(slow, slow_head);
            // Queued behind all of them in the listen backlog: a model
            // that gives its workers to slow senders reaches it only after
            // their header or idle timeout (10 s, 300 s).
            for round in 0..3 {
                let started = Instant::now();
                let mut stream = connect(server.addr);
                stream.set_read_timeout(Some(FRESH_WITHIN * 5)).expect("timeout");
                stream.write_all(fresh.as_bytes()).expect("send");
                let mut got = [0u8; 32];
                let n = stream.read(&mut got).unwrap_or(0);
                let waited = started.elapsed();
                let text = String::from_utf8_lossy(&got[..n]);
                assert!(text.starts_with(answer), "{model}/{svc:?} round {round}: got {text:?} after {waited:?}");
                assert!(waited < FRESH_WITHIN, "{model}/{svc:?} round {round}: answered after {waited:?}");
            }
            // A graceful stop does not wait on them: none has a request in
            // flight (the pools close what their acceptor holds, the other
            // models' sessions close a connection mid-head).
            let stopping = Instant::now();
            server.signal(rustix::process::Signal::TERM);
            let status = wait_child(&mut server.child, PATIENCE).expect("exited");
            assert!(status.success(), "{model}/{svc:?}: exit status {status}");
            let took = stopping.elapsed();
            assert!(took < STOP_WITHIN, "{model}/{svc:?}: the stop took {took:?} with slow clients connected");
            if matches!(model, "prefork" | "threadpool") {
                let closed = server.log_line("still sending their first request");
                assert!(closed.contains(&format!("closed {SLOW} connection(s)")), "{model}/{svc:?}: {closed}");
            }
            drop(stop);
            dripping.join().expect("the slow clients' thread");
        }
    }
}

/// Sends the next byte of `head` on every slow connection each [`DRIP`]
/// (writes to connections the server closed fail and are ignored), until
/// the returned sender is dropped; then closes them all.
fn drip(mut slow: Vec<TcpStream>, head: &'static [u8]) -> (mpsc::Sender<()>, thread::JoinHandle<()>) {
    let (stop, stopped) = mpsc::channel::<()>();
    let dripping = thread::spawn(move || {
        let mut next = 1;
        // Pacing a slow client, not waiting for the server: a timed wait is
        // what such a client does.
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(DRIP) {
            let byte = [head[next.min(head.len() - 1)]];
            for stream in &mut slow {
                let _ = stream.write_all(&byte);
            }
            next += 1;
        }
    });
    (stop, dripping)
}

/// Raises this process's descriptor limit (its children, the servers,
/// inherit it) to at least `want`, within the hard limit.
fn raise_fd_limit(want: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if limit.current.is_some_and(|soft| soft < want.min(hard)) {
        let raised = rustix::process::Rlimit { current: Some(want.min(hard)), maximum: limit.maximum };
        setrlimit(Resource::Nofile, raised).expect("raise the descriptor limit");
    }
}
