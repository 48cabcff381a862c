//! Client benchmark: 1 GiB piped through each client against one fast echo server on
//! 127.0.0.1, in alternating rounds: asyncio-tool's echo-client, `socat -t 60 - TCP:ADDR`
//! (`-t 60`: after the end of input socat waits up to 60 s, not its default 0.5 s, for the
//! replies, and still exits at once when the server closes) and `nc.openbsd -N` (`-N`:
//! half-close at the end of input; it then reads until the server closes).
//!
//! Every run is verified: what each client prints is hashed as it streams and compared with
//! the hash of what was fed in. Peak RSS is the client's `VmHWM`, sampled from /proc every
//! 10 ms while it runs (it only grows, so the last sample is the peak up to then). `wait4`'s
//! `ru_maxrss` cannot be used: Linux carries the parent's high-water mark across fork+exec,
//! so every client would report the benchmark's own size.
//!
//! `ECHO_BENCH_MIB` (default 1024) and `ECHO_BENCH_ROUNDS` (default 5) shrink it for a
//! quick look.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Data moves in blocks of this size; block `i` is a fixed random block with `i` stamped in
/// its first 8 bytes, so a lost, duplicated or reordered block changes the hash.
pub const BLOCK: usize = 1 << 20;
/// Any single run taking longer than this is killed and reported.
const RUN_LIMIT: Duration = Duration::from_secs(90);
/// Targets from the issue.
const TARGET_RATIO: f64 = 1.0;
const TARGET_RSS_KIB: u64 = 16 * 1024;

/// Runs the client half.
pub fn run() {
    let mib: usize = env_or("ECHO_BENCH_MIB", 1024);
    let rounds: usize = env_or("ECHO_BENCH_ROUNDS", 5).max(1);
    let blocks = mib.max(1);
    let addr = start_echo_server();

    let ours = crate::ours();
    let mut contenders: Vec<Contender> = vec![Contender::new(
        "asyncio-tool echo-client",
        ours,
        &["echo-client", "-q", &addr.to_string()],
    )];
    let (host, port) = (addr.ip().to_string(), addr.port().to_string());
    for (label, program, args) in [
        (
            "socat -t 60 - TCP:ADDR",
            "socat",
            vec![
                "-t".to_string(),
                "60".into(),
                "-".into(),
                format!("TCP:{addr}"),
            ],
        ),
        (
            "nc.openbsd -N HOST PORT",
            "nc.openbsd",
            vec!["-N".to_string(), host.clone(), port.clone()],
        ),
    ] {
        if which(program) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            contenders.push(Contender::new(label, program, &args));
        } else {
            println!("note: {program} not installed; it is left out");
        }
    }

    println!(
        "echo client: {} MiB through one echo server on {addr}, {rounds} alternating rounds",
        mib
    );
    race(&mut contenders, blocks, rounds);
    report("", &contenders, (blocks * BLOCK) as u64);
}

/// Pipes `blocks` MiB through each contender in turn, `rounds` times, alternating the order;
/// panics on any byte lost, changed or reordered, or a failed exit.
pub fn race(contenders: &mut [Contender], blocks: usize, rounds: usize) {
    let total = (blocks * BLOCK) as u64;
    let base = base_block();
    let expected = stream_hash(&base, blocks);
    for round in 0..rounds {
        // Alternate the order so no contender always runs on a warm or a cold machine.
        let n = contenders.len();
        for k in 0..n {
            let i = if round % 2 == 0 { k } else { n - 1 - k };
            let c = &mut contenders[i];
            let r = run_once(c, &base, blocks);
            assert_eq!(
                r.bytes, total,
                "{}: printed {} of {total} bytes",
                c.label, r.bytes
            );
            assert_eq!(r.hash, expected, "{}: output differs from input", c.label);
            assert!(r.success, "{}: exited with failure", c.label);
            c.times.push(r.secs);
            c.peak_kib = c.peak_kib.max(r.maxrss_kib);
        }
    }
}

/// One client under test, with its results so far.
pub struct Contender {
    label: String,
    program: String,
    args: Vec<String>,
    times: Vec<f64>,
    peak_kib: u64,
}

impl Contender {
    pub fn new(label: &str, program: &str, args: &[&str]) -> Self {
        Contender {
            label: label.into(),
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            times: Vec::new(),
            peak_kib: 0,
        }
    }

    fn median(&self) -> f64 {
        let mut t = self.times.clone();
        t.sort_by(f64::total_cmp);
        let n = t.len();
        if n % 2 == 1 {
            t[n / 2]
        } else {
            (t[n / 2 - 1] + t[n / 2]) / 2.0
        }
    }
}

/// The table and the target line; `what` names the case in the target line ("" for TCP).
pub fn report(what: &str, contenders: &[Contender], total: u64) {
    let mbps = |c: &Contender| total as f64 / 1e6 / c.median();
    let ours = &contenders[0];
    let best_peer = contenders[1..].iter().map(mbps).fold(f64::NAN, f64::max);
    println!();
    println!(
        "{:<26} {:>9} {:>6} {:>9} {:>10}  runs (s)",
        "client", "median s", "MB/s", "vs best", "peak RSS"
    );
    for c in contenders {
        let runs = c
            .times
            .iter()
            .map(|t| format!("{t:.2}"))
            .collect::<Vec<_>>()
            .join(" ");
        let ratio = if best_peer.is_nan() {
            "-".to_string()
        } else {
            format!("{:.2}x", mbps(c) / best_peer)
        };
        println!(
            "{:<26} {:>9.3} {:>6.0} {:>9} {:>6.1} MiB  {runs}",
            c.label,
            c.median(),
            mbps(c),
            ratio,
            c.peak_kib as f64 / 1024.0
        );
    }
    let ratio = mbps(ours) / best_peer;
    let speed_met = best_peer.is_nan() || ratio >= TARGET_RATIO;
    let rss_met = ours.peak_kib <= TARGET_RSS_KIB;
    println!();
    println!(
        "target: {what}throughput >= {TARGET_RATIO:.1}x the faster peer: {} ({}); client peak RSS <= {} MiB: {} ({:.1} MiB)",
        if speed_met { "met" } else { "NOT met" },
        if best_peer.is_nan() {
            "no peer ran".to_string()
        } else {
            format!("{ratio:.2}x")
        },
        TARGET_RSS_KIB / 1024,
        if rss_met { "met" } else { "NOT met" },
        ours.peak_kib as f64 / 1024.0
    );
}

