//! `ferry put ADDR LOCAL [REMOTE]`: upload a file, resuming a partial
//! upload the server kept.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ferry_client::{Client, PutOptions};
use ferry_proto::files::escape::escape_text;

use crate::progress::TransferProgress;

/// Arguments of `ferry put`.
#[derive(Debug, clap::Args)]
pub struct PutArgs {
    /// Server address, HOST[:PORT] (port 7070 if omitted). The server must
    /// run with --allow-write.
    addr: String,
    /// The local file to upload.
    local: PathBuf,
    /// Remote path to store it under. Default: the local file's name in the
    /// server's root; a path ending in `/` is a directory to put it in.
    remote: Option<OsString>,
    /// After uploading, compare the file's SHA-256 with the server's `sum`
    /// and fail if they differ (advised after resuming).
    #[arg(long)]
    verify: bool,
}

/// Runs `ferry put`.
pub fn run(args: PutArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.addr)?;
    let remote = args.remote.as_ref().map(|r| r.as_bytes());
    upload(&mut client, &args.local, remote, PutOptions { verify: args.verify })?;
    // Courtesy only: the upload is complete whatever happens here.
    if let Err(e) = client.quit() {
        tracing::debug!(error = %e, "quit failed");
    }
    Ok(())
}

/// Uploads `local` to `remote` with a progress bar, then prints the
/// summary line. Shared with `ferry shell`.
pub fn upload(client: &mut Client, local: &Path, remote: Option<&[u8]>, options: PutOptions) -> anyhow::Result<()> {
    let from = local.display().to_string();
    let mut progress = TransferProgress::new(&from);
    let to_shown = remote.map_or_else(|| "its name".to_owned(), escape_text);
    let outcome = client
        .put(local, remote, options, &mut progress)
        .with_context(|| format!("cannot put {from} as {to_shown}"))?;
    let to = escape_text(&outcome.remote);
    progress.report("put", &from, &to, outcome.size, outcome.sha256.is_some());
    Ok(())
}
