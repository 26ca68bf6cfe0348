//! "A request is done": the one record every service emits per request
//! (an HTTP request, a file-protocol command), for access logs and
//! metrics, designed once so that every service and every answer kind
//! (files, listings run as jobs, uploads, streamed archives) is logged
//! the same way.
//!
//! The driver side passes an [`Observer`] when it makes a session; the
//! session holds a [`Tracker`] and calls it around each answer:
//! [`Tracker::begin`] before, [`Tracker::answered`] after. The tracker
//! reads the answer's status and size from what was queued in the
//! [`Outbox`] (a job's answer as it comes back), and hands the record to
//! the observer once the answer has reached the kernel
//! ([`Tracker::drained`]) or the connection closes ([`Tracker::closed`]),
//! so a record's duration covers the whole transfer. Time is the driver's
//! (`now`); a session without an observer pays one branch per request.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::outbox::{Mark, Outbox};
use crate::{Job, Now};

/// One finished request, as access logs and metrics see it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// When the request was read (wall clock).
    pub time: SystemTime,
    /// From reading the request to its answer reaching the kernel (or the
    /// connection ending).
    pub duration: Duration,
    /// The request line (HTTP) or the command line (file protocol),
    /// without its line end; credentials are never in it.
    pub request: &'a str,
    /// The answer's status: HTTP's, or the file protocol's (200 for `OK`,
    /// the code of an `ERR`); 0 if no answer was sent.
    pub status: u16,
    /// Bytes of the answer after its head (HTTP body, file-protocol payload
    /// after the `OK` line).
    pub bytes_out: u64,
    /// Bytes of the request (head or line, and any upload payload).
    pub bytes_in: u64,
    /// Who the request said it was (HTTP Basic user name, the file
    /// protocol's logged-in account).
    pub user: Option<&'a str>,
    /// HTTP `Referer`.
    pub referer: Option<&'a str>,
    /// HTTP `User-Agent`.
    pub user_agent: Option<&'a str>,
}

/// Where records go: the driver's access log and metrics. One per
/// connection (it may carry the peer's address).
pub trait Observer: Send {
    /// A request is done.
    fn request_done(&mut self, record: &Record<'_>);
}

/// What a session knows of a request when it has answered it.
#[derive(Debug, Default, Clone)]
pub struct Asked {
    /// See [`Record::request`].
    pub request: String,
    /// See [`Record::user`].
    pub user: Option<String>,
    /// See [`Record::referer`].
    pub referer: Option<String>,
    /// See [`Record::user_agent`].
    pub user_agent: Option<String>,
    /// See [`Record::bytes_in`].
    pub bytes_in: u64,
}

/// Reads an answer's status and head length from its first bytes
/// (`HTTP/1.1 200 ...\r\n\r\n`, `OK ...\n`): `None` if they are not the
/// start of an answer.
pub type Sniff = fn(&[u8]) -> Option<(u16, usize)>;

/// A job's answer as the tracker read it: status, bytes after the head.
type JobOutcome = Arc<Mutex<Option<(u16, u64)>>>;

#[derive(Debug)]
struct Pending {
    start: Now,
    asked: Asked,
    status: u16,
    bytes_out: u64,
    /// The answer came from a job; its outcome lands here.
    job: Option<JobOutcome>,
    /// More of the answer is to come (an upload's payload and commit, a
    /// streamed archive): not emitted until [`Tracker::release`].
    held: bool,
}

/// A session's side of request records (see the module docs).
#[derive(Default)]
pub struct Tracker {
    observer: Option<Box<dyn Observer>>,
    pending: Vec<Pending>,
    last: Option<Now>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker").field("observed", &self.observer.is_some()).field("pending", &self.pending).finish()
    }
}

impl Tracker {
    /// Records go to `observer`.
    pub fn new(observer: Box<dyn Observer>) -> Tracker {
        Tracker { observer: Some(observer), pending: Vec::new(), last: None }
    }

    /// True if records are wanted (the session may skip collecting what
    /// goes into [`Asked`] otherwise).
    pub fn on(&self) -> bool {
        self.observer.is_some()
    }

    /// Before an answer is queued.
    pub fn begin(&self, out: &Outbox) -> Option<Mark> {
        self.observer.as_ref().map(|_| out.mark())
    }

