//! Probe mode, like ping: one message every `--interval`, each checked byte for byte, a header
//! line and a line per reply on stdout (`64 bytes from 127.0.0.1:7: seq=3 time=0.071 ms`), then
//! a summary with the packet loss (`--summary-only`: the header and the summary alone).
//!
//! The probes keep their schedule whatever the replies do, as ping's: over one connection
//! several are in flight, their replies matched in order on a stream and by the number stamped
//! in the message over UDP ([`message`]); a ring of send times bounds them ([`flight`]). So a
//! stalled server shows as the backlog it is, not as one slow sample (coordinated omission).
//! A probe not answered within `--timeout` is reported lost on its own line; a reply that still
//! comes is printed `(late)` and counted received, as iputils ping counts one it had reported
//! missing. A broken connection loses the probes awaiting their replies on it, and the next
//! probe opens another; so does a stream reply that differs (the stream is then likely out of
//! step). With `--new-connection` each probe has a connection of its own, in a task of its own.
//! Over UDP a second reply to a probe already answered is a duplicate, printed with `(DUP!)`
//! and counted, as ping does; it is not a loss, so it does not fail the run.
//! Ctrl-C or `--deadline` ends it with the summary, and the status is the summary's `ok`, as
//! load mode's: 0 if replies came and none was lost or differed (the probes cut short, counted
//! sent and lost as ping counts them, are not held against the run). SIGQUIT (Ctrl-\) prints
//! the summary so far on stderr and the probe goes on, as ping's does.

mod flight;
mod message;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre::{self, WrapErr};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinSet;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};

use super::json::{Counts, ProbeSummary, Run, print, print_summary};
use super::series::{self, ProbeSeries};
use super::transport::{Dialer, Echo, Failure, Io, Pipe, Pipeline, RoundTrip, compare};
use super::{Options, copy, zeroed};
use crate::exit::Exit;
use crate::latency::Latencies;
use crate::runtime;
use crate::ui::{self, Ui};
use flight::{Flight, Settled, State, capacity};
use message::Messages;

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
    /// `--report-every`, `--json-lines`, `--warmup`, `--hdr-log`, `--percentiles`.
    pub(super) series: series::Settings,
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

/// A reply to a probe, as the tally records it.
struct Reply {
    /// The round trip, when known: a reply late past the ring of send times has none.
    rtt: Option<Duration>,
    /// The connection's own connect time (`--new-connection`).
    connect: Option<Duration>,
    echo: Echo,
    /// It came after its probe was declared lost.
    late: bool,
}

