//! One thread's io_uring: creating it (with a clear error when the kernel
//! refuses), submitting entries, and the `user_data` every entry carries.
//!
//! `user_data` is a [`Token`]: the operation's kind, and for connection
//! operations the connection's slab index and generation (like
//! `ferry-reactor`'s generational tokens), so a completion that arrives
//! after its connection was closed and its slot reused is recognised as
//! stale and ignored.

use std::io;

use io_uring::{IoUring, squeue};

/// Submission queue entries per ring; the completion queue is 8 times
/// larger (and the kernel keeps overflowing completions on its side:
/// `IORING_FEAT_NODROP`).
const ENTRIES: u32 = 1024;

/// The kind of an operation, in the top byte of its `user_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Op {
    /// A connection's multishot receive into the provided buffers.
    Recv = 1,
    /// A connection's send of plain bytes.
    Send = 2,
    /// A file range spliced into the connection's pipe.
    FileIn = 3,
    /// The connection's pipe spliced into its socket.
    FileOut = 4,
    /// A cancellation request (its own completion carries nothing).
    Cancel = 5,
    /// A listener's multishot accept (`index`: the listener).
    Accept = 6,
    /// The read of the thread's mailbox eventfd.
    Mailbox = 7,
    /// The periodic deadline sweep (a multishot timeout).
    Sweep = 8,
    /// The control ring's read of the signalfd.
    Signal = 9,
    /// The control ring's poll of the shutdown eventfd.
    ShutdownFlag = 10,
    /// The control ring's read of the "no connection left" eventfd.
    Idle = 11,
    /// The control ring's drain deadline.
    DrainTimeout = 12,
    /// Out of descriptors: a listener's accept into the ring's own file
    /// table (`index`: the listener), linked to [`Op::ShedClose`].
    Shed = 13,
    /// The close of what [`Op::Shed`] accepted.
    ShedClose = 14,
    /// Upload payload spliced from the socket into the connection's pipe.
    UpIn = 15,
    /// The pipe spliced into the upload's file.
    UpOut = 16,
}

impl Op {
    fn from_u8(v: u8) -> Option<Op> {
        use Op::*;
        [
            Recv,
            Send,
            FileIn,
            FileOut,
            Cancel,
            Accept,
            Mailbox,
            Sweep,
            Signal,
            ShutdownFlag,
            Idle,
            DrainTimeout,
            Shed,
            ShedClose,
            UpIn,
            UpOut,
        ]
        .into_iter()
        .find(|op| *op as u8 == v)
    }
}

/// What an entry's `user_data` says: which operation, for which slot of
/// which generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) op: Op,
    /// The connection's generation (24 bits), 0 for ring operations.
    pub(super) generation: u32,
    /// The connection's slab index, or the listener's index.
    pub(super) index: u32,
}

const GENERATION_BITS: u32 = 24;

impl Token {
    /// A ring-level operation (no connection).
    pub(super) fn ring(op: Op, index: u32) -> Token {
        Token { op, generation: 0, index }
    }

    /// Packs the token into `user_data`.
    pub(super) fn encode(self) -> u64 {
        let generation = u64::from(self.generation & ((1 << GENERATION_BITS) - 1));
        (u64::from(self.op as u8) << 56) | (generation << 32) | u64::from(self.index)
    }

    /// Unpacks `user_data`; `None` for a value no token made.
    pub(super) fn decode(user_data: u64) -> Option<Token> {
        let op = Op::from_u8((user_data >> 56) as u8)?;
        let generation = ((user_data >> 32) as u32) & ((1 << GENERATION_BITS) - 1);
        Some(Token { op, generation, index: user_data as u32 })
    }

    /// The generation after `generation`, wrapping within its bits.
    pub(super) fn next_generation(generation: u32) -> u32 {
        (generation + 1) & ((1 << GENERATION_BITS) - 1)
    }
}

/// Creates a ring for one thread: single issuer with deferred task work
/// (completions run only when the thread asks for them, no interrupts of
/// the thread), falling back to a plain ring on kernels without those
/// flags. The error of a refused `io_uring_setup` (old kernel,
/// `kernel.io_uring_disabled`, seccomp) is passed on for the caller to
/// explain.
pub(super) fn new_ring() -> io::Result<IoUring> {
    let tuned = IoUring::builder().setup_single_issuer().setup_defer_taskrun().setup_cqsize(ENTRIES * 8).build(ENTRIES);
    match tuned {
        Ok(ring) => Ok(ring),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
            IoUring::builder().setup_cqsize(ENTRIES * 8).build(ENTRIES)
        }
        Err(e) => Err(e),
    }
}

