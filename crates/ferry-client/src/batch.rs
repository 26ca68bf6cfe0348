//! Running a [`Plan`]: the directories first, then the files, by one
//! connection or by `parallel` workers each with a connection of its own
//! taking the next file from the shared plan. Each file is resumable on
//! its own (the `.part` of a download, the server's partial of an
//! upload); one that fails is reported and the others still move. A
//! worker whose connection broke makes a new one for its next file.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_proto::files::escape::escape_text;

use crate::pace::Pace;
use crate::plan::{Direction, Item, Plan, Problem, create_local_dir, is_fatal};
use crate::skip::{Skip, skip_reason};
use crate::{Client, ClientError, GetOptions, Progress, PutOptions, Result};

/// How a plan runs.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// Connections moving files at once (at least 1).
    pub parallel: usize,
    /// Which files that are already there to leave alone.
    pub skip: Skip,
    /// Downloads: discard `.part` files instead of resuming them.
    pub restart: bool,
    /// Compare SHA-256 sums with the server's after each file.
    pub verify: bool,
    /// Rate limit and deadline, shared by every connection.
    pub pace: Option<Arc<Pace>>,
}

/// How one file ended.
#[derive(Debug)]
pub enum Outcome {
    /// Moved: its size, the bytes an earlier attempt had already moved,
    /// whether the SHA-256 was compared.
    Done {
        /// The file's size.
        size: u64,
        /// Bytes that were there from an earlier attempt.
        resumed_from: u64,
        /// Whether `verify` compared the SHA-256.
        verified: bool,
    },
    /// Left alone (`--skip-existing`, `--update`, `--checksum`): why.
    Skipped(&'static str),
    /// Did not move.
    Failed(ClientError),
}

/// One file of a finished batch.
#[derive(Debug)]
pub struct FileReport {
    /// What was to move.
    pub item: Item,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took.
    pub elapsed: Duration,
}

impl FileReport {
    /// Bytes this run moved for the file (resumed ones not counted).
    pub fn moved(&self) -> u64 {
        match self.outcome {
            Outcome::Done { size, resumed_from, .. } => size - resumed_from.min(size),
            _ => 0,
        }
    }
}

/// What a batch did.
#[derive(Debug)]
pub struct Report {
    /// Which way it went.
    pub direction: Direction,
    /// Every planned file, in plan order.
    pub files: Vec<FileReport>,
    /// Sources that could not be planned, and directories that could not
    /// be created.
    pub problems: Vec<Problem>,
    /// From the first directory to the last file.
    pub elapsed: Duration,
}

impl Report {
    /// Files that failed, with the problems.
    pub fn failed(&self) -> usize {
        self.problems.len() + self.files.iter().filter(|f| matches!(f.outcome, Outcome::Failed(_))).count()
    }

