//! What `ferry get` and `ferry put` share for several files and trees:
//! scp's `-r`, `--parallel N` connections, rsync's skip rules, curl's
//! `--limit-rate`, `--max-time`, `-s` and a `--json` summary; running the
//! client library's plan and telling the outcome (a line per file, a total
//! line, the exit status: failure if any file failed).

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_client::{
    BatchOptions, Client, ClientError, Direction, Outcome, Pace, Plan, Report, Skip, destination_of, run_plan_closing,
    source_of,
};

use crate::batch_view::BatchView;
use crate::connect::{ConnectArgs, parse_secs};
use crate::progress::{human, is_quiet, set_silent};

/// How long past `--max-time` a transfer stuck in a system call may take
/// to notice it before the process gives up on it.
const MAX_TIME_GRACE: Duration = Duration::from_secs(2);

/// The options of `get` and `put` that concern every file of a transfer.
#[derive(Debug, Clone, clap::Args)]
pub struct TransferArgs {
    /// Copy directories with everything in them.
    #[arg(short = 'r', long)]
    recursive: bool,
    /// Move files over N connections at once (for many small files).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
    /// Leave alone every destination file that exists.
    #[arg(long, group = "skip")]
    skip_existing: bool,
    /// Leave alone destination files with the source's size and a
    /// modification time no older (downloads keep the remote time).
    #[arg(long, group = "skip")]
    update: bool,
    /// Leave alone destination files with the source's size and SHA-256
    /// (asked of the server with `sum`).
    #[arg(long, group = "skip")]
    checksum: bool,
    /// Never replace an existing file: such a file fails (exit status 1),
    /// the others move.
    #[arg(long, group = "skip")]
    no_clobber: bool,
    /// At most RATE bytes per second over all connections (curl's
    /// suffixes: 100k, 2M, 1G are powers of 1024).
    #[arg(long, value_name = "RATE", value_parser = crate::units::parse_size)]
    limit_rate: Option<u64>,
    /// Give up after SECS seconds (decimals allowed); partial files are
    /// kept for resuming.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    max_time: Option<Duration>,
    /// Print nothing but errors.
    #[arg(short = 's', long)]
    silent: bool,
    /// Print one JSON object at the end instead of lines: every file with
    /// its status, bytes and seconds.
    #[arg(long)]
    json: bool,
}

impl TransferArgs {
    /// Whether directories are copied.
    pub fn recursive(&self) -> bool {
        self.recursive
    }

    /// Whether the summary is JSON.
    pub fn json(&self) -> bool {
        self.json
    }

    /// Applies `-s` and starts the `--max-time` clock; returns the pace
    /// every connection shares.
    pub fn begin(&self) -> Option<Arc<Pace>> {
        if self.silent {
            set_silent();
        }
        let deadline = self.max_time.map(|t| Instant::now() + t);
        if let (Some(deadline), Some(max)) = (deadline, self.max_time) {
            // A call blocked in the kernel (connecting, a stalled read)
            // cannot check the clock: past the grace, give up on it.
            std::thread::spawn(move || {
                std::thread::sleep((deadline + MAX_TIME_GRACE).saturating_duration_since(Instant::now()));
                eprintln!("ferry: error: the time allowed ran out (--max-time {} s)", max.as_secs_f64());
                std::process::exit(1);
            });
        }
        (self.limit_rate.is_some() || deadline.is_some()).then(|| Arc::new(Pace::new(self.limit_rate, deadline)))
    }

    fn skip(&self) -> Skip {
        match (self.skip_existing, self.update, self.checksum, self.no_clobber) {
            (true, ..) => Skip::Existing,
            (_, true, ..) => Skip::Update,
            (_, _, true, _) => Skip::Checksum,
            (.., true) => Skip::NoClobber,
            _ => Skip::Never,
        }
    }

    /// How the plan runs: these options with `pace` (from
    /// [`TransferArgs::begin`]) and the command's `restart` and `verify`.
    pub fn options(&self, pace: Option<Arc<Pace>>, restart: bool, verify: bool) -> BatchOptions {
        BatchOptions { parallel: usize::from(self.parallel), skip: self.skip(), restart, verify, pace }
    }

