//! Who may connect: `--allow`/`--deny` networks and `--max-per-ip` for stream clients,
//! `--allow`/`--deny` and `--rate-limit` for UDP sources.
//!
//! One question is asked of a stream client, by [`Gate::check`] with its address: the accept
//! loop asks it right after `accept()`; behind a PROXY protocol header the connection asks it
//! with the client the header names, once it is read (`life::echo`, inetd mode too). Refusals
//! are counted by reason (the metrics' `refused_total`) and said as `refused` events, at most
//! a line a second for the whole process. Rules as ncat's: a client in any `--deny` network
//! is refused; with `--allow` given, so is one in none of them; deny wins over allow. An
//! IPv4 client of a dual-stack listener (`::ffff:a.b.c.d`) is matched as IPv4.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::fault::{self, Pacer, Plan, Rng};
use super::log::{Event, Throttle, Throttled, said_throttled};
use crate::cli::faults::{Admission, Cidr};
use crate::net::stream::Peer;
use crate::ui::{Level, Ui};

/// Why a client was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// In a `--deny` network.
    Denied,
    /// Outside every `--allow` network.
    NotAllowed,
    /// Already `--max-per-ip` connections open from its address.
    TooMany,
}

impl Refusal {
    /// The reason in a log line.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Denied => "in a --deny network",
            Refusal::NotAllowed => "not in an --allow network",
            Refusal::TooMany => "too many connections from its address (--max-per-ip)",
        }
    }

    /// The `reason` label of `refused_total` and of a `refused` JSON line.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Denied => "denied",
            Refusal::NotAllowed => "not_allowed",
            Refusal::TooMany => "too_many",
        }
    }
}

/// The `--allow` and `--deny` networks.
#[derive(Debug, Clone, Default)]
pub struct Networks {
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
}

impl Networks {
    /// The networks of the options; `None` when neither is given.
    pub fn new(a: &Admission) -> Option<Networks> {
        (!a.allow.is_empty() || !a.deny.is_empty()).then(|| Networks {
            allow: a.allow.clone(),
            deny: a.deny.clone(),
        })
    }

    /// Why `ip` may not connect, if it may not.
    pub fn refuses(&self, ip: IpAddr) -> Option<Refusal> {
        if self.deny.iter().any(|c| c.contains(ip)) {
            Some(Refusal::Denied)
        } else if !self.allow.is_empty() && !self.allow.iter().any(|c| c.contains(ip)) {
            Some(Refusal::NotAllowed)
        } else {
            None
        }
    }
}

/// Refusals by `--allow`, `--deny` and `--max-per-ip` (UDP: `--allow`, `--deny`).
static REFUSED: Throttled = Throttled::new("refused", "refused by --allow, --deny or --max-per-ip");

/// Says that the client (or datagram source) at `peer` was refused, and why: the `refused`
/// event, at most a line a second for the whole process.
fn say_refused(peer: impl std::fmt::Display, why: Refusal, ui: &Ui) {
    let line = format!("refused {peer}: {}", why.reason());
    let event = Event::new(Level::Info, "refused", line)
        .peer(peer)
        .reason(why.reason())
        .field("rule", why.label());
    said_throttled(&REFUSED, ui, event);
}

/// At a stop: the refusal lines held back, which the task due to say them would not live
/// to say.
pub(super) fn say_held_back(ui: &Ui) {
    REFUSED.say_held(ui);
}

/// The stream server's admission: networks and connections open per address.
#[derive(Debug)]
pub struct Gate {
    networks: Option<Networks>,
    max_per_ip: Option<usize>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// A client let in; its place under `--max-per-ip` is given back when this is dropped.
#[derive(Debug)]
pub struct Pass {
    gate: Option<(Arc<Gate>, IpAddr)>,
}

impl Drop for Pass {
    fn drop(&mut self) {
        if let Some((gate, ip)) = self.gate.take() {
            let mut open = gate.open.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = open.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&ip);
                }
            }
        }
    }
}

/// How long a client over `--max-per-ip` waits for one of its own connections to end.
const PER_IP_GRACE: Duration = Duration::from_millis(100);
/// How often a waiting client looks again.
const PER_IP_LOOK: Duration = Duration::from_millis(5);

