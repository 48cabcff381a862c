//! Probe mode, like ping: one message every `--interval`, each checked byte for byte, a header
//! line and a line per reply on stdout (`64 bytes from 127.0.0.1:7: seq=3 time=0.071 ms`), then
//! a summary with the packet loss (`--summary-only`: the header and the summary alone).
//! A lost reply is reported on its own line and counted, and the probe goes on; on a stream
//! the connection is then opened anew, since a late echo would be read as the next one's.
//! Over UDP a second reply to a probe already answered is a duplicate, printed with `(DUP!)`
//! and counted, as ping does; it is not a loss, so it does not fail the run.
//! Ctrl-C or `--deadline` ends it with the summary, and the status is the summary's `ok`, as
//! load mode's: 0 if replies came and none was lost or differed (the probe cut short, counted
//! sent and lost as ping counts it, is not held against the run). SIGQUIT (Ctrl-\) prints the
//! summary so far on stderr and the probe goes on, as ping's does.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use color_eyre::eyre::{self, WrapErr};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::{Instant, MissedTickBehavior, Sleep};

use super::json::{Counts, ProbeSummary, Run, print, print_summary};
use super::transport::{Dialer, Echo, RoundTrip};
use super::transport::{Duplicates, Failure};
use super::{Options, random_message, stamp, zeroed};
use crate::exit::Exit;
use crate::latency::Latencies;
use crate::runtime;
use crate::ui::{self, Ui};

/// Probe mode's settings.
pub(in crate::cmd::echo_client) struct Probe {
    /// How many probes; 0 for no end.
    pub(super) count: u64,
    pub(super) interval: Duration,
    /// The run ends this long after it started, whatever the count.
    pub(super) deadline: Option<Duration>,
    /// No line per probe: the header and the summary only.
    pub(super) summary_only: bool,
    /// A connection per probe, its connect time reported apart.
    pub(super) new_connection: bool,
    /// The server as the command line names it, for an error before the first connection.
    pub(super) target: String,
    pub(super) options: Options,
}

/// Why the probe stopped before its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Interrupted,
    Deadline,
}

/// What may come while the probe waits: Ctrl-C and the deadline end it, SIGQUIT asks for the
/// summary so far.
struct Events {
    interrupt: Pin<Box<dyn Future<Output = ()> + Send>>,
    quit: Signal,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl Events {
    /// Registers for the signals now, so one sent before the first wait is not lost (and
    /// SIGQUIT no longer dumps core), and starts the deadline's clock.
    fn new(deadline: Option<Duration>) -> eyre::Result<Events> {
        Ok(Events {
            interrupt: Box::pin(runtime::interrupt_signal()?),
            quit: signal(SignalKind::quit()).wrap_err("cannot install the SIGQUIT handler")?,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep(d))),
        })
    }

    /// Awaits `work` unless Ctrl-C or the deadline comes first, calling `status` on each
    /// SIGQUIT meanwhile. Once it has returned a [`Stop`] it must not be called again.
    async fn until<F: Future>(
        &mut self,
        work: F,
        mut status: impl FnMut(),
    ) -> Result<F::Output, Stop> {
        let Events {
            interrupt,
            quit,
            deadline,
        } = self;
        tokio::pin!(work);
        loop {
            let due = async {
                match deadline.as_mut() {
                    Some(sleep) => sleep.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = interrupt.as_mut() => return Err(Stop::Interrupted),
                () = due => return Err(Stop::Deadline),
                Some(()) = quit.recv() => status(),
                done = &mut work => return Ok(done),
            }
        }
    }
}

/// What one probe found, and the duplicates of earlier replies seen meanwhile (as probes
/// before this one).
struct Found {
    outcome: Outcome,
    duplicates: Duplicates,
}

impl Found {
    fn alone(outcome: Outcome) -> Found {
        Found {
            outcome,
            duplicates: Duplicates::default(),
        }
    }
}

/// How one probe ended.
enum Outcome {
    Reply {
        rtt: Duration,
        connect: Option<Duration>,
        echo: Echo,
    },
    Lost(String),
}

