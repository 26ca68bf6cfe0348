//! The prefork model (the process pool): the parent forks N workers, each
//! with its own `socketpair(AF_UNIX, SOCK_STREAM)`, and watches the
//! listeners, the worker sockets and its signalfd with epoll. An accepted
//! connection waits in the parent's gate (`crate::gate`) until its first
//! request is complete, so no worker waits on a slow sender; then it goes
//! to a FREE worker as a descriptor (SCM_RIGHTS) with the
//! client's address and the listener's index as the payload; the parent
//! closes its copy and marks the worker BUSY until it reports "done". With
//! every worker busy, accepted connections wait in a bounded queue; when
//! that is full the listeners and the gate leave the epoll set and the
//! kernel's backlog holds clients (as it does while the gate is full).
//!
//! A worker that dies is noticed twice, by EOF on its socket and by
//! SIGCHLD; it is reaped and a new worker takes its slot. Only the
//! connection it was serving is lost. A worker that dies young (within
//! a second of its start) is replaced after a delay that doubles with each
//! such death in that slot, from 100 ms up to 10 s, so a worker that cannot
//! start (a bad root, no fds) does not make the parent fork in a tight loop.
//!
//! Shutdown: stop accepting, close the connections still sending their
//! first request and the queued ones nobody started,
//! send each worker an exit message, let busy ones finish (they see the
//! shutdown eventfd they inherited, so idle keep-alive connections close),
//! kill what outstays the drain timeout, reap all.
//!
//! SIGHUP: the parent runs the reload hooks, then replaces its workers
//! with ones forked from the reloaded state: idle ones at once, busy ones
//! when they report done (`crate::reload`).

mod frame;
mod restart;
mod worker;

use std::collections::{HashSet, VecDeque};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_reactor::sys::fd_passing::{Received, recv_fd, send_fd};
use ferry_reactor::timeout_to_timespec;
use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid};
use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};

use self::frame::{DONE, ToWorker};
use self::restart::Restart;
use self::worker::Services;
use crate::blocking::went_stale;
use crate::children::{fork_process, run_child, shut_down};
use crate::gate::{Gate, WAITING_LIMIT};
use crate::listen::{Accepted, Base, accept_one};
use crate::net::{Peer, Stream};
use crate::{Report, ServerError};

const SHUTDOWN: u64 = 0;
const SIGNALS: u64 = 1;
const GATE: u64 = 2;
const LISTENER_BASE: u64 = 3;
/// Worker tokens start here and are never reused, so an event for a
/// replaced worker's old socket cannot be mistaken for its successor's.
const WORKER_BASE: u64 = 1 << 32;

/// One worker process as the parent sees it.
struct Worker {
    pid: Pid,
    /// The parent's end of the socketpair; `None` once it read EOF.
    socket: Option<UnixStream>,
    token: u64,
    /// Serving a connection: the client's address, for the log if it dies.
    busy: Option<Peer>,
    started: Instant,
    /// The reload count it was forked at; older ones are replaced.
    reloads: u64,
}

/// An accepted connection waiting for a free worker.
struct Pending {
    stream: Stream,
    peer: Peer,
    listener: u8,
    /// Its timeouts count from here, not from when a worker takes it.
    accepted: Instant,
}

impl Pending {
    fn new(listener: usize, conn: Accepted) -> Pending {
        // `run` refuses more than 255 listeners.
        Pending { stream: conn.stream, peer: conn.peer, listener: listener as u8, accepted: conn.at }
    }
}

struct Pool {
    base: Base,
    epoll: OwnedFd,
    slots: Vec<Option<Worker>>,
    restarts: Vec<Restart>,
    queue: VecDeque<Pending>,
    queue_capacity: usize,
    /// Connections waiting for their first request.
    gate: Gate,
    /// Whether the listeners are in the epoll set.
    accepting: bool,
    /// Whether the gate is in the epoll set.
    gating: bool,
    /// After an upgrade handed the listeners over: the stop signal, and
    /// when it came; the loop goes on (not accepting) until the gate and
    /// the queue are empty.
    stopping: Option<(Signal, Instant)>,
    next_token: u64,
    /// Connections accepted.
    accepted: u64,
    /// This process, so workers notice if it died before they were set up.
    me: rustix::process::Pid,
}

