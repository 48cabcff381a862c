//! The PROXY protocol: `echo-server --proxy-protocol` behind HAProxy (send-proxy and
//! send-proxy-v2, with the README's configuration) and behind our own `echo-client
//! --send-proxy`, over TCP, Unix sockets and TLS; refusals, `=optional`, a header that never
//! completes, a malformed one, and the bytes that follow a header in the same segment. Then
//! what an attacker or a confused user would try: stalled headers against `--max-connections`
//! and a stop, undecided first bytes, a v2 length announced and not sent, CRLF in a refusal,
//! a header sent to a server that does not expect one, a silent client under `=optional`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{
    EchoServer, KillOnDrop, assert_no_panic, eventually, other, output_with_input, peer_present,
    std_tool,
};

const LIMIT: Duration = Duration::from_secs(10);

const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// `echo-server ARGS` once it listens, and its address line.
fn server(args: &[&str]) -> (EchoServer, String) {
    let mut server = EchoServer::launch(std_tool(["echo-server"].iter().chain(args)));
    let line = server.await_line(LIMIT).to_owned();
    (server, line)
}

/// `echo-client ARGS` with `data` on stdin: its stdout, after checking it exited 0.
fn client(args: &[&str], data: &[u8]) -> Vec<u8> {
    let out = output_with_input(std_tool(["echo-client"].iter().chain(args)), data, LIMIT);
    assert_no_panic(&out.stderr);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {err}");
    out.stdout
}

/// Connects, sends `data` in one write, half-closes, and returns what came back (an error
/// such as a reset ends it early).
fn exchange(addr: &str, data: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let port = s.local_addr().unwrap().port();
    s.write_all(data).unwrap();
    let _ = s.shutdown(Shutdown::Write);
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back);
    (port, back)
}

/// A v2 header for TCP over IPv4 from `src` to `dst`.
fn v2_header(src: ([u8; 4], u16), dst: ([u8; 4], u16)) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend([0x21, 0x11, 0, 12]);
    h.extend(src.0);
    h.extend(dst.0);
    h.extend(src.1.to_be_bytes());
    h.extend(dst.1.to_be_bytes());
    h
}

/// A port nothing listens on now (for HAProxy's frontend and `-p`).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// HAProxy's binary, or `None` (the test is skipped; under CI=1 it fails).
fn haproxy() -> Option<&'static str> {
    let path = "/usr/sbin/haproxy";
    peer_present("haproxy", Path::new(path).exists()).then_some(path)
}

/// The README's HAProxy configuration, for a frontend on `front` and our server on `back`,
/// with `send` (`send-proxy-v2` as written, or `send-proxy`).
fn readme_haproxy_config(front: &str, back: &str, send: &str) -> String {
    let readme = include_str!("../README.md");
    let start = readme
        .find("```haproxy\n")
        .expect("the README has a haproxy block");
    let block = &readme[start + "```haproxy\n".len()..];
    let block = &block[..block.find("```").unwrap()];
    let server = "127.0.0.1:7007 send-proxy-v2 check";
    assert!(block.contains("127.0.0.1:8080") && block.contains(server));
    // Checks every 200ms rather than 2s, so that one comes within the test.
    block
        .replace("127.0.0.1:8080", front)
        .replace(server, &format!("{back} {send} check inter 200ms"))
}

