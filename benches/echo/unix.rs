//! Unix-domain socket rows: asyncio-tool's echo server on `unix:PATH` against
//! `socat UNIX-LISTEN:PATH,fork PIPE`, and asyncio-tool's echo client through our server on
//! `unix:PATH` against `socat -t 60 - UNIX-CONNECT:PATH` and `nc.openbsd -N -U PATH`, with
//! our server's TCP figures from the same run for the "Unix beats our own TCP" target.
//!
//! Same method as the TCP halves: alternating rounds with fresh server processes, medians,
//! every byte verified, every run bounded. Socket files live in a fresh temporary directory,
//! removed at the end (also on a panic). `ECHO_BENCH_ROUNDS` (default 5) sets the rounds,
//! `ECHO_BENCH_QUICK=1` skips the bulk case, `ECHO_BENCH_MIB` (default 1024) sizes both
//! the bulk case and the client's stream.

use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{self, BLOCK, Contender, env_or, which};
use crate::server::{self, Kind, Pattern, PingPong, Server, median};

/// Ping-pong shape with a target: 50 connections, 64 bytes each way.
const PP_CONNS: usize = 50;
const PP_SIZE: usize = 64;

/// One server under test in the server rows.
#[derive(Clone, Copy)]
struct Setup {
    kind: Kind,
    unix: bool,
}

impl Setup {
    fn transport(self) -> &'static str {
        if self.unix { "unix" } else { "tcp" }
    }
}

/// Runs the Unix rows of the server half, then of the client half.
pub fn run() {
    let rounds = env_or("ECHO_BENCH_ROUNDS", 5).max(1);
    let mib = env_or("ECHO_BENCH_MIB", 1024).max(1);
    let quick = std::env::var_os("ECHO_BENCH_QUICK").is_some();
    let dir = tempfile::Builder::new()
        .prefix("echo-bench-")
        .tempdir()
        .unwrap();
    server_rows(dir.path(), rounds, mib, quick);
    client_rows(dir.path(), rounds, mib);
}

fn server_rows(dir: &Path, rounds: usize, mib: usize, quick: bool) {
    let mut setups = vec![Setup {
        kind: Kind::Ours,
        unix: true,
    }];
    if which("socat") {
        setups.push(Setup {
            kind: Kind::Socat,
            unix: true,
        });
    } else {
        println!("note: socat not installed; its rows are left out");
    }
    setups.push(Setup {
        kind: Kind::Ours,
        unix: false,
    });
    let bytes = (mib * BLOCK) as u64;
    let pattern = Arc::new(Pattern::new());
    let mut pp: Vec<Vec<PingPong>> = vec![Vec::new(); setups.len()];
    let mut bulk: Vec<Vec<f64>> = vec![Vec::new(); setups.len()];
    let mut stalled = vec![0usize; setups.len()];
    let started = Instant::now();
    for round in 0..rounds {
        eprintln!(
            "unix server round {}/{rounds} ({:.0?} so far)",
            round + 1,
            started.elapsed()
        );
        // Fresh processes and fresh socket names each round: a killed server leaves its
        // socket file behind.
        let servers: Vec<Server> = setups
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let path = dir.join(format!("s{round}-{i}.sock"));
                Server::start_on(s.kind, s.unix.then_some(path.as_path()))
            })
            .collect();
        let order: Vec<usize> = (0..setups.len())
            .map(|i| (i + round) % setups.len())
            .collect();
        for &s in &order {
            pp[s].push(server::ping_pong(&servers[s], PP_CONNS, PP_SIZE));
            thread::sleep(Duration::from_millis(200));
        }
        if quick {
            continue;
        }
        for &s in &order {
            match server::bulk(&servers[s], &pattern, bytes) {
                Some(mbs) => bulk[s].push(mbs),
                None => stalled[s] += 1,
            }
        }
    }
    let table = ServerTable {
        setups: &setups,
        pp: &pp,
        bulk: &bulk,
        stalled: &stalled,
        rounds,
        mib,
    };
    table.print(started.elapsed());
}

/// The server rows' results, per setup, one entry per round.
struct ServerTable<'a> {
    setups: &'a [Setup],
    pp: &'a [Vec<PingPong>],
    bulk: &'a [Vec<f64>],
    stalled: &'a [usize],
    rounds: usize,
    mib: usize,
}

