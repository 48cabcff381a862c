//! `echo-client`: send standard input to a TCP server and print what it sends back.
//!
//! Both directions run at once (full duplex) with a fixed number of buffers, so no amount of
//! data can deadlock it or grow its memory: the naive "write everything, then read" stalls as
//! soon as the data exceeds the socket buffers. At the end of input the client half-closes
//! (shutdown write) and keeps printing until the server closes, so no reply in flight is lost.
//! When the server closes first, the client finishes at once, even with stdin still open.
//!
//! The socket lives on a current-thread runtime; stdin and stdout each have an OS thread
//! ([`stdio`] says why). The session is one `select!` loop over the two directions, Ctrl-C,
//! the idle timer and the progress line, and ends in one of a few [`End`]s.

mod connect;
mod stdio;

use std::cell::Cell;
use std::io::{self, IsTerminal};
use std::time::Duration;

use color_eyre::eyre::{self, WrapErr};
use indicatif::ProgressBar;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::time::Instant;

use crate::cli::EchoClientArgs;
use crate::exit::Exit;
use crate::report::io_reason;
use crate::runtime::{self, Flavor};
use crate::ui::{self, Ui};
use stdio::{Input, Output, OutputSender};

/// The progress line: bytes sent and received, and the rate of the replies.
const PROGRESS_TEMPLATE: &str = "{spinner} {elapsed:>3} {msg}";

/// Runs the subcommand.
pub fn run(args: &EchoClientArgs, ui: &Ui) -> eyre::Result<Exit> {
    let interactive = io::stdin().is_terminal();
    runtime::block_on(Flavor::CurrentThread, session(args, ui, interactive))?
}

/// Byte counts and timestamps shared by the two directions and the loop that watches them.
/// Cells suffice: everything runs in the one task of a current-thread runtime.
struct Stats {
    sent: Cell<u64>,
    received: Cell<u64>,
    /// When bytes last arrived from the server (or the last chunk was handed to stdout).
    last_reply: Cell<Instant>,
    /// The reply side is waiting for stdout to take a buffer: the server is not the one who
    /// is silent, so the idle timer must not fire.
    stdout_busy: Cell<bool>,
}

/// How the exchange ended.
enum End {
    /// The server closed the connection in order (FIN).
    Closed,
    /// Reading from the server failed, e.g. it reset the connection.
    Lost(io::Error),
    /// `--idle-timeout`: nothing came back for this long after the end of input.
    Idle(Duration),
    /// The stdout writer stopped; its error is waiting in `Output::done`.
    StdoutGone,
}

/// Why sending stopped early.
enum SendError {
    Stdin(io::Error),
    Socket(io::Error),
}

/// Connect, exchange, finish: everything between parsing and the exit code. `interactive`:
/// stdin is a terminal (banner, no progress line, a newline after ^C).
async fn session(args: &EchoClientArgs, ui: &Ui, interactive: bool) -> eyre::Result<Exit> {
    let interrupt = runtime::interrupt_signal()?;
    tokio::pin!(interrupt);

    if ui.verbose > 0 {
        eprintln!("connecting to {}", args.addr);
    }
    let announce = ui.verbose > 0 || (interactive && !ui.quiet);
    let mut stream = tokio::select! {
        stream = connect::connect(&args.addr, args.connect_timeout, args.wait, announce) => stream?,
        () = &mut interrupt => return Ok(interrupted(interactive)),
    };
    let peer = stream.peer_addr().ok();
    let server = connect::describe(&args.addr, peer);
    // Lines typed at a terminal must go out at once, not wait for the previous reply's ACK.
    // Bulk data is written in large chunks, so this costs nothing there.
    if let Err(err) = stream.set_nodelay(true) {
        if ui.verbose > 0 {
            eprintln!("cannot set TCP_NODELAY: {}", io_reason(&err));
        }
    }
    if interactive && !ui.quiet {
        eprintln!("connected to {server} — Ctrl-D to finish");
    } else if ui.verbose > 0 {
        eprintln!("connected to {server}");
    }

    let mut input = Input::spawn().wrap_err("cannot start the stdin reader")?;
    let Output {
        full,
        mut empty,
        done,
    } = Output::spawn().wrap_err("cannot start the stdout writer")?;
    tokio::pin!(done);

    // The line would fight with typed text in a terminal, so it is only forced there.
    let bar = if interactive && !args.progress {
        None
    } else {
        ui.progress_bar(args.progress, None, PROGRESS_TEMPLATE)
    };
    let bar = BarGuard(bar);
    let started = Instant::now();
    let stats = Stats {
        sent: Cell::new(0),
        received: Cell::new(0),
        last_reply: Cell::new(started),
        stdout_busy: Cell::new(false),
    };

    let (mut rd, mut wr) = stream.split();
    let mut send_result: Option<Result<(), SendError>> = None;
    let end = {
        let sending = send(&mut wr, &mut input, &stats);
        let replies = receive(&mut rd, full, &mut empty, &stats);
        tokio::pin!(sending, replies);
        let idle = tokio::time::sleep(Duration::from_secs(86_400));
        tokio::pin!(idle);
        let mut idle_armed = false;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                biased;
                () = &mut interrupt => return Ok(interrupted(interactive)),
                result = &mut done => return Err(stdout_failed(result)),
                end = &mut replies => break end,
                result = &mut sending, if send_result.is_none() => {
                    match result {
                        Ok(()) => {
                            if ui.verbose > 0 {
                                bar.println(&format!(
                                    "end of input after {}: half-closed, waiting for the server",
                                    ui::bytes(stats.sent.get())
                                ));
                            }
                            if let Some(limit) = args.idle_timeout {
                                // Silence is counted from the end of input at the earliest.
                                stats.last_reply.set(stats.last_reply.get().max(Instant::now()));
                                idle.as_mut().reset(stats.last_reply.get() + limit);
                                idle_armed = true;
                            }
                        }
                        Err(SendError::Stdin(err)) => {
                            return Err(err).wrap_err("cannot read standard input");
                        }
                        // The reply side sees the same broken connection at once and ends
                        // the exchange; the send error is reported then.
                        Err(SendError::Socket(_)) => {}
                    }
                    send_result = Some(result);
                }
                () = &mut idle, if idle_armed => {
                    let limit = args.idle_timeout.unwrap_or_default();
                    let quiet_until = stats.last_reply.get() + limit;
                    if stats.stdout_busy.get() {
                        idle.as_mut().reset(Instant::now() + limit);
                    } else if Instant::now() >= quiet_until {
                        break End::Idle(limit);
                    } else {
                        idle.as_mut().reset(quiet_until);
                    }
                }
                _ = tick.tick(), if bar.0.is_some() => bar.show(&stats, started),
            }
        }
        // Leaving this block drops the reply side and with it the stdout sender, which lets
        // the writer finish what is queued.
    };

    if matches!(end, End::StdoutGone) {
        return Err(stdout_failed((&mut done).await));
    }
    // Whatever was received is written before anything else is decided.
    tokio::select! {
        biased;
        () = &mut interrupt => return Ok(interrupted(interactive)),
        result = &mut done => match result {
            Ok(Ok(())) => {}
            other => return Err(stdout_failed(other)),
        },
    }
    bar.finish();
    if ui.verbose > 0 {
        eprintln!(
            "sent {}, received {} in {}",
            ui::bytes(stats.sent.get()),
            ui::bytes(stats.received.get()),
            humantime::format_duration(round_ms(started.elapsed()))
        );
    }
    match end {
        End::Closed => match send_result {
            Some(Err(SendError::Socket(err))) => {
                // Not wrapped as an io::Error: a socket's EPIPE must not pass for a closed
                // stdout, which the caller turns into a quiet success.
                Err(eyre::eyre!(
                    "cannot send to {server}: {} (the server closed the connection before \
                     reading all input)",
                    io_reason(&err)
                ))
            }
            Some(_) => Ok(Exit::Success),
            None => {
                if interactive && !ui.quiet {
                    eprintln!("connection closed by {server}");
                }
                Ok(Exit::Success)
            }
        },
        End::Lost(err) => {
            Err(eyre::eyre!("{}", io_reason(&err))).wrap_err(format!("connection to {server} lost"))
        }
        End::Idle(limit) => Err(eyre::eyre!(
            "no reply from {server} for {} after the end of input (--idle-timeout)",
            humantime::format_duration(limit)
        )),
        End::StdoutGone => Ok(Exit::Success),
    }
}

