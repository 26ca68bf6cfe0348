//! Buffer against a `VecDeque<u8>` model (proptest), including reads
//! through `readv` from a real socket pair.

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
    /// Read `n` bytes that a peer wrote, through `read_from`.
    ReadFrom(usize),
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
        1 => (1usize..100_000).prop_map(Op::ReadFrom),
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
                Op::ReadFrom(n) => {
                    let data: Vec<u8> = (0..n).map(|_| { counter = counter.wrapping_add(1); counter }).collect();
                    // The socket buffer may hold less than n: write what
                    // fits from a thread, read until all arrived.
                    let d2 = data.clone();
                    let mut p2 = peer.try_clone().unwrap();
                    let w = std::thread::spawn(move || p2.write_all(&d2).unwrap());
                    let mut got = 0;
                    while got < n {
                        match b.read_from(&a) {
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
