//! The accounts file: users with argon2id password hashes, tokens for
//! scripts (stored as SHA-256 of a 256-bit secret), and the rules. TOML,
//! documented in README ("Accounts and rights").
//!
//! ```toml
//! [users.alice]
//! password = "$argon2id$v=19$m=19456,t=2,p=1$..."
//!
//! [tokens.3f9a0c1d]          # the id part of the token
//! user = "alice"
//! sha256 = "..."             # of the secret part
//! rights = ["list", "read"]
//! expires = "Fri, 01 Jan 2027 00:00:00 GMT"
//!
//! [[rule]]
//! who = "anonymous"          # or "*" (any account), or a user name
//! path = "/"
//! allow = ["list", "read"]
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AccessError;
use super::rights::{Op, Rights, Rule, Subject};
use crate::vpath::VirtualPath;

/// The file as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsFile {
    /// Accounts by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, UserEntry>,
    /// Tokens by id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tokens: BTreeMap<String, TokenEntry>,
    /// Grants per path prefix.
    #[serde(default, rename = "rule", skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleEntry>,
}

/// One account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// The argon2id hash in PHC form; never the password.
    pub password: String,
}

/// One token: acts as `user`, limited to `rights`, until `expires`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// The account it acts as.
    pub user: String,
    /// SHA-256 (hex) of the token's secret part.
    pub sha256: String,
    /// At most these operations (and never more than the account's).
    pub rights: Vec<Op>,
    /// When it stops working (an HTTP date), if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// One rule as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    /// `anonymous`, `*` or an account name.
    pub who: String,
    /// A path prefix from the served root.
    pub path: String,
    /// The operations it allows there (others are refused).
    pub allow: Vec<Op>,
}

impl AccountsFile {
    /// Reads and parses `path`; a missing file is an empty one when
    /// `missing_ok` (for `ferry passwd` creating it).
    pub fn load(path: &Path, missing_ok: bool) -> Result<AccountsFile, AccessError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(AccessError::Read(path.to_path_buf(), e)),
        };
        toml::from_str(&text).map_err(|e| AccessError::Parse(path.to_path_buf(), one_line(&text, &e)))
    }

    /// Writes the file atomically (temporary + rename), readable by its
    /// owner only: it holds hashes.
    pub fn save(&self, path: &Path) -> Result<(), AccessError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let text = toml::to_string_pretty(self).map_err(|e| AccessError::Parse(path.to_path_buf(), e.to_string()))?;
        let temp = path.with_extension("ferry-new");
        let write = || -> std::io::Result<()> {
            let mut file =
                std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp)?;
            file.write_all(b"# ferry accounts: see README, \"Accounts and rights\"\n")?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temp, path)
        };
        write().map_err(|e| AccessError::Write(path.to_path_buf(), e))
    }

    /// Sets (adds or changes) `user`'s password.
    pub fn set_password(&mut self, user: &str, password: &str) -> Result<(), AccessError> {
        if user.is_empty() || user == "anonymous" || user == "*" || user.contains(char::is_whitespace) {
            return Err(AccessError::BadName(user.to_string()));
        }
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| AccessError::Hash(e.to_string()))?
            .to_string();
        self.users.insert(user.to_string(), UserEntry { password: hash });
        Ok(())
    }

    /// Adds a token for `user` and returns it (`ferry_ID_SECRET`): the only
    /// time the secret is seen; the file keeps its hash.
    pub fn add_token(
        &mut self,
        user: &str,
        rights: Rights,
        expires: Option<SystemTime>,
    ) -> Result<String, AccessError> {
        if !self.users.contains_key(user) {
            return Err(AccessError::NoSuchUser(user.to_string()));
        }
        let mut id = [0u8; 4];
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut id);
        OsRng.fill_bytes(&mut secret);
        let (id, secret) = (hex(&id), hex(&secret));
        let entry = TokenEntry {
            user: user.to_string(),
            sha256: hex(&Sha256::digest(secret.as_bytes())),
            rights: rights.ops(),
            expires: expires.map(httpdate::fmt_http_date),
        };
        self.tokens.insert(id.clone(), entry);
        Ok(format!("ferry_{id}_{secret}"))
    }

    /// The rules, parsed.
    pub(super) fn parsed_rules(&self) -> Result<Vec<Rule>, AccessError> {
        self.rules
            .iter()
            .map(|r| {
                let prefix = VirtualPath::parse_absolute(r.path.as_bytes())
                    .ok_or_else(|| AccessError::BadRule(format!("path {:?} holds ..", r.path)))?;
                Ok(Rule { subject: Subject::parse(&r.who), prefix, rights: Rights::of(&r.allow) })
            })
            .collect()
    }
}

/// A TOML error on one line (for the log): `line N: what`.
fn one_line(text: &str, error: &toml::de::Error) -> String {
    let what = error.message().trim().replace('\n', "; ");
    match error.span() {
        Some(span) => {
            let line = 1 + text.as_bytes()[..span.start.min(text.len())].iter().filter(|&&b| b == b'\n').count();
            format!("line {line}: {what}")
        }
        None => what,
    }
}

/// Checks `password` against an argon2id hash. Slow by design (tens of
/// milliseconds): call it off an event loop's thread.
pub(super) fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A valid hash of no one's password, so that a login to an unknown
/// account takes as long as one to a known account.
pub(super) fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(b"no one's password", &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}

/// Compares two byte strings in time that depends only on their lengths.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
