//! `echo-server` integration tests: the built binary on real sockets on 127.0.0.1 (and ::1).
//! Every wait is bounded, and a [`Server`] guard kills its child if a test fails midway.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{
    Backpressure, EchoServer, assert_backlog_holds, assert_backpressure, assert_no_panic,
    echo_back, eventually, other, random_bytes, read_until, round_trip, std_tool, tool,
};

/// Bound on every single socket read or write in these tests.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `echo-server` on TCP and the address its stdout line gave.
struct Server {
    inner: EchoServer,
    addr: SocketAddr,
}

impl std::ops::Deref for Server {
    type Target = EchoServer;
    fn deref(&self) -> &EchoServer {
        &self.inner
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut EchoServer {
        &mut self.inner
    }
}

impl Server {
    fn start(args: &[&str]) -> Server {
        Server::spawn(std_tool(["echo-server"].iter().chain(args)))
    }

    fn spawn(cmd: Command) -> Server {
        Server::spawn_with_stderr(cmd, None)
    }

    /// Starts the server with its stderr on `stderr` (a terminal, a pipe to another program),
    /// or collected for [`EchoServer::stderr`] if `None`, and waits for its address line.
    fn spawn_with_stderr(cmd: Command, stderr: Option<Stdio>) -> Server {
        let mut inner = EchoServer::launch_with_stderr(cmd, stderr);
        let line = inner.await_line(Duration::from_secs(20)).to_owned();
        let addr = line.parse().unwrap_or_else(|_| {
            panic!(
                "stdout line {line:?} is not an address; stderr: {}",
                inner.stderr()
            )
        });
        Server { inner, addr }
    }

    fn connect(&self) -> TcpStream {
        client(self.addr)
    }

    /// utime + stime of the server so far, in clock ticks (1/100 s).
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the ")" that closes the command name: state is field 3, utime 14.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
}

fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Writes `data` from a second thread while reading it back here (full duplex, as a real client
/// would), then half-closes and expects EOF after exactly `data`.
fn echo_all(addr: SocketAddr, data: Arc<Vec<u8>>) {
    let back = echo_back(client(addr), &data);
    assert!(
        back == *data,
        "echo differs ({} of {} bytes back)",
        back.len(),
        data.len()
    );
}

fn stop(server: Server) -> (ExitStatus, String) {
    server.inner.stop(Duration::from_secs(20))
}

#[test]
fn address_line_is_the_only_stdout() {
    let server = Server::start(&["127.0.0.1:0"]);
    assert!(server.addr.ip().is_loopback());
    assert_ne!(server.addr.port(), 0);
    round_trip(&mut server.connect(), b"hello\n");
    let addr = server.addr;
    let out = server.stdout.clone();
    let (status, err) = stop(server);
    assert!(status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.lock().unwrap()),
        format!("{addr}\n")
    );
    assert!(err.contains(&format!("listening on {addr}")), "{err}");
}

#[test]
fn many_concurrent_connections_echo_byte_exact() {
    let server = Server::start(&["127.0.0.1:0"]);
    let addr = server.addr;
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let data = Arc::new(random_bytes(64 * 1024 + i * 977, i as u64 + 1));
            thread::spawn(move || echo_all(addr, data))
        })
        .collect();
    server.inner.assert_served(threads, Duration::from_secs(20));
}

