//! The same suite against both backends: registration life cycle, readiness
//! kinds, the waker, timers.

mod util;

use std::cell::RefCell;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ferry_reactor::{EventLoop, Interest, PollEvent, PollerKind, Ready};
use util::Rng;

const SHORT: Option<Duration> = Some(Duration::from_millis(0));
const LONG: Option<Duration> = Some(Duration::from_secs(5));

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

fn ready_of(events: &[PollEvent], key: u64) -> Option<Ready> {
    events.iter().find(|e| e.key == key).map(|e| e.ready)
}

fn register_modify_deregister(kind: PollerKind) {
    let mut p = kind.create().unwrap();
    assert_eq!(p.kind(), kind);
    let (a, mut b) = pair();
    let mut ev = Vec::new();
    p.register(a.as_fd(), 7, Interest::READABLE).unwrap();
    p.poll(&mut ev, SHORT).unwrap();
    assert!(ev.is_empty(), "nothing to read yet: {ev:?}");
    b.write_all(b"x").unwrap();
    p.poll(&mut ev, LONG).unwrap();
    assert!(ready_of(&ev, 7).unwrap().is_readable());
    // Level-triggered: still readable until read.
    p.poll(&mut ev, SHORT).unwrap();
    assert!(ready_of(&ev, 7).unwrap().is_readable());
    // Modify to write-only, new key: writable, not readable.
    p.reregister(a.as_fd(), 8, Interest::WRITABLE).unwrap();
    p.poll(&mut ev, LONG).unwrap();
    let r = ready_of(&ev, 8).unwrap();
    assert!(r.is_writable() && !r.is_readable(), "{r:?}");
    assert!(ready_of(&ev, 7).is_none());
    // Interest NONE: quiet.
    p.reregister(a.as_fd(), 8, Interest::NONE).unwrap();
    p.poll(&mut ev, SHORT).unwrap();
    assert!(ev.is_empty(), "{ev:?}");
    // Deregistered: quiet even though readable and writable.
    p.reregister(a.as_fd(), 9, Interest::BOTH).unwrap();
    p.deregister(a.as_fd()).unwrap();
    p.poll(&mut ev, SHORT).unwrap();
    assert!(ev.is_empty(), "{ev:?}");
    assert!(p.deregister(a.as_fd()).is_err(), "double deregister must fail");
    // Many registrations, removal in the middle keeps the others right.
    let pairs: Vec<_> = (0..10).map(|_| pair()).collect();
    for (i, (x, _)) in pairs.iter().enumerate() {
        p.register(x.as_fd(), 100 + i as u64, Interest::READABLE).unwrap();
    }
    p.deregister(pairs[3].0.as_fd()).unwrap();
    for (_, y) in &pairs {
        (&*y).write_all(b"y").unwrap();
    }
    p.poll(&mut ev, LONG).unwrap();
    let mut keys: Vec<u64> = ev.iter().map(|e| e.key).collect();
    keys.sort();
    let want: Vec<u64> = (0..10).filter(|&i| i != 3).map(|i| 100 + i).collect();
    assert_eq!(keys, want);
}

fn hup_and_error(kind: PollerKind) {
    let mut p = kind.create().unwrap();
    let mut ev = Vec::new();
    // Peer closes: READ_CLOSED / HUP with read interest.
    let (a, b) = pair();
    p.register(a.as_fd(), 1, Interest::READABLE).unwrap();
    drop(b);
    p.poll(&mut ev, LONG).unwrap();
    let r = ready_of(&ev, 1).unwrap();
    // select reports a close as plain readability (the read returns 0).
    let closed = r.is_read_closed() || r.is_hup() || kind == PollerKind::Select;
    assert!(r.is_readable() && closed, "{r:?}");
    // HUP is reported even with no interest, except by select, which has
    // no hang-up set: with no interest it reports nothing at all.
    p.reregister(a.as_fd(), 1, Interest::NONE).unwrap();
    if kind == PollerKind::Select {
        p.poll(&mut ev, Some(Duration::from_millis(20))).unwrap();
        assert_eq!(ready_of(&ev, 1), None);
    } else {
        p.poll(&mut ev, LONG).unwrap();
        assert!(ready_of(&ev, 1).unwrap().is_hup());
    }
    p.deregister(a.as_fd()).unwrap();

    // Connection refused: ERROR on a non-blocking connect to a closed port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let s = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let _ = rustix::net::connect(&s, &port);
    p.register(s.as_fd(), 2, Interest::WRITABLE).unwrap();
    let start = Instant::now();
    loop {
        p.poll(&mut ev, LONG).unwrap();
        if let Some(r) = ready_of(&ev, 2) {
            if kind == PollerKind::Select {
                // No error set: the failed connect is writable, SO_ERROR says why.
                assert!(r.is_writable(), "{r:?}");
                assert!(rustix::net::sockopt::socket_error(&s).unwrap().is_err());
            } else {
                assert!(r.is_error(), "{r:?}");
            }
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5));
    }
    p.deregister(s.as_fd()).unwrap();
}

