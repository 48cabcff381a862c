//! What the server says on stderr: "listening on", per-connection lines under `-v`,
//! rate-limited accept errors, the live status line and the summary. Every line goes through
//! the status bar (when there is one) so it is printed above the bar instead of through it.

use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use crate::report;
use crate::ui::{self, Ui};

use super::Stats;

/// Where and how much the server reports. Cloned into every connection task (cheap: the bar is
/// a shared handle).
#[derive(Debug, Clone, Default)]
pub struct Log {
    quiet: bool,
    verbose: bool,
    color: bool,
    bar: Option<ProgressBar>,
}

impl Log {
    /// Nothing on stderr but accept errors: for library callers and benchmarks.
    pub fn silent() -> Self {
        Log {
            quiet: true,
            ..Log::default()
        }
    }

    /// Follows the command line's `-q`/`-v`/`--color`; with `status`, a live status line when
    /// `ui` allows one (stderr a terminal, not `-q`).
    pub fn from_ui(ui: &Ui, status: bool) -> Self {
        let bar = if status {
            ui.progress_bar(false, None, "{spinner:.green} {msg}")
        } else {
            None
        };
        Log {
            quiet: ui.quiet,
            verbose: ui.verbose > 0,
            color: ui.color,
            bar,
        }
    }

    /// True when a live status line is drawn (and so needs redrawing).
    pub fn has_status_line(&self) -> bool {
        self.bar.is_some()
    }

    /// True under `-v`: per-connection lines are wanted.
    pub fn verbose(&self) -> bool {
        self.verbose
    }

    fn print(&self, f: impl FnOnce()) {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// An informational line, unless `-q`.
    pub fn info(&self, msg: &str) {
        if !self.quiet {
            self.print(|| eprintln!("{msg}"));
        }
    }

    /// A per-connection line, under `-v` only.
    pub fn conn(&self, msg: &str) {
        if self.verbose {
            self.print(|| eprintln!("{msg}"));
        }
    }

    /// A problem the server survives (an accept error): shown even under `-q`.
    pub fn warn(&self, msg: &str) {
        self.print(|| report::print_warning(msg, self.color));
    }

    /// Redraws the status line from the counters.
    pub fn status(&self, stats: &Stats, rate: &mut RateMeter) {
        if let Some(bar) = &self.bar {
            let snap = stats.snapshot();
            bar.set_message(format!(
                "{} open, {} served, {} echoed, {}",
                snap.active,
                snap.served,
                ui::bytes(snap.bytes),
                rate.update(snap.bytes)
            ));
        }
    }

    /// Removes the status line for good (before the summary).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
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
