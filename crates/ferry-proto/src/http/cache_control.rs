//! `Cache-Control` by media type (`--cache-control TYPE=VALUE`): the most
//! specific rule wins, an exact type (`text/html`) over a family
//! (`image/*`) over `*`.
//!
//! The default is `*=no-cache`: a browser may keep any file but asks
//! again before each use, and the answer is a cheap 304 while the file is
//! unchanged (every file answer has an `ETag` and `Last-Modified`).
//! Without any `Cache-Control`, browsers guess a freshness lifetime from
//! `Last-Modified` (10% of the file's age) and would show a file edited
//! on the server as it was for days; a file server's files change, so
//! revalidation is the safe default, and long `max-age`s are for
//! deployments that version their assets (`--cache-control
//! 'text/css=max-age=31536000, immutable'`).

/// The rules of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheControl {
    /// (pattern, value), as given.
    rules: Vec<(String, String)>,
}

/// Why a rule was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CacheControlError {
    /// Not `TYPE=VALUE`.
    #[error("expected TYPE=VALUE (text/html=no-cache, image/*=max-age=86400, *=no-cache, or TYPE=off)")]
    Form,
    /// A character a header value may not hold (control characters).
    #[error("the value holds a control character")]
    Value,
}

impl Default for CacheControl {
    /// `*=no-cache`.
    fn default() -> CacheControl {
        CacheControl { rules: vec![("*".into(), "no-cache".into())] }
    }
}

impl CacheControl {
    /// No `Cache-Control` at all.
    pub fn none() -> CacheControl {
        CacheControl { rules: Vec::new() }
    }

    /// The default (`*=no-cache`) with `specs` (`TYPE=VALUE` each) on top;
    /// `TYPE=off` sends no header for that type.
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<CacheControl, CacheControlError> {
        let mut rules = CacheControl::default().rules;
        for spec in specs {
            let (pattern, value) = spec.as_ref().split_once('=').ok_or(CacheControlError::Form)?;
            let (pattern, value) = (pattern.trim().to_ascii_lowercase(), value.trim());
            let shape_ok =
                pattern == "*" || pattern.split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty());
            if !shape_ok || value.is_empty() {
                return Err(CacheControlError::Form);
            }
            if value.bytes().any(|b| b.is_ascii_control()) {
                return Err(CacheControlError::Value);
            }
            rules.retain(|(p, _)| *p != pattern);
            rules.push((pattern, value.to_string()));
        }
        Ok(CacheControl { rules })
    }

    /// The value for `mime`, if any.
    pub(crate) fn for_type(&self, mime: &str) -> Option<&[u8]> {
        let family = mime.split_once('/').map(|(family, _)| family);
        let rank = |pattern: &str| {
            if pattern == mime {
                Some(3)
            } else if pattern.strip_suffix("/*").is_some_and(|f| Some(f) == family) {
                Some(2)
            } else if pattern == "*" {
                Some(1)
            } else {
                None
            }
        };
        let (_, value) = self.rules.iter().filter_map(|(p, v)| Some((rank(p)?, v))).max_by_key(|(r, _)| *r)?;
        (value != "off").then_some(value.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_wins() {
        let rules = CacheControl::parse(&["text/html=no-store", "image/*=max-age=86400", "*=max-age=60"]).unwrap();
        assert_eq!(rules.for_type("text/html"), Some(&b"no-store"[..]));
        assert_eq!(rules.for_type("text/css"), Some(&b"max-age=60"[..]));
        assert_eq!(rules.for_type("image/png"), Some(&b"max-age=86400"[..]));
        let rules = CacheControl::parse(&["image/png=off"]).unwrap();
        assert_eq!(rules.for_type("image/png"), None);
        assert_eq!(rules.for_type("image/gif"), Some(&b"no-cache"[..]), "the default stays");
        assert_eq!(CacheControl::none().for_type("text/html"), None);
    }

    #[test]
    fn refused() {
        assert_eq!(CacheControl::parse(&["no-cache"]), Err(CacheControlError::Form));
        assert_eq!(CacheControl::parse(&["text=no-cache"]), Err(CacheControlError::Form));
        assert_eq!(CacheControl::parse(&["*="]), Err(CacheControlError::Form));
        assert_eq!(CacheControl::parse(&["*=a\r\nSet-Cookie: x"]), Err(CacheControlError::Value));
    }
}
