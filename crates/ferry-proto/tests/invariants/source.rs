//! [`Source`]: arbitrary bytes read as a stream of small decisions, and
//! [`Split`]: how a client cuts its output into sends.
//!
//! Past the end every read gives 0, so any input decodes to something
//! and decoding always ends.

/// Arbitrary bytes, consumed front to back as decisions.
pub struct Source<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Source<'a> {
    /// Reads decisions from `data`.
    pub fn new(data: &'a [u8]) -> Source<'a> {
        Source { data, at: 0 }
    }

    /// True once every byte was read.
    pub fn is_empty(&self) -> bool {
        self.at >= self.data.len()
    }

    /// The next byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at = (self.at + 1).min(self.data.len());
        b
    }

    /// A number below `n` (`n` at most 256).
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    /// One of `items`.
    pub fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }

    /// A yes or no.
    pub fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// The bytes not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = &self.data[self.at..];
        self.at = self.data.len();
        rest
    }
}

/// How a client cuts a stream into sends, decoded from four bytes: whole,
/// byte by byte, a fixed step, or a cycle of three piece lengths.
#[derive(Debug, Clone)]
pub enum Split {
    Whole,
    Step(usize),
    Cycle([usize; 3]),
}

impl Split {
    /// Reads a split from `src` (always four bytes).
    pub fn decode(src: &mut Source<'_>) -> Split {
        let mode = src.byte();
        let lens = [src.byte(), src.byte(), src.byte()].map(|b| usize::from(b) + 1);
        match mode % 4 {
            0 => Split::Whole,
            1 => Split::Step(1),
            2 => Split::Step(lens[0] % 17 + 1),
            _ => Split::Cycle(lens),
        }
    }

    /// `stream` cut into pieces.
    pub fn pieces<'s>(&self, stream: &'s [u8]) -> Vec<&'s [u8]> {
        match self {
            Split::Whole => vec![stream],
            Split::Step(n) => stream.chunks(*n).collect(),
            Split::Cycle(lens) => {
                let mut pieces = Vec::new();
                let mut at = 0;
                for len in lens.iter().cycle() {
                    if at >= stream.len() {
                        break;
                    }
                    let end = (at + len).min(stream.len());
                    pieces.push(&stream[at..end]);
                    at = end;
                }
                pieces
            }
        }
    }
}

/// `unit` repeated until the result holds at least `min` bytes (at most
/// `max_reps` times); empty if `unit` is.
pub fn repeat_to(unit: &[u8], min: usize, max_reps: usize) -> Vec<u8> {
    if unit.is_empty() {
        return Vec::new();
    }
    let reps = min.div_ceil(unit.len()).clamp(1, max_reps);
    unit.repeat(reps)
}
