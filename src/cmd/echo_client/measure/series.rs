//! The interval series of the measure modes, as iperf3 `-i` and `--json-stream` give them: a
//! run cut into intervals of `--report-every` (1 s by default), each summed up as a line on
//! stderr, a JSON object on stdout (`--json-lines`) and an HdrHistogram interval log line
//! (`--hdr-log`); and `--warmup`, a first stretch run but left out of every figure (its
//! intervals are shown marked, as iperf3 `-O` marks its omitted ones, and kept out of the log).
//!
//! An event (a reply, a loss, an error) belongs to the interval in which it became known:
//! [`Clock::index`] numbers them from the end of the warmup (warmup intervals are negative,
//! counted back from it), and [`Open`] sums each until it is closed and written by
//! [`Outputs::interval`]. The run's start is the time 0 of the lines, the JSON objects and
//! the log (its `BaseTime`).

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use color_eyre::eyre;
use serde::Serialize;
use tokio::time::Instant;

use super::json::{Counts, print};
use crate::cli::measure::Percentiles;
use crate::latency::{Latencies, Times};
use crate::ui::Ui;
use crate::ui::quote::quote;

/// What the command line asked of the series.
#[derive(Debug, Clone, Default)]
pub(super) struct Settings {
    /// `--report-every`: the interval, and a line per interval on stderr.
    pub every: Option<Duration>,
    /// `--json-lines`: a JSON object per interval on stdout instead of the lines.
    pub json_lines: bool,
    /// `--warmup`.
    pub warmup: Duration,
    /// `--hdr-log FILE`.
    pub hdr_log: Option<PathBuf>,
    /// `--percentiles FILE|-`.
    pub percentiles: Option<Percentiles>,
}

impl Settings {
    /// The interval when none is given: 1 s, as iperf3's and HdrHistogram's logs.
    const DEFAULT_EVERY: Duration = Duration::from_secs(1);

    /// Whether the run is cut into intervals at all: not without an option that needs it, so
    /// a plain run does no work for them.
    pub(super) fn active(&self) -> bool {
        self.every.is_some() || self.json_lines || self.hdr_log.is_some() || !self.warmup.is_zero()
    }

    /// The interval's length.
    pub(super) fn every(&self) -> Duration {
        self.every.unwrap_or(Self::DEFAULT_EVERY)
    }
}

/// Numbers the intervals of a run started at `start`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    /// The run's start: time 0 of every figure written.
    pub start: Instant,
    warmup: Duration,
    every: Duration,
    /// The last interval, into which replies after the run's end go too (those in flight at
    /// its end), so a run of 1 s at 200 ms has 5 intervals, not a sixth of a millisecond.
    last: i64,
}

impl Clock {
    /// The intervals of a run of `settings` from `start`, measured for `duration` after the
    /// warmup (`None`: until it ends).
    pub(super) fn new(settings: &Settings, start: Instant, duration: Option<Duration>) -> Clock {
        let every = settings.every();
        let last = duration.map_or(i64::MAX, |d| {
            let n = d.as_nanos().div_ceil(every.as_nanos()).max(1);
            i64::try_from(n - 1).unwrap_or(i64::MAX)
        });
        Clock {
            start,
            warmup: settings.warmup,
            every,
            last,
        }
    }

    /// Whether `k` is the last interval, which takes the replies in flight at the run's end.
    pub(super) fn is_last(&self, k: i64) -> bool {
        k >= self.last
    }

    /// The end of the warmup: the measured part starts here.
    pub(super) fn measured_from(&self) -> Instant {
        self.start + self.warmup
    }

    /// The interval an event at `t` belongs to: 0, 1, ... from the end of the warmup, -1, -2,
    /// ... back from it during the warmup.
    pub(super) fn index(&self, t: Instant) -> i64 {
        let from = self.measured_from();
        let every = self.every.as_nanos();
        if t >= from {
            let k = (t - from).as_nanos() / every;
            i64::try_from(k).unwrap_or(i64::MAX).min(self.last)
        } else {
            let k = (from - t).as_nanos().div_ceil(every);
            -i64::try_from(k).unwrap_or(i64::MAX)
        }
    }

    /// When interval `k` may be closed: at its end, with `grace` for the replies known then but
    /// not yet handed in (a connection hands in at the first reply after the boundary).
    pub(super) fn close_at(&self, k: i64) -> Instant {
        let end = if k + 1 >= 0 {
            self.measured_from() + self.offset(k + 1)
        } else {
            self.measured_from() - self.offset(-(k + 1))
        };
        end + self.grace()
    }

