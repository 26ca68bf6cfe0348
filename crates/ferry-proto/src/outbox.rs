//! What a session wants sent, in order: owned bytes, zero-copy file ranges
//! and [`Job`]s (blocking work whose answer goes out in its place), plus at
//! most one upload [`Sink`].

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// A byte range of an open file that the driver sends with `sendfile`, so
/// file contents never pass through user space.
#[derive(Debug, Clone)]
pub struct FileRange {
    /// The open file (shared so a cache may hand the same descriptor to many
    /// responses).
    pub file: Arc<File>,
    /// Where the range starts in the file.
    pub offset: u64,
    /// How many bytes to send.
    pub len: u64,
}

mod mark;

pub use self::mark::{Added, Mark};

/// Blocking work a session needs done before its answer can be sent
/// (hashing a whole file, listing a directory, `fsync`): it returns the bytes to send in its
/// place. A driver whose thread may block runs it inline; an event loop
/// hands it to a worker thread, so one connection's slow request does not
/// stall the others on that loop.
pub type Job = Box<dyn FnOnce() -> Vec<u8> + Send>;

/// One queued piece of output.
enum Item {
    Bytes(Vec<u8>),
    File(FileRange),
    /// Not started yet.
    Job(Job),
    /// Taken by the driver ([`Outbox::take_job`]); its bytes are not back.
    Waiting,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Item::Bytes(v) => f.debug_tuple("Bytes").field(&v.len()).finish(),
            Item::File(r) => f.debug_tuple("File").field(r).finish(),
            Item::Job(_) => f.write_str("Job"),
            Item::Waiting => f.write_str("Waiting"),
        }
    }
}

/// The unsent part of a file range: what one `sendfile` call may take.
#[derive(Debug, Clone, Copy)]
pub struct FileSlice<'a> {
    /// The file (shared: a cache may hand it to many responses).
    pub file: &'a Arc<File>,
    /// The next unsent byte's offset in the file.
    pub offset: u64,
    /// How many bytes of the range are still unsent.
    pub len: u64,
}

