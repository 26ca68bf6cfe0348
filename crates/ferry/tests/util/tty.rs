//! A program in a real pseudo-terminal, typed at as a person would: a tmux
//! server of its own (its own socket, so tests run in parallel), keys sent
//! with `send-keys`, the screen read with `capture-pane`. Waits poll the
//! screen with a bound (a readiness check, not a fixed sleep).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::PATIENCE;

/// One tmux session running one command; the tmux server is killed on
/// drop.
pub struct Tty {
    socket: String,
}

/// What the pane runs after the program, so a test can read how it ended
/// and in which state it left the terminal: `EXIT=N`, then the terminal
/// flags that raw mode turns off (a `-` before one means it is still off).
const AFTER: &str = "; echo \"EXIT=$?\"; echo \"FLAGS $(stty -a | tr ' ' '\\n' | grep -E '^-?(icanon|echo|isig|icrnl|opost)$' | tr '\\n' ' ')\"; sleep 600";

impl Tty {
    /// Starts `program args...` in a 100x30 terminal, in `cwd`, with `env`.
    pub fn start(cwd: &Path, env: &[(&str, &str)], program: &str, args: &[&str]) -> Tty {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = format!("ferry-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        // Ctrl-C goes to the whole foreground group, this `sh` too: a trap
        // keeps it alive (a trap, unlike an ignored signal, is not
        // inherited by the program).
        let mut line = String::from("trap 'true' INT; ");
        for (k, v) in env {
            line.push_str(&format!("{k}='{v}' "));
        }
        line.push_str(&format!("'{program}'"));
        for a in args {
            line.push_str(&format!(" '{a}'"));
        }
        line.push_str(AFTER);
        let status = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "30", "-c"])
            .arg(cwd)
            .args(["env", "TERM=xterm", "sh", "-c", &line])
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux new-session failed");
        Tty { socket }
    }

    /// Sends keys as tmux names them (`Enter`, `Up`, `Tab`, `C-c`; other
    /// words are typed literally).
    pub fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux").args(["-L", &self.socket, "send-keys"]).args(keys).status().expect("tmux");
        assert!(status.success());
    }

    /// Types `text` literally.
    pub fn type_text(&self, text: &str) {
        let status = Command::new("tmux").args(["-L", &self.socket, "send-keys", "-l", text]).status().expect("tmux");
        assert!(status.success());
    }

    /// The whole screen and scroll-back, as text.
    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-S", "-", "-E", "-"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (bounded) until `check` holds for the screen; returns it.
    pub fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Waits until the screen shows `text`.
    pub fn wait_text(&self, text: &str) -> String {
        self.wait_for(&format!("{text:?}"), |s| s.contains(text))
    }

    /// Waits until `text` is on the screen `n` times.
    pub fn wait_count(&self, text: &str, n: usize) -> String {
        self.wait_for(&format!("{n} x {text:?}"), |s| s.matches(text).count() >= n)
    }

    /// The last non-empty line on the screen, trailing blanks removed.
    pub fn last_line(&self) -> String {
        self.screen().lines().rev().map(str::trim_end).find(|l| !l.is_empty()).unwrap_or_default().to_owned()
    }

    /// Waits for the program to end; returns its exit status and the
    /// terminal flags it left (see `AFTER`).
    pub fn wait_exit(&self) -> (i32, String) {
        let screen = self.wait_text("FLAGS ");
        let code = screen
            .lines()
            .find_map(|l| l.strip_prefix("EXIT="))
            .and_then(|c| c.trim().parse().ok())
            .expect("exit status shown");
        let flags = screen.lines().find_map(|l| l.strip_prefix("FLAGS ")).unwrap_or_default().trim().to_owned();
        (code, flags)
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}
