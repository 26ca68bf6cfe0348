//! How the client logs in: `--user NAME` with the password asked on the
//! terminal (without echo), a netrc file (`--netrc-file FILE`, or
//! `~/.netrc` with `--netrc`), or a token from `FERRY_TOKEN`. A password is
//! never taken from the command line silently: `--user NAME:PASSWORD`
//! works, as in curl, but warns that `ps` shows it to everyone.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use ferry_client::Client;

use crate::netrc::{self, Netrc};
use rustix::termios::{LocalModes, OptionalActions};

/// Where the password comes from when there is no terminal to ask on.
const PASSWORD_ENV: &str = "FERRY_PASSWORD";
/// A token for scripts (made by `ferry token`).
const TOKEN_ENV: &str = "FERRY_TOKEN";

/// The credentials a command was given, if any.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LoginArgs {
    /// Log in as USER after connecting; the password is asked on the
    /// terminal (or read from FERRY_PASSWORD when there is none). Scripts
    /// can set FERRY_TOKEN to a token from `ferry token` instead.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Take the user name and password from ~/.netrc (`machine HOST login
    /// USER password PASS`, or `default`), as curl does; with --user NAME,
    /// only NAME's password is taken from it.
    #[arg(long)]
    netrc: bool,
    /// Like --netrc, from FILE.
    #[arg(long, value_name = "FILE")]
    netrc_file: Option<PathBuf>,
}

/// Credentials found once (a password is asked for at most once), to log
/// in every connection of a command (`--parallel`).
#[derive(Clone)]
pub enum Login {
    /// `auth USER PASSWORD`; `netrc` says where they came from.
    Password { user: String, password: String, netrc: bool },
    /// `auth token TOKEN` (FERRY_TOKEN).
    Token(String),
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Login::Password { user, .. } => write!(f, "Password({user})"),
            Login::Token(_) => f.write_str("Token"),
        }
    }
}

impl Login {
    /// Logs `client` in; says as whom.
    pub fn apply(&self, client: &mut Client, addr: &str) -> anyhow::Result<String> {
        match self {
            Login::Password { user, password, netrc: false } => {
                client.login(user, password).with_context(|| format!("cannot log in to {addr} as {user}"))
            }
            Login::Password { user, password, netrc: true } => client
                .login(user, password)
                .with_context(|| format!("cannot log in to {addr} as {user} (from the netrc file)")),
            Login::Token(token) => {
                client.login_token(token).with_context(|| format!("cannot log in to {addr} with FERRY_TOKEN"))
            }
        }
    }
}

impl LoginArgs {
    /// The credentials given, if any (asking for a password if needed).
    pub fn resolve(&self, addr: &str) -> anyhow::Result<Option<Login>> {
        let netrc = self.netrc_entry(addr)?;
        let from_netrc =
            |user: &str| netrc.as_ref().filter(|e| e.login.as_deref() == Some(user)).and_then(|e| e.password.clone());
        if let Some(spec) = &self.user {
            let (user, password) = match spec.split_once(':') {
                Some((user, password)) => {
                    eprintln!(
                        "ferry: warning: a password on the command line is visible to every user (ps); leave it out to be asked for it, or use --netrc-file or FERRY_TOKEN"
                    );
                    (user.to_string(), password.to_string())
                }
                None => match from_netrc(spec) {
                    Some(password) => (spec.clone(), password),
                    None => (spec.clone(), ask_password(spec, addr)?),
                },
            };
            return Ok(Some(Login::Password { user, password, netrc: false }));
        }
        if let Some(user) = netrc.as_ref().and_then(|e| e.login.clone()) {
            let password = match from_netrc(&user) {
                Some(password) => password,
                None => ask_password(&user, addr)?,
            };
            return Ok(Some(Login::Password { user, password, netrc: true }));
        }
        if let Ok(token) = std::env::var(TOKEN_ENV) {
            return Ok(Some(Login::Token(token.trim().to_string())));
        }
        Ok(None)
    }
}

impl LoginArgs {
    /// The netrc entry for `addr`'s host, when a netrc file was asked for:
    /// `--netrc-file` must exist, `~/.netrc` (`--netrc`) may be missing.
    fn netrc_entry(&self, addr: &str) -> anyhow::Result<Option<netrc::Entry>> {
        let path = match (&self.netrc_file, self.netrc) {
            (Some(path), _) => path.clone(),
            (None, true) => {
                let home = std::env::var_os("HOME").context("--netrc: HOME is not set")?;
                let path = PathBuf::from(home).join(".netrc");
                if !path.exists() {
                    return Ok(None);
                }
                path
            }
            (None, false) => return Ok(None),
        };
        let file = Netrc::load(&path)?;
        let user = self.user.as_deref().filter(|u| !u.contains(':'));
        Ok(file.find(netrc::host_of(addr), user).cloned())
    }
}

/// Reads a password from the terminal without echoing it, or from
/// FERRY_PASSWORD when no terminal is there.
fn ask_password(user: &str, addr: &str) -> anyhow::Result<String> {
    match read_secret(&format!("Password for {user} at {addr}: ")) {
        Ok(password) => Ok(password),
        Err(e) => match std::env::var(PASSWORD_ENV) {
            Ok(password) => Ok(password),
            Err(_) => Err(e.context(format!("cannot ask {user}'s password: set {PASSWORD_ENV}, or use FERRY_TOKEN"))),
        },
    }
}

/// Asks for a secret on the terminal (`/dev/tty`, so pipes on standard
/// input and output stay untouched) without echoing it.
pub fn read_secret(prompt: &str) -> anyhow::Result<String> {
    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").context("no terminal")?;
    let saved = rustix::termios::tcgetattr(&tty).context("cannot read the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    rustix::termios::tcsetattr(&tty, OptionalActions::Flush, &quiet).context("cannot turn off echo")?;
    let result = (|| {
        write!(&tty, "{prompt}")?;
        let mut line = String::new();
        std::io::BufReader::new(&tty).read_line(&mut line)?;
        writeln!(&tty)?;
        Ok::<_, std::io::Error>(line)
    })();
    // Echo comes back whatever happened.
    let _ = rustix::termios::tcsetattr(&tty, OptionalActions::Flush, &saved);
    let line = result.context("cannot read from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