/// Runs the pool until shutdown.
pub(crate) fn run(
    base: Base,
    workers: usize,
    queue_capacity: usize,
    drain_timeout: Duration,
) -> Result<Report, ServerError> {
    if base.listeners.len() > usize::from(u8::MAX) {
        return Err(ServerError::Setup {
            what: "start the process pool",
            error: std::io::Error::other("more than 255 listeners"),
        });
    }
    let epoll = epoll::create(CreateFlags::CLOEXEC)
        .map_err(|e| ServerError::Setup { what: "create epoll", error: e.into() })?;
    let gate = Gate::new(&base.listeners, WAITING_LIMIT)
        .map_err(ServerError::setup("create the poller for connections waiting for their first request"))?;
    let mut pool = Pool {
        base,
        epoll,
        slots: (0..workers).map(|_| None).collect(),
        restarts: vec![Restart::default(); workers],
        queue: VecDeque::new(),
        queue_capacity,
        gate,
        accepting: false,
        gating: false,
        stopping: None,
        next_token: WORKER_BASE,
        accepted: 0,
        me: rustix::process::getpid(),
    };
    let started = pool.start();
    let stopped = match started {
        Ok(()) => {
            tracing::info!(
                "prefork: {workers} worker processes, queue of {queue_capacity}, drain timeout {}s",
                drain_timeout.as_secs_f64()
            );
            pool.serve()
        }
        Err(e) => Err(e),
    };
    let (signal, dropped_unserved, cut) = pool.shut_down(&stopped, drain_timeout);
    stopped.map(|_| Report { signal, accepted: pool.accepted, dropped_unserved, cut, left_behind: 0 })
}

impl Pool {
    /// Registers the fixed sources and forks every worker.
    fn start(&mut self) -> Result<(), ServerError> {
        let setup = |what| move |e: rustix::io::Errno| ServerError::Setup { what, error: e.into() };
        epoll::add(&self.epoll, &self.base.shutdown, EventData::new_u64(SHUTDOWN), EventFlags::IN)
            .map_err(setup("watch the shutdown eventfd"))?;
        if let Some(signals) = &self.base.signals {
            epoll::add(&self.epoll, signals, EventData::new_u64(SIGNALS), EventFlags::IN)
                .map_err(setup("watch the signalfd"))?;
        }
        epoll::add(&self.epoll, &self.gate, EventData::new_u64(GATE), EventFlags::IN)
            .map_err(setup("watch the connections waiting for their first request"))?;
        self.gating = true;
        for (i, listener) in self.base.listeners.iter().enumerate() {
            epoll::add(&self.epoll, &listener.socket, EventData::new_u64(LISTENER_BASE + i as u64), EventFlags::IN)
                .map_err(setup("watch a listener"))?;
        }
        self.accepting = true;
        for slot in 0..self.slots.len() {
            self.spawn(slot)?;
        }
        Ok(())
    }

    /// The event loop; returns the stopping signal (`None`: a request).
    fn serve(&mut self) -> Result<Option<Signal>, ServerError> {
        let mut events = Vec::with_capacity(64);
        loop {
            if let Some((signal, since)) = self.stopping
                && ((self.gate.len() == 0 && self.queue.is_empty()) || since.elapsed() > crate::upgrade::HANDOVER_GRACE)
            {
                return Ok(Some(signal));
            }
            events.clear();
            let mut wait = self.next_restart().map(|due| due.saturating_duration_since(Instant::now()));
            if self.stopping.is_some() {
                wait = Some(wait.map_or(crate::upgrade::HANDOVER_STEP, |w| w.min(crate::upgrade::HANDOVER_STEP)));
            }
            let timeout = timeout_to_timespec(wait);
            match epoll::wait(&self.epoll, rustix::buffer::spare_capacity(&mut events), timeout.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(ServerError::Setup { what: "wait on epoll", error: e.into() }),
            }
            self.restart_due();
            for event in &events {
                let token = event.data.u64();
                match token {
                    SHUTDOWN => return Ok(None),
                    SIGNALS => {
                        let reloads = crate::reload::count();
                        let stop = self.base.read_stop()?;
                        if crate::reload::count() != reloads {
                            self.renew_workers();
                        }
                        if let Some(signal) = stop {
                            if self.stopping.is_some() || !crate::upgrade::handed_over() {
                                return Ok(Some(signal));
                            }
                            // Serve what was accepted; accept no more.
                            self.stopping = Some((signal, Instant::now()));
                            self.update_interest();
                        }
                        self.reap_and_replace();
                    }
                    GATE => self.take_from_gate(),
                    t if t >= WORKER_BASE => self.on_worker_readable(t),
                    t if self.stopping.is_none() => self.accept_from((t - LISTENER_BASE) as usize),
                    _ => {}
                }
            }
            let workers = self.slots.iter().flatten();
            let busy = workers.clone().filter(|w| w.busy.is_some()).count();
            crate::observe::pool(busy, workers.count(), self.queue.len());
        }
    }

