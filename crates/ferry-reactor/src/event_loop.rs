//! The event loop: one per thread, owning a poller, a registry of handlers
//! keyed by [`Token`], a waker, a task queue and timers.
//!
//! One iteration ([`EventLoop::run_once`]) is: wait for readiness (bounded by
//! the next timer) -> dispatch each event to its handler by token -> fire due
//! timers -> run tasks posted from other threads -> run tasks queued locally.
//!
//! # Yield before sleeping
//! When an iteration that handled I/O is followed by a wait that would block,
//! the loop first yields its CPU once (`sched_yield`) and polls again without
//! blocking; it sleeps only if that finds nothing. While the machine has more
//! runnable threads than cores (several sub-loops, or clients on the same
//! host) the yield lets the threads that produce this loop's input run, and
//! their output is collected in the same wake-up instead of costing a sleep,
//! a wake-up and often a preemption each. It costs one `sched_yield` and one
//! non-blocking wait per busy-to-idle transition and nothing on an idle loop;
//! where the extra poll keeps finding nothing it backs off (`idle_yield.rs`).
//! Measured in docs/BENCHMARKS.md (Reactor); switch it off with
//! [`EventLoop::set_idle_yield`].
//!
//! # Threading
//! `EventLoop` is `!Send`: it is created on, and only ever touched by, the
//! thread that runs it, so loop-only state needs no locks. Other threads hold
//! a [`LoopHandle`] (`Clone + Send + Sync`) that can only *enqueue* closures
//! (and set the quit flag); the closures then run on the loop's thread with
//! `&mut EventLoop`. Interest changes requested elsewhere travel the same way.
//!
//! # Ownership
//! Handlers live in a slab owned by the loop. A [`Token`] is a slab index
//! plus a generation counter bumped whenever a slot is freed, so a token
//! kept after its handler was removed (by a timer, a handle on another
//! thread, or a later event of the same batch) matches nothing and is
//! ignored. No raw pointers, no fd-indexed arrays.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use crate::idle_yield::IdleYield;
use crate::poller::{Interest, PollEvent, Poller, PollerKind, Ready};
use crate::timer::{TimerCallback, TimerId, TimerQueue};
use crate::waker::Waker;

/// Names a registration in one loop: slab index + generation. `Copy`, cheap,
/// meaningful only together with the loop that issued it (a
/// [`ConnHandle`](crate::ConnHandle) pairs it with a [`LoopHandle`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token {
    index: u32,
    generation: u32,
}

impl Token {
    fn key(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }
    fn from_key(key: u64) -> Token {
        Token { index: key as u32, generation: (key >> 32) as u32 }
    }
    /// The slab index (for logs).
    pub fn index(self) -> usize {
        self.index as usize
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}#{})", self.index, self.generation)
    }
}

/// Key the waker is registered under; never a valid token (index u32::MAX).
const WAKER_KEY: u64 = u64::MAX;

/// Something that reacts to readiness of one registered fd.
///
/// Called on the loop's thread with the loop itself, so a handler may
/// register, deregister (itself included), arm timers or queue tasks. While
/// it runs it is taken out of the registry: [`EventLoop::with_handler`] on
/// its own token returns `None`.
pub trait Handler: Any {
    /// `ready` happened on the fd registered under `token`.
    fn ready(&mut self, lp: &mut EventLoop, token: Token, ready: Ready);
}

impl<F> Handler for F
where
    F: FnMut(&mut EventLoop, Token, Ready) + 'static,
{
    fn ready(&mut self, lp: &mut EventLoop, token: Token, ready: Ready) {
        self(lp, token, ready)
    }
}

/// A closure posted from any thread to run on the loop.
pub type Task = Box<dyn FnOnce(&mut EventLoop) + Send>;
type LocalTask = Box<dyn FnOnce(&mut EventLoop)>;

