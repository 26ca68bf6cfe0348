//! The line editor (rustyline: arrow keys, Home/End, Ctrl-R, history,
//! Tab completion) on a thread of its own.
//!
//! rustyline blocks in `readline`, but the shell must keep watching the
//! socket while the user is at the prompt (a server that closes or stops
//! answering is noticed at once; heartbeats run). So the editor thread
//! only edits: the shell's thread asks it for a line ([`Editor::read_line`])
//! and `poll`s the socket together with an eventfd the editor signals when
//! it has something ([`Editor::events`]). The editor owns no connection: to
//! complete a remote path it asks the shell's thread for the listing, so
//! one thread owns the socket. The terminal's settings are saved before
//! the editor first touches them and put back by [`Editor::restore_terminal`]
//! (and on drop), so leaving the shell while the editor has the terminal
//! in raw mode never leaves it raw.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};

use rustix::event::{EventfdFlags, eventfd};
use rustix::termios::{OptionalActions, Termios, tcgetattr, tcsetattr};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context};

use super::complete::{Name, Target, candidates, commands, split_path, word_at};
use super::ctrl_c::{self, Dropped};

/// What the editor thread tells the shell's thread.
pub enum Event {
    /// The user entered a line.
    Line(String),
    /// Ctrl-C at the prompt: the line was dropped.
    Interrupted,
    /// Ctrl-D on an empty line.
    Eof,
    /// The editor cannot read the terminal.
    Failed(String),
    /// Tab on a remote path: list this directory (`None`: the current
    /// one) and send the names back.
    List { dir: Option<Vec<u8>>, reply: Sender<Vec<Name>> },
}

/// The shell thread's end of the editor.
pub struct Editor {
    prompts: Sender<String>,
    events: Receiver<Event>,
    ready: Arc<OwnedFd>,
    saved: Option<Termios>,
}

impl Editor {
    /// Saves the terminal's settings, loads the history from `history`
    /// (a file per server) and starts the editor thread, idle until asked
    /// for a line.
    pub fn start(history: Option<PathBuf>) -> anyhow::Result<Editor> {
        let saved = tcgetattr(rustix::stdio::stdin()).ok();
        let ready = Arc::new(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?);
        let (event_tx, events) = mpsc::channel();
        let (prompts, prompt_rx) = mpsc::channel();
        let notify = Notify { events: event_tx, ready: Arc::clone(&ready) };
        let config = Config::builder()
            .auto_add_history(false)
            .history_ignore_space(true)
            .history_ignore_dups(true)?
            .max_history_size(1000)?
            .completion_type(CompletionType::List)
            .build();
        let mut editor = rustyline::Editor::<Helper, FileHistory>::with_config(config)?;
        editor.set_helper(Some(Helper { notify: notify.clone() }));
        let dropped = Dropped::default();
        let ctrl_c = rustyline::EventHandler::Conditional(Box::new(dropped.clone()));
        editor.bind_sequence(rustyline::KeyEvent::ctrl('C'), ctrl_c);
        let history = history.and_then(|path| prepare_history(&mut editor, path));
        std::thread::Builder::new()
            .name("ferry-editor".into())
            .spawn(move || edit(editor, prompt_rx, notify, (history, dropped)))?;
        Ok(Editor { prompts, events, ready, saved })
    }

    /// Asks the editor for the next line, showing `prompt`.
    pub fn read_line(&self, prompt: String) {
        // A send fails only once the editor thread has ended, which it
        // reported as an event already.
        let _ = self.prompts.send(prompt);
    }

    /// Readable when the editor has events.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.ready.as_fd()
    }

    /// The events the editor has sent since the last call.
    pub fn events(&self) -> Vec<Event> {
        let mut count = [0u8; 8];
        let _ = rustix::io::read(&*self.ready, &mut count);
        self.events.try_iter().collect()
    }

    /// Puts the terminal back as it was before the editor started (the
    /// editor may be in `readline`, with the terminal raw).
    pub fn restore_terminal(&self) {
        if let Some(saved) = &self.saved {
            let _ = tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, saved);
        }
    }
}

impl Drop for Editor {
    fn drop(&mut self) {
        self.restore_terminal();
    }
}

