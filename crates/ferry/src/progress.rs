//! Progress of one transfer as a person sees it: an indicatif bar (bytes,
//! rate, ETA) while stdout is a terminal, a bar for hashing a big file
//! before an upload, a line when a transfer resumes, notices (a partial
//! download discarded, and why), and in every case one summary line at the
//! end, e.g.
//! `ferry: got /big.bin -> big.bin: 64.0 MiB in 0.31 s (206 MiB/s), resumed at 12.0 MiB`.
//! When the file itself goes to standard output, all of it goes to stderr.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferry_client::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// The bar's layouts, by terminal width: the label (the only part that
/// shrinks: `wide_msg` truncates it) and, as room allows, a bar, bytes
/// done / total, the rate and the time left (`eta_opt`: blank until it is
/// known). The fixed parts fit in 40 columns with room for a label.
const WIDE: &str = "{wide_msg} [{bar:25}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>11}{eta_opt}";
const MEDIUM: &str = "{wide_msg} [{bar:16}] {percent:>3}% {binary_bytes_per_sec:>11}{eta_opt}";
const NARROW: &str = "{wide_msg} {percent:>3}% {binary_bytes_per_sec:>11}{eta_opt}";

/// Files smaller than this are hashed without a bar (it would only flash).
const HASH_BAR_MIN: u64 = 16 << 20;

/// `-q`: no bar, no "resuming" line and no summary line (errors and
/// notices still go to stderr).
static QUIET: AtomicBool = AtomicBool::new(false);

/// `-s`: `-q`, and no notices either: only errors.
static SILENT: AtomicBool = AtomicBool::new(false);

/// Silences bars and summary lines for this process (`ferry -q`).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Silences everything but errors (`ferry get -s`).
pub fn set_silent() {
    QUIET.store(true, Ordering::Relaxed);
    SILENT.store(true, Ordering::Relaxed);
}

/// Whether `-s` was given.
pub fn is_silent() -> bool {
    SILENT.load(Ordering::Relaxed)
}

/// Prints a notice (`ferry: TEXT` on stderr) unless `-s`.
pub fn notice(text: &str) {
    if !is_silent() {
        eprintln!("ferry: {text}");
    }
}

/// Tracks one transfer for the terminal. Implements the client's
/// [`Progress`] and remembers what the summary line needs.
pub struct TransferProgress {
    label: String,
    show_bar: bool,
    /// Bar and summary go to stderr (the payload is on stdout).
    on_stderr: bool,
    hash_bar: Option<ProgressBar>,
    bar: Option<ProgressBar>,
    started: Option<Instant>,
    elapsed: Duration,
    already: u64,
    moved: u64,
}

impl TransferProgress {
    /// A tracker whose bar is labelled `label` (the remote path). The bar
    /// is drawn only when stdout is a terminal.
    pub fn new(label: impl Into<String>) -> TransferProgress {
        TransferProgress {
            label: label.into(),
            show_bar: std::io::stdout().is_terminal() && !is_quiet(),
            on_stderr: false,
            hash_bar: None,
            bar: None,
            started: None,
            elapsed: Duration::ZERO,
            already: 0,
            moved: 0,
        }
    }

    /// Draws the bar and prints the summary on stderr instead, because
    /// stdout carries the file itself (`ferry get ADDR PATH -`).
    pub fn on_stderr(mut self) -> TransferProgress {
        self.on_stderr = true;
        self.show_bar = std::io::stderr().is_terminal() && !is_quiet();
        self
    }

    /// Prints the [`summary`](Self::summary) line, unless `-q`.
    pub fn report(&self, verb: &str, from: &str, to: &str, size: u64, verified: bool) {
        if is_quiet() {
            return;
        }
        let line = self.summary(verb, from, to, size, verified);
        match self.on_stderr {
            true => eprintln!("{line}"),
            false => println!("{line}"),
        }
    }

