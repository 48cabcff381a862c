//! `echo-client`'s measuring options: `--verify` for the stdin exchange, and the two modes
//! that send messages of their own instead of reading stdin, probe (`--count`) and load
//! (`--connections`). Every combination that makes no sense is a clap error (exit 2) naming
//! the conflict, before any I/O.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgMatches, Args, Command, FromArgMatches};

use super::endpoints::usage_error;
use super::values::{parse_count, parse_duration};
use crate::ui::quote::quoted;

/// The largest message: C connections hold two buffers of this size each.
pub const MAX_SIZE: usize = 16 << 20;

/// `--json`'s long help, which clap_mangen puts in the man page: the field names are a stable
/// interface for scripts.
const JSON_HELP: &str = "\
Print the summary as one JSON object on stdout instead of text (probe lines then go to \
stderr). Fields, stable for scripts; times in milliseconds as floats, null when there was \
no sample:

type (\"summary\"), run {id (128 random bits in hex), started (RFC 3339, UTC: when the run \
began, after --start-at's wait), version, host (the generator's host name), labels \
(--label KEY=VALUE as {KEY: VALUE}), options (every option in effect, durations in \
seconds: mode, target, transport, family, tls {trust, servername, client_cert} or null, \
size, timeout_s, connect_timeout_s, wait_s, start_at, report_every_s, json_lines, warmup_s, \
hdr_log, percentiles; probe: count, interval_s, deadline_s, new_connection; load: \
connections, duration_s, rate, connect_rate)}, \
mode (\"probe\" or \"load\"), server (as the lines name it: ADDR, tls:ADDR, udp:ADDR, \
unix:PATH), size (bytes per message), sent, received (replies that came back, intact or \
not), lost (sent = received + lost), mismatched (replies that differ from what was sent), \
ok (true when replies came, none was lost or differed, and every connection opened; the \
exit status is 0 exactly then, with or without Ctrl-C, if --hdr-log's and --percentiles' \
files took all their lines), rtt_ms {min, avg, max, mdev, p50, \
p90, p99, p99_9}, duration_s (measured: from the first probe to the summary, or the \
load's run), interrupted (Ctrl-C ended it: a probe awaiting its echo then counts as sent \
and lost, as ping counts it, but is not held against ok; load's messages then in flight \
are not counted). The probe's --deadline is no interruption, but counts a probe it cuts \
short as Ctrl-C does.

Probe only: connect_ms {min, avg, max, mdev, p50, p90, p99, p99_9} with --new-connection \
(else null); duplicates (UDP replies that came a second time, not in received; no failure); \
late (replies that came after --timeout declared their probe lost: counted in received and \
rtt_ms, not in lost, as ping counts them; no failure). Over UDP a reply that answers no probe \
awaiting one and is no probe's message (another run's, or changed on the way) counts in \
mismatched alone.

