//! Standard input as a file `ferry put ADDR - REMOTE` can upload. The
//! protocol announces the size (and SHA-256) before the first byte, so a
//! stream of unknown length is first copied into an unnamed temporary
//! file in `$TMPDIR` (`O_TMPFILE`: it vanishes with the process, whatever
//! happens); stdin redirected from a regular file is used as it is.

use std::fs::File;
use std::io::{self, IsTerminal as _};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// Standard input as a regular file: itself if it is one, else a spooled
/// copy of everything it delivers up to end of input.
pub fn stdin_file(quiet: bool) -> anyhow::Result<File> {
    let stdin = rustix::stdio::stdin();
    let owned: OwnedFd = stdin.try_clone_to_owned().context("cannot use standard input")?;
    let file = File::from(owned);
    if file.metadata().context("cannot inspect standard input")?.is_file() {
        return Ok(file);
    }
    let dir = std::env::temp_dir();
    let mut spool =
        unnamed_file(&dir).with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let spinner = (!quiet && io::stderr().is_terminal()).then(|| {
        let style = ProgressStyle::with_template("{spinner} reading standard input: {bytes} ({binary_bytes_per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(style)
    });
    let copied = match &spinner {
        Some(bar) => io::copy(&mut bar.wrap_read(&file), &mut spool),
        None => io::copy(&mut &file, &mut spool),
    };
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    copied.with_context(|| format!("cannot copy standard input into a temporary file in {}", dir.display()))?;
    Ok(spool)
}

/// A read-write file in `dir` that has no name: `O_TMPFILE`, or on a
/// filesystem without it a new file unlinked at once.
fn unnamed_file(dir: &Path) -> io::Result<File> {
    let flags = OFlags::RDWR | OFlags::CLOEXEC;
    match rustix::fs::open(dir, flags | OFlags::TMPFILE, Mode::from_raw_mode(0o600)) {
        Ok(fd) => return Ok(File::from(fd)),
        // Kernels and filesystems without O_TMPFILE say so in these ways.
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => {}
        Err(e) => return Err(e.into()),
    }
    for attempt in 0..100u32 {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let path: PathBuf = dir.join(format!(".ferry-stdin-{}-{nanos}-{attempt}", std::process::id()));
        match rustix::fs::open(&path, flags | OFlags::CREATE | OFlags::EXCL, Mode::from_raw_mode(0o600)) {
            Ok(fd) => {
                std::fs::remove_file(&path)?;
                return Ok(File::from(fd));
            }
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::other("no free temporary name"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn an_unnamed_file_leaves_no_name_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = unnamed_file(dir.path()).unwrap();
        file.write_all(b"spooled").unwrap();
        file.rewind().unwrap();
        let mut back = String::new();
        file.read_to_string(&mut back).unwrap();
        assert_eq!(back, "spooled");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
