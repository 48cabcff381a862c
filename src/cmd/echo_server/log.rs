//! What goes into the server's messages: the live status line, its rate, the throttle that
//! keeps accept errors to one line a second, and the one that keeps each kind of per-client
//! line (a failed TLS handshake, a refused PROXY header) to about one a second. The lines
//! themselves go through the [`Ui`], like every other message.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ui::{self, Ui};

use super::stats::Stats;

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

/// A kind of line said at most once a second for the whole process, as the server is one: a
/// flood (a scanner, a thousand clients that never speak) fails on every listener alike.
pub(super) struct Throttled {
    held: Mutex<Held>,
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
    pub(super) const fn new(what: &'static str) -> Self {
        Throttled {
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
pub(super) fn said_throttled(kind: &'static Throttled, log: &Ui, line: &str) {
    let now = Instant::now();
    let mut held = kind.lock();
    let due = match held.last {
        Some(last) if now.duration_since(last) < THROTTLE_EVERY => last + THROTTLE_EVERY,
        _ => {
            held.last = Some(now);
            drop(held);
            log.info(line);
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
            log.info(&format!(
                "{} for {count} more {} (at most one such line a second)",
                self.what,
                if count == 1 { "client" } else { "clients" }
            ));
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
