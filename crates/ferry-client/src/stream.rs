//! Downloads to a stream: standard output (`ferry get ADDR PATH -`), a
//! FIFO, a terminal, a character device. The bytes are written in order
//! as they arrive: no `.part`, no rename, no resume (a stream cannot be
//! rewound). Into a pipe they are spliced straight from the socket;
//! anything else gets them through a buffer.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ferry_proto::files::escape::escape_text;
use rustix::fs::{FileType, OFlags, fstat};

use crate::get::{GetOptions, GetOutcome};
use crate::part::local_error;
use crate::receive::{CopySink, PipeSink};
use crate::{Client, Progress, Result};

impl Client {
    /// Downloads `remote` and writes it to `out` (named `name` in
    /// messages), from its first byte to its last, in order.
    ///
    /// With [`GetOptions::verify`] the bytes are hashed on their way and
    /// compared with the server's `sum` at the end; a mismatch can only be
    /// reported then, after the bytes were written. [`GetOptions::restart`]
    /// means nothing here: there is never anything to resume.
    pub fn get_to(
        &mut self,
        remote: &[u8],
        out: BorrowedFd<'_>,
        name: &Path,
        options: GetOptions,
        progress: &mut dyn Progress,
    ) -> Result<GetOutcome> {
        let remote_text = escape_text(remote);
        let is_pipe = fstat(out).map_err(|e| local_error("inspect", name, e.into()))?.st_mode;
        let is_pipe = FileType::from_raw_mode(is_pipe) == FileType::Fifo;
        let head = self.request_get(remote, 0, None)?;
        progress.start(head.size, 0);
        let mut sha256 = None;
        let received = if is_pipe && !options.verify {
            self.receive(head.len, &mut PipeSink::new(out), progress)
        } else {
            let mut sink = CopySink::new(out, options.verify);
            let received = self.receive(head.len, &mut sink, progress);
            sha256 = sink.sha256();
            received
        };
        received.map_err(|f| self.failure(f, &remote_text, name, false, head.len))?;
        self.conn.end();
        progress.finish();
        let sha256 = match sha256 {
            Some(local_sum) => Some(self.compare_sum(remote, &remote_text, name, local_sum)?),
            None => None,
        };
        tracing::debug!(remote = %remote_text, to = %name.display(), size = head.size, "download complete");
        Ok(GetOutcome { local: name.to_path_buf(), size: head.size, resumed_from: 0, sha256, version: head.version })
    }

    /// [`Client::get_to`] a FIFO or character device found at `path`.
    /// Opening a FIFO waits for a reader, as any writer's open does.
    pub(crate) fn get_to_path(
        &mut self,
        remote: &[u8],
        path: &Path,
        options: GetOptions,
        progress: &mut dyn Progress,
    ) -> Result<GetOutcome> {
        let out = OpenOptions::new()
            .write(true)
            .custom_flags(OFlags::NOCTTY.bits() as i32)
            .open(path)
            .map_err(|e| local_error("open", path, e))?;
        self.get_to(remote, out.as_fd(), path, options, progress)
    }
}
