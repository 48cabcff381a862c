//! Latency statistics: an HdrHistogram for the percentiles (3 significant digits, as
//! tcpkali's), and exact min, max and sums for the mean and ping's mdev.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies recorded in nanoseconds.
#[derive(Clone)]
pub(super) struct Latencies {
    hist: Histogram<u64>,
    /// Exact, where the histogram's would be its bucket's edges: the summary's min and max
    /// are then the fastest and slowest replies as their own lines print them.
    min: u64,
    max: u64,
    sum: f64,
    sum_sq: f64,
}

/// A summary in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub(super) struct Times {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    pub mdev: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
}

impl Latencies {
    pub(super) fn new() -> Latencies {
        // Auto-resizing, so it only takes the memory the largest value needs; `new` with 3
        // digits cannot fail.
        let hist = Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits"));
        Latencies {
            hist,
            min: u64::MAX,
            max: 0,
            sum: 0.0,
            sum_sq: 0.0,
        }
    }

    pub(super) fn record(&mut self, d: Duration) {
        self.record_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    pub(super) fn record_ns(&mut self, ns: u64) {
        // At least 1: the histogram's lowest value. `record` grows the histogram; only past
        // its largest possible range does a value saturate.
        let ns_or_1 = ns.max(1);
        if self.hist.record(ns_or_1).is_err() {
            self.hist.saturating_record(ns_or_1);
        }
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
        let x = ns as f64;
        self.sum += x;
        self.sum_sq += x * x;
    }

    pub(super) fn len(&self) -> u64 {
        self.hist.len()
    }

    /// A percentile (0–100) in milliseconds: the histogram's bucket, kept within the exact
    /// min and max (a bucket's edge may lie past them, so one sample had p50 > max).
    pub(super) fn percentile_ms(&self, p: f64) -> f64 {
        let v = self.hist.value_at_percentile(p);
        ms(if self.min <= self.max {
            v.clamp(self.min, self.max)
        } else {
            v
        })
    }

    /// The summary, or `None` without a sample.
    pub(super) fn times(&self) -> Option<Times> {
        let n = self.hist.len();
        if n == 0 {
            return None;
        }
        // Within [min, max] whatever the rounding of the sums (one sample: all equal).
        let mean = (self.sum / n as f64).clamp(self.min as f64, self.max as f64);
        let var = (self.sum_sq / n as f64 - mean * mean).max(0.0);
        Some(Times {
            min: ms(self.min),
            avg: mean / 1e6,
            max: ms(self.max),
            mdev: var.sqrt() / 1e6,
            p50: self.percentile_ms(50.0),
            p90: self.percentile_ms(90.0),
            p99: self.percentile_ms(99.0),
            p99_9: self.percentile_ms(99.9),
        })
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let mut l = Latencies::new();
        assert!(l.times().is_none());
        for ms in [1u64, 2, 3, 4] {
            l.record(Duration::from_millis(ms));
        }
        let t = l.times().unwrap();
        assert!((t.avg - 2.5).abs() < 1e-9);
        assert!((t.min - 1.0).abs() < 0.01 && (t.max - 4.0).abs() < 0.01);
        assert!((t.mdev - 1.118).abs() < 0.001);
        assert!((t.p50 - 2.0).abs() < 0.01);
        assert_eq!(l.len(), 4);
    }
}