    /// After the answer to `asked` was queued (from `mark`): reads its
    /// status and size with `sniff`. Nothing queued yet (an answer owed
    /// later): the record waits for [`Tracker::amend`].
    pub fn answered(&mut self, mark: Option<Mark>, out: &mut Outbox, now: Now, asked: Asked, sniff: Sniff) {
        let Some(mark) = mark else { return };
        self.last = Some(now);
        let mut pending = Pending { start: now, asked, status: 0, bytes_out: 0, job: None, held: false };
        read_answer(&mut pending, mark, out, sniff);
        self.pending.push(pending);
    }

    /// More of the last request's answer was queued after `mark` (the
    /// refusal owed after a skipped body, an upload's final answer, an
    /// archive's next part); a status it carries replaces the earlier one.
    pub fn amend(&mut self, mark: Option<Mark>, out: &mut Outbox, now: Now, bytes_in: u64, sniff: Sniff) {
        let (Some(mark), Some(pending)) = (mark, self.pending.last_mut()) else { return };
        self.last = Some(now);
        pending.asked.bytes_in += bytes_in;
        let (status, before) = (pending.status, pending.bytes_out);
        read_answer(pending, mark, out, sniff);
        if pending.status == 0 {
            pending.status = status;
        }
        pending.bytes_out += before;
    }

    /// The last request's answer is not complete yet (`held`), or is now.
    pub fn hold(&mut self, held: bool) {
        if let Some(pending) = self.pending.last_mut() {
            pending.held = held;
        }
    }

    /// Everything queued reached the kernel: emits the complete records.
    pub fn drained(&mut self, now: Now) {
        self.last = Some(now);
        if self.pending.iter().any(|p| !p.held) {
            self.emit(now, false);
        }
    }

    /// The connection closed: emits every record left.
    pub fn closed(&mut self, now: Now) {
        self.emit(now, true);
    }

    fn emit(&mut self, now: Now, all: bool) {
        let Some(observer) = self.observer.as_mut() else { return };
        // In place, so the vector keeps its capacity: no allocation per
        // request on a keep-alive connection.
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].held && !all {
                i += 1;
                continue;
            }
            let p = self.pending.remove(i);
            let (mut status, mut bytes_out) = (p.status, p.bytes_out);
            if let Some((s, b)) = p.job.as_ref().and_then(|j| *j.lock().unwrap_or_else(PoisonError::into_inner)) {
                (status, bytes_out) = (s, bytes_out + b);
            }
            let record = Record {
                time: p.start.wall,
                duration: now.mono.saturating_duration_since(p.start.mono),
                request: &p.asked.request,
                status,
                bytes_out,
                bytes_in: p.asked.bytes_in,
                user: p.asked.user.as_deref(),
                referer: p.asked.referer.as_deref(),
                user_agent: p.asked.user_agent.as_deref(),
            };
            observer.request_done(&record);
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        // A driver that drops a session without closing it through the
        // core (a failed set-up): the last time the session saw.
        if let Some(now) = self.last {
            self.emit(now, true);
        }
    }
}

/// Fills `pending` from what was queued after `mark`.
fn read_answer(pending: &mut Pending, mark: Mark, out: &mut Outbox, sniff: Sniff) {
    let added = out.since(mark);
    if added.job_first {
        let outcome = JobOutcome::default();
        let slot = Arc::clone(&outcome);
        out.wrap_jobs_since(mark, move |job: Job| {
            let slot = Arc::clone(&slot);
            Box::new(move || {
                let bytes = job();
                if let Some((status, head)) = sniff(&bytes) {
                    let body = bytes.len().saturating_sub(head) as u64;
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some((status, body));
                }
                bytes
            })
        });
        pending.job = Some(outcome);
        pending.bytes_out = 0;
        return;
    }
    match sniff(added.text) {
        Some((status, head)) => {
            pending.status = status;
            pending.bytes_out = added.bytes.saturating_sub(head as u64);
        }
        None => {
            pending.status = 0;
            pending.bytes_out = added.bytes;
        }
    }
}

