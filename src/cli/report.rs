//! Running one measurement from many machines, and putting their results together: the
//! `echo-client` options that let generators started apart begin together and say who they are
//! (`--start-at`, `--label`), open their connections at a pace (`--connect-rate`), and the
//! `report` subcommand's options. Every bad value is a clap error (exit 2) naming it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{ArgAction, ArgMatches, Args, Command, FromArgMatches, ValueHint};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::endpoints::usage_error;
use crate::ui::quote::quoted;

/// How far in the past `--start-at` may be and still start at once: the clocks of machines
/// kept by NTP agree to milliseconds, but a command run a moment late should not fail.
pub const START_AT_SLACK: Duration = Duration::from_secs(1);
/// How far ahead `--start-at` may be: beyond it the time is far more likely a mistake (a Unix
/// time in milliseconds is some 50,000 years ahead) than a plan.
const START_AT_HORIZON: Duration = Duration::from_secs(7 * 86_400);

/// `echo-client`'s options for a load run from several machines at once.
#[derive(Debug, Args, Clone, Default)]
pub struct FleetArgs {
    /// Tag the run with KEY=VALUE (repeatable), as `run.labels` in the --json summary:
    /// which machine, test or build it was, e.g. --label host=gen1 --label test=baseline.
    /// `asyncio-tool report` keeps runs with different labels apart, or merges them by the
    /// keys it is told (--group-by) or all (--merge). KEY is letters, digits, '_', '.' and
    /// '-', starting with a letter or '_'; VALUE any text without control characters.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label, action = ArgAction::Append, requires = "mode")]
    pub labels: Vec<Label>,

    /// Wait until TIME, then start (probe and load), so generators started apart (GNU
    /// parallel --sshlogin, Ansible, a Kubernetes Indexed Job) begin together. TIME is RFC 3339
    /// (2026-12-06T17:00:00Z, 2026-12-06T18:00:00.5+01:00) or a Unix time in seconds, with a
    /// fraction if wanted (1796576400, 1796576400.25, @1796576400 as date -d takes it). The wait is
    /// said on stderr (unless -q); Ctrl-C during it exits 130. More than 1s in the past, or
    /// more than 7 days ahead, is a usage error. Connections are opened once TIME has come.
    #[arg(long, value_name = "TIME", value_parser = parse_start_at, requires = "mode", allow_hyphen_values = true)]
    pub start_at: Option<StartAt>,

    /// Open load mode's connections at N a second instead of all at once (tcpkali's
    /// --connect-rate; its default is 100/s, ours is all at once, as before this option), so
    /// 10,000 connections do not hit the server's accept queue in one burst. The load starts
    /// once all are open; their connect times are reported (connect p50/p90/p99/max, JSON
    /// connect_ms).
    #[arg(long, value_name = "N", value_parser = parse_connect_rate, requires = "connections")]
    pub connect_rate: Option<u64>,
}

/// [`FleetArgs`] with the check clap cannot make: a label key given twice. Boxed, so that
/// echo-client's arguments do not outgrow the other subcommands' (clippy's
/// large_enum_variant).
#[derive(Debug, Clone, Default)]
pub struct Fleet(pub Box<FleetArgs>);

impl std::ops::Deref for Fleet {
    type Target = FleetArgs;

    fn deref(&self) -> &FleetArgs {
        &self.0
    }
}

impl FromArgMatches for Fleet {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let args = FleetArgs::from_arg_matches(matches)?;
        let mut seen = BTreeSet::new();
        for label in &args.labels {
            if !seen.insert(label.key.as_str()) {
                let msg = format!(
                    "'--label {}' is given twice: give each KEY once, with one VALUE",
                    label.key
                );
                return Err(usage_error("echo-client", msg));
            }
        }
        Ok(Fleet(Box::new(args)))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Fleet::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for Fleet {
    fn augment_args(cmd: Command) -> Command {
        FleetArgs::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        FleetArgs::augment_args_for_update(cmd)
    }
}

/// One `--label KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The part before the first `=`.
    pub key: String,
    /// The rest.
    pub value: String,
}

/// `--label KEY=VALUE`.
fn parse_label(s: &str) -> Result<Label, String> {
    let example = "e.g. --label host=gen1";
    let Some((key, value)) = s.split_once('=') else {
        return Err(format!("{}: not KEY=VALUE ({example})", quoted(s)));
    };
    if !valid_key(key) {
        return Err(format!(
            "{}: KEY {} must be letters, digits, '_', '.' or '-', starting with a letter or \
             '_' ({example})",
            quoted(s),
            quoted(key)
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "{}: VALUE holds a control character ({example})",
            quoted(s)
        ));
    }
    Ok(Label {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

/// A label key, also as `report --group-by` takes it.
fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `--group-by KEY`.
fn parse_key(s: &str) -> Result<String, String> {
    if valid_key(s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{}: not a label KEY (letters, digits, '_', '.' or '-', as --label KEY=VALUE \
             gave it)",
            quoted(s)
        ))
    }
}

/// `--start-at`: when to start, and the time as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartAt {
    /// The moment.
    pub at: SystemTime,
    /// As typed, for the messages.
    pub typed: String,
}

