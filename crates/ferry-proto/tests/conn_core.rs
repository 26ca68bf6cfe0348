//! The connection core's promises, on the Pair's fake clock: backpressure,
//! slow and stalled readers, jobs holding back output, the drain, upload
//! stalls, the lingering close and a session that never consumes. Each
//! runs in microseconds; no sockets, no sleeps.

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use ferry_proto::conn::{CloseReason, LINGER, MAX_INPUT, Pair, PairEvent, Timeouts};
use ferry_proto::echo::EchoSession;
use ferry_proto::files::{FileSession, FilesConfig};
use ferry_proto::root::Root;
use ferry_proto::{Flow, Now, Outbox, Progress, Session};

const IDLE: Duration = Duration::from_secs(300);

fn timeouts() -> Timeouts {
    Timeouts::with_idle(IDLE)
}

fn files(allow_write: bool) -> (tempfile_dir::Dir, FileSession) {
    let dir = tempfile_dir::Dir::new();
    fs::write(dir.path().join("hello.txt"), b"Hello, world!").unwrap();
    let root = Arc::new(Root::open(dir.path()).unwrap());
    (dir, FileSession::new(FilesConfig::new(root, allow_write).unwrap()))
}

/// The SHA-256 of `0123456789`, the payload of the upload tests.
const TEN_SHA: &str = "84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882";

/// What a new connection's `put` of the upload tests' file answers: how
/// many bytes the server kept.
fn resume_offset(dir: &tempfile_dir::Dir) -> String {
    let root = Arc::new(Root::open(dir.path()).unwrap());
    let session = FileSession::new(FilesConfig::new(root, true).unwrap());
    let mut pair = Pair::new(session, timeouts());
    pair.send(format!("put up.bin 10 {TEN_SHA}\n").as_bytes());
    String::from_utf8_lossy(pair.received()).into_owned()
}

/// A scratch directory removed on drop (no extra dependency).
mod tempfile_dir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("ferry-conn-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn a_peer_that_does_not_read_holds_back_input_and_memory() {
    let mut pair = Pair::new(EchoSession, timeouts()).window(1024).max_queued(64 * 1024);
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    pair.send(&data);
    assert_eq!(pair.received().len(), 1024, "the window is full");
    assert!(pair.conn().buffered_input() <= MAX_INPUT, "input stops at the cap");
    assert!(!pair.conn().wants_read(), "reading pauses: the kernel's window holds the peer back");
    let mut got = pair.take_received();
    while got.len() < data.len() {
        pair.client_read();
        let more = pair.take_received();
        assert!(!more.is_empty(), "progress after the client read");
        got.extend_from_slice(&more);
    }
    assert_eq!(got, data, "everything echoed, in order");
    assert!(pair.closed().is_none());
}