    /// Runs `plan` (`client` made it) and reports; fails if any file did.
    pub fn run(
        &self,
        plan: Plan,
        client: Client,
        addr: &str,
        connect: &ConnectArgs,
        options: &BatchOptions,
    ) -> anyhow::Result<()> {
        let view = BatchView::new(plan.direction, !self.json);
        for note in &plan.notes {
            view.notice(note);
        }
        let login = match self.parallel {
            1 => None,
            _ => connect.login(addr)?,
        };
        let another = || {
            connect
                .open(addr, login.as_ref())
                .map_err(|e| ClientError::Abandoned { detail: format!("cannot connect again: {e:#}") })
        };
        let report = run_plan_closing(plan, client, &another, options, &view);
        view.finish();
        tell(&report, self.json)
    }
}

/// Tells how a batch ended (its problems, then the JSON summary or, for
/// more than one file, the total line) and fails if any file failed.
/// Shared with `ferry shell`'s `get -r`, `mget` and friends.
pub fn tell(report: &Report, as_json: bool) -> anyhow::Result<()> {
    for problem in &report.problems {
        let verb = if report.direction == Direction::Get { "get" } else { "put" };
        eprintln!("ferry: error: cannot {verb} {}: {}", problem.source, chain(&problem.error));
    }
    if as_json {
        println!("{}", json(report));
    } else if !is_quiet() && report.files.len() + report.problems.len() > 1 {
        println!("{}", total_line(report));
    }
    match (report.failed(), report.files.len() + report.problems.len()) {
        (0, _) => Ok(()),
        // Its error is printed already.
        (_, 1) => Err(Reported.into()),
        (n, all) => anyhow::bail!("{n} of {all} files failed"),
    }
}

/// A failure already told to the user: only the exit status remains.
#[derive(Debug)]
pub struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failed (see above)")
    }
}

impl Error for Reported {}

/// An error with its causes: `outer: inner: innermost`.
pub fn chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `ferry: 12 files (10 moved, 1 skipped, 1 failed): 3.4 MiB in 1.20 s (2.8 MiB/s)`.
fn total_line(report: &Report) -> String {
    let (done, skipped) = counts(report);
    let secs = report.elapsed.as_secs_f64();
    let moved = report.moved();
    let rate = if secs > 0.0 { (moved as f64 / secs) as u64 } else { moved };
    format!(
        "ferry: {} files ({done} moved, {skipped} skipped, {} failed): {} in {secs:.2} s ({}/s)",
        report.files.len() + report.problems.len(),
        report.failed(),
        human(moved),
        human(rate)
    )
}

fn counts(report: &Report) -> (usize, usize) {
    let done = report.files.iter().filter(|f| matches!(f.outcome, Outcome::Done { .. })).count();
    let skipped = report.files.iter().filter(|f| matches!(f.outcome, Outcome::Skipped(_))).count();
    (done, skipped)
}

/// The `--json` summary: one object, names escaped as the protocol
/// escapes them (so any byte survives JSON's UTF-8).
fn json(report: &Report) -> serde_json::Value {
    let d = report.direction;
    let mut files: Vec<serde_json::Value> = report
        .files
        .iter()
        .map(|f| {
            let mut v = serde_json::json!({
                "source": source_of(d, &f.item),
                "destination": destination_of(d, &f.item),
                "size": f.item.size,
                "bytes": f.moved(),
                "seconds": f.elapsed.as_secs_f64(),
            });
            match &f.outcome {
                Outcome::Done { size, resumed_from, verified } => {
                    v["status"] = "done".into();
                    v["size"] = (*size).into();
                    v["resumed_from"] = (*resumed_from).into();
                    v["verified"] = (*verified).into();
                }
                Outcome::Skipped(why) => {
                    v["status"] = "skipped".into();
                    v["reason"] = (*why).into();
                }
                Outcome::Failed(e) => {
                    v["status"] = "failed".into();
                    v["error"] = chain(e).into();
                }
            }
            v
        })
        .collect();
    files.extend(report.problems.iter().map(|p| {
        serde_json::json!({ "source": p.source, "status": "failed", "error": chain(&p.error), "bytes": 0, "seconds": 0.0 })
    }));
    let (done, skipped) = counts(report);
    serde_json::json!({
        "direction": if d == Direction::Get { "get" } else { "put" },
        "files": files,
        "done": done,
        "skipped": skipped,
        "failed": report.failed(),
        "bytes": report.moved(),
        "seconds": report.elapsed.as_secs_f64(),
    })
}
