//! Fault injection, for testing clients: `--delay`, `--bandwidth`, `--close-after`,
//! `--reset-probability` (streams) and `--drop-probability` (UDP).
//!
//! Free when off: with no fault option there is no [`Plan`], and a connection is echoed by
//! the usual loops (`conn::echo`, `tls`'s), untouched; the choice is made once per
//! connection. With one, the connection is echoed by [`echo`], a plain read-delay-write loop
//! (a delay per message rather than per read, see [`gather`]) written for clarity rather than speed, as
//! its point is to be slow or to fail.
//!
//! Randomness comes from a xorshift generator per connection (per UDP socket), seeded from
//! `--seed` or from the system's generator (`ring`), and the connection's number, so a
//! seeded run makes the same choices for the same order of connections and messages.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use super::conn::End;
use super::log::Event;
use super::stats::{Count, Stats};
use crate::cli::faults::{CloseAfter, Delay, Faults};
use crate::ui::{self, Level, Ui};

/// The read buffer of a fault-injected connection.
const BUF: usize = 16 * 1024;
/// The most a delayed burst gathers before it goes back (see [`gather`]).
const MAX_BURST: usize = 1024 * 1024;
/// How long a connection closed early is read from (and what comes discarded), so that
/// unread data does not turn its FIN into a reset.
const DRAIN: Duration = Duration::from_secs(2);
/// `--bandwidth`'s bucket holds this share of a second's worth.
const BURST_PER_SECOND: f64 = 20.0;

/// The faults asked for, shared by every connection of a server.
#[derive(Debug)]
pub struct Plan {
    delay: Option<Delay>,
    /// Bytes a second.
    bandwidth: Option<f64>,
    close_after: Option<CloseAfter>,
    reset: Option<f64>,
    drop: Option<f64>,
    seed: u64,
    /// How many generators were handed out: each connection's stream is its own.
    streams: AtomicU64,
}

impl Plan {
    /// The plan for the options, or `None` when no fault is asked for (the usual fast path).
    pub fn new(f: &Faults) -> Option<Plan> {
        let none = f.delay.is_none()
            && f.bandwidth.is_none()
            && f.close_after.is_none()
            && f.reset_probability.is_none()
            && f.drop_probability.is_none();
        if none {
            return None;
        }
        Some(Plan {
            delay: f.delay.clone(),
            bandwidth: f.bandwidth.map(|r| r.0),
            close_after: f.close_after,
            reset: f.reset_probability,
            drop: f.drop_probability,
            seed: f.seed.unwrap_or_else(random_seed),
            streams: AtomicU64::new(0),
        })
    }

    /// Says each fault asked for, once, at start (under `-q` nothing): a `fault_injection`
    /// event each, its `kind` the label `faults_injected_total` counts it under.
    pub fn announce(&self, ui: &Ui) {
        let say = |kind: &str, value: String, text: String| {
            Event::new(
                Level::Info,
                "fault_injection",
                format!("fault injection: {text}"),
            )
            .field("kind", kind)
            .field("value", value)
            .say(ui);
        };
        if let Some(d) = &self.delay {
            say(
                "delay",
                d.to_string(),
                format!("delay {d} before each echo"),
            );
        }
        if let Some(rate) = self.bandwidth {
            let rate = format!("{}/s", ui::bytes(rate as u64));
            say(
                "bandwidth",
                rate.clone(),
                format!("bandwidth {rate} per connection"),
            );
        }
        if let Some(c) = self.close_after {
            let text = format!("connections closed (FIN) after {c}");
            say("close_after", c.to_string(), text);
        }
        if let Some(p) = self.reset {
            let text = format!(
                "{}% of connections reset after their first echo",
                percent(p)
            );
            say("reset", p.to_string(), text);
        }
        if let Some(p) = self.drop {
            let text = format!("{}% of datagrams dropped", percent(p));
            say("drop", p.to_string(), text);
        }
    }

    /// A generator of its own for a connection (or a UDP socket).
    pub fn rng(&self) -> Rng {
        let n = self.streams.fetch_add(1, Ordering::Relaxed);
        Rng::new(self.seed ^ splitmix(n))
    }

    /// The pace of `--bandwidth`, if given.
    pub fn pacer(&self) -> Option<Pacer> {
        self.bandwidth.map(Pacer::new)
    }

    /// How long to wait before the next echo, if `--delay` is given and draws more than
    /// nothing (a weighted choice may be 0s).
    pub fn delay(&self, rng: &mut Rng) -> Option<Duration> {
        let wait = sample(self.delay.as_ref()?, rng);
        (!wait.is_zero()).then_some(wait)
    }