/// HAProxy, configured as the README says with `send`, in front of our server at `back`: its
/// guard (which kills it, whatever the test does) and its frontend's address. A port free
/// when chosen may be taken by anyone before HAProxy binds it: HAProxy then exits, and another
/// port is tried.
fn start_haproxy(haproxy: &str, dir: &Path, back: &str, send: &str) -> (KillOnDrop, String) {
    let cfg = dir.join("haproxy.cfg");
    for _ in 0..5 {
        let front = format!("127.0.0.1:{}", free_port());
        std::fs::write(&cfg, readme_haproxy_config(&front, back, send)).unwrap();
        let check = other(haproxy)
            .arg("-c")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let check = crate::util::output_timeout(check, LIMIT);
        let why = String::from_utf8_lossy(&check.stderr);
        assert!(check.status.success(), "{why}");
        let proxy = other(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut proxy = KillOnDrop(proxy);
        let mut exited = || !matches!(proxy.0.try_wait(), Ok(None));
        let listening = eventually(LIMIT, || exited() || TcpStream::connect(&front).is_ok());
        assert!(listening, "HAProxy does not listen on {front}");
        // Whoever took the port would have answered that connect: HAProxy is gone then.
        std::thread::sleep(Duration::from_millis(100));
        if !exited() {
            return (proxy, front);
        }
    }
    panic!("HAProxy could bind none of 5 free ports");
}

/// HAProxy in front of a `-v --proxy-protocol` server, configured as the README says with
/// `send`: data echoes through, and the server's open line names the client's own address
/// (its port, as HAProxy saw it), with HAProxy's connection as where it came from. HAProxy's
/// health checks carry a header too (`check`): the server's stderr comes to hold `seen` at
/// least `times` times, and no refusal.
fn through_haproxy(send: &str, version: &str, (seen, times): (&str, usize)) {
    let Some(haproxy) = haproxy() else { return };
    let (server, back) = server(&["-v", "--no-status", "--proxy-protocol", "127.0.0.1:0"]);
    let dir = tempfile::tempdir().unwrap();
    let (_proxy, front) = start_haproxy(haproxy, dir.path(), &back, send);
    let data = format!("through HAProxy with {send}\n");
    let (port, back_data) = exchange(&front, data.as_bytes());
    assert_eq!(String::from_utf8_lossy(&back_data), data);
    let want = format!("127.0.0.1:{port}: open (PROXY {version} from 127.0.0.1:");
    assert!(
        server.logs_within(LIMIT, &want),
        "no {want:?} in: {}",
        server.stderr()
    );
    let checked = eventually(LIMIT, || server.stderr().matches(seen).count() >= times);
    assert!(checked, "no health check {seen:?} in: {}", server.stderr());
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
    assert!(!err.contains("refused"), "{err}");
}

#[test]
fn haproxy_send_proxy_names_the_client() {
    // A v1 check names HAProxy's own connection: an open line besides the client's.
    through_haproxy("send-proxy", "v1", (": open (PROXY v1 from ", 2));
}

#[test]
fn haproxy_send_proxy_v2_names_the_client() {
    through_haproxy(
        "send-proxy-v2",
        "v2",
        (": open (PROXY v2 naming no client)", 1),
    );
}

#[test]
fn our_client_sends_v1_and_v2_naming_its_own_address() {
    let (server, addr) = server(&["-v", "--no-status", "--proxy-protocol", "127.0.0.1:0"]);
    for (version, mode) in [
        ("v1", &[][..]),
        ("v2", &[][..]),
        ("v2", &["--count", "2", "--interval", "10ms"][..]),
    ] {
        let port = free_port().to_string();
        let mut args = vec!["--send-proxy", version, "-p", &port];
        if !mode.is_empty() {
            // The measure modes choose their own source port.
            args = vec!["--send-proxy", version];
            args.extend_from_slice(mode);
        }
        args.push(&addr);
        let out = client(&args, b"from our client\n");
        if mode.is_empty() {
            assert_eq!(out, b"from our client\n");
            let want = format!("127.0.0.1:{port}: open (PROXY {version} from 127.0.0.1:{port})");
            assert!(
                server.logs_within(LIMIT, &want),
                "no {want:?}: {}",
                server.stderr()
            );
        }
    }
    // Load mode too: every connection starts with a header, or the server would refuse it.
    client(
        &[
            "--send-proxy",
            "v1",
            "--connections",
            "3",
            "--duration",
            "300ms",
            &addr,
        ],
        b"",
    );
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
    assert!(!err.contains("refused"), "{err}");
    assert!(
        err.contains("open (PROXY v2 from"),
        "probe mode sent no v2 header: {err}"
    );
}

#[test]
fn our_client_over_unix_and_tls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.sock");
    let listen = format!("unix:{}", path.display());
    let (server1, addr) = server(&["-v", "--no-status", "--proxy-protocol", &listen]);
    for version in ["v1", "v2"] {
        let out = client(&["--send-proxy", version, &addr], b"over unix\n");
        assert_eq!(out, b"over unix\n");
        let want = format!("open (PROXY {version} naming no client)");
        assert!(
            server1.logs_within(LIMIT, &want),
            "no {want:?}: {}",
            server1.stderr()
        );
    }
    let (server2, addr) = server(&[
        "-v",
        "--no-status",
        "--tls",
        "--proxy-protocol",
        "127.0.0.1:0",
    ]);
    let port = free_port().to_string();
    let out = client(
        &["--insecure", "--send-proxy", "v2", "-p", &port, &addr],
        b"over TLS\n",
    );
    assert_eq!(out, b"over TLS\n");
    let want = format!("127.0.0.1:{port}: open (PROXY v2 from 127.0.0.1:{port})");
    assert!(
        server2.logs_within(LIMIT, &want),
        "no {want:?}: {}",
        server2.stderr()
    );
    for server in [server1, server2] {
        let (status, err) = server.stop(LIMIT);
        assert!(status.success(), "{err}");
    }
}

#[test]
fn bytes_after_the_header_in_the_same_segment_are_echoed() {
    let (server, addr) = server(&["-v", "--no-status", "--proxy-protocol", "127.0.0.1:0"]);
    let mut v1 = b"PROXY TCP4 192.0.2.7 127.0.0.1 40001 7\r\n".to_vec();
    v1.extend_from_slice(b"PROXY TCP4 looks like a header but is data\r\n");
    let (_, back) = exchange(&addr, &v1);
    assert_eq!(back, b"PROXY TCP4 looks like a header but is data\r\n");
    let mut v2 = v2_header(([192, 0, 2, 8], 40002), ([127, 0, 0, 1], 7));
    v2.extend_from_slice(V2_SIGNATURE);
    v2.extend_from_slice(b" and more");
    let (_, back) = exchange(&addr, &v2);
    assert_eq!(back, [V2_SIGNATURE, b" and more"].concat());
    assert!(server.logs_within(LIMIT, "192.0.2.7:40001: open (PROXY v1 from 127.0.0.1:"));
    assert!(server.logs_within(LIMIT, "192.0.2.8:40002: open (PROXY v2 from 127.0.0.1:"));
    // A header that arrives a few bytes at a time is read whole all the same.
    let v1 = b"PROXY TCP4 192.0.2.9 127.0.0.1 40003 7\r\n".to_vec();
    let v2 = v2_header(([192, 0, 2, 9], 40004), ([127, 0, 0, 1], 7));
    for (header, port, version) in [(v1, 40003, "v1"), (v2, 40004, "v2")] {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        for piece in header.chunks(5) {
            s.write_all(piece).unwrap();
            std::thread::sleep(Duration::from_millis(30));
        }
        s.write_all(b"late").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"late", "{version}");
        let want = format!("192.0.2.9:{port}: open (PROXY {version} from");
        assert!(
            server.logs_within(LIMIT, &want),
            "no {want:?}: {}",
            server.stderr()
        );
    }
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
}

