//! Probe mode, like ping: one message every `--interval`, each checked byte for byte, a line
//! per reply on stdout (`64 bytes from 127.0.0.1:7: seq=3 time=0.071 ms`), then a summary.
//! A lost reply is reported on its own line and counted, and the probe goes on; on a stream
//! the connection is then opened anew, since a late echo would be read as the next one's.
//! Over UDP a second reply to a probe already answered is a duplicate, printed with `(DUP!)`
//! and counted, as ping does; it is not a loss, so it does not fail the run.
//! Ctrl-C ends it with the summary, and the status is the summary's `ok`, as load mode's: 0 if
//! replies came and none was lost or differed (the probe Ctrl-C cut short, counted sent and
//! lost as ping counts it, is not held against the run).

use std::cell::Cell;
use std::time::Duration;

use color_eyre::eyre;
use tokio::time::{Instant, MissedTickBehavior};

use super::json::{Counts, ProbeSummary, print, print_json};
use super::stats::Latencies;
use super::transport::{Dialer, Echo, RoundTrip};
use super::transport::{Duplicates, Failure};
use super::{Options, random_message, stamp, zeroed};
use crate::exit::Exit;
use crate::runtime;
use crate::ui::{self, Ui};

/// Probe mode's settings.
pub(in crate::cmd::echo_client) struct Probe {
    /// How many probes; 0 for no end.
    pub(super) count: u64,
    pub(super) interval: Duration,
    /// A connection per probe, its connect time reported apart.
    pub(super) new_connection: bool,
    pub(super) options: Options,
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
    /// 1 when Ctrl-C cut a probe short: counted lost, as ping counts it, but not held
    /// against the run.
    cut: u64,
    rtt: Latencies,
    connect: Latencies,
    json: bool,
    ui: &'a Ui,
}

impl Tally<'_> {
    /// A line of the probe's output: stdout, or stderr when stdout carries the JSON.
    fn line(&self, text: &str) -> eyre::Result<()> {
        if self.json {
            self.ui.info(text);
            Ok(())
        } else {
            print(&format!("{text}\n"))
        }
    }

    /// The probe Ctrl-C interrupted after it was sent.
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
    let interrupt = runtime::interrupt_signal()?;
    tokio::pin!(interrupt);
    let size = probe.options.size;
    // The first connection is made before the first probe, with `--wait`, so a server that
    // cannot be reached at all is an error, as for the stdin mode.
    let dialing = Instant::now();
    let (first, server) = tokio::select! {
        dialed = dialer.dial(probe.options.wait) => dialed?,
        () = &mut interrupt => return Ok(Exit::Interrupted),
    };
    // With --new-connection the first probe goes over it, reporting its connect time (with
    // --wait's retries, if any).
    let mut first_connect = probe.new_connection.then(|| dialing.elapsed());
    let mut conn = Some(first);
    let unit = if size == 1 { "byte" } else { "bytes" };
    ui.info(&format!("ECHO {server}: {size} {unit} per message"));
    let mut tally = Tally {
        server,
        size,
        counts: Counts::default(),
        duplicates: 0,
        cut: 0,
        rtt: Latencies::new(),
        connect: Latencies::new(),
        json: probe.options.json,
        ui,
    };
    let mut msg = random_message(size, 1)?;
    let mut reply = zeroed(size, 1)?;
    let mut ticker = tokio::time::interval(probe.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut interrupted = false;
    let mut seq = 0u64;
    while probe.count == 0 || seq < probe.count {
        seq += 1;
        tokio::select! {
            biased;
            () = &mut interrupt => { interrupted = true; break; }
            _ = ticker.tick() => {}
        }
        stamp(&mut msg, seq);
        let connect = first_connect.take();
        let sending = Cell::new(false);
        let once = probe_once(
            &dialer, &mut conn, connect, &probe, &msg, &mut reply, &sending,
        );
        let outcome = tokio::select! {
            biased;
            () = &mut interrupt => { interrupted = true; None }
            outcome = once => Some(outcome),
        };
        match outcome {
            Some(Err(TlsAnswer)) => {
                eyre::bail!("{}: {}", tally.server, crate::net::sniff::TLS_ANSWER)
            }
            Some(Ok(found)) => tally.note(seq, found)?,
            None => {
                // Ping counts a packet it sent and got no answer for as lost, with no line.
                if sending.get() {
                    tally.cut_short();
                }
                break;
            }
        }
    }
    finish(tally, probe.new_connection, interrupted, started.elapsed())
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

/// Prints the summary and decides the exit status.
fn finish(
    tally: Tally<'_>,
    new_connection: bool,
    interrupted: bool,
    elapsed: Duration,
) -> eyre::Result<Exit> {
    let c = tally.counts;
    let summary = ProbeSummary {
        mode: "probe",
        server: tally.server.clone(),
        size: tally.size,
        counts: c,
        duplicates: tally.duplicates,
        // One rule with or without Ctrl-C, as load mode's: replies came and none was lost
        // or differed. A duplicate is not a loss (ping exits 0 with them).
        ok: c.received > 0 && c.mismatched == 0 && c.lost == tally.cut,
        rtt_ms: tally.rtt.times(),
        connect_ms: if new_connection {
            tally.connect.times()
        } else {
            None
        },
        interrupted,
    };
    if tally.json {
        print_json(&summary)?;
    } else {
        print(&text(&summary, elapsed))?;
    }
    if summary.ok {
        return Ok(Exit::Success);
    }
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
        "\n--- {} echo statistics ---\n{} sent, {} received, {} lost, {} mismatched{}, time {}\n",
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
