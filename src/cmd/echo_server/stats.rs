//! The server's counters, shared by the accept loop, the connections and the status line.
//!
//! Echoed bytes are the busy one, counted on every write. Without a status line, a
//! connection adds its bytes to the shared total in batches, so a ping-pong message does not
//! touch a cache line every worker thread writes to. With a status line, batches would leave
//! an interactive connection at `0 B echoed` until it closes; so then each open connection
//! keeps its count in a cache line of its own, which the status line adds up when it draws:
//! current counts, still nothing written that workers share.
//!
//! [`Stats::families`] and [`UdpStats::families`] list every figure once, named and
//! explained, for the metrics page and the SIGUSR1 line alike: a new counter is one more line
//! there. Errors are counted where they happen, which is never on the echo's hot path.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::admit::{DatagramCounts, Refusal};
use crate::net::udp::Dropped;

/// Echoed bytes go to the shared total in batches of this much (and at the end) when no
/// status line reads the per-connection counts.
const PUBLISH_EVERY: u64 = 64 * 1024;

/// Counters shared by the accept loop, the connections and the status line.
#[derive(Debug, Default)]
pub struct Stats {
    /// Set just before the shutdown deadline's cancellation, for `UntilCancelled`.
    pub closing: AtomicBool,
    /// Accepted and not yet closed, counted from the accept (not from the task's first poll),
    /// so the count at shutdown includes connections still waiting for their first turn.
    pub active: AtomicU64,
    /// Connections accepted.
    pub served: AtomicU64,
    /// Connections the server closed at the shutdown deadline or second signal.
    pub cut: AtomicU64,
    /// Accept errors and connections that ended on an error, by [`ErrorKind`].
    errors: [AtomicU64; ErrorKind::ALL.len()],
    /// TLS handshakes that failed, by [`HandshakeFailure`].
    handshakes_failed: [AtomicU64; HandshakeFailure::ALL.len()],
    /// Faults injected (`--delay`, `--reset-probability`, ...).
    pub injected: super::fault::Injected,
    /// Clients refused (`--allow`, `--deny`, `--max-per-ip`).
    pub refused: super::admit::Refused,
    /// Echoed bytes: all of them once every connection has closed; while the status line is
    /// drawn, those of closed connections only.
    bytes: AtomicU64,
    /// While a status line is drawn: the open connections' own counters.
    open: Option<Mutex<Vec<Weak<Counter>>>>,
}

/// A consistent-enough copy of [`Stats`] for display.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// Open connections.
    pub active: u64,
    /// Connections accepted.
    pub served: u64,
    /// Bytes echoed so far.
    pub bytes: u64,
}

impl Stats {
    /// Counters for a server; `live` when a status line will read them while connections
    /// are open.
    pub fn new(live: bool) -> Self {
        Stats {
            open: live.then(Mutex::default),
            ..Stats::default()
        }
    }

    /// The counts now, including the bytes of open connections when a status line is drawn.
    pub fn snapshot(&self) -> Snapshot {
        let bytes = match &self.open {
            // Under the lock, so a connection closing meanwhile is counted once: either in
            // its own counter or in `bytes` (see `Count::drop`).
            Some(open) => {
                let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
                let mut bytes = self.bytes.load(Ordering::Relaxed);
                open.retain(|counter| match counter.upgrade() {
                    Some(counter) => {
                        bytes += counter.0.load(Ordering::Relaxed);
                        true
                    }
                    None => false,
                });
                bytes
            }
            None => self.bytes.load(Ordering::Relaxed),
        };
        Snapshot {
            active: self.active.load(Ordering::Relaxed),
            served: self.served.load(Ordering::Relaxed),
            bytes,
        }
    }
}