#[test]
fn half_close_gets_the_rest_then_eof() {
    let server = Server::start(&["127.0.0.1:0"]);
    let mut s = server.connect();
    let data = random_bytes(300_000, 7);
    // Written in full before reading: fits in the socket buffers, so this does not block.
    s.write_all(&data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert!(back == data, "{} of {} bytes back", back.len(), data.len());
}

#[test]
fn client_that_does_not_read_is_slowed_not_buffered() {
    let server = Server::start(&["127.0.0.1:0"]);
    let connect = || {
        let s = server.connect();
        let w = s.try_clone().unwrap();
        (s, w)
    };
    let bounds = Backpressure {
        total: 256 << 20,
        stall_within: Duration::from_secs(10),
        stall_below: 64 << 20,
        rss_ceiling_kib: u64::MAX,
        rss_growth_kib: 16 * 1024,
    };
    assert_backpressure(server.pid(), connect, &bounds);
}

#[test]
fn port_in_use_exits_1_naming_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = tool(["echo-server", &addr.to_string()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err,
        format!("asyncio-tool: cannot listen on {addr}: Address already in use\n")
    );
}

#[test]
fn bad_address_is_a_usage_error() {
    for bad in ["nonsense", "127.0.0.1:99999", "example.com:80", "::1:80"] {
        let out = tool(["echo-server", bad]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(out.stdout.is_empty());
        assert_no_panic(&out.stderr);
    }
}

/// A signal closes the listener at once while an open connection goes on to finish its
/// exchange; then exit 0 with the summary.
fn graceful_stop(sig: i32) {
    let mut server = Server::start(&["127.0.0.1:0", "--shutdown-timeout", "20s"]);
    let mut a = server.connect();
    round_trip(&mut a, b"before the signal");
    server.signal(sig);
    // Well inside the 20 s drain, so a listener kept open until the drain ends fails this.
    assert!(
        refused_within(&server, Duration::from_secs(10)),
        "new connections still accepted after the signal"
    );
    // The open connection is still served, including its half-close.
    round_trip(&mut a, b"after the signal");
    a.write_all(b"last").unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    a.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"last");
    drop(a);
    let status = server.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let err = server.stderr();
    assert_no_panic(err.as_bytes());
    assert!(
        err.contains("served") && err.contains("echoed 37 B in"),
        "no summary: {err}"
    );
    assert_eq!(server.stdout(), format!("{}\n", server.addr));
}

#[test]
fn sigterm_stops_gracefully() {
    graceful_stop(libc::SIGTERM);
}

#[test]
fn sigint_stops_gracefully() {
    graceful_stop(libc::SIGINT);
}

/// A closed terminal or a supervisor's SIGHUP is a stop request like SIGTERM, not a kill
/// without the drain and summary.
#[test]
fn sighup_stops_gracefully() {
    graceful_stop(libc::SIGHUP);
}

/// Under `nohup` (SIGHUP ignored when the server starts), SIGHUP stays ignored.
#[test]
fn sighup_stays_ignored_under_nohup() {
    let mut cmd = std_tool(["echo-server", "127.0.0.1:0", "--shutdown-timeout", "600s"]);
    // SAFETY: signal(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::signal(libc::SIGHUP, libc::SIG_IGN) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut server = Server::spawn(cmd);
    let mut a = server.connect();
    round_trip(&mut a, b"x");
    // Had SIGHUP been taken as the first stop signal, SIGTERM would be the second and cut
    // `a` at once; taken alone, SIGTERM waits for `a` to finish.
    server.signal(libc::SIGHUP);
    server.signal(libc::SIGTERM);
    assert!(
        server.logs_within(Duration::from_secs(10), "stopping: waiting"),
        "{}",
        server.stderr()
    );
    round_trip(&mut a, b"still served");
    drop(a);
    let status = server.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    let err = server.stderr();
    assert!(!err.contains("second stop signal"), "{err}");
    assert!(err.contains("served 1 connection, echoed 13 B in"), "{err}");
}

/// Whether new connections are refused (the listener is closed) within `limit`.
fn refused_within(server: &Server, limit: Duration) -> bool {
    eventually(
        limit,
        || matches!(TcpStream::connect(server.addr), Err(e) if e.kind() == ErrorKind::ConnectionRefused),
    )
}

/// Asserts that the server cut `s` with a reset, which a client can tell from a clean close.
fn assert_reset(s: &mut TcpStream) {
    let mut buf = [0u8; 8];
    match s.read(&mut buf) {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("a cut connection must end with a reset, got {other:?}"),
    }
}

#[test]
fn shutdown_timeout_closes_stragglers_with_a_reset() {
    let mut server = Server::start(&["127.0.0.1:0", "--shutdown-timeout", "300ms"]);
    let mut a = server.connect();
    round_trip(&mut a, b"x");
    let t = Instant::now();
    server.signal(libc::SIGTERM);
    // The test holds `a` open, so the server exits only by closing it at the deadline.
    let status = server.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(250), "closed early: {took:?}");
    assert_reset(&mut a);
    let err = server.stderr();
    assert!(
        err.contains("closed 1 still open at the shutdown deadline"),
        "{err}"
    );
}

