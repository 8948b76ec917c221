//! Per-client limits, both keyed by [`client_key`]:
//!
//! * token buckets for failed lookups: guessing or replaying links from one client runs dry and
//!   gets 429 with Retry-After, while everyone else is unaffected;
//! * a cap on one client's requests in flight, so that one client cannot hold every database
//!   connection (each request that reaches the database holds one until it answers).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Who counts as one client: an IPv4 address (also when written IPv4-mapped, `::ffff:a.b.c.d`),
/// or an IPv6 /64. One subscriber usually gets a whole /64 and can pick any address in it, so
/// counting IPv6 addresses one by one would give an attacker 2^64 fresh budgets.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// Most clients tracked; beyond this the fullest (idle) buckets are forgotten.
const MAX_TRACKED: usize = 100_000;

pub struct FailureLimiter {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl FailureLimiter {
    /// `per_minute` failures allowed per address, refilled continuously, burst of the same size.
    pub fn new(per_minute: u32) -> FailureLimiter {
        let capacity = f64::from(per_minute.max(1));
        FailureLimiter {
            capacity,
            per_second: capacity / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn level(&self, (tokens, at): (f64, Instant), now: Instant) -> f64 {
        (tokens + now.saturating_duration_since(at).as_secs_f64() * self.per_second)
            .min(self.capacity)
    }

    /// None when the client may make a lookup now, else how long until it may.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let ip = client_key(ip);
        let buckets = self.buckets.lock().unwrap();
        let level = buckets
            .get(&ip)
            .map_or(self.capacity, |b| self.level(*b, now));
        if level >= 1.0 {
            None
        } else {
            Some(
                Duration::from_secs_f64((1.0 - level) / self.per_second)
                    .max(Duration::from_secs(1)),
            )
        }
    }

    /// Records one failed lookup.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let ip = client_key(ip);
        let mut buckets = self.buckets.lock().unwrap();
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&ip) {
            let capacity = self.capacity;
            let per_second = self.per_second;
            buckets.retain(|_, (t, at)| {
                *t + now.saturating_duration_since(*at).as_secs_f64() * per_second < capacity
            });
        }
        let level = buckets
            .get(&ip)
            .map_or(self.capacity, |b| self.level(*b, now));
        buckets.insert(ip, ((level - 1.0).max(0.0), now));
    }
}

/// Requests in flight per client, capped. Entries exist only while a client has requests in
/// flight, so the map never holds more entries than there are open requests.
pub struct InFlight {
    cap: Option<usize>,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted request; gives its place back when dropped (answered, timed out or cancelled).
pub struct Admitted<'a> {
    owner: &'a InFlight,
    key: Option<IpAddr>,
}

impl InFlight {
    /// `cap` requests at once per client; None: no cap.
    pub fn new(cap: Option<usize>) -> InFlight {
        InFlight {
            cap,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one more request of this client, or None when it already has `cap` in flight.
    pub fn admit(&self, ip: IpAddr) -> Option<Admitted<'_>> {
        let Some(cap) = self.cap else {
            return Some(Admitted {
                owner: self,
                key: None,
            });
        };
        let key = client_key(ip);
        let mut counts = self.counts.lock().unwrap();
        let n = counts.entry(key).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Admitted {
            owner: self,
            key: Some(key),
        })
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.counts.lock().unwrap().len()
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut counts = self.owner.counts.lock().unwrap();
        if let Some(n) = counts.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_client_is_an_ipv4_address_or_an_ipv6_64() {
        assert_eq!(client_key(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_ne!(client_key(ip("192.0.2.1")), client_key(ip("192.0.2.2")));
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("::1")), ip("::"));
    }

    #[test]
    fn failed_lookups_count_per_ipv6_64() {
        let l = FailureLimiter::new(3);
        let t0 = Instant::now();
        // Three failures from three addresses of one /64 use up the one budget.
        for addr in [
            "2001:db8:0:7::1",
            "2001:db8:0:7::2",
            "2001:db8:0:7:ffff:ffff:ffff:ffff",
        ] {
            let addr = ip(addr);
            assert_eq!(l.check(addr, t0), None);
            l.failed(addr, t0);
        }
        assert!(l.check(ip("2001:db8:0:7::abcd"), t0).is_some(), "same /64");
        assert_eq!(l.check(ip("2001:db8:0:8::1"), t0), None, "next /64");
        // IPv4 and IPv4-mapped IPv6 are one client.
        for _ in 0..3 {
            l.failed(ip("::ffff:198.51.100.9"), t0);
        }
        assert!(l.check(ip("198.51.100.9"), t0).is_some());
        assert_eq!(l.check(ip("198.51.100.10"), t0), None);
    }

    #[test]
    fn in_flight_cap_per_client() {
        let f = InFlight::new(Some(2));
        let a1 = f.admit(ip("203.0.113.5")).expect("first");
        let a2 = f
            .admit(ip("::ffff:203.0.113.5"))
            .expect("second (the same client)");
        assert!(f.admit(ip("203.0.113.5")).is_none(), "third: over the cap");
        assert!(f.admit(ip("203.0.113.6")).is_some(), "another client");
        drop(a1);
        let a3 = f.admit(ip("203.0.113.5")).expect("a place was given back");
        assert!(f.admit(ip("203.0.113.5")).is_none());
        drop((a2, a3));
        assert_eq!(f.tracked(), 0, "no entry outlives its requests");

        let v6: Vec<_> = (1..=2)
            .map(|i| f.admit(ip(&format!("2001:db8:5:6::{i}"))).unwrap())
            .collect();
        assert!(f.admit(ip("2001:db8:5:6:ffff::1")).is_none(), "same /64");
        assert!(f.admit(ip("2001:db8:5:7::1")).is_some(), "next /64");
        drop(v6);

        let open = InFlight::new(None);
        let many: Vec<_> = (0..100)
            .map(|_| open.admit(ip("203.0.113.5")).unwrap())
            .collect();
        assert_eq!(many.len(), 100, "no cap");
        assert_eq!(open.tracked(), 0, "nothing tracked without a cap");
    }

    #[test]
    fn runs_dry_after_the_allowance_and_refills() {
        let l = FailureLimiter::new(3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(ip, t0), None);
            l.failed(ip, t0);
        }
        let wait = l.check(ip, t0).expect("limited after 3 failures");
        assert!(
            wait >= Duration::from_secs(19) && wait <= Duration::from_secs(21),
            "{wait:?}"
        );
        assert_eq!(l.check(other, t0), None, "other addresses are unaffected");
        assert_eq!(
            l.check(ip, t0 + Duration::from_secs(21)),
            None,
            "refilled after 20 s"
        );
    }
}
