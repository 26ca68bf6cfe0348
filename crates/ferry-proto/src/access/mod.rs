//! Who may do what: one access model for both services.
//!
//! Without an accounts file everyone is anonymous and may list and read
//! (and write and delete with `--allow-write`), as before accounts existed.
//! With one, anonymous clients get nothing unless a rule grants it, and
//! every account may list and read (plus write and delete with
//! `--allow-write`) unless a rule says otherwise; the rule with the longest
//! path prefix decides ([`rights::rights_at`]). `--allow-write` stays the
//! master switch: without it nothing is written, whatever the rules say.
//!
//! Logins: a password is checked against its argon2id hash (slow by design,
//! so sessions run it as a job), then remembered for the process as the
//! SHA-256 of name, password and hash, so HTTP's per-request Basic
//! credentials cost one SHA-256 afterwards. Tokens are `ferry_ID_SECRET`
//! with a 256-bit secret stored as its SHA-256 (no need for a slow hash:
//! it cannot be guessed). Comparisons of secrets are constant-time.

pub mod accounts;
pub mod rights;
pub mod throttle;

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

pub use accounts::{AccountsFile, RuleEntry, TokenEntry, UserEntry};
pub use rights::{Op, Rights, Rule, Subject};

use crate::vpath::VirtualPath;

/// Remembered logins, at most this many (then forgotten all at once).
const MAX_REMEMBERED: usize = 4096;

/// Why the accounts file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// It cannot be read.
    #[error("cannot read accounts file {0}: {1}")]
    Read(PathBuf, #[source] std::io::Error),
    /// It cannot be written.
    #[error("cannot write accounts file {0}: {1}")]
    Write(PathBuf, #[source] std::io::Error),
    /// It is not valid.
    #[error("accounts file {0} is not valid: {1}")]
    Parse(PathBuf, String),
    /// A rule is not valid.
    #[error("bad rule in the accounts file: {0}")]
    BadRule(String),
    /// A name that cannot be an account.
    #[error("{0:?} cannot be an account name (no spaces; not anonymous or *)")]
    BadName(String),
    /// No such account.
    #[error("no account named {0:?}")]
    NoSuchUser(String),
    /// Hashing failed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Who a connection acts as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Identity {
    /// Not logged in.
    #[default]
    Anonymous,
    /// Logged in as `name`; a token may limit what the account can do.
    User {
        /// The account.
        name: String,
        /// At most these rights (all for a password login).
        limit: Rights,
    },
}

impl Identity {
    /// The account name, if logged in.
    pub fn name(&self) -> Option<&str> {
        match self {
            Identity::Anonymous => None,
            Identity::User { name, .. } => Some(name),
        }
    }
}

/// Why a login failed. Deliberately vague towards the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Unknown account or wrong password (not told apart).
    #[error("wrong user name or password")]
    BadPassword,
    /// Unknown, malformed or wrong token.
    #[error("invalid token")]
    BadToken,
    /// The token's date has passed.
    #[error("token expired")]
    Expired,
    /// The server has no accounts file.
    #[error("this server has no accounts")]
    NoAccounts,
    /// Too many failures from this address lately: try again later.
    #[error("too many failed logins from this address; try again in {} s", .0.as_secs().max(1))]
    Barred(std::time::Duration),
}

/// A refused operation: what, where, and whether logging in could help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The operation.
    pub op: Op,
    /// Where.
    pub path: VirtualPath,
    /// True when the client is anonymous and an account could be allowed.
    pub login_may_help: bool,
}

/// The server's access model, shared by every session.
#[derive(Debug, Default)]
pub struct Access {
    /// Swapped whole by [`Access::reload`]; a check holds one version.
    loaded: RwLock<Arc<Loaded>>,
    allow_write: bool,
    remembered: Mutex<HashSet<[u8; 32]>>,
    throttle: throttle::Throttle,
}

/// One version of the accounts file, as checks use it.
#[derive(Debug, Default)]
struct Loaded {
    accounts: Option<AccountsFile>,
    rules: Vec<Rule>,
}

/// What a reload read: the counts for its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloaded {
    /// Accounts in the new file.
    pub users: usize,
    /// Tokens in the new file.
    pub tokens: usize,
    /// Rules in the new file.
    pub rules: usize,
}

impl Access {
    /// No accounts: everyone anonymous, with today's rights.
    pub fn open(allow_write: bool) -> Access {
        Access { allow_write, ..Access::default() }
    }

    /// Accounts and rules from a file.
    pub fn with_accounts(file: AccountsFile, allow_write: bool) -> Result<Access, AccessError> {
        let rules = file.parsed_rules()?;
        let loaded = RwLock::new(Arc::new(Loaded { accounts: Some(file), rules }));
        Ok(Access { loaded, allow_write, ..Access::default() })
    }

    /// Re-reads the accounts file at `path` (on SIGHUP) and, if it is
    /// valid, uses it for every check from now on: connections keep their
    /// identity, new logins see the new accounts, every request the new
    /// rules. An invalid file changes nothing; the error names the file
    /// (and, for TOML errors, the line).
    pub fn reload(&self, path: &Path) -> Result<Reloaded, AccessError> {
        let file = AccountsFile::load(path, false)?;
        let rules = file.parsed_rules().map_err(|e| AccessError::Parse(path.to_path_buf(), e.to_string()))?;
        let counts = Reloaded { users: file.users.len(), tokens: file.tokens.len(), rules: rules.len() };
        let fresh = Arc::new(Loaded { accounts: Some(file), rules });
        *self.loaded.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(counts)
    }