impl ServerTable<'_> {
    fn find(&self, kind: Kind, unix: bool) -> Option<usize> {
        self.setups
            .iter()
            .position(|s| s.kind == kind && s.unix == unix)
    }

    fn print(&self, took: Duration) {
        let ours = self.find(Kind::Ours, true).unwrap();
        let socat = self.find(Kind::Socat, true);
        let tcp = self.find(Kind::Ours, false).unwrap();
        let pp: Vec<PingPong> = self.pp.iter().map(|r| PingPong::median_of(r)).collect();
        println!();
        println!(
            "echo server over Unix sockets: medians of {} alternating rounds, {took:.0?} total",
            self.rounds
        );
        println!(
            "{:<24} {:<5} {:<13} {:>9} {:>15} {:>7} {:>10} {:>8} {:>10}",
            "case",
            "via",
            "server",
            "msgs/s",
            "rounds min-max",
            "p99 µs",
            "CPU µs/msg",
            "vs socat",
            "vs our TCP"
        );
        let pp_name = format!("ping-pong {PP_SIZE} B x {PP_CONNS}");
        for (s, setup) in self.setups.iter().enumerate() {
            let (lo, hi) = spread(self.pp[s].iter().map(|p| p.msgs_per_s));
            println!(
                "{:<24} {:<5} {:<13} {:>9.0} {:>15} {:>7.0} {:>10.2} {:>8} {:>10}",
                pp_name,
                setup.transport(),
                setup.kind.name(),
                pp[s].msgs_per_s,
                format!("{lo:.0}-{hi:.0}"),
                pp[s].p99_us,
                pp[s].cpu_us_per_msg,
                ratio(s, socat, |i| pp[i].msgs_per_s),
                ratio(s, Some(tcp), |i| pp[i].msgs_per_s),
            );
        }
        let mut verdicts = Vec::new();
        if let Some(so) = socat {
            let r = pp[ours].msgs_per_s / pp[so].msgs_per_s.max(1e-9);
            verdicts.push(format!(
                "unix {pp_name}: {r:.2}x socat msgs/s (target >= 1.5x): {}; CPU/msg {:.2} vs socat's {:.2} µs",
                met(r >= 1.5),
                pp[ours].cpu_us_per_msg,
                pp[so].cpu_us_per_msg
            ));
        }
        if !self.bulk.iter().all(Vec::is_empty) {
            self.print_bulk(ours, socat, tcp, &mut verdicts);
        }
        println!();
        println!("targets:");
        for v in verdicts {
            println!("  {v}");
        }
    }

    fn print_bulk(
        &self,
        ours: usize,
        socat: Option<usize>,
        tcp: usize,
        verdicts: &mut Vec<String>,
    ) {
        let name = if self.mib == 1024 {
            "bulk 1 GiB full duplex".to_string()
        } else {
            format!("bulk {} MiB full duplex", self.mib)
        };
        let med: Vec<f64> = self.bulk.iter().map(|v| median(&mut v.clone())).collect();
        for (s, setup) in self.setups.iter().enumerate() {
            if self.stalled[s] > 0 {
                println!(
                    "({} {}: bulk stalled in {} of {} rounds; median of the rest)",
                    setup.kind.name(),
                    setup.transport(),
                    self.stalled[s],
                    self.rounds
                );
            }
        }
        for (s, setup) in self.setups.iter().enumerate() {
            let (lo, hi) = spread(self.bulk[s].iter().copied());
            println!(
                "{:<24} {:<5} {:<13} {:>9} {:>15} {:>7} {:>10} {:>8} {:>10}",
                name,
                setup.transport(),
                setup.kind.name(),
                format!("{:.0} MB/s", med[s]),
                format!("{lo:.0}-{hi:.0}"),
                "",
                "",
                ratio(s, socat, |i| med[i]),
                ratio(s, Some(tcp), |i| med[i]),
            );
        }
        if let Some(so) = socat {
            let r = med[ours] / med[so].max(1e-9);
            // A stalled socat run has no figure: say on how many runs its median rests.
            verdicts.push(format!(
                "unix bulk: {r:.2}x socat MB/s, every byte verified (target >= 3x): {} (socat completed {} of {} runs)",
                met(r >= 3.0),
                self.bulk[so].len(),
                self.rounds
            ));
        }
        let r = med[ours] / med[tcp].max(1e-9);
        verdicts.push(format!(
            "unix bulk: {r:.2}x our TCP bulk MB/s, same run (target >= 1.0x): {}",
            met(r >= 1.0)
        ));
    }
}

/// `s`'s figure over `other`'s, or "-" when there is no other or it is `s` itself.
fn ratio(s: usize, other: Option<usize>, fig: impl Fn(usize) -> f64) -> String {
    match other {
        Some(o) if o != s => format!("{:.2}x", fig(s) / fig(o).max(1e-9)),
        _ => "-".into(),
    }
}

fn spread(v: impl Iterator<Item = f64>) -> (f64, f64) {
    v.fold((f64::INFINITY, 0.0), |(lo, hi), x| (lo.min(x), hi.max(x)))
}

fn met(ok: bool) -> &'static str {
    if ok { "MET" } else { "MISSED" }
}

/// The client rows: every client piping `mib` MiB through one asyncio-tool server on Unix.
fn client_rows(dir: &Path, rounds: usize, mib: usize) {
    let server = Server::start_on(Kind::Ours, Some(&dir.join("client.sock")));
    let endpoint = server.addr.arg();
    let path = endpoint.trim_start_matches("unix:").to_string();
    let ours = crate::ours();
    let mut contenders = vec![Contender::new(
        "asyncio-tool echo-client",
        ours,
        &["echo-client", "-q", &endpoint],
    )];
    let socat_addr = format!("UNIX-CONNECT:{path}");
    for (label, program, args) in [
        (
            "socat -t 60 - UNIX-CONNECT",
            "socat",
            vec!["-t", "60", "-", &socat_addr],
        ),
        (
            "nc.openbsd -N -U PATH",
            "nc.openbsd",
            vec!["-N", "-U", &path],
        ),
    ] {
        if which(program) {
            contenders.push(Contender::new(label, program, &args));
        } else {
            println!("note: {program} not installed; it is left out");
        }
    }
    println!();
    println!(
        "echo client over Unix: {mib} MiB through asyncio-tool echo-server on {endpoint}, {rounds} alternating rounds"
    );
    client::race(&mut contenders, mib, rounds);
    client::report("unix client ", &contenders, (mib * BLOCK) as u64);
}