#[test]
fn a_second_signal_closes_open_connections_at_once_with_a_reset() {
    let mut server = Server::start(&["127.0.0.1:0", "--shutdown-timeout", "600s"]);
    let mut a = server.connect();
    round_trip(&mut a, b"x");
    server.signal(libc::SIGINT);
    // Once new connections are refused, the first signal has been taken: the server is
    // waiting for `a`, and would for ten minutes.
    assert!(
        refused_within(&server, Duration::from_secs(10)),
        "new connections still accepted after the signal"
    );
    server.signal(libc::SIGINT);
    let status = server.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    assert_reset(&mut a);
    let err = server.stderr();
    assert_no_panic(err.as_bytes());
    assert!(
        // The probes above may have been accepted just before the first signal, so the counts
        // in these lines can include one.
        err.contains("(a second Ctrl-C or SIGTERM closes")
            && err.contains("still open at the second stop signal"),
        "{err}"
    );
}

#[test]
fn survives_running_out_of_file_descriptors() {
    let mut cmd = std_tool(["echo-server", "127.0.0.1:0"]);
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 24,
                rlim_max: 24,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = Server::spawn(cmd);
    // Far more connections than descriptors: the kernel completes them into the backlog.
    let mut clients: Vec<TcpStream> = (0..60).map(|_| server.connect()).collect();
    assert!(
        server.logs_within(Duration::from_secs(20), "Too many open files"),
        "no accept error logged: {}",
        server.stderr()
    );
    // Back-off, not a spin: well under 20% of a core while descriptors stay exhausted.
    let cpu0 = server.cpu_ticks();
    thread::sleep(Duration::from_secs(2));
    let cpu = server.cpu_ticks() - cpu0;
    assert!(
        cpu < 40,
        "server used {cpu} ticks of CPU in 2 s while out of descriptors"
    );
    // Rate-limited: a handful of lines, not thousands.
    let lines = server.stderr().matches("Too many open files").count();
    assert!(lines <= 5, "{lines} accept-error lines");
    // The accepted ones are still served.
    round_trip(&mut clients[0], b"still here");
    clients.clear();
    // Once clients go away, new connections are served again.
    let served = eventually(Duration::from_secs(10), || {
        let Ok(mut s) = TcpStream::connect(server.addr) else {
            return false;
        };
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let _ = s.write_all(b"again");
        let mut back = [0u8; 5];
        s.read_exact(&mut back).is_ok() && &back == b"again"
    });
    assert!(
        served,
        "not serving after descriptors were freed: {}",
        server.stderr()
    );
    let (status, err) = stop(server);
    assert!(status.success(), "{err}");
}

#[test]
fn reset_client_does_not_disturb_others() {
    let server = Server::start(&["127.0.0.1:0"]);
    let mut steady = server.connect();
    round_trip(&mut steady, b"one");
    for _ in 0..5 {
        let mut rude = server.connect();
        rude.write_all(&random_bytes(2 << 20, 3)[..64 * 1024])
            .unwrap();
        // SO_LINGER 0: close sends RST instead of FIN, while echo data is still in flight.
        socket2::SockRef::from(&rude)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(rude);
    }
    round_trip(&mut steady, &random_bytes(100_000, 9));
    round_trip(&mut server.connect(), b"new one");
    let (status, _) = stop(server);
    assert!(status.success());
}

