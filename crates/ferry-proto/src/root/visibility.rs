//! Which names of the served tree clients may see: the one rule every
//! service applies, in [`Root::resolve`](super::Root::resolve) (a request
//! naming a hidden path is refused as not found), [`Root::list`](super::Root::list)
//! (listings of both services leave hidden names out) and the HTTP service's
//! tree walk (archives and searches).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// A name no request path may contain, at any depth: the server keeps its
/// uploads in progress in a directory of this name at the top of the root
/// (`files::partials`), and refusing the name in
/// [`Root::resolve`](super::Root::resolve) keeps them out of reach of every
/// command of every service, even with hidden names shown. Listings hide it.
pub const RESERVED_NAME: &str = ".ferry-partials";

/// Whether names starting with `.` (`.git`, `.env`, dotfiles) are served.
/// Hidden by default, as miniserve does: serving a checkout must not
/// publish its `.git/`. `ferry serve --hidden` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Visibility {
    /// Serve and list names starting with `.` (never [`RESERVED_NAME`]).
    pub show_hidden: bool,
}

impl Visibility {
    /// Hidden names shown (`--hidden`).
    pub const SHOW_HIDDEN: Visibility = Visibility { show_hidden: true };

    /// True if `name` is a name starting with `.` that this rule hides.
    /// [`RESERVED_NAME`] is not covered here: it is refused outright.
    pub fn hides(self, name: &OsStr) -> bool {
        !self.show_hidden && name.as_bytes().first() == Some(&b'.')
    }

    /// True if a directory entry called `name` appears in listings, archives
    /// and searches: not `.`, `..`, [`RESERVED_NAME`] or a hidden name.
    pub fn lists(self, name: &OsStr) -> bool {
        name != "." && name != ".." && name != RESERVED_NAME && !self.hides(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_names_are_hidden_unless_shown() {
        let (hidden, shown) = (Visibility::default(), Visibility::SHOW_HIDDEN);
        for name in [".git", ".env", ".x", "..."] {
            assert!(hidden.hides(OsStr::new(name)) && !hidden.lists(OsStr::new(name)), "{name}");
            assert!(!shown.hides(OsStr::new(name)) && shown.lists(OsStr::new(name)), "{name}");
        }
        for name in ["a.txt", "x.", "git"] {
            assert!(hidden.lists(OsStr::new(name)), "{name}");
        }
        for name in [".", "..", RESERVED_NAME] {
            assert!(!shown.lists(OsStr::new(name)), "{name}");
        }
    }
}
