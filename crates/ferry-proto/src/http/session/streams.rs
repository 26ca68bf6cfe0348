//! Answers that go out in steps (a file in its representation, a
//! compressed stream, an archive) and request bodies being received, with
//! their access-log records kept whole across the steps.

use crate::Outbox;
use crate::http::archive::answer::Step;
use crate::http::date::HttpDate;
use crate::http::encoding::answer::{self as representation, Sent};
use crate::http::parse::Request;
use crate::http::respond::Persist;
use crate::observe::sniff_http;
use crate::root::VirtualPath;
use crate::session::{Flow, Now};

use super::{Budget, HttpSession, State};

impl HttpSession {
    /// A regular file, in the representation the client takes (see
    /// [`crate::http::encoding`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_file(
        &mut self,
        req: &Request<'_>,
        file: crate::http::file_cache::Opened,
        path: &VirtualPath,
        persist: Persist,
        date: &HttpDate,
        now: Now,
        out: &mut Outbox,
        budget: &mut Budget,
    ) {
        let ask =
            representation::Ask { config: &self.config, cache: &self.cache, req, path, persist, date, now: now.mono };
        let Sent { file_range, stream } = representation::send(&ask, file, out);
        if file_range {
            budget.files -= 1;
        }
        self.compressing = stream;
    }

    /// Where a streamed answer (archive, compressed file) stands after
    /// more of it was queued: what the connection does next.
    pub(super) fn after_step(&mut self, step: Step) -> Flow {
        match step {
            Step::More => Flow::Continue,
            Step::Done(persist) => {
                self.log.hold(false);
                self.archive = None;
                self.compressing = None;
                if persist == Persist::Close {
                    self.state = State::Closing;
                    return Flow::CloseAfterFlush;
                }
                Flow::Continue
            }
            Step::Cut => {
                self.archive = None;
                self.compressing = None;
                self.state = State::Closing;
                Flow::CloseNow
            }
        }
    }
}

impl HttpSession {
    /// Runs `receive` on a body being uploaded, with its answer (if it
    /// queued one) and the bytes it took added to the request's record;
    /// the record is complete once the body is (`done`) or the
    /// connection ends.
    pub(super) fn logged_body(
        &mut self,
        out: &mut Outbox,
        now: Now,
        receive: impl FnOnce(&mut Self, &mut Outbox) -> (usize, Flow, bool),
    ) -> (usize, Flow, bool) {
        let mark = self.log.begin(out);
        let (n, flow, done) = receive(self, out);
        self.log.amend(mark, out, now, n as u64, sniff_http);
        if done || flow != Flow::Continue {
            self.log.hold(false);
        }
        (n, flow, done)
    }
}