/// The unsent part of the outbox's first item, as the driver sees it.
#[derive(Debug)]
pub enum Chunk<'a> {
    /// Plain bytes: write them.
    Bytes(&'a [u8]),
    /// A file range: `sendfile(socket, file, offset, len)`.
    File(FileSlice<'a>),
    /// A [`Job`]: take it with [`Outbox::take_job`], run it (inline or on
    /// a worker) and hand its bytes to [`Outbox::finish_job`].
    Job,
    /// A job taken earlier whose bytes are not back yet: nothing behind it
    /// may be sent.
    Waiting,
}

/// "The next `remaining` bytes from the peer go into this file at
/// `offset`." A session queues one for an upload so the driver can move the
/// payload into the file without the session copying it (with `splice`, or
/// read + `pwrite`).
#[derive(Debug)]
pub struct Sink {
    file: Arc<File>,
    offset: u64,
    remaining: u64,
}

impl Sink {
    /// A sink writing `len` bytes into `file` starting at `offset`.
    pub fn new(file: Arc<File>, offset: u64, len: u64) -> Sink {
        Sink { file, offset, remaining: len }
    }

    /// The file the payload goes into (shared: a driver whose kernel
    /// operations outlive the call keeps a clone until they complete).
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Where the next payload byte goes in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Payload bytes still expected from the peer.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Records that `n` payload bytes were written to the file by the
    /// driver itself (e.g. with `splice`).
    pub fn advance(&mut self, n: u64) {
        debug_assert!(n <= self.remaining);
        self.offset += n;
        self.remaining -= n.min(self.remaining);
    }

    /// Writes the payload's next bytes from `data` (already read from the
    /// peer) into the file and returns how many of them belonged to the
    /// payload; bytes past the payload's end are left to the caller.
    pub fn write_from(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        self.file.write_all_at(&data[..n], self.offset)?;
        self.advance(n as u64);
        Ok(n)
    }
}

/// The ordered queue of output a session produced.
///
/// Adjacent byte pushes coalesce into one buffer, so answers to pipelined
/// requests leave in a single write. An empty outbox holds no memory (one
/// pointer), so an idle connection pays nothing for it.
#[derive(Debug, Default)]
pub struct Outbox {
    /// `None` while empty with no sink.
    q: Option<Box<Queue>>,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Item>,
    /// Bytes of the front item already sent.
    front_sent: u64,
    sink: Option<Sink>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    fn queue(&mut self) -> &mut Queue {
        self.q.get_or_insert_with(Box::default)
    }

    fn items(&self) -> impl Iterator<Item = &Item> {
        self.q.iter().flat_map(|q| q.items.iter())
    }

    /// Releases the queue once nothing is in it.
    fn tidy(&mut self) {
        if self.q.as_ref().is_some_and(|q| q.items.is_empty() && q.sink.is_none()) {
            self.q = None;
        }
    }

    /// Queues a copy of `bytes`.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        self.text().extend_from_slice(bytes);
    }

    /// The byte buffer at the back of the queue, to format an answer into
    /// (`write!(out.text(), ...)`). Creates it if the back is a file range.
    pub fn text(&mut self) -> &mut Vec<u8> {
        let items = &mut self.queue().items;
        // Appending to a partly sent front buffer is fine: the send cursor
        // counts from its start.
        if !matches!(items.back(), Some(Item::Bytes(_))) {
            items.push_back(Item::Bytes(Vec::new()));
        }
        match items.back_mut() {
            Some(Item::Bytes(v)) => v,
            _ => unreachable!("a Bytes item was just pushed"),
        }
    }

    /// Queues blocking work whose returned bytes are sent at this point of
    /// the queue (see [`Job`]).
    pub fn push_job(&mut self, job: impl FnOnce() -> Vec<u8> + Send + 'static) {
        self.queue().items.push_back(Item::Job(Box::new(job)));
    }

    /// Takes the job at the front, leaving a placeholder that holds back
    /// everything behind it until [`Outbox::finish_job`]. `None` if the
    /// front is not a job.
    pub fn take_job(&mut self) -> Option<Job> {
        let front = self.q.as_mut()?.items.front_mut()?;
        if !matches!(front, Item::Job(_)) {
            return None;
        }
        match std::mem::replace(front, Item::Waiting) {
            Item::Job(job) => Some(job),
            _ => unreachable!("checked above"),
        }
    }

    /// Puts a job's answer in place of the front placeholder.
    pub fn finish_job(&mut self, bytes: Vec<u8>) {
        let Some(q) = self.q.as_mut() else { return };
        let Some(front) = q.items.front_mut() else { return };
        if !matches!(front, Item::Waiting) {
            return;
        }
        q.front_sent = 0;
        if bytes.is_empty() {
            q.items.pop_front();
            self.tidy();
        } else {
            *front = Item::Bytes(bytes);
        }
    }

    /// Moves every queued item (and the sink) into a new outbox, leaving
    /// this one empty: for a driver that must keep what follows a running
    /// job while it reuses this outbox.
    pub fn take_all(&mut self) -> Outbox {
        std::mem::take(self)
    }

    /// Queues a file range to be sent with `sendfile`.
    pub fn push_file(&mut self, range: FileRange) {
        if range.len > 0 {
            self.queue().items.push_back(Item::File(range));
        }
    }

    /// Asks the driver to route the next `sink.remaining()` input bytes into
    /// the sink's file once the queued output is sent.
    pub fn expect_upload(&mut self, sink: Sink) {
        let q = self.queue();
        debug_assert!(q.sink.is_none(), "one upload at a time");
        q.sink = Some(sink);
    }

    /// The upload in progress, if any.
    pub fn sink(&self) -> Option<&Sink> {
        self.q.as_ref()?.sink.as_ref()
    }

    /// The upload in progress, mutably, if any.
    pub fn sink_mut(&mut self) -> Option<&mut Sink> {
        self.q.as_mut()?.sink.as_mut()
    }

    /// Removes the upload sink (when it is complete or abandoned).
    pub fn take_sink(&mut self) -> Option<Sink> {
        let sink = self.q.as_mut()?.sink.take();
        self.tidy();
        sink
    }

    /// True when an upload is waiting for payload bytes.
    pub fn has_sink(&self) -> bool {
        self.sink().is_some()
    }

    /// True when there is no output left to send (an upload sink may still
    /// be pending; see [`Outbox::has_sink`]).
    pub fn is_empty(&self) -> bool {
        self.items().next().is_none()
    }

    /// True when a job is queued or running (sessions queue one per pass:
    /// a job's answer counts for nothing in [`Outbox::queued_bytes`]).
    pub fn has_job(&self) -> bool {
        self.items().any(|i| matches!(i, Item::Job(_) | Item::Waiting))
    }

    /// True when a file range is queued (sessions queue one file per pass).
    pub fn has_file_range(&self) -> bool {
        self.items().any(|i| matches!(i, Item::File(_)))
    }

    /// Unsent bytes of queued plain-byte items (file ranges not counted).
    /// Sessions use it to stop producing when a client reads slowly.
    pub fn queued_bytes(&self) -> usize {
        let Some(q) = self.q.as_ref() else { return 0 };
        let sent = if matches!(q.items.front(), Some(Item::Bytes(_))) { q.front_sent as usize } else { 0 };
        let total: usize = q
            .items
            .iter()
            .map(|i| match i {
                Item::Bytes(v) => v.len(),
                Item::File(_) | Item::Job(_) | Item::Waiting => 0,
            })
            .sum();
        total.saturating_sub(sent)
    }

    /// The unsent part of the first queued item.
    pub fn front(&self) -> Option<Chunk<'_>> {
        let q = self.q.as_ref()?;
        q.items.front().map(|item| match item {
            Item::Bytes(v) => Chunk::Bytes(&v[q.front_sent as usize..]),
            Item::File(r) => {
                Chunk::File(FileSlice { file: &r.file, offset: r.offset + q.front_sent, len: r.len - q.front_sent })
            }
            Item::Job(_) => Chunk::Job,
            Item::Waiting => Chunk::Waiting,
        })
    }

    /// Marks `n` bytes of the front item as sent, dropping it when done.
    /// `n` never exceeds the front chunk's length.
    pub fn advance(&mut self, n: u64) {
        let Some(q) = self.q.as_mut() else { return };
        let len = match q.items.front() {
            Some(Item::Bytes(v)) => v.len() as u64,
            Some(Item::File(r)) => r.len,
            // Jobs are taken and finished, never advanced over.
            Some(Item::Job(_) | Item::Waiting) | None => return,
        };
        q.front_sent += n;
        debug_assert!(q.front_sent <= len);
        if q.front_sent >= len {
            q.items.pop_front();
            q.front_sent = 0;
            self.tidy();
        }
    }

    /// Drops all queued output and any sink (the connection is closing).
    pub fn clear(&mut self) {
        self.q = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain_bytes(out: &mut Outbox) -> Vec<u8> {
        let mut got = Vec::new();
        while let Some(chunk) = out.front() {
            match chunk {
                Chunk::Bytes(b) => {
                    let take = b.len().min(3);
                    got.extend_from_slice(&b[..take]);
                    out.advance(take as u64);
                }
                Chunk::File(FileSlice { len, .. }) => {
                    got.extend_from_slice(format!("<file {len}>").as_bytes());
                    out.advance(len);
                }
                Chunk::Job => {
                    let job = out.take_job().unwrap();
                    out.finish_job(job());
                }
                Chunk::Waiting => panic!("nothing finishes a waiting job here"),
            }
        }
        got
    }

    #[test]
    fn bytes_coalesce_and_drain_in_order() {
        let mut out = Outbox::new();
        out.push_bytes(b"OK 1\n");
        out.push_bytes(b"OK 2\n");
        assert_eq!(out.items().count(), 1, "adjacent byte pushes share one buffer");
        let f = Arc::new(File::open("/proc/self/status").expect("open"));
        out.push_file(FileRange { file: f, offset: 0, len: 7 });
        out.push_bytes(b"tail");
        assert_eq!(out.queued_bytes(), 14);
        assert_eq!(drain_bytes(&mut out), b"OK 1\nOK 2\n<file 7>tail");
        assert!(out.is_empty());
    }

    #[test]
    fn text_after_partial_send_does_not_corrupt_cursor() {
        let mut out = Outbox::new();
        out.push_bytes(b"abcdef");
        out.advance(2);
        out.push_bytes(b"gh");
        assert_eq!(drain_bytes(&mut out), b"cdefgh");
    }

    #[test]
    fn a_job_holds_back_what_follows_until_its_bytes_are_in() {
        let mut out = Outbox::new();
        out.push_bytes(b"first\n");
        out.push_job(|| b"OK hashed\n".to_vec());
        out.push_bytes(b"after\n");
        assert!(matches!(out.front(), Some(Chunk::Bytes(b"first\n"))));
        assert!(out.take_job().is_none(), "the front is not a job");
        out.advance(6);
        let job = out.take_job().expect("the job is at the front");
        assert!(matches!(out.front(), Some(Chunk::Waiting)));
        out.advance(1);
        assert!(matches!(out.front(), Some(Chunk::Waiting)), "a waiting job is not advanced over");
        out.finish_job(job());
        assert_eq!(drain_bytes(&mut out), b"OK hashed\nafter\n");
    }

    #[test]
    fn take_all_moves_the_rest_out() {
        let mut out = Outbox::new();
        out.push_job(Vec::new);
        out.push_bytes(b"x");
        let job = out.take_job().unwrap();
        let mut rest = out.take_all();
        assert!(out.is_empty());
        rest.finish_job(job());
        assert_eq!(drain_bytes(&mut rest), b"x", "an empty answer leaves nothing behind");
    }

    #[test]
    fn empty_file_range_is_not_queued() {
        let mut out = Outbox::new();
        let f = Arc::new(File::open("/proc/self/status").expect("open"));
        out.push_file(FileRange { file: f, offset: 0, len: 0 });
        assert!(out.is_empty());
    }

    #[test]
    fn an_outbox_holds_memory_only_while_something_is_queued() {
        let mut out = Outbox::new();
        out.push_bytes(b"answer");
        assert!(out.q.is_some());
        out.advance(6);
        assert!(out.q.is_none(), "drained: released");
        let f = Arc::new(File::open("/proc/self/status").expect("open"));
        out.expect_upload(Sink::new(f, 0, 3));
        assert!(out.q.is_some() && out.is_empty(), "a sink alone keeps it");
        drop(out.take_sink());
        assert!(out.q.is_none());
    }
}