struct Queue {
    tasks: Vec<Task>,
    /// Set when the loop has stopped for good: later tasks are dropped at
    /// once (closing any fds they carry) instead of waiting forever.
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Mirrors "queue non-empty" so an idle iteration skips the lock.
    pending: AtomicBool,
    waker: Waker,
    quit: AtomicBool,
    thread: ThreadId,
    next_timer: AtomicU64,
    id: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Tasks never run under this lock, so a poisoned lock only means a
        // panic while pushing; the queue itself is still consistent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, task: Task) -> bool {
        let was_empty = {
            let mut q = self.lock();
            if q.closed {
                return false;
            }
            let was_empty = q.tasks.is_empty();
            q.tasks.push(task);
            self.pending.store(true, Ordering::Release);
            was_empty
        };
        // Only the empty -> non-empty transition needs a wake: a non-empty
        // queue already has one in flight that the loop has not consumed
        // (the loop drains the waker before it takes the queue). A push from
        // the loop's own thread needs none either: the loop is not asleep
        // (it is running this code), and it never blocks while `pending`.
        if was_empty
            && thread::current().id() != self.thread
            && let Err(e) = self.waker.wake()
        {
            tracing::error!(error = %e, "waking event loop failed");
        }
        true
    }

    fn alloc_timer(&self) -> TimerId {
        TimerId(self.next_timer.fetch_add(1, Ordering::Relaxed))
    }
}

static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);

/// A cloneable, `Send + Sync` reference to an [`EventLoop`] usable from any
/// thread: post closures, arm or cancel timers, ask it to quit.
///
/// Every operation only enqueues work and wakes the loop; the work runs on
/// the loop's thread, in the order it was posted by a given thread. Posting
/// to a loop that has exited drops the closure (and reports `false`).
#[derive(Clone)]
pub struct LoopHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LoopHandle({})", self.shared.id)
    }
}

impl PartialEq for LoopHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}
impl Eq for LoopHandle {}

impl LoopHandle {
    /// Runs `f` on the loop: queues it and wakes the loop. Code on the
    /// loop's thread holds `&mut EventLoop` and runs `f` at once with
    /// [`EventLoop::run_in_loop`]. A handle cannot do that even on the loop's
    /// thread, because whoever is running there already holds the loop's
    /// `&mut` (running `f` now would alias it); from that thread the closure
    /// is queued without a wake-up and runs before the loop next waits.
    /// Returns `false` if the loop has exited (then `f` is dropped).
    pub fn run_in_loop(&self, f: impl FnOnce(&mut EventLoop) + Send + 'static) -> bool {
        self.shared.push(Box::new(f))
    }

    /// Queues `f` to run on the loop after the current iteration's events.
    /// Same as [`run_in_loop`](Self::run_in_loop) for a handle.
    pub fn queue_in_loop(&self, f: impl FnOnce(&mut EventLoop) + Send + 'static) -> bool {
        self.shared.push(Box::new(f))
    }

    /// Arms a one-shot timer on the loop; the id can be cancelled from any
    /// thread with [`cancel_timer`](Self::cancel_timer).
    pub fn run_after(&self, delay: Duration, f: impl FnOnce(&mut EventLoop) + Send + 'static) -> TimerId {
        let id = self.shared.alloc_timer();
        let deadline = Instant::now() + delay;
        self.shared.push(Box::new(move |lp: &mut EventLoop| {
            lp.timers.insert(id, deadline, TimerCallback::Once(Box::new(f)));
        }));
        id
    }

    /// Arms a repeating timer on the loop (first run after `interval`).
    pub fn run_every(&self, interval: Duration, f: impl FnMut(&mut EventLoop) + Send + 'static) -> TimerId {
        let id = self.shared.alloc_timer();
        let deadline = Instant::now() + interval;
        self.shared.push(Box::new(move |lp: &mut EventLoop| {
            lp.timers.insert(id, deadline, TimerCallback::Every(Box::new(f), interval));
        }));
        id
    }

    /// Cancels a timer (queued like any task, so it takes effect after any
    /// earlier `run_after` from this thread).
    pub fn cancel_timer(&self, id: TimerId) {
        self.shared.push(Box::new(move |lp: &mut EventLoop| {
            lp.cancel_timer(id);
        }));
    }

    /// Asks the loop to return from [`EventLoop::run`] after the current
    /// iteration. Idempotent, callable from any thread.
    pub fn quit(&self) {
        self.shared.quit.store(true, Ordering::Release);
        if let Err(e) = self.shared.waker.wake() {
            tracing::error!(error = %e, "waking event loop failed");
        }
    }

    /// True if called on the thread that owns the loop.
    pub fn is_in_loop_thread(&self) -> bool {
        thread::current().id() == self.shared.thread
    }

