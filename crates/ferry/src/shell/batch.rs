//! sftp's many-file verbs in the shell: `get -r`, `put -r`, `mget` and
//! `mput`, and `get`/`put` of several paths. They run the client library's
//! plan on the shell's own connection (one file after another, so the
//! connection's working directory holds), with the same view and summary
//! as `ferry get`/`ferry put`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ferry_client::{BatchOptions, ClientError, Direction, Plan, glob_match, has_glob, join_remote, run_plan};
use ferry_proto::files::escape::unescape_text;

use super::Shell;
use crate::batch_view::BatchView;
use crate::transfer::tell;

/// A many-file command as typed: `-r`, then the paths.
struct Batch<'a> {
    recursive: bool,
    paths: Vec<&'a [u8]>,
}

impl<'a> Batch<'a> {
    /// Splits leading `-r` from the paths (`--` ends the options).
    fn parse(args: &'a [Vec<u8>]) -> anyhow::Result<Batch<'a>> {
        let mut recursive = false;
        let mut rest = args;
        while let Some((first, tail)) = rest.split_first() {
            match first.as_slice() {
                b"-r" | b"-R" => recursive = true,
                b"--" => {
                    rest = tail;
                    break;
                }
                option if option.len() > 1 && option.starts_with(b"-") => {
                    anyhow::bail!("unknown option {} (only -r)", String::from_utf8_lossy(option))
                }
                _ => break,
            }
            rest = tail;
        }
        Ok(Batch { recursive, paths: rest.iter().map(Vec::as_slice).collect() })
    }

    /// Whether the plain one-file path (a bar, `-` for stdout) serves it.
    fn is_single(&self) -> bool {
        !self.recursive && self.paths.len() <= 2 && !self.paths.first().is_some_and(|p| has_glob(p))
    }
}

impl Shell {
    /// Runs `mget`/`mput`, and `get`/`put` with `-r`, a glob or more than
    /// two paths; `false` for anything else (one file: the plain path).
    pub(super) fn many_files(&mut self, command: &str, args: &[Vec<u8>]) -> anyhow::Result<bool> {
        let into_here = match command {
            "mget" | "mput" => true,
            "get" | "put" => false,
            _ => return Ok(false),
        };
        let batch = Batch::parse(args)?;
        if !into_here && batch.is_single() {
            return Ok(false);
        }
        match command {
            "get" | "mget" => self.get_many(batch, into_here)?,
            _ => self.put_many(batch, into_here)?,
        }
        Ok(true)
    }

    /// `get [-r] REMOTE... [LOCAL]` beyond one file, and `mget REMOTE...`
    /// (`into_here`: every path is a source, saved in the local directory).
    fn get_many(&mut self, batch: Batch<'_>, into_here: bool) -> anyhow::Result<()> {
        let (sources, local) = match (into_here, batch.paths.as_slice()) {
            (_, []) => anyhow::bail!("name a remote file"),
            (true, all) | (false, all @ [_]) => (all, None),
            (false, [sources @ .., local]) => (sources, Some(Path::new(OsStr::from_bytes(local)))),
        };
        let cwd = self.remote_cwd()?;
        // Absolute, so a connection made again after a break finds them.
        let sources: Vec<Vec<u8>> =
            sources.iter().map(|s| if s.starts_with(b"/") { s.to_vec() } else { join_remote(&cwd, s) }).collect();
        let sources: Vec<&[u8]> = sources.iter().map(Vec::as_slice).collect();
        let plan = self.client.plan_get(&sources, local, batch.recursive)?;
        self.run(plan)
    }

    /// `put [-r] LOCAL... [REMOTE]` beyond one file, and `mput LOCAL...`
    /// (`into_here`: every path is a source, local globs expanded, saved
    /// in the remote directory).
    fn put_many(&mut self, batch: Batch<'_>, into_here: bool) -> anyhow::Result<()> {
        let (sources, remote) = match (into_here, batch.paths.as_slice()) {
            (_, []) => anyhow::bail!("name a local file"),
            (true, all) | (false, all @ [_]) => (all, None),
            (false, [sources @ .., remote]) => (sources, Some(remote.to_vec())),
        };
        let mut locals = Vec::new();
        for source in sources {
            locals.extend(expand_local(source)?);
        }
        let locals: Vec<&Path> = locals.iter().map(PathBuf::as_path).collect();
        let remote = match remote {
            Some(r) if r.starts_with(b"/") => r,
            Some(r) => join_remote(&self.remote_cwd()?, &r),
            // Into the working directory, which exists: the trailing `/`.
            None => join_remote(&self.remote_cwd()?, b""),
        };
        let plan = self.client.plan_put(&locals, Some(&remote), batch.recursive)?;
        self.run(plan)
    }

