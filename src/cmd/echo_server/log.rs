//! What goes into the server's messages: the [`Event`]s (one value gives both the text line
//! and the `--log-format json` object), the SIGUSR1 statistics, the live status line, its rate,
//! and the throttle that keeps accept errors to one line a second. The lines themselves go
//! through the [`Ui`], like every other message.

use std::fmt::Display;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ui::{self, Level, Ui};

use super::stats::{Family, Stats};

/// Something the server tells: its `event` name, how much it matters, the line for people, and
/// the fields a JSON line carries besides (peer, bytes, duration, reason...).
#[derive(Debug)]
pub struct Event {
    name: &'static str,
    level: Level,
    text: String,
    fields: Vec<(&'static str, Value)>,
}

impl Event {
    /// An event named `name` (`accepted`, `closed`...) told as `text`.
    pub fn new(level: Level, name: &'static str, text: String) -> Self {
        Event {
            name,
            level,
            text,
            fields: Vec::new(),
        }
    }

    /// Who it is about: a client's address, or a Unix peer's process.
    pub fn peer(self, peer: impl Display) -> Self {
        self.field("peer", peer.to_string())
    }

    /// What moved: bytes read from the client and written back to it.
    pub fn bytes(self, bytes_in: u64, bytes_out: u64) -> Self {
        self.field("bytes_in", bytes_in)
            .field("bytes_out", bytes_out)
    }

    /// How long it lasted, in seconds.
    pub fn duration(self, d: Duration) -> Self {
        self.field("duration_s", d.as_secs_f64())
    }

    /// Why it happened.
    pub fn reason(self, reason: impl Display) -> Self {
        self.field("reason", reason.to_string())
    }

    /// Any other field of the JSON line.
    pub fn field(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.fields.push((key, value.into()));
        self
    }

    /// Says it: the text line, or the JSON object under `--log-format json`.
    pub fn say(&self, ui: &Ui) {
        ui.record(self.level, self.name, &self.text, &self.fields);
    }
}

/// The SIGUSR1 statistics (as socat 1.8's `--statistics`): every figure once, shown even
/// under `-q` (it was asked for).
pub fn statistics(ui: &Ui, families: &[Family], uptime: Duration) {
    let mut parts = Vec::new();
    let mut fields = vec![("uptime_s", Value::from(uptime.as_secs_f64()))];
    for family in families {
        // People count connections and errors, not counters: `errors 2`, not `errors_total 2`.
        let name = family.name.trim_end_matches("_total");
        let total: u64 = family.samples.iter().map(|s| s.1).sum();
        let nonzero: Vec<String> = family
            .samples
            .iter()
            .filter(|s| family.label.is_some() && s.1 > 0)
            .map(|(label, n)| format!("{label} {n}"))
            .collect();
        parts.push(match nonzero.is_empty() {
            true => format!("{name} {total}"),
            false => format!("{name} {total} ({})", nonzero.join(", ")),
        });
        let value = match family.label {
            None => Value::from(total),
            Some(_) => Value::Object(
                family
                    .samples
                    .iter()
                    .map(|(label, n)| ((*label).to_owned(), Value::from(*n)))
                    .collect(),
            ),
        };
        fields.push((name, value));
    }
    let text = format!(
        "statistics after {}: {}",
        ui::duration(uptime),
        parts.join(", ")
    );
    ui.record(Level::Essential, "statistics", &text, &fields);
}

/// The status line's indicatif template.
pub const STATUS_TEMPLATE: &str = "{spinner:.green} {msg}";

/// The status line from the counters: open connections, totals and the current rate.
pub fn status_line(stats: &Stats, rate: &mut RateMeter) -> String {
    let snap = stats.snapshot();
    format!(
        "{} open, {} served, {} echoed, {}",
        snap.active,
        snap.served,
        ui::bytes(snap.bytes),
        rate.update(snap.bytes)
    )
}

/// The echo rate over the last status interval.
#[derive(Debug)]
pub struct RateMeter {
    last: Instant,
    last_bytes: u64,
}

impl RateMeter {
    /// Starts measuring now.
    pub fn new() -> Self {
        RateMeter {
            last: Instant::now(),
            last_bytes: 0,
        }
    }

    fn update(&mut self, bytes: u64) -> String {
        let now = Instant::now();
        let text = ui::rate(
            bytes.saturating_sub(self.last_bytes),
            now.duration_since(self.last),
        );
        self.last = now;
        self.last_bytes = bytes;
        text
    }
}

/// At most one accept-error line per second; the ones held back are counted in the next.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// The line to print for this error now, or None if it is held back.
    pub fn admit(&mut self, msg: String) -> Option<String> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        let line = match std::mem::take(&mut self.suppressed) {
            0 => msg,
            n => format!("{msg} ({n} similar errors not shown)"),
        };
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_holds_back_and_counts() {
        let mut t = Throttle::default();
        assert_eq!(t.admit("a".into()).as_deref(), Some("a"));
        assert_eq!(t.admit("b".into()), None);
        assert_eq!(t.admit("c".into()), None);
    }
}
