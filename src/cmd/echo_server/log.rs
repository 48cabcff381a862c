//! What goes into the server's messages: the live status line, its rate, and the throttle
//! that keeps accept errors to one line a second. The lines themselves go through the
//! [`Ui`](crate::ui::Ui), like every other message.

use std::time::{Duration, Instant};

use crate::ui;

use super::stats::Stats;

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
            n => format!("{msg} ({n} more like it not shown)"),
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
