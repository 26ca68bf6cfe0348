//! The registry: a slab of handlers keyed by [`Token`], owned by the loop.
//!
//! A slot is vacant, holds an idle handler, or is busy (its handler taken
//! out and running); a deregistration of a busy slot is recorded and carried
//! out when the handler returns, so a handler can remove itself. Freeing a
//! slot bumps its generation, so stale tokens match nothing.

use std::any::Any;
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use super::{EventLoop, Handler, Token};
use crate::poller::{Interest, Ready};

pub(super) enum SlotState {
    Vacant,
    Occupied(Box<dyn Handler>),
    /// The handler is out, running; `removed` records a deregistration
    /// requested meanwhile, carried out when it returns.
    Busy {
        removed: bool,
    },
}

pub(super) struct Slot {
    pub(super) generation: u32,
    fd: RawFd,
    interest: Interest,
    state: SlotState,
}

impl EventLoop {
    /// Registers `handler` for readiness of a fd it does not own.
    /// Prefer [`register_owned`](Self::register_owned), which is safe.
    ///
    /// # Safety
    /// `fd` must stay open, and keep naming the same file, until the token
    /// is deregistered or the loop is dropped: the loop keeps using the fd
    /// number (to change interest, to deregister) after this borrow ends.
    pub unsafe fn register(
        &mut self,
        fd: BorrowedFd<'_>,
        interest: Interest,
        handler: impl Handler,
    ) -> io::Result<Token> {
        // SAFETY: forwarded: the caller upholds the same contract.
        unsafe { self.register_boxed(fd, interest, Box::new(handler)) }
    }

    /// Registers a handler that owns its fd (`H: AsFd`): the preferred form,
    /// since the fd then lives exactly as long as the registration (the
    /// loop deregisters before it drops a handler). `as_fd` must keep
    /// returning that same fd while registered.
    pub fn register_owned<H: Handler + AsFd>(&mut self, interest: Interest, handler: H) -> io::Result<Token> {
        let index = self.alloc_slot()?;
        let token = self.token_at(index);
        if let Err(e) = self.poller.register(handler.as_fd(), token.key(), interest) {
            self.free.push(index);
            return Err(e);
        }
        let fd = handler.as_fd().as_raw_fd();
        self.fill_slot(index, fd, interest, Box::new(handler));
        Ok(token)
    }

    /// [`register`](Self::register) for an already boxed handler.
    ///
    /// # Safety
    /// As for [`register`](Self::register).
    unsafe fn register_boxed(
        &mut self,
        fd: BorrowedFd<'_>,
        interest: Interest,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        let index = self.alloc_slot()?;
        let token = self.token_at(index);
        if let Err(e) = self.poller.register(fd, token.key(), interest) {
            self.free.push(index);
            return Err(e);
        }
        self.fill_slot(index, fd.as_raw_fd(), interest, handler);
        Ok(token)
    }

    fn token_at(&self, index: u32) -> Token {
        Token { index, generation: self.slots[index as usize].generation }
    }

    fn fill_slot(&mut self, index: u32, fd: RawFd, interest: Interest, handler: Box<dyn Handler>) {
        let slot = &mut self.slots[index as usize];
        slot.fd = fd;
        slot.interest = interest;
        slot.state = SlotState::Occupied(handler);
        self.live += 1;
    }

