//! `echo-client`'s measuring modes (issue #12): `--verify` against servers that damage the
//! echo, probe mode (`--count`) and load mode (`--connections`, `--rate`, `--json`) against our
//! own server and against one that stops answering; each over TCP, a Unix socket and UDP. The
//! damaging servers are written here, one thread per connection (one socket for UDP).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::util::{
    EchoServer, KillOnDrop, assert_no_panic, eventually, output_timeout, output_with_input,
    random_bytes, signal, std_tool, wait_timeout,
};

/// Bound for anything that should take well under a second.
const PROMPT: Duration = Duration::from_secs(10);
/// Bound for a run of a few seconds (debug build, busy machine).
const RUN: Duration = Duration::from_secs(30);

/// The transports every test runs over.
#[derive(Clone, Copy, Debug)]
enum Net {
    Tcp,
    Unix,
    Udp,
}

/// The stream transports, which the connection-serving test servers speak.
const NETS: [Net; 2] = [Net::Tcp, Net::Unix];
/// Every transport, for the tests against our own server.
const EVERY: [Net; 3] = [Net::Tcp, Net::Unix, Net::Udp];

/// A connection accepted by a test server.
trait Conn: Read + Write + Send {
    fn close_write(&self);
}

impl Conn for std::net::TcpStream {
    fn close_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl Conn for std::os::unix::net::UnixStream {
    fn close_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

/// A test server: its address as the client takes it, and the directory of its socket.
struct TestServer {
    addr: String,
    _dir: tempfile::TempDir,
}

/// Serves every connection with `serve` on its own thread, over `net`. The accept loop is
/// left behind when the test ends (the test process exits with it).
fn test_server(net: Net, serve: impl Fn(&mut dyn Conn) + Send + Sync + 'static) -> TestServer {
    let serve = Arc::new(serve);
    let dir = tempfile::tempdir().unwrap();
    let addr = match net {
        Net::Tcp => {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap().to_string();
            thread::spawn(move || {
                for mut c in l.incoming().flatten() {
                    let serve = Arc::clone(&serve);
                    thread::spawn(move || serve(&mut c));
                }
            });
            addr
        }
        Net::Unix => {
            let path = dir.path().join("s.sock");
            let l = UnixListener::bind(&path).unwrap();
            thread::spawn(move || {
                for mut c in l.incoming().flatten() {
                    let serve = Arc::clone(&serve);
                    thread::spawn(move || serve(&mut c));
                }
            });
            format!("unix:{}", path.display())
        }
        Net::Udp => panic!("a UDP test server answers datagrams: udp_test_server"),
    };
    TestServer { addr, _dir: dir }
}

/// A UDP test server: `answer` gets each datagram with its number (from 0) and says what to
/// send back, if anything. The thread is left behind when the test ends.
fn udp_test_server(answer: impl Fn(u64, &[u8]) -> Option<Vec<u8>> + Send + 'static) -> TestServer {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = format!("udp:{}", socket.local_addr().unwrap());
    thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        for n in 0.. {
            let Ok((len, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            if let Some(reply) = answer(n, &buf[..len]) {
                let _ = socket.send_to(&reply, from);
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    TestServer { addr, _dir: dir }
}

/// Echoes what it reads, passing each byte through `change` with its offset first (which
/// returns the bytes to send for it), then half-closes at the end of input.
fn echo_with(c: &mut dyn Conn, change: impl Fn(u64, u8) -> Vec<u8>) {
    let mut buf = [0u8; 8192];
    let mut off = 0u64;
    loop {
        let n = match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut out = Vec::with_capacity(n + 8);
        for &b in &buf[..n] {
            out.extend(change(off, b));
            off += 1;
        }
        if c.write_all(&out).is_err() {
            return;
        }
    }
    c.close_write();
}

/// How a test server treats a connection.
type Serve = fn(&mut dyn Conn);

/// Where the damaging servers strike, well inside the input and past the first chunk.
const AT: u64 = 200_000;
const INPUT: usize = 300_000;

fn flips_one_byte(c: &mut dyn Conn) {
    echo_with(c, |off, b| vec![if off == AT { b ^ 0x20 } else { b }]);
}

fn drops_the_tail(c: &mut dyn Conn) {
    echo_with(c, |off, b| if off < AT { vec![b] } else { vec![] });
}

fn inserts_bytes(c: &mut dyn Conn) {
    echo_with(c, |off, b| if off == AT { vec![b'X', b] } else { vec![b] });
}

/// `echo-client ARGS` with `input` on stdin.
fn client_with_input(args: &[&str], input: &[u8]) -> Output {
    let cmd = std_tool(std::iter::once("echo-client").chain(args.iter().copied()));
    output_with_input(cmd, input, RUN)
}

/// `echo-client ARGS` with no stdin (the measuring modes read none).
fn client(args: &[&str]) -> Output {
    let child = std_tool(std::iter::once("echo-client").chain(args.iter().copied()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    output_timeout(child, RUN)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `--verify` names the first byte that differs, while still printing every reply.
#[test]
fn verify_catches_a_flipped_byte_a_short_reply_and_inserted_bytes() {
    let input = random_bytes(INPUT, 12);
    for net in NETS {
        let cases: [(Serve, String); 3] = [
            (
                flips_one_byte,
                format!("reply differs from what was sent at byte {}", AT + 1),
            ),
            (
                drops_the_tail,
                format!("server closed after {AT} of {INPUT} bytes"),
            ),
            (
                inserts_bytes,
                format!("reply differs from what was sent at byte {}", AT + 1),
            ),
        ];
        for (serve, want) in cases {
            let server = test_server(net, serve);
            let out = client_with_input(&["--verify", &server.addr], &input);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{net:?} {want}: {err}");
            assert!(err.contains(&want), "{net:?}: want {want:?}, got {err}");
            assert_no_panic(&out.stderr);
            // Replies are still printed: what the server sent, up to where it differs.
            assert_eq!(out.stdout[..AT as usize], input[..AT as usize], "{net:?}");
        }
    }
}

/// `--verify` with an honest server passes, with the bytes on stdout, through our server and
/// more data than the window holds.
#[test]
fn verify_passes_an_exact_echo() {
    let input = random_bytes(3 << 20, 13);
    for net in NETS {
        let (server, addr) = our_server(net);
        let out = client_with_input(&["--verify", &addr], &input);
        assert!(out.status.success(), "{net:?}: {}", text(&out.stderr));
        assert!(out.stdout == input, "{net:?}: output differs");
        drop(server);
    }
}

/// Our echo server on `net`, and its address.
fn our_server(net: Net) -> (EchoServer, String) {
    let dir = tempfile::tempdir().unwrap();
    let listen = match net {
        Net::Tcp => "127.0.0.1:0".to_owned(),
        Net::Unix => format!("unix:{}", dir.path().join("echo.sock").display()),
        Net::Udp => "udp:127.0.0.1:0".to_owned(),
    };
    let mut server = EchoServer::launch(std_tool(["echo-server", "-q", &listen]));
    let addr = server.await_line(PROMPT).to_owned();
    // The socket file lives as long as the server: the directory goes with the test process.
    std::mem::forget(dir);
    (server, addr)
}

/// A probe line as ping prints it: `64 bytes from ADDR: seq=N time=T ms`.
fn is_probe_line(line: &str, size: usize, seq: u64) -> bool {
    let Some(rest) = line.strip_prefix(&format!("{size} bytes from ")) else {
        return false;
    };
    let Some((_, rest)) = rest.split_once(&format!(": seq={seq} ")) else {
        return false;
    };
    rest.strip_prefix("time=")
        .and_then(|t| t.strip_suffix(" ms"))
        .is_some_and(|t| t.parse::<f64>().is_ok_and(|ms| ms >= 0.0))
}

#[test]
fn probe_against_our_server_prints_a_line_per_reply_and_a_summary() {
    for net in EVERY {
        let (server, addr) = our_server(net);
        let out = client(&["--count", "3", "--interval", "20ms", "--size", "100", &addr]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{net:?}: {}", text(&out.stderr));
        let lines: Vec<&str> = stdout.lines().collect();
        // After the header line (issue 20).
        for (seq, line) in (1..=3).zip(&lines[1..]) {
            assert!(is_probe_line(line, 100, seq), "{stdout}");
        }
        assert!(
            stdout.contains("3 sent, 3 received, 0 lost, 0 mismatched"),
            "{stdout}"
        );
        // After an empty line, as ping's: an echoed ^C does not run into it.
        assert_eq!(
            lines[4..6],
            ["", &format!("--- {addr} echo statistics ---")]
        );
        assert!(stdout.contains("rtt min/avg/max/mdev = "), "{stdout}");
        assert!(stdout.contains("rtt p50/p90/p99 = "), "{stdout}");
        // --new-connection: the connect time apart, in the lines and the summary.
        let out = client(&[
            "--count",
            "2",
            "--interval",
            "10ms",
            "--new-connection",
            &addr,
        ]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{net:?}: {}", text(&out.stderr));
        assert!(stdout.contains("seq=2 connect="), "{stdout}");
        assert!(stdout.contains("connect min/avg/max/mdev = "), "{stdout}");
        drop(server);
    }
}

/// A server that echoes the first three 64-byte messages of its life, then reads and drops
/// everything, answering nothing, on that and every later connection.
fn stops_answering() -> impl Fn(&mut dyn Conn) + Send + Sync + 'static {
    let echoed = Arc::new(AtomicU64::new(0));
    move |c| answer_three(c, &echoed)
}

fn answer_three(c: &mut dyn Conn, echoed: &AtomicU64) {
    let mut buf = [0u8; 64];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let before = echoed.fetch_add(n as u64, Ordering::SeqCst);
                let echo = (3 * 64u64).saturating_sub(before).min(n as u64) as usize;
                if c.write_all(&buf[..echo]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Probes 5 times, 500 ms each, a server that answers only the first three: the probe lines,
/// the two lost ones and the summary; returns the run for what else the caller checks.
fn probe_three_answered_two_lost(addr: &str, label: &str) -> Output {
    let out = client(&[
        "--count",
        "5",
        "--interval",
        "20ms",
        "--timeout",
        "500ms",
        addr,
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{label}: {stdout}");
    for seq in 1..=3 {
        assert!(stdout.contains(&format!("seq={seq} time=")), "{stdout}");
    }
    for seq in 4..=5 {
        assert!(
            stdout.contains(&format!(": seq={seq}: no echo within 500ms")),
            "{label}: {stdout}"
        );
    }
    assert!(
        stdout.contains("5 sent, 3 received, 2 lost, 0 mismatched"),
        "{stdout}"
    );
    out
}

#[test]
fn probe_reports_each_lost_reply_and_goes_on() {
    for net in NETS {
        let server = test_server(net, stops_answering());
        let out = probe_three_answered_two_lost(&server.addr, &format!("{net:?}"));
        assert!(
            text(&out.stderr).contains("2 of 5 messages lost\n"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// The summary of a `--json` run, parsed.
fn json(out: &Output) -> serde_json::Value {
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing: {v}"))
}

/// Every message accounted for, sane figures, p50 <= p99 <= max.
fn assert_sane(v: &serde_json::Value) {
    assert_eq!(
        num(v, "sent"),
        num(v, "received") + num(v, "lost"),
        "sent = received + lost: {v}"
    );
    let rtt = &v["rtt_ms"];
    let (p50, p99, max) = (num(rtt, "p50"), num(rtt, "p99"), num(rtt, "max"));
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max * 1.001, "{v}");
}

#[test]
fn load_with_json_accounts_for_every_message() {
    for net in EVERY {
        let (server, addr) = our_server(net);
        let out = client(&[
            "--connections",
            "4",
            "--duration",
            "1s",
            "--size",
            "1KiB",
            "--json",
            &addr,
        ]);
        assert!(out.status.success(), "{net:?}: {}", text(&out.stderr));
        let v = json(&out);
        assert_sane(&v);
        assert_eq!(v["mode"], "load");
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["interrupted"], false, "{v}");
        assert_eq!(num(&v, "lost") + num(&v, "mismatched"), 0.0, "{v}");
        assert_eq!(num(&v, "connections_up"), 4.0, "{v}");
        assert!(
            num(&v, "sent") > 100.0 && num(&v, "msgs_per_s") > 0.0,
            "{v}"
        );
        assert!(v["errors"].as_object().unwrap().is_empty(), "{v}");
        // The text report has the same parts.
        let out = client(&["--connections", "2", "--duration", "300ms", &addr]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains("connections: 2 up, 0 failed"), "{stdout}");
        assert!(
            stdout.contains("latency p50/p90/p99/p99.9/max = "),
            "{stdout}"
        );
        assert!(stdout.contains("errors: none"), "{stdout}");
        drop(server);
    }
}

/// Against a server that answers nothing, every message is lost, counted, and the run fails.
/// (The run is shorter than `--timeout`, so each connection sends one message: after a
/// timeout within the run a connection goes on over a new one.)
#[test]
fn load_against_a_silent_server_fails_with_errors_by_kind() {
    fn silent(c: &mut dyn Conn) {
        let mut buf = [0u8; 4096];
        while matches!(c.read(&mut buf), Ok(1..)) {}
    }
    for net in NETS {
        let server = test_server(net, silent);
        let out = client(&[
            "--connections",
            "3",
            "--duration",
            "150ms",
            "--timeout",
            "200ms",
            "--json",
            &server.addr,
        ]);
        assert_eq!(out.status.code(), Some(1), "{net:?}: {}", text(&out.stderr));
        let v = json(&out);
        assert_eq!(num(&v, "sent"), num(&v, "received") + num(&v, "lost"));
        assert_eq!(num(&v, "lost"), 3.0, "{v}");
        assert_eq!(v["errors"]["timeout"], 3, "{v}");
        assert_eq!(v["ok"], false);
        assert!(
            text(&out.stderr).contains("3 of 3 messages lost"),
            "{}",
            text(&out.stderr)
        );
        // With --rate, the failure is the reason given, not a rate that could not be kept.
        let out = client(&[
            "--connections",
            "2",
            "--duration",
            "80ms",
            "--timeout",
            "100ms",
            "--rate",
            "100",
            &server.addr,
        ]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{net:?}: {err}");
        assert!(err.contains("2 of 2 messages lost"), "{net:?}: {err}");
        assert!(!err.contains("not reached"), "{net:?}: {err}");
    }
}

/// `--rate` holds its rate: the messages sent over 3 s, from the JSON counts.
#[test]
fn rate_holds_within_five_percent() {
    for net in EVERY {
        let (server, addr) = our_server(net);
        let out = client(&[
            "--connections",
            "4",
            "--duration",
            "3s",
            "--rate",
            "300",
            "--json",
            &addr,
        ]);
        assert!(out.status.success(), "{net:?}: {}", text(&out.stderr));
        let v = json(&out);
        assert_sane(&v);
        let rate = num(&v, "sent") / 3.0;
        assert!(
            (rate - 300.0).abs() <= 15.0,
            "{net:?}: {rate} msgs/s for 300: {v}"
        );
        assert_eq!(num(&v, "rate"), 300.0);
        // And as the run measured it: replies over its own duration.
        let achieved = num(&v, "msgs_per_s");
        assert!(
            (achieved - 300.0).abs() <= 15.0,
            "{net:?}: {achieved} msgs/s achieved: {v}"
        );
        drop(server);
    }
}

/// Ctrl-C in probe mode prints the summary; a reply came, so the status is 0, as ping's.
#[test]
fn ctrl_c_in_probe_mode_prints_the_summary() {
    for net in EVERY {
        let (server, addr) = our_server(net);
        let mut child = std_tool(["echo-client", "--count", "0", "--interval", "20ms", &addr])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let seen = collect(child.stdout.take().unwrap());
        let mut child = KillOnDrop(child);
        assert!(
            eventually(PROMPT, || text(&seen.lock().unwrap()).contains("seq=3 ")),
            "{net:?}: no third probe"
        );
        signal(&child.0, libc::SIGINT);
        let status = wait_timeout(&mut child.0, PROMPT);
        // The summary is written before the exit; the pipe's last bytes may still be on the
        // collecting thread's way.
        let summarised = || text(&seen.lock().unwrap()).contains(" mismatched");
        assert!(eventually(PROMPT, summarised), "{net:?}: no summary");
        let out = text(&seen.lock().unwrap());
        assert_eq!(status.code(), Some(0), "{net:?}: {out}");
        assert!(out.contains("echo statistics ---"), "{out}");
        assert!(out.contains(" lost, 0 mismatched"), "{out}");
        drop(server);
    }
}

/// Nonsense combinations are usage errors naming the conflict.
#[test]
fn nonsense_combinations_are_usage_errors() {
    for (args, want) in [
        (
            &["--count", "3", "--connections", "2"][..],
            "'--count <N>' cannot be used with '--connections <C>'",
        ),
        (&["--json"], "--count <N>|--connections <C>"),
        (&["--json"], "'--json' prints the summary of a mode"),
        (
            &["--size", "1G", "--count", "1"],
            "'1G': too large (at most 16MiB)",
        ),
        (
            &["--size", "1GiB", "--count", "1"],
            "'1GiB': too large (at most 16MiB)",
        ),
        (
            &["--rate", "10", "--count", "3"],
            "'--rate <R>' cannot be used with '--count <N>'",
        ),
        (&["--rate", "10"], "--connections <C>"),
        (
            &["--verify", "--count", "3"],
            "'--verify' cannot be used with '--count <N>'",
        ),
        (
            &["--count", "3", "--idle-timeout", "1s"],
            "'--count <N>' cannot be used with '--idle-timeout",
        ),
        (&["--size", "0", "--count", "1"], "at least 1 byte"),
    ] {
        let mut all = vec!["echo-client"];
        all.extend_from_slice(args);
        all.push("127.0.0.1:9");
        let out = std_tool(&all).stdin(Stdio::null()).output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// `--verify` holds at most its window of unechoed bytes: against a server that reads all
/// and echoes nothing, sending stops once the window is full, whatever the input's size.
#[test]
fn verify_memory_is_bounded_by_its_window() {
    fn swallows(c: &mut dyn Conn) {
        let mut buf = [0u8; 65536];
        while matches!(c.read(&mut buf), Ok(1..)) {}
    }
    let input = random_bytes(20 << 20, 14);
    for net in NETS {
        let server = test_server(net, swallows);
        let out = client_with_input(
            &["--verify", "--idle-timeout", "500ms", &server.addr],
            &input,
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{net:?}: {err}");
        assert!(err.contains("echoes nothing back"), "{net:?}: {err}");
        let sent: u64 = err
            .split(" bytes sent")
            .next()
            .and_then(|head| head.rsplit(['(', ' ']).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no sent count: {err}"));
        assert!(
            sent <= 1 << 20,
            "{net:?}: {sent} bytes sent unechoed: {err}"
        );
    }
}

/// Ctrl-C in load mode ends the run early with the whole report: every message accounted for.
#[test]
fn ctrl_c_in_load_mode_ends_it_with_the_report() {
    for net in EVERY {
        let (server, addr) = our_server(net);
        let mut child = std_tool([
            "echo-client",
            "--connections",
            "3",
            "--duration",
            "60s",
            "--json",
            "--progress",
            &addr,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut child = KillOnDrop(child);
        let reader = thread::spawn(move || {
            let mut all = Vec::new();
            let _ = stdout.read_to_end(&mut all);
            all
        });
        // The live line (forced by --progress) shows a p99 once replies have come.
        let seen = collect(stderr);
        let replied = || {
            let err = text(&seen.lock().unwrap());
            err.split("p99 ")
                .skip(1)
                .any(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        };
        assert!(eventually(PROMPT, replied), "{net:?}: no replies shown");
        signal(&child.0, libc::SIGINT);
        let status = wait_timeout(&mut child.0, PROMPT);
        let out = Output {
            status,
            stdout: reader.join().unwrap(),
            stderr: Vec::new(),
        };
        assert_eq!(status.code(), Some(0), "{net:?}: {}", text(&out.stdout));
        let v = json(&out);
        assert_sane(&v);
        assert_eq!(v["interrupted"], true, "{v}");
        assert!(num(&v, "duration_s") < 30.0, "{v}");
        drop(server);
    }
}

/// `--rate` against a server slower than the schedule: the run still ends at --duration, the
/// rate achieved falls short, and latency counts from the intended send times, so the wait
/// the slow server caused shows (no coordinated omission): far above its 50 ms per echo.
#[test]
fn rate_latency_counts_from_the_intended_send_time() {
    fn slow(c: &mut dyn Conn) {
        let mut msg = [0u8; 64];
        while c.read_exact(&mut msg).is_ok() {
            thread::sleep(Duration::from_millis(50));
            if c.write_all(&msg).is_err() {
                return;
            }
        }
    }
    for net in NETS {
        let server = test_server(net, slow);
        let out = client(&[
            "--connections",
            "1",
            "--duration",
            "1s",
            "--rate",
            "100",
            "--json",
            &server.addr,
        ]);
        assert!(out.status.success(), "{net:?}: {}", text(&out.stderr));
        let v = json(&out);
        assert_sane(&v);
        // About 20 round trips of 50 ms fit in 1 s, of the 100 the schedule asked for.
        assert!(num(&v, "sent") <= 25.0, "{net:?}: {v}");
        assert!(num(&v, "duration_s") < 1.5, "{net:?}: {v}");
        // The last messages waited ~0.5 s behind their schedule.
        assert!(num(&v["rtt_ms"], "max") > 300.0, "{net:?}: {v}");
        let err = text(&out.stderr);
        assert!(err.contains("--rate 100 not reached: "), "{net:?}: {err}");
        assert!(num(&v["rtt_ms"], "min") >= 50.0, "{net:?}: {v}");
    }
}

/// Collects what `reader` yields, on a thread, into a buffer the test can look at.
fn collect(mut reader: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    seen
}

/// Probe mode's `--json`: one object on stdout, the probe lines on stderr.
#[test]
fn probe_json_is_one_object_with_the_lines_on_stderr() {
    for net in EVERY {
        let (server, addr) = our_server(net);
        let out = client(&[
            "--count",
            "3",
            "--interval",
            "10ms",
            "--new-connection",
            "--json",
            &addr,
        ]);
        assert!(out.status.success(), "{net:?}: {}", text(&out.stderr));
        let v = json(&out);
        assert_sane(&v);
        assert_eq!(v["mode"], "probe");
        assert_eq!(v["ok"], true);
        assert_eq!(v["interrupted"], false);
        assert_eq!(num(&v, "sent"), 3.0);
        assert!(num(&v["connect_ms"], "max") > 0.0, "{v}");
        assert!(text(&out.stderr).contains("seq=3 connect="), "{net:?}");
        drop(server);
    }
}

/// Over UDP a lost datagram is a lost message, never a hang: a server that answers the first
/// three datagrams and then nothing.
#[test]
fn udp_probe_reports_each_lost_datagram_and_goes_on() {
    let server = udp_test_server(|n, msg| (n < 3).then(|| msg.to_vec()));
    probe_three_answered_two_lost(&server.addr, "Udp");
}

/// A reply datagram that differs from its message, in a byte or in length, is a mismatch.
#[test]
fn udp_probe_counts_a_changed_or_cut_reply_as_mismatched() {
    let server = udp_test_server(|n, msg| {
        let mut reply = msg.to_vec();
        match n {
            1 => reply[40] ^= 1,
            2 => reply.truncate(10),
            3 => reply.push(b'X'),
            _ => {}
        }
        Some(reply)
    });
    let out = client(&["--count", "5", "--interval", "10ms", &server.addr]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("5 sent, 5 received, 0 lost, 3 mismatched"),
        "{stdout}"
    );
}

/// Load over UDP against a server that answers nothing: every message lost, counted as a
/// timeout, exit 1; and one larger than a datagram holds is refused before anything is sent,
/// as a usage error.
#[test]
fn udp_load_against_a_silent_server_and_an_oversized_message() {
    let server = udp_test_server(|_, _| None);
    let out = client(&[
        "--connections",
        "3",
        "--duration",
        "150ms",
        "--timeout",
        "200ms",
        "--json",
        &server.addr,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v = json(&out);
    assert_eq!(num(&v, "sent"), num(&v, "received") + num(&v, "lost"));
    assert_eq!(num(&v, "lost"), 3.0, "{v}");
    assert_eq!(v["errors"]["timeout"], 3, "{v}");
    let out = client(&["--count", "1", "--size", "65508", &server.addr]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("more than one datagram to udp:127.0.0.1:"),
        "{}",
        text(&out.stderr)
    );
}

/// `--verify` over UDP: each reply must be byte for byte a datagram in flight, so a server that
/// alters one, or drops one, fails the run with the count; an exact echo passes.
#[test]
fn verify_over_udp_catches_an_altered_or_lost_datagram() {
    let input: Vec<u8> = (0..100)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let (server, addr) = our_server(Net::Udp);
    let out = client_with_input(&["--verify", &addr], &input);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, input);
    drop(server);
    let alters = udp_test_server(|n, msg| {
        let mut reply = msg.to_vec();
        if n == 40 {
            reply[0] ^= 0x20;
        }
        Some(reply)
    });
    let out = client_with_input(&["--verify", &alters.addr], &input);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("matched none sent"), "{err}");
    let drops = udp_test_server(|n, msg| (n != 40).then(|| msg.to_vec()));
    let out = client_with_input(
        &["--verify", "--idle-timeout", "300ms", &drops.addr],
        &input,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("1 of 100 datagrams got no reply"), "{err}");
}

/// Runs `echo-client ARGS`, sends it Ctrl-C once `ready` holds of its stderr so far, and
/// returns what it printed. Its exit must follow the signal within [`PROMPT`].
fn interrupted_when(args: &[&str], ready: impl Fn(&str) -> bool) -> Output {
    let mut child = std_tool(std::iter::once("echo-client").chain(args.iter().copied()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let mut child = KillOnDrop(child);
    let ready = || ready(&text(&stderr.lock().unwrap()));
    assert!(eventually(PROMPT, ready), "{args:?}: never ready");
    signal(&child.0, libc::SIGINT);
    let status = wait_timeout(&mut child.0, PROMPT);
    // The pipes' last bytes may still be on the collecting threads' way.
    let summarised = || !stdout.lock().unwrap().is_empty();
    assert!(eventually(PROMPT, summarised), "{args:?}: no summary");
    Output {
        status,
        stdout: stdout.lock().unwrap().clone(),
        stderr: stderr.lock().unwrap().clone(),
    }
}

/// A server that reads and answers nothing, counting the bytes it took in `taken`.
fn takes_and_answers_nothing(
    taken: Arc<AtomicU64>,
) -> impl Fn(&mut dyn Conn) + Send + Sync + 'static {
    move |c| {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = c.read(&mut buf) {
            taken.fetch_add(n as u64, Ordering::SeqCst);
        }
    }
}

/// Ctrl-C while a probe waits for its echo: that message was sent and got no answer, so it is
/// counted sent and lost, as ping counts it; no reply came, so the status is 1.
#[test]
fn ctrl_c_during_a_probe_counts_it_sent_and_lost() {
    for net in NETS {
        let taken = Arc::new(AtomicU64::new(0));
        let server = test_server(net, takes_and_answers_nothing(Arc::clone(&taken)));
        let args = ["--count", "0", "--timeout", "60s", "--json", &server.addr];
        let out = interrupted_when(&args, |_| taken.load(Ordering::SeqCst) >= 64);
        assert_eq!(out.status.code(), Some(1), "{net:?}: {}", text(&out.stderr));
        let v = json(&out);
        assert_eq!(v["interrupted"], true, "{v}");
        assert_eq!(
            (num(&v, "sent"), num(&v, "lost")),
            (1.0, 1.0),
            "{net:?}: {v}"
        );
        assert_eq!(num(&v, "received"), 0.0, "{v}");
        assert!(
            text(&out.stderr).contains("no reply from"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// Ctrl-C in load mode stops every connection at once, even one awaiting an echo that will
/// not come (--timeout 60s) or sleeping until its next turn of a slow --rate: the echo then
/// awaited is not counted, and with no reply at all the status is 1.
#[test]
fn ctrl_c_in_load_mode_is_prompt_against_a_silent_server_and_a_slow_rate() {
    for net in NETS {
        let taken = Arc::new(AtomicU64::new(0));
        let server = test_server(net, takes_and_answers_nothing(Arc::clone(&taken)));
        let args = [
            "--connections",
            "2",
            "--duration",
            "60s",
            "--timeout",
            "60s",
            "--json",
            &server.addr,
        ];
        // Both connections' first messages are in.
        let out = interrupted_when(&args, |_| taken.load(Ordering::SeqCst) >= 128);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{net:?}: {err}");
        assert!(err.contains("no reply from"), "{net:?}: {err}");
        let v = json(&out);
        assert_eq!(num(&v, "sent"), 0.0, "{v}");
        assert_eq!(v["ok"], false, "{v}");
        // 50 connections sharing 1 message a second: most sleep for many seconds.
        let (echo, addr) = our_server(net);
        let args = [
            "--connections",
            "50",
            "--duration",
            "60s",
            "--rate",
            "1",
            "--json",
            "--progress",
            &addr,
        ];
        // The live line shows the first reply's p99 (connection 0 sends at once).
        let replied = |err: &str| {
            err.split("p99 ")
                .skip(1)
                .any(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        };
        let out = interrupted_when(&args, replied);
        assert_eq!(out.status.code(), Some(0), "{net:?}: {}", text(&out.stderr));
        drop(echo);
    }
}

/// With --rate, the run lasts --duration even when the last message of the schedule went
/// out before its end, so the rate measured is the rate asked for.
#[test]
fn a_rate_run_lasts_its_duration() {
    for net in EVERY {
        let (server, addr) = our_server(net);
        let out = client(&[
            "--connections",
            "2",
            "--duration",
            "1s",
            "--rate",
            "2",
            "--json",
            &addr,
        ]);
        assert!(out.status.success(), "{net:?}: {}", text(&out.stderr));
        let v = json(&out);
        assert_sane(&v);
        assert_eq!(num(&v, "sent"), 2.0, "{net:?}: {v}");
        assert!(num(&v, "duration_s") >= 1.0, "{net:?}: {v}");
        assert!(num(&v, "msgs_per_s") <= 2.0, "{net:?}: {v}");
        drop(server);
    }
}

/// The summary's times are the replies' own: with one reply min, avg, max and every
/// percentile are its time, mdev 0; with several, min and max are the fastest and slowest
/// lines' times (the histogram's bucket edges made min lower than any reply).
#[test]
fn summary_times_are_the_replies_own() {
    let (server, addr) = our_server(Net::Tcp);
    let out = client(&["--count", "1", "--json", &addr]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json(&out);
    let rtt = &v["rtt_ms"];
    let min = num(rtt, "min");
    for key in ["avg", "max", "p50", "p90", "p99", "p99_9"] {
        assert_eq!(num(rtt, key), min, "{key}: {v}");
    }
    assert_eq!(num(rtt, "mdev"), 0.0, "{v}");
    let out = client(&["--count", "5", "--interval", "1ms", &addr]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let times: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split(" time=").nth(1)?.strip_suffix(" ms"))
        .collect();
    assert_eq!(times.len(), 5, "{stdout}");
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| a.parse::<f64>().unwrap().total_cmp(&b.parse().unwrap()));
    let (fastest, slowest) = (sorted[0], sorted[4]);
    let summary = stdout
        .split("rtt min/avg/max/mdev = ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no summary: {stdout}"));
    let figures: Vec<&str> = summary.trim_end_matches(" ms").split('/').collect();
    assert_eq!((figures[0], figures[2]), (fastest, slowest), "{stdout}");
    drop(server);
}

/// More connections than the open-file limit allows: the run goes on with those that opened,
/// counts the others as connect errors, and fails naming why, without claiming a loss.
#[test]
fn connections_past_the_open_file_limit_are_counted_and_named() {
    let (server, addr) = our_server(Net::Tcp);
    let child = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\""])
        .arg(crate::util::bin())
        .args(["echo-client", "--connections", "200", "--duration", "300ms"])
        .args(["--json", &addr])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_timeout(child, RUN);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_no_panic(&out.stderr);
    let v = json(&out);
    let failed = num(&v, "connections_failed");
    assert!(failed > 100.0, "{v}");
    assert_eq!(num(&v, "connections_up") + failed, 200.0, "{v}");
    assert_eq!(num(&v["errors"], "connect"), failed, "{v}");
    assert_eq!(num(&v, "lost"), 0.0, "{v}");
    assert!(
        err.contains("connections failed: cannot connect to"),
        "{err}"
    );
    assert!(err.contains("Too many open files"), "{err}");
    assert!(!err.contains("messages lost"), "{err}");
    drop(server);
}

/// Every connection takes part from the start, whatever the size: the messages are made
/// before the run's clock starts (each drew its 16 MiB inside the run, and in a short run
/// half of the connections never sent one).
#[test]
fn every_connection_sends_even_with_large_messages() {
    let (server, addr) = our_server(Net::Tcp);
    let out = client(&[
        "--connections",
        "8",
        "--size",
        "16MiB",
        "--duration",
        "500ms",
        "--timeout",
        "20s",
        "--json",
        &addr,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json(&out);
    assert_sane(&v);
    assert!(num(&v, "sent") >= 8.0, "a connection sent nothing: {v}");
    drop(server);
}

/// A server that inserts one byte, once in its life, into the third 64-byte message of a
/// connection.
fn inserts_one_byte_once() -> impl Fn(&mut dyn Conn) + Send + Sync + 'static {
    let inserted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    move |c| {
        let inserted = Arc::clone(&inserted);
        echo_with(c, move |off, b| {
            if off == 130 && !inserted.swap(true, Ordering::SeqCst) {
                vec![b'X', b]
            } else {
                vec![b]
            }
        });
    }
}

/// One byte inserted once into a stream is one probe's mismatch: the probe after a
/// difference starts on a new connection, instead of reading every later echo one byte out
/// of step (each then counted as differing).
#[test]
fn a_probe_after_a_mismatch_starts_afresh() {
    for net in NETS {
        let server = test_server(net, inserts_one_byte_once());
        let out = client(&["--count", "6", "--interval", "10ms", &server.addr]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{net:?}: {stdout}");
        assert!(
            stdout.contains("seq=3 time=")
                && stdout.contains("(reply differs from what was sent at byte 3)"),
            "{net:?}: {stdout}"
        );
        assert!(
            stdout.contains("6 sent, 6 received, 0 lost, 1 mismatched"),
            "{net:?}: {stdout}"
        );
        let err = text(&out.stderr);
        assert!(
            err.contains("1 of 6 replies differ from what was sent"),
            "{err}"
        );
    }
}

/// A load whose buffers cannot fit in memory (here under `ulimit -v`) is refused before it
/// starts, naming the sizes, instead of dying in an allocation.
#[test]
fn a_load_larger_than_memory_is_refused_up_front() {
    let (server, addr) = our_server(Net::Tcp);
    let child = std::process::Command::new("sh")
        .args(["-c", "ulimit -v 4000000 && exec \"$0\" \"$@\""])
        .arg(crate::util::bin())
        .args(["echo-client", "--connections", "300", "--size", "16MiB"])
        .args(["--duration", "1s", &addr])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_timeout(child, RUN);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_no_panic(&out.stderr);
    assert!(
        err.contains("--connections 300 with --size 16 MiB would hold 9.39 GiB"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    drop(server);
}

/// Load mode too goes on over a new connection after a reply that differs: one inserted
/// byte is one mismatch, not every later message of that connection.
#[test]
fn load_after_a_mismatch_goes_on_over_a_new_connection() {
    for net in NETS {
        let server = test_server(net, inserts_one_byte_once());
        let out = client(&[
            "--connections",
            "2",
            "--duration",
            "500ms",
            "--json",
            &server.addr,
        ]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{net:?}: {err}");
        let v = json(&out);
        assert_sane(&v);
        assert_eq!(num(&v, "mismatched"), 1.0, "{net:?}: {v}");
        assert_eq!(num(&v, "lost"), 0.0, "{net:?}: {v}");
        assert!(num(&v, "received") > 10.0, "{net:?}: {v}");
        assert!(v["errors"].as_object().unwrap().is_empty(), "{v}");
        assert!(
            err.contains("1 of ") && err.contains(" replies differ"),
            "{err}"
        );
    }
}

/// `echo-client ARGS` under `ulimit -v KIB`, with no stdin.
fn client_under_ulimit(kib: u64, args: &[&str]) -> Output {
    let child = std::process::Command::new("sh")
        .args(["-c", &format!("ulimit -v {kib} && exec \"$0\" \"$@\"")])
        .arg(crate::util::bin())
        .arg("echo-client")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    output_timeout(child, RUN)
}

/// The least `ulimit -v` (KiB, within 256) under which the binary starts at all: its own
/// mappings grow with the code (a debug build's text alone passed 16 MiB), so the limits the
/// memory tests start from are counted from here, not fixed.
fn startup_kib() -> u64 {
    let starts = |kib: u64| {
        let status = std::process::Command::new("sh")
            .args(["-c", &format!("ulimit -v {kib} && exec \"$0\" --version")])
            .arg(crate::util::bin())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        status.success()
    };
    let (mut lo, mut hi) = (1_000u64, 400_000u64);
    assert!(starts(hi), "the binary does not start under ulimit -v {hi}");
    while hi - lo > 256 {
        let mid = (lo + hi) / 2;
        if starts(mid) { hi = mid } else { lo = mid }
    }
    hi
}

/// Memory that passes the up-front check but not the allocations (the threads' own mappings
/// count against `ulimit -v`), and a probe under a limit smaller than its buffers: each is
/// refused in one line, exit 1, never an abort (134) in an allocation.
#[test]
fn memory_short_of_the_buffers_is_an_error_not_an_abort() {
    let (server, addr) = our_server(Net::Tcp);
    let load = ["--connections", "20", "--size", "16MiB", "--duration", "1s"];
    let probe = ["--count", "1", "--size", "16MiB"];
    for (kib, args) in [(700_000, &load[..]), (40_000, &probe[..])] {
        let mut all = args.to_vec();
        all.push(&addr);
        let out = client_under_ulimit(kib, &all);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_no_panic(&out.stderr);
        assert!(!err.contains("memory allocation"), "{args:?}: {err}");
        assert!(
            err.contains("cannot allocate") || err.contains("memory available"),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    }
    drop(server);
}

/// A load over UDP against a server that drops 1 datagram in 50: each loss is counted (a
/// timeout) and the load runs for its whole `--duration`, its rate over that time.
#[test]
fn a_lost_datagram_does_not_end_a_udp_load() {
    let server = udp_test_server(|n, msg| (n % 50 != 49).then(|| msg.to_vec()));
    let out = client(&[
        "--connections",
        "2",
        "--duration",
        "1s",
        "--timeout",
        "100ms",
        "--json",
        &server.addr,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v = json(&out);
    assert_eq!(
        num(&v, "sent"),
        num(&v, "received") + num(&v, "lost"),
        "{v}"
    );
    assert!(num(&v, "lost") >= 2.0, "{v}");
    assert_eq!(num(&v, "lost"), num(&v["errors"], "timeout"), "{v}");
    assert!(num(&v, "duration_s") >= 0.9, "{v}");
    let rate = num(&v, "received") / num(&v, "duration_s");
    assert!((num(&v, "msgs_per_s") - rate).abs() < 1.0, "{v}");
    // A new socket after each loss but those the run's end cut short (one per connection).
    assert!(num(&v, "reconnects") + 2.0 >= num(&v, "lost"), "{v}");
}

/// A stream load against a server that ends every connection after 20 messages (TCP with a
/// reset, a Unix socket with a close): each connection goes on over a new one, counted, and
/// the load runs for its `--duration`.
#[test]
fn a_reset_or_close_does_not_end_a_stream_load() {
    fn twenty_then_cut(c: &mut dyn Conn) {
        let mut msg = [0u8; 64];
        for _ in 0..20 {
            if c.read_exact(&mut msg).is_err() || c.write_all(&msg).is_err() {
                return;
            }
        }
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = l.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            thread::spawn(move || {
                twenty_then_cut(&mut c);
                let _ = socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO));
            });
        }
    });
    let unix = test_server(Net::Unix, twenty_then_cut);
    for addr in [&tcp, &unix.addr] {
        let args = ["--connections", "2", "--duration", "1s", "--json", addr];
        let out = client(&args);
        assert_eq!(out.status.code(), Some(1), "{addr}: {}", text(&out.stderr));
        let v = json(&out);
        assert_eq!(
            num(&v, "sent"),
            num(&v, "received") + num(&v, "lost"),
            "{v}"
        );
        assert!(num(&v, "received") > 100.0, "{addr}: {v}");
        assert!(num(&v, "reconnects") >= 5.0, "{addr}: {v}");
        assert!(num(&v, "duration_s") >= 0.9, "{addr}: {v}");
        let errors: f64 = v["errors"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_f64().unwrap())
            .sum();
        assert_eq!(errors, num(&v, "lost"), "{addr}: {v}");
        if addr == &tcp {
            assert!(v["errors"]["reset"].as_u64() > Some(0), "{v}");
        }
    }
}

/// A UDP server that answers every datagram twice, the second time 20 ms late.
fn answers_twice() -> TestServer {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = format!("udp:{}", socket.local_addr().unwrap());
    thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let reply = buf[..len].to_vec();
            let _ = socket.send_to(&reply, from);
            let again = socket.try_clone().unwrap();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(20));
                let _ = again.send_to(&reply, from);
            });
        }
    });
    TestServer {
        addr,
        _dir: tempfile::tempdir().unwrap(),
    }
}

/// A second reply to a probe is a duplicate, `(DUP!)` as ping prints it, counted apart and no
/// failure (ping exits 0 with duplicates); never taken for the next probe's reply. Load mode
/// skips them too. With 1-byte probes as well: the stamp is then the whole message.
#[test]
fn a_duplicate_udp_reply_is_a_duplicate() {
    let server = answers_twice();
    for size in ["64", "1"] {
        let args = ["--count", "5", "--interval", "60ms", "--size", size];
        let mut all = args.to_vec();
        all.push(&server.addr);
        let out = client(&all);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{size}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(
            stdout.contains("5 sent, 5 received, 0 lost, 0 mismatched, +4 duplicates"),
            "{size}: {stdout}"
        );
        for seq in 1..=4 {
            assert!(
                stdout.contains(&format!("from {}: seq={seq} (DUP!)", &server.addr)),
                "{size}: {stdout}"
            );
        }
        all.push("--json");
        let v = json(&client(&all));
        assert_eq!(v["duplicates"], 4, "{v}");
        assert_eq!(v["ok"], true, "{v}");
    }
    let args = [
        "--connections",
        "2",
        "--duration",
        "300ms",
        "--json",
        &server.addr,
    ];
    let v = json(&client(&args));
    assert_eq!(num(&v, "mismatched") + num(&v, "lost"), 0.0, "{v}");
    assert_eq!(v["ok"], true, "{v}");
}

/// Forgetting `--tls` is not success: against a TLS server, a plain probe or load (TCP or a
/// Unix socket) says so in one line, exit 1, instead of a run of mismatches. With `--tls`
/// the JSON `server` keeps its `tls:` prefix, as `udp:` and `unix:` keep theirs.
#[test]
fn a_tls_answer_to_plain_text_says_add_tls() {
    let dir = tempfile::tempdir().unwrap();
    let unix = format!("tls:unix:{}", dir.path().join("tls.sock").display());
    for listen in ["tls:127.0.0.1:0", &unix] {
        let mut server = EchoServer::launch(std_tool(["echo-server", "-q", listen]));
        let tls = server.await_line(PROMPT).to_owned();
        let plain = tls.strip_prefix("tls:").unwrap().to_owned();
        let probe = ["--count", "3", "--interval", "10ms", &plain];
        let load = ["--connections", "2", "--duration", "300ms", &plain];
        // One byte is less than a record header: what follows it is read to tell.
        let tiny = ["--count", "3", "--interval", "10ms", "--size", "1", &plain];
        for args in [&probe[..], &load[..], &tiny[..]] {
            let out = client(args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(
                err.contains(&format!("{plain}: the server answered in TLS: add --tls")),
                "{args:?}: {err}"
            );
            assert!(!err.contains("differ"), "{args:?}: {err}");
            // No probe line and no summary: at most the probe's header (issue 20), written
            // once connected, as ping's `PING host ...` is.
            let stdout = text(&out.stdout);
            let header = format!("ECHO {plain}: ");
            assert!(
                stdout.lines().all(|l| l.starts_with(&header)),
                "{args:?}: {stdout}"
            );
        }
        let out = client(&["--insecure", "--count", "1", "--json", &tls]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(json(&out)["server"], tls.as_str());
        let load = [
            "--insecure",
            "--connections",
            "1",
            "--duration",
            "100ms",
            "--json",
            &tls,
        ];
        let out = client(&load);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(json(&out)["server"], tls.as_str());
    }
}

/// One Ctrl-C rule for probe and load, the summary's (JSON `ok`): a probe whose second reply
/// was lost exits 1 after Ctrl-C as at its count's end (ping's "any reply" rule let it exit
/// 0), and the help and man page say the rule for both modes.
#[test]
fn ctrl_c_exits_by_the_summary_in_both_modes() {
    let server = udp_test_server(|n, msg| (n != 1).then(|| msg.to_vec()));
    let args = [
        "--count",
        "0",
        "--interval",
        "20ms",
        "--timeout",
        "100ms",
        "--json",
        &server.addr,
    ];
    let out = interrupted_when(&args, |err| err.contains("seq=2: no echo"));
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["interrupted"], true, "{v}");
    assert_eq!(v["ok"], false, "{v}");
    assert!(num(&v, "lost") >= 1.0, "{v}");
    let help = std_tool(["echo-client", "--help"]).output().unwrap();
    let help = text(&help.stdout).replace('\n', " ");
    assert!(
        help.contains("Ctrl-C ends either mode with its summary and the same rule"),
        "{help}"
    );
}

/// Just past what the up-front memory check lets through, the run still has the room it needs
/// beside its buffers: every `ulimit -v` in the 2 MiB above the check's edge (found by
/// bisection) gives a reply or the one-line refusal, never an abort (a limit 300 KiB past the
/// edge let a 16 MiB probe abort with exit 134 in its first reply's histogram).
#[test]
fn memory_just_past_the_check_still_runs() {
    let (server, addr) = our_server(Net::Tcp);
    let args = ["--count", "1", "--size", "4MiB", &addr];
    let run = |kib: u64| {
        let out = client_under_ulimit(kib, &args);
        let err = text(&out.stderr);
        assert_no_panic(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "ulimit -v {kib}: {:?}: {err}",
            out.status
        );
        if out.status.code() == Some(1) {
            assert!(
                err.contains("memory available") || err.contains("cannot allocate"),
                "ulimit -v {kib}: {err}"
            );
        }
        err.contains("memory available")
    };
    let start = startup_kib();
    let (mut lo, mut hi) = (start.max(20_000), start + 100_000);
    assert!(run(lo), "not refused at {lo} KiB");
    assert!(!run(hi), "refused at {hi} KiB");
    while hi - lo > 64 {
        let mid = (lo + hi) / 2;
        if run(mid) { lo = mid } else { hi = mid }
    }
    for kib in (hi..hi + 2048).step_by(64) {
        run(kib);
    }
    drop(server);
}

/// A server that resets every connection as soon as a message comes, counting its accepts.
fn resets_every_message(accepts: Arc<AtomicU64>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            accepts.fetch_add(1, Ordering::SeqCst);
            let mut msg = [0u8; 64];
            let _ = c.read(&mut msg);
            let _ = socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO));
        }
    });
    addr
}

/// A connection replaced without one intact echo over it waits before the next, longer each
/// time: against a server that resets every message, 2 connections for 1 s open a few dozen
/// connections, not thousands (12,000 a second were seen), and still run their `--duration`.
#[test]
fn reconnects_to_a_server_that_resets_everything_back_off() {
    let accepts = Arc::new(AtomicU64::new(0));
    let addr = resets_every_message(Arc::clone(&accepts));
    let args = ["--connections", "2", "--duration", "1s", "--json", &addr];
    let out = client(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v = json(&out);
    assert_eq!(
        num(&v, "sent"),
        num(&v, "received") + num(&v, "lost"),
        "{v}"
    );
    assert!(num(&v, "duration_s") >= 0.9, "{v}");
    assert!(num(&v, "reconnects") >= 4.0, "{v}");
    let accepted = accepts.load(Ordering::SeqCst);
    assert!(accepted <= 60, "{accepted} connections in 1 s: {v}");
}

/// A server that stops accepting after the first connections: a connection whose
/// replacement is refused tries again (counted as `connect` errors, backing off) and the load
/// runs its `--duration` instead of ending at once with rates over a millisecond.
#[test]
fn a_refused_reconnect_does_not_end_the_load() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let mut first: Vec<_> = (0..2).map(|_| l.accept().unwrap().0).collect();
        drop(l);
        for c in &mut first {
            let mut msg = [0u8; 64];
            for _ in 0..10 {
                if c.read_exact(&mut msg).is_err() || c.write_all(&msg).is_err() {
                    break;
                }
            }
            let _ = socket2::SockRef::from(&*c).set_linger(Some(Duration::ZERO));
        }
    });
    let args = ["--connections", "2", "--duration", "1s", "--json", &addr];
    let out = client(&args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let v = json(&out);
    assert_eq!(num(&v, "received"), 20.0, "{v}");
    assert_eq!(
        num(&v, "sent"),
        num(&v, "received") + num(&v, "lost"),
        "{v}"
    );
    assert!(num(&v, "duration_s") >= 0.9, "{v}");
    let connect = num(&v["errors"], "connect");
    assert!((2.0..=40.0).contains(&connect), "{v}");
    assert!(err.contains("connect "), "{err}");
}

/// Ctrl-C while the load's other connections are still connecting (to a listener whose
/// backlog holds only the first) comes after the first connection: the summary's rule, as the
/// help says (only before the first connection is it 130), not a silent exit 130.
#[test]
fn ctrl_c_while_the_load_connects_exits_by_the_summary() {
    let l = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    l.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    // Never accepted: one connection completes into the backlog, the others wait for it.
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap().to_string();
    let since = std::time::Instant::now();
    let args = [
        "--connections",
        "3",
        "--connect-timeout",
        "60s",
        "--json",
        &addr,
    ];
    let out = interrupted_when(&args, |_| since.elapsed() > Duration::from_secs(1));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let v = json(&out);
    assert_eq!(v["interrupted"], true, "{v}");
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(num(&v, "connections_up"), 1.0, "{v}");
    assert_eq!(num(&v, "sent"), 0.0, "{v}");
    assert!(err.contains("no reply from"), "{err}");
    drop(l);
}

/// A load of many connections under `ulimit -v`, from the memory check's edge (found by
/// bisection) to 100 MiB above it: a report or the one-line refusal at every limit, never an
/// abort. Each thread's own malloc heap reserves 64 MiB of address space once the limit leaves
/// room for one, and 800 connections aborted just past that (153000 KiB); far lower, their
/// tasks alone outgrew a check that counted only buffers (25000 KiB: exit 134).
#[test]
fn many_connections_under_a_memory_limit_never_abort() {
    let (server, addr) = our_server(Net::Tcp);
    let args = ["--connections", "800", "--duration", "100ms", &addr];
    let run = |kib: u64| {
        let out = client_under_ulimit(kib, &args);
        let err = text(&out.stderr);
        assert_no_panic(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "ulimit -v {kib}: {:?}: {err}",
            out.status
        );
        err.contains("memory available")
    };
    let start = startup_kib();
    let (mut lo, mut hi) = (start.max(20_000), start + 380_000);
    assert!(run(lo), "not refused at {lo} KiB");
    while hi - lo > 256 {
        let mid = (lo + hi) / 2;
        if run(mid) { lo = mid } else { hi = mid }
    }
    let coarse = (hi..hi + 56 * 1024).step_by(4096);
    let fine = (hi + 56 * 1024..hi + 100 * 1024).step_by(1024);
    for kib in coarse.chain(fine) {
        run(kib);
    }
    drop(server);
}

/// Our UDP server's loop guard drops datagrams from a source that keeps sending back what it
/// was sent; the probe and load modes never look like one at any size, 1-byte messages (whose
/// stamp a plain counter would repeat every 256 messages) included.
#[test]
fn no_size_looks_like_a_packet_loop_to_our_udp_server() {
    let (_server, addr) = our_server(Net::Udp);
    for size in ["1", "2", "8"] {
        let load = ["--connections", "1", "--duration", "2s", "--size", size];
        let probe = ["--count", "1200", "--interval", "1ms", "--size", size];
        for args in [&load[..], &probe[..]] {
            let mut all = args.to_vec();
            all.extend(["--json", &addr]);
            let out = client(&all);
            let v = json(&out);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {v}");
            assert_eq!(
                num(&v, "lost") + num(&v, "mismatched"),
                0.0,
                "{args:?}: {v}"
            );
        }
    }
}

/// The probe and load modes refuse a broadcast (limited or directed) or multicast address
/// with the reason, as the stream mode does: every echo server there would answer, and the
/// kernel refuses a broadcast with a bare "Permission denied".
#[test]
fn the_udp_modes_refuse_a_broadcast_or_multicast_address() {
    for (addr, kind) in [
        ("udp:127.255.255.255:7", "broadcast"),
        ("udp:255.255.255.255:7", "broadcast"),
        ("udp:224.0.0.1:7", "multicast"),
    ] {
        let modes = [
            &["--count", "1"][..],
            &["--connections", "2", "--duration", "1s"],
        ];
        for mode in modes {
            let args = [mode, &[addr]].concat();
            let out = client(&args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            let said = format!("is a {kind} address; an echo client talks to one server");
            assert!(err.contains(&said), "{args:?}: {err}");
            assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        }
    }
}

// Issue 20, ping's habits in the probe.

/// Probe lines and the summary on stdout, the rest (if any) on stderr, of a run of `args`.
fn probe_out(args: &[&str]) -> (Output, String, String) {
    let out = client(args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    (out, stdout, stderr)
}

/// The header goes to stdout before the replies, as ping's `PING host ...` line does, and the
/// summary says the share lost as ping does.
#[test]
fn probe_prints_its_header_on_stdout_and_the_packet_loss_in_the_summary() {
    for net in EVERY {
        let (server, addr) = our_server(net);
        let (out, stdout, err) = probe_out(&["--count", "2", "--interval", "10ms", &addr]);
        assert!(out.status.success(), "{net:?}: {err}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines[0],
            format!("ECHO {addr}: 64 bytes per message"),
            "{stdout}"
        );
        assert!(is_probe_line(lines[1], 64, 1), "{stdout}");
        assert!(
            stdout.contains("2 sent, 2 received, 0 lost, 0 mismatched, 0% packet loss, time "),
            "{net:?}: {stdout}"
        );
        assert!(!err.contains("ECHO "), "{net:?}: the header once: {err}");
        // Under --json stdout holds the object alone: the header goes with the lines.
        let out = client(&["--count", "1", "--json", &addr]);
        assert!(text(&out.stderr).contains("ECHO "), "{}", text(&out.stderr));
        json(&out);
        drop(server);
    }
    let server = test_server(Net::Tcp, stops_answering());
    let out = probe_three_answered_two_lost(&server.addr, "Tcp");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("5 sent, 3 received, 2 lost, 0 mismatched, 40% packet loss, time "),
        "{stdout}"
    );
}

/// ping's `-c N -i SECS -W SECS`, seconds as plain numbers (`0.02`) as well as durations.
#[test]
fn probe_takes_pings_c_i_and_w_with_plain_seconds() {
    let (server, addr) = our_server(Net::Tcp);
    let (out, stdout, err) = probe_out(&["-c", "3", "-i", "0.02", "-W", "1.5", &addr]);
    assert!(out.status.success(), "{err}");
    assert!(stdout.contains("3 sent, 3 received"), "{stdout}");
    assert!(
        is_probe_line(stdout.lines().nth(3).unwrap(), 64, 3),
        "{stdout}"
    );
    // The long options take plain seconds too.
    let out = client(&["--count", "2", "--interval", "0.1", "--json", &addr]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json(&out);
    assert!(
        num(&v, "duration_s") >= 0.09,
        "one interval between two probes: {v}"
    );
    drop(server);
    // -W: a reply not back within 0.3 s is lost.
    let taken = Arc::new(AtomicU64::new(0));
    let silent = test_server(Net::Tcp, takes_and_answers_nothing(taken));
    let started = std::time::Instant::now();
    let (out, stdout, err) = probe_out(&["-c", "1", "-W", "0.3", &silent.addr]);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(stdout.contains("seq=1: no echo within 300ms"), "{stdout}");
    assert!(stdout.contains("100% packet loss"), "{stdout}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A bad value says what is accepted, plain seconds included.
    for (args, want) in [
        (
            &["-c", "1", "-i", "soon"][..],
            "'soon': not a duration: seconds, or a number followed by a unit (e.g. 0.2, 5, 500ms, 30s)",
        ),
        (
            &["-c", "1", "-W", "0.0001"],
            "'0.0001': a duration must be at least 1ms",
        ),
        (&["-c", "x"], "'x': not a whole number"),
        (&["-i", "0.2"], "--count <N>"),
    ] {
        let mut all = args.to_vec();
        all.push("127.0.0.1:9");
        let (out, _, err) = probe_out(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// `--deadline` (ping's -w) ends the probe at that time whatever the count, with the summary;
/// a probe then awaiting its echo is counted sent and lost, as at Ctrl-C.
#[test]
fn deadline_ends_the_probe_whatever_the_count() {
    let (server, addr) = our_server(Net::Tcp);
    for count in ["0", "1000"] {
        let started = std::time::Instant::now();
        let args = [
            "--count",
            count,
            "-i",
            "0.1",
            "--deadline",
            "0.5",
            "--json",
            &addr,
        ];
        let out = client(&args);
        let took = started.elapsed();
        assert!(out.status.success(), "{count}: {}", text(&out.stderr));
        let v = json(&out);
        let sent = num(&v, "sent");
        assert!((2.0..=6.0).contains(&sent), "{count}: {v}");
        assert_eq!(v["interrupted"], false, "{v}");
        assert!(num(&v, "duration_s") < 1.0, "{v}");
        assert!(took < Duration::from_secs(5), "{count}: {took:?}");
    }
    // The count comes first when it is reached first.
    let (out, stdout, err) = probe_out(&["-c", "2", "-i", "0.01", "--deadline", "60", &addr]);
    assert!(out.status.success(), "{err}");
    assert!(stdout.contains("2 sent, 2 received"), "{stdout}");
    drop(server);
    // Awaiting an echo that will not come (--timeout 60s): counted sent and lost.
    let taken = Arc::new(AtomicU64::new(0));
    let silent = test_server(Net::Tcp, takes_and_answers_nothing(taken));
    let args = [
        "-c",
        "5",
        "-W",
        "60",
        "--deadline",
        "300ms",
        "--json",
        &silent.addr,
    ];
    let out = client(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v = json(&out);
    assert_eq!((num(&v, "sent"), num(&v, "lost")), (1.0, 1.0), "{v}");
    // Before the first connection: an error naming the server, at the deadline.
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let started = std::time::Instant::now();
    let free = free.to_string();
    let args = ["-c", "1", "--wait", "60s", "--deadline", "0.3", &free];
    let (out, _, err) = probe_out(&args);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let want =
        format!("asyncio-tool: cannot connect to {free}: not connected within --deadline 300ms\n");
    assert!(err.ends_with(&want), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (out, _, err) = probe_out(&["--deadline", "5", "127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--count <N>"), "{err}");
}

/// `--summary-only` (ping's -q): the header and the summary, no line per reply or loss.
#[test]
fn summary_only_prints_the_header_and_the_summary() {
    let (server, addr) = our_server(Net::Tcp);
    let (out, stdout, err) = probe_out(&["-c", "3", "-i", "0.01", "--summary-only", &addr]);
    assert!(out.status.success(), "{err}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..3],
        [
            format!("ECHO {addr}: 64 bytes per message"),
            String::new(),
            format!("--- {addr} echo statistics ---"),
        ]
    );
    assert!(
        lines[3].starts_with("3 sent, 3 received, 0 lost"),
        "{stdout}"
    );
    assert!(!stdout.contains("seq="), "{stdout}");
    drop(server);
    let server = test_server(Net::Tcp, stops_answering());
    let args = [
        "-c",
        "5",
        "-i",
        "0.02",
        "-W",
        "0.5",
        "--summary-only",
        &server.addr,
    ];
    let (out, stdout, err) = probe_out(&args);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!stdout.contains("seq="), "{stdout}");
    assert!(stdout.contains("5 sent, 3 received, 2 lost"), "{stdout}");
    assert!(err.contains("2 of 5 messages lost"), "{err}");
    let (out, _, err) = probe_out(&["--summary-only", "127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2), "{err}");
}

/// Waits for the probe to end and returns its whole stdout, checking that the count was
/// reached with one summary there.
fn probe_goes_on_to(mut child: KillOnDrop, seen: &Arc<Mutex<Vec<u8>>>, count: u64) -> String {
    let status = wait_timeout(&mut child.0, RUN);
    let summarised = || text(&seen.lock().unwrap()).contains("packet loss");
    assert!(eventually(PROMPT, summarised), "no summary");
    let out = text(&seen.lock().unwrap());
    assert!(status.success(), "{status:?}: {out}");
    assert!(
        out.contains(&format!("{count} sent, {count} received")),
        "{out}"
    );
    assert_eq!(out.matches("echo statistics").count(), 1, "{out}");
    out
}

/// SIGQUIT (what Ctrl-\ sends) prints the summary so far on stderr and the probe goes on to
/// its count, as ping's does; stdout still holds one summary.
#[test]
fn sigquit_prints_the_summary_so_far_and_the_probe_goes_on() {
    let (server, addr) = our_server(Net::Tcp);
    let mut child = std_tool(["echo-client", "--count", "60", "--interval", "20ms", &addr])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = collect(child.stdout.take().unwrap());
    let err = collect(child.stderr.take().unwrap());
    let child = KillOnDrop(child);
    let third = || text(&seen.lock().unwrap()).contains("seq=3 ");
    assert!(eventually(PROMPT, third), "no third probe");
    signal(&child.0, libc::SIGQUIT);
    let status_line = || text(&err.lock().unwrap()).contains("packet loss");
    assert!(
        eventually(PROMPT, status_line),
        "{}",
        text(&err.lock().unwrap())
    );
    probe_goes_on_to(child, &seen, 60);
    let err = text(&err.lock().unwrap());
    assert!(
        err.contains(&format!("--- {addr} echo statistics ---")),
        "{err}"
    );
    let so_far: u64 = err
        .split(" sent, ")
        .next()
        .and_then(|head| head.rsplit('\n').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count: {err}"));
    assert!((3..60).contains(&so_far), "{so_far} sent so far: {err}");
    drop(server);
}

/// Ctrl-\ typed in a terminal: the summary so far shows there and the probe goes on.
#[test]
fn ctrl_backslash_in_a_terminal_shows_the_summary_so_far() {
    use std::os::unix::process::CommandExt;
    let (server, addr) = our_server(Net::Tcp);
    let term = crate::util::pty();
    let mut cmd = std_tool(["echo-client", "--count", "60", "--interval", "20ms", &addr]);
    cmd.stdin(term.slave.try_clone().unwrap())
        .stdout(Stdio::piped())
        .stderr(term.slave.try_clone().unwrap());
    // SAFETY: setsid and ioctl are async-signal-safe; the terminal becomes the child's
    // controlling one, so the keyboard's Ctrl-\ signals it.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(term.slave);
    let seen = collect(child.stdout.take().unwrap());
    let child = KillOnDrop(child);
    let third = || text(&seen.lock().unwrap()).contains("seq=3 ");
    assert!(eventually(PROMPT, third), "no third probe");
    let mut master = term.master;
    master.write_all(b"\x1c").unwrap();
    let (found, screen) = crate::util::read_until(master, b"packet loss", PROMPT);
    assert!(found, "{}", text(&screen));
    probe_goes_on_to(child, &seen, 60);
    drop(server);
}

#[test]
fn in_probe_mode_w_and_q_mean_what_they_mean_to_ping() {
    // nc's -w (a timeout) and the tool's -q (quiet) are ping's deadline and summary-only once
    // --count makes it a probe: `ping -c 0 -w 0.5 -q` typed here does what it does there.
    let (server, addr) = our_server(Net::Tcp);
    let started = std::time::Instant::now();
    let out = client(&["-c", "0", "-i", "0.1", "-w", "0.5", "--json", &addr]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = json(&out);
    assert!((2.0..=6.0).contains(&num(&v, "sent")), "{v}");
    assert!(num(&v, "duration_s") < 1.0, "{v}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let (out, stdout, err) = probe_out(&["-q", "-c", "3", "-i", "0.01", &addr]);
    assert!(out.status.success(), "{err}");
    assert!(!stdout.contains("seq="), "{stdout}");
    assert!(stdout.contains("3 sent, 3 received"), "{stdout}");
    drop(server);
}

/// Load mode raises its soft open-files limit to the hard one before connecting (64 → 128
/// here), so more than 64 connections open; the ones that still fail are named in the same
/// words in the header and the report, and the error says `ulimit -n` and what to do.
#[test]
fn load_raises_the_open_files_limit_and_names_it_when_still_short() {
    let (server, addr) = our_server(Net::Tcp);
    let child = std::process::Command::new("sh")
        .args([
            "-c",
            "ulimit -S -n 64 && ulimit -H -n 128 && exec \"$0\" \"$@\"",
        ])
        .arg(crate::util::bin())
        .args(["echo-client", "--connections", "200", "--duration", "300ms"])
        .arg(&addr)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_timeout(child, RUN);
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_no_panic(&out.stderr);
    // `LOAD ADDR: N of 200 connections, ...` on stderr; the report's first line the same.
    let up = |line: &str| -> u64 {
        let before = line.split(" of 200 connections").next().unwrap_or_default();
        before
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .parse()
            .unwrap_or(0)
    };
    let header = err
        .lines()
        .find(|l| l.starts_with("LOAD "))
        .unwrap_or_default();
    let report = stdout.lines().next().unwrap_or_default();
    assert!(
        up(header) > 64,
        "the soft limit was not raised: {header:?}\n{err}"
    );
    assert_eq!(up(header), up(report), "{header:?} vs {report:?}");
    assert!(
        stdout.contains(&format!(
            "connections: {} up, {} failed",
            up(header),
            200 - up(header)
        )),
        "{stdout}"
    );
    assert!(err.contains("Too many open files"), "{err}");
    assert!(
        err.contains("at most 128 files may be open at once (ulimit -n"),
        "{err}"
    );
    assert!(err.contains("or use fewer --connections"), "{err}");
    drop(server);
}