/// The running tally, and where lines go.
struct Tally<'a> {
    server: String,
    size: usize,
    counts: Counts,
    /// Replies that came a second time (UDP).
    duplicates: u64,
    /// Replies that came after their probe was declared lost: counted received, as ping
    /// counts them, and no longer lost.
    late: u64,
    /// Probes Ctrl-C or the deadline cut short: counted lost, as ping counts them, but not
    /// held against the run.
    cut: u64,
    rtt: Latencies,
    connect: Latencies,
    /// Connect times are reported (`--new-connection`).
    new_connection: bool,
    summary_only: bool,
    json: bool,
    /// When the first probe was due: the summary's time counts from here (after the warmup).
    started: Instant,
    /// The intervals, the warmup, the files.
    series: ProbeSeries,
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
            late: self.late,
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

    /// The time the summary covers: since the first probe, or the end of the warmup.
    fn elapsed(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.series.warmup())
    }

    /// SIGQUIT's answer: the summary so far, on stderr whatever stdout carries, so a script
    /// reading stdout still finds one summary.
    fn status(&self) {
        let elapsed = self.elapsed();
        self.ui
            .info(text(&self.summary(false, elapsed), elapsed).trim_end());
    }

    /// A probe sent.
    fn sent(&mut self) -> eyre::Result<()> {
        if !self.series.sent(self.ui)? {
            self.counts.sent += 1;
        }
        Ok(())
    }

    /// The one place a reply to a probe is recorded, with its round trip.
    fn reply(&mut self, seq: u64, reply: Reply) -> eyre::Result<()> {
        let intact = reply.echo == Echo::Intact;
        if self
            .series
            .reply(seq, reply.rtt, reply.late, intact, self.ui)?
        {
            return self.warm_reply(seq, &reply);
        }
        self.counts.received += 1;
        if reply.late {
            // As ping counts it: received, so no longer lost.
            self.counts.lost = self.counts.lost.saturating_sub(1);
            self.late += 1;
        }
        let time = reply.rtt.map_or(String::new(), |rtt| {
            self.rtt.record(rtt);
            format!(" time={}", ms(rtt))
        });
        let connect = reply.connect.map_or(String::new(), |c| {
            self.connect.record(c);
            format!(" connect={}", ms(c))
        });
        let differs = match reply.echo {
            Echo::Intact => String::new(),
            Echo::Differs(at) => {
                self.counts.mismatched += 1;
                format!(" (reply differs from what was sent at byte {})", at + 1)
            }
        };
        let late = if reply.late { " (late)" } else { "" };
        let (size, server) = (self.size, &self.server);
        self.line(&format!(
            "{size} bytes from {server}: seq={seq}{connect}{time}{differs}{late}"
        ))
    }

    /// A reply to a probe of the warmup: its line, marked, and no figure of the summary.
    fn warm_reply(&self, seq: u64, reply: &Reply) -> eyre::Result<()> {
        let time = reply
            .rtt
            .map_or(String::new(), |rtt| format!(" time={}", ms(rtt)));
        let differs = match reply.echo {
            Echo::Intact => "",
            Echo::Differs(_) => " (reply differs from what was sent)",
        };
        let (size, server) = (self.size, &self.server);
        self.line(&format!(
            "{size} bytes from {server}: seq={seq}{time}{differs} (warmup)"
        ))
    }

    /// The one place a probe's loss is recorded: `why`, or with `None` cut short by Ctrl-C
    /// or the deadline (no line, as ping's; not held against the run).
    fn lost(&mut self, seq: u64, why: Option<&str>) -> eyre::Result<()> {
        let warm = self.series.lost(seq, self.ui)?;
        let mark = if warm { " (warmup)" } else { "" };
        if !warm {
            self.counts.lost += 1;
        }
        match why {
            Some(why) => self.line(&format!(
                "no reply from {}: seq={seq}: {why}{mark}",
                self.server
            )),
            None => {
                self.cut += u64::from(!warm);
                Ok(())
            }
        }
    }

    /// A second reply to probe `seq` (UDP), `(DUP!)` as ping prints it.
    fn duplicate(&mut self, seq: u64) -> eyre::Result<()> {
        let warm = self.series.duplicate(seq, self.ui)?;
        self.duplicates += u64::from(!warm);
        let (size, server) = (self.size, &self.server);
        let mark = if warm { " (warmup)" } else { "" };
        self.line(&format!(
            "{size} bytes from {server}: seq={seq} (DUP!){mark}"
        ))
    }

    /// A reply that answers no probe awaiting one and is no probe's message (UDP): another
    /// run's, or changed on the way. A mismatch, though no probe's reply.
    fn stray(&mut self) -> eyre::Result<()> {
        if self.series.stray(self.ui)? {
            return Ok(());
        }
        self.counts.mismatched += 1;
        let server = &self.server;
        self.line(&format!(
            "{} bytes from {server}: answers no probe awaiting a reply (differs from every \
             message sent)",
            self.size
        ))
    }
}

/// `0.071 ms`: to the microsecond, as ping prints it.
fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// A probe lost to `--timeout`.
fn no_echo(timeout: Duration) -> String {
    format!("no echo within {}", ui::duration(timeout))
}

/// Runs the probe to its summary and exit status.
pub(in crate::cmd::echo_client) async fn run<D: Dialer>(
    dialer: D,
    probe: Probe,
    ui: &Ui,
) -> eyre::Result<Exit> {
    // Before anything else: a file that cannot be written costs no run.
    let series = ProbeSeries::open(&probe.series, probe.options.size)?;
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
    let first_connect = dialing.elapsed();
    let unit = if size == 1 { "byte" } else { "bytes" };
    let header = format!("ECHO {server}: {size} {unit} per message");
    let mut tally = Tally {
        server,
        size,
        counts: Counts::default(),
        duplicates: 0,
        late: 0,
        cut: 0,
        rtt: Latencies::new(),
        connect: Latencies::new(),
        new_connection: probe.new_connection,
        summary_only: probe.summary_only,
        json: probe.options.json,
        started: Instant::now(),
        series,
        ui,
    };
    // With the replies, as ping's `PING host ...` line: what the lines below are about.
    tally.out(&header)?;
    let started = tally.started;
    let plan = (&probe.series, probe.count, probe.interval);
    tally.series.start(plan, started, &tally.server)?;
    let mut on = Schedule::new(&probe, &mut tally, &mut events)?;
    let stop = if probe.new_connection {
        let first = (first, first_connect);
        each_on_its_own(Arc::new(dialer), first, &mut on).await?
    } else {
        one_connection(&dialer, first, &mut on).await?
    };
    finish(tally, stop, &probe.options.run)
}