Load only: connections, connections_up, connections_failed, reconnects (connections opened \
anew after a mismatch, a timeout, a reset or a close), rate (asked for, null without \
--rate), msgs_per_s, mb_per_s (10^6 bytes of replies a second), errors \
(an object: kind -> count; kinds: connect, timeout, reset, closed, io), connect_ms {min, \
avg, max, mdev, p50, p90, p99, p99_9} (how long the C connections took to open; see \
--connect-rate), \
rtt_uncorrected_ms {min, avg, max, mdev, p50, p90, p99, p99_9} (with --rate: from each \
message's actual send instead of its intended send time, as wrk2 -U reports them, so the \
difference shows what coordinated omission would hide; null without --rate).

Last: bytes_sent, bytes_received (messages counted sent or received, times size), \
histogram {unit (\"us\"), encoding (\"HdrHistogram V2 compressed base64\"), data \
(\"HISTFAAA...\")}: every round trip of the run in microseconds, as HdrHistogram's own \
tools decode it; asyncio-tool report merges runs' histograms exactly.";

/// `--json-lines`' long help: the interval objects' fields.
const JSON_LINES_HELP: &str = "\
Print a JSON object per interval on stdout as the run goes (as iperf3 --json-stream), then \
the summary object as --json prints it (--json-lines implies --json). Intervals are \
--report-every long (1s without it); the lines on stderr are then left out. Fields: type \
(\"interval\"), start_s and end_s (seconds from the run's start, the warmup included; the \
last interval ends with the run), warmup (true for an interval of --warmup, whose figures \
are in no other interval and not in the summary), sent, received, lost, mismatched, \
msgs_per_s, mb_per_s (of that interval), rtt_ms {p50, p90, p99, max} (null without a \
reply), rtt_uncorrected_ms {p50, p90, p99, max} (with --rate, else null), errors (kind -> \
count; empty in probe mode, whose losses are in lost), and in probe mode late (replies that \
came after their probe was declared lost, counted in received here and in lost where the \
loss was declared) and duplicates. An event is counted in the interval in which it became \
known (a reply when it came back, a loss when declared); the intervals after the warmup add \
up to the summary (the probe's lost: their lost less their late; load's errors: but those \
of the first connections, opened before the run starts).";

/// `--percentiles`' long help.
const PERCENTILES_HELP: &str = "\
Write the round trips' percentile spectrum exactly as wrk2 --latency prints its \"Detailed \
Percentile spectrum\" (a .hgrm file) to FILE (created or emptied before the run): columns \
Value (milliseconds), Percentile, TotalCount, 1/(1-Percentile) (inf in the last row, at \
100%), then the #[Mean, StdDeviation], #[Max, Total count] and #[Buckets, SubBuckets] lines. HdrHistogram's plotter (hdrhistogram.github.io/HdrHistogram/\
plotFiles.html) reads it as it reads wrk2's. '-' prints it on stdout after the text report \
(not with --json, whose stdout is one JSON object). With --rate the values are from the \
intended send times, as the summary's rtt_ms.";

/// `--hdr-log`'s long help.
const HDR_LOG_HELP: &str = "\
Write the round trips as an HdrHistogram interval log to FILE (created or emptied before \
the run), one histogram per interval of --report-every (1s without it), as jHiccup and \
HdrHistogram's HistogramLogWriter write them, for HistogramLogProcessor (with \
-outputValueUnitRatio 1000, the values being microseconds; the plotter reads its .hgrm) or \
Python's hdrh to read. It holds #[StartTime: <seconds since epoch>, <date>] and #[BaseTime: \
...] (the run's start), the \
\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\" \
legend, then per interval its start (seconds from BaseTime), its length, its largest round \
trip in milliseconds and its histogram (V2, deflated, base64) in microseconds (lowest 1, 3 \
significant digits). The intervals of --warmup are left out. Their sum has the summary's \
count and percentiles (those are never beyond the exact min and max). With --rate the \
round trips are from the intended send times, as the summary's rtt_ms. A log that fails \
mid-run is said at once and closed; the run goes on to its summary, then exits 1.";

/// The measuring options, flattened into `echo-client`'s.
#[derive(Debug, Args, Clone, Default)]
pub struct MeasureArgs {
    /// Check that every byte echoed equals the byte sent at that offset (stdin mode). Replies
    /// are still printed (if stdout closes, the check goes on); a difference or a short reply
    /// exits 1, naming the byte. Without --idle-timeout, it gives up (exit 1) after 10s
    /// without an echo once only echoes are awaited: all input sent, or 512 KiB unechoed.
    /// (Over UDP every reply is matched to its datagram byte for byte with or without it.)
    #[arg(long, conflicts_with_all = ["count", "connections"])]
    pub verify: bool,

    /// Probe mode, like ping -c: send N messages (0: until Ctrl-C or --deadline), one every
    /// --interval whether or not the earlier replies came (all N are sent however slow the
    /// server is), each checked byte for byte; a header line, a line per reply as it comes
    /// (`(late)` after its --timeout, `(DUP!)` for a second one over UDP), a line per loss and
    /// a summary with the % packet loss on stdout. After the last send it waits for the
    /// replies still due, up to --timeout. Reads no stdin. Ctrl-\ (SIGQUIT) prints the summary
    /// so far on stderr and the probe goes on, as ping's does.
    #[arg(short = 'c', long, value_name = "N", value_parser = parse_u64, group = "mode", conflicts_with_all = ["connections", "idle_timeout"])]
    pub count: Option<u64>,

    /// Bytes per message in probe and load mode (K, KiB, M, MiB suffixes accepted), at most
    /// 16MiB; over UDP at most what one datagram holds (65507 bytes, 65527 over IPv6).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "64", requires = "mode")]
    pub size: usize,

    /// Time between probes (probe mode), as ping -i: seconds (0.2) or a DURATION. A probe goes
    /// out on time even while earlier ones await their replies (over one connection, matched
    /// in order on a stream and by the probe number in the message over UDP), so a stalled
    /// server shows as a backlog of slow replies, not as one slow sample. At most 65536
    /// probes (and 16MiB of messages) are in flight: past that the next one waits.
    #[arg(short = 'i', long, value_name = "DURATION", value_parser = parse_duration, default_value = "1s", requires = "count", conflicts_with = "connections", allow_hyphen_values = true)]
    pub interval: Duration,

    /// A reply not back this long after its message was sent is lost (probe and load), as
    /// ping -W: seconds (0.2) or a DURATION. In probe mode the loss gets its line then, and a
    /// reply that still comes (within twice the timeout over a stream, whose connection is
    /// then given up) is shown `(late)` and counted received, not lost, as ping counts it.
    #[arg(short = 'W', long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s", requires = "mode", allow_hyphen_values = true)]
    pub timeout: Duration,

    /// End the probe this long after it started (the first connection included), whatever
    /// --count, as ping -w: seconds (10) or a DURATION. The status is as at the count's end
    /// (a probe then awaiting its echo counts as sent and lost, not held against the run).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "count", conflicts_with = "connections", allow_hyphen_values = true)]
    pub deadline: Option<Duration>,

    /// Print only the probe's header line and its summary, no line per reply or loss, as
    /// ping -q.
    #[arg(long, requires = "count", conflicts_with = "connections")]
    pub summary_only: bool,

    /// Open a connection per probe and report its connect time separately, as echoping does.
    #[arg(long, requires = "count", conflicts_with = "connections")]
    pub new_connection: bool,

    /// Load mode: C closed-loop connections, each sending a message and waiting for its
    /// whole echo before the next, for --duration. Reads no stdin.
    #[arg(long, value_name = "C", value_parser = parse_count, group = "mode", conflicts_with = "idle_timeout")]
    pub connections: Option<NonZeroUsize>,

    /// How long load mode runs.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s", requires = "connections", conflicts_with = "count", allow_hyphen_values = true)]
    pub duration: Duration,

    /// Load mode at a fixed total rate of R messages a second, latency measured from each
    /// message's intended send time (no coordinated omission).
    #[arg(long, value_name = "R", value_parser = parse_rate, requires = "connections", conflicts_with = "count")]
    pub rate: Option<u64>,

    /// The interval series and histogram outputs, boxed: they would make every command's
    /// arguments as large as echo-client's.
    #[command(flatten)]
    pub series: Box<SeriesArgs>,

    // Not `requires = "mode"`: clap's error would name only the missing modes, not --json
    // ([`Measure`] checks it).
    #[arg(long, long_help = JSON_HELP)]
    /// Print the probe or load summary as one JSON object on stdout.
    pub json: bool,
}

/// The measure modes' interval series and histogram files.
#[derive(Debug, Args, Clone, Default)]
pub struct SeriesArgs {
    /// Print a line per interval of DURATION on stderr while the probe or load runs (msgs/s,
    /// MB/s, p50, p99 and max round trip, and load's errors or the probe's lost, late and
    /// duplicate replies in that interval), as iperf3 -i: seconds (1) or a DURATION, at least
    /// 100ms. The probe's lines come out with its next send, reply or loss (so at least every
    /// --interval while it sends); the last interval takes the replies after the last send.
    #[arg(long, value_name = "DURATION", value_parser = parse_report_every, requires = "mode", allow_hyphen_values = true)]
    pub report_every: Option<Duration>,

    /// Print a JSON object per interval on stdout, then the summary.
    #[arg(long, long_help = JSON_LINES_HELP, requires = "mode")]
    pub json_lines: bool,

    /// Run this long first and leave it out of every figure (counts, rates, latencies, the
    /// log), as iperf3 -O: seconds (2) or a DURATION. Load's --duration and the probe's
    /// --count are then the measured part, after it (a probe sent during it is the warmup's
    /// whenever its reply comes). Its interval lines and its probes' lines are marked
    /// (warmup), its --json-lines objects "warmup": true. Ctrl-C during it measures nothing:
    /// exit 1.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "mode", allow_hyphen_values = true)]
    pub warmup: Option<Duration>,

    /// Write the round trips as an HdrHistogram interval log to FILE.
    #[arg(long, value_name = "FILE", long_help = HDR_LOG_HELP, requires = "mode")]
    pub hdr_log: Option<PathBuf>,

    /// Write the percentile spectrum (.hgrm, as wrk2 prints it) to FILE, or '-' for stdout.
    #[arg(long, value_name = "FILE", long_help = PERCENTILES_HELP, requires = "mode")]
    pub percentiles: Option<PathBuf>,
}

/// [`MeasureArgs`] as `echo-client` takes them, with the checks clap cannot word: `--json`
/// without a mode names `--json`.
#[derive(Debug, Clone, Default)]
pub struct Measure(pub MeasureArgs);

impl std::ops::Deref for Measure {
    type Target = MeasureArgs;

    fn deref(&self) -> &MeasureArgs {
        &self.0
    }
}

impl FromArgMatches for Measure {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let args = MeasureArgs::from_arg_matches(matches)?;
        if args.json && args.mode().is_none() {
            let msg = "'--json' prints the summary of a mode, and requires one of \
                       <--count <N>|--connections <C>>"
                .to_owned();
            return Err(usage_error("echo-client", msg));
        }
        if args.series.hdr_log.as_deref() == Some(Path::new("-")) {
            let msg = "'--hdr-log -': the log goes to a file (stdout carries the report); give \
                       a file name, e.g. --hdr-log run.hlog"
                .to_owned();
            return Err(usage_error("echo-client", msg));
        }
        let series = &args.series;
        if series.hdr_log.is_some() && series.hdr_log == series.percentiles {
            let msg = "'--hdr-log' and '--percentiles' name the same file: give each its own \
                       (e.g. run.hlog and run.hgrm)"
                .to_owned();
            return Err(usage_error("echo-client", msg));
        }
        if args.percentiles() == Some(Percentiles::Stdout) && (args.json || args.series.json_lines)
        {
            let flag = if args.json { "--json" } else { "--json-lines" };
            let msg = format!(
                "'--percentiles -' with '{flag}': stdout carries the JSON; give --percentiles \
                 a file name, e.g. --percentiles run.hgrm"
            );
            return Err(usage_error("echo-client", msg));
        }
        Ok(Measure(args))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Measure::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for Measure {
    fn augment_args(cmd: Command) -> Command {
        MeasureArgs::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        MeasureArgs::augment_args_for_update(cmd)
    }
}

impl MeasureArgs {
    /// Where `--percentiles` goes, if asked for.
    pub fn percentiles(&self) -> Option<Percentiles> {
        self.series.percentiles.as_ref().map(|path| {
            if path.as_os_str() == "-" {
                Percentiles::Stdout
            } else {
                Percentiles::File(path.clone())
            }
        })
    }

    /// The measuring mode asked for, if any.
    pub fn mode(&self) -> Option<Mode> {
        match (self.count, self.connections) {
            (Some(count), _) => Some(Mode::Probe { count }),
            (None, Some(connections)) => Some(Mode::Load { connections }),
            (None, None) => None,
        }
    }
}

/// A mode that sends messages of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `--count N`: one message at a time, like ping (0: until Ctrl-C).
    Probe {
        /// How many probes.
        count: u64,
    },
    /// `--connections C`: closed-loop load.
    Load {
        /// How many connections.
        connections: NonZeroUsize,
    },
}

/// Where `--percentiles` writes the spectrum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Percentiles {
    /// `-`: after the text report.
    Stdout,
    /// A file, created before the run.
    File(PathBuf),
}

/// `--report-every`: seconds or a duration, at least 100 ms as iperf3's -i (shorter
/// intervals hold too few replies to say much, and their lines flood the terminal).
fn parse_report_every(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(100) {
        return Err(format!(
            "{}: at least 100ms (e.g. 0.2, 1, 500ms)",
            quoted(s)
        ));
    }
    Ok(d)
}

/// A whole number of probes, 0 allowed (until Ctrl-C).
fn parse_u64(s: &str) -> Result<u64, String> {
    s.trim().parse().map_err(|_| {
        format!(
            "{}: not a whole number (e.g. 10, or 0 for no end)",
            quoted(s)
        )
    })
}

/// Messages a second, at least 1.
fn parse_rate(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err(format!(
            "{}: must be at least 1 message a second",
            quoted(s)
        )),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "{}: not a whole number of messages a second",
            quoted(s)
        )),
    }
}

