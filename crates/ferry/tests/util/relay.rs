//! TCP relays between a client under test and a real server: one that
//! cuts a transfer after a number of bytes (a connection lost mid-way),
//! one that counts the connections a client makes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};

use super::PATIENCE;

/// Which direction the relay cuts.
#[derive(Clone, Copy)]
pub enum Cut {
    /// After `limit` bytes from the server (a download breaks off).
    Download,
    /// After `limit` bytes from the client (an upload breaks off).
    Upload,
}

/// A one-connection relay to `server` that forwards exactly `limit` bytes
/// in the cut direction, then ends the connection: the receiving side gets
/// those bytes and an end of stream (FIN, so nothing forwarded is lost),
/// the sending side sees its connection close. It accepts one connection
/// only: later ones are refused (the listener is closed).
pub fn cutting_relay(server: SocketAddr, cut: Cut, limit: u64) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let thread = thread::spawn(move || {
        let (client, _) = listener.accept().unwrap();
        drop(listener);
        let upstream = TcpStream::connect(server).unwrap();
        for s in [&client, &upstream] {
            s.set_read_timeout(Some(PATIENCE)).unwrap();
        }
        let (from, to) = match cut {
            Cut::Download => (upstream.try_clone().unwrap(), client.try_clone().unwrap()),
            Cut::Upload => (client.try_clone().unwrap(), upstream.try_clone().unwrap()),
        };
        let (back_from, back_to) = (to.try_clone().unwrap(), from.try_clone().unwrap());
        let back = thread::spawn(move || {
            let _ = io::copy(&mut &back_from, &mut &back_to);
            let _ = back_to.shutdown(Shutdown::Write);
        });
        let _ = io::copy(&mut (&from).take(limit), &mut &to);
        let _ = (&to).flush();
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Both);
        // The receiver reads what was forwarded, then closes: only then
        // may the relay's sockets go (a close with unread input resets).
        back.join().unwrap();
    });
    (addr, thread)
}

/// A relay to `server` for any number of connections, counting them.
/// Its threads end with their connections; the listener lives on with
/// the test process (it is only ever used by one test).
pub fn counting_relay(server: SocketAddr) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            counter.fetch_add(1, Ordering::SeqCst);
            let Ok(upstream) = TcpStream::connect(server) else { break };
            let pipe = |from: TcpStream, to: TcpStream| {
                thread::spawn(move || {
                    let _ = io::copy(&mut &from, &mut &to);
                    let _ = to.shutdown(Shutdown::Write);
                })
            };
            pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
            pipe(upstream, client);
        }
    });
    (addr, count)
}