    fn grace(&self) -> Duration {
        (self.every / 4).min(Duration::from_millis(100))
    }

    /// Where interval `k` starts and ends, in seconds from the run's start; the last ends at
    /// `end`, the run's, at most (a run cut short, or the one at the end of the duration).
    pub(super) fn span(&self, k: i64, end: Duration) -> (f64, f64) {
        let edge = |k: i64| {
            let at = if k >= 0 {
                self.warmup + self.offset(k)
            } else {
                self.warmup.saturating_sub(self.offset(-k))
            };
            at.as_secs_f64()
        };
        let finish = if k >= self.last || edge(k + 1) > end.as_secs_f64() {
            end.as_secs_f64()
        } else {
            edge(k + 1)
        };
        (edge(k), finish.max(edge(k)))
    }

    fn offset(&self, k: i64) -> Duration {
        self.every
            .saturating_mul(u32::try_from(k.max(0)).unwrap_or(u32::MAX))
    }
}

/// One interval's figures.
#[derive(Clone, Default)]
pub(super) struct Interval {
    /// Round trips (from the intended send time with `--rate`).
    pub latencies: Latencies,
    /// With `--rate`: from the actual send.
    pub uncorrected: Option<Latencies>,
    pub counts: Counts,
    pub errors: BTreeMap<&'static str, u64>,
    /// Probe mode: replies that came after their probe was declared lost (counted in
    /// `received` here, and in `lost` where the loss was declared).
    pub late: u64,
    /// Probe mode: second replies (UDP).
    pub duplicates: u64,
}

impl Interval {
    fn new(rate: bool) -> Interval {
        Interval {
            uncorrected: rate.then(Latencies::new),
            ..Interval::default()
        }
    }
}

/// The intervals not yet closed, each summing what is handed in for it.
pub(super) struct Open {
    /// The first interval not yet closed; `slots[i]` is interval `next + i`.
    next: i64,
    slots: VecDeque<Interval>,
    rate: bool,
}

impl Open {
    /// None closed yet, `first` the first interval; `rate`: keep the uncorrected latencies
    /// too.
    pub(super) fn new(first: i64, rate: bool) -> Open {
        Open {
            next: first,
            slots: VecDeque::new(),
            rate,
        }
    }

    /// Interval `k` to add to, or `None` for a warmup interval handed in after the warmup's
    /// lines were written (out of every figure anyway). One already closed otherwise gives
    /// the first still open, so every reply is counted in some interval and the intervals
    /// add up to the summary.
    pub(super) fn slot(&mut self, k: i64) -> Option<&mut Interval> {
        let k = if k < self.next {
            if k < 0 && self.next >= 0 {
                return None;
            }
            self.next
        } else {
            k
        };
        let i = usize::try_from(k - self.next).ok()?;
        while self.slots.len() <= i {
            self.slots.push_back(Interval::new(self.rate));
        }
        self.slots.get_mut(i)
    }

    /// Takes the intervals up to `k`, in order, each with its number, for writing. The empty
    /// ones between the first and `k` are included: an interval with nothing is news too.
    pub(super) fn close_through(&mut self, k: i64) -> Vec<(i64, Interval)> {
        let mut closed = Vec::new();
        while self.next <= k {
            let interval = self
                .slots
                .pop_front()
                .unwrap_or_else(|| Interval::new(self.rate));
            closed.push((self.next, interval));
            self.next += 1;
        }
        closed
    }

    /// The first interval not yet closed.
    pub(super) fn next(&self) -> i64 {
        self.next
    }
}

/// An interval's times as its JSON object gives them.
#[derive(Debug, Serialize)]
struct Spot {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl From<Times> for Spot {
    fn from(t: Times) -> Spot {
        Spot {
            p50: t.p50,
            p90: t.p90,
            p99: t.p99,
            max: t.max,
        }
    }
}

/// An interval as `--json-lines` prints it.
#[derive(Debug, Serialize)]
struct IntervalJson<'a> {
    r#type: &'static str,
    start_s: f64,
    end_s: f64,
    warmup: bool,
    #[serde(flatten)]
    counts: Counts,
    msgs_per_s: f64,
    mb_per_s: f64,
    rtt_ms: Option<Spot>,
    rtt_uncorrected_ms: Option<Spot>,
    errors: &'a BTreeMap<&'static str, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    late: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicates: Option<u64>,
}

