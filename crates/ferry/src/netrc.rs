//! Credentials from a netrc file (`--netrc-file FILE`, or `~/.netrc` with
//! `--netrc`; curl's names), so a script's password is never on a command
//! line: `machine HOST login USER password PASS`, and `default` for any
//! other host. Values may be double-quoted (with `\"` and `\\`); `account`
//! is ignored and `macdef` bodies are skipped, as curl does.

use std::path::Path;

use anyhow::Context as _;

/// One entry: whose credentials, for which host (`None`: `default`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// The host it is for; `None` for `default`.
    pub machine: Option<String>,
    /// The account name.
    pub login: Option<String>,
    /// Its password.
    pub password: Option<String>,
}

/// A parsed netrc file.
#[derive(Debug, Clone, Default)]
pub struct Netrc {
    entries: Vec<Entry>,
}

impl Netrc {
    /// Reads and parses `path`, with errors that name it.
    pub fn load(path: &Path) -> anyhow::Result<Netrc> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Netrc::parse(&text).with_context(|| format!("{} is not a valid netrc file", path.display()))
    }

    /// Parses netrc text.
    pub fn parse(text: &str) -> anyhow::Result<Netrc> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut words = Words::new(text);
        while let Some(word) = words.next() {
            match word.as_str() {
                "machine" => {
                    let host = words.next().context("`machine` without a host name")?;
                    entries.push(Entry { machine: Some(host), ..Entry::default() });
                }
                "default" => entries.push(Entry::default()),
                "login" | "password" | "account" => {
                    let value = words.next().with_context(|| format!("`{word}` without a value"))?;
                    let entry = entries.last_mut().with_context(|| format!("`{word}` before any `machine`"))?;
                    match word.as_str() {
                        "login" => entry.login = Some(value),
                        "password" => entry.password = Some(value),
                        _ => {}
                    }
                }
                "macdef" => {
                    words.next().context("`macdef` without a name")?;
                    words.skip_macro();
                }
                other => anyhow::bail!("unexpected {other:?}"),
            }
        }
        Ok(Netrc { entries })
    }

    /// The entry for `host`: the first `machine` naming it, else the
    /// `default` entry. With `login`, only an entry for that account.
    pub fn find(&self, host: &str, login: Option<&str>) -> Option<&Entry> {
        let fits = |e: &&Entry| login.is_none_or(|name| e.login.as_deref() == Some(name));
        let machine = self.entries.iter().filter(|e| e.machine.as_deref() == Some(host)).find(fits);
        machine.or_else(|| self.entries.iter().filter(|e| e.machine.is_none()).find(fits))
    }
}

/// The host part of a client address (`HOST:PORT`, `[V6]:PORT`, or a bare
/// host), as a netrc `machine` names it.
pub fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(host, _)| host);
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => addr,
    }
}

/// The words of a netrc file: separated by white space, or double-quoted.
struct Words<'a> {
    rest: &'a str,
}

impl<'a> Words<'a> {
    fn new(text: &'a str) -> Words<'a> {
        Words { rest: text }
    }

    fn next(&mut self) -> Option<String> {
        self.rest = self.rest.trim_start();
        let mut chars = self.rest.char_indices();
        let (_, first) = chars.next()?;
        if first != '"' {
            let end = self.rest.find(char::is_whitespace).unwrap_or(self.rest.len());
            let word = self.rest[..end].to_string();
            self.rest = &self.rest[end..];
            return Some(word);
        }
        let mut word = String::new();
        let mut escaped = false;
        for (i, c) in chars {
            if escaped {
                word.push(match c {
                    'n' => '\n',
                    't' => '\t',
                    c => c,
                });
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                self.rest = &self.rest[i + 1..];
                return Some(word);
            } else {
                word.push(c);
            }
        }
        self.rest = "";
        Some(word)
    }

    /// Skips a `macdef` body: up to the next empty line.
    fn skip_macro(&mut self) {
        self.rest = match self.rest.find("\n\n") {
            Some(end) => &self.rest[end + 2..],
            None => "",
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_default_quotes_and_macros() {
        let text = "machine a.example login alice password apw account x\n\
                    macdef init\ncd /\nls\n\n\
                    machine b.example\n  login bob\n  password \"b \\\"pw\\\"\"\n\
                    default login anon password anonpw\n";
        let netrc = Netrc::parse(text).unwrap();
        let a = netrc.find("a.example", None).unwrap();
        assert_eq!((a.login.as_deref(), a.password.as_deref()), (Some("alice"), Some("apw")));
        assert_eq!(netrc.find("b.example", None).unwrap().password.as_deref(), Some("b \"pw\""));
        assert_eq!(netrc.find("c.example", None).unwrap().login.as_deref(), Some("anon"));
        assert_eq!(netrc.find("a.example", Some("anon")).unwrap().password.as_deref(), Some("anonpw"));
        assert!(Netrc::parse("machine").is_err());
        assert!(Netrc::parse("login x").is_err());
        assert!(Netrc::parse("machine a login x passwd y").is_err(), "unknown words are refused");
    }

    #[test]
    fn host_of_addresses() {
        assert_eq!(host_of("127.0.0.1:7070"), "127.0.0.1");
        assert_eq!(host_of("files.example:7070"), "files.example");
        assert_eq!(host_of("[::1]:7070"), "::1");
        assert_eq!(host_of("files.example"), "files.example");
        assert_eq!(host_of("::1"), "::1");
    }
}
