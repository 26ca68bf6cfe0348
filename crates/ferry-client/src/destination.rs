//! Where a download goes, decided before anything is asked of the server.
//!
//! A download is only ever renamed over a regular file or over nothing:
//! - nothing there, or a regular file: bytes collect in `LOCAL.part`
//!   beside it and are renamed over it when complete; a symlink to a
//!   regular file is followed, so the link stays and its target is
//!   replaced;
//! - a directory: the file goes inside it, under the remote name;
//! - a FIFO or a character device, directly or through symlinks (a
//!   terminal, `/dev/null`, `/dev/stdout` when it leads to a pipe): the
//!   bytes are written to it in order, no `.part`, no rename, no resume;
//! - anything else (a block device, a socket, a symlink to nothing) is
//!   refused.

use std::fs::{self, FileType};
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use ferry_proto::files::escape::escape_text;

use crate::part::local_error;
use crate::paths::remote_basename;
use crate::{ClientError, Result};

/// Where a download's bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// A regular file, new or replaced: through `PATH.part` and a rename.
    File(PathBuf),
    /// A FIFO or character device, written in place.
    Stream(PathBuf),
}

/// Decides where a download of `remote` asked to go to `local` goes.
pub(crate) fn destination(remote: &[u8], local: &Path) -> Result<Destination> {
    match fs::metadata(local) {
        Ok(meta) if meta.is_dir() => {
            let Some(name) = remote_basename(remote) else {
                return Err(ClientError::Usage(format!(
                    "{} names no file to save in directory {}",
                    escape_text(remote),
                    local.display()
                )));
            };
            let inside = local.join(name);
            match fs::metadata(&inside) {
                Ok(meta) if meta.is_dir() => Err(refuse(&inside, "it is a directory")),
                found => classify(&inside, found),
            }
        }
        found => classify(local, found),
    }
}

/// The same decision for a path that is not a directory to save into.
fn classify(path: &Path, followed: io::Result<fs::Metadata>) -> Result<Destination> {
    match followed {
        Ok(meta) if meta.is_file() => {
            let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            if !is_link {
                return Ok(Destination::File(path.to_path_buf()));
            }
            // Replace what the link leads to, never the link itself.
            let real = fs::canonicalize(path).map_err(|e| local_error("resolve the symlink", path, e))?;
            Ok(Destination::File(real))
        }
        Ok(meta) if is_stream(meta.file_type()) => Ok(Destination::Stream(path.to_path_buf())),
        Ok(meta) => Err(refuse(path, describe(meta.file_type()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::symlink_metadata(path) {
            Ok(_) => Err(refuse(path, "it is a symlink to nothing")),
            Err(_) => Ok(Destination::File(path.to_path_buf())),
        },
        Err(e) => Err(local_error("inspect", path, e)),
    }
}

/// Fails unless `target` is a regular file or absent: checked again just
/// before the rename, in case something else appeared there meanwhile.
pub(crate) fn ensure_replaceable(target: &Path, part: &Path) -> Result<()> {
    match fs::symlink_metadata(target) {
        Ok(meta) if !meta.is_file() => Err(local_error(
            "replace",
            target,
            io::Error::other(format!(
                "it is no longer a regular file ({}); the download is kept in {}",
                describe(meta.file_type()),
                part.display()
            )),
        )),
        _ => Ok(()),
    }
}

/// Written in place rather than replaced.
fn is_stream(kind: FileType) -> bool {
    kind.is_fifo() || kind.is_char_device()
}

fn describe(kind: FileType) -> &'static str {
    if kind.is_dir() {
        "it is a directory"
    } else if kind.is_symlink() {
        "it is a symlink"
    } else if kind.is_block_device() {
        "it is a block device"
    } else if kind.is_socket() {
        "it is a socket"
    } else {
        "it is not a regular file"
    }
}

fn refuse(path: &Path, why: &str) -> ClientError {
    local_error(
        "save to",
        path,
        io::Error::other(format!(
            "{why}; ferry get writes regular files (through a .part), FIFOs and character devices"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_destination() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let file = d.join("f");
        fs::write(&file, b"x").unwrap();
        std::os::unix::fs::symlink(&file, d.join("to-file")).unwrap();
        std::os::unix::fs::symlink("/dev/null", d.join("to-null")).unwrap();
        std::os::unix::fs::symlink(d.join("nothing"), d.join("dangling")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            d.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        fs::create_dir(d.join("sub")).unwrap();
        let real = fs::canonicalize(&file).unwrap();

        assert_eq!(destination(b"/r", &d.join("new")).unwrap(), Destination::File(d.join("new")));
        assert_eq!(destination(b"/r", &file).unwrap(), Destination::File(file.clone()));
        assert_eq!(destination(b"/r", &d.join("to-file")).unwrap(), Destination::File(real));
        assert_eq!(destination(b"/r", &d.join("to-null")).unwrap(), Destination::Stream(d.join("to-null")));
        assert_eq!(destination(b"/r", &d.join("fifo")).unwrap(), Destination::Stream(d.join("fifo")));
        assert_eq!(destination(b"/a/r", d).unwrap(), Destination::File(d.join("r")));
        assert_eq!(destination(b"/fifo", d).unwrap(), Destination::Stream(d.join("fifo")));
        let err = destination(b"/sub", d).unwrap_err().to_string();
        assert!(err.contains("sub"), "{err}");
        let err = format!("{:#}", anyhow_like(destination(b"/r", &d.join("dangling")).unwrap_err()));
        assert!(err.contains("symlink to nothing"), "{err}");
        assert!(destination(b"/", d).is_err());
    }

    fn anyhow_like(e: ClientError) -> String {
        match &e {
            ClientError::Local { source, .. } => format!("{e}: {source}"),
            other => other.to_string(),
        }
    }
}