impl Stats {
    /// Counts an accept error or a connection that ended on one.
    pub fn error(&self, kind: ErrorKind) {
        self.errors[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed TLS handshake.
    pub fn handshake_failed(&self, why: HandshakeFailure) {
        self.handshakes_failed[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Every figure of a stream server, as the metrics page and the SIGUSR1 line show them.
    pub fn families(&self) -> Vec<Family> {
        let snap = self.snapshot();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            Family::gauge("connections_open", "Connections open now.", snap.active),
            Family::counter("connections_total", "Connections accepted.", snap.served),
            Family::counter(
                "echoed_bytes_total",
                "Bytes echoed: each was received and sent back once, so this is both directions' count (a connection closed on an error may have read up to one buffer more).",
                snap.bytes,
            ),
            Family::counter(
                "connections_cut_total",
                "Connections reset at the shutdown deadline or a second stop signal.",
                load(&self.cut),
            ),
            Family::labeled(
                "errors_total",
                "Accept errors (kind=\"accept\") and connections that ended on an error, by kind.",
                "kind",
                ErrorKind::ALL.map(|k| (k.label(), load(&self.errors[k as usize]))),
            ),
            Family::labeled(
                "tls_handshake_failures_total",
                "TLS handshakes that failed, by reason.",
                "reason",
                HandshakeFailure::ALL
                    .map(|r| (r.label(), load(&self.handshakes_failed[r as usize]))),
            ),
            injected_family(&self.injected.tally()),
            refused_family(self.refused.tally().by_reason(), None),
        ]
    }
}

/// `faults_injected_total{kind}`: what `--delay`, `--bandwidth`, `--close-after`,
/// `--reset-probability` and `--drop-probability` did.
fn injected_family(t: &super::fault::Tally) -> Family {
    Family::labeled(
        "faults_injected_total",
        "Faults injected, by kind: echoes (UDP: datagrams) delayed, connections (UDP: sockets) --bandwidth made wait, connections closed by --close-after or reset, datagrams dropped.",
        "kind",
        [
            ("delay", t.delayed),
            ("bandwidth", t.throttled),
            ("close_after", t.closed_early),
            ("reset", t.reset),
            ("drop", t.dropped),
        ],
    )
}

/// `refused_total{reason}`: clients (UDP: datagrams) kept out, and for UDP those over
/// `--rate-limit`.
fn refused_family(by_reason: [(Refusal, u64); 3], rate_limited: Option<u64>) -> Family {
    let mut family = Family::labeled(
        "refused_total",
        "Connections (UDP: datagrams) refused, by reason: in a --deny network, outside every --allow network, over --max-per-ip (UDP: over --rate-limit).",
        "reason",
        by_reason.map(|(why, n)| (why.label(), n)),
    );
    if let Some(n) = rate_limited {
        // A UDP server has no --max-per-ip: its third reason is --rate-limit.
        family.samples.retain(|s| s.0 != Refusal::TooMany.label());
        family.samples.push(("rate_limited", n));
    }
    family
}

/// Why an accept or a connection failed, as the `kind` label of `errors_total` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `accept()` failed (EMFILE, ENOBUFS...).
    Accept,
    /// The client reset the connection.
    Reset,
    /// The client went away while the server wrote.
    BrokenPipe,
    /// The kernel gave up on the peer (keepalive, retransmissions).
    TimedOut,
    /// The stream ended where it must not (TLS without close_notify).
    UnexpectedEof,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Every kind, in the order the metrics list them.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Accept,
        ErrorKind::Reset,
        ErrorKind::BrokenPipe,
        ErrorKind::TimedOut,
        ErrorKind::UnexpectedEof,
        ErrorKind::Other,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Accept => "accept",
            ErrorKind::Reset => "reset",
            ErrorKind::BrokenPipe => "broken_pipe",
            ErrorKind::TimedOut => "timed_out",
            ErrorKind::UnexpectedEof => "unexpected_eof",
            ErrorKind::Other => "other",
        }
    }

    /// The kind of a connection's I/O error.
    pub fn of(err: &io::Error) -> ErrorKind {
        match err.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => ErrorKind::Reset,
            io::ErrorKind::BrokenPipe => ErrorKind::BrokenPipe,
            io::ErrorKind::TimedOut => ErrorKind::TimedOut,
            io::ErrorKind::UnexpectedEof => ErrorKind::UnexpectedEof,
            _ => ErrorKind::Other,
        }
    }
}

/// Why a TLS handshake failed, as the `reason` label of `tls_handshake_failures_total` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// Not done within the handshake deadline.
    Timeout,
    /// The client closed or reset the connection during the handshake.
    Closed,
    /// The client's certificate was refused, or none was given when one must be.
    Certificate,
    /// The client sent an alert (often: it does not trust our certificate).
    Alert,
    /// No protocol version or cipher suite in common.
    Incompatible,
    /// Not TLS, or TLS out of order.
    Protocol,
    /// Closed by the server to make room for other handshakes, or at a stop.
    Shed,
    /// Anything else.
    Other,
}