    /// Forks the worker of `slot`.
    fn spawn(&mut self, slot: usize) -> Result<(), ServerError> {
        let (parent_end, child_end) = UnixStream::pair().map_err(ServerError::setup("create a worker's socketpair"))?;
        match fork_process()? {
            ForkResult::Child => {
                drop(parent_end);
                let services: Services =
                    self.base.listeners.iter().map(|l| (Arc::clone(&l.service), Arc::clone(&l.conn))).collect();
                let shutdown = self.base.shutdown.clone();
                // Close the parent's descriptors: listeners, signalfd, the
                // other workers' sockets, queued connections. (The copy of
                // the epoll descriptor stays open, unused.)
                self.base.forget_in_child();
                self.slots.clear();
                self.queue.clear();
                self.gate.forget_in_child();
                run_child(|| worker::run(child_end, &services, &shutdown, self.me))
            }
            ForkResult::Parent { child } => {
                drop(child_end);
                let token = self.next_token;
                self.next_token += 1;
                epoll::add(&self.epoll, &parent_end, EventData::new_u64(token), EventFlags::IN)
                    .map_err(|e| ServerError::Setup { what: "watch a worker's socket", error: e.into() })?;
                tracing::debug!("worker {child} started in slot {slot}");
                self.slots[slot] = Some(Worker {
                    pid: child,
                    socket: Some(parent_end),
                    token,
                    busy: None,
                    started: Instant::now(),
                    reloads: crate::reload::count(),
                });
                Ok(())
            }
        }
    }

    /// Accepts what listener `index` has pending while a worker or a queue
    /// slot can take it and the gate has room for those whose first
    /// request is not there yet.
    fn accept_from(&mut self, index: usize) {
        while self.queue.len() < self.queue_capacity && !self.gate.is_full() {
            let Some(conn) = accept_one(&self.base.listeners[index]) else { break };
            self.accepted += 1;
            if let Some(conn) = self.gate.admit(&self.base.listeners, index, conn) {
                self.queue.push_back(Pending::new(index, conn));
                self.feed_workers();
            }
        }
        self.update_interest();
    }

    /// The gate is readable: queue the connections whose first request
    /// came, as many as the queue has room for.
    fn take_from_gate(&mut self) {
        let room = self.queue_capacity.saturating_sub(self.queue.len());
        for (index, conn) in self.gate.take_ready(&self.base.listeners, room) {
            self.queue.push_back(Pending::new(index, conn));
        }
        self.feed_workers();
    }

    /// Hands queued connections to free workers.
    fn feed_workers(&mut self) {
        while !self.queue.is_empty() {
            let Some(slot) =
                self.slots.iter().position(|w| w.as_ref().is_some_and(|w| w.socket.is_some() && w.busy.is_none()))
            else {
                break;
            };
            let Some(pending) = self.queue.pop_front() else { break };
            let pump = &self.base.listeners[usize::from(pending.listener)].pump;
            if went_stale(&pending.stream, pending.accepted, pump) {
                tracing::info!(
                    "{}: waited in the queue past its idle timeout without a word; closed unserved",
                    pending.peer
                );
                continue;
            }
            let Some(worker) = self.slots[slot].as_mut() else { break };
            let Some(socket) = worker.socket.as_ref() else { break };
            let queued_ms = u32::try_from(pending.accepted.elapsed().as_millis()).unwrap_or(u32::MAX);
            let message = ToWorker::Conn { listener: pending.listener, peer: pending.peer, queued_ms }.encode();
            match send_fd(socket, Some(pending.stream.as_fd()), &message) {
                // Our copy of the connection closes as `pending` drops.
                Ok(()) => worker.busy = Some(pending.peer),
                Err(e) => {
                    tracing::warn!("cannot pass a connection to worker {}: {e}", worker.pid);
                    self.lose_socket(slot);
                    self.queue.push_front(pending);
                }
            }
        }
        self.update_interest();
    }

