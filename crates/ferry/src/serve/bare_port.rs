//! `ferry serve 8000`: the positional ROOT given as a bare port number, as
//! `python3 -m http.server 8000` takes it.
//!
//! The rule: a ROOT made only of digits that is a port number (0-65535)
//! and not an existing directory means "serve the current directory, over
//! HTTP on 127.0.0.1:PORT" (the file service keeps its own address,
//! `--files`). A directory of that name wins, with a log line saying how
//! to ask for the port instead. A bare port together with `--http` is
//! refused rather than guessed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ferry_server::ListenAddr;

use super::ServeArgs;

/// The HTTP service's default address (`--http`'s default).
const DEFAULT_HTTP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// The port a ROOT argument names, if it is one by the rule above.
fn as_port(root: &Path) -> Option<u16> {
    let text = root.to_str()?;
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits {
        return None;
    }
    if root.is_dir() {
        tracing::info!("serving the directory {text}; for HTTP on port {text} write: ferry serve --http {text}");
        return None;
    }
    text.parse().ok()
}

/// Applies the rule to `args`: a bare port becomes the HTTP address and
/// the root the current directory.
pub(super) fn apply(args: &mut ServeArgs) -> anyhow::Result<()> {
    let Some(port) = as_port(&args.root) else {
        return Ok(());
    };
    if args.http != Some(ListenAddr::Tcp(DEFAULT_HTTP)) {
        anyhow::bail!(
            "`ferry serve {port}` serves HTTP on port {port}, and --http names another address: \
             give one (to serve a directory named {port}, write ./{port})"
        );
    }
    args.http = Some(ListenAddr::Tcp(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)));
    args.root = PathBuf::from(".");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_that_are_not_a_directory_are_a_port() {
        assert_eq!(as_port(Path::new("8000")), Some(8000));
        assert_eq!(as_port(Path::new("0")), Some(0));
        assert_eq!(as_port(Path::new("70000")), None, "not a port: left to fail as a directory");
        assert_eq!(as_port(Path::new("./8000")), None, "a path, not a bare port");
        assert_eq!(as_port(Path::new("8000a")), None);
    }
}