impl HandshakeFailure {
    /// Every reason, in the order the metrics list them.
    pub const ALL: [HandshakeFailure; 8] = [
        HandshakeFailure::Timeout,
        HandshakeFailure::Closed,
        HandshakeFailure::Certificate,
        HandshakeFailure::Alert,
        HandshakeFailure::Incompatible,
        HandshakeFailure::Protocol,
        HandshakeFailure::Shed,
        HandshakeFailure::Other,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::Closed => "closed",
            HandshakeFailure::Certificate => "certificate",
            HandshakeFailure::Alert => "alert",
            HandshakeFailure::Incompatible => "incompatible",
            HandshakeFailure::Protocol => "protocol",
            HandshakeFailure::Shed => "shed",
            HandshakeFailure::Other => "other",
        }
    }
}

/// A UDP server's counters, shared by its sockets' tasks (each adds a batch's figures at
/// once) and read by the metrics page and the SIGUSR1 line.
#[derive(Debug, Default)]
pub struct UdpStats {
    datagrams: AtomicU64,
    bytes: AtomicU64,
    dropped: [AtomicU64; Dropped::ALL.len()],
    unsent: AtomicU64,
    /// What `--allow`/`--deny`, `--rate-limit` and the faults did, as [`rule_figures`] lists.
    rules: [AtomicU64; RULE_FIGURES],
}

/// What one batch added to a UDP socket's figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct UdpCounts {
    /// Datagrams echoed.
    pub datagrams: u64,
    /// Bytes echoed.
    pub bytes: u64,
    /// Datagrams dropped, by [`Dropped::index`].
    pub dropped: [u64; Dropped::ALL.len()],
    /// Replies the kernel would not send.
    pub unsent: u64,
    /// What `--allow`/`--deny`, `--rate-limit` and the faults did.
    pub rules: DatagramCounts,
}

impl UdpStats {
    /// Adds what changed between `before` and `now` (one batch): a few uncontended atomic
    /// adds a batch, skipped when nothing changed.
    pub fn add(&self, before: &UdpCounts, now: &UdpCounts) {
        let add = |a: &AtomicU64, was: u64, is: u64| {
            if is != was {
                a.fetch_add(is.saturating_sub(was), Ordering::Relaxed);
            }
        };
        add(&self.datagrams, before.datagrams, now.datagrams);
        add(&self.bytes, before.bytes, now.bytes);
        add(&self.unsent, before.unsent, now.unsent);
        for (i, a) in self.dropped.iter().enumerate() {
            add(a, before.dropped[i], now.dropped[i]);
        }
        // Without rules these never change: one comparison a batch.
        if now.rules != before.rules {
            let (was, is) = (rule_figures(&before.rules), rule_figures(&now.rules));
            for (i, a) in self.rules.iter().enumerate() {
                add(a, was[i], is[i]);
            }
        }
    }

    /// Every figure of a UDP server, as the metrics page and the SIGUSR1 line show them.
    pub fn families(&self) -> Vec<Family> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let [
            delayed,
            throttled,
            closed_early,
            reset,
            dropped,
            denied,
            not_allowed,
            limited,
        ] = self.rules.each_ref().map(load);
        let injected = super::fault::Tally {
            delayed,
            throttled,
            closed_early,
            reset,
            dropped,
        };
        let refused = [
            (Refusal::Denied, denied),
            (Refusal::NotAllowed, not_allowed),
            (Refusal::TooMany, 0),
        ];
        vec![
            Family::counter(
                "datagrams_echoed_total",
                "Datagrams echoed.",
                load(&self.datagrams),
            ),
            Family::counter(
                "echoed_bytes_total",
                "Bytes echoed (received and sent back).",
                load(&self.bytes),
            ),
            Family::labeled(
                "datagrams_dropped_total",
                "Datagrams not echoed, by reason.",
                "reason",
                Dropped::ALL.map(|d| (drop_label(d), load(&self.dropped[d.index()]))),
            ),
            Family::counter(
                "replies_unsent_total",
                "Replies the kernel would not send (a firewall, an unreachable network).",
                load(&self.unsent),
            ),
            injected_family(&injected),
            refused_family(refused, Some(limited)),
        ]
    }
}

