//! `echo-server` over UDP (RFC 862): every datagram goes back to its sender, unchanged, from
//! the address it was sent to, unless a rule in [`Dropped`] says it must not be echoed.
//!
//! One task on a current-thread runtime: UDP has no connections to spread over workers, and
//! the work per datagram is two copies in the kernel. Each wake-up moves up to
//! [`udp::BATCH`] datagrams with one recvmmsg and one sendmmsg (`try_io` around them, so
//! tokio's readiness stays right), which is where a UDP echo server's time goes.
//! On SIGINT/SIGTERM/SIGHUP it stops at once — there is nothing in flight to drain — and
//! prints what it did.

use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use color_eyre::eyre::{self, WrapErr};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::admit::{DatagramCounts, Datagrams};
use super::fault::Plan;
use crate::cli::EchoServerArgs;
use crate::cli::endpoints::Listen;
use crate::net::activation;
use crate::net::endpoint::Endpoint;
use crate::net::listen::Listener;
use crate::net::udp::{self, Batch, Broadcasts, Dropped, LoopGuard, Seen};
use crate::report::io_reason;
use crate::runtime::{self, Flavor};
use crate::ui::hexdump::{self, Direction};
use crate::ui::{self, Level, Ui, quote};

use super::log::Event;
use super::metrics;
use super::stats::{UdpCounts, UdpStats};

/// What a UDP server did over its life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Datagrams echoed.
    pub datagrams: u64,
    /// Bytes echoed.
    pub bytes: u64,
    /// Datagrams dropped, by [`Dropped::index`].
    pub dropped: [u64; Dropped::ALL.len()],
    /// Replies the kernel would not send, and the last reason.
    pub unsent: u64,
    /// Why the last reply could not be sent.
    pub unsent_reason: Option<String>,
    /// From the start of [`serve`] until it returned.
    pub uptime: Duration,
    /// What `--allow`, `--deny`, `--rate-limit` and the faults did.
    pub rules: DatagramCounts,
}

/// Runs `echo-server` over UDP: on the UDP sockets systemd handed over (`handed`), or else on
/// ADDR; prints each `udp:IP:PORT` on stdout, serves until a stop signal, returns what was
/// served.
pub(super) fn run(
    handed: Option<Vec<activation::InheritedSocket>>,
    args: &EchoServerArgs,
    ui: &Ui,
) -> eyre::Result<Summary> {
    if args.mode.is_some() {
        ui.warn("--mode applies to a socket file (unix:PATH); ignored for UDP");
    }
    if args.proxy_protocol.is_some() {
        // Only where systemd handed over UDP sockets: for udp:ADDR it is a usage error.
        ui.warn("--proxy-protocol applies to stream connections; ignored for UDP");
    }
    let notifier = super::start::notifier(ui);
    runtime::block_on(Flavor::CurrentThread, async {
        // Signals first, so a SIGTERM sent right after the address line is not lost.
        let (signal, _again) = runtime::shutdown_signals()?;
        let sockets = match handed {
            Some(sockets) => handed_over(sockets, args, ui)?,
            None => vec![bind(&args.listen)?],
        };
        // Bound before the address line too: a script that read it may scrape at once.
        let watch = metrics::Watch::new(args.observe.metrics.as_ref(), ui)?;
        for bound in &sockets {
            let shown = Endpoint::Udp(bound.local).to_string();
            super::start::announce(&shown, ui)?;
            Event::new(Level::Info, "listening", format!("listening on {shown}"))
                .field("address", shown)
                .say(ui);
        }
        let figures = Arc::new(UdpStats::default());
        let read = Arc::clone(&figures);
        let _watching = watch.start(Arc::new(move || read.families()), ui);
        super::start::ready(&notifier, ui);
        let stop = CancellationToken::new();
        let mut serving = tokio::task::JoinSet::new();
        // A datagram from any of them is another of our sockets answering: an echo loop.
        let own_ports: Arc<[u16]> = sockets.iter().map(|b| b.local.port()).collect();
        let plan = Plan::new(&args.faults).map(Arc::new);
        if let Some(plan) = &plan {
            plan.announce(ui);
        }
        for bound in sockets {
            let extra = Datagrams::new(&args.admission, plan.clone());
            let shown = Endpoint::Udp(bound.local).to_string();
            let (ui, stopped) = (ui.clone(), stop.clone().cancelled_owned());
            let (own_ports, figures) = (Arc::clone(&own_ports), Arc::clone(&figures));
            let hex_dump = args.hex_dump;
            serving.spawn(async move {
                let served = serve(bound, &own_ports, extra, &ui, &figures, hex_dump, stopped);
                let served = served.await;
                served.wrap_err_with(|| format!("cannot serve {shown}"))
            });
        }
        signal.await;
        super::start::stopping(&notifier, ui);
        stop.cancel();
        let mut total = Summary::default();
        while let Some(done) = serving.join_next().await {
            total.add(&done.wrap_err("a serving task failed")??);
        }
        super::admit::say_held_back(ui);
        Ok(total)
    })?
}

