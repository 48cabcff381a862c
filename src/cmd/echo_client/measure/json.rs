//! The summaries of probe and load mode, as `--json` prints them (field names documented in
//! `--json`'s help, hence the man page: they are an interface), and the one writer of both
//! modes' stdout.

use std::collections::BTreeMap;

use color_eyre::eyre::{self, WrapErr};
use serde::Serialize;

use crate::latency::Times;
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
