//! Executing one shell line: local commands (`help`, `get`, `put`, tidy
//! `ls`/`stat`), everything else sent to the server as typed.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ferry_client::{ClientError, DiskSpace, GetOptions, Kind, PutOptions, Reply};
use ferry_proto::files::escape::{split_words, unescape_text};

use super::Shell;
use super::complete::Name;
use crate::ls::{format_entries, human_size};

/// What the shell loop does after a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read the next line.
    Continue,
    /// The command failed (said so already); read the next line, unless
    /// a batch stops at the first failure.
    Failed,
    /// The user said `quit`; the server closes the connection.
    Quit,
}

const HELP: &str = "\
Commands (paths are remote unless said otherwise; quote names with spaces,
write odd bytes as \\xHH):
  pwd                  print the remote working directory
  cd [DIR]             change it (default: /)
  ls [DIR]             list a directory
  stat PATH            type, size and modification time
  sum PATH             SHA-256 of a file
  mkdir DIR            create a directory (server needs --allow-write)
  rm PATH              remove a file, symlink or empty directory
  rename OLD NEW       rename or move, atomically (also: mv; never over a directory)
  df                   size, used and available space of the server's disk
  get REMOTE [LOCAL]   download (resumes LOCAL.part of the same version; LOCAL - : stdout)
  get [-r] REMOTE... [LOCAL]  several files, remote globs ('*.iso'), -r whole directories
  put LOCAL [REMOTE]   upload (resumes a partial upload of the same bytes)
  put [-r] LOCAL... [REMOTE]  several files, -r whole directories
  mget REMOTE...       download every file (remote globs) into the local directory
  mput LOCAL...        upload every file (local globs) into the remote directory
  ping                 check that the server answers
  lcd [DIR]            change the local directory (default: $HOME)
  lpwd                 print the local directory
  lls [DIR]            list a local directory
  !COMMAND             run COMMAND with sh -c (a bare !: $SHELL)
  help                 this text
  quit                 leave (end of input does too)
";

impl Shell {
    /// Runs one input line. Errors that leave the connection usable are
    /// printed; those that end it are returned.
    pub(super) fn execute(&mut self, line: &str) -> anyhow::Result<Next> {
        if let Some(command) = line.trim_start().strip_prefix('!') {
            return super::local::shell_out(command, self.interrupts.is_some());
        }
        let words = match split_words(line) {
            Ok(words) => words,
            Err(e) => {
                eprintln!("ferry: {e}");
                return Ok(Next::Failed);
            }
        };
        let Some((command, args)) = words.split_first() else {
            return Ok(Next::Continue);
        };
        let command = String::from_utf8_lossy(command).to_ascii_lowercase();
        let result = match self.interrupts.clone() {
            Some(interrupts) => {
                let armed = interrupts.arm(self.socket());
                let result = self.dispatch(&command, args, line);
                if interrupts.fired() {
                    drop(armed);
                    self.reconnect_after_interrupt(&command)?;
                    return Ok(Next::Failed);
                }
                result
            }
            None => self.dispatch(&command, args, line),
        };
        match result {
            Ok(next) => Ok(next),
            Err(e) if ends_connection(&e) => Err(e),
            Err(e) => {
                match e.downcast_ref::<ClientError>() {
                    Some(ClientError::Server { code, message, .. }) => eprintln!("ERR {code} {message}"),
                    _ => eprintln!("ferry: {e:#}"),
                }
                Ok(Next::Failed)
            }
        }
    }

    /// Ctrl-C shut the connection down under a command (the protocol
    /// cannot stop a transfer half way): say what is kept, connect again
    /// and go back to the same directory.
    fn reconnect_after_interrupt(&mut self, command: &str) -> anyhow::Result<()> {
        match command {
            "get" => eprintln!(
                "ferry: get interrupted; what arrived is kept in the .part file, and the same get resumes from there"
            ),
            "put" => {
                eprintln!("ferry: put interrupted; the server keeps what arrived, and the same put resumes from there")
            }
            _ => eprintln!("ferry: {command} interrupted"),
        }
        self.client = self.connect.connect(&self.addr)?;
        if self.cwd != "/" {
            let cwd = unescape_text(&self.cwd).map_err(|e| anyhow::anyhow!("cannot return to {}: {e}", self.cwd))?;
            self.cwd = self.client.cd(&cwd)?;
        }
        self.heard = std::time::Instant::now();
        eprintln!("ferry: reconnected to {}", self.client.address());
        Ok(())
    }

    /// The names in a remote directory, for completion: none if it cannot
    /// be listed; an error only if the connection is gone.
    pub(super) fn list(&mut self, dir: Option<&[u8]>) -> anyhow::Result<Vec<Name>> {
        match self.client.ls(dir) {
            Ok(entries) => {
                self.heard = std::time::Instant::now();
                Ok(entries.into_iter().map(|e| Name { dir: e.kind == Kind::Dir, name: e.name }).collect())
            }
            Err(e) => {
                let e = anyhow::Error::from(e);
                if ends_connection(&e) { Err(e) } else { Ok(Vec::new()) }
            }
        }
    }