/// A ring and the count of its operations still owed a final completion.
pub(super) struct Ring {
    pub(super) ring: IoUring,
    /// Operations submitted whose last completion has not arrived: the
    /// ring (and the memory its operations use) may go only at 0.
    pub(super) in_flight: usize,
    /// Completions taken off a full completion queue while submitting
    /// (the kernel refuses to take submissions then), handed out by the
    /// next [`Ring::reap`].
    held: Vec<(u64, i32, u32)>,
}

impl Ring {
    pub(super) fn new(ring: IoUring) -> Ring {
        Ring { ring, in_flight: 0, held: Vec::new() }
    }

    /// Queues `entry` (tagged with `token`), submitting first if the
    /// submission queue is full.
    ///
    /// # Safety
    /// Every buffer, descriptor and pointer the entry names must stay
    /// valid until its last completion arrives.
    pub(super) unsafe fn push(&mut self, entry: squeue::Entry, token: Token) {
        let entry = entry.user_data(token.encode());
        loop {
            // SAFETY: the caller keeps what the entry points to alive until
            // it completes.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                self.in_flight += 1;
                return;
            }
            if let Err(e) = self.ring.submit() {
                // EBUSY: completions must be reaped first (thousands of
                // cancellations at once); keep them for the next reap.
                tracing::debug!("io_uring submit while the queue is full: {e}");
                let mut held = std::mem::take(&mut self.held);
                self.take_completions(&mut held);
                self.held = held;
            }
        }
    }

    /// Queues a cancellation of every operation on the slot tagged with
    /// `user_data` (`Token::encode`).
    pub(super) fn cancel(&mut self, user_data: u64) {
        let entry = io_uring::opcode::AsyncCancel::new(user_data).build();
        // SAFETY: a cancellation names no memory.
        unsafe { self.push(entry, Token::ring(Op::Cancel, 0)) };
    }

    /// Submits what is queued and waits for at least one completion.
    /// An interrupted wait is not an error.
    pub(super) fn submit_and_wait(&mut self) -> io::Result<()> {
        match self.ring.submit_and_wait(1) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(code) if code == libc_eintr() || code == libc_ebusy()) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Submits what is queued, if anything, without asking for events.
    pub(super) fn submit_queued(&mut self) -> io::Result<()> {
        if self.ring.submission().is_empty() {
            return Ok(());
        }
        match self.ring.submit() {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(code) if code == libc_eintr() || code == libc_ebusy()) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Submits what is queued and runs the completions that are ready,
    /// without waiting (deferred task work runs only in an enter that asks
    /// for events).
    pub(super) fn submit_and_peek(&mut self) -> io::Result<()> {
        let len = self.ring.submission().len() as u32;
        let getevents = io_uring::EnterFlags::GETEVENTS.bits();
        // SAFETY: no argument pointer is passed (no signal mask, no
        // extended argument), and nothing is waited for.
        match unsafe { self.ring.submitter().enter::<u64>(len, 0, getevents, None) } {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(code) if code == libc_eintr() || code == libc_ebusy()) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Completions were taken off the queue while submitting and wait for
    /// [`Ring::reap`]: do not sleep before handing them out.
    pub(super) fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Moves every available completion into `out` as (`user_data`,
    /// result, flags), counting finished operations.
    pub(super) fn reap(&mut self, out: &mut Vec<(u64, i32, u32)>) {
        out.clear();
        out.append(&mut self.held);
        self.take_completions(out);
    }

    /// Appends the available completions to `out`, counting finished
    /// operations.
    fn take_completions(&mut self, out: &mut Vec<(u64, i32, u32)>) {
        for cqe in self.ring.completion() {
            let flags = cqe.flags();
            if !io_uring::cqueue::more(flags) {
                self.in_flight = self.in_flight.saturating_sub(1);
            }
            out.push((cqe.user_data(), cqe.result(), flags));
        }
    }
}

fn libc_eintr() -> i32 {
    rustix::io::Errno::INTR.raw_os_error()
}

fn libc_ebusy() -> i32 {
    rustix::io::Errno::BUSY.raw_os_error()
}

/// An `io::Error` from a negative completion result.
pub(super) fn cqe_error(result: i32) -> io::Error {
    io::Error::from_raw_os_error(-result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_generations_wrap() {
        let t = Token { op: Op::FileOut, generation: 0xab_cdef, index: 0xdead_beef };
        assert_eq!(Token::decode(t.encode()), Some(t));
        assert_eq!(Token::decode(0), None, "no token encodes to 0");
        assert_eq!(Token::next_generation((1 << GENERATION_BITS) - 1), 0);
        let ring = Token::ring(Op::Accept, 3);
        assert_eq!(Token::decode(ring.encode()), Some(ring));
    }
}