/// `--start-at TIME`: RFC 3339 or Unix seconds, not more than [`START_AT_SLACK`] past nor
/// [`START_AT_HORIZON`] ahead.
fn parse_start_at(s: &str) -> Result<StartAt, String> {
    let at = parse_time(s)?;
    let now = SystemTime::now();
    if let Ok(past) = now.duration_since(at) {
        if past > START_AT_SLACK {
            return Err(format!(
                "{}: {} in the past (it is now {}): give a time to come, e.g. $(date -d \
                 '+10 seconds' +%s)",
                quoted(s),
                ago(past),
                rfc3339(now)
            ));
        }
    }
    if at
        .duration_since(now)
        .is_ok_and(|ahead| ahead > START_AT_HORIZON)
    {
        return Err(format!(
            "{}: more than 7 days ahead (a Unix time in milliseconds? give seconds)",
            quoted(s)
        ));
    }
    Ok(StartAt {
        at,
        typed: s.to_owned(),
    })
}

/// `12.3s`, `2h 5m`: how long ago, to the tenth of a second under a minute.
fn ago(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    }
}

/// A time as RFC 3339 (`2026-12-06T17:00:00Z`) or Unix seconds (`1796576400.25`, `@…`).
pub fn parse_time(s: &str) -> Result<SystemTime, String> {
    let t = s.trim();
    let unix = t.strip_prefix('@').unwrap_or(t);
    if unix.starts_with(|c: char| c.is_ascii_digit())
        && unix.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return unix_seconds(unix)
            .ok_or_else(|| format!("{}: not a Unix time (e.g. 1796576400.5)", quoted(s)));
    }
    let parsed = OffsetDateTime::parse(t, &Rfc3339).map_err(|err| {
        format!(
            "{}: not a time: {err} (RFC 3339 as 2026-12-06T17:00:00Z, or Unix seconds)",
            quoted(s)
        )
    })?;
    Ok(parsed.into())
}

/// Whole seconds and an optional fraction since 1970, exactly (no float rounding).
fn unix_seconds(s: &str) -> Option<SystemTime> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    if fraction.contains('.') || fraction.len() > 9 || (whole.is_empty() && fraction.is_empty()) {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// A time as RFC 3339 in UTC, with the fraction of a second it has (up to nanoseconds).
pub fn rfc3339(t: SystemTime) -> String {
    OffsetDateTime::from(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| format!("{:?}", t))
}

/// Connections a second, at least 1.
fn parse_connect_rate(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err(format!(
            "{}: must be at least 1 connection a second (leave it out to open all at once)",
            quoted(s)
        )),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "{}: not a whole number of connections a second (e.g. 100)",
            quoted(s)
        )),
    }
}

