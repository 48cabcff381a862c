//! systemd socket activation and readiness notification, with real processes: the server is
//! handed its listening sockets on fds 3, 4, ... (by `systemd-socket-activate`, or by a shell
//! that puts a socket the test made on fd 3), and tells a notify socket the test binds itself
//! `READY=1`, `STATUS=...` and `STOPPING=1`.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// Datagrams on `sock` until one starts with `want` or `limit` passes; everything read.
fn notices_until(sock: &UnixDatagram, want: &str, limit: Duration) -> Vec<String> {
    notices_until_one(sock, |n| n.starts_with(want), limit)
}

/// Datagrams on `sock` until one satisfies `done` or `limit` passes; everything read.
fn notices_until_one(
    sock: &UnixDatagram,
    done: impl Fn(&str) -> bool,
    limit: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let finished = done(&text);
                seen.push(text);
                if finished {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    seen
}

/// Sends `data` (small enough for the socket buffers: it is written before anything is read)
/// to a Unix socket and reads the echo to its end.
fn echo_over_unix(path: &Path, data: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(data).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    back
}

/// Runs the server as systemd would: `sockets` on fds 3, 4, ..., `LISTEN_PID` its own pid
/// (a shell exports its `$$` and execs the tool), `LISTEN_FDS` their count.
pub(crate) fn activated(sockets: Vec<OwnedFd>, extra_env: &[(&str, &str)], args: &[&str]) -> Child {
    let count = sockets.len();
    let mut cmd = other("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" echo-server \"$@\"")
        .arg(bin())
        .args(args)
        .env("LISTEN_FDS", count.to_string())
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let raw: Vec<i32> = sockets.iter().map(|s| s.as_raw_fd()).collect();
    // SAFETY: only dup2 (async-signal-safe) runs between fork and exec; the descriptors stay
    // open in the parent until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            // Out of the way first, so moving one onto 3.. cannot close another still needed.
            let high: Vec<i32> = raw
                .iter()
                .map(|&fd| libc::fcntl(fd, libc::F_DUPFD, 100))
                .collect();
            for (i, fd) in high.into_iter().enumerate() {
                if fd < 0 || libc::dup2(fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(sockets);
    child
}

/// A Unix listener and a TCP listener handed over: both are served, each address printed as a
/// client types it, and the notify socket hears READY, the status figures and STOPPING.
#[test]
fn handed_over_unix_and_tcp_listeners_are_served_and_notified() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("act.sock");
    let unix = UnixListener::bind(&path).unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let notify_env = notify_path.to_str().unwrap();

    let child = activated(
        vec![unix.into(), tcp.into()],
        &[("NOTIFY_SOCKET", notify_env)],
        &["-v"],
    );
    let mut server = KillOnDrop(child);
    let (ok, lines) = read_until(
        server.0.stdout.take().unwrap(),
        b"\n127.0.0.1",
        Duration::from_secs(20),
    );
    let lines = String::from_utf8_lossy(&lines).into_owned();
    assert!(ok, "two address lines: {lines:?}");
    assert!(
        lines.starts_with(&format!("unix:{}\n{tcp_addr}", path.display())),
        "{lines:?}"
    );
    let ready = notices_until(&notify, "READY=1", Duration::from_secs(20));
    assert_eq!(
        ready.last().map(String::as_str),
        Some("READY=1"),
        "{ready:?}"
    );

    let data = random_bytes(64 << 10, 3);
    assert!(echo_over_unix(&path, &data) == data, "unix echo differs");
    let mut tcp = std::net::TcpStream::connect(tcp_addr).unwrap();
    tcp.write_all(b"over tcp").unwrap();
    tcp.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    tcp.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"over tcp");

    // Sent every 2 s; the figures catch up with the two connections.
    let status = notices_until_one(
        &notify,
        |n| n.starts_with("STATUS=") && n.contains("2 served"),
        Duration::from_secs(20),
    );
    let status = status.last().cloned().unwrap_or_default();
    assert!(
        status.starts_with("STATUS=") && status.contains("2 served"),
        "{status:?}"
    );
    signal(&server.0, libc::SIGTERM);
    let stopping = notices_until(&notify, "STOPPING=1", Duration::from_secs(20));
    assert_eq!(stopping.last().map(String::as_str), Some("STOPPING=1"));
    let out = output_timeout(
        std::mem::replace(&mut server.0, other("true").spawn().unwrap()),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fd 3: unix:"), "{stderr}");
    assert!(stderr.contains("served 2 connections"), "{stderr}");
    assert!(
        path.exists(),
        "a handed-over socket file is the manager's: left in place"
    );
}

/// What is not a listening stream socket is refused with a message naming the fd and what it
/// is, exit 1, before anything is served. (One connected socket alone is systemd's
/// Accept=yes, served in inetd mode: tests/inetd_hexdump.rs; beside others it is refused.)
#[test]
fn sockets_that_cannot_be_served_are_refused_naming_the_fd() {
    let unix_dgram = UnixDatagram::unbound().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let connected = UnixStream::pair().unwrap().0;
    for (sockets, want) in [
        (vec![OwnedFd::from(unix_dgram)], "fd 3 is a datagram socket"),
        (
            vec![OwnedFd::from(listener), OwnedFd::from(connected)],
            "fd 4 is a Unix socket that is not listening",
        ),
    ] {
        let out = output_timeout(activated(sockets, &[], &[]), Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(want), "{want}: {stderr}");
        assert!(out.stdout.is_empty(), "no address line: {:?}", out.stdout);
    }
}

/// A UDP socket handed over (ListenDatagram=) is served as UDP, its address printed as
/// `udp:IP:PORT`; a stream socket beside it is refused (one kind per process).
#[test]
fn a_handed_over_udp_socket_is_served_as_udp() {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = udp.local_addr().unwrap();
    let mut server = KillOnDrop(activated(vec![udp.into()], &[], &[]));
    let (ok, line) = read_until(
        server.0.stdout.take().unwrap(),
        b"\n",
        Duration::from_secs(20),
    );
    assert!(ok, "no address line");
    assert_eq!(String::from_utf8_lossy(&line), format!("udp:{addr}\n"));
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    client.send(b"activated\n").unwrap();
    let mut buf = [0u8; 64];
    let n = client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"activated\n");
    signal(&server.0, libc::SIGTERM);
    assert!(wait_timeout(&mut server.0, Duration::from_secs(20)).success());

    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = output_timeout(
        activated(vec![udp.into(), tcp.into()], &[], &[]),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("fd 4 is a stream socket among UDP ones"),
        "{stderr}"
    );
}

/// An ADDR typed on the command line is ignored under activation, with a warning.
#[test]
fn a_typed_addr_is_ignored_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let unix = UnixListener::bind(&path).unwrap();
    let mut server = KillOnDrop(activated(vec![unix.into()], &[], &["127.0.0.1:1"]));
    let (ok, line) = read_until(
        server.0.stdout.take().unwrap(),
        b"\n",
        Duration::from_secs(20),
    );
    assert!(ok);
    assert_eq!(
        String::from_utf8_lossy(&line).trim(),
        format!("unix:{}", path.display())
    );
    let mut stderr = server.0.stderr.take().unwrap();
    signal(&server.0, libc::SIGTERM);
    wait_timeout(&mut server.0, Duration::from_secs(20));
    let mut text = String::new();
    stderr.read_to_string(&mut text).unwrap();
    assert!(text.contains("ADDR 127.0.0.1:1 is ignored"), "{text}");
}

