//! What every transport's server does before it serves: tell scripts the bound address on
//! stdout, and find the service manager to tell it when it is ready and stopping.

use std::io;

use color_eyre::eyre;

use crate::report::io_reason;
use crate::sys::notify::Notifier;
use crate::ui::Ui;

/// The service manager's notifier, or a silent one (with a warning) when `NOTIFY_SOCKET` is
/// unusable: a broken notification must not stop the echo service.
pub(super) fn notifier(ui: &Ui) -> Notifier {
    Notifier::from_env().unwrap_or_else(|err| {
        ui.warn(&format!(
            "not notifying the service manager: {}",
            io_reason(&err)
        ));
        Notifier::default()
    })
}

/// Tells the service manager the server is ready (said under `-v` if it cannot be told).
pub(super) fn ready(notifier: &Notifier, ui: &Ui) {
    if let Err(err) = notifier.ready() {
        ui.detail(&io_reason(&err));
    }
}

/// Tells the service manager the server is stopping (said under `-v` if it cannot be told).
pub(super) fn stopping(notifier: &Notifier, ui: &Ui) {
    if let Err(err) = notifier.stopping() {
        ui.detail(&io_reason(&err));
    }
}

/// The bound address as a line on stdout, written at once so `read` in a script returns now.
/// Scripts find the server by that line: a stdout that cannot take it (closed, full, or its
/// reader gone, `| true`) is an error before anything is served, not a server nobody can find.
/// Unlike a data writer's, a broken pipe here is not a normal end. On the terminal stderr is
/// on, the line is left out: the "listening on" line says it there.
pub(super) fn announce(endpoint: &str, ui: &Ui) -> eyre::Result<()> {
    if stdout_is_stderr_terminal(ui) {
        return Ok(());
    }
    let line = format!("{endpoint}\n");
    crate::sys::stdio::stdout()
        .and_then(|fd| crate::sys::fdio::write_all(fd, line.as_bytes()))
        .map_err(|err| {
            let gone = err.kind() == io::ErrorKind::BrokenPipe;
            let what = if gone {
                "cannot write the address to standard output (nothing reads it)"
            } else {
                "cannot write the address to standard output"
            };
            eyre::Report::new(err).wrap_err(what)
        })
}

/// Whether stdout is the terminal stderr is, with the "listening on" line to be shown there:
/// the address line on stdout would then show the address a second time to the person
/// reading, while no script can be reading it (scripts read a pipe or a file). The address is
/// then said once, on stderr; under `-q`, or when stdout goes anywhere else, it goes on stdout.
fn stdout_is_stderr_terminal(ui: &Ui) -> bool {
    let (out, err) = (rustix::stdio::stdout(), rustix::stdio::stderr());
    let device = |fd: std::os::fd::BorrowedFd<'static>| {
        rustix::fs::fstat(fd)
            .ok()
            .filter(|_| rustix::termios::isatty(fd))
            .map(|stat| stat.st_rdev)
    };
    !ui.quiet && ui.stderr_tty && device(out).is_some() && device(out) == device(err)
}
