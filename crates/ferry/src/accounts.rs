//! `ferry passwd` and `ferry token`: manage the accounts file that
//! `ferry serve --auth FILE` reads. Passwords are read from the terminal
//! without echo (or one line from standard input when it is not a
//! terminal) and stored as argon2id hashes; a token is shown once and
//! stored as a hash.

use std::io::{BufRead, IsTerminal as _};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use ferry_proto::access::{AccountsFile, Op, Rights};

use crate::credentials::read_secret;
use crate::units;

/// Arguments of `ferry passwd`.
#[derive(Debug, clap::Args)]
pub struct PasswdArgs {
    /// The accounts file (created if missing, mode 0600).
    file: PathBuf,
    /// The account to add, or whose password to change.
    user: String,
}

/// Arguments of `ferry token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The accounts file.
    file: PathBuf,
    /// The account the token acts as.
    user: String,
    /// What the token may do, at most (and never more than the account):
    /// a comma-separated list of list, read, write, delete.
    #[arg(long, value_name = "OPS", default_value = "list,read", value_parser = parse_ops)]
    rights: Rights,
    /// How long it works: 90s, 30m, 24h, 30d [default: until removed from
    /// the file].
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    expires: Option<Duration>,
}

/// Runs `ferry passwd`.
pub fn passwd(args: PasswdArgs) -> anyhow::Result<()> {
    let mut file = AccountsFile::load(&args.file, true)?;
    let password = if std::io::stdin().is_terminal() {
        let first = read_secret(&format!("New password for {}: ", args.user))?;
        let again = read_secret("Again: ")?;
        if first != again {
            bail!("the two passwords differ; nothing changed");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        bail!("an empty password is not allowed; nothing changed");
    }
    let existed = file.users.contains_key(&args.user);
    file.set_password(&args.user, &password)?;
    file.save(&args.file)?;
    let what = if existed { "changed the password of" } else { "added" };
    eprintln!("ferry: {what} {} in {}", args.user, args.file.display());
    Ok(())
}

/// Runs `ferry token`: prints the new token on standard output.
pub fn token(args: TokenArgs) -> anyhow::Result<()> {
    let mut file = AccountsFile::load(&args.file, false)?;
    let expires = args.expires.map(|d| SystemTime::now() + d);
    let token = file.add_token(&args.user, args.rights, expires)?;
    file.save(&args.file)?;
    println!("{token}");
    let until =
        expires.map_or_else(|| "until removed".to_string(), |t| format!("until {}", httpdate::fmt_http_date(t)));
    eprintln!("ferry: token for {} ({}), {until}; it is shown only this once", args.user, ops_text(args.rights));
    Ok(())
}

fn parse_ops(text: &str) -> Result<Rights, String> {
    let mut ops = Vec::new();
    for word in text.split(',').map(str::trim) {
        let op = Op::ALL
            .into_iter()
            .find(|op| op.to_string() == word)
            .ok_or_else(|| format!("unknown right {word:?} (use list, read, write, delete)"))?;
        ops.push(op);
    }
    Ok(Rights::of(&ops))
}

fn ops_text(rights: Rights) -> String {
    rights.ops().iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}
