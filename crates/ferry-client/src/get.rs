//! Downloads to a file: `get PATH OFFSET [VERSION]` into `LOCAL.part`,
//! resuming only bytes of the same version of the remote file, with the
//! payload spliced from the socket straight into the part; renamed over
//! `LOCAL` (a regular file or nothing) only when complete. Downloads to a
//! FIFO or device are in `stream.rs`.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use ferry_proto::files::codec::{GetHead, parse_get_head};
use ferry_proto::files::escape::escape_text;
use rustix::fs::{CWD, RenameFlags};

use crate::checksum::sha256_of;
use crate::destination::{Destination, destination, ensure_replaceable};
use crate::part::{Part, local_error};
use crate::paths::{parent_dir, part_path};
use crate::receive::{Failure, FileSink};
use crate::{Client, ClientError, Progress, Result};

/// How an older server (one that names no versions) words its refusal of
/// `get PATH OFFSET VERSION`.
const OLD_GET_USAGE: &str = "usage: get PATH [OFFSET]";

/// How [`Client::get`] behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct GetOptions {
    /// Discard an existing `.part` and download from the start.
    pub restart: bool,
    /// After downloading, compare the local SHA-256 with the server's `sum`.
    pub verify: bool,
    /// Give the finished file this modification time (Unix seconds): the
    /// remote file's, as `ls`/`stat` showed it.
    pub mtime: Option<i64>,
    /// Never replace an existing file: the final rename fails instead
    /// (`RENAME_NOREPLACE`), and the download stays in its `.part`.
    pub no_clobber: bool,
}

/// What a finished download did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetOutcome {
    /// Where the file was saved (or the stream it was written to).
    pub local: PathBuf,
    /// The file's size.
    pub size: u64,
    /// How many bytes were already in the `.part` (0 if none).
    pub resumed_from: u64,
    /// The SHA-256 both sides agreed on, with [`GetOptions::verify`].
    pub sha256: Option<String>,
    /// The server's name for the version downloaded, if it names versions.
    pub version: Option<String>,
}

impl Client {
    /// Downloads `remote` to `local` (or into it, if `local` is a
    /// directory: `local/<remote's name>`).
    ///
    /// Bytes collect in `LOCAL.part`, which records the server's version
    /// of the file. An existing part is resumed only if it recorded one
    /// and the server still has that version (`get PATH HAVE VERSION`);
    /// otherwise it is emptied and the download starts over, and
    /// `progress` hears why. When all bytes are in, the part is `fsync`ed,
    /// verified if asked, and renamed over `LOCAL`. If the transfer stops
    /// early the part stays for the next attempt. A FIFO or character
    /// device is written in place instead (see [`Client::get_to`]).
    pub fn get(
        &mut self,
        remote: &[u8],
        local: &Path,
        options: GetOptions,
        progress: &mut dyn Progress,
    ) -> Result<GetOutcome> {
        let target = match destination(remote, local)? {
            Destination::File(target) => target,
            Destination::Stream(path) => return self.get_to_path(remote, &path, options, progress),
        };
        let remote_text = escape_text(remote);
        let part_path = part_path(&target);
        if options.restart {
            match fs::remove_file(&part_path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(local_error("remove", &part_path, e)),
                _ => {}
            }
        }
        let part = Part::open(&part_path)?;
        let head = match self.download_into(&part, remote, &remote_text, progress) {
            Ok(head) => head,
            Err(e) => {
                // Nothing arrived (e.g. ERR 404): leave no trace.
                part.remove_if_unused();
                return Err(e);
            }
        };
        part.file.sync_all().map_err(|e| local_error("sync", &part_path, e))?;
        let sha256 = match options.verify {
            true => Some(self.verify_file(remote, &remote_text, &part.file, &part_path, progress)?),
            false => None,
        };
        if let Some(mtime) = options.mtime {
            set_mtime(&part.file, mtime).map_err(|e| local_error("set the modification time of", &part_path, e))?;
        }
        // The finished file carries no trace of the download.
        if let Err(e) = part.forget_version() {
            tracing::debug!(error = %e, "version record left on the finished file");
        }
        drop(part);
        ensure_replaceable(&target, &part_path)?;
        if options.no_clobber {
            rustix::fs::renameat_with(CWD, &part_path, CWD, &target, RenameFlags::NOREPLACE)
                .map_err(|e| local_error("rename into place (no clobber)", &target, e.into()))?;
        } else {
            fs::rename(&part_path, &target).map_err(|e| local_error("rename into place", &part_path, e))?;
        }
        sync_dir(parent_dir(&target));
        tracing::debug!(remote = %remote_text, local = %target.display(), size = head.size, "download complete");
        Ok(GetOutcome { local: target, size: head.size, resumed_from: head.offset, sha256, version: head.version })
    }