/// Where the series goes: the files are opened before the run, so a bad path costs no run.
pub(super) struct Outputs {
    lines: bool,
    json_lines: bool,
    hdr_log: Option<(File, PathBuf)>,
    /// Why the log stopped taking lines mid-run: the run went on, and fails at its end.
    hdr_log_failed: Option<eyre::Report>,
    percentiles: Option<Percentiles>,
    percentiles_file: Option<File>,
    /// Bytes per message, for the MB/s.
    size: usize,
    /// Probe mode: its lines say what was lost, late and duplicated, not errors by kind.
    probe: bool,
}

/// Creates (or empties) `path` for `option`'s output, or says why not, naming both.
fn create(option: &str, path: &Path) -> eyre::Result<File> {
    File::create(path).map_err(|err| {
        eyre::eyre!(
            "{option} {}: cannot create it: {}",
            quote(path.as_os_str()),
            crate::report::io_reason(&err)
        )
    })
}

/// The command line refuses the same name for both files; this catches one file under two
/// names (`run.log` and `./run.log`, a link), whose two writers would overwrite each other.
/// Devices such as /dev/null are no concern.
fn refuse_one_file_for_two(
    log: &File,
    log_path: &Path,
    hgrm: &File,
    path: &Path,
) -> eyre::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let (Ok(a), Ok(b)) = (log.metadata(), hgrm.metadata()) else {
        return Ok(());
    };
    if a.is_file() && a.dev() == b.dev() && a.ino() == b.ino() {
        eyre::bail!(
            "--hdr-log {} and --percentiles {} are the same file: give each its own (e.g. \
             run.hlog and run.hgrm)",
            quote(log_path.as_os_str()),
            quote(path.as_os_str())
        );
    }
    Ok(())
}

impl Outputs {
    /// Opens the files `settings` names, for messages of `size` bytes; `probe`: for probe
    /// mode.
    pub(super) fn open(settings: &Settings, size: usize, probe: bool) -> eyre::Result<Outputs> {
        let hdr_log = match &settings.hdr_log {
            Some(path) => Some((create("--hdr-log", path)?, path.clone())),
            None => None,
        };
        let percentiles_file = match &settings.percentiles {
            Some(Percentiles::File(path)) => {
                let file = create("--percentiles", path)?;
                if let Some((log, log_path)) = &hdr_log {
                    refuse_one_file_for_two(log, log_path, &file, path)?;
                }
                Some(file)
            }
            _ => None,
        };
        Ok(Outputs {
            lines: settings.every.is_some() && !settings.json_lines,
            json_lines: settings.json_lines,
            hdr_log,
            hdr_log_failed: None,
            percentiles: settings.percentiles.clone(),
            percentiles_file,
            size,
            probe,
        })
    }

    /// Starts the log, the run having started at `wall` (`server` named in a comment).
    pub(super) fn begin(&mut self, wall: SystemTime, server: &str) -> eyre::Result<()> {
        let Some((file, path)) = &mut self.hdr_log else {
            return Ok(());
        };
        let secs = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let date = humantime::format_rfc3339_millis(wall);
        let header = format!(
            "#[asyncio-tool {} echo-client to {}: round trips in microseconds, Interval_Max in \
             milliseconds]\n\
             #[Histogram log format version 1.3]\n\
             #[StartTime: {secs:.3} (seconds since epoch), {date}]\n\
             #[BaseTime: {secs:.3} (seconds since epoch)]\n\
             \"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
            env!("CARGO_PKG_VERSION"),
            server.replace(['\n', '\r', ']'], "?"),
        );
        write_to(file, path, "--hdr-log", &header)
    }

    /// Writes interval `k`, spanning `span` seconds from the run's start.
    pub(super) fn interval(
        &mut self,
        (start, end): (f64, f64),
        k: i64,
        interval: &Interval,
        ui: &Ui,
    ) -> eyre::Result<()> {
        let warmup = k < 0;
        let secs = (end - start).max(1e-9);
        let msgs_per_s = interval.counts.received as f64 / secs;
        let mb_per_s = msgs_per_s * self.size as f64 / 1e6;
        if self.lines {
            let tail = if self.probe {
                probe_tail(interval)
            } else {
                format!("errors {}", interval.errors.values().sum::<u64>())
            };
            let rates = (msgs_per_s, mb_per_s);
            ui.info(&line((start, end), interval, rates, &tail, warmup));
        }
        if self.json_lines {
            let json = IntervalJson {
                r#type: "interval",
                start_s: start,
                end_s: end,
                warmup,
                counts: interval.counts,
                msgs_per_s,
                mb_per_s,
                rtt_ms: interval.latencies.times().map(Spot::from),
                rtt_uncorrected_ms: interval
                    .uncorrected
                    .as_ref()
                    .and_then(|l| l.times().map(Spot::from)),
                errors: &interval.errors,
                late: self.probe.then_some(interval.late),
                duplicates: self.probe.then_some(interval.duplicates),
            };
            let mut text = serde_json::to_string(&json)?;
            text.push('\n');
            print(&text)?;
        }
        if !warmup {
            self.log((start, end), &interval.latencies, ui);
        }
        Ok(())
    }

