//! The drain with fake connections (loopback pairs served by test threads)
//! and a fake signalfd (an eventfd and a list of pending signals).

use std::io::Read;
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use ferry_reactor::Waker;

use super::*;
use crate::in_flight::Entry;
use crate::in_flight::tests::pair;

/// A registered connection whose "serving" thread reads until its socket
/// ends (a byte from the peer, the peer closing, or a cut), like a
/// connection blocked in the pump.
fn serving(in_flight: &Arc<InFlight>) -> (TcpStream, JoinHandle<()>) {
    let (server, client) = pair();
    let entry = in_flight.enter(&server).expect("open");
    let thread = std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        let _ = (&server).read(&mut byte);
        drop(entry);
    });
    (client, thread)
}

/// Stands in for the signalfd: readable once a signal is queued.
struct FakeSignals {
    fd: Arc<Waker>,
    pending: Arc<Mutex<Vec<Signal>>>,
}

/// The test's side of a [`FakeSignals`]: "deliver" a signal.
#[derive(Clone)]
struct Kill {
    fd: Arc<Waker>,
    pending: Arc<Mutex<Vec<Signal>>>,
}

fn fake_signals() -> (FakeSignals, Kill) {
    let fd = Arc::new(Waker::new().expect("eventfd"));
    let pending = Arc::new(Mutex::new(Vec::new()));
    (FakeSignals { fd: Arc::clone(&fd), pending: Arc::clone(&pending) }, Kill { fd, pending })
}

impl Kill {
    fn send(&self, signal: Signal) {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).push(signal);
        self.fd.wake().expect("wake");
    }
}

impl AsFd for FakeSignals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl StopSignals for FakeSignals {
    fn read_stop(&mut self) -> io::Result<Option<Signal>> {
        self.fd.drain()?;
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(pending.drain(..).find(|s| matches!(s, Signal::SIGINT | Signal::SIGTERM)))
    }
}

#[test]
fn nothing_in_flight_returns_at_once_and_closes_the_list() {
    let in_flight = InFlight::new().expect("eventfd");
    let outcome = drain(None, &in_flight, Duration::from_secs(600));
    assert_eq!(outcome, DrainOutcome { cut: 0, left: 0, again: None });
    let (late, _client) = pair();
    assert!(in_flight.enter(&late).is_none(), "a connection was registered after the drain began");
}

#[test]
fn waits_for_a_connection_in_flight_to_finish() {
    let in_flight = InFlight::new().expect("eventfd");
    let (mut client, thread) = serving(&in_flight);
    let (done_tx, done) = mpsc::channel();
    let drainer = std::thread::spawn({
        let in_flight = Arc::clone(&in_flight);
        move || {
            let outcome = drain(None, &in_flight, Duration::from_secs(600));
            let _ = done_tx.send(());
            outcome
        }
    });
    assert!(done.recv_timeout(Duration::from_millis(200)).is_err(), "returned while a connection was in flight");
    std::io::Write::write_all(&mut client, b"x").expect("the connection finishes");
    assert_eq!(drainer.join().expect("drain"), DrainOutcome { cut: 0, left: 0, again: None });
    thread.join().expect("serving thread");
}

#[test]
fn the_drain_timeout_cuts_what_is_left() {
    let in_flight = InFlight::new().expect("eventfd");
    let (mut client, thread) = serving(&in_flight);
    let timeout = Duration::from_millis(100);
    let started = Instant::now();
    let outcome = drain(None, &in_flight, timeout);
    assert!(started.elapsed() >= timeout, "cut after {:?}, before the timeout", started.elapsed());
    assert_eq!(outcome, DrainOutcome { cut: 1, left: 0, again: None });
    thread.join().expect("the cut connection ended");
    let mut byte = [0u8; 1];
    assert_eq!(client.read(&mut byte).expect("peer read"), 0, "the peer sees the cut");
}

#[test]
fn a_second_stop_signal_cuts_at_once_and_other_signals_do_not() {
    let in_flight = InFlight::new().expect("eventfd");
    let (_client, thread) = serving(&in_flight);
    let (mut signals, kill) = fake_signals();
    let (done_tx, done) = mpsc::channel();
    let drainer = std::thread::spawn({
        let in_flight = Arc::clone(&in_flight);
        move || {
            let outcome = drain(Some(&mut signals), &in_flight, Duration::from_secs(600));
            let _ = done_tx.send(());
            outcome
        }
    });
    kill.send(Signal::SIGCHLD);
    assert!(done.recv_timeout(Duration::from_millis(200)).is_err(), "SIGCHLD ended the drain");
    kill.send(Signal::SIGTERM);
    let outcome = drainer.join().expect("drain");
    assert_eq!(outcome, DrainOutcome { cut: 1, left: 0, again: Some(Signal::SIGTERM) });
    thread.join().expect("the cut connection ended");
}

#[test]
fn a_connection_that_outlives_its_cut_is_left_after_the_grace() {
    let in_flight = InFlight::new().expect("eventfd");
    let (server, _client) = pair();
    let entry: Entry = in_flight.enter(&server).expect("open");
    let outcome = drain(None, &in_flight, Duration::ZERO);
    assert_eq!(outcome, DrainOutcome { cut: 1, left: 1, again: None });
    drop(entry);
    assert_eq!(in_flight.count(), 0);
}

#[test]
fn join_threads_joins_everything_when_nothing_is_left() {
    let (tx, rx) = mpsc::channel::<()>();
    let blocked = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    assert_eq!(join_threads(vec![blocked], 1, "a test thread"), 1, "a running thread was joined");
    drop(tx);
    let finished = std::thread::spawn(|| {});
    assert_eq!(join_threads(vec![finished], 0, "a test thread"), 0);
}
