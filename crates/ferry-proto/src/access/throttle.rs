//! Failed logins slow their sender down: per peer address, the first two
//! failures are free, then each one bars further attempts for twice as
//! long as the last (2 s, 4 s, ... up to a minute); a success forgets the
//! address. Memory is bounded: at most [`MAX_PEERS`] addresses are
//! remembered, expired bars are dropped first, then the oldest.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Whom failed logins are counted against: a TCP client's IP address, or
/// a Unix-socket client's user id (all processes of one user share one
/// record, as all connections from one address do; a pid would be a new
/// key per attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerId {
    /// A TCP client's address.
    Ip(IpAddr),
    /// A Unix-domain client's user id (`SO_PEERCRED`).
    Uid(u32),
}

impl From<IpAddr> for PeerId {
    fn from(ip: IpAddr) -> PeerId {
        PeerId::Ip(ip)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerId::Ip(ip) => write!(f, "{ip}"),
            PeerId::Uid(uid) => write!(f, "unix uid {uid}"),
        }
    }
}

/// Peers remembered at most.
pub const MAX_PEERS: usize = 4096;
/// Failures before the first bar.
const FREE_FAILURES: u32 = 2;
/// The longest bar.
const MAX_BAR: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    barred_until: SystemTime,
}

/// The failed-login record of every recent peer.
#[derive(Debug, Default)]
pub struct Throttle {
    peers: Mutex<HashMap<PeerId, Record>>,
}

impl Throttle {
    /// `Err(wait)` while `peer` is barred from trying again.
    pub fn check(&self, peer: PeerId, now: SystemTime) -> Result<(), Duration> {
        let peers = self.peers.lock().map_err(|_| Duration::ZERO)?;
        match peers.get(&peer).and_then(|r| r.barred_until.duration_since(now).ok()) {
            Some(wait) if !wait.is_zero() => Err(wait),
            _ => Ok(()),
        }
    }

    /// Counts a failure of `peer`; returns how long it is now barred.
    pub fn failed(&self, peer: PeerId, now: SystemTime) -> Duration {
        let Ok(mut peers) = self.peers.lock() else { return Duration::ZERO };
        if !peers.contains_key(&peer) && peers.len() >= MAX_PEERS {
            peers.retain(|_, r| r.barred_until > now);
            if peers.len() >= MAX_PEERS
                && let Some(oldest) = peers.iter().min_by_key(|(_, r)| r.barred_until).map(|(ip, _)| *ip)
            {
                peers.remove(&oldest);
            }
        }
        let record = peers.entry(peer).or_insert(Record { failures: 0, barred_until: now });
        record.failures += 1;
        let bar = match record.failures.checked_sub(FREE_FAILURES) {
            None | Some(0) => Duration::ZERO,
            Some(n) => Duration::from_secs(1u64 << n.min(6)).min(MAX_BAR),
        };
        record.barred_until = now + bar;
        bar
    }

    /// A success: `peer`'s failures are forgotten.
    pub fn succeeded(&self, peer: PeerId) {
        if let Ok(mut peers) = self.peers.lock() {
            peers.remove(&peer);
        }
    }

    /// How many addresses are remembered (for tests).
    pub fn remembered(&self) -> usize {
        self.peers.lock().map(|p| p.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_grow_per_failure_and_a_success_forgets() {
        let t = Throttle::default();
        let ip = PeerId::Ip("192.0.2.1".parse().unwrap());
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(t.failed(ip, now), Duration::ZERO);
        assert_eq!(t.failed(ip, now), Duration::ZERO);
        assert!(t.check(ip, now).is_ok(), "two failures are free");
        assert_eq!(t.failed(ip, now), Duration::from_secs(2));
        assert_eq!(t.check(ip, now), Err(Duration::from_secs(2)));
        assert!(t.check(ip, now + Duration::from_secs(2)).is_ok(), "the bar ends");
        assert_eq!(t.failed(ip, now), Duration::from_secs(4));
        for _ in 0..10 {
            t.failed(ip, now);
        }
        assert_eq!(t.failed(ip, now), MAX_BAR, "bounded");
        let other = PeerId::Ip("192.0.2.2".parse().unwrap());
        assert!(t.check(other, now).is_ok(), "per address");
        t.succeeded(ip);
        assert!(t.check(ip, now).is_ok());
    }

    #[test]
    fn a_unix_peer_is_barred_by_its_uid() {
        let t = Throttle::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for _ in 0..3 {
            t.failed(PeerId::Uid(1000), now);
        }
        assert!(t.check(PeerId::Uid(1000), now).is_err(), "barred by uid");
        assert!(t.check(PeerId::Uid(1001), now).is_ok(), "another user is not");
    }

    #[test]
    fn memory_is_bounded() {
        let t = Throttle::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        // Barred addresses: none expires, so the oldest make room.
        for i in 0..(MAX_PEERS as u32 + 100) {
            for _ in 0..3 {
                t.failed(IpAddr::from(i.to_be_bytes()).into(), now);
            }
        }
        assert_eq!(t.remembered(), MAX_PEERS);
        // Once their bars are over, they go first.
        let later = now + MAX_BAR * 2;
        t.failed(PeerId::Ip("198.51.100.1".parse().unwrap()), later);
        assert_eq!(t.remembered(), 1);
    }
}
