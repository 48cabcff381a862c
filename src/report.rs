//! The one error-reporting layer: color-eyre installed once, every error printed as one line
//! `asyncio-tool: <what failed>: <why>`, the long report only when `RUST_BACKTRACE` asks for it.

use std::io::{self, Write};

use color_eyre::eyre;

/// Installs color-eyre's report and panic hooks. Environment and location sections are off
/// (they are for developers, who get them back with `RUST_BACKTRACE=1`), and so is colour
/// when `color` is false.
pub fn install(color: bool) -> eyre::Result<()> {
    let mut hook = color_eyre::config::HookBuilder::default()
        .display_env_section(false)
        .display_location_section(long_report_wanted());
    if !color {
        hook = hook.theme(color_eyre::config::Theme::new());
    }
    hook.install()
}

fn long_report_wanted() -> bool {
    std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0")
}

/// Prints `err` on stderr: one line naming what failed and the OS reason, or color-eyre's full
/// report when `RUST_BACKTRACE` is set.
pub fn print_error(err: &eyre::Report, color: bool) {
    let prefix = if color {
        "\x1b[1;31masyncio-tool:\x1b[0m"
    } else {
        "asyncio-tool:"
    };
    let mut stderr = io::stderr().lock();
    // Nothing useful can be done if stderr itself is gone.
    let _ = if long_report_wanted() {
        writeln!(stderr, "{prefix} {err:?}")
    } else {
        writeln!(stderr, "{prefix} {}", one_line(err))
    };
}

/// Prints a message that is not fatal (a file skipped, an accept error) in the same format.
pub fn print_warning(msg: &str, color: bool) {
    let prefix = if color {
        "\x1b[1;33masyncio-tool:\x1b[0m"
    } else {
        "asyncio-tool:"
    };
    let _ = writeln!(io::stderr().lock(), "{prefix} {msg}");
}

/// The cause chain joined by ": ", with OS errors reduced to their reason
/// ("No such file or directory" rather than "... (os error 2)").
pub fn one_line(err: &eyre::Report) -> String {
    err.chain()
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

/// True when the failure was a closed stdout (or socket) somewhere in the chain: a reader that
/// went away (`| head`) is a normal end, not an error.
pub fn is_broken_pipe(err: &eyre::Report) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
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
        assert!(!is_broken_pipe(&err));
    }

    #[test]
    fn broken_pipe_is_found_in_the_chain() {
        let err = Err::<(), _>(io::Error::from(io::ErrorKind::BrokenPipe))
            .wrap_err("writing to stdout")
            .unwrap_err();
        assert!(is_broken_pipe(&err));
    }
}
