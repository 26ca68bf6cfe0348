//! What a user may do where: operations, sets of them, and the rules that
//! grant them per path prefix (the longest prefix wins).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::vpath::VirtualPath;

/// One kind of operation, the unit rights are granted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// See a directory's entries (`ls`, `cd`, `stat`, HTTP listings).
    List,
    /// Read a file's bytes (`get`, `sum`, HTTP GET of a file).
    Read,
    /// Create, overwrite or resume (`put`, `mkdir`).
    Write,
    /// Remove (`rm`).
    Delete,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 4] = [Op::List, Op::Read, Op::Write, Op::Delete];

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::List => "list",
            Op::Read => "read",
            Op::Write => "write",
            Op::Delete => "delete",
        })
    }
}

/// A set of operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rights(u8);

impl Rights {
    /// Nothing at all.
    pub const NONE: Rights = Rights(0);
    /// List and read.
    pub const READ_ONLY: Rights = Rights(0b0011);
    /// Everything.
    pub const ALL: Rights = Rights(0b1111);

    /// The set holding exactly `ops`.
    pub fn of(ops: &[Op]) -> Rights {
        Rights(ops.iter().fold(0, |acc, op| acc | op.bit()))
    }

    /// True if `op` is in the set.
    pub fn allows(self, op: Op) -> bool {
        self.0 & op.bit() != 0
    }

    /// The operations in both sets.
    pub fn intersect(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }

    /// The operations in the set, in [`Op::ALL`] order.
    pub fn ops(self) -> Vec<Op> {
        Op::ALL.into_iter().filter(|&op| self.allows(op)).collect()
    }
}

/// Who a rule is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Clients that have not logged in.
    Anonymous,
    /// Any logged-in account (`*` in the file).
    AnyAccount,
    /// One account.
    User(String),
}

impl Subject {
    /// Parses `anonymous`, `*` or a user name.
    pub fn parse(text: &str) -> Subject {
        match text {
            "anonymous" => Subject::Anonymous,
            "*" => Subject::AnyAccount,
            name => Subject::User(name.to_string()),
        }
    }

    /// How specific the subject is, for ties between equally long paths.
    fn rank(&self) -> u8 {
        match self {
            Subject::Anonymous | Subject::AnyAccount => 0,
            Subject::User(_) => 1,
        }
    }

    fn covers(&self, who: Option<&str>) -> bool {
        match (self, who) {
            (Subject::Anonymous, None) => true,
            (Subject::AnyAccount, Some(_)) => true,
            (Subject::User(name), Some(user)) => name == user,
            _ => false,
        }
    }
}

/// One grant: `subject` may do `rights` under `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Who it is for.
    pub subject: Subject,
    /// The path it covers, and everything below it.
    pub prefix: VirtualPath,
    /// What it allows there.
    pub rights: Rights,
}

/// The rights of `who` (`None`: anonymous) at `path` under `rules`: those
/// of the rule for them with the longest prefix of `path` (a rule for the
/// user beats `*` and `anonymous` on the same prefix); `default` when no
/// rule covers the path.
pub fn rights_at(rules: &[Rule], who: Option<&str>, path: &VirtualPath, default: Rights) -> Rights {
    rules
        .iter()
        .filter(|r| r.subject.covers(who) && path.starts_with(&r.prefix))
        .max_by_key(|r| (r.prefix.depth(), r.subject.rank()))
        .map_or(default, |r| r.rights)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp(p: &str) -> VirtualPath {
        VirtualPath::parse_absolute(p.as_bytes()).expect("path")
    }

    fn rule(subject: &str, prefix: &str, ops: &[Op]) -> Rule {
        Rule { subject: Subject::parse(subject), prefix: vp(prefix), rights: Rights::of(ops) }
    }

    #[test]
    fn the_longest_prefix_wins_and_a_user_beats_everyone() {
        let rules = [
            rule("anonymous", "/", &[Op::List, Op::Read]),
            rule("*", "/incoming", &[Op::List, Op::Write]),
            rule("alice", "/incoming", &[Op::List, Op::Read, Op::Write, Op::Delete]),
            rule("anonymous", "/private", &[]),
        ];
        let at = |who, p| rights_at(&rules, who, &vp(p), Rights::NONE);
        assert_eq!(at(None, "/pub/a.txt"), Rights::READ_ONLY);
        assert_eq!(at(None, "/private/x"), Rights::NONE);
        assert_eq!(at(None, "/incoming/x"), Rights::READ_ONLY, "anonymous has no /incoming rule");
        assert_eq!(at(Some("bob"), "/incoming/x"), Rights::of(&[Op::List, Op::Write]));
        assert_eq!(at(Some("alice"), "/incoming/x"), Rights::ALL);
        assert_eq!(at(Some("bob"), "/pub"), Rights::NONE, "accounts are not anonymous");
        assert_eq!(at(Some("bob"), "/incomingX"), Rights::NONE, "prefixes are whole names");
    }
}
