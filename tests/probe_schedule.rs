//! Probe mode on schedule (issue 19): a probe goes out every `--interval` whether or not the
//! earlier replies came, so a server that stalls shows as a backlog of slow replies (as ping
//! shows it), not as one slow sample; a slow server does not slow the probes down; a reply
//! after `--timeout` is shown late; a second UDP reply is `DUP!`. Over TCP, a Unix socket, UDP
//! and TLS (socat's OPENSSL-LISTEN in front of the same test servers). The test servers are
//! written here with std threads; each is left behind when its test ends.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixListener;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{EchoServer, KillOnDrop, other, output_timeout, peer_available, std_tool};

/// Bound for a run of a second or two (debug build, busy machine).
const RUN: Duration = Duration::from_secs(30);
/// Bytes per probe, as the servers below read them.
const SIZE: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Net {
    Tcp,
    Unix,
    Udp,
    Tls,
}

const EVERY: [Net; 4] = [Net::Tcp, Net::Unix, Net::Udp, Net::Tls];

/// A test server's address as the client takes it, and what must live as long as it.
struct Server {
    addr: String,
    _dir: tempfile::TempDir,
    _proxy: Option<KillOnDrop>,
}

/// How a server answers message `n` (from 0) of a connection, or datagram `n`: it echoes it
/// `delay(n)` after it came, in order on a stream (a reply never overtakes the one before).
/// With `serial`, the server itself sleeps `delay(n)` before it reads on (a stall: what comes
/// meanwhile waits).
#[derive(Clone)]
struct Answer {
    delay: Arc<dyn Fn(u64) -> Duration + Send + Sync>,
    serial: bool,
    /// Each echo sent once more this long after it (UDP).
    again: Option<Duration>,
}

/// A server that stalls once, for 500 ms, before it echoes the 10th message.
fn stalls_once() -> Answer {
    Answer {
        delay: Arc::new(|n| Duration::from_millis(if n == 9 { 500 } else { 0 })),
        serial: true,
        again: None,
    }
}

/// A server that echoes each message `ms` after it came, however many are in flight.
fn always_slow(ms: u64) -> Answer {
    Answer {
        delay: Arc::new(move |_| Duration::from_millis(ms)),
        serial: false,
        again: None,
    }
}

/// `serve` over `net`: a thread per connection (TLS: socat in front of a TCP one).
fn server(net: Net, answer: Answer) -> Option<Server> {
    let dir = tempfile::tempdir().unwrap();
    let addr = match net {
        Net::Tcp | Net::Tls => {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap().to_string();
            thread::spawn(move || {
                for c in l.incoming().flatten() {
                    let answer = answer.clone();
                    let w = c.try_clone().unwrap();
                    thread::spawn(move || serve_stream(c, w, &answer));
                }
            });
            addr
        }
        Net::Unix => {
            let path = dir.path().join("s.sock");
            let l = UnixListener::bind(&path).unwrap();
            thread::spawn(move || {
                for c in l.incoming().flatten() {
                    let answer = answer.clone();
                    let w = c.try_clone().unwrap();
                    thread::spawn(move || serve_stream(c, w, &answer));
                }
            });
            format!("unix:{}", path.display())
        }
        Net::Udp => {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = format!("udp:{}", socket.local_addr().unwrap());
            thread::spawn(move || serve_datagrams(&socket, &answer));
            addr
        }
    };
    let server = Server {
        addr,
        _dir: dir,
        _proxy: None,
    };
    if net == Net::Tls {
        return tls_in_front(server);
    }
    Some(server)
}

/// Reads `SIZE`-byte messages and hands each to a writer thread that echoes it when due.
fn serve_stream<S: Read + Write + Send + 'static>(mut r: S, mut w: S, answer: &Answer) {
    let (tx, rx) = mpsc::channel::<(Instant, [u8; SIZE])>();
    thread::spawn(move || {
        for (due, msg) in rx {
            thread::sleep(due.saturating_duration_since(Instant::now()));
            if w.write_all(&msg).is_err() {
                return;
            }
        }
    });
    let mut msg = [0u8; SIZE];
    for n in 0.. {
        if r.read_exact(&mut msg).is_err() {
            return;
        }
        let delay = (answer.delay)(n);
        let due = if answer.serial {
            thread::sleep(delay);
            Instant::now()
        } else {
            Instant::now() + delay
        };
        if tx.send((due, msg)).is_err() {
            return;
        }
    }
}

