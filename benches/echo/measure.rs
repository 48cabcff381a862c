//! `cargo bench --bench echo -- measure`: `asyncio-tool echo-client`'s load and probe modes
//! against the bench's own load generator ([`server::ping_pong`]), both driving our echo
//! server, alternately in one run (fresh server each round, the order swapped each round),
//! medians over rounds, ratios against the targets (#12).
//!
//! Client CPU: the bench generator runs on this thread (a current-thread runtime), so its CPU
//! is this thread's over the call; the product's is the child's user+system time from wait4.
//! Both are divided by the messages of the whole run (the generator's are estimated from its
//! measured rate over the whole call, warm-up included).
//!
//! Accuracy (issue 19): sockperf's ping-pong against its own server and our load mode at one
//! connection against ours, 64 B over TCP, by turns in each round: our round-trip p50 against
//! twice sockperf's p50 (sockperf reports half the round trip), target within 10%.
//!
//! `ECHO_BENCH_ROUNDS` (default 3) sets the rounds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::server::{self, Kind, Server, median};

/// How long each load-mode run lasts: the generator's warm-up plus measuring window.
const LOAD_FOR: &str = "1900ms";

/// One load-mode run's figures.
#[derive(Clone, Copy, Default)]
struct Run {
    msgs_per_s: f64,
    p50_us: f64,
    cpu_us_per_msg: f64,
}

/// This thread's CPU time so far.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into the local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The bench generator: `conns` × `size` against `server`.
fn generator(server: &Server, conns: usize, size: usize) -> Run {
    let (cpu0, t0) = (thread_cpu(), Instant::now());
    let pp = server::ping_pong(server, conns, size);
    let (cpu, secs) = (thread_cpu() - cpu0, t0.elapsed().as_secs_f64());
    let msgs = (pp.msgs_per_s * secs).max(1.0);
    Run {
        msgs_per_s: pp.msgs_per_s,
        p50_us: pp.p50_us,
        cpu_us_per_msg: cpu.as_secs_f64() * 1e6 / msgs,
    }
}

