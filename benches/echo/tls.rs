//! TLS rows (`cargo bench --bench echo -- tls`): asyncio-tool's `echo-server --tls` against
//! `socat OPENSSL-LISTEN:P,fork,cert=…,key=…,verify=0 PIPE` and
//! `ncat -l -k --ssl … --exec /bin/cat`, all serving the same certificate (made here with
//! rcgen), in alternating rounds with fresh server processes, medians and ratios:
//!
//! - bulk: 256 MiB full duplex through each server from the same client, our
//!   `echo-client --cafile CA tls:…`, every byte checked; a run that stops moving for
//!   [`STALL`] is reported as a deadlock (ncat's `--exec` relay does that on this machine);
//! - handshakes per second: connect, full handshake (no resumption), one 64-byte echo, close;
//!   sequentially and from 50 concurrent clients, driven by rustls on a tokio runtime here;
//! - 64 B × 50 ping-pong over TLS: messages per second and server CPU per message (socat's and
//!   ncat's children included);
//! - our client piping 256 MiB through our server against `socat -b 65536 - OPENSSL:…`.
//!
//! `ECHO_BENCH_ROUNDS` (default 3) sets the rounds, `ECHO_BENCH_TLS_MIB` (default 256) the
//! bulk size.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::{self, Contender, env_or, which};
use crate::server::{Pattern, children, free_port, median, schedstat_ns};

/// A bulk run that moves nothing for this long is a deadlock.
const STALL: Duration = Duration::from_secs(5);
/// How long each rate is measured, after a short warm-up.
const WARM: Duration = Duration::from_millis(300);
const MEASURE: Duration = Duration::from_millis(1500);
/// Concurrent clients in the concurrent handshake and ping-pong cases.
const CONNS: usize = 50;
const MSG: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ours,
    Socat,
    Ncat,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ours => "asyncio-tool --tls",
            Kind::Socat => "socat OPENSSL-LISTEN",
            Kind::Ncat => "ncat --ssl --exec cat",
        }
    }
}

/// The certificate every server serves and the client trusts.
struct Pki {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
    /// The server's certificate, which the handshake client pins.
    leaf: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &ca).unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.pem()).unwrap();
        Pki {
            _dir: dir,
            cert: cert_path,
            key: key_path,
            ca: ca_path,
            leaf: CertificateDer::from(cert.der().to_vec()),
        }
    }

    /// A client config pinning the server's certificate (as `echo-client --pin` does), with
    /// resumption off: every handshake is a full one. Pinned, not chain-verified: the
    /// client's CPU per handshake is what caps the rates on two cores, and a pin spares it a
    /// signature check and the path building while the server's work stays the same.
    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pinned = Arc::new(Pinned {
            leaf: self.leaf.clone(),
            algorithms: provider.signature_verification_algorithms,
        });
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(pinned)
            .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        Arc::new(config)
    }
}

/// Accepts exactly one certificate, and checks the handshake's signatures with it.
#[derive(Debug)]
struct Pinned {
    leaf: CertificateDer<'static>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the pinned certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS server process; killed (with its children) on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(kind: Kind, pki: &Pki) -> Server {
        let port = free_port();
        let (cert, key) = (pki.cert.display(), pki.key.display());
        let mut cmd = match kind {
            Kind::Ours => {
                let mut c = Command::new(crate::ours());
                c.args(["echo-server", "-q", "--tls", "--cert"])
                    .arg(&pki.cert)
                    .arg("--key")
                    .arg(&pki.key)
                    .arg("127.0.0.1:0");
                c
            }
            Kind::Socat => {
                let mut c = Command::new("socat");
                c.arg(format!(
                    "OPENSSL-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,backlog=4096,cert={cert},key={key},verify=0"
                ))
                .arg("PIPE");
                c
            }
            Kind::Ncat => {
                let mut c = Command::new("ncat");
                c.args(["-l", "127.0.0.1", &port.to_string(), "-k", "--ssl"])
                    .arg("--ssl-cert")
                    .arg(&pki.cert)
                    .arg("--ssl-key")
                    .arg(&pki.key)
                    .args(["--max-conns", "1000", "--exec", "/bin/cat"]);
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", kind.name()));
        let addr = if kind == Kind::Ours {
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            let bare = line.trim().trim_start_matches("tls:");
            bare.parse().unwrap_or_else(|_| panic!("printed {line:?}"))
        } else {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let start = Instant::now();
            while std::net::TcpStream::connect(addr).is_err() {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "{} did not start",
                    kind.name()
                );
                thread::sleep(Duration::from_millis(20));
            }
            addr
        };
        Server { child, addr }
    }

