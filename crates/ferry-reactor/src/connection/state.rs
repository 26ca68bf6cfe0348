//! The loop-owned state of one connection and the enums that say where it is.

use std::any::Any;
use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::buffer::Buffer;
use crate::callbacks::Callbacks;
use crate::listener::PeerAddr;
use crate::server::LiveCount;

pub(super) enum Chunk {
    Bytes(Buffer),
    File { file: Box<dyn AsFd>, offset: u64, remaining: u64 },
}

/// Where a connection is in its life (muduo's `StateE`, with the steps
/// muduo keeps in other fields made explicit). Moves only forward:
/// Connecting -> Connected -> Disconnecting -> WriteShut -> Disconnected,
/// with Closing reachable from any state before Disconnected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum State {
    /// A non-blocking connect is in flight: only writability matters, and
    /// sends are queued. `shutdown_requested`: `shutdown()` was called
    /// meanwhile and applies once connected.
    Connecting { shutdown_requested: bool },
    /// Established: reads and writes flow.
    Connected,
    /// `shutdown()` asked: the write side closes once output drains.
    Disconnecting,
    /// Our write side is shut (`SHUT_WR` sent); closes when the peer's
    /// EOF has been read.
    WriteShut,
    /// To be closed when the current callback returns (`force_close`, or an
    /// I/O error), output discarded.
    Closing,
    /// Closed: `closed` (or `connect_failed`) ran and the slot is freed.
    Disconnected,
}

impl State {
    /// True while `send` and friends accept data.
    pub(super) fn accepts_output(self) -> bool {
        matches!(self, State::Connecting { shutdown_requested: false } | State::Connected)
    }
}

/// The read side, independent of [`State`] (the peer may half-close while
/// we keep sending).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Reading {
    /// Reading when readable.
    Active,
    /// `pause_reading()`: backpressure towards the peer.
    Paused,
    /// The peer's EOF was read; nothing more will come (final).
    Eof,
}

/// The write-complete notification: due now, posted as a loop task, or
/// both (a task is in flight when another send completes).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum WriteComplete {
    /// Nothing pending.
    Idle,
    /// A send completed: runs when the current callback returns.
    Due,
    /// A loop task will make it due (at most one task in flight).
    Posted,
    /// Due now, and a task is in flight too.
    PostedAndDue,
}

impl WriteComplete {
    pub(super) fn mark_due(&mut self) {
        *self = match *self {
            WriteComplete::Idle | WriteComplete::Due => WriteComplete::Due,
            WriteComplete::Posted | WriteComplete::PostedAndDue => WriteComplete::PostedAndDue,
        };
    }

    /// Clears "due", returning whether it was set.
    pub(super) fn take_due(&mut self) -> bool {
        let (due, rest) = match *self {
            WriteComplete::Idle => (false, WriteComplete::Idle),
            WriteComplete::Due => (true, WriteComplete::Idle),
            WriteComplete::Posted => (false, WriteComplete::Posted),
            WriteComplete::PostedAndDue => (true, WriteComplete::Posted),
        };
        *self = rest;
        due
    }

    pub(super) fn is_posted(self) -> bool {
        matches!(self, WriteComplete::Posted | WriteComplete::PostedAndDue)
    }
}

/// The loop-owned state of one connection (the registry's handler).
pub(crate) struct ConnState {
    pub(super) fd: OwnedFd,
    pub(super) peer: PeerAddr,
    pub(super) callbacks: Callbacks,
    pub(super) input: Buffer,
    pub(super) output: VecDeque<Chunk>,
    pub(super) spare: Option<Buffer>,
    pub(super) out_bytes: usize,
    /// Queued output (bytes and file ranges) the kernel has taken so far.
    pub(super) flushed: u64,
    pub(super) state: State,
    pub(super) reading: Reading,
    pub(super) write_complete: WriteComplete,
    pub(super) context: Option<Box<dyn Any>>,
    /// Counts this connection as open until the state is freed (held for
    /// its `Drop`).
    pub(super) _live: Option<LiveCount>,
}

impl ConnState {
    /// Closes when the current callback returns (unless already closed).
    pub(super) fn close_soon(&mut self) {
        if self.state != State::Disconnected {
            self.state = State::Closing;
        }
    }
}

impl AsFd for ConnState {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

pub(super) fn new_state(fd: OwnedFd, peer: PeerAddr, callbacks: Callbacks, live: Option<LiveCount>) -> ConnState {
    ConnState {
        fd,
        peer,
        callbacks,
        input: Buffer::new(),
        output: VecDeque::new(),
        spare: None,
        out_bytes: 0,
        flushed: 0,
        state: State::Connected,
        reading: Reading::Active,
        write_complete: WriteComplete::Idle,
        context: None,
        _live: live,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_complete_due_and_posted_are_independent() {
        let mut wc = WriteComplete::Idle;
        assert!(!wc.take_due());
        wc.mark_due();
        assert_eq!(wc, WriteComplete::Due);
        assert!(wc.take_due());
        assert_eq!(wc, WriteComplete::Idle);
        wc = WriteComplete::Posted;
        wc.mark_due();
        assert_eq!(wc, WriteComplete::PostedAndDue);
        assert!(wc.is_posted());
        assert!(wc.take_due());
        assert_eq!(wc, WriteComplete::Posted);
        assert!(!wc.take_due());
    }

    #[test]
    fn only_open_states_accept_output() {
        assert!(State::Connected.accepts_output());
        assert!(State::Connecting { shutdown_requested: false }.accepts_output());
        for s in [
            State::Connecting { shutdown_requested: true },
            State::Disconnecting,
            State::WriteShut,
            State::Closing,
            State::Disconnected,
        ] {
            assert!(!s.accepts_output(), "{s:?}");
        }
    }
}
