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
//! OS threads ([`pump`] says why). The exchange ends when the reply pump ends, when the idle
//! timer strikes or stdin fails; the send pump is then stopped and reports exactly what it
//! left unsent, and [`outcome()`] weighs both sides' reports into the exit status. Nothing is
//! decided from whichever side happened to notice a broken connection first.
//!
//! `--verify` routes both pumps through a bounded window that compares every echoed byte with
//! the byte sent ([`verify`]). The probe and load modes (`--count`, `--connections`) read no
//! stdin and have their own engines over a transport seam ([`measure`]).

mod connect;
mod flow;
mod measure;
mod outcome;
mod pump;
mod send;
mod tls;
mod udp;
mod verify;

use std::io::IsTerminal;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre::{self, WrapErr};
use indicatif::ProgressBar;
use tokio::time::Instant;

use crate::cli::EchoClientArgs;
use crate::exit::Exit;
use crate::runtime::{self, Flavor};
use crate::ui::hexdump::HexDump;
use crate::ui::{self, Ui};
use outcome::{Ended, Replies, Sending, Stall, Way, outcome};
use pump::{Phase, Shared};

/// The progress line: bytes sent and received, and the rate of the replies.
const PROGRESS_TEMPLATE: &str = "{spinner} {elapsed:>3} {msg}";
/// The progress line when stdin is a file of known size: how much of it has come back, with
/// the percentage, rate and time left, as pv shows them. No bar: with the byte counts it would
/// not fit in 80 columns; the message is cut rather than wrapped on a narrow terminal, so it
/// ends with what matters least.
const SIZED_TEMPLATE: &str = "{spinner} {elapsed:>3} {percent:>3}% {wide_msg}";

/// Runs the subcommand.
pub fn run(args: &EchoClientArgs, ui: &Ui) -> eyre::Result<Exit> {
    connect::send_proxy(args.send_proxy);
    if let Some(mode) = args.measure.mode() {
        return measure::run(args, mode, ui);
    }
    if args.zero_io {
        return runtime::block_on(Flavor::CurrentThread, check(args, ui))?;
    }
    // Checked before connecting: with no stdout every reply would be lost, and with no stdin
    // there is nothing to send (`< /dev/null` says that on purpose).
    let stdout = crate::sys::stdio::stdout().wrap_err("cannot write to standard output")?;
    let stdin = crate::sys::stdio::stdin().wrap_err("cannot read standard input")?;
    let stdio = Stdio {
        stdin,
        stdout,
        interactive: std::io::stdin().is_terminal(),
    };
    if let crate::net::endpoint::Endpoint::Udp(target) = &args.target.0 {
        let session = udp::session(target, args, ui, stdio);
        return runtime::block_on(Flavor::CurrentThread, session)?;
    }
    runtime::block_on(Flavor::CurrentThread, session(args, ui, stdio))?
}

/// The address families `-4` / `-6` allow.
fn family(args: &EchoClientArgs) -> connect::Family {
    match (args.ipv4, args.ipv6) {
        (true, _) => connect::Family::V4,
        (_, true) => connect::Family::V6,
        _ => connect::Family::Any,
    }
}

/// The local address and port `-s`/`-p` ask for.
fn source(args: &EchoClientArgs) -> connect::Source {
    connect::Source {
        ip: args.source,
        port: args.source_port,
    }
}

/// The client's standard input and output. `interactive`: stdin is a terminal (banner, no
/// progress line, a newline after ^C).
struct Stdio {
    stdin: BorrowedFd<'static>,
    stdout: BorrowedFd<'static>,
    interactive: bool,
}

/// Connect, exchange, finish: everything between parsing and the exit code.
async fn session(args: &EchoClientArgs, ui: &Ui, stdio: Stdio) -> eyre::Result<Exit> {
    let interactive = stdio.interactive;
    let interrupt = runtime::interrupt_signal()?;
    tokio::pin!(interrupt);

    let announce = (ui.verbose > 0 || interactive).then_some(ui);
    let (session, server) = tokio::select! {
        linked = link(args, ui, announce) => linked?,
        () = &mut interrupt => return Ok(interrupted(ui, interactive)),
    };
    if interactive {
        ui.info(&format!("connected to {server} — Ctrl-D to finish"));
    } else {
        ui.detail(&format!("connected to {server}"));
    }
    let (exchange, verdict) = tokio::select! {
        ended = async {
            match session {
                Link::Plain(socket) => exchange(args, ui, &stdio, socket, &server).await,
                Link::Tls(session) => tls::exchange(args, ui, &stdio, *session, &server).await,
            }
        } => ended?,
        () = &mut interrupt => return Ok(interrupted(ui, interactive)),
    };
    if interactive
        && matches!(
            (&exchange.replies, &exchange.sending),
            (Some(Replies::Closed), Sending::Stopped(_))
        )
    {
        ui.info(&format!("connection closed by {server}"));
    }
    let exit = outcome(exchange, &server)?;
    // Only an exchange that ended cleanly has a whole reply to judge.
    verdict.transpose()?;
    Ok(exit)
}

