//! The only writer of human output: messages, warnings, errors, progress bars and status
//! lines all go to stderr through the [`Ui`], which decides colour and verbosity once, prints
//! messages above a live bar instead of through it, and never panics on a failed write (a
//! closed or full stderr loses the message, never the work).

use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use color_eyre::eyre;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use crate::report;

pub mod hexdump;
pub mod quote;

/// Decisions about stderr output, made once from the command line and the environment and
/// passed down to every subcommand. Clones share the live line.
#[derive(Debug, Clone)]
pub struct Ui {
    /// Use ANSI colour on stderr.
    pub color: bool,
    /// `-q`: errors only.
    pub quiet: bool,
    /// How many `--verbose` flags were given.
    pub verbose: u8,
    /// stderr is a terminal, so live lines (progress, status) make sense.
    pub stderr_tty: bool,
    /// Every line is a JSON object (`--log-format json`), and no live line is drawn.
    pub json: bool,
    /// The progress bar or status line being drawn, if any: messages are printed above it.
    live: Arc<Mutex<Option<ProgressBar>>>,
}

/// How much a line matters: which of `-q` and `-v` let it through, and the `level` a JSON
/// line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Under `-v` only.
    Detail,
    /// Unless `-q`.
    Info,
    /// Always: a result the user needs.
    Essential,
    /// Always: a problem the run survives.
    Warn,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Detail => "debug",
            Level::Info | Level::Essential => "info",
            Level::Warn => "warn",
        }
    }
}

impl Ui {
    /// Decides colour and verbosity from `color` (`Some` when forced on or off, `None` to
    /// decide here), `-q`, `NO_COLOR` and whether stderr is a terminal.
    pub fn new(color: Option<bool>, quiet: bool, verbose: u8) -> Self {
        let stderr_tty = std::io::stderr().is_terminal();
        Ui {
            color: color_wanted(color, stderr_tty),
            quiet,
            verbose: if quiet { 0 } else { verbose },
            stderr_tty,
            json: false,
            live: Arc::default(),
        }
    }

    /// The same decisions, with every line written as one JSON object (`--log-format json`).
    pub fn with_json(mut self, json: bool) -> Self {
        self.json = json;
        self
    }

    /// Errors and warnings only, no colour, no bars: for unit tests.
    #[cfg(test)]
    pub fn silent() -> Self {
        Ui {
            color: false,
            quiet: true,
            verbose: 0,
            stderr_tty: false,
            json: false,
            live: Arc::default(),
        }
    }

    /// An informational line, unless `-q`.
    pub fn info(&self, msg: &str) {
        self.record(Level::Info, "message", msg, &[]);
    }

    /// A line the user needs to go on, shown even under `-q`: not chatter but a result, such
    /// as the fingerprint a client must pin to connect safely.
    pub fn essential(&self, msg: &str) {
        self.record(Level::Essential, "message", msg, &[]);
    }

    /// A line for `--verbose` only.
    pub fn detail(&self, msg: &str) {
        self.record(Level::Detail, "message", msg, &[]);
    }

    /// Whether a line of `level` is shown at all: the caller may skip building it if not.
    pub fn shows(&self, level: Level) -> bool {
        match level {
            Level::Detail => self.verbose > 0,
            Level::Info => !self.quiet,
            Level::Essential | Level::Warn => true,
        }
    }

    /// A line of `level`: `text` for people, or under [`Ui::json`] one JSON object with the
    /// time, the level, the `event`, `text` as `message`, and `fields`.
    pub fn record(
        &self,
        level: Level,
        event: &str,
        text: &str,
        fields: &[(&str, serde_json::Value)],
    ) {
        if !self.shows(level) {
            return;
        }
        if self.json {
            self.emit(&json_line(level.name(), event, text, fields));
        } else if level == Level::Warn {
            self.emit(&format!("{} {text}\n", self.prefix("1;33")));
        } else {
            self.emit(&format!("{text}\n"));
        }
    }

    /// An empty line, unless `-q` (after an echoed `^C`, so the shell's prompt starts clean).
    pub fn newline(&self) {
        if !self.quiet {
            self.emit("\n");
        }
    }

