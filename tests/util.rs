//! The small harness every test module uses: the binary under test, commands with a clean
//! environment, and bounded waits (a hang fails the test instead of stalling CI).

#![allow(dead_code)]

use std::io::{BufRead, ErrorKind, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The longest any single command in a test may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The binary under test: `ASYNCIO_TOOL_BIN` if set, else the one cargo built for this crate.
pub fn bin() -> PathBuf {
    std::env::var_os("ASYNCIO_TOOL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_asyncio-tool")))
}

fn clean_env(cmd: &mut Command) {
    // Tests see what a user sees by default: one-line errors, no forced colour.
    cmd.env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env_remove("NO_COLOR")
        // A test run inside a systemd service must not hand the tool the runner's sockets.
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_FDNAMES")
        .env_remove("NOTIFY_SOCKET")
        .env("LC_ALL", "C");
}

/// An assert_cmd command for the binary with `args`, a clean environment and a timeout.
pub fn tool<I, S>(args: I) -> assert_cmd::Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut std_cmd = std_tool(args);
    std_cmd.stdin(Stdio::null());
    let mut cmd = assert_cmd::Command::from_std(std_cmd);
    cmd.timeout(COMMAND_TIMEOUT);
    cmd
}

/// A plain `std::process::Command` for the binary, for tests that need to spawn and interact.
pub fn std_tool<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(bin());
    clean_env(&mut cmd);
    cmd.args(args);
    cmd
}

/// Any other program (GNU cat, socat, nc) with the same clean environment.
pub fn other<S: AsRef<std::ffi::OsStr>>(program: S) -> Command {
    let mut cmd = Command::new(program);
    clean_env(&mut cmd);
    cmd
}

/// Waits for `child` at most `limit`; kills it and panics (failing the test) past that.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("process did not exit within {limit:?}");
            }
            Err(e) => panic!("waiting for the process failed: {e}"),
        }
    }
}

/// Waits for `child` at most `limit` and collects its stdout and stderr (both must be piped).
pub fn output_timeout(mut child: Child, limit: Duration) -> Output {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let started = Instant::now();
    let status = wait_timeout(&mut child, limit);
    // A grandchild that inherited the pipes can keep them open after the child exits: the
    // readers get the rest of the limit, then the test fails instead of hanging.
    let left = limit
        .saturating_sub(started.elapsed())
        .max(Duration::from_secs(5));
    let joined = |reader: std::thread::JoinHandle<Vec<u8>>, name: &str| {
        assert!(
            eventually(left, || reader.is_finished()),
            "{name} stayed open after the process exited (a child process still holds it?)"
        );
        reader.join().unwrap_or_default()
    };
    Output {
        status,
        stdout: joined(out_reader, "stdout"),
        stderr: joined(err_reader, "stderr"),
    }
}

/// Runs `cmd` with `data` on stdin (from a file, as a shell redirection gives it) and collects
/// its output, waiting at most `limit`.
pub fn output_with_input(mut cmd: Command, data: &[u8], limit: Duration) -> Output {
    let dir = tempfile::tempdir().expect("cannot make a temporary directory");
    let input = dir.path().join("input");
    std::fs::write(&input, data).unwrap();
    let child = cmd
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the client");
    output_timeout(child, limit)
}

/// Runs the peer client `program ARGS` with `data` on stdin (at most `limit`), asserts it
/// exited 0 and returns what it printed: for the interop tests against our server.
pub fn peer_output<A: AsRef<std::ffi::OsStr>>(
    program: &str,
    args: impl IntoIterator<Item = A>,
    data: &[u8],
    limit: Duration,
) -> Vec<u8> {
    let mut cmd = other(program);
    cmd.args(args);
    let out = output_with_input(cmd, data, limit);
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Asserts byte equality without printing megabytes on failure; `what` names the bytes
/// ("echo", "output") in the message.
pub fn assert_same_bytes(what: &str, got: &[u8], want: &[u8]) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what} differs: got {} bytes, want {}; first difference at {first:?}",
            got.len(),
            want.len()
        );
    }
}

/// Polls `cond` every 10 ms for at most `limit`; true if it became true.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Asserts that nothing a user must never see (a panic, a Rust backtrace) is in `stderr`.
pub fn assert_no_panic(stderr: &[u8]) {
    let text = String::from_utf8_lossy(stderr);
    assert!(!text.contains("panicked"), "panic reached the user: {text}");
    assert!(
        !text.contains("RUST_BACKTRACE"),
        "backtrace hint reached the user: {text}"
    );
}

