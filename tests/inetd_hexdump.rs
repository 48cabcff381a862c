//! inetd mode: `echo-server` started for one connection (on stdin, as inetd, xinetd and
//! `systemd-socket-activate --inetd -a` start it, or on fd 3 as systemd's `Accept=yes` does)
//! serves it and exits, and nothing but the echo reaches the client; a listening or UDP socket
//! on stdin (inetd's `wait`) is served until stopped.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::util::*;

const LIMIT: Duration = Duration::from_secs(20);

/// Writes `data` from a thread (it may exceed the socket buffers), half-closes, and reads
/// the echo to its end on this one.
fn exchange<S: Read + Write + Send + 'static>(
    mut reader: S,
    mut writer: S,
    data: &[u8],
    shut: impl FnOnce(&S) + Send + 'static,
) -> Vec<u8> {
    let owned = data.to_vec();
    let sending = std::thread::spawn(move || {
        writer.write_all(&owned).unwrap();
        shut(&writer);
    });
    let mut back = Vec::new();
    reader.read_to_end(&mut back).unwrap();
    sending.join().unwrap();
    back
}

fn spawn_served(args: &[&str], stdin: OwnedFd, stdout: Stdio, stderr: Stdio) -> KillOnDrop {
    KillOnDrop(
        std_tool(args)
            .stdin(Stdio::from(stdin))
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap(),
    )
}

/// As xinetd starts a server: stdin, stdout and stderr are all the connection. It is
/// echoed byte for byte, more than the socket buffers hold, with nothing else in it (not
/// the address line, not the -v log), then closed; exit 0.
#[test]
fn a_tcp_connection_on_every_stdio_is_echoed_with_nothing_else() {
    let (client, served) = tcp_pair();
    let out = OwnedFd::from(served.try_clone().unwrap());
    let err = OwnedFd::from(served.try_clone().unwrap());
    let mut server = spawn_served(
        &["echo-server", "-v"],
        served.into(),
        out.into(),
        err.into(),
    );
    client.set_read_timeout(Some(LIMIT)).unwrap();
    let data = random_bytes(3 << 20, 20);
    let writer = client.try_clone().unwrap();
    let back = exchange(client, writer, &data, |s| {
        s.shutdown(Shutdown::Write).unwrap()
    });
    assert_same_bytes("echo", &back, &data);
    assert!(wait_timeout(&mut server.0, LIMIT).success());
}

/// A Unix connection accepted from a listener (its name is the listener's): served without
/// --inetd; stdout stays empty, and -v logs on a stderr of its own.
#[test]
fn a_unix_connection_on_stdin_is_served_and_logs_go_to_a_separate_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inetd.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let client = UnixStream::connect(&path).unwrap();
    let (served, _) = listener.accept().unwrap();
    let mut server = spawn_served(
        &["echo-server", "-v"],
        served.into(),
        Stdio::piped(),
        Stdio::piped(),
    );
    client.set_read_timeout(Some(LIMIT)).unwrap();
    let writer = client.try_clone().unwrap();
    let back = exchange(client, writer, b"over unix\n", |s| {
        s.shutdown(Shutdown::Write).unwrap()
    });
    assert_eq!(back, b"over unix\n");
    let out = finish(&mut server);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
    assert!(stderr.contains(": open"), "{stderr}");
    assert!(stderr.contains(": closed after"), "{stderr}");
}

/// One end of a socket pair (socat EXEC:, Node's spawn) is a program's stdio, not a
/// connection, unless --inetd says it is: then it is served.
#[test]
fn inetd_flag_serves_a_socket_pair() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut server = spawn_served(
        &["echo-server", "--inetd"],
        theirs.into(),
        Stdio::null(),
        Stdio::piped(),
    );
    ours.set_read_timeout(Some(LIMIT)).unwrap();
    let writer = ours.try_clone().unwrap();
    let back = exchange(ours, writer, b"paired\n", |s| {
        s.shutdown(Shutdown::Write).unwrap()
    });
    assert_eq!(back, b"paired\n");
    let out = finish(&mut server);
    assert_eq!(out.status.code(), Some(0), "{:?}", out.stderr);
}