fn waker_from_other_thread(kind: PollerKind) {
    let mut lp = EventLoop::new(kind).unwrap();
    let h = lp.handle();
    assert!(h.is_in_loop_thread());
    let ran = Arc::new(AtomicBool::new(false));
    let ran2 = ran.clone();
    let t = thread::spawn(move || {
        assert!(!h.is_in_loop_thread());
        thread::sleep(Duration::from_millis(20));
        h.run_in_loop(move |_lp| ran2.store(true, Ordering::SeqCst));
    });
    let start = Instant::now();
    // One blocking iteration must be enough: the waker ends the wait.
    while !ran.load(Ordering::SeqCst) {
        lp.run_once(Some(Duration::from_secs(10))).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5), "waker did not wake the loop");
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    t.join().unwrap();

    // quit() from another thread ends run().
    let h = lp.handle();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(10));
        h.quit();
    });
    lp.run().unwrap();
    t.join().unwrap();
    // After the loop exited, posting is refused (and the closure dropped).
    assert!(!lp.handle().run_in_loop(|_| {}));
}

/// A handle used on the loop's own thread queues without waking the
/// eventfd; the loop must still run the task before it next sleeps, even
/// when posted from a task that runs after the queue was taken.
fn handle_post_from_loop_thread(kind: PollerKind) {
    let mut lp = EventLoop::new(kind).unwrap();
    let h = lp.handle();
    let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (r1, r2, h2) = (ran.clone(), ran.clone(), h.clone());
    assert!(h.run_in_loop(move |_| {
        r1.lock().unwrap().push("first");
        // Posted while the loop runs its tasks: the next wait must not block.
        h2.run_in_loop(move |_| r2.lock().unwrap().push("second"));
    }));
    let start = Instant::now();
    lp.run_once(Some(Duration::from_secs(10))).unwrap();
    lp.run_once(Some(Duration::from_secs(10))).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5), "the loop slept with a task queued");
    assert_eq!(*ran.lock().unwrap(), vec!["first", "second"]);
}

/// A handle's `run_in_loop` on the loop's own thread runs the closure as
/// soon as the running callback returns (before the next due timer);
/// `queue_in_loop` waits for the end of the iteration. From another thread
/// both only queue: nothing runs until the loop does.
fn handle_run_in_loop_runs_before_queued_work(kind: PollerKind) {
    type Log = Arc<std::sync::Mutex<Vec<&'static str>>>;
    let push = |log: &Log, what: &'static str| log.lock().unwrap().push(what);
    let mut lp = EventLoop::new(kind).unwrap();
    let h = lp.handle();
    let log: Log = Arc::default();
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let now = Instant::now();
    lp.run_at(now, move |_| {
        let (lq, lr) = (l1.clone(), l1.clone());
        assert!(h.queue_in_loop(move |_| push(&lq, "queued")));
        assert!(h.run_in_loop(move |_| push(&lr, "run")));
        push(&l1, "timer 1");
    });
    lp.run_at(now + Duration::from_nanos(1), move |_| push(&l2, "timer 2"));
    let remote = lp.handle();
    std::thread::spawn(move || assert!(remote.run_in_loop(move |_| push(&l3, "remote")))).join().unwrap();
    assert!(log.lock().unwrap().is_empty(), "ran before the loop did");
    lp.run_once(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(*log.lock().unwrap(), vec!["timer 1", "run", "timer 2", "remote", "queued"]);
}

/// After a busy iteration the loop yields and polls once without blocking
/// (idle yield); when that finds nothing it must still sleep until the next
/// event, not return empty-handed or spin.
fn busy_loop_still_sleeps(kind: PollerKind) {
    let mut lp = EventLoop::new(kind).unwrap();
    let (a, mut b) = pair();
    let a = Rc::new(a);
    let a2 = a.clone();
    // SAFETY: `a` outlives the registration, removed at the end.
    let token = unsafe {
        lp.register(a.as_fd(), Interest::READABLE, move |_: &mut EventLoop, _, _| {
            let mut buf = [0u8; 16];
            let _ = rustix::io::read(&*a2, &mut buf);
        })
    }
    .unwrap();
    b.write_all(b"x").unwrap();
    assert_eq!(lp.run_once(LONG).unwrap(), 1);
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        b.write_all(b"y").unwrap();
        b
    });
    let before = lp.iterations();
    assert_eq!(lp.run_once(LONG).unwrap(), 1, "woke without the event");
    assert_eq!(lp.iterations(), before + 1);
    drop(writer.join().unwrap());
    drop(lp.deregister(token));
}

