//! `echo-client` over UDP: each line of standard input (with its newline) is one datagram, a
//! line longer than the largest datagram is cut into largest-size ones, and every reply is
//! written to stdout as it arrives.
//!
//! What nc -u lacks, it knows when it is done: it counts the datagrams it sent and the replies
//! that came back, and after the end of input waits for the outstanding ones at most
//! `--idle-timeout` (1 s by default) after the last reply, then says how many got none.
//!
//! It never overruns the server by itself: at most [`WINDOW`] datagrams are in flight, and no
//! more bytes than its own receive buffer holds, so replies are never dropped here either,
//! even while stdout is slow. A lost datagram would hold its place in the window for ever: when
//! nothing comes back for `--idle-timeout` while some are outstanding, they are written off
//! (counted as lost at the end unless their replies still come) and sending goes on — unless
//! input is waiting and no datagram was answered since the last write-off (or the start): the
//! server is not answering, so the client stops and says how many went unanswered.
//!
//! Each reply is matched, byte for byte, to a datagram still awaited (in any order: UDP may
//! reorder). A reply that matches none (a duplicate, or one the server altered) is still
//! printed, as it came, but it answers nothing: counting replies instead would let a server
//! that duplicates some datagrams and drops others pass for one that echoed them all.
//!
//! The socket is connected, so replies from anyone but the server are dropped by the kernel
//! and an ICMP "port unreachable" comes back as ECONNREFUSED on the next call.
//! Standard input is read on its own thread for the reason the TCP pumps are.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use color_eyre::eyre::{self, WrapErr};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::connect::{Family, Source};
use super::{Bar, Stdio, family, interrupted, source};
use crate::cli::EchoClientArgs;
use crate::exit::Exit;
use crate::net::addr::{HostPort, ip_literal};
use crate::net::endpoint::Endpoint;
use crate::net::udp;
use crate::report::{io_reason, stdout_error};
use crate::runtime;
use crate::sys::fdio;
use crate::ui::hexdump::{self, Direction};
use crate::ui::{self, Ui};

/// Datagrams in flight at most: enough to keep a loopback server busy, few enough that one
/// client's burst fits any server's receive buffer.
pub const WINDOW: usize = 64;

/// The wait for outstanding replies when `--idle-timeout` is not given.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(1);

/// Our receive buffer, asked for: the in-flight bytes are bounded by what it really holds.
const RECV_BUFFER: usize = 4 << 20;

/// How much of standard input one read takes.
const READ_CHUNK: usize = 128 * 1024;

/// Chunks of datagrams read ahead of the socket.
const READ_AHEAD: usize = 4;

/// What the stdin thread hands over: the datagrams of one read, or why reading failed.
type Chunk = io::Result<Vec<Vec<u8>>>;

/// Runs the UDP exchange with `target`, from resolution to the exit status.
pub(super) async fn session(
    target: &HostPort,
    args: &EchoClientArgs,
    ui: &Ui,
    stdio: Stdio,
) -> eyre::Result<Exit> {
    let interactive = stdio.interactive;
    let interrupt = runtime::interrupt_signal()?;
    tokio::pin!(interrupt);
    let named = Endpoint::Udp(target).to_string();
    let server = tokio::select! {
        resolved = resolve(target, source(args).narrow(family(args)), args.connect_timeout) => resolved?,
        () = &mut interrupt => return Ok(interrupted(ui, interactive)),
    };
    refuse_group(server, &named)?;
    let socket =
        open_from(server, source(args)).wrap_err_with(|| format!("cannot send to {named}"))?;
    let budget = receive_budget(&socket);
    let socket = UdpSocket::from_std(socket).wrap_err("cannot start sending")?;
    if interactive {
        ui.info(&format!("sending to {named} — Ctrl-D to finish"));
    } else {
        let resolved = Endpoint::Udp(server).to_string();
        if resolved == named {
            ui.detail(&format!("sending to {named}"));
        } else {
            ui.detail(&format!("sending to {named} ({server})"));
        }
    }
    let input = read_stdin(stdio.stdin, udp::max_datagram(&server), args.crlf)?;
    let idle = args.idle_timeout.unwrap_or(DEFAULT_IDLE);
    let mut exchange = Exchange::new(socket, stdio.stdout, idle, budget);
    exchange.dump = args.hex_dump.then(|| (ui.clone(), named.clone()));
    let bar = Bar::new(args, ui, interactive);
    let ended = tokio::select! {
        ended = exchange.run(input, &bar) => ended,
        () = &mut interrupt => return Ok(interrupted(ui, interactive)),
    };
    ui.detail(&format!(
        "datagrams sent: {}, replies: {} ({} matching none sent), in {}",
        exchange.sent,
        exchange.received,
        exchange.unmatched,
        ui::duration(exchange.started.elapsed())
    ));
    outcome(ended, &exchange, &named)
}

