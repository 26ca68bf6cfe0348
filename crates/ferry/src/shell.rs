//! `ferry shell ADDR`: an interactive prompt on a ferry server.
//!
//! One loop `poll`s stdin and the socket together, so a server that goes
//! away (closes, or sends `ERR 408 idle timeout`) is noticed at once, even
//! while the user is thinking. Each input line is executed to completion
//! (request sent, whole answer read and printed) before the next, since
//! the server answers in order; `get` and `put` use the client's transfer
//! code, with progress. At end of input the shell half-closes the
//! connection and prints what the server still sends.

mod command;
mod input;

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::bail;
use ferry_client::{Client, ClientError, Reply};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;

use self::command::Next;
use self::input::{InputLine, StdinLines};
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
}

/// Runs `ferry shell`.
pub fn run(args: ShellArgs) -> anyhow::Result<()> {
    let mut client = args.connect.connect(&args.addr)?;
    let cwd = client.pwd()?;
    let interactive = std::io::stdin().is_terminal();
    let heartbeat = Some(Duration::from_secs(args.heartbeat)).filter(|d| !d.is_zero());
    Shell { client, cwd, interactive, input: StdinLines::default(), heartbeat, heard: Instant::now() }.run()
}

/// The shell's state: the connection, the remote working directory (for
/// the prompt) and pending input.
struct Shell {
    client: Client,
    cwd: String,
    /// Stdin is a terminal: show a prompt.
    interactive: bool,
    input: StdinLines,
    /// Silence after which the server is pinged (`None`: never).
    heartbeat: Option<Duration>,
    /// When the server last answered or spoke.
    heard: Instant,
}

impl Shell {
    fn run(&mut self) -> anyhow::Result<()> {
        let mut prompt_due = true;
        loop {
            while let Some(line) = self.input.next_line() {
                match line {
                    InputLine::Line(line) => {
                        if self.execute(&line)? == Next::Quit {
                            return Ok(());
                        }
                        self.heard = Instant::now();
                    }
                    InputLine::Invalid(why) => eprintln!("ferry: {why}"),
                }
                prompt_due = true;
            }
            if self.input.at_eof() {
                if self.interactive {
                    eprintln!();
                }
                return self.finish();
            }
            let replies = self.client.buffered_replies()?;
            self.show_unsolicited(&replies);
            if prompt_due && self.interactive {
                eprint!("ferry:{}> ", self.cwd);
                let _ = std::io::stderr().flush();
                prompt_due = false;
            }
            let (stdin_ready, socket_ready) = self.wait()?;
            if !stdin_ready && !socket_ready {
                self.beat()?;
                continue;
            }
            if socket_ready {
                self.heard = Instant::now();
                match self.client.receive_unsolicited() {
                    Ok(replies) => {
                        self.show_unsolicited(&replies);
                        prompt_due |= !replies.is_empty();
                    }
                    Err(ClientError::Closed { addr }) => {
                        if self.interactive {
                            eprintln!();
                        }
                        bail!("{addr} closed the connection");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if stdin_ready {
                self.input.read_available().map_err(|e| anyhow::anyhow!("cannot read standard input: {e}"))?;
            }
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
        if self.interactive {
            eprintln!();
        }
        bail!(
            "{} stopped answering: no pong to two heartbeats within {} s each; giving up",
            self.client.address(),
            span.as_secs()
        )
    }

    /// Blocks until stdin or the socket is readable (or hung up), or until
    /// a heartbeat is due (then neither is ready).
    fn wait(&self) -> anyhow::Result<(bool, bool)> {
        let stdin = rustix::stdio::stdin();
        let mut fds = [PollFd::new(&stdin, PollFlags::IN), PollFd::new(&self.client, PollFlags::IN)];
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
        if self.interactive && !replies.is_empty() {
            // Leave the prompt's line.
            eprintln!();
        }
        for reply in replies {
            match reply {
                Reply::Ok(text) => println!("OK {text}"),
                Reply::Err { code, message } => eprintln!("ERR {code} {message}"),
            }
        }
    }
}