/// A message size: bytes, or with a K/KiB (1024) or M/MiB suffix; 1 byte to [`MAX_SIZE`]. A
/// larger one, in any unit (`1G`, `1GiB`, more digits than fit), says the maximum.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let not_a_size = || format!("{}: not a size (e.g. 64, 16KiB, 1MiB)", quoted(s));
    let too_large = || format!("{}: too large (at most 16MiB)", quoted(s));
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        _ => return Err(not_a_size()),
    };
    if digits.is_empty() {
        return Err(not_a_size());
    }
    // Only digits here: a number too long for u64 is too large, not "not a size".
    let n: u64 = digits.parse().map_err(|_| too_large())?;
    match n.checked_mul(scale) {
        Some(0) => Err(format!("{}: a message needs at least 1 byte", quoted(s))),
        Some(n) if n <= MAX_SIZE as u64 => Ok(n as usize),
        _ => Err(too_large()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64"), Ok(64));
        assert_eq!(parse_size("16KiB"), Ok(16 << 10));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("17MiB").is_err());
        for big in ["1G", "1GiB", "2T", "99999999999999999999999"] {
            assert_eq!(
                parse_size(big),
                Err(format!("'{big}': too large (at most 16MiB)"))
            );
        }
        assert!(parse_size("x").is_err());
    }
}