/// A pseudo-terminal pair: the test holds `master`, the program gets `slave` as stdin or
/// stderr and sees a real terminal.
pub struct Pty {
    /// The side the test types into and reads the screen from.
    pub master: std::fs::File,
    /// The terminal the program under test is given.
    pub slave: std::fs::File,
}

/// Opens a new pseudo-terminal.
pub fn pty() -> Pty {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(std::ffi::OsStr::new(
            std::str::from_utf8(name.as_bytes()).unwrap(),
        ))
        .unwrap();
    Pty {
        master: std::fs::File::from(master),
        slave,
    }
}

/// Reads from `reader` on a thread until `want` appears in what was read or `limit` passes;
/// returns everything read so far. The reader thread is left behind on timeout (it ends when
/// the other side closes).
pub fn read_until(
    mut reader: impl Read + Send + 'static,
    want: &'static [u8],
    limit: Duration,
) -> (bool, Vec<u8>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(chunk) => {
                seen.extend_from_slice(&chunk);
                if seen.windows(want.len()).any(|w| w == want) {
                    return (true, seen);
                }
            }
            Err(_) => break,
        }
    }
    (false, seen)
}

/// Sends `signal` to a child process.
pub fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) with a pid we own and a valid signal number has no memory effects.
    let rc = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(rc, 0, "kill failed");
}

/// Kills the child when dropped, so a failing assertion never leaves a process behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// True when `program` can be run here. A peer that is missing skips its test with a note,
/// except in CI (`CI` set), where .ci/run installs every peer: there a missing one fails the
/// test instead of letting it pass without testing anything.
pub fn peer_available(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", "command -v \"$1\" >/dev/null", "sh", program])
        .status()
        .is_ok_and(|s| s.success());
    peer_present(program, found)
}

/// [`peer_available`] for a peer found some other way (a file, a shell function): true when
/// `found`; otherwise skips with a note, or fails under CI.
pub fn peer_present(program: &str, found: bool) -> bool {
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is not installed, and CI must test against it (see .ci/run)"
        );
        eprintln!("note: {program} is not installed; the test against it is skipped");
    }
    found
}

/// A `VmRSS`/`VmHWM` line of /proc/`pid`/status, in KiB.
pub fn mem_kib(pid: i32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/PID/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// socat as an echo peer listening on `listen` (a socat address such as
/// `TCP-LISTEN:...` or `UNIX-LISTEN:...`), with every stdio on /dev/null. `-b 4096`: with its
/// default 8 KiB blocks socat's own PIPE can deadlock under load.
pub fn socat_echo(listen: &str) -> std::io::Result<Child> {
    other("socat")
        .args(["-b", "4096", listen, "PIPE"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// A connected stream of either transport (TCP, Unix), for the transport-independent checks
/// below: what they need beyond `Read + Write`.
pub trait Stream: Read + Write + Send + Sized + 'static {
    /// `shutdown(Shutdown::Write)`.
    fn shutdown_write(&self) -> std::io::Result<()>;
    /// `set_read_timeout`.
    fn read_timeout(&self, limit: Option<Duration>) -> std::io::Result<()>;
    /// `try_clone`.
    fn clone_stream(&self) -> std::io::Result<Self>;
}

macro_rules! impl_stream {
    ($t:ty) => {
        impl Stream for $t {
            fn shutdown_write(&self) -> std::io::Result<()> {
                self.shutdown(std::net::Shutdown::Write)
            }
            fn read_timeout(&self, limit: Option<Duration>) -> std::io::Result<()> {
                self.set_read_timeout(limit)
            }
            fn clone_stream(&self) -> std::io::Result<Self> {
                self.try_clone()
            }
        }
    };
}
impl_stream!(std::net::TcpStream);
impl_stream!(std::os::unix::net::UnixStream);

/// Sends `msg` and reads exactly as many bytes back.
pub fn round_trip<S: Read + Write>(s: &mut S, msg: &[u8]) {
    s.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, msg, "echo differs");
}

/// Writes `data` on `s` from a second thread while reading here (full duplex, as a real
/// client would), then half-closes; returns everything read up to EOF.
pub fn echo_back<S: Stream>(mut s: S, data: &Arc<Vec<u8>>) -> Vec<u8> {
    let mut w = s.clone_stream().unwrap();
    let sent = Arc::clone(data);
    let writer = std::thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown_write().unwrap();
    });
    let mut back = Vec::with_capacity(data.len());
    s.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    back
}