    fn target(&self) -> ProgressDrawTarget {
        match self.on_stderr {
            true => ProgressDrawTarget::stderr(),
            false => ProgressDrawTarget::stdout(),
        }
    }

    /// The summary line: `ferry: VERB FROM -> TO: SIZE in T s (RATE/s)`, plus
    /// where it resumed and whether the SHA-256 was verified.
    pub fn summary(&self, verb: &str, from: &str, to: &str, size: u64, verified: bool) -> String {
        summary_line(verb, from, to, size, self.elapsed, self.moved, self.already, verified)
    }
}

/// `ferry: VERB FROM -> TO: SIZE in T s (RATE/s)`, plus where it resumed
/// and whether the SHA-256 was verified; the rate counts only the bytes
/// this run `moved`.
#[allow(clippy::too_many_arguments)]
pub fn summary_line(
    verb: &str,
    from: &str,
    to: &str,
    size: u64,
    elapsed: Duration,
    moved: u64,
    already: u64,
    verified: bool,
) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { (moved as f64 / secs) as u64 } else { moved };
    let mut line = format!("ferry: {verb} {from} -> {to}: {} in {secs:.2} s ({}/s)", human(size), human(rate));
    if already > 0 {
        line.push_str(&format!(", resumed at {}", human(already)));
    }
    if verified {
        line.push_str(", SHA-256 verified");
    }
    line
}

impl Progress for TransferProgress {
    fn start(&mut self, total: u64, already: u64) {
        self.already = already;
        self.started = Some(Instant::now());
        if already > 0 && !is_quiet() {
            eprintln!("ferry: resuming {} at {} of {}", self.label, human(already), human(total));
        }
        if self.show_bar {
            self.bar = Some(bar(self.target(), self.on_stderr, &self.label, total, already));
        }
    }