/// Answers each datagram when due, and again after `answer.again` if set.
fn serve_datagrams(socket: &UdpSocket, answer: &Answer) {
    let mut buf = vec![0u8; 65536];
    for n in 0.. {
        let Ok((len, from)) = socket.recv_from(&mut buf) else {
            return;
        };
        let delay = (answer.delay)(n);
        if answer.serial {
            thread::sleep(delay);
        }
        let reply = buf[..len].to_vec();
        let socket = socket.try_clone().unwrap();
        let (later, again) = ((!answer.serial).then_some(delay), answer.again);
        thread::spawn(move || {
            if let Some(later) = later {
                thread::sleep(later);
            }
            let _ = socket.send_to(&reply, from);
            if let Some(again) = again {
                thread::sleep(again);
                let _ = socket.send_to(&reply, from);
            }
        });
    }
}

/// socat's OPENSSL-LISTEN in front of `backend` (TCP), with a self-signed certificate made by
/// openssl; `None` (the test skipped) without socat or openssl, outside CI.
fn tls_in_front(backend: Server) -> Option<Server> {
    if !peer_available("socat") || !peer_available("openssl") {
        return None;
    }
    let dir = &backend._dir;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = other("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .args([&key, std::path::Path::new("-out"), &cert])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success(), "openssl req failed");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!(
        "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
        cert.display(),
        key.display()
    );
    let proxy = other("socat")
        .args([&listen, &format!("TCP:{},nodelay", backend.addr)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some(Server {
        addr: format!("tls:127.0.0.1:{port}"),
        _dir: backend._dir,
        _proxy: Some(KillOnDrop(proxy)),
    })
}

/// `echo-client ARGS ADDR`, with `--insecure` and `--wait` (socat may not listen yet) for TLS.
fn probe(net: Net, addr: &str, args: &[&str]) -> Output {
    let mut all = vec!["echo-client"];
    if net == Net::Tls {
        all.extend(["--insecure", "--wait", "10s"]);
    }
    all.extend(args);
    all.push(addr);
    let child = std_tool(all)
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

/// The `--json` summary, parsed.
fn json(out: &Output) -> serde_json::Value {
    let stdout = text(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {v}"))
}

/// The `time=` of each reply line, in milliseconds.
fn times(lines: &str) -> Vec<f64> {
    lines
        .lines()
        .filter_map(|l| l.split_once(" time=")?.1.split_once(" ms"))
        .map(|(t, _)| t.parse().unwrap())
        .collect()
}

/// A 500 ms stall with a probe every 10 ms: the probes sent meanwhile are all late by a
/// shrinking part of the stall, as ping shows them, so many replies take 250 ms or more and so
/// does the p99; every probe of the count is sent. Sent one at a time, the stall was one slow
/// sample, its p99 under a millisecond.
#[test]
fn a_stall_shows_as_a_backlog() {
    for net in EVERY {
        let Some(server) = server(net, stalls_once()) else {
            continue;
        };
        let args = ["--count", "100", "--interval", "10ms", "--json"];
        let out = probe(net, &server.addr, &args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{net:?}: {err}");
        let v = json(&out);
        assert_eq!(
            (num(&v, "sent"), num(&v, "received")),
            (100.0, 100.0),
            "{v}"
        );
        let slow = times(&err).iter().filter(|&&t| t >= 250.0).count();
        assert!(
            slow >= 10,
            "{net:?}: {slow} replies of 250 ms or more: {err}"
        );
        assert!(num(&v["rtt_ms"], "p99") >= 250.0, "{net:?}: {v}");
        // Each once; in order over a stream (the test's UDP server answers from threads).
        let mut seqs: Vec<u64> = err
            .lines()
            .filter_map(|l| l.split_once(": seq=")?.1.split_once(' '))
            .map(|(s, _)| s.parse().unwrap())
            .collect();
        if net == Net::Udp {
            seqs.sort_unstable();
        }
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>(), "{net:?}");
    }
}

/// Against a server that takes 50 ms for every message, 10 probes at 10 ms take about
/// 10 × 10 ms + 50 ms, not 10 × 50 ms: each probe leaves on time. With --new-connection too,
/// each probe over its own connection.
#[test]
fn a_slow_server_does_not_slow_the_probes() {
    for net in EVERY {
        let Some(server) = server(net, always_slow(50)) else {
            continue;
        };
        for own in [false, true] {
            let mut args = vec!["--count", "10", "--interval", "10ms", "--json"];
            if own {
                args.push("--new-connection");
            }
            let out = probe(net, &server.addr, &args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{net:?} {own}: {err}");
            let v = json(&out);
            assert_eq!(num(&v, "received"), 10.0, "{v}");
            let took = num(&v, "duration_s");
            // One at a time: at least 10 × 50 ms.
            assert!(took < 0.4, "{net:?} {own}: {took} s: {err}");
            let rtt = &v["rtt_ms"];
            assert!(num(rtt, "min") >= 49.0, "{net:?} {own}: {v}");
        }
    }
}

/// A server that never answers: the count is still sent on schedule, and the run ends one
/// --timeout after the last probe, each probe lost on its own line.
#[test]
fn a_silent_server_still_gets_the_count_on_schedule() {
    for net in [Net::Tcp, Net::Unix, Net::Udp] {
        let Some(server) = server(net, always_slow(60_000)) else {
            continue;
        };
        let args = ["--count", "5", "--interval", "10ms", "--timeout", "200ms"];
        let started = Instant::now();
        let out = probe(net, &server.addr, &[&args[..], &["--json"]].concat());
        let took = started.elapsed();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{net:?}: {err}");
        let v = json(&out);
        assert_eq!((num(&v, "sent"), num(&v, "lost")), (5.0, 5.0), "{v}");
        for seq in 1..=5 {
            assert!(
                err.contains(&format!(": seq={seq}: no echo within 200ms")),
                "{err}"
            );
        }
        // One at a time: 5 × 200 ms.
        assert!(took < Duration::from_millis(800), "{net:?}: {took:?}");
    }
}

/// A reply that comes after --timeout declared its probe lost is shown, marked `(late)`, and
/// counted received, not lost, as ping counts a reply it had given up on: the run passes.
#[test]
fn a_reply_after_the_timeout_is_shown_late() {
    let late = Answer {
        delay: Arc::new(|n| Duration::from_millis(if n == 2 { 250 } else { 0 })),
        serial: false,
        again: None,
    };
    let args = ["--count", "15", "--interval", "20ms", "--timeout", "150ms"];
    for net in EVERY {
        let Some(server) = server(net, late.clone()) else {
            continue;
        };
        let out = probe(net, &server.addr, &[&args[..], &["--json"]].concat());
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{net:?}: {err}");
        let lost = err.find(": seq=3: no echo within 150ms").expect(&err);
        let shown = err.find(": seq=3 time=").expect(&err);
        assert!(lost < shown, "{net:?}: {err}");
        let line = err[shown..].lines().next().unwrap();
        assert!(line.ends_with(" ms (late)"), "{net:?}: {line}");
        let v = json(&out);
        assert_eq!(
            (num(&v, "received"), num(&v, "lost")),
            (15.0, 0.0),
            "{net:?}: {v}"
        );
        assert!(num(&v, "late") >= 1.0, "{v}");
        assert!(num(&v["rtt_ms"], "max") >= 250.0, "{v}");
    }
    // The text summary says it too; over UDP only the one reply is late.
    let server = server(Net::Udp, late).unwrap();
    let out = probe(Net::Udp, &server.addr, &args);
    let stdout = text(&out.stdout);
    let want = "15 sent, 15 received, 0 lost, 0 mismatched, 1 late, 0% packet loss";
    assert!(stdout.contains(want), "{stdout}");
}

/// Every UDP reply sent twice, the copy 25 ms later while later probes are in flight: each
/// copy is `(DUP!)` for its own probe, counted in duplicates, never a reply to another; the
/// third probe's reply comes after its timeout, late, and its copy after that is a duplicate
/// too (a probe sent one at a time over a new socket after a loss saw neither). Text and JSON
/// agree.
#[test]
fn a_duplicated_udp_reply_is_dup() {
    let twice = Answer {
        delay: Arc::new(|n| Duration::from_millis(if n == 2 { 250 } else { 0 })),
        serial: false,
        again: Some(Duration::from_millis(25)),
    };
    let server = server(Net::Udp, twice).unwrap();
    let args = ["--count", "40", "--interval", "10ms", "--timeout", "150ms"];
    let out = probe(Net::Udp, &server.addr, &args);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let late = stdout.find(": seq=3 time=").expect(&stdout);
    assert!(stdout[late..].lines().next().unwrap().ends_with(" (late)"));
    // The copies of the last few may come after the last reply, when the run ends.
    for seq in 1..=30 {
        let dup = format!("from {}: seq={seq} (DUP!)", server.addr);
        assert_eq!(stdout.matches(&dup).count(), 1, "{seq}: {stdout}");
        if seq == 3 {
            assert!(stdout.find(&dup).unwrap() > late, "{stdout}");
        }
    }
    let dups = stdout.matches(" (DUP!)").count();
    let want = format!("40 sent, 40 received, 0 lost, 0 mismatched, +{dups} duplicates, 1 late");
    assert!(stdout.contains(&want), "{stdout}");
    let v = json(&probe(
        Net::Udp,
        &server.addr,
        &[&args[..], &["--json"]].concat(),
    ));
    assert!(num(&v, "duplicates") >= 30.0, "{v}");
    assert_eq!(num(&v, "received"), 40.0, "{v}");
}

/// Our own server over every transport, probes every millisecond: all back intact, in order,
/// nothing lost or mismatched, the count on time.
#[test]
fn fast_probes_against_our_server_over_every_transport() {
    let dir = tempfile::tempdir().unwrap();
    let unix = format!("unix:{}", dir.path().join("echo.sock").display());
    for (net, listen) in [
        (Net::Tcp, "127.0.0.1:0"),
        (Net::Unix, unix.as_str()),
        (Net::Udp, "udp:127.0.0.1:0"),
        (Net::Tls, "tls:127.0.0.1:0"),
    ] {
        let mut server = EchoServer::launch(std_tool(["echo-server", "-q", listen]));
        let addr = server.await_line(RUN).to_owned();
        let args = ["--count", "200", "--interval", "1ms", "--size", "1000"];
        let out = probe(net, &addr, &[&args[..], &["--json"]].concat());
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{net:?}: {err}");
        let v = json(&out);
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(num(&v, "received"), 200.0, "{v}");
        assert_eq!(num(&v, "late") + num(&v, "mismatched"), 0.0, "{v}");
        drop(server);
    }
}

/// A server that echoes three messages on each connection, then closes it.
fn three_then_close<S: Read + Write>(mut c: S) {
    let mut msg = [0u8; SIZE];
    for _ in 0..3 {
        if c.read_exact(&mut msg).is_err() || c.write_all(&msg).is_err() {
            return;
        }
    }
}

/// A stream that breaks loses the probe awaiting its reply on it, on its own line, and the
/// next probe goes over a new connection, as the probe did before it kept a schedule.
#[test]
fn a_broken_stream_loses_what_awaits_and_the_next_probe_reconnects() {
    for net in [Net::Tcp, Net::Unix, Net::Tls] {
        let dir = tempfile::tempdir().unwrap();
        let addr = match net {
            Net::Unix => {
                let path = dir.path().join("s.sock");
                let l = UnixListener::bind(&path).unwrap();
                thread::spawn(move || l.incoming().flatten().for_each(three_then_close));
                format!("unix:{}", path.display())
            }
            _ => {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = l.local_addr().unwrap().to_string();
                thread::spawn(move || l.incoming().flatten().for_each(three_then_close));
                addr
            }
        };
        let backend = Server {
            addr,
            _dir: dir,
            _proxy: None,
        };
        let Some(server) = (if net == Net::Tls {
            tls_in_front(backend)
        } else {
            Some(backend)
        }) else {
            continue;
        };
        let args = ["--count", "8", "--interval", "30ms", "--timeout", "1s"];
        let out = probe(net, &server.addr, &args);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{net:?}: {stdout}");
        assert!(
            stdout.contains("8 sent, 6 received, 2 lost"),
            "{net:?}: {stdout}"
        );
        for seq in [4, 8] {
            let lost = format!("no reply from {}: seq={seq}: ", server.addr);
            assert!(stdout.contains(&lost), "{net:?}: {stdout}");
        }
    }
}

/// Over UDP each probe carries its number and the run's random tag: a reply with the number
/// right but another tag (another run's message) is that probe's mismatch, named at the first
/// byte past the number, and fails the run.
#[test]
fn a_udp_reply_with_another_runs_tag_is_a_mismatch() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = format!("udp:{}", socket.local_addr().unwrap());
    thread::spawn(move || {
        let mut buf = [0u8; 65536];
        for n in 0.. {
            let Ok((len, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            if n == 1 {
                buf[8..len].iter_mut().for_each(|b| *b ^= 0x55);
            }
            let _ = socket.send_to(&buf[..len], from);
        }
    });
    let out = probe(Net::Udp, &addr, &["--count", "5", "--interval", "10ms"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(": seq=2 time=") && stdout.contains("differs from what was sent at byte 9"),
        "{stdout}"
    );
    assert!(
        stdout.contains("5 sent, 5 received, 0 lost, 1 mismatched"),
        "{stdout}"
    );
}