/// With `--max-connections 1`, a second client from `connect` completes in the kernel's
/// backlog but is not served while the first holds the only slot, and is served once the
/// first goes (reads then bounded by `io_timeout`).
pub fn assert_backlog_holds<S: Stream>(mut connect: impl FnMut() -> S, io_timeout: Duration) {
    let mut a = connect();
    round_trip(&mut a, b"a");
    let mut b = connect(); // completes in the kernel's backlog
    b.write_all(b"b").unwrap();
    b.read_timeout(Some(Duration::from_millis(400))).unwrap();
    let mut buf = [0u8; 1];
    match b.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("second client served while the first holds the only slot: {other:?}"),
    }
    drop(a);
    b.read_timeout(Some(io_timeout)).unwrap();
    b.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"b");
}

/// The bounds of [`assert_backpressure`], per transport.
pub struct Backpressure {
    /// Bytes the writer sends in all.
    pub total: usize,
    /// How long the writer gets to stall.
    pub stall_within: Duration,
    /// The writer must stall before it got this many bytes out.
    pub stall_below: u64,
    /// The server's RSS (and peak RSS) must stay below this many KiB...
    pub rss_ceiling_kib: u64,
    /// ...and grow by less than this many KiB over what it was before the connection.
    pub rss_growth_kib: u64,
}

/// The bytes at `offset..offset + len` of an endless repetition of `block`.
pub fn pattern(block: &[u8], offset: usize, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut pos = offset % block.len();
    while out.len() < len {
        let take = (block.len() - pos).min(len - out.len());
        out.extend_from_slice(&block[pos..pos + take]);
        pos = 0;
    }
    out
}

/// A client that writes without reading is slowed, not buffered: against the echo server
/// `pid`, a writer on one half of the stream `connect` gives must stall, the server's RSS
/// stays bounded meanwhile, and then every byte comes back in order on the other half.
pub fn assert_backpressure<S>(pid: i32, connect: impl FnOnce() -> (S, S), bounds: &Backpressure)
where
    S: Stream,
{
    const BLOCK: usize = (1 << 20) + 13; // not a multiple of any buffer size
    let total = bounds.total;
    let rss_before = mem_kib(pid, "VmRSS:");
    let block = Arc::new(random_bytes(BLOCK, 42));
    let (mut s, w) = connect();
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (written, block) = (written.clone(), block.clone());
        std::thread::spawn(move || write_pattern(w, &block, total, &written))
    };
    // Without reading, the writer must stall after a few socket buffers' worth.
    let mut last = u64::MAX;
    let stalled = eventually(bounds.stall_within, || {
        std::thread::sleep(Duration::from_millis(300));
        let now = written.load(Ordering::Relaxed);
        let same = now == last;
        last = now;
        same
    });
    let stalled_at = written.load(Ordering::Relaxed);
    assert!(
        stalled,
        "the writer never stalled: the server keeps reading"
    );
    assert!(
        stalled_at < bounds.stall_below,
        "writer got {stalled_at} bytes out without anything read back"
    );
    let rss_stalled = mem_kib(pid, "VmRSS:");
    assert!(
        rss_stalled < bounds.rss_ceiling_kib && rss_stalled < rss_before + bounds.rss_growth_kib,
        "server RSS grew from {rss_before} to {rss_stalled} KiB while the client did not read"
    );
    // Now read everything back, checking every byte in order.
    let mut off = 0;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(
            buf[..n] == pattern(&block, off, n)[..],
            "echo differs near byte {off}"
        );
        off += n;
    }
    writer.join().unwrap();
    assert_eq!(off, total);
    let hwm = mem_kib(pid, "VmHWM:");
    assert!(
        hwm < bounds.rss_ceiling_kib && hwm < rss_before + bounds.rss_growth_kib,
        "server peak RSS {hwm} KiB (was {rss_before} KiB)"
    );
}

/// Writes `total` bytes of `block` repeated in 256 KiB chunks, counting them in `written`,
/// then half-closes.
fn write_pattern<S: Stream>(mut w: S, block: &[u8], total: usize, written: &AtomicU64) {
    let mut off = 0;
    while off < total {
        let chunk = pattern(block, off, (256 << 10).min(total - off));
        w.write_all(&chunk).unwrap();
        off += chunk.len();
        written.store(off as u64, Ordering::Relaxed);
    }
    w.shutdown_write().unwrap();
}

/// A running `echo-server` child on any address (TCP, Unix path, abstract name): its stdout
/// (the address line first) and stderr collected as they come, and a Drop that kills it so a
/// failed test leaves no process behind.
pub struct EchoServer {
    /// The server process.
    pub child: Child,
    /// Where the first stdout line arrives, until [`EchoServer::await_line`] takes it.
    pub line_rx: Option<mpsc::Receiver<String>>,
    line: String,
    /// Everything written to stdout, shared so a test can read it after [`EchoServer::stop`].
    pub stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    /// Starts `cmd` with stdout and stderr collected, without waiting for it to listen.
    pub fn launch(cmd: Command) -> EchoServer {
        EchoServer::launch_with_stderr(cmd, None)
    }