    fn dispatch(&mut self, command: &str, args: &[Vec<u8>], line: &str) -> anyhow::Result<Next> {
        if let Some(done) = super::local::run(command, args) {
            return done;
        }
        if self.many_files(command, args)? {
            return Ok(Next::Continue);
        }
        match command {
            "help" | "?" => print!("{HELP}"),
            "quit" | "exit" => {
                self.client.quit()?;
                return Ok(Next::Quit);
            }
            "cd" => {
                let [dir] = arguments::<0, 1>(args, "cd [DIR]")?;
                self.cwd = self.client.cd(dir.unwrap_or(b"/"))?;
                println!("{}", self.cwd);
            }
            "ls" => {
                let [dir] = arguments::<0, 1>(args, "ls [DIR]")?;
                print!("{}", format_entries(&self.client.ls(dir)?));
            }
            "stat" => {
                let [path] = arguments::<1, 1>(args, "stat PATH")?;
                let entry = self.client.stat(path.unwrap_or_default())?;
                print!("{}", format_entries(&[entry]));
            }
            "rename" | "mv" => {
                let [from, to] = arguments::<2, 2>(args, "rename OLD NEW")?;
                self.client.rename(from.unwrap_or_default(), to.unwrap_or_default())?;
            }
            "df" => {
                arguments::<0, 0>(args, "df")?;
                print!("{}", format_df(&self.client.df()?));
            }
            "get" => {
                let [remote, local] = arguments::<1, 2>(args, "get [-r] REMOTE... [LOCAL]")?;
                let local = local.map(|l| Path::new(OsStr::from_bytes(l)));
                crate::get::download(&mut self.client, remote.unwrap_or_default(), local, GetOptions::default())?;
            }
            "put" => {
                let [local, remote] = arguments::<1, 2>(args, "put [-r] LOCAL... [REMOTE]")?;
                let local = Path::new(OsStr::from_bytes(local.unwrap_or_default()));
                if local.as_os_str() == "-" {
                    anyhow::bail!("put -: standard input carries this shell's commands; use `ferry put ADDR - REMOTE`");
                }
                crate::put::upload(&mut self.client, local, remote, PutOptions::default())?;
            }
            _ => {
                let answer = self.client.request(line)?;
                match answer.reply {
                    Reply::Ok(text) if !text.is_empty() && answer.payload.is_none() => println!("{text}"),
                    Reply::Ok(_) => {}
                    Reply::Err { code, message } => {
                        eprintln!("ERR {code} {message}");
                        return Ok(Next::Failed);
                    }
                }
                if let Some(payload) = answer.payload {
                    print!("{}", String::from_utf8_lossy(&payload));
                }
            }
        }
        Ok(Next::Continue)
    }
}

/// Checks there are between MIN and N arguments and returns them as N
/// slots (missing ones `None`).
fn arguments<'a, const MIN: usize, const N: usize>(
    args: &'a [Vec<u8>],
    usage: &str,
) -> anyhow::Result<[Option<&'a [u8]>; N]> {
    if args.len() < MIN || args.len() > N {
        anyhow::bail!("usage: {usage}");
    }
    Ok(std::array::from_fn(|i| args.get(i).map(Vec::as_slice)))
}

/// `df -h`'s table for the server's filesystem: size, used, available and
/// the used share of what users may fill (rounded up, as df does).
fn format_df(space: &DiskSpace) -> String {
    let used = space.total.saturating_sub(space.free);
    let usable = used + space.available;
    let percent = if usable == 0 { 0 } else { (used * 100).div_ceil(usable) };
    let [size, used, avail] = [space.total, used, space.available].map(human_size);
    format!(
        "{:>6} {:>6} {:>6} {:>4}\n{size:>6} {used:>6} {avail:>6} {:>4}\n",
        "Size",
        "Used",
        "Avail",
        "Use%",
        format!("{percent}%")
    )
}

/// Errors after which the connection cannot be used any more.
fn ends_connection(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<ClientError>(),
        Some(
            ClientError::Network { .. }
                | ClientError::Closed { .. }
                | ClientError::Broken { .. }
                | ClientError::Timeout { .. }
                | ClientError::Protocol { .. }
                | ClientError::Transfer { .. }
                | ClientError::ShortPayload { .. }
                | ClientError::ShortStream { .. }
                | ClientError::HttpServer { .. }
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_counts_are_checked() {
        let args = vec![b"a".to_vec()];
        assert_eq!(arguments::<1, 2>(&args, "x").unwrap(), [Some(&b"a"[..]), None]);
        assert!(arguments::<0, 0>(&args, "x").is_err());
        assert!(arguments::<2, 2>(&args, "x").is_err());
    }

    #[test]
    fn df_reads_like_df_h() {
        let space = DiskSpace { total: 100 << 30, free: 40 << 30, available: 35 << 30 };
        assert_eq!(format_df(&space), "  Size   Used  Avail Use%\n  100G    60G    35G  64%\n");
        assert!(format_df(&DiskSpace { total: 0, free: 0, available: 0 }).ends_with("   0%\n"));
    }
}