/// How many figures [`rule_figures`] lists.
const RULE_FIGURES: usize = 8;

/// A UDP socket's rule counts as [`UdpStats`] keeps them: the five faults (as
/// [`super::fault::Tally`] lists them), then datagrams denied, not allowed and over
/// `--rate-limit`.
fn rule_figures(c: &DatagramCounts) -> [u64; RULE_FIGURES] {
    let i = &c.injected;
    let [(_, denied), (_, not_allowed), _] = c.refused.by_reason();
    [
        i.delayed,
        i.throttled,
        i.closed_early,
        i.reset,
        i.dropped,
        denied,
        not_allowed,
        c.rate_limited,
    ]
}

fn drop_label(why: Dropped) -> &'static str {
    match why {
        Dropped::LowPort => "low_port",
        Dropped::BroadcastSource => "broadcast_source",
        Dropped::BroadcastDestination => "broadcast_destination",
        Dropped::OwnPort => "own_port",
        Dropped::Looped => "looped",
        Dropped::Truncated => "truncated",
    }
}

/// A metric: its name (after `echo_server_`), what it means, its type and its samples.
#[derive(Debug, Clone)]
pub struct Family {
    /// The name without the `echo_server_` prefix; counters end in `_total`.
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// A gauge (goes up and down) or a counter (only up).
    pub gauge: bool,
    /// The label's name, for a family with one label.
    pub label: Option<&'static str>,
    /// The samples: the label's value (when there is a label) and the figure.
    pub samples: Vec<(&'static str, u64)>,
}

impl Family {
    fn counter(name: &'static str, help: &'static str, value: u64) -> Family {
        Family {
            name,
            help,
            gauge: false,
            label: None,
            samples: vec![("", value)],
        }
    }

    fn gauge(name: &'static str, help: &'static str, value: u64) -> Family {
        Family {
            gauge: true,
            ..Family::counter(name, help, value)
        }
    }

    fn labeled<const N: usize>(
        name: &'static str,
        help: &'static str,
        label: &'static str,
        samples: [(&'static str, u64); N],
    ) -> Family {
        Family {
            name,
            help,
            gauge: false,
            label: Some(label),
            samples: samples.to_vec(),
        }
    }
}

/// One open connection's echoed bytes, alone in its cache line (128 bytes: some CPUs fetch
/// lines in pairs), so connections on different workers never contend for it.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Counter(AtomicU64);

/// Counts a connection's echoed bytes where [`Stats`] says (batches, or the connection's own
/// counter), and settles them into the total when dropped, so a connection cut at shutdown
/// is counted too.
pub struct Count<'a> {
    stats: &'a Stats,
    echoed: u64,
    /// How much of `echoed` is already in `stats.bytes`.
    published: u64,
    /// This connection's counter, when the status line reads them.
    own: Option<Arc<Counter>>,
    /// Where the connection's total goes when it ends.
    out: &'a mut u64,
}

impl<'a> Count<'a> {
    /// Starts counting a new connection's bytes; the total is stored in `out` at the end.
    pub fn new(stats: &'a Stats, out: &'a mut u64) -> Self {
        let own = stats.open.as_ref().map(|open| {
            let counter = Arc::new(Counter::default());
            let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
            // Closed connections leave their counters' memory behind (a `Weak` keeps it) until
            // a snapshot sweeps them, and a metrics page nobody scrapes takes none: swept here
            // too when the list would grow, so it stays within twice the connections open.
            if open.len() == open.capacity() {
                open.retain(|counter| counter.strong_count() > 0);
            }
            open.push(Arc::downgrade(&counter));
            counter
        });
        Count {
            stats,
            echoed: 0,
            published: 0,
            own,
            out,
        }
    }

    /// Counts `n` more bytes echoed.
    pub fn add(&mut self, n: usize) {
        self.echoed += n as u64;
        match &self.own {
            // Only this connection writes it: a plain store, no read-modify-write.
            Some(own) => own.0.store(self.echoed, Ordering::Relaxed),
            None if self.echoed - self.published >= PUBLISH_EVERY => self.publish(),
            None => {}
        }
    }