#[test]
fn max_connections_holds_the_rest_in_the_backlog() {
    let server = Server::start(&["127.0.0.1:0", "--max-connections", "1"]);
    assert_backlog_holds(|| server.connect(), IO_TIMEOUT);
}

#[test]
fn idle_timeout_closes_quiet_connections() {
    // A second of idle time: a loaded machine that stalls the busy client's pings for that
    // long is unlikely; 300 ms was not.
    let server = Server::start(&["127.0.0.1:0", "--idle-timeout", "1s", "-v"]);
    let mut busy = server.connect();
    let mut idle = server.connect();
    round_trip(&mut idle, b"hi");
    let t = Instant::now();
    // Meanwhile a connection that keeps talking stays open past the timeout.
    while t.elapsed() < Duration::from_millis(2500) {
        round_trip(&mut busy, b"ping");
        thread::sleep(Duration::from_millis(50));
    }
    let mut buf = [0u8; 4];
    assert_eq!(
        idle.read(&mut buf).unwrap(),
        0,
        "idle connection not closed"
    );
    round_trip(&mut busy, b"still open");
    assert!(
        server.logs_within(Duration::from_secs(20), "idle timeout"),
        "{}",
        server.stderr()
    );
}

/// Caps a connected client socket's receive buffer, so the server's writes soon wait on the
/// client's reads: after the handshake, the server's send buffer stays small too.
fn small_receive_buffer(s: &TcpStream) {
    socket2::SockRef::from(s)
        .set_recv_buffer_size(4096)
        .unwrap();
}

/// A client whose receive buffer is capped before it connects: the window it offers stays
/// small, while the server's send buffer grows to megabytes (loopback's large segments), so
/// the server's writes wait long on the client's reads.
fn client_with_small_receive_buffer(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect_timeout(&addr.into(), IO_TIMEOUT).unwrap();
    let s = TcpStream::from(socket);
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Writes `chunk` over and over on a clone of `s` until the socket fails (closed by the
/// server, or by the test once it is done), pausing `pace` between writes.
fn keep_writing(s: &TcpStream, chunk: Vec<u8>, pace: Option<Duration>) -> thread::JoinHandle<()> {
    let mut w = s.try_clone().unwrap();
    thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < IO_TIMEOUT && w.write_all(&chunk).is_ok() {
            if let Some(pace) = pace {
                thread::sleep(pace);
            }
        }
    })
}

#[test]
fn idle_timeout_closes_a_client_that_stops_reading() {
    // Bytes stop moving because the client no longer reads: the server's write waits, and
    // that wait counts as idle too, so the connection is closed rather than held forever.
    // Small paced writes leave the server waiting in its small-message loop, large ones in
    // its burst path.
    for (size, pace) in [(500, Some(Duration::from_millis(2))), (1 << 20, None)] {
        let server = Server::start(&["127.0.0.1:0", "--idle-timeout", "300ms", "-v"]);
        let mut s = server.connect();
        round_trip(&mut s, b"hi");
        small_receive_buffer(&s);
        let writer = keep_writing(&s, random_bytes(size, 9), pace);
        assert!(
            server.logs_within(Duration::from_secs(20), "idle timeout"),
            "no idle timeout for a client that stopped reading ({size} B writes): {}",
            server.stderr()
        );
        // Already reset by the server, usually; this only ends the writer if not.
        let _ = s.shutdown(Shutdown::Both);
        writer.join().unwrap();
        // The server itself goes on serving.
        let mut fresh = server.connect();
        round_trip(&mut fresh, b"still serving");
    }
}

