//! sftp's local verbs: `lcd`, `lpwd`, `lls` and `!command`, so a session
//! can find and place local files without leaving the shell.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use super::command::Next;

/// Runs a local verb; `None` if `command` is not one.
pub fn run(command: &str, args: &[Vec<u8>]) -> Option<anyhow::Result<Next>> {
    let path = |a: &Vec<u8>| PathBuf::from(OsStr::from_bytes(a));
    let result = match (command, args) {
        ("lpwd", []) => std::env::current_dir().map(|d| println!("{}", d.display())).context("lpwd"),
        ("lcd", [] | [_]) => {
            let dir = args.first().map(path).or_else(|| std::env::var_os("HOME").map(PathBuf::from));
            match dir {
                Some(dir) => std::env::set_current_dir(&dir).with_context(|| format!("lcd {}", dir.display())),
                None => Err(anyhow::anyhow!("lcd: no DIR and no HOME")),
            }
        }
        ("lls", [] | [_]) => list(&args.first().map(path).unwrap_or_else(|| PathBuf::from("."))),
        ("lpwd", _) => Err(anyhow::anyhow!("usage: lpwd")),
        ("lcd", _) => Err(anyhow::anyhow!("usage: lcd [DIR]")),
        ("lls", _) => Err(anyhow::anyhow!("usage: lls [DIR]")),
        _ => return None,
    };
    Some(result.map(|()| Next::Continue))
}

/// `lls`: the names in a local directory, sorted, directories with `/`.
fn list(dir: &Path) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("lls {}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().as_bytes().starts_with(b"."))
        .map(|e| {
            let mut name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                name.push('/');
            }
            name
        })
        .collect();
    names.sort();
    for name in names {
        println!("{name}");
    }
    Ok(())
}

/// `!command`: runs it with `sh -c` (a bare `!`: `$SHELL`, default
/// `sh`); a non-zero exit is a failed command. On a terminal it has the
/// terminal; in a batch its standard input is empty (the batch's input
/// carries the commands, which it must not eat).
pub fn shell_out(command: &str, interactive: bool) -> anyhow::Result<Next> {
    let mut child = if command.trim().is_empty() {
        Command::new(std::env::var_os("SHELL").unwrap_or_else(|| "sh".into()))
    } else {
        let mut c = Command::new("sh");
        c.arg("-c").arg(command);
        c
    };
    if !interactive {
        child.stdin(std::process::Stdio::null());
    }
    let status = child.status().context("cannot run sh")?;
    if status.success() {
        Ok(Next::Continue)
    } else {
        eprintln!("ferry: !{}: {status}", command.trim());
        Ok(Next::Failed)
    }
}
