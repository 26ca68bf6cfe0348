//! Zero-copy transfers: file -> socket with `sendfile`, socket -> file with
//! `splice` through a pipe. Each function makes one syscall and returns how
//! many bytes moved, so both blocking and non-blocking drivers can loop
//! over them in their own way (`WouldBlock` means "wait for readiness").

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::pipe::{PipeFlags, SpliceFlags, pipe_with, splice};

/// Sends up to `len` bytes of `file` starting at `*offset` to `socket`,
/// advancing `*offset`. Returns 0 only at end of file.
pub fn sendfile(socket: impl AsFd, file: impl AsFd, offset: &mut u64, len: usize) -> io::Result<usize> {
    loop {
        match rustix::fs::sendfile(socket.as_fd(), file.as_fd(), Some(offset), len) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Capacity asked for each splice pipe.
const PIPE_SIZE: usize = 1 << 20;

/// A pipe used as the kernel-side bounce buffer for `splice`ing from a
/// socket into a file without copying through user space.
pub struct SplicePipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes sitting in the pipe, spliced in but not yet out.
    buffered: usize,
}

impl SplicePipe {
    /// Creates a close-on-exec pipe.
    pub fn new() -> io::Result<SplicePipe> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC)?;
        // A bigger pipe moves more per splice pair (the default is 64 KiB).
        // Unprivileged processes may be capped by /proc/sys/fs/pipe-max-size;
        // the default size still works, so a refusal is not an error.
        let _ = rustix::pipe::fcntl_setpipe_size(&write, PIPE_SIZE);
        Ok(SplicePipe { read, write, buffered: 0 })
    }

    /// Moves up to `len` bytes from `socket` into `file` at `*offset`
    /// (advancing it). Returns the bytes written to the file; `Ok(0)` with
    /// `len > 0` means the peer closed. `WouldBlock` from a non-blocking
    /// socket is passed through.
    pub fn socket_to_file(
        &mut self,
        socket: impl AsFd,
        file: impl AsFd,
        offset: &mut u64,
        len: usize,
    ) -> io::Result<usize> {
        if self.buffered == 0 {
            let n = retry(|| splice(socket.as_fd(), None, self.write.as_fd(), None, len, SpliceFlags::MOVE))?;
            if n == 0 {
                return Ok(0);
            }
            self.buffered = n;
        }
        let mut written = 0;
        while self.buffered > 0 {
            let n = retry(|| {
                splice(self.read.as_fd(), None, file.as_fd(), Some(offset), self.buffered, SpliceFlags::MOVE)
            })?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "splice into file wrote nothing"));
            }
            self.buffered -= n;
            written += n;
        }
        Ok(written)
    }
}

fn retry(mut f: impl FnMut() -> rustix::io::Result<usize>) -> io::Result<usize> {
    loop {
        match f() {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