/// The connection, plain or after its TLS handshake.
enum Link {
    Plain(socket2::Socket),
    Tls(Box<tls::Session>),
}

/// Connects (from `-s`/`-p`'s source, retrying under `--wait`) and shakes hands over TLS:
/// the link and how to name the server. `announce`: say that `--wait` is waiting.
async fn link(
    args: &EchoClientArgs,
    ui: &Ui,
    announce: Option<&Ui>,
) -> eyre::Result<(Link, String)> {
    let target = &args.target.0;
    let tls = tls::setup(args, ui)?;
    ui.detail(&format!("connecting to {target}"));
    // The pumps run on their own threads and wait in poll(2); the socket stays non-blocking
    // (see `pump` for why that matters to a shared pipe).
    let connect::Connected { socket, server } = connect::connect_from(
        target,
        family(args),
        args.connect_timeout,
        args.wait,
        announce,
        source(args),
    )
    .await?;
    let link = match &tls {
        Some(tls) => {
            let unix = matches!(target, crate::net::endpoint::Endpoint::Unix(_));
            let shake = tls.handshake(socket, unix, args.connect_timeout, &server, Some(ui));
            Link::Tls(Box::new(shake.await?))
        }
        None => Link::Plain(socket),
    };
    Ok((link, server))
}

/// `-z`, nc's port check: connect (and shake hands over TLS), close, and say how long it
/// took; a failure to connect is the usual error, exit 1. No stdin or stdout is needed.
async fn check(args: &EchoClientArgs, ui: &Ui) -> eyre::Result<Exit> {
    let interrupt = runtime::interrupt_signal()?;
    tokio::pin!(interrupt);
    let started = Instant::now();
    let announce = (ui.verbose > 0).then_some(ui);
    let (connection, server) = tokio::select! {
        linked = link(args, ui, announce) => linked?,
        () = &mut interrupt => return Ok(Exit::Interrupted),
    };
    let took = started.elapsed();
    drop(connection);
    // To the microsecond, as the probe's lines: a loopback connect takes well under 1ms.
    ui.info(&format!(
        "connection to {server} succeeded in {:.3} ms",
        took.as_secs_f64() * 1e3
    ));
    Ok(Exit::Success)
}

/// Runs both pumps until the reply side ends, a stall, or a failed stdin; then stops the send
/// side and collects what both report, and with `--verify` the comparison's verdict.
/// `server` names the peer in `-x`'s dump.
async fn exchange(
    args: &EchoClientArgs,
    ui: &Ui,
    stdio: &Stdio,
    socket: socket2::Socket,
    server: &str,
) -> eyre::Result<(Ended, Option<eyre::Result<()>>)> {
    let shared = Shared::new();
    let window = args.measure.verify.then(Arc::<verify::Window>::default);
    let (dump_sent, dump_received) = dumps(args, ui, server);
    let mut sender = socket
        .try_clone()
        .and_then(|s| {
            let shared = Arc::clone(&shared);
            let with = send::With {
                window: window.clone(),
                crlf: args.crlf,
                dump: dump_sent,
            };
            send::send(stdio.stdin, s, shared, with)
        })
        .wrap_err("cannot start sending")?;
    let replies = pump::receive(
        socket,
        stdio.stdout,
        Arc::clone(&shared),
        window.clone(),
        dump_received,
    )
    .wrap_err("cannot start receiving")?;
    tokio::pin!(replies);
    let bar = Bar::new(args, ui, stdio.interactive);
    let mut sending: Option<Sending> = None;
    let mut idle = Idle::new(args.idle_timeout, window.clone());
    let mut quit = Quit::new(args.quit_after);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let (replies, stall) = loop {
        tokio::select! {
            biased;
            end = &mut replies => break (Some(end), None),
            () = quit.fired() => break (None, quit.verdict(&shared)),
            report = sender.ended(), if sending.is_none() => {
                match &report {
                    Sending::Finished => {
                        quit.arm();
                        ui.detail(&format!(
                            "end of input after {}: half-closed, waiting for the server",
                            ui::bytes(shared.sent())
                        ));
                    }
                    Sending::Stdin(_) => {
                        sending = Some(report);
                        break (None, None);
                    }
                    // The reply side sees the same broken connection at once and ends the
                    // exchange; the send error is weighed then.
                    Sending::Socket(..) | Sending::Stopped(_) => {}
                }
                sending = Some(report);
            }
            () = idle.fired() => {
                if let Some(stall) = idle.check(&shared) {
                    break (None, Some(stall));
                }
            }
            _ = tick.tick(), if bar.0.is_some() => bar.show(&shared),
        }
    };
    let sending = match sending {
        Some(report) => report,
        None => sender.finish().await,
    };
    bar.finish();
    say_totals(ui, &shared);
    let verdict = window.map(|w| w.verdict(shared.sent()));
    let ended = Ended {
        replies,
        sending,
        stall,
        sent: shared.sent(),
        received: shared.received(),
        verifying: verdict.is_some(),
    };
    Ok((ended, verdict))
}