/// The running tally, and where lines go.
struct Tally<'a> {
    server: String,
    size: usize,
    counts: Counts,
    /// Replies that came a second time (UDP).
    duplicates: u64,
    /// 1 when Ctrl-C or the deadline cut a probe short: counted lost, as ping counts it, but
    /// not held against the run.
    cut: u64,
    rtt: Latencies,
    connect: Latencies,
    /// Connect times are reported (`--new-connection`).
    new_connection: bool,
    summary_only: bool,
    json: bool,
    /// When the first probe was due: the summary's time counts from here.
    started: Instant,
    ui: &'a Ui,
}

impl Tally<'_> {
    /// A line of the probe's output: stdout, or stderr when stdout carries the JSON.
    fn out(&self, text: &str) -> eyre::Result<()> {
        if self.json {
            self.ui.info(text);
            Ok(())
        } else {
            print(&format!("{text}\n"))
        }
    }

    /// A probe's own line, unless `--summary-only`.
    fn line(&self, text: &str) -> eyre::Result<()> {
        if self.summary_only {
            return Ok(());
        }
        self.out(text)
    }

    /// The summary of the probes so far.
    fn summary(&self, interrupted: bool, elapsed: Duration) -> ProbeSummary {
        let c = self.counts;
        ProbeSummary {
            mode: "probe",
            server: self.server.clone(),
            size: self.size,
            counts: c,
            duplicates: self.duplicates,
            // One rule with or without Ctrl-C, as load mode's: replies came and none was lost
            // or differed. A duplicate is not a loss (ping exits 0 with them).
            ok: c.received > 0 && c.mismatched == 0 && c.lost == self.cut,
            rtt_ms: self.rtt.times(),
            connect_ms: if self.new_connection {
                self.connect.times()
            } else {
                None
            },
            duration_s: elapsed.as_secs_f64(),
            interrupted,
        }
    }

    /// SIGQUIT's answer: the summary so far, on stderr whatever stdout carries, so a script
    /// reading stdout still finds one summary.
    fn status(&self) {
        let elapsed = self.started.elapsed();
        self.ui
            .info(text(&self.summary(false, elapsed), elapsed).trim_end());
    }

    /// The probe Ctrl-C or the deadline interrupted after it was sent.
    fn cut_short(&mut self) {
        self.counts.sent += 1;
        self.counts.lost += 1;
        self.cut = 1;
    }

    fn note(&mut self, seq: u64, found: Found) -> eyre::Result<()> {
        // Each duplicate first: it came before this probe's own reply, or its wait's end.
        let (size, server) = (self.size, &self.server);
        for &back in &found.duplicates.each {
            let dup = seq.saturating_sub(back);
            self.line(&format!("{size} bytes from {server}: seq={dup} (DUP!)"))?;
        }
        let more = found.duplicates.more;
        if more > 0 {
            self.line(&format!("{more} more duplicates from {server} (DUP!)"))?;
        }
        self.duplicates += found.duplicates.each.len() as u64 + more;
        self.counts.sent += 1;
        let size = self.size;
        let server = &self.server;
        let text = match found.outcome {
            Outcome::Reply { rtt, connect, echo } => {
                self.counts.received += 1;
                self.rtt.record(rtt);
                let connect = connect.map_or(String::new(), |c| {
                    self.connect.record(c);
                    format!(" connect={}", ms(c))
                });
                let differs = match echo {
                    Echo::Intact => String::new(),
                    Echo::Differs(at) => {
                        self.counts.mismatched += 1;
                        format!(" (reply differs from what was sent at byte {})", at + 1)
                    }
                };
                format!(
                    "{size} bytes from {server}: seq={seq}{connect} time={}{differs}",
                    ms(rtt)
                )
            }
            Outcome::Lost(why) => {
                self.counts.lost += 1;
                format!("no reply from {server}: seq={seq}: {why}")
            }
        };
        self.line(&text)
    }
}