/// What both ways of probing share: the probes in flight, their messages, the schedule.
struct Schedule<'a, 't> {
    probe: &'a Probe,
    tally: &'a mut Tally<'t>,
    events: &'a mut Events,
    flight: Flight,
    messages: Messages,
    ticker: Interval,
    /// When the latest probe was sent.
    last_sent: Instant,
}

impl<'a, 't> Schedule<'a, 't> {
    fn new(
        probe: &'a Probe,
        tally: &'a mut Tally<'t>,
        events: &'a mut Events,
    ) -> eyre::Result<Self> {
        let (size, timeout) = (probe.options.size, probe.options.timeout);
        let mut ticker = tokio::time::interval(probe.interval);
        // A send held up (a reconnection, the ring full) shifts the schedule, as ping's; no
        // burst to catch up.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(Schedule {
            probe,
            tally,
            events,
            flight: Flight::new(capacity(timeout, probe.interval, size), timeout),
            messages: Messages::new(size)?,
            ticker,
            last_sent: Instant::now(),
        })
    }

    /// Whether probes remain to be sent.
    fn sending(&self) -> bool {
        // The warmup's probes come on top of the count, as its time on top of load's.
        let count = self
            .probe
            .count
            .saturating_add(self.tally.series.warm_probes());
        self.probe.count == 0 || self.flight.next() <= count
    }

    /// Whether the next probe is held up: the one whose place in the ring it takes still
    /// awaits its reply (only with `--timeout` far longer than `--interval`).
    fn held_up(&self) -> bool {
        matches!(self.flight.in_the_way(), Some((_, State::Awaiting)))
    }

    /// Sends the next probe, as far as counting goes; returns its number.
    fn send(&mut self) -> eyre::Result<u64> {
        self.tally.sent()?;
        self.last_sent = Instant::now();
        Ok(self.flight.send(self.last_sent))
    }

    /// When to look again at the probes in flight (the oldest awaited one's timeout), or
    /// `None` when the count is sent and no reply is to come: none awaited, and none lost
    /// unless `--timeout` has passed since the last send (a lost probe's reply may still come
    /// late until then, as ping lingers for it).
    fn wake(&mut self, sending: bool) -> Option<Option<Instant>> {
        let due = self.flight.due();
        if sending || due.is_some() {
            return Some(due);
        }
        let end = self.last_sent + self.probe.options.timeout;
        (self.flight.may_come_late() && Instant::now() < end).then_some(Some(end))
    }

    /// Declares lost every probe whose `--timeout` has passed.
    fn expire(&mut self) -> eyre::Result<()> {
        let now = Instant::now();
        while let Some(seq) = self.flight.expire(now) {
            self.tally
                .lost(seq, Some(&no_echo(self.probe.options.timeout)))?;
        }
        Ok(())
    }

    /// Declares probe `seq` lost for `why` with its connection, if it awaits its reply.
    fn lose(&mut self, seq: u64, why: &str) -> eyre::Result<()> {
        if self.flight.forget(seq) {
            self.tally.lost(seq, Some(why))?;
        }
        Ok(())
    }

    /// Records a reply to probe `seq`, come now: `measured`, the reply as the caller timed it
    /// (its own connection's), or else timed from the probe's send.
    fn settle(&mut self, seq: u64, echo: Echo, measured: Option<Reply>) -> eyre::Result<()> {
        let reply = |rtt, late| Reply {
            rtt,
            connect: None,
            echo,
            late,
        };
        match self.flight.settle(seq, Instant::now()) {
            Settled::Reply(rtt) => self
                .tally
                .reply(seq, measured.unwrap_or_else(|| reply(Some(rtt), false))),
            Settled::Late(rtt) => self.tally.reply(seq, reply(rtt, true)),
            Settled::Duplicate => self.tally.duplicate(seq),
            Settled::Unknown => self.tally.stray(),
        }
    }

    /// Ctrl-C or the deadline: the probes awaiting their replies count as sent and lost, as
    /// ping counts them, with no line.
    fn cut(&mut self) -> eyre::Result<()> {
        while let Some(seq) = self.flight.oldest_awaiting() {
            self.flight.lose(seq);
            self.tally.lost(seq, None)?;
        }
        Ok(())
    }
}