#[test]
fn a_connection_without_a_header_is_refused_and_logged() {
    // Without -v: the refusal is said all the same, a line naming the peer and the bytes.
    let (server, addr) = server(&["--no-status", "--proxy-protocol", "127.0.0.1:0"]);
    let (port, back) = exchange(&addr, b"hello\n");
    assert!(back.is_empty(), "a refused connection got {back:?}");
    let want = format!(
        "127.0.0.1:{port}: refused: no PROXY protocol header: the connection starts with \"hello\\n\""
    );
    assert!(
        server.logs_within(LIMIT, &want),
        "no {want:?}: {}",
        server.stderr()
    );
    // A flood is said at most about once a second, and counted.
    for _ in 0..5 {
        exchange(&addr, b"x");
    }
    let counted = "refused without a PROXY protocol header for 5 more clients";
    assert!(server.logs_within(LIMIT, counted), "{}", server.stderr());
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
    assert_eq!(err.matches(": refused: ").count(), 1, "{err}");
}

#[test]
fn optional_serves_direct_connections_as_they_are() {
    let (server, addr) = server(&[
        "-v",
        "--no-status",
        "--proxy-protocol=optional",
        "127.0.0.1:0",
    ]);
    let (port, back) = exchange(&addr, b"health check\n");
    assert_eq!(back, b"health check\n");
    assert!(server.logs_within(
        LIMIT,
        &format!("127.0.0.1:{port}: open (no PROXY protocol header)")
    ));
    // Bytes that start like a signature but are not one are data too.
    let (_, back) = exchange(&addr, b"PROXIES\n");
    assert_eq!(back, b"PROXIES\n");
    // An empty line typed by a person starts like a v2 signature: it is echoed all the same,
    // soon (a proxy sends its header at once).
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let start = Instant::now();
    s.write_all(b"\r\n").unwrap();
    let mut line = [0u8; 2];
    s.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"\r\n");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    drop(s);
    // A connection that says nothing is served (and closed) as is.
    let (_, back) = exchange(&addr, b"");
    assert!(back.is_empty());
    // A header is still read and stripped.
    let (_, back) = exchange(&addr, b"PROXY TCP4 192.0.2.7 127.0.0.1 40001 7\r\nbehind\n");
    assert_eq!(back, b"behind\n");
    // A v2 LOCAL header (HAProxy's own check) keeps the real peer.
    let mut local = V2_SIGNATURE.to_vec();
    local.extend([0x20, 0x00, 0, 0]);
    local.extend_from_slice(b"check\n");
    let (port, back) = exchange(&addr, &local);
    assert_eq!(back, b"check\n");
    let want = format!("127.0.0.1:{port}: open (PROXY v2 naming no client)");
    assert!(
        server.logs_within(LIMIT, &want),
        "no {want:?}: {}",
        server.stderr()
    );
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
    assert!(!err.contains("refused"), "{err}");
}

#[test]
fn a_header_that_never_completes_is_cut_at_the_deadline() {
    let (server, addr) = server(&[
        "--no-status",
        "--idle-timeout",
        "1s",
        "--proxy-protocol",
        "127.0.0.1:0",
    ]);
    for partial in [
        &b"PROXY TCP4 192.0.2.7"[..],
        &V2_SIGNATURE[..7],
        &v2_header(([1, 2, 3, 4], 1), ([5, 6, 7, 8], 2))[..20],
    ] {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        s.write_all(partial).unwrap();
        let start = Instant::now();
        let mut back = Vec::new();
        // Closed by the server (an end or a reset), not by the read timeout.
        let _ = s.read_to_end(&mut back);
        let took = start.elapsed();
        assert!(back.is_empty(), "{partial:?}: got {back:?}");
        assert!(
            took >= Duration::from_millis(800) && took < Duration::from_secs(5),
            "{partial:?}: closed after {took:?}"
        );
    }
    let want = "refused: no whole PROXY protocol header within 1s";
    assert!(server.logs_within(LIMIT, want), "{}", server.stderr());
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
}

