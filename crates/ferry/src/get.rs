//! `ferry get ADDR REMOTE... [LOCAL]`: download files (remote globs,
//! whole trees with `-r`), each resuming a partial download (`.part`) of
//! the same version of the remote file, or stream one to standard output
//! (`-`).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ferry_client::{Client, GetOptions, has_glob, remote_basename};
use ferry_proto::files::escape::escape_text;

use crate::connect::ConnectArgs;
use crate::progress::TransferProgress;
use crate::transfer::TransferArgs;

/// Arguments of `ferry get`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
With one REMOTE, LOCAL may be:
  a new or existing regular file  saved through LOCAL.part, renamed over LOCAL when complete;
                                  a symlink to a regular file replaces the file it leads to
  a directory                     the file is saved inside it under the remote name
  a FIFO or character device      written in place, no .part, no resume (/dev/null, a tty,
                                  /dev/stdout when it leads to a pipe)
  -                               standard output, no .part, no resume; messages go to stderr
Anything else (a block device, a socket, a dangling symlink) is refused. A .part is resumed
only if it records the server's version of the file (extended attribute user.ferry.version)
and the server still has that version; otherwise the download starts over, with a notice.
Several REMOTEs (or a glob: quote it, '*.iso'; it is matched here against the server's
listing) go into LOCAL, which must then be a directory (default: the current one). With -r a
remote directory is copied whole: into LOCAL/NAME if LOCAL is a directory, else as LOCAL.
Downloaded files keep the remote modification time. One failing file does not stop the
others; the exit status is then 1.")]
pub struct GetArgs {
    /// Server address, HOST[:PORT] (port 7070 if omitted), or unix:/PATH or unix:@NAME.
    addr: String,
    /// Remote files (absolute, `/` is the served root, or relative to the
    /// root; globs allowed), then where to save them: a file name, an
    /// existing directory to save into, or `-` for standard output (one
    /// file, no resume). Default: the remote names in the current
    /// directory.
    #[arg(value_name = "REMOTE... [LOCAL]", required = true)]
    paths: Vec<OsString>,
    /// Discard a partial download (LOCAL.part) and start from the first
    /// byte instead of resuming.
    #[arg(long)]
    restart: bool,
    /// After downloading, compare the file's SHA-256 with the server's and
    /// fail if they differ (the download is then left as LOCAL.part; on
    /// standard output the bytes are already written, only the exit status
    /// tells).
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    transfer: TransferArgs,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Runs `ferry get`.
pub fn run(args: GetArgs) -> anyhow::Result<()> {
    let pace = args.transfer.begin();
    let (remotes, local) = match args.paths.as_slice() {
        [one] => (std::slice::from_ref(one), None),
        [remotes @ .., local] => (remotes, Some(Path::new(local))),
        [] => anyhow::bail!("name a remote file"),
    };
    let remotes: Vec<&[u8]> = remotes.iter().map(|r| r.as_bytes()).collect();
    let one_file = matches!(remotes.as_slice(), [r] if !has_glob(r)) && !args.transfer.recursive();
    let to_stream = local.is_some_and(|l| l.as_os_str() == "-" || is_stdout(l));
    if to_stream && !one_file {
        bail!("standard output takes one file (no glob, no -r)");
    }
    if to_stream && args.transfer.json() {
        bail!("--json: standard output carries the file");
    }
    let mut client = args.connect.connect(&args.addr)?;
    let shown = remotes.iter().map(|r| escape_text(r)).collect::<Vec<_>>().join(", ");
    if to_stream {
        client.set_pace(pace);
        let options = GetOptions { restart: args.restart, verify: args.verify, ..GetOptions::default() };
        download(&mut client, remotes[0], local, options)?;
        // Courtesy only: the download is complete whatever happens here.
        if let Err(e) = client.quit() {
            tracing::debug!(error = %e, "quit failed");
        }
        return Ok(());
    }
    let plan =
        client.plan_get(&remotes, local, args.transfer.recursive()).with_context(|| format!("cannot get {shown}"))?;
    let options = args.transfer.options(pace, args.restart, args.verify);
    args.transfer.run(plan, client, &args.addr, &args.connect, &options)
}

/// Downloads `remote` to `local` (default: its name in the current
/// directory; `-`: standard output) with a progress bar, then prints the
/// summary line. Shared with `ferry shell`.
pub fn download(client: &mut Client, remote: &[u8], local: Option<&Path>, options: GetOptions) -> anyhow::Result<()> {
    let shown = escape_text(remote);
    if local.is_some_and(|l| l.as_os_str() == "-") {
        let mut progress = TransferProgress::new(&shown).on_stderr();
        let stdout = rustix::stdio::stdout();
        let name = Path::new("standard output");
        let outcome = client
            .get_to(remote, stdout, name, options, &mut progress)
            .with_context(|| format!("cannot get {shown}"))?;
        progress.report("got", &shown, "standard output", outcome.size, outcome.sha256.is_some());
        return Ok(());
    }
    let local = match local {
        Some(local) => local.to_path_buf(),
        None => PathBuf::from(
            remote_basename(remote).with_context(|| format!("{shown} names no file; say where to save it"))?,
        ),
    };
    let mut progress = TransferProgress::new(&shown);
    if is_stdout(&local) {
        // `/dev/stdout` and the like: keep the bar and summary out of it.
        progress = progress.on_stderr();
    }
    let outcome = client.get(remote, &local, options, &mut progress).with_context(|| format!("cannot get {shown}"))?;
    let to = outcome.local.display().to_string();
    progress.report("got", &shown, &to, outcome.size, outcome.sha256.is_some());
    Ok(())
}

/// Whether `path` leads to whatever standard output is (`/dev/stdout`,
/// `/proc/self/fd/1`, the file stdout was redirected to).
fn is_stdout(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let Ok(stdout) = rustix::fs::fstat(rustix::stdio::stdout()) else {
        return false;
    };
    meta.dev() == stdout.st_dev && meta.ino() == stdout.st_ino
}
