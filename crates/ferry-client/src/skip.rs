//! rsync's question before each file: is the destination already what the
//! source is? `--skip-existing` leaves any existing destination alone,
//! `--update` one that has the source's size and is not older than it
//! (downloads keep the remote modification time, so a file fetched once
//! matches until the remote one changes), `--checksum` one with the same
//! size and SHA-256 (the server's `sum`), and `--no-clobber` never
//! replaces anything: an existing destination is a failure.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;

use ferry_proto::files::escape::escape_text;

use crate::checksum::sha256_file;
use crate::part::local_error;
use crate::plan::{Direction, Item, is_fatal};
use crate::{Client, ClientError, Kind, Result};

/// Which destinations that already exist are left alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Skip {
    /// None: every file is transferred (resuming what it can).
    #[default]
    Never,
    /// Every one that exists.
    Existing,
    /// Those with the source's size and a modification time no older.
    Update,
    /// Those with the source's size and SHA-256.
    Checksum,
    /// None is replaced: an existing destination fails its file.
    NoClobber,
}

/// The destination as it is: size and modification time.
struct Found {
    size: u64,
    mtime: i64,
}

/// Why `item` is left alone (`None`: transfer it), or the failure that
/// `--no-clobber` makes of an existing destination.
pub(crate) fn skip_reason(
    client: &mut Client,
    direction: Direction,
    item: &Item,
    skip: Skip,
) -> Result<Option<&'static str>> {
    if skip == Skip::Never {
        return Ok(None);
    }
    let found = match direction {
        Direction::Get => match fs::metadata(&item.local) {
            Ok(meta) if meta.is_file() => Some(Found { size: meta.len(), mtime: meta.mtime() }),
            _ => None,
        },
        Direction::Put => match client.stat(&item.remote) {
            Ok(entry) if entry.kind == Kind::File => Some(Found { size: entry.size, mtime: entry.mtime }),
            Ok(_) => None,
            Err(e) if is_fatal(&e) => return Err(e),
            Err(_) => None,
        },
    };
    let Some(found) = found else { return Ok(None) };
    let same_size = found.size == item.size;
    match skip {
        Skip::Never => Ok(None),
        Skip::Existing => Ok(Some("exists")),
        Skip::NoClobber => Err(match direction {
            Direction::Get => local_error("replace", &item.local, io::Error::other("it exists (--no-clobber)")),
            Direction::Put => ClientError::Usage(format!(
                "{} exists on the server; not replaced (--no-clobber)",
                escape_text(&item.remote)
            )),
        }),
        Skip::Update => {
            // The source's time: the remote one for a download (unknown
            // without the right to list), the local one for an upload.
            let newer_or_same = item.mtime.is_some_and(|source| found.mtime >= source);
            Ok((same_size && newer_or_same).then_some("up to date"))
        }
        Skip::Checksum if !same_size => Ok(None),
        Skip::Checksum => {
            let local = sha256_file(&item.local).map_err(|e| local_error("read", &item.local, e))?;
            match client.sum(&item.remote) {
                Ok(remote) if remote == local => Ok(Some("same SHA-256")),
                Ok(_) => Ok(None),
                Err(e) if is_fatal(&e) => Err(e),
                Err(_) => Ok(None),
            }
        }
    }
}
