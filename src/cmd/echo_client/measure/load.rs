//! Load mode, like tcpkali but closed-loop: C connections, each sending a message and waiting
//! for its whole echo before the next, for `--duration`, on the multi-thread runtime.
//!
//! With `--rate R` each message has an intended send time on a fixed schedule (connection i
//! sends the messages numbered i, i+C, i+2C, ... of one R-per-second sequence). A message
//! that a slow reply held past that time has its latency measured from the intended time,
//! so the delay the server caused is counted (no coordinated omission); one sent on time, after
//! a sleep, from its actual send, so the timer's own lateness is not blamed on the server.
//! Without `--rate`, latency is measured from the send. Either way per message, never derived
//! from throughput.
//!
//! Each connection records into a small local batch and hands it to the shared histogram now
//! and then, so the hot loop takes no lock and touches no shared counter.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use color_eyre::eyre;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::json::{Counts, LoadSummary, print, print_summary};
use super::transport::{Dialer, Echo, RoundTrip};
use super::{Options, copy, random_message, stamp, zeroed};
use crate::exit::Exit;
use crate::latency::Latencies;
use crate::runtime;
use crate::ui::{self, Ui};

/// The live line: elapsed, then msgs/s, MB/s and p99 so far.
const TEMPLATE: &str = "{spinner} {elapsed:>3} {msg}";
/// A batch of latencies goes to the shared histogram when this full, or this old.
const BATCH: usize = 256;
const BATCH_AGE: Duration = Duration::from_millis(100);

/// Load mode's settings.
pub(in crate::cmd::echo_client) struct Load {
    pub(super) connections: usize,
    pub(super) duration: Duration,
    pub(super) rate: Option<u64>,
    /// `--progress`: the live line even when stderr is not a terminal.
    pub(super) progress: bool,
    /// `--connect-rate`: connections opened a second; all at once without it.
    pub(super) connect_rate: Option<u64>,
    pub(super) options: Options,
}

/// What the connections share: the latencies handed in so far.
struct Shared {
    latencies: Mutex<Latencies>,
}

impl Shared {
    fn hand_in(&self, batch: &mut Vec<u64>) {
        let mut l = self
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for &ns in batch.iter() {
            l.record_ns(ns);
        }
        batch.clear();
    }

    fn latencies(&self) -> Latencies {
        self.latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A connection's latencies not yet handed to the shared histogram.
struct Batch {
    latencies: Vec<u64>,
    handed: Instant,
}

impl Batch {
    fn new() -> Batch {
        // As if handed in long ago, so the first latency goes in at once: at a slow --rate a
        // connection's next message may be many seconds away, and the live line showed no
        // reply until then.
        let now = Instant::now();
        Batch {
            latencies: Vec::with_capacity(BATCH),
            handed: now.checked_sub(BATCH_AGE).unwrap_or(now),
        }
    }

    /// Records one latency, measured at `now`, handing the batch in when due.
    fn push(&mut self, latency: Duration, now: Instant, shared: &Shared) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latencies.push(ns);
        if self.latencies.len() == BATCH || now - self.handed >= BATCH_AGE {
            shared.hand_in(&mut self.latencies);
            self.handed = now;
        }
    }
}

/// When one connection sends.
#[derive(Clone, Copy)]
struct Plan {
    /// This connection's number and how many there are, for its share of the schedule.
    id: u64,
    of: u64,
    start: Instant,
    end: Instant,
    rate: Option<u64>,
    timeout: Duration,
}

impl Plan {
    /// Waits for message `k`'s turn, `now` being the end of the last round trip; returns the
    /// time its latency counts from and the time it goes out, or `None` when the run is over.
    async fn turn(
        &self,
        k: u64,
        now: Instant,
        stop: &mut oneshot::Receiver<()>,
    ) -> Option<(Instant, Instant)> {
        // The run ends at --duration even when a slow server left messages of the schedule
        // unsent: those are not sent, and the rate achieved shows it. A connection whose
        // share of the schedule is over waits for the end, so the run lasts --duration.
        let intended = self.intended(k, now).min(self.end);
        if now >= self.end {
            return None;
        }
        if intended <= now {
            // Latency counts from the intended time when the server made us late (no
            // coordinated omission).
            return Some((intended, now));
        }
        tokio::select! {
            biased;
            _ = stop => return None,
            () = tokio::time::sleep_until(intended) => {}
        }
        // But from the actual send when we slept: a wake-up past the time asked for (tokio's
        // timer rounds up to the millisecond) is the generator's, not the server's.
        let woke = Instant::now();
        (intended < self.end).then_some((woke, woke))
    }

