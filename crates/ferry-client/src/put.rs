//! Uploads: `put PATH SIZE SHA256`, the server answers how much of these
//! very bytes it already holds, the rest goes out with `sendfile` (no copy
//! through user space), and the server checks the digest before the file
//! takes its name.

use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use ferry_proto::files::codec::{Reply, parse_number};
use ferry_proto::files::escape::escape_text;
use ferry_reactor::sys::zero_copy::sendfile;

use crate::checksum::sha256_of;
use crate::part::local_error;
use crate::{Client, ClientError, Progress, Result};

/// The most bytes handed to one `sendfile` call.
const SENDFILE_CHUNK: usize = 4 << 20;

/// The buffer a TLS upload is read into (no sendfile through TLS).
const COPY_CHUNK: usize = 256 * 1024;

/// How an older server (one that takes no digest) words its refusal of
/// `put PATH SIZE SHA256`.
const OLD_PUT_USAGE: &str = "usage: put PATH SIZE";

/// How long to wait, after sending failed, for the `ERR` line that
/// explains why the server stopped reading.
const EXPLANATION_WAIT: Duration = Duration::from_secs(2);

/// How [`Client::put`] behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutOptions {
    /// After uploading, compare the SHA-256 announced with the server's
    /// `sum` of the stored file (a second check: a server that takes the
    /// digest already refuses a file that does not match it).
    pub verify: bool,
}

/// What a finished upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// The remote path the file was stored under, as sent.
    pub remote: Vec<u8>,
    /// The file's size.
    pub size: u64,
    /// How many bytes the server already held from an earlier attempt of
    /// the same file (same size and SHA-256).
    pub resumed_from: u64,
    /// The SHA-256 both sides agreed on, with [`PutOptions::verify`].
    pub sha256: Option<String>,
}

impl Client {
    /// Uploads the local file `local` to `remote` (default: its own name
    /// in the working directory; a `remote` ending in `/` is a directory to
    /// put it in). See [`Client::put_file`].
    pub fn put(
        &mut self,
        local: &Path,
        remote: Option<&[u8]>,
        options: PutOptions,
        progress: &mut dyn Progress,
    ) -> Result<PutOutcome> {
        let file = File::open(local).map_err(|e| local_error("open", local, e))?;
        let remote = upload_target(local, remote)?;
        self.put_file(&file, local, &remote, options, progress)
    }

    /// Uploads the open regular file `file` (named `name` in messages, e.g.
    /// a spooled copy of standard input) to `remote`.
    ///
    /// The file's SHA-256 is computed first (reported to `progress` as
    /// hashing) and announced: `put PATH SIZE SHA256`. The server resumes
    /// (`OK HAVE`, HAVE > 0) only a partial upload of these very bytes,
    /// and checks the digest before the file takes its name (`ERR 422`
    /// otherwise, nothing saved). An `ERR` before the payload (`507`
    /// insufficient storage, `403`, ...) is returned without sending it.
    /// Servers that predate the digest are asked `put PATH SIZE`.
    pub fn put_file(
        &mut self,
        file: &File,
        name: &Path,
        remote: &[u8],
        options: PutOptions,
        progress: &mut dyn Progress,
    ) -> Result<PutOutcome> {
        let meta = file.metadata().map_err(|e| local_error("inspect", name, e))?;
        if !meta.is_file() {
            return Err(local_error("upload", name, io::Error::other("not a regular file")));
        }
        let size = meta.len();
        let remote_text = escape_text(remote);

        progress.hash_start(size);
        let sha256 = sha256_of(file, &mut |n| progress.hash_advance(n)).map_err(|e| local_error("read", name, e));
        progress.hash_finish();
        let sha256 = sha256?;
        let hashed = file.metadata().map_err(|e| local_error("inspect", name, e))?.len();
        if hashed != size {
            return Err(local_error("upload", name, io::Error::other("the file changed size while being read")));
        }

        let have = self.announce_put(remote, size, &sha256)?;
        progress.start(size, have);
        self.send_payload(file, name, &remote_text, have, size, progress)?;
        let text = self.conn.read_ok()?;
        if parse_number(&text).ok() != Some(size) {
            return Err(self.conn.protocol_error(format!("upload of {size} bytes confirmed as {text:?}")));
        }
        self.conn.end();
        progress.finish();
        tracing::debug!(remote = %remote_text, local = %name.display(), size, have, "upload complete");

        let sha256 = match options.verify {
            true => Some(self.compare_sum(remote, &remote_text, name, sha256)?),
            false => None,
        };
        Ok(PutOutcome { remote: remote.to_vec(), size, resumed_from: have, sha256 })
    }