    /// A problem the run survives (a file skipped, an accept error), shown even under `-q`:
    /// `asyncio-tool: msg`.
    pub fn warn(&self, msg: &str) {
        self.record(Level::Warn, "message", msg, &[]);
    }

    /// The error that ends the run: one line naming what failed and why, or color-eyre's full
    /// report when [`report::FULL_REPORT_ENV`] asks for it.
    pub fn error(&self, err: &eyre::Report) {
        let mut text = report::one_line(err);
        if report::full_report_wanted() {
            // The report starts with a line break: the one-line error stays the first line.
            text.push_str(&format!("\n{err:?}"));
        }
        if self.json {
            return self.emit(&json_line("error", "error", &text, &[]));
        }
        self.emit(&format!("{} {text}\n", self.prefix("1;31")));
    }

    fn prefix(&self, sgr: &str) -> String {
        if self.color {
            format!("\x1b[{sgr}masyncio-tool:\x1b[0m")
        } else {
            "asyncio-tool:".to_owned()
        }
    }

    /// Writes `text` to stderr, above the live line if there is one. A failed write is
    /// dropped: nothing useful can be done when stderr itself is gone or full of errors.
    fn emit(&self, text: &str) {
        let noted;
        let text = match hexdump::take_skipped_note(self.json) {
            Some(note) => {
                noted = note + text;
                noted.as_str()
            }
            None => text,
        };
        let live = self
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let write = || {
            let _ = io::stderr().lock().write_all(text.as_bytes());
        };
        match live {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// A progress bar or status line on stderr, or `None` when it must stay hidden: with `-q`,
    /// or when stderr is not a terminal and `force` is not set. `template` is an indicatif
    /// template; `{msg}` and the byte placeholders are filled by the caller. Until
    /// [`Ui::finish_live`], messages are printed above it.
    pub fn progress_bar(
        &self,
        force: bool,
        len: Option<u64>,
        template: &str,
    ) -> Option<ProgressBar> {
        // A live line would break the one-object-a-line stream of JSON.
        if self.quiet || self.json || !(self.stderr_tty || force) {
            return None;
        }
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        // Drawn even when stderr is not a terminal if forced (`--progress`): the user asked.
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(StderrTerm), 10);
        let bar = ProgressBar::with_draw_target(len, target).with_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.live.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
        Some(bar)
    }

    /// Clears the live line for good, so what follows starts on a clean line.
    pub fn finish_live(&self) {
        let live = self
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(bar) = live {
            bar.finish_and_clear();
        }
    }
}

/// One JSON object and its newline: `time` (RFC 3339, UTC, microseconds), `level`, `event`,
/// `message`, then `fields`.
fn json_line(level: &str, event: &str, text: &str, fields: &[(&str, serde_json::Value)]) -> String {
    use serde_json::Value;
    let mut line = format!(
        "{{\"time\":{},\"level\":{},\"event\":{},\"message\":{}",
        Value::from(rfc3339_now()),
        Value::from(level),
        Value::from(event),
        Value::from(text)
    );
    for (key, value) in fields {
        line.push_str(&format!(",{}:{value}", Value::from(*key)));
    }
    line.push_str("}\n");
    line
}

/// Now as RFC 3339 in UTC with microseconds: `2026-12-06T16:20:00.123456Z`.
fn rfc3339_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

/// The colour decision: `--color` (`forced`), then `NO_COLOR`, then whether stderr is a
/// terminal.
pub fn color_wanted(forced: Option<bool>, stderr_tty: bool) -> bool {
    let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    forced.unwrap_or(stderr_tty && !no_color_env)
}

/// stderr as indicatif sees it: a few columns narrower than the terminal. indicatif pads a line
/// to the full width, which would leave the cursor past the last column; the `^C` a terminal
/// echoes would then wrap to a new line, and the bar's final clear would erase that line
/// instead of the bar.
#[derive(Debug)]
struct StderrTerm;

/// Room left after a bar: enough for an echoed `^C`.
const RESERVED_COLUMNS: u16 = 3;

impl StderrTerm {
    fn write(&self, s: &str) -> io::Result<()> {
        io::stderr().lock().write_all(s.as_bytes())
    }
}

impl TermLike for StderrTerm {
    fn width(&self) -> u16 {
        rustix::termios::tcgetwinsize(rustix::stdio::stderr())
            .map(|w| w.ws_col)
            .ok()
            .filter(|&c| c > 0)
            .unwrap_or(80)
            .saturating_sub(RESERVED_COLUMNS)
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            Ok(())
        } else {
            self.write(&format!("\x1b[{n}A"))
        }
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            Ok(())
        } else {
            self.write(&format!("\x1b[{n}B"))
        }
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            Ok(())
        } else {
            self.write(&format!("\x1b[{n}C"))
        }
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        if n == 0 {
            Ok(())
        } else {
            self.write(&format!("\x1b[{n}D"))
        }
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.write(&format!("{s}\n"))
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.write(s)
    }
    fn clear_line(&self) -> io::Result<()> {
        self.write("\r\x1b[2K")
    }
    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// A duration for people, to the millisecond: `2s 696ms` (humantime would print every
