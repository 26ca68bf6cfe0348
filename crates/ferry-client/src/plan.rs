//! What a multi-file transfer will do, decided before the first byte
//! moves: every file with where it is read and where it goes, the
//! directories to create first, and the sources that could not be planned.
//! `ferry get`/`ferry put` run a [`Plan`] with [`crate::batch`]; the shell's
//! `get -r`/`mget` can make and run the same plans.
//!
//! Downloads are planned here (remote globs expanded from `ls`, trees
//! walked with `ls`), uploads in `plan_put.rs` (trees walked with
//! `read_dir`). Names are kept as bytes end to end, so spaces, newlines and
//! names that are not UTF-8 arrive exactly; a remote name that could leave
//! the local directory (`..`, a `/`) is refused.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ferry_proto::files::escape::escape_text;

use crate::glob::{glob_match, has_glob, unescape};
use crate::paths::remote_basename;
use crate::{Client, ClientError, EntryInfo, Kind, Result};

/// Which way a plan moves files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Server to here.
    Get,
    /// Here to server.
    Put,
}

/// One file (or, in [`Plan::dirs`], one directory) of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The remote path, as sent.
    pub remote: Vec<u8>,
    /// The local path.
    pub local: PathBuf,
    /// The source's size as planned (0 if it could not be asked).
    pub size: u64,
    /// The source's modification time (Unix seconds), if known.
    pub mtime: Option<i64>,
}

/// A source that could not be planned (no such file, no match, a directory
/// without `-r`, ...): reported as a failed file, the rest still moves.
#[derive(Debug)]
pub struct Problem {
    /// The source as the user named it (escaped).
    pub source: String,
    /// What went wrong.
    pub error: ClientError,
}

/// Everything a transfer will do.
#[derive(Debug)]
pub struct Plan {
    /// Which way the files move.
    pub direction: Direction,
    /// Directories to create before the files (parents first): local ones
    /// for a download, remote ones (`mkdir`) for an upload.
    pub dirs: Vec<Item>,
    /// The files, in order.
    pub files: Vec<Item>,
    /// Sources that will not move, and why.
    pub problems: Vec<Problem>,
    /// Things left out on purpose (symlinks to directories, FIFOs), to
    /// tell the user.
    pub notes: Vec<String>,
}

impl Plan {
    pub(crate) fn new(direction: Direction) -> Plan {
        Plan { direction, dirs: Vec::new(), files: Vec::new(), problems: Vec::new(), notes: Vec::new() }
    }

