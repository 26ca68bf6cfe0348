//! Running a session the way the connection core does, over the in-memory
//! [`Pair`] on its fake clock, and the checks every protocol shares:
//! bounded queues, no failed connections, nothing after a close.

use std::time::{Duration, Instant, SystemTime};

use ferry_proto::conn::{CloseReason, MAX_INPUT, Pair, Timeouts};
use ferry_proto::{Flow, Now, Outbox, Session};

/// How a run left the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Still open, waiting for more input.
    Open,
    /// The session asked to close after its answers: our side is
    /// half-closed.
    Closing,
    /// The session asked to close at once.
    Closed,
}

/// What the client received, and how the connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub received: Vec<u8>,
    pub end: End,
}

impl Outcome {
    /// The bytes received, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.received).into_owned()
    }
}

/// The moment the [`Pair`] clock starts at, for direct session calls.
pub fn now() -> Now {
    Now { mono: Instant::now(), wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_083_200) }
}

/// Sends `pieces` one after the other to `session` over a [`Pair`] whose
/// client reads everything at once. After every step the session has
/// queued at most `bound` bytes (the Pair checks) and the core holds at
/// most [`MAX_INPUT`] unread. If the connection is closing in the end,
/// sending `probe` gets nothing more.
pub fn run<S: Session>(session: &mut S, pieces: &[&[u8]], bound: usize, probe: &[u8]) -> Outcome {
    let mut pair = Pair::new(&mut *session, Timeouts::default()).max_queued(bound);
    for piece in pieces {
        pair.send(piece);
        assert!(pair.conn().buffered_input() <= MAX_INPUT, "the core buffered more than MAX_INPUT");
    }
    finish(&mut pair, probe)
}

/// Like [`run`], but the client sends all of `stream` and then reads
/// only `window` bytes at a time, each time everything that arrived; so
/// the server meets the whole pipeline while its answers are undrained.
pub fn run_undrained<S: Session>(session: &mut S, stream: &[u8], bound: usize, window: usize) -> Outcome {
    let mut pair = Pair::new(&mut *session, Timeouts::default()).max_queued(bound).window(window);
    pair.send(stream);
    assert!(pair.conn().buffered_input() <= MAX_INPUT, "the core buffered more than MAX_INPUT");
    loop {
        let before = pair.received().len();
        pair.client_read();
        if pair.received().len() == before {
            break;
        }
    }
    finish(&mut pair, &[])
}

fn finish<S: Session>(pair: &mut Pair<S>, probe: &[u8]) -> Outcome {
    let end = end_of(pair);
    let received = pair.received().to_vec();
    if end != End::Open && !probe.is_empty() {
        pair.send(probe);
        assert_eq!(
            pair.received().len(),
            received.len(),
            "bytes sent after the connection began to close:\n{}",
            String::from_utf8_lossy(&pair.received()[received.len()..])
        );
    }
    Outcome { received, end }
}

fn end_of<S: Session>(pair: &Pair<S>) -> End {
    match pair.closed() {
        None if pair.server_fin() => End::Closing,
        None => End::Open,
        Some(CloseReason::SessionClosed) => End::Closed,
        // Nothing here times out, drains or half-closes the client, and
        // there is no socket to fail: any other end is a bug.
        Some(other) => panic!("the connection ended by itself: {other}"),
    }
}

/// A session that asked to close answers nothing more, whatever it is
/// handed: input, a timeout, a drained outbox, an upload's end, EOF.
pub fn assert_silent_after_close<S: Session>(session: &mut S, probe: &[u8]) {
    let now = now();
    let mut out = Outbox::new();
    let progress = session.on_input(probe, &mut out, now);
    assert_ne!(progress.flow, Flow::Continue, "a closed session went back to reading");
    assert_silent(&out, "on_input");
    session.on_idle_timeout(&mut out, now);
    assert_silent(&out, "on_idle_timeout");
    session.on_drained(&mut out, now);
    assert_silent(&out, "on_drained");
    session.on_upload_done(Ok(()), &mut out, now);
    assert_silent(&out, "on_upload_done");
    session.on_eof(&mut out, now);
    assert_silent(&out, "on_eof");
}

fn assert_silent(out: &Outbox, call: &str) {
    assert!(out.is_empty() && !out.has_sink(), "a closed session queued output in {call}: {out:?}");
}

/// One `on_input` call with all of `stream` (however large: more than a
/// driver would ever hand over) queues at most `bound` bytes.
pub fn assert_one_pass_bounded<S: Session>(session: &mut S, stream: &[u8], bound: usize) {
    let mut out = Outbox::new();
    let progress = session.on_input(stream, &mut out, now());
    assert!(progress.consumed <= stream.len(), "consumed more than given");
    assert!(out.queued_bytes() <= bound, "one pass queued {} bytes (bound {bound})", out.queued_bytes());
}
