//! `asyncio-tool cat`: GNU cat, byte for byte, at the kernel's speed.
//!
//! The whole job runs as one blocking task on the current-thread runtime (one hand-off, not
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
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use color_eyre::eyre::{self, WrapErr};

use crate::cli::CatArgs;
use crate::exit::Exit;
use crate::report::{io_reason, print_warning};
use crate::runtime::{self, Flavor};
use crate::ui::{self, Ui};
use copy::{CHUNK, CopyError, Kind, Sink};
use render::{Format, Renderer};

/// How long a copy must run before its progress bar appears (unless `--progress`).
const PROGRESS_DELAY: Duration = Duration::from_secs(1);

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
    let progress = Arc::new(AtomicU64::new(0));
    let show_progress =
        args.progress || (ui.stderr_tty && !ui.quiet && !std::io::stdout().is_terminal());
    let ui = ui.clone();
    let force = args.progress;
    runtime::block_on(Flavor::CurrentThread, async move {
        let interrupted = runtime::interrupt_signal()?;
        let job = {
            let (files, ui, progress) = (files.clone(), ui.clone(), Arc::clone(&progress));
            tokio::task::spawn_blocking(move || cat_files(&files, format, &ui, &progress))
        };
        let bar = async {
            if show_progress {
                draw_progress(&ui, force, &files, &progress).await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            result = job => result.wrap_err("cat: the copy task failed")?,
            () = interrupted => Ok(Exit::Interrupted),
            never = bar => match never {},
        }
    })?
}

/// Copies every operand to stdout in order: the body of `cat`, on a blocking thread.
pub fn cat_files(
    files: &[OsString],
    format: Format,
    ui: &Ui,
    progress: &AtomicU64,
) -> eyre::Result<Exit> {
    let mut sink = Sink::stdout().wrap_err("cat: standard output")?;
    let mut renderer = (!format.is_plain()).then(|| Renderer::new(format));
    let mut buf = vec![0u8; CHUNK];
    let mut failed = false;
    for name in files {
        match cat_one(name, &mut sink, renderer.as_mut(), &mut buf, ui, progress) {
            Ok(()) => {}
            Err(FileError::Input(msg)) => {
                print_warning(&format!("cat: {msg}"), ui.color);
                failed = true;
            }
            Err(FileError::Output(err)) => {
                return Err(err).wrap_err("cat: write error on standard output");
            }
        }
    }
    if let Some(renderer) = renderer.as_mut() {
        renderer.finish(sink.buffer());
    }
    sink.flush()
        .map_err(into_output_error)
        .wrap_err("cat: write error on standard output")?;
    Ok(if failed { Exit::Failure } else { Exit::Success })
}

enum FileError {
    /// This file failed: the message names it and the reason.
    Input(String),
    /// stdout failed: the run ends.
    Output(std::io::Error),
}

fn into_output_error(e: CopyError) -> std::io::Error {
    match e {
        CopyError::Input(e) | CopyError::Output(e) => e,
    }
}

fn cat_one(
    name: &OsStr,
    sink: &mut Sink,
    renderer: Option<&mut Renderer>,
    buf: &mut [u8],
    ui: &Ui,
    progress: &AtomicU64,
) -> Result<(), FileError> {
    let shown = Path::new(name).display();
    let fail = |e: &std::io::Error| FileError::Input(format!("{shown}: {}", io_reason(e)));
    let file;
    let input: BorrowedFd<'_> = if name == "-" {
        rustix::stdio::stdin()
    } else {
        file = File::open(name).map_err(|e| fail(&e))?;
        file.as_fd()
    };
    let stat = rustix::fs::fstat(input).map_err(|e| fail(&e.into()))?;
    if sink.is_same_file(input, &stat) {
        return Err(FileError::Input(format!(
            "{shown}: input file is output file"
        )));
    }
    let side = |e: CopyError| match e {
        CopyError::Input(e) => fail(&e),
        CopyError::Output(e) => FileError::Output(e),
    };
    let started = Instant::now();
    match renderer {
        None => {
            let report = sink.copy_plain(input, &stat, buf, progress).map_err(side)?;
            if ui.verbose > 0 {
                let fallback = match &report.fell_back_from {
                    Some((method, why)) => {
                        format!(" ({} refused: {})", method.name(), io_reason(why))
                    }
                    None => String::new(),
                };
                eprintln!(
                    "asyncio-tool: cat: {shown}: {} by {}{fallback} in {:.1?}",
                    ui::bytes(report.bytes),
                    report.method.name(),
                    started.elapsed()
                );
            }
        }
        Some(renderer) => {
            // Output from a source that may block (a terminal, a pipe) is written before each
            // read, so a typed line shows at once; regular files just fill the buffer.
            let may_block = Kind::of(&stat) != Kind::Regular;
            loop {
                if may_block {
                    sink.flush().map_err(side)?;
                }
                let n = copy::read(input, buf).map_err(side)?;
                if n == 0 {
                    break;
                }
                progress.fetch_add(n as u64, Ordering::Relaxed);
                renderer.render(&buf[..n], sink.buffer());
                sink.flush_if_full().map_err(side)?;
            }
        }
    }
    Ok(())
}

/// Draws the progress bar on stderr once the copy has run for [`PROGRESS_DELAY`] (at once with
/// `--progress`), until this future is dropped.
async fn draw_progress(
    ui: &Ui,
    force: bool,
    files: &[OsString],
    progress: &AtomicU64,
) -> Infallible {
    if !force {
        tokio::time::sleep(PROGRESS_DELAY).await;
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
    // The bar must vanish when the copy ends, however this future is dropped.
    struct Clear(indicatif::ProgressBar);
    impl Drop for Clear {
        fn drop(&mut self) {
            self.0.finish_and_clear();
        }
    }
    let bar = Clear(bar);
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let done = progress.load(Ordering::Relaxed);
        bar.0.set_position(done);
        let of_total = total
            .map(|t| format!(" / {}", ui::bytes(t)))
            .unwrap_or_default();
        bar.0.set_message(format!(
            "{}{of_total}  {}",
            ui::bytes(done),
            ui::rate(done, start.elapsed())
        ));
    }
}

/// The total size of the inputs when they are all regular files (else the bar has no end).
fn total_size(files: &[OsString]) -> Option<u64> {
    let mut total = 0u64;
    for name in files {
        let meta = if name == "-" {
            let stat = rustix::fs::fstat(rustix::stdio::stdin()).ok()?;
            (Kind::of(&stat) == Kind::Regular).then_some(stat.st_size as u64)?
        } else {
            let m = std::fs::metadata(name).ok()?;
            m.is_file().then_some(m.len())?
        };
        total += meta;
    }
    Some(total)
}