/// Ctrl-C. In a terminal the shell's next prompt would otherwise start right after the "^C"
/// echoed on the half-typed line.
fn interrupted(interactive: bool) -> Exit {
    if interactive {
        eprintln!();
    }
    Exit::Interrupted
}

/// The stdout writer's failure as the error to return. The io::Error stays in the chain, so a
/// closed stdout (`| head -c1`) is recognised by the caller and ends quietly with success.
fn stdout_failed(
    result: Result<io::Result<()>, tokio::sync::oneshot::error::RecvError>,
) -> eyre::Report {
    let err = match result {
        Ok(Err(err)) => err,
        Ok(Ok(())) => io::Error::other("the writer stopped early"),
        Err(_) => io::Error::other("the writer thread ended unexpectedly"),
    };
    eyre::Report::new(err).wrap_err("cannot write to standard output")
}

/// stdin → socket, then a half-close at the end of input.
async fn send(wr: &mut WriteHalf<'_>, input: &mut Input, stats: &Stats) -> Result<(), SendError> {
    while let Some(chunk) = input.next().await {
        let chunk = chunk.map_err(SendError::Stdin)?;
        wr.write_all(chunk.data())
            .await
            .map_err(SendError::Socket)?;
        stats.sent.set(stats.sent.get() + chunk.data().len() as u64);
        input.recycle(chunk);
    }
    // Half-close: the server sees the end of our data and can finish sending its replies.
    wr.shutdown().await.map_err(SendError::Socket)
}

/// socket → stdout until the server closes the connection.
async fn receive(
    rd: &mut ReadHalf<'_>,
    full: OutputSender,
    empty: &mut tokio::sync::mpsc::Receiver<stdio::Chunk>,
    stats: &Stats,
) -> End {
    loop {
        stats.stdout_busy.set(true);
        let Some(mut chunk) = empty.recv().await else {
            return End::StdoutGone;
        };
        stats.stdout_busy.set(false);
        let n = match rd.read(chunk.space()).await {
            Ok(0) => return End::Closed,
            Ok(n) => n,
            Err(err) => return End::Lost(err),
        };
        chunk.set_len(n);
        stats.received.set(stats.received.get() + n as u64);
        stats.last_reply.set(Instant::now());
        if !full.send(chunk) {
            return End::StdoutGone;
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX))
}

/// The optional progress line, cleared on every way out so an error message starts on a
/// clean line.
struct BarGuard(Option<ProgressBar>);

impl BarGuard {
    fn show(&self, stats: &Stats, started: Instant) {
        if let Some(bar) = &self.0 {
            let received = stats.received.get();
            bar.set_message(format!(
                "sent {} · received {} · {}",
                ui::bytes(stats.sent.get()),
                ui::bytes(received),
                ui::rate(received, started.elapsed())
            ));
        }
    }

    fn println(&self, line: &str) {
        match &self.0 {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Drop for BarGuard {
    fn drop(&mut self) {
        self.finish();
    }
}
