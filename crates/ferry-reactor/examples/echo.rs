//! Echo server: every byte comes back.
//!
//! `cargo run -p ferry-reactor --release --example echo -- 127.0.0.1:2007 --threads 2`

mod common;

use ferry_reactor::Callbacks;

fn main() -> std::process::ExitCode {
    let callbacks = Callbacks::new().on_message(|c, buf| {
        c.send(buf.peek());
        buf.consume_all();
    });
    common::serve("echo", "127.0.0.1:2007", callbacks)
}
