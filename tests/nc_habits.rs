//! What people who know nc, ncat and ping type first: each spelling either works or is a
//! usage error saying what to write here (never clap's "use '-- -l'"). Servers are small
//! ones written here on 127.0.0.1 (to see the client's source port, its line ends, a server
//! that never closes) or asyncio-tool's own; OpenBSD nc is the reference for -z where present.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{EchoServer, output_timeout, output_with_input, peer_available, std_tool};

/// Bound for anything that should take well under a second.
const PROMPT: Duration = Duration::from_secs(10);

fn run(args: &[&str], input: &[u8]) -> Output {
    output_with_input(std_tool(args), input, PROMPT)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A port nothing listens on now (taken from the kernel, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A UDP port nothing is bound to now.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP server for one connection: reads to the end of input, sends `reply(input)` back,
/// closes, and hands over the peer's address and what it read.
fn one_shot(reply: fn(&[u8]) -> Vec<u8>) -> (SocketAddr, mpsc::Receiver<(SocketAddr, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        conn.set_read_timeout(Some(PROMPT)).unwrap();
        let mut got = Vec::new();
        let _ = conn.read_to_end(&mut got);
        let _ = conn.write_all(&reply(&got));
        let _ = tx.send((peer, got));
    });
    (addr, rx)
}

#[test]
fn unknown_nc_and_ping_spellings_say_what_to_write_here() {
    for (args, want) in [
        (&["echo-server", "-w", "5"][..], "--idle-timeout"),
        (&["echo-server", "-c", "3"], "echo-client --count N"),
        (&["echo-server", "-i", "0.2"], "--interval"),
        (&["echo-server", "--source-port", "5000"], "echo-client"),
        (&["echo-server", "-e", "/bin/sh"], "runs none"),
        (&["echo-client", "-l", "8080"], "echo-server"),
        (&["echo-client", "-k", "8080"], "echo-server always"),
        (&["echo-client", "--sh-exec", "cat", "7"], "runs none"),
        (
            &["echo-client", "127.0.0.1", "7", "-q", "1"],
            "--quit-after",
        ),
        (&["echo-client", "--frobnicate"], ""),
    ] {
        let out = run(args, b"");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("as a value, use '--"), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // For cat, `-- -x` is the way to name a file '-x': that tip stays.
    let out = run(&["cat", "--frobnicate"], b"");
    assert!(
        stderr(&out).contains("use '-- --frobnicate'"),
        "{}",
        stderr(&out)
    );
}

/// nc's `-q SECS` before the address: the seconds become ADDR (`-q 1 host:7` reads as the
/// two words `1 host:7`), so the error says what -q is here, as it does after the address.
#[test]
fn nc_s_quit_delay_before_the_address_is_explained() {
    for args in [
        &["-q", "1", "host:7"][..],
        &["-q", "1", "127.0.0.1:7"],
        &["-q", "0.5", "localhost:7"],
        &["-q", "1", "localhost"],
        &["127.0.0.1:7", "-q", "1"],
        &["-q", "1", "localhost", "7"],
        &["-q1", "7"],
    ] {
        let out = run(&[&["echo-client"][..], args].concat(), b"");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("tip: -q is --quiet here; nc's -q SECS is --quit-after SECS"),
            "{args:?}: {err}"
        );
    }
    // A port after a -q that is only --quiet is no habit: no tip.
    let out = run(&["echo-client", "-q", "7101", "7102"], b"");
    assert!(stderr(&out).contains("two ports"), "{}", stderr(&out));
    let out = run(&["echo-client", "-q", "host:7", "8"], b"");
    assert!(!stderr(&out).contains("--quit-after"), "{}", stderr(&out));
}

#[test]
fn the_server_takes_nc_listen_spellings() {
    for args in [
        &["-l", "-p", "0"][..],
        &["-lk", "-p", "0", "127.0.0.1"],
        &["-l", "127.0.0.1", "0"],
        &["--listen", "--keep-open", "0"],
    ] {
        let mut cmd = std_tool(["echo-server"]);
        cmd.args(args);
        let mut server = EchoServer::launch(cmd);
        let addr: SocketAddr = server.await_line(PROMPT).parse().unwrap();
        assert!(addr.ip().is_loopback(), "{args:?}: {addr}");
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(PROMPT)).unwrap();
        conn.write_all(b"hi\n").unwrap();
        let mut echo = [0u8; 3];
        conn.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"hi\n", "{args:?}");
    }
    let out = run(&["echo-server", "-p", "7", "8"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("'-p 7' and '8': two ports"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn w_is_nc_s_idle_timeout_in_plain_seconds() {
    // Takes the input and never answers nor closes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut sink = Vec::new();
        let _ = conn.read_to_end(&mut sink);
        thread::sleep(PROMPT);
    });
    let started = Instant::now();
    let out = run(&["echo-client", "-w", "0.5", &addr], b"hi\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("500ms"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// An echo server that never closes: only --quit-after ends the client.
fn echo_never_closing(echo: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = conn.read(&mut buf) {
            if echo {
                let _ = conn.write_all(&buf[..n]);
            }
        }
        thread::sleep(PROMPT);
    });
    addr
}

#[test]
fn quit_after_ends_the_wait_and_tells_the_truth() {
    let addr = echo_never_closing(true);
    let started = Instant::now();
    let out = run(&["echo-client", "--quit-after", "0.3", &addr], b"hi\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"hi\n");
    assert!(started.elapsed() < Duration::from_secs(5));

    let addr = echo_never_closing(false);
    let out = run(&["echo-client", "--quit-after", "300ms", &addr], b"hi\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("3 bytes of 3 bytes not echoed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn z_checks_a_port_with_its_time() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    // No stdin at all: -z reads none.
    let mut cmd = std_tool(["echo-client", "-z", "127.0.0.1", &port]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = output_timeout(cmd.spawn().unwrap(), PROMPT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains(&format!("connection to 127.0.0.1:{port} succeeded in")),
        "{}",
        stderr(&out)
    );
    drop(listener);
    let out = run(&["echo-client", "-z", "-w", "2", "127.0.0.1", &port], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Connection refused"),
        "{}",
        stderr(&out)
    );
    if peer_available("nc") {
        // OpenBSD nc exits the same way for the closed port.
        let out = output_timeout(
            Command::new("nc")
                .args(["-z", "127.0.0.1", &port])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
            PROMPT,
        );
        assert_eq!(out.status.code(), Some(1));
    }
    let out = run(&["echo-client", "-z", "-u", "127.0.0.1", &port], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn s_and_p_choose_the_source_over_tcp() {
    let (addr, seen) = one_shot(|got| got.to_vec());
    let port = free_port();
    let out = run(
        &[
            "echo-client",
            "-s",
            "127.0.0.2",
            "-p",
            &port.to_string(),
            &addr.to_string(),
        ],
        b"from\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"from\n");
    let (peer, _) = seen.recv_timeout(PROMPT).unwrap();
    assert_eq!(peer, SocketAddr::from(([127, 0, 0, 2], port)));

    // ncat's long spellings, and a source of the wrong family narrows the name's addresses.
    let (addr, seen) = one_shot(|got| got.to_vec());
    let port = free_port();
    let target = format!("localhost:{}", addr.port());
    let out = run(
        &[
            "echo-client",
            "--source",
            "127.0.0.1",
            "--source-port",
            &port.to_string(),
            &target,
        ],
        b"x",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(seen.recv_timeout(PROMPT).unwrap().0.port(), port);

    let out = run(&["echo-client", "-s", "127.0.0.1", "unix:/tmp/x"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(&["echo-client", "-6", "-s", "127.0.0.1", "::1", "7"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("other IP family"), "{}", stderr(&out));
    // An IPv6 source keeps a v4 literal out of reach, saying why.
    let out = run(&["echo-client", "-s", "::1", &addr.to_string()], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("as the source, -s"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn p_chooses_the_source_over_udp_and_tls() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let (n, peer) = server.recv_from(&mut buf).unwrap();
        server.send_to(&buf[..n], peer).unwrap();
        let _ = tx.send(peer);
    });
    let port = free_udp_port();
    let out = run(
        &["echo-client", "-u", "-p", &port.to_string(), &addr],
        b"dgram\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"dgram\n");
    assert_eq!(rx.recv_timeout(PROMPT).unwrap().port(), port);

    let mut server = EchoServer::launch(std_tool(["echo-server", "-v", "tls:127.0.0.1:0"]));
    let addr = server.await_line(PROMPT).to_owned();
    let port = free_port();
    let out = run(
        &[
            "echo-client",
            "--insecure",
            "-p",
            &port.to_string(),
            &format!("tls:{addr}"),
        ],
        b"sealed\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"sealed\n");
    let peer = format!("127.0.0.1:{port}");
    assert!(
        server.logs_within(PROMPT, &peer),
        "server log lacks {peer}: {}",
        server.stderr()
    );
}

#[test]
fn c_sends_crlf_line_ends() {
    let (addr, seen) = one_shot(|got| got.to_vec());
    let out = run(&["echo-client", "-C", &addr.to_string()], b"a\nb\r\nc\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"a\r\nb\r\nc\r\n");
    assert_eq!(seen.recv_timeout(PROMPT).unwrap().1, b"a\r\nb\r\nc\r\n");

    let mut server = EchoServer::launch(std_tool(["echo-server", "udp:127.0.0.1:0"]));
    let addr = server.await_line(PROMPT).to_owned();
    let out = run(&["echo-client", "--crlf", &addr], b"x\ny\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"x\r\ny\r\n");
}

/// nc's `-n` (ncat's `--nodns`), in the `-lvnp 8080` everyone types: the server takes it as
/// it takes -l and -k; the client takes it as nc does, refusing a name.
#[test]
fn n_is_taken_as_nc_takes_it() {
    let mut server = EchoServer::launch({
        let mut cmd = std_tool(["echo-server"]);
        cmd.args(["-lvnp", "0"]);
        cmd
    });
    let addr: SocketAddr = server.await_line(PROMPT).parse().unwrap();
    let port = addr.port().to_string();
    for args in [
        &["-n", "127.0.0.1", &port][..],
        &["--nodns", &addr.to_string()],
    ] {
        let out = run(&[&["echo-client"][..], args].concat(), b"hi\n");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(out.stdout, b"hi\n");
    }
    let out = run(&["echo-client", "-n", "localhost", &port], b"hi\n");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("-n/--nodns looks no name up, and 'localhost' is a name"),
        "{}",
        stderr(&out)
    );
}

/// `-n :7` leaves the host to the name localhost: the refusal names what was typed, not a
/// 'localhost' the user never wrote, and what to write instead.
#[test]
fn n_names_what_was_typed() {
    let out = run(&["echo-client", "-n", ":7"], b"");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "-n/--nodns looks no name up, and ':7' names no host, so the host is 'localhost', \
             a name: give an IP address (e.g. 127.0.0.1:7 or [::1]:7)"
        ),
        "{err}"
    );
}

/// A measuring option typed without its mode (`--timeout 1`, as nc's or socat's timeout)
/// names itself, its mode and what to add, never clap's bare "required arguments were not
/// provided: <--count <N>|--connections <C>>".
#[test]
fn a_measuring_option_without_its_mode_says_what_it_belongs_to() {
    for (args, want) in [
        (
            &["--timeout", "1", "127.0.0.1:7"][..],
            "'--timeout' is an option of the probe (--count <N>) and load (--connections <C>) \
             modes: add one of them, or leave '--timeout' out (it is a reply's timeout \
             there; the copy's are -w SECS",
        ),
        (
            &["-W", "2", "127.0.0.1:7"],
            "'-W' is an option of the probe",
        ),
        (
            &["--interval=0.2", "127.0.0.1:7"],
            "'--interval' is an option of probe mode: add --count <N>",
        ),
        (
            &["--rate", "100", "127.0.0.1:7"],
            "'--rate' is an option of load mode: add --connections <C>",
        ),
        (
            &["127.0.0.1:7", "--size", "100"],
            "'--size' is an option of the probe",
        ),
    ] {
        let out = run(&[&["echo-client"][..], args].concat(), b"");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("were not provided"), "{args:?}: {err}");
    }
}

/// A bare number is seconds wherever a DURATION goes, as `-w 5`, sleep and nc take it: the
/// server's `--idle-timeout 1` closes an idle connection after a second.
#[test]
fn a_duration_in_plain_seconds_is_taken_everywhere() {
    let mut cmd = std_tool(["echo-server", "--idle-timeout", "0.5", "127.0.0.1:0"]);
    cmd.args(["--shutdown-timeout", "2"]);
    let mut server = EchoServer::launch(cmd);
    let addr: SocketAddr = server.await_line(PROMPT).parse().unwrap();
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(PROMPT)).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
    let port = addr.port().to_string();
    let out = run(
        &[
            "echo-client",
            "--connect-timeout",
            "3",
            "--wait",
            "1",
            "127.0.0.1",
            &port,
        ],
        b"hi\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, b"hi\n");
}

/// ncat's TLS options and openssl s_client's one-dash words say what they are here; never
/// clap's "a similar argument exists: '--verify'" (which compares echoes, not certificates)
/// nor "invalid value 'onnect' for '--count'" alone.
#[test]
fn ncat_and_openssl_tls_spellings_say_what_to_write_here() {
    for (args, want) in [
        (&["echo-server", "--ssl", "0"][..], "is --tls here"),
        (
            &["echo-server", "--ssl-cert", "c.pem", "0"],
            "is --cert FILE",
        ),
        (&["echo-server", "--ssl-key", "k.pem", "0"], "is --key FILE"),
        (&["echo-client", "--ssl", "127.0.0.1", "7"], "is --tls here"),
        (
            &["echo-client", "--ssl-verify", "127.0.0.1", "7"],
            "by default",
        ),
        (
            &["echo-client", "--ssl-trustfile", "ca.pem", "7"],
            "--cafile FILE",
        ),
        (
            &["echo-client", "--ssl-servername", "h", "7"],
            "--servername NAME",
        ),
        (
            &["echo-client", "-connect", "127.0.0.1:7"],
            "'echo-client --tls HOST:PORT'",
        ),
        (
            &["echo-client", "--connect", "127.0.0.1:7"],
            "'echo-client --tls HOST:PORT'",
        ),
        (
            &["echo-client", "--tls", "-CAfile", "ca.pem", "7"],
            "--cafile FILE",
        ),
        (
            &["echo-client", "--tls", "-servername", "h", "7"],
            "--servername NAME",
        ),
    ] {
        let out = run(args, b"");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("similar argument"), "{args:?}: {err}");
    }
}
