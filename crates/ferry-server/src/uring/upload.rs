//! Upload payload moved from the socket into the file without a copy
//! through user space: two splices, socket -> pipe -> file, the second
//! hard-linked to the first (`IOSQE_IO_HARDLINK`: it runs even when the
//! first moved less than asked, which a socket nearly always does, and
//! moves what the first put in the pipe; `SPLICE_F_NONBLOCK` makes it
//! return at once when the first moved nothing). What a short write to
//! the file leaves in the pipe goes out by itself next time.
//!
//! The connection core asks for this with `Action::Splice` once the
//! payload that arrived with the request is written; the bridge keeps the
//! multishot receive off meanwhile, so the socket's bytes reach the file
//! in order.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use io_uring::{opcode, squeue, types};

use super::output::Pipe;
use super::ring::{Op, cqe_error};

/// What one completion moved. The end of stream and errors are told only
/// once the pair completed: the core may close at once, and the session
/// (which holds the upload's lock) must go with the socket, not after the
/// peer saw the connection end.
#[derive(Debug, Default)]
pub(super) struct Spliced {
    /// Payload bytes that reached the file.
    pub(super) into_file: usize,
    /// The peer closed its side.
    pub(super) eof: bool,
    /// The upload cannot go on (the peer reset, the disk is full).
    pub(super) error: Option<io::Error>,
}

/// A connection's upload splices.
#[derive(Default)]
pub(super) struct Upload {
    /// Created for the first splice, kept for the next uploads.
    pipe: Option<Box<Pipe>>,
    /// The file the splices in flight write to: its descriptor stays open
    /// until they completed, whatever the core does with its own handle.
    file: Option<Arc<File>>,
    /// Operations in flight.
    busy: u8,
    /// The end of stream and the error seen by the pair in flight, told
    /// when it completed.
    ended: Spliced,
}

impl Upload {
    /// Operations in flight.
    pub(super) fn busy(&self) -> bool {
        self.busy > 0
    }

    /// The entries that move up to `max` bytes from `socket` into `file`
    /// at `offset` (tagged `UpIn` hard-linked to `UpOut`, or `UpOut` alone
    /// to empty the pipe first). Counts them as in flight: the caller
    /// must push every one.
    pub(super) fn next_ops(
        &mut self,
        socket: &OwnedFd,
        file: &Arc<File>,
        offset: u64,
        max: u64,
    ) -> io::Result<[Option<(Op, squeue::Entry)>; 2]> {
        let pipe = match &mut self.pipe {
            Some(pipe) => pipe,
            None => self.pipe.insert(Box::new(Pipe::new()?)),
        };
        let offset = i64::try_from(offset).map_err(|_| io::Error::other("file offset too large"))?;
        let out = |len: usize| {
            let len = u32::try_from(len).unwrap_or(u32::MAX);
            let nonblock = rustix::pipe::SpliceFlags::NONBLOCK.bits();
            opcode::Splice::new(types::Fd(pipe.read.as_raw_fd()), -1, types::Fd(file.as_raw_fd()), offset, len)
                .flags(nonblock)
                .build()
        };
        let ops = if pipe.fill > 0 {
            [Some((Op::UpOut, out(pipe.fill))), None]
        } else {
            let chunk = usize::try_from(max).unwrap_or(usize::MAX).min(pipe.capacity);
            let len = u32::try_from(chunk).unwrap_or(u32::MAX);
            let up_in =
                opcode::Splice::new(types::Fd(socket.as_raw_fd()), -1, types::Fd(pipe.write.as_raw_fd()), -1, len)
                    .build()
                    .flags(squeue::Flags::IO_HARDLINK);
            [Some((Op::UpIn, up_in)), Some((Op::UpOut, out(chunk)))]
        };
        self.file = Some(Arc::clone(file));
        self.busy = ops.iter().flatten().count() as u8;
        Ok(ops)
    }

    /// A completion of one of this upload's operations.
    pub(super) fn complete(&mut self, op: Op, result: i32) -> Spliced {
        self.busy = self.busy.saturating_sub(1);
        let mut moved = Spliced::default();
        let errno = |e: rustix::io::Errno| -e.raw_os_error();
        match (op, self.pipe.as_deref_mut()) {
            (Op::UpIn, Some(pipe)) if result > 0 => pipe.fill += result as usize,
            (Op::UpIn, _) if result == 0 => self.ended.eof = true,
            (Op::UpOut, Some(pipe)) if result > 0 => {
                pipe.fill = pipe.fill.saturating_sub(result as usize);
                moved.into_file = result as usize;
            }
            // Our own cancellation (closing), or an empty pipe after the
            // socket splice moved nothing.
            (_, _) if result == errno(rustix::io::Errno::CANCELED) => {}
            (Op::UpOut, _) if result == errno(rustix::io::Errno::AGAIN) => {}
            (_, _) if result < 0 => self.ended.error = Some(cqe_error(result)),
            (_, _) => {
                let e = io::Error::new(io::ErrorKind::WriteZero, "splice into the file wrote nothing");
                self.ended.error = Some(e);
            }
        }
        if self.busy == 0 {
            self.file = None;
            let ended = std::mem::take(&mut self.ended);
            if ended.error.is_some() {
                // What is left in the pipe belongs to no upload any more.
                self.pipe = None;
            }
            moved.eof = ended.eof;
            moved.error = ended.error;
        }
        moved
    }
}