const REPORT_EXAMPLES: &str = "\
Examples:
  asyncio-tool report gen1.json gen2.json gen3.json
                          one total and a row per run
  asyncio-tool report --merge results/*.json
                          one total, whatever the runs' labels
  asyncio-tool report --group-by test results/*.json
                          a total per value of the label 'test'
  asyncio-tool report --json - < all.jsonl
                          results on stdin, the report as JSON
  asyncio-tool report --hdr-log a.hlog --hdr-log b.hlog

Each FILE holds the --json output of echo-client's probe or load mode:
one summary object, or JSON lines (an object per line) whose objects
with \"type\":\"summary\" are runs; several runs may share a file
(cat *.json > all). --hdr-log reads an HdrHistogram interval log
(microseconds of round trip; its intervals are summed into one run).
Give each run once: a run's JSON and its --hdr-log are two runs.

Latency percentiles of a total come from the merged histogram of its
runs (exact to the histogram's 3 significant digits), never from
averaging the runs' percentiles. Counts are summed. The total's msgs/s
and MB/s are the sums of the runs' (each over its own run time): the
load the runs offered together when they ran at the same time, as
--start-at makes them; the span from the first run's start to the
last one's end is shown beside it, and a warning says when the runs
did not overlap (the sum then overstates the load at any moment).

Runs are grouped by their whole set of labels (echo-client --label):
runs with the same labels make one total, runs with other labels
another. --group-by KEY groups by those keys only (the others, such as
host=..., are then merged); --merge puts every run in one total. Runs
of one total must be of one mode (probe or load).

Exit status: 0 when every run was ok, 1 when a run lost or garbled
messages or failed connections (as the run itself exited), or an input
cannot be read or used; 2 for a usage error.";

/// `report`'s options.
#[derive(Debug, Args, Clone)]
#[command(after_long_help = REPORT_EXAMPLES)]
pub struct ReportArgs {
    /// Result files of echo-client --json (probe or load mode): a summary object, or JSON
    /// lines whose "type":"summary" objects are runs; - reads standard input.
    #[arg(value_name = "FILE", required_unless_present = "hdr_logs", value_hint = ValueHint::FilePath)]
    pub files: Vec<PathBuf>,

    /// An HdrHistogram interval log (#[StartTime: ...], a legend, then
    /// start,length,max,HISTFAAA... lines, values in microseconds), as echo-client --hdr-log
    /// writes: its intervals summed make one run, which has latencies and a count of replies
    /// but no losses. Repeatable.
    #[arg(long = "hdr-log", value_name = "FILE", action = ArgAction::Append, value_hint = ValueHint::FilePath)]
    pub hdr_logs: Vec<PathBuf>,

    /// Print the report as one JSON object on stdout instead of a table: "type":"report",
    /// "ok" (no run was not ok), "groups": [{"labels" (what its runs share), "mode", "runs": [a
    /// row per run: source (FILE, FILE:LINE when a file holds several runs), labels, mode,
    /// ok, sent, received, lost, mismatched, duration_s, started, msgs_per_s, mb_per_s,
    /// rtt_us], "total": {runs, ok, sent, received, lost, mismatched (summed), msgs_per_s,
    /// mb_per_s (the sums of the runs' own rates), span_s (first start to last end),
    /// msgs_per_s_over_span (received over span_s), overlapping (every run overlapped every
    /// other), rtt_us, histogram (the merged one, as the runs' JSON carries it)}}]. rtt_us is
    /// {count, min, mean, p50, p90, p99, p99_9, p99_99, max} in microseconds, read from the
    /// histogram by HdrHistogram's rules. A figure a run did not report (an --hdr-log run's
    /// losses) is null.
    #[arg(long)]
    pub json: bool,

    /// Put every run in one total, whatever its labels.
    #[arg(long, conflicts_with = "group_by")]
    pub merge: bool,

    /// Group runs by the value of this label only (repeatable): runs that differ only in
    /// other labels (host=...) are merged. A run without KEY is grouped under KEY unset.
    #[arg(long = "group-by", value_name = "KEY", value_parser = parse_key, action = ArgAction::Append)]
    pub group_by: Vec<String>,

    /// More messages on stderr (repeatable).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(
            parse_label("host=gen1"),
            Ok(Label {
                key: "host".into(),
                value: "gen1".into()
            })
        );
        assert_eq!(parse_label("a=b=c").unwrap().value, "b=c");
        assert_eq!(parse_label("k8s.pod=x-1").unwrap().key, "k8s.pod");
        assert!(parse_label("host").unwrap_err().contains("not KEY=VALUE"));
        assert!(parse_label("=x").unwrap_err().contains("KEY"));
        assert!(parse_label("1a=x").is_err());
        assert!(parse_label("a=\u{1b}[2J").is_err());
    }

    #[test]
    fn times() {
        let t = parse_time("1796576400.25").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap(),
            Duration::new(1_796_576_400, 250_000_000)
        );
        assert_eq!(
            parse_time("@1796576400").unwrap(),
            parse_time("1796576400").unwrap()
        );
        assert_eq!(
            parse_time("2026-12-06T17:00:00Z").unwrap(),
            parse_time("2026-12-06T18:00:00+01:00").unwrap()
        );
        assert_eq!(
            rfc3339(parse_time("1796576400.5").unwrap()),
            "2026-12-06T17:00:00.5Z"
        );
        assert!(parse_time("1.2.3").is_err());
        assert!(parse_time("tomorrow").is_err());
        assert!(parse_time(".").is_err());
    }

    #[test]
    fn start_at_in_the_past_or_too_far() {
        let err = parse_start_at("1000").unwrap_err();
        assert!(err.contains("in the past"), "{err}");
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(parse_start_at(&now.to_string()).is_ok());
        assert!(parse_start_at(&(now + 60).to_string()).is_ok());
        let millis = (now * 1000).to_string();
        assert!(
            parse_start_at(&millis)
                .unwrap_err()
                .contains("milliseconds")
        );
    }
}