    fn alloc_slot(&mut self) -> io::Result<u32> {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&i| i != u32::MAX)
                    .ok_or_else(|| io::Error::other("event loop registry full"))?;
                self.slots.push(Slot { generation: 0, fd: -1, interest: Interest::NONE, state: SlotState::Vacant });
                i
            }
        };
        Ok(index)
    }

    fn slot(&self, token: Token) -> Option<&Slot> {
        self.slots.get(token.index as usize).filter(|s| s.generation == token.generation)
    }

    /// True if `token` names a live registration.
    pub fn contains(&self, token: Token) -> bool {
        matches!(self.slot(token).map(|s| &s.state), Some(SlotState::Occupied(_) | SlotState::Busy { removed: false }))
    }

    /// Current interest of a live registration.
    pub fn interest(&self, token: Token) -> Option<Interest> {
        self.contains(token).then(|| self.slot(token).map(|s| s.interest)).flatten()
    }

    /// Changes what `token` is woken for (a no-op if unchanged). Works while
    /// the handler itself is running. A stale token is `NotFound`.
    pub fn set_interest(&mut self, token: Token, interest: Interest) -> io::Result<()> {
        if !self.contains(token) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let slot = &mut self.slots[token.index as usize];
        if slot.interest == interest {
            return Ok(());
        }
        // SAFETY: the slot is live, and every registration path guarantees its
        // fd stays open until deregistered (`register_owned`: the handler owns
        // it; `register`/`register_boxed`: the caller's unsafe contract).
        let fd = unsafe { BorrowedFd::borrow_raw(slot.fd) };
        self.poller.reregister(fd, token.key(), interest)?;
        slot.interest = interest;
        Ok(())
    }

    /// Removes a registration. Returns the handler if it was idle; if it is
    /// the one running now, it is dropped right after it returns (`None`).
    /// Stale tokens are ignored.
    pub fn deregister(&mut self, token: Token) -> Option<Box<dyn Handler>> {
        let idx = token.index as usize;
        let slot = self.slots.get_mut(idx)?;
        if slot.generation != token.generation {
            return None;
        }
        match mem::replace(&mut slot.state, SlotState::Vacant) {
            SlotState::Vacant => None,
            SlotState::Busy { removed: true } => {
                slot.state = SlotState::Busy { removed: true };
                None
            }
            state => {
                // SAFETY: the slot is live, so its fd is still open: either the
                // handler owning it is not dropped yet (`register_owned`) or the
                // caller of `register` promised it stays open until now.
                let fd = unsafe { BorrowedFd::borrow_raw(slot.fd) };
                if let Err(e) = self.poller.deregister(fd) {
                    tracing::warn!(error = %e, ?token, "poller deregister failed");
                }
                slot.fd = -1;
                self.live -= 1;
                match state {
                    SlotState::Occupied(h) => {
                        slot.generation = slot.generation.wrapping_add(1);
                        self.free.push(token.index);
                        Some(h)
                    }
                    _ => {
                        slot.state = SlotState::Busy { removed: true };
                        None
                    }
                }
            }
        }
    }

    fn take(&mut self, token: Token) -> Option<Box<dyn Handler>> {
        let slot = self.slots.get_mut(token.index as usize)?;
        if slot.generation != token.generation {
            return None;
        }
        match mem::replace(&mut slot.state, SlotState::Busy { removed: false }) {
            SlotState::Occupied(h) => Some(h),
            other => {
                slot.state = other;
                None
            }
        }
    }

    fn put_back(&mut self, token: Token, handler: Box<dyn Handler>) {
        let slot = &mut self.slots[token.index as usize];
        match slot.state {
            SlotState::Busy { removed: false } => slot.state = SlotState::Occupied(handler),
            _ => {
                slot.state = SlotState::Vacant;
                slot.generation = slot.generation.wrapping_add(1);
                self.free.push(token.index);
                // Dropped here, after it was deregistered: its fd closes now.
                drop(handler);
            }
        }
    }

    /// Runs `f` with the handler registered under `token`, if it is live, of
    /// type `H`, and not already running (re-entrant access yields `None`).
    pub fn with_handler<H: Handler, R>(
        &mut self,
        token: Token,
        f: impl FnOnce(&mut H, &mut EventLoop) -> R,
    ) -> Option<R> {
        let mut h = self.take(token)?;
        let any: &mut dyn Any = h.as_mut();
        let r = any.downcast_mut::<H>().map(|typed| f(typed, self));
        self.put_back(token, h);
        r
    }

    /// Tokens of the idle handlers of type `H`.
    pub(crate) fn tokens_of<H: Handler>(&self) -> Vec<Token> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.state {
                SlotState::Occupied(h) => {
                    let any: &dyn Any = h.as_ref();
                    any.is::<H>().then_some(Token { index: i as u32, generation: s.generation })
                }
                _ => None,
            })
            .collect()
    }

    /// Calls the handler registered under `key`; stale keys are ignored.
    pub(super) fn dispatch(&mut self, key: u64, ready: Ready) {
        let token = Token::from_key(key);
        if let Some(mut h) = self.take(token) {
            h.ready(self, token, ready);
            self.put_back(token, h);
        }
    }
}