struct RunResult {
    secs: f64,
    bytes: u64,
    hash: u64,
    success: bool,
    maxrss_kib: u64,
}

/// One run: spawn, feed `blocks` blocks from one thread, hash stdout in another, sample the
/// peak RSS in a third. Killed past [`RUN_LIMIT`].
fn run_once(c: &Contender, base: &[u8], blocks: usize) -> RunResult {
    let started = Instant::now();
    let mut child = Command::new(&c.program)
        .args(&c.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", c.program));
    let pid = child.id() as libc::pid_t;
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();

    let feed_base = base.to_vec();
    let feeder = thread::spawn(move || {
        let mut block = feed_base;
        for i in 0..blocks {
            stamp(&mut block, i);
            if stdin.write_all(&block).is_err() {
                break;
            }
        }
        // Dropping stdin is the end of input.
    });
    let reader = thread::spawn(move || {
        let mut block = vec![0u8; BLOCK];
        let mut hash = SEED;
        let mut total = 0u64;
        loop {
            let mut filled = 0;
            while filled < BLOCK {
                match stdout.read(&mut block[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            if filled == 0 {
                break;
            }
            total += filled as u64;
            hash = hash_block(hash, &block[..filled]);
            if filled < BLOCK {
                break;
            }
        }
        (total, hash)
    });

    // Samples the peak RSS, and kills the child if it overruns. It only looks while `done` is
    // unset, i.e. before the child is reaped, so the pid is still the child's.
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = Arc::clone(&done);
        let label = c.label.clone();
        thread::spawn(move || {
            let deadline = Instant::now() + RUN_LIMIT;
            let mut peak_kib = 0;
            while !done.load(Ordering::Acquire) {
                peak_kib = peak_kib.max(vm_hwm_kib(pid).unwrap_or(0));
                if Instant::now() > deadline {
                    eprintln!("{label}: still running after {RUN_LIMIT:?}; killing it");
                    // SAFETY: kill(2) on our own child, not reaped yet (see above).
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
            peak_kib
        })
    };
    // Wait without reaping, so the sampler can still read /proc/PID until the very end.
    // SAFETY: siginfo_t is plain data that waitid fills in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; WNOWAIT leaves it to be reaped by `child.wait()`.
    let waited = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(
        waited,
        0,
        "waitid failed: {}",
        std::io::Error::last_os_error()
    );
    done.store(true, Ordering::Release);
    let maxrss_kib = watchdog.join().unwrap();
    let status = child.wait().unwrap();
    feeder.join().unwrap();
    let (bytes, hash) = reader.join().unwrap();
    RunResult {
        secs,
        bytes,
        hash,
        success: status.success(),
        maxrss_kib,
    }
}

/// `VmHWM` (peak resident set) of a running process, in KiB.
fn vm_hwm_kib(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The fast echo server every client talks to: one thread per connection, a plain
/// read/write loop with a 256 KiB buffer. It half-closes after the client's EOF, as an echo
/// server should.
fn start_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            thread::spawn(move || echo(conn));
        }
    });
    addr
}

fn echo(mut conn: TcpStream) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// A fixed pseudo-random block (xorshift64).
fn base_block() -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(BLOCK);
    while out.len() < BLOCK {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(BLOCK);
    out
}

fn stamp(block: &mut [u8], i: usize) {
    block[..8].copy_from_slice(&(i as u64).to_le_bytes());
}

/// The hash of the whole stream, as the reader will compute it.
fn stream_hash(base: &[u8], blocks: usize) -> u64 {
    let mut block = base.to_vec();
    let mut hash = SEED;
    for i in 0..blocks {
        stamp(&mut block, i);
        hash = hash_block(hash, &block);
    }
    hash
}

const SEED: u64 = 0x243f_6a88_85a3_08d3;
const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// A fast streaming hash (four independent multiply-xor lanes, then folded): it only has to
/// catch a lost, changed or misplaced byte, and must not slow the reader down.
fn hash_block(seed: u64, data: &[u8]) -> u64 {
    let mut lanes = [seed, seed ^ 1, seed ^ 2, seed ^ 3];
    let mut chunks = data.chunks_exact(32);
    for chunk in &mut chunks {
        for (lane, word) in lanes.iter_mut().zip(chunk.chunks_exact(8)) {
            let w = u64::from_le_bytes(word.try_into().unwrap());
            *lane = (lane.rotate_left(23) ^ w).wrapping_mul(K);
        }
    }
    let mut h = lanes.iter().fold(data.len() as u64, |h, &l| {
        (h ^ l).wrapping_mul(K).rotate_left(29)
    });
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(K);
    }
    h
}

pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn which(program: &str) -> bool {
    Command::new(program)
        .arg("-h")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}
