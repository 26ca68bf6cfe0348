//! `ferry shell ADDR`: an interactive prompt on a ferry server.
//!
//! One loop `poll`s the input and the socket together, so a server that
//! goes away (closes, or sends `ERR 408 idle timeout`) is noticed at once,
//! even while the user is thinking. On a terminal the input is a line
//! editor on its own thread (`editor.rs`: history, completion), which
//! hands over whole lines through a channel and an eventfd; piped input is
//! read straight from stdin, without editor or prompt. Each line is
//! executed to completion (request sent, whole answer read and printed)
//! before the next, since the server answers in order; `get` and `put`
//! use the client's transfer code, with progress, and Ctrl-C abandons them
//! (`interrupt.rs`). At end of input the shell half-closes the connection
//! and prints what the server still sends.

mod batch;
mod command;
mod complete;
mod ctrl_c;
mod editor;
mod input;
mod interrupt;
mod local;

use std::io::IsTerminal;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use ferry_client::{Client, ClientError, Reply};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;

use self::command::Next;
use self::editor::{Editor, Event, history_path};
use self::input::{InputLine, StdinLines};
use self::interrupt::Interrupts;
use crate::connect::ConnectArgs;

/// Arguments of `ferry shell`.
#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    /// Server address, HOST[:PORT] (port 7070 if omitted), or unix:/PATH or unix:@NAME.
    addr: String,
    /// Also bounds each command's wait for its answer; the wait for your
    /// input has no limit.
    #[command(flatten)]
    connect: ConnectArgs,
    /// After SECS seconds without a word from the server, send it a `ping`;
    /// no `pong` within SECS, twice in a row, means it is gone: the shell
    /// says so and exits 1 (so a dead server is noticed within about three
    /// times SECS). 0 turns heartbeats off.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    heartbeat: u64,
    /// With commands piped in (a batch): go on after a command fails
    /// instead of stopping there. Either way the exit status is 1 if any
    /// command failed.
    #[arg(long)]
    keep_going: bool,
}

/// Runs `ferry shell`.
pub fn run(args: ShellArgs) -> anyhow::Result<()> {
    let mut client = args.connect.connect(&args.addr)?;
    let cwd = client.pwd()?;
    let interactive = std::io::stdin().is_terminal();
    let heartbeat = Some(Duration::from_secs(args.heartbeat)).filter(|d| !d.is_zero());
    let mut shell = Shell {
        client,
        cwd,
        heartbeat,
        heard: Instant::now(),
        addr: args.addr,
        connect: args.connect,
        interrupts: None,
    };
    if !interactive {
        return shell.run_piped(args.keep_going);
    }
    // Before any other thread starts, so that all of them block SIGINT.
    shell.interrupts = Some(Arc::new(Interrupts::start()?));
    // The normalized address (`HOST:PORT`), so `host` and `host:7070` share one.
    let editor = Editor::start(history_path(shell.client.address()))?;
    shell.run_interactive(&editor)
}

/// The shell's state: the connection, the remote working directory (for
/// the prompt) and how to connect again.
struct Shell {
    client: Client,
    cwd: String,
    /// Silence after which the server is pinged (`None`: never).
    heartbeat: Option<Duration>,
    /// When the server last answered or spoke.
    heard: Instant,
    /// The address and options given, to reconnect after an interrupted
    /// transfer.
    addr: String,
    connect: ConnectArgs,
    /// Ctrl-C handling for commands (on a terminal only; piped, Ctrl-C
    /// ends the shell as it ends any filter).
    interrupts: Option<Arc<Interrupts>>,
}

impl Shell {
    /// Commands from a pipe or file, one per line, no prompt (a batch,
    /// as `sftp -b`): it stops at the first command that fails unless
    /// `keep_going`, and fails if any command failed.
    fn run_piped(&mut self, keep_going: bool) -> anyhow::Result<()> {
        let mut input = StdinLines::default();
        let stdin = rustix::stdio::stdin();
        let (mut number, mut failed) = (0, 0);
        let verdict = |failed: usize| match failed {
            0 => Ok(()),
            1 => Err(anyhow::anyhow!("a command failed")),
            n => Err(anyhow::anyhow!("{n} commands failed")),
        };
        loop {
            while let Some(line) = input.next_line() {
                number += 1;
                let next = match line {
                    InputLine::Line(line) => self.execute(&line)?,
                    InputLine::Invalid(why) => {
                        eprintln!("ferry: {why}");
                        Next::Failed
                    }
                };
                self.heard = Instant::now();
                match next {
                    Next::Quit => return verdict(failed),
                    Next::Failed if !keep_going => {
                        bail!("stopped at line {number}, which failed (--keep-going runs the rest)")
                    }
                    Next::Failed => failed += 1,
                    Next::Continue => {}
                }
            }
            if input.at_eof() {
                self.finish()?;
                return verdict(failed);
            }
            let replies = self.client.buffered_replies()?;
            self.show_unsolicited(&replies);
            let (stdin_ready, socket_ready) = self.wait(stdin)?;
            if !stdin_ready && !socket_ready {
                self.beat()?;
                continue;
            }
            if socket_ready {
                let replies = self.hear()?;
                self.show_unsolicited(&replies);
            }
            if stdin_ready {
                input.read_available().map_err(|e| anyhow::anyhow!("cannot read standard input: {e}"))?;
            }
        }
    }

