//! ARM's throttling (reference §1.5): a token bucket per subscription and
//! principal for reads and one for writes. An empty bucket answers 429 with
//! `Retry-After`; every answer carries the remaining budget.

use std::time::Instant;

/// Bucket sizes and refill rates; the defaults are ARM's documented
/// per-principal subscription limits (reads 250 / 25 per s, writes 200 / 10
/// per s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmLimits {
    pub read_capacity: u32,
    pub read_refill_per_sec: f64,
    pub write_capacity: u32,
    pub write_refill_per_sec: f64,
}

impl Default for ArmLimits {
    fn default() -> Self {
        Self {
            read_capacity: 250,
            read_refill_per_sec: 25.0,
            write_capacity: 200,
            write_refill_per_sec: 10.0,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    refill: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(capacity: u32, refill: f64, now: Instant) -> Self {
        Self {
            capacity: f64::from(capacity),
            refill: refill.max(0.001),
            tokens: f64::from(capacity),
            last: now,
        }
    }

    /// Takes one token: the whole tokens left, or the seconds to wait.
    fn take(&mut self, now: Instant) -> Result<u64, u64> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.refill).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(self.tokens.floor() as u64)
        } else {
            Err(((1.0 - self.tokens) / self.refill).ceil().max(1.0) as u64)
        }
    }
}

/// The read and write buckets of the one principal the scenario has.
#[derive(Debug)]
pub(crate) struct ArmBuckets {
    reads: Bucket,
    writes: Bucket,
}

impl ArmBuckets {
    pub fn new(limits: ArmLimits, now: Instant) -> Self {
        Self {
            reads: Bucket::new(limits.read_capacity, limits.read_refill_per_sec, now),
            writes: Bucket::new(limits.write_capacity, limits.write_refill_per_sec, now),
        }
    }

    pub fn take(&mut self, write: bool, now: Instant) -> Result<u64, u64> {
        if write {
            self.writes.take(now)
        } else {
            self.reads.take(now)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bucket_empties_and_refills() {
        let t0 = Instant::now();
        let mut b = ArmBuckets::new(
            ArmLimits {
                read_capacity: 2,
                read_refill_per_sec: 1.0,
                ..ArmLimits::default()
            },
            t0,
        );
        assert_eq!(b.take(false, t0), Ok(1));
        assert_eq!(b.take(false, t0), Ok(0));
        assert_eq!(b.take(false, t0), Err(1));
        assert_eq!(b.take(true, t0), Ok(199), "writes have their own bucket");
        assert_eq!(b.take(false, t0 + Duration::from_millis(1100)), Ok(0));
    }
}
