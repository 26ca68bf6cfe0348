//! In-process tests of the uring model over loopback: echo on several
//! rings, timeouts from the sweep, back-pressure on a peer that sends
//! without reading, the drain (idle closed at once, in-flight finished,
//! cut at the drain timeout), and jobs answered through the mailbox.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_proto::http::HttpConfig;
use ferry_proto::root::Root;

use super::{UringConfig, UringServer};
use crate::{ListenerConfig, Service};

use crate::test_server::{PATIENCE, Running, echo, is_closed};

/// Starts a uring server on its own thread.
fn start(listeners: Vec<ListenerConfig>, io_threads: usize, drain: Duration) -> Running {
    let config = UringConfig { drain_timeout: drain, io_threads, handle_signals: false, ..UringConfig::new(listeners) };
    let server = UringServer::bind(config).expect("bind");
    Running::spawn(&server.listeners(), server.shutdown_handle(), move || server.run())
}

#[test]
fn echo_on_one_and_several_rings_then_idle_clients_close_at_shutdown() {
    for threads in [1, 3] {
        let mut server = start(vec![echo("127.0.0.1:0", PATIENCE)], threads, PATIENCE);
        let mut clients: Vec<TcpStream> = (0..12).map(|_| server.connect(0)).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            // Bigger than one provided buffer, so one message spans several.
            let msg = format!("hello {i}\n").repeat(4000);
            c.write_all(msg.as_bytes()).expect("write");
            let mut got = vec![0; msg.len()];
            c.read_exact(&mut got).expect("echo");
            assert!(got == msg.as_bytes(), "{threads} rings");
        }
        let report = server.stop();
        assert_eq!((report.accepted, report.cut), (12, 0), "{threads} rings");
        for c in &mut clients {
            assert!(is_closed(c), "idle client closed at shutdown ({threads} rings)");
        }
    }
}

#[test]
fn idle_timeout_closes_a_silent_connection_but_not_a_busy_one() {
    let mut server = start(vec![echo("127.0.0.1:0", Duration::from_millis(400))], 2, PATIENCE);
    let mut silent = server.connect(0);
    let mut busy = server.connect(0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) {
        busy.write_all(b"x").expect("write");
        let mut b = [0u8; 1];
        busy.read_exact(&mut b).expect("echo");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(is_closed(&mut silent), "silent connection timed out");
    busy.write_all(b"y").expect("busy still open");
    let mut b = [0u8; 1];
    busy.read_exact(&mut b).expect("busy still answered");
    server.stop();
}

#[test]
fn a_peer_that_sends_without_reading_is_held_back_not_buffered() {
    let mut server = start(vec![echo("127.0.0.1:0", PATIENCE)], 1, PATIENCE);
    let mut flood = server.connect(0);
    flood.set_write_timeout(Some(Duration::from_millis(500))).expect("timeout");
    // The echo cannot go out (never read), so the server must stop
    // receiving: the client's writes then block in the kernel's buffers.
    let chunk = vec![b'z'; 64 * 1024];
    let mut written = 0usize;
    let blocked = loop {
        match flood.write(&chunk) {
            Ok(n) => written += n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break true,
            Err(e) => panic!("write failed: {e}"),
        }
        if written > 512 << 20 {
            break false;
        }
    };
    assert!(blocked, "the server took {written} bytes it could not answer");
    // Reading lets it go on.
    let mut got = vec![0; 1 << 20];
    flood.read_exact(&mut got).expect("the echo flows once read");
    assert!(got.iter().all(|&b| b == b'z'));
    drop(flood);
    server.stop();
}

fn http(root: &Arc<Root>) -> ListenerConfig {
    ListenerConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        Service::Http(Arc::new(HttpConfig::new(Arc::clone(root)))),
    )
}

#[test]
fn shutdown_finishes_an_in_flight_download_or_cuts_it_at_the_drain_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big: Vec<u8> = (0..32u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("big.bin"), &big).expect("write");
    let root = Arc::new(Root::open(dir.path()).expect("root"));
    for (drain, finishes) in [(PATIENCE, true), (Duration::from_millis(300), false)] {
        let mut server = start(vec![http(&root)], 2, drain);
        let mut dl = server.connect(0);
        dl.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n").expect("request");
        let mut reader = BufReader::new(dl.try_clone().expect("clone"));
        let mut line = String::new();
        reader.read_line(&mut line).expect("status");
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        if finishes {
            server.shutdown.signal();
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).expect("download completes");
            assert!(rest.ends_with(&big[big.len() - 4096..]), "body arrived to its end");
            assert_eq!(server.stop().cut, 0);
        } else {
            let report = server.stop();
            assert_eq!(report.cut, 1, "the stalled download is cut at the drain timeout");
        }
    }
}

#[test]
fn a_listing_runs_as_a_job_and_its_answer_comes_back_through_the_mailbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..50 {
        std::fs::write(dir.path().join(format!("f{i}.txt")), b"x").expect("write");
    }
    let root = Arc::new(Root::open(dir.path()).expect("root"));
    let mut server = start(vec![http(&root)], 2, PATIENCE);
    let mut c = server.connect(0);
    // Two pipelined requests: the listing (a job) and a file after it.
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /f7.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("requests");
    let mut all = String::new();
    c.read_to_string(&mut all).expect("answers");
    assert_eq!(all.matches("HTTP/1.1 200").count(), 2, "{all}");
    assert!(all.contains("f49.txt"), "the listing names the files");
    assert!(all.ends_with("\r\n\r\nx"), "the file's answer comes last");
    server.stop();
}

#[test]
fn more_senders_at_once_than_pool_buffers_are_all_answered() {
    // 300 connections send before any is read: more receives complete
    // than the pool has buffers, so some end with ENOBUFS and are re-armed.
    let mut server = start(vec![echo("127.0.0.1:0", PATIENCE)], 1, PATIENCE);
    let mut clients: Vec<TcpStream> = (0..300).map(|_| server.connect(0)).collect();
    let msg = vec![b'q'; 20 * 1024];
    for c in &mut clients {
        c.write_all(&msg).expect("write");
    }
    for c in &mut clients {
        let mut got = vec![0; msg.len()];
        c.read_exact(&mut got).expect("echo");
        assert!(got == msg);
    }
    assert_eq!(server.stop().accepted, 300);
}
