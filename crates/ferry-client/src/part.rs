//! The `.part` file a download collects its bytes in, and the record of
//! which version of the remote file those bytes belong to: the server's
//! VERSION token, kept in the extended attribute `user.ferry.version` of
//! the part itself (it goes wherever the part goes and vanishes with it;
//! a copy made with `cp` drops it, which only costs a resume). A part
//! without a record is never resumed, so a local file is never a mix of
//! two versions.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ferry_proto::files::codec::{MAX_VERSION_LEN, is_version_token};
use rustix::fs::{OFlags, XattrFlags, fgetxattr, fremovexattr, fsetxattr};
use rustix::io::Errno;

use crate::{ClientError, Progress, Result};

/// The extended attribute holding the version of a part's bytes.
pub(crate) const VERSION_XATTR: &str = "user.ferry.version";

/// An open `.part` file.
pub(crate) struct Part {
    pub(crate) file: File,
    pub(crate) path: PathBuf,
    /// This call created it (so a failure before any byte removes it).
    pub(crate) created: bool,
}

impl Part {
    /// Opens `path` for reading and writing, creating it if needed. A part
    /// that is a symlink or not a regular file is refused: its bytes would
    /// go somewhere else than a rename can take them from.
    pub(crate) fn open(path: &Path) -> Result<Part> {
        let open = |create_new: bool| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(create_new)
                .custom_flags(OFlags::NOFOLLOW.bits() as i32)
                .open(path)
        };
        let (file, created) = match open(true) {
            Ok(file) => (file, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match open(false) {
                Ok(file) => (file, false),
                Err(e) if e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => {
                    return Err(local_error("use", path, io::Error::other("it is a symlink, not a partial download")));
                }
                Err(e) => return Err(local_error("open", path, e)),
            },
            Err(e) => return Err(local_error("create", path, e)),
        };
        let part = Part { file, path: path.to_path_buf(), created };
        if !part.file.metadata().map_err(|e| local_error("inspect", path, e))?.is_file() {
            return Err(local_error("use", path, io::Error::other("not a regular file, so not a partial download")));
        }
        Ok(part)
    }

    /// Bytes already in the part.
    pub(crate) fn len(&self) -> Result<u64> {
        Ok(self.file.metadata().map_err(|e| local_error("inspect", &self.path, e))?.len())
    }

    /// Empties the part (its bytes are of another version).
    pub(crate) fn truncate(&self) -> Result<()> {
        self.file.set_len(0).map_err(|e| local_error("truncate", &self.path, e))
    }

    /// The recorded version, if there is a well-formed one.
    pub(crate) fn version(&self) -> Option<String> {
        let mut buf = [0u8; MAX_VERSION_LEN];
        match fgetxattr(self.file.as_fd(), VERSION_XATTR, &mut buf[..]) {
            Ok(n) => std::str::from_utf8(&buf[..n]).ok().filter(|v| is_version_token(v)).map(str::to_owned),
            Err(e) => {
                // ENODATA: none recorded; ENOTSUP: the filesystem keeps no
                // user attributes; ERANGE: too long to be ours.
                tracing::debug!(part = %self.path.display(), error = %e, "no version recorded");
                None
            }
        }
    }

    /// Records that the part's bytes are of `version` (`None`: the server
    /// named none, so they cannot be resumed). Called before any byte of
    /// that version is written. If the filesystem cannot keep it, the
    /// download goes on and `progress` hears that it cannot be resumed.
    pub(crate) fn record_version(&self, version: Option<&str>, progress: &mut dyn Progress) -> Result<()> {
        let Some(version) = version else {
            return self.forget_version();
        };
        match fsetxattr(self.file.as_fd(), VERSION_XATTR, version.as_bytes(), XattrFlags::empty()) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Whatever failed, no stale record may stay behind.
                self.forget_version()?;
                progress.notice(&format!(
                    "cannot record the file's version on {} ({e}); if this download is interrupted it will start over",
                    self.path.display()
                ));
                Ok(())
            }
        }
    }

    /// Removes the record (the part is complete, or holds unversioned
    /// bytes). Only a failure that could leave a stale record is an error.
    pub(crate) fn forget_version(&self) -> Result<()> {
        match fremovexattr(self.file.as_fd(), VERSION_XATTR) {
            Ok(()) | Err(Errno::NODATA | Errno::NOTSUP) => Ok(()),
            Err(e) => Err(local_error("clear the version record of", &self.path, e.into())),
        }
    }

    /// Removes the part if this call created it and nothing arrived.
    pub(crate) fn remove_if_unused(&self) {
        if self.created && self.file.metadata().is_ok_and(|m| m.len() == 0) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

pub(crate) fn local_error(action: &'static str, path: &Path, source: io::Error) -> ClientError {
    ClientError::Local { action, path: path.to_path_buf(), source }
}
