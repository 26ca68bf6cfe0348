//! Lines from standard input, read only when `poll` says it is readable,
//! so the shell never blocks on stdin while the server may be talking.

use std::io;

use rustix::io::Errno;

/// The longest input line kept; longer ones are dropped with an error
/// (the protocol's own limit is 4096 bytes).
const MAX_INPUT_LINE: usize = 64 * 1024;

/// One line of input, or why it was dropped.
#[derive(Debug, PartialEq, Eq)]
pub enum InputLine {
    /// A line without its `\n` / `\r\n`.
    Line(String),
    /// The line was not UTF-8 or too long.
    Invalid(&'static str),
}

/// What stdin delivered so far, split into lines on demand.
#[derive(Debug, Default)]
pub struct StdinLines {
    buf: Vec<u8>,
    /// Dropping the rest of an overlong line until its `\n`.
    skipping: bool,
    eof: bool,
}

impl StdinLines {
    /// Reads what stdin has now (one `read`, straight from the descriptor,
    /// so nothing hides in a user-space buffer that `poll` cannot see).
    /// Returns false at end of input.
    pub fn read_available(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = loop {
            match rustix::io::read(rustix::stdio::stdin(), &mut chunk) {
                Ok(n) => break n,
                Err(Errno::INTR) => continue,
                // A non-blocking stdin (shared with another program) with
                // nothing after all: wait for the next poll.
                Err(Errno::AGAIN) => return Ok(true),
                Err(e) => return Err(e.into()),
            }
        };
        if n == 0 {
            self.eof = true;
        }
        self.push(&chunk[..n]);
        Ok(n > 0)
    }

    /// True once stdin reported end of input.
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line (or, after end of input, the unterminated
    /// last one).
    pub fn next_line(&mut self) -> Option<InputLine> {
        loop {
            let Some(at) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_INPUT_LINE {
                    self.buf.clear();
                    self.skipping = true;
                    return Some(InputLine::Invalid("input line too long"));
                }
                if self.eof && !self.buf.is_empty() && !self.skipping {
                    let last = std::mem::take(&mut self.buf);
                    return Some(decode(last));
                }
                return None;
            };
            let mut line: Vec<u8> = self.buf.drain(..=at).collect();
            if std::mem::take(&mut self.skipping) {
                continue;
            }
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Some(decode(line));
        }
    }
}

fn decode(line: Vec<u8>) -> InputLine {
    match String::from_utf8(line) {
        Ok(line) => InputLine::Line(line),
        Err(_) => InputLine::Invalid("input line is not UTF-8 (write odd bytes as \\xHH)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_reads() {
        let mut input = StdinLines::default();
        input.push(b"pwd\r\ncd s");
        assert_eq!(input.next_line(), Some(InputLine::Line("pwd".into())));
        assert_eq!(input.next_line(), None);
        input.push(b"ub\n\xff\n");
        assert_eq!(input.next_line(), Some(InputLine::Line("cd sub".into())));
        assert!(matches!(input.next_line(), Some(InputLine::Invalid(_))));
        input.push(b"ls");
        assert_eq!(input.next_line(), None);
        input.eof = true;
        assert_eq!(input.next_line(), Some(InputLine::Line("ls".into())));
        assert_eq!(input.next_line(), None);
    }

    #[test]
    fn overlong_lines_are_dropped_whole() {
        let mut input = StdinLines::default();
        input.push(&vec![b'a'; MAX_INPUT_LINE + 1]);
        assert!(matches!(input.next_line(), Some(InputLine::Invalid(_))));
        input.push(b"aaa\nping\n");
        assert_eq!(input.next_line(), Some(InputLine::Line("ping".into())));
    }
}
