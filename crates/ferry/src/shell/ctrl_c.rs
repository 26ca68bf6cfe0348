//! Ctrl-C at the prompt, shown as shells show it: the dropped line stays on
//! the screen marked `^C`, so it cannot be mistaken for a command that ran.
//!
//! rustyline answers Ctrl-C by moving the cursor past the line and starting
//! a new one, with nothing to tell the dropped text from an entered line.
//! A key binding ([`Dropped`]) remembers the line as Ctrl-C drops it; once
//! rustyline has given the terminal back, [`mark`] goes up to the line's
//! last row and writes `^C` after its end.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use rustyline::{Cmd, ConditionalEventHandler, Event, EventContext, RepeatCount};
use unicode_width::UnicodeWidthStr as _;

/// The Ctrl-C binding: remembers the line, then interrupts as usual.
#[derive(Clone, Default)]
pub(super) struct Dropped(Arc<Mutex<String>>);

impl Dropped {
    /// The line Ctrl-C dropped last.
    pub(super) fn take(&self) -> String {
        self.0.lock().map(|mut line| std::mem::take(&mut *line)).unwrap_or_default()
    }
}

impl ConditionalEventHandler for Dropped {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext<'_>) -> Option<Cmd> {
        if let Ok(mut line) = self.0.lock() {
            *line = ctx.line().to_string();
        }
        Some(Cmd::Interrupt)
    }
}

/// Writes `^C` after a dropped line that `prompt` preceded, the cursor
/// being at the start of the row below the line (where rustyline leaves it).
pub(super) fn mark(prompt: &str, line: &str) {
    let columns = rustix::termios::tcgetwinsize(rustix::stdio::stdout())
        .map(|size| usize::from(size.ws_col))
        .ok()
        .filter(|&c| c > 0)
        .unwrap_or(80);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(sequence(columns, prompt, line).as_bytes());
    let _ = stdout.flush();
}

/// Up one row, to the column just past the text, `^C`, and back down.
fn sequence(columns: usize, prompt: &str, line: &str) -> String {
    // rustyline shows a control character as ^X: two columns.
    let controls = line.chars().filter(|c| c.is_control()).count();
    let width = prompt.width() + line.width() + 2 * controls;
    format!("\x1b[A\x1b[{}G^C\r\n", width % columns + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_goes_just_past_the_text_on_its_last_row() {
        assert_eq!(sequence(100, "ferry:/> ", "cd sub"), "\x1b[A\x1b[16G^C\r\n");
        assert_eq!(sequence(10, "ferry:/> ", "cd sub"), "\x1b[A\x1b[6G^C\r\n", "wrapped: 15 columns on 10");
        assert_eq!(sequence(100, "ferry:/> ", "café"), "\x1b[A\x1b[14G^C\r\n");
        assert_eq!(sequence(100, "ferry:/> ", "日本"), "\x1b[A\x1b[14G^C\r\n", "wide characters");
    }
}
