//! The control ring on the calling thread: it hears SIGINT/SIGTERM and
//! SIGHUP (a read of the signalfd on the ring; SIGHUP runs the reload
//! hooks, `crate::reload`) and [`Shutdown::signal`] (a poll of its eventfd), tells every ring thread to drain, and ends the drain when
//! no connection is left (a read of the idle eventfd), when the drain
//! timeout passes (a timeout operation) or when a second stop signal
//! comes; the caller then tells the threads to quit, cutting what is left.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::Duration;

use ferry_reactor::sys::signals::SignalFd;
use io_uring::{opcode, types};
use nix::sys::signal::Signal;

use super::ring::{Op, Ring, Token, new_ring};
use super::shared::{Mailbox, Msg, Shared};
use crate::{ServerError, Shutdown};

/// How the control ring ended.
pub(super) struct Stopped {
    /// The signal that began the shutdown, if one did.
    pub(super) signal: Option<Signal>,
    /// Connections still open when the drain was cut.
    pub(super) cut: usize,
}

/// Buffers the kernel writes into, boxed so they stay put.
struct Buffers {
    /// One `signalfd_siginfo` (its first field is the signal number).
    siginfo: [u8; 128],
    idle: [u8; 8],
    drain: types::Timespec,
}

/// The control ring, created before the ring threads start (they may use
/// up every descriptor as soon as they accept).
pub(super) fn new() -> Result<Ring, ServerError> {
    Ok(Ring::new(new_ring().map_err(ServerError::setup("set up the control io_uring"))?))
}

/// Runs the control ring until the drain is over (see the module docs).
pub(super) fn run(
    mut ring: Ring,
    shared: &Arc<Shared>,
    mailboxes: &[Arc<Mailbox>],
    shutdown: &Shutdown,
    signals: Option<SignalFd>,
    drain_timeout: Duration,
) -> Result<Stopped, ServerError> {
    let mut bufs = Box::new(Buffers {
        siginfo: [0; 128],
        idle: [0; 8],
        drain: types::Timespec::new().sec(drain_timeout.as_secs()).nsec(drain_timeout.subsec_nanos()),
    });
    if let Some(signals) = &signals {
        arm_signal_read(&mut ring, signals, &mut bufs);
    }
    let poll =
        opcode::PollAdd::new(types::Fd(shutdown.as_fd().as_raw_fd()), rustix::event::PollFlags::IN.bits().into())
            .build();
    // SAFETY: names no memory; the eventfd outlives this function.
    unsafe { ring.push(poll, Token::ring(Op::ShutdownFlag, 0)) };
    let mut stopped = Stopped { signal: None, cut: 0 };
    let mut started = false;
    let mut cqes = Vec::new();
    let result = 'outer: loop {
        if let Err(e) = ring.submit_and_wait() {
            break Err(ServerError::setup("wait on the control io_uring")(e));
        }
        ring.reap(&mut cqes);
        for &(user_data, result, _) in &cqes {
            let Some(token) = Token::decode(user_data) else { continue };
            let stop = match token.op {
                Op::Signal if result > 0 => {
                    let signo =
                        i32::from_ne_bytes([bufs.siginfo[0], bufs.siginfo[1], bufs.siginfo[2], bufs.siginfo[3]]);
                    if let Some(signals) = &signals {
                        arm_signal_read(&mut ring, signals, &mut bufs);
                    }
                    match Signal::try_from(signo) {
                        Ok(signal @ (Signal::SIGINT | Signal::SIGTERM)) => Some(Some(signal)),
                        Ok(signal) => {
                            crate::reload::handle(signal);
                            None
                        }
                        Err(_) => None,
                    }
                }
                Op::Signal => {
                    tracing::error!("cannot read the signalfd: {}", super::ring::cqe_error(result));
                    None
                }
                Op::ShutdownFlag => Some(None),
                Op::Idle if shared.live() == 0 => break 'outer Ok(()),
                Op::Idle => {
                    arm_idle_read(&mut ring, shared, &mut bufs);
                    None
                }
                Op::DrainTimeout => {
                    let live = shared.live();
                    if live > 0 {
                        tracing::warn!(
                            "drain timeout of {}s passed; cutting {live} connection(s) still in flight",
                            drain_timeout.as_secs_f64()
                        );
                    }
                    stopped.cut = live;
                    break 'outer Ok(());
                }
                _ => None,
            };
            let Some(signal) = stop else { continue };
            if started {
                if let Some(signal) = signal {
                    let live = shared.live();
                    tracing::warn!("received {signal} again; cutting the {live} connection(s) still in flight now");
                    stopped.cut = live;
                    break 'outer Ok(());
                }
                continue;
            }
            started = true;
            crate::listen::log_stop(signal);
            stopped.signal = signal;
            // Raised as the rings stop accepting, as every model does, so
            // what serves beside them (the datagram echo) stops now too.
            shutdown.signal();
            // Before any ring closes a connection, so the last close wakes us.
            shared.begin_drain();
            for mailbox in mailboxes {
                mailbox.post(Msg::Drain);
            }
            if shared.live() == 0 {
                break 'outer Ok(());
            }
            arm_idle_read(&mut ring, shared, &mut bufs);
            let timeout = opcode::Timeout::new(&bufs.drain).build();
            // SAFETY: the timespec is boxed and outlives the ring's
            // operations (they are cancelled and reaped below).
            unsafe { ring.push(timeout, Token::ring(Op::DrainTimeout, 0)) };
        }
    };
    // Nothing the kernel may still write into may go before the ring's
    // operations are over.
    let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any()).build();
    // SAFETY: names no memory.
    unsafe { ring.push(cancel, Token::ring(Op::Cancel, 0)) };
    while ring.in_flight > 0 {
        if ring.submit_and_wait().is_err() {
            break;
        }
        ring.reap(&mut cqes);
    }
    drop(ring);
    drop(bufs);
    result.map(|()| stopped)
}

fn arm_signal_read(ring: &mut Ring, signals: &SignalFd, bufs: &mut Buffers) {
    let entry = opcode::Read::new(types::Fd(signals.as_raw_fd()), bufs.siginfo.as_mut_ptr(), 128).build();
    // SAFETY: the buffer is boxed and outlives the ring's operations; the
    // signalfd outlives the ring too.
    unsafe { ring.push(entry, Token::ring(Op::Signal, 0)) };
}

fn arm_idle_read(ring: &mut Ring, shared: &Shared, bufs: &mut Buffers) {
    let entry = opcode::Read::new(types::Fd(shared.idle.as_fd().as_raw_fd()), bufs.idle.as_mut_ptr(), 8).build();
    // SAFETY: as above; the eventfd lives in `shared`.
    unsafe { ring.push(entry, Token::ring(Op::Idle, 0)) };
}