    /// Writes an interval's log line. A log that fails mid-run (a full disk, its reader gone)
    /// is said at once and closed, but the run goes on: its summary is worth more than the
    /// log's last lines, and [`Outputs::finish`] fails the run for the loss.
    fn log(&mut self, (start, end): (f64, f64), l: &Latencies, ui: &Ui) {
        let Some((file, path)) = &mut self.hdr_log else {
            return;
        };
        let text = format!(
            "{start:.3},{:.3},{:.3},{}\n",
            end - start,
            l.max_us() as f64 / 1e3,
            l.encode()
        );
        if let Err(err) = write_to(file, path, "--hdr-log", &text) {
            ui.warn(&format!("{err:#}; the run goes on without it"));
            self.hdr_log = None;
            self.hdr_log_failed = Some(err);
        }
    }

    /// Writes the run's percentile spectrum to `--percentiles`' file, or after the text report
    /// on stdout (`-`), and fails if the log lost lines: call after the report.
    pub(super) fn finish(&mut self, latencies: &Latencies) -> eyre::Result<()> {
        match (&self.percentiles, &mut self.percentiles_file) {
            (Some(Percentiles::File(path)), Some(file)) => {
                write_to(file, path, "--percentiles", &latencies.spectrum())?;
            }
            (Some(Percentiles::Stdout), _) => print(&latencies.spectrum())?,
            _ => {}
        }
        self.hdr_log_failed.take().map_or(Ok(()), Err)
    }
}

/// Writes all of `text` to `file`, or says which file could not take it and why.
fn write_to(file: &mut File, path: &Path, option: &str, text: &str) -> eyre::Result<()> {
    file.write_all(text.as_bytes()).map_err(|err| {
        eyre::eyre!(
            "{option} {}: cannot write: {}",
            quote(path.as_os_str()),
            crate::report::io_reason(&err)
        )
    })
}

/// An interval's line on stderr, as iperf3 -i prints one: `  1.00-2.00 s  41234 msgs/s  2.64
/// MB/s  p50 0.081  p99 0.240  max 1.203 ms  errors 0` (`tail` the last part), marked
/// `(warmup)` during the warmup.
fn line(
    (start, end): (f64, f64),
    i: &Interval,
    (msgs_per_s, mb_per_s): (f64, f64),
    tail: &str,
    warmup: bool,
) -> String {
    let times = match i.latencies.times() {
        Some(t) => format!("p50 {:.3}  p99 {:.3}  max {:.3} ms", t.p50, t.p99, t.max),
        None => "no reply".to_owned(),
    };
    format!(
        "{start:6.2}-{end:<6.2} s  {msgs_per_s:.0} msgs/s  {mb_per_s:.2} MB/s  {times}  {tail}{}",
        if warmup { "  (warmup)" } else { "" }
    )
}

/// A probe interval's line ends with its losses: `lost 2`, and `late 1`, `+1 duplicates`
/// when there were some, as ping's summary has them.
fn probe_tail(i: &Interval) -> String {
    let mut tail = format!("lost {}", i.counts.lost);
    if i.late > 0 {
        tail.push_str(&format!("  late {}", i.late));
    }
    if i.duplicates > 0 {
        tail.push_str(&format!("  +{} duplicates", i.duplicates));
    }
    tail
}

/// A series recorded by one task (probe mode): each event first writes the intervals that
/// ended before it, so no timer is needed (the probe has an event at least every
/// `--interval` while it sends).
pub(super) struct Recorder {
    clock: Clock,
    open: Open,
}