/// Runs `asyncio-tool echo-client ARGS --json -q ADDR`; its JSON and its CPU time.
// The child is reaped by wait4, which also gives its rusage; `Child::wait` cannot.
#[allow(clippy::zombie_processes)]
fn product(server: &Server, args: &[&str]) -> (serde_json::Value, Duration) {
    let mut child = Command::new(crate::ours())
        .arg("echo-client")
        .args(args)
        .args(["--json", "-q", &server.addr.arg()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, writing into locals.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert!(pid > 0 && status == 0, "echo-client failed: {out}");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    (serde_json::from_str(&out).unwrap(), cpu)
}

/// The product's load mode: `conns` × `size`.
fn load(server: &Server, conns: usize, size: usize) -> Run {
    let (c, s) = (conns.to_string(), size.to_string());
    let (v, cpu) = product(
        server,
        &["--connections", &c, "--size", &s, "--duration", LOAD_FOR],
    );
    let received = v["received"].as_f64().unwrap().max(1.0);
    Run {
        msgs_per_s: v["msgs_per_s"].as_f64().unwrap(),
        p50_us: v["rtt_ms"]["p50"].as_f64().unwrap() * 1e3,
        cpu_us_per_msg: cpu.as_secs_f64() * 1e6 / received,
    }
}

/// The product's probe mode at `--interval 10ms`: its p50 in µs.
fn probe(server: &Server) -> f64 {
    let (v, _) = product(server, &["--count", "150", "--interval", "10ms"]);
    v["rtt_ms"]["p50"].as_f64().unwrap() * 1e3
}

/// A plain blocking round-trip loop spaced as the probe is (one 64-byte message every 10 ms),
/// for what a round trip costs when both sides sleep between messages: its p50 in µs.
fn spaced(server: &Server, count: usize) -> f64 {
    let addr: SocketAddr = server.addr.arg().parse().unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let (msg, mut back) = ([7u8; 64], [0u8; 64]);
    let mut lat: Vec<f64> = (0..count)
        .map(|_| {
            thread::sleep(Duration::from_millis(10));
            let t = Instant::now();
            s.write_all(&msg).unwrap();
            s.read_exact(&mut back).unwrap();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    median(&mut lat)
}

/// How long each accuracy run lasts, sockperf's `-t` and our load's `--duration` alike.
const ACCURACY_SECS: u64 = 5;

/// sockperf's ping-pong against its own server on loopback, 64 B over TCP: its p50 in µs,
/// which is half the round trip (sockperf reports one-way latency as RTT / 2); `None` when
/// sockperf is not installed.
fn sockperf_p50() -> Option<f64> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?
        .port()
        .to_string();
    let mut srv = Command::new("sockperf")
        .args(["server", "-i", "127.0.0.1", "-p", &port, "--tcp"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let up = (0..500).any(|_| {
        thread::sleep(Duration::from_millis(10));
        TcpStream::connect(addr).is_ok()
    });
    let out = up.then(|| {
        Command::new("sockperf")
            .args([
                "ping-pong",
                "-i",
                "127.0.0.1",
                "-p",
                &port,
                "--tcp",
                "-m",
                "64",
            ])
            .args(["-t", &ACCURACY_SECS.to_string()])
            .stdin(Stdio::null())
            .output()
    });
    let _ = srv.kill();
    let _ = srv.wait();
    let out = out?.ok()?;
    // sockperf: ---> percentile 50.000 =    5.923
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.split_once("percentile 50.000 =")?.1.trim().parse().ok())
}

/// Our load mode at one connection, 64 B, against our server, as long as sockperf's run: its
/// round-trip p50 in µs.
fn accuracy_load(server: &Server) -> f64 {
    let secs = format!("{ACCURACY_SECS}s");
    let (v, _) = product(
        server,
        &["--connections", "1", "--size", "64", "--duration", &secs],
    );
    v["rtt_ms"]["p50"].as_f64().unwrap() * 1e3
}

/// The cases: (name, connections, size).
const CASES: [(&str, usize, usize); 3] = [
    ("64 B x 50", 50, 64),
    ("16 KiB x 50", 50, 16 << 10),
    ("64 B x 1", 1, 64),
];

/// Runs the comparison and prints the table.
pub fn run() {
    server::raise_nofile();
    let rounds: usize = std::env::var("ECHO_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    // [case] -> rounds of (generator, product)
    let mut runs: Vec<Vec<(Run, Run)>> = vec![Vec::new(); CASES.len()];
    let mut probes = Vec::new();
    let mut spaced_p50 = Vec::new();
    // Rounds of (2 × sockperf's p50, our load's p50), µs.
    let mut accuracy: Vec<(f64, f64)> = Vec::new();
    let started = Instant::now();
    for round in 0..rounds {
        eprintln!("measure round {}/{rounds}", round + 1);
        let server = Server::start(Kind::Ours);
        for (c, &(_, conns, size)) in CASES.iter().enumerate() {
            let (g, p) = if round % 2 == 0 {
                let g = generator(&server, conns, size);
                thread::sleep(Duration::from_millis(200));
                (g, load(&server, conns, size))
            } else {
                let p = load(&server, conns, size);
                thread::sleep(Duration::from_millis(200));
                (generator(&server, conns, size), p)
            };
            runs[c].push((g, p));
            thread::sleep(Duration::from_millis(200));
        }
        probes.push(probe(&server));
        spaced_p50.push(spaced(&server, 150));
        // Accuracy: sockperf and our load mode by turns, the order swapped each round.
        let (sp, ours) = if round % 2 == 0 {
            let sp = sockperf_p50();
            (sp, accuracy_load(&server))
        } else {
            let ours = accuracy_load(&server);
            (sockperf_p50(), ours)
        };
        if let Some(sp) = sp {
            accuracy.push((2.0 * sp, ours));
        }
    }
    let med = |c: usize, f: fn(&Run) -> f64, product: bool| {
        let mut v: Vec<f64> = runs[c]
            .iter()
            .map(|(g, p)| f(if product { p } else { g }))
            .collect();
        median(&mut v)
    };
    println!();
    println!(
        "echo-client load/probe vs the bench generator, our echo server: medians of {rounds} \
         alternating rounds, {:.0?} total",
        started.elapsed()
    );
    println!(
        "{:<34} {:>12} {:>12} {:>8}  target",
        "figure", "bench gen", "echo-client", "ratio"
    );
    let row = |name: String, g: f64, p: f64, target: &str, met: bool| {
        println!(
            "{name:<34} {g:>12.2} {p:>12.2} {:>7.2}x  {target}: {}",
            p / g.max(1e-9),
            if met { "MET" } else { "MISSED" }
        );
    };
    let msgs = |r: &Run| r.msgs_per_s;
    let cpu = |r: &Run| r.cpu_us_per_msg;
    let p50 = |r: &Run| r.p50_us;
    for (c, &(name, conns, _)) in CASES.iter().enumerate() {
        let (g, p) = (med(c, msgs, false), med(c, msgs, true));
        if conns > 1 {
            row(format!("{name} msgs/s"), g, p, ">= 1.0x", p >= g);
        }
        if c == 0 {
            let (g, p) = (med(c, cpu, false), med(c, cpu, true));
            row(format!("{name} client CPU µs/msg"), g, p, "<= 1.0x", p <= g);
        }
        if conns == 1 {
            let (g, p) = (med(c, p50, false), med(c, p50, true));
            let within = (p / g.max(1e-9) - 1.0).abs() <= 0.10;
            row(format!("{name} p50 µs"), g, p, "within 10%", within);
            let pr = median(&mut probes.clone());
            let within = (pr / p.max(1e-9) - 1.0).abs() <= 0.20;
            println!(
                "{:<34} {:>12.2} {:>12.2} {:>7.2}x  within 20%: {}",
                "probe 10ms p50 µs vs load p50 x 1",
                p,
                pr,
                pr / p.max(1e-9),
                if within { "MET" } else { "MISSED" }
            );
            let sp = median(&mut spaced_p50.clone());
            println!(
                "{:<34} {:>12.2} {:>12.2} {:>7.2}x  (context: both sides asleep between messages)",
                "10ms-spaced loop p50 µs vs probe",
                sp,
                pr,
                pr / sp.max(1e-9)
            );
        }
    }
    accuracy_row(&accuracy);
}

/// The accuracy row: our load mode's round-trip p50 at one connection against twice
/// sockperf's p50 (its figure is half the round trip), medians of the rounds.
fn accuracy_row(accuracy: &[(f64, f64)]) {
    if accuracy.is_empty() {
        println!(
            "accuracy vs sockperf: skipped (sockperf not installed: apt-get install sockperf)"
        );
        return;
    }
    let sp = median(&mut accuracy.iter().map(|a| a.0).collect::<Vec<_>>());
    let ours = median(&mut accuracy.iter().map(|a| a.1).collect::<Vec<_>>());
    let ratio = ours / sp.max(1e-9);
    println!(
        "{:<34} {:>12} {:>12} {:>8}  target",
        "accuracy, 64 B x 1, TCP", "2x sockperf", "echo-client", "ratio"
    );
    println!(
        "{:<34} {sp:>12.2} {ours:>12.2} {ratio:>7.2}x  within 10%: {}",
        format!("RTT p50 µs ({ACCURACY_SECS}s runs)"),
        if (ratio - 1.0).abs() <= 0.10 {
            "MET"
        } else {
            "MISSED"
        }
    );
    let each: Vec<String> = accuracy
        .iter()
        .map(|(sp, ours)| format!("{sp:.1}/{ours:.1}"))
        .collect();
    println!(
        "  rounds (2x sockperf / echo-client µs): {}",
        each.join(", ")
    );
}