/// `-x`'s dumps of the bytes sent to `server` and received from it, or none.
fn dumps(args: &EchoClientArgs, ui: &Ui, server: &str) -> (Option<HexDump>, Option<HexDump>) {
    match args.hex_dump {
        true => {
            let (sent, received) = HexDump::both(ui, server);
            (Some(sent), Some(received))
        }
        false => (None, None),
    }
}

/// How long `--verify` waits for an echo, when no `--idle-timeout` is given, once it waits for
/// nothing else: all input is sent, or the window is full. Without it a server that swallows
/// the end of the stream and keeps reading would hang the client for ever (it never gets the
/// end of input the window holds back). As the default `--connect-timeout`; `--verify`'s help
/// and the README say it.
const VERIFY_PATIENCE: Duration = Duration::from_secs(10);

/// `--idle-timeout`: strikes when no byte has moved either way for the limit while the
/// server is the one we wait for. Under `--verify` without it, [`VERIFY_PATIENCE`] applies
/// while only echoes are awaited.
struct Idle {
    limit: Option<Duration>,
    /// `--verify`'s window: when it is full the server is the one we wait for.
    window: Option<Arc<verify::Window>>,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl Idle {
    fn new(limit: Option<Duration>, window: Option<Arc<verify::Window>>) -> Idle {
        let first = limit
            .or(window.as_ref().map(|_| VERIFY_PATIENCE))
            .unwrap_or(Duration::from_secs(86_400));
        Idle {
            limit,
            window,
            sleep: Box::pin(tokio::time::sleep(first)),
        }
    }

    /// The limit, and whether it is `--verify`'s default.
    fn limit(&self) -> Option<(Duration, bool)> {
        match (self.limit, &self.window) {
            (Some(limit), _) => Some((limit, false)),
            (None, Some(_)) => Some((VERIFY_PATIENCE, true)),
            (None, None) => None,
        }
    }

    /// Resolves when the next check is due; never without a limit.
    async fn fired(&mut self) {
        if self.limit().is_none() {
            std::future::pending::<()>().await;
        }
        (&mut self.sleep).await;
    }

    /// A stall if there is one; otherwise re-arms for the earliest time there could be.
    fn check(&mut self, shared: &Shared) -> Option<Stall> {
        let (limit, by_default) = self.limit()?;
        let now = Instant::now();
        let quiet_until = Instant::from_std(shared.last_progress()) + limit;
        let window_full = self.window.as_ref().is_some_and(|w| w.full());
        // Once every byte sent came back, no echo is awaited: only the server's close, which
        // is waited for as without --verify (the server may keep the connection open).
        let echo_due = shared.sent() > shared.received();
        let only_echoes = echo_due && (window_full || shared.phase() == Phase::Done);
        // Our stdout is the slow side, not the server; and --verify's own bound waits only
        // for echoes, never for input.
        if !shared.awaiting_server() || (by_default && !only_echoes) {
            self.sleep.as_mut().reset(now + limit);
            return None;
        }
        if now < quiet_until {
            self.sleep.as_mut().reset(quiet_until);
            return None;
        }
        let way = match shared.phase() {
            _ if window_full => Way::NotEchoing,
            Phase::Input => Way::Neither,
            Phase::Socket => Way::NotReading,
            Phase::Window => Way::NotEchoing,
            Phase::Done => Way::NoReply,
        };
        Some(Stall {
            limit,
            way,
            sent: shared.sent(),
            received: shared.received(),
            verify_default: by_default,
        })
    }
}

/// `--quit-after` (nc's -q): armed at the end of input, it ends the wait for the rest of the
/// echo after that long.
struct Quit {
    after: Option<Duration>,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl Quit {
    fn new(after: Option<Duration>) -> Quit {
        Quit { after, sleep: None }
    }

    /// The end of input: the countdown starts (once).
    fn arm(&mut self) {
        if let (Some(after), None) = (self.after, &self.sleep) {
            self.sleep = Some(Box::pin(tokio::time::sleep(after)));
        }
    }

    /// Resolves when it is time to quit; never before [`Quit::arm`].
    async fn fired(&mut self) {
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().await,
            None => std::future::pending().await,
        }
    }