#[test]
fn a_malformed_header_is_refused_with_a_clear_line() {
    let (server, addr) = server(&["--no-status", "--proxy-protocol", "127.0.0.1:0"]);
    let (port, back) = exchange(&addr, b"PROXY TCP4 999.0.2.7 127.0.0.1 40001 7\r\ndata\n");
    assert!(back.is_empty(), "{back:?}");
    let want = format!("127.0.0.1:{port}: refused: invalid PROXY v1 header: ");
    assert!(
        server.logs_within(LIMIT, &want),
        "no {want:?}: {}",
        server.stderr()
    );
    assert!(server.logs_within(LIMIT, "source"), "{}", server.stderr());
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
    let line = err.lines().find(|l| l.contains(": refused: ")).unwrap();
    assert!(!line.contains('\r'), "{line:?}");
    // A v1 line that does not end within the specification's 107 bytes.
    let (server, addr) = self::server(&["--no-status", "--proxy-protocol", "127.0.0.1:0"]);
    let long = [&b"PROXY TCP4 "[..], &[b'1'; 120][..], b"\r\n"].concat();
    let (_, back) = exchange(&addr, &long);
    assert!(back.is_empty(), "{back:?}");
    let want = "refused: invalid PROXY v1 header: no line end in its first 107 bytes";
    assert!(server.logs_within(LIMIT, want), "{}", server.stderr());
}

#[test]
fn unix_and_tls_servers_read_the_header_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sock");
    let listen = format!("unix:{}", path.display());
    let (server, _) = server(&["-v", "--no-status", "--proxy-protocol", &listen]);
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(b"PROXY TCP6 2001:db8::7 ::1 40001 7\r\nunix\n")
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"unix\n");
    assert!(
        server.logs_within(LIMIT, "[2001:db8::7]:40001: open (PROXY v1 from pid "),
        "{}",
        server.stderr()
    );
    // A TLS client without a header is refused before its handshake.
    let (tls, addr) = self::server(&["--no-status", "--tls", "--proxy-protocol", "127.0.0.1:0"]);
    let out = output_with_input(
        std_tool(["echo-client", "--insecure", &addr]),
        b"no header\n",
        LIMIT,
    );
    assert!(!out.status.success());
    assert!(
        tls.logs_within(
            LIMIT,
            "refused: no PROXY protocol header: the connection starts with \"\\x16\\x03"
        ),
        "{}",
        tls.stderr()
    );
    for server in [server, tls] {
        let (status, err) = server.stop(LIMIT);
        assert!(status.success(), "{err}");
    }
}

#[test]
fn meaningless_combinations_are_usage_errors() {
    for (args, want) in [
        (
            &["echo-server", "--proxy-protocol", "udp:127.0.0.1:0"][..],
            "--proxy-protocol reads a header at the start of each connection, and UDP has none",
        ),
        (
            &["echo-client", "--send-proxy", "v1", "udp:127.0.0.1:7"][..],
            "--send-proxy sends a header at the start of each connection, and UDP makes none",
        ),
        (
            &["echo-client", "--send-proxy", "v3", "127.0.0.1:7"][..],
            "[possible values: v1, v2]",
        ),
        (
            &["echo-server", "--proxy-protocol=sometimes", "127.0.0.1:0"][..],
            "[possible values: required, optional]",
        ),
    ] {
        let out = std_tool(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: wanted {want:?}: {err}");
    }
}

/// inetd mode reads the header too; a refusal there ends the one connection with exit 1,
/// naming the peer and the reason.
#[test]
fn inetd_mode_reads_the_header_and_fails_a_refused_connection() {
    for (sent, ok) in [
        (
            &b"PROXY TCP4 192.0.2.7 127.0.0.1 40001 7\r\nvia inetd\n"[..],
            true,
        ),
        (&b"no header\n"[..], false),
    ] {
        let (mut client, served) = crate::util::tcp_pair();
        let server = std_tool(["echo-server", "--inetd", "-v", "--proxy-protocol"])
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(served)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        client.set_read_timeout(Some(LIMIT)).unwrap();
        client.write_all(sent).unwrap();
        let _ = client.shutdown(Shutdown::Write);
        let mut back = Vec::new();
        let _ = client.read_to_end(&mut back);
        let out = crate::util::output_timeout(server, LIMIT);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_no_panic(&out.stderr);
        if ok {
            assert_eq!(back, b"via inetd\n");
            assert!(out.status.success(), "{err}");
            assert!(
                err.contains("192.0.2.7:40001: open (PROXY v1 from 127.0.0.1:"),
                "{err}"
            );
        } else {
            assert!(back.is_empty(), "{back:?}");
            assert_eq!(out.status.code(), Some(1), "{err}");
            assert!(err.contains("refused: no PROXY protocol header"), "{err}");
        }
    }
}

/// Sockets that connect and send a header that never ends: `n` of them, each with `start`.
fn stalled(addr: &str, start: &[u8], n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(start).unwrap();
            s
        })
        .collect()
}

