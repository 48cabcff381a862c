//! UDP rows (`cargo bench --bench echo -- udp`): asyncio-tool's UDP echo server against the
//! textbook tokio UDP server (tokio's `examples/echo-udp.rs`: one task, `recv_from` then
//! `send_to`, a 1 KiB buffer; without its per-datagram `println!`) and
//! `socat UDP-RECVFROM:P,fork PIPE`, then our client piping 100 MiB of lines through our server
//! next to `socat -b 65507 - UDP:...` (65,507: the largest datagram; 65536 fails at once).
//!
//! The load generator: each client its own connected socket on one current-thread runtime
//! (about a core of its own), every datagram stamped with its client and sequence number and
//! checked byte for byte when it comes back (a reply of the wrong length or bytes — a merged or
//! corrupted one — is counted, never accepted). A datagram not back within [`LOSS_AFTER`]
//! is a loss. Rounds alternate the servers with fresh processes; medians are printed, with
//! ratios to the textbook and to a reference server of the batching design with nothing
//! around it (a blocking recvmmsg/sendmmsg loop: the ceiling here). Server CPU is
//! utime+stime (+ reaped children, for socat's forks) from /proc/PID/stat.
//! `ECHO_BENCH_ROUNDS` (default 3) sets the rounds, `ECHO_BENCH_UDP_MIB` (default 100) the
//! client rows' input.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::client::{env_or, which};
use crate::server::median;

const WARM: Duration = Duration::from_millis(300);
const MEASURE: Duration = Duration::from_millis(1000);
/// A datagram not answered within this is lost (socat's fork takes a few ms at worst).
const LOSS_AFTER: Duration = Duration::from_millis(200);
/// socat's rows at 50 clients stop after this many seconds of measuring, hung or not.
const SOCAT_LIMIT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ours,
    Textbook,
    Socat,
    /// The batching design's ceiling: a blocking recvmmsg/sendmmsg loop, 64 per call.
    Reference,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ours => "asyncio-tool",
            Kind::Textbook => "textbook",
            Kind::Socat => "socat",
            Kind::Reference => "recvmmsg reference",
        }
    }
}

