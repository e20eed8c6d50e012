//! [`Backoff`]: how long a supervisor waits before a restart.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How long a [`Supervisor`](crate::Supervisor) waits before it restarts a child:
/// exponential, capped, with jitter.
///
/// The `n`-th restart of a child within the supervisor's intensity period waits
/// `min(initial · 2^(n-1), max)`, then a random extra of up to `jitter` times that (10 % by
/// default), so that children that failed together do not all come back at the same
/// instant. A restart never happens earlier than the capped delay; restarts that left the
/// period no longer count, so a child that has been stable for a period starts again at
/// `initial`.
///
/// While a child waits, the others keep running and are supervised as usual. Without a
/// backoff, restarts happen at once.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use warden::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1))
///     .jitter(0.0);
/// assert_eq!(backoff.delay(1), Duration::from_millis(10));
/// assert_eq!(backoff.delay(2), Duration::from_millis(20));
/// assert_eq!(backoff.delay(4), Duration::from_millis(80));
/// assert_eq!(backoff.delay(50), Duration::from_secs(1)); // capped
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
}

impl Backoff {
    /// Waits `initial` before a child's first restart, twice as long before each further
    /// restart within the intensity period, never more than `max` (plus jitter).
    ///
    /// # Panics
    ///
    /// If `max` is shorter than `initial`.
    pub fn exponential(initial: Duration, max: Duration) -> Backoff {
        assert!(
            max >= initial,
            "warden: Backoff::exponential needs max ({max:?}) >= initial ({initial:?})"
        );
        Backoff {
            initial,
            max,
            jitter: 0.1,
        }
    }

    /// Adds a random extra of up to `fraction` of each delay (0.1 by default; 0 turns
    /// jitter off).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use warden::Backoff;
    ///
    /// // Up to 50 % later than the exponential delay; never earlier.
    /// let backoff = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(5))
    ///     .jitter(0.5);
    /// assert_eq!(backoff.delay(2), Duration::from_millis(200)); // the least it waits
    /// ```
    ///
    /// # Panics
    ///
    /// If `fraction` is negative or not finite.
    pub fn jitter(mut self, fraction: f64) -> Backoff {
        assert!(
            fraction.is_finite() && fraction >= 0.0,
            "warden: Backoff::jitter needs a finite fraction >= 0, got {fraction}"
        );
        self.jitter = fraction;
        self
    }

    /// The delay before the `n`-th restart (1 for the first) within the period, jitter
    /// left out: the least a restart waits.
    pub fn delay(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        let nanos = (self.initial.as_nanos()).saturating_mul(u128::from(factor));
        if nanos >= self.max.as_nanos() {
            self.max
        } else {
            // Below `max`, so it fits.
            Duration::from_nanos(nanos as u64)
        }
    }

    /// [`delay`](Backoff::delay) plus jitter drawn from `rng`.
    pub(super) fn jittered(&self, n: u32, rng: &mut Rng) -> Duration {
        let base = self.delay(n);
        if self.jitter == 0.0 || base.is_zero() {
            return base;
        }
        base + base.mul_f64(self.jitter * rng.unit())
    }
}

/// A small PRNG for jitter (xorshift64*), seeded from std's per-process random keys: no
/// dependency for a few random numbers.
#[derive(Debug)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new() -> Rng {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_fraction() {
        let backoff =
            Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1)).jitter(0.5);
        let mut rng = Rng::new();
        for n in 1..10 {
            let least = backoff.delay(n);
            for _ in 0..100 {
                let d = backoff.jittered(n, &mut rng);
                assert!(d >= least && d <= least + least / 2, "{d:?} for {n}");
            }
        }
    }

    #[test]
    fn huge_exponents_saturate_at_max() {
        let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(30));
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(30));
        assert_eq!(backoff.delay(0), Duration::from_secs(1));
    }
}
