//! The throttle of failed connector Basic attempts (issue 10 §5), per source address (the
//! caller's address as [`super::client_cert::TrustedProxies::client_addr`] gives it; IPv6 by
//! /64, [`super::addr_key`]).
//!
//! An address gets [`FailureThrottle::FREE_FAILURES`] failures free; each further one blocks it
//! for 1 s, 2 s, 4 s, … up to [`FailureThrottle::MAX_BLOCK`]. While blocked, its connector calls
//! are answered 429 with `Retry-After` without looking at the credentials, so guessing runs at a
//! few attempts a minute. Only the failing address is blocked: Entra's calls come from its own
//! addresses and are never slowed by someone else's failures, and one success clears the
//! address's record. Memory is bounded: at most [`FailureThrottle::MAX_TRACKED`] addresses are
//! tracked, forgetting the stalest first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    blocked_until: Option<Instant>,
    last: Instant,
}

/// Failed attempts per source address.
#[derive(Debug, Default)]
pub struct FailureThrottle {
    records: Mutex<HashMap<IpAddr, Record>>,
}

impl FailureThrottle {
    /// Failures an address may make before it is blocked.
    pub const FREE_FAILURES: u32 = 5;
    /// The first block.
    pub const FIRST_BLOCK: Duration = Duration::from_secs(1);
    /// The longest block.
    pub const MAX_BLOCK: Duration = Duration::from_secs(60);
    /// Addresses tracked at most (about 64 bytes each).
    pub const MAX_TRACKED: usize = 65_536;
    /// A record without a failure for this long is forgotten first.
    const STALE: Duration = Duration::from_secs(15 * 60);

    fn key(ip: IpAddr) -> IpAddr {
        super::addr_key(ip)
    }

    /// `Err(retry_after)` while `ip` is blocked.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let records = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        match records.get(&Self::key(ip)).and_then(|r| r.blocked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a failure of `ip`; returns the block it now serves, if any.
    pub fn failure(&self, ip: IpAddr) -> Option<Duration> {
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let key = Self::key(ip);
        if !records.contains_key(&key) && records.len() >= Self::MAX_TRACKED {
            records.retain(|_, r| {
                now.duration_since(r.last) < Self::STALE || r.blocked_until.is_some_and(|u| u > now)
            });
            if records.len() >= Self::MAX_TRACKED
                && let Some(oldest) = records.iter().min_by_key(|(_, r)| r.last).map(|(k, _)| *k)
            {
                records.remove(&oldest);
            }
        }
        let r = records.entry(key).or_insert(Record {
            failures: 0,
            blocked_until: None,
            last: now,
        });
        r.failures = r.failures.saturating_add(1);
        r.last = now;
        let over = r.failures.checked_sub(Self::FREE_FAILURES + 1)?;
        let block = Self::FIRST_BLOCK
            .saturating_mul(1u32.checked_shl(over.min(16)).unwrap_or(u32::MAX))
            .min(Self::MAX_BLOCK);
        r.blocked_until = Some(now + block);
        Some(block)
    }

    /// A success of `ip`: forgets its failures.
    pub fn success(&self, ip: IpAddr) {
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !records.is_empty() {
            records.remove(&Self::key(ip));
        }
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_free_failures_and_a_success_clears() {
        let t = FailureThrottle::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..FailureThrottle::FREE_FAILURES {
            assert_eq!(t.failure(a), None);
            assert!(t.check(a).is_ok());
        }
        assert_eq!(t.failure(a), Some(Duration::from_secs(1)));
        assert!(t.check(a).is_err());
        assert_eq!(t.failure(a), Some(Duration::from_secs(2)));
        assert!(t.check(b).is_ok(), "another address is not blocked");
        t.success(a);
        assert!(t.check(a).is_ok());
        assert_eq!(t.tracked(), 0);
    }

    #[test]
    fn memory_is_bounded() {
        let t = FailureThrottle::default();
        for i in 0..(FailureThrottle::MAX_TRACKED as u32 + 100) {
            t.failure(IpAddr::V4(std::net::Ipv4Addr::from(i)));
        }
        assert!(t.tracked() <= FailureThrottle::MAX_TRACKED);
    }
}