fn loop_dispatch_and_self_deregister(kind: PollerKind) {
    let mut lp = EventLoop::new(kind).unwrap();
    let (a, mut b) = pair();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let seen2 = seen.clone();
    let a = Rc::new(a);
    let a2 = a.clone();
    // SAFETY: `a` (kept alive by the Rc in the handler and here) outlives
    // the registration, which the handler removes itself.
    let token = unsafe {
        lp.register(a.as_fd(), Interest::READABLE, move |lp: &mut EventLoop, t, r: Ready| {
            let mut buf = [0u8; 16];
            let n = rustix::io::read(&*a2, &mut buf).unwrap_or(0);
            seen2.borrow_mut().push((r.is_readable(), n));
            // Deregistering itself from inside its own callback is allowed.
            assert!(lp.deregister(t).is_none());
        })
    }
    .unwrap();
    assert!(lp.contains(token));
    b.write_all(b"hello").unwrap();
    lp.run_once(LONG).unwrap();
    assert_eq!(*seen.borrow(), vec![(true, 5)]);
    assert!(!lp.contains(token));
    assert_eq!(lp.handler_count(), 0);
    // A stale token is ignored everywhere.
    assert!(lp.set_interest(token, Interest::BOTH).is_err());
    assert!(lp.deregister(token).is_none());
    // The slot is reused with a new generation.
    // SAFETY: `a` lives until the end of this function, after the
    // deregistration below.
    let t2 = unsafe { lp.register(a.as_fd(), Interest::READABLE, |_: &mut EventLoop, _, _| {}) }.unwrap();
    assert_eq!(t2.index(), token.index());
    assert_ne!(t2, token);
    assert!(!lp.contains(token));
    drop(lp.deregister(t2));
}

