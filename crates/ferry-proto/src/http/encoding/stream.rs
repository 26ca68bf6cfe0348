//! A large file compressed as it is sent: `Transfer-Encoding: chunked`,
//! one job per [`PART`] of input, the next queued only once the previous
//! part has drained, so a connection holds one encoder and one part
//! whatever the file's size, and a slow reader costs no CPU ahead of it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use super::encoder::{Encoder, STEP};
use super::{Coding, Encoding, Level, MAX_STREAMS};
use crate::Outbox;
use crate::http::archive::answer::Step;
use crate::http::respond::Persist;

/// Input compressed by one job.
pub(crate) const PART: u64 = 256 * 1024;

/// One of the server's [`MAX_STREAMS`] places for a stream, given back
/// when the stream ends (or the connection does).
#[derive(Debug)]
pub(crate) struct Slot(Arc<Encoding>);

impl Slot {
    /// A place, if one is free.
    pub(crate) fn take(encoding: &Arc<Encoding>) -> Option<Slot> {
        let before = encoding.streams.fetch_add(1, Ordering::AcqRel);
        if before >= MAX_STREAMS {
            encoding.streams.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(Arc::clone(encoding)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where the compression stands, shared with the running job.
#[derive(Debug)]
struct Part {
    encoder: Option<Encoder>,
    file: File,
    at: u64,
    size: u64,
    /// The file could not be read to its size: cut the connection.
    failed: bool,
}

/// A compressed stream being sent.
#[derive(Debug)]
pub(crate) struct Stream {
    part: Arc<Mutex<Part>>,
    persist: Persist,
    _slot: Slot,
}

impl Stream {
    /// The stream of the first `size` bytes of `file`.
    pub(crate) fn new(
        file: File,
        size: u64,
        coding: Coding,
        level: Level,
        persist: Persist,
        slot: Slot,
    ) -> io::Result<Stream> {
        let part = Part { encoder: Some(Encoder::new(coding, level)?), file, at: 0, size, failed: false };
        Ok(Stream { part: Arc::new(Mutex::new(part)), persist, _slot: slot })
    }

    /// Queues the job that compresses the next part into a chunk (and,
    /// after the last, the end of the stream).
    pub(crate) fn queue_part(&mut self, out: &mut Outbox) {
        let part = Arc::clone(&self.part);
        out.push_job(move || {
            let mut part = part.lock().unwrap_or_else(PoisonError::into_inner);
            match part.next() {
                Ok(chunk) => chunk,
                Err(e) => {
                    tracing::warn!("http: compressed stream cut short: {e}");
                    part.failed = true;
                    Vec::new()
                }
            }
        });
    }

    /// Called when what was queued has drained: the next part, or the end.
    pub(crate) fn resume(&mut self, out: &mut Outbox) -> Step {
        let (failed, done) = {
            let part = self.part.lock().unwrap_or_else(PoisonError::into_inner);
            (part.failed, part.encoder.is_none())
        };
        if failed {
            return Step::Cut;
        }
        if done {
            return Step::Done(self.persist);
        }
        self.queue_part(out);
        Step::More
    }
}

impl Part {
    /// Compresses up to [`PART`] more bytes into one chunk; after the last
    /// input, the encoder's end and the last chunk too.
    fn next(&mut self) -> io::Result<Vec<u8>> {
        let Some(encoder) = self.encoder.as_mut() else { return Ok(Vec::new()) };
        let mut piece = vec![0; STEP.min(self.size.saturating_sub(self.at) as usize)];
        let mut data = Vec::new();
        // At least one part, and more until the encoder gives something:
        // an empty answer would leave nothing to drain, and so no
        // `on_drained` to ask for the next part.
        let mut end = self.size.min(self.at + PART);
        loop {
            while self.at < end {
                let want = piece.len().min((end - self.at) as usize);
                let n = self.file.read_at(&mut piece[..want], self.at)?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank"));
                }
                encoder.write(&piece[..n])?;
                data.append(&mut encoder.take());
                self.at += n as u64;
            }
            if !data.is_empty() || self.at >= self.size {
                break;
            }
            end = self.size.min(self.at + PART);
        }
        let last = self.at >= self.size;
        if last && let Some(encoder) = self.encoder.take() {
            data.extend_from_slice(&encoder.finish()?);
        }
        let mut chunk = Vec::with_capacity(data.len() + 24);
        if !data.is_empty() {
            chunk.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            chunk.extend_from_slice(&data);
            chunk.extend_from_slice(b"\r\n");
        }
        if last {
            chunk.extend_from_slice(b"0\r\n\r\n");
        }
        Ok(chunk)
    }
}
