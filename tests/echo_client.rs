//! `echo-client` integration tests: the built binary against real sockets on 127.0.0.1 —
//! small servers written here (echo, send-and-close, reset, silent), socat, and
//! asyncio-tool's own echo server. Every wait is bounded and every child is killed if a test
//! fails, so a hang fails the test instead of stalling the run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::process::{Child, ChildStdin, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{assert_no_panic, other, output_timeout, random_bytes, std_tool};

/// Generous bound for anything that should take well under a second.
const PROMPT: Duration = Duration::from_secs(5);
/// Bound for the 50 MiB round trips (a debug build, two cores).
const BULK: Duration = Duration::from_secs(40);

/// Kills the child when a test fails before it is waited for.
struct Guard(Option<Child>);

impl Guard {
    fn new(child: Child) -> Self {
        Guard(Some(child))
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child still owned")
    }

    /// Hands the child over to a bounded wait (which kills it on timeout itself).
    fn output(mut self, limit: Duration) -> Output {
        output_timeout(self.0.take().expect("child still owned"), limit)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `asyncio-tool echo-client ARGS` with stdin as given and stdout/stderr piped.
fn client(args: &[&str], stdin: Stdio) -> Guard {
    let child = std_tool(std::iter::once("echo-client").chain(args.iter().copied()))
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Guard::new(child)
}

/// Writes `data` to the child's stdin from a thread, then closes it (EOF). Write errors are
/// ignored: a client that exits early closes the pipe, and the test checks that instead.
fn feed(stdin: ChildStdin, data: Vec<u8>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut stdin = stdin;
        let _ = stdin.write_all(&data);
    })
}

fn stderr_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts byte equality without printing megabytes on failure.
fn assert_same(got: &[u8], want: &[u8]) {
    crate::util::assert_same_bytes("output", got, want);
}

fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A port nobody listens on (bound, then released).
fn free_port() -> SocketAddr {
    listener().1
}

/// Echoes one connection: everything read is written back; at the client's EOF, closes.
fn echo_one(listener: TcpListener) {
    thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let mut buf = vec![0; 64 * 1024];
        loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

fn echo_server() -> SocketAddr {
    let (listener, addr) = listener();
    echo_one(listener);
    addr
}

/// Accepts one connection and runs `serve` on it in a thread.
fn serve_one(serve: impl FnOnce(TcpStream) + Send + 'static) -> SocketAddr {
    let (listener, addr) = listener();
    thread::spawn(move || {
        if let Ok((conn, _)) = listener.accept() {
            serve(conn);
        }
    });
    addr
}

/// socat as an independent echo server on a free port, killed on drop.
struct Socat(Guard, SocketAddr);

fn socat() -> Option<Socat> {
    if !crate::util::peer_available("socat") {
        return None;
    }
    let addr = free_port();
    let child = crate::util::socat_echo(&format!(
        "TCP-LISTEN:{},bind=127.0.0.1,fork,reuseaddr",
        addr.port()
    ));
    Some(Socat(Guard::new(child.expect("socat starts")), addr))
}

/// 50 MiB of random data through the client and back, compared byte for byte. The client is
/// told to --wait for the server, which may still be starting.
fn round_trip_50_mib(addr: SocketAddr) {
    let data = random_bytes(50 << 20, 0x5eed_0050);
    let mut c = client(&["--wait", "10s", &addr.to_string()], Stdio::piped());
    let feeder = feed(c.child().stdin.take().unwrap(), data.clone());
    let out = c.output(BULK);
    feeder.join().unwrap();
    assert_no_panic(&out.stderr);
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        stderr_text(&out)
    );
    assert_same(&out.stdout, &data);
    assert!(out.stderr.is_empty(), "stderr: {}", stderr_text(&out));
}

#[test]
fn fifty_mib_through_socat_comes_back_identical() {
    let Some(server) = socat() else { return };
    round_trip_50_mib(server.1);
    drop(server.0);
}