fn ten_thousand_timers_in_order(kind: PollerKind) {
    let mut lp = EventLoop::new(kind).unwrap();
    let fired = Rc::new(RefCell::new(Vec::with_capacity(10_000)));
    let mut rng = Rng::new(42);
    let start = Instant::now();
    let mut cancelled = Vec::new();
    for i in 0..10_000u32 {
        let delay = Duration::from_millis(rng.range(0, 300) as u64);
        let f = fired.clone();
        let deadline = start + delay;
        let id = lp.run_at(deadline, move |_| f.borrow_mut().push((deadline, i)));
        if i % 3 == 0 {
            cancelled.push((id, i));
        }
    }
    for &(id, _) in &cancelled {
        assert!(lp.cancel_timer(id));
        assert!(!lp.cancel_timer(id), "second cancel reports nothing armed");
    }
    assert_eq!(lp.timer_count(), 10_000 - cancelled.len());
    while lp.timer_count() > 0 {
        lp.run_once(Some(Duration::from_secs(1))).unwrap();
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    let fired = fired.borrow();
    assert_eq!(fired.len(), 10_000 - cancelled.len());
    assert!(fired.windows(2).all(|w| w[0].0 <= w[1].0), "fired out of order");
    assert!(fired.iter().all(|&(_, i)| i % 3 != 0), "a cancelled timer fired");
    // No timer fired early.
    let now = Instant::now();
    assert!(fired.iter().all(|&(d, _)| d <= now));
}

fn repeating_timer_and_self_cancel(kind: PollerKind) {
    let mut lp = EventLoop::new(kind).unwrap();
    let count = Rc::new(RefCell::new(0));
    let c2 = count.clone();
    let me = Rc::new(RefCell::new(None));
    let me2 = me.clone();
    let id = lp.run_every(Duration::from_millis(2), move |lp| {
        *c2.borrow_mut() += 1;
        if *c2.borrow() == 5 {
            let id = me2.borrow().unwrap();
            assert!(lp.cancel_timer(id));
        }
    });
    *me.borrow_mut() = Some(id);
    let start = Instant::now();
    while lp.timer_count() > 0 {
        lp.run_once(Some(Duration::from_secs(1))).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
    }
    assert_eq!(*count.borrow(), 5);
    // Timers armed from another thread, one of them cancelled.
    let h = lp.handle();
    let hit = Arc::new(AtomicBool::new(false));
    let miss = Arc::new(AtomicBool::new(false));
    let (h2, m2) = (hit.clone(), miss.clone());
    thread::spawn(move || {
        let bad = h.run_after(Duration::from_millis(5), move |_| m2.store(true, Ordering::SeqCst));
        h.cancel_timer(bad);
        h.run_after(Duration::from_millis(20), move |_| h2.store(true, Ordering::SeqCst));
    })
    .join()
    .unwrap();
    while !hit.load(Ordering::SeqCst) {
        lp.run_once(Some(Duration::from_secs(1))).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
    }
    assert!(!miss.load(Ordering::SeqCst));
}

fn signals_as_events(kind: PollerKind) {
    use nix::sys::signal::Signal;
    // Blocked in this thread only, raised to this thread only: other test
    // threads are unaffected.
    let fd = ferry_reactor::sys::signals::SignalFd::block(&[Signal::SIGUSR1]).unwrap();
    let mut lp = EventLoop::new(kind).unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g2 = got.clone();
    let token = lp
        .watch_signals(fd, move |lp, sig| {
            g2.borrow_mut().push(sig);
            lp.quit();
        })
        .unwrap();
    nix::sys::signal::raise(Signal::SIGUSR1).unwrap();
    lp.run_once(LONG).unwrap();
    assert_eq!(*got.borrow(), vec![Signal::SIGUSR1]);
    drop(lp.deregister(token));
}

macro_rules! every_backend {
    ($($f:ident),*) => {
        mod epoll { $(#[test] fn $f() { super::$f(ferry_reactor::PollerKind::Epoll) })* }
        mod poll { $(#[test] fn $f() { super::$f(ferry_reactor::PollerKind::Poll) })* }
        mod select { $(#[test] fn $f() { super::$f(ferry_reactor::PollerKind::Select) })* }
    };
}

every_backend!(
    register_modify_deregister,
    hup_and_error,
    waker_from_other_thread,
    handle_post_from_loop_thread,
    handle_run_in_loop_runs_before_queued_work,
    busy_loop_still_sleeps,
    loop_dispatch_and_self_deregister,
    ten_thousand_timers_in_order,
    repeating_timer_and_self_cancel,
    signals_as_events
);

#[test]
fn poller_kind_parses() {
    assert_eq!("epoll".parse::<PollerKind>().unwrap(), PollerKind::Epoll);
    assert_eq!("POLL".parse::<PollerKind>().unwrap(), PollerKind::Poll);
    assert_eq!("select".parse::<PollerKind>().unwrap(), PollerKind::Select);
    assert!("kqueue".parse::<PollerKind>().is_err());
    assert_eq!(PollerKind::Poll.to_string(), "poll");
    assert_eq!(PollerKind::Select.to_string(), "select");
}

/// select's sets hold descriptors below FD_SETSIZE only: a larger one is
/// refused with an error that says so, and the set keeps working.
#[test]
fn select_refuses_descriptors_beyond_fd_setsize() {
    use std::os::fd::AsRawFd;
    let mut p = PollerKind::Select.create().unwrap();
    let (a, b) = pair();
    // A descriptor numbered past the limit (the fd limit here is 20000).
    let high = rustix::io::fcntl_dupfd_cloexec(&a, ferry_reactor::FD_SETSIZE as i32).unwrap();
    assert!(high.as_raw_fd() >= ferry_reactor::FD_SETSIZE as i32);
    let err = p.register(high.as_fd(), 7, Interest::READABLE).unwrap_err();
    assert!(err.to_string().contains("FD_SETSIZE (1024)"), "{err}");
    // The low one still works.
    p.register(a.as_fd(), 1, Interest::READABLE).unwrap();
    (&b).write_all(b"x").unwrap();
    let mut ev = Vec::new();
    p.poll(&mut ev, LONG).unwrap();
    assert!(ready_of(&ev, 1).unwrap().is_readable());
    assert_eq!(ready_of(&ev, 7), None);
    p.deregister(a.as_fd()).unwrap();
}