/// Headers that never come do not hold `--max-connections`: with two slots and four sockets
/// stalled in their header, a proxy's real connection is served at once (it used to wait for
/// the stalled ones' 10s deadlines, and then for those behind them in the backlog).
#[test]
fn stalled_headers_do_not_lock_real_clients_out() {
    for tls in [false, true] {
        let mut args = vec!["--no-status", "--max-connections", "2", "--proxy-protocol"];
        if tls {
            args.push("--tls");
        }
        args.push("127.0.0.1:0");
        let (server, typed) = server(&args);
        let addr = typed.trim_start_matches("tls:");
        let _stalled = stalled(addr, b"PROXY ", 2);
        let _stalled_v2 = stalled(addr, V2_SIGNATURE, 2);
        std::thread::sleep(Duration::from_millis(200));
        let start = Instant::now();
        if tls {
            let port = free_port().to_string();
            let args = ["--insecure", "--send-proxy", "v1", "-p", &port, &typed];
            assert_eq!(client(&args, b"tls\n"), b"tls\n");
        } else {
            let (_, back) = exchange(addr, b"PROXY TCP4 192.0.2.7 127.0.0.1 40001 7\r\nreal\n");
            assert_eq!(back, b"real\n");
        }
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "tls {tls}: served after {took:?}"
        );
        drop(server);
    }
}

/// A stop does not wait for connections whose header is not whole: nobody is served there
/// (it used to wait for them up to --shutdown-timeout, here longer than their deadline).
#[test]
fn a_stop_closes_connections_still_in_their_header_at_once() {
    for tls in [false, true] {
        let mut args = vec![
            "--no-status",
            "--shutdown-timeout",
            "30s",
            "--proxy-protocol",
        ];
        if tls {
            args.push("--tls");
        }
        args.push("127.0.0.1:0");
        let (server, addr) = server(&args);
        let addr = addr.trim_start_matches("tls:").to_owned();
        let mut pending = stalled(&addr, b"PROXY TCP4 192.0.2.7", 2);
        std::thread::sleep(Duration::from_millis(200));
        let start = Instant::now();
        let (status, err) = server.stop(LIMIT);
        let took = start.elapsed();
        assert!(status.success(), "{err}");
        assert!(
            took < Duration::from_secs(3),
            "tls {tls}: stopped after {took:?}: {err}"
        );
        assert!(!err.contains("waiting up to"), "tls {tls}: {err}");
        for s in &mut pending {
            s.set_read_timeout(Some(LIMIT)).unwrap();
            let mut back = Vec::new();
            let _ = s.read_to_end(&mut back);
            assert!(back.is_empty(), "{back:?}");
        }
    }
}

