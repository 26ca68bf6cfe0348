//! [`Token`]: how a registration is named.

use std::fmt;

/// Names a registration in one loop: slab index + generation. `Copy`, cheap,
/// meaningful only together with the loop that issued it (a
/// [`ConnHandle`](crate::ConnHandle) pairs it with a [`LoopHandle`](crate::LoopHandle)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token {
    pub(super) index: u32,
    pub(super) generation: u32,
}

impl Token {
    /// The poller key: generation in the high half, index in the low half.
    pub(super) fn key(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }
    pub(super) fn from_key(key: u64) -> Token {
        Token { index: key as u32, generation: (key >> 32) as u32 }
    }
    /// The slab index (for logs).
    pub fn index(self) -> usize {
        self.index as usize
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}#{})", self.index, self.generation)
    }
}

/// Key the waker is registered under; never a valid token (index u32::MAX).
pub(super) const WAKER_KEY: u64 = u64::MAX;