/// NEEDS `echo-server` (built on another branch): on the `client` branch alone this fails with
/// "echo-server: not implemented yet"; once both are merged it must pass.
#[test]
fn needs_echo_server_fifty_mib_through_own_server_comes_back_identical() {
    let mut server = Guard::new(
        std_tool(["echo-server", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = server.child().stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(PROMPT).unwrap_or_default();
    // The one stdout line is the bound address (its last word, should there be others).
    let addr: SocketAddr = match line.split_whitespace().last().map(str::parse) {
        Some(Ok(addr)) => addr,
        _ => {
            let _ = server.child().kill();
            let mut err = String::new();
            let _ = server
                .child()
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err);
            panic!("echo-server printed no address (stdout {line:?}); stderr: {err}");
        }
    };
    round_trip_50_mib(addr);
}

#[test]
fn empty_stdin_exits_0_with_empty_stdout() {
    let addr = echo_server();
    let out = client(&[&addr.to_string()], Stdio::null()).output(PROMPT);
    assert_no_panic(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn replies_after_the_end_of_input_are_all_printed() {
    // The server answers only once the client has half-closed, and only after a pause longer
    // than socat's default 0.5 s: a client that stops reading at EOF would lose all of it.
    let reply = random_bytes(1 << 20, 7);
    let expected = reply.clone();
    let addr = serve_one(move |mut conn| {
        let mut request = Vec::new();
        let _ = conn.read_to_end(&mut request);
        thread::sleep(Duration::from_millis(700));
        let _ = conn.write_all(&reply);
    });
    let mut c = client(&[&addr.to_string()], Stdio::piped());
    feed(c.child().stdin.take().unwrap(), b"request\n".to_vec());
    let out = c.output(PROMPT);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert_same(&out.stdout, &expected);
}

#[test]
fn refused_exits_1_naming_the_address() {
    let addr = free_port();
    let started = Instant::now();
    let out = client(&[&addr.to_string()], Stdio::null()).output(PROMPT);
    assert_no_panic(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_text(&out);
    assert_eq!(
        err.trim_end(),
        format!("asyncio-tool: cannot connect to {addr}: Connection refused")
    );
    assert!(out.stdout.is_empty());
    assert!(started.elapsed() < Duration::from_secs(2), "not prompt");
}

#[test]
fn unresolvable_host_exits_1_naming_the_host() {
    let out = client(&["nosuch.invalid:7"], Stdio::null()).output(Duration::from_secs(15));
    assert_no_panic(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_text(&out);
    assert!(
        err.starts_with("asyncio-tool: cannot resolve nosuch.invalid: "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn connect_timeout_bounds_a_connect_that_hangs() {
    // A listener that never accepts and whose queue is full drops further SYNs, so a connect
    // to it hangs: a loopback-only way to see --connect-timeout work.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    let mut hangs = false;
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => {
                hangs = true;
                break;
            }
        }
    }
    if !hangs {
        eprintln!("note: this kernel never lets a connect hang on loopback; skipped");
        return;
    }
    let started = Instant::now();
    let out = client(
        &["--connect-timeout", "400ms", &addr.to_string()],
        Stdio::null(),
    )
    .output(PROMPT);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_text(&out).trim_end(),
        format!("asyncio-tool: cannot connect to {addr}: timed out after 400ms")
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn wait_retries_until_the_server_starts() {
    let addr = free_port();
    let mut c = client(&["--wait", "10s", &addr.to_string()], Stdio::piped());
    thread::sleep(Duration::from_secs(1));
    // Still trying, not failed.
    assert!(
        c.child().try_wait().unwrap().is_none(),
        "client gave up early"
    );
    echo_one(TcpListener::bind(addr).unwrap());
    feed(c.child().stdin.take().unwrap(), b"ping\n".to_vec());
    let out = c.output(PROMPT);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert_eq!(out.stdout, b"ping\n");
}

#[test]
fn wait_gives_up_when_the_time_is_over() {
    let addr = free_port();
    let started = Instant::now();
    let out = client(&["--wait", "600ms", &addr.to_string()], Stdio::null()).output(PROMPT);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_text(&out).trim_end(),
        format!("asyncio-tool: cannot connect to {addr} (gave up after 600ms): Connection refused")
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn server_closing_first_ends_the_client_with_stdin_still_open() {
    let blob = random_bytes(1 << 20, 11);
    let sent = blob.clone();
    let addr = serve_one(move |mut conn| {
        let _ = conn.write_all(&sent);
        // Dropping closes in order (FIN): nothing unread is pending, the client sent nothing.
    });
    let mut c = client(&[&addr.to_string()], Stdio::piped());
    // Keep stdin open and idle for the whole test: the client must not wait for it.
    let _stdin = c.child().stdin.take().unwrap();
    let started = Instant::now();
    let out = c.output(PROMPT);
    assert_no_panic(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert_same(&out.stdout, &blob);
    assert!(started.elapsed() < Duration::from_secs(2), "not prompt");
}

#[test]
fn server_reset_exits_1() {
    let addr = serve_one(|conn| {
        let _ = (&conn).write_all(b"partial\n");
        thread::sleep(Duration::from_millis(100));
        // SO_LINGER 0: close sends RST instead of FIN.
        let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
        drop(conn);
    });
    let mut c = client(&[&addr.to_string()], Stdio::piped());
    let _stdin = c.child().stdin.take().unwrap();
    let out = c.output(PROMPT);
    assert_no_panic(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_text(&out).trim_end(),
        format!(
            "asyncio-tool: connection to {addr} lost: Connection reset by peer (0 bytes sent, \
             8 bytes received)"
        )
    );
}

#[test]
fn idle_timeout_gives_up_on_a_silent_server() {
    let addr = serve_one(|mut conn| {
        // Reads everything, answers nothing, closes only when the client has gone.
        let mut sink = Vec::new();
        let _ = conn.read_to_end(&mut sink);
        thread::sleep(Duration::from_secs(10));
    });
    let mut c = client(
        &["--idle-timeout", "300ms", &addr.to_string()],
        Stdio::piped(),
    );
    feed(c.child().stdin.take().unwrap(), b"anyone there?\n".to_vec());
    let started = Instant::now();
    let out = c.output(PROMPT);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_text(&out).trim_end(),
        format!(
            "asyncio-tool: no reply from {addr} for 300ms after the end of input (--idle-timeout)"
        )
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn idle_timeout_is_not_triggered_by_a_slow_but_steady_server() {
    // Replies keep coming, 150 ms apart, for longer than the idle timeout in total.
    let addr = serve_one(|mut conn| {
        let _ = conn.shutdown(Shutdown::Read);
        for i in 0..6 {
            thread::sleep(Duration::from_millis(150));
            let _ = conn.write_all(format!("{i}\n").as_bytes());
        }
    });
    let out = client(
        &["--idle-timeout", "400ms", &addr.to_string()],
        Stdio::null(),
    )
    .output(PROMPT);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert_eq!(out.stdout, b"0\n1\n2\n3\n4\n5\n");
}

#[test]
fn closed_stdout_is_quiet_success() {
    // `| head -c1`: the reader goes away after one byte while data keeps flowing.
    let Some(server) = socat() else { return };
    let mut c = client(&["--wait", "10s", &server.1.to_string()], Stdio::piped());
    feed(c.child().stdin.take().unwrap(), random_bytes(20 << 20, 3));
    let mut stdout = c.child().stdout.take().unwrap();
    let mut one = [0u8; 1];
    stdout.read_exact(&mut one).unwrap();
    drop(stdout);
    let started = Instant::now();
    let out = c.output(PROMPT);
    assert_no_panic(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert!(out.stderr.is_empty(), "not quiet: {}", stderr_text(&out));
    assert!(started.elapsed() < Duration::from_secs(2), "not prompt");
}

/// A pseudo-terminal: the master for the test to type into, the slave for the client's stdin.
fn pty() -> (std::fs::File, OwnedFd) {
    let term = crate::util::pty();
    (term.master, OwnedFd::from(term.slave))
}

/// Reads the child's stdout on a thread and hands over each piece, so the test can wait for
/// "the reply so far" with a bound.
fn stdout_pieces(child: &mut Child) -> mpsc::Receiver<Vec<u8>> {
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Collects stdout pieces until `want` has arrived or `limit` has passed.
fn read_until(rx: &mpsc::Receiver<Vec<u8>>, want: &[u8], limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while !got.ends_with(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(piece) => got.extend_from_slice(&piece),
            Err(_) => break,
        }
    }
    got
}

#[test]
fn typed_lines_come_back_before_the_end_of_input() {
    let addr = echo_server();
    let (mut master, slave) = pty();
    let mut c = client(&[&addr.to_string()], Stdio::from(slave));
    let replies = stdout_pieces(c.child());
    master.write_all(b"hello\n").unwrap();
    assert_eq!(read_until(&replies, b"hello\n", PROMPT), b"hello\n");
    master.write_all(b"again\n").unwrap();
    assert_eq!(read_until(&replies, b"again\n", PROMPT), b"again\n");
    assert!(
        c.child().try_wait().unwrap().is_none(),
        "exited before Ctrl-D"
    );
    // Ctrl-D at the start of a line: the terminal's end of input.
    master.write_all(&[4]).unwrap();
    let out = c.output(PROMPT);
    assert_no_panic(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert_eq!(
        stderr_text(&out),
        format!("connected to {addr} — Ctrl-D to finish\n")
    );
}

#[test]
fn quiet_interactive_client_prints_no_banner() {
    let addr = echo_server();
    let (mut master, slave) = pty();
    let mut c = client(&["-q", &addr.to_string()], Stdio::from(slave));
    let replies = stdout_pieces(c.child());
    master.write_all(b"hi\n").unwrap();
    assert_eq!(read_until(&replies, b"hi\n", PROMPT), b"hi\n");
    master.write_all(&[4]).unwrap();
    let out = c.output(PROMPT);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", stderr_text(&out));
}

#[test]
fn ctrl_c_exits_130() {
    let addr = echo_server();
    let (mut master, slave) = pty();
    let mut c = client(&[&addr.to_string()], Stdio::from(slave));
    let replies = stdout_pieces(c.child());
    master.write_all(b"hello\n").unwrap();
    // Once the reply is back, the client is connected and its handler is installed.
    assert_eq!(read_until(&replies, b"hello\n", PROMPT), b"hello\n");
    let pid = rustix::process::Pid::from_child(c.child());
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let out = c.output(PROMPT);
    assert_eq!(out.status.code(), Some(130), "{}", stderr_text(&out));
    assert_no_panic(&out.stderr);
}

#[test]
fn no_progress_line_when_stderr_is_not_a_terminal() {
    let addr = echo_server();
    let mut c = client(&[&addr.to_string()], Stdio::piped());
    feed(c.child().stdin.take().unwrap(), random_bytes(4 << 20, 5));
    let out = c.output(PROMPT);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout.len(), 4 << 20);
    assert!(out.stderr.is_empty(), "{}", stderr_text(&out));
}

#[test]
fn verbose_reports_the_exchange() {
    let addr = echo_server();
    let mut c = client(&["-v", &addr.to_string()], Stdio::piped());
    feed(c.child().stdin.take().unwrap(), b"abc".to_vec());
    let out = c.output(PROMPT);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"abc");
    let err = stderr_text(&out);
    assert!(err.contains(&format!("connected to {addr}")), "{err}");
    assert!(err.contains("sent 3 B, received 3 B in "), "{err}");
}

#[test]
fn files_on_stdin_and_stdout_take_the_copying_path() {
    // Pipes are spliced; a regular file on stdin and on stdout goes through the buffers.
    let data = random_bytes(8 << 20, 13);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let output = dir.path().join("out");
    std::fs::write(&input, &data).unwrap();
    let addr = echo_server();
    let mut c = std_tool(["echo-client", &addr.to_string()])
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(std::fs::File::create(&output).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = crate::util::wait_timeout(&mut c, BULK);
    assert!(status.success());
    assert_same(&std::fs::read(&output).unwrap(), &data);
}

/// `sh -c 'exec asyncio-tool echo-client ADDR REDIRECTION'`: starts the client with a
/// standard descriptor closed, which `Command` cannot do by itself.
fn client_with_closed(redirection: &str, addr: SocketAddr) -> Output {
    let script = format!("exec \"$0\" echo-client \"$1\" {redirection}");
    let child = other("sh")
        .args(["-c", &script])
        .arg(crate::util::bin())
        .arg(addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    output_timeout(child, PROMPT)
}

/// True when a client connected to `listener` (it is left non-blocking).
fn was_connected(listener: &TcpListener) -> bool {
    listener.set_nonblocking(true).unwrap();
    listener.accept().is_ok()
}

/// Item 2: with stdout closed every reply would be thrown away; fail before connecting.
#[test]
fn closed_stdout_at_start_fails_before_connecting() {
    let (listener, addr) = listener();
    let out = client_with_closed(">&-", addr);
    assert_no_panic(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
    assert_eq!(
        stderr_text(&out),
        "asyncio-tool: cannot write to standard output: Bad file descriptor\n"
    );
    assert!(
        !was_connected(&listener),
        "connected with nowhere to put replies"
    );
}

/// Item 2: a closed stdin is not an empty one (`< /dev/null` says that).
#[test]
fn closed_stdin_at_start_fails_before_connecting() {
    let (listener, addr) = listener();
    let out = client_with_closed("<&-", addr);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
    assert_eq!(
        stderr_text(&out),
        "asyncio-tool: cannot read standard input: Bad file descriptor\n"
    );
    assert!(!was_connected(&listener));
}

#[test]
fn full_stdout_fails_with_the_reason() {
    let addr = echo_server();
    let child = std_tool(["echo-client", &addr.to_string()])
        .stdin(Stdio::piped())
        .stdout(
            std::fs::File::options()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut c = Guard::new(child);
    feed(c.child().stdin.take().unwrap(), b"ping\n".to_vec());
    let out = c.output(PROMPT);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_text(&out),
        "asyncio-tool: cannot write to standard output: No space left on device\n"
    );
}

/// A server that reads `keep` bytes of each connection, then resets it (SO_LINGER 0), for
/// as many connections as come.
fn resetting_server(keep: usize) -> SocketAddr {
    let (listener, addr) = listener();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            thread::spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                let mut got = 0;
                while got < keep {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
                let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
            });
        }
    });
    addr
}

/// Item 3: a reset must fail the run whichever side of the client took the ECONNRESET. The
/// send side is busy when the reset comes, so it often takes it and the reply side sees only
/// an end of stream; the old client then exited 0 whenever it decided before the send side
/// reported (1-6% of runs, more with piped input). Runs go four at a time, which also makes
/// the timing vary; every fourth reads a file (copied), the others a pipe (spliced).
#[test]
fn a_reset_always_exits_1() {
    const RUNS: usize = 240;
    const AT_ONCE: usize = 4;
    let data = random_bytes(4 << 20, 0x5e7);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::write(&input, &data).unwrap();
    let addr = resetting_server(32 * 1024);
    let one_run = |run: usize| {
        let out = if run % 4 == 0 {
            let child = std_tool(["echo-client", &addr.to_string()])
                .stdin(std::fs::File::open(&input).unwrap())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            output_timeout(child, PROMPT)
        } else {
            let mut c = client(&[&addr.to_string()], Stdio::piped());
            feed(c.child().stdin.take().unwrap(), data.clone());
            c.output(PROMPT)
        };
        assert_no_panic(&out.stderr);
        let err = stderr_text(&out);
        let reset = out.status.code() == Some(1) && err.contains("Connection reset by peer");
        (!reset).then(|| format!("run {run}: {:?}: {err}", out.status))
    };
    let wrong: Vec<String> = thread::scope(|scope| {
        let workers: Vec<_> = (0..AT_ONCE)
            .map(|first| {
                scope.spawn(move || {
                    (first..RUNS)
                        .step_by(AT_ONCE)
                        .filter_map(one_run)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(
        wrong.is_empty(),
        "{} of {RUNS} runs did not report the reset:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// What the test tells a [`held_server`] to do.
enum Hold {
    /// Close the sending side (FIN), still reading nothing.
    Fin,
    /// Read everything to the end (the client has gone) and report the count.
    Drain,
}

/// A server that accepts one connection and reads nothing until told to; with `fin_first`
/// it half-closes at once. Reading only once the client has gone keeps the client's socket
/// full meanwhile, so what the server finally reads is exactly what the client sent.
fn held_server(fin_first: bool) -> (SocketAddr, mpsc::Sender<Hold>, mpsc::Receiver<u64>) {
    let (told, orders) = mpsc::channel();
    let (report, counts) = mpsc::channel();
    let addr = serve_one(move |mut conn| {
        if fin_first {
            let _ = conn.shutdown(Shutdown::Write);
        }
        loop {
            match orders.recv() {
                Ok(Hold::Fin) => {
                    let _ = conn.shutdown(Shutdown::Write);
                }
                Ok(Hold::Drain) => break,
                Err(_) => return,
            }
        }
        let mut sink = Vec::new();
        let _ = conn.read_to_end(&mut sink);
        let _ = report.send(sink.len() as u64);
    });
    (addr, told, counts)
}

/// Events from [`fill_pipe`]'s writer.
enum Wrote {
    /// One write() returned.
    Returned,
    /// The pipe stayed full for a second: the client takes no more. Bytes written in all.
    Stalled(u64),
}

/// Writes to a pipe whose write end is O_NONBLOCK, as another user of a shared pipe would,
/// until it stays full for a second. Every return of write() is reported, so the test can
/// tell a write() that blocks (what a client holding the pipe's lock causes) from one that
/// does not. Returns the write end when done, to keep the client's input open.
fn fill_pipe(write_end: OwnedFd) -> (mpsc::Receiver<Wrote>, thread::JoinHandle<OwnedFd>) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    rustix::io::ioctl_fionbio(&write_end, true).unwrap();
    let (tx, rx) = mpsc::channel();
    let writer = thread::spawn(move || {
        let chunk = random_bytes(64 * 1024, 0xf111);
        let mut total = 0u64;
        loop {
            let wrote = rustix::io::write(&write_end, &chunk);
            if tx.send(Wrote::Returned).is_err() {
                return write_end;
            }
            match wrote {
                Ok(n) => total += n as u64,
                Err(rustix::io::Errno::AGAIN) => {
                    let mut fds = [PollFd::new(&write_end, PollFlags::OUT)];
                    let second = Timespec {
                        tv_sec: 1,
                        tv_nsec: 0,
                    };
                    if poll(&mut fds, Some(&second)).unwrap() == 0 {
                        let _ = tx.send(Wrote::Stalled(total));
                        return write_end;
                    }
                }
                Err(err) => panic!("write to the pipe failed: {err}"),
            }
        }
    });
    (rx, writer)
}

/// Waits for [`fill_pipe`] to report the stall; panics if any write() blocks for [`PROMPT`].
fn wait_for_stall(events: &mpsc::Receiver<Wrote>) -> u64 {
    loop {
        match events.recv_timeout(PROMPT) {
            Ok(Wrote::Returned) => {}
            Ok(Wrote::Stalled(total)) => return total,
            Err(_) => panic!(
                "a non-blocking write() to the client's stdin pipe blocked for {PROMPT:?}: \
                 the client holds the pipe's lock while the server does not read"
            ),
        }
    }
}

/// A client reading a pipe the test also writes to (non-blocking), against a server that
/// reads nothing: returns the client, the write end and how much was written before the
/// client stopped taking input.
fn client_on_a_stalled_pipe(addr: SocketAddr, args: &[&str]) -> (Guard, OwnedFd, u64) {
    let (read_end, write_end) = rustix::pipe::pipe().unwrap();
    let mut all = args.to_vec();
    let addr = addr.to_string();
    all.push(&addr);
    let c = client(&all, Stdio::from(read_end));
    let (events, writer) = fill_pipe(write_end);
    let total = wait_for_stall(&events);
    (c, writer.join().unwrap(), total)
}

/// Item 7: a server that does not read must not block other writers of the client's stdin
/// pipe: their O_NONBLOCK writes return at once (EAGAIN when the pipe is full), as with nc.
#[test]
fn a_stalled_server_never_blocks_other_writers_of_the_stdin_pipe() {
    let (addr, server, _counts) = held_server(false);
    let (c, write_end, _total) = client_on_a_stalled_pipe(addr, &[]);
    drop((c, write_end, server));
}

/// The count in "... with N bytes of input not sent".
fn unsent_in(err: &str) -> u64 {
    let after = err
        .split(" closed the connection with ")
        .nth(1)
        .map(|rest| rest.trim_start_matches("at least "))
        .unwrap_or_else(|| panic!("no unsent count in: {err}"));
    after
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no unsent count in: {err}"))
}

/// Item 4, spliced input: the server half-closes while input waits in the pipe. Exit 1, and
/// the count is exact: what the server got plus what was not sent is all that was written.
/// The pipe staying full for a second almost always means the socket is full too; on a
/// loaded machine it can mean the client was merely not scheduled, and then it may still
/// send everything before it sees the server's close: exit 0 is right if so, and the test
/// tries again.
#[test]
fn a_server_closing_with_piped_input_unsent_says_exactly_how_much() {
    for _ in 0..3 {
        let (addr, server, counts) = held_server(false);
        let (c, write_end, total) = client_on_a_stalled_pipe(addr, &[]);
        server.send(Hold::Fin).unwrap();
        let out = c.output(PROMPT);
        drop(write_end);
        server.send(Hold::Drain).unwrap();
        assert_no_panic(&out.stderr);
        let got = counts.recv_timeout(PROMPT).unwrap();
        let err = stderr_text(&out);
        if out.status.code() == Some(0) {
            assert_eq!(got, total, "exit 0 though input was lost: {err}");
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            // A pipe's count is a lower bound: its writer may have more.
            err.starts_with(&format!(
                "asyncio-tool: {addr} closed the connection with at least "
            )),
            "{err}"
        );
        let unsent = unsent_in(&err);
        assert!(unsent > 0, "{err}");
        assert_eq!(got + unsent, total, "server got {got}, {err}");
        return;
    }
    panic!("in 3 tries the client never had input left when the server closed");
}

/// Item 4, copied input (a file): the server half-closes at once and reads nothing until the
/// client is gone. The count covers the buffer read but not sent and the rest of the file.
#[test]
fn a_server_closing_with_file_input_unsent_says_exactly_how_much() {
    let size = 32u64 << 20;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::write(&input, random_bytes(size as usize, 0xf11e)).unwrap();
    let (addr, server, counts) = held_server(true);
    let child = std_tool(["echo-client", &addr.to_string()])
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_timeout(child, PROMPT);
    server.send(Hold::Drain).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
    let err = stderr_text(&out);
    assert!(
        err.starts_with(&format!("asyncio-tool: {addr} closed the connection with ")),
        "{err}"
    );
    assert!(!err.contains("at least"), "a file's count is exact: {err}");
    let unsent = unsent_in(&err);
    let got = counts.recv_timeout(PROMPT).unwrap();
    assert_eq!(got + unsent, size, "server got {got}, {err}");
}

/// Item 10: `--idle-timeout` bounds a server that takes no input, not only a silent one
/// after the end of input.
#[test]
fn idle_timeout_gives_up_on_a_server_that_does_not_read() {
    let (addr, _server, _counts) = held_server(false);
    let mut c = client(&["--idle-timeout", "1s", &addr.to_string()], Stdio::piped());
    let feeder = feed(c.child().stdin.take().unwrap(), random_bytes(32 << 20, 9));
    let out = c.output(PROMPT);
    feeder.join().unwrap();
    assert_no_panic(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
    let err = stderr_text(&out);
    let prefix = format!("asyncio-tool: no progress for 1s: {addr} is not reading (");
    assert!(err.starts_with(&prefix), "{err}");
    assert!(
        err.ends_with(" bytes sent, 0 bytes received; --idle-timeout)\n"),
        "{err}"
    );
}

/// Item 10: nothing typed and nothing received is no progress either (as nc -w, socat -T).
#[test]
fn idle_timeout_gives_up_when_nothing_moves_either_way() {
    let (addr, _server, _counts) = held_server(false);
    let mut c = client(
        &["--idle-timeout", "500ms", &addr.to_string()],
        Stdio::piped(),
    );
    let _stdin = c.child().stdin.take().unwrap();
    let out = c.output(PROMPT);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
    assert_eq!(
        stderr_text(&out),
        format!(
            "asyncio-tool: nothing sent or received for 500ms: standard input is idle and \
             {addr} sends nothing (0 bytes sent, 0 bytes received; --idle-timeout)\n"
        )
    );
}

/// Item 17: nc's `HOST PORT`, and -N accepted (shutting down at the end of input is what
/// the client always does).
#[test]
fn host_and_port_as_two_words_and_dash_n() {
    let addr = echo_server();
    let port = addr.port().to_string();
    let mut c = client(&["-N", "127.0.0.1", &port], Stdio::piped());
    feed(c.child().stdin.take().unwrap(), b"two words\n".to_vec());
    let out = c.output(PROMPT);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert_eq!(out.stdout, b"two words\n");
}

/// Item 17: -4 / -6 restrict what a name resolves to; an address of the other family is an
/// error that says why.
#[test]
fn dash_4_and_dash_6_restrict_the_address_family() {
    let addr = echo_server();
    let port = addr.port().to_string();
    let mut c = client(&["-4", "localhost", &port], Stdio::piped());
    feed(c.child().stdin.take().unwrap(), b"v4\n".to_vec());
    let out = c.output(PROMPT);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert_eq!(out.stdout, b"v4\n");

    // The echo server above listens on 127.0.0.1 only.
    let out = client(&["-6", "localhost", &port], Stdio::null()).output(PROMPT);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
    let err = stderr_text(&out);
    assert!(!err.contains("127.0.0.1"), "-6 tried IPv4: {err}");

    let out = client(&["-4", "::1", &port], Stdio::null()).output(PROMPT);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_text(&out),
        format!("asyncio-tool: cannot connect to [::1]:{port}: ::1 is not an IPv4 (-4) address\n")
    );
}

#[test]
fn wrong_address_words_are_usage_errors() {
    for (args, says) in [
        (&["7101", "7102"][..], "two ports"),
        (&["127.0.0.1:7101", "7102"][..], "the port is given twice"),
        (&["-4", "-6", "7101"][..], "cannot be used with"),
    ] {
        let out = client(args, Stdio::null()).output(PROMPT);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr_text(&out).contains(says),
            "{args:?}: {}",
            stderr_text(&out)
        );
    }
}

/// Issue 18 item 8: a plain client against a TLS server gets one line and exit 1, not the
/// alert's bytes on stdout and exit 0; from a pipe (spliced), a file (copied), and under
/// `--verify` (which would otherwise call it a difference at byte 1).
#[test]
fn a_tls_answer_to_plain_text_says_add_tls() {
    let mut server = crate::util::EchoServer::launch(std_tool(["echo-server", "tls:127.0.0.1:0"]));
    let line = server.await_line(PROMPT).to_owned();
    let addr = line.strip_prefix("tls:").unwrap().to_owned();
    let want = format!("asyncio-tool: {addr}: the server answered in TLS: add --tls\n");
    for args in [&[][..], &["--verify"][..]] {
        let mut all = args.to_vec();
        all.push(&addr);
        let mut c = client(&all, Stdio::piped());
        let _feeder = feed(c.child().stdin.take().unwrap(), b"x\n".to_vec());
        let out = c.output(PROMPT);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            stderr_text(&out)
        );
        assert_eq!(stderr_text(&out), want, "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: the alert was printed");

        let mut cmd = std_tool(std::iter::once("echo-client").chain(all.iter().copied()));
        cmd.stdin(Stdio::null());
        let out = crate::util::output_with_input(cmd, b"hello\n", PROMPT);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            stderr_text(&out)
        );
        assert_eq!(stderr_text(&out), want, "file, {args:?}");
        assert!(out.stdout.is_empty());
    }
    // The same over a Unix socket.
    let name = format!("tls:unix:@asyncio-tool-test-{}", std::process::id());
    let mut server = crate::util::EchoServer::launch(std_tool(["echo-server", &name]));
    let line = server.await_line(PROMPT).to_owned();
    let addr = line.strip_prefix("tls:").unwrap().to_owned();
    let mut c = client(&[&addr], Stdio::piped());
    let _feeder = feed(c.child().stdin.take().unwrap(), b"x\n".to_vec());
    let out = c.output(PROMPT);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
    assert_eq!(
        stderr_text(&out),
        format!("asyncio-tool: {addr}: the server answered in TLS: add --tls\n")
    );
}

/// Item 8's other side: input that itself starts like a TLS record (an alert, a handshake)
/// comes back from a plain echo server as it is: an echo of what was sent first is no TLS
/// answer, whether the input is spliced (a pipe) or copied (a file), in one piece or byte by
/// byte.
#[test]
fn input_that_starts_like_tls_is_echoed_as_it_is() {
    for head in [&[0x15, 3, 3, 0, 2, 2, 50][..], &[0x16, 3, 1, 0, 0x80][..]] {
        let mut data = head.to_vec();
        data.extend(random_bytes(100_000, 0x7151));
        let addr = echo_server();
        let mut c = client(&[&addr.to_string()], Stdio::piped());
        let mut stdin = c.child().stdin.take().unwrap();
        let rest = data.clone();
        let feeder = thread::spawn(move || {
            // The header a byte at a time, so the client records it in pieces.
            for b in &rest[..5] {
                let _ = stdin.write_all(&[*b]);
                thread::sleep(Duration::from_millis(20));
            }
            let _ = stdin.write_all(&rest[5..]);
        });
        let out = c.output(PROMPT);
        feeder.join().unwrap();
        assert_eq!(out.status.code(), Some(0), "pipe: {}", stderr_text(&out));
        assert_same(&out.stdout, &data);

        let addr = echo_server();
        let mut cmd = std_tool(["echo-client", &addr.to_string()]);
        cmd.stdin(Stdio::null());
        let out = crate::util::output_with_input(cmd, &data, PROMPT);
        assert_eq!(out.status.code(), Some(0), "file: {}", stderr_text(&out));
        assert_same(&out.stdout, &data);
    }
}

/// What a lost connection's message says it cost: `Ok(n)` for "n bytes of input not sent"
/// (`at_least` with "at least"), `Err(sent)` for "all input sent: SENT bytes sent" or a bare
/// "SENT bytes sent"; `None` when it says nothing.
fn reset_cost(err: &str) -> Option<(Result<u64, u64>, bool)> {
    let cost = err.split(" lost: Connection reset by peer (").nth(1)?;
    let number = |s: &str| s.split(' ').next()?.parse::<u64>().ok();
    if let Some(rest) = cost.strip_prefix("all input sent: ") {
        return Some((Err(number(rest)?), true));
    }
    if cost.contains(" of input not sent)") {
        let at_least = cost.starts_with("at least ");
        return Some((Ok(number(cost.trim_start_matches("at least "))?), at_least));
    }
    Some((Err(number(cost)?), false))
}

/// Issue 18 item 24: a reset always says what it cost, as a FIN does. Against a server that
/// reads a little and resets, a file's client either had input left (counted exactly) or had
/// handed all of it to the socket (then it says so, with the totals); the old client said only
/// "Connection reset by peer" in the second case (17 of 40 runs of a 1 MB file here). Sizes
/// below, at and above what the socket buffers hold; runs four at a time so the timing varies;
/// every fourth reads a pipe, whose count is a lower bound.
#[test]
fn a_reset_always_says_how_much_input_was_not_sent() {
    const RUNS: usize = 60;
    const AT_ONCE: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let sizes = [256 << 10, 1 << 20, 3 << 20, 8 << 20];
    for size in sizes {
        std::fs::write(dir.path().join(size.to_string()), random_bytes(size, 24)).unwrap();
    }
    let addr = resetting_server(10);
    let one_run = |run: usize| {
        let size = sizes[(run / AT_ONCE) % sizes.len()];
        let piped = run % 4 == 3;
        let mut c = if piped {
            client(&[&addr.to_string()], Stdio::piped())
        } else {
            let input = std::fs::File::open(dir.path().join(size.to_string())).unwrap();
            client(&[&addr.to_string()], Stdio::from(input))
        };
        if piped {
            feed(c.child().stdin.take().unwrap(), random_bytes(size, 24));
        }
        let out = c.output(PROMPT);
        assert_no_panic(&out.stderr);
        let err = stderr_text(&out);
        let ok = out.status.code() == Some(1)
            && match reset_cost(&err) {
                // A file's count is exact and never more than the file.
                Some((Ok(unsent), at_least)) => {
                    at_least == piped && unsent > 0 && unsent <= size as u64
                }
                // All of a file is all of it; of a pipe, only what was read when it failed.
                Some((Err(sent), all)) => {
                    !piped && all && sent == size as u64 || piped && sent <= size as u64
                }
                None => false,
            };
        (!ok).then(|| {
            format!(
                "run {run} ({size} bytes, piped: {piped}): {:?}: {err}",
                out.status
            )
        })
    };
    let wrong: Vec<String> = thread::scope(|scope| {
        let workers: Vec<_> = (0..AT_ONCE)
            .map(|first| {
                scope.spawn(move || {
                    (first..RUNS)
                        .step_by(AT_ONCE)
                        .filter_map(one_run)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(
        wrong.is_empty(),
        "{} of {RUNS} runs did not say what the reset cost:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// A server that echoes the first `echo` bytes of one connection, then reads and drops the
/// rest, and never closes (the test's end does).
fn swallowing_server(echo: usize) -> SocketAddr {
    serve_one(move |mut conn| {
        let mut buf = vec![0u8; 64 * 1024];
        let mut seen = 0;
        loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let back = n.min(echo.saturating_sub(seen));
                    seen += n;
                    if conn.write_all(&buf[..back]).is_err() {
                        break;
                    }
                }
            }
        }
        thread::sleep(Duration::from_secs(60));
    })
}

/// Issue 18 item 20: `--verify` never waits for ever. A server that swallows the end of the
/// stream and keeps reading hung it: more than the window unechoed, so the rest of the input
/// and its end never go out. Nor does a server that swallows less and holds the connection
/// open after the end of input. Without --idle-timeout, --verify gives up after 10s without
/// an echo, naming the bytes that never came back.
#[test]
fn verify_gives_up_on_a_server_that_swallows_the_end() {
    let cases = [(3_000_000, 600 << 10), (300 << 10, 200 << 10)];
    let runs: Vec<_> = cases
        .iter()
        .map(|&(size, swallowed)| {
            let data = random_bytes(size, 20);
            let addr = swallowing_server(size - swallowed);
            let mut c = client(&["--verify", &addr.to_string()], Stdio::piped());
            let feeder = feed(c.child().stdin.take().unwrap(), data.clone());
            (c, feeder, addr, data, size - swallowed)
        })
        .collect();
    let started = Instant::now();
    // Collected at once: a client whose stdout is not read is not stalled by the server.
    let outputs: Vec<_> = runs
        .into_iter()
        .map(|(c, feeder, addr, data, echoed)| {
            let out = thread::spawn(move || c.output(Duration::from_secs(30)));
            (out, feeder, addr, data, echoed)
        })
        .collect();
    for (out, _feeder, addr, data, echoed) in outputs {
        let out = out.join().unwrap();
        let err = stderr_text(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            started.elapsed() >= Duration::from_secs(9),
            "too soon: {err}"
        );
        let prefix = format!("asyncio-tool: no echo from {addr} for 10s: ");
        assert!(err.starts_with(&prefix), "{err}");
        assert!(
            err.ends_with(
                " sent never came back (--verify waits 10s for an echo; --idle-timeout sets \
                 another limit)\n"
            ),
            "{err}"
        );
        let missing: u64 = err[prefix.len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let sent: u64 = err
            .split(" bytes of ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(sent - missing, echoed as u64, "{err}");
        assert_same(&out.stdout, &data[..echoed]);
    }
}

/// A server that echoes one connection, with the byte at offset `flip` inverted if there is
/// one, and closes at the end of input.
fn flipping_server(flip: Option<usize>) -> SocketAddr {
    serve_one(move |mut conn| {
        let mut buf = vec![0u8; 64 * 1024];
        let mut seen = 0;
        loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(at) = flip.filter(|at| (seen..seen + n).contains(at)) {
                        buf[at - seen] ^= 0xff;
                    }
                    seen += n;
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

/// Issue 18 item 21: `--verify | head -c 10` still verifies. The reader of stdout going away
/// ended the old client quietly with exit 0, even against a server that flips byte
/// 3,000,001; now the rest is compared and dropped and the verdict decides: exit 1 naming
/// the byte, or exit 0 and no word for an exact echo.
#[test]
fn verify_goes_on_when_stdout_goes_away() {
    let data = random_bytes(4_000_000, 21);
    for flip in [Some(3_000_000), None] {
        let addr = flipping_server(flip);
        let mut c = client(&["--verify", &addr.to_string()], Stdio::piped());
        let feeder = feed(c.child().stdin.take().unwrap(), data.clone());
        let mut stdout = c.child().stdout.take().unwrap();
        let mut head = [0u8; 10];
        stdout.read_exact(&mut head).unwrap();
        assert_eq!(head, data[..10]);
        drop(stdout);
        let out = c.output(PROMPT);
        feeder.join().unwrap();
        let err = stderr_text(&out);
        assert_no_panic(&out.stderr);
        match flip {
            Some(_) => {
                assert_eq!(out.status.code(), Some(1), "{err}");
                assert_eq!(
                    err,
                    "asyncio-tool: reply differs from what was sent at byte 3000001\n"
                );
            }
            None => {
                assert_eq!(out.status.code(), Some(0), "{err}");
                assert!(err.is_empty(), "{err}");
            }
        }
    }
}

/// A server that reads once, then answers with `pieces`, `gap` apart, and closes `linger`
/// after the last one.
fn dripping_server(pieces: Vec<&'static [u8]>, gap: Duration, linger: Duration) -> SocketAddr {
    serve_one(move |mut conn| {
        let _ = conn.set_nodelay(true);
        let mut buf = [0u8; 64];
        let _ = conn.read(&mut buf);
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                thread::sleep(gap);
            }
            if conn.write_all(piece).is_err() {
                return;
            }
        }
        thread::sleep(linger);
    })
}

/// Item 8 through a relay that splits records: a TLS alert that arrives a byte at a time, or
/// its first byte and then the rest with the close, is still a TLS answer (the old check
/// looked at the first bytes only once, found one byte, and printed the alert with exit 0).
/// A reply that only starts like a record header and stops there is printed as it came,
/// once the rest is clearly not coming.
#[test]
fn a_tls_answer_in_pieces_still_says_add_tls() {
    const ALERT: &[u8] = &[0x15, 3, 3, 0, 2, 2, 50];
    let bytes = ALERT.chunks(1).collect();
    let servers = [
        dripping_server(bytes, Duration::from_millis(40), Duration::ZERO),
        dripping_server(
            vec![&ALERT[..1], &ALERT[1..]],
            Duration::from_millis(40),
            Duration::ZERO,
        ),
    ];
    for addr in servers {
        let mut c = client(&[&addr.to_string()], Stdio::piped());
        let _feeder = feed(c.child().stdin.take().unwrap(), b"x\n".to_vec());
        let out = c.output(PROMPT);
        assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
        assert_eq!(
            stderr_text(&out),
            format!("asyncio-tool: {addr}: the server answered in TLS: add --tls\n")
        );
        assert!(out.stdout.is_empty(), "the alert was printed");
    }

    // Three bytes of a header, then silence, then a clean close: they are the reply.
    let three = vec![&ALERT[..3]];
    let addr = dripping_server(three, Duration::ZERO, Duration::from_secs(3));
    let mut c = client(&[&addr.to_string()], Stdio::piped());
    let _feeder = feed(c.child().stdin.take().unwrap(), b"x\n".to_vec());
    let out = c.output(PROMPT);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert_same(&out.stdout, &ALERT[..3]);
}

/// Item 20's bound is for echoes only: a server that echoed every byte and keeps the
/// connection open after the end of input (as many do) is waited for as without --verify,
/// and its close ends the run with exit 0. The first cut of item 20 gave up after 10s with
/// "0 bytes of 10 bytes sent never came back", exit 1, for an exact echo; and so with an
/// empty input ("0 bytes of 0 bytes").
#[test]
fn verify_waits_for_the_close_once_every_byte_came_back() {
    const HOLD: Duration = Duration::from_secs(12);
    let inputs: [&[u8]; 2] = [b"0123456789", b""];
    let runs: Vec<_> = inputs
        .iter()
        .map(|&data| {
            let addr = serve_one(|mut conn| {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    if conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                thread::sleep(HOLD);
            });
            let mut cmd = std_tool(["echo-client", "--verify", &addr.to_string()]);
            cmd.stdin(Stdio::null());
            thread::spawn(move || crate::util::output_with_input(cmd, data, HOLD + PROMPT))
        })
        .collect();
    for (run, data) in runs.into_iter().zip(inputs) {
        let out = run.join().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
        assert_same(&out.stdout, data);
    }
}

/// stdin a file of known size: the progress line shows how much of it has come back, as a
/// percentage, and the time left, as pv does (here while nobody reads the replies yet, so the
/// run is still going).
#[test]
fn progress_for_a_file_of_known_size_shows_percent_and_time_left() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    std::fs::write(&input, vec![b'x'; 64 << 20]).unwrap();
    let mut server =
        crate::util::EchoServer::launch(std_tool(["echo-server", "-q", "127.0.0.1:0"]));
    let addr = server.await_line(PROMPT).to_owned();
    let term = crate::util::pty();
    let mut cmd = std_tool(["echo-client", "--progress", &addr]);
    cmd.stdin(std::fs::File::open(&input).unwrap())
        .stdout(Stdio::piped())
        .stderr(term.slave.try_clone().unwrap())
        .env("TERM", "xterm");
    let mut client = Guard::new(cmd.spawn().unwrap());
    drop(term.slave);
    let (seen, screen) = crate::util::read_until(term.master, b"ETA 0:", BULK);
    // Now the replies are read, and the run ends.
    let mut stdout = client.child().stdout.take().unwrap();
    let drained = thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let out = client.output(BULK);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(drained.join().unwrap().unwrap(), 64 << 20);
    let screen = String::from_utf8_lossy(&screen);
    assert!(seen, "no time left on the line: {screen:?}");
    let last = screen
        .rsplit("\r\x1b[2K")
        .find(|s| s.contains("ETA"))
        .unwrap();
    assert!(
        last.contains("% ") && last.contains(" of 64 MiB echoed · ") && last.contains(" · sent "),
        "percentage and size: {last:?}"
    );
    drop(server);
}

/// Issue 21: a server that closes after echoing part of the input (`--close-after 1000`) lost
/// the rest: the client says how much came back and exits 1, over TCP, Unix and TLS, with
/// stdin a file (copied) or a pipe (spliced, as stdout is), and without `--verify`.
#[test]
fn a_short_echo_exits_1_saying_how_much_came_back() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("echo.sock");
    let unix = format!("unix:{}", sock.display());
    let blob = random_bytes(5000, 21);
    for (listen, tls) in [
        ("127.0.0.1:0", false),
        (unix.as_str(), false),
        ("127.0.0.1:0", true),
    ] {
        let mut args = vec!["echo-server", "-q", "--close-after", "1000", listen];
        if tls {
            args.push("--tls");
        }
        let mut server = crate::util::EchoServer::launch(std_tool(&args));
        let line = server.await_line(PROMPT).to_owned();
        let addr = line.strip_prefix("tls:").unwrap_or(&line).to_owned();
        let mut client_args = vec![addr.as_str()];
        if tls {
            client_args.extend(["--tls", "--insecure"]);
        }
        for piped in [false, true] {
            let out = if piped {
                // All of it in the pipe before the client starts: whatever the server's FIN
                // races with, nothing is left unread in stdin.
                let (read_end, write_end) = rustix::pipe::pipe().unwrap();
                assert_eq!(rustix::io::write(&write_end, &blob).unwrap(), blob.len());
                drop(write_end);
                client(&client_args, Stdio::from(read_end)).output(PROMPT)
            } else {
                let cmd = std_tool(std::iter::once("echo-client").chain(client_args.clone()));
                crate::util::output_with_input(cmd, &blob, PROMPT)
            };
            let err = stderr_text(&out);
            let case = format!("{line}, stdin a {}", if piped { "pipe" } else { "file" });
            assert_no_panic(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{case}: {err}");
            assert_same(&out.stdout, &blob[..1000]);
            assert!(
                err.contains(
                    "closed the connection after echoing 1000 bytes of 5000 bytes sent \
                     (4000 bytes never came back)"
                ),
                "{case}: {err}"
            );
        }
        drop(server);
    }
}