    /// `--close-after` for a connection opening now: the bytes it may echo, and when it must
    /// close.
    fn close_limits(&self) -> (u64, Option<Instant>) {
        match self.close_after {
            Some(CloseAfter::Bytes(n)) => (n, None),
            Some(CloseAfter::Time(d)) => (u64::MAX, Some(Instant::now() + d)),
            None => (u64::MAX, None),
        }
    }

    /// Whether to drop this datagram (`--drop-probability`).
    pub fn drops(&self, rng: &mut Rng) -> bool {
        self.drop.is_some_and(|p| rng.chance(p))
    }
}

fn percent(p: f64) -> String {
    let shown = format!("{:.2}", p * 100.0);
    shown.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A seed from the system's generator; a fixed one if it fails (the faults are then the same
/// every run, which is harmless: this is no secret).
fn random_seed() -> u64 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// SplitMix64's mix, to spread consecutive numbers over the seed space.
fn splitmix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xorshift64*: tiny and fast, and good enough to choose faults.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // xorshift's one forbidden state.
        Rng(if seed == 0 {
            0x2545_F491_4F6C_DD1D
        } else {
            seed
        })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in [0, n), n > 0.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// One draw from `--delay`'s distribution.
fn sample(delay: &Delay, rng: &mut Rng) -> Duration {
    match delay {
        Delay::Fixed(d) => *d,
        Delay::Range(low, high) => {
            let span = (*high - *low).as_nanos() as u64;
            *low + Duration::from_nanos(rng.below(span.saturating_add(1)))
        }
        Delay::Weighted(choices) => {
            let total: u64 = choices.iter().map(|(_, w)| u64::from(*w)).sum();
            let mut pick = rng.below(total);
            for (d, w) in choices {
                if pick < u64::from(*w) {
                    return *d;
                }
                pick -= u64::from(*w);
            }
            Duration::ZERO
        }
    }
}

/// `--bandwidth`'s token bucket, as the time the next byte may go: each grant moves it on by
/// the time its bytes take at the rate; an idle connection saves up at most a bucket's worth
/// (1/20 s), so it starts again at the rate, not with a burst.
#[derive(Debug)]
pub struct Pacer {
    seconds_per_byte: f64,
    /// The largest grant, a bucket's worth (at least a byte).
    chunk: usize,
    next: Instant,
    /// Whether it ever made anyone wait.
    pub waited: bool,
}

impl Pacer {
    fn new(rate: f64) -> Pacer {
        Pacer {
            seconds_per_byte: 1.0 / rate,
            chunk: ((rate / BURST_PER_SECOND) as usize).max(1),
            next: Instant::now(),
            waited: false,
        }
    }

    /// Waits until `want` bytes may go, or the bucket's worth of them; returns how many.
    pub async fn grant(&mut self, want: usize) -> usize {
        let n = want.min(self.chunk);
        self.take(n).await;
        n
    }

    /// Waits until `n` bytes (any number: UDP's batches) may go, and counts them as gone.
    /// They go once the last of them is paid for, less the bucket's worth an idle spell saves
    /// up: paying after sending would let a batch of many datagrams out at once and the rate
    /// run ahead by that batch.
    pub async fn take(&mut self, n: usize) {
        let now = Instant::now();
        let saved = Duration::from_secs_f64(self.chunk as f64 * self.seconds_per_byte);
        if self.next < now {
            self.next = now;
        }
        self.next += Duration::from_secs_f64(n as f64 * self.seconds_per_byte);
        let due = self.next.checked_sub(saved).unwrap_or(now);
        if due > now {
            self.waited = true;
            tokio::time::sleep_until(due).await;
        }
    }
}

/// What the faults did, counted as they happen (read by the status line and the summary).
#[derive(Debug, Default)]
pub struct Injected {
    /// Echoes (UDP: datagrams) held back by `--delay`.
    pub delayed: AtomicU64,
    /// Connections (UDP: sockets) that `--bandwidth` made wait at least once.
    pub throttled: AtomicU64,
    /// Connections closed by `--close-after`.
    pub closed_early: AtomicU64,
    /// Connections reset by `--reset-probability`.
    pub reset: AtomicU64,
    /// Datagrams dropped by `--drop-probability`.
    pub dropped: AtomicU64,
}

impl Injected {
    /// Counts what a connection's end shows: whether `--close-after` ended it.
    fn settle(&self, end: End) {
        if end == End::ClosedEarly {
            self.closed_early.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts now.
    pub fn tally(&self) -> Tally {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Tally {
            delayed: get(&self.delayed),
            throttled: get(&self.throttled),
            closed_early: get(&self.closed_early),
            reset: get(&self.reset),
            dropped: get(&self.dropped),
        }
    }
}

/// A copy of [`Injected`]'s counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Echoes (UDP: datagrams) delayed.
    pub delayed: u64,
    /// Connections (UDP: sockets) throttled.
    pub throttled: u64,
    /// Connections closed early.
    pub closed_early: u64,
    /// Connections reset.
    pub reset: u64,
    /// Datagrams dropped.
    pub dropped: u64,
}

impl Tally {
    /// `injected: 3 delayed, 1 reset`, or `None` when nothing was injected.
    pub fn describe(&self) -> Option<String> {
        let parts: Vec<String> = [
            (self.delayed, "delayed"),
            (self.throttled, "throttled"),
            (self.closed_early, "closed early"),
            (self.reset, "reset"),
            (self.dropped, "dropped"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        (!parts.is_empty()).then(|| format!("injected: {}", parts.join(", ")))
    }

    /// Adds another socket's counts.
    pub fn add(&mut self, other: &Tally) {
        self.delayed += other.delayed;
        self.throttled += other.throttled;
        self.closed_early += other.closed_early;
        self.reset += other.reset;
        self.dropped += other.dropped;
    }
}

/// How a step of a fault-injected echo ended.
enum Step<T> {
    Done(T),
    Idle,
    /// `--close-after DURATION` passed.
    Deadline,
}

/// `io` within the idle timeout and before the close-after deadline.
async fn step<T>(
    idle: Option<Duration>,
    deadline: Option<Instant>,
    io: impl std::future::Future<Output = T>,
) -> Step<T> {
    let idle_at = idle.map(|d| Instant::now() + d);
    let until = match (idle_at, deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let Some(until) = until else {
        return Step::Done(io.await);
    };
    match tokio::time::timeout_at(until, io).await {
        Ok(out) => Step::Done(out),
        Err(_) if deadline.is_some_and(|d| Instant::now() >= d) => Step::Deadline,
        Err(_) => Step::Idle,
    }
}

/// Echoes with the plan's faults until the client closes, the idle timeout, or a fault ends
/// it: [`End::ClosedEarly`] (closed here, cleanly) or [`End::Reset`] (for the caller to
/// reset). Bytes are counted in `stats` as the usual loops count them.
pub async fn echo<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    plan: &Plan,
    idle: Option<Duration>,
    stats: &Stats,
    echoed: &mut u64,
) -> io::Result<End> {
    let injected = &stats.injected;
    let mut rng = plan.rng();
    let reset = plan.reset.is_some_and(|p| rng.chance(p));
    let (mut budget, deadline) = plan.close_limits();
    let mut pacer = plan.pacer();
    let mut count = Count::new(stats, echoed);
    let mut buf = vec![0u8; BUF];
    let end = loop {
        let mut n = match step(idle, deadline, stream.read(&mut buf)).await {
            Step::Done(read) => read?,
            Step::Idle => break End::Idle,
            Step::Deadline => break close_early(stream).await,
        };
        let mut eof = n == 0;
        if let (Some(wait), false) = (plan.delay(&mut rng), eof) {
            injected.delayed.fetch_add(1, Ordering::Relaxed);
            if let Step::Deadline = step(None, deadline, tokio::time::sleep(wait)).await {
                break close_early(stream).await;
            }
            (n, eof) = gather(stream, &mut buf, n).await?;
        }
        let n = n.min(usize::try_from(budget).unwrap_or(usize::MAX));
        let out = &buf[..n];
        match write(
            stream,
            out,
            pacer.as_mut(),
            idle,
            deadline,
            &mut count,
            injected,
        )
        .await?
        {
            Step::Done(()) => {}
            Step::Idle => break End::Idle,
            Step::Deadline => break close_early(stream).await,
        }
        budget -= n as u64;
        if budget == 0 {
            break close_early(stream).await;
        }
        if eof {
            stream.shutdown().await?;
            break End::Closed;
        }
        if reset {
            injected.reset.fetch_add(1, Ordering::Relaxed);
            break End::Reset;
        }
        // A large burst's buffer goes with it.
        buf.truncate(BUF);
        buf.shrink_to(BUF);
    };
    injected.settle(end);
    Ok(end)
}

/// After a `--delay`: what else came during the wait, read without waiting into `buf` after
/// its first `n` bytes (up to [`MAX_BURST`]), so that it goes back now rather than after a
/// wait of its own: `--delay` holds back a message, not each read of it (fortio's `delay=` is
/// once a request), and a message larger than one read, or sent a byte a write, would wait
/// once a read. Nothing of it was echoed yet, so a request-reply client cannot have sent its
/// next request meanwhile. Returns the bytes now in `buf`, and whether the client closed.
async fn gather<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    mut n: usize,
) -> io::Result<(usize, bool)> {
    while n < MAX_BURST {
        if n == buf.len() {
            buf.resize((n * 2).min(MAX_BURST), 0);
        }
        let ready = std::future::poll_fn(|cx| {
            let mut read = ReadBuf::new(&mut buf[n..]);
            match Pin::new(&mut *stream).poll_read(cx, &mut read) {
                Poll::Ready(done) => Poll::Ready(done.map(|()| Some(read.filled().len()))),
                Poll::Pending => Poll::Ready(Ok(None)),
            }
        });
        match ready.await? {
            Some(0) => return Ok((n, true)),
            Some(more) => n += more,
            None => break,
        }
    }
    Ok((n, false))
}

/// Writes all of `data`, paced by `pacer`, and flushes it (TLS holds records until then).
async fn write<S: AsyncWrite + Unpin>(
    stream: &mut S,
    data: &[u8],
    mut pacer: Option<&mut Pacer>,
    idle: Option<Duration>,
    deadline: Option<Instant>,
    count: &mut Count<'_>,
    injected: &Injected,
) -> io::Result<Step<()>> {
    let mut sent = 0;
    while sent < data.len() {
        let want = data.len() - sent;
        let n = match pacer.as_deref_mut() {
            Some(pacer) => {
                let was = pacer.waited;
                let n = match step(None, deadline, pacer.grant(want)).await {
                    Step::Done(n) => n,
                    _ => return Ok(Step::Deadline),
                };
                // Counted as it starts, so the status line shows a throttled connection live.
                if pacer.waited && !was {
                    injected.throttled.fetch_add(1, Ordering::Relaxed);
                }
                n
            }
            None => want,
        };
        match step(idle, deadline, stream.write_all(&data[sent..sent + n])).await {
            Step::Done(done) => done?,
            Step::Idle => return Ok(Step::Idle),
            Step::Deadline => return Ok(Step::Deadline),
        }
        count.add(n);
        sent += n;
    }
    Ok(match step(idle, deadline, stream.flush()).await {
        Step::Done(done) => {
            done?;
            Step::Done(())
        }
        Step::Idle => Step::Idle,
        Step::Deadline => Step::Deadline,
    })
}

/// Closes our side cleanly (a FIN; over TLS close_notify first), then reads and discards
/// what the client still sends for up to [`DRAIN`], so that data left unread does not make
/// the kernel answer with a reset instead.
async fn close_early<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> End {
    let until = Instant::now() + DRAIN;
    if tokio::time::timeout_at(until, stream.shutdown())
        .await
        .is_ok_and(|r| r.is_ok())
    {
        let mut sink = [0u8; 4096];
        while let Ok(Ok(n)) = tokio::time::timeout_at(until, stream.read(&mut sink)).await {
            if n == 0 {
                break;
            }
        }
    }
    End::ClosedEarly
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_delays_come_in_proportion() {
        let d = Delay::Weighted(vec![
            (Duration::from_millis(1), 3),
            (Duration::from_millis(9), 1),
        ]);
        let mut rng = Rng::new(42);
        let long = (0..10_000)
            .filter(|_| sample(&d, &mut rng) == Duration::from_millis(9))
            .count();
        assert!((2_200..2_800).contains(&long), "{long}");
    }

    #[test]
    fn ranges_stay_inside() {
        let (low, high) = (Duration::from_millis(10), Duration::from_millis(50));
        let mut rng = Rng::new(7);
        for _ in 0..1000 {
            let d = sample(&Delay::Range(low, high), &mut rng);
            assert!(d >= low && d <= high);
        }
    }

    #[test]
    fn chance_is_about_right() {
        let mut rng = Rng::new(1);
        let hits = (0..10_000).filter(|_| rng.chance(0.3)).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
    }

    #[test]
    fn each_connections_first_draw_is_about_right() {
        // A connection's reset is its generator's first draw: over connections, these must
        // come in proportion too, whatever the seed.
        for seed in [0, 21, u64::MAX] {
            let hits = (0..10_000)
                .filter(|&n| Rng::new(seed ^ splitmix(n)).chance(0.3))
                .count();
            assert!((2_700..3_300).contains(&hits), "seed {seed}: {hits}");
        }
    }

    #[test]
    fn tally_wording() {
        let t = Tally {
            delayed: 3,
            reset: 1,
            ..Tally::default()
        };
        assert_eq!(
            t.describe().as_deref(),
            Some("injected: 3 delayed, 1 reset")
        );
        assert_eq!(Tally::default().describe(), None);
    }
}
