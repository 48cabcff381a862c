//! Watching `echo-server` (issue 21, "Metrics and logs"): `--metrics ADDR` scraped by curl and
//! read by the `prometheus_client` package's own parser over TCP, Unix, TLS and UDP servers;
//! the metrics listener's HTTP and its bounds; `--log-format json`; SIGUSR1's statistics.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::util::{
    EchoServer, KillOnDrop, eventually, other, output_timeout, output_with_input, peer_available,
    peer_present, std_tool,
};

const LIMIT: Duration = Duration::from_secs(20);

/// The parser test: every sample as `name{label=value}` → its value, and each family's type
/// as `type:name`, printed as JSON.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    out["type:" + family.name] = family.type
    for s in family.samples:
        labels = "".join("{%s=%s}" % kv for kv in sorted(s.labels.items()))
        out[s.name + labels] = s.value
print(json.dumps(out))
"#;

/// Whether curl and the Python parser are here (a missing one fails under CI).
fn scrapers() -> bool {
    let parser = other("python3")
        .args(["-c", "import prometheus_client.parser"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    peer_available("curl") && peer_present("python3 prometheus_client", parser)
}

/// A server started with `args` and `--metrics 127.0.0.1:0`: it, its address line, and the
/// metrics URL it said on stderr.
fn watched(args: &[&str]) -> (EchoServer, String, String) {
    let mut cmd = std_tool(["echo-server"]);
    cmd.args(args).args(["--metrics", "127.0.0.1:0"]);
    let mut server = EchoServer::launch(cmd);
    let line = server.await_line(LIMIT).to_owned();
    let said = "metrics on ";
    assert!(server.logs_within(LIMIT, said), "{}", server.stderr());
    let err = server.stderr();
    let url = err
        .lines()
        .find_map(|l| l.strip_prefix(said))
        .unwrap_or_else(|| panic!("no metrics line: {err}"))
        .to_owned();
    (server, line, url)
}

/// `curl -sf` ARGS: what it printed (the test fails if curl does).
fn curl(args: &[&str]) -> String {
    let mut cmd = other("curl");
    cmd.args(["-sf", "--max-time", "10"]).args(args);
    let out = output_timeout(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        LIMIT,
    );
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The page read by prometheus_client's parser (which fails the test on anything malformed).
fn parsed(page: &str) -> HashMap<String, Value> {
    let mut cmd = other("python3");
    cmd.args(["-c", PARSE]);
    let out = output_with_input(cmd, page.as_bytes(), LIMIT);
    assert!(
        out.status.success(),
        "the parser refused the page: {}\n{page}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Scrapes with curl until `ready` holds for the raw page (connections settle after their
/// clients close), then parses it.
fn scrape_when(curl_args: &[&str], ready: impl Fn(&str) -> bool) -> HashMap<String, Value> {
    let mut page = String::new();
    let settled = eventually(LIMIT, || {
        page = curl(curl_args);
        ready(&page)
    });
    assert!(settled, "the figures never settled:\n{page}");
    parsed(&page)
}

fn num(m: &HashMap<String, Value>, key: &str) -> f64 {
    m.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no {key} in {m:?}"))
}

/// 1000 bytes over `s`, half-closed, and all of them back.
fn exchange<S: Read + Write>(mut s: S, shut: impl FnOnce(&S)) {
    let data = vec![b'x'; 1000];
    s.write_all(&data).unwrap();
    shut(&s);
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(back, data);
}

fn tcp(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s
}

/// The stream server's figures after 3 connections x 1000 bytes: exact.
fn assert_three_by_thousand(m: &HashMap<String, Value>) {
    assert_eq!(m["type:echo_server_connections"], "counter", "{m:?}");
    assert_eq!(m["type:echo_server_connections_open"], "gauge", "{m:?}");
    assert_eq!(num(m, "echo_server_connections_total"), 3.0);
    assert_eq!(num(m, "echo_server_connections_open"), 0.0);
    assert_eq!(num(m, "echo_server_echoed_bytes_total"), 3000.0);
    assert!(num(m, "process_start_time_seconds") > 1.6e9);
}

#[test]
fn tcp_figures_after_a_known_exchange() {
    if !scrapers() {
        return;
    }
    let (server, addr, url) = watched(&["127.0.0.1:0"]);
    for _ in 0..3 {
        exchange(tcp(&addr), |s| {
            s.shutdown(std::net::Shutdown::Write).unwrap()
        });
    }
    // A client that resets its connection: an error of kind "reset".
    let reset = tcp(&addr);
    reset.set_nonblocking(true).unwrap();
    let _ = (&reset).write(&[b'y'; 200_000]);
    set_linger_zero(&reset);
    drop(reset);
    let m = scrape_when(&[&url], |p| {
        p.contains("echo_server_connections_open 0\n")
            && p.contains("echo_server_connections_total 4\n")
    });
    assert_eq!(num(&m, "echo_server_connections_total"), 4.0);
    assert_eq!(
        num(&m, "echo_server_errors_total{kind=reset}"),
        1.0,
        "{m:?}"
    );
    assert_eq!(num(&m, "echo_server_errors_total{kind=accept}"), 0.0);
    assert!(num(&m, "echo_server_echoed_bytes_total") >= 3000.0);
    let (status, _) = server.stop(LIMIT);
    assert!(status.success());
}

/// SO_LINGER 0: the close sends an RST.
fn set_linger_zero(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own with a correctly sized linger struct.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

#[test]
fn unix_figures_and_a_metrics_socket_file() {
    if !scrapers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (echo, page) = (
        dir.path().join("echo.sock"),
        dir.path().join("metrics.sock"),
    );
    let mut cmd = std_tool(["echo-server"]);
    cmd.arg(format!("unix:{}", echo.display()))
        .arg("--metrics")
        .arg(format!("unix:{}", page.display()));
    let mut server = EchoServer::launch(cmd);
    server.await_line(LIMIT);
    for _ in 0..3 {
        let s = UnixStream::connect(&echo).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        exchange(s, |s| s.shutdown(std::net::Shutdown::Write).unwrap());
    }
    let socket = page.to_str().unwrap();
    let args = ["--unix-socket", socket, "http://localhost/metrics"];
    let m = scrape_when(&args, |p| p.contains("echo_server_connections_open 0\n"));
    assert_three_by_thousand(&m);
    let (status, _) = server.stop(LIMIT);
    assert!(status.success());
    assert!(
        !page.exists(),
        "the metrics socket file outlived the server"
    );
}

#[test]
fn tls_figures_count_handshake_failures_by_reason() {
    if !scrapers() {
        return;
    }
    let (server, line, url) = watched(&["--tls", "127.0.0.1:0"]);
    let bare = line.strip_prefix("tls:").unwrap().to_owned();
    for _ in 0..3 {
        let mut cmd = std_tool(["echo-client", "--insecure", &line]);
        cmd.arg("-q");
        let out = output_with_input(cmd, &[b'z'; 1000], LIMIT);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout.len(), 1000);
    }
    // Plain text to a TLS server: a handshake failure of reason "protocol", not an error.
    let mut plain = tcp(&bare);
    plain.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let _ = plain.read_to_end(&mut Vec::new());
    let m = scrape_when(&[&url], |p| {
        p.contains("echo_server_connections_total 4\n")
            && p.contains("echo_server_connections_open 0\n")
    });
    assert_eq!(num(&m, "echo_server_echoed_bytes_total"), 3000.0);
    let key = "echo_server_tls_handshake_failures_total{reason=protocol}";
    assert_eq!(num(&m, key), 1.0, "{m:?}");
    let errors: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("echo_server_errors_total{"))
        .map(|(_, v)| v.as_f64().unwrap())
        .sum();
    assert_eq!(
        errors, 0.0,
        "a failed handshake is not also a connection error: {m:?}"
    );
    let (status, _) = server.stop(LIMIT);
    assert!(status.success());
}

#[test]
fn udp_figures_after_a_known_exchange() {
    if !scrapers() {
        return;
    }
    let (server, line, url) = watched(&["udp:127.0.0.1:0"]);
    let addr = line.strip_prefix("udp:").unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    for _ in 0..3 {
        client.send_to(&[b'u'; 1000], addr).unwrap();
        let mut buf = [0u8; 2000];
        assert_eq!(client.recv(&mut buf).unwrap(), 1000);
    }
    let m = scrape_when(&[&url], |p| {
        p.contains("echo_server_datagrams_echoed_total 3\n")
    });
    assert_eq!(num(&m, "echo_server_echoed_bytes_total"), 3000.0);
    assert_eq!(
        num(&m, "echo_server_datagrams_dropped_total{reason=low_port}"),
        0.0
    );
    assert_eq!(num(&m, "echo_server_replies_unsent_total"), 0.0);
    // SIGUSR1 tells the same figures.
    server.signal(libc::SIGUSR1);
    assert!(
        server.logs_within(LIMIT, "datagrams_echoed 3, echoed_bytes 3000"),
        "{}",
        server.stderr()
    );
    let (status, _) = server.stop(LIMIT);
    assert!(status.success());
}

/// One raw HTTP request to the metrics listener: the status line of the answer and its length.
fn raw_request(addr: &str, request: &[u8]) -> (String, usize) {
    let mut s = tcp(addr);
    s.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    (
        text.lines().next().unwrap_or_default().to_owned(),
        answer.len(),
    )
}

/// The metrics listener answers as HTTP should, within bounds, and neither slow nor many
/// scrapers stop the echo.
#[test]
fn the_metrics_listener_is_bounded_and_apart() {
    let (server, addr, url) = watched(&["127.0.0.1:0"]);
    let host = url
        .strip_prefix("http://")
        .and_then(|u| u.strip_suffix("/metrics"))
        .unwrap()
        .to_owned();
    let (status, len) = raw_request(&host, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (head, head_len) = raw_request(&host, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(head, "HTTP/1.1 200 OK");
    assert!(head_len < len, "HEAD sent a body");
    let (missing, _) = raw_request(&host, b"GET /other HTTP/1.1\r\n\r\n");
    assert_eq!(missing, "HTTP/1.1 404 Not Found");
    let (post, _) = raw_request(&host, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(post, "HTTP/1.1 405 Method Not Allowed");
    let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    huge.resize(20_000, b'a');
    let (big, _) = raw_request(&host, &huge);
    assert_eq!(big, "HTTP/1.1 431 Request Header Fields Too Large");
    // Scrapers that connect and say nothing hold every slot; the echo goes on regardless.
    let idle: Vec<TcpStream> = (0..8).map(|_| tcp(&host)).collect();
    exchange(tcp(&addr), |s| {
        s.shutdown(std::net::Shutdown::Write).unwrap()
    });
    drop(idle);
    let (again, _) = raw_request(&host, b"GET /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(again, "HTTP/1.1 200 OK");
    // A scraper that never finishes its request is closed after the 5 s bound.
    let mut silent = tcp(&host);
    silent.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    let start = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = silent.read_to_end(&mut rest);
    assert!(
        rest.is_empty() && start.elapsed() < Duration::from_secs(10),
        "{rest:?}"
    );
    let (status, _) = server.stop(LIMIT);
    assert!(status.success());
}

#[test]
fn a_metrics_address_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut cmd = std_tool(["echo-server", "127.0.0.1:0", "--metrics", &addr]);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let out = output_timeout(cmd.spawn().unwrap(), LIMIT);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot serve metrics on {addr}")),
        "{err}"
    );
    assert!(err.contains("in use"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "an address line for a server that did not start"
    );
    // UDP is no place for HTTP: a usage error saying what to give.
    let out = output_timeout(
        std_tool(["echo-server", "--metrics", "udp:127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TCP or unix:"));
}

/// Every stderr line of a `--log-format json -v` TLS server is one JSON object, with the
/// fields each event promises.
#[test]
fn json_log_lines_carry_the_events_fields() {
    let mut cmd = std_tool([
        "echo-server",
        "--tls",
        "--log-format",
        "json",
        "-v",
        "127.0.0.1:0",
    ]);
    cmd.arg("--no-status");
    let mut server = EchoServer::launch(cmd);
    let line = server.await_line(LIMIT).to_owned();
    let bare = line.strip_prefix("tls:").unwrap().to_owned();
    let client = std_tool(["echo-client", "--insecure", "-q", &line]);
    let out = output_with_input(client, &[b'j'; 1000], LIMIT);
    assert!(out.status.success(), "{out:?}");
    let mut plain = tcp(&bare);
    plain.write_all(b"hello\r\n\r\n").unwrap();
    let _ = plain.read_to_end(&mut Vec::new());
    assert!(
        server.logs_within(LIMIT, "\"tls_handshake_failed\""),
        "{}",
        server.stderr()
    );
    let (status, err) = server.stop(LIMIT);
    assert!(status.success());
    let events: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for e in &events {
        let time = e["time"].as_str().unwrap();
        assert!(
            time.len() == 27 && time.ends_with('Z') && &time[10..11] == "T",
            "{time}"
        );
        assert!(e["level"].is_string() && e["message"].is_string(), "{e}");
    }
    let find = |name: &str| {
        events
            .iter()
            .filter(|e| e["event"] == name)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(find("listening")[0]["address"], line.as_str());
    assert_eq!(find("accepted").len(), 2);
    assert!(
        find("accepted")[0]["peer"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let closed = &find("closed")[0];
    assert_eq!(closed["bytes_in"], 1000);
    assert_eq!(closed["bytes_out"], 1000);
    assert!(closed["duration_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(closed["reason"], "closed");
    let failed = &find("tls_handshake_failed")[0];
    assert!(failed["peer"].is_string());
    assert!(
        failed["reason"].as_str().unwrap().contains("not TLS"),
        "{failed}"
    );
    assert_eq!(find("summary")[0]["connections"], 2);
}

/// SIGUSR1 prints the figures once, even under -q, and the server goes on serving.
#[test]
fn sigusr1_prints_the_figures_and_goes_on() {
    let mut cmd = std_tool(["echo-server", "-q", "127.0.0.1:0"]);
    cmd.stdin(Stdio::null());
    let mut server = EchoServer::launch(cmd);
    let addr = server.await_line(LIMIT).to_owned();
    exchange(tcp(&addr), |s| {
        s.shutdown(std::net::Shutdown::Write).unwrap()
    });
    let settled = eventually(LIMIT, || {
        server.signal(libc::SIGUSR1);
        let said = eventually(Duration::from_secs(2), || {
            server.stderr().contains("statistics")
        });
        said && server.stderr().contains("connections_open 0")
    });
    assert!(settled, "{}", server.stderr());
    let err = server.stderr();
    let stats = err
        .lines()
        .find(|l| l.contains("connections_open 0"))
        .unwrap();
    assert!(
        stats.contains("connections 1") && stats.contains("echoed_bytes 1000"),
        "{stats}"
    );
    // Still serving.
    exchange(tcp(&addr), |s| {
        s.shutdown(std::net::Shutdown::Write).unwrap()
    });
    let (status, _) = server.stop(LIMIT);
    assert!(status.success());
}

/// The README's scrape example, run by bash as written but for the metrics port (9464 may be
/// taken here, or by a test running beside this one), and its output as the README shows it.
#[test]
fn readme_scrape_snippet_runs_as_written() {
    if !scrapers() {
        return;
    }
    let readme = crate::util::readme();
    let marker = "<!-- tested: tests/metrics.rs readme_scrape_snippet_runs_as_written -->";
    let (snippet, rest) = crate::util::readme_block(&readme, marker, "bash");
    let shown = rest
        .split_once("```\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(out, _)| out)
        .expect("the output block after the snippet");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let snippet = snippet.replace("9464", &port.to_string());
    let dir = tempfile::tempdir().unwrap();
    let path = crate::util::path_with_bin(dir.path());
    let mut cmd = other("bash");
    cmd.arg("-c").arg(&snippet).env("PATH", path);
    let out = output_with_input(cmd, b"", LIMIT);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), shown);
}

/// Without -v, the lines the server says anyway (a warning, a failed handshake) are JSON too.
#[test]
fn json_log_lines_without_verbose() {
    let args = [
        "echo-server",
        "--tls",
        "--mode",
        "600",
        "--log-format",
        "json",
    ];
    let mut server = EchoServer::launch(std_tool(args.iter().chain(&["127.0.0.1:0"])));
    let line = server.await_line(LIMIT).to_owned();
    let mut plain = tcp(line.strip_prefix("tls:").unwrap());
    plain.write_all(b"hello\r\n\r\n").unwrap();
    let _ = plain.read_to_end(&mut Vec::new());
    assert!(
        server.logs_within(LIMIT, "\"tls_handshake_failed\""),
        "{}",
        server.stderr()
    );
    let (status, err) = server.stop(LIMIT);
    assert!(status.success());
    let events: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let warned = events
        .iter()
        .find(|e| e["level"] == "warn")
        .expect("the --mode warning");
    assert!(
        warned["message"].as_str().unwrap().contains("--mode"),
        "{warned}"
    );
    let failed = events
        .iter()
        .find(|e| e["event"] == "tls_handshake_failed")
        .unwrap();
    assert!(
        failed["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{failed}"
    );
    assert_eq!(failed["kind"], "protocol", "{failed}");
    assert!(events.iter().any(|e| e["event"] == "summary"));
}

/// In inetd mode (one connection a process) SIGUSR1 tells that connection's figures and does
/// not end it.
#[test]
fn sigusr1_in_inetd_mode_does_not_end_the_connection() {
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(LIMIT)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let mut cmd = std_tool(["echo-server", "--inetd"]);
    cmd.stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    ours.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    ours.read_exact(&mut back).unwrap();
    crate::util::signal(&child.0, libc::SIGUSR1);
    assert!(
        eventually(LIMIT, || said().contains("statistics after")),
        "{}",
        said()
    );
    assert!(said().contains("echoed_bytes"), "{}", said());
    // Still echoing, then a normal end.
    ours.write_all(b"pong").unwrap();
    ours.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"pong");
    ours.shutdown(std::net::Shutdown::Write).unwrap();
    let status = crate::util::wait_timeout(&mut child.0, LIMIT);
    assert!(status.success(), "{}", said());
}

/// A TCP connection from the loopback address `from` (any of 127/8 is ours on Linux).
fn tcp_from(from: &str, addr: &str) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let local: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into())?;
    let remote: std::net::SocketAddr = addr.parse().unwrap();
    socket.connect(&remote.into())?;
    let s = TcpStream::from(socket);
    s.set_read_timeout(Some(LIMIT))?;
    Ok(s)
}

/// What `--delay`, `--reset-probability` and `--deny` did is on the page and in SIGUSR1's line:
/// three clients served (each echo delayed, then reset) and two refused.
#[test]
fn tcp_faults_and_refusals_are_counted() {
    if !scrapers() {
        return;
    }
    let args = [
        "--delay",
        "1ms",
        "--reset-probability",
        "1",
        "--deny",
        "127.0.0.2",
        "127.0.0.1:0",
    ];
    let (server, addr, url) = watched(&args);
    for _ in 0..3 {
        let mut s = tcp(&addr);
        s.write_all(b"hello").unwrap();
        let mut back = [0u8; 5];
        s.read_exact(&mut back).unwrap();
        // Then the reset: an error or an end, never more data.
        let mut rest = Vec::new();
        assert!(s.read_to_end(&mut rest).is_err() || rest.is_empty());
    }
    for _ in 0..2 {
        if let Ok(mut s) = tcp_from("127.0.0.2", &addr) {
            let _ = s.read_to_end(&mut Vec::new());
        }
    }
    let m = scrape_when(&[&url], |p| {
        p.contains("echo_server_faults_injected_total{kind=\"reset\"} 3\n")
            && p.contains("echo_server_refused_total{reason=\"denied\"} 2\n")
    });
    assert_eq!(m["type:echo_server_faults_injected"], "counter", "{m:?}");
    let fault = |kind: &str| {
        num(
            &m,
            &format!("echo_server_faults_injected_total{{kind={kind}}}"),
        )
    };
    assert_eq!(fault("delay"), 3.0);
    assert_eq!(fault("reset"), 3.0);
    for kind in ["bandwidth", "close_after", "drop"] {
        assert_eq!(fault(kind), 0.0, "{kind}");
    }
    let refused = |why: &str| num(&m, &format!("echo_server_refused_total{{reason={why}}}"));
    assert_eq!(refused("denied"), 2.0);
    assert_eq!(refused("not_allowed"), 0.0);
    assert_eq!(refused("too_many"), 0.0);
    server.signal(libc::SIGUSR1);
    let said = "faults_injected 6 (delay 3, reset 3), refused 2 (denied 2)";
    assert!(server.logs_within(LIMIT, said), "{}", server.stderr());
    let (status, _) = server.stop(LIMIT);
    assert!(status.success());
}

/// A UDP datagram from the loopback address `from` to `addr`.
fn datagram_from(from: &str, addr: &str) {
    let socket = UdpSocket::bind(format!("{from}:0")).unwrap();
    socket.send_to(b"ping", addr).unwrap();
}

/// Over UDP: datagrams denied, over `--rate-limit` (per source) and dropped by
/// `--drop-probability`, each counted once.
#[test]
fn udp_faults_and_refusals_are_counted() {
    if !scrapers() {
        return;
    }
    // 6/m: a source's second datagram within 10 s is over the limit, however slow the machine.
    let args = [
        "--drop-probability",
        "1",
        "--rate-limit",
        "6/m",
        "--deny",
        "127.0.0.2",
        "udp:127.0.0.1:0",
    ];
    let (server, line, url) = watched(&args);
    let addr = line.strip_prefix("udp:").unwrap().to_owned();
    // Three sources' first datagrams pass the limit and are dropped; five more from one of
    // them (another port, the same address) are over it; two are denied.
    for from in ["127.0.0.1", "127.0.0.3", "127.0.0.4"] {
        datagram_from(from, &addr);
    }
    let repeat = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..5 {
        repeat.send_to(b"ping", &addr).unwrap();
    }
    for _ in 0..2 {
        datagram_from("127.0.0.2", &addr);
    }
    let m = scrape_when(&[&url], |p| {
        p.contains("echo_server_refused_total{reason=\"denied\"} 2\n")
            && p.contains("echo_server_refused_total{reason=\"rate_limited\"} 5\n")
            && p.contains("echo_server_faults_injected_total{kind=\"drop\"} 3\n")
    });
    let fault = |kind: &str| {
        num(
            &m,
            &format!("echo_server_faults_injected_total{{kind={kind}}}"),
        )
    };
    assert_eq!(fault("drop"), 3.0);
    assert_eq!(fault("delay"), 0.0);
    let refused = |why: &str| num(&m, &format!("echo_server_refused_total{{reason={why}}}"));
    assert_eq!(refused("denied"), 2.0);
    assert_eq!(refused("rate_limited"), 5.0);
    assert_eq!(refused("not_allowed"), 0.0);
    assert!(
        !m.contains_key("echo_server_refused_total{reason=too_many}"),
        "{m:?}"
    );
    assert_eq!(num(&m, "echo_server_datagrams_echoed_total"), 0.0);
    server.signal(libc::SIGUSR1);
    let said = "faults_injected 3 (drop 3), refused 7 (denied 2, rate_limited 5)";
    assert!(server.logs_within(LIMIT, said), "{}", server.stderr());
    let (status, _) = server.stop(LIMIT);
    assert!(status.success());
}

/// `--log-format json`: a refused client (UDP: source) is a `refused` event with its peer and
/// reason, and each fault asked for a `fault_injection` event at start.
#[test]
fn json_refusals_and_fault_announcements() {
    for listen in ["127.0.0.1:0", "udp:127.0.0.1:0"] {
        let args = ["echo-server", "--log-format", "json", "--deny", "127.0.0.1"];
        let faults = ["--delay", "5ms", listen];
        let mut server = EchoServer::launch(std_tool(args.iter().chain(&faults)));
        let line = server.await_line(LIMIT).to_owned();
        match line.strip_prefix("udp:") {
            Some(addr) => datagram_from("127.0.0.1", addr),
            None => {
                let _ = tcp(&line).read_to_end(&mut Vec::new());
            }
        }
        assert!(
            server.logs_within(LIMIT, "\"refused\""),
            "{}",
            server.stderr()
        );
        let (status, err) = server.stop(LIMIT);
        assert!(status.success());
        let events: Vec<Value> = err
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let refused: Vec<&Value> = events.iter().filter(|e| e["event"] == "refused").collect();
        assert_eq!(refused.len(), 1, "{err}");
        let refused = refused[0];
        assert!(
            refused["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{refused}"
        );
        assert_eq!(refused["reason"], "in a --deny network", "{refused}");
        assert_eq!(refused["rule"], "denied", "{refused}");
        let fault = events
            .iter()
            .find(|e| e["event"] == "fault_injection")
            .unwrap_or_else(|| panic!("no fault_injection event: {err}"));
        assert_eq!(fault["kind"], "delay", "{fault}");
        assert!(!events.iter().any(|e| e["event"] == "message"), "{err}");
    }
}

/// The host:port of a metrics URL said on stderr.
fn host_of(url: &str) -> String {
    url.strip_prefix("http://")
        .and_then(|u| u.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("not a metrics URL: {url}"))
        .to_owned()
}

/// Connections that stay silent (slowloris) cannot keep a scrape out: however many hold the
/// listener, a new one takes the place of the oldest at once, not after their 5 s bound.
#[test]
fn silent_connections_do_not_keep_a_scrape_out() {
    let (server, _, url) = watched(&["127.0.0.1:0"]);
    let host = host_of(&url);
    let silent: Vec<TcpStream> = (0..20).map(|_| tcp(&host)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let start = std::time::Instant::now();
    let (status, _) = raw_request(&host, b"GET /metrics HTTP/1.1\r\n\r\n");
    let took = start.elapsed();
    assert_eq!(status, "HTTP/1.1 200 OK", "after {took:?}");
    assert!(took < Duration::from_secs(3), "the scrape waited {took:?}");
    drop(silent);
    let (status, _) = server.stop(LIMIT);
    assert!(status.success());
}

/// An oversized request head gets its 431 and a clean close: the rest of it is read and
/// discarded after the answer, so the close is not a reset that fails the client's send (a
/// client that gives up on a failed send never reads the answer). curl's megabyte header is
/// answered the same way.
#[test]
fn an_oversized_request_head_gets_its_431_and_a_clean_close() {
    if !scrapers() {
        return;
    }
    let (server, _, url) = watched(&["127.0.0.1:0"]);
    let host = host_of(&url);
    let s = tcp(&host);
    let mut writer = s.try_clone().unwrap();
    // 8 MB: more than the socket buffers hold, so the server closes while it is still sent.
    let sent = std::thread::spawn(move || {
        let mut head = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
        head.resize(8 << 20, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        writer.write_all(&head)
    });
    let mut answer = Vec::new();
    let read = (&s).read_to_end(&mut answer);
    let sent = sent.join().unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 431 Request Header Fields Too Large"),
        "{read:?}: {text}"
    );
    assert!(sent.is_ok(), "the head's send failed: {sent:?}");
    assert!(read.is_ok(), "{read:?}");
    drop(s);
    // A megabyte header line from curl (about the most it sends) gets the 431 too.
    let dir = tempfile::tempdir().unwrap();
    let header = dir.path().join("header");
    let mut big = b"X-Big: ".to_vec();
    big.resize(1_000_000, b'a');
    big.push(b'\n');
    std::fs::write(&header, &big).unwrap();
    let mut cmd = other("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "10",
    ])
    .arg("-H")
    .arg(format!("@{}", header.display()))
    .arg(&url);
    let out = output_timeout(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        LIMIT,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "431", "{out:?}");
    let (status, _) = raw_request(&host, b"GET /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (status, _) = server.stop(LIMIT);
    assert!(status.success());
}
