//! Open-loop pacing: request `i` of a run at `rate` requests per second is due at `i / rate`
//! seconds after the start, whether or not earlier requests have been answered. Its latency is
//! counted from when it was due if the server kept it waiting (every connection was still busy:
//! the queueing a real user would see), and from when it was sent otherwise (so the client's own
//! timer lateness is not blamed on the server).

use std::time::{Duration, Instant};

/// When request `index` is due, `rate` requests per second after `start`.
pub fn due(start: Instant, index: u64, rate: f64) -> Instant {
    start + Duration::from_secs_f64(index as f64 / rate)
}

/// Where a request's latency starts: its due time if the connection only became free after it
/// was due, else the moment it was sent.
pub fn latency_origin(due: Instant, free_at: Instant, sent_at: Instant) -> Instant {
    if free_at > due {
        due
    } else {
        sent_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_due_evenly_spaced() {
        let t0 = Instant::now();
        assert_eq!(due(t0, 0, 100.0), t0);
        assert_eq!(due(t0, 250, 100.0), t0 + Duration::from_millis(2500));
    }

    #[test]
    fn a_busy_connection_counts_from_the_due_time() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        // Free at 5 ms, due at 10 ms, the timer woke at 11 ms: latency starts at the send.
        assert_eq!(latency_origin(ms(10), ms(5), ms(11)), ms(11));
        // Still busy until 30 ms although due at 10 ms: the 20 ms of waiting count.
        assert_eq!(latency_origin(ms(10), ms(30), ms(30)), ms(10));
    }
}
