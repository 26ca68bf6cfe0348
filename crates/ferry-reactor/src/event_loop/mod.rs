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

mod handle;
mod registry;
mod token;

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::mem;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub use self::handle::LoopHandle;
use self::handle::{NEXT_LOOP_ID, Queue, Shared};
use self::registry::Slot;
pub use self::token::Token;
use self::token::WAKER_KEY;
use crate::idle_yield::IdleYield;
use crate::poller::{Interest, PollEvent, Poller, PollerKind, Ready};
use crate::timer::{TimerCallback, TimerId, TimerQueue};
use crate::waker::Waker;

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

type LocalTask = Box<dyn FnOnce(&mut EventLoop)>;

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
                queue: Mutex::new(Queue { tasks: Vec::new(), soon: Vec::new(), closed: false }),
                pending: AtomicBool::new(false),
                soon_pending: AtomicBool::new(false),
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
    /// Runs `f` now: holding `&mut EventLoop` proves we are on its thread.
    /// (A [`LoopHandle`] cannot: see [`LoopHandle::run_in_loop`].)
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
            (mem::take(&mut q.tasks), mem::take(&mut q.soon))
        };
        drop(dropped);
        r
    }

    /// One iteration: wait at most `timeout` (`None` = until something
    /// happens; shortened to the next timer), dispatch, fire timers, run
    /// tasks. Returns the number of readiness events handled.
    pub fn run_once(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let mut timeout = timeout;
        if !self.local.is_empty()
            || self.is_quitting()
            || self.shared.pending.load(Ordering::Acquire)
            || self.shared.soon_pending.load(Ordering::Relaxed)
        {
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
        self.run_soon();
        for ev in &events {
            if ev.key == WAKER_KEY {
                self.shared.waker.drain()?;
            } else {
                handled += 1;
                self.dispatch(ev.key, ev.ready);
                self.run_soon();
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
                TimerCallback::Once(f) => {
                    f(self);
                    self.run_soon();
                }
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
                    self.run_soon();
                }
            }
        }
    }

    fn run_tasks(&mut self) {
        // A push sets `pending` under the lock after adding its task, and
        // its wake comes after that; so a task pushed after this load is
        // seen in the next iteration, which the wake guarantees.
        for task in self.shared.take_posted(&self.shared.pending, |q| &mut q.tasks) {
            task(self);
            self.run_soon();
        }
        let local = mem::take(&mut self.local);
        for task in local {
            task(self);
            self.run_soon();
        }
    }

    /// Runs what [`LoopHandle::run_in_loop`] posted from this thread since
    /// the last call. Called whenever the loop regains control: after each
    /// handler, timer and task. What these tasks post the same way waits for
    /// the next call, so a task that re-posts itself cannot starve I/O.
    fn run_soon(&mut self) {
        for task in self.shared.take_posted(&self.shared.soon_pending, |q| &mut q.soon) {
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
            (mem::take(&mut q.tasks), mem::take(&mut q.soon))
        };
        drop(dropped);
        // Deregister every handler before dropping it (its fd closes then).
        for i in 0..self.slots.len() {
            let token = Token { index: i as u32, generation: self.slots[i].generation };
            drop(self.deregister(token));
        }
    }
}