/// The exit status, or the one-line error, for how the exchange with `named` ended.
fn outcome(ended: Result<(), Failed>, exchange: &Exchange, named: &str) -> eyre::Result<Exit> {
    let mut cut_short = None;
    match ended {
        Ok(()) => {}
        Err(Failed::Unanswered { heard }) => cut_short = Some(heard),
        Err(Failed::Stdout(err)) => {
            return Err(stdout_error(err, "cannot write to standard output"));
        }
        Err(Failed::Stdin(err)) => {
            return Err(eyre::Report::new(err).wrap_err("cannot read standard input"));
        }
        Err(Failed::Socket(err)) => {
            return Err(
                eyre::eyre!("{}", io_reason(&err)).wrap_err(format!("cannot send to {named}"))
            );
        }
    }
    let missing = exchange.sent.saturating_sub(exchange.echoed);
    let unmatched = exchange.unmatched;
    let sent = exchange.sent;
    let replies = if unmatched == 1 { "reply" } else { "replies" };
    let counted = match (missing, unmatched) {
        (0, 0) if cut_short.is_none() => return Ok(Exit::Success),
        (_, 0) => format!("{missing} of {sent} datagrams got no reply ({named})"),
        (0, _) => format!(
            "{unmatched} {replies} matched no datagram sent: duplicated or altered ({named})"
        ),
        _ => format!(
            "{missing} of {sent} datagrams got no reply, and {unmatched} {replies} matched \
             none sent ({named})"
        ),
    };
    let idle = ui::duration(exchange.idle);
    let why = match cut_short {
        None => return Err(eyre::eyre!("{counted}")),
        Some(false) => format!("nothing came back for {idle}"),
        Some(true) => format!("no reply matched a datagram sent for {idle}"),
    };
    Err(eyre::eyre!(
        "{counted}: {why}, so the rest of standard input was not sent"
    ))
}

/// The server's address: an IP literal as it is, a name through getaddrinfo (bounded by
/// `--connect-timeout`), the first address of the family allowed.
pub(super) async fn resolve(
    target: &HostPort,
    family: Family,
    limit: Duration,
) -> eyre::Result<SocketAddr> {
    let cannot = || format!("cannot resolve {}", target.host);
    let resolved: Vec<SocketAddr> = match ip_literal(&target.host, target.port) {
        Some(addr) => vec![addr],
        None => tokio::time::timeout(
            limit,
            tokio::net::lookup_host((target.host.as_str(), target.port)),
        )
        .await
        .map_err(|_| eyre::eyre!("timed out after {}", ui::duration(limit)))
        .wrap_err_with(cannot)?
        .map_err(|err| eyre::eyre!("{}", io_reason(&err)))
        .wrap_err_with(cannot)?
        .collect(),
    };
    let literal = ip_literal(&target.host, target.port).is_some();
    match resolved.into_iter().find(|addr| family.admits(*addr)) {
        Some(addr) => Ok(addr),
        None if literal => Err(eyre::eyre!(
            "{} is not an {} address",
            target.host,
            family.flag()
        ))
        .wrap_err(format!("cannot send to {}", Endpoint::Udp(target))),
        None if family == Family::Any => {
            Err(eyre::eyre!("the name has no address")).wrap_err_with(cannot)
        }
        None => Err(eyre::eyre!("the name has no {} address", family.flag())).wrap_err_with(cannot),
    }
}

/// Refuses a multicast or broadcast `server`: every echo server in the group or on the
/// network would answer, each from its own address, which the connected socket drops, so the
/// client would set off a storm and report every datagram lost (and the kernel refuses a
/// broadcast without SO_BROADCAST anyway).
pub(super) fn refuse_group(server: SocketAddr, named: &str) -> eyre::Result<()> {
    let kind = if is_multicast(server.ip()) {
        "multicast"
    } else if udp::Broadcasts::new().contains(server.ip()) {
        "broadcast"
    } else {
        return Ok(());
    };
    Err(eyre::eyre!(
        "{} is a {kind} address; an echo client talks to one server",
        server.ip()
    )
    .wrap_err(format!("cannot send to {named}")))
}