    /// Commands from the line editor, with a prompt. Whatever ends the
    /// shell, the terminal is left as it was found.
    fn run_interactive(&mut self, editor: &Editor) -> anyhow::Result<()> {
        loop {
            editor.read_line(format!("ferry:{}> ", self.cwd));
            let event = match self.at_prompt(editor) {
                Ok(event) => event,
                Err(e) => {
                    // The editor may have the terminal raw: take it back
                    // and leave the prompt's line before saying why.
                    editor.restore_terminal();
                    eprintln!();
                    return Err(e);
                }
            };
            match event {
                Event::Line(line) => {
                    if self.execute(&line)? == Next::Quit {
                        return Ok(());
                    }
                    self.heard = Instant::now();
                }
                Event::Interrupted => {}
                Event::Eof => return self.finish(),
                Event::Failed(why) => bail!("cannot read the terminal: {why}"),
                Event::List { .. } => unreachable!("at_prompt answers listings itself"),
            }
        }
    }

    /// While the editor has the prompt: watches the socket, sends
    /// heartbeats and answers the editor's listings, until the editor has
    /// a line (or Ctrl-C, Ctrl-D).
    fn at_prompt(&mut self, editor: &Editor) -> anyhow::Result<Event> {
        loop {
            let (input_ready, socket_ready) = self.wait(editor.fd())?;
            if !input_ready && !socket_ready {
                self.beat()?;
                continue;
            }
            if socket_ready {
                let replies = self.hear()?;
                if !replies.is_empty() {
                    // Said before a close (a goodbye, an idle timeout):
                    // print it on a sane terminal; the close follows.
                    editor.restore_terminal();
                    eprintln!();
                    self.show_unsolicited(&replies);
                }
            }
            if input_ready {
                for event in editor.events() {
                    match event {
                        Event::List { dir, reply } => {
                            let names = self.list(dir.as_deref())?;
                            let _ = reply.send(names);
                        }
                        other => return Ok(other),
                    }
                }
            }
        }
    }

    /// The socket is readable between commands: the server said something
    /// on its own, or closed.
    fn hear(&mut self) -> anyhow::Result<Vec<Reply>> {
        self.heard = Instant::now();
        match self.client.receive_unsolicited() {
            Ok(replies) => Ok(replies),
            Err(ClientError::Closed { addr }) => bail!("{addr} closed the connection"),
            Err(e) => Err(e.into()),
        }
    }

    /// The server has been silent for a heartbeat: ping it; if no pong
    /// comes within the span, ping again and wait for both; then give up.
    fn beat(&mut self) -> anyhow::Result<()> {
        let Some(span) = self.heartbeat else { return Ok(()) };
        for owed in 0..2 {
            if self.client.ping_within(span, owed)?.is_some() {
                self.heard = Instant::now();
                return Ok(());
            }
            tracing::debug!(owed, "heartbeat: no pong within {span:?}");
        }
        bail!(
            "{} stopped answering: no pong to two heartbeats within {} s each; giving up",
            self.client.address(),
            span.as_secs()
        )
    }

    /// Blocks until `input` or the socket is readable (or hung up), or
    /// until a heartbeat is due (then neither is ready).
    fn wait(&self, input: BorrowedFd<'_>) -> anyhow::Result<(bool, bool)> {
        let mut fds = [PollFd::new(&input, PollFlags::IN), PollFd::new(&self.client, PollFlags::IN)];
        let due = self.heartbeat.map(|span| (self.heard + span).saturating_duration_since(Instant::now()));
        let timeout = due.map(|d| {
            rustix::event::Timespec::try_from(d).unwrap_or(rustix::event::Timespec { tv_sec: i64::MAX, tv_nsec: 0 })
        });
        loop {
            match poll(&mut fds, timeout.as_ref()) {
                Ok(_) => break,
                Err(Errno::INTR) => continue,
                Err(e) => bail!("poll failed: {e}"),
            }
        }
        let ready = |fd: &PollFd<'_>| fd.revents().intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR);
        Ok((ready(&fds[0]), ready(&fds[1])))
    }

    /// End of input: half-close, then print what the server still sends
    /// until it closes.
    fn finish(&mut self) -> anyhow::Result<()> {
        let replies = self.client.buffered_replies()?;
        self.show_unsolicited(&replies);
        self.client.shutdown_write()?;
        loop {
            match self.client.receive_unsolicited() {
                Ok(replies) => self.show_unsolicited(&replies),
                Err(ClientError::Closed { .. }) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Prints lines the server sent on its own (a goodbye before closing).
    fn show_unsolicited(&self, replies: &[Reply]) {
        for reply in replies {
            match reply {
                Reply::Ok(text) => println!("OK {text}"),
                Reply::Err { code, message } => eprintln!("ERR {code} {message}"),
            }
        }
    }

    /// The socket, for arming Ctrl-C.
    fn socket(&self) -> BorrowedFd<'_> {
        self.client.as_fd()
    }
}