/// Binds ADDR, which the command line made a UDP endpoint.
fn bind(listen: &Listen) -> eyre::Result<udp::Bound> {
    let endpoint = &listen.endpoint;
    let Endpoint::Udp(addr) = *endpoint else {
        eyre::bail!("{endpoint} is not a UDP address");
    };
    udp::bind(addr, listen.stack).wrap_err_with(|| format!("cannot listen on {endpoint}"))
}

/// The UDP sockets systemd handed over, set up as ours would be. Streams among them are an
/// error: one process serves one kind.
fn handed_over(
    sockets: Vec<activation::InheritedSocket>,
    args: &EchoServerArgs,
    ui: &Ui,
) -> eyre::Result<Vec<udp::Bound>> {
    if args.listen.typed {
        ui.warn(&format!(
            "serving the {} socket(s) systemd handed over; ADDR {} is ignored",
            sockets.len(),
            quote::address(&args.listen.endpoint.to_string())
        ));
    }
    sockets
        .into_iter()
        .map(|handed| {
            let fd = handed.fd;
            let Listener::Udp(socket) = handed.listener else {
                eyre::bail!(
                    "socket activation: fd {fd} is a stream socket among UDP ones; \
                     echo-server serves either stream sockets or UDP sockets"
                );
            };
            let named = handed.name.map(|n| format!(" ({n})")).unwrap_or_default();
            let bound = udp::adopt(socket)
                .wrap_err_with(|| format!("socket activation: fd {fd}{named}"))?;
            ui.detail(&format!("fd {fd}{named}: {}", Endpoint::Udp(bound.local)));
            Ok(bound)
        })
        .collect()
}

/// Pause after a receive error other than "nothing there", so a persistent one (ENOMEM)
/// cannot spin.
const ERROR_PAUSE: Duration = Duration::from_millis(5);

/// Echoes datagrams on `bound` until `shutdown` resolves; `own_ports`: the ports of all the
/// server's sockets; `extra`: admission and faults, if any; `figures`: the server's, which
/// each batch adds to; `hex_dump` (`-x`): dump each datagram received, and its echo. Fails
/// only if the runtime cannot take the socket; errors of single datagrams are counted and the
/// serving goes on.
pub(super) async fn serve(
    bound: udp::Bound,
    own_ports: &[u16],
    extra: Option<Datagrams>,
    ui: &Ui,
    figures: &UdpStats,
    hex_dump: bool,
    shutdown: impl Future,
) -> io::Result<Summary> {
    let start = Instant::now();
    let socket = UdpSocket::from_std(bound.socket)?;
    let mut batch = Batch::new(bound.pktinfo);
    let mut rules = Rules {
        own_ports,
        broadcasts: Broadcasts::new(),
        loops: LoopGuard::new(),
        seen: Vec::with_capacity(udp::BATCH),
        extra,
        hex_dump,
    };
    let mut summary = Summary::default();
    let mut log = DropLog::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            ready = socket.readable() => ready?,
        }
        let received = socket.try_io(Interest::READABLE, || batch.receive(socket.as_fd()));
        let n = match received {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => {
                log.receive_error(ui, &err);
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        let before = summary.counts();
        sort(&mut batch, n, &mut rules, &mut summary, &mut log, ui);
        if let Some(extra) = rules.extra.as_mut() {
            let bytes = (0..batch.replies()).map(|k| batch.reply_len(k)).sum();
            // A stop ends a --delay or --bandwidth wait too: UDP has nothing to drain.
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                () = extra.before_send(batch.replies(), bytes, &mut summary.rules) => {}
            }
        }
        send(&socket, &mut batch, &mut summary, &mut rules.broadcasts).await?;
        figures.add(&before, &summary.counts());
    }
    summary.uptime = start.elapsed();
    Ok(summary)
}

/// What decides whether a datagram may be echoed, for one socket.
struct Rules<'a> {
    /// The ports of all the server's sockets.
    own_ports: &'a [u16],
    broadcasts: Broadcasts,
    loops: LoopGuard,
    /// Room for a batch's datagrams between [`LoopGuard::see`] and the verdicts.
    seen: Vec<(usize, udp::Datagram, Seen)>,
    /// `--allow`, `--deny`, `--rate-limit` and the faults, when any is given.
    extra: Option<Datagrams>,
    /// `-x`: every datagram received is dumped, and its echo.
    hex_dump: bool,
}