/// What the gate says at accept.
pub enum Verdict {
    /// Admitted: the pass, held for the connection's life.
    Pass(Pass),
    /// Refused (counted and logged).
    Refused,
    /// Over `--max-per-ip`: to be asked again, with a short wait, from the connection's task.
    Wait,
}

/// The address `--allow`, `--deny` and `--max-per-ip` judge: none for a Unix socket's client.
fn ip_of(peer: Peer) -> Option<IpAddr> {
    match peer {
        Peer::Tcp(addr) => Some(addr.ip()),
        Peer::Unix { .. } => None,
    }
}

impl Gate {
    /// The gate of the options; `None` when no stream rule is given (nothing to ask).
    pub fn new(a: &Admission) -> Option<Arc<Gate>> {
        let networks = Networks::new(a);
        let max_per_ip = a.max_per_ip.map(|n| n.get());
        (networks.is_some() || max_per_ip.is_some()).then(|| {
            Arc::new(Gate {
                networks,
                max_per_ip,
                open: Mutex::default(),
            })
        })
    }

    /// At accept, where nothing may wait: the client's pass, a refusal (counted and logged at
    /// most a line a second; the caller closes the connection), or [`Verdict::Wait`] for a
    /// client over `--max-per-ip`, whose own task then asks [`Gate::check`].
    pub fn check_now(self: &Arc<Self>, peer: Peer, refused: &Refused, ui: &Ui) -> Verdict {
        match self.admit(ip_of(peer)) {
            Ok(pass) => Verdict::Pass(pass),
            Err(Refusal::TooMany) => Verdict::Wait,
            Err(why) => {
                refused.count(why);
                say_refused(peer, why, ui);
                Verdict::Refused
            }
        }
    }

    /// The admission of the client at `peer`: its pass (held for the connection's life), or
    /// `None` when it is refused, which is counted in `refused` and logged (at most a line a
    /// second, then how many were not shown). The caller closes a refused connection. A client
    /// over `--max-per-ip` waits up to [`PER_IP_GRACE`] for one of its connections to end: one
    /// that closed and came straight back still holds its place until the server's task for
    /// it has seen the close (with `--max-per-ip 1`, a quarter of 2,000 such reconnections were
    /// refused without the wait).
    pub async fn check(self: &Arc<Self>, peer: Peer, refused: &Refused, ui: &Ui) -> Option<Pass> {
        let until = Instant::now() + PER_IP_GRACE;
        let why = loop {
            match self.admit(ip_of(peer)) {
                Ok(pass) => return Some(pass),
                Err(Refusal::TooMany) if Instant::now() < until => {
                    tokio::time::sleep(PER_IP_LOOK).await;
                }
                Err(why) => break why,
            }
        };
        refused.count(why);
        say_refused(peer, why, ui);
        None
    }

    /// Whether the client at `ip` may connect now: its pass (held for the connection's life),
    /// or why not. A client with no address (a Unix socket's, whose PROXY header named none)
    /// is outside every `--allow` network, and not counted by `--max-per-ip`.
    pub fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Pass, Refusal> {
        let Some(ip) = ip.map(|ip| ip.to_canonical()) else {
            return match &self.networks {
                Some(n) if !n.allow.is_empty() => Err(Refusal::NotAllowed),
                _ => Ok(Pass { gate: None }),
            };
        };
        if let Some(why) = self.networks.as_ref().and_then(|n| n.refuses(ip)) {
            return Err(why);
        }
        let Some(max) = self.max_per_ip else {
            return Ok(Pass { gate: None });
        };
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return Err(Refusal::TooMany);
        }
        *n += 1;
        Ok(Pass {
            gate: Some((Arc::clone(self), ip)),
        })
    }
}

/// Clients refused, by reason (stream connections, or UDP datagrams).
#[derive(Debug, Default)]
pub struct Refused {
    /// By [`Refusal`]: denied, not allowed, too many.
    counts: [AtomicU64; 3],
}