impl Recorder {
    /// The series of a run of `settings` started at `start`, whose measured part lasts
    /// about `duration` (`None`: unknown), the events after it in its last interval.
    pub(super) fn new(settings: &Settings, start: Instant, duration: Option<Duration>) -> Recorder {
        let clock = Clock::new(settings, start, duration);
        Recorder {
            open: Open::new(clock.index(start), false),
            clock,
        }
    }

    /// Whether an event at `now` is in the warmup.
    pub(super) fn in_warmup(&self, now: Instant) -> bool {
        now < self.clock.measured_from()
    }

    /// The interval to count an event at `now` in, after writing those before it;
    /// `warmup`: the event concerns a probe of the warmup, which stays in the warmup's
    /// intervals (`None` once they are written).
    pub(super) fn at(
        &mut self,
        now: Instant,
        warmup: bool,
        outputs: &mut Outputs,
        ui: &Ui,
    ) -> eyre::Result<Option<&mut Interval>> {
        let k = self.clock.index(now);
        self.write_through(k - 1, now, outputs, ui)?;
        Ok(self.open.slot(if warmup { k.min(-1) } else { k }))
    }

    /// Writes every interval up to the one of `now`, the last ending there: the run is over.
    pub(super) fn finish(
        &mut self,
        now: Instant,
        outputs: &mut Outputs,
        ui: &Ui,
    ) -> eyre::Result<()> {
        let k = self.clock.index(now).max(self.open.next());
        self.write_through(k, now, outputs, ui)
    }

    fn write_through(
        &mut self,
        k: i64,
        now: Instant,
        outputs: &mut Outputs,
        ui: &Ui,
    ) -> eyre::Result<()> {
        if k < self.open.next() {
            return Ok(());
        }
        let elapsed = now - self.clock.start;
        for (j, interval) in self.open.close_through(k) {
            outputs.interval(self.clock.span(j, elapsed), j, &interval, ui)?;
        }
        Ok(())
    }
}

/// Probe mode's series: its intervals, its outputs, and which probes were the warmup's (a
/// probe sent during the warmup is left out of the summary, whenever its reply comes; its
/// events stay in the warmup's intervals).
pub(super) struct ProbeSeries {
    recorder: Option<Recorder>,
    /// Where the intervals and the spectrum go.
    pub outputs: Outputs,
    /// The first `warm` probes were sent during the warmup.
    warm: u64,
    warmup: Duration,
}

impl ProbeSeries {
    /// The outputs of `settings`, opened; the intervals start with [`ProbeSeries::start`].
    pub(super) fn open(settings: &Settings, size: usize) -> eyre::Result<ProbeSeries> {
        Ok(ProbeSeries {
            recorder: None,
            outputs: Outputs::open(settings, size, true)?,
            warm: 0,
            warmup: settings.warmup,
        })
    }

    /// The run starts at `start` (`server` named in the log), sending `count` probes (0: no
    /// end) every `interval` after the warmup: the replies to the last come in the interval
    /// in which it was sent, not in one of a few microseconds after it.
    pub(super) fn start(
        &mut self,
        (settings, count, interval): (&Settings, u64, Duration),
        start: Instant,
        server: &str,
    ) -> eyre::Result<()> {
        if settings.active() {
            let sending = (count > 0)
                .then(|| interval.saturating_mul(u32::try_from(count - 1).unwrap_or(u32::MAX)));
            self.recorder = Some(Recorder::new(settings, start, sending));
        }
        self.outputs.begin(SystemTime::now(), server)
    }

    /// How many probes were sent during the warmup: `--count` counts those after it.
    pub(super) fn warm_probes(&self) -> u64 {
        self.warm
    }

    /// How long the warmup lasts.
    pub(super) fn warmup(&self) -> Duration {
        self.warmup
    }

    /// The interval to count an event about a probe in, or none without a series.
    fn slot(&mut self, warm: bool, ui: &Ui) -> eyre::Result<Option<&mut Interval>> {
        match &mut self.recorder {
            Some(r) => r.at(Instant::now(), warm, &mut self.outputs, ui),
            None => Ok(None),
        }
    }

    /// A probe is sent now; true if it is the warmup's.
    pub(super) fn sent(&mut self, ui: &Ui) -> eyre::Result<bool> {
        let now = Instant::now();
        let warm = self.recorder.as_ref().is_some_and(|r| r.in_warmup(now));
        self.warm += u64::from(warm);
        if let Some(i) = self.slot(warm, ui)? {
            i.counts.sent += 1;
        }
        Ok(warm)
    }