#[test]
fn idle_timeout_spares_a_client_that_reads_slowly_but_steadily() {
    // The client never stops reading, but reads far more slowly than it sends: the server's
    // write waits on a send buffer of up to megabytes that drains at the client's pace, so
    // its own writes are seconds apart. The client's reads still count as bytes moving.
    const IDLE: Duration = Duration::from_secs(1);
    let server = Server::start(&["127.0.0.1:0", "--idle-timeout", "1s", "-v"]);
    let mut s = client_with_small_receive_buffer(server.addr);
    round_trip(&mut s, b"hi");
    let writer = keep_writing(&s, random_bytes(64 << 10, 5), None);
    // About 50 KiB/s, for three idle periods.
    let start = Instant::now();
    let mut got = 0;
    let mut buf = [0u8; 1024];
    while start.elapsed() < 3 * IDLE {
        match s.read(&mut buf) {
            Ok(n @ 1..) => got += n,
            other => panic!(
                "cut after {:?} with {got} B read: {other:?}; server: {}",
                start.elapsed(),
                server.stderr()
            ),
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !server.stderr().contains("idle timeout"),
        "{}",
        server.stderr()
    );
    // Once it stops reading, the send queue stands still, and that is idle.
    assert!(
        server.logs_within(Duration::from_secs(20), "idle timeout"),
        "no idle timeout once the slow client stopped reading: {}",
        server.stderr()
    );
    let _ = s.shutdown(Shutdown::Both);
    writer.join().unwrap();
}

#[test]
fn ipv6_loopback() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("note: ::1 is not available here; IPv6 test skipped");
        return;
    }
    let server = Server::start(&["[::1]:0"]);
    assert!(server.addr.is_ipv6(), "{}", server.addr);
    assert!(server.stdout().starts_with("[::1]:"));
    echo_all(server.addr, Arc::new(random_bytes(200_000, 6)));
}

#[test]
fn verbose_logs_each_connection_on_stderr_only() {
    let server = Server::start(&["127.0.0.1:0", "-v"]);
    let mut s = server.connect();
    let peer = s.local_addr().unwrap();
    round_trip(&mut s, b"12345");
    s.shutdown(Shutdown::Write).unwrap();
    let _ = s.read(&mut [0u8; 1]);
    let addr = server.addr;
    assert!(
        server.logs_within(Duration::from_secs(20), &format!("{peer}: closed")),
        "{}",
        server.stderr()
    );
    let out = server.stdout.clone();
    let (status, err) = stop(server);
    assert!(status.success());
    assert!(err.contains(&format!("{peer}: open")), "{err}");
    assert!(err.contains("5 B echoed"), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.lock().unwrap()),
        format!("{addr}\n")
    );
}

#[test]
fn status_line_shows_the_bytes_of_open_connections() {
    let term = crate::util::pty();
    let server = Server::spawn_with_stderr(
        std_tool(["echo-server", "127.0.0.1:0"]),
        Some(Stdio::from(term.slave)),
    );
    // An interactive client: a line typed, its echo, and the connection stays open.
    let mut s = server.connect();
    round_trip(&mut s, b"hello\n");
    let (seen, screen) = read_until(
        term.master,
        b"1 open, 1 served, 6 B echoed",
        Duration::from_secs(20),
    );
    let tail = &screen[screen.len().saturating_sub(200)..];
    assert!(
        seen,
        "status line without the open connection's bytes; last drawn: {:?}",
        String::from_utf8_lossy(tail)
    );
    drop(s);
    let (status, _) = stop(server);
    assert!(status.success());
}

