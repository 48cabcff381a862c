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
//! and then, so the hot loop takes no lock and touches no shared counter. With an interval
//! series ([`super::series`]) a batch holds one interval's events, counts included, and is
//! handed in at the first event of the next; the watcher writes each interval a little after
//! its end.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use color_eyre::eyre;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::json::{Counts, LoadSummary, print, print_summary};
use super::series::{self, Clock, Open, Outputs};
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
    /// `--report-every`, `--json-lines`, `--warmup`, `--hdr-log`, `--percentiles`.
    pub(super) series: series::Settings,
    pub(super) options: Options,
}

/// What the connections share: the latencies and intervals handed in so far.
struct Shared {
    recorded: Mutex<Recorded>,
}

/// The figures handed in so far.
struct Recorded {
    /// The measured round trips (none of the warmup's).
    total: Latencies,
    /// With `--rate`: the same from the actual send.
    uncorrected: Option<Latencies>,
    /// The intervals not yet written, when the run has a series.
    series: Option<Open>,
}

impl Shared {
    fn new(load: &Load) -> Shared {
        let rate = load.rate.is_some();
        Shared {
            recorded: Mutex::new(Recorded {
                total: Latencies::new(),
                uncorrected: rate.then(Latencies::new),
                // Once the run starts: its first interval depends on the warmup.
                series: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `batch` to the figures and empties it: a warmup one to its interval only.
    fn hand_in(&self, batch: &mut Batch) {
        let mut guard = self.lock();
        let r = &mut *guard;
        if batch.interval >= 0 {
            record(&mut r.total, &batch.latencies);
            if let Some(u) = &mut r.uncorrected {
                record(u, &batch.uncorrected);
            }
        }
        if let Some(slot) = r.series.as_mut().and_then(|o| o.slot(batch.interval)) {
            record(&mut slot.latencies, &batch.latencies);
            if let Some(u) = &mut slot.uncorrected {
                record(u, &batch.uncorrected);
            }
            slot.counts.add(batch.counts);
            for (kind, n) in &batch.errors {
                *slot.errors.entry(kind).or_default() += n;
            }
        }
        drop(guard);
        batch.clear();
    }

    /// The measured round trips so far, and with `--rate` the uncorrected ones.
    fn latencies(&self) -> (Latencies, Option<Latencies>) {
        let r = self.lock();
        (r.total.clone(), r.uncorrected.clone())
    }
}

fn record(l: &mut Latencies, batch: &[u64]) {
    for &ns in batch {
        l.record_ns(ns);
    }
}

/// A connection's events not yet handed in: the latencies, and with a series the counts of
/// the one interval they all belong to.
struct Batch {
    latencies: Vec<u64>,
    /// With `--rate`: from the actual send.
    uncorrected: Vec<u64>,
    /// The interval of everything in it: always 0 without a series.
    interval: i64,
    counts: Counts,
    errors: BTreeMap<&'static str, u64>,
    handed: Instant,
}

impl Batch {
    fn new(rate: bool) -> Batch {
        // As if handed in long ago, so the first latency goes in at once: at a slow --rate a
        // connection's next message may be many seconds away, and the live line showed no
        // reply until then.
        let now = Instant::now();
        Batch {
            latencies: Vec::with_capacity(BATCH),
            uncorrected: Vec::with_capacity(if rate { BATCH } else { 0 }),
            interval: 0,
            counts: Counts::default(),
            errors: BTreeMap::new(),
            handed: now.checked_sub(BATCH_AGE).unwrap_or(now),
        }
    }

    fn clear(&mut self) {
        self.latencies.clear();
        self.uncorrected.clear();
        self.counts = Counts::default();
        self.errors.clear();
    }

    /// Nothing to hand in.
    fn is_empty(&self) -> bool {
        self.latencies.is_empty() && self.counts == Counts::default() && self.errors.is_empty()
    }

    /// Whether it is due to be handed in at `now`: full, or old enough.
    fn due(&self, now: Instant) -> bool {
        self.latencies.len() == BATCH || now - self.handed >= BATCH_AGE
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A connection's bookkeeping: its measured figures, returned at its end, and its batch.
struct Tally {
    ended: Ended,
    batch: Batch,
    shared: Arc<Shared>,
    /// With a series (or a warmup): which interval an event falls in.
    clock: Option<Clock>,
    rate: bool,
    /// The last event was after the warmup.
    measured: bool,
    /// Intact replies, warmup included: the backoff's measure of a link that served.
    intact: u64,
}

impl Tally {
    fn new(shared: Arc<Shared>, clock: Option<Clock>, rate: bool) -> Tally {
        let mut batch = Batch::new(rate);
        batch.interval = clock.map_or(0, |c| c.index(c.start));
        Tally {
            ended: Ended::default(),
            batch,
            shared,
            clock,
            rate,
            measured: true,
            intact: 0,
        }
    }

    /// Notes that an event happens at `now`: its interval's batch is started, handing in
    /// the last one's.
    fn at(&mut self, now: Instant) {
        let Some(clock) = &self.clock else { return };
        let k = clock.index(now);
        if k != self.batch.interval {
            if !self.batch.is_empty() {
                self.shared.hand_in(&mut self.batch);
            }
            self.batch.interval = k;
            self.batch.handed = now;
        }
        self.measured = k >= 0;
    }

    /// Hands the batch in before a sleep until `until` that would keep it past its age or
    /// into another interval: an idle connection's replies are then not written late.
    fn before_sleep(&mut self, now: Instant, until: Instant) {
        if until <= now || self.batch.is_empty() {
            return;
        }
        let crosses = self
            .clock
            .is_some_and(|c| c.index(until) != self.batch.interval);
        if crosses || until - self.batch.handed >= BATCH_AGE {
            self.shared.hand_in(&mut self.batch);
            self.batch.handed = now;
        }
    }

    /// A message whose round trip ended at `done` (sent, answered or not).
    fn sent(&mut self, done: Instant) {
        self.at(done);
        if self.measured {
            self.ended.counts.sent += 1;
        }
        if self.clock.is_some() {
            self.batch.counts.sent += 1;
        }
    }

    /// Its reply came at `done`: `from` when its latency counts, `sent` when it went out.
    fn reply(&mut self, (from, sent, done): (Instant, Instant, Instant), intact: bool) {
        let mismatched = u64::from(!intact);
        self.intact += u64::from(intact);
        if self.measured {
            self.ended.counts.received += 1;
            self.ended.counts.mismatched += mismatched;
        }
        if self.clock.is_some() {
            self.batch.counts.received += 1;
            self.batch.counts.mismatched += mismatched;
        }
        self.batch.latencies.push(ns(done - from));
        if self.rate {
            self.batch.uncorrected.push(ns(done - sent));
        }
        if self.batch.due(done) {
            self.shared.hand_in(&mut self.batch);
            self.batch.handed = done;
        }
    }

    /// The message was lost, for `kind`.
    fn lose(&mut self, kind: &'static str) {
        if self.measured {
            self.ended.lose(kind);
        }
        if self.clock.is_some() {
            self.batch.counts.lost += 1;
            *self.batch.errors.entry(kind).or_default() += 1;
        }
    }

    /// An error at `now` that lost no message (a reconnect that failed).
    fn error(&mut self, now: Instant, kind: &'static str) {
        self.at(now);
        if self.measured {
            self.ended.error(kind);
        }
        if self.clock.is_some() {
            *self.batch.errors.entry(kind).or_default() += 1;
        }
    }

    /// A connection opened anew at `now`.
    fn reconnected(&mut self, now: Instant) {
        self.at(now);
        if self.measured {
            self.ended.reconnects += 1;
        }
    }

    /// Hands the rest in: the connection is done.
    fn finish(mut self) -> Ended {
        self.shared.hand_in(&mut self.batch);
        self.ended
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
    mut tally: Tally,
    stop: oneshot::Receiver<()>,
) -> Ended {
    let mut watchdog = Watchdog::new(plan.timeout, stop);
    let mut backoff = Backoff::default();
    // The clock is read once per message: the end of one round trip is the start of the next.
    let mut now = Instant::now();
    for k in 0u64.. {
        if plan.rate.is_some() {
            tally.before_sleep(now, plan.intended(k, now).min(plan.end));
        }
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
        let done = Instant::now();
        now = done;
        tally.sent(done);
        // Here only a reply that differs, a timeout or a transient failure: this connection is
        // replaced.
        match trip {
            Guarded::Done(Ok(echo)) => {
                tally.reply((from, sent, done), echo == Echo::Intact);
                if echo == Echo::Intact {
                    continue;
                }
                // A stream's later echoes may now be out of step with the messages (one
                // inserted byte made every later one differ), so a new connection.
            }
            Guarded::Done(Err(failure)) => {
                tally.lose(failure.kind());
                if !failure.is_transient() {
                    break;
                }
            }
            Guarded::Late => tally.lose("timeout"),
            Guarded::Stopped => break,
        }
        backoff.after(tally.intact);
        let reopened = replace(
            &mut conn,
            &*dialer,
            &mut watchdog.stop,
            plan.end,
            (&mut tally, &mut backoff),
        );
        if !reopened.await {
            break;
        }
        now = Instant::now();
    }
    tally.finish()
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
    (tally, backoff): (&mut Tally, &mut Backoff),
) -> bool {
    loop {
        match redial(dialer, stop, end, backoff.pause).await {
            Some(Ok(fresh)) => {
                *conn = fresh;
                tally.reconnected(Instant::now());
                return true;
            }
            Some(Err(())) => {
                tally.error(Instant::now(), "connect");
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
    /// Adds a connection's figures.
    fn add(&mut self, ended: Ended) {
        self.counts.add(ended.counts);
        self.reconnects += ended.reconnects;
        for (kind, n) in ended.errors {
            *self.errors.entry(kind).or_default() += n;
        }
    }

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
    // Before anything else: a file that cannot be written costs no run.
    let mut outputs = Outputs::open(&load.series, load.options.size, false)?;
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
        let none = (Latencies::new(), None);
        return report(&load, server, results, &none, Duration::ZERO, &mut outputs);
    }
    header(&load, &server, results.up, ui);
    let shared = Arc::new(Shared::new(&load));
    let run = spawn_all(conns, &dialer, &load, &shared)?;
    let (start, clock) = (run.start, run.clock);
    outputs.begin(SystemTime::now(), &server)?;
    let watched = Watched {
        shared: &shared,
        outputs: &mut outputs,
        clock,
    };
    watch(run, interrupt, ui, &load, watched, &mut results).await?;
    let elapsed = start.elapsed();
    if let Some(clock) = clock {
        write_intervals(&shared, &mut outputs, &clock, None, elapsed, ui)?;
    }
    // The figures are of the measured part: the warmup's are in none.
    let measured = elapsed.saturating_sub(load.series.warmup);
    behind_schedule(&load, &results, measured, ui);
    report(
        &load,
        server,
        results,
        &shared.latencies(),
        measured,
        &mut outputs,
    )
}

/// The line that starts the run: `LOAD ADDR: 50 connections, 64 bytes per message, 10s at
/// 1000 msgs/s after a 2s warmup`.
fn header(load: &Load, server: &str, up: u64, ui: &Ui) {
    let rate = load
        .rate
        .map_or(String::new(), |r| format!(" at {r} msgs/s"));
    let warmup = if load.series.warmup.is_zero() {
        String::new()
    } else {
        format!(" after a {} warmup", ui::duration(load.series.warmup))
    };
    ui.info(&format!(
        "LOAD {server}: {}, {} bytes per message, {}{rate}{warmup}",
        connections(up, load.connections),
        load.options.size,
        ui::duration(load.duration)
    ));
}

/// Writes the intervals that are over: through `through`, or at the run's end (`None`) all
/// of them, the last ending at `elapsed`.
fn write_intervals(
    shared: &Shared,
    outputs: &mut Outputs,
    clock: &Clock,
    through: Option<i64>,
    elapsed: Duration,
    ui: &Ui,
) -> eyre::Result<()> {
    let closed = {
        let mut r = shared.lock();
        let Some(open) = r.series.as_mut() else {
            return Ok(());
        };
        let through =
            through.unwrap_or_else(|| clock.index(clock.start + elapsed).max(open.next()));
        open.close_through(through)
    };
    for (k, interval) in &closed {
        outputs.interval(clock.span(*k, elapsed), *k, interval, ui)?;
    }
    Ok(())
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
    /// The intervals, with a series.
    clock: Option<Clock>,
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
    let clock = load
        .series
        .active()
        .then(|| Clock::new(&load.series, start, Some(load.duration)));
    if let Some(clock) = &clock {
        let first = clock.index(start);
        shared.lock().series = Some(Open::new(first, load.rate.is_some()));
    }
    let mut workers = JoinSet::new();
    let mut stops = Vec::with_capacity(conns.len());
    let of = conns.len() as u64;
    for ((id, conn), msg) in conns.into_iter().enumerate().zip(msgs) {
        let plan = Plan {
            id: id as u64,
            of,
            start,
            // The warmup comes on top of --duration, as iperf3 -O's.
            end: start + load.series.warmup + load.duration,
            rate: load.rate,
            timeout: load.options.timeout,
        };
        let (stop, stopped) = oneshot::channel();
        stops.push(stop);
        let dialer = Arc::clone(dialer);
        let tally = Tally::new(Arc::clone(shared), clock, load.rate.is_some());
        workers.spawn(connection(conn, dialer, msg, plan, tally, stopped));
    }
    Ok(Run {
        workers,
        stop: stops,
        start,
        clock,
    })
}

/// What the watcher reads and writes besides the connections' results.
struct Watched<'a> {
    shared: &'a Shared,
    outputs: &'a mut Outputs,
    clock: Option<Clock>,
}

/// Collects the connections' results as they end, drawing the live line and writing the
/// intervals meanwhile. Ctrl-C ends the run early, with the report: every connection stops
/// at once.
async fn watch(
    run: Run,
    mut interrupt: std::pin::Pin<&mut impl Future<Output = ()>>,
    ui: &Ui,
    load: &Load,
    watched: Watched<'_>,
    results: &mut Results,
) -> eyre::Result<()> {
    let Run {
        mut workers,
        mut stop,
        start,
        ..
    } = run;
    let shared = watched.shared;
    let bar = ui.progress_bar(load.progress, None, TEMPLATE);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    // The next interval to write; the last is written once the run is over.
    let mut next = watched.clock.map(|c| (c, c.index(start)));
    loop {
        let close_at = next
            .filter(|(c, k)| !c.is_last(*k))
            .map(|(c, k)| c.close_at(k));
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(Ok(ended)) => results.add(ended),
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
                    let measured = start.elapsed().saturating_sub(load.series.warmup);
                    bar.set_message(live(&shared.latencies().0, load.options.size, measured));
                }
            }
            () = sleep_until(close_at), if close_at.is_some() => {
                if let Some((c, k)) = &mut next {
                    let outputs = &mut *watched.outputs;
                    let written = write_intervals(shared, outputs, c, Some(*k), start.elapsed(), ui);
                    written.inspect_err(|_| ui.finish_live())?;
                    *k += 1;
                }
            }
        }
    }
    ui.finish_live();
    Ok(())
}

/// Sleeps until `at`, or for ever without it (its select branch is then disabled anyway).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
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
    (latencies, uncorrected): &(Latencies, Option<Latencies>),
    elapsed: Duration,
    outputs: &mut Outputs,
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
        rtt_uncorrected_ms: uncorrected.as_ref().and_then(Latencies::times),
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
    outputs.finish(latencies)?;
    if summary.ok {
        return Ok(Exit::Success);
    }
    let failed = (results.failed, results.out_of_files, results.connect_error);
    Err(failure(load, &summary, failed))
}

/// Why a run that was not ok failed, naming only what went wrong ("0 of 98413 messages lost"
/// led a run whose connections failed); `failed`: the connections that failed, whether for
/// want of file descriptors, and the first one's error.
fn failure(
    load: &Load,
    summary: &LoadSummary,
    (failed, out_of_files, connect_error): (u64, bool, Option<String>),
) -> eyre::Report {
    let c = summary.counts;
    if c.sent == 0 && summary.errors.is_empty() {
        // Replies may have come in the warmup, but they are in no figure: nothing measured.
        if summary.duration_s == 0.0 && !load.series.warmup.is_zero() {
            let warmup = ui::duration(load.series.warmup);
            return eyre::eyre!("ended during the {warmup} warmup: nothing was measured");
        }
        return eyre::eyre!("no reply from {} before the interrupt", summary.server);
    }
    let mut why = Vec::new();
    if !c.intact() {
        why.push(c.trouble());
    }
    if failed > 0 {
        let limit = if out_of_files {
            format!("; {}", open_files_advice())
        } else {
            String::new()
        };
        why.push(format!(
            "{failed} of {} connections failed: {}{limit}",
            load.connections,
            connect_error.unwrap_or_default()
        ));
    }
    eyre::eyre!("{} ({})", why.join("; "), errors(&summary.errors))
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
        // With --rate two lines of figures follow each other: each says which it is, as
        // wrk2 -U heads its "Recorded" and "Uncorrected" distributions.
        let which = if s.rtt_uncorrected_ms.is_some() {
            " (corrected: from the scheduled send)"
        } else {
            ""
        };
        out.push_str(&format!(
            "latency p50/p90/p99/p99.9/max = {:.3}/{:.3}/{:.3}/{:.3}/{:.3} ms{which}\n",
            t.p50, t.p90, t.p99, t.p99_9, t.max
        ));
    }
    if let Some(t) = s.rtt_uncorrected_ms {
        // Beside the corrected figures, as wrk2 -U: what a generator blind to its own
        // lateness (coordinated omission) would have reported.
        out.push_str(&format!(
            "uncorrected p50/p90/p99/p99.9/max = {:.3}/{:.3}/{:.3}/{:.3}/{:.3} ms \
             (uncorrected: from the actual send)\n",
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
        let shared = Arc::new(Shared {
            recorded: Mutex::new(Recorded {
                total: Latencies::new(),
                uncorrected: None,
                series: None,
            }),
        });
        let mut tally = Tally::new(Arc::clone(&shared), None, false);
        let now = Instant::now();
        tally.sent(now);
        tally.reply((now - Duration::from_micros(70), now, now), true);
        assert_eq!(shared.latencies().0.len(), 1);
    }

    /// With a warmup and intervals, each reply goes to the interval in which it came, the
    /// warmup's to no figure of the summary; the intervals add up to what the connection
    /// returns, the replies past the run's end in the last.
    #[test]
    fn replies_go_to_their_intervals_and_the_warmups_to_no_figure() {
        let ms = Duration::from_millis;
        let settings = series::Settings {
            every: Some(ms(100)),
            warmup: ms(100),
            ..series::Settings::default()
        };
        let start = Instant::now();
        let clock = Clock::new(&settings, start, Some(ms(300)));
        let shared = Arc::new(Shared {
            recorded: Mutex::new(Recorded {
                total: Latencies::new(),
                uncorrected: Some(Latencies::new()),
                series: Some(Open::new(clock.index(start), true)),
            }),
        });
        let mut tally = Tally::new(Arc::clone(&shared), Some(clock), true);
        for at in [50, 150, 160, 250, 450] {
            let done = start + ms(at);
            tally.sent(done);
            // Sent 2 ms late, its latency counted from 5 ms before the reply.
            tally.reply((done - ms(5), done - ms(3), done), true);
        }
        let ended = tally.finish();
        assert_eq!((ended.counts.sent, ended.counts.received), (4, 4));
        let (total, uncorrected) = shared.latencies();
        assert_eq!((total.len(), uncorrected.map(|u| u.len())), (4, Some(4)));
        assert!((total.times().unwrap().max - 5.0).abs() < 0.01);
        let closed = shared.lock().series.as_mut().unwrap().close_through(2);
        let got: Vec<(i64, u64, u64)> = closed
            .iter()
            .map(|(k, i)| (*k, i.counts.received, i.latencies.len()))
            .collect();
        assert_eq!(got, [(-1, 1, 1), (0, 2, 2), (1, 1, 1), (2, 1, 1)]);
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
