//! Turning the recorded latencies of one run into the figures the report shows.

use std::collections::BTreeMap;

/// Latency percentiles in milliseconds (nearest rank over all recorded requests).
#[derive(Debug, Clone, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// The value at quantile `q` (0 < q <= 1) of `sorted` by nearest rank: the smallest value with at
/// least a fraction q of the samples at or below it.
fn nearest_rank(sorted: &[u32], q: f64) -> u32 {
    let n = sorted.len();
    let rank = (q * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Percentiles of latencies given in microseconds; None without samples.
pub fn percentiles(mut micros: Vec<u32>) -> Option<Percentiles> {
    if micros.is_empty() {
        return None;
    }
    micros.sort_unstable();
    let ms = |us: u32| f64::from(us) / 1000.0;
    let sum: u64 = micros.iter().map(|&u| u64::from(u)).sum();
    Some(Percentiles {
        p50: ms(nearest_rank(&micros, 0.50)),
        p90: ms(nearest_rank(&micros, 0.90)),
        p99: ms(nearest_rank(&micros, 0.99)),
        p999: ms(nearest_rank(&micros, 0.999)),
        max: ms(*micros.last().unwrap()),
        mean: sum as f64 / micros.len() as f64 / 1000.0,
    })
}

/// How many responses of each HTTP status a run got; 2xx and 3xx count as answered.
#[derive(Debug, Default, Clone)]
pub struct StatusCounts(pub BTreeMap<u16, u64>);

impl StatusCounts {
    pub fn add(&mut self, status: u16) {
        *self.0.entry(status).or_default() += 1;
    }
    pub fn merge(&mut self, other: &StatusCounts) {
        for (status, n) in &other.0 {
            *self.0.entry(*status).or_default() += n;
        }
    }
    pub fn answered(&self) -> u64 {
        self.0
            .iter()
            .filter(|(s, _)| (200..400).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }
    pub fn refused(&self) -> u64 {
        self.0
            .iter()
            .filter(|(s, _)| !(200..400).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let p = percentiles((1..=1000).map(|i| i * 1000).collect()).unwrap();
        assert_eq!(p.p50, 500.0);
        assert_eq!(p.p90, 900.0);
        assert_eq!(p.p99, 990.0);
        assert_eq!(p.p999, 999.0);
        assert_eq!(p.max, 1000.0);
        assert_eq!(p.mean, 500.5);
        let one = percentiles(vec![2500]).unwrap();
        assert_eq!((one.p50, one.p99, one.max), (2.5, 2.5, 2.5));
        assert!(percentiles(Vec::new()).is_none());
    }

    #[test]
    fn statuses_split_into_answered_and_refused() {
        let mut a = StatusCounts::default();
        a.add(200);
        a.add(303);
        let mut b = StatusCounts::default();
        b.add(410);
        b.add(200);
        a.merge(&b);
        assert_eq!((a.answered(), a.refused()), (3, 1));
        assert_eq!(a.0[&200], 2);
    }
}
