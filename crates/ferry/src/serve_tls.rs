//! `ferry serve`'s TLS options: a certificate and key from PEM files, or
//! a self-signed pair made on first start and kept in a state directory,
//! and which services speak TLS.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context as _, bail};
use ferry_server::{ListenerConfig, ServerTls};

/// TLS options of `ferry serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// Serve every service over TLS (1.2 and 1.3) with this certificate
    /// chain (PEM, leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key", conflicts_with = "tls_self_signed")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve every service over TLS with a self-signed certificate for
    /// localhost, made on first start and kept in --state-dir (reused
    /// later). Its SHA-256 fingerprint is printed at start, for clients'
    /// --fingerprint.
    #[arg(long)]
    tls_self_signed: bool,
    /// Where --tls-self-signed keeps its key and certificate
    /// [default: $XDG_STATE_HOME/ferry, or ~/.local/state/ferry].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Keep this service in plain text although TLS is on (repeatable):
    /// files, http, echo.
    #[arg(long = "tls-plain", value_name = "SERVICE", value_parser = ["files", "http", "echo"])]
    tls_plain: Vec<String>,
}

/// The server's TLS identity, once set up: for the fingerprint line.
static TLS: OnceLock<Arc<ServerTls>> = OnceLock::new();

/// The `ferry: TLS certificate SHA-256 ...` line, if TLS is on.
pub fn fingerprint_line() -> Option<String> {
    TLS.get().map(|tls| format!("ferry: TLS certificate SHA-256 {}", tls.fingerprint()))
}

/// True if these options put the services that can write (files, HTTP)
/// on TLS, for the secure-defaults rule ([`crate::exposure`]).
pub fn protects_writes(args: &TlsArgs) -> bool {
    let on = args.tls_cert.is_some() || args.tls_self_signed;
    on && !args.tls_plain.iter().any(|s| s == "files" || s == "http")
}

/// Puts the listeners on TLS as the options say.
pub fn apply(args: &TlsArgs, listeners: &mut [ListenerConfig]) -> anyhow::Result<()> {
    let tls = match (&args.tls_cert, &args.tls_key, args.tls_self_signed) {
        (Some(cert), Some(key), _) => ServerTls::from_pem_files(cert, key)?,
        (_, _, true) => {
            let dir = match &args.state_dir {
                Some(dir) => dir.clone(),
                None => default_state_dir()?,
            };
            // The daemon changes to /: keep the directory absolute.
            let dir = std::path::absolute(&dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
            let (cert, key) = self_signed(&dir)?;
            ServerTls::from_pem_files(&cert, &key)?
        }
        _ => return Ok(()),
    };
    let tls = Arc::new(tls);
    for listener in listeners.iter_mut() {
        if !args.tls_plain.iter().any(|s| s == listener.service.name()) {
            listener.tls = Some(Arc::clone(&tls));
        }
    }
    // SIGHUP re-reads the certificate and key: later handshakes get the
    // new ones, open connections keep theirs; broken files change nothing.
    let reloaded = Arc::clone(&tls);
    ferry_server::reload::on_reload(move || {
        if let Err(e) = reloaded.reload() {
            tracing::error!("{e}; keeping the TLS certificate in use");
        }
    });
    let _ = TLS.set(tls);
    Ok(())
}

/// `$XDG_STATE_HOME/ferry`, or `~/.local/state/ferry`.
fn default_state_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| Path::new(d).is_absolute()) {
        return Ok(PathBuf::from(dir).join("ferry"));
    }
    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
        bail!("--tls-self-signed: neither XDG_STATE_HOME nor HOME is set; give --state-dir");
    };
    Ok(PathBuf::from(home).join(".local/state/ferry"))
}

/// The self-signed pair in `dir` (`tls-cert.pem`, `tls-key.pem`), made
/// (key readable by its owner only) if either is missing.
fn self_signed(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert = dir.join("tls-cert.pem");
    let key = dir.join("tls-key.pem");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let made = rcgen::generate_simple_self_signed(names).context("cannot make a self-signed certificate")?;
    write_new(&key, made.key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_new(&cert, made.cert.pem().as_bytes(), 0o644)?;
    tracing::info!("made a self-signed certificate in {}", cert.display());
    Ok((cert, key))
}

/// Writes `bytes` to `path` with `mode`, atomically (a temporary file
/// renamed over it), so a crash never leaves half a key.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}
