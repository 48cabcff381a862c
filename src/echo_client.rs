//! `echo-client`: send standard input to a TCP server and print what it sends back.
//!
//! Both directions run at once (full duplex) with one buffer each, so no amount of data can
//! deadlock it or grow its memory: the naive "write everything, then read" stalls as soon as
//! the data exceeds the socket buffers. At the end of input the client half-closes (shutdown
//! write) and keeps printing until the server closes, so no reply in flight is lost. When the
//! server closes first, the client finishes at once, even with stdin still open.
//!
//! A current-thread runtime connects (every resolved address, timeouts, `--wait`) and then
//! watches: Ctrl-C, the idle timer, the progress line, and the two data pumps, which run on
//! OS threads ([`pump`] says why). The exchange ends when the reply pump ends.

mod connect;
mod pump;

use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre::{self, WrapErr};
use indicatif::ProgressBar;
use tokio::time::Instant;

use crate::cli::EchoClientArgs;
use crate::exit::Exit;
use crate::report::{io_reason, stdout_error};
use crate::runtime::{self, Flavor};
use crate::ui::{self, Ui};
use pump::{Replies, SendError, Shared};

/// The progress line: bytes sent and received, and the rate of the replies.
const PROGRESS_TEMPLATE: &str = "{spinner} {elapsed:>3} {msg}";

/// Runs the subcommand.
pub fn run(args: &EchoClientArgs, ui: &Ui) -> eyre::Result<Exit> {
    let interactive = io::stdin().is_terminal();
    runtime::block_on(Flavor::CurrentThread, session(args, ui, interactive))?
}

/// How the exchange ended.
enum End {
    /// The reply pump finished.
    Replies(Replies),
    /// `--idle-timeout`: nothing came back for this long after the end of input.
    Idle(Duration),
}