    /// The intended send time of this connection's `k`th message; `now` without a rate.
    fn intended(&self, k: u64, now: Instant) -> Instant {
        match self.rate {
            Some(rate) => {
                let n = k * self.of + self.id;
                self.start + Duration::from_secs_f64(n as f64 / rate as f64)
            }
            None => now,
        }
    }
}

/// One connection's closed loop; returns its counts and errors. `stop` (Ctrl-C) ends it at
/// once, even in a sleep or a round trip: a message whose echo was still awaited then is not
/// counted, as the run ended before it could come back. After a reply that differs, a
/// timeout, a reset or a close it goes on over a new connection from `dialer`, so the load
/// lasts its `--duration` (a lost datagram is one lost message, not the end of the load).
async fn connection<D: Dialer>(
    mut conn: D::Conn,
    dialer: Arc<D>,
    (mut msg, mut reply): (Vec<u8>, Vec<u8>),
    plan: Plan,
    shared: Arc<Shared>,
    stop: oneshot::Receiver<()>,
) -> Ended {
    let mut ended = Ended::default();
    let mut batch = Batch::new();
    let mut watchdog = Watchdog::new(plan.timeout, stop);
    let mut backoff = Backoff::default();
    // The clock is read once per message: the end of one round trip is the start of the next.
    let mut now = Instant::now();
    for k in 0u64.. {
        let Some((from, sent)) = plan.turn(k, now, &mut watchdog.stop).await else {
            break;
        };
        stamp(&mut msg, k);
        let trip = watchdog
            .guard(sent, conn.round_trip(&msg, &mut reply))
            .await;
        if matches!(trip, Guarded::Stopped) {
            break;
        }
        ended.counts.sent += 1;
        let done = Instant::now();
        now = done;
        // Here only a reply that differs, a timeout or a transient failure: this connection is
        // replaced.
        match trip {
            Guarded::Done(Ok(echo)) => {
                ended.counts.received += 1;
                batch.push(done - from, done, &shared);
                if echo == Echo::Intact {
                    continue;
                }
                // A stream's later echoes may now be out of step with the messages (one
                // inserted byte made every later one differ), so a new connection.
                ended.counts.mismatched += 1;
            }
            Guarded::Done(Err(failure)) => {
                ended.lose(failure.kind());
                if !failure.is_transient() {
                    break;
                }
            }
            Guarded::Late => ended.lose("timeout"),
            Guarded::Stopped => break,
        }
        backoff.after(ended.counts.received - ended.counts.mismatched);
        let reopened = replace(
            &mut conn,
            &*dialer,
            &mut watchdog.stop,
            plan.end,
            (&mut ended, &mut backoff),
        );
        if !reopened.await {
            break;
        }
        now = Instant::now();
    }
    shared.hand_in(&mut batch.latencies);
    ended
}

/// The pause before a connection is replaced, so a server that cuts or refuses every
/// connection is not met with a flood of connects (one that reset every message drew 12,000
/// connects a second from 2 connections): none after a connection that echoed intact, then
/// doubling from [`Backoff::FIRST`] to [`Backoff::MAX`] while replacements fail.
#[derive(Default)]
struct Backoff {
    pause: Duration,
    /// Intact replies on this connection's count when its current link was opened.
    intact_at_dial: u64,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    /// A link ended, the connection's count of intact replies now `intact`: an echo came back
    /// whole over it, so it served and the next opens at once; else the pause grows.
    fn after(&mut self, intact: u64) {
        if intact > self.intact_at_dial {
            self.pause = Duration::ZERO;
        } else {
            self.failed();
        }
        self.intact_at_dial = intact;
    }

