//! What goes into the server's messages: the [`Event`]s (one value gives both the text line
//! and the `--log-format json` object), the SIGUSR1 statistics, the live status line, its rate,
//! the throttle that keeps accept errors to one line a second, and the one that keeps each kind
//! of per-client line (a failed TLS handshake, a refused PROXY header or client) to about one a
//! second.
//! The lines themselves go through the [`Ui`], like every other message.

use std::fmt::Display;
use std::sync::Mutex;
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
    let mut line = format!(
        "{} open, {} served, {} echoed, {}",
        snap.active,
        snap.served,
        ui::bytes(snap.bytes),
        rate.update(snap.bytes)
    );
    if let Some(injected) = stats.injected.tally().describe() {
        line.push_str(&format!(", {injected}"));
    }
    let refused = stats.refused.tally().total();
    if refused > 0 {
        line.push_str(&format!(", {refused} refused"));
    }
    line
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

/// At most one line a second from one place (an accept loop's errors, a UDP socket's
/// `--rate-limit` drops); the ones held back are counted in the next.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// The line to print now, or None if it is held back.
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
            n => format!("{msg} ({n} more like it not shown)"),
        };
        Some(line)
    }
}

/// A kind of line said at most once a second for the whole process, as the server is one: a
/// flood (a scanner, a thousand clients that never speak) fails on every listener alike.
pub(super) struct Throttled {
    held: Mutex<Held>,
    /// The `event` its lines name.
    pub(super) event: &'static str,
    /// What the count line says the held-back lines were, before "for N more clients".
    what: &'static str,
}

/// Lines of one kind held back since the last one said.
struct Held {
    /// When the last line was said.
    last: Option<Instant>,
    /// How many went unsaid since; a task says their number when the second ends.
    count: u64,
}

impl Throttled {
    pub(super) const fn new(event: &'static str, what: &'static str) -> Self {
        Throttled {
            event,
            held: Mutex::new(Held {
                last: None,
                count: 0,
            }),
            what,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How often a line of one kind may be said.
const THROTTLE_EVERY: Duration = Duration::from_secs(1);

/// Says `line`, unless one of its `kind` was said less than [`THROTTLE_EVERY`] ago: then it
/// is counted, and the count said once that second is over, so stderr gets at most about two
/// lines a second of each kind however many clients fail, and every one is still accounted
/// for.
pub(super) fn said_throttled(kind: &'static Throttled, log: &Ui, line: Event) {
    let now = Instant::now();
    let mut held = kind.lock();
    let due = match held.last {
        Some(last) if now.duration_since(last) < THROTTLE_EVERY => last + THROTTLE_EVERY,
        _ => {
            held.last = Some(now);
            drop(held);
            line.say(log);
            return;
        }
    };
    held.count += 1;
    if held.count == 1 {
        // The first held back in this second starts the one task that will say the count.
        let log = log.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(due.into()).await;
            kind.say_held(&log);
        });
    }
}

impl Throttled {
    /// Says how many lines were held back, if any (a stop may have said them already).
    pub(super) fn say_held(&self, log: &Ui) {
        let mut held = self.lock();
        let count = std::mem::take(&mut held.count);
        held.last = Some(Instant::now());
        drop(held);
        if count > 0 {
            let line = format!(
                "{} for {count} more {} (at most one such line a second)",
                self.what,
                if count == 1 { "client" } else { "clients" }
            );
            Event::new(Level::Info, self.event, line)
                .field("count", count)
                .say(log);
        }
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