/// A multicast address, an IPv4-mapped one included.
fn is_multicast(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_multicast(),
        std::net::IpAddr::V6(v6) => {
            v6.is_multicast() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_multicast())
        }
    }
}

/// A UDP socket connected to `server`, non-blocking, with a large receive buffer.
pub(super) fn open(server: SocketAddr) -> io::Result<std::net::UdpSocket> {
    open_from(server, Source::default())
}

/// [`open`], bound first to the local address and port `source` asks for (nc -s, -p).
fn open_from(server: SocketAddr, source: Source) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(server),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_nonblocking(true)?;
    udp::grow_receive_buffer(&socket, RECV_BUFFER);
    if let Some(local) = source.for_peer(server) {
        super::connect::bind_source(&socket, local)?;
    }
    socket.connect(&server.into())?;
    Ok(socket.into())
}

/// The bytes of replies (as the kernel charges them) that may be outstanding: half the
/// receive buffer the kernel really gave, so a slow stdout never costs a reply.
fn receive_budget(socket: &std::net::UdpSocket) -> usize {
    // Linux reports the doubled value it charges datagrams against.
    socket2::SockRef::from(socket)
        .recv_buffer_size()
        .map_or(212_992, |size| size / 2)
}

/// What the kernel charges a datagram of `len` bytes against a receive buffer, about: its data
/// rounded up to the allocation size, plus the packet's bookkeeping.
fn charge(len: usize) -> usize {
    (len + 512).next_power_of_two() + 256
}

/// Why the exchange stopped early.
#[derive(Debug)]
enum Failed {
    /// No datagram was answered for `--idle-timeout` while input waited for room in the
    /// window, nor since the last datagrams were written off: the server is not answering
    /// (`heard`: though something came back), and sending the rest would only write it off
    /// `WINDOW` at a time.
    Unanswered {
        heard: bool,
    },
    Stdin(io::Error),
    Stdout(io::Error),
    Socket(io::Error),
}

/// A datagram sent and not yet answered, and what it is charged.
struct InFlight {
    data: Vec<u8>,
    cost: usize,
}

/// The datagrams in flight and the counts.
struct Exchange {
    socket: UdpSocket,
    stdout: std::os::fd::BorrowedFd<'static>,
    idle: Duration,
    budget: usize,
    /// The datagrams in flight, oldest first.
    flight: VecDeque<InFlight>,
    charged: usize,
    /// Datagrams written off after a silence, by keyed hash of their bytes, with how many of
    /// each: a late reply still answers one. A hash, not the bytes, so a lossy run's memory
    /// stays small; the random key keeps a server from forging a match.
    written_off: HashMap<u64, u64>,
    hasher: RandomState,
    sent: u64,
    /// Every datagram that came back.
    received: u64,
    /// `received` and `echoed` when datagrams were last written off.
    at_write_off: (u64, u64),
    /// Replies that answered a datagram sent.
    echoed: u64,
    /// Replies that answered none: duplicates, or altered on the way.
    unmatched: u64,
    /// The last reply that answered a datagram, or the send that started a window from empty.
    last_reply: Instant,
    started: Instant,
    /// `-x`: where each datagram sent and received is dumped, and the server's name there.
    dump: Option<(Ui, String)>,
}

impl Exchange {
    fn new(
        socket: UdpSocket,
        stdout: std::os::fd::BorrowedFd<'static>,
        idle: Duration,
        budget: usize,
    ) -> Exchange {
        Exchange {
            socket,
            stdout,
            idle,
            budget,
            flight: VecDeque::new(),
            charged: 0,
            written_off: HashMap::new(),
            hasher: RandomState::new(),
            sent: 0,
            received: 0,
            at_write_off: (0, 0),
            echoed: 0,
            unmatched: 0,
            last_reply: Instant::now(),
            started: Instant::now(),
            dump: None,
        }
    }