/// `echo-server -v ADDR 2>&1 | head -2`: once `head` has gone, every message meets a closed
/// pipe. The messages are lost; the server is not (it used to abort, exit 134, resetting
/// every client).
#[test]
fn stderr_reader_going_away_does_not_stop_the_server() {
    let mut head = other("head")
        .args(["-n", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot start head");
    let head_stdin = head.stdin.take().unwrap();
    let mut server = Server::spawn_with_stderr(
        std_tool(["echo-server", "-v", "127.0.0.1:0"]),
        Some(Stdio::from(head_stdin)),
    );
    // "listening on", then this connection's "open": head has its two lines and exits.
    let mut first = server.connect();
    round_trip(&mut first, b"first");
    let head_out = crate::util::output_timeout(head, Duration::from_secs(20));
    let lines = String::from_utf8_lossy(&head_out.stdout).into_owned();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    // Now every open and close message fails to be written.
    round_trip(&mut first, b"after head left");
    for i in 0..5 {
        let mut s = server.connect();
        round_trip(&mut s, format!("client {i}").as_bytes());
    }
    drop(first);
    server.signal(libc::SIGTERM);
    let status = server.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn quiet_prints_nothing_on_stderr() {
    let server = Server::start(&["127.0.0.1:0", "-q", "-v"]);
    round_trip(&mut server.connect(), b"shh");
    let (status, err) = stop(server);
    assert!(status.success());
    assert_eq!(err, "");
}

/// Runs a peer client with the file on stdin and checks it printed the file back intact.
fn interop(program: &str, args: &[&str]) {
    if !crate::util::peer_available(program) {
        return;
    }
    let server = Server::start(&["127.0.0.1:0"]);
    let data = random_bytes(3 << 20, 11);
    let host = server.addr.ip().to_string();
    let port = server.addr.port().to_string();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("HOST", &host).replace("PORT", &port))
        .collect();
    let out = crate::util::peer_output(program, &args, &data, Duration::from_secs(30));
    assert!(
        out == data,
        "{program} got {} of {} bytes back",
        out.len(),
        data.len()
    );
}

#[test]
fn interop_netcat_openbsd() {
    interop("nc.openbsd", &["-N", "HOST", "PORT"]);
}

#[test]
fn interop_socat() {
    // -t: after stdin's EOF, wait for the echo's EOF instead of socat's 0.5 s default.
    interop("socat", &["-t", "30", "-", "TCP:HOST:PORT"]);
}

#[test]
fn interop_ncat() {
    interop("ncat", &["HOST", "PORT"]);
}

/// Scripts find the server by its address line: a stdout that cannot take it (full, closed)
/// is an error before anything is served, exit 1, naming the reason; never a server that
/// runs where nobody can find it, nor a silent exit 0.
#[test]
fn an_address_line_that_cannot_be_written_is_an_error() {
    use std::os::unix::process::CommandExt;
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut closed = std_tool(["echo-server", "127.0.0.1:0"]);
    // SAFETY: close(2) only, between fork and exec.
    unsafe {
        closed.pre_exec(|| {
            libc::close(1);
            Ok(())
        });
    }
    let mut on_full = std_tool(["echo-server", "127.0.0.1:0"]);
    on_full.stdout(full);
    for (mut cmd, reason) in [
        (on_full, "No space left on device"),
        (closed, "Bad file descriptor"),
    ] {
        let child = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = crate::util::output_timeout(child, Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "cannot write the address to standard output: {reason}"
            )),
            "{stderr}"
        );
    }
}

