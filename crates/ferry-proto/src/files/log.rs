//! How a file-protocol command appears in its request record
//! ([`crate::observe`]).

/// Longest command kept in a record.
const MAX_SHOWN: usize = 2048;

/// The command line as logged: a password or token given to `auth` is
/// replaced by `***`, so logs never hold credentials.
pub(super) fn shown(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(MAX_SHOWN)]);
    let text = text.trim();
    let mut words = text.split_ascii_whitespace();
    if words.next().is_some_and(|verb| verb.eq_ignore_ascii_case("auth")) {
        return match words.next() {
            Some(user) => format!("auth {user} ***"),
            None => "auth".to_string(),
        };
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn hides_credentials() {
        assert_eq!(shown(b"auth alice s3cret"), "auth alice ***");
        assert_eq!(shown(b"auth token abc"), "auth token ***");
        assert_eq!(shown(b" get /a b "), "get /a b");
    }
}