    /// The bytes of all planned files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Whether an error leaves the connection unusable for further requests
/// (so planning stops), as opposed to an answer about one path.
pub(crate) fn is_fatal(e: &ClientError) -> bool {
    match e {
        // The server closes after these.
        ClientError::Server { code, .. } => matches!(code, 408 | 413),
        ClientError::Usage(_)
        | ClientError::Local { .. }
        | ClientError::VerifyMismatch { .. }
        | ClientError::Deadline { .. }
        | ClientError::Abandoned { .. } => false,
        _ => true,
    }
}

/// `dir` + `/` + `name` as a remote path (`name` alone if `dir` is empty).
pub fn join_remote(dir: &[u8], name: &[u8]) -> Vec<u8> {
    match dir {
        b"" => name.to_vec(),
        d if d.ends_with(b"/") => [d, name].concat(),
        d => [d, b"/", name].concat(),
    }
}

/// A name from a listing that is safe to create locally: one component,
/// not `.` or `..`, no NUL. A server could send anything; scp's CVE-2019-6111
/// is what happens when a client believes it.
fn safe_name(name: &[u8]) -> bool {
    !matches!(name, b"" | b"." | b"..") && !name.contains(&b'/') && !name.contains(&0)
}

impl Client {
    /// Plans downloading `sources` (remote paths; globs are expanded) to
    /// `local` (default: the current directory), as scp does: one file
    /// goes to `local` (or into it, if it is a directory); with several
    /// sources `local` must be a directory; a directory needs `recursive`
    /// and becomes `local` if that does not exist yet, else `local/NAME`.
    ///
    /// Errors about one source become [`Plan::problems`]; an error that
    /// breaks the connection, or a bad `local`, fails the whole plan.
    pub fn plan_get(&mut self, sources: &[&[u8]], local: Option<&Path>, recursive: bool) -> Result<Plan> {
        let mut plan = Plan::new(Direction::Get);
        let mut found: Vec<(Vec<u8>, Option<EntryInfo>)> = Vec::new();
        for &source in sources {
            match self.expand(source) {
                Ok(entries) => found.extend(entries),
                Err(e) if is_fatal(&e) => return Err(e),
                Err(error) => plan.problems.push(Problem { source: escape_text(source), error }),
            }
        }
        let into_dir = local.is_some_and(|l| l.is_dir());
        let several = found.len() + plan.problems.len() > 1;
        if several && !into_dir && local.is_some() {
            let local = local.unwrap_or(Path::new("."));
            return Err(ClientError::Usage(format!(
                "{} is not a directory: several sources need one to go into",
                local.display()
            )));
        }
        // Without LOCAL, names are relative to the current directory.
        let base = local.unwrap_or(Path::new(""));
        for (remote, entry) in found {
            let name = remote_basename(&remote).map(OsStr::to_os_string);
            let is_dir = entry.as_ref().is_some_and(|e| e.kind == Kind::Dir);
            let target = match (&name, into_dir || local.is_none() || several) {
                (Some(name), true) => base.join(name),
                // `get -r /` into a directory: the root's contents go there.
                (None, true) if is_dir && recursive && !several => base.to_path_buf(),
                (None, true) => {
                    let error = ClientError::Usage(format!("{} names no file to save", escape_text(&remote)));
                    plan.problems.push(Problem { source: escape_text(&remote), error });
                    continue;
                }
                (_, false) => base.to_path_buf(),
            };
            let Some(entry) = entry else {
                plan.files.push(Item { remote, local: target, size: 0, mtime: None });
                continue;
            };
            match entry.kind {
                Kind::Dir if !recursive => {
                    let error = ClientError::Usage(format!("{} is a directory (use -r)", escape_text(&remote)));
                    plan.problems.push(Problem { source: escape_text(&remote), error });
                }
                Kind::Dir => self.walk_remote(remote, target, &mut plan)?,
                _ => plan.files.push(Item { remote, local: target, size: entry.size, mtime: Some(entry.mtime) }),
            }
        }
        Ok(plan)
    }

    /// The paths a source names, with what each is: itself (`stat`), or
    /// the matches of a pattern (or, if nothing matches, the path itself if
    /// it exists: names may hold `*`).
    fn expand(&mut self, source: &[u8]) -> Result<Vec<(Vec<u8>, Option<EntryInfo>)>> {
        if !has_glob(source) {
            return match self.stat(source) {
                Ok(entry) => Ok(vec![(source.to_vec(), Some(entry))]),
                // Without the right to list (a read-only token): plan it
                // blind, and let `get` say what it may.
                Err(ClientError::Server { code: 403, .. }) => Ok(vec![(source.to_vec(), None)]),
                Err(e) => Err(e),
            };
        }
        let absolute = source.starts_with(b"/");
        let mut paths: Vec<(Vec<u8>, Option<EntryInfo>)> =
            vec![(if absolute { b"/".to_vec() } else { Vec::new() }, None)];
        let components: Vec<&[u8]> = source.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
        for (i, component) in components.iter().enumerate() {
            let last = i + 1 == components.len();
            let mut next = Vec::new();
            for (dir, _) in paths {
                if !has_glob(component) {
                    next.push((join_remote(&dir, &unescape(component)), None));
                    continue;
                }
                let listed = match self.ls(Some(if dir.is_empty() { b"." } else { &dir })) {
                    Ok(listed) => listed,
                    Err(e) if is_fatal(&e) => return Err(e),
                    Err(_) => continue,
                };
                for entry in listed {
                    if !glob_match(component, &entry.name) || !safe_name(&entry.name) {
                        continue;
                    }
                    if !last && entry.kind != Kind::Dir && entry.kind != Kind::Symlink {
                        continue;
                    }
                    let path = join_remote(&dir, &entry.name);
                    next.push((path, Some(entry)));
                }
            }
            paths = next;
        }
        let mut out = Vec::new();
        for (path, entry) in paths {
            match entry {
                Some(entry) if entry.kind != Kind::Symlink => out.push((path, Some(entry))),
                // A link, or a path only named, never listed: ask.
                _ => match self.stat(&path) {
                    Ok(entry) => out.push((path, Some(entry))),
                    Err(e) if is_fatal(&e) => return Err(e),
                    Err(_) => {}
                },
            }
        }
        if out.is_empty() {
            return match self.stat(source) {
                Ok(entry) => Ok(vec![(source.to_vec(), Some(entry))]),
                Err(ClientError::Server { code: 404, .. }) => {
                    Err(ClientError::Usage(format!("no match for {}", escape_text(source))))
                }
                Err(e) => Err(e),
            };
        }
        Ok(out)
    }