    /// Sends `put REMOTE SIZE SHA256` and returns the server's HAVE; an
    /// older server that refuses the digest is asked `put REMOTE SIZE`.
    fn announce_put(&mut self, remote: &[u8], size: u64, sha256: &str) -> Result<u64> {
        let size_text = size.to_string();
        self.send("put", &[remote, size_text.as_bytes(), sha256.as_bytes()])?;
        let text = match self.conn.read_ok() {
            Err(ClientError::Server { code: 400, message, .. }) if message == OLD_PUT_USAGE => {
                tracing::debug!("the server takes no SHA-256 with put; uploading without it");
                self.send("put", &[remote, size_text.as_bytes()])?;
                self.conn.read_ok()?
            }
            other => other?,
        };
        let have = parse_number(&text).map_err(|e| self.conn.protocol_error(e.to_string()))?;
        if have > size {
            return Err(self.conn.protocol_error(format!("server holds {have} bytes of a {size}-byte upload")));
        }
        Ok(have)
    }

    /// Sends bytes `have..size` of `file`: with `sendfile`, or under TLS
    /// read and encrypted through one bounded buffer.
    fn send_payload(
        &mut self,
        file: &File,
        local: &Path,
        remote_text: &str,
        have: u64,
        size: u64,
        progress: &mut dyn Progress,
    ) -> Result<()> {
        let mut buf = if self.conn.is_tls() { vec![0; COPY_CHUNK] } else { Vec::new() };
        let mut offset = have;
        while offset < size {
            let left = usize::try_from(size - offset).unwrap_or(usize::MAX);
            let Ok(left) = self.grant(left.min(SENDFILE_CHUNK)) else {
                let detail = format!(
                    "upload of {} stopped after {offset} bytes; the server keeps them for resuming",
                    local.display()
                );
                return Err(ClientError::Deadline { detail });
            };
            let sent = if buf.is_empty() {
                sendfile(self.conn.stream(), file, &mut offset, left.min(SENDFILE_CHUNK))
            } else {
                let want = left.min(buf.len());
                match std::os::unix::fs::FileExt::read_at(file, &mut buf[..want], offset) {
                    Ok(0) => Ok(0),
                    Ok(n) => self.conn.write_raw(&buf[..n]).map(|()| {
                        offset += n as u64;
                        n
                    }),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(local_error("read", local, e)),
                }
            };
            match sent {
                Ok(0) => {
                    let shrank = io::Error::other(format!("file shrank to {offset} bytes during the upload"));
                    return Err(local_error("read", local, shrank));
                }
                Ok(n) => {
                    self.refund(left - n);
                    progress.advance(n as u64)
                }
                Err(e) => return Err(self.explain_failed_upload(local, remote_text, offset - have, e)),
            }
        }
        Ok(())
    }

    /// Sending failed: the server may have said why (`ERR 500 ...`) before
    /// closing; prefer its words over the socket error.
    fn explain_failed_upload(&mut self, local: &Path, remote_text: &str, done: u64, source: io::Error) -> ClientError {
        if matches!(source.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            return self.conn.net_error(source);
        }
        self.conn.set_read_timeout(Some(EXPLANATION_WAIT));
        let explanation = self.conn.read_reply();
        self.conn.set_read_timeout(self.conn.stall_timeout());
        match explanation {
            Ok(Reply::Err { code, message }) => ClientError::Server { addr: self.address().to_string(), code, message },
            _ => ClientError::Transfer {
                addr: self.address().to_string(),
                remote: remote_text.to_string(),
                local: local.to_path_buf(),
                done,
                source,
            },
        }
    }
}

/// The remote path for an upload of `local`.
fn upload_target(local: &Path, remote: Option<&[u8]>) -> Result<Vec<u8>> {
    let name = || {
        local
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .ok_or_else(|| ClientError::Usage(format!("{} has no file name to upload under", local.display())))
    };
    match remote {
        None => name(),
        Some(dir) if dir.ends_with(b"/") => Ok([dir, &name()?].concat()),
        Some(path) => Ok(path.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_name_defaults_to_the_local_one() {
        let local = Path::new("/tmp/x/big.bin");
        assert_eq!(upload_target(local, None).unwrap(), b"big.bin");
        assert_eq!(upload_target(local, Some(b"/in/")).unwrap(), b"/in/big.bin");
        assert_eq!(upload_target(local, Some(b"other")).unwrap(), b"other");
        assert!(upload_target(Path::new("/"), None).is_err());
    }
}
