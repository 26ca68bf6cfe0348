//! Downloads: `get PATH OFFSET` into `LOCAL.part`, resuming from the
//! part's length, with the payload spliced from the socket straight into
//! the file; renamed to `LOCAL` only when complete.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ferry_proto::files::codec::{GetHead, parse_get_head};
use ferry_proto::files::escape::escape_text;
use ferry_reactor::sys::zero_copy::SplicePipe;

use crate::paths::{parent_dir, part_path, remote_basename};
use crate::{Client, ClientError, Progress, Result, sha256_file};

/// The most bytes asked of one `splice` (the pipe's capacity caps it).
const SPLICE_CHUNK: usize = 1 << 20;

/// How [`Client::get`] behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct GetOptions {
    /// Discard an existing `.part` and download from the start.
    pub restart: bool,
    /// After downloading, compare the local SHA-256 with the server's `sum`.
    pub verify: bool,
}

/// What a finished download did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetOutcome {
    /// Where the file was saved.
    pub local: PathBuf,
    /// The file's size.
    pub size: u64,
    /// How many bytes were already in the `.part` (0 if none).
    pub resumed_from: u64,
    /// The SHA-256 both sides agreed on, with [`GetOptions::verify`].
    pub sha256: Option<String>,
}

impl Client {
    /// Downloads `remote` to `local` (or into it, if `local` is a
    /// directory: `local/<remote's name>`).
    ///
    /// Bytes collect in `LOCAL.part`; an existing one is resumed from its
    /// length (or started over if it is longer than the remote file). When
    /// all bytes are in, the part is `fsync`ed, verified if asked, and
    /// renamed to `LOCAL`. If the transfer stops early the part stays for
    /// the next attempt.
    pub fn get(
        &mut self,
        remote: &[u8],
        local: &Path,
        options: GetOptions,
        progress: &mut dyn Progress,
    ) -> Result<GetOutcome> {
        let remote_text = escape_text(remote);
        let target = download_target(remote, local)?;
        let part = part_path(&target);
        if options.restart {
            match fs::remove_file(&part) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(local_error("remove", &part, e)),
                _ => {}
            }
        }
        let (file, created) = open_part(&part)?;
        let result = self.download_into(&file, &part, remote, &remote_text, progress);
        let head = match result {
            Ok(head) => head,
            Err(e) => {
                if created && file.metadata().is_ok_and(|m| m.len() == 0) {
                    // Nothing arrived (e.g. ERR 404): leave no trace.
                    let _ = fs::remove_file(&part);
                }
                return Err(e);
            }
        };
        file.sync_all().map_err(|e| local_error("sync", &part, e))?;
        drop(file);
        let sha256 = if options.verify { Some(self.verify(remote, &remote_text, &part)?) } else { None };
        fs::rename(&part, &target).map_err(|e| local_error("rename into place", &part, e))?;
        sync_dir(parent_dir(&target));
        tracing::debug!(remote = %remote_text, local = %target.display(), size = head.size, "download complete");
        Ok(GetOutcome { local: target, size: head.size, resumed_from: head.offset, sha256 })
    }

    /// Asks for the bytes the part lacks and writes them into it.
    fn download_into(
        &mut self,
        file: &File,
        part: &Path,
        remote: &[u8],
        remote_text: &str,
        progress: &mut dyn Progress,
    ) -> Result<GetHead> {
        let have = file.metadata().map_err(|e| local_error("inspect", part, e))?.len();
        let head = match self.request_get(remote, have) {
            Err(e) if e.server_code() == Some(416) && have > 0 => {
                tracing::info!(part = %part.display(), "partial download is longer than the remote file; starting over");
                file.set_len(0).map_err(|e| local_error("truncate", part, e))?;
                self.request_get(remote, 0)?
            }
            other => other?,
        };
        progress.start(head.size, head.offset);
        self.receive_payload(file, part, remote_text, head, progress)?;
        self.conn.end();
        progress.finish();
        Ok(head)
    }

    /// Sends `get REMOTE OFFSET` and reads the head line of the answer.
    fn request_get(&mut self, remote: &[u8], offset: u64) -> Result<GetHead> {
        self.send("get", &[remote, offset.to_string().as_bytes()])?;
        let text = self.conn.read_ok()?;
        let head = parse_get_head(&text).map_err(|e| self.conn.protocol_error(e.to_string()))?;
        if head.offset != offset {
            return Err(self.conn.protocol_error(format!("asked for offset {offset}, got {}", head.offset)));
        }
        Ok(head)
    }

    /// Moves the announced payload into `file`: first what arrived with the
    /// head line, then the rest with `splice` (no copy through user space).
    fn receive_payload(
        &mut self,
        file: &File,
        part: &Path,
        remote_text: &str,
        head: GetHead,
        progress: &mut dyn Progress,
    ) -> Result<()> {
        let mut offset = head.offset;
        let mut remaining = head.len;
        let early = self.conn.take_buffered(remaining);
        if !early.is_empty() {
            file.write_all_at(early, offset).map_err(|e| local_error("write", part, e))?;
            let n = early.len() as u64;
            offset += n;
            remaining -= n;
            progress.advance(n);
        }
        if remaining == 0 {
            return Ok(());
        }
        let transfer_error = |client: &Client, done: u64, source: io::Error| match source.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => client.conn.net_error(source),
            _ => ClientError::Transfer {
                addr: client.address().to_string(),
                remote: remote_text.to_string(),
                local: part.to_path_buf(),
                done,
                source,
            },
        };
        let mut pipe = SplicePipe::new().map_err(|e| transfer_error(self, 0, e))?;
        while remaining > 0 {
            let chunk = usize::try_from(remaining).unwrap_or(usize::MAX).min(SPLICE_CHUNK);
            match pipe.socket_to_file(self.conn.stream(), file, &mut offset, chunk) {
                Ok(0) => {
                    return Err(ClientError::ShortPayload {
                        addr: self.address().to_string(),
                        remote: remote_text.to_string(),
                        part: part.to_path_buf(),
                        got: head.len - remaining,
                        expected: head.len,
                    });
                }
                Ok(n) => {
                    remaining -= n as u64;
                    progress.advance(n as u64);
                }
                Err(e) => return Err(transfer_error(self, head.len - remaining, e)),
            }
        }
        Ok(())
    }

    /// Compares the SHA-256 of `local` with the server's `sum` of `remote`;
    /// returns it when they agree.
    pub(crate) fn verify(&mut self, remote: &[u8], remote_text: &str, local: &Path) -> Result<String> {
        let local_sum = sha256_file(local).map_err(|e| local_error("read", local, e))?;
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

/// `local` itself, or `local/<remote's name>` if `local` is a directory.
fn download_target(remote: &[u8], local: &Path) -> Result<PathBuf> {
    if !local.is_dir() {
        return Ok(local.to_path_buf());
    }
    match remote_basename(remote) {
        Some(name) => Ok(local.join(name)),
        None => Err(ClientError::Usage(format!(
            "{} names no file to save in directory {}",
            escape_text(remote),
            local.display()
        ))),
    }
}

/// Opens the part file, creating it if needed; says whether it was created.
fn open_part(part: &Path) -> Result<(File, bool)> {
    match OpenOptions::new().write(true).create_new(true).open(part) {
        Ok(file) => Ok((file, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let file = OpenOptions::new().write(true).open(part).map_err(|e| local_error("open", part, e))?;
            Ok((file, false))
        }
        Err(e) => Err(local_error("create", part, e)),
    }
}

/// Makes a rename in `dir` durable. Best effort: the data itself is
/// already synced, and some filesystems refuse to sync directories.
fn sync_dir(dir: &Path) {
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(dir = %dir.display(), error = %e, "cannot sync directory");
    }
}

pub(crate) fn local_error(action: &'static str, path: &Path, source: io::Error) -> ClientError {
    ClientError::Local { action, path: path.to_path_buf(), source }
}