#[test]
fn a_slow_reader_keeps_its_connection_a_stopped_one_is_cut() {
    let mut pair = Pair::new(EchoSession, timeouts()).window(10);
    pair.send(&[b'x'; 100]);
    for _ in 0..5 {
        pair.advance(IDLE - Duration::from_secs(1)).client_read();
    }
    assert!(pair.closed().is_none(), "a reader that keeps taking bytes stays");
    assert_eq!(pair.received().len(), 60);
    assert_eq!(pair.advance_to_deadline(), Some(IDLE));
    match pair.closed() {
        Some(CloseReason::Error(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut),
        other => panic!("a peer that stopped reading is cut: {other:?}"),
    }
    assert!(!pair.server_fin(), "cut, not half-closed");
}

#[test]
fn a_job_holds_back_what_follows_and_cannot_time_out() {
    let (_dir, session) = files(false);
    let mut pair = Pair::new(session, timeouts()).hold_jobs();
    pair.send(b"ping\nsum hello.txt\nping\n");
    assert_eq!(pair.take_received(), b"OK pong\n", "the answer before the job leaves");
    assert_eq!(pair.conn().next_deadline(), None, "a job at work is progress");
    pair.advance(IDLE * 2);
    assert!(pair.closed().is_none());
    pair.finish_jobs();
    let text = String::from_utf8(pair.take_received()).unwrap();
    assert_eq!(text, "OK 315f5bdb76d078c43b8ac0064e4a0164612b1fce77c869345bfc94c75894edd3\nOK pong\n");
}

#[test]
fn the_drain_closes_idle_connections_at_once_and_busy_ones_when_done() {
    let (_dir, session) = files(false);
    let mut idle = Pair::new(session, timeouts());
    idle.send(b"ping\n").server_shutdown();
    assert!(matches!(idle.closed(), Some(CloseReason::Shutdown)));
    let (_dir, session) = files(false);
    let mut busy = Pair::new(session, timeouts()).hold_jobs();
    busy.send(b"sum hello.txt\n").server_shutdown();
    assert!(busy.closed().is_none(), "the job's answer is in flight");
    busy.finish_jobs();
    assert!(busy.received().starts_with(b"OK 315f"), "the answer went out first");
    assert!(matches!(busy.closed(), Some(CloseReason::Shutdown)));
}

#[test]
fn a_stalled_upload_times_out_and_keeps_its_partial() {
    let (dir, session) = files(true);
    let mut pair = Pair::new(session, timeouts());
    pair.send(format!("put up.bin 10 {TEN_SHA}\n0123").as_bytes());
    assert_eq!(pair.received(), b"OK 0\n");
    assert!(pair.events().contains(&PairEvent::WriteFile(4)), "payload goes straight to the file");
    assert_eq!(pair.advance_to_deadline(), Some(IDLE));
    assert!(pair.server_fin() || pair.closed().is_some(), "the connection ends");
    drop(pair);
    assert!(!dir.path().join("up.bin").exists());
    assert_eq!(resume_offset(&dir), "OK 4\n", "kept for resume");
}

#[test]
fn closing_lingers_only_while_the_peer_may_still_send() {
    // Nothing unread: the FIN goes out and the close follows at once.
    let (_dir, session) = files(false);
    let mut pair = Pair::new(session, timeouts());
    pair.send(b"quit\n");
    assert!(pair.server_fin());
    assert_eq!(pair.advance_to_deadline(), Some(Duration::ZERO));
    assert!(matches!(pair.closed(), Some(CloseReason::SessionClosed)));
    // Bytes after `quit`: discarded for up to LINGER, so no RST destroys
    // the answer; the peer's own close ends it sooner.
    let (_dir, session) = files(false);
    let mut pair = Pair::new(session, timeouts());
    pair.send(b"quit\npwd\npwd\n");
    assert_eq!(pair.received(), b"OK bye\n");
    assert_eq!(pair.conn().next_deadline().map(|d| d - pair.now().mono), Some(LINGER));
    pair.send(b"more\n");
    assert!(pair.closed().is_none(), "still lingering");
    pair.client_close();
    assert!(matches!(pair.closed(), Some(CloseReason::SessionClosed)));
    // A peer that keeps the connection open is cut after LINGER.
    let (_dir, session) = files(false);
    let mut pair = Pair::new(session, timeouts());
    pair.send(b"quit\npwd\n");
    assert_eq!(pair.advance_to_deadline(), Some(LINGER));
    assert!(pair.closed().is_some());
}

/// A session with a bug: it never consumes anything.
struct Hoarder;

impl Session for Hoarder {
    fn on_input(&mut self, _input: &[u8], _out: &mut Outbox, _now: Now) -> Progress {
        Progress { consumed: 0, flow: Flow::Continue }
    }
}

#[test]
fn a_session_that_never_consumes_is_closed_at_the_input_cap() {
    let mut pair = Pair::new(Hoarder, timeouts()).read_chunk(4096);
    pair.send(&vec![b'a'; MAX_INPUT + 10]);
    match pair.closed() {
        Some(CloseReason::Error(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidData),
        other => panic!("closed as a protocol bug: {other:?}"),
    }
    assert_eq!(pair.conn().stats().bytes_in, MAX_INPUT as u64, "it read up to the cap, no further");
}

#[test]
fn an_upload_cut_short_by_the_peer_reaches_the_session() {
    let (dir, session) = files(true);
    let mut pair = Pair::new(session, timeouts());
    pair.send(format!("put up.bin 10 {TEN_SHA}\n012").as_bytes()).client_close();
    assert!(pair.closed().is_some(), "the connection ends");
    drop(pair);
    assert_eq!(resume_offset(&dir), "OK 3\n", "kept for resume");
}
