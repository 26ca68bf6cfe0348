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
    /// Server address, HOST[:PORT] (port 7070 if omitted).
    addr: String,
    /// Also bounds each command's wait for its answer; the wait for your
    /// input has no limit.
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Runs `ferry shell`.
pub fn run(args: ShellArgs) -> anyhow::Result<()> {
    let mut client = args.connect.connect(&args.addr)?;
    let cwd = client.pwd()?;
    let interactive = std::io::stdin().is_terminal();
    Shell { client, cwd, interactive, input: StdinLines::default() }.run()
}

/// The shell's state: the connection, the remote working directory (for
/// the prompt) and pending input.
struct Shell {
    client: Client,
    cwd: String,
    /// Stdin is a terminal: show a prompt.
    interactive: bool,
    input: StdinLines,
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
            if socket_ready {
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

    /// Blocks until stdin or the socket is readable (or hung up).
    fn wait(&self) -> anyhow::Result<(bool, bool)> {
        let stdin = rustix::stdio::stdin();
        let mut fds = [PollFd::new(&stdin, PollFlags::IN), PollFd::new(&self.client, PollFlags::IN)];
        loop {
            match poll(&mut fds, None) {
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
