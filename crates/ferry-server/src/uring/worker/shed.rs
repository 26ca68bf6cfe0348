//! Shedding when the process is out of descriptors: a listener accepts
//! what its socket queues into the ring's own registered file table (one
//! slot per listener) and closes it there. That takes no process
//! descriptor, so no ring can take a slot another frees to shed, as with
//! a reserve descriptor (`ReserveFd`), where another ring's accept could
//! win the freed slot and the reserve was lost until a connection closed;
//! and no ring has to pause another's accept.

use std::os::fd::{AsFd, AsRawFd};

use io_uring::{opcode, types};

use super::super::ring::{Op, Token, cqe_error};
use super::Worker;

/// What a listener has in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Accepting {
    /// Nothing: armed again at once, at the next close or at the next
    /// sweep.
    Idle,
    /// The multishot accept.
    Armed,
    /// Out of descriptors: an accept into the ring's file table and the
    /// close linked to it ([`Worker::shed`]). `resume`: accept again once
    /// the close completed (false when the shed itself failed: the next
    /// sweep tries again). `cancelled`: a connection closed, so a
    /// descriptor is free and the shed is being cancelled.
    Shedding { resume: bool, cancelled: bool },
}

impl Worker {
    /// Out of descriptors: accepts the next connection the listener's
    /// socket queues into the ring's file table (slot `index`), without a
    /// process descriptor, and closes it there (the client sees the
    /// connection closed instead of hanging in the backlog). Waits for a
    /// connection if none is queued; the multishot accept is armed again
    /// once the close completed, and fails at once again if descriptors
    /// are still out (one round per connection shed: no spinning).
    pub(super) fn shed(&mut self, index: usize) {
        let Some(listener) = self.listeners.get_mut(index) else { return };
        let Some(socket) = listener.socket.as_ref() else { return };
        if listener.accepting != Accepting::Idle {
            return;
        }
        let Ok(slot) = types::DestinationSlot::try_from_slot_target(index as u32) else { return };
        listener.accepting = Accepting::Shedding { resume: false, cancelled: false };
        let accept =
            opcode::Accept::new(types::Fd(socket.as_fd().as_raw_fd()), std::ptr::null_mut(), std::ptr::null_mut())
                .file_index(Some(slot))
                .build()
                .flags(io_uring::squeue::Flags::IO_LINK);
        let close = opcode::Close::new(types::Fixed(index as u32)).build();
        // SAFETY: no memory is named (no peer address asked for); the
        // listener stays open until the drain cancels the accept; the slot
        // is the ring's own.
        unsafe {
            self.ring.push(accept, Token::ring(Op::Shed, index as u32));
            self.ring.push(close, Token::ring(Op::ShedClose, index as u32));
        }
    }

    /// A descriptor came free: a shed waiting for the next connection is
    /// cancelled, so that connection is served (accepting resumes once
    /// the cancelled pair completed).
    pub(super) fn stop_shedding(&mut self, index: usize) {
        let Some(listener) = self.listeners.get_mut(index) else { return };
        if let Accepting::Shedding { cancelled: cancelled @ false, .. } = &mut listener.accepting {
            *cancelled = true;
            self.ring.cancel(Token::ring(Op::Shed, index as u32).encode());
        }
    }

    /// The shed's accept completed: one connection shed, or cancelled (a
    /// descriptor came free, or the drain), or failed (the system is out
    /// of files too: the next sweep tries again, not at once).
    pub(super) fn on_shed(&mut self, index: usize, result: i32) {
        let Some(listener) = self.listeners.get_mut(index) else { return };
        let cancelled = result == -rustix::io::Errno::CANCELED.raw_os_error();
        if let Accepting::Shedding { resume, .. } = &mut listener.accepting {
            *resume = result >= 0 || cancelled;
        }
        if result >= 0 {
            let total = self.shared.shed();
            if total.is_power_of_two() || total.is_multiple_of(1000) {
                tracing::warn!(total, "out of file descriptors: accepted and closed a connection");
            }
        } else if !cancelled {
            tracing::warn!("cannot shed a connection: {}", cqe_error(result));
        }
    }

    /// The shed's close completed (or was cancelled with its accept):
    /// accept again, which serves the next connection if a descriptor is
    /// free and sheds it otherwise.
    pub(super) fn on_shed_closed(&mut self, index: usize) {
        let Some(listener) = self.listeners.get_mut(index) else { return };
        let resume = matches!(listener.accepting, Accepting::Shedding { resume: true, .. });
        listener.accepting = Accepting::Idle;
        if resume && !self.draining {
            self.arm_accept(index);
        }
    }
}
