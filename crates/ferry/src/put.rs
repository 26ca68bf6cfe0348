//! `ferry put ADDR LOCAL... [REMOTE]`: upload files (whole trees with
//! `-r`) or standard input (`-`), each resuming a partial upload the
//! server kept of the very same bytes.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context as _, bail};
use ferry_client::{Client, PutOptions};
use ferry_proto::files::escape::escape_text;

use crate::connect::ConnectArgs;
use crate::progress::{TransferProgress, is_quiet};
use crate::stdin::stdin_file;
use crate::transfer::TransferArgs;

/// Arguments of `ferry put`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
The file's SHA-256 is computed before sending (a bar shows it for big files) and announced
with its size; the server resumes only a partial upload of exactly these bytes, and checks
the digest before the file takes its name (ERR 422 otherwise: nothing is saved).
LOCAL `-` reads standard input: a redirected regular file is used as it is; anything else
(a pipe, a terminal) is first copied to an unnamed temporary file in $TMPDIR, because the
size must be announced before the first byte. REMOTE is then required.
With several LOCALs the last path is REMOTE, which must be a directory on the server (default:
the served root). With -r a local directory is copied whole: into REMOTE/NAME if REMOTE is a
directory, else as REMOTE (created). The protocol cannot set modification times, so uploaded
files carry the time of the upload. One failing file does not stop the others; the exit status
is then 1.")]
pub struct PutArgs {
    /// Server address, HOST[:PORT] (port 7070 if omitted), or unix:/PATH or unix:@NAME. The server must
    /// run with --allow-write.
    addr: String,
    /// The local files to upload (`-`: standard input, spooled to a
    /// temporary file first unless it is a regular file), then the remote
    /// path to store them under. Default: their names in the server's
    /// root; a path ending in `/` is a directory to put them in.
    #[arg(value_name = "LOCAL... [REMOTE]", required = true)]
    paths: Vec<OsString>,
    /// After uploading, compare the file's SHA-256 with the server's `sum`
    /// and fail if they differ.
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    transfer: TransferArgs,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Runs `ferry put`.
pub fn run(args: PutArgs) -> anyhow::Result<()> {
    let pace = args.transfer.begin();
    let (locals, remote) = match args.paths.as_slice() {
        [one] => (std::slice::from_ref(one), None),
        [locals @ .., remote] => (locals, Some(remote.as_bytes())),
        [] => bail!("name a local file"),
    };
    let locals: Vec<&Path> = locals.iter().map(Path::new).collect();
    if locals.iter().any(|l| l.as_os_str() == "-") {
        if locals.len() != 1 || args.transfer.recursive() || args.transfer.json() {
            bail!("put -: standard input is one file (no other sources, no -r, no --json)");
        }
        let mut client = args.connect.connect(&args.addr)?;
        client.set_pace(pace);
        upload_stdin(&mut client, remote, PutOptions { verify: args.verify })?;
        // Courtesy only: the upload is complete whatever happens here.
        if let Err(e) = client.quit() {
            tracing::debug!(error = %e, "quit failed");
        }
        return Ok(());
    }
    let mut client = args.connect.connect(&args.addr)?;
    let shown = locals.iter().map(|l| l.display().to_string()).collect::<Vec<_>>().join(", ");
    let plan =
        client.plan_put(&locals, remote, args.transfer.recursive()).with_context(|| format!("cannot put {shown}"))?;
    let options = args.transfer.options(pace, false, args.verify);
    args.transfer.run(plan, client, &args.addr, &args.connect, &options)
}

/// Uploads `local` (`-`: standard input) to `remote` with a progress bar,
/// then prints the summary line. Shared with `ferry shell`, which never
/// passes `-`.
pub fn upload(client: &mut Client, local: &Path, remote: Option<&[u8]>, options: PutOptions) -> anyhow::Result<()> {
    if local.as_os_str() == "-" {
        return upload_stdin(client, remote, options);
    }
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

/// `ferry put ADDR - REMOTE`.
fn upload_stdin(client: &mut Client, remote: Option<&[u8]>, options: PutOptions) -> anyhow::Result<()> {
    let remote = match remote {
        Some(remote) if !remote.ends_with(b"/") => remote,
        _ => bail!("put -: standard input has no name; give REMOTE as a file path"),
    };
    let to = escape_text(remote);
    let from = "standard input";
    let file = stdin_file(is_quiet()).with_context(|| format!("cannot put {from} as {to}"))?;
    let mut progress = TransferProgress::new(from);
    let outcome = client
        .put_file(&file, Path::new(from), remote, options, &mut progress)
        .with_context(|| format!("cannot put {from} as {to}"))?;
    progress.report("put", from, &to, outcome.size, outcome.sha256.is_some());
    Ok(())
}
