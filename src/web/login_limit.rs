//! Login pacing per client address: failures slow the next attempts from that address (a growing delay, capped)
//! instead of refusing them, so a flood of wrong guesses can never lock the admin out — a correct password is
//! always accepted once its turn comes. Behind a reverse proxy the client address comes from the configured
//! trusted header (`DEVATAR_TRUSTED_PROXY_HEADER`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

/// Failures from one address that cost nothing; each further one doubles the delay.
const FREE_FAILURES: u32 = 5;
/// The delay after the first failure past the free ones.
const FIRST_DELAY: Duration = Duration::from_millis(50);
/// The longest delay between two attempts from one address.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// The longest an attempt waits for its turn, however many are queued before it.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Failures are forgotten after this long without another.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Addresses tracked at most (older entries are dropped first when full).
const MAX_ADDRESSES: usize = 100_000;

/// One address's recent failures and when its next attempt may be checked.
#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    next_turn: Instant,
}

/// Paces login attempts per client address.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

/// The pause that follows `failures` failed attempts.
pub fn delay_after(failures: u32) -> Duration {
    if failures <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_FAILURES - 1).min(16);
    (FIRST_DELAY * 2u32.pow(doublings)).min(MAX_DELAY)
}

impl LoginLimiter {
    /// Reserves the next turn of `ip` and returns how long this attempt must wait for it (at most 30 s).
    /// Concurrent attempts from one address are spaced by the current delay, as if each one fails.
    pub fn wait_for_turn(&self, ip: IpAddr) -> Duration {
        self.wait_at(ip, Instant::now())
    }

    fn wait_at(&self, ip: IpAddr, now: Instant) -> Duration {
        let Ok(mut map) = self.entries.lock() else {
            return MAX_DELAY;
        };
        let Some(e) = map.get_mut(&ip) else {
            return Duration::ZERO;
        };
        let turn = e.next_turn.max(now).min(now + MAX_WAIT);
        e.next_turn = turn + delay_after(e.failures);
        turn - now
    }

    /// Records the outcome of an attempt: a success forgets the address, a failure lengthens its delay.
    pub fn record(&self, ip: IpAddr, ok: bool) {
        self.record_at(ip, ok, Instant::now());
    }

    fn record_at(&self, ip: IpAddr, ok: bool, now: Instant) {
        let Ok(mut map) = self.entries.lock() else {
            return;
        };
        if ok {
            map.remove(&ip);
            return;
        }
        if map.len() >= MAX_ADDRESSES {
            map.retain(|_, e| now.duration_since(e.last_failure) < FORGET_AFTER);
        }
        let e = map.entry(ip).or_insert(Entry {
            failures: 0,
            last_failure: now,
            next_turn: now,
        });
        if now.duration_since(e.last_failure) >= FORGET_AFTER {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_failure = now;
        e.next_turn = e.next_turn.max(now + delay_after(e.failures));
    }
}

/// The client's address: the right-most valid address in the trusted proxy header when one is configured
/// (the one the proxy itself appended), else the connection's peer.
pub fn client_addr(trusted_header: Option<&str>, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let Some(name) = trusted_header else {
        return peer;
    };
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| {
            let part = part.trim().trim_start_matches("for=").trim_matches('"');
            part.parse::<IpAddr>()
                .ok()
                .or_else(|| part.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        })
        .next_back()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_slow_the_address_down_without_refusing_it() {
        let l = LoginLimiter::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(l.wait_at(ip, t0), Duration::ZERO);
            l.record_at(ip, false, t0);
        }
        l.record_at(ip, false, t0);
        assert_eq!(l.wait_at(ip, t0), FIRST_DELAY);
        for _ in 0..30 {
            l.record_at(ip, false, t0);
        }
        // Many failures: the wait is capped, and the next attempt (right password or not) still gets its turn.
        let wait = l.wait_at(ip, t0);
        assert!(wait > Duration::ZERO && wait <= MAX_WAIT, "{wait:?}");
        l.record_at(ip, true, t0 + wait);
        assert_eq!(
            l.wait_at(ip, t0 + wait),
            Duration::ZERO,
            "a success forgets"
        );
        assert_eq!(l.wait_at("127.0.0.2".parse().unwrap(), t0), Duration::ZERO);
    }

    #[test]
    fn concurrent_attempts_are_spaced_and_waits_are_capped() {
        let l = LoginLimiter::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..20 {
            l.record_at(ip, false, t0);
        }
        let waits: Vec<_> = (0..20).map(|_| l.wait_at(ip, t0)).collect();
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert!(waits.iter().all(|w| *w <= MAX_WAIT), "{waits:?}");
        assert_eq!(delay_after(1000), MAX_DELAY);
    }

    #[test]
    fn the_trusted_header_names_the_client_only_when_configured() {
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
        assert_eq!(client_addr(None, peer, &h), peer);
        assert_eq!(
            client_addr(Some("x-forwarded-for"), peer, &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        h.insert("x-real-ip", "not an address".parse().unwrap());
        assert_eq!(client_addr(Some("x-real-ip"), peer, &h), peer);
    }
}