    fn advance(&mut self, n: u64) {
        self.moved += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn finish(&mut self) {
        self.elapsed = self.started.map_or(Duration::ZERO, |s| s.elapsed());
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn hash_start(&mut self, total: u64) {
        if self.show_bar && total >= HASH_BAR_MIN {
            let label = format!("SHA-256 of {}", self.label);
            self.hash_bar = Some(bar(self.target(), self.on_stderr, &label, total, 0));
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

    /// Shown even with `-q`: it explains why a transfer took longer.
    fn notice(&mut self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| notice(text)),
            None => notice(text),
        }
    }
}

/// Whether `-q` was given.
pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A bar for a transfer of `total` bytes of which `already` were there
/// before (a resume). Its rate and ETA count only bytes moved from now on:
/// the estimator is told about the resumed position first and then reset,
/// so the jump to `already` is not read as bytes per second.
pub fn bar(target: ProgressDrawTarget, on_stderr: bool, label: &str, total: u64, already: u64) -> ProgressBar {
    let style = bar_style(terminal_width(on_stderr));
    let bar = ProgressBar::with_draw_target(Some(total), target).with_style(style).with_message(label.to_owned());
    bar.set_position(already);
    bar.reset_eta();
    bar
}

/// The layout for a terminal `width` columns wide (see [`WIDE`]).
pub fn bar_style(width: u16) -> ProgressStyle {
    let template = match width {
        0..60 => NARROW,
        60..100 => MEDIUM,
        _ => WIDE,
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("eta_opt", eta_opt)
        .progress_chars("=> ")
}

/// ` ETA 1m05s`, or nothing while no rate is known yet (indicatif's own
/// `{eta}` says `0s` then).
fn eta_opt(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let Some(len) = state.len() else { return };
    let rate = state.per_sec();
    if !(rate.is_finite() && rate > 0.0) || state.pos() >= len || state.elapsed() < Duration::from_millis(500) {
        return;
    }
    let secs = ((len - state.pos()) as f64 / rate).ceil() as u64;
    let _ = match secs {
        0..60 => write!(w, " ETA {secs}s"),
        60..3600 => write!(w, " ETA {}m{:02}s", secs / 60, secs % 60),
        3600..360_000 => write!(w, " ETA {}h{:02}m", secs / 3600, secs / 60 % 60),
        _ => Ok(()),
    };
}

/// The width of the terminal the bar goes to (80 if unknown).
pub fn terminal_width(on_stderr: bool) -> u16 {
    let size = match on_stderr {
        true => rustix::termios::tcgetwinsize(std::io::stderr()),
        false => rustix::termios::tcgetwinsize(std::io::stdout()),
    };
    match size {
        Ok(size) if size.ws_col > 0 => size.ws_col,
        _ => 80,
    }
}

/// Bytes for people: `512 B`, `12.0 KiB`, `64.0 MiB`, `1.5 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_transfer_rates_only_the_bytes_it_moved() {
        let bar = bar(ProgressDrawTarget::hidden(), false, "/big", 2 << 30, 1 << 30);
        let started = Instant::now();
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(5)); // time must pass for a rate
            bar.inc(64 << 10);
        }
        let elapsed = started.elapsed().as_secs_f64();
        // 640 KiB moved: about 640 KiB / elapsed. Counting the resumed
        // 1 GiB would read as tens of GiB/s.
        let honest = (640u64 << 10) as f64 / elapsed;
        assert!(bar.per_sec() < honest * 4.0, "{} B/s for {honest} B/s moved", bar.per_sec());
    }

    /// A terminal that keeps what is written to it.
    #[derive(Debug, Default, Clone)]
    struct Screen(std::sync::Arc<std::sync::Mutex<Vec<String>>>, u16);

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            self.1
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().extend(s.split('\n').filter(|l| !l.is_empty()).map(str::to_owned));
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// At every width down to 40 columns the bar fits on its line (the
    /// label is cut, not the numbers), and no ETA is shown before a rate
    /// is known; once one is, it is.
    #[test]
    fn the_bar_fits_narrow_terminals_and_hides_an_unknown_eta() {
        for width in [40u16, 59, 60, 99, 100, 160] {
            let screen = Screen(Default::default(), width);
            let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
            let label = "/a/rather/long/remote/path/to/some file with spaces.iso";
            let bar = ProgressBar::with_draw_target(Some(10 << 30), target).with_style(bar_style(width));
            bar.set_message(label);
            bar.set_position(5 << 30);
            bar.tick();
            let lines = screen.0.lock().unwrap().clone();
            let last = lines.last().cloned().unwrap_or_default();
            for line in &lines {
                assert!(line.chars().count() <= usize::from(width), "{width} columns: {line:?}");
            }
            assert!(last.contains("50%") || last.contains("GiB/10.00 GiB"), "{width}: {last:?}");
            assert!(!last.contains("ETA"), "no rate yet, no ETA: {last:?}");
            for _ in 0..12 {
                std::thread::sleep(Duration::from_millis(50)); // time must pass for a rate
                bar.inc(1 << 20);
            }
            bar.tick();
            let last = screen.0.lock().unwrap().last().cloned().unwrap_or_default();
            assert!(last.contains("ETA") && last.chars().count() <= usize::from(width), "{width}: {last:?}");
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(12 * 1024), "12.0 KiB");
        assert_eq!(human(64 << 20), "64.0 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }

    #[test]
    fn summary_mentions_resume_and_verification() {
        let mut p = TransferProgress::new("/big.bin");
        p.show_bar = false;
        p.start(64 << 20, 12 << 20);
        p.advance(52 << 20);
        p.finish();
        let line = p.summary("got", "/big.bin", "big.bin", 64 << 20, true);
        assert!(line.starts_with("ferry: got /big.bin -> big.bin: 64.0 MiB in "), "{line}");
        assert!(line.ends_with(", resumed at 12.0 MiB, SHA-256 verified"), "{line}");
    }
}
