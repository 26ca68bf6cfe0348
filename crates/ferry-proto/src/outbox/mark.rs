//! Telling what an answer added to an [`Outbox`], for the request records
//! of [`crate::observe`].

use super::{Item, Job, Outbox};

/// A position in an [`Outbox`] ([`Outbox::mark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    items: usize,
    /// The length of the last item when it is text, which may grow.
    back_len: Option<usize>,
}

/// What was queued after a [`Mark`] ([`Outbox::since`]).
#[derive(Debug, Clone, Copy)]
pub struct Added<'a> {
    /// The first new bytes, up to the next file range or job.
    pub text: &'a [u8],
    /// The first new item is a job (its answer comes later).
    pub job_first: bool,
    /// New text and file-range bytes.
    pub bytes: u64,
}

impl Outbox {
    /// Where the queue ends now, so [`Outbox::since`] can tell what an
    /// answer added (for the request log, [`crate::observe`]). Valid only
    /// until something is sent: the session's own call.
    pub fn mark(&self) -> Mark {
        let Some(q) = self.q.as_ref() else { return Mark { items: 0, back_len: None } };
        let back_len = match q.items.back() {
            Some(Item::Bytes(v)) => Some(v.len()),
            _ => None,
        };
        Mark { items: q.items.len(), back_len }
    }

    /// What was queued after `mark`: the first new text (up to the next
    /// file or job), whether the first new item is a job, and the bytes of
    /// the new text and file ranges (a job's bytes are not known yet).
    pub fn since(&self, mark: Mark) -> Added<'_> {
        let mut added = Added { text: &[], job_first: false, bytes: 0 };
        let Some(q) = self.q.as_ref() else { return added };
        let from = mark.items.saturating_sub(usize::from(mark.back_len.is_some()));
        for (i, item) in q.items.iter().enumerate().skip(from) {
            let skip = if i + 1 == mark.items { mark.back_len.unwrap_or(0) } else { 0 };
            let first = added.bytes == 0 && !added.job_first;
            match item {
                Item::Bytes(v) => {
                    let new = v.get(skip..).unwrap_or_default();
                    if first && !new.is_empty() {
                        added.text = new;
                    }
                    added.bytes += new.len() as u64;
                }
                Item::File(r) => added.bytes += r.len,
                Item::Job(_) | Item::Waiting => added.job_first |= first,
            }
        }
        added
    }

    /// Wraps every job queued after `mark` in `wrap` (the request log
    /// reads a job's answer as it comes back).
    pub fn wrap_jobs_since(&mut self, mark: Mark, wrap: impl Fn(Job) -> Job) {
        let Some(q) = self.q.as_mut() else { return };
        for item in q.items.iter_mut().skip(mark.items) {
            if let Item::Job(_) = item
                && let Item::Job(job) = std::mem::replace(item, Item::Waiting)
            {
                *item = Item::Job(wrap(job));
            }
        }
    }
}
