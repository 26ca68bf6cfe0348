//! ROT13 server: letters rotated by 13, everything else unchanged,
//! transformed in place in the input buffer.
//!
//! `cargo run -p ferry-reactor --example rot13 -- 127.0.0.1:2013`

mod common;

use ferry_reactor::Callbacks;

fn rot13(b: u8) -> u8 {
    match b {
        b'a'..=b'z' => (b - b'a' + 13) % 26 + b'a',
        b'A'..=b'Z' => (b - b'A' + 13) % 26 + b'A',
        _ => b,
    }
}

fn main() -> std::process::ExitCode {
    let callbacks = Callbacks::new().on_message(|c, buf| {
        for b in buf.peek_mut() {
            *b = rot13(*b);
        }
        c.send(buf.peek());
        buf.consume_all();
    });
    common::serve("rot13", "127.0.0.1:2013", callbacks)
}