/// A UDP server process under test; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(kind: Kind) -> Server {
        let mut cmd;
        let mut known = None;
        match kind {
            Kind::Ours => {
                cmd = Command::new(crate::ours());
                cmd.args(["echo-server", "-q", "udp:127.0.0.1:0"]);
            }
            Kind::Textbook => {
                cmd = Command::new(std::env::current_exe().unwrap());
                cmd.args(["--textbook-udp-server", "127.0.0.1:0"]);
            }
            Kind::Reference => {
                cmd = Command::new(std::env::current_exe().unwrap());
                cmd.args(["--reference-udp-server", "127.0.0.1:0"]);
            }
            Kind::Socat => {
                let port = StdUdpSocket::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                cmd = Command::new("socat");
                cmd.args([&format!("UDP-RECVFROM:{port},bind=127.0.0.1,fork"), "PIPE"]);
                known = Some(SocketAddr::from(([127, 0, 0, 1], port)));
            }
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", kind.name()));
        let addr = match known {
            Some(addr) => {
                wait_bound(addr.port());
                addr
            }
            None => {
                let mut line = String::new();
                BufReader::new(child.stdout.take().unwrap())
                    .read_line(&mut line)
                    .unwrap();
                let line = line.trim();
                line.strip_prefix("udp:")
                    .unwrap_or(line)
                    .parse()
                    .unwrap_or_else(|_| panic!("{} printed {line:?}, not an address", kind.name()))
            }
        };
        Server { child, addr }
    }

    /// utime+stime of the server and its reaped children, in µs (from clock ticks).
    fn cpu_us(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let rest = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
        // Fields 14-17 (utime, stime, cutime, cstime) are the 12th-15th after the name.
        let ticks: u64 = rest
            .split_whitespace()
            .skip(11)
            .take(4)
            .filter_map(|f| f.parse::<u64>().ok())
            .sum();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        ticks as f64 * 1e6 / hz
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (bounded) until something is bound to UDP `port` on loopback.
fn wait_bound(port: u16) {
    let hex = format!("0100007F:{port:04X} ");
    let start = Instant::now();
    while !std::fs::read_to_string("/proc/net/udp").is_ok_and(|t| t.contains(&hex)) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "socat did not bind"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One load shape.
#[derive(Clone, Copy)]
struct Shape {
    label: &'static str,
    clients: usize,
    size: usize,
    in_flight: usize,
}

const SHAPES: [Shape; 4] = [
    Shape {
        label: "64 B x 1 ping-pong",
        clients: 1,
        size: 64,
        in_flight: 1,
    },
    Shape {
        label: "64 B x 50 ping-pong",
        clients: 50,
        size: 64,
        in_flight: 1,
    },
    Shape {
        label: "1 KiB x 50 ping-pong",
        clients: 50,
        size: 1024,
        in_flight: 1,
    },
    Shape {
        label: "64 B flood x 50 (8 in flight)",
        clients: 50,
        size: 64,
        in_flight: 8,
    },
];

/// One measurement.
#[derive(Clone, Copy, Default)]
struct Result {
    per_s: f64,
    loss_pct: f64,
    p99_us: f64,
    cpu_us_per: f64,
    bad: u64,
}

/// Counters the client tasks share while measuring.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    ok: AtomicU64,
    lost: AtomicU64,
    bad: AtomicU64,
}

/// Client `c`'s datagrams: `size` pseudo-random bytes of its own, the first 16 replaced by
/// its number and the datagram's sequence number. Made once, so checking a reply byte for
/// byte is one comparison, and the load generator keeps its core for sending.
fn pattern(c: u64, size: usize) -> Vec<u8> {
    let mut x = c.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out: Vec<u8> = (0..size.max(16))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    out[..8].copy_from_slice(&c.to_le_bytes());
    out
}

/// The sequence number of a reply that is exactly one of client `c`'s datagrams (`base`
/// being its pattern), or `None` for anything else: cut, merged or changed.
fn stamped(reply: &[u8], base: &[u8]) -> Option<u64> {
    let intact = reply.len() == base.len() && reply[..8] == base[..8] && reply[16..] == base[16..];
    intact.then(|| u64::from_le_bytes(reply[8..16].try_into().unwrap()))
}

/// Runs `shape` against `server` for WARM + MEASURE (bounded for socat).
fn measure(server: &Server, shape: Shape) -> Result {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tally = Arc::new(Tally::default());
        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for c in 0..shape.clients as u64 {
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            socket.connect(server.addr).await.unwrap();
            let (tally, measuring, stop) = (tally.clone(), measuring.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                client(socket, c, shape, &tally, &measuring, &stop).await
            }));
        }
        tokio::time::sleep(WARM).await;
        let cpu0 = server.cpu_us();
        measuring.store(true, Ordering::Relaxed);
        let t0 = Instant::now();
        tokio::time::sleep(MEASURE).await;
        measuring.store(false, Ordering::Relaxed);
        let elapsed = t0.elapsed().as_secs_f64();
        let cpu = server.cpu_us() - cpu0;
        stop.store(true, Ordering::Relaxed);
        let mut lat = Vec::new();
        for t in tasks {
            if let Ok(Ok(l)) = tokio::time::timeout(SOCAT_LIMIT, t).await {
                lat.extend(l);
            }
        }
        lat.sort_unstable();
        let ok = tally.ok.load(Ordering::Relaxed);
        let lost = tally.lost.load(Ordering::Relaxed);
        let sent = tally.sent.load(Ordering::Relaxed).max(1);
        Result {
            per_s: ok as f64 / elapsed,
            loss_pct: lost as f64 * 100.0 / sent as f64,
            p99_us: lat
                .get(lat.len().saturating_sub(1) * 99 / 100)
                .map_or(f64::NAN, |d| *d as f64 / 1000.0),
            cpu_us_per: if ok > 0 { cpu / ok as f64 } else { f64::NAN },
            bad: tally.bad.load(Ordering::Relaxed),
        }
    })
}