    /// The remote working directory as bytes, ending in `/`.
    fn remote_cwd(&self) -> anyhow::Result<Vec<u8>> {
        let mut cwd =
            unescape_text(&self.cwd).map_err(|e| anyhow::anyhow!("the working directory {}: {e}", self.cwd))?;
        if !cwd.ends_with(b"/") {
            cwd.push(b'/');
        }
        Ok(cwd)
    }

    /// Runs `plan` on the shell's connection, one file at a time; a broken
    /// connection is made again (unless Ctrl-C broke it: then the rest is
    /// abandoned and the shell reconnects once, after the command).
    fn run(&mut self, plan: Plan) -> anyhow::Result<()> {
        let view = BatchView::new(plan.direction, true);
        for note in &plan.notes {
            view.notice(note);
        }
        let (connect, addr, interrupts) = (&self.connect, self.addr.as_str(), self.interrupts.clone());
        let again = || {
            if interrupts.as_ref().is_some_and(|i| i.fired()) {
                return Err(ClientError::Abandoned { detail: "interrupted".to_owned() });
            }
            connect.connect(addr).map_err(|e| ClientError::Abandoned { detail: format!("cannot connect again: {e:#}") })
        };
        let options = BatchOptions { parallel: 1, ..BatchOptions::default() };
        let direction = plan.direction;
        let report = run_plan(plan, &mut self.client, &again, &options, &view);
        view.finish();
        let verb = if direction == Direction::Get { "get" } else { "put" };
        tell(&report, false).with_context(|| format!("{verb}: not every file moved"))
    }
}

/// A local path with a glob in its last component, matched against its
/// directory (sorted, dot names only by a pattern that starts with `.`);
/// a path without one, or that matches nothing, as it is.
fn expand_local(pattern: &[u8]) -> anyhow::Result<Vec<PathBuf>> {
    let path = Path::new(OsStr::from_bytes(pattern));
    let name = path.file_name().map(OsStrExt::as_bytes).unwrap_or_default();
    if !has_glob(name) {
        return Ok(vec![path.to_path_buf()]);
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let file_name = entry.file_name();
        let candidate = file_name.as_bytes();
        if candidate.starts_with(b".") && !name.starts_with(b".") {
            continue;
        }
        if glob_match(name, candidate) {
            found.push(if path.parent().is_some_and(|p| !p.as_os_str().is_empty()) {
                dir.join(&file_name)
            } else {
                PathBuf::from(&file_name)
            });
        }
    }
    found.sort();
    if found.is_empty() {
        found.push(path.to_path_buf());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &[&str]) -> Vec<Vec<u8>> {
        line.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn options_come_before_the_paths() {
        let args = words(&["-r", "dir", "-"]);
        let batch = Batch::parse(&args).unwrap();
        assert!(batch.recursive);
        assert_eq!(batch.paths, vec![&b"dir"[..], b"-"]);
        let args = words(&["--", "-r"]);
        let batch = Batch::parse(&args).unwrap();
        assert!(!batch.recursive && batch.paths == vec![&b"-r"[..]]);
        assert!(Batch::parse(&words(&["-x", "a"])).is_err());
        assert!(Batch::parse(&words(&["a", "b"])).unwrap().is_single());
        assert!(!Batch::parse(&words(&["*.txt"])).unwrap().is_single());
        assert!(!Batch::parse(&words(&["a", "b", "c"])).unwrap().is_single());
    }

    #[test]
    fn local_globs_match_the_last_component() {
        let dir = std::env::temp_dir().join(format!("ferry-mput-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["a.txt", "b.txt", "c.bin", ".d.txt"] {
            std::fs::write(dir.join(name), name).unwrap();
        }
        let pattern = dir.join("*.txt");
        let found = expand_local(pattern.as_os_str().as_bytes()).unwrap();
        assert_eq!(found, vec![dir.join("a.txt"), dir.join("b.txt")]);
        let none = dir.join("*.iso");
        assert_eq!(expand_local(none.as_os_str().as_bytes()).unwrap(), vec![none.clone()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
