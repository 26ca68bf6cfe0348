//! Chat server: every line a client sends is broadcast to every connected
//! client, whichever sub-loop serves them. Shows cross-loop posting: the
//! member list holds `ConnHandle`s (`Send`), and `ConnHandle::send` hops to
//! the receiving connection's loop.
//!
//! `cargo run -p ferry-reactor --example chat -- 127.0.0.1:2009 --threads 2`
//! then connect several `nc 127.0.0.1 2009`.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use ferry_reactor::{Callbacks, ConnHandle};

/// Longest line accepted; a client sending more without a newline is cut off.
const MAX_LINE: usize = 64 * 1024;

fn main() -> std::process::ExitCode {
    let members: Arc<Mutex<HashSet<ConnHandle>>> = Arc::default();
    let (joined, talk, left) = (members.clone(), members.clone(), members);
    let callbacks = Callbacks::new()
        .on_connected(move |c| {
            let who = c.peer_addr().to_string();
            let mut m = joined.lock().unwrap_or_else(|e| e.into_inner());
            for h in m.iter() {
                h.send(format!("* {who} joined\n"));
            }
            m.insert(c.handle());
            c.send(format!("* welcome, {who}; {} others here\n", m.len() - 1).as_bytes());
        })
        .on_message(move |c, buf| {
            let who = c.peer_addr().to_string();
            while let Some(eol) = buf.find_eol() {
                let line = buf.take(eol + 1);
                let mut msg = format!("{who}: ").into_bytes();
                msg.extend_from_slice(&line);
                for h in talk.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                    h.send(msg.clone());
                }
            }
            if buf.readable_bytes() > MAX_LINE {
                c.send(b"* line too long\n");
                c.shutdown();
            }
        })
        .on_closed(move |c| {
            let me = c.handle();
            let who = c.peer_addr().to_string();
            let mut m = left.lock().unwrap_or_else(|e| e.into_inner());
            m.remove(&me);
            for h in m.iter() {
                h.send(format!("* {who} left\n"));
            }
        });
    common::serve("chat", "127.0.0.1:2009", callbacks)
}