/// The real thing: `systemd-socket-activate` binds a Unix socket and a TCP port, starts the
/// server on the first connection, and both are served.
#[test]
fn systemd_socket_activate_starts_and_hands_over() {
    if !peer_available("systemd-socket-activate") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sd.sock");
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let tcp = format!("127.0.0.1:{port}");
    let mut activator = KillOnDrop(
        other("systemd-socket-activate")
            .arg("-l")
            .arg(&path)
            .args(["-l", &tcp])
            .arg(bin())
            .args(["echo-server", "-q"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert!(
        eventually(Duration::from_secs(20), || path.exists()),
        "the activator binds the socket"
    );
    assert_eq!(echo_over_unix(&path, b"activated\n"), b"activated\n");
    let mut s = std::net::TcpStream::connect(&tcp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"tcp too").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"tcp too");
    signal(&activator.0, libc::SIGTERM);
    let status = wait_timeout(&mut activator.0, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    let mut out = String::new();
    activator
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, format!("unix:{}\n{tcp}\n", path.display()));
}

/// A service manager may hand over a socket whose path holds a newline (a typed ADDR could
/// not): the address line must stay one line, so the socket is refused naming its fd and
/// the path quoted, exit 1, and nothing is printed on stdout.
#[test]
fn a_handed_over_socket_whose_path_holds_a_newline_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a\nFAKE: b.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let out = output_timeout(
        activated(vec![OwnedFd::from(listener)], &[], &[]),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
    assert!(stderr.contains("socket activation: fd 3"), "{stderr}");
    assert!(stderr.contains("holds a control character"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

/// A handed-over socket whose path is not UTF-8 would be announced lossily, naming another
/// path (one anybody may make): refused like a typed ADDR that is not UTF-8, exit 1, nothing
/// on stdout.
#[test]
fn a_handed_over_socket_whose_path_is_not_utf8_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"e\xff\xfe.sock"));
    let listener = UnixListener::bind(&path).unwrap();
    let out = output_timeout(
        activated(vec![OwnedFd::from(listener)], &[], &[]),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
    assert!(stderr.contains("socket activation: fd 3"), "{stderr}");
    assert!(stderr.contains("not UTF-8"), "{stderr}");
}