    /// CPU time of the server and its children, in nanoseconds: the live ones exactly (from
    /// schedstat), plus those already gone and reaped (the parent's cutime and cstime, in
    /// clock ticks): socat forks a child per connection, and a handshake's child is gone
    /// before the next look.
    fn cpu_ns(&self) -> u64 {
        let pid = self.child.id();
        let mut ns = schedstat_ns(pid).unwrap_or(0) + reaped_ns(pid);
        for child in children(pid) {
            ns += schedstat_ns(child).unwrap_or(0) + reaped_ns(child);
            ns += children(child)
                .into_iter()
                .filter_map(schedstat_ns)
                .sum::<u64>();
        }
        ns
    }
}

/// CPU time of `pid`'s children that have exited and been waited for (cutime + cstime).
fn reaped_ns(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some(rest) = stat.rfind(')').and_then(|i| stat.get(i + 2..)) else {
        return 0;
    };
    // After the command: state is field 3; cutime and cstime are fields 16 and 17.
    let field = |n: usize| -> u64 {
        rest.split_whitespace()
            .nth(n - 3)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    (field(16) + field(17)) * 1_000_000_000 / hz
}

impl Drop for Server {
    fn drop(&mut self) {
        for pid in children(self.child.id()) {
            for grandchild in children(pid) {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe { libc::kill(grandchild as i32, libc::SIGKILL) };
            }
            // SAFETY: as above.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Per server, one entry per round.
#[derive(Default, Clone)]
struct Results {
    bulk: Vec<f64>,
    /// Server CPU µs per MB echoed in the bulk run.
    bulk_cpu: Vec<f64>,
    stalled: Vec<String>,
    seq: Vec<f64>,
    conc: Vec<f64>,
    pp: Vec<f64>,
    cpu_us: Vec<f64>,
    hs_server_us: Vec<f64>,
    hs_client_us: Vec<f64>,
}

/// Runs the TLS rows.
pub fn run() {
    crate::server::raise_nofile();
    let rounds = env_or("ECHO_BENCH_ROUNDS", 3).max(1);
    let mib = env_or("ECHO_BENCH_TLS_MIB", 256).max(1);
    let pki = Pki::new();
    let mut kinds = vec![Kind::Ours];
    for (kind, program) in [(Kind::Socat, "socat"), (Kind::Ncat, "ncat")] {
        if which(program) {
            kinds.push(kind);
        } else {
            println!("note: {program} not installed; its rows are left out");
        }
    }
    // Both cores for the client: on two cores its CPU per handshake, not the server's, set the
    // pace of our rows on one thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = pki.client_config();
    let pattern = Arc::new(Pattern::new());
    let bytes = (mib << 20) as u64;
    let mut results = vec![Results::default(); kinds.len()];
    let started = Instant::now();
    for round in 0..rounds {
        eprintln!(
            "tls round {}/{rounds} ({:.0?} so far)",
            round + 1,
            started.elapsed()
        );
        let n = kinds.len();
        for k in 0..n {
            let i = (k + round) % n;
            let server = Server::start(kinds[i], &pki);
            let r = &mut results[i];
            r.seq.push(rt.block_on(handshakes(&server, &config, 1))[0]);
            let [rate, server_us, client_us] = rt.block_on(handshakes(&server, &config, CONNS));
            r.conc.push(rate);
            r.hs_server_us.push(server_us);
            r.hs_client_us.push(client_us);
            let (rate, cpu) = rt.block_on(ping_pong(&server, &config));
            r.pp.push(rate);
            r.cpu_us.push(cpu);
            // A server that deadlocked once is not run into the wall again.
            if r.stalled.is_empty() {
                match bulk(&server, &pki, &pattern, bytes) {
                    Ok((mbs, cpu)) => {
                        r.bulk.push(mbs);
                        r.bulk_cpu.push(cpu);
                    }
                    Err(why) => r.stalled.push(why),
                }
            }
        }
    }
    print_table(&kinds, &mut results, mib, rounds, started.elapsed());
    client_rows(&pki, mib, rounds);
}

/// Waits for socat's and ncat's children of the row before to exit and be reaped, so their
/// CPU is not counted in (or, gone between two looks, taken out of) the next row's.
fn settle() {
    thread::sleep(Duration::from_millis(500));
}

/// Handshakes per second from `clients` concurrent loops of: connect, handshake, 64-byte
/// echo, close.
/// Handshakes per second, and the server's and this client's CPU per handshake (µs): the
/// client's own cost shows whether it, not the server, set the pace.
async fn handshakes(
    server: &Server,
    config: &Arc<rustls::ClientConfig>,
    clients: usize,
) -> [f64; 3] {
    settle();
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (connector, addr) = (connector.clone(), server.addr);
            let (done, stop, measuring) =
                (Arc::clone(&done), Arc::clone(&stop), Arc::clone(&measuring));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    one_handshake(&connector, addr).await;
                    if measuring.load(Ordering::Relaxed) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(WARM).await;
    let me = std::process::id();
    let (server0, client0) = (server.cpu_ns(), schedstat_ns(me).unwrap_or(0));
    measuring.store(true, Ordering::Relaxed);
    let t = Instant::now();
    tokio::time::sleep(MEASURE).await;
    let count = done.load(Ordering::Relaxed);
    let elapsed = t.elapsed();
    let (server1, client1) = (server.cpu_ns(), schedstat_ns(me).unwrap_or(0));
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let per = |ns: u64| ns as f64 / 1e3 / count.max(1) as f64;
    [
        count as f64 / elapsed.as_secs_f64(),
        per(server1.saturating_sub(server0)),
        per(client1.saturating_sub(client0)),
    ]
}

async fn one_handshake(connector: &tokio_rustls::TlsConnector, addr: SocketAddr) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let msg = [7u8; MSG];
    tls.write_all(&msg).await.unwrap();
    let mut back = [0u8; MSG];
    tls.read_exact(&mut back).await.unwrap();
    assert_eq!(back, msg, "echo differs");
    let _ = tls.shutdown().await;
}

/// 50 connections each sending 64 bytes over TLS and waiting for them back: messages per
/// second, and server CPU microseconds per message.
async fn ping_pong(server: &Server, config: &Arc<rustls::ClientConfig>) -> (f64, f64) {
    settle();
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    let mut streams = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        streams.push(connector.connect(name, tcp).await.unwrap());
    }
    let phase = Arc::new(AtomicU64::new(0));
    let counted = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            let (phase, counted) = (Arc::clone(&phase), Arc::clone(&counted));
            tokio::spawn(async move {
                let msg = [i as u8; MSG];
                let mut back = [0u8; MSG];
                while phase.load(Ordering::Relaxed) < 2 {
                    s.write_all(&msg).await.unwrap();
                    s.read_exact(&mut back).await.unwrap();
                    if phase.load(Ordering::Relaxed) == 1 {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                assert_eq!(back, msg, "echo differs");
                let _ = s.shutdown().await;
            })
        })
        .collect();
    tokio::time::sleep(WARM).await;
    settle();
    let cpu0 = server.cpu_ns();
    phase.store(1, Ordering::Relaxed);
    let t = Instant::now();
    tokio::time::sleep(MEASURE).await;
    // Read before the clients stop: on the multi-thread runtime they close at once, and a
    // forking server's children would be gone (and their CPU with them) before the look.
    let msgs = counted.load(Ordering::Relaxed);
    let elapsed = t.elapsed();
    let cpu1 = server.cpu_ns();
    phase.store(2, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let rate = msgs as f64 / elapsed.as_secs_f64();
    (
        rate,
        cpu1.saturating_sub(cpu0) as f64 / 1e3 / msgs.max(1) as f64,
    )
}

/// `bytes` full duplex through the server from our own client (`echo-client --cafile CA
/// tls:ADDR`, the same for every server), every byte checked: MB/s, or why it failed (a
/// stall is a deadlock: the client is killed). Our client, not socat's: on two cores the
/// client's share of the CPU caps what any server can show, and ours uses the least of the
/// two (its own rows below), so the server is what differs.
/// Also the server's CPU per MB, which the client's share of the two cores does not blur.
fn bulk(
    server: &Server,
    pki: &Pki,
    pattern: &Arc<Pattern>,
    bytes: u64,
) -> Result<(f64, f64), String> {
    let cpu0 = server.cpu_ns();
    let mut child = Command::new(crate::ours())
        .args(["echo-client", "-q", "--cafile"])
        .arg(&pki.ca)
        .arg(format!("tls:{}", server.addr))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let writer = {
        let pattern = Arc::clone(pattern);
        // A failed write: the client went away, which the reader reports.
        thread::spawn(move || {
            let _ = pattern.write_to(&mut stdin, bytes);
        })
    };
    let progress = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let reader = {
        let (pattern, progress, finished) = (
            Arc::clone(pattern),
            Arc::clone(&progress),
            Arc::clone(&finished),
        );
        thread::spawn(move || {
            let mut buf = vec![0u8; 256 << 10];
            let mut off = 0u64;
            let mut same = true;
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                let mut at = 0;
                pattern.segments(off, n, |s| {
                    same &= buf[at..at + s.len()] == *s;
                    at += s.len();
                });
                off += n as u64;
                progress.store(off, Ordering::Relaxed);
            }
            finished.store(true, Ordering::Release);
            (off, same)
        })
    };
    let mut last = (0, Instant::now());
    while !finished.load(Ordering::Acquire) {
        thread::sleep(Duration::from_millis(20));
        let now = progress.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > STALL {
            let _ = child.kill();
            let _ = child.wait();
            let _ = writer.join();
            let _ = reader.join();
            return Err(format!(
                "stalled (deadlock): no byte for {STALL:?} after {now} of {bytes} bytes"
            ));
        }
    }
    let (got, same) = reader.join().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let _ = writer.join();
    let status = child.wait().unwrap();
    match (got == bytes, same, status.success()) {
        (true, true, true) => {
            let cpu = server.cpu_ns().saturating_sub(cpu0) as f64 / 1e3;
            Ok((bytes as f64 / 1e6 / secs, cpu / (bytes as f64 / 1e6)))
        }
        (false, ..) => Err(format!("short echo: {got} of {bytes} bytes")),
        (_, false, _) => Err("echo differs".into()),
        (.., false) => Err(format!("client failed: {status}")),
    }
}

fn print_table(kinds: &[Kind], results: &mut [Results], mib: usize, rounds: usize, took: Duration) {
    println!();
    println!(
        "TLS echo servers, {rounds} alternating rounds (medians; ratio = ours / theirs), {took:.0?}"
    );
    println!(
        "{:<24} {:>12} {:>10} {:>10} {:>12} {:>18} {:>12} {:>11}",
        "server",
        format!("bulk {mib}MiB"),
        "us/MB srv",
        "hs/s seq",
        format!("hs/s x{CONNS}"),
        "CPU us/hs srv|cli",
        format!("64B x{CONNS} m/s"),
        "CPU us/msg"
    );
    let med: Vec<[f64; 8]> = results
        .iter_mut()
        .map(|r| {
            [
                median(&mut r.bulk),
                median(&mut r.seq),
                median(&mut r.conc),
                median(&mut r.pp),
                median(&mut r.cpu_us),
                median(&mut r.hs_server_us),
                median(&mut r.hs_client_us),
                median(&mut r.bulk_cpu),
            ]
        })
        .collect();
    for (i, kind) in kinds.iter().enumerate() {
        let m = med[i];
        let bulk = if results[i].bulk.is_empty() {
            "deadlock".to_string()
        } else {
            format!("{:.0} MB/s", m[0])
        };
        println!(
            "{:<24} {:>12} {:>10.0} {:>10.0} {:>12.0} {:>18} {:>12.0} {:>11.1}",
            kind.name(),
            bulk,
            m[7],
            m[1],
            m[2],
            format!("{:.0} | {:.0}", m[5], m[6]),
            m[3],
            m[4]
        );
        for why in &results[i].stalled {
            println!("  {}: bulk {why}", kind.name());
        }
    }
    let ours = med[0];
    for (i, kind) in kinds.iter().enumerate().skip(1) {
        let m = med[i];
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}x", a / b)
            } else {
                "-".into()
            }
        };
        let verdict = |a: f64, b: f64, want: f64| {
            if b <= 0.0 || a / b >= want {
                "met"
            } else {
                "NOT met"
            }
        };
        println!(
            "vs {:<21} bulk {} (target 2x: {}), hs/s seq {} (10x: {}), x{CONNS} {} (10x: {}), 64B x{CONNS} {} (2x: {})",
            kind.name(),
            ratio(ours[0], m[0]),
            verdict(ours[0], m[0], 2.0),
            ratio(ours[1], m[1]),
            verdict(ours[1], m[1], 10.0),
            ratio(ours[2], m[2]),
            verdict(ours[2], m[2], 10.0),
            ratio(ours[3], m[3]),
            verdict(ours[3], m[3], 2.0),
        );
    }
}

/// Our client against socat's, each piping `mib` MiB through our TLS server.
fn client_rows(pki: &Pki, mib: usize, rounds: usize) {
    let server = Server::start(Kind::Ours, pki);
    let target = format!("tls:{}", server.addr);
    let ours = crate::ours();
    let mut contenders = vec![Contender::new(
        "asyncio-tool echo-client",
        ours,
        &[
            "echo-client",
            "-q",
            "--cafile",
            pki.ca.to_str().unwrap(),
            &target,
        ],
    )];
    if which("socat") {
        let addr = format!("OPENSSL:{},verify=0", server.addr);
        contenders.push(Contender::new(
            "socat -b 65536 - OPENSSL:",
            "socat",
            &["-b", "65536", "-t", "30", "-", &addr],
        ));
    }
    println!();
    println!("TLS echo clients: {mib} MiB through our TLS server, {rounds} alternating rounds");
    client::race(&mut contenders, mib, rounds);
    client::report("TLS ", &contenders, (mib * client::BLOCK) as u64);
}
