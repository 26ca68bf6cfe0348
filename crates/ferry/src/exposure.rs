//! Secure defaults: a server that lets anyone write, in clear text, must
//! not be reachable from other machines by accident. Serving writes on an
//! address other than loopback needs an accounts file (`--auth`) or TLS,
//! or an explicit `--insecure`.

use std::net::SocketAddr;

/// How `ferry serve` was asked to run, as far as exposure goes.
#[derive(Debug, Clone, Copy)]
pub struct Exposure<'a> {
    /// The addresses of the services that can write (files, HTTP).
    pub addrs: &'a [SocketAddr],
    /// `--allow-write` (the master switch: without it no rule can grant
    /// write or delete).
    pub writes: bool,
    /// An accounts file (`--auth`).
    pub accounts: bool,
    /// TLS on those services (`--tls-*`, neither kept plain).
    pub tls: bool,
    /// `--insecure`: the operator accepts the risk.
    pub insecure: bool,
}

/// Refuses writes served to other machines with neither accounts nor
/// TLS, with a message that says why and what to do; `Ok` for everything
/// else.
pub fn check(how: Exposure<'_>) -> Result<(), String> {
    if !how.writes || how.insecure || how.accounts || how.tls {
        return Ok(());
    }
    let Some(exposed) = how.addrs.iter().find(|a| !a.ip().is_loopback()) else {
        return Ok(());
    };
    Err(format!(
        "refusing to serve writes (--allow-write) on {exposed}, which other machines can reach, with no accounts \
         file and no TLS: anyone who can reach it could change or delete the served files. Serve on a loopback \
         address (127.0.0.1), add accounts with --auth FILE (make it with `ferry passwd FILE USER`), serve over TLS \
         (--tls-cert FILE --tls-key FILE, or --tls-self-signed), or pass --insecure to serve it anyway"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn how(addr: &str, writes: bool, accounts: bool, tls: bool, insecure: bool) -> Result<(), String> {
        let addrs = [addr.parse().unwrap()];
        check(Exposure { addrs: &addrs, writes, accounts, tls, insecure })
    }

    #[test]
    fn writes_on_a_reachable_address_need_accounts_or_tls_or_insecure() {
        let err = how("0.0.0.0:7070", true, false, false, false).unwrap_err();
        assert!(err.contains("0.0.0.0:7070") && err.contains("--auth") && err.contains("--insecure"), "{err}");
        assert!(how("[::]:7070", true, false, false, false).is_err());
        assert!(how("192.0.2.1:7070", true, false, false, false).is_err());
        assert_eq!(how("0.0.0.0:7070", true, true, false, false), Ok(()));
        assert_eq!(how("0.0.0.0:7070", true, false, true, false), Ok(()));
        assert_eq!(how("0.0.0.0:7070", true, false, false, true), Ok(()));
    }

    #[test]
    fn loopback_and_read_only_are_unaffected() {
        assert_eq!(how("127.0.0.1:7070", true, false, false, false), Ok(()));
        assert_eq!(how("[::1]:7070", true, false, false, false), Ok(()));
        assert_eq!(how("0.0.0.0:7070", false, false, false, false), Ok(()));
    }
}