    /// Asks for the bytes the part lacks (of the version it holds) and
    /// writes them into it.
    fn download_into(
        &mut self,
        part: &Part,
        remote: &[u8],
        remote_text: &str,
        progress: &mut dyn Progress,
    ) -> Result<GetHead> {
        let shown = part.path.display();
        let mut have = part.len()?;
        let version = part.version();
        if have > 0 && version.is_none() {
            progress.notice(&format!(
                "{shown} does not record which version of {remote_text} its {have} bytes belong to; \
                 downloading again from 0"
            ));
            part.truncate()?;
            have = 0;
        }
        let asked = version.as_deref().filter(|_| have > 0);
        let head = match self.request_get(remote, have, asked) {
            Err(e) if e.server_code() == Some(416) && have > 0 => {
                progress.notice(&format!(
                    "remote file {remote_text} is now shorter than {shown}; downloading again from 0"
                ));
                part.truncate()?;
                have = 0;
                self.request_get(remote, 0, None)?
            }
            Err(ClientError::Server { code: 400, message, .. }) if message == OLD_GET_USAGE && have > 0 => {
                progress.notice(&format!(
                    "the server names no file versions, so {shown} cannot be resumed safely; downloading again from 0"
                ));
                part.truncate()?;
                have = 0;
                self.request_get(remote, 0, None)?
            }
            other => other?,
        };
        if head.offset > 0 && asked.is_some() && head.version.as_deref() != asked {
            // Resuming bytes of one version with those of another: never.
            return Err(self.conn.protocol_error(format!(
                "asked to resume version {} at {have}, got version {} there",
                asked.unwrap_or_default(),
                head.version.as_deref().unwrap_or("(none)")
            )));
        }
        if head.offset != have {
            if head.offset != 0 || head.version.is_none() {
                return Err(self.conn.protocol_error(format!("asked for offset {have}, got {}", head.offset)));
            }
            // The server's version differs from the part's: it starts over.
            progress.notice(&format!(
                "remote file {remote_text} changed since the partial download; downloading again from 0"
            ));
            part.truncate()?;
        }
        // Before any byte of this version is written.
        part.record_version(head.version.as_deref(), progress)?;
        progress.start(head.size, head.offset);
        let mut sink = FileSink::new(&part.file, head.offset).map_err(|e| local_error("write", &part.path, e))?;
        self.receive(head.len, &mut sink, progress)
            .map_err(|f| self.failure(f, remote_text, &part.path, true, head.len))?;
        self.conn.end();
        progress.finish();
        Ok(head)
    }

    /// Sends `get REMOTE OFFSET [VERSION]` and reads the head line of the
    /// answer.
    pub(crate) fn request_get(&mut self, remote: &[u8], offset: u64, version: Option<&str>) -> Result<GetHead> {
        let offset = offset.to_string();
        let mut args = vec![remote, offset.as_bytes()];
        args.extend(version.map(str::as_bytes));
        self.send("get", &args)?;
        let text = self.conn.read_ok()?;
        parse_get_head(&text).map_err(|e| self.conn.protocol_error(e.to_string()))
    }

    /// Turns a payload that stopped early into the error to report;
    /// `local` is the part (`resumable`) or the stream written to.
    pub(crate) fn failure(
        &self,
        failure: Failure,
        remote_text: &str,
        local: &Path,
        resumable: bool,
        expected: u64,
    ) -> ClientError {
        let addr = self.address().to_string();
        let (remote, local) = (remote_text.to_string(), local.to_path_buf());
        match failure {
            Failure::Short { got } if resumable => {
                ClientError::ShortPayload { addr, remote, part: local, got, expected }
            }
            Failure::Short { got } => ClientError::ShortStream { addr, remote, local, got, expected },
            Failure::Local(source) => ClientError::Local { action: "write", path: local, source },
            Failure::Net(source) => self.conn.net_error(source),
            Failure::Either { done, source } => ClientError::Transfer { addr, remote, local, done, source },
            Failure::Expired { got } if resumable => ClientError::Deadline {
                detail: format!(
                    "download of {remote} stopped after {got} bytes; {} kept for resuming",
                    local.display()
                ),
            },
            Failure::Expired { got } => ClientError::Deadline {
                detail: format!("download of {remote} to {} stopped after {got} bytes", local.display()),
            },
        }
    }

    /// Hashes the local `file` (with progress) and compares it with the
    /// server's `sum` of `remote`; returns it when they agree.
    pub(crate) fn verify_file(
        &mut self,
        remote: &[u8],
        remote_text: &str,
        file: &File,
        path: &Path,
        progress: &mut dyn Progress,
    ) -> Result<String> {
        let size = file.metadata().map_err(|e| local_error("inspect", path, e))?.len();
        progress.hash_start(size);
        let local_sum = sha256_of(file, &mut |n| progress.hash_advance(n)).map_err(|e| local_error("read", path, e));
        progress.hash_finish();
        self.compare_sum(remote, remote_text, path, local_sum?)
    }

    /// Compares a local SHA-256 with the server's `sum` of `remote`.
    pub(crate) fn compare_sum(
        &mut self,
        remote: &[u8],
        remote_text: &str,
        local: &Path,
        local_sum: String,
    ) -> Result<String> {
        let remote_sum = self.sum(remote)?;
        if local_sum != remote_sum {
            return Err(ClientError::VerifyMismatch {
                addr: self.address().to_string(),
                remote: remote_text.to_string(),
                local: local.to_path_buf(),
                local_sum,
                remote_sum,
            });
        }
        Ok(local_sum)
    }
}

/// Sets a file's modification time to `secs` after the epoch.
fn set_mtime(file: &File, secs: i64) -> io::Result<()> {
    let at = match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()),
    };
    file.set_modified(at)
}

/// Makes a rename in `dir` durable. Best effort: the data itself is
/// already synced, and some filesystems refuse to sync directories.
fn sync_dir(dir: &Path) {
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(dir = %dir.display(), error = %e, "cannot sync directory");
    }
}