    /// Bytes moved by this run.
    pub fn moved(&self) -> u64 {
        self.files.iter().map(FileReport::moved).sum()
    }
}

/// What a batch tells whoever watches it (the command line's bars and
/// lines). Called from every worker thread.
pub trait BatchProgress: Sync {
    /// The files are about to move: how many, how many bytes.
    fn begin(&self, _files: usize, _bytes: u64) {}
    /// The progress of one file (its bar), for [`Client::get`] or
    /// [`Client::put`].
    fn file(&self, item: &Item) -> Box<dyn Progress + Send + '_>;
    /// One file ended.
    fn finished(&self, _report: &FileReport) {}
}

/// Makes another connection like the first (same address, login, TLS).
pub type Connect<'a> = dyn Fn() -> Result<Client> + Sync + 'a;

/// Runs `plan`: `first` creates the directories and is the first worker;
/// more workers (`options.parallel`) connect with `connect` and say `quit`
/// when done. `first` stays the caller's (the shell's connection): if it
/// breaks, it is replaced by a new one from `connect`; if that fails too,
/// it is left out of step ([`Client::in_step`]). It stays open until the
/// end, so a server that serves one connection at a time (`iterative`)
/// serves no other worker meanwhile: use `parallel` 1 there, or
/// [`run_plan_closing`].
pub fn run_plan(
    plan: Plan,
    first: &mut Client,
    connect: &Connect<'_>,
    options: &BatchOptions,
    progress: &dyn BatchProgress,
) -> Report {
    let earlier_pace = std::mem::replace(&mut first.pace, options.pace.clone());
    let report = execute(plan, Holder::Borrowed { client: &mut *first, usable: true }, connect, options, progress);
    first.pace = earlier_pace;
    report
}

/// [`run_plan`] for a caller done with `first` (`ferry get`/`put`): it says
/// `quit` as soon as its worker finds no file left, so the server can
/// turn to the other workers' connections.
pub fn run_plan_closing(
    plan: Plan,
    mut first: Client,
    connect: &Connect<'_>,
    options: &BatchOptions,
    progress: &dyn BatchProgress,
) -> Report {
    first.set_pace(options.pace.clone());
    execute(plan, Holder::Owned(Some(Box::new(first))), connect, options, progress)
}

/// Creates the directories on `first`'s connection, then moves the files
/// with `first` as the first worker.
fn execute(
    mut plan: Plan,
    mut first: Holder<'_>,
    connect: &Connect<'_>,
    options: &BatchOptions,
    progress: &dyn BatchProgress,
) -> Report {
    let started = Instant::now();
    for dir in &plan.dirs {
        let made = match (plan.direction, first.get()) {
            (Direction::Get, _) => {
                create_local_dir(&dir.local).map_err(|e| crate::part::local_error("create", &dir.local, e))
            }
            (Direction::Put, Some(client)) => client.ensure_remote_dir(&dir.remote),
            (Direction::Put, None) => Err(ClientError::Abandoned { detail: "the connection broke".into() }),
        };
        if let Err(error) = made {
            if is_fatal(&error) || first.get().is_some_and(|c| !c.in_step()) {
                first.lose();
            }
            let source = match plan.direction {
                Direction::Get => dir.local.display().to_string(),
                Direction::Put => escape_text(&dir.remote),
            };
            plan.problems.push(Problem { source, error });
        }
    }
    progress.begin(plan.files.len(), plan.bytes());
    let slots: Vec<Mutex<Option<FileReport>>> = plan.files.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let shared =
        Shared { files: &plan.files, slots: &slots, next: &next, direction: plan.direction, options, progress };
    let workers = options.parallel.clamp(1, plan.files.len().max(1));
    std::thread::scope(|scope| {
        let shared = &shared;
        for _ in 1..workers {
            scope.spawn(move || shared.work(Holder::Owned(None), connect));
        }
        shared.work(first, connect);
    });
    let files = plan
        .files
        .iter()
        .zip(slots)
        .map(|(item, slot)| {
            let taken = slot.into_inner().unwrap_or_else(|e| e.into_inner());
            taken.unwrap_or_else(|| FileReport {
                item: item.clone(),
                outcome: Outcome::Failed(ClientError::Abandoned { detail: "no connection to the server".into() }),
                elapsed: Duration::ZERO,
            })
        })
        .collect();
    Report { direction: plan.direction, files, problems: plan.problems, elapsed: started.elapsed() }
}

/// A worker's connection: the caller's (replaced in place if it breaks)
/// or one of its own.
enum Holder<'a> {
    Borrowed { client: &'a mut Client, usable: bool },
    Owned(Option<Box<Client>>),
}

impl Holder<'_> {
    /// The connection, if there is a usable one.
    fn get(&mut self) -> Option<&mut Client> {
        match self {
            Holder::Borrowed { client, usable: true } => Some(client),
            Holder::Borrowed { .. } => None,
            Holder::Owned(client) => client.as_deref_mut(),
        }
    }

    /// Takes `new` as the connection.
    fn set(&mut self, new: Client) {
        match self {
            Holder::Borrowed { client, usable } => {
                let pace = client.pace.take();
                **client = new;
                client.pace = pace;
                *usable = true;
            }
            Holder::Owned(client) => *client = Some(Box::new(new)),
        }
    }

