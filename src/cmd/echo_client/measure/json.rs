//! The summaries of probe and load mode, as `--json` prints them (field names documented in
//! `--json`'s help, hence the man page: they are an interface), and the one writer of both
//! modes' stdout.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::SystemTime;

use color_eyre::eyre::{self, WrapErr};
use serde::Serialize;

use crate::latency::{Latencies, Times};
use crate::report::stdout_error;

/// The counts both modes report: sent = received + lost; mismatched replies are received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(super) struct Counts {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub mismatched: u64,
}

impl Counts {
    pub(super) fn add(&mut self, other: Counts) {
        self.sent += other.sent;
        self.received += other.received;
        self.lost += other.lost;
        self.mismatched += other.mismatched;
    }

    /// Every message came back intact.
    pub(super) fn intact(&self) -> bool {
        self.lost == 0 && self.mismatched == 0
    }

    /// What went wrong, naming only what did: `2 of 5 messages lost`, `1 of 5 replies
    /// differ from what was sent`, or both.
    pub(super) fn trouble(&self) -> String {
        let lost = format!("{} of {} messages lost", self.lost, self.sent);
        match (self.lost, self.mismatched) {
            (0, m) => format!("{m} of {} replies differ from what was sent", self.sent),
            (_, 0) => lost,
            (_, m) => format!("{lost}, {m} mismatched"),
        }
    }
}

/// Probe mode's summary.
#[derive(Debug, Serialize)]
pub(super) struct ProbeSummary {
    pub mode: &'static str,
    pub server: String,
    pub size: usize,
    #[serde(flatten)]
    pub counts: Counts,
    /// Replies that came a second time (UDP), not counted in `received`.
    pub duplicates: u64,
    /// Replies that came after `--timeout` declared their probe lost: counted in `received`,
    /// not in `lost`, as ping counts them.
    pub late: u64,
    pub ok: bool,
    pub rtt_ms: Option<Times>,
    pub connect_ms: Option<Times>,
    /// From the first probe to the summary.
    pub duration_s: f64,
    pub interrupted: bool,
}

/// Load mode's summary.
#[derive(Debug, Serialize)]
pub(super) struct LoadSummary {
    pub mode: &'static str,
    pub server: String,
    pub size: usize,
    #[serde(flatten)]
    pub counts: Counts,
    pub ok: bool,
    pub rtt_ms: Option<Times>,
    /// With `--rate`: from each message's actual send, as wrk2 -U.
    pub rtt_uncorrected_ms: Option<Times>,
    /// How long the C connections took to open (not the reopened ones).
    pub connect_ms: Option<Times>,
    pub connections: usize,
    pub connections_up: u64,
    pub connections_failed: u64,
    /// Connections opened anew during the run (after a mismatch, a timeout, a reset).
    pub reconnects: u64,
    pub duration_s: f64,
    pub rate: Option<u64>,
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
    pub errors: BTreeMap<&'static str, u64>,
    pub interrupted: bool,
}

/// Who ran what, when: the JSON summary's `run` object, so results from many machines can be
/// told apart and put together (`asyncio-tool report`).
#[derive(Debug, Serialize)]
pub(in crate::cmd::echo_client) struct Run {
    /// 128 random bits in hex: tells two runs apart whatever their labels and times.
    id: String,
    /// When the run began (after `--start-at`'s wait), RFC 3339 in UTC.
    #[serde(serialize_with = "started")]
    started: OnceLock<SystemTime>,
    /// This program's version.
    version: &'static str,
    /// The host name of the machine that ran it.
    host: String,
    /// `--label KEY=VALUE`s.
    labels: BTreeMap<String, String>,
    /// Every option in effect, as plain JSON values.
    options: serde_json::Value,
}

impl Run {
    /// A new run's metadata; its start is marked by [`Run::mark_started`].
    pub(super) fn new(labels: BTreeMap<String, String>, options: serde_json::Value) -> Run {
        Run {
            id: random_id(),
            started: OnceLock::new(),
            version: env!("CARGO_PKG_VERSION"),
            host: host_name(),
            labels,
            options,
        }
    }

    /// The run begins now (the first call counts).
    pub(super) fn mark_started(&self) {
        let _ = self.started.set(SystemTime::now());
    }
}

/// `started` as RFC 3339; a run never marked (it cannot be printed then) counts from now.
fn started<S: serde::Serializer>(at: &OnceLock<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    let at = at.get().copied().unwrap_or_else(SystemTime::now);
    s.serialize_str(&crate::cli::report::rfc3339(at))
}

/// 128 bits from the system's random source, in hex; the clock's nanoseconds and the process
/// id if that source fails (it does not on Linux), which still tell runs apart.
fn random_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos ^ (u128::from(std::process::id()) << 96)).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The machine's host name (uname's nodename), as `hostname` prints it.
fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Writes one line or block of the mode's output to stdout.
pub(super) fn print(text: &str) -> eyre::Result<()> {
    let stdout = crate::sys::stdio::stdout().wrap_err("cannot write to standard output")?;
    crate::sys::fdio::write_all(stdout, text.as_bytes())
        .map_err(|err| stdout_error(err, "cannot write to standard output"))
}

/// Writes a summary as one JSON object and a newline.
pub(super) fn print_json(summary: &impl Serialize) -> eyre::Result<()> {
    let mut text = serde_json::to_string(summary).wrap_err("cannot encode the summary")?;
    text.push('\n');
    print(&text)
}

/// A mode's summary as `--json` prints it: its type, the run's metadata, the mode's own
/// fields, the bytes moved and the whole round-trip histogram, so that `report` can merge
/// runs exactly.
#[derive(Serialize)]
struct Record<'a, S> {
    #[serde(rename = "type")]
    kind: &'static str,
    run: &'a Run,
    #[serde(flatten)]
    summary: &'a S,
    /// Messages counted sent (received), each `size` bytes.
    bytes_sent: u64,
    bytes_received: u64,
    histogram: Encoded,
}

/// A histogram as the JSON carries it.
#[derive(Serialize)]
struct Encoded {
    unit: &'static str,
    encoding: &'static str,
    data: String,
}

/// Writes a mode's summary (`counts` and `size` being its own) as [`Record`], with `rtt`'s
/// histogram.
pub(super) fn print_summary(
    summary: &impl Serialize,
    (counts, size): (Counts, usize),
    run: &Run,
    rtt: &Latencies,
) -> eyre::Result<()> {
    let record = Record {
        kind: "summary",
        run,
        summary,
        bytes_sent: counts.sent.saturating_mul(size as u64),
        bytes_received: counts.received.saturating_mul(size as u64),
        histogram: Encoded {
            unit: "us",
            encoding: "HdrHistogram V2 compressed base64",
            data: rtt.encode(),
        },
    };
    print_json(&record)
}