    /// The version in use now.
    fn loaded(&self) -> Arc<Loaded> {
        Arc::clone(&self.loaded.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// True when there are accounts to log in to.
    pub fn has_accounts(&self) -> bool {
        self.loaded().accounts.is_some()
    }

    /// What `who` may do at `path`.
    pub fn rights(&self, who: &Identity, path: &VirtualPath) -> Rights {
        let master = if self.allow_write { Rights::ALL } else { Rights::READ_ONLY };
        let loaded = self.loaded();
        let base = match (&loaded.accounts, who) {
            (None, _) => Rights::ALL,
            (Some(_), Identity::Anonymous) => rights::rights_at(&loaded.rules, None, path, Rights::NONE),
            (Some(_), Identity::User { name, limit }) => {
                rights::rights_at(&loaded.rules, Some(name), path, Rights::ALL).intersect(*limit)
            }
        };
        base.intersect(master)
    }

    /// Allows `op` at `path` for `who`, or says why not.
    pub fn check(&self, who: &Identity, op: Op, path: &VirtualPath) -> Result<(), Denied> {
        if self.rights(who, path).allows(op) {
            return Ok(());
        }
        let login_may_help = *who == Identity::Anonymous && self.has_accounts();
        Err(Denied { op, path: path.clone(), login_may_help })
    }

    /// Checks credentials coming from `peer` (`None`: unknown, never
    /// throttled): refused while the address is barred after failures, and
    /// each failure counted against it ([`throttle::Throttle`]).
    pub fn login_from(
        &self,
        peer: Option<IpAddr>,
        now: SystemTime,
        attempt: impl FnOnce(&Access) -> Result<Identity, LoginError>,
    ) -> Result<Identity, LoginError> {
        if let Some(ip) = peer {
            self.throttle.check(ip, now).map_err(LoginError::Barred)?;
        }
        let result = attempt(self);
        match (&result, peer) {
            (Ok(_), Some(ip)) => self.throttle.succeeded(ip),
            (Err(LoginError::BadPassword | LoginError::BadToken | LoginError::Expired), Some(ip)) => {
                let bar = self.throttle.failed(ip, now);
                tracing::warn!("failed login from {ip}; further attempts barred for {} s", bar.as_secs());
            }
            _ => {}
        }
        result
    }

    /// Checks a password. Slow the first time for a given name and
    /// password (argon2id): call it off an event loop's thread.
    pub fn login(&self, user: &str, password: &str) -> Result<Identity, LoginError> {
        let loaded = self.loaded();
        let accounts = loaded.accounts.as_ref().ok_or(LoginError::NoAccounts)?;
        // An unknown name costs the same hash as a known one.
        let (hash, key) = remembered_key(accounts, user, password);
        if !self.is_remembered(&key) {
            if !accounts::verify_password(hash, password) || !accounts.users.contains_key(user) {
                return Err(LoginError::BadPassword);
            }
            if let Ok(mut set) = self.remembered.lock() {
                if set.len() >= MAX_REMEMBERED {
                    set.clear();
                }
                set.insert(key);
            }
        }
        Ok(Identity::User { name: user.to_string(), limit: Rights::ALL })
    }

    /// True when [`Access::login`] would run the slow hash for this name
    /// and password (not checked since it was last remembered), so a
    /// session on an event loop runs it as a job.
    pub fn login_is_slow(&self, user: &str, password: &str) -> bool {
        let loaded = self.loaded();
        let Some(accounts) = loaded.accounts.as_ref() else { return false };
        !self.is_remembered(&remembered_key(accounts, user, password).1)
    }

    fn is_remembered(&self, key: &[u8; 32]) -> bool {
        self.remembered.lock().map(|set| set.contains(key)).unwrap_or(false)
    }

    /// Checks a token (`ferry_ID_SECRET`) at time `now`.
    pub fn login_token(&self, token: &str, now: SystemTime) -> Result<Identity, LoginError> {
        let loaded = self.loaded();
        let accounts = loaded.accounts.as_ref().ok_or(LoginError::NoAccounts)?;
        let (id, secret) = token.strip_prefix("ferry_").and_then(|t| t.split_once('_')).ok_or(LoginError::BadToken)?;
        let entry = accounts.tokens.get(id).ok_or(LoginError::BadToken)?;
        let digest = accounts::hex(&Sha256::digest(secret.as_bytes()));
        if !accounts::same(digest.as_bytes(), entry.sha256.as_bytes()) {
            return Err(LoginError::BadToken);
        }
        if let Some(expires) = &entry.expires {
            match httpdate::parse_http_date(expires) {
                Ok(at) if now < at => {}
                _ => return Err(LoginError::Expired),
            }
        }
        if !accounts.users.contains_key(&entry.user) {
            return Err(LoginError::BadToken);
        }
        Ok(Identity::User { name: entry.user.clone(), limit: Rights::of(&entry.rights) })
    }
}

/// The hash a login of `user` checks against (a dummy one for an unknown
/// name, which costs the same) and the key it is remembered under once it
/// passed: SHA-256 of name, password and hash, so a changed password or a
/// reloaded file never matches an old key.
fn remembered_key<'a>(accounts: &'a AccountsFile, user: &str, password: &str) -> (&'a str, [u8; 32]) {
    let hash = match accounts.users.get(user) {
        Some(u) => u.password.as_str(),
        None => accounts::dummy_hash(),
    };
    let key = Sha256::new()
        .chain_update(user)
        .chain_update([0])
        .chain_update(password)
        .chain_update([0])
        .chain_update(hash)
        .finalize()
        .into();
    (hash, key)
}
