//! The single place that builds a tokio runtime, waits for Ctrl-C / SIGTERM / SIGHUP, and shuts the
//! runtime down without ever waiting on a pending stdin read.

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use color_eyre::eyre::{self, WrapErr};
use tokio::signal::unix::{SignalKind, signal};

/// Which runtime a subcommand runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// One thread: starts fastest (~75 µs); for `cat` and `echo-client`, whose work is one
    /// stream at a time.
    CurrentThread,
    /// A worker per core: for `echo-server`, which serves many connections at once.
    MultiThread,
    /// A worker per core but no more than this many: for a load of that many connections,
    /// where a worker with nothing of its own to run only adds cross-thread wake-ups (one
    /// connection on two workers measured a tenth slower per round trip than on one).
    AtMost(std::num::NonZeroUsize),
}

/// How long runtime shutdown may wait for blocking tasks (a stdin read stuck until Enter,
/// tokio#2466) before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(50);

/// Descriptors tokio opens while it builds a runtime: epoll, its waker (an eventfd), a clone
/// of the epoll registry, and for the signal driver a socket pair and a clone of one end
/// (strace of tokio 1.54). The socket pair is made in a `OnceLock` initialiser that panics
/// on EMFILE, so it must never be reached without room for it.
const RUNTIME_FDS: usize = 6;

/// Builds the runtime for `flavor`, runs `fut` to completion on it, then shuts the runtime
/// down with a short timeout so nothing left blocking can hold the exit.
pub fn block_on<F: Future>(flavor: Flavor, fut: F) -> eyre::Result<F::Output> {
    room_for_runtime().wrap_err("cannot start the tokio runtime")?;
    let mut builder = match flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
        Flavor::AtMost(limit) => {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(cores.min(limit.get()));
            builder
        }
    };
    let runtime = builder
        .enable_all()
        .thread_name("asyncio-tool")
        .build()
        .wrap_err("cannot start the tokio runtime")?;
    let output = runtime.block_on(fut);
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    Ok(output)
}

/// Checks that [`RUNTIME_FDS`] descriptors can be opened now, so a low `ulimit -n` is an
/// error naming the limit rather than a panic inside tokio. Nothing else opens descriptors
/// while the runtime is being built, so the ones freed here are the ones tokio gets.
fn room_for_runtime() -> io::Result<()> {
    // Rust reopens a closed stdin on /dev/null before main, so fd 0 is always there to copy.
    let stdin = rustix::stdio::stdin();
    let held: Result<Vec<OwnedFd>, _> = (0..RUNTIME_FDS)
        .map(|_| rustix::io::fcntl_dupfd_cloexec(stdin, 0))
        .collect();
    match held {
        Ok(_) => Ok(()),
        Err(err) => {
            let err = io::Error::from(err);
            let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
            let limit = limit.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
            Err(io::Error::new(
                err.kind(),
                format!(
                    "{} (ulimit -n {limit}; it needs {RUNTIME_FDS} free descriptors)",
                    crate::report::io_reason(&err)
                ),
            ))
        }
    }
}

/// Registers for SIGINT, SIGTERM and SIGHUP now (so a signal that arrives before the first poll
/// is not lost) and returns two futures: the first resolves on the first signal (stop
/// gracefully), the second when another one follows it (stop now). Must be called inside a
/// runtime.
///
/// SIGHUP is a stop request too (the terminal went away, or a supervisor asks): its default
/// action would kill the process without the drain and the summary. Unless it was ignored
/// when the process started: under `nohup` it stays ignored, as the user asked.
pub fn shutdown_signals() -> eyre::Result<(
    impl Future<Output = ()> + Send + 'static,
    impl Future<Output = ()> + Send + 'static,
)> {
    let mut interrupt =
        signal(SignalKind::interrupt()).wrap_err("cannot install the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).wrap_err("cannot install the SIGTERM handler")?;
    let mut hangup = if hangup_ignored() {
        None
    } else {
        Some(signal(SignalKind::hangup()).wrap_err("cannot install the SIGHUP handler")?)
    };
    let (again_tx, again_rx) = tokio::sync::oneshot::channel();
    let first = async move {
        let mut next = async move || {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
                _ = async {
                    match hangup.as_mut() {
                        Some(hangup) => hangup.recv().await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        };
        next().await;
        // The streams stay registered, so a signal sent before this task first polls is kept.
        tokio::spawn(async move {
            next().await;
            let _ = again_tx.send(());
        });
    };
    let again = async move {
        if again_rx.await.is_err() {
            // The first signal never came: neither will a second.
            std::future::pending::<()>().await;
        }
    };
    Ok((first, again))
}

/// Whether SIGHUP is ignored (inherited from `nohup` or a parent's `trap '' HUP`).
fn hangup_ignored() -> bool {
    // SAFETY: an all-zero sigaction is a valid value of this plain C struct.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: with a null new action, sigaction only writes the current one into `current`.
    let rc = unsafe { libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut current) };
    rc == 0 && current.sa_sigaction == libc::SIG_IGN
}

/// Registers for SIGINT only, for the subcommands that exit 130 on Ctrl-C and leave SIGTERM
/// its default action. Must be called inside a runtime.
pub fn interrupt_signal() -> eyre::Result<impl Future<Output = ()> + Send + 'static> {
    let mut interrupt =
        signal(SignalKind::interrupt()).wrap_err("cannot install the SIGINT handler")?;
    Ok(async move {
        interrupt.recv().await;
    })
}
