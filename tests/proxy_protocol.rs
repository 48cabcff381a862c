//! The PROXY protocol: `echo-server --proxy-protocol` behind HAProxy (send-proxy and
//! send-proxy-v2, with the README's configuration) and behind our own `echo-client
//! --send-proxy`, over TCP, Unix sockets and TLS; refusals, `=optional`, a header that never
//! completes, a malformed one, and the bytes that follow a header in the same segment.

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

/// HAProxy in front of a `-v --proxy-protocol` server, configured as the README says with
/// `send`: data echoes through, and the server's open line names the client's own address
/// (its port, as HAProxy saw it), with HAProxy's connection as where it came from. HAProxy's
/// health checks carry a header too (`check`): the server's stderr comes to hold `seen` at
/// least `times` times, and no refusal.
fn through_haproxy(send: &str, version: &str, (seen, times): (&str, usize)) {
    let Some(haproxy) = haproxy() else { return };
    let (server, back) = server(&["-v", "--no-status", "--proxy-protocol", "127.0.0.1:0"]);
    let front = format!("127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, readme_haproxy_config(&front, &back, send)).unwrap();
    let check = other(haproxy)
        .arg("-c")
        .arg("-f")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let proxy = other(haproxy)
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _proxy = KillOnDrop(proxy);
    assert!(
        eventually(LIMIT, || TcpStream::connect(&front).is_ok()),
        "HAProxy does not listen on {front}"
    );
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
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (served, _) = listener.accept().unwrap();
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
