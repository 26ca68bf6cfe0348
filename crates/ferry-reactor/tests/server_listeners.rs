//! One TcpServer, several listeners sharing its sub-loops, callbacks made
//! per loop (so per-loop state needs no thread-local), and typed
//! per-connection state through StatefulCallbacks.

mod util;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;

use ferry_reactor::{Callbacks, EventLoop, ListenAddr, PollerKind, ServerConfig, StatefulCallbacks, TcpServer};
use util::TEST_TIMEOUT;

/// A line-based state: counts the lines this connection sent.
struct Lines {
    loop_index: usize,
    seen: usize,
}

/// Answers every complete line with "<service> loop=<i> line=<n>".
fn numbering(service: &'static str, loop_index: usize) -> Callbacks {
    StatefulCallbacks::new(move |_c| Lines { loop_index, seen: 0 })
        .on_message(move |c, state: &mut Lines, buf| {
            while let Some(eol) = buf.find_eol() {
                buf.take(eol + 1);
                state.seen += 1;
                c.send(format!("{service} loop={} line={}\n", state.loop_index, state.seen).as_bytes());
            }
        })
        .build()
}

fn tcp(addr: &ListenAddr) -> SocketAddr {
    match addr {
        ListenAddr::Tcp(a) => *a,
        _ => panic!("a TCP listener"),
    }
}

fn ask(conn: &mut BufReader<TcpStream>, line: &str) -> String {
    conn.get_mut().write_all(format!("{line}\n").as_bytes()).expect("send");
    let mut reply = String::new();
    conn.read_line(&mut reply).expect("reply");
    reply.trim_end().to_owned()
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TEST_TIMEOUT)).expect("timeout");
    BufReader::new(s)
}

#[test]
fn listeners_share_the_loops_with_callbacks_of_their_own_per_loop() {
    let (tx, rx) = mpsc::channel();
    let server_thread = thread::spawn(move || {
        let mut lp = EventLoop::new(PollerKind::Epoll).expect("loop");
        let config = ServerConfig { threads: 2, ..ServerConfig::default() };
        let mut server = TcpServer::new(config);
        let any: ListenAddr = "127.0.0.1:0".parse().expect("addr");
        let a = server.listen(&any, |i| numbering("a", i)).expect("listen a");
        let b = server.listen(&any, |i| numbering("b", i)).expect("listen b");
        assert_eq!(server.local_addrs(), vec![a.clone(), b.clone()]);
        assert_eq!(server.loop_count(), 2);
        server.start(&mut lp).expect("start");
        tx.send((tcp(&a), tcp(&b), lp.handle())).expect("send addrs");
        lp.run().expect("run");
        server.shutdown();
    });
    let (a, b, main) = rx.recv_timeout(TEST_TIMEOUT).expect("server up");
    // Round-robin across listeners: a, b, a, b land on loops 0, 1, 0, 1
    // (each served before the next connects, so accepts happen in order).
    let mut conns = Vec::new();
    let mut answers = Vec::new();
    for addr in [a, b, a, b] {
        let mut conn = connect(addr);
        answers.push(ask(&mut conn, "hi"));
        conns.push(conn);
    }
    assert_eq!(answers, ["a loop=0 line=1", "b loop=1 line=1", "a loop=0 line=1", "b loop=1 line=1"]);
    assert_eq!(ask(&mut conns[1], "again"), "b loop=1 line=2", "the state is the connection's own");
    main.quit();
    server_thread.join().expect("server thread");
}
