//! How names travel in protocol lines: escape and quote round trips.
//!
//! Input: any bytes, used as a name, and (when UTF-8) as request or
//! response text.
//!
//! Invariants:
//! - `escape_text` writes one line without any control character and
//!   `unescape_text` gives the bytes back;
//! - `quote_word` writes one request word without any control character
//!   that `split_words` gives back, wherever it stands in a line;
//! - any text `unescape_text` accepts round-trips through `escape_text`,
//!   and any line `split_words` accepts splits again into the same words
//!   once each is written back with `quote_word`.

use ferry_proto::files::escape::{escape_text, quote_word, split_words, unescape_text};

/// Every invariant of the module on one input.
pub fn check(data: &[u8]) {
    let text = escape_text(data);
    assert!(!text.chars().any(char::is_control), "escape_text left a control character: {text:?}");
    assert_eq!(unescape_text(&text).as_deref(), Ok(data), "escape_text does not round-trip: {text:?}");

    let word = quote_word(data);
    assert!(!word.chars().any(char::is_control), "quote_word left a control character: {word:?}");
    let words = split_words(&format!("put {word}\t{word} 5")).expect("a quoted word splits");
    assert_eq!(words, [b"put", data, data, b"5"], "quote_word does not round-trip: {word:?}");

    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(bytes) = unescape_text(text) {
        assert_eq!(unescape_text(&escape_text(&bytes)).as_deref(), Ok(&bytes[..]), "{text:?}");
    }
    if let Ok(words) = split_words(text) {
        assert!(words.len() <= text.len(), "more words than bytes in {text:?}");
        let again: Vec<String> = words.iter().map(|w| quote_word(w)).collect();
        assert_eq!(split_words(&again.join(" ")).as_ref(), Ok(&words), "{text:?} re-quoted as {again:?}");
    }
}