/// Waits (bounded) for the guarded server to exit and collects what it printed on the
/// stdout and stderr that are pipes; the guard still kills it if this panics.
fn finish(server: &mut KillOnDrop) -> Output {
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = read(server.0.stdout.take().map(|p| Box::new(p) as _));
    let err = read(server.0.stderr.take().map(|p| Box::new(p) as _));
    let status = wait_timeout(&mut server.0, LIMIT);
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// --idle-timeout applies: a client that sends nothing is closed and the server exits 0; a
/// client that resets makes it exit 1 naming the peer and the reason.
#[test]
fn idle_timeout_closes_and_a_reset_is_a_failure() {
    let (mut client, served) = tcp_pair();
    let mut server = spawn_served(
        &["echo-server", "--idle-timeout", "300ms"],
        served.into(),
        Stdio::null(),
        Stdio::piped(),
    );
    client.set_read_timeout(Some(LIMIT)).unwrap();
    let mut back = Vec::new();
    client.read_to_end(&mut back).unwrap();
    assert!(back.is_empty());
    let out = finish(&mut server);
    assert_eq!(out.status.code(), Some(0), "{:?}", out.stderr);

    let (client, served) = tcp_pair();
    let mut server = spawn_served(
        &["echo-server"],
        served.into(),
        Stdio::null(),
        Stdio::piped(),
    );
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    (&client).write_all(b"x").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(client);
    let out = finish(&mut server);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("connection from 127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("reset"), "{stderr}");
}

/// inetd's `wait` services (and `systemd-socket-activate --inetd` without `-a`) hand over a
/// listening or a UDP socket on stdin: served until a stop signal, its address on stdout
/// (a pipe of its own here), exit 0.
#[test]
fn a_listening_or_udp_socket_on_stdin_is_served_until_stopped() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let mut server = spawn_served(&["echo-server"], tcp.into(), Stdio::piped(), Stdio::piped());
    let (ok, line) = read_until(server.0.stdout.take().unwrap(), b"\n", LIMIT);
    assert!(ok, "an address line");
    assert_eq!(String::from_utf8_lossy(&line), format!("{tcp_addr}\n"));
    for round in 0..2 {
        let client = TcpStream::connect(tcp_addr).unwrap();
        client.set_read_timeout(Some(LIMIT)).unwrap();
        let writer = client.try_clone().unwrap();
        let back = exchange(client, writer, b"wait\n", |s| {
            s.shutdown(Shutdown::Write).unwrap()
        });
        assert_eq!(back, b"wait\n", "connection {round}");
    }
    signal(&server.0, libc::SIGTERM);
    let out = finish(&mut server);
    assert_eq!(out.status.code(), Some(0), "{:?}", out.stderr);

    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_addr = udp.local_addr().unwrap();
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // Queued before the server starts, as inetd starts a 'dgram wait' server.
    client.send_to(b"first\n", udp_addr).unwrap();
    let mut server = spawn_served(&["echo-server"], udp.into(), Stdio::null(), Stdio::piped());
    client.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"first\n"[..], udp_addr));
    signal(&server.0, libc::SIGTERM);
    let out = finish(&mut server);
    assert_eq!(out.status.code(), Some(0), "{:?}", out.stderr);
}

/// --inetd on what inetd never hands over is an error naming it, nothing served.
#[test]
fn inetd_flag_without_a_socket_is_an_error() {
    let out = output_timeout(
        std_tool(["echo-server", "--inetd"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        LIMIT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--inetd: standard input is not a socket"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
}

/// A free loopback port (bound and released: the activator takes it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `systemd-socket-activate` with `mode` (its options) on a free port; waits until the port
/// takes connections.
fn activator(mode: &[&str]) -> (KillOnDrop, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let activator = KillOnDrop(
        other("systemd-socket-activate")
            .args(mode)
            .args(["-l", &addr])
            .arg(bin())
            .args(["echo-server", "-q"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // A probe connection is served like any other, and gets EOF at once: harmless.
    assert!(
        eventually(LIMIT, || TcpStream::connect(&addr).is_ok()),
        "the activator listens on {addr}"
    );
    (activator, addr)
}

/// The real launcher in its three ways: `--inetd` (stdin and stdout the listening socket),
/// `--inetd -a` (stdin and stdout a connection), `-a` (fd 3 a connection, LISTEN_FDS=1, as
/// Accept=yes); with our client and with nc.
#[test]
fn systemd_socket_activate_inetd_and_accept_serve_each_connection() {
    if !peer_available("systemd-socket-activate") {
        return;
    }
    for mode in [&["--inetd"][..], &["--inetd", "-a"], &["-a"]] {
        let (mut activator, addr) = activator(mode);
        let data = random_bytes(200_000, 7);
        let out = output_with_input(std_tool(["echo-client", &addr]), &data, LIMIT);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{mode:?}: {stderr}");
        assert_same_bytes("echo", &out.stdout, &data);
        if peer_available("nc") {
            let port = addr.rsplit(':').next().unwrap();
            let back = peer_output("nc", ["-N", "127.0.0.1", port], b"via nc\n", LIMIT);
            assert_eq!(back, b"via nc\n", "{mode:?}");
        }
        signal(&activator.0, libc::SIGTERM);
        wait_timeout(&mut activator.0, LIMIT);
    }
}

/// Over TLS inetd mode serves with the given certificate; without one it refuses, as a
/// self-signed certificate would be new for every connection.
#[test]
fn tls_in_inetd_mode_needs_a_certificate() {
    if !peer_available("systemd-socket-activate") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("c.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut activator = KillOnDrop(
        other("systemd-socket-activate")
            .args(["--inetd", "-a", "-l", &addr])
            .arg(bin())
            .args(["echo-server", "--tls", "--cert"])
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(eventually(LIMIT, || TcpStream::connect(&addr).is_ok()));
    let target = format!("tls:{addr}");
    let client = std_tool(["echo-client", "--insecure", &target]);
    let out = output_with_input(client, b"sealed\n", LIMIT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"sealed\n");
    signal(&activator.0, libc::SIGTERM);
    wait_timeout(&mut activator.0, LIMIT);

    let (_client, served) = tcp_pair();
    let child = std_tool(["echo-server", "--tls"])
        .stdin(Stdio::from(OwnedFd::from(served)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_timeout(child, LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--tls needs --cert and --key"), "{stderr}");
}
