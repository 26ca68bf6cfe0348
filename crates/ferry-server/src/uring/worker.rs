//! One ring thread: its own listening sockets (`SO_REUSEPORT`, one per
//! listener and thread, each with a multishot accept), its connections,
//! its provided-buffer pool, a mailbox read on the ring and a multishot
//! timeout that sweeps deadlines. It submits and reaps until told to quit
//! and every operation it started has completed.
//!
//! Out of descriptors, a listener sheds what its socket queues (`shed`).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use ferry_proto::Now;
use ferry_proto::conn::{Conn, ConnConfig};
use ferry_proto::http::FileCache;
use ferry_reactor::IdleYield;
use io_uring::{cqueue, opcode, types};

use super::bufs::BufRing;
use super::conn::{Ctx, Live};
use super::ring::{Op, Ring, Token};
use super::shared::{Mailbox, Msg, Shared};
use super::slab::Slab;
use crate::Service;

mod shed;

use self::shed::Accepting;

/// One listener as a ring thread holds it.
pub(super) struct RingListener {
    /// Closed at the drain.
    pub(super) socket: Option<ferry_reactor::Listener>,
    pub(super) service: Arc<Service>,
    pub(super) config: Arc<ConnConfig>,
    accepting: Accepting,
}

impl RingListener {
    pub(super) fn new(socket: ferry_reactor::Listener, service: Arc<Service>, config: Arc<ConnConfig>) -> RingListener {
        RingListener { socket: Some(socket), service, config, accepting: Accepting::Idle }
    }
}

/// A ring thread's state. Field order matters: the ring is dropped before
/// the buffer pool it writes into.
pub(super) struct Worker {
    ring: Ring,
    bufs: BufRing,
    conns: Slab,
    listeners: Vec<RingListener>,
    mailbox: Arc<Mailbox>,
    shared: Arc<Shared>,
    file_cache: FileCache,
    /// The sweep's period, read by the kernel.
    sweep_every: Box<types::Timespec>,
    /// The sweep is one multishot timeout (false: re-armed each time).
    sweep_multishot: bool,
    /// Where the mailbox eventfd's counter is read to.
    mailbox_buf: Box<[u8; 8]>,
    draining: bool,
    quitting: bool,
    /// The time of the batch of completions being handled.
    now: Now,
}

impl Worker {
    /// A ring thread's state; fails if the ring, its buffer pool or its
    /// file table (a slot per listener to shed into) cannot be set up.
    pub(super) fn new(
        listeners: Vec<RingListener>,
        mailbox: Arc<Mailbox>,
        shared: Arc<Shared>,
        sweep_every: Duration,
    ) -> std::io::Result<Worker> {
        let ring = super::ring::new_ring()?;
        let bufs = BufRing::new(&ring)?;
        // Takes no process descriptor: made now or when out of them alike.
        ring.submitter().register_files_sparse(listeners.len().max(1) as u32)?;
        let sweep_every = Box::new(types::Timespec::new().sec(sweep_every.as_secs()).nsec(sweep_every.subsec_nanos()));
        Ok(Worker {
            ring: Ring::new(ring),
            bufs,
            conns: Slab::default(),
            listeners,
            mailbox,
            shared,
            file_cache: FileCache::new(),
            sweep_every,
            sweep_multishot: true,
            mailbox_buf: Box::new([0; 8]),
            draining: false,
            quitting: false,
            now: Now::read(),
        })
    }

