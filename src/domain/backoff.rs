//! How long to wait before trying again: every retry in sitrep follows this one schedule.

use std::time::Duration;

/// `first` after the first failure, twice as long after each next one, never more than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Backoff {
        Backoff { first, max }
    }

    /// The wait after `failures` earlier failed attempts: `first` for none, doubling, capped.
    pub fn after(&self, failures: u32) -> Duration {
        self.first
            .saturating_mul(2u32.saturating_pow(failures))
            .min(self.max)
    }

    /// As [`Backoff::after`], half of it fixed and half random, so that many senders that
    /// failed together do not retry together.
    pub fn jittered(&self, failures: u32) -> Duration {
        let half = self.after(failures) / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_first_up_to_max() {
        let b = Backoff::new(Duration::from_secs(3), Duration::from_secs(20));
        let got: Vec<u64> = (0..5).map(|n| b.after(n).as_secs()).collect();
        assert_eq!(got, [3, 6, 12, 20, 20]);
        assert_eq!(b.after(u32::MAX), b.max);
    }
}