impl Rules<'_> {
    /// Why the datagram `d` (as the loop guard `seen` it, received at `now`) must not be
    /// echoed, if it must not. The loop guard comes last: it remembers what is echoed.
    fn verdict(&mut self, d: &udp::Datagram, seen: Seen, now: Instant) -> Option<Dropped> {
        if d.truncated {
            return Some(Dropped::Truncated);
        }
        Dropped::of(d.source, d.to_group, self.own_ports, &self.broadcasts)
            .or_else(|| self.loops.looped(seen, now).then_some(Dropped::Looped))
    }
}

/// Queues a reply for each of the `n` datagrams received that may be echoed; counts and logs
/// the others.
fn sort(
    batch: &mut Batch,
    n: usize,
    rules: &mut Rules<'_>,
    summary: &mut Summary,
    log: &mut DropLog,
    ui: &Ui,
) {
    // One clock read a batch: the loop guard's gaps are of a second.
    let now = Instant::now();
    // First every datagram's fingerprints (fetching their buckets), then the verdicts.
    let mut seen = std::mem::take(&mut rules.seen);
    seen.clear();
    seen.extend((0..n).filter_map(|i| {
        let d = batch.datagram(i)?;
        Some((i, d, rules.loops.see(d.source, batch.payload(i))))
    }));
    for &(i, d, looked) in &seen {
        let verdict = rules.verdict(&d, looked, now);
        let dumped = rules.hex_dump.then(|| dump_name(&d));
        if let Some(peer) = &dumped {
            hexdump::server_datagram(ui, peer, Direction::Received, batch.payload(i));
        }
        match verdict {
            Some(why) => {
                summary.dropped[why.index()] += 1;
                log.dropped(ui, why, &d);
            }
            None if !echoes(&mut rules.extra, &d, now, summary, ui) => {}
            None => {
                summary.datagrams += 1;
                summary.bytes += d.len as u64;
                batch.reply(i);
                if let Some(peer) = &dumped {
                    hexdump::server_datagram(ui, peer, Direction::Sent, batch.payload(i));
                }
            }
        }
    }
    rules.seen = seen;
}

/// How `-x` names the sender of `d`: as -v does, an IPv4 client of a dual-stack socket
/// without its ::ffff: prefix.
fn dump_name(d: &udp::Datagram) -> String {
    std::net::SocketAddr::new(d.source.ip().to_canonical(), d.source.port()).to_string()
}

/// Sends every queued reply, waiting for room in the socket buffer when it is full. A reply
/// the kernel refuses (a firewall's EPERM, an unreachable network) is counted and skipped;
/// EACCES is what a reply to a broadcast address gets, so the host's broadcast addresses are
/// read again (an interface may have come up since they were).
async fn send(
    socket: &UdpSocket,
    batch: &mut Batch,
    summary: &mut Summary,
    broadcasts: &mut Broadcasts,
) -> io::Result<()> {
    let total = batch.replies();
    let mut done = 0;
    while done < total {
        match socket.try_io(Interest::WRITABLE, || batch.send(socket.as_fd(), done)) {
            Ok(n) => done += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => socket.writable().await?,
            Err(err) => {
                if err.kind() == io::ErrorKind::PermissionDenied {
                    broadcasts.refresh();
                }
                // Counted out of the echoed figures: this one did not go back.
                summary.datagrams -= 1;
                summary.bytes -= batch.reply_len(done) as u64;
                summary.unsent += 1;
                summary.unsent_reason = Some(io_reason(&err));
                done += 1;
            }
        }
    }
    Ok(())
}

/// Whether `extra`'s rules let the datagram `d`, which the reflection rules let through, be
/// echoed (always, without rules).
fn echoes(
    extra: &mut Option<Datagrams>,
    d: &udp::Datagram,
    now: Instant,
    summary: &mut Summary,
    ui: &Ui,
) -> bool {
    extra
        .as_mut()
        .is_none_or(|extra| extra.echoes(d.source, now, &mut summary.rules, ui))
}

impl Summary {
    /// The counters, for [`UdpStats::add`].
    fn counts(&self) -> UdpCounts {
        UdpCounts {
            datagrams: self.datagrams,
            bytes: self.bytes,
            dropped: self.dropped,
            unsent: self.unsent,
            rules: self.rules,
        }
    }