/// `echo-server ADDR | true`: the reader of the address line is gone before it is written,
/// so nobody can learn where the server listens: exit 1 with the reason, as `>&-` does,
/// never a silent exit 0 (nor a server left running unfindable).
#[test]
fn an_address_line_nobody_reads_is_an_error() {
    for addr in ["127.0.0.1:0", "udp:127.0.0.1:0"] {
        let (read, write) = rustix::pipe::pipe().unwrap();
        drop(read);
        let child = std_tool(["echo-server", addr])
            .stdin(Stdio::null())
            .stdout(std::fs::File::from(write))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = crate::util::output_timeout(child, Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{addr}: {stderr}");
        assert!(
            stderr.contains("cannot write the address to standard output")
                && stderr.contains("Broken pipe"),
            "{addr}: {stderr}"
        );
    }
}

/// `echo-server ADDR | head -1`: a reader that takes the line and leaves does not turn a
/// serving server into a failure later: it serves, and stops with exit 0.
#[test]
fn a_reader_that_takes_the_line_and_leaves_changes_nothing() {
    let (read, write) = rustix::pipe::pipe().unwrap();
    let child = std_tool(["echo-server", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::from(write))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = crate::util::KillOnDrop(child);
    let (found, line) = read_until(std::fs::File::from(read), b"\n", IO_TIMEOUT);
    assert!(found, "no address line");
    // read_until's thread holds the read end until the pipe closes: gone with the server.
    let addr: SocketAddr = String::from_utf8(line).unwrap().trim().parse().unwrap();
    round_trip(&mut client(addr), b"still serving");
    crate::util::signal(&server.0, libc::SIGTERM);
    let status = crate::util::wait_timeout(&mut server.0, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
}

/// A low `ulimit -n` is an error naming the limit, exit 1; never tokio's panic (exit 101)
/// nor an abort, at whichever limit the descriptors run out.
#[test]
fn low_descriptor_limits_are_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"x\n").unwrap();
    let file = file.to_str().unwrap();
    // A port nothing listens on: the client fails to connect once it has a runtime.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let closed = closed.to_string();
    let runs: [&[&str]; 4] = [
        &["echo-server", "127.0.0.1:0"],
        &["echo-server", "udp:127.0.0.1:0"],
        &["echo-client", &closed],
        &["cat", file],
    ];
    for args in runs {
        for limit in 4..=10 {
            let mut cmd = other("sh");
            cmd.args(["-c", &format!("ulimit -n {limit} && exec \"$@\""), "sh"])
                .arg(crate::util::bin())
                .args(args);
            let child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut child = crate::util::KillOnDrop(child);
            // A server that started serves until stopped: that is a pass too.
            let exited = eventually(Duration::from_secs(5), || {
                matches!(child.0.try_wait(), Ok(Some(_)))
            });
            if !exited {
                crate::util::signal(&child.0, libc::SIGTERM);
            }
            let status = crate::util::wait_timeout(&mut child.0, Duration::from_secs(30));
            let mut stderr = String::new();
            child
                .0
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            let what = format!("{args:?} under ulimit -n {limit}: {status:?}: {stderr}");
            assert_no_panic(stderr.as_bytes());
            assert!(matches!(status.code(), Some(0 | 1)), "{what}");
            if status.code() == Some(1) && args[0] != "echo-client" {
                assert!(stderr.contains("Too many open files"), "{what}");
            }
            if matches!(limit, 6 | 7) && args[0] != "cat" {
                assert!(stderr.contains(&format!("(ulimit -n {limit};")), "{what}");
            }
        }
    }
}

/// `echo-server` typed at a terminal (stdout and stderr both on it): the address shows once,
/// in the "listening on" line, not also as the bare line scripts read from a pipe. Under `-q`
/// that line is not shown, so the bare line is. (Scripts, reading a pipe, are covered by every
/// other test here.)
#[test]
fn on_a_terminal_the_address_shows_once() {
    for (quiet, want) in [
        (false, &b"listening on 127.0.0.1:"[..]),
        (true, b"127.0.0.1:"),
    ] {
        let term = crate::util::pty();
        let mut cmd = std_tool(["echo-server"]);
        cmd.args(quiet.then_some("-q"))
            .arg("127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(term.slave.try_clone().unwrap())
            .stderr(term.slave.try_clone().unwrap())
            .env("TERM", "xterm");
        let mut child = crate::util::KillOnDrop(cmd.spawn().unwrap());
        drop(term.slave);
        let (seen, screen) = read_until(term.master, want, Duration::from_secs(20));
        crate::util::signal(&child.0, libc::SIGTERM);
        let status = crate::util::wait_timeout(&mut child.0, Duration::from_secs(20));
        let screen = String::from_utf8_lossy(&screen);
        assert!(seen, "quiet {quiet}: no address: {screen:?}");
        assert_eq!(
            screen.matches("127.0.0.1:").count(),
            1,
            "quiet {quiet}: the address more than once: {screen:?}"
        );
        assert!(status.success(), "{status:?}");
    }
}