impl Refused {
    /// Counts one refusal.
    pub fn count(&self, why: Refusal) {
        self.counts[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn tally(&self) -> Tally {
        Tally(self.counts.each_ref().map(|c| c.load(Ordering::Relaxed)))
    }
}

/// A copy of [`Refused`]'s counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally([u64; 3]);

impl Tally {
    /// All refusals.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The counts, each with its reason.
    pub fn by_reason(&self) -> [(Refusal, u64); 3] {
        [Refusal::Denied, Refusal::NotAllowed, Refusal::TooMany]
            .map(|why| (why, self.0[why as usize]))
    }

    /// Counts one refusal.
    pub fn count(&mut self, why: Refusal) {
        self.0[why as usize] += 1;
    }

    /// Adds another socket's counts.
    pub fn add(&mut self, other: &Tally) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }

    /// `refused 3 (2 in a --deny network, 1 ...)`, or `None` when none was.
    pub fn describe(&self) -> Option<String> {
        let all = [Refusal::Denied, Refusal::NotAllowed, Refusal::TooMany];
        let parts: Vec<String> = all
            .iter()
            .map(|&why| (why, self.0[why as usize]))
            .filter(|(_, n)| *n > 0)
            .map(|(why, n)| format!("{n} {}", why.reason()))
            .collect();
        (!parts.is_empty()).then(|| format!("refused {} ({})", self.total(), parts.join(", ")))
    }
}

/// The most sources `--rate-limit` keeps a bucket for.
pub const MAX_SOURCES: usize = 4096;

/// `--rate-limit`: a token bucket per source address holding one second's worth (at least
/// one datagram), in a table of at most [`MAX_SOURCES`]. When the table is full, the buckets
/// that have filled up again (their source quiet for a second or more: forgetting them loses
/// nothing) are removed; if none has, a new source's datagram is dropped until one has.
#[derive(Debug)]
pub struct RateLimit {
    per_second: f64,
    burst: f64,
    buckets: HashMap<IpAddr, (f64, Instant)>,
    /// When the table was last found full of busy sources: the soonest one of them can have
    /// filled up. Until then a new source is dropped without a look at the table, so that a
    /// flood from many sources (spoofed, or 127/8) costs a hash look-up a datagram, not a
    /// sweep of thousands of buckets.
    full_until: Option<Instant>,
}

impl RateLimit {
    /// A limit of `per_second` datagrams per source.
    pub fn new(per_second: f64) -> RateLimit {
        RateLimit {
            per_second,
            burst: per_second.max(1.0),
            buckets: HashMap::new(),
            full_until: None,
        }
    }

    /// Whether a datagram from `ip`, received at `now`, may be echoed (taking its token).
    pub fn allows(&mut self, ip: IpAddr, now: Instant) -> bool {
        let ip = ip.to_canonical();
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= MAX_SOURCES {
            if self.full_until.is_some_and(|until| now < until) {
                return false;
            }
            let (rate, burst) = (self.per_second, self.burst);
            let mut soonest = f64::INFINITY;
            self.buckets.retain(|_, (tokens, at)| {
                let filled = *tokens + rate * now.saturating_duration_since(*at).as_secs_f64();
                soonest = soonest.min((burst - filled) / rate);
                filled < burst
            });
            if self.buckets.len() >= MAX_SOURCES {
                // A bucket only fills later than this if its source sends meanwhile.
                self.full_until = Some(now + Duration::from_secs_f64(soonest.clamp(0.0, 3600.0)));
                return false;
            }
        }
        let (tokens, at) = self.buckets.entry(ip).or_insert((self.burst, now));
        *tokens = (*tokens + self.per_second * now.saturating_duration_since(*at).as_secs_f64())
            .min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What a UDP socket applies to each datagram beyond the reflection rules: `--allow`,
/// `--deny` and `--rate-limit` (who may be echoed), and the faults (`--drop-probability`,
/// `--delay`, `--bandwidth`). Absent when none is asked for.
pub struct Datagrams {
    networks: Option<Networks>,
    limit: Option<RateLimit>,
    plan: Option<Arc<Plan>>,
    rng: Option<Rng>,
    pacer: Option<Pacer>,
    /// The `-v` lines of datagrams over `--rate-limit`: a flood is one source's, so this
    /// socket's throttle is enough.
    limited: Throttle,
}

/// What [`Datagrams`] did, for a socket's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatagramCounts {
    /// Datagrams from sources `--allow`/`--deny` keep out.
    pub refused: Tally,
    /// Datagrams over `--rate-limit`.
    pub rate_limited: u64,
    /// Faults injected.
    pub injected: fault::Tally,
}

impl Datagrams {
    /// The rules of the options, or `None` when none applies to UDP.
    pub fn new(a: &Admission, plan: Option<Arc<Plan>>) -> Option<Datagrams> {
        let networks = Networks::new(a);
        let limit = a.rate_limit.map(RateLimit::new);
        if networks.is_none() && limit.is_none() && plan.is_none() {
            return None;
        }
        Some(Datagrams {
            networks,
            limit,
            rng: plan.as_ref().map(|p| p.rng()),
            pacer: plan.as_ref().and_then(|p| p.pacer()),
            plan,
            limited: Throttle::default(),
        })
    }