    /// Probe `seq`'s reply came (`rtt` when known; `late` after its loss was declared);
    /// true if the probe is the warmup's.
    pub(super) fn reply(
        &mut self,
        seq: u64,
        rtt: Option<Duration>,
        late: bool,
        intact: bool,
        ui: &Ui,
    ) -> eyre::Result<bool> {
        let warm = seq <= self.warm;
        if let Some(i) = self.slot(warm, ui)? {
            i.counts.received += 1;
            i.counts.mismatched += u64::from(!intact);
            i.late += u64::from(late);
            if let Some(rtt) = rtt {
                i.latencies.record(rtt);
            }
        }
        Ok(warm)
    }

    /// Probe `seq` is declared lost; true if it is the warmup's.
    pub(super) fn lost(&mut self, seq: u64, ui: &Ui) -> eyre::Result<bool> {
        let warm = seq <= self.warm;
        if let Some(i) = self.slot(warm, ui)? {
            i.counts.lost += 1;
        }
        Ok(warm)
    }

    /// A second reply to probe `seq`; true if it is the warmup's.
    pub(super) fn duplicate(&mut self, seq: u64, ui: &Ui) -> eyre::Result<bool> {
        let warm = seq <= self.warm;
        if let Some(i) = self.slot(warm, ui)? {
            i.duplicates += 1;
        }
        Ok(warm)
    }

    /// A reply that answers no probe (a mismatch) comes now; true during the warmup.
    pub(super) fn stray(&mut self, ui: &Ui) -> eyre::Result<bool> {
        let now = Instant::now();
        let warm = self.recorder.as_ref().is_some_and(|r| r.in_warmup(now));
        if let Some(i) = self.slot(warm, ui)? {
            i.counts.mismatched += 1;
        }
        Ok(warm)
    }

    /// The probe is over: writes the intervals left (the spectrum comes after the summary,
    /// through [`Outputs::finish`]).
    pub(super) fn finish(&mut self, ui: &Ui) -> eyre::Result<()> {
        match &mut self.recorder {
            Some(r) => r.finish(Instant::now(), &mut self.outputs, ui),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(warmup_ms: u64, every_ms: u64, duration_ms: u64) -> Clock {
        let settings = Settings {
            every: Some(Duration::from_millis(every_ms)),
            warmup: Duration::from_millis(warmup_ms),
            ..Settings::default()
        };
        Clock::new(
            &settings,
            Instant::now(),
            Some(Duration::from_millis(duration_ms)),
        )
    }

    #[test]
    fn intervals_count_from_the_warmups_end() {
        let c = clock(1500, 1000, 3000);
        let at = |ms: u64| c.index(c.start + Duration::from_millis(ms));
        assert_eq!([at(0), at(499), at(500), at(1499)], [-2, -2, -1, -1]);
        assert_eq!([at(1500), at(2499), at(2500), at(4499)], [0, 0, 1, 2]);
        // Past the duration: still the last interval (replies in flight at the end).
        assert_eq!(at(4600), 2);
        let end = Duration::from_millis(4520);
        assert_eq!(c.span(-2, end), (0.0, 0.5));
        assert_eq!(c.span(-1, end), (0.5, 1.5));
        assert_eq!(c.span(2, end), (3.5, 4.52));
        // A run cut short ends its interval early.
        assert_eq!(c.span(0, Duration::from_millis(2000)), (1.5, 2.0));
        let grace = Duration::from_millis(100);
        assert_eq!(c.close_at(-2), c.start + Duration::from_millis(500) + grace);
        assert_eq!(
            c.close_at(-1),
            c.start + Duration::from_millis(1500) + grace
        );
        assert_eq!(c.close_at(1), c.start + Duration::from_millis(3500) + grace);
    }

    #[test]
    fn a_late_hand_in_goes_to_the_first_open_interval() {
        let mut open = Open::new(-1, false);
        open.slot(-1).unwrap().counts.received += 1;
        open.slot(0).unwrap().counts.received += 2;
        let closed = open.close_through(-1);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].1.counts.received, 1);
        // A warmup reply too late for its line is dropped; a measured one is kept.
        assert!(open.slot(-1).is_none());
        open.close_through(0);
        open.slot(0).unwrap().counts.received += 5;
        let closed = open.close_through(2);
        let got: Vec<(i64, u64)> = closed
            .iter()
            .map(|(k, i)| (*k, i.counts.received))
            .collect();
        assert_eq!(got, [(1, 5), (2, 0)]);
    }
}