    /// A worker's socket is readable: a "done" report, or EOF if it died.
    fn on_worker_readable(&mut self, token: u64) {
        let Some(slot) = self.slots.iter().position(|w| w.as_ref().is_some_and(|w| w.token == token)) else {
            return; // a replaced worker's stale event
        };
        let Some(socket) = self.slots[slot].as_ref().and_then(|w| w.socket.as_ref()) else { return };
        let mut report = [0u8; 1];
        match recv_fd(socket, &mut report) {
            Ok(Received::Frame(None)) if report[0] == DONE => {
                if let Some(worker) = self.slots[slot].as_mut() {
                    worker.busy = None;
                    if worker.reloads != crate::reload::count() {
                        self.retire(slot);
                    }
                }
                self.feed_workers();
            }
            Ok(_) | Err(_) => self.lose_socket(slot),
        }
    }

    /// The worker's socket is done for (EOF or an error): stop watching it.
    /// The worker itself is replaced once it is reaped.
    fn lose_socket(&mut self, slot: usize) {
        let Some(worker) = self.slots[slot].as_mut() else { return };
        if let Some(socket) = worker.socket.take() {
            let _ = epoll::delete(&self.epoll, &socket);
        }
        if let Some(peer) = worker.busy.take() {
            tracing::warn!("worker {} went away while serving {peer}; that connection is lost", worker.pid);
        }
    }

    /// Watches the gate while the queue has room, and the listeners while
    /// the gate has room too.
    fn update_interest(&mut self) {
        let room = self.queue.len() < self.queue_capacity;
        let accepting = room && !self.gate.is_full() && self.stopping.is_none();
        if self.accepting != accepting {
            let flags = if accepting { EventFlags::IN } else { EventFlags::empty() };
            for (i, listener) in self.base.listeners.iter().enumerate() {
                let data = EventData::new_u64(LISTENER_BASE + i as u64);
                if let Err(e) = epoll::modify(&self.epoll, &listener.socket, data, flags) {
                    tracing::error!("cannot change interest in {}: {e}", listener.addr);
                }
            }
            self.accepting = accepting;
        }
        if self.gating != room {
            let flags = if room { EventFlags::IN } else { EventFlags::empty() };
            if let Err(e) = epoll::modify(&self.epoll, &self.gate, EventData::new_u64(GATE), flags) {
                tracing::error!("cannot change interest in the connections waiting for their first request: {e}");
            }
            self.gating = room;
        }
    }

    /// The orderly exit (the process models' shared sequence, with the
    /// queue dropped and every worker told to exit before the shutdown
    /// flag is raised); returns (the stopping signal, queued connections
    /// closed unserved, workers killed at the drain timeout).
    fn shut_down(
        &mut self,
        stopped: &Result<Option<Signal>, ServerError>,
        drain_timeout: Duration,
    ) -> (Option<Signal>, usize, usize) {
        let mut live: HashSet<Pid> = self.slots.iter().flatten().map(|w| w.pid).collect();
        let mut dropped = 0;
        let (signal, cut) = shut_down(&mut self.base, stopped, &mut live, drain_timeout, || {
            let waiting = self.gate.close_all();
            if waiting > 0 {
                tracing::info!("closed {waiting} connection(s) still sending their first request");
            }
            dropped = self.queue.len();
            self.queue.clear();
            if dropped > 0 {
                tracing::info!("closed {dropped} queued connection(s) that no worker had started");
            }
            for worker in self.slots.iter().flatten() {
                if let Some(socket) = &worker.socket
                    && let Err(e) = send_fd(socket, None, &ToWorker::Exit.encode())
                {
                    tracing::debug!("cannot tell worker {} to exit: {e}", worker.pid);
                }
            }
        });
        self.slots.iter_mut().for_each(|w| *w = None);
        (signal, dropped + self.gate.closed(), cut)
    }
}