    /// A process-unique number naming the loop (for logs and maps).
    pub fn id(&self) -> u64 {
        self.shared.id
    }
}

enum SlotState {
    Vacant,
    Occupied(Box<dyn Handler>),
    /// The handler is out, running; `removed` records a deregistration
    /// requested meanwhile, carried out when it returns.
    Busy {
        removed: bool,
    },
}

struct Slot {
    generation: u32,
    fd: RawFd,
    interest: Interest,
    state: SlotState,
}

/// The reactor: one per thread. See the module docs for the iteration order,
/// threading rules and ownership scheme. `!Send`.
pub struct EventLoop {
    poller: Box<dyn Poller>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    shared: Arc<Shared>,
    timers: TimerQueue,
    /// The repeating timer now running, and whether it cancelled itself.
    running_timer: Option<(TimerId, bool)>,
    local: VecDeque<LocalTask>,
    events: Vec<PollEvent>,
    now: Instant,
    quit: bool,
    iterations: u64,
    /// Readiness events handled by the previous iteration.
    last_handled: usize,
    idle_yield: IdleYield,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("id", &self.shared.id)
            .field("poller", &self.poller.kind())
            .field("handlers", &self.live)
            .field("timers", &self.timers.len())
            .finish()
    }
}

impl EventLoop {
    /// Creates a loop for the calling thread with a backend of `kind`.
    pub fn new(kind: PollerKind) -> io::Result<EventLoop> {
        EventLoop::with_poller(kind.create()?)
    }