    /// Adds the tree under the remote directory `remote` to `plan`, to be
    /// saved as the local directory `local`.
    fn walk_remote(&mut self, remote: Vec<u8>, local: PathBuf, plan: &mut Plan) -> Result<()> {
        let mut todo = vec![(remote, local)];
        while let Some((remote, local)) = todo.pop() {
            let listed = match self.ls(Some(&remote)) {
                Ok(listed) => listed,
                Err(e) if is_fatal(&e) => return Err(e),
                Err(error) => {
                    plan.problems.push(Problem { source: escape_text(&remote), error });
                    continue;
                }
            };
            plan.dirs.push(Item { remote: remote.clone(), local: local.clone(), size: 0, mtime: None });
            // Depth first, in name order: push subdirectories in reverse.
            let mut subdirs = Vec::new();
            for entry in listed {
                let path = join_remote(&remote, &entry.name);
                if !safe_name(&entry.name) {
                    plan.notes.push(format!("skipped {}: not a name that can be saved", escape_text(&path)));
                    continue;
                }
                let to = local.join(OsStr::from_bytes(&entry.name));
                let entry = match entry.kind {
                    Kind::Symlink => match self.stat(&path) {
                        Ok(target) if target.kind == Kind::Dir => {
                            plan.notes.push(format!("skipped {}: a symlink to a directory", escape_text(&path)));
                            continue;
                        }
                        Ok(target) => target,
                        Err(e) if is_fatal(&e) => return Err(e),
                        Err(error) => {
                            plan.problems.push(Problem { source: escape_text(&path), error });
                            continue;
                        }
                    },
                    _ => entry,
                };
                match entry.kind {
                    Kind::File => {
                        plan.files.push(Item { remote: path, local: to, size: entry.size, mtime: Some(entry.mtime) })
                    }
                    Kind::Dir => subdirs.push((path, to)),
                    _ => plan.notes.push(format!("skipped {}: not a regular file", escape_text(&path))),
                }
            }
            todo.extend(subdirs.into_iter().rev());
        }
        Ok(())
    }
}

/// Creates the local directories of a download plan (existing ones are
/// fine); a failure is returned for its directory.
pub(crate) fn create_local_dir(dir: &Path) -> std::io::Result<()> {
    match fs::create_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if dir.is_dir() => {
            tracing::debug!(error = %e, "directory exists");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_joins_and_safe_names() {
        assert_eq!(join_remote(b"", b"a"), b"a");
        assert_eq!(join_remote(b"/", b"a"), b"/a");
        assert_eq!(join_remote(b"/d", b"a b"), b"/d/a b");
        assert!(safe_name(b"a b\n\xff"));
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0"] {
            assert!(!safe_name(bad), "{bad:?}");
        }
    }
}