    /// Sends what standard input gives, as the window allows, and prints replies, until input
    /// ended and nothing is outstanding (answered or written off).
    async fn run(&mut self, mut input: mpsc::Receiver<Chunk>, bar: &Bar<'_>) -> Result<(), Failed> {
        let mut pending: VecDeque<Vec<u8>> = VecDeque::new();
        let mut eof = false;
        let mut buf = vec![0u8; udp::MAX_V6 + 1];
        let mut out = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            let blocked = self.send_ready(&mut pending)?;
            if eof && pending.is_empty() && self.flight.is_empty() {
                return Ok(());
            }
            let silence_ends = self.last_reply + self.idle;
            tokio::select! {
                biased;
                // ERROR too: an ICMP "port unreachable" makes the socket neither readable nor
                // writable, only in error (ECONNREFUSED).
                ready = self.socket.ready(Interest::READABLE | Interest::ERROR) => {
                    if ready.map_err(Failed::Socket)?.is_error() {
                        if let Some(err) = self.socket.take_error().map_err(Failed::Socket)? {
                            return Err(Failed::Socket(err));
                        }
                        // Taken by a recv already: clear the readiness, or it would spin.
                        let clear = || Err::<(), _>(io::ErrorKind::WouldBlock.into());
                        let _ = self.socket.try_io(Interest::ERROR, clear);
                    }
                    self.replies(&mut buf, &mut out)?;
                }
                chunk = input.recv(), if pending.is_empty() && !eof => match chunk {
                    Some(datagrams) => pending.extend(datagrams.map_err(Failed::Stdin)?),
                    None => eof = true,
                },
                ready = self.socket.writable(), if blocked => ready.map_err(Failed::Socket)?,
                () = tokio::time::sleep_until(silence_ends), if !self.flight.is_empty() => {
                    // Nothing came back for the whole limit: the rest are lost (or late). With
                    // input waiting and not one datagram answered since the last write-off (or
                    // the start), the server is not answering: stop, rather than write off a
                    // window per limit for hours.
                    let (received, echoed) = self.at_write_off;
                    if !pending.is_empty() && self.echoed == echoed {
                        let heard = self.received != received;
                        return Err(Failed::Unanswered { heard });
                    }
                    bar.1.detail(&format!(
                        "no reply for {}: {} datagram(s) written off (a late reply still counts)",
                        ui::duration(self.idle),
                        self.flight.len()
                    ));
                    self.write_off();
                }
                _ = tick.tick(), if bar.0.is_some() => self.show(bar),
            }
        }
    }

    /// The progress line: datagrams each way, in flight, and the reply rate.
    fn show(&self, bar: &Bar<'_>) {
        if let Some(bar) = &bar.0 {
            let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "sent {} · received {} · {} in flight · {:.0} datagrams/s",
                self.sent,
                self.received,
                self.flight.len(),
                self.received as f64 / elapsed
            ));
            bar.tick();
        }
    }

    /// Sends pending datagrams while the window has room; true when the socket buffer is full.
    fn send_ready(&mut self, pending: &mut VecDeque<Vec<u8>>) -> Result<bool, Failed> {
        while let Some(datagram) = pending.front() {
            let cost = charge(datagram.len());
            let room = self.flight.len() < WINDOW && self.charged + cost <= self.budget;
            if !room && !self.flight.is_empty() {
                return Ok(false);
            }
            match self.socket.try_send(datagram) {
                Ok(_) => {
                    if let Some((ui, server)) = &self.dump {
                        hexdump::datagram(ui, server, Direction::Sent, datagram);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(err) => return Err(Failed::Socket(err)),
            }
            if self.flight.is_empty() {
                self.last_reply = Instant::now();
            }
            if let Some(data) = pending.pop_front() {
                self.flight.push_back(InFlight { data, cost });
            }
            self.charged += cost;
            self.sent += 1;
        }
        Ok(false)
    }

    /// Counts a reply against the datagram it answers: the oldest in flight with its bytes
    /// (usually the first one looked at), else one written off. A reply matching none is
    /// counted as such and frees nothing, so the one still awaited keeps its place.
    fn answer(&mut self, reply: &[u8]) {
        self.received += 1;
        let found = self.flight.iter().position(|d| d.data == reply);
        if let Some(answered) = found.and_then(|i| self.flight.remove(i)) {
            self.charged -= answered.cost;
            self.echoed += 1;
            self.last_reply = Instant::now();
            return;
        }
        let key = self.hasher.hash_one(reply);
        if let Some(left) = self.written_off.get_mut(&key) {
            *left -= 1;
            if *left == 0 {
                self.written_off.remove(&key);
            }
            self.echoed += 1;
            self.last_reply = Instant::now();
            return;
        }
        self.unmatched += 1;
    }

    /// Gives up waiting for the datagrams in flight; a late reply still counts for one.
    fn write_off(&mut self) {
        self.at_write_off = (self.received, self.echoed);
        for lost in self.flight.drain(..) {
            *self
                .written_off
                .entry(self.hasher.hash_one(&lost.data))
                .or_insert(0) += 1;
        }
        self.charged = 0;
    }

    /// Takes every reply waiting (up to a window's worth) and writes them to stdout at once.
    fn replies(&mut self, buf: &mut [u8], out: &mut Vec<u8>) -> Result<(), Failed> {
        out.clear();
        for _ in 0..WINDOW {
            match self.socket.try_recv(buf) {
                Ok(n) => {
                    if let Some((ui, server)) = &self.dump {
                        hexdump::datagram(ui, server, Direction::Received, &buf[..n]);
                    }
                    out.extend_from_slice(&buf[..n]);
                    self.answer(&buf[..n]);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) => return Err(Failed::Socket(err)),
            }
        }
        if !out.is_empty() {
            fdio::write_all(self.stdout, out).map_err(Failed::Stdout)?;
        }
        Ok(())
    }
}

/// Reads standard input on its own thread, cut into datagrams, a chunk per read.
fn read_stdin(
    stdin: std::os::fd::BorrowedFd<'static>,
    max: usize,
    crlf: bool,
) -> eyre::Result<mpsc::Receiver<Chunk>> {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    std::thread::Builder::new()
        .name("udp-stdin".into())
        .spawn(move || {
            let mut lines = Lines::new(max);
            let mut line_ends = super::send::Crlf::default();
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                // Dropping `tx` after the last chunk is the end of input.
                let (chunk, last) = match fdio::read(stdin, &mut buf) {
                    Ok(0) => (Ok(lines.finish()), true),
                    Ok(n) if crlf => (Ok(lines.feed(&line_ends.apply(&buf[..n]))), false),
                    Ok(n) => (Ok(lines.feed(&buf[..n])), false),
                    Err(err) => (Err(err), true),
                };
                let empty = chunk.as_ref().is_ok_and(Vec::is_empty);
                if !empty && tx.blocking_send(chunk).is_err() || last {
                    return;
                }
            }
        })
        .wrap_err("cannot start reading standard input")?;
    Ok(rx)
}