/// What the probe over one connection does next.
enum Step {
    Send,
    Expire,
    Reply(Result<(), Failure>),
    Idle,
}

/// The connection probes go over, opened anew when it breaks.
struct Link<C> {
    conn: Option<C>,
    pipe: Pipe,
    /// The first probe sent over `conn` whose reply has not come: over a stream replies come
    /// in order, so the next reply is its.
    head: u64,
}

impl<C: Pipeline> Link<C> {
    /// Whether replies come in order (a stream), not named by their stamp (a datagram).
    fn ordered(conn: &mut C) -> bool {
        !matches!(conn.io(), Io::Datagram(_))
    }

    /// Awaits the next thing to do: a probe's timeout, a reply, the next send (`send`).
    async fn step(
        &mut self,
        ticker: &mut Interval,
        send: bool,
        due: Option<Instant>,
        next: u64,
    ) -> Step {
        let awaited = self.head < next;
        let Link { conn, pipe, .. } = self;
        // A datagram socket is read even with nothing awaited: a duplicate may come.
        let io = conn.as_mut().map(|c| c.io());
        let io = io.filter(|io| awaited || matches!(io, Io::Datagram(_)));
        let listening = io.is_some();
        let recv = async {
            match io {
                Some(io) => pipe.recv(io).await,
                None => std::future::pending().await,
            }
        };
        let timeout = tokio::time::sleep_until(due.unwrap_or_else(Instant::now));
        tokio::select! {
            biased;
            () = timeout, if due.is_some() => Step::Expire,
            got = recv, if listening => Step::Reply(got),
            _ = ticker.tick(), if send => Step::Send,
            else => Step::Idle,
        }
    }

    /// Drops the connection; the probes sent over it and still awaited are lost for `why`,
    /// and no reply to those lost before can come now.
    fn drop_conn(&mut self, on: &mut Schedule<'_, '_>, why: &str) -> eyre::Result<()> {
        self.conn = None;
        for seq in self.head..on.flight.next() {
            if on.flight.forget(seq) {
                on.tally.lost(seq, Some(why))?;
            }
        }
        self.head = on.flight.next();
        Ok(())
    }
}

/// Probes over one connection, on schedule whatever the replies do, until the count and the
/// last replies (or their timeouts), or until Ctrl-C or the deadline, which it returns.
async fn one_connection<D: Dialer>(
    dialer: &D,
    first: D::Conn,
    on: &mut Schedule<'_, '_>,
) -> eyre::Result<Option<Stop>> {
    let size = on.probe.options.size;
    let mut link = Link {
        conn: Some(first),
        pipe: Pipe::new(size)?,
        head: 1,
    };
    loop {
        let sending = on.sending();
        let Some(due) = on.wake(sending) else {
            return Ok(None);
        };
        let send = sending && !on.held_up();
        let next = on.flight.next();
        let step = link.step(&mut on.ticker, send, due, next);
        let tally = &*on.tally;
        let step = match on.events.until(step, || tally.status()).await {
            Ok(step) => step,
            Err(stop) => {
                on.cut()?;
                return Ok(Some(stop));
            }
        };
        match step {
            Step::Send => {
                if let Some(stop) = send_one(dialer, &mut link, on).await? {
                    on.cut()?;
                    return Ok(Some(stop));
                }
            }
            Step::Expire => on.expire()?,
            Step::Reply(Ok(())) => {
                // A reply read in the same turn as a timeout comes after it: lost, then late.
                on.expire()?;
                on_reply(&mut link, on).await?;
            }
            Step::Reply(Err(failure)) => on_failure(&mut link, on, failure).await?,
            Step::Idle => return Ok(None),
        }
    }
}