    /// [`EchoServer::launch`] with the server's stderr on `stderr` (a terminal, a pipe to
    /// another program), or collected for [`EchoServer::stderr`] if `None`.
    pub fn launch_with_stderr(mut cmd: Command, stderr: Option<Stdio>) -> EchoServer {
        let collect_stderr = stderr.is_none();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.unwrap_or_else(Stdio::piped));
        let mut child = cmd.spawn().expect("cannot start the server");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (line_tx, line_rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let out_buf = Arc::clone(&stdout);
        let mut readers = vec![std::thread::spawn(move || {
            let mut out = std::io::BufReader::new(out);
            let mut line = String::new();
            let _ = out.read_line(&mut line);
            out_buf.lock().unwrap().extend_from_slice(line.as_bytes());
            let _ = line_tx.send(line);
            let mut rest = Vec::new();
            let _ = out.read_to_end(&mut rest);
            out_buf.lock().unwrap().extend_from_slice(&rest);
        })];
        if collect_stderr {
            let mut err = child.stderr.take().unwrap();
            let err_buf = Arc::clone(&stderr);
            readers.push(std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = err.read(&mut chunk) {
                    err_buf.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            }));
        }
        EchoServer {
            child,
            line_rx: Some(line_rx),
            line: String::new(),
            stdout,
            stderr,
            readers,
        }
    }

    /// Waits (at most `limit`) for the one stdout line, the address, newline-terminated, and
    /// returns it without the newline.
    pub fn await_line(&mut self, limit: Duration) -> &str {
        if let Some(rx) = self.line_rx.take() {
            let line = match rx.recv_timeout(limit) {
                Ok(line) if !line.is_empty() => line,
                _ => panic!("no address line; stderr: {}", self.stderr()),
            };
            assert!(line.ends_with('\n'), "line not terminated: {line:?}");
            self.line = line.trim_end().to_owned();
        }
        &self.line
    }

    /// The server's process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Everything the server said on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Everything the server wrote to stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// Whether `text` shows up on the server's stderr within `limit`.
    pub fn logs_within(&self, limit: Duration, text: &str) -> bool {
        eventually(limit, || self.stderr().contains(text))
    }

    /// Sends `sig` to the server.
    pub fn signal(&self, sig: i32) {
        signal(&self.child, sig);
    }

    /// Waits for the exit (at most `limit`), then for the output readers to drain.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let status = wait_timeout(&mut self.child, limit);
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        status
    }

    /// SIGTERM, then the exit status (within `limit`) and everything said on stderr, which
    /// must hold no panic.
    pub fn stop(mut self, limit: Duration) -> (ExitStatus, String) {
        self.signal(libc::SIGTERM);
        let status = self.wait(limit);
        let err = self.stderr();
        assert_no_panic(err.as_bytes());
        (status, err)
    }

    /// Waits for every client thread, then stops the server (within `limit`), which must exit
    /// 0 saying it served one connection per client.
    pub fn assert_served(self, clients: Vec<std::thread::JoinHandle<()>>, limit: Duration) {
        let count = clients.len();
        for t in clients {
            t.join().unwrap();
        }
        let (status, err) = self.stop(limit);
        assert!(status.success());
        assert!(
            err.contains(&format!("served {count} connections")),
            "{err}"
        );
    }

    /// A `VmRSS`/`VmHWM` line of the server's /proc/PID/status, in KiB.
    pub fn mem_kib(&self, key: &str) -> u64 {
        mem_kib(self.pid(), key)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The README, for the tests that run its examples as written.
pub fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The code block opened by ```` ```LANG ```` that follows `marker` in `readme`, and the rest
/// of the README after it (where an example's output is shown).
pub fn readme_block<'a>(readme: &'a str, marker: &str, lang: &str) -> (&'a str, &'a str) {
    let after = readme.split(marker).nth(1).expect("the marked example");
    after
        .split_once(&format!("```{lang}\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .unwrap_or_else(|| panic!("a ```{lang} block after {marker}"))
}

/// A PATH whose first directory, `dir`, holds `asyncio-tool` as the binary under test: the
/// README's examples call it by that name.
pub fn path_with_bin(dir: &std::path::Path) -> String {
    std::os::unix::fs::symlink(bin(), dir.join("asyncio-tool")).unwrap();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// A connected pair of TCP sockets on loopback: (the client's end, the served end), the served
/// one to hand to a server as inetd would, on its stdin.
pub fn tcp_pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (served, _) = listener.accept().unwrap();
    (client, served)
}