/// [`Sniff`] for HTTP/1.x answers: the status of `HTTP/1.1 200 OK`, the
/// head up to its blank line.
pub fn sniff_http(text: &[u8]) -> Option<(u16, usize)> {
    let status = text.strip_prefix(b"HTTP/1.")?.get(2..5)?;
    let status = std::str::from_utf8(status).ok()?.parse().ok()?;
    let head = text.windows(4).position(|w| w == b"\r\n\r\n").map_or(text.len(), |end| end + 4);
    Some((status, head))
}

/// [`Sniff`] for the file protocol: `OK ...` is 200, `ERR 404 ...` 404;
/// the head is the first line.
pub fn sniff_files(text: &[u8]) -> Option<(u16, usize)> {
    let head = text.iter().position(|&b| b == b'\n').map_or(text.len(), |end| end + 1);
    if text.starts_with(b"OK") {
        return Some((200, head));
    }
    let code = text.strip_prefix(b"ERR ")?.get(..3)?;
    Some((std::str::from_utf8(code).ok()?.parse().ok()?, head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// What the test observer saw: request, status, bytes out, duration.
    type Seen = Arc<Mutex<Vec<(String, u16, u64, Duration)>>>;

    struct Collect(Seen);

    impl Observer for Collect {
        fn request_done(&mut self, r: &Record<'_>) {
            self.0.lock().expect("lock").push((r.request.to_string(), r.status, r.bytes_out, r.duration));
        }
    }

    fn at(ms: u64, base: Instant) -> Now {
        Now { mono: base + Duration::from_millis(ms), wall: SystemTime::UNIX_EPOCH }
    }

    fn asked(line: &str) -> Asked {
        Asked { request: line.to_string(), ..Asked::default() }
    }

    #[test]
    fn records_status_body_and_duration_once_drained() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut t = Tracker::new(Box::new(Collect(Arc::clone(&seen))));
        let base = Instant::now();
        let mut out = Outbox::new();
        out.text().extend_from_slice(b"left over");
        let mark = t.begin(&out);
        out.text().extend_from_slice(b"HTTP/1.1 404 Not Found\r\nA: b\r\n\r\nbody!");
        t.answered(mark, &mut out, at(0, base), asked("GET /x HTTP/1.1"), sniff_http);
        assert!(seen.lock().expect("lock").is_empty(), "nothing before the answer is out");
        t.drained(at(7, base));
        let got = seen.lock().expect("lock").clone();
        assert_eq!(got, vec![("GET /x HTTP/1.1".to_string(), 404, 5, Duration::from_millis(7))]);
    }

    #[test]
    fn reads_a_jobs_answer_when_it_comes_back() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut t = Tracker::new(Box::new(Collect(Arc::clone(&seen))));
        let base = Instant::now();
        let mut out = Outbox::new();
        let mark = t.begin(&out);
        out.push_job(|| b"ERR 403 no\n".to_vec());
        t.answered(mark, &mut out, at(0, base), asked("ls /"), sniff_files);
        let job = out.take_job().expect("a job");
        out.finish_job(job());
        t.drained(at(1, base));
        assert_eq!(seen.lock().expect("lock")[0].1, 403);
    }

    #[test]
    fn a_held_record_waits_for_its_amended_end() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut t = Tracker::new(Box::new(Collect(Arc::clone(&seen))));
        let base = Instant::now();
        let mut out = Outbox::new();
        let mark = t.begin(&out);
        out.text().extend_from_slice(b"OK 0\n");
        t.answered(mark, &mut out, at(0, base), asked("put x 9"), sniff_files);
        t.hold(true);
        t.drained(at(1, base));
        assert!(seen.lock().expect("lock").is_empty());
        let mark = t.begin(&out);
        out.text().extend_from_slice(b"ERR 500 disk\n");
        t.amend(mark, &mut out, at(2, base), 9, sniff_files);
        t.hold(false);
        t.closed(at(3, base));
        assert_eq!(seen.lock().expect("lock").clone(), vec![("put x 9".into(), 500, 0, Duration::from_millis(3))]);
    }

    #[test]
    fn sniffs() {
        assert_eq!(sniff_http(b"HTTP/1.0 200 OK\r\n\r\nxy"), Some((200, 19)));
        assert_eq!(sniff_files(b"OK 12 0 12 v\nabc"), Some((200, 13)));
        assert_eq!(sniff_files(b"ERR 404 nope\n"), Some((404, 13)));
        assert_eq!(sniff_files(b"hello"), None);
    }
}
