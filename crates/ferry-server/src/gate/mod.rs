//! The pools' front door (thread pool, prefork): a new connection waits
//! here until its first request has arrived whole, and only then goes to
//! a worker, so no worker sits on a client that sends its request a byte
//! at a time (slowloris). Event-driven servers (nginx, the reactor models
//! here) get this for free; Apache's event MPM keeps connections between
//! requests on its listener thread for the same reason.
//!
//! Whether a request is whole is read with `recv(MSG_PEEK)`: nothing is
//! consumed, so the worker's session reads the bytes as if they had just
//! arrived, and nothing but the descriptor travels to a prefork worker.
//! The service judges the peeked bytes ([`Service::first_request`]).
//!
//! The fast path costs one syscall: [`Gate::admit`] peeks once right after
//! the accept, and a connection whose request came with it goes straight
//! on. The others are watched by an epoll instance of the gate's own
//! (edge-triggered, so bytes peeked at and left in place do not report
//! again; every new segment does), next to a timerfd for their deadlines.
//! The owner polls [`Gate`]'s descriptor with its other sources and calls
//! [`Gate::take_ready`] when it is readable.
//!
//! Requests go on in the order they came, which epoll's ready list keeps.
//! A connection whose request came with it must not overtake one held
//! here whose request came first but is not taken yet (the owner had no
//! room, or had not looked since): while connections wait, the fast path
//! also polls the gate's descriptor, and if anything is pending the new
//! connection joins the epoll set behind it. Without this, with one
//! worker and a queue of one, a later client could take the one place
//! and hold the worker while the earlier one waits.
//!
//! Everything is bounded. At most [`WAITING_LIMIT`] connections wait
//! ([`Gate::is_full`]: the owner stops accepting, as at its other caps).
//! A peek that fills the service's limit without a complete request is
//! handed over: the session refuses an oversize request with its usual
//! answer. A client that closes is dropped (handed over if it sent part of
//! a request, so its session answers what it got). A connection keeps the
//! deadline its session would keep (the idle timeout from the accept, the
//! request timeout from the first byte of a request); when it passes, the
//! connection is answered here by its own session as in every model (408)
//! and closed (`expired.rs` says why not by a worker). The drain closes
//! what waits ([`Gate::close_all`]); a session would close a connection
//! with no complete request at that point too.

use std::collections::{BTreeSet, HashMap};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::Timespec;
use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
use rustix::io::Errno;
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, timerfd_create, timerfd_settime};

use self::expired::{Expired, Next};
use self::peek::{Look, look, take};
use crate::listen::{Accepted, Listener, poll_readable};

mod expired;
mod peek;

/// Most connections waiting for their first request at once (the thread
/// and fork models' default `--max-conns`). At the limit the pool stops
/// accepting until one leaves, and the kernel's backlog holds new clients.
pub(crate) const WAITING_LIMIT: usize = 1024;

/// The timerfd's key in the gate's epoll set (connections count up from 0).
const TIMER: u64 = u64::MAX;

/// Most events one [`Gate::take_ready`] looks at.
const EVENTS: usize = 64;

/// Connections waiting for their first request, and the descriptors that
/// say when to look at them again.
pub(crate) struct Gate {
    epoll: OwnedFd,
    /// Fires at the earliest deadline.
    timer: OwnedFd,
    /// The deadline the timer is set for, if any.
    armed: Option<Instant>,
    waiting: HashMap<u64, Waiting>,
    /// Connections being answered at their deadline, by key.
    expired: HashMap<u64, Expired>,
    /// Every connection's deadline, earliest first.
    deadlines: BTreeSet<(Instant, u64)>,
    next_key: u64,
    limit: usize,
    /// Peeked bytes land here: as long as the largest service limit.
    buf: Vec<u8>,
    /// Connections closed here without reaching a worker.
    closed: usize,
}

struct Waiting {
    conn: Accepted,
    /// The listener's index.
    listener: usize,
    deadline: Instant,
    /// When a request began to arrive, if one did (its deadline is the
    /// request timeout from then, no longer the idle timeout from the
    /// accept).
    began: Option<Instant>,
}

