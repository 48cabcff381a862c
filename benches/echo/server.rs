//! Server benchmark: asyncio-tool's echo server against the textbook tokio server and
//! `socat ... PIPE`, under the same load, alternately, in one run.
//!
//! The load generator lives here: ping-pong on a one-thread tokio runtime (one core for the
//! clients, the other for the server on this 2-core machine), a bulk stream on two threads,
//! and a few thousand held connections. Absolute numbers drift between runs; the ratios
//! between servers measured in the same run are what the targets are about, so every case
//! runs against each server in turn, several rounds (with fresh server processes each round),
//! and the medians are printed.
//!
//! `ECHO_BENCH_ROUNDS` (default 5) sets the number of rounds; `ECHO_BENCH_QUICK=1` runs the
//! ping-pong cases only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const WARM: Duration = Duration::from_millis(400);
const MEASURE: Duration = Duration::from_millis(1500);
pub const BULK_BYTES: u64 = 1 << 30;
const BULK_STALL: Duration = Duration::from_secs(10);
const HELD_CONNS: usize = 5000;
const HELD_FOR: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Ours,
    Textbook,
    Socat,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "asyncio-tool",
            Kind::Textbook => "textbook",
            Kind::Socat => "socat",
        }
    }
}

/// Where a server listens.
#[derive(Clone, Debug)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Endpoint {
    /// Parses an address line as our server prints it: `127.0.0.1:PORT` or `unix:PATH`.
    fn parse(line: &str) -> Option<Endpoint> {
        match line.strip_prefix("unix:") {
            Some(path) => Some(Endpoint::Unix(path.into())),
            None => line.parse().ok().map(Endpoint::Tcp),
        }
    }

    /// The address as asyncio-tool's client takes it.
    pub fn arg(&self) -> String {
        match self {
            Endpoint::Tcp(a) => a.to_string(),
            Endpoint::Unix(p) => format!("unix:{}", p.display()),
        }
    }

    fn tcp(&self) -> SocketAddr {
        match self {
            Endpoint::Tcp(a) => *a,
            Endpoint::Unix(p) => panic!("{} is not a TCP address", p.display()),
        }
    }

    fn probe(&self) -> bool {
        match self {
            Endpoint::Tcp(a) => TcpStream::connect(a).is_ok(),
            Endpoint::Unix(p) => UnixStream::connect(p).is_ok(),
        }
    }
}

/// A server process under test; killed on drop.
pub struct Server {
    kind: Kind,
    child: Child,
    pub addr: Endpoint,
}

impl Server {
    /// Starts `kind` on an ephemeral loopback TCP port.
    pub fn start(kind: Kind) -> Server {
        Server::start_on(kind, None)
    }

    /// Starts `kind` on the Unix socket `unix` if given (which must not exist yet), else on
    /// an ephemeral loopback TCP port.
    pub fn start_on(kind: Kind, unix: Option<&Path>) -> Server {
        let (mut cmd, known) = Server::command(kind, unix);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", kind.name()));
        let addr = match known {
            Some(addr) => {
                let start = Instant::now();
                // socat prints nothing: wait until it accepts (this probe costs it one fork).
                while !addr.probe() {
                    assert!(
                        start.elapsed() < Duration::from_secs(10),
                        "socat did not start"
                    );
                    thread::sleep(Duration::from_millis(20));
                }
                addr
            }
            None => {
                let mut line = String::new();
                BufReader::new(child.stdout.take().unwrap())
                    .read_line(&mut line)
                    .unwrap();
                Endpoint::parse(line.trim())
                    .unwrap_or_else(|| panic!("{} printed {line:?}, not an address", kind.name()))
            }
        };
        Server { kind, child, addr }
    }