    /// Adds what another socket's server did (socket activation may hand over several).
    fn add(&mut self, other: &Summary) {
        self.datagrams += other.datagrams;
        self.bytes += other.bytes;
        for (mine, theirs) in self.dropped.iter_mut().zip(other.dropped) {
            *mine += theirs;
        }
        self.unsent += other.unsent;
        if other.unsent_reason.is_some() {
            self.unsent_reason.clone_from(&other.unsent_reason);
        }
        self.uptime = self.uptime.max(other.uptime);
        self.rules.add(&other.rules);
    }
}

/// At most one log line a second per drop reason (under `-v`), and one per receive error,
/// each saying how many were not shown since the last.
#[derive(Debug, Default)]
struct DropLog {
    last: [Option<Instant>; Dropped::ALL.len() + 1],
    held: [u64; Dropped::ALL.len() + 1],
}

impl DropLog {
    fn dropped(&mut self, ui: &Ui, why: Dropped, d: &udp::Datagram) {
        if ui.verbose == 0 {
            return;
        }
        if let Some(more) = self.admit(why.index()) {
            let to = match d.destination {
                Some(ip) if why == Dropped::BroadcastDestination => format!(" to {ip}"),
                _ => String::new(),
            };
            let line = format!(
                "dropped a datagram from {}{to}: {}{more}",
                d.source,
                why.reason()
            );
            Event::new(Level::Detail, "dropped", line)
                .peer(d.source)
                .reason(why.reason())
                .say(ui);
        }
    }

    fn receive_error(&mut self, ui: &Ui, err: &io::Error) {
        if let Some(more) = self.admit(Dropped::ALL.len()) {
            let reason = io_reason(err);
            Event::new(
                Level::Warn,
                "receive_failed",
                format!("cannot receive: {reason}{more}"),
            )
            .reason(reason)
            .say(ui);
        }
    }

    /// `Some(note on the ones held back)` when a line may be printed now.
    fn admit(&mut self, slot: usize) -> Option<String> {
        let now = Instant::now();
        let recent = self.last[slot].is_some_and(|t| now - t < Duration::from_secs(1));
        if recent {
            self.held[slot] += 1;
            return None;
        }
        self.last[slot] = Some(now);
        Some(match std::mem::take(&mut self.held[slot]) {
            0 => String::new(),
            n => format!(" ({n} more like it not shown)"),
        })
    }
}

/// `echoed 12 datagrams (1.50 KiB) in 2s; dropped 3: 2 source port below 1024, 1 ...`.
pub fn summary_line(s: &Summary) -> String {
    let mut line = format!(
        "echoed {} ({}) in {}",
        plural(s.datagrams, "datagram"),
        ui::bytes(s.bytes),
        ui::duration(s.uptime)
    );
    let dropped: u64 = s.dropped.iter().sum();
    if dropped > 0 {
        let parts: Vec<String> = Dropped::ALL
            .iter()
            .filter(|why| s.dropped[why.index()] > 0)
            .map(|why| format!("{} {}", s.dropped[why.index()], why.reason()))
            .collect();
        line.push_str(&format!("; dropped {dropped}: {}", parts.join(", ")));
    }
    line.push_str(&s.rules.describe());
    if s.unsent > 0 {
        line.push_str(&format!(
            "; {} could not be sent ({})",
            plural(s.unsent, "reply"),
            s.unsent_reason.as_deref().unwrap_or("unknown reason")
        ));
    }
    line
}

fn plural(n: u64, word: &str) -> String {
    match (n, word) {
        (1, _) => format!("1 {word}"),
        (_, "reply") => format!("{n} replies"),
        _ => format!("{n} {word}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_wording() {
        let mut s = Summary {
            datagrams: 12,
            bytes: 1536,
            uptime: Duration::from_secs(2),
            ..Summary::default()
        };
        assert_eq!(summary_line(&s), "echoed 12 datagrams (1.50 KiB) in 2s");
        s.dropped[Dropped::LowPort.index()] = 2;
        s.dropped[Dropped::OwnPort.index()] = 1;
        s.unsent = 1;
        s.unsent_reason = Some("Operation not permitted".into());
        assert_eq!(
            summary_line(&s),
            "echoed 12 datagrams (1.50 KiB) in 2s; dropped 3: 2 source port below 1024, 1 \
             source port is the server's own (an echo loop); 1 reply could not be sent \
             (Operation not permitted)"
        );
    }

    #[test]
    fn drop_log_holds_back_and_counts() {
        let mut log = DropLog::default();
        assert_eq!(log.admit(0).as_deref(), Some(""));
        assert_eq!(log.admit(0), None);
        assert_eq!(log.admit(1).as_deref(), Some(""), "each reason on its own");
        assert_eq!(log.admit(0), None);
        assert_eq!(log.held[0], 2);
    }
}
