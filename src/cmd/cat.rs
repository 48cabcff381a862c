//! `asyncio-tool cat`: GNU cat, byte for byte, at the kernel's speed.
//!
//! Leading operands that are small regular files (they cannot block) are copied at once, before
//! any runtime or thread exists: for a tiny `cat` that set-up would be most of the run time.
//! Whatever is left runs as one blocking task on the current-thread runtime (one hand-off, not
//! one per chunk or per file), while the runtime itself watches for Ctrl-C and draws the
//! progress bar. Plain copies go through [`copy`] (zero-copy where the kernel allows);
//! formatting options go through [`render`], which keeps GNU's state across files.

pub mod copy;
pub mod render;

use std::convert::Infallible;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use color_eyre::eyre::{self, WrapErr};
use indicatif::ProgressBar;

use crate::cli::CatArgs;
use crate::exit::Exit;
use crate::report::{io_reason, stdout_error};
use crate::runtime::{self, Flavor};
use crate::ui::quote::quote;
use crate::ui::{self, Ui};
use copy::{CHUNK, CopyError, Kind, Sink};
use render::{Format, Renderer};

/// How long a copy must run before its progress bar appears (unless `--progress`).
const PROGRESS_DELAY: Duration = Duration::from_secs(1);
/// What a failed write to stdout is reported as.
const WRITE_ERROR: &str = "cat: write error on standard output";

impl From<&CatArgs> for Format {
    fn from(a: &CatArgs) -> Self {
        Format {
            number: a.number,
            number_nonblank: a.number_nonblank,
            squeeze_blank: a.squeeze_blank,
            show_nonprinting: a.show_nonprinting || a.show_all || a.e || a.t,
            show_ends: a.show_ends || a.show_all || a.e,
            show_tabs: a.show_tabs || a.show_all || a.t,
        }
    }
}

/// The operands, with no operand meaning stdin, as GNU cat does.
fn operands(args: &CatArgs) -> Vec<OsString> {
    if args.files.is_empty() {
        vec![OsString::from("-")]
    } else {
        args.files.clone()
    }
}

/// Runs `cat`: exit 0 when every file was printed, 1 when any could not be (the others are
/// still printed); a write error on stdout ends the run at once.
pub fn run(args: &CatArgs, ui: &Ui) -> eyre::Result<Exit> {
    let files = operands(args);
    let format = Format::from(args);
    // No bar of its own accord over a terminal someone is typing into (`cat > notes`).
    let typing = files.iter().any(|f| f == "-") && std::io::stdin().is_terminal();
    let show_progress = args.progress
        || (ui.stderr_tty && !ui.quiet && !std::io::stdout().is_terminal() && !typing);
    let force = args.progress;
    let mut job = Job::new(files.clone(), format, ui.clone())?;
    // Small regular files cannot block and copy in microseconds: they are done right here,
    // before any runtime or thread exists, which is most of a tiny `cat`'s run time. Until
    // the runtime installs its handler, Ctrl-C has its default effect and ends the process
    // by SIGINT, as it ends GNU cat.
    if job.run_quick()? {
        return job.finish();
    }
    let ui = ui.clone();
    runtime::block_on(Flavor::CurrentThread, async move {
        let interrupted = runtime::interrupt_signal()?;
        let progress = Arc::clone(&job.progress);
        let rest = tokio::task::spawn_blocking(move || job.run_rest());
        let shown = OnceLock::new();
        let bar = async {
            if show_progress {
                draw_progress(&ui, force, &files, &progress, &shown).await
            } else {
                std::future::pending().await
            }
        };
        // The bar is polled before the copy: a copy that ends before the first poll (a busy
        // machine, a quick file) would otherwise leave a forced bar never drawn at all.
        let exit = tokio::select! {
            biased;
            () = interrupted => Ok(Exit::Interrupted),
            never = bar => match never {},
            result = rest => result.wrap_err("cat: the copy task failed")?,
        };
        if let Some(bar) = shown.get() {
            bar.finish(&ui, &progress, matches!(exit, Ok(Exit::Interrupted)));
        }
        exit
    })?
}