    /// Serves until told to quit; returns once every operation completed.
    pub(super) fn run(mut self) -> std::io::Result<()> {
        for i in 0..self.listeners.len() {
            self.arm_accept(i);
        }
        self.arm_mailbox();
        self.arm_sweep();
        let mut cqes = Vec::new();
        let mut idle_yield = IdleYield::new();
        while !(self.quitting && self.ring.in_flight == 0) {
            if !cqes.is_empty() {
                // What the batch queued (answers) goes out now; sends that
                // complete at once come back before anything waits.
                self.ring.submit_queued()?;
                self.ring.reap(&mut cqes);
                if cqes.is_empty() && idle_yield.should_try() {
                    // Busy to idle: yield the CPU once (the peers, on the
                    // same cores, may be about to send more) and look again
                    // before sleeping in the kernel, as the event loops do.
                    // Only new input counts as found: the batch's own send
                    // completions were taken above.
                    rustix::thread::sched_yield();
                    self.ring.submit_and_peek()?;
                    self.ring.reap(&mut cqes);
                    idle_yield.record(!cqes.is_empty());
                }
            }
            if cqes.is_empty() {
                if !self.ring.has_held() {
                    self.ring.submit_and_wait()?;
                }
                self.ring.reap(&mut cqes);
            }
            self.now = Now::read();
            for &(user_data, result, flags) in &cqes {
                let Some(token) = Token::decode(user_data) else { continue };
                self.complete(token, result, flags);
            }
        }
        Ok(())
    }

    fn complete(&mut self, token: Token, result: i32, flags: u32) {
        match token.op {
            Op::Recv | Op::Send | Op::FileIn | Op::FileOut | Op::UpIn | Op::UpOut => self.on_conn(token, result, flags),
            Op::Accept => self.on_accept(token.index as usize, result, flags),
            Op::Shed => self.on_shed(token.index as usize, result),
            Op::ShedClose => self.on_shed_closed(token.index as usize),
            Op::Mailbox => {
                if !self.quitting {
                    self.arm_mailbox();
                }
                for msg in self.mailbox.take() {
                    self.on_msg(msg);
                }
            }
            // A cancellation that met the multishot timeout between two
            // firings (re-arming) missed it: ask again until it ends.
            Op::Sweep if self.quitting && cqueue::more(flags) => self.ring.cancel(token.encode()),
            Op::Sweep => {
                if result == -rustix::io::Errno::INVAL.raw_os_error() && self.sweep_multishot {
                    // A kernel before 6.4: no multishot timeouts; re-armed
                    // one-shot after every firing instead.
                    self.sweep_multishot = false;
                } else if !self.quitting {
                    self.sweep();
                }
                if !cqueue::more(flags) && !self.quitting {
                    self.arm_sweep();
                }
            }
            Op::Cancel | Op::Signal | Op::ShutdownFlag | Op::Idle | Op::DrainTimeout => {}
        }
    }

    fn ctx(&mut self) -> (Ctx<'_>, &mut Slab, &mut BufRing) {
        let ctx = Ctx { ring: &mut self.ring, shared: &self.shared, mailbox: &self.mailbox, now: self.now };
        (ctx, &mut self.conns, &mut self.bufs)
    }

    fn on_conn(&mut self, token: Token, result: i32, flags: u32) {
        let (mut ctx, conns, bufs) = self.ctx();
        let Some(live) = conns.get_mut(token) else {
            // Cannot happen (a slot outlives its operations), but a buffer
            // must never be lost.
            if let Some(bid) = cqueue::buffer_select(flags) {
                bufs.recycle(bid);
            }
            return;
        };
        match token.op {
            Op::Recv => live.on_recv(&mut ctx, token, bufs, result, flags),
            Op::UpIn | Op::UpOut => live.on_upload(&mut ctx, token, result),
            _ => live.on_output(&mut ctx, token, result),
        }
        self.reap_if_finished(token);
    }

    /// Frees the slot of a finished connection (closing its socket); a
    /// descriptor is free again, so accepting resumes if it had stopped
    /// (a shed waiting for the next connection is cancelled first).
    fn reap_if_finished(&mut self, token: Token) {
        if self.conns.get_mut(token).is_some_and(|live| live.finished()) {
            drop(self.conns.remove(token));
            self.shared.closed();
            if !self.draining {
                for i in 0..self.listeners.len() {
                    self.stop_shedding(i);
                    self.arm_accept(i);
                }
            }
        }
    }