/// `0.071 ms`: to the microsecond, as ping prints it.
fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Runs the probe to its summary and exit status.
pub(in crate::cmd::echo_client) async fn run<D: Dialer>(
    dialer: D,
    probe: Probe,
    ui: &Ui,
) -> eyre::Result<Exit> {
    // The deadline counts from here, as ping's from its start: the first connection too.
    let mut events = Events::new(probe.deadline)?;
    let size = probe.options.size;
    // The first connection is made before the first probe, with `--wait`, so a server that
    // cannot be reached at all is an error, as for the stdin mode.
    let dialing = Instant::now();
    let (first, server) = match events.until(dialer.dial(probe.options.wait), || {}).await {
        Ok(dialed) => dialed?,
        Err(Stop::Interrupted) => return Ok(Exit::Interrupted),
        Err(Stop::Deadline) => eyre::bail!(
            "cannot connect to {}: not connected within --deadline {}",
            probe.target,
            probe.deadline.map_or_else(String::new, ui::duration)
        ),
    };
    // With --new-connection the first probe goes over it, reporting its connect time (with
    // --wait's retries, if any).
    let first_connect = probe.new_connection.then(|| dialing.elapsed());
    let mut msg = random_message(size, 1)?;
    let mut reply = zeroed(size, 1)?;
    let unit = if size == 1 { "byte" } else { "bytes" };
    let header = format!("ECHO {server}: {size} {unit} per message");
    let mut tally = Tally {
        server,
        size,
        counts: Counts::default(),
        duplicates: 0,
        cut: 0,
        rtt: Latencies::new(),
        connect: Latencies::new(),
        new_connection: probe.new_connection,
        summary_only: probe.summary_only,
        json: probe.options.json,
        started: Instant::now(),
        ui,
    };
    // With the replies, as ping's `PING host ...` line: what the lines below are about.
    tally.out(&header)?;
    let first = (first, first_connect);
    let buffers = (&mut msg[..], &mut reply[..]);
    let stop = probes(&dialer, first, &probe, &mut tally, &mut events, buffers).await?;
    finish(tally, stop, &probe.options.run)
}