/// One client: keeps `in_flight` datagrams out, checks each reply against what was sent
/// under its sequence number, and writes off those not back within LOSS_AFTER. Returns its
/// round-trip times (ns) during the measurement.
async fn client(
    socket: UdpSocket,
    c: u64,
    shape: Shape,
    tally: &Tally,
    measuring: &AtomicBool,
    stop: &AtomicBool,
) -> Vec<u64> {
    let mut lat = Vec::new();
    let base = pattern(c, shape.size);
    let mut out = base.clone();
    let mut buf = vec![0u8; 65_536];
    // seq → send time, for those in flight.
    let mut flight: std::collections::VecDeque<(u64, Instant)> = Default::default();
    let mut next = 0u64;
    while !stop.load(Ordering::Relaxed) {
        while flight.len() < shape.in_flight {
            out[8..16].copy_from_slice(&next.to_le_bytes());
            if socket.send(&out).await.is_err() {
                break;
            }
            if measuring.load(Ordering::Relaxed) {
                tally.sent.fetch_add(1, Ordering::Relaxed);
            }
            flight.push_back((next, Instant::now()));
            next += 1;
        }
        let oldest = flight.front().map_or(Instant::now(), |f| f.1);
        let deadline = tokio::time::Instant::from_std(oldest + LOSS_AFTER);
        match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                let Some(seq) = stamped(&buf[..n], &base).filter(|&seq| seq < next) else {
                    tally.bad.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                // Not in flight: a late reply to one written off, intact, so not a bad one.
                let Some(pos) = flight.iter().position(|f| f.0 == seq) else {
                    continue;
                };
                let (_, sent_at) = flight.remove(pos).unwrap();
                if measuring.load(Ordering::Relaxed) {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                    lat.push(sent_at.elapsed().as_nanos() as u64);
                }
            }
            Ok(Err(_)) => break,
            Err(_) => {
                flight.pop_front();
                if measuring.load(Ordering::Relaxed) {
                    tally.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    lat
}

/// Runs the UDP rows: every shape against every server, alternately, then the tables.
pub fn run() {
    let rounds = env_or("ECHO_BENCH_ROUNDS", 3).max(1);
    let mut kinds = vec![Kind::Ours, Kind::Textbook, Kind::Reference];
    if which("socat") {
        kinds.push(Kind::Socat);
    } else {
        println!("note: socat not installed; its rows are left out");
    }
    let started = Instant::now();
    let mut results = vec![vec![Vec::<Result>::new(); kinds.len()]; SHAPES.len()];
    for round in 0..rounds {
        eprintln!(
            "udp round {}/{rounds} ({:.0?} so far)",
            round + 1,
            started.elapsed()
        );
        for (k, &kind) in kinds
            .iter()
            .enumerate()
            .cycle()
            .skip(round)
            .take(kinds.len())
        {
            let server = Server::start(kind);
            for (s, shape) in SHAPES.iter().enumerate() {
                results[s][k].push(measure(&server, *shape));
            }
        }
    }
    print_server_table(&kinds, &results, rounds);
    client_rows(rounds);
    println!("(udp rows took {:.0?})", started.elapsed());
}

fn print_server_table(kinds: &[Kind], results: &[Vec<Vec<Result>>], rounds: usize) {
    println!();
    println!(
        "UDP echo server, medians of {rounds} interleaved rounds (ratio and CPU ratio: to the \
         textbook; to ref: to the recvmmsg reference)"
    );
    println!(
        "| case | server | datagrams/s | ratio | to ref | loss % | p99 µs | server CPU µs/dgram | CPU ratio | bad replies |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (s, shape) in SHAPES.iter().enumerate() {
        let med = |k: usize, f: fn(&Result) -> f64| {
            median(&mut results[s][k].iter().map(f).collect::<Vec<_>>())
        };
        let textbook = kinds.iter().position(|&k| k == Kind::Textbook).unwrap_or(0);
        let base_rate = med(textbook, |r| r.per_s);
        let base_cpu = med(textbook, |r| r.cpu_us_per);
        let ref_rate = kinds
            .iter()
            .position(|&k| k == Kind::Reference)
            .map_or(f64::NAN, |r| med(r, |r| r.per_s));
        for (k, kind) in kinds.iter().enumerate() {
            let rate = med(k, |r| r.per_s);
            let cpu = med(k, |r| r.cpu_us_per);
            let bad: u64 = results[s][k].iter().map(|r| r.bad).sum();
            println!(
                "| {} | {} | {:.0} | {:.2}x | {:.2}x | {:.2} | {:.0} | {:.2} | {:.2}x | {} |",
                shape.label,
                kind.name(),
                rate,
                rate / base_rate,
                rate / ref_rate,
                med(k, |r| r.loss_pct),
                med(k, |r| r.p99_us),
                cpu,
                cpu / base_cpu,
                bad
            );
        }
    }
}

/// Our client piping 100 MiB of lines through our server, next to socat, which sends each
/// read as one datagram (at most 65,507 bytes, the largest there is), keeps no count of what
/// is in flight and has no way to know it is done (`-t 2`: it waits 2 s after EOF).
fn client_rows(rounds: usize) {
    let mib = env_or("ECHO_BENCH_UDP_MIB", 100);
    let dir = tempfile::Builder::new()
        .prefix("udp-bench-")
        .tempdir()
        .unwrap();
    let input = dir.path().join("lines");
    let data = lines(mib << 20);
    std::fs::File::create(&input)
        .unwrap()
        .write_all(&data)
        .unwrap();
    let server = Server::start(Kind::Ours);
    let target = format!("udp:{}", server.addr);
    let socat_to = format!("UDP:{}", server.addr);
    let contenders: [(&str, Vec<&str>, &str); 2] = [
        (
            "asyncio-tool echo-client",
            vec!["echo-client", &target],
            crate::ours(),
        ),
        // -b 65536, a pipe's worth, fails at once on a file: "Message too long".
        (
            "socat -b 65507 - UDP:",
            vec!["-b", "65507", "-t", "2", "-", &socat_to],
            "socat",
        ),
    ];
    let mut times = vec![Vec::new(); 2];
    let mut intact = [0usize; 2];
    let mut status = vec![String::new(); 2];
    for round in 0..rounds {
        for i in [round % 2, (round + 1) % 2] {
            let (_, args, program) = &contenders[i];
            if *program == "socat" && !which("socat") {
                continue;
            }
            let t0 = Instant::now();
            let out = Command::new(program)
                .args(args)
                .stdin(std::fs::File::open(&input).unwrap())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output()
                .unwrap();
            times[i].push(t0.elapsed().as_secs_f64());
            if out.stdout == data {
                intact[i] += 1;
            }
            let said = String::from_utf8_lossy(&out.stderr);
            status[i] = format!(
                "exit {}, {} of {} bytes back {}",
                out.status.code().unwrap_or(-1),
                out.stdout.len(),
                data.len(),
                said.lines().next().unwrap_or("")
            );
        }
    }
    println!();
    println!("UDP client: {mib} MiB of lines through our server ({rounds} rounds)");
    println!("| client | median s | intact runs | last run |");
    println!("|---|---:|---:|---|");
    for (i, (label, _, _)) in contenders.iter().enumerate() {
        println!(
            "| {label} | {:.2} | {}/{} | {} |",
            median(&mut times[i]),
            intact[i],
            times[i].len(),
            status[i]
        );
    }
}

/// `len` bytes of text lines of 1 to 2,000 bytes.
fn lines(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = 0x0123_4567_89AB_CDEF_u64;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = 1 + (x % 2000) as usize;
        out.extend((0..n - 1).map(|i| b'a' + ((x >> (i % 56)) as u8 % 26)));
        out.push(b'\n');
    }
    out.truncate(len);
    out
}

/// tokio's `examples/echo-udp.rs`, without its per-datagram `println!`: the yardstick. Run as
/// `echo --textbook-udp-server ADDR`; prints its bound address on stdout, like ours.
pub fn textbook_main(args: &[String]) {
    let addr = args
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:0".into());
    if let Err(e) = textbook(addr) {
        eprintln!("textbook udp server: {e}");
        std::process::exit(1);
    }
}

#[tokio::main]
async fn textbook(addr: String) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let socket = UdpSocket::bind(&addr).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", socket.local_addr()?)?;
    out.flush()?;
    drop(out);
    let mut buf = vec![0; 1024];
    let mut to_send: Option<(usize, SocketAddr)> = None;
    loop {
        if let Some((size, peer)) = to_send {
            let _amt = socket.send_to(&buf[..size], &peer).await?;
        }
        to_send = Some(socket.recv_from(&mut buf).await?);
    }
}

/// The batching design with nothing around it, for the ceiling on this machine: one thread,
/// blocking recvmmsg (MSG_WAITFORONE: whatever is there, at least one) and sendmmsg, 64 per
/// call, replies to each sender. Run as `echo --reference-udp-server ADDR`.
pub fn reference_main(args: &[String]) {
    use std::os::fd::AsRawFd;
    const N: usize = 64;
    const SLOT: usize = 65_536;
    let addr = args
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let socket = StdUdpSocket::bind(&addr).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", socket.local_addr().unwrap()).unwrap();
    out.flush().unwrap();
    drop(out);
    let fd = socket.as_raw_fd();
    let mut data = vec![0u8; N * SLOT];
    // SAFETY: all-zero is a valid value of these plain C structs.
    let mut names: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; N];
    let mut iovs: Vec<libc::iovec> = vec![unsafe { std::mem::zeroed() }; N];
    let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; N];
    loop {
        for i in 0..N {
            iovs[i].iov_base = data[i * SLOT..].as_mut_ptr().cast();
            iovs[i].iov_len = SLOT;
            hdrs[i].msg_hdr.msg_name = (&raw mut names[i]).cast();
            hdrs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
            hdrs[i].msg_hdr.msg_iov = &raw mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at live buffers of the sizes it states.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                N as _,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            continue;
        }
        for h in &mut hdrs[..n as usize] {
            // SAFETY: msg_iov points at this header's own iovec.
            unsafe { (*h.msg_hdr.msg_iov).iov_len = h.msg_len as usize };
        }
        let mut sent = 0;
        while sent < n {
            // SAFETY: as above; the first `n` headers hold what was received.
            let m = unsafe {
                libc::sendmmsg(fd, hdrs[sent as usize..].as_mut_ptr(), (n - sent) as _, 0)
            };
            sent += if m > 0 { m } else { 1 };
        }
    }
}