    /// The command line, and the endpoint when the server will not print it (socat).
    fn command(kind: Kind, unix: Option<&Path>) -> (Command, Option<Endpoint>) {
        let listen = match unix {
            Some(p) => format!("unix:{}", p.display()),
            None => "127.0.0.1:0".into(),
        };
        match kind {
            Kind::Ours => {
                let mut c = Command::new(crate::ours());
                c.args(["echo-server", "-q", &listen]);
                (c, None)
            }
            Kind::Textbook => {
                assert!(unix.is_none(), "the textbook server speaks TCP only");
                let mut c = Command::new(std::env::current_exe().unwrap());
                c.args(["--textbook-server", &listen]);
                (c, None)
            }
            Kind::Socat => {
                let mut c = Command::new("socat");
                // backlog: socat's default of 5 would make the 50 connects of a ping-pong
                // case wait on its accept loop (or fail with EAGAIN when non-blocking).
                let addr = match unix {
                    Some(p) => {
                        c.arg(format!("UNIX-LISTEN:{},fork,backlog=4096", p.display()));
                        Endpoint::Unix(p.into())
                    }
                    None => {
                        let port = free_port();
                        c.arg(format!(
                            "TCP-LISTEN:{port},fork,reuseaddr,nodelay,backlog=4096"
                        ));
                        Endpoint::Tcp(SocketAddr::from(([127, 0, 0, 1], port)))
                    }
                };
                c.arg("PIPE");
                (c, Some(addr))
            }
        }
    }

    /// CPU time of the server (and, for socat, its live children), in nanoseconds: the sum of
    /// every thread's time on CPU from /proc/PID/task/*/schedstat, exact to the nanosecond.
    /// (The 10 ms ticks of /proc/PID/stat are too coarse: each of socat's 500 children runs a
    /// few ms in a 1.5 s window, which rounds to 0 ticks, and the ×500 row read 0.00.)
    fn cpu_ns(&self) -> u64 {
        let pid = self.child.id();
        let mut ns = schedstat_ns(pid).unwrap_or(0);
        if self.kind == Kind::Socat {
            // socat forks a process per connection: count them too.
            ns += children(pid)
                .into_iter()
                .filter_map(schedstat_ns)
                .sum::<u64>();
        }
        ns
    }