impl Gate {
    /// An empty gate for connections of `listeners`, holding at most
    /// `limit` of them.
    pub(crate) fn new(listeners: &[Listener], limit: usize) -> std::io::Result<Gate> {
        let epoll = epoll::create(CreateFlags::CLOEXEC)?;
        let timer = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)?;
        epoll::add(&epoll, &timer, EventData::new_u64(TIMER), EventFlags::IN)?;
        let peek = listeners.iter().map(|l| l.first_request_limit()).max().unwrap_or(1);
        Ok(Gate {
            epoll,
            timer,
            armed: None,
            waiting: HashMap::new(),
            expired: HashMap::new(),
            deadlines: BTreeSet::new(),
            next_key: 0,
            limit: limit.max(1),
            buf: vec![0; peek],
            closed: 0,
        })
    }

    /// True while no further connection may wait: stop accepting.
    pub(crate) fn is_full(&self) -> bool {
        self.len() >= self.limit
    }

    /// Connections held now (waiting, or being answered at their deadline).
    pub(crate) fn len(&self) -> usize {
        self.waiting.len() + self.expired.len()
    }

    /// Connections this gate closed without handing them over (peer gone,
    /// deadline passed, drain): for the report's "closed unserved".
    pub(crate) fn closed(&self) -> usize {
        self.closed
    }

    /// A connection just accepted on `listeners[index]`: returned at once
    /// if its first request is there (one peek) and none held here may
    /// have come before it, otherwise kept until it is its turn
    /// ([`Gate::take_ready`]), or closed if the client is gone.
    pub(crate) fn admit(&mut self, listeners: &[Listener], index: usize, conn: Accepted) -> Option<Accepted> {
        let listener = &listeners[index];
        let begun = match look(&mut self.buf, listener, &conn, false).0 {
            // Asked after the peek: input that came before this request
            // has reported by then.
            Look::Ready if !self.has_input() => return Some(conn),
            // Added to the epoll set with its request there, it reports
            // at once, behind the input that came before it.
            Look::Ready => true,
            Look::Drop(why) => {
                self.close(&conn, why);
                return None;
            }
            Look::Wait { begun } => begun,
        };
        let key = self.next_key;
        self.next_key += 1;
        let flags = EventFlags::IN | EventFlags::RDHUP | EventFlags::ET;
        if let Err(e) = epoll::add(&self.epoll, &conn.stream, EventData::new_u64(key), flags) {
            tracing::warn!("{}: cannot wait for its first request ({e}); handing it over as it is", conn.peer);
            return Some(conn);
        }
        // Bytes there at the accept came with the connection.
        let began = begun.then_some(conn.at);
        let timeout = if begun { listener.pump.request_timeout } else { listener.pump.idle_timeout };
        let deadline = later(conn.at, timeout);
        self.deadlines.insert((deadline, key));
        self.waiting.insert(key, Waiting { conn, listener: index, deadline, began });
        self.arm();
        None
    }

    /// True when a connection held here may have input not looked at yet
    /// (the gate's descriptor is readable, or polling it failed): a
    /// request that may be complete and then came before one accepted now.
    fn has_input(&self) -> bool {
        !self.waiting.is_empty()
            && poll_readable(&[self.epoll.as_fd()], Some(Duration::ZERO)).map_or(true, |ready| ready[0])
    }

    /// Looks at the connections that received something (at most `room`
    /// of them; the others stay pending) and answers and closes the ones
    /// whose deadline passed. Returns those whose first request is
    /// complete, with their listener's index, in the order their bytes
    /// came.
    pub(crate) fn take_ready(&mut self, listeners: &[Listener], room: usize) -> Vec<(usize, Accepted)> {
        let mut ready = Vec::new();
        let mut events = [MaybeUninit::<epoll::Event>::uninit(); EVENTS];
        let want = room.min(EVENTS);
        let fetched = if want == 0 {
            Vec::new()
        } else {
            match epoll::wait(&self.epoll, &mut events[..want], Some(&Timespec { tv_sec: 0, tv_nsec: 0 })) {
                Ok((events, _)) => events
                    .iter()
                    .map(|e| {
                        // `epoll::Event` is packed: copy the fields out.
                        let (data, flags) = (e.data, e.flags);
                        (data.u64(), flags)
                    })
                    .collect(),
                Err(Errno::INTR) => Vec::new(),
                Err(e) => {
                    tracing::error!("cannot wait on the connections waiting for their first request: {e}");
                    Vec::new()
                }
            }
        };
        for (key, flags) in fetched {
            if key == TIMER {
                self.timer_fired();
            } else if self.expired.contains_key(&key) {
                self.answer(key, false);
            } else {
                let closed = flags.intersects(EventFlags::RDHUP | EventFlags::HUP | EventFlags::ERR);
                self.on_input(listeners, key, closed, &mut ready);
            }
        }
        self.expire(listeners, room, &mut ready);
        self.arm();
        ready
    }

    /// Waiting connection `key` has its first request: to a worker.
    fn hand_over(&mut self, key: u64, ready: &mut Vec<(usize, Accepted)>) {
        if let Some(waiting) = self.remove(key) {
            ready.push((waiting.listener, waiting.conn));
        }
    }

    /// Waiting connection `key` is not worth a worker: closed, saying why.
    fn drop_waiting(&mut self, key: u64, why: &'static str) {
        if let Some(waiting) = self.remove(key) {
            self.close(&waiting.conn, why);
        }
    }

    /// Something arrived on waiting connection `key` (`closed`: or the
    /// client closed): hand it over, drop it, or keep it waiting.
    fn on_input(&mut self, listeners: &[Listener], key: u64, closed: bool, ready: &mut Vec<(usize, Accepted)>) {
        let Some(waiting) = self.waiting.get_mut(&key) else { return };
        let listener = &listeners[waiting.listener];
        match look(&mut self.buf, listener, &waiting.conn, closed).0 {
            Look::Ready => self.hand_over(key, ready),
            Look::Drop(why) => self.drop_waiting(key, why),
            Look::Wait { begun: true } if waiting.began.is_none() => {
                let now = Instant::now();
                let old = waiting.deadline;
                waiting.began = Some(now);
                waiting.deadline = later(now, listener.pump.request_timeout);
                self.deadlines.remove(&(old, key));
                self.deadlines.insert((waiting.deadline, key));
            }
            Look::Wait { .. } => {}
        }
    }

    /// Deals with every connection whose deadline passed: one still
    /// waiting is handed over if its request came just now (while there
    /// is `room`), otherwise answered by its session here ([`Expired`]);
    /// one being answered hears of its timeout.
    fn expire(&mut self, listeners: &[Listener], room: usize, ready: &mut Vec<(usize, Accepted)>) {
        let now = Instant::now();
        let due: Vec<u64> = self.deadlines.iter().take_while(|(d, _)| *d <= now).map(|&(_, key)| key).collect();
        for key in due {
            if self.expired.contains_key(&key) {
                self.answer(key, true);
                continue;
            }
            let Some(waiting) = self.waiting.get(&key) else { continue };
            let listener = &listeners[waiting.listener];
            let (look, peeked) = look(&mut self.buf, listener, &waiting.conn, false);
            match look {
                // Left for a call with room (the timer fires at once).
                Look::Ready if ready.len() >= room => {}
                Look::Ready => self.hand_over(key, ready),
                Look::Drop(why) => self.drop_waiting(key, why),
                Look::Wait { .. } => {
                    let Some(waiting) = self.waiting.remove(&key) else { continue };
                    self.deadlines.remove(&(waiting.deadline, key));
                    // Take the bytes peeked at (no complete request among
                    // them) for the session; later ones are not its.
                    let taken = take(&waiting.conn, &mut self.buf[..peeked]);
                    let arrived = waiting.began.unwrap_or(waiting.conn.at);
                    let expired = Expired::new(listener, waiting.conn, &self.buf[..taken], arrived);
                    self.expired.insert(key, expired);
                    self.answer(key, false);
                }
            }
        }
    }

    /// Runs the session answering `key` at its deadline (`timed_out`: a
    /// deadline of its own passed since) until it waits or closes.
    fn answer(&mut self, key: u64, timed_out: bool) {
        let Some(expired) = self.expired.get_mut(&key) else { return };
        if timed_out {
            expired.timeout();
        }
        let next = expired.run(&mut self.buf);
        if let Some(old) = expired.deadline.take() {
            self.deadlines.remove(&(old, key));
        }
        let (deadline, flags) = match next {
            Next::Read(deadline) => (deadline, EventFlags::IN | EventFlags::RDHUP | EventFlags::ET),
            Next::Write(deadline) => (deadline, EventFlags::OUT | EventFlags::ET),
            Next::Done => {
                if let Some(expired) = self.expired.remove(&key) {
                    let _ = epoll::delete(&self.epoll, &expired.conn.stream);
                    self.closed += 1;
                }
                return;
            }
        };
        expired.deadline = Some(deadline);
        self.deadlines.insert((deadline, key));
        if let Err(e) = epoll::modify(&self.epoll, &expired.conn.stream, EventData::new_u64(key), flags) {
            tracing::warn!("{}: cannot watch it while it is answered: {e}", expired.conn.peer);
        }
    }

    /// Closes every connection held (the drain began: none of them has a
    /// request a worker could answer); returns how many.
    pub(crate) fn close_all(&mut self) -> usize {
        let n = self.len();
        // Dropping the sockets takes them out of the epoll set too.
        self.forget_in_child();
        self.closed += n;
        n
    }

    /// In a forked child: closes its copies of the connections held, which
    /// the parent keeps watching.
    pub(crate) fn forget_in_child(&mut self) {
        self.waiting.clear();
        self.expired.clear();
        self.deadlines.clear();
    }

    /// Takes `key` out of the gate and its epoll set (a prefork worker
    /// will hold the socket too, so closing ours would not).
    fn remove(&mut self, key: u64) -> Option<Waiting> {
        let waiting = self.waiting.remove(&key)?;
        self.deadlines.remove(&(waiting.deadline, key));
        if let Err(e) = epoll::delete(&self.epoll, &waiting.conn.stream) {
            tracing::warn!("{}: cannot stop watching it: {e}", waiting.conn.peer);
        }
        Some(waiting)
    }

    fn close(&mut self, conn: &Accepted, why: &str) {
        tracing::debug!("{}: {why}; closed", conn.peer);
        self.closed += 1;
    }

    /// The timer fired: consume its count (it is one-shot, so unset).
    fn timer_fired(&mut self) {
        let mut count = [0u8; 8];
        // Nothing to read means it was re-armed since: nothing to reset.
        let _ = rustix::io::read(&self.timer, &mut count);
        self.armed = None;
    }

    /// Sets the timer for the earliest deadline, unless it is set for
    /// one no later: a timer that fires before the earliest deadline only
    /// wakes the gate once for nothing, and leaving it saves a syscall
    /// each time a connection leaves the gate.
    fn arm(&mut self) {
        let Some(first) = self.deadlines.first().map(|&(deadline, _)| deadline) else { return };
        if self.armed.is_some_and(|armed| armed <= first) {
            return;
        }
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        // A zero value would disarm it: a passed deadline fires in 1 ns.
        let value = timespec(first.saturating_duration_since(Instant::now()).max(Duration::from_nanos(1)));
        let spec = Itimerspec { it_interval: zero, it_value: value };
        match timerfd_settime(&self.timer, TimerfdTimerFlags::empty(), &spec) {
            Ok(_) => self.armed = Some(first),
            Err(e) => tracing::error!("cannot set the first-request timer: {e}; deadlines wait for the next event"),
        }
    }
}

/// Readable when [`Gate::take_ready`] has something to do.
impl AsFd for Gate {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

/// `at + timeout`, or far in the future when that cannot be represented.
fn later(at: Instant, timeout: Duration) -> Instant {
    at.checked_add(timeout).unwrap_or_else(|| at + Duration::from_secs(100 * 365 * 24 * 3600))
}

fn timespec(d: Duration) -> Timespec {
    Timespec { tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX), tv_nsec: i64::from(d.subsec_nanos()) }
}

#[cfg(test)]
mod tests;