/// Cuts a byte stream into datagrams: each line with its newline, a line longer than `max`
/// into `max`-byte pieces, and what is left at the end as the last one.
struct Lines {
    max: usize,
    partial: Vec<u8>,
}

impl Lines {
    fn new(max: usize) -> Lines {
        Lines {
            max,
            partial: Vec::new(),
        }
    }

    /// The datagrams `data` completes.
    fn feed(&mut self, mut data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let room = self.max - self.partial.len();
            let window = &data[..data.len().min(room)];
            match memchr::memchr(b'\n', window) {
                Some(i) => {
                    self.partial.extend_from_slice(&window[..=i]);
                    out.push(std::mem::take(&mut self.partial));
                    data = &data[i + 1..];
                }
                None => {
                    self.partial.extend_from_slice(window);
                    data = &data[window.len()..];
                    if self.partial.len() == self.max {
                        out.push(std::mem::take(&mut self.partial));
                    }
                }
            }
        }
        out
    }

    /// The last datagram, if input did not end with a newline.
    fn finish(&mut self) -> Vec<Vec<u8>> {
        if self.partial.is_empty() {
            Vec::new()
        } else {
            vec![std::mem::take(&mut self.partial)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_their_newlines_long_ones_cut() {
        let mut lines = Lines::new(4);
        assert_eq!(lines.feed(b"ab\ncd"), vec![b"ab\n".to_vec()]);
        assert_eq!(
            lines.feed(b"efgh\n\n"),
            vec![b"cdef".to_vec(), b"gh\n".to_vec(), b"\n".to_vec()]
        );
        assert_eq!(lines.feed(b"xyz"), Vec::<Vec<u8>>::new());
        assert_eq!(lines.finish(), vec![b"xyz".to_vec()]);
        assert!(lines.finish().is_empty());
        let mut lines = Lines::new(3);
        assert_eq!(lines.feed(b"abc\n"), vec![b"abc".to_vec(), b"\n".to_vec()]);
    }

    #[test]
    fn charges_grow_with_the_datagram() {
        assert!(charge(64) >= 64 + 256);
        assert!(charge(udp::MAX_V4) > udp::MAX_V4);
        assert!(charge(1) < charge(2000));
    }
}
