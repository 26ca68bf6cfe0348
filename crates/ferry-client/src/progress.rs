//! How transfers report progress, without tying the library to a terminal
//! widget: the `ferry` binary implements [`Progress`] with a bar.

/// Receives progress of one transfer.
pub trait Progress {
    /// The transfer begins: `total` bytes in the whole file, `already` of
    /// them present before this attempt (resume).
    fn start(&mut self, total: u64, already: u64);
    /// `n` more bytes moved.
    fn advance(&mut self, n: u64);
    /// All bytes moved.
    fn finish(&mut self);
}

/// Ignores progress (tests, scripts).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _total: u64, _already: u64) {}
    fn advance(&mut self, _n: u64) {}
    fn finish(&mut self) {}
}