/// An input that has been opened and examined but not copied yet.
struct Opened {
    name: OsString,
    /// `None` for stdin.
    file: Option<File>,
    stat: rustix::fs::Stat,
}

impl Opened {
    fn fd(&self) -> BorrowedFd<'_> {
        match &self.file {
            Some(f) => f.as_fd(),
            None => rustix::stdio::stdin(),
        }
    }
}

/// The state of one `cat` run: which operand is next, stdout, the renderer's state (which
/// carries across files), and whether any file failed.
pub struct Job {
    files: Vec<OsString>,
    next: usize,
    /// An operand opened by the quick phase that must be copied on the blocking thread.
    held: Option<Opened>,
    sink: Sink,
    renderer: Option<Renderer>,
    buf: Vec<u8>,
    failed: bool,
    ui: Ui,
    /// What the progress bar shows.
    pub progress: Arc<Progress>,
}

/// What the copy tells the progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    /// Input bytes consumed so far.
    pub bytes: AtomicU64,
    /// The input being copied now is a terminal: someone is typing, and a bar would draw over
    /// what they type.
    pub reading_tty: AtomicBool,
}

/// The page size the read buffer is aligned to.
const PAGE: usize = 4096;

/// Files up to this size are copied in the quick phase.
const QUICK_FILE: u64 = 1 << 20;
/// The quick phase hands over to the blocking thread after this long, so that Ctrl-C and
/// the progress bar are served.
const QUICK_BUDGET: Duration = Duration::from_millis(20);

impl Job {
    /// Prepares a run over `files` (`-` is stdin).
    pub fn new(files: Vec<OsString>, format: Format, ui: Ui) -> eyre::Result<Job> {
        Ok(Job {
            files,
            next: 0,
            held: None,
            sink: Sink::stdout().wrap_err("cat: standard output")?,
            renderer: (!format.is_plain()).then(|| Renderer::new(format)),
            buf: Vec::new(),
            failed: false,
            ui,
            progress: Arc::default(),
        })
    }

    /// Copies operands while they are small regular files and time allows. Returns true when
    /// every operand is done; otherwise the next one is held open for [`Job::run_rest`].
    pub fn run_quick(&mut self) -> eyre::Result<bool> {
        let started = Instant::now();
        while let Some(name) = self.files.get(self.next).cloned() {
            // Opening a FIFO blocks until a writer comes, and this thread must not block: only
            // what stat shows to be a small regular file is opened here.
            let small_file = name == "-"
                || std::fs::metadata(&name).is_ok_and(|m| m.is_file() && m.len() <= QUICK_FILE);
            if !small_file || started.elapsed() > QUICK_BUDGET {
                return Ok(false);
            }
            self.next += 1;
            let Some(opened) = self.open(&name)? else {
                continue;
            };
            let quick = Kind::of(&opened.stat) == Kind::Regular
                && (opened.stat.st_size as u64) <= QUICK_FILE;
            if !quick {
                self.held = Some(opened);
                return Ok(false);
            }
            self.copy(&opened)?;
        }
        Ok(true)
    }

    /// Copies everything left: on a blocking thread, as it may wait on a pipe or terminal.
    pub fn run_rest(mut self) -> eyre::Result<Exit> {
        if let Some(opened) = self.held.take() {
            self.copy(&opened)?;
        }
        while let Some(name) = self.files.get(self.next).cloned() {
            self.next += 1;
            if let Some(opened) = self.open(&name)? {
                self.copy(&opened)?;
            }
        }
        self.finish()
    }

