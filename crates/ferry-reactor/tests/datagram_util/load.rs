//! A datagram echo load client for the tests of this crate and the
//! end-to-end tests of `ferry serve --udp-echo` (which include this file
//! by path): many peer sockets, each sending datagrams of random sizes one
//! at a time and checking that each comes back whole, from the server, to
//! the peer that sent it.
//!
//! UDP may drop a datagram when a receive buffer overflows, so a datagram
//! with no echo after `rto` is sent again (and counted); a duplicate echo
//! of an earlier one is ignored. Unix datagram sockets do not drop, so
//! their tests can give a long `rto` and expect no retransmission.

#![allow(dead_code)]

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// Where the echo server is.
#[derive(Clone, Debug)]
pub enum Target {
    /// UDP (the peers bind the loopback address of the same family).
    Udp(SocketAddr),
    /// A Unix datagram socket; peers bind paths in `client_dir`, of
    /// lengths that vary from peer to peer.
    Unix { server: PathBuf, client_dir: PathBuf },
}

/// How much load.
#[derive(Clone, Debug)]
pub struct Spec {
    pub peers: usize,
    pub per_peer: usize,
    /// Largest datagram; each peer's first datagram has exactly this size,
    /// the others a random size from 8 up to it.
    pub max_len: usize,
    pub seed: u64,
    /// Resend a datagram with no echo after this long.
    pub rto: Duration,
    /// Give up (panic) after this long.
    pub deadline: Duration,
}

/// What it took.
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    pub echoed: usize,
    pub retransmits: usize,
}

enum Sock {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

struct Peer {
    sock: Sock,
    seq: u32,
    payload: Vec<u8>,
    /// When the current datagram was sent; `None`: it still has to be.
    sent_at: Option<Instant>,
    done: bool,
}

/// xorshift64*: deterministic sizes and contents.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The path of peer `i`: lengths from 1 to 48 characters, interleaved, so
/// consecutive senders have different address lengths.
fn client_path(dir: &std::path::Path, i: usize) -> PathBuf {
    let len = 1 + (i * 17) % 48;
    let mut name = format!("{i}-");
    while name.len() < len {
        name.push('p');
    }
    dir.join(name)
}

fn payload(rng: &mut Rng, peer: usize, seq: u32, len: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(len.max(8));
    data.extend_from_slice(&(peer as u32).to_le_bytes());
    data.extend_from_slice(&seq.to_le_bytes());
    while data.len() < len {
        data.extend_from_slice(&rng.next().to_le_bytes());
    }
    data.truncate(len.max(8));
    data
}

impl Sock {
    fn send(&self, target: &Target, data: &[u8]) -> io::Result<usize> {
        match (self, target) {
            (Sock::Udp(s), Target::Udp(to)) => s.send_to(data, to),
            (Sock::Unix(s), Target::Unix { server, .. }) => s.send_to(data, server),
            _ => unreachable!("peer and target of different kinds"),
        }
    }

    /// Receives one datagram; checks it came from the server.
    fn recv(&self, target: &Target, buf: &mut [u8]) -> io::Result<usize> {
        match (self, target) {
            (Sock::Udp(s), Target::Udp(server)) => {
                let (n, from) = s.recv_from(buf)?;
                assert_eq!(from, *server, "an echo came from someone else");
                Ok(n)
            }
            (Sock::Unix(s), Target::Unix { server, .. }) => {
                let (n, from) = s.recv_from(buf)?;
                assert_eq!(from.as_pathname(), Some(server.as_path()), "an echo came from someone else");
                Ok(n)
            }
            _ => unreachable!("peer and target of different kinds"),
        }
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Sock::Udp(s) => s.as_fd(),
            Sock::Unix(s) => s.as_fd(),
        }
    }
}