    /// Creates a loop around a caller-supplied backend.
    pub fn with_poller(mut poller: Box<dyn Poller>) -> io::Result<EventLoop> {
        let waker = Waker::new()?;
        poller.register(waker.as_fd(), WAKER_KEY, Interest::READABLE)?;
        Ok(EventLoop {
            poller,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue { tasks: Vec::new(), closed: false }),
                pending: AtomicBool::new(false),
                waker,
                quit: AtomicBool::new(false),
                thread: thread::current().id(),
                next_timer: AtomicU64::new(1),
                id: NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed),
            }),
            timers: TimerQueue::default(),
            running_timer: None,
            local: VecDeque::new(),
            events: Vec::with_capacity(256),
            now: Instant::now(),
            quit: false,
            iterations: 0,
            last_handled: 0,
            idle_yield: IdleYield::new(),
            _not_send: std::marker::PhantomData,
        })
    }

    /// A `Send` handle for other threads.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle { shared: self.shared.clone() }
    }

    /// Which backend this loop uses.
    pub fn poller_kind(&self) -> PollerKind {
        self.poller.kind()
    }

    /// The time the current iteration's wait returned (cheap "now" for
    /// handlers; use `Instant::now()` where precision matters).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Number of completed iterations (lets tests prove a loop is idle, not
    /// spinning).
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// Whether a loop that just handled I/O yields its CPU once and polls
    /// again before it blocks (on by default; see the module docs).
    pub fn set_idle_yield(&mut self, on: bool) {
        self.idle_yield.set_enabled(on);
    }

    /// Number of registered handlers (the waker not included).
    pub fn handler_count(&self) -> usize {
        self.live
    }

    /// Number of armed timers.
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Registers `handler` for readiness of a fd it does not own.
    /// Prefer [`register_owned`](Self::register_owned), which is safe.
    ///
    /// # Safety
    /// `fd` must stay open, and keep naming the same file, until the token
    /// is deregistered or the loop is dropped: the loop keeps using the fd
    /// number (to change interest, to deregister) after this borrow ends.
    pub unsafe fn register(
        &mut self,
        fd: BorrowedFd<'_>,
        interest: Interest,
        handler: impl Handler,
    ) -> io::Result<Token> {
        // SAFETY: forwarded: the caller upholds the same contract.
        unsafe { self.register_boxed(fd, interest, Box::new(handler)) }
    }

    /// Registers a handler that owns its fd (`H: AsFd`): the preferred form,
    /// since the fd then lives exactly as long as the registration (the
    /// loop deregisters before it drops a handler). `as_fd` must keep
    /// returning that same fd while registered.
    pub fn register_owned<H: Handler + AsFd>(&mut self, interest: Interest, handler: H) -> io::Result<Token> {
        let index = self.alloc_slot()?;
        let token = self.token_at(index);
        if let Err(e) = self.poller.register(handler.as_fd(), token.key(), interest) {
            self.free.push(index);
            return Err(e);
        }
        let fd = handler.as_fd().as_raw_fd();
        self.fill_slot(index, fd, interest, Box::new(handler));
        Ok(token)
    }

    /// [`register`](Self::register) for an already boxed handler.
    ///
    /// # Safety
    /// As for [`register`](Self::register).
    pub unsafe fn register_boxed(
        &mut self,
        fd: BorrowedFd<'_>,
        interest: Interest,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        let index = self.alloc_slot()?;
        let token = self.token_at(index);
        if let Err(e) = self.poller.register(fd, token.key(), interest) {
            self.free.push(index);
            return Err(e);
        }
        self.fill_slot(index, fd.as_raw_fd(), interest, handler);
        Ok(token)
    }

    fn token_at(&self, index: u32) -> Token {
        Token { index, generation: self.slots[index as usize].generation }
    }

    fn fill_slot(&mut self, index: u32, fd: RawFd, interest: Interest, handler: Box<dyn Handler>) {
        let slot = &mut self.slots[index as usize];
        slot.fd = fd;
        slot.interest = interest;
        slot.state = SlotState::Occupied(handler);
        self.live += 1;
    }

    fn alloc_slot(&mut self) -> io::Result<u32> {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&i| i != u32::MAX)
                    .ok_or_else(|| io::Error::other("event loop registry full"))?;
                self.slots.push(Slot { generation: 0, fd: -1, interest: Interest::NONE, state: SlotState::Vacant });
                i
            }
        };
        Ok(index)
    }

    fn slot(&self, token: Token) -> Option<&Slot> {
        self.slots.get(token.index as usize).filter(|s| s.generation == token.generation)
    }

    /// True if `token` names a live registration.
    pub fn contains(&self, token: Token) -> bool {
        matches!(self.slot(token).map(|s| &s.state), Some(SlotState::Occupied(_) | SlotState::Busy { removed: false }))
    }

    /// Current interest of a live registration.
    pub fn interest(&self, token: Token) -> Option<Interest> {
        self.contains(token).then(|| self.slot(token).map(|s| s.interest)).flatten()
    }

    /// Changes what `token` is woken for (a no-op if unchanged). Works while
    /// the handler itself is running. A stale token is `NotFound`.
    pub fn set_interest(&mut self, token: Token, interest: Interest) -> io::Result<()> {
        if !self.contains(token) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let slot = &mut self.slots[token.index as usize];
        if slot.interest == interest {
            return Ok(());
        }
        // SAFETY: the slot is live, and every registration path guarantees its
        // fd stays open until deregistered (`register_owned`: the handler owns
        // it; `register`/`register_boxed`: the caller's unsafe contract).
        let fd = unsafe { BorrowedFd::borrow_raw(slot.fd) };
        self.poller.reregister(fd, token.key(), interest)?;
        slot.interest = interest;
        Ok(())
    }

    /// Removes a registration. Returns the handler if it was idle; if it is
    /// the one running now, it is dropped right after it returns (`None`).
    /// Stale tokens are ignored.
    pub fn deregister(&mut self, token: Token) -> Option<Box<dyn Handler>> {
        let idx = token.index as usize;
        let slot = self.slots.get_mut(idx)?;
        if slot.generation != token.generation {
            return None;
        }
        match mem::replace(&mut slot.state, SlotState::Vacant) {
            SlotState::Vacant => None,
            SlotState::Busy { removed: true } => {
                slot.state = SlotState::Busy { removed: true };
                None
            }
            state => {
                // SAFETY: the slot is live, so its fd is still open: either the
                // handler owning it is not dropped yet (`register_owned`) or the
                // caller of `register` promised it stays open until now.
                let fd = unsafe { BorrowedFd::borrow_raw(slot.fd) };
                if let Err(e) = self.poller.deregister(fd) {
                    tracing::warn!(error = %e, ?token, "poller deregister failed");
                }
                slot.fd = -1;
                self.live -= 1;
                match state {
                    SlotState::Occupied(h) => {
                        slot.generation = slot.generation.wrapping_add(1);
                        self.free.push(token.index);
                        Some(h)
                    }
                    _ => {
                        slot.state = SlotState::Busy { removed: true };
                        None
                    }
                }
            }
        }
    }

    fn take(&mut self, token: Token) -> Option<Box<dyn Handler>> {
        let slot = self.slots.get_mut(token.index as usize)?;
        if slot.generation != token.generation {
            return None;
        }
        match mem::replace(&mut slot.state, SlotState::Busy { removed: false }) {
            SlotState::Occupied(h) => Some(h),
            other => {
                slot.state = other;
                None
            }
        }
    }

    fn put_back(&mut self, token: Token, handler: Box<dyn Handler>) {
        let slot = &mut self.slots[token.index as usize];
        match slot.state {
            SlotState::Busy { removed: false } => slot.state = SlotState::Occupied(handler),
            _ => {
                slot.state = SlotState::Vacant;
                slot.generation = slot.generation.wrapping_add(1);
                self.free.push(token.index);
                // Dropped here, after it was deregistered: its fd closes now.
                drop(handler);
            }
        }
    }

    /// Runs `f` with the handler registered under `token`, if it is live, of
    /// type `H`, and not already running (re-entrant access yields `None`).
    pub fn with_handler<H: Handler, R>(
        &mut self,
        token: Token,
        f: impl FnOnce(&mut H, &mut EventLoop) -> R,
    ) -> Option<R> {
        let mut h = self.take(token)?;
        let any: &mut dyn Any = h.as_mut();
        let r = any.downcast_mut::<H>().map(|typed| f(typed, self));
        self.put_back(token, h);
        r
    }

    /// Tokens of the idle handlers of type `H`.
    pub fn tokens_of<H: Handler>(&self) -> Vec<Token> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.state {
                SlotState::Occupied(h) => {
                    let any: &dyn Any = h.as_ref();
                    any.is::<H>().then_some(Token { index: i as u32, generation: s.generation })
                }
                _ => None,
            })
            .collect()
    }

    /// Calls the handler registered under `key`; stale keys are ignored.
    fn dispatch(&mut self, key: u64, ready: Ready) {
        let token = Token::from_key(key);
        if let Some(mut h) = self.take(token) {
            h.ready(self, token, ready);
            self.put_back(token, h);
        }
    }

    /// Runs `f` now: holding `&mut EventLoop` proves we are on its thread.
    /// (The cross-thread form is [`LoopHandle::run_in_loop`].)
    pub fn run_in_loop<R>(&mut self, f: impl FnOnce(&mut EventLoop) -> R) -> R {
        f(self)
    }

    /// Queues `f` to run at the end of this iteration (after events, timers
    /// and remote tasks); tasks it queues run in the next iteration, so a
    /// task that re-queues itself cannot starve I/O.
    pub fn queue_in_loop(&mut self, f: impl FnOnce(&mut EventLoop) + 'static) {
        self.local.push_back(Box::new(f));
    }

    /// Arms a one-shot timer.
    pub fn run_after(&mut self, delay: Duration, f: impl FnOnce(&mut EventLoop) + 'static) -> TimerId {
        self.run_at(Instant::now() + delay, f)
    }

    /// Arms a one-shot timer for an instant.
    pub fn run_at(&mut self, deadline: Instant, f: impl FnOnce(&mut EventLoop) + 'static) -> TimerId {
        let id = self.shared.alloc_timer();
        self.timers.insert(id, deadline, TimerCallback::Once(Box::new(f)));
        id
    }

    /// Arms a repeating timer: first after `interval`, then every `interval`
    /// after each run (no catch-up bursts after a stall).
    pub fn run_every(&mut self, interval: Duration, f: impl FnMut(&mut EventLoop) + 'static) -> TimerId {
        let id = self.shared.alloc_timer();
        self.timers.insert(id, Instant::now() + interval, TimerCallback::Every(Box::new(f), interval));
        id
    }

    /// Cancels a timer; returns whether it was armed. A cancelled timer never
    /// runs again (a repeating timer may cancel itself from its callback).
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        if let Some((running, cancelled)) = &mut self.running_timer
            && *running == id
        {
            let was = !*cancelled;
            *cancelled = true;
            return was;
        }
        self.timers.cancel(id)
    }

    /// Makes [`run`](Self::run) return after this iteration.
    pub fn quit(&mut self) {
        self.quit = true;
    }

    /// True once `quit` was called here or through a handle.
    pub fn is_quitting(&self) -> bool {
        self.quit || self.shared.quit.load(Ordering::Acquire)
    }

    /// Runs iterations until [`quit`](Self::quit) (here or via a handle).
    /// On return, tasks still queued by other threads are dropped and later
    /// posts are refused, so nothing they own (fds) leaks.
    pub fn run(&mut self) -> io::Result<()> {
        let r = loop {
            if self.is_quitting() {
                break Ok(());
            }
            if let Err(e) = self.run_once(None) {
                break Err(e);
            }
        };
        let dropped = {
            let mut q = self.shared.lock();
            q.closed = true;
            mem::take(&mut q.tasks)
        };
        drop(dropped);
        r
    }

    /// One iteration: wait at most `timeout` (`None` = until something
    /// happens; shortened to the next timer), dispatch, fire timers, run
    /// tasks. Returns the number of readiness events handled.
    pub fn run_once(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let mut timeout = timeout;
        if !self.local.is_empty() || self.is_quitting() || self.shared.pending.load(Ordering::Acquire) {
            timeout = Some(Duration::ZERO);
        }
        if let Some(deadline) = self.timers.next_deadline() {
            let until = deadline.saturating_duration_since(Instant::now());
            timeout = Some(timeout.map_or(until, |t| t.min(until)));
        }
        let mut events = mem::take(&mut self.events);
        let polled = self.wait(&mut events, timeout);
        self.now = Instant::now();
        if let Err(e) = polled {
            self.events = events;
            return Err(e);
        }
        let mut handled = 0;
        for ev in &events {
            if ev.key == WAKER_KEY {
                self.shared.waker.drain()?;
            } else {
                handled += 1;
                self.dispatch(ev.key, ev.ready);
            }
        }
        self.events = events;
        self.last_handled = handled;
        self.run_timers();
        self.run_tasks();
        self.iterations += 1;
        Ok(handled)
    }

    /// The poller wait, with the yield-before-sleeping step (module docs).
    fn wait(&mut self, events: &mut Vec<PollEvent>, timeout: Option<Duration>) -> io::Result<()> {
        if self.last_handled > 0 && timeout != Some(Duration::ZERO) && self.idle_yield.should_try() {
            rustix::thread::sched_yield();
            self.poller.poll(events, Some(Duration::ZERO))?;
            self.idle_yield.record(!events.is_empty());
            if !events.is_empty() {
                return Ok(());
            }
        }
        self.poller.poll(events, timeout)
    }

    fn run_timers(&mut self) {
        let now = self.now;
        while let Some((id, _deadline, cb)) = self.timers.pop_due(now) {
            match cb {
                TimerCallback::Once(f) => f(self),
                TimerCallback::Every(mut f, interval) => {
                    self.running_timer = Some((id, false));
                    f(self);
                    let cancelled = self.running_timer.take().is_some_and(|(_, c)| c);
                    if !cancelled {
                        // Strictly after `now`, so a zero interval cannot
                        // make this loop spin within one iteration.
                        let next = (Instant::now() + interval).max(now + Duration::from_nanos(1));
                        self.timers.insert(id, next, TimerCallback::Every(f, interval));
                    }
                }
            }
        }
    }

    fn run_tasks(&mut self) {
        // A push sets `pending` under the lock after adding its task, and
        // its wake comes after that; so a task pushed after this load is
        // seen in the next iteration, which the wake guarantees.
        if self.shared.pending.load(Ordering::Acquire) {
            let remote = {
                let mut q = self.shared.lock();
                self.shared.pending.store(false, Ordering::Relaxed);
                mem::take(&mut q.tasks)
            };
            for task in remote {
                task(self);
            }
        }
        let local = mem::take(&mut self.local);
        for task in local {
            task(self);
        }
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        // Refuse further posts and drop queued tasks now, not when the last
        // handle goes away, so fds they carry close with the loop.
        let dropped = {
            let mut q = self.shared.lock();
            q.closed = true;
            mem::take(&mut q.tasks)
        };
        drop(dropped);
        // Deregister every handler before dropping it (its fd closes then).
        for i in 0..self.slots.len() {
            let token = Token { index: i as u32, generation: self.slots[i].generation };
            drop(self.deregister(token));
        }
    }
}
