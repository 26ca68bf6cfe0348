//! A ring thread's connections, by slab index and generation: a
//! completion's token finds its connection, and a token of a closed
//! connection whose slot was reused finds nothing.

use super::conn::Live;
use super::ring::{Op, Token};

/// A slot: 16 bytes, the connection boxed, so the slab's growth (the
/// vector doubles) copies and keeps no more than that per connection.
struct Slot {
    generation: u32,
    live: Option<Box<Live>>,
}

/// The connections of one ring.
#[derive(Default)]
pub(super) struct Slab {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl Slab {
    /// Stores `live`; returns its token base (op to be set per operation).
    pub(super) fn insert(&mut self, live: Live) -> Token {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot { generation: 0, live: None });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.live = Some(Box::new(live));
        Token { op: Op::Recv, generation: slot.generation, index }
    }

    /// The connection `token` names, if it is still the one in its slot.
    pub(super) fn get_mut(&mut self, token: Token) -> Option<&mut Live> {
        let slot = self.slots.get_mut(token.index as usize)?;
        if slot.generation != token.generation {
            return None;
        }
        slot.live.as_deref_mut()
    }

    /// Frees the slot of `token` (its connection is finished); returns the
    /// connection so the caller drops (closes) it.
    pub(super) fn remove(&mut self, token: Token) -> Option<Box<Live>> {
        let slot = self.slots.get_mut(token.index as usize)?;
        if slot.generation != token.generation {
            return None;
        }
        let live = slot.live.take()?;
        slot.generation = Token::next_generation(slot.generation);
        self.free.push(token.index);
        Some(live)
    }

    /// Tokens of every connection, for sweeps and the drain.
    pub(super) fn tokens(&self) -> Vec<Token> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live.is_some())
            .map(|(i, s)| Token { op: Op::Recv, generation: s.generation, index: i as u32 })
            .collect()
    }
}