    /// Writes what is still buffered and gives the exit status.
    pub fn finish(mut self) -> eyre::Result<Exit> {
        if let Some(renderer) = self.renderer.as_mut() {
            renderer.finish(self.sink.buffer());
        }
        self.sink
            .flush()
            .map_err(|e| stdout_error(into_output_error(e), WRITE_ERROR))?;
        Ok(if self.failed {
            Exit::Failure
        } else {
            Exit::Success
        })
    }

    /// Opens an operand. A failure is reported and remembered, and gives `None`; only a
    /// failure to write stdout is an error.
    fn open(&mut self, name: &OsStr) -> eyre::Result<Option<Opened>> {
        let result = (|| {
            let file = if name == "-" {
                // A stdin closed at start (`<&-`) is EBADF here, as for GNU cat.
                crate::sys::stdio::stdin()?;
                None
            } else {
                Some(File::open(name)?)
            };
            let fd = file.as_ref().map_or(rustix::stdio::stdin(), |f| f.as_fd());
            let stat = rustix::fs::fstat(fd)?;
            Ok::<_, std::io::Error>((file, stat))
        })();
        match result {
            Ok((file, stat)) => Ok(Some(Opened {
                name: name.to_owned(),
                file,
                stat,
            })),
            Err(e) => {
                self.input_failed(name, &io_reason(&e))?;
                Ok(None)
            }
        }
    }

    /// Reports an input that could not be printed. What was printed before it is written
    /// first, so that, with stderr and stdout on the same file, the message sits between the
    /// files' bytes as GNU's does (small files are otherwise gathered and written later).
    fn input_failed(&mut self, name: &OsStr, reason: &str) -> eyre::Result<()> {
        self.sink
            .flush()
            .map_err(|e| stdout_error(into_output_error(e), WRITE_ERROR))?;
        self.ui.warn(&format!("cat: {}: {reason}", quote(name)));
        self.failed = true;
        Ok(())
    }

    /// Copies one opened operand. Only a stdout failure is an error; an input failure is
    /// reported and the run goes on.
    fn copy(&mut self, input: &Opened) -> eyre::Result<()> {
        let same = self.sink.is_same_file(input.fd(), &input.stat);
        if same.map_err(|e| stdout_error(into_output_error(e), WRITE_ERROR))? {
            return self.input_failed(&input.name, "input file is output file");
        }
        if self.buf.is_empty() {
            // Room to start the chunk on a page boundary: the kernel copies into a
            // page-aligned buffer several times faster on some CPUs (GNU cat aligns too).
            self.buf = vec![0u8; CHUNK + PAGE];
        }
        let tty = Kind::of(&input.stat) == Kind::CharDevice && rustix::termios::isatty(input.fd());
        self.progress.reading_tty.store(tty, Ordering::Relaxed);
        let offset = self.buf.as_ptr().align_offset(PAGE).min(PAGE);
        let buf = &mut self.buf[offset..offset + CHUNK];
        let started = Instant::now();
        let result = match self.renderer.as_mut() {
            None => self
                .sink
                .copy_plain(input.fd(), &input.stat, buf, &self.progress.bytes)
                .map(Some),
            Some(renderer) => {
                render_file(input, renderer, &mut self.sink, buf, &self.progress.bytes)
                    .map(|()| None)
            }
        };
        match result {
            Ok(report) => {
                if let (Some(report), true) = (report, self.ui.verbose > 0) {
                    log_copy(&self.ui, &input.name, &report, started.elapsed());
                }
                Ok(())
            }
            Err(CopyError::Input(e)) => self.input_failed(&input.name, &io_reason(&e)),
            Err(CopyError::Output(e)) => Err(stdout_error(e, WRITE_ERROR)),
        }
    }
}

fn into_output_error(e: CopyError) -> std::io::Error {
    match e {
        CopyError::Input(e) | CopyError::Output(e) => e,
    }
}