    fn failed(&mut self) {
        self.pause = (self.pause * 2).clamp(Self::FIRST, Self::MAX);
    }
}

/// Replaces `conn` with a new connection, counted, after the backoff's pause. A dial that
/// fails is counted (a connect error) and tried again after a longer pause until one succeeds,
/// so a server that refuses for a while does not end the load. False when the run was stopped
/// or is over first.
async fn replace<D: Dialer>(
    conn: &mut D::Conn,
    dialer: &D,
    stop: &mut oneshot::Receiver<()>,
    end: Instant,
    (ended, backoff): (&mut Ended, &mut Backoff),
) -> bool {
    loop {
        match redial(dialer, stop, end, backoff.pause).await {
            Some(Ok(fresh)) => {
                *conn = fresh;
                ended.reconnects += 1;
                return true;
            }
            Some(Err(())) => {
                ended.error("connect");
                backoff.failed();
            }
            None => return false,
        }
    }
}

/// A new connection after `pause`, or `None` when stopped or the run's end came first.
async fn redial<D: Dialer>(
    dialer: &D,
    stop: &mut oneshot::Receiver<()>,
    end: Instant,
    pause: Duration,
) -> Option<Result<D::Conn, ()>> {
    let dial = async {
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        dialer.dial(None).await
    };
    tokio::select! {
        biased;
        _ = stop => None,
        () = tokio::time::sleep_until(end) => None,
        dialed = dial => Some(dialed.map(|(conn, _)| conn).map_err(|_| ())),
    }
}

/// `--timeout` for a connection's round trips with one long-lived timer instead of one per
/// message: registering a timer costs about as much as a small round trip on loopback. The
/// timer is left armed; when it fires it either finds the message in flight past its deadline,
/// or moves on to that deadline. So it fires at most about once per `--timeout`. It also
/// watches the connection's stop (Ctrl-C), in the same select: one per message.
struct Watchdog {
    limit: Duration,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// Resolves when the run is stopped (its sender dropped).
    stop: oneshot::Receiver<()>,
}

/// How a guarded round trip ended.
#[derive(Debug, PartialEq)]
enum Guarded<T> {
    Done(T),
    /// `--timeout` passed first.
    Late,
    /// The run was stopped first.
    Stopped,
}

impl Watchdog {
    fn new(limit: Duration, stop: oneshot::Receiver<()>) -> Watchdog {
        Watchdog {
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
            stop,
        }
    }

    /// Runs `trip`, sent at `sent`, until it is done, `limit` late, or stopped.
    async fn guard<T>(&mut self, sent: Instant, trip: impl Future<Output = T>) -> Guarded<T> {
        tokio::pin!(trip);
        loop {
            // The timer unconstrained: a trip whose data keeps coming spends the task's
            // cooperative budget, and a timer polled after it would find none left and never
            // fire. Polled after the trip, it is not polled at all when the echo is back.
            // The trip first: when its echo is back, as it is on most polls, neither the stop
            // nor the timer is polled at all (each poll re-registers a waker, a cost per
            // message the generator's own CPU shows). A pending trip polls both, so a stop
            // still ends a wait at once.
            tokio::select! {
                biased;
                done = &mut trip => return Guarded::Done(done),
                _ = &mut self.stop => return Guarded::Stopped,
                () = tokio::task::unconstrained(&mut self.timer) => {
                    let deadline = sent + self.limit;
                    if Instant::now() >= deadline {
                        return Guarded::Late;
                    }
                    self.timer.as_mut().reset(deadline);
                }
            }
        }
    }
}

/// The run's results as they come in.
#[derive(Default)]
struct Results {
    counts: Counts,
    up: u64,
    failed: u64,
    reconnects: u64,
    errors: BTreeMap<&'static str, u64>,
    /// The first connect error, to name in the final message.
    connect_error: Option<String>,
    /// A connection could not be opened for want of file descriptors (EMFILE).
    out_of_files: bool,
    /// Ctrl-C ended the run.
    interrupted: bool,
    /// How long each of the C connections took to open.
    connect: Latencies,
}

impl Results {
    fn error(&mut self, kind: &'static str) {
        *self.errors.entry(kind).or_default() += 1;
    }

