//! The connections a thread model is serving, in one place: the iterative,
//! thread-per-connection and thread-pool models register each connection
//! here, and the shutdown drain counts them, waits for them and cuts them.
//!
//! Every change of the count makes the "room" eventfd readable. Two
//! waiters use it, never at the same time: an accept loop that stopped
//! accepting at a cap (it polls the room, not the listeners), and the
//! drain (it polls the room next to the signalfd, so one `poll` hears both
//! "a connection ended" and "a second stop signal").

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ferry_reactor::Waker;

use crate::drain::{Waited, wait_until_empty};
use crate::net::Stream;

/// The connections being served, shared (`Send + Sync`, behind an `Arc`)
/// by whoever accepts, whoever serves and the drain.
#[derive(Debug)]
pub(crate) struct InFlight {
    state: Mutex<State>,
    /// Readable after a connection ended (and whenever a model says room
    /// was made, see [`InFlight::room`]).
    room: Waker,
}

#[derive(Debug)]
struct State {
    /// A second handle on each connection's socket, by entry id, so it can
    /// be cut from another thread (`None` if it could not be duplicated:
    /// counted, not cuttable).
    conns: HashMap<u64, Option<Stream>>,
    next_id: u64,
    /// Set by [`InFlight::close`]: no further entries.
    closed: bool,
}

/// One registered connection; dropping it (however the serving code ends,
/// unwinding included) takes the connection off the list and wakes the
/// room.
#[derive(Debug)]
pub(crate) struct Entry {
    in_flight: Arc<InFlight>,
    id: u64,
}