/// Runs the load; panics on a datagram that comes back different, from
/// someone else, to the wrong peer, or not at all by the deadline.
pub fn run(target: &Target, spec: &Spec) -> Report {
    let mut rng = Rng(spec.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut peers: Vec<Peer> = (0..spec.peers)
        .map(|i| {
            let sock = match target {
                Target::Udp(server) => {
                    let local: SocketAddr =
                        if server.is_ipv4() { "127.0.0.1:0".parse().unwrap() } else { "[::1]:0".parse().unwrap() };
                    let s = UdpSocket::bind(local).expect("bind a UDP peer");
                    s.set_nonblocking(true).unwrap();
                    Sock::Udp(s)
                }
                Target::Unix { client_dir, .. } => {
                    let path = client_path(client_dir, i);
                    let _ = std::fs::remove_file(&path);
                    let s = UnixDatagram::bind(&path).expect("bind a Unix peer");
                    s.set_nonblocking(true).unwrap();
                    Sock::Unix(s)
                }
            };
            let payload = payload(&mut rng, i, 0, spec.max_len);
            Peer { sock, seq: 0, payload, sent_at: None, done: spec.per_peer == 0 }
        })
        .collect();
    let mut report = Report::default();
    let mut buf = vec![0u8; 70 * 1024];
    let give_up = Instant::now() + spec.deadline;
    while peers.iter().any(|p| !p.done) {
        assert!(
            Instant::now() < give_up,
            "echo load not done after {:?}: {} of {} echoed, {} retransmits",
            spec.deadline,
            report.echoed,
            spec.peers * spec.per_peer,
            report.retransmits
        );
        for peer in peers.iter_mut().filter(|p| !p.done) {
            let due = match peer.sent_at {
                None => true,
                Some(at) if at.elapsed() >= spec.rto => {
                    report.retransmits += 1;
                    true
                }
                Some(_) => false,
            };
            if due {
                match peer.sock.send(target, &peer.payload) {
                    Ok(n) => {
                        assert_eq!(n, peer.payload.len(), "a datagram went out cut");
                        peer.sent_at = Some(Instant::now());
                    }
                    // The server's queue is full (Unix): try again next round.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => peer.sent_at = None,
                    Err(e) => panic!("send: {e}"),
                }
            }
        }
        let mut fds: Vec<PollFd<'_>> =
            peers.iter().map(|p| PollFd::from_borrowed_fd(p.sock.fd(), PollFlags::IN)).collect();
        poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 20_000_000 })).expect("poll");
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        for (i, peer) in peers.iter_mut().enumerate().filter(|(i, _)| ready[*i]) {
            loop {
                let n = match peer.sock.recv(target, &mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("peer {i}: recv: {e}"),
                };
                assert!(n >= 8, "peer {i}: an echo of {n} bytes is no datagram of ours");
                let from = u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
                let seq = u32::from_le_bytes(buf[4..8].try_into().unwrap());
                assert_eq!(from, i, "peer {i} got the echo of peer {from}'s datagram");
                if peer.done || seq < peer.seq {
                    continue; // the echo of a retransmitted datagram, again
                }
                assert_eq!(seq, peer.seq, "peer {i}: echo of a datagram never sent");
                assert!(
                    buf[..n] == peer.payload[..],
                    "peer {i}: datagram {seq} came back different ({} bytes sent, {n} received)",
                    peer.payload.len()
                );
                report.echoed += 1;
                peer.seq += 1;
                if peer.seq as usize == spec.per_peer {
                    peer.done = true;
                } else {
                    let len = 8 + (rng.next() as usize) % (spec.max_len - 7);
                    peer.payload = payload(&mut rng, i, peer.seq, len);
                    peer.sent_at = None;
                }
            }
        }
    }
    if let Target::Unix { client_dir, .. } = target {
        for i in 0..spec.peers {
            let _ = std::fs::remove_file(client_path(client_dir, i));
        }
    }
    report
}

/// Whether the system lets a socket have a 4 MiB send buffer
/// (`net.core.wmem_max`). A Unix datagram sender's buffer holds each
/// datagram until its receiver reads it, so only with that much room can a
/// Unix echo server answer 50 peers' 64 KiB datagrams without dropping
/// one; with less, the tests let the client send again instead.
pub fn roomy_send_buffers() -> bool {
    std::fs::read_to_string("/proc/sys/net/core/wmem_max")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|max| max >= 4 << 20)
}
