//! Echo server: every byte comes back.
//!
//! Backpressure: while a reply is still queued (the peer reads slower than
//! it writes) the connection stops reading, and resumes once the reply has
//! drained, so a client that never reads cannot make the server buffer
//! without bound. `send_buffer` hands the input buffer itself to the output
//! queue when the kernel takes only part of it, so nothing is copied twice.
//!
//! `cargo run -p ferry-reactor --release --example echo -- 127.0.0.1:2007 --threads 2`

mod common;

use ferry_reactor::Callbacks;

fn main() -> std::process::ExitCode {
    let callbacks = Callbacks::new()
        .on_message(|c, buf| {
            c.send_buffer(buf);
            if c.has_pending_output() {
                c.pause_reading();
            }
        })
        .on_write_complete(|c| c.resume_reading());
    common::serve("echo", "127.0.0.1:2007", callbacks)
}