/// The editor thread's way to the shell's: a channel, and the eventfd
/// that wakes the shell's `poll`.
#[derive(Clone)]
struct Notify {
    events: Sender<Event>,
    ready: Arc<OwnedFd>,
}

impl Notify {
    fn send(&self, event: Event) -> bool {
        if self.events.send(event).is_err() {
            return false;
        }
        let _ = rustix::io::write(&*self.ready, &1u64.to_ne_bytes());
        true
    }
}

/// The editor thread: one `readline` per prompt the shell sends.
fn edit(
    mut editor: rustyline::Editor<Helper, FileHistory>,
    prompts: Receiver<String>,
    notify: Notify,
    (history, dropped): (Option<PathBuf>, Dropped),
) {
    let mut warned = false;
    while let Ok(prompt) = prompts.recv() {
        let event = match editor.readline(&prompt) {
            Ok(line) => {
                if let Some(path) = &history {
                    // A line the history skips (blank, leading space, the
                    // same as the last) adds nothing to save.
                    if matches!(editor.add_history_entry(line.as_str()), Ok(true))
                        && let Err(e) = editor.append_history(path)
                        && !std::mem::replace(&mut warned, true)
                    {
                        eprintln!("ferry: warning: cannot save the history to {}: {e}", path.display());
                    }
                } else {
                    let _ = editor.add_history_entry(line.as_str());
                }
                Event::Line(line)
            }
            Err(ReadlineError::Interrupted) => {
                ctrl_c::mark(&prompt, &dropped.take());
                Event::Interrupted
            }
            Err(ReadlineError::Eof) => Event::Eof,
            Err(e) => Event::Failed(e.to_string()),
        };
        if !notify.send(event) {
            return;
        }
    }
}

/// Loads the history file, creating its directory; returns where to save
/// (or `None`, with a warning, when the directory cannot be made).
fn prepare_history(editor: &mut rustyline::Editor<Helper, FileHistory>, path: PathBuf) -> Option<PathBuf> {
    if let Some(dir) = path.parent()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("ferry: warning: no history: cannot create {}: {e}", dir.display());
        return None;
    }
    match editor.load_history(&path) {
        Ok(()) => {}
        Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => eprintln!("ferry: warning: cannot read the history {}: {e}", path.display()),
    }
    Some(path)
}

/// Where the history of the shell on `addr` lives:
/// `$XDG_STATE_HOME/ferry/history/ADDR` (default `~/.local/state`), with
/// `:` and other characters unfit for a file name as `_`.
pub fn history_path(addr: &str) -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let base = std::env::var_os("XDG_STATE_HOME")
        .and_then(absolute)
        .or_else(|| std::env::var_os("HOME").and_then(absolute).map(|h| h.join(".local/state")))?;
    let name: String =
        addr.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    Some(base.join("ferry/history").join(name))
}

/// Completion for the editor (the other helper roles do nothing).
struct Helper {
    notify: Notify,
}

impl Helper {
    /// Asks the shell's thread for a remote listing.
    fn remote(&self, dir: Option<&[u8]>) -> Vec<Name> {
        let (reply, names) = mpsc::channel();
        if !self.notify.send(Event::List { dir: dir.map(<[u8]>::to_vec), reply }) {
            return Vec::new();
        }
        names.recv().unwrap_or_default()
    }
}

/// A local directory's names.
fn local(dir: Option<&[u8]>) -> Vec<Name> {
    let dir = dir.map_or(Path::new("."), |d| Path::new(OsStr::from_bytes(d)));
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .map(|e| Name { dir: e.path().is_dir(), name: e.file_name().as_bytes().to_vec() })
        .collect()
}

impl Completer for Helper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let word = word_at(line, pos);
        let (dir, _) = split_path(&word.text);
        let found = match word.target {
            Target::Command => commands(&word.text),
            Target::Remote => candidates(&word.text, &self.remote(dir)),
            Target::Local => candidates(&word.text, &local(dir)),
            Target::Nothing => Vec::new(),
        };
        Ok((word.start, found.into_iter().map(|(display, replacement)| Pair { display, replacement }).collect()))
    }
}

impl Hinter for Helper {
    type Hint = String;
}

impl Highlighter for Helper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }
}

impl Validator for Helper {}

impl rustyline::Helper for Helper {}