/// Renders one input through the formatting options.
fn render_file(
    input: &Opened,
    renderer: &mut Renderer,
    sink: &mut Sink,
    buf: &mut [u8],
    progress: &AtomicU64,
) -> Result<(), CopyError> {
    // Output from a source that may block (a terminal, a pipe) is written before each read,
    // so a typed line shows at once; regular files just fill the buffer.
    let may_block = Kind::of(&input.stat) != Kind::Regular;
    loop {
        if may_block {
            sink.flush()?;
        }
        let n = copy::read(input.fd(), buf)?;
        if n == 0 {
            return Ok(());
        }
        progress.fetch_add(n as u64, Ordering::Relaxed);
        renderer.render(&buf[..n], sink.buffer());
        sink.flush_if_full()?;
    }
}

/// `--verbose`: how a file was copied.
fn log_copy(ui: &Ui, name: &OsStr, report: &copy::Report, took: Duration) {
    let fallback = match &report.fell_back_from {
        Some((method, why)) => format!(" ({} refused: {})", method.name(), io_reason(why)),
        None => String::new(),
    };
    ui.detail(&format!(
        "asyncio-tool: cat: {}: {} by {}{fallback} in {took:.1?}",
        quote(name),
        ui::bytes(report.bytes),
        report.method.name(),
    ));
}

/// Draws the progress bar on stderr once the copy has run for [`PROGRESS_DELAY`] (at once with
/// `--progress`), until this future is dropped. The bar is put in `shown` for the caller to
/// finish. Unless forced, there is no bar while a terminal is being read.
async fn draw_progress(
    ui: &Ui,
    force: bool,
    files: &[OsString],
    progress: &Progress,
    shown: &OnceLock<Bar>,
) -> Infallible {
    if !force {
        tokio::time::sleep(PROGRESS_DELAY).await;
    }
    let typing = || !force && progress.reading_tty.load(Ordering::Relaxed);
    if typing() {
        return std::future::pending().await;
    }
    let total = total_size(files);
    let template = if total.is_some() {
        "{wide_bar} {percent:>3}% {msg}"
    } else {
        "{spinner} {msg}"
    };
    let Some(bar) = ui.progress_bar(force, total, template) else {
        return std::future::pending().await;
    };
    let mut window = RateWindow::new(Instant::now(), progress.bytes.load(Ordering::Relaxed));
    let bar = shown.get_or_init(|| Bar {
        bar,
        total,
        first: window.first(),
    });
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        if typing() {
            // A terminal came next (`cat big -`): the bar goes for good.
            bar.bar.finish_and_clear();
            return std::future::pending().await;
        }
        let done = progress.bytes.load(Ordering::Relaxed);
        window.push(Instant::now(), done);
        bar.show(done, window.span());
    }
}

/// The progress bar being drawn, and the sample its average rate is measured from.
struct Bar {
    bar: ProgressBar,
    total: Option<u64>,
    first: (Instant, u64),
}

impl Bar {
    /// Draws `done` bytes, with the rate of `moved` bytes over a span when there is one, and,
    /// for inputs of a known size, the time left at that rate, as pv shows it.
    fn show(&self, done: u64, moved: Option<(u64, Duration)>) {
        self.bar.set_position(done);
        let of_total = self
            .total
            .map(|t| format!(" / {}", ui::bytes(t)))
            .unwrap_or_default();
        let rate = moved
            .map(|(bytes, span)| format!("  {}", ui::rate(bytes, span)))
            .unwrap_or_default();
        let eta = self
            .total
            .zip(moved)
            .and_then(|(total, (bytes, span))| {
                ui::eta(done, total, bytes as f64 / span.as_secs_f64())
            })
            .map(|eta| format!("  {eta}"))
            .unwrap_or_default();
        self.bar
            .set_message(format!("{}{of_total}{rate}{eta}", ui::bytes(done)));
    }

