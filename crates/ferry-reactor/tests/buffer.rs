//! Buffer against a `VecDeque<u8>` model (proptest), including reads
//! through `readv` (`read_from`) and `recv` (`recv_from`) from a real
//! socket pair.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::net::UnixStream;

use ferry_reactor::Buffer;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    Prepend(Vec<u8>),
    Consume(usize),
    Take(usize),
    ConsumeAll,
    Ensure(usize),
    Direct(Vec<u8>),
    /// Read `n` bytes that a peer wrote, through `read_from` (`false`) or
    /// `recv_from` (`true`).
    ReadFrom(usize, bool),
    Shrink(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), any::<u8>()], 0..3000).prop_map(Op::Append),
        1 => proptest::collection::vec(any::<u8>(), 0..20).prop_map(Op::Prepend),
        2 => (0usize..4000).prop_map(Op::Consume),
        1 => (0usize..4000).prop_map(Op::Take),
        1 => Just(Op::ConsumeAll),
        1 => (0usize..10_000).prop_map(Op::Ensure),
        1 => proptest::collection::vec(any::<u8>(), 0..500).prop_map(Op::Direct),
        1 => (1usize..100_000, any::<bool>()).prop_map(|(n, socket)| Op::ReadFrom(n, socket)),
        1 => (0usize..100).prop_map(Op::Shrink),
    ]
}

fn find_crlf(m: &VecDeque<u8>) -> Option<usize> {
    let v: Vec<u8> = m.iter().copied().collect();
    v.windows(2).position(|w| w == b"\r\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn buffer_matches_vecdeque(ops in proptest::collection::vec(op(), 1..30)) {
        let mut b = Buffer::new();
        let mut m: VecDeque<u8> = VecDeque::new();
        let (a, mut peer) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut counter = 0u8;
        for op in ops {
            match op {
                Op::Append(d) => { b.append(&d); m.extend(&d); }
                Op::Prepend(d) => {
                    b.prepend(&d);
                    for &x in d.iter().rev() { m.push_front(x); }
                }
                Op::Consume(n) => { b.consume(n); let n = n.min(m.len()); m.drain(..n); }
                Op::Take(n) => {
                    let got = b.take(n);
                    let n = n.min(m.len());
                    let want: Vec<u8> = m.drain(..n).collect();
                    prop_assert_eq!(got, want);
                }
                Op::ConsumeAll => { b.consume_all(); m.clear(); }
                Op::Ensure(n) => {
                    b.ensure_writable(n);
                    prop_assert!(b.writable_bytes() >= n);
                }
                Op::Direct(d) => {
                    b.ensure_writable(d.len());
                    b.writable_mut()[..d.len()].copy_from_slice(&d);
                    b.commit(d.len());
                    m.extend(&d);
                }
                Op::ReadFrom(n, socket) => {
                    let data: Vec<u8> = (0..n).map(|_| { counter = counter.wrapping_add(1); counter }).collect();
                    // The socket buffer may hold less than n: write what
                    // fits from a thread, read until all arrived.
                    let d2 = data.clone();
                    let mut p2 = peer.try_clone().unwrap();
                    let w = std::thread::spawn(move || p2.write_all(&d2).unwrap());
                    let mut got = 0;
                    while got < n {
                        let read = if socket { b.recv_from(&a) } else { b.read_from(&a) };
                        match read {
                            Ok(k) => { prop_assert!(k > 0); got += k; }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
                            Err(e) => panic!("{e}"),
                        }
                    }
                    w.join().unwrap();
                    prop_assert_eq!(got, n);
                    m.extend(&data);
                }
                Op::Shrink(r) => { b.shrink(r); }
            }
            prop_assert_eq!(b.readable_bytes(), m.len());
            prop_assert!(b.peek().iter().eq(m.iter()));
            prop_assert_eq!(b.find_crlf(), find_crlf(&m));
        }
        peer.flush().unwrap();
    }
}

#[test]
fn one_read_drains_more_than_the_heap_tail() {
    let (a, mut peer) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    peer.write_all(&[9u8; 50_000]).unwrap();
    let mut b = Buffer::with_capacity(1024);
    let n = b.read_from(&a).unwrap();
    assert_eq!(n, 50_000, "one readv should take it all via the stack spill");
    assert_eq!(b.readable_bytes(), 50_000);
    drop(peer);
    assert_eq!(b.read_from(&a).unwrap(), 0, "EOF");
}

#[test]
fn recv_drains_in_one_call_and_grows_so_the_next_fits() {
    let (a, mut peer) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let mut b = Buffer::new();
    // Small message: one plain recv into the (lazily allocated) tail.
    peer.write_all(b"ping").unwrap();
    assert_eq!(b.recv_from(&a).unwrap(), 4);
    assert_eq!(b.peek(), b"ping");
    b.consume_all();
    // More than the tail holds: the same call goes on with a spilling read,
    // so the socket is drained, and leaves room for as much again.
    let big: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    peer.write_all(&big).unwrap();
    assert_eq!(b.recv_from(&a).unwrap(), 5000);
    assert_eq!(b.peek(), &big[..]);
    assert!(b.writable_bytes() >= 5000, "tail {} after a 5000-byte read", b.writable_bytes());
    b.consume_all();
    // Nothing queued: WouldBlock, not 0.
    let e = b.recv_from(&a).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    drop(peer);
    assert_eq!(b.recv_from(&a).unwrap(), 0, "EOF");
}

#[test]
fn recv_from_refuses_a_non_socket() {
    let (r, mut w) = std::io::pipe().unwrap();
    w.write_all(b"x").unwrap();
    let mut b = Buffer::new();
    let e = b.recv_from(&r).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(rustix::io::Errno::NOTSOCK.raw_os_error()));
    assert_eq!(b.read_from(&r).unwrap(), 1, "read_from takes any fd");
}
