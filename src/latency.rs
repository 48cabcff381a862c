//! Round-trip latencies: one HdrHistogram per run or interval, in microseconds (lowest 1, 3
//! significant digits, as wrk2 records and HdrHistogram's interval logs carry them), beside
//! the exact min, max and sums that the mean and ping's mdev need.
//!
//! The measure modes record into it; their `--json` summary, `--hdr-log` lines and
//! percentile spectrum, and a report merging many runs, all read the same histogram, so the
//! same samples give the same percentiles everywhere. Percentiles follow HdrHistogram's own
//! rule (Java, C, Python: the value at which the count reaches `p/100 × total`, rounded half
//! up), not the Rust crate's `value_at_quantile` (which rounds up): a figure of ours then
//! equals what HdrHistogram's log processor says about our `--hdr-log`.

use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use color_eyre::eyre::{self, WrapErr};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};

/// Significant digits of every histogram: 0.1% resolution, as tcpkali's and wrk2's.
const SIGFIG: u8 = 3;

/// Latencies recorded in microseconds, with the exact extremes and sums in nanoseconds when
/// the samples were recorded here (not when decoded or merged from encoded histograms).
#[derive(Clone)]
pub struct Latencies {
    hist: Histogram<u64>,
    exact: Option<Exact>,
}

/// What the histogram rounds, kept for the samples recorded here: the summary's min and max
/// are then the fastest and slowest replies as their own lines print them.
#[derive(Clone, Copy)]
struct Exact {
    min_ns: u64,
    max_ns: u64,
    sum: f64,
    sum_sq: f64,
}

impl Exact {
    const EMPTY: Exact = Exact {
        min_ns: u64::MAX,
        max_ns: 0,
        sum: 0.0,
        sum_sq: 0.0,
    };

    fn add(&mut self, other: &Exact) {
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
    }
}