/// nanosecond of a measured time).
pub fn duration(d: Duration) -> String {
    let ms = Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX));
    humantime::format_duration(ms).to_string()
}

/// The time left for a transfer, `done` of `total` bytes at `per_second`, as pv shows it:
/// `ETA 0:01:05`. `None` when nothing is moving yet, when the end is passed (a file that grew
/// while it was read), or when it is more than 99 hours away (no figure worth reading).
pub fn eta(done: u64, total: u64, per_second: f64) -> Option<String> {
    if done >= total || per_second.is_nan() || per_second <= 0.0 {
        return None;
    }
    let secs = ((total - done) as f64 / per_second).ceil();
    if secs >= 100.0 * 3600.0 {
        return None;
    }
    let s = secs as u64;
    Some(format!("ETA {}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60))
}

/// The size of `fd` when it is a regular file: what a progress bar over it reckons its
/// percentage and time left against. `None` for anything else, and for a regular file that
/// claims no size (those under /proc have data but a size of 0). The whole size, not what is
/// left past the offset: by the time a bar is drawn the copy has moved the offset on.
pub fn known_size(fd: std::os::fd::BorrowedFd<'_>) -> Option<u64> {
    let stat = rustix::fs::fstat(fd).ok()?;
    let regular =
        rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile;
    u64::try_from(stat.st_size)
        .ok()
        .filter(|&size| regular && size > 0)
}

/// A byte count for people: `1.50 MiB`.
pub fn bytes(n: u64) -> String {
    humansize::format_size(n, humansize::BINARY)
}

/// A rate for people: `512.00 MiB/s`.
pub fn rate(bytes_done: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return "-".into();
    }
    format!("{}/s", bytes((bytes_done as f64 / secs) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_one_object_each() {
        let fields = [
            ("peer", serde_json::Value::from("[::1]:5")),
            ("bytes_in", 3.into()),
        ];
        let line = json_line("debug", "closed", "a \"quoted\"\nline", &fields);
        assert!(
            line.ends_with("}\n") && line.matches('\n').count() == 1,
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "closed");
        assert_eq!(v["message"], "a \"quoted\"\nline");
        assert_eq!(v["bytes_in"], 3);
        let time = v["time"].as_str().unwrap();
        assert!(
            time.len() == 27 && time.ends_with('Z') && &time[10..11] == "T",
            "{time}"
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(rate(2048, Duration::from_secs(2)), "1 KiB/s");
    }

    #[test]
    fn time_left_as_pv_shows_it() {
        assert_eq!(eta(0, 100, 10.0).as_deref(), Some("ETA 0:00:10"));
        assert_eq!(eta(50, 100, 3.0).as_deref(), Some("ETA 0:00:17"));
        assert_eq!(
            eta(0, 7322 << 20, 1.0 * 1048576.0).as_deref(),
            Some("ETA 2:02:02")
        );
        // Nothing moving, done, grown past its size, or days away: no figure.
        assert_eq!(eta(0, 100, 0.0), None);
        assert_eq!(eta(100, 100, 10.0), None);
        assert_eq!(eta(101, 100, 10.0), None);
        assert_eq!(eta(0, u64::MAX, 1.0), None);
    }
}
