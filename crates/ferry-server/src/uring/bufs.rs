//! The provided-buffer ring of one thread: a fixed pool of receive
//! buffers the kernel picks from as data arrives on any connection of the
//! ring (multishot receive with buffer select). An idle connection holds
//! no receive buffer; the pool's memory is per thread, not per connection.
//!
//! A completion names the buffer it filled; the driver copies the bytes
//! into the connection core and hands the buffer straight back
//! ([`BufRing::recycle`]).

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::IoUring;
use io_uring::types::BufRingEntry;

/// The buffer group id of every ring's pool (one pool per ring).
pub(super) const GROUP: u16 = 0;

/// Buffers in the pool (a power of two, as the kernel requires).
const COUNT: u16 = 64;

/// Bytes per buffer: 64 x 16 KiB = 1 MiB per thread, touched only as
/// data arrives.
const SIZE: usize = 16 * 1024;

/// The ring of buffer descriptors (shared with the kernel) and the buffers.
pub(super) struct BufRing {
    /// `COUNT` entries, page-aligned (mmap), registered with the ring.
    entries: NonNull<BufRingEntry>,
    entries_len: usize,
    /// The buffers themselves, `COUNT * SIZE` bytes (a leaked box, freed
    /// in Drop: the kernel writes into it behind Rust's back, so no Rust
    /// reference covers the whole of it).
    data: NonNull<u8>,
    /// Our copy of the ring's tail (the kernel reads the shared one).
    tail: u16,
}

impl BufRing {
    /// Maps the descriptor ring, registers it with `ring` as group
    /// [`GROUP`] and provides every buffer.
    pub(super) fn new(ring: &IoUring) -> io::Result<BufRing> {
        let entries_len = usize::from(COUNT) * std::mem::size_of::<BufRingEntry>();
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // touched. It is unmapped in Drop.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                entries_len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::PRIVATE,
            )
        }?;
        let entries = NonNull::new(ptr.cast::<BufRingEntry>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        let data = Box::into_raw(vec![0u8; usize::from(COUNT) * SIZE].into_boxed_slice());
        // SAFETY: Box::into_raw never returns null.
        let data = unsafe { NonNull::new_unchecked(data.cast::<u8>()) };
        let mut bufs = BufRing { entries, entries_len, data, tail: 0 };
        // SAFETY: the descriptor ring is page-aligned, COUNT entries long,
        // and lives (with the buffers) until after the ring is dropped:
        // the owner drops the ring first and waits for every operation.
        unsafe { ring.submitter().register_buf_ring_with_flags(ptr as u64, COUNT, GROUP, 0) }?;
        for bid in 0..COUNT {
            bufs.put(bid);
        }
        bufs.publish();
        Ok(bufs)
    }

    /// The first `len` bytes of buffer `bid`, as the kernel filled them.
    pub(super) fn get(&self, bid: u16, len: usize) -> &[u8] {
        let bid = bid & (COUNT - 1);
        // SAFETY: inside the allocation (bid < COUNT, len <= SIZE); the
        // kernel finished writing this buffer (its completion arrived) and
        // does not get it back before the slice is dropped (`recycle`
        // takes `&mut self`).
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().add(usize::from(bid) * SIZE), len.min(SIZE)) }
    }

    /// Hands buffer `bid` back to the kernel.
    pub(super) fn recycle(&mut self, bid: u16) {
        self.put(bid);
        self.publish();
    }

    fn put(&mut self, bid: u16) {
        let index = usize::from(self.tail & (COUNT - 1));
        // SAFETY: `index` < COUNT, inside the mapping; the kernel reads
        // entries only up to the published tail, which does not cover this
        // one yet.
        let entry = unsafe { &mut *self.entries.as_ptr().add(index) };
        // SAFETY: inside the allocation (bid < COUNT).
        let addr = unsafe { self.data.as_ptr().add(usize::from(bid & (COUNT - 1)) * SIZE) };
        entry.set_addr(addr as u64);
        entry.set_len(SIZE as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the entries put so far visible to the kernel.
    fn publish(&self) {
        // SAFETY: the tail field overlays the first entry's reserved field
        // of the mapped ring (`BufRingEntry::tail`); it is a naturally
        // aligned u16 the kernel reads atomically.
        let tail = unsafe { &*BufRingEntry::tail(self.entries.as_ptr()).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; the ring that
        // used it is gone (the owner drops it first).
        if let Err(e) = unsafe { rustix::mm::munmap(self.entries.as_ptr().cast(), self.entries_len) } {
            tracing::warn!("cannot unmap the provided-buffer ring: {e}");
        }
        let len = usize::from(COUNT) * SIZE;
        // SAFETY: the box leaked in `new`, rebuilt once; no operation can
        // write into it any more (see above).
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.data.as_ptr(), len)) });
    }
}