    /// One of the C connections could not be opened, for `err`.
    fn connect_failed(&mut self, err: &eyre::Report) {
        self.error("connect");
        self.failed += 1;
        self.out_of_files |= out_of_files(err);
        self.connect_error
            .get_or_insert_with(|| crate::report::one_line(err));
    }
}

/// Runs the load to its report and exit status.
pub(in crate::cmd::echo_client) async fn run<D: Dialer>(
    dialer: D,
    load: Load,
    ui: &Ui,
) -> eyre::Result<Exit> {
    let interrupt = runtime::interrupt_signal()?;
    tokio::pin!(interrupt);
    raise_open_files(ui);
    let dialer = Arc::new(dialer);
    let dialing = Instant::now();
    let (first, server) = tokio::select! {
        dialed = dialer.dial(load.options.wait) => dialed?,
        () = &mut interrupt => return Ok(Exit::Interrupted),
    };
    let mut results = Results::default();
    // With --wait's retries, if any, as the probe reports its first connect.
    results.connect.record(dialing.elapsed());
    if let Some(rate) = load.connect_rate.filter(|_| load.connections > 1) {
        let spread = Duration::from_secs_f64((load.connections - 1) as f64 / rate as f64);
        ui.info(&format!(
            "opening {} connections at {rate} a second (over {})",
            load.connections,
            ui::duration(spread)
        ));
    }
    let conns = connect_rest(&dialer, first, load.connections, load.connect_rate);
    let conns = conns.stop_on(interrupt.as_mut(), &mut results).await;
    if results.interrupted {
        // A connection was made: the summary's rule, as for a run Ctrl-C cut short.
        return report(&load, server, results, &Latencies::new(), Duration::ZERO);
    }
    let rate = load
        .rate
        .map_or(String::new(), |r| format!(" at {r} msgs/s"));
    ui.info(&format!(
        "LOAD {server}: {}, {} bytes per message, {}{rate}",
        connections(results.up, load.connections),
        load.options.size,
        ui::duration(load.duration)
    ));
    let shared = Arc::new(Shared {
        latencies: Mutex::new(Latencies::new()),
    });
    let run = spawn_all(conns, &dialer, &load, &shared)?;
    let start = run.start;
    watch(run, interrupt, ui, &load, &shared, &mut results).await?;
    let elapsed = start.elapsed();
    behind_schedule(&load, &results, elapsed, ui);
    report(&load, server, results, &shared.latencies(), elapsed)
}

/// What a connection's task returns.
#[derive(Default)]
struct Ended {
    counts: Counts,
    /// Errors by kind: those it went on after, and the one that ended it.
    errors: BTreeMap<&'static str, u64>,
    /// Connections opened anew, after a reply that differed or a transient error.
    reconnects: u64,
}

impl Ended {
    fn error(&mut self, kind: &'static str) {
        *self.errors.entry(kind).or_default() += 1;
    }

    /// A message lost, and why.
    fn lose(&mut self, kind: &'static str) {
        self.counts.lost += 1;
        self.error(kind);
    }
}

/// The connections at work: their tasks, the senders whose drop stops them, the start.
struct Run {
    workers: JoinSet<Ended>,
    stop: Vec<oneshot::Sender<()>>,
    start: Instant,
}

/// Every connection's message and reply buffer, allocated fallibly (a failed allocation
/// would abort the process) and before the clock starts: drawing 16 MiB of random bytes per
/// connection inside the run took the time of the run.
fn buffers(connections: usize, size: usize) -> eyre::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let template = random_message(size, connections)?;
    let mut all = Vec::new();
    all.try_reserve_exact(connections)
        .map_err(|_| eyre::eyre!("cannot allocate {connections} connections' buffers"))?;
    for _ in 0..connections {
        all.push((copy(&template, connections)?, zeroed(size, connections)?));
    }
    Ok(all)
}

