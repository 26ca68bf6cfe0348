//! Planning uploads: local files and trees (walked with `read_dir`, in
//! name order) to remote paths, with the same rules as downloads (see
//! `plan.rs`): one file goes to REMOTE or into it if it is a directory;
//! several sources need REMOTE to be a directory; a directory needs
//! `recursive` and becomes REMOTE if that does not exist yet.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ferry_proto::files::escape::escape_text;

use crate::part::local_error;
use crate::plan::{Direction, Item, Plan, Problem, is_fatal, join_remote};
use crate::{Client, ClientError, Kind, Result};

impl Client {
    /// Plans uploading the local `sources` to `remote` (default: the
    /// working directory; a path ending in `/` must be a directory).
    pub fn plan_put(&mut self, sources: &[&Path], remote: Option<&[u8]>, recursive: bool) -> Result<Plan> {
        let mut plan = Plan::new(Direction::Put);
        // What REMOTE is decides where each source goes.
        let remote_is_dir = match remote {
            None => true,
            Some(r) if r.ends_with(b"/") => {
                // A directory to put things in: made if missing, as rsync
                // makes its destination.
                match self.stat(r) {
                    Err(ClientError::Server { code: 404, .. }) => {
                        plan.dirs.push(Item { remote: r.to_vec(), local: PathBuf::new(), size: 0, mtime: None })
                    }
                    Err(e) if is_fatal(&e) => return Err(e),
                    _ => {}
                }
                true
            }
            Some(r) => match self.stat(r) {
                Ok(entry) => entry.kind == Kind::Dir,
                Err(e) if is_fatal(&e) => return Err(e),
                Err(_) => false,
            },
        };
        let several = sources.len() > 1;
        if several && !remote_is_dir {
            return Err(ClientError::Usage(format!(
                "{} is not a directory on the server: several sources need one to go into",
                escape_text(remote.unwrap_or_default())
            )));
        }
        let base = remote.unwrap_or_default();
        for &source in sources {
            let shown = source.display().to_string();
            let meta = match fs::metadata(source) {
                Ok(meta) => meta,
                Err(e) => {
                    plan.problems.push(Problem { source: shown, error: local_error("read", source, e) });
                    continue;
                }
            };
            let name = source.file_name().map(|n| n.as_bytes().to_vec());
            let target = match (name, remote_is_dir) {
                (Some(name), true) => join_remote(base, &name),
                (None, true) => {
                    let error = ClientError::Usage(format!("{shown} has no file name to upload under"));
                    plan.problems.push(Problem { source: shown, error });
                    continue;
                }
                (_, false) => base.to_vec(),
            };
            if meta.is_dir() {
                if !recursive {
                    let error = ClientError::Usage(format!("{shown} is a directory (use -r)"));
                    plan.problems.push(Problem { source: shown, error });
                    continue;
                }
                walk_local(source.to_path_buf(), target, &mut plan);
            } else if meta.is_file() {
                plan.files.push(Item {
                    remote: target,
                    local: source.to_path_buf(),
                    size: meta.len(),
                    mtime: Some(meta.mtime()),
                });
            } else {
                let error = local_error("upload", source, std::io::Error::other("not a regular file"));
                plan.problems.push(Problem { source: shown, error });
            }
        }
        Ok(plan)
    }
}

/// Adds the local tree under `local` to `plan`, to be stored as the remote
/// directory `remote`. Symlinks to files are followed; symlinks to
/// directories, FIFOs, sockets and devices are left out (noted).
fn walk_local(local: PathBuf, remote: Vec<u8>, plan: &mut Plan) {
    let mut todo = vec![(local, remote)];
    while let Some((local, remote)) = todo.pop() {
        let mut names: Vec<_> = match fs::read_dir(&local) {
            Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.file_name()).collect(),
            Err(e) => {
                let source = local.display().to_string();
                plan.problems.push(Problem { source, error: local_error("read the directory", &local, e) });
                continue;
            }
        };
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        plan.dirs.push(Item { remote: remote.clone(), local: local.clone(), size: 0, mtime: None });
        let mut subdirs = Vec::new();
        for name in names {
            let path = local.join(&name);
            let to = join_remote(&remote, name.as_bytes());
            match fs::metadata(&path) {
                Ok(meta) if meta.is_file() => {
                    plan.files.push(Item { remote: to, local: path, size: meta.len(), mtime: Some(meta.mtime()) })
                }
                Ok(meta) if meta.is_dir() && !is_symlink(&path) => subdirs.push((path, to)),
                Ok(meta) if meta.is_dir() => {
                    plan.notes.push(format!("skipped {}: a symlink to a directory", path.display()))
                }
                Ok(_) => plan.notes.push(format!("skipped {}: not a regular file", path.display())),
                Err(e) => {
                    let source = path.display().to_string();
                    plan.problems.push(Problem { source, error: local_error("read", &path, e) });
                }
            }
        }
        todo.extend(subdirs.into_iter().rev());
    }
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

impl Client {
    /// Creates a remote directory of an upload plan; one that exists
    /// already is fine.
    pub(crate) fn ensure_remote_dir(&mut self, dir: &[u8]) -> Result<()> {
        match self.mkdir(dir) {
            Err(ClientError::Server { code: 409, .. }) if self.stat(dir).is_ok_and(|e| e.kind == Kind::Dir) => Ok(()),
            other => other,
        }
    }
}