/// Sends the next probe, first opening a connection if there is none. A stream whose oldest
/// reply the ring has to let go of is given up first: a reply that late is not waited for.
async fn send_one<C: Pipeline, D: Dialer<Conn = C>>(
    dialer: &D,
    link: &mut Link<C>,
    on: &mut Schedule<'_, '_>,
) -> eyre::Result<Option<Stop>> {
    if let (Some((seq, State::Lost)), Some(conn)) = (on.flight.in_the_way(), link.conn.as_mut()) {
        if seq >= link.head && Link::ordered(conn) {
            let why = format!("connection given up: seq={seq}'s echo still missing");
            link.drop_conn(on, &why)?;
        }
    }
    if link.conn.is_none() {
        let tally = &*on.tally;
        match on.events.until(dialer.dial(None), || tally.status()).await {
            Err(stop) => return Ok(Some(stop)),
            Ok(Err(err)) => {
                let seq = on.send()?;
                on.lose(seq, &crate::report::one_line(&err))?;
                return Ok(None);
            }
            Ok(Ok((conn, _))) => {
                link.conn = Some(conn);
                link.pipe.reset();
                link.head = on.flight.next();
            }
        }
    }
    let seq = on.send()?;
    let Some(conn) = link.conn.as_mut() else {
        return Ok(None);
    };
    if let Err(failure) = link.pipe.send(conn.io(), on.messages.of(seq)).await {
        link.drop_conn(on, &failure.to_string())?;
    }
    Ok(None)
}

/// A reply came: over a stream the oldest probe's on the connection (after one that differs
/// the connection is given up, its later replies likely out of step), over UDP the one its
/// stamp names.
async fn on_reply<C: Pipeline>(link: &mut Link<C>, on: &mut Schedule<'_, '_>) -> eyre::Result<()> {
    let Some(conn) = link.conn.as_mut() else {
        return Ok(());
    };
    if !Link::ordered(conn) {
        return match on.messages.identify(link.pipe.reply(), &mut on.flight) {
            Some((seq, echo)) => on.settle(seq, echo, None),
            None => on.tally.stray(),
        };
    }
    let seq = link.head;
    link.head += 1;
    let echo = compare(on.messages.of(seq), link.pipe.reply());
    if echo == Echo::Intact {
        return on.settle(seq, echo, None);
    }
    if link.pipe.tls_answer(conn.io(), on.messages.of(seq)).await {
        eyre::bail!("{}: {}", on.tally.server, crate::net::sniff::TLS_ANSWER);
    }
    on.settle(seq, echo, None)?;
    link.drop_conn(
        on,
        &format!("connection given up after seq={seq}'s reply differed"),
    )
}

/// The connection failed: the probes awaiting their replies over it are lost, and the next
/// probe opens another. A stream closed after the start of a TLS record is a TLS server's
/// answer to plain text: the run ends there, in one line.
async fn on_failure<C: Pipeline>(
    link: &mut Link<C>,
    on: &mut Schedule<'_, '_>,
    failure: Failure,
) -> eyre::Result<()> {
    if let (Failure::Closed { got: 1.., .. }, Some(conn)) = (&failure, link.conn.as_mut()) {
        if link
            .pipe
            .tls_answer(conn.io(), on.messages.of(link.head))
            .await
        {
            eyre::bail!("{}: {}", on.tally.server, crate::net::sniff::TLS_ANSWER);
        }
    }
    link.drop_conn(on, &failure.to_string())
}

/// How a probe over its own connection ended.
enum Outcome {
    Reply(Reply),
    Lost(String),
}

/// What the probes over their own connections do next.
enum Turn<T> {
    Send,
    Done(Result<T, tokio::task::JoinError>),
    Idle,
}