    /// Whether the datagram from `source`, received at `now` and passed by the reflection
    /// rules, is to be echoed; when not, it is counted in `counts` and logged (refusals at
    /// most once a second; rate limiting under -v, as often).
    pub fn echoes(
        &mut self,
        source: SocketAddr,
        now: Instant,
        counts: &mut DatagramCounts,
        ui: &Ui,
    ) -> bool {
        let ip = source.ip();
        if let Some(why) = self.networks.as_ref().and_then(|n| n.refuses(ip)) {
            counts.refused.count(why);
            say_refused(SocketAddr::new(ip.to_canonical(), source.port()), why, ui);
            return false;
        }
        if !self.limit.as_mut().is_none_or(|l| l.allows(ip, now)) {
            counts.rate_limited += 1;
            if ui.verbose > 0 {
                let line = format!("dropped a datagram from {source}: over --rate-limit");
                if let Some(line) = self.limited.admit(line) {
                    Event::new(Level::Detail, "rate_limited", line)
                        .peer(source)
                        .reason("over --rate-limit")
                        .say(ui);
                }
            }
            return false;
        }
        if let (Some(plan), Some(rng)) = (&self.plan, self.rng.as_mut()) {
            if plan.drops(rng) {
                counts.injected.dropped += 1;
                return false;
            }
        }
        true
    }

    /// Before a batch of `replies` replies of `bytes` bytes goes: `--delay` (one draw a batch)
    /// and `--bandwidth` (the socket's replies paced).
    pub async fn before_send(&mut self, replies: usize, bytes: usize, counts: &mut DatagramCounts) {
        if replies == 0 {
            return;
        }
        if let (Some(plan), Some(rng)) = (&self.plan, self.rng.as_mut()) {
            if let Some(wait) = plan.delay(rng) {
                counts.injected.delayed += replies as u64;
                tokio::time::sleep(wait).await;
            }
        }
        if let Some(pacer) = self.pacer.as_mut() {
            pacer.take(bytes).await;
            counts.injected.throttled = u64::from(pacer.waited);
        }
    }
}

impl DatagramCounts {
    /// Adds another socket's counts.
    pub fn add(&mut self, other: &DatagramCounts) {
        self.refused.add(&other.refused);
        self.rate_limited += other.rate_limited;
        self.injected.add(&other.injected);
    }