    /// Peak resident memory (VmHWM) in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.kind == Kind::Socat {
            // A forked child stuck in a deadlock would outlive its parent.
            for pid in children(self.child.id()) {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pids whose parent is `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&p| parent(p) == Some(pid))
        .collect()
}

/// The parent pid, from /proc/PID/stat.
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Nanoseconds on CPU of every thread of `pid`, from schedstat.
pub fn schedstat_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// The 5,000-connection case needs more descriptors than the default soft limit; the servers
/// started after this inherit the raised limit.
pub fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct PingPong {
    pub msgs_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu_us_per_msg: f64,
}

impl PingPong {
    /// The median of each figure over rounds.
    pub fn median_of(rounds: &[PingPong]) -> PingPong {
        let med = |f: fn(&PingPong) -> f64| median(&mut rounds.iter().map(f).collect::<Vec<_>>());
        PingPong {
            msgs_per_s: med(|p| p.msgs_per_s),
            p50_us: med(|p| p.p50_us),
            p99_us: med(|p| p.p99_us),
            cpu_us_per_msg: med(|p| p.cpu_us_per_msg),
        }
    }
}

/// `conns` connections each sending `size` bytes and waiting for them back, in a loop.
pub fn ping_pong(server: &Server, conns: usize, size: usize) -> PingPong {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        match &server.addr {
            Endpoint::Tcp(addr) => {
                let mut streams = Vec::with_capacity(conns);
                for _ in 0..conns {
                    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
                    s.set_nodelay(true).unwrap();
                    streams.push(s);
                }
                ping_pong_on(server, streams, size).await
            }
            Endpoint::Unix(path) => {
                let mut streams = Vec::with_capacity(conns);
                for _ in 0..conns {
                    // A blocking connect waits for room in the backlog; tokio's would fail
                    // with EAGAIN when the server has not accepted the previous ones yet.
                    let s = UnixStream::connect(path).unwrap();
                    s.set_nonblocking(true).unwrap();
                    streams.push(tokio::net::UnixStream::from_std(s).unwrap());
                }
                ping_pong_on(server, streams, size).await
            }
        }
    })
}

async fn ping_pong_on<S>(server: &Server, streams: Vec<S>, size: usize) -> PingPong
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    {
        // 0 warming up, 1 measuring, 2 stop.
        let phase = Arc::new(AtomicU8::new(0));
        let tasks: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                let phase = Arc::clone(&phase);
                tokio::spawn(async move {
                    let msg = vec![i as u8; size];
                    let mut back = vec![0u8; size];
                    let mut lat = Vec::new();
                    while phase.load(Ordering::Relaxed) < 2 {
                        let t = Instant::now();
                        s.write_all(&msg).await.unwrap();
                        s.read_exact(&mut back).await.unwrap();
                        if phase.load(Ordering::Relaxed) == 1 {
                            lat.push(t.elapsed().as_nanos() as u32);
                        }
                    }
                    assert!(back == msg, "echo differs");
                    lat
                })
            })
            .collect();
        tokio::time::sleep(WARM).await;
        let cpu0 = server.cpu_ns();
        phase.store(1, Ordering::Relaxed);
        let t = Instant::now();
        tokio::time::sleep(MEASURE).await;
        phase.store(2, Ordering::Relaxed);
        let elapsed = t.elapsed();
        let cpu1 = server.cpu_ns();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all.sort_unstable();
        let msgs = all.len().max(1);
        PingPong {
            msgs_per_s: all.len() as f64 / elapsed.as_secs_f64(),
            p50_us: all.get(msgs / 2).copied().unwrap_or(0) as f64 / 1e3,
            p99_us: all.get(msgs * 99 / 100).copied().unwrap_or(0) as f64 / 1e3,
            cpu_us_per_msg: cpu1.saturating_sub(cpu0) as f64 / 1e3 / msgs as f64,
        }
    }
}

/// A pseudo-random block whose length (a prime) matches no buffer size, repeated: a byte lost,
/// duplicated or reordered anywhere shows up.
pub struct Pattern(Vec<u8>);

impl Pattern {
    pub fn new() -> Pattern {
        let len = (1 << 20) + 7;
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            v.extend_from_slice(&state.to_le_bytes());
        }
        v.truncate(len);
        Pattern(v)
    }

    /// Calls `f` with the consecutive slices making up bytes `offset..offset + len`.
    /// Writes the first `bytes` of the stream to `out`, 256 KiB at a time.
    pub fn write_to(&self, out: &mut impl Write, bytes: u64) -> std::io::Result<()> {
        let mut off = 0u64;
        let mut chunk = Vec::with_capacity(256 << 10);
        while off < bytes {
            let len = (256 << 10).min(bytes - off) as usize;
            chunk.clear();
            self.segments(off, len, |s| chunk.extend_from_slice(s));
            out.write_all(&chunk)?;
            off += len as u64;
        }
        Ok(())
    }

    pub fn segments(&self, offset: u64, mut len: usize, mut f: impl FnMut(&[u8])) {
        let mut pos = (offset % self.0.len() as u64) as usize;
        while len > 0 {
            let take = (self.0.len() - pos).min(len);
            f(&self.0[pos..pos + take]);
            len -= take;
            pos = 0;
        }
    }
}

/// A connected stream the bulk case can split into a reading and a writing end.
trait Duplex: Read + Write + Send + Sized + 'static {
    fn clone_fd(&self) -> std::io::Result<Self>;
    fn shut(&self, how: std::net::Shutdown);
}

impl Duplex for TcpStream {
    fn clone_fd(&self) -> std::io::Result<Self> {
        self.try_clone()
    }
    fn shut(&self, how: std::net::Shutdown) {
        let _ = self.shutdown(how);
    }
}

impl Duplex for UnixStream {
    fn clone_fd(&self) -> std::io::Result<Self> {
        self.try_clone()
    }
    fn shut(&self, how: std::net::Shutdown) {
        let _ = self.shutdown(how);
    }
}

/// One connection, `bytes` written by one thread while another reads them back and checks
/// every byte. Returns MB/s (10^6 bytes) of echoed data, or None if the echo stalled for
/// [`BULK_STALL`] (socat's PIPE can deadlock on its own pipe under full-duplex load).
pub fn bulk(server: &Server, pattern: &Arc<Pattern>, bytes: u64) -> Option<f64> {
    match &server.addr {
        Endpoint::Tcp(addr) => {
            let s = TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            s.set_read_timeout(Some(BULK_STALL)).unwrap();
            bulk_on(server, s, pattern, bytes)
        }
        Endpoint::Unix(path) => {
            let s = UnixStream::connect(path).unwrap();
            s.set_read_timeout(Some(BULK_STALL)).unwrap();
            bulk_on(server, s, pattern, bytes)
        }
    }
}

fn bulk_on<S: Duplex>(
    server: &Server,
    mut reader: S,
    pattern: &Arc<Pattern>,
    bytes: u64,
) -> Option<f64> {
    let mut writer = reader.clone_fd().unwrap();
    let start = Instant::now();
    let w = {
        let pattern = Arc::clone(pattern);
        thread::spawn(move || {
            if pattern.write_to(&mut writer, bytes).is_err() {
                return; // the reader gave up and shut the socket down
            }
            writer.shut(std::net::Shutdown::Write);
        })
    };
    let mut buf = vec![0u8; 256 << 10];
    let mut off = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(_) => {
                reader.shut(std::net::Shutdown::Both);
                let _ = w.join();
                eprintln!(
                    "{}: bulk echo stalled after {off} bytes; counted as failed",
                    server.kind.name()
                );
                return None;
            }
        };
        if n == 0 {
            break;
        }
        let mut at = 0;
        pattern.segments(off, n, |s| {
            assert!(
                buf[at..at + s.len()] == *s,
                "bulk echo differs near byte {off}"
            );
            at += s.len();
        });
        off += n as u64;
    }
    w.join().unwrap();
    assert_eq!(off, bytes, "bulk echo short");
    Some(bytes as f64 / 1e6 / start.elapsed().as_secs_f64())
}

/// Opens HELD_CONNS connections, checks each with a 16 KiB exchange, holds them HELD_FOR, then
/// checks each again with 64 bytes. Returns (healthy connections, server peak RSS in KiB).
fn held(server: &Server) -> (usize, u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = server.addr.tcp();
    rt.block_on(async {
        async fn exchange(s: &mut tokio::net::TcpStream, size: usize) -> bool {
            let msg = vec![7u8; size];
            let mut back = vec![0u8; size];
            let ok = async {
                s.write_all(&msg).await?;
                s.read_exact(&mut back).await?;
                std::io::Result::Ok(())
            };
            matches!(
                tokio::time::timeout(Duration::from_secs(10), ok).await,
                Ok(Ok(()))
            ) && back == msg
        }
        // Connect in waves so the backlog never overflows (which would cost SYN retries).
        let mut conns = Vec::with_capacity(HELD_CONNS);
        while conns.len() < HELD_CONNS {
            let wave: Vec<_> = (0..250.min(HELD_CONNS - conns.len()))
                .map(|_| {
                    tokio::spawn(async move {
                        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
                        exchange(&mut s, 16 << 10).await.then_some(s)
                    })
                })
                .collect();
            for t in wave {
                conns.push(t.await.ok().flatten());
            }
        }
        tokio::time::sleep(HELD_FOR).await;
        let checks: Vec<_> = conns
            .into_iter()
            .map(|c| {
                tokio::spawn(async move {
                    match c {
                        Some(mut s) => exchange(&mut s, 64).await,
                        None => false,
                    }
                })
            })
            .collect();
        let mut healthy = 0;
        for c in checks {
            if c.await.unwrap_or(false) {
                healthy += 1;
            }
        }
        (healthy, server.peak_rss_kib())
    })
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// Runs the server half: every case against every server, alternately, then the table.
pub fn run() {
    raise_nofile();
    let rounds: usize = std::env::var("ECHO_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    // ECHO_BENCH_QUICK=1: ping-pong only, for iterating on the server.
    let quick = std::env::var_os("ECHO_BENCH_QUICK").is_some();
    let have_socat = Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    let mut kinds = vec![Kind::Ours, Kind::Textbook];
    if have_socat {
        kinds.push(Kind::Socat);
    } else {
        eprintln!("note: socat not installed; its columns are left out");
    }
    let cases: [(&str, usize, usize); 4] = [
        ("ping-pong 64 B x 1", 1, 64),
        ("ping-pong 64 B x 50", 50, 64),
        ("ping-pong 64 B x 500", 500, 64),
        ("ping-pong 16 KiB x 50", 50, 16 << 10),
    ];
    let pattern = Arc::new(Pattern::new());
    // results[case][server] = one PingPong per round.
    let mut pp: Vec<Vec<Vec<PingPong>>> = vec![vec![Vec::new(); kinds.len()]; cases.len()];
    let mut bulk_mbs: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut bulk_failed = vec![0usize; kinds.len()];
    let started = Instant::now();
    for round in 0..rounds {
        eprintln!(
            "round {}/{rounds} ({:.0?} so far)",
            round + 1,
            started.elapsed()
        );
        // Fresh processes each round: two processes of one server differ by a few percent in
        // CPU per message (measured: three textbook servers in one run spread over ±3%), so
        // one process per server for the whole run would make that spread look like a
        // difference between servers.
        let servers: Vec<Server> = kinds.iter().map(|&k| Server::start(k)).collect();
        // Rotate the order each round so no server always goes first.
        let order: Vec<usize> = (0..kinds.len())
            .map(|i| (i + round) % kinds.len())
            .collect();
        for (c, &(_, conns, size)) in cases.iter().enumerate() {
            for &s in &order {
                pp[c][s].push(ping_pong(&servers[s], conns, size));
                thread::sleep(Duration::from_millis(200));
            }
        }
        if quick {
            continue;
        }
        for &s in &order {
            match bulk(&servers[s], &pattern, BULK_BYTES) {
                Some(mbs) => bulk_mbs[s].push(mbs),
                None => bulk_failed[s] += 1,
            }
        }
    }

    // Held connections: fresh processes so peak RSS is this case's alone. socat would fork
    // 5,000 processes, so it is left out here.
    let mut held_res = Vec::new();
    for &k in kinds.iter().filter(|&&k| k != Kind::Socat && !quick) {
        eprintln!("{HELD_CONNS} held connections: {}", k.name());
        let server = Server::start(k);
        held_res.push((k, held(&server)));
    }

    // The table.
    let ours = 0;
    let tb = 1;
    let socat = kinds.iter().position(|&k| k == Kind::Socat);
    println!();
    println!(
        "echo server benchmark: medians of {rounds} alternating rounds, {:.0?} total",
        started.elapsed()
    );
    println!(
        "{:<24} {:<13} {:>11} {:>10} {:>13} {:>10} {:>9}",
        "case", "server", "msgs/s", "p99 µs", "CPU µs/msg", "vs textbk", "vs socat"
    );
    let mut verdicts = Vec::new();
    let med = |c: usize, s: usize| PingPong::median_of(&pp[c][s]);
    for (c, &(name, conns, size)) in cases.iter().enumerate() {
        let m: Vec<PingPong> = (0..kinds.len()).map(|s| med(c, s)).collect();
        for (s, k) in kinds.iter().enumerate() {
            let vs = |o: usize| format!("{:.2}x", m[s].msgs_per_s / m[o].msgs_per_s.max(1e-9));
            println!(
                "{:<24} {:<13} {:>11.0} {:>10.0} {:>13.2} {:>10} {:>9}",
                name,
                k.name(),
                m[s].msgs_per_s,
                m[s].p99_us,
                m[s].cpu_us_per_msg,
                if s == tb { "-".into() } else { vs(tb) },
                match socat {
                    Some(so) if so != s => vs(so),
                    _ => "-".into(),
                }
            );
        }
        let ratio = m[ours].msgs_per_s / m[tb].msgs_per_s.max(1e-9);
        if size == 64 {
            let cpu_ok = m[ours].cpu_us_per_msg <= m[tb].cpu_us_per_msg;
            verdicts.push(format!(
                "{name}: {ratio:.2}x textbook msgs/s (target >= 1.0x), CPU/msg {:.2} vs {:.2} µs (target <=): {}",
                m[ours].cpu_us_per_msg,
                m[tb].cpu_us_per_msg,
                if ratio >= 1.0 && cpu_ok { "MET" } else { "MISSED" }
            ));
            // Not a let chain: those need Rust 1.88, and rust-version is 1.85.
            if let (50, Some(so)) = (conns, socat) {
                let r = m[ours].msgs_per_s / m[so].msgs_per_s.max(1e-9);
                verdicts.push(format!(
                    "{name}: {r:.2}x socat msgs/s (target >= 1.5x): {}",
                    if r >= 1.5 { "MET" } else { "MISSED" }
                ));
            }
        } else {
            verdicts.push(format!(
                "{name}: {ratio:.1}x textbook msgs/s (target >= 50x): {}",
                if ratio >= 50.0 { "MET" } else { "MISSED" }
            ));
        }
    }
    if quick {
        return;
    }
    let bulk_med: Vec<f64> = bulk_mbs.iter_mut().map(|v| median(v)).collect();
    for (s, k) in kinds.iter().enumerate() {
        if bulk_failed[s] > 0 {
            println!(
                "({}: bulk stalled in {} of {rounds} rounds; median of the rest)",
                k.name(),
                bulk_failed[s]
            );
        }
    }
    println!(
        "{:<24} {:<13} {:>11} {:>10} {:>13} {:>10} {:>9}",
        "bulk 1 GiB full duplex", "", "MB/s", "", "", "", ""
    );
    for (s, k) in kinds.iter().enumerate() {
        let vs = |o: usize| format!("{:.2}x", bulk_med[s] / bulk_med[o].max(1e-9));
        println!(
            "{:<24} {:<13} {:>11.0} {:>10} {:>13} {:>10} {:>9}",
            "bulk 1 GiB full duplex",
            k.name(),
            bulk_med[s],
            "",
            "",
            if s == tb { "-".into() } else { vs(tb) },
            match socat {
                Some(so) if so != s => vs(so),
                _ => "-".into(),
            }
        );
    }
    let r = bulk_med[ours] / bulk_med[tb].max(1e-9);
    verdicts.push(format!(
        "bulk: {r:.2}x textbook MB/s, every byte verified (target >= 3x): {}",
        if r >= 3.0 { "MET" } else { "MISSED" }
    ));
    println!(
        "{:<24} {:<13} {:>11} {:>10}",
        format!("{HELD_CONNS} conns held {}s", HELD_FOR.as_secs()),
        "",
        "healthy",
        "peak RSS"
    );
    for &(k, (healthy, rss)) in &held_res {
        println!(
            "{:<24} {:<13} {:>11} {:>10}",
            format!("{HELD_CONNS} conns held {}s", HELD_FOR.as_secs()),
            k.name(),
            format!("{healthy}/{HELD_CONNS}"),
            format!("{:.1} MiB", rss as f64 / 1024.0)
        );
        if k == Kind::Ours {
            let ok = healthy == HELD_CONNS && rss <= 64 * 1024;
            verdicts.push(format!(
                "held: {healthy}/{HELD_CONNS} healthy, peak RSS {:.1} MiB (target all, <= 64 MiB): {}",
                rss as f64 / 1024.0,
                if ok { "MET" } else { "MISSED" }
            ));
        }
    }
    println!(
        "(socat: not run with {HELD_CONNS} held connections; it forks a process per connection)"
    );
    println!();
    println!("targets:");
    for v in verdicts {
        println!("  {v}");
    }
}
