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
    /// Hashing a local file of `total` bytes begins (before an upload, or
    /// for a verification). The default ignores it.
    fn hash_start(&mut self, total: u64) {
        let _ = total;
    }
    /// `n` more bytes hashed.
    fn hash_advance(&mut self, n: u64) {
        let _ = n;
    }
    /// Hashing is done.
    fn hash_finish(&mut self) {}
    /// Something a person should know that is not an error: a partial
    /// download was discarded and why. The default logs it.
    fn notice(&mut self, text: &str) {
        tracing::warn!("{text}");
    }
}

/// Ignores progress (tests, scripts); notices still go to the log.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _total: u64, _already: u64) {}
    fn advance(&mut self, _n: u64) {}
    fn finish(&mut self) {}
}
