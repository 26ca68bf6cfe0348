//! What `ferry serve` needs to hand itself over to a new binary on
//! SIGUSR2 (see `ferry_server::upgrade`): the path it was started from,
//! its arguments, and the directory it was started in, all taken at start
//! (a daemon changes to `/` later, and the file at the path may be
//! replaced by then: that is the point).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ferry_server::upgrade::UpgradeSpec;

/// The upgrade's settings for this process.
pub(super) fn spec() -> anyhow::Result<UpgradeSpec> {
    let cwd = std::env::current_dir().context("cannot tell the working directory")?;
    let args: Vec<OsString> = std::env::args_os().collect();
    let exe = args.first().and_then(|argv0| started_from(Path::new(argv0), &cwd));
    let exe = match exe {
        Some(exe) => exe,
        None => std::env::current_exe().context("cannot tell which binary is running")?,
    };
    Ok(UpgradeSpec { exe, args, cwd })
}

/// The file `argv0` named when the binary started: a path (relative to
/// `cwd`), or a name looked up in `PATH` as the shell did.
fn started_from(argv0: &Path, cwd: &Path) -> Option<PathBuf> {
    if argv0.as_os_str().is_empty() {
        return None;
    }
    if argv0.components().count() > 1 || argv0.is_absolute() {
        return Some(cwd.join(argv0));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| cwd.join(dir).join(argv0)).find(|candidate| candidate.is_file())
}