/// Connect, exchange, finish: everything between parsing and the exit code. `interactive`:
/// stdin is a terminal (banner, no progress line, a newline after ^C).
async fn session(args: &EchoClientArgs, ui: &Ui, interactive: bool) -> eyre::Result<Exit> {
    let interrupt = runtime::interrupt_signal()?;
    tokio::pin!(interrupt);

    ui.detail(&format!("connecting to {}", args.addr));
    let announce = (ui.verbose > 0 || interactive).then_some(ui);
    let stream = tokio::select! {
        stream = connect::connect(&args.addr, args.connect_timeout, args.wait, announce) => stream?,
        () = &mut interrupt => return Ok(interrupted(ui, interactive)),
    };
    let peer = stream.peer_addr().ok();
    let server = connect::describe(&args.addr, peer);
    // Lines typed at a terminal must go out at once, not wait for the previous reply's ACK.
    // Bulk data is written in large chunks, so this costs nothing there.
    if let Err(err) = stream.set_nodelay(true) {
        ui.detail(&format!("cannot set TCP_NODELAY: {}", io_reason(&err)));
    }
    // The pumps use blocking calls on their own threads: take the socket out of the runtime.
    let socket = stream
        .into_std()
        .and_then(|s| s.set_nonblocking(false).map(|()| s))
        .wrap_err("cannot set up the connection")?;
    if interactive {
        ui.info(&format!("connected to {server} — Ctrl-D to finish"));
    } else {
        ui.detail(&format!("connected to {server}"));
    }

    let shared = Shared::new();
    let sending = socket
        .try_clone()
        .and_then(|s| pump::send(s, Arc::clone(&shared)))
        .wrap_err("cannot start sending")?;
    let replies = pump::receive(socket, Arc::clone(&shared)).wrap_err("cannot start receiving")?;
    tokio::pin!(sending, replies);

    // The line would fight with typed text in a terminal, so it is only forced there.
    let bar = if interactive && !args.progress {
        None
    } else {
        ui.progress_bar(args.progress, None, PROGRESS_TEMPLATE)
    };
    // Drawn only from here (every tick below), never from indicatif's ticker thread: a
    // redraw from that thread could land after the clear on Ctrl-C and leave the line behind.
    if let Some(bar) = &bar {
        bar.disable_steady_tick();
    }
    let bar = BarGuard(bar, ui);

    let mut send_result: Option<Result<(), SendError>> = None;
    let idle = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(idle);
    let mut idle_armed = false;
    let mut input_ended = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let end = loop {
        tokio::select! {
            biased;
            () = &mut interrupt => return Ok(interrupted(ui, interactive)),
            end = &mut replies => break End::Replies(end.unwrap_or_else(|_| {
                Replies::Lost(io::Error::other("the receiving thread stopped unexpectedly"))
            })),
            result = &mut sending, if send_result.is_none() => {
                let result = result.unwrap_or_else(|_| Err(SendError::Stdin(io::Error::other(
                    "the sending thread stopped unexpectedly",
                ))));
                match result {
                    Ok(()) => {
                        input_ended = Instant::now();
                        ui.detail(&format!(
                            "end of input after {}: half-closed, waiting for the server",
                            ui::bytes(shared.sent())
                        ));
                        if let Some(limit) = args.idle_timeout {
                            idle.as_mut().reset(input_ended + limit);
                            idle_armed = true;
                        }
                    }
                    Err(SendError::Stdin(err)) => {
                        return Err(err).wrap_err("cannot read standard input");
                    }
                    // The reply pump sees the same broken connection at once and ends the
                    // exchange; the send error is reported then.
                    Err(SendError::Socket(_)) => {}
                }
                send_result = Some(result);
            }
            () = &mut idle, if idle_armed => {
                let limit = args.idle_timeout.unwrap_or_default();
                // Silence counts from the end of input or the last reply, whichever is later,
                // and only while the server is the one we are waiting for.
                let quiet_until = Instant::from_std(shared.last_reply()).max(input_ended) + limit;
                let now = Instant::now();
                if !shared.awaiting_server() {
                    idle.as_mut().reset(now + limit);
                } else if now >= quiet_until {
                    break End::Idle(limit);
                } else {
                    idle.as_mut().reset(quiet_until);
                }
            }
            _ = tick.tick(), if bar.0.is_some() => bar.show(&shared),
        }
    };

    if send_result.is_none() {
        // The send pump may have finished at the same moment; take its word if it is there.
        if let Ok(result) = sending.as_mut().get_mut().try_recv() {
            send_result = Some(result);
        }
    }
    bar.finish();
    ui.detail(&format!(
        "sent {}, received {} in {}",
        ui::bytes(shared.sent()),
        ui::bytes(shared.received()),
        humantime::format_duration(round_ms(shared.started().elapsed()))
    ));
    match end {
        End::Replies(Replies::Closed) => match send_result {
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
                if interactive && !shared.input_ended() {
                    ui.info(&format!("connection closed by {server}"));
                }
                Ok(Exit::Success)
            }
        },
        End::Replies(Replies::Lost(err)) => {
            Err(eyre::eyre!("{}", io_reason(&err))).wrap_err(format!("connection to {server} lost"))
        }
        // A closed stdout (`| head -c1`) ends quietly with success.
        End::Replies(Replies::Stdout(err)) => {
            Err(stdout_error(err, "cannot write to standard output"))
        }
        End::Idle(limit) => Err(eyre::eyre!(
            "no reply from {server} for {} after the end of input (--idle-timeout)",
            humantime::format_duration(limit)
        )),
    }
}

/// Ctrl-C. In a terminal the shell's next prompt would otherwise start right after the "^C"
/// echoed on the half-typed line.
fn interrupted(ui: &Ui, interactive: bool) -> Exit {
    if interactive {
        ui.newline();
    }
    Exit::Interrupted
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX))
}

/// The optional progress line, cleared on every way out so an error message starts on a
/// clean line.
struct BarGuard<'a>(Option<ProgressBar>, &'a Ui);

impl BarGuard<'_> {
    fn show(&self, shared: &Shared) {
        if let Some(bar) = &self.0 {
            let received = shared.received();
            bar.set_message(format!(
                "sent {} · received {} · {}",
                ui::bytes(shared.sent()),
                ui::bytes(received),
                ui::rate(received, shared.started().elapsed())
            ));
            bar.tick();
        }
    }

    fn finish(&self) {
        self.1.finish_live();
    }
}

impl Drop for BarGuard<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}