/// Sends the probes until the count, or until Ctrl-C or the deadline, which it returns.
/// `first`: the first connection and, with `--new-connection`, the time it took to open.
async fn probes<D: Dialer>(
    dialer: &D,
    first: (D::Conn, Option<Duration>),
    probe: &Probe,
    tally: &mut Tally<'_>,
    events: &mut Events,
    (msg, reply): (&mut [u8], &mut [u8]),
) -> eyre::Result<Option<Stop>> {
    let (first, mut first_connect) = first;
    let mut conn = Some(first);
    let mut ticker = tokio::time::interval(probe.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut seq = 0u64;
    while probe.count == 0 || seq < probe.count {
        seq += 1;
        if let Err(stop) = events.until(ticker.tick(), || tally.status()).await {
            return Ok(Some(stop));
        }
        stamp(msg, seq);
        let connect = first_connect.take();
        let sending = Cell::new(false);
        let once = probe_once(dialer, &mut conn, connect, probe, msg, reply, &sending);
        let outcome = events.until(once, || tally.status()).await;
        match outcome {
            Ok(Err(TlsAnswer)) => {
                eyre::bail!("{}: {}", tally.server, crate::net::sniff::TLS_ANSWER)
            }
            Ok(Ok(found)) => tally.note(seq, found)?,
            Err(stop) => {
                // Ping counts a packet it sent and got no answer for as lost, with no line.
                if sending.get() {
                    tally.cut_short();
                }
                return Ok(Some(stop));
            }
        }
    }
    Ok(None)
}

/// One probe: a connection if there is none, the message, its echo within `--timeout`.
/// The connection is kept only when the probe came back intact and `--new-connection` is
/// off: after a difference a stream's replies may be out of step with the messages (one
/// inserted byte made every later probe differ), so the next probe starts afresh.
/// `connect`: the time it took to open `conn`, when the caller opened it. `sending` is set once
/// the message starts out, so an interrupted probe knows whether it was sent.
async fn probe_once<D: Dialer>(
    dialer: &D,
    conn: &mut Option<D::Conn>,
    mut connect: Option<Duration>,
    probe: &Probe,
    msg: &[u8],
    reply: &mut [u8],
    sending: &Cell<bool>,
) -> Result<Found, TlsAnswer> {
    let mut open = match conn.take() {
        Some(open) => open,
        None => {
            let start = Instant::now();
            match dialer.dial(None).await {
                Ok((open, _)) => {
                    connect = probe.new_connection.then(|| start.elapsed());
                    open
                }
                Err(err) => {
                    let outcome = Outcome::Lost(crate::report::one_line(&err));
                    return Ok(Found::alone(outcome));
                }
            }
        }
    };
    let start = Instant::now();
    sending.set(true);
    let timeout = probe.options.timeout;
    let trip = tokio::time::timeout(timeout, open.round_trip(msg, reply)).await;
    let duplicates = open.take_duplicates();
    let outcome = match trip {
        Ok(Ok(echo)) => {
            let rtt = start.elapsed();
            if !probe.new_connection && echo == Echo::Intact {
                *conn = Some(open);
            }
            Outcome::Reply { rtt, connect, echo }
        }
        Ok(Err(Failure::Tls)) => return Err(TlsAnswer),
        Ok(Err(failure)) => Outcome::Lost(failure.to_string()),
        Err(_) => Outcome::Lost(format!("no echo within {}", ui::duration(timeout))),
    };
    Ok(Found {
        outcome,
        duplicates,
    })
}

/// A plain-text probe's reply was a TLS record: the run ends there, in one line.
struct TlsAnswer;

/// Prints the summary and decides the exit status. `stop`: what ended the probe before its
/// count, if anything.
fn finish(tally: Tally<'_>, stop: Option<Stop>, run: &Run) -> eyre::Result<Exit> {
    let elapsed = tally.started.elapsed();
    let summary = tally.summary(stop == Some(Stop::Interrupted), elapsed);
    if tally.json {
        print_summary(&summary, (summary.counts, summary.size), run, &tally.rtt)?;
    } else {
        print(&text(&summary, elapsed))?;
    }
    if summary.ok {
        return Ok(Exit::Success);
    }
    let c = tally.counts;
    if c.received == 0 {
        eyre::bail!("no reply from {}", tally.server);
    }
    eyre::bail!("{}", c.trouble())
}

/// The summary as ping prints its own, after an empty line: in a terminal the `^C` that ended
/// the probe is echoed there, and the summary would start on its line.
fn text(s: &ProbeSummary, elapsed: Duration) -> String {
    let c = s.counts;
    let mut out = format!(
        "\n--- {} echo statistics ---\n{} sent, {} received, {} lost, {} mismatched{}, \
         {}% packet loss, time {}\n",
        s.server,
        c.sent,
        c.received,
        c.lost,
        c.mismatched,
        // Only when there were some, as ping shows them.
        match s.duplicates {
            0 => String::new(),
            n => format!(", +{n} duplicates"),
        },
        loss_percent(c.lost, c.sent),
        ui::duration(elapsed)
    );
    for (name, times) in [("rtt", s.rtt_ms), ("connect", s.connect_ms)] {
        if let Some(t) = times {
            out.push_str(&format!(
                "{name} min/avg/max/mdev = {:.3}/{:.3}/{:.3}/{:.3} ms\n\
                 {name} p50/p90/p99 = {:.3}/{:.3}/{:.3} ms\n",
                t.min, t.avg, t.max, t.mdev, t.p50, t.p90, t.p99
            ));
        }
    }
    out
}

/// The share of messages lost in percent, as ping's `%g` prints it: six significant digits
/// and no trailing zeros (`0`, `20`, `33.3333`, `0.001`), so one loss in many is never `0`.
fn loss_percent(lost: u64, sent: u64) -> String {
    if lost == 0 || sent == 0 {
        return "0".into();
    }
    let p = lost as f64 * 100.0 / sent as f64;
    let decimals = (5 - p.log10().floor() as i64).clamp(0, 20) as usize;
    let shown = format!("{p:.decimals$}");
    if shown.contains('.') {
        shown.trim_end_matches('0').trim_end_matches('.').into()
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_is_shown_as_ping_shows_it() {
        assert_eq!(loss_percent(0, 5), "0");
        assert_eq!(loss_percent(0, 0), "0");
        assert_eq!(loss_percent(1, 5), "20");
        assert_eq!(loss_percent(5, 5), "100");
        assert_eq!(loss_percent(1, 3), "33.3333");
        assert_eq!(loss_percent(2, 3), "66.6667");
        assert_eq!(loss_percent(1, 100_000), "0.001");
        assert_eq!(loss_percent(1, 7_000_000_000), "0.0000000142857");
    }
}