/// A summary in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Times {
    /// The fastest.
    pub min: f64,
    /// The mean.
    pub avg: f64,
    /// The slowest.
    pub max: f64,
    /// The standard deviation (ping's mdev).
    pub mdev: f64,
    /// The median.
    pub p50: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The 99.9th percentile.
    pub p99_9: f64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl Latencies {
    /// An empty set.
    pub fn new() -> Latencies {
        // Auto-resizing, so it only takes the memory the largest value needs; `new` with 3
        // digits cannot fail.
        let hist = Histogram::new(SIGFIG).unwrap_or_else(|_| unreachable!("3 significant digits"));
        Latencies {
            hist,
            exact: Some(Exact::EMPTY),
        }
    }

    /// Records one round trip.
    pub fn record(&mut self, d: Duration) {
        self.record_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records one round trip of `ns` nanoseconds: whole microseconds in the histogram (at
    /// least 1, its lowest value), the nanoseconds in the exact figures.
    pub fn record_ns(&mut self, ns: u64) {
        let us = (ns / 1000).max(1);
        // `record` grows the histogram; only past its largest possible range does it fail.
        if self.hist.record(us).is_err() {
            self.hist.saturating_record(us);
        }
        if let Some(e) = &mut self.exact {
            e.min_ns = e.min_ns.min(ns);
            e.max_ns = e.max_ns.max(ns);
            let x = ns as f64;
            e.sum += x;
            e.sum_sq += x * x;
        }
    }

    /// The number of samples.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// No sample.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The histogram, in microseconds.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// Empties it, keeping its memory: the interval series reuse one set per interval.
    pub fn clear(&mut self) {
        self.hist.reset();
        self.exact = Some(Exact::EMPTY);
    }

    /// Adds `other`'s samples. The exact figures survive only if both sides have them.
    pub fn add(&mut self, other: &Latencies) -> eyre::Result<()> {
        self.hist
            .add(&other.hist)
            .map_err(|err| eyre::eyre!("cannot merge latency histograms: {err:?}"))?;
        self.exact = match (&mut self.exact, &other.exact) {
            (Some(a), Some(b)) => {
                a.add(b);
                Some(*a)
            }
            _ => None,
        };
        Ok(())
    }

    /// The largest sample in microseconds as the histogram holds it (its bucket's top), 0
    /// without samples: an interval log line's `Interval_Max` before scaling.
    pub fn max_us(&self) -> u64 {
        if self.hist.is_empty() {
            0
        } else {
            self.hist.highest_equivalent(self.hist.max())
        }
    }

    /// The value in microseconds at percentile `p` (0–100), by HdrHistogram's rule: the
    /// top of the bucket where the running count reaches `p/100 × total` rounded half up
    /// (at least 1); 0 without samples.
    pub fn value_at_percentile_us(&self, p: f64) -> u64 {
        let total = self.hist.len();
        // p × total first, as Python's hdrh does: 99 × 150 / 100 is 148.5 and rounds to 149,
        // where 0.99 × 150 is just below it (HdrHistogram's C and Java then say 148).
        let target = ((p.clamp(0.0, 100.0) * total as f64 / 100.0 + 0.5) as u64).max(1);
        let mut seen = 0;
        for v in self.hist.iter_recorded() {
            seen += v.count_at_value();
            if seen >= target {
                return self.hist.highest_equivalent(v.value_iterated_to());
            }
        }
        0
    }

    /// A percentile (0–100) in milliseconds: the histogram's, kept within the exact min and
    /// max when they are known (a bucket's top may lie past the slowest reply, and one
    /// sample's p50 then read above its max).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let ms = self.value_at_percentile_us(p) as f64 / 1e3;
        match self.exact {
            Some(e) if e.min_ns <= e.max_ns => {
                ms.clamp(e.min_ns as f64 / 1e6, e.max_ns as f64 / 1e6)
            }
            _ => ms,
        }
    }

    /// The summary, or `None` without a sample. Min, mean, max and mdev are exact when the
    /// samples were recorded here, else the histogram's (its lowest and highest equivalents,
    /// its mean and standard deviation).
    pub fn times(&self) -> Option<Times> {
        let n = self.hist.len();
        if n == 0 {
            return None;
        }
        let (min, avg, max, mdev) = match self.exact {
            Some(e) if e.min_ns <= e.max_ns => {
                let (min, max) = (e.min_ns as f64, e.max_ns as f64);
                // Within [min, max] whatever the rounding of the sums (one sample: all equal).
                let mean = (e.sum / n as f64).clamp(min, max);
                let var = (e.sum_sq / n as f64 - mean * mean).max(0.0);
                (min / 1e6, mean / 1e6, max / 1e6, var.sqrt() / 1e6)
            }
            _ => (
                self.hist.lowest_equivalent(self.hist.min()) as f64 / 1e3,
                self.hist.mean() / 1e3,
                self.max_us() as f64 / 1e3,
                self.hist.stdev() / 1e3,
            ),
        };
        Some(Times {
            min,
            avg,
            max,
            mdev,
            p50: self.percentile_ms(50.0),
            p90: self.percentile_ms(90.0),
            p99: self.percentile_ms(99.0),
            p99_9: self.percentile_ms(99.9),
        })
    }

    /// The histogram as an HdrHistogram interval log line carries it: V2 format, deflated,
    /// base64 (`HISTFAAA…`).
    pub fn encode(&self) -> String {
        let mut bytes = Vec::new();
        // Writing to a Vec cannot fail, and u64 counts of a real run stay below i64::MAX.
        V2DeflateSerializer::new()
            .serialize(&self.hist, &mut bytes)
            .unwrap_or_else(|err| unreachable!("serializing a histogram into memory: {err}"));
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// A histogram [`encode`](Self::encode)d here or by any HdrHistogram implementation
    /// (compressed V2), in microseconds; without the exact figures.
    pub fn decode(text: &str) -> eyre::Result<Latencies> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .wrap_err("not an encoded histogram: not base64")?;
        let mut hist: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|err| eyre::eyre!("not an encoded histogram: {err}"))?;
        // So that merging larger values into it grows it instead of failing.
        hist.auto(true);
        Ok(Latencies { hist, exact: None })
    }

    /// The percentile spectrum exactly as wrk2 prints its "Detailed Percentile spectrum"
    /// (HdrHistogram C's `hdr_percentiles_print`, `.hgrm`: values in milliseconds, 5 ticks per
    /// half distance, `inf` in the last row's 1/(1-Percentile)), which HdrHistogram's plotter
    /// and the scripts written for wrk2's output read.
    pub fn spectrum(&self) -> String {
        let mut out = format!(
            "{:>12} {:>12} {:>12} {:>12}\n\n",
            "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
        );
        let mut total = 0;
        if !self.hist.is_empty() {
            for v in self.hist.iter_quantiles(5) {
                total += v.count_since_last_iteration();
                let value = self.hist.highest_equivalent(v.value_iterated_to()) as f64 / 1e3;
                let q = v.quantile_iterated_to();
                // C's printf of 1/(1-1.0) says `inf`, which wrk2's readers expect to find.
                let inverse = if q < 1.0 {
                    format!("{:12.2}", 1.0 / (1.0 - q))
                } else {
                    format!("{:>12}", "inf")
                };
                // Writing to a String cannot fail.
                let _ = writeln!(out, "{value:12.3} {q:12.6} {total:12} {inverse}");
            }
        }
        let (mean, stdev, max) = if self.hist.is_empty() {
            (0.0, 0.0, 0.0)
        } else {
            (
                self.hist.mean() / 1e3,
                self.hist.stdev() / 1e3,
                self.max_us() as f64 / 1e3,
            )
        };
        let _ = writeln!(
            out,
            "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]"
        );
        let _ = writeln!(
            out,
            "#[Max     = {max:12.3}, Total count    = {:12}]",
            self.hist.len()
        );
        let _ = writeln!(
            out,
            "#[Buckets = {:12}, SubBuckets     = {:12}]",
            self.hist.buckets(),
            // HdrHistogram's sub-bucket count: 2 × 10^digits up to a power of two.
            (2 * 10u64.pow(u32::from(self.hist.sigfig()))).next_power_of_two()
        );
        out
    }
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

    fn counts(l: &Latencies) -> Vec<(u64, u64)> {
        let h = l.histogram();
        h.iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }

    #[test]
    fn encode_decode_round_trip() {
        let mut l = Latencies::new();
        for us in [
            1u64,
            7,
            250,
            1234,
            2047,
            2048,
            99_999,
            5_000_000,
            3_600_000_000,
        ] {
            l.record(Duration::from_micros(us));
        }
        let text = l.encode();
        assert!(text.starts_with("HISTFAAA"), "{text}");
        let back = Latencies::decode(&text).unwrap();
        assert_eq!(counts(&back), counts(&l));
        assert_eq!(back.len(), 9);
        // Decoded, only the histogram's figures remain: its max is the bucket's top.
        let (t, u) = (l.times().unwrap(), back.times().unwrap());
        assert_eq!(t.p50, u.p50);
        assert!(u.max >= t.max && u.max <= t.max * 1.001, "{u:?} {t:?}");
        assert!(Latencies::decode("not base64!").is_err());
        assert!(Latencies::decode("aGVsbG8gd29ybGQ=").is_err());
    }

    /// Made by Python's `hdrh` (HdrHistogram(1, 3600e6, 3), values recorded with counts
    /// 1×3, 250×10, 1234×5, 2047, 2048, 99999×2, 5000000): it reports 23 samples, p50 250,
    /// p99 and max 5001215, min 1.
    const FROM_PYTHON: &str =
        "HISTFAAAADJ4nJNpmSzMwMAgxAABzFCaEURcm7yEwf4DVIDtPbPIWn6u6zxMTBsjWC5GMQEA0o0JjQ==";

    #[test]
    fn decodes_what_python_hdrh_encodes() {
        let l = Latencies::decode(FROM_PYTHON).unwrap();
        assert_eq!(
            counts(&l),
            [
                (1, 3),
                (250, 10),
                (1234, 5),
                (2047, 1),
                (2049, 1),
                (100_031, 2),
                (5_001_215, 1)
            ]
        );
        assert_eq!(l.value_at_percentile_us(50.0), 250);
        assert_eq!(l.value_at_percentile_us(99.0), 5_001_215);
        assert_eq!(l.max_us(), 5_001_215);
        let t = l.times().unwrap();
        assert_eq!((t.min, t.max, t.p50), (0.001, 5001.215, 0.25));
    }

    #[test]
    fn merged_percentiles_are_the_histogram_of_all_samples() {
        // Three runs whose p99s average to what none of them, nor all together, saw.
        let (mut a, mut b, mut c, mut all) = (
            Latencies::new(),
            Latencies::new(),
            Latencies::new(),
            Latencies::new(),
        );
        for i in 0..100u64 {
            for (l, us) in [(&mut a, 100 + i), (&mut b, 200 + i), (&mut c, 10_000 + i)] {
                l.record(Duration::from_micros(us));
                all.record(Duration::from_micros(us));
            }
        }
        let mut merged = Latencies::decode(&a.encode()).unwrap();
        merged
            .add(&Latencies::decode(&b.encode()).unwrap())
            .unwrap();
        merged
            .add(&Latencies::decode(&c.encode()).unwrap())
            .unwrap();
        for p in [50.0, 90.0, 99.0, 99.9] {
            assert_eq!(
                merged.value_at_percentile_us(p),
                all.value_at_percentile_us(p)
            );
        }
        // Exact figures survive a merge of recorded sets, not of decoded ones.
        let mut exact = a.clone();
        exact.add(&c).unwrap();
        assert_eq!(exact.times().unwrap().max, 10.099);
        assert_eq!(merged.times().unwrap().max, all.max_us() as f64 / 1e3);
    }

    #[test]
    fn percentiles_round_half_up_as_hdrhistogram() {
        let mut l = Latencies::new();
        for us in 1..=150u64 {
            l.record(Duration::from_micros(us));
        }
        // 99 × 150 / 100 = 148.5, rounded half up: the 149th value (0.99 × 150 in floating
        // point is just below 148.5, and HdrHistogram's C and Java take the 148th).
        assert_eq!(l.value_at_percentile_us(99.0), 149);
        let mut two = Latencies::new();
        for us in [10u64, 20, 30, 40, 50, 60, 70] {
            two.record(Duration::from_micros(us));
        }
        // 20 × 7 / 100 = 1.4: the 1st value, where ceil would give the 2nd.
        assert_eq!(two.value_at_percentile_us(20.0), 10);
    }

    #[test]
    fn spectrum_is_wrk2s_hgrm() {
        let mut l = Latencies::new();
        for us in 1..=1000u64 {
            l.record(Duration::from_micros(us));
        }
        let text = l.spectrum();
        let mut lines = text.lines();
        // wrk2's printf widths: `%12s %12s %12s %12s`, `%12.3f %12f %12d %12.2f`.
        assert_eq!(
            lines.next(),
            Some("       Value   Percentile   TotalCount 1/(1-Percentile)")
        );
        assert_eq!(lines.next(), Some(""));
        assert_eq!(
            lines.clone().next(),
            Some("       0.001     0.000000            1         1.00")
        );
        let last_row = lines.clone().take_while(|l| !l.starts_with('#')).last();
        assert_eq!(
            last_row,
            Some("       1.000     1.000000         1000          inf")
        );
        let rows: Vec<Vec<f64>> = lines
            .clone()
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().map(|f| f.parse().unwrap()).collect())
            .collect();
        assert!(
            rows.windows(2)
                .all(|w| w[0][1] <= w[1][1] && w[0][2] <= w[1][2])
        );
        let last = rows.last().unwrap();
        assert_eq!((last[0], last[1], last[2]), (1.0, 1.0, 1000.0));
        assert!(text.contains("#[Max     =        1.000, Total count    =         1000]"));
        assert!(text.contains("#[Buckets = "), "{text}");
        assert!(text.contains("SubBuckets     =         2048]"), "{text}");
    }
}
