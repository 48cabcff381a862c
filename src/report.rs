//! The one error-reporting layer: color-eyre installed once, every error printed (by the
//! [`Ui`](crate::ui::Ui)) as one line `asyncio-tool: <what failed>: <why>`, and the typed
//! [`StdoutClosed`] that ends a run quietly when the reader of stdout goes away.

use std::fmt;
use std::io::{self, Write};

use color_eyre::eyre;

/// The environment variable that asks for color-eyre's full report instead of one line.
/// `RUST_BACKTRACE` alone does not: many Rust users set it globally, and a refused connection
/// is not a bug to debug.
pub const FULL_REPORT_ENV: &str = "ASYNCIO_TOOL_BACKTRACE";

/// Installs the report hook and a panic hook that never panics itself. color-eyre's report
/// hook only when the full report is asked for (environment and location sections off unless
/// so, colour off when `color` is false); otherwise [`OneLineHandler`], which captures nothing:
/// color-eyre would capture a backtrace for every error under `RUST_BACKTRACE=1` (tens to
/// hundreds of milliseconds reading debug info) that the one-line error never shows.
pub fn install(color: bool) -> eyre::Result<()> {
    let full = full_report_wanted();
    let mut hook = color_eyre::config::HookBuilder::default()
        .display_env_section(false)
        .display_location_section(full);
    if !color {
        hook = hook.theme(color_eyre::config::Theme::new());
    }
    let (panic_hook, eyre_hook) = hook.into_hooks();
    if full {
        eyre_hook.install()?;
    } else {
        install_one_line_hook()?;
    }
    // color-eyre's own panic hook prints with `eprintln!`, which panics when stderr is gone:
    // a panic inside the panic hook aborts the process. Write it ourselves and drop failures.
    std::panic::set_hook(Box::new(move |info| {
        let report = panic_hook.panic_report(info);
        let _ = writeln!(io::stderr().lock(), "{report}");
    }));
    Ok(())
}

/// Makes every report from now on carry an [`OneLineHandler`].
fn install_one_line_hook() -> Result<(), eyre::InstallError> {
    eyre::set_hook(Box::new(|_| Box::new(OneLineHandler)))
}

/// The report handler of ordinary runs: no backtrace, no span trace, no location, and the
/// report's debug form is the one-line chain ([`one_line`]'s text).
#[derive(Debug, Clone, Copy)]
pub struct OneLineHandler;

impl eyre::EyreHandler for OneLineHandler {
    fn debug(
        &self,
        error: &(dyn std::error::Error + 'static),
        f: &mut fmt::Formatter<'_>,
    ) -> fmt::Result {
        let chain = std::iter::successors(Some(error), |e| e.source());
        f.write_str(&join_chain(chain))
    }
}

/// True when [`FULL_REPORT_ENV`] is set to anything but `0` or empty.
pub fn full_report_wanted() -> bool {
    std::env::var_os(FULL_REPORT_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The cause chain joined by ": ", with OS errors reduced to their reason
/// ("No such file or directory" rather than "... (os error 2)").
pub fn one_line(err: &eyre::Report) -> String {
    join_chain(err.chain())
}

/// Causes joined by ": ", OS errors by their reason alone.
fn join_chain<'a>(causes: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    causes
        .map(|cause| match cause.downcast_ref::<io::Error>() {
            Some(io) => io_reason(io),
            None => cause.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// An I/O error as a person wants to read it: the OS's words without Rust's "(os error N)".
pub fn io_reason(err: &io::Error) -> String {
    let text = err.to_string();
    match err.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .map(str::to_owned)
            .unwrap_or(text),
        None => text,
    }
}

/// The reader of standard output went away (`| head`): a normal end, not an error. Raised only
/// where stdout is written, so a socket's EPIPE can never pass for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed by its reader")
    }
}

impl std::error::Error for StdoutClosed {}

/// The error a failed write to standard output ends the run with: [`StdoutClosed`] when the
/// reader is gone (EPIPE), otherwise the OS error under `context`.
pub fn stdout_error(err: io::Error, context: &str) -> eyre::Report {
    if err.kind() == io::ErrorKind::BrokenPipe {
        eyre::Report::new(StdoutClosed)
    } else {
        eyre::Report::new(err).wrap_err(context.to_owned())
    }
}

/// True when the run ended because stdout's reader went away.
pub fn is_stdout_closed(err: &eyre::Report) -> bool {
    err.chain().any(|cause| cause.is::<StdoutClosed>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use color_eyre::eyre::WrapErr;

    #[test]
    fn one_line_names_object_and_reason() {
        let err = std::fs::File::open("/nonexistent/x")
            .wrap_err("cannot open /nonexistent/x")
            .unwrap_err();
        assert_eq!(
            one_line(&err),
            "cannot open /nonexistent/x: No such file or directory"
        );
        assert!(!is_stdout_closed(&err));
    }

    /// The handler of ordinary runs shows a report as its one line, like [`one_line`].
    #[test]
    fn one_line_handler_debug_is_the_one_line_chain() {
        struct Shown<'a>(&'a (dyn std::error::Error + 'static));
        impl fmt::Debug for Shown<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                eyre::EyreHandler::debug(&OneLineHandler, self.0, f)
            }
        }
        let err = std::fs::File::open("/nonexistent/x")
            .wrap_err("cannot open /nonexistent/x")
            .unwrap_err();
        let err: &(dyn std::error::Error + 'static) = err.as_ref();
        assert_eq!(
            format!("{:?}", Shown(err)),
            "cannot open /nonexistent/x: No such file or directory"
        );
    }

    #[test]
    fn only_a_stdout_epipe_is_a_closed_stdout() {
        let err = stdout_error(io::ErrorKind::BrokenPipe.into(), "writing");
        assert!(is_stdout_closed(&err.wrap_err("cat")));
        let full = stdout_error(io::Error::from_raw_os_error(28), "write error");
        assert!(!is_stdout_closed(&full));
        assert_eq!(one_line(&full), "write error: No space left on device");
        // A socket's EPIPE, reported as such, is an error.
        let socket = eyre::Report::new(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(!is_stdout_closed(&socket));
    }
}
