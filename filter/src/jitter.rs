//! Randomized delays shared by the bundle poller and the decision-log uploader: a per-worker
//! stream of numbers (so workers do not poll or upload in lockstep), a delay drawn between two
//! bounds, and OPA's retry backoff.

/// The first retry's delay in OPA's `util.DefaultBackoff`.
pub const MIN_RETRY_DELAY_MS: u64 = 100;

/// Uniform numbers in [0, 1) from xorshift64*, seeded per worker.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A delay in [min_ms, max_ms).
    pub fn between(&mut self, min_ms: u64, max_ms: u64) -> u64 {
        min_ms + (self.unit() * max_ms.saturating_sub(min_ms) as f64) as u64
    }

    /// OPA's `util.DefaultBackoff(100ms, max_ms, retries)`: ×1.6 per retry up to `max_ms`,
    /// ±20 % jitter.
    pub fn backoff_ms(&mut self, max_ms: u64, retries: u32) -> u64 {
        let max = max_ms as f64;
        let mut backoff = MIN_RETRY_DELAY_MS as f64;
        let mut retries = retries;
        while backoff < max && retries > 0 {
            backoff *= 1.6;
            retries -= 1;
        }
        backoff = backoff.min(max);
        backoff *= 1.0 + 0.2 * (self.unit() * 2.0 - 1.0);
        backoff.max(0.0) as u64
    }
}
