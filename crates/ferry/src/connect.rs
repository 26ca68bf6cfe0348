//! The connection options every client subcommand shares (`get`, `put`,
//! `ls`, `shell`): curl's `--connect-timeout` and a stall timeout, so no
//! command waits forever on a peer that does not answer, and the login.

use std::time::Duration;

use ferry_client::{Client, ClientOptions};

use crate::credentials::{Login, LoginArgs};

/// `--connect-timeout` and `--stall-timeout`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Give up connecting after SECS seconds (decimals allowed; 0 leaves it
    /// to the system, about two minutes). A server whose accept queue is
    /// full, or a port that drops packets, fails after this.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    connect_timeout: Duration,
    /// Fail when no byte moves to or from the server for SECS seconds:
    /// waiting for an answer, or in the middle of a transfer (0: wait
    /// forever).
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_secs)]
    stall_timeout: Duration,
    #[command(flatten)]
    login: LoginArgs,
    #[command(flatten)]
    tls: crate::connect_tls::TlsClientArgs,
    /// The credentials once found, so every connection of a command
    /// (`--parallel`) logs in without asking again.
    #[arg(skip)]
    found: std::sync::OnceLock<Option<Login>>,
}

impl ConnectArgs {
    /// Connects to `addr` with these timeouts, and logs in if asked.
    pub fn connect(&self, addr: &str) -> anyhow::Result<Client> {
        let login = self.login(addr)?;
        self.open(addr, login.as_ref())
    }

    /// Connects to `addr` and logs in with credentials already found:
    /// every connection of a `--parallel` transfer.
    pub fn open(&self, addr: &str, login: Option<&Login>) -> anyhow::Result<Client> {
        let options = ClientOptions {
            connect_timeout: Some(self.connect_timeout).filter(|t| !t.is_zero()),
            stall_timeout: Some(self.stall_timeout).filter(|t| !t.is_zero()),
            trust: self.tls.trust(),
        };
        let mut client = Client::connect_with(addr, &options)?;
        if let Some(login) = login {
            let name = login.apply(&mut client, addr)?;
            tracing::debug!(user = %name, "logged in");
        }
        Ok(client)
    }

    /// The credentials for `addr`: found (a password asked for) the
    /// first time, remembered after.
    pub fn login(&self, addr: &str) -> anyhow::Result<Option<Login>> {
        if let Some(found) = self.found.get() {
            return Ok(found.clone());
        }
        let login = self.login.resolve(addr)?;
        Ok(self.found.get_or_init(|| login).clone())
    }
}

/// Seconds as typed: `10`, `2.5`, `0`.
pub fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?} is not a number of seconds from 0 up"))
}
