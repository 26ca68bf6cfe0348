//! What a person sees while `ferry get`/`ferry put` move several files: a
//! bar per file being moved and, with more than one file, a total bar
//! under them (indicatif's MultiProgress), a line per finished file (as
//! scp prints), errors as they happen, and notices. The total bar counts
//! only bytes this run moves: a resumed file takes its resumed bytes off
//! the total instead of adding them as progress, so rate and ETA stay
//! honest.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferry_client::{BatchProgress, Direction, FileReport, Item, Outcome, Progress, destination_of, source_of};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};

use crate::progress::{bar, human, is_quiet, is_silent, summary_line};

/// Files smaller than this are hashed without a bar (it would only flash).
const HASH_BAR_MIN: u64 = 16 << 20;

/// The terminal view of one batch.
pub struct BatchView {
    direction: Direction,
    /// Bars are drawn (a terminal, not `-q`, `-s` or `--json`).
    multi: Option<MultiProgress>,
    on_stderr: bool,
    /// A line per finished file (not `-q`, `-s`, `--json`).
    lines: bool,
    total: Mutex<Option<ProgressBar>>,
    /// Files whose transfer began (their bytes are accounted by their
    /// own [`FileView`]).
    begun: Mutex<HashSet<(Vec<u8>, std::path::PathBuf)>>,
    /// Files in the batch, and how many have ended.
    files: AtomicUsize,
    ended: AtomicUsize,
}

impl BatchView {
    /// A view for a batch going `direction`; `show` says whether anything
    /// but errors and notices may be printed (not `--json`).
    pub fn new(direction: Direction, show: bool) -> BatchView {
        let show = show && !is_quiet();
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
        let multi = (show && terminal).then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        BatchView {
            direction,
            multi,
            on_stderr: false,
            lines: show,
            total: Mutex::new(None),
            begun: Mutex::new(HashSet::new()),
            files: AtomicUsize::new(0),
            ended: AtomicUsize::new(0),
        }
    }

    /// Prints a line above the bars (or plainly, without them).
    fn say(&self, line: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => println!("{line}"),
        }
    }

    /// Prints to stderr without tearing the bars.
    fn err(&self, line: &str) {
        match &self.multi {
            Some(multi) => multi.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Prints a notice unless `-s`.
    pub fn notice(&self, text: &str) {
        if !is_silent() {
            self.err(&format!("ferry: {text}"));
        }
    }

    /// Removes the bars (the batch is over).
    pub fn finish(&self) {
        if let Some(total) = self.total.lock().unwrap_or_else(|e| e.into_inner()).take() {
            total.finish_and_clear();
        }
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
    }

    fn with_total(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(total) = &*self.total.lock().unwrap_or_else(|e| e.into_inner()) {
            f(total);
        }
    }
}

impl BatchProgress for BatchView {
    fn begin(&self, files: usize, bytes: u64) {
        self.files.store(files, Ordering::Relaxed);
        if let (Some(multi), true) = (&self.multi, files > 1) {
            let total = multi.add(bar(ProgressDrawTarget::hidden(), self.on_stderr, "", bytes, 0));
            total.set_message(format!("0/{files} files"));
            *self.total.lock().unwrap_or_else(|e| e.into_inner()) = Some(total);
        }
    }

    fn file(&self, item: &Item) -> Box<dyn Progress + Send + '_> {
        self.begun.lock().unwrap_or_else(|e| e.into_inner()).insert((item.remote.clone(), item.local.clone()));
        Box::new(FileView {
            view: self,
            label: source_of(self.direction, item),
            counted: item.size,
            moved: 0,
            bar: None,
            hash_bar: None,
        })
    }

    fn finished(&self, report: &FileReport) {
        let item = &report.item;
        let key = (item.remote.clone(), item.local.clone());
        let begun = self.begun.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        self.with_total(|total| {
            if !begun {
                // Never started: its bytes will not move.
                total.dec_length(item.size);
            }
            let ended = self.ended.fetch_add(1, Ordering::Relaxed) + 1;
            total.set_message(format!("{ended}/{} files", self.files.load(Ordering::Relaxed)));
        });
        let (from, to) = (source_of(self.direction, item), destination_of(self.direction, item));
        match &report.outcome {
            Outcome::Done { size, resumed_from, verified } => {
                if self.lines {
                    let verb = if self.direction == Direction::Get { "got" } else { "put" };
                    let moved = size - (*resumed_from).min(*size);
                    self.say(&summary_line(verb, &from, &to, *size, report.elapsed, moved, *resumed_from, *verified));
                }
            }
            Outcome::Skipped(why) => {
                if self.lines {
                    self.say(&format!("ferry: skipped {from} -> {to}: {why}"));
                }
            }
            Outcome::Failed(e) => {
                let verb = if self.direction == Direction::Get { "get" } else { "put" };
                self.err(&format!("ferry: error: cannot {verb} {from}: {}", crate::transfer::chain(e)));
            }
        }
    }
}

/// The bar of one file, feeding the total bar too.
struct FileView<'a> {
    view: &'a BatchView,
    label: String,
    /// What this file adds to the total bar's length: its planned size
    /// until it starts, then the bytes it has to move.
    counted: u64,
    moved: u64,
    bar: Option<ProgressBar>,
    hash_bar: Option<ProgressBar>,
}

impl FileView<'_> {
    /// Makes this file count `now` bytes in the total's length.
    fn recount(&mut self, now: u64) {
        let before = self.counted;
        self.view.with_total(|total| match now >= before {
            true => total.inc_length(now - before),
            false => total.dec_length(before - now),
        });
        self.counted = now;
    }

    fn new_bar(&self, label: &str, len: u64, already: u64) -> Option<ProgressBar> {
        let multi = self.view.multi.as_ref()?;
        let bar = bar(ProgressDrawTarget::hidden(), self.view.on_stderr, label, len, already);
        let total = self.view.total.lock().unwrap_or_else(|e| e.into_inner());
        Some(match &*total {
            Some(total) => multi.insert_before(total, bar),
            None => multi.add(bar),
        })
    }
}

impl Progress for FileView<'_> {
    fn start(&mut self, total: u64, already: u64) {
        if already > 0 && !is_quiet() {
            self.view.err(&format!("ferry: resuming {} at {} of {}", self.label, human(already), human(total)));
        }
        self.recount(total - already.min(total));
        self.bar = self.new_bar(&self.label.clone(), total, already);
    }

    fn advance(&mut self, n: u64) {
        self.moved += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        self.view.with_total(|total| total.inc(n));
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn hash_start(&mut self, total: u64) {
        if total >= HASH_BAR_MIN {
            self.hash_bar = self.new_bar(&format!("SHA-256 of {}", self.label), total, 0);
        }
    }

    fn hash_advance(&mut self, n: u64) {
        if let Some(bar) = &self.hash_bar {
            bar.inc(n);
        }
    }

    fn hash_finish(&mut self) {
        if let Some(bar) = self.hash_bar.take() {
            bar.finish_and_clear();
        }
    }

    fn notice(&mut self, text: &str) {
        self.view.notice(text);
    }
}

impl Drop for FileView<'_> {
    /// A file that stopped early takes what it will not move off the
    /// total.
    fn drop(&mut self) {
        let moved = self.moved;
        self.recount(moved.min(self.counted));
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