/// Starts every connection's loop, each stopped by its sender's drop (a oneshot each: polled
/// per message, it costs no lock).
fn spawn_all<D: Dialer>(
    conns: Vec<D::Conn>,
    dialer: &Arc<D>,
    load: &Load,
    shared: &Arc<Shared>,
) -> eyre::Result<Run> {
    let msgs = buffers(conns.len(), load.options.size)?;
    let start = Instant::now();
    let mut workers = JoinSet::new();
    let mut stops = Vec::with_capacity(conns.len());
    let of = conns.len() as u64;
    for ((id, conn), msg) in conns.into_iter().enumerate().zip(msgs) {
        let plan = Plan {
            id: id as u64,
            of,
            start,
            end: start + load.duration,
            rate: load.rate,
            timeout: load.options.timeout,
        };
        let (stop, stopped) = oneshot::channel();
        stops.push(stop);
        let dialer = Arc::clone(dialer);
        workers.spawn(connection(
            conn,
            dialer,
            msg,
            plan,
            Arc::clone(shared),
            stopped,
        ));
    }
    Ok(Run {
        workers,
        stop: stops,
        start,
    })
}

/// Collects the connections' results as they end, drawing the live line meanwhile. Ctrl-C
/// ends the run early, with the report: every connection stops at once.
async fn watch(
    run: Run,
    mut interrupt: std::pin::Pin<&mut impl Future<Output = ()>>,
    ui: &Ui,
    load: &Load,
    shared: &Shared,
    results: &mut Results,
) -> eyre::Result<()> {
    let Run {
        mut workers,
        mut stop,
        start,
    } = run;
    let bar = ui.progress_bar(load.progress, None, TEMPLATE);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(Ok(ended)) => {
                    results.counts.add(ended.counts);
                    results.reconnects += ended.reconnects;
                    for (kind, n) in ended.errors {
                        *results.errors.entry(kind).or_default() += n;
                    }
                }
                Some(Err(err)) => {
                    ui.finish_live();
                    eyre::bail!("a connection's task failed: {err}");
                }
                None => break,
            },
            () = &mut interrupt, if !results.interrupted => {
                results.interrupted = true;
                stop.clear();
            }
            _ = tick.tick(), if bar.is_some() => {
                if let Some(bar) = &bar {
                    bar.set_message(live(&shared.latencies(), load.options.size, start.elapsed()));
                }
            }
        }
    }
    ui.finish_live();
    Ok(())
}

/// A dial's connection and how long it took to open.
type Dialed<C> = eyre::Result<(C, Duration)>;

/// The other C-1 connections being opened: the dials, and the connections made so far.
struct Opening<D: Dialer> {
    dialing: JoinSet<Dialed<D::Conn>>,
    conns: Vec<D::Conn>,
}

/// Starts opening the other C-1 connections: at once, or with `rate` the ith at i/rate
/// seconds after the first (tcpkali's --connect-rate), so a large load does not hit the
/// server's accept queue in one burst. Each dial's own time is its connect time.
fn connect_rest<D: Dialer>(
    dialer: &Arc<D>,
    first: D::Conn,
    connections: usize,
    rate: Option<u64>,
) -> Opening<D> {
    let mut dialing = JoinSet::new();
    let start = Instant::now();
    for i in 1..connections {
        let dialer = Arc::clone(dialer);
        let due = rate.map(|rate| start + Duration::from_secs_f64(i as f64 / rate as f64));
        dialing.spawn(async move {
            if let Some(due) = due {
                tokio::time::sleep_until(due).await;
            }
            let begun = Instant::now();
            let (conn, _) = dialer.dial(None).await?;
            Ok((conn, begun.elapsed()))
        });
    }
    Opening {
        dialing,
        conns: vec![first],
    }
}

impl<D: Dialer> Opening<D> {
    /// Waits for every dial, counting failures (not fatal); Ctrl-C meanwhile marks the run
    /// interrupted and ends the wait, with the connections made so far counted up.
    async fn stop_on(
        mut self,
        mut interrupt: std::pin::Pin<&mut impl Future<Output = ()>>,
        results: &mut Results,
    ) -> Vec<D::Conn> {
        loop {
            let dialed = tokio::select! {
                dialed = self.dialing.join_next() => dialed,
                () = &mut interrupt => {
                    results.interrupted = true;
                    break;
                }
            };
            match dialed {
                None => break,
                Some(Ok(Ok((conn, took)))) => {
                    results.connect.record(took);
                    self.conns.push(conn);
                }
                Some(Ok(Err(err))) => results.connect_failed(&err),
                Some(Err(err)) => results.connect_failed(&eyre::eyre!("{err}")),
            }
        }
        results.up = self.conns.len() as u64;
        self.conns
    }
}