    fn publish(&mut self) {
        self.stats
            .bytes
            .fetch_add(self.echoed - self.published, Ordering::Relaxed);
        self.published = self.echoed;
    }
}

impl Drop for Count<'_> {
    fn drop(&mut self) {
        match (self.own.take(), &self.stats.open) {
            (Some(own), Some(open)) => {
                // Moved from the connection's counter to the total under the status line's
                // lock, so it never sees the bytes in both or in neither.
                let _open = open.lock().unwrap_or_else(PoisonError::into_inner);
                self.publish();
                drop(own);
            }
            _ => self.publish(),
        }
        *self.out = self.echoed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_is_listed_once_with_its_labels() {
        let stats = Stats::new(false);
        stats.error(ErrorKind::of(&io::ErrorKind::ConnectionReset.into()));
        stats.handshake_failed(HandshakeFailure::Timeout);
        let families = stats.families();
        let find = |name: &str| families.iter().find(|f| f.name == name).unwrap();
        assert!(find("connections_open").gauge);
        assert_eq!(find("errors_total").samples[1], ("reset", 1));
        assert_eq!(
            find("tls_handshake_failures_total").samples[0],
            ("timeout", 1)
        );
        for f in &families {
            assert!(f.gauge || f.name.ends_with("_total"), "{}", f.name);
        }
        let udp = UdpStats::default();
        let now = UdpCounts {
            datagrams: 2,
            bytes: 10,
            ..UdpCounts::default()
        };
        udp.add(&UdpCounts::default(), &now);
        udp.add(&now, &now);
        assert_eq!(udp.families()[0].samples, vec![("", 2)]);
        // A batch's rule counts: the difference is added, labelled as the page says them.
        let mut later = now;
        later.rules.rate_limited = 3;
        later.rules.injected.dropped = 2;
        later.rules.refused.count(Refusal::Denied);
        udp.add(&now, &later);
        udp.add(&later, &later);
        let families = udp.families();
        let find = |name: &str| families.iter().find(|f| f.name == name).unwrap();
        assert!(find("faults_injected_total").samples.contains(&("drop", 2)));
        assert_eq!(
            find("refused_total").samples,
            vec![("denied", 1), ("not_allowed", 0), ("rate_limited", 3)]
        );
    }

    #[test]
    fn open_connections_bytes_show_at_once_with_a_status_line() {
        let stats = Stats::new(true);
        let (mut a_out, mut b_out) = (0, 0);
        let mut a = Count::new(&stats, &mut a_out);
        let mut b = Count::new(&stats, &mut b_out);
        a.add(5);
        b.add(64);
        assert_eq!(stats.snapshot().bytes, 69);
        drop(a);
        assert_eq!(stats.snapshot().bytes, 69);
        b.add(1);
        drop(b);
        assert_eq!(stats.snapshot().bytes, 70);
        assert_eq!((a_out, b_out), (5, 65));
    }

    #[test]
    fn closed_connections_counters_do_not_pile_up_between_snapshots() {
        // A metrics page that is never scraped: no snapshot ever sweeps the list.
        let stats = Stats::new(true);
        let mut out = 0;
        let held = Count::new(&stats, &mut out);
        for _ in 0..10_000 {
            let mut sink = 0;
            Count::new(&stats, &mut sink).add(1);
        }
        let listed = stats.open.as_ref().map(|o| o.lock().unwrap().len());
        assert!(listed.is_some_and(|n| n <= 4), "{listed:?} counters listed");
        drop(held);
        assert_eq!(stats.snapshot().bytes, 10_000);
    }

    #[test]
    fn without_a_status_line_bytes_go_in_batches_and_at_the_end() {
        let stats = Stats::new(false);
        let mut out = 0;
        let mut c = Count::new(&stats, &mut out);
        c.add(5);
        assert_eq!(stats.snapshot().bytes, 0);
        c.add(PUBLISH_EVERY as usize);
        assert_eq!(stats.snapshot().bytes, PUBLISH_EVERY + 5);
        c.add(1);
        drop(c);
        assert_eq!(stats.snapshot().bytes, PUBLISH_EVERY + 6);
        assert_eq!(out, PUBLISH_EVERY + 6);
    }
}