    /// The connection broke.
    fn lose(&mut self) {
        match self {
            Holder::Borrowed { usable, .. } => *usable = false,
            Holder::Owned(client) => *client = None,
        }
    }
}

/// What the workers share.
struct Shared<'a> {
    files: &'a [Item],
    slots: &'a [Mutex<Option<FileReport>>],
    next: &'a AtomicUsize,
    direction: Direction,
    options: &'a BatchOptions,
    progress: &'a dyn BatchProgress,
}

impl Shared<'_> {
    /// One worker: takes the next file until none is left. Without a
    /// usable connection it makes one; if that fails it reports the file
    /// it held and stops.
    fn work(&self, mut holder: Holder<'_>, connect: &Connect<'_>) {
        loop {
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            let Some(item) = self.files.get(i) else { break };
            let started = Instant::now();
            if self.expired() {
                let outcome = Outcome::Failed(ClientError::Abandoned { detail: "the time allowed ran out".into() });
                self.record(i, FileReport { item: item.clone(), outcome, elapsed: started.elapsed() });
                continue;
            }
            if holder.get().is_none() {
                match connect() {
                    Ok(mut c) => {
                        c.set_pace(self.options.pace.clone());
                        holder.set(c);
                    }
                    Err(e) => {
                        let report =
                            FileReport { item: item.clone(), outcome: Outcome::Failed(e), elapsed: started.elapsed() };
                        self.record(i, report);
                        break;
                    }
                }
            }
            let Some(client) = holder.get() else { break };
            let outcome = self.one(client, item);
            if let Outcome::Failed(e) = &outcome
                && (is_fatal(e) || !client.in_step())
            {
                holder.lose();
            }
            self.record(i, FileReport { item: item.clone(), outcome, elapsed: started.elapsed() });
        }
        if let Holder::Owned(Some(mut c)) = holder {
            // Courtesy only.
            let _ = c.quit();
        }
    }

    fn expired(&self) -> bool {
        self.options.pace.as_ref().is_some_and(|p| p.expired())
    }

    fn record(&self, i: usize, report: FileReport) {
        self.progress.finished(&report);
        *self.slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(report);
    }

    /// Moves one file, unless the skip rule leaves it alone.
    fn one(&self, client: &mut Client, item: &Item) -> Outcome {
        match skip_reason(client, self.direction, item, self.options.skip) {
            Ok(Some(why)) => return Outcome::Skipped(why),
            Ok(None) => {}
            Err(e) => return Outcome::Failed(e),
        }
        let mut progress = self.progress.file(item);
        let verify = self.options.verify;
        let moved = match self.direction {
            Direction::Get => {
                let options = GetOptions {
                    restart: self.options.restart,
                    verify,
                    mtime: item.mtime,
                    no_clobber: self.options.skip == Skip::NoClobber,
                };
                client
                    .get(&item.remote, &item.local, options, &mut *progress)
                    .map(|o| (o.size, o.resumed_from, o.sha256))
            }
            Direction::Put => client
                .put(&item.local, Some(&item.remote), PutOptions { verify }, &mut *progress)
                .map(|o| (o.size, o.resumed_from, o.sha256)),
        };
        match moved {
            Ok((size, resumed_from, sha256)) => Outcome::Done { size, resumed_from, verified: sha256.is_some() },
            Err(e) => Outcome::Failed(e),
        }
    }
}

/// The source of an item, as a person named it: the remote path of a
/// download, the local path of an upload.
pub fn source_of(direction: Direction, item: &Item) -> String {
    match direction {
        Direction::Get => escape_text(&item.remote),
        Direction::Put => display_local(&item.local),
    }
}

/// The destination of an item (see [`source_of`]).
pub fn destination_of(direction: Direction, item: &Item) -> String {
    match direction {
        Direction::Get => display_local(&item.local),
        Direction::Put => escape_text(&item.remote),
    }
}

/// A local path for messages, escaped like remote names so a newline or
/// a byte that is not UTF-8 cannot break a line.
pub fn display_local(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    escape_text(path.as_os_str().as_bytes())
}