/// How many times the process `pid`'s threads have slept and woken (voluntary context
/// switches), all of them.
fn wake_ups(pid: i32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("status")).ok())
        .filter_map(|status| {
            let line = status
                .lines()
                .find(|l| l.starts_with("voluntary_ctxt_switches:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

/// First bytes that cannot be told apart yet (`\r\n` starts a v2 signature, `PRO` a v1
/// line) and then nothing: the server waits for more bytes, it does not look again and again
/// (it used to every 10ms per connection: a few thousand such sockets cost a core).
#[test]
fn undecided_first_bytes_cost_no_polling() {
    let (server, addr) = server(&["--no-status", "--proxy-protocol", "127.0.0.1:0"]);
    let mut undecided = stalled(&addr, b"\r\n", 50);
    undecided.extend(stalled(&addr, b"PRO", 50));
    std::thread::sleep(Duration::from_millis(300));
    let before = wake_ups(server.pid());
    std::thread::sleep(Duration::from_secs(1));
    let woke = wake_ups(server.pid()) - before;
    assert!(woke < 50, "the server woke {woke} times in 1s");
    // They are still waited for: the rest of a header is read when it comes.
    let mut s = undecided.pop().unwrap();
    s.write_all(b"XY TCP4 192.0.2.7 127.0.0.1 40001 7\r\nlate\n")
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back);
    assert_eq!(back, b"late\n");
}

/// A refusal is one log line whatever the header held: ppp's reason for a v1 line without its
/// CRLF names the CRLF, which used to be written as is and broke the line in two.
#[test]
fn a_refusal_is_one_line() {
    let (server, addr) = server(&["-v", "--no-status", "--proxy-protocol", "127.0.0.1:0"]);
    let (port, back) = exchange(&addr, b"PROXY TCP4 192.0.2.7 127.0.0.1 1 2\rX\ndata\n");
    assert!(back.is_empty(), "{back:?}");
    let want = format!("127.0.0.1:{port}: refused: invalid PROXY v1 header: ");
    assert!(server.logs_within(LIMIT, &want), "{}", server.stderr());
    let (_, err) = server.stop(LIMIT);
    let line = err.lines().find(|l| l.contains(&want)).unwrap();
    assert!(line.ends_with(" echoed"), "cut in two: {err}");
}

/// The process `pid`'s data segment (heap and anonymous maps), in KiB.
fn data_kib(pid: i32) -> u64 {
    crate::util::mem_kib(pid, "VmData:")
}

/// A v2 header announcing 64 KiB that does not come costs what came, not what it announced
/// (200 such sockets used to reserve 13 MB).
#[test]
fn a_v2_length_is_not_taken_on_trust() {
    let (server, addr) = server(&["--no-status", "--proxy-protocol", "127.0.0.1:0"]);
    let mut fixed = V2_SIGNATURE.to_vec();
    fixed.extend([0x21, 0x11, 0xff, 0xff]);
    fixed.extend([7; 100]);
    // One first, so the runtime's own first allocations are not counted.
    let _first = stalled(&addr, &fixed, 1);
    std::thread::sleep(Duration::from_millis(300));
    let before = data_kib(server.pid());
    let _announced = stalled(&addr, &fixed, 200);
    std::thread::sleep(Duration::from_millis(500));
    let grew = data_kib(server.pid()).saturating_sub(before);
    assert!(grew < 6 * 1024, "200 sockets took {grew} KiB");
}

/// In inetd mode too, a stop does not wait for a header that is not whole: the connection is
/// closed at once, said as a refusal (it used to be held for --shutdown-timeout).
#[test]
fn inetd_mode_stops_at_once_during_the_header() {
    let (mut client, served) = crate::util::tcp_pair();
    let args = [
        "echo-server",
        "--inetd",
        "--shutdown-timeout",
        "30s",
        "--proxy-protocol",
    ];
    let server = std_tool(args)
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(served)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    client.write_all(b"PROXY TCP4 192.0.2.7").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    crate::util::signal(&server, libc::SIGTERM);
    let out = crate::util::output_timeout(server, LIMIT);
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_no_panic(&out.stderr);
    assert!(
        took < Duration::from_secs(3),
        "stopped after {took:?}: {err}"
    );
    assert!(
        err.contains("refused: no PROXY protocol header before the server stopped"),
        "{err}"
    );
}

/// Without --proxy-protocol a header is the client's data like any other: echoed whole, and
/// the client it names is never shown as the peer.
#[test]
fn without_the_option_a_header_is_only_data() {
    let (server, addr) = server(&["-v", "--no-status", "127.0.0.1:0"]);
    let v1 = b"PROXY TCP4 192.0.2.66 127.0.0.1 40001 7\r\nafter\n".to_vec();
    let mut v2 = v2_header(([192, 0, 2, 67], 40002), ([127, 0, 0, 1], 7));
    v2.extend_from_slice(b"after\n");
    for sent in [v1, v2] {
        let (port, back) = exchange(&addr, &sent);
        assert_eq!(back, sent);
        let want = format!("127.0.0.1:{port}: open");
        assert!(server.logs_within(LIMIT, &want), "{}", server.stderr());
    }
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
    assert!(!err.contains("192.0.2.6"), "{err}");
}

/// `--send-proxy` names the addresses as the server sees them: over IPv6 as TCP6, and to a
/// dual-stack server through IPv4 (plain or v4-mapped) as TCP4, as a proxy would.
#[test]
fn our_client_names_ipv6_and_dual_stack_addresses() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("note: no IPv6 loopback (::1 on lo) here; skipped");
        return;
    }
    let (server, addr) = server(&["-v", "--no-status", "--proxy-protocol", "[::]:0"]);
    let port = addr.rsplit(':').next().unwrap().to_owned();
    for version in ["v1", "v2"] {
        for (host, shown) in [
            ("[::1]", "[::1]"),
            ("127.0.0.1", "127.0.0.1"),
            ("[::ffff:127.0.0.1]", "127.0.0.1"),
        ] {
            let source = free_port().to_string();
            let target = format!("{host}:{port}");
            let args = ["--send-proxy", version, "-p", &source, &target];
            assert_eq!(client(&args, b"dual\n"), b"dual\n");
            let want = format!("{shown}:{source}: open (PROXY {version} from {shown}:{source})");
            assert!(
                server.logs_within(LIMIT, &want),
                "no {want:?}: {}",
                server.stderr()
            );
        }
        // -z's connection starts with the header too, or the server would refuse it.
        client(&["-z", "--send-proxy", version, &addr], b"");
    }
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
    assert!(!err.contains("refused"), "{err}");
}

/// A client that sends the start of a signature and closes is refused at once: nothing more
/// can come (it used to be held to the header deadline).
#[test]
fn a_signature_cut_by_a_close_is_refused_at_once() {
    let (server, addr) = server(&["-v", "--no-status", "--proxy-protocol", "127.0.0.1:0"]);
    for start in [&b"PRO"[..], b"\r\n\r\n"] {
        let began = Instant::now();
        let (port, back) = exchange(&addr, start);
        let took = began.elapsed();
        assert!(back.is_empty(), "{back:?}");
        assert!(
            took < Duration::from_secs(3),
            "{start:?}: closed after {took:?}"
        );
        let want = format!("127.0.0.1:{port}: refused: no PROXY protocol header: ");
        assert!(server.logs_within(LIMIT, &want), "{}", server.stderr());
    }
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
}

/// With =optional a direct client that has not spoken by the header deadline is served as
/// is, not refused: a person at nc may well wait before typing (it used to be cut off).
#[test]
fn optional_serves_a_client_that_speaks_late() {
    let (server, addr) = server(&[
        "-v",
        "--no-status",
        "--idle-timeout",
        "1s",
        "--proxy-protocol=optional",
        "127.0.0.1:0",
    ]);
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = s.write_all(b"late\n");
    let mut back = [0u8; 5];
    let read = s.read_exact(&mut back);
    assert!(read.is_ok(), "{read:?}: {}", server.stderr());
    assert_eq!(&back, b"late\n");
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
    assert!(err.contains(": open (no PROXY protocol header)"), "{err}");
}

/// A v2 header with TLVs after its addresses (HAProxy's proxy-v2-options: ALPN, unique id,
/// SSL) is read to its announced length and stripped whole; the bytes after it are echoed.
#[test]
fn v2_tlvs_are_stripped_with_the_header() {
    let (server, addr) = server(&["-v", "--no-status", "--proxy-protocol", "127.0.0.1:0"]);
    let tlvs: &[u8] = b"\x01\x00\x02h2\x05\x00\x04uid1\x04\x00\x03\x00\x00\x00";
    let mut header = v2_header(([192, 0, 2, 44], 40044), ([127, 0, 0, 1], 7));
    let len = u16::from_be_bytes([header[14], header[15]]) + tlvs.len() as u16;
    header[14..16].copy_from_slice(&len.to_be_bytes());
    header.extend_from_slice(tlvs);
    header.extend_from_slice(b"after the TLVs\n");
    let (_, back) = exchange(&addr, &header);
    assert_eq!(back, b"after the TLVs\n");
    let want = "192.0.2.44:40044: open (PROXY v2 from 127.0.0.1:";
    assert!(server.logs_within(LIMIT, want), "{}", server.stderr());
}

/// A header trickled a byte at a time (slowloris) gains nothing by it: the deadline runs from
/// the connection's start, not from its last byte.
#[test]
fn a_trickled_header_is_bound_by_the_deadline() {
    let (server, addr) = server(&[
        "--no-status",
        "--idle-timeout",
        "1s",
        "--proxy-protocol",
        "127.0.0.1:0",
    ]);
    for header in [
        b"PROXY TCP4 192.0.2.7 127.0.0.1 40001 7\r\n".to_vec(),
        v2_header(([192, 0, 2, 7], 40001), ([127, 0, 0, 1], 7)),
    ] {
        let mut s = TcpStream::connect(&addr).unwrap();
        let start = Instant::now();
        let mut cut = None;
        for byte in &header {
            if s.write_all(&[*byte]).is_err() {
                cut = Some(start.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let took = cut.unwrap_or_else(|| start.elapsed());
        assert!(
            took < Duration::from_millis(2500),
            "{:?}: still open after {took:?}",
            &header[..6]
        );
    }
    let want = "refused: no whole PROXY protocol header within 1s";
    assert!(server.logs_within(LIMIT, want), "{}", server.stderr());
}

/// A TLS client behind a proxy, as Python's ssl module plays it: the header and the
/// ClientHello in one write, then the handshake and one echo. Prints what came back.
const HEADER_AND_HELLO: &str = r#"
import socket, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
def pump(step):
    while True:
        try:
            return step()
        except ssl.SSLWantReadError:
            s.sendall(outgoing.read())
            data = s.recv(65536)
            if not data:
                sys.exit("the server closed the connection")
            incoming.write(data)
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    s.sendall(b"PROXY TCP4 192.0.2.55 127.0.0.1 40055 7\r\n" + outgoing.read())
pump(tls.do_handshake)
tls.write(b"one segment\n")
s.sendall(outgoing.read())
sys.stdout.write(pump(lambda: tls.read(100)).decode())
"#;

/// Over TLS, a header and the ClientHello in the same segment: the header is stripped, the
/// ClientHello after it is the handshake's.
#[test]
fn over_tls_a_header_and_the_client_hello_in_one_segment() {
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !peer_present("python3", python) {
        return;
    }
    let (server, addr) = server(&[
        "-v",
        "--no-status",
        "--tls",
        "--proxy-protocol",
        "127.0.0.1:0",
    ]);
    let addr = addr.trim_start_matches("tls:");
    let (host, port) = addr.rsplit_once(':').unwrap();
    let child = other("python3")
        .args(["-c", HEADER_AND_HELLO, host, port])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = crate::util::output_timeout(child, LIMIT);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}: {}", server.stderr());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one segment\n");
    let want = "192.0.2.55:40055: open (PROXY v1 from 127.0.0.1:";
    assert!(server.logs_within(LIMIT, want), "{}", server.stderr());
}

/// A v1 header naming `client` (port 5555) as connecting to our port 7, then `data`.
fn v1_then(client: &str, data: &[u8]) -> Vec<u8> {
    let mut sent = format!("PROXY TCP4 {client} 127.0.0.1 5555 7\r\n").into_bytes();
    sent.extend(data);
    sent
}

/// Issue 21: behind a proxy, `--allow`/`--deny` judge the client the header names, not the
/// proxy (here 127.0.0.1, in no allowed network): the refusal is logged and counted.
#[test]
fn allow_and_deny_judge_the_client_the_header_names() {
    let args = [
        "--no-status",
        "--proxy-protocol",
        "--allow",
        "10.0.0.0/8",
        "--deny",
        "10.6.6.6",
        "127.0.0.1:0",
    ];
    let (server, addr) = server(&args);
    let (_, back) = exchange(&addr, &v1_then("10.1.2.3", b"allowed\n"));
    assert_eq!(back, b"allowed\n", "{}", server.stderr());
    let (_, back) = exchange(&addr, &v1_then("192.0.2.1", b"outside\n"));
    assert!(back.is_empty(), "a refused client got {back:?}");
    let want = "refused 192.0.2.1:5555: not in an --allow network";
    assert!(server.logs_within(LIMIT, want), "{}", server.stderr());
    // A second after the first refusal line, so the throttle says this one too.
    std::thread::sleep(Duration::from_millis(1100));
    let (_, back) = exchange(&addr, &v1_then("10.6.6.6", b"denied\n"));
    assert!(back.is_empty(), "a denied client got {back:?}");
    let want = "refused 10.6.6.6:5555: in a --deny network";
    assert!(server.logs_within(LIMIT, want), "{}", server.stderr());
    server.signal(libc::SIGUSR1);
    let counted = "refused 2 (denied 1, not_allowed 1)";
    assert!(server.logs_within(LIMIT, counted), "{}", server.stderr());
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
}

/// A connection that sent a v1 header naming `client` and got one echo back: it is served.
fn held_open(addr: &str, client: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(&v1_then(client, b"hi")).unwrap();
    let mut back = [0u8; 2];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hi");
    s
}

/// Issue 21: behind a proxy, `--max-per-ip` counts the clients the headers name: every
/// connection comes from the proxy's one address, and each named client has its own places.
#[test]
fn max_per_ip_counts_the_clients_the_headers_name() {
    let args = [
        "--no-status",
        "--proxy-protocol",
        "--max-per-ip",
        "1",
        "127.0.0.1:0",
    ];
    let (server, addr) = server(&args);
    let first = held_open(&addr, "10.1.2.3");
    let (_, back) = exchange(&addr, &v1_then("10.1.2.3", b"second\n"));
    assert!(back.is_empty(), "a second connection got {back:?}");
    let want = "refused 10.1.2.3:5555: too many connections from its address (--max-per-ip)";
    assert!(server.logs_within(LIMIT, want), "{}", server.stderr());
    // Another client behind the same proxy has a place of its own.
    let other = held_open(&addr, "10.9.9.9");
    drop(other);
    // Once the first closes, its client's place is free again.
    drop(first);
    let again = eventually(LIMIT, || {
        exchange(&addr, &v1_then("10.1.2.3", b"again\n")).1 == b"again\n"
    });
    assert!(again, "{}", server.stderr());
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
}

/// In inetd mode too, `--allow` judges the client the header names: served, or exit 1.
#[test]
fn inetd_mode_admits_the_client_the_header_names() {
    for (client, ok) in [("10.1.2.3", true), ("192.0.2.1", false)] {
        let (mut conn, served) = crate::util::tcp_pair();
        let args = [
            "echo-server",
            "--inetd",
            "--proxy-protocol",
            "--allow",
            "10.0.0.0/8",
        ];
        let server = std_tool(args)
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(served)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        conn.set_read_timeout(Some(LIMIT)).unwrap();
        conn.write_all(&v1_then(client, b"via inetd\n")).unwrap();
        let _ = conn.shutdown(Shutdown::Write);
        let mut back = Vec::new();
        let _ = conn.read_to_end(&mut back);
        let out = crate::util::output_timeout(server, LIMIT);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_no_panic(&out.stderr);
        if ok {
            assert_eq!(back, b"via inetd\n", "{err}");
            assert!(out.status.success(), "{err}");
        } else {
            assert!(back.is_empty(), "{back:?}");
            assert_eq!(out.status.code(), Some(1), "{err}");
            assert!(err.contains("192.0.2.1:5555"), "{err}");
        }
    }
}

/// A Unix socket behind a proxy: its clients have no address but the one their header names,
/// which `--allow` judges (without `--proxy-protocol` the rule is a usage error).
#[test]
fn a_unix_server_admits_the_client_the_header_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pp.sock");
    let listen = format!("unix:{}", path.display());
    let args = ["--no-status", "--proxy-protocol", "--allow", "10.0.0.0/8"];
    let (server, _) = server(&[&args[..], &[listen.as_str()]].concat());
    let unix_exchange = |data: &[u8]| {
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        s.write_all(data).unwrap();
        let _ = s.shutdown(Shutdown::Write);
        let mut back = Vec::new();
        let _ = s.read_to_end(&mut back);
        back
    };
    assert_eq!(unix_exchange(&v1_then("10.1.2.3", b"in\n")), b"in\n");
    assert!(unix_exchange(&v1_then("192.0.2.1", b"out\n")).is_empty());
    // A v2 LOCAL header names nobody: over Unix, no address is in an allowed network.
    let mut local = V2_SIGNATURE.to_vec();
    local.extend([0x20, 0x00, 0, 0]);
    local.extend(b"local\n");
    assert!(unix_exchange(&local).is_empty());
    let want = "refused 192.0.2.1:5555: not in an --allow network";
    assert!(server.logs_within(LIMIT, want), "{}", server.stderr());
    let (status, err) = server.stop(LIMIT);
    assert!(status.success(), "{err}");
}