/// The live line's message.
fn live(l: &Latencies, size: usize, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let msgs = l.len() as f64 / secs;
    let p99 = if l.is_empty() {
        "-".to_owned()
    } else {
        format!("{:.3} ms", l.percentile_ms(99.0))
    };
    format!(
        "{msgs:.0} msgs/s · {:.2} MB/s · p99 {p99}",
        msgs * size as f64 / 1e6
    )
}

/// Warns when `--rate` was not reached: the report's figures then describe the rate the
/// closed loop could sustain, with latencies that include the wait behind the schedule.
fn behind_schedule(load: &Load, results: &Results, elapsed: Duration, ui: &Ui) {
    let Some(rate) = load.rate else { return };
    // A run cut short, or whose connections failed, says so in its own words.
    if results.interrupted || !results.errors.is_empty() {
        return;
    }
    let sent = results.counts.sent as f64 / elapsed.as_secs_f64().max(1e-9);
    if sent < 0.95 * rate as f64 {
        ui.warn(&format!(
            "--rate {rate} not reached: {sent:.0} msgs/s sent; {} connections, each waiting \
             for its echo before the next message, could not keep up (more --connections?)",
            results.up
        ));
    }
}

/// Prints the report and decides the exit status.
fn report(
    load: &Load,
    server: String,
    results: Results,
    latencies: &Latencies,
    elapsed: Duration,
) -> eyre::Result<Exit> {
    if results.errors.contains_key("tls") {
        // The one thing to say: every connection met the same answer.
        eyre::bail!("{server}: {}", crate::net::sniff::TLS_ANSWER);
    }
    let c = results.counts;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let msgs_per_s = c.received as f64 / secs;
    let summary = LoadSummary {
        mode: "load",
        server,
        size: load.options.size,
        counts: c,
        // A run that Ctrl-C ended before any echo came proved nothing.
        ok: c.intact() && results.errors.is_empty() && c.received > 0,
        rtt_ms: latencies.times(),
        connect_ms: results.connect.times(),
        connections: load.connections,
        connections_up: results.up,
        connections_failed: results.failed,
        reconnects: results.reconnects,
        duration_s: elapsed.as_secs_f64(),
        rate: load.rate,
        msgs_per_s,
        mb_per_s: msgs_per_s * load.options.size as f64 / 1e6,
        errors: results.errors,
        interrupted: results.interrupted,
    };
    if load.options.json {
        let run = &load.options.run;
        print_summary(&summary, (c, load.options.size), run, latencies)?;
    } else {
        print(&text(&summary))?;
    }
    if summary.ok {
        return Ok(Exit::Success);
    }
    if c.sent == 0 && summary.errors.is_empty() {
        eyre::bail!("no reply from {} before the interrupt", summary.server);
    }
    // Only what went wrong: "0 of 98413 messages lost" led a run whose connections failed.
    let mut why = Vec::new();
    if !c.intact() {
        why.push(c.trouble());
    }
    if results.failed > 0 {
        let limit = if results.out_of_files {
            format!("; {}", open_files_advice())
        } else {
            String::new()
        };
        why.push(format!(
            "{} of {} connections failed: {}{limit}",
            results.failed,
            load.connections,
            results.connect_error.unwrap_or_default()
        ));
    }
    eyre::bail!("{} ({})", why.join("; "), errors(&summary.errors))
}

/// How many connections the run has, the same in the header and the report: `50
/// connections`, or `245 of 500 connections` when some could not be opened.
fn connections(up: u64, asked: usize) -> String {
    if up == asked as u64 {
        format!("{asked} connections")
    } else {
        format!("{up} of {asked} connections")
    }
}

/// Raises the soft limit on open files to the hard one: each connection holds a descriptor,
/// and the usual soft limit (1024) fails a load of a thousand connections with EMFILE where
/// the hard limit (often 524288) allows it, as a person would raise it with `ulimit -n`.
fn raise_open_files(ui: &Ui) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(soft), Some(hard)) = (limit.current, limit.maximum) else {
        return;
    };
    if soft >= hard {
        return;
    }
    let raised = Rlimit {
        current: Some(hard),
        maximum: Some(hard),
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => ui.detail(&format!("open files limit raised from {soft} to {hard}")),
        Err(err) => ui.detail(&format!(
            "open files limit stays {soft}: cannot raise it to {hard}: {}",
            crate::report::io_reason(&err.into())
        )),
    }
}