    /// Ends the bar when the copy is over. On a terminal it is cleared (the shell's prompt
    /// follows); a forced bar written to a file or pipe keeps its last state, drawn with the
    /// final count, so the record ends at 100% rather than at the last tick's value.
    fn finish(&self, ui: &Ui, progress: &Progress, interrupted: bool) {
        if self.bar.is_finished() {
            return;
        }
        if ui.stderr_tty || interrupted {
            self.bar.finish_and_clear();
            return;
        }
        let done = progress.bytes.load(Ordering::Relaxed);
        let (start, base) = self.first;
        let took = start.elapsed();
        let average = (took >= RATE_MIN_SPAN).then(|| (done.saturating_sub(base), took));
        self.show(done, average);
        self.bar.finish();
        // The last state stays as drawn, on a line of its own: detached first, or the newline
        // would be written "above" the bar, which is then drawn again after it.
        self.bar
            .set_draw_target(indicatif::ProgressDrawTarget::hidden());
        ui.newline();
    }
}

/// A rate is never measured over less than this: right after a burst (the quick phase, one
/// big kernel call), a shorter window reads as hundreds of GiB/s.
const RATE_MIN_SPAN: Duration = Duration::from_secs(1);
/// Samples older than this no longer count, so the rate follows the copy's current speed.
const RATE_SPAN: Duration = Duration::from_secs(3);

/// The recent (time, bytes done) samples a rate is computed from.
#[derive(Debug)]
struct RateWindow {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl RateWindow {
    fn new(at: Instant, done: u64) -> Self {
        RateWindow {
            samples: [(at, done)].into(),
        }
    }

    fn first(&self) -> (Instant, u64) {
        self.samples[0]
    }

    fn push(&mut self, at: Instant, done: u64) {
        self.samples.push_back((at, done));
        // Keep the oldest sample that still leaves RATE_SPAN covered.
        while self
            .samples
            .get(1)
            .is_some_and(|&(t, _)| at.duration_since(t) >= RATE_SPAN)
        {
            self.samples.pop_front();
        }
    }

    /// The bytes moved over the window and the time it spans, once that is at least
    /// [`RATE_MIN_SPAN`]: the rate, and from it the time left.
    fn span(&self) -> Option<(u64, Duration)> {
        let (&(t0, b0), &(t1, b1)) = (self.samples.front()?, self.samples.back()?);
        let span = t1.duration_since(t0);
        (span >= RATE_MIN_SPAN).then(|| (b1.saturating_sub(b0), span))
    }

    /// The rate over the window, for people.
    #[cfg(test)]
    fn per_second(&self) -> Option<String> {
        self.span().map(|(bytes, span)| ui::rate(bytes, span))
    }
}

/// The total size of the inputs when they are all regular files (else the bar has no end):
/// what the percentage and the time left are reckoned against.
fn total_size(files: &[OsString]) -> Option<u64> {
    let mut total = 0u64;
    for name in files {
        let size = if name == "-" {
            ui::known_size(crate::sys::stdio::stdin().ok()?)?
        } else {
            let m = std::fs::metadata(name).ok()?;
            m.is_file().then_some(m.len())?
        };
        total = total.saturating_add(size);
    }
    // Files that claim no size (under /proc) have data all the same: no end to show.
    (total > 0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_waits_for_a_second_of_samples_and_forgets_old_ones() {
        let t0 = Instant::now();
        // 256 MiB already done when the bar starts: a burst, not a rate.
        let mut w = RateWindow::new(t0, 256 << 20);
        w.push(t0 + Duration::from_millis(1), 512 << 20);
        assert_eq!(w.per_second(), None);
        w.push(t0 + Duration::from_millis(999), 512 << 20);
        assert_eq!(w.per_second(), None);
        w.push(t0 + Duration::from_secs(2), 768 << 20);
        assert_eq!(w.per_second().as_deref(), Some("256 MiB/s"));
        // Ten seconds later, at 1 MiB/s: only the last three seconds count.
        for s in 3..=12 {
            w.push(t0 + Duration::from_secs(s), (768 << 20) + ((s - 2) << 20));
        }
        assert_eq!(w.per_second().as_deref(), Some("1 MiB/s"));
    }
}