    /// What quitting now costs: nothing when every byte sent came back, else the echo that
    /// did not, as a stall.
    fn verdict(&self, shared: &Shared) -> Option<Stall> {
        (shared.sent() > shared.received()).then(|| Stall {
            limit: self.after.unwrap_or_default(),
            way: Way::Quit,
            sent: shared.sent(),
            received: shared.received(),
            verify_default: false,
        })
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

/// `-v`'s last word on a stream exchange: the bytes each way and how long it took.
fn say_totals(ui: &Ui, shared: &Shared) {
    ui.detail(&format!(
        "sent {}, received {} in {}",
        ui::bytes(shared.sent()),
        ui::bytes(shared.received()),
        ui::duration(shared.started().elapsed())
    ));
}

/// The optional progress line, cleared on every way out so an error message starts on a
/// clean line; with the size of the input when stdin is a file.
struct Bar<'a>(Option<ProgressBar>, &'a Ui, Option<u64>);

impl<'a> Bar<'a> {
    fn new(args: &EchoClientArgs, ui: &'a Ui, interactive: bool) -> Bar<'a> {
        // A pipe has no end to reckon a percentage against; UDP's line counts datagrams.
        let udp = matches!(args.target.0, crate::net::endpoint::Endpoint::Udp(_));
        let total = match crate::sys::stdio::stdin() {
            Ok(stdin) if !udp => ui::known_size(stdin),
            _ => None,
        };
        let template = match total {
            Some(_) => SIZED_TEMPLATE,
            None => PROGRESS_TEMPLATE,
        };
        // The line would fight with typed text in a terminal, so it is only forced there; and
        // with a dump's lines, which are progress enough.
        let bar = if (interactive || args.hex_dump) && !args.progress {
            None
        } else {
            ui.progress_bar(args.progress, total, template)
        };
        // Drawn only from the exchange's ticks, never from indicatif's ticker thread: a
        // redraw from that thread could land after the clear on Ctrl-C and leave the line
        // behind.
        if let Some(bar) = &bar {
            bar.disable_steady_tick();
        }
        Bar(bar, ui, total)
    }

    fn show(&self, shared: &Shared) {
        let Some(bar) = &self.0 else { return };
        let (sent, received) = (shared.sent(), shared.received());
        let elapsed = shared.started().elapsed();
        let rate = ui::rate(received, elapsed);
        let line = match self.2 {
            None => format!(
                "sent {} · received {} · {rate}",
                ui::bytes(sent),
                ui::bytes(received)
            ),
            Some(total) => {
                // Reckoned on the echo, not on what was sent: the run ends when the input has
                // come back, and several MiB of it can sit in the socket buffers on the way.
                bar.set_position(received);
                let eta = ui::eta(received, total, received as f64 / elapsed.as_secs_f64())
                    .map(|eta| format!(" · {eta}"))
                    .unwrap_or_default();
                format!(
                    "{} of {} echoed · {rate}{eta} · sent {}",
                    ui::bytes(received),
                    ui::bytes(total),
                    ui::bytes(sent)
                )
            }
        };
        bar.set_message(line);
        bar.tick();
    }

    fn finish(&self) {
        self.1.finish_live();
    }
}

impl Drop for Bar<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}