/// Whether `err` is the process running out of file descriptors (EMFILE): the one failure
/// `ulimit -n` answers.
fn out_of_files(err: &eyre::Report) -> bool {
    let by_code = err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            == Some(libc::EMFILE)
    });
    // A name with several addresses gives their errors as one text.
    let words = crate::report::io_reason(&std::io::Error::from_raw_os_error(libc::EMFILE));
    by_code || crate::report::one_line(err).contains(&words)
}

/// What to do when connections failed for want of file descriptors: the limit in force
/// (`ulimit -n`) and how to raise it.
fn open_files_advice() -> String {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let Some(soft) = limit.current else {
        return "the system ran out of open files".to_owned();
    };
    match limit.maximum {
        Some(hard) if hard <= soft => format!(
            "at most {soft} files may be open at once (ulimit -n, the hard limit too): \
             raise the hard limit (as root: ulimit -Hn, or LimitNOFILE= for a service) or use \
             fewer --connections"
        ),
        hard => format!(
            "at most {soft} files may be open at once (ulimit -n): raise it (ulimit -n {}) \
             or use fewer --connections",
            hard.map_or("unlimited".to_owned(), |h| h.to_string())
        ),
    }
}

/// `timeout 3, reset 1`, or `none`.
fn errors(errors: &BTreeMap<&'static str, u64>) -> String {
    if errors.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
    parts.join(", ")
}

/// The report as text.
fn text(s: &LoadSummary) -> String {
    let c = s.counts;
    let mut out = format!(
        "--- {} load statistics: {}, {} bytes per message, {:.2} s ---\n\
         connections: {} up, {} failed{}\n\
         messages: {} sent, {} received, {} lost, {} mismatched\n\
         throughput: {:.0} msgs/s, {:.2} MB/s\n",
        s.server,
        connections(s.connections_up, s.connections),
        s.size,
        s.duration_s,
        s.connections_up,
        s.connections_failed,
        match s.reconnects {
            0 => String::new(),
            n => format!(", {n} reopened"),
        },
        c.sent,
        c.received,
        c.lost,
        c.mismatched,
        s.msgs_per_s,
        s.mb_per_s
    );
    if let Some(t) = s.rtt_ms {
        out.push_str(&format!(
            "latency p50/p90/p99/p99.9/max = {:.3}/{:.3}/{:.3}/{:.3}/{:.3} ms\n",
            t.p50, t.p90, t.p99, t.p99_9, t.max
        ));
    }
    if let Some(t) = s.connect_ms {
        out.push_str(&format!(
            "connect p50/p90/p99/max = {:.3}/{:.3}/{:.3}/{:.3} ms\n",
            t.p50, t.p90, t.p99, t.max
        ));
    }
    out.push_str(&format!("errors: {}\n", errors(&s.errors)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection's first latency is handed in at once, so the live line shows it even
    /// when the next message is seconds away (a slow --rate).
    #[test]
    fn the_first_latency_is_shown_at_once() {
        let shared = Shared {
            latencies: Mutex::new(Latencies::new()),
        };
        let mut batch = Batch::new();
        batch.push(Duration::from_micros(70), Instant::now(), &shared);
        assert_eq!(shared.latencies().len(), 1);
    }

    /// A round trip whose data never stops coming spends the task's whole cooperative budget
    /// at every poll; `--timeout` must still strike.
    #[tokio::test]
    async fn the_watchdog_strikes_while_a_trip_spends_the_budget() {
        let busy = async {
            loop {
                tokio::task::consume_budget().await;
            }
        };
        let (_running, stop) = oneshot::channel();
        let mut watchdog = Watchdog::new(Duration::from_millis(5), stop);
        let guarded = watchdog.guard(Instant::now(), busy);
        let ended = tokio::time::timeout(Duration::from_secs(10), guarded).await;
        assert_eq!(ended, Ok(Guarded::Late), "the watchdog never struck");
    }
}
