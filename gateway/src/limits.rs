//! Per-client-address token buckets for failed lookups: guessing or replaying links from one
//! address runs dry and gets 429 with Retry-After, while everyone else is unaffected.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most addresses tracked; beyond this the fullest (idle) buckets are forgotten.
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

    /// None when the address may make a lookup now, else how long until it may.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