    fn on_accept(&mut self, index: usize, result: i32, flags: u32) {
        let Some(listener) = self.listeners.get_mut(index) else { return };
        if !cqueue::more(flags) {
            listener.accepting = Accepting::Idle;
        } else if self.draining {
            // The cancellation missed the accept (it was re-arming): the
            // listener stays open until it takes.
            self.ring.cancel(Token::ring(Op::Accept, index as u32).encode());
        }
        if result >= 0 {
            // SAFETY: a successful accept's result is a new descriptor
            // that nothing else owns.
            let socket = unsafe { OwnedFd::from_raw_fd(result) };
            self.serve(index, socket);
        } else if result != -rustix::io::Errno::CANCELED.raw_os_error() && !self.accept_failed(index, result) {
            // Resumed by the shed or the next sweep, not at once: the
            // failure would repeat and spin the thread.
            return;
        }
        if !self.draining {
            self.arm_accept(index);
        }
    }

    /// Accepting failed: out of descriptors, shed what waits ([`Self::shed`]);
    /// anything else is logged. Returns whether to accept again at once;
    /// otherwise the shed, the next sweep or the next connection to close
    /// resumes accepting. (An io_uring accept takes its descriptor before
    /// it looks for a connection, so out of descriptors it fails at once
    /// even with none pending: re-armed at once, it would spin.)
    fn accept_failed(&mut self, index: usize, result: i32) -> bool {
        use rustix::io::Errno;
        let errno = Errno::from_raw_os_error(-result);
        if matches!(errno, Errno::CONNABORTED | Errno::INTR) {
            return true;
        }
        if matches!(errno, Errno::MFILE | Errno::NFILE) {
            self.shed(index);
        } else {
            tracing::warn!("cannot accept: {}", super::ring::cqe_error(result));
        }
        false
    }

    fn arm_accept(&mut self, index: usize) {
        let Some(listener) = self.listeners.get_mut(index) else { return };
        let Some(socket) = listener.socket.as_ref() else { return };
        if listener.accepting != Accepting::Idle {
            return;
        }
        listener.accepting = Accepting::Armed;
        let entry = opcode::AcceptMulti::new(types::Fd(socket.as_fd().as_raw_fd())).flags(libc_cloexec()).build();
        // SAFETY: names no memory; the listener stays open until the drain
        // cancels the accept (the kernel holds its own reference after).
        unsafe { self.ring.push(entry, Token::ring(Op::Accept, index as u32)) };
    }

    /// Starts serving an accepted socket.
    fn serve(&mut self, index: usize, socket: OwnedFd) {
        let now = self.now;
        let opened = now.mono;
        let peer = ferry_reactor::peer_of(&socket).ok();
        if let Some(crate::Peer::Tcp(_)) = peer {
            let _ = rustix::net::sockopt::set_tcp_nodelay(&socket, true);
        }
        tracing::debug!("{}: connection opened", peer.map_or_else(|| "unknown peer".to_string(), |p| p.to_string()));
        let listener = &self.listeners[index];
        let session = listener.service.new_session_in(&self.file_cache, peer);
        let mut core = Conn::new(session, Arc::clone(&listener.config), now);
        if self.draining {
            // Accepted just before the listener closed: nothing in flight.
            crate::upgrade::shut_down_conn(&mut core);
        }
        self.shared.opened();
        let token = self.conns.insert(Live::new(socket, peer, core, opened));
        let (mut ctx, conns, _) = self.ctx();
        if let Some(live) = conns.get_mut(token) {
            live.drive(&mut ctx, token, now);
        }
        self.reap_if_finished(token);
    }

    fn arm_mailbox(&mut self) {
        let entry =
            opcode::Read::new(types::Fd(self.mailbox.as_fd().as_raw_fd()), self.mailbox_buf.as_mut_ptr(), 8).build();
        // SAFETY: the 8-byte buffer is boxed in `self` and outlives the
        // ring; the eventfd lives as long as the mailbox (an `Arc` here).
        unsafe { self.ring.push(entry, Token::ring(Op::Mailbox, 0)) };
    }

    fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::JobDone { index, generation, answer } => {
                let token = Token { op: Op::Recv, generation, index };
                let (mut ctx, conns, _) = self.ctx();
                if let Some(live) = conns.get_mut(token) {
                    live.on_job_done(&mut ctx, token, answer);
                }
                self.reap_if_finished(token);
            }
            Msg::Drain => self.drain(),
            Msg::Quit => self.quit(),
        }
    }

    /// Stops accepting; every connection closes once idle.
    fn drain(&mut self) {
        if std::mem::replace(&mut self.draining, true) {
            return;
        }
        self.close_listeners();
        for token in self.conns.tokens() {
            let (mut ctx, conns, _) = self.ctx();
            if let Some(live) = conns.get_mut(token) {
                live.drain(&mut ctx, token);
            }
            self.reap_if_finished(token);
        }
    }

    /// Closes everything and lets the loop end once the kernel is done.
    fn quit(&mut self) {
        self.draining = true;
        self.quitting = true;
        self.close_listeners();
        self.ring.cancel(Token::ring(Op::Mailbox, 0).encode());
        self.ring.cancel(Token::ring(Op::Sweep, 0).encode());
        for token in self.conns.tokens() {
            let (mut ctx, conns, _) = self.ctx();
            if let Some(live) = conns.get_mut(token) {
                live.cut(&mut ctx, token);
            }
            self.reap_if_finished(token);
        }
    }

    fn close_listeners(&mut self) {
        for (i, listener) in self.listeners.iter_mut().enumerate() {
            match listener.accepting {
                Accepting::Armed => self.ring.cancel(Token::ring(Op::Accept, i as u32).encode()),
                Accepting::Shedding { .. } => self.ring.cancel(Token::ring(Op::Shed, i as u32).encode()),
                Accepting::Idle => {}
            }
            // The accept in flight holds its own reference until cancelled.
            listener.socket = None;
        }
    }

    /// Starts the sweep's timeout: multishot where the kernel has it.
    fn arm_sweep(&mut self) {
        let flags = if self.sweep_multishot { types::TimeoutFlags::MULTISHOT } else { types::TimeoutFlags::empty() };
        let sweep = opcode::Timeout::new(&*self.sweep_every).flags(flags).build();
        // SAFETY: the timespec is boxed in `self`, alive until the ring is.
        unsafe { self.ring.push(sweep, Token::ring(Op::Sweep, 0)) };
    }

    /// The periodic sweep: deadlines, and accepting again after a failure.
    fn sweep(&mut self) {
        let now = self.now;
        for token in self.conns.tokens() {
            let (mut ctx, conns, _) = self.ctx();
            if let Some(live) = conns.get_mut(token) {
                live.check_deadline(&mut ctx, token, now);
            }
            self.reap_if_finished(token);
        }
        if !self.draining {
            for i in 0..self.listeners.len() {
                self.arm_accept(i);
                self.accept_missed(i);
            }
        }
    }

    /// Takes the connections an armed accept was not woken for. A multishot
    /// accept waits exclusively: a wake-up taken by another process's accept
    /// that is being cancelled at that moment (the old process of an
    /// upgrade, which shares the socket) is lost, and the connection would
    /// wait for the next one to arrive. One non-blocking accept per sweep
    /// bounds that wait by the sweep interval.
    fn accept_missed(&mut self, index: usize) {
        for _ in 0..64 {
            let Some(listener) = self.listeners.get(index) else { return };
            if listener.accepting != Accepting::Armed {
                return;
            }
            let Some(socket) = listener.socket.as_ref() else { return };
            match socket.accept() {
                Ok(Some((fd, _))) => self.serve(index, fd),
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!("cannot accept at the sweep: {e}");
                    return;
                }
            }
        }
    }
}

fn libc_cloexec() -> i32 {
    rustix::net::SocketFlags::CLOEXEC.bits() as i32
}