impl InFlight {
    /// An empty, open list.
    pub(crate) fn new() -> io::Result<Arc<InFlight>> {
        Ok(Arc::new(InFlight {
            state: Mutex::new(State { conns: HashMap::new(), next_id: 0, closed: false }),
            room: Waker::new()?,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics under this lock; the state stays consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `stream` as being served. `None` once the drain began
    /// ([`InFlight::close`]): the caller drops the connection unserved, so
    /// nothing starts that the drain would not wait for.
    pub(crate) fn enter(self: &Arc<Self>, stream: &Stream) -> Option<Entry> {
        let second = stream.try_clone().ok();
        let mut state = self.lock();
        if state.closed {
            return None;
        }
        let id = state.next_id;
        state.next_id += 1;
        state.conns.insert(id, second);
        Some(Entry { in_flight: Arc::clone(self), id })
    }

    /// Refuses further entries; the ones registered stay until they end.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
    }

    /// Connections registered and not yet ended.
    pub(crate) fn count(&self) -> usize {
        self.lock().conns.len()
    }

    /// Shuts down (both directions) every registered connection: the
    /// blocked sends and receives serving them fail at once, so they end.
    /// Returns how many were cut.
    pub(crate) fn cut_all(&self) -> usize {
        self.lock()
            .conns
            .values()
            .flatten()
            .filter(|stream| stream.shutdown(rustix::net::Shutdown::Both).is_ok())
            .count()
    }

    /// The "room" eventfd: readable after a connection ended. A model
    /// whose cap is something else (the thread pool's queue) wakes it
    /// itself when room is made. Reset it with [`InFlight::reset_room`]
    /// before re-checking the condition, then poll it.
    pub(crate) fn room(&self) -> &Waker {
        &self.room
    }

    /// Resets the room eventfd, then counts: an end after this call makes
    /// it readable again, so a poll that follows cannot miss it.
    pub(crate) fn reset_room(&self) -> usize {
        if let Err(e) = self.room.drain() {
            // The fd stays readable: waiters spin instead of sleeping, but
            // never miss an end.
            tracing::error!("cannot reset the in-flight wake-up eventfd: {e}");
        }
        self.count()
    }

    /// Waits until no connection is registered or `timeout` passes (one
    /// too large to represent waits for good); returns how many are left.
    pub(crate) fn wait_empty(&self, timeout: Duration) -> usize {
        let deadline = Instant::now().checked_add(timeout);
        match wait_until_empty(None, Some(self.room.as_fd()), deadline, None, || self.reset_room()) {
            Waited::Empty => 0,
            Waited::TimedOut | Waited::Again(_) => self.count(),
        }
    }
}

impl Entry {
    /// A number no other entry of the same list has, for thread names.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.in_flight.lock().conns.remove(&self.id);
        if let Err(e) = self.in_flight.room.wake() {
            tracing::error!("cannot announce the end of a connection: {e}");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    use super::*;
    use crate::listen::poll_readable;

    /// A connected loopback pair: (the server's end, the client's end).
    pub(crate) fn pair() -> (Stream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (server.into(), client)
    }

    fn room_readable(in_flight: &InFlight) -> bool {
        poll_readable(&[in_flight.room().as_fd()], Some(Duration::ZERO)).expect("poll")[0]
    }

    #[test]
    fn an_entry_counts_until_dropped_and_its_end_wakes_the_room() {
        let in_flight = InFlight::new().expect("eventfd");
        let (server, _client) = pair();
        let entry = in_flight.enter(&server).expect("open");
        assert_eq!(in_flight.count(), 1);
        assert_eq!(in_flight.reset_room(), 1);
        assert!(!room_readable(&in_flight), "reset_room left the room readable");
        drop(entry);
        assert_eq!(in_flight.count(), 0);
        assert!(room_readable(&in_flight), "an end must wake a loop waiting at the cap");
    }

    #[test]
    fn cut_all_shuts_down_the_registered_sockets_only() {
        let in_flight = InFlight::new().expect("eventfd");
        let (served, mut client) = pair();
        let (unregistered, mut other_client) = pair();
        let _entry = in_flight.enter(&served).expect("open");
        assert_eq!(in_flight.cut_all(), 1);
        // The serving side's blocked read ends...
        let mut byte = [0u8; 1];
        assert_eq!((&served).read(&mut byte).expect("read after cut"), 0);
        // ...and the peer sees the end of the stream.
        assert_eq!(client.read(&mut byte).expect("peer read"), 0);
        // A connection nobody registered is left alone.
        other_client.set_nonblocking(true).expect("nonblocking");
        let untouched = other_client.read(&mut byte);
        assert!(matches!(&untouched, Err(e) if e.kind() == io::ErrorKind::WouldBlock), "{untouched:?}");
        drop(unregistered);
    }

    #[test]
    fn close_refuses_new_entries_but_keeps_the_old_ones() {
        let in_flight = InFlight::new().expect("eventfd");
        let (a, _ca) = pair();
        let (b, _cb) = pair();
        let entry = in_flight.enter(&a).expect("open");
        in_flight.close();
        assert!(in_flight.enter(&b).is_none(), "entered after close");
        assert_eq!(in_flight.count(), 1);
        drop(entry);
        assert_eq!(in_flight.wait_empty(Duration::ZERO), 0);
    }

    #[test]
    fn wait_empty_times_out_with_the_count_left() {
        let in_flight = InFlight::new().expect("eventfd");
        let (server, _client) = pair();
        let _entry = in_flight.enter(&server).expect("open");
        let timeout = Duration::from_millis(50);
        let started = Instant::now();
        assert_eq!(in_flight.wait_empty(timeout), 1);
        assert!(started.elapsed() >= timeout, "returned after {:?}", started.elapsed());
    }

    #[test]
    fn wait_empty_returns_when_another_thread_ends_the_last_connection() {
        let in_flight = InFlight::new().expect("eventfd");
        let (server, mut client) = pair();
        let entry = in_flight.enter(&server).expect("open");
        // The "connection thread" ends when its peer closes.
        let serving = std::thread::spawn(move || {
            let mut byte = [0u8; 1];
            let _ = (&server).read(&mut byte);
            drop(entry);
        });
        std::io::Write::write_all(&mut client, b"x").expect("send");
        assert_eq!(in_flight.wait_empty(Duration::from_secs(20)), 0);
        serving.join().expect("serving thread");
    }
}