    /// `; refused 3 (...); 90 over --rate-limit; injected: ...`, or empty.
    pub fn describe(&self) -> String {
        let mut line = String::new();
        if let Some(refused) = self.refused.describe() {
            line.push_str(&format!("; {refused}"));
        }
        if self.rate_limited > 0 {
            line.push_str(&format!("; {} over --rate-limit", self.rate_limited));
        }
        if let Some(injected) = self.injected.describe() {
            line.push_str(&format!("; {injected}"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::faults::parse_cidr;

    fn admission(allow: &[&str], deny: &[&str], max: Option<usize>) -> Admission {
        Admission {
            allow: allow.iter().map(|c| parse_cidr(c).unwrap()).collect(),
            deny: deny.iter().map(|c| parse_cidr(c).unwrap()).collect(),
            max_per_ip: max.and_then(std::num::NonZeroUsize::new),
            rate_limit: None,
        }
    }

    #[test]
    fn deny_wins_over_allow() {
        let gate = Gate::new(&admission(&["10.0.0.0/8"], &["10.0.0.5"], None)).unwrap();
        let ip = |s: &str| Some(s.parse().unwrap());
        assert!(gate.admit(ip("10.1.1.1")).is_ok());
        assert_eq!(gate.admit(ip("10.0.0.5")).unwrap_err(), Refusal::Denied);
        assert_eq!(gate.admit(ip("11.0.0.1")).unwrap_err(), Refusal::NotAllowed);
        assert_eq!(
            gate.admit(ip("::ffff:10.0.0.5")).unwrap_err(),
            Refusal::Denied
        );
        assert_eq!(
            gate.admit(None).unwrap_err(),
            Refusal::NotAllowed,
            "a Unix client with no address named is in no allowed network"
        );
        let deny_only = Gate::new(&admission(&[], &["10.0.0.5"], None)).unwrap();
        assert!(deny_only.admit(None).is_ok());
    }

    #[test]
    fn max_per_ip_gives_places_back() {
        let gate = Gate::new(&admission(&[], &[], Some(2))).unwrap();
        let ip = Some("127.0.0.1".parse().unwrap());
        let (a, _b) = (gate.admit(ip).unwrap(), gate.admit(ip).unwrap());
        assert_eq!(gate.admit(ip).unwrap_err(), Refusal::TooMany);
        assert!(gate.admit(Some("127.0.0.2".parse().unwrap())).is_ok());
        drop(a);
        assert!(gate.admit(ip).is_ok());
    }

    #[test]
    fn rate_limit_lets_a_second_through_then_the_rate() {
        let mut limit = RateLimit::new(10.0);
        let ip = "127.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        let passed = (0..100).filter(|_| limit.allows(ip, t0)).count();
        assert_eq!(passed, 10);
        assert!(limit.allows(ip, t0 + std::time::Duration::from_millis(100)));
        assert!(!limit.allows(ip, t0 + std::time::Duration::from_millis(100)));
    }

    #[test]
    fn max_per_ip_table_holds_only_open_clients() {
        // Many clients from many addresses come and go at once, refused or not: when all are
        // gone, the table is empty.
        let gate = Gate::new(&admission(&[], &[], Some(3))).unwrap();
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let gate = &gate;
                s.spawn(move || {
                    let mut held = Vec::new();
                    for i in 0..2_500u32 {
                        let ip = IpAddr::from([127, t, (i % 7) as u8, 1]);
                        held.extend(gate.admit(Some(ip)).ok());
                        if held.len() > 5 {
                            held.drain(..3);
                        }
                    }
                });
            }
        });
        assert!(gate.open.lock().unwrap().is_empty());
    }

    #[test]
    fn a_flood_of_new_sources_does_not_sweep_the_full_table_each_time() {
        let mut limit = RateLimit::new(1.0);
        let t0 = Instant::now();
        for i in 0..MAX_SOURCES as u32 {
            assert!(limit.allows(IpAddr::from(i.to_be_bytes()), t0));
        }
        // Each sweep of 4096 buckets for each of these took seconds in all (debug build).
        let start = std::time::Instant::now();
        let new = (0..100_000u32).filter(|i| {
            let ip = IpAddr::from((i | 0x8000_0000).to_be_bytes());
            limit.allows(ip, t0 + Duration::from_millis(u64::from(i / 1000)))
        });
        assert_eq!(new.count(), 0, "nobody quiet yet: new sources wait");
        let took = start.elapsed();
        assert!(took < Duration::from_millis(500), "{took:?}");
        assert!(limit.allows("200.0.0.1".parse().unwrap(), t0 + Duration::from_secs(2)));
    }

    #[test]
    fn a_full_rate_table_forgets_quiet_sources() {
        let mut limit = RateLimit::new(1.0);
        let t0 = Instant::now();
        for i in 0..MAX_SOURCES as u32 {
            assert!(limit.allows(IpAddr::from(i.to_be_bytes()), t0));
        }
        let new = "200.0.0.1".parse().unwrap();
        assert!(
            !limit.allows(new, t0),
            "nobody quiet yet: a new source waits"
        );
        assert!(limit.allows(new, t0 + std::time::Duration::from_secs(2)));
    }
}