/// Probes each over a connection of its own (`--new-connection`), on schedule: a probe does
/// not wait for the one before. Returns as [`one_connection`].
async fn each_on_its_own<D: Dialer>(
    dialer: Arc<D>,
    (first, connect): (D::Conn, Duration),
    on: &mut Schedule<'_, '_>,
) -> eyre::Result<Option<Stop>> {
    let mut first = Some((first, connect));
    let mut probes = JoinSet::new();
    loop {
        let sending = on.sending();
        if !sending && probes.is_empty() {
            return Ok(None);
        }
        let send = sending && !on.held_up();
        let step = async {
            tokio::select! {
                biased;
                Some(done) = probes.join_next() => Turn::Done(done),
                _ = on.ticker.tick(), if send => Turn::Send,
                else => Turn::Idle,
            }
        };
        let tally = &*on.tally;
        let turn = match on.events.until(step, || tally.status()).await {
            Ok(turn) => turn,
            Err(stop) => {
                on.cut()?;
                return Ok(Some(stop));
            }
        };
        match turn {
            Turn::Send => {
                let seq = on.send()?;
                let msg = copy(on.messages.of(seq), 1)?;
                let reply = zeroed(msg.len(), 1)?;
                let timeout = on.probe.options.timeout;
                let probe = own_connection(Arc::clone(&dialer), first.take(), msg, reply, timeout);
                probes.spawn(async move { (seq, probe.await) });
            }
            Turn::Done(Err(err)) => return Err(eyre::eyre!("a probe's task failed: {err}")),
            Turn::Done(Ok((seq, outcome))) => match outcome {
                Err(TlsAnswer) => {
                    eyre::bail!("{}: {}", on.tally.server, crate::net::sniff::TLS_ANSWER)
                }
                Ok(Outcome::Reply(reply)) => on.settle(seq, reply.echo, Some(reply))?,
                Ok(Outcome::Lost(why)) => on.lose(seq, &why)?,
            },
            Turn::Idle => return Ok(None),
        }
    }
}

/// One probe over its own connection (`conn` if given, with its connect time, else one it
/// opens): the message, its echo within `timeout`. Its connection is closed at the timeout,
/// so a later echo is not seen.
async fn own_connection<D: Dialer>(
    dialer: Arc<D>,
    conn: Option<(D::Conn, Duration)>,
    msg: Vec<u8>,
    mut reply: Vec<u8>,
    timeout: Duration,
) -> Result<Outcome, TlsAnswer> {
    let (mut conn, connect) = match conn {
        Some(conn) => conn,
        None => {
            let start = Instant::now();
            match dialer.dial(None).await {
                Ok((conn, _)) => (conn, start.elapsed()),
                Err(err) => return Ok(Outcome::Lost(crate::report::one_line(&err))),
            }
        }
    };
    let start = Instant::now();
    let trip = tokio::time::timeout(timeout, conn.round_trip(&msg, &mut reply)).await;
    match trip {
        Ok(Ok(echo)) => Ok(Outcome::Reply(Reply {
            rtt: Some(start.elapsed()),
            connect: Some(connect),
            echo,
            late: false,
        })),
        Ok(Err(Failure::Tls)) => Err(TlsAnswer),
        Ok(Err(failure)) => Ok(Outcome::Lost(failure.to_string())),
        Err(_) => Ok(Outcome::Lost(no_echo(timeout))),
    }
}

/// A plain-text probe's reply was a TLS record: the run ends there, in one line.
struct TlsAnswer;

/// Prints the summary and decides the exit status. `stop`: what ended the probe before its
/// count, if anything.
fn finish(mut tally: Tally<'_>, stop: Option<Stop>, run: &Run) -> eyre::Result<Exit> {
    tally.series.finish(tally.ui)?;
    let elapsed = tally.elapsed();
    let summary = tally.summary(stop == Some(Stop::Interrupted), elapsed);
    if tally.json {
        print_summary(&summary, (summary.counts, summary.size), run, &tally.rtt)?;
    } else {
        print(&text(&summary, elapsed))?;
    }
    tally.series.outputs.finish(&tally.rtt)?;
    if summary.ok {
        return Ok(Exit::Success);
    }
    let c = tally.counts;
    // Replies may have come in the warmup, but they are in no figure: nothing measured.
    if c.sent == 0 && tally.series.warm_probes() > 0 {
        let warmup = ui::duration(tally.series.warmup());
        eyre::bail!("ended during the {warmup} warmup: nothing was measured");
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
        "\n--- {} echo statistics ---\n{} sent, {} received, {} lost, {} mismatched{}{}, \
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
        // Among those received.
        match s.late {
            0 => String::new(),
            n => format!(", {n} late"),
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
