//! `ferry get ADDR REMOTE [LOCAL]`: download a file, resuming a partial
//! download (`LOCAL.part`).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ferry_client::{Client, GetOptions, remote_basename};
use ferry_proto::files::escape::escape_text;

use crate::progress::TransferProgress;

/// Arguments of `ferry get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// Server address, HOST[:PORT] (port 7070 if omitted).
    addr: String,
    /// Remote file: an absolute path (`/dir/file`, `/` is the served root)
    /// or one relative to the root.
    remote: OsString,
    /// Where to save it: a file name, or an existing directory to save
    /// into. Default: the remote file's name in the current directory.
    local: Option<PathBuf>,
    /// Discard a partial download (LOCAL.part) and start from the first
    /// byte instead of resuming.
    #[arg(long)]
    restart: bool,
    /// After downloading, compare the file's SHA-256 with the server's and
    /// fail if they differ (the download is then left as LOCAL.part).
    #[arg(long)]
    verify: bool,
}

/// Runs `ferry get`.
pub fn run(args: GetArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.addr)?;
    let options = GetOptions { restart: args.restart, verify: args.verify };
    download(&mut client, args.remote.as_bytes(), args.local.as_deref(), options)?;
    // Courtesy only: the download is complete whatever happens here.
    if let Err(e) = client.quit() {
        tracing::debug!(error = %e, "quit failed");
    }
    Ok(())
}

/// Downloads `remote` to `local` (default: its name in the current
/// directory) with a progress bar, then prints the summary line. Shared
/// with `ferry shell`.
pub fn download(client: &mut Client, remote: &[u8], local: Option<&Path>, options: GetOptions) -> anyhow::Result<()> {
    let shown = escape_text(remote);
    let local = match local {
        Some(local) => local.to_path_buf(),
        None => PathBuf::from(
            remote_basename(remote).with_context(|| format!("{shown} names no file; say where to save it"))?,
        ),
    };
    let mut progress = TransferProgress::new(&shown);
    let outcome = client.get(remote, &local, options, &mut progress).with_context(|| format!("cannot get {shown}"))?;
    let to = outcome.local.display().to_string();
    progress.report("got", &shown, &to, outcome.size, outcome.sha256.is_some());
    Ok(())
}
