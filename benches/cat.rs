//! `cargo bench --bench cat`: `asyncio-tool cat` against GNU cat (`/usr/bin/cat`), measured
//! alternately (GNU, ours, GNU, ours, ...) in one run with a warm page cache, on data this bench
//! makes in its own temporary directory and removes at the end.
//!
//! Scenarios (issue 3): (a) 1 GiB → /dev/null; (b) 1 GiB → a pipe into a reader that really
//! reads; (c) 1 GiB → a regular file; (d) 1000 × 1 KiB files → pipe; (e) one tiny file,
//! whole-process latency; (f) `-n` on 100 MiB of short lines → pipe; (g) peak RSS of (a) and
//! (b); (h) (issue 14) `-A` on 100 MiB of mixed text and binary → pipe. The pipe reader is this very executable, re-run with the hidden `--sink` argument: it
//! reads stdin into a 1 MiB buffer until EOF (`wc -c` would itself be the bottleneck). Pipe
//! scenarios pin cat and the reader to CPU 0, as `taskset -c 0` would.
//!
//! `cargo bench --bench cat -- a d` runs only the scenarios named (`g` implies `a` and `b`).
//! It prints a markdown table of medians and ratios (ours / GNU, lower is faster) on stdout,
//! and its progress on stderr.

#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The release-profile binary under test (cargo builds it with the bench profile, which
/// inherits release).
const OURS: &str = env!("CARGO_BIN_EXE_asyncio-tool");
/// The reference: GNU coreutils cat.
const GNU: &str = "/usr/bin/cat";

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The size of the large input of (a), (b) and (c).
const BIG: u64 = GIB;
/// The size of the line file of (f).
const LINES: u64 = 100 * MIB;
/// The size of the mixed text-and-binary file of (h).
const MIXED: u64 = 100 * MIB;
/// How many small files (d) concatenates, and the size of each.
const SMALL_COUNT: usize = 1000;
const SMALL_SIZE: usize = KIB as usize;
/// The input of (e): a tiny file, so the run is all process start-up and teardown.
const TINY: &[u8] = b"hello, world\n";
/// The pipe reader's buffer.
const SINK_BUF: usize = MIB as usize;
const PAGE: usize = 4096;
/// Free space required before making the data: 1 GiB input, a 1 GiB output for (c), 100 MiB
/// of lines, and room to spare so the bench never fills the disk.
const SPACE_NEEDED: u64 = 3 * GIB;

fn main() {
    // cargo passes --bench to harness = false targets; it carries no meaning here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("--sink") => return sink(),
        Some("--rss-probe") => return rss_probe(&args[1..]),
        _ => {}
    }
    let selected = select(&args);
    if !Path::new(GNU).exists() {
        fail(&format!(
            "{GNU} not found: this bench compares against GNU cat"
        ));
    }
    std::thread::spawn(watchdog);
    remove_stale_dirs();
    let work = WorkDir::create();
    check_free_space(&work.0, selected.big());
    eprintln!("cat bench: data in {}", work.0.display());
    eprintln!("cat bench: ours = {OURS}, GNU = {GNU}");

    let mut rows = Vec::new();
    let mut rss = Vec::new();
    if selected.big() {
        eprintln!("cat bench: writing 1 GiB...");
        write_big(&work.path("big"));
    }
    if selected.has('a') {
        let s = Scenario {
            args: vec!["big".into()],
            out: Out::DevNull,
            expected: BIG,
            rounds: 15,
            timeout: Duration::from_secs(60),
            rss: true,
        };
        let r = measure(&work, &s);
        rows.push(Row::time("(a) 1 GiB → /dev/null", &r, 0.6));
        rss.push(Row::rss("(g) peak RSS, (a)", &r));
    }
    if selected.has('b') {
        let s = Scenario {
            args: vec!["big".into()],
            out: Out::Sink,
            expected: BIG,
            rounds: 15,
            timeout: Duration::from_secs(60),
            rss: true,
        };
        let r = measure(&work, &s);
        rows.push(Row::time("(b) 1 GiB → pipe (1 CPU)", &r, 0.45));
        rss.push(Row::rss("(g) peak RSS, (b)", &r));
    }
    if selected.has('c') {
        let s = Scenario {
            args: vec!["big".into()],
            out: Out::File(work.path("out")),
            expected: BIG,
            rounds: 15,
            timeout: Duration::from_secs(120),
            rss: false,
        };
        let r = measure(&work, &s);
        rows.push(Row::time("(c) 1 GiB → regular file", &r, 1.0));
    }
    if selected.has('d') {
        let names = write_small_files(&work);
        let s = Scenario {
            args: names,
            out: Out::Sink,
            expected: (SMALL_COUNT * SMALL_SIZE) as u64,
            rounds: 101,
            timeout: Duration::from_secs(10),
            rss: false,
        };
        let r = measure(&work, &s);
        rows.push(Row::time("(d) 1000 × 1 KiB files → pipe (1 CPU)", &r, 0.7));
    }
    if selected.has('e') {
        fs::write(work.path("tiny"), TINY).unwrap();
        let r = latency(&work, 500);
        rows.push(Row::time(
            "(e) tiny file, process latency (500 alternating spawns each)",
            &r,
            1.3,
        ));
    }
    if selected.has('f') {
        let expected = write_lines(&work.path("lines"));
        let s = Scenario {
            args: vec!["-n".into(), "lines".into()],
            out: Out::Sink,
            expected,
            rounds: 11,
            timeout: Duration::from_secs(60),
            rss: false,
        };
        let r = measure(&work, &s);
        rows.push(Row::time(
            "(f) -n, 100 MiB of short lines → pipe (1 CPU)",
            &r,
            0.7,
        ));
    }
    if selected.has('h') {
        let expected = write_mixed(&work.path("mixed"));
        let s = Scenario {
            args: vec!["-A".into(), "mixed".into()],
            out: Out::Sink,
            expected,
            rounds: 11,
            timeout: Duration::from_secs(60),
            rss: false,
        };
        let r = measure(&work, &s);
        rows.push(Row::time(
            "(h) -A, 100 MiB of mixed text and binary → pipe (1 CPU)",
            &r,
            0.8,
        ));
    }
    let floor = (!rss.is_empty()).then(|| rss_floor(&work));
    rows.extend(rss);
    print_table(&rows, floor);
}

/// The scenarios asked for on the command line (all when none is).
struct Selection(Vec<char>);

impl Selection {
    fn has(&self, c: char) -> bool {
        self.0.is_empty() || self.0.contains(&c)
    }

    /// True when a scenario needs the 1 GiB file.
    fn big(&self) -> bool {
        self.has('a') || self.has('b') || self.has('c')
    }
}

fn select(args: &[String]) -> Selection {
    let mut chosen = Vec::new();
    for a in args {
        match a.as_str() {
            "a" | "b" | "c" | "d" | "e" | "f" | "h" => chosen.push(a.chars().next().unwrap()),
            // Peak RSS is measured on the runs of (a) and (b).
            "g" => chosen.extend(['a', 'b']),
            _ => fail(&format!(
                "unknown argument {a:?}; usage: cargo bench --bench cat [-- SCENARIO...] \
                 with SCENARIO one of a b c d e f g h"
            )),
        }
    }
    Selection(chosen)
}

/// Ends the bench with `msg`. It panics rather than exits, so the unwinding drops [`WorkDir`]
/// and the data is removed.
fn fail(msg: &str) -> ! {
    panic!("cat bench: {msg}");
}

// ---------------------------------------------------------------------------------------------
// The pipe reader.

/// `--sink`: says it is ready (one byte on stdout, so its own start-up is not timed), reads
/// stdin into a 1 MiB buffer until EOF, then prints the byte count.
fn sink() {
    let mut out = io::stdout().lock();
    out.write_all(b"R").unwrap();
    out.flush().unwrap();
    // Page-aligned: malloc's 16-byte offset into a fresh mapping makes the kernel's copy into
    // the buffer several times slower on this machine (AMD EPYC), and the reader must not be
    // the bottleneck.
    let mut storage = vec![0u8; SINK_BUF + PAGE];
    let start = storage.as_ptr().align_offset(PAGE);
    let buf = &mut storage[start..start + SINK_BUF];
    // A read of at least the lock's buffer size goes straight to read(2): no extra copy.
    let mut input = io::stdin().lock();
    let mut total = 0u64;
    loop {
        match input.read(buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("sink: {e}"),
        }
    }
    write!(out, "{total}").unwrap();
}

// ---------------------------------------------------------------------------------------------
// Data.

/// The bench's temporary directory, removed when dropped (also on a panic, which unwinds).
struct WorkDir(PathBuf);

const DIR_PREFIX: &str = "asyncio-tool-catbench-";

impl WorkDir {
    fn create() -> WorkDir {
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)
            .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", dir.display())));
        WorkDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Removes the directories of earlier runs that were killed (Ctrl-C) before cleaning up: their
/// process is gone. Without this each interrupted run would leave gigabytes behind.
fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|p| p.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } == -1
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn check_free_space(dir: &Path, big: bool) {
    let needed = if big { SPACE_NEEDED } else { 512 * MIB };
    let c_path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs fills the zeroed struct it is given; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        fail(&format!(
            "statvfs {}: {}",
            dir.display(),
            io::Error::last_os_error()
        ));
    }
    let free = st.f_bavail as u64 * st.f_frsize as u64;
    if free < needed {
        fail(&format!(
            "only {:.1} GiB free in {}, this bench needs {:.1} GiB; set TMPDIR to a roomier place",
            free as f64 / GIB as f64,
            dir.display(),
            needed as f64 / GIB as f64
        ));
    }
}

/// A small deterministic generator (xorshift64*): reproducible data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// 1 GiB of pseudo-random bytes. Writing it leaves it in the page cache (the warm-up runs
/// make sure of the rest).
fn write_big(path: &Path) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut block = vec![0u8; MIB as usize];
    let mut f = File::create(path).unwrap();
    for _ in 0..BIG / MIB {
        rng.fill(&mut block);
        f.write_all(&block).unwrap();
    }
}

/// 1000 files of 1 KiB; returns their names, relative to the work dir (short argv).
fn write_small_files(work: &WorkDir) -> Vec<OsString> {
    fs::create_dir_all(work.path("small")).unwrap();
    let mut rng = Rng(42);
    let mut content = vec![0u8; SMALL_SIZE];
    (0..SMALL_COUNT)
        .map(|i| {
            let name = format!("small/{i:04}");
            rng.fill(&mut content);
            fs::write(work.path(&name), &content).unwrap();
            OsString::from(name)
        })
        .collect()
}

/// 100 MiB of short lines (0 to 31 letters, ~6.4 million lines), ending in a newline. Returns
/// the size of `cat -n`'s output for it: each line gains its number printed as `%6d\t`, which
/// widens past 999999 lines.
fn write_lines(path: &Path) -> u64 {
    let mut rng = Rng(7);
    let mut out = BufWriter::with_capacity(MIB as usize, File::create(path).unwrap());
    let mut written = 0u64;
    let mut lines = 0u64;
    let mut numbered = 0u64;
    let mut line = Vec::with_capacity(40);
    while written < LINES {
        let r = rng.next();
        let len = (r & 31).min(LINES - written - 1) as usize;
        line.clear();
        line.extend((0..len).map(|i| b'a' + ((r >> (8 + i % 48)) % 26) as u8));
        line.push(b'\n');
        out.write_all(&line).unwrap();
        written += line.len() as u64;
        lines += 1;
        numbered += lines.to_string().len().max(6) as u64 + 1;
    }
    out.flush().unwrap();
    written + numbered
}

/// 100 MiB of text and binary mixed as in a log with blobs or an archive of source and
/// objects: runs of 256 B to 8 KiB, each either text (printable ASCII, tabs, lines of 0 to 79
/// bytes, one in eight ending in CR LF) or uniformly random bytes, half of each. Returns the
/// size of `cat -A`'s output for it.
fn write_mixed(path: &Path) -> u64 {
    let mut rng = Rng(0x6d_6978_6564);
    let mut out = BufWriter::with_capacity(MIB as usize, File::create(path).unwrap());
    let mut run = Vec::with_capacity(8 * KIB as usize);
    let mut written = 0u64;
    let mut shown = 0u64;
    while written < MIXED {
        let r = rng.next();
        let len = (256 + (r >> 8) % (8 * KIB - 256)).min(MIXED - written) as usize;
        run.resize(len, 0);
        if r & 1 == 0 {
            rng.fill(&mut run);
        } else {
            fill_text(&mut rng, &mut run);
        }
        out.write_all(&run).unwrap();
        written += len as u64;
        shown += run.iter().map(|&b| shown_len(b)).sum::<u64>();
    }
    out.flush().unwrap();
    shown
}

/// Fills `run` with lines of printable text and tabs.
fn fill_text(rng: &mut Rng, run: &mut [u8]) {
    let mut line_left = 0;
    let mut after_cr = false;
    for b in run.iter_mut() {
        let r = rng.next();
        *b = if after_cr {
            after_cr = false;
            b'\n'
        } else if line_left == 0 {
            line_left = r % 80;
            // One line in eight ends in CR LF.
            after_cr = (r >> 8) & 7 == 0;
            if after_cr { b'\r' } else { b'\n' }
        } else {
            line_left -= 1;
            if (r >> 16) % 16 == 0 {
                b'\t'
            } else {
                b' ' + ((r >> 24) % 95) as u8
            }
        };
    }
}

/// How many bytes `cat -A` prints for byte `b`: `$` before a newline, `^X` for controls (tab
/// and CR included) and DEL, `M-` before the 7-bit form of a high byte.
fn shown_len(b: u8) -> u64 {
    match b {
        b'\n' => 2,
        0..=31 | 127 => 2,
        32..=126 => 1,
        128..=159 | 255 => 4,
        160..=254 => 3,
    }
}

// ---------------------------------------------------------------------------------------------
// Running and timing.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Gnu,
    Ours,
}

impl Side {
    /// The command line: program, then arguments.
    fn argv(self, args: &[OsString]) -> Vec<OsString> {
        let mut argv: Vec<OsString> = match self {
            Side::Gnu => vec![GNU.into()],
            Side::Ours => vec![OURS.into(), "cat".into()],
        };
        argv.extend_from_slice(args);
        argv
    }

    fn command(self, args: &[OsString]) -> Command {
        let argv = self.argv(args);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd
    }

    fn name(self) -> &'static str {
        match self {
            Side::Gnu => "GNU cat",
            Side::Ours => "asyncio-tool",
        }
    }
}

/// Where cat's stdout goes.
enum Out {
    DevNull,
    /// A regular file, created empty before each run and removed after it.
    File(PathBuf),
    /// A fresh pipe into a `--sink` reader per run, both pinned to CPU 0.
    Sink,
}

struct Scenario {
    args: Vec<OsString>,
    out: Out,
    /// Bytes cat must write.
    expected: u64,
    /// Timed runs per side (after one warm-up run each).
    rounds: usize,
    /// A run taking longer is killed and the bench fails.
    timeout: Duration,
    /// Also measure cat's peak RSS, in extra runs through the `--rss-probe` (see
    /// [`rss_probe`]).
    rss: bool,
}

/// One run.
struct Run {
    /// From just before the spawn until cat (and the pipe reader) exited.
    elapsed: Duration,
    /// cat's peak resident set in KiB, when run through the `--rss-probe`.
    maxrss_kib: Option<u64>,
}

/// Both sides' runs of one scenario.
#[derive(Default)]
struct Results {
    gnu: Vec<Run>,
    ours: Vec<Run>,
    /// The runs through the `--rss-probe` (not timed).
    gnu_rss: Vec<Run>,
    ours_rss: Vec<Run>,
}

impl Results {
    fn side(&mut self, side: Side) -> &mut Vec<Run> {
        match side {
            Side::Gnu => &mut self.gnu,
            Side::Ours => &mut self.ours,
        }
    }

    fn rss_side(&mut self, side: Side) -> &mut Vec<Run> {
        match side {
            Side::Gnu => &mut self.gnu_rss,
            Side::Ours => &mut self.ours_rss,
        }
    }
}

/// Runs of each side through the `--rss-probe`, after the timed ones.
const RSS_ROUNDS: usize = 3;

/// Warm-up (one run each, its output checked), then `rounds` alternating timed runs per side.
fn measure(work: &WorkDir, s: &Scenario) -> Results {
    let label = s
        .args
        .iter()
        .take(3)
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let dest = match &s.out {
        Out::DevNull => "/dev/null",
        Out::File(_) => "a regular file",
        Out::Sink => "a pipe (1 CPU)",
    };
    eprintln!(
        "cat bench: cat {label}{} → {dest}: {} rounds per side",
        if s.args.len() > 3 { " ..." } else { "" },
        s.rounds
    );
    let _pin = matches!(s.out, Out::Sink).then(Pinned::to_cpu0);
    for side in [Side::Gnu, Side::Ours] {
        // The warm-up run also checks the output's size on /dev/null.
        run_once(work, s, side, true, None);
    }
    let mut results = Results::default();
    for _ in 0..s.rounds {
        for side in [Side::Gnu, Side::Ours] {
            let run = run_once(work, s, side, false, None);
            results.side(side).push(run);
        }
    }
    if s.rss {
        let report = work.path("rss");
        for _ in 0..RSS_ROUNDS {
            for side in [Side::Gnu, Side::Ours] {
                let run = run_once(work, s, side, false, Some(&report));
                results.rss_side(side).push(run);
            }
        }
    }
    results
}

/// Runs cat once and times it from just before the spawn until cat (and, into a pipe, the
/// reader) has exited. With `probe`, cat runs under the `--rss-probe`, which writes its
/// `ru_maxrss` to that file.
fn run_once(work: &WorkDir, s: &Scenario, side: Side, check: bool, probe: Option<&Path>) -> Run {
    let mut cmd = match probe {
        None => side.command(&s.args),
        Some(report) => {
            let mut c = Command::new(std::env::current_exe().unwrap());
            c.arg("--rss-probe").arg(report).args(side.argv(&s.args));
            c
        }
    };
    // stderr is a pipe, not the terminal: our cat would draw a progress bar on a terminal
    // (GNU has none), and any warning must fail the bench rather than scroll by.
    cmd.current_dir(&work.0)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    let mut sink = None;
    match &s.out {
        Out::DevNull => {
            cmd.stdout(File::options().write(true).open("/dev/null").unwrap());
        }
        Out::File(path) => {
            cmd.stdout(File::create(path).unwrap());
        }
        Out::Sink => {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .arg("--sink")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut ready = [0u8; 1];
            child
                .stdout
                .as_mut()
                .unwrap()
                .read_exact(&mut ready)
                .unwrap();
            cmd.stdout(Stdio::from(child.stdin.take().unwrap()));
            sink = Some(child);
        }
    }
    let deadline = Instant::now() + s.timeout;
    let start = Instant::now();
    // Reaped by `reap` (wait4), which gives its rusage, rather than by `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let cat = cmd.spawn().unwrap();
    // Close our copy of the pipe's write end, or the reader would never see EOF.
    drop(cmd);
    let cat_pid = cat.id() as libc::pid_t;
    watch(cat_pid, deadline);
    if let Some(sink) = &sink {
        watch(sink.id() as libc::pid_t, deadline);
    }
    wait_exited(cat_pid);
    if let Some(sink) = &sink {
        wait_exited(sink.id() as libc::pid_t);
    }
    let elapsed = start.elapsed();
    // Only a zombie's /proc entry can say how much it wrote; read it before reaping.
    let wchar = (check && matches!(s.out, Out::DevNull)).then(|| written_bytes(cat_pid));
    unwatch(cat_pid);
    let (status, _) = reap(cat_pid);
    let mut errors = String::new();
    let _ = cat.stderr.unwrap().read_to_string(&mut errors);
    if status != 0 || !errors.is_empty() {
        fail(&format!(
            "{} failed (wait status {status:#x}{}): {errors}",
            side.name(),
            if timed_out(status) {
                format!(", killed after {:?}", s.timeout)
            } else {
                String::new()
            }
        ));
    }
    let written = match (&s.out, sink) {
        (Out::Sink, Some(sink)) => {
            let pid = sink.id() as libc::pid_t;
            unwatch(pid);
            let (status, _) = reap(pid);
            let mut count = String::new();
            sink.stdout.unwrap().read_to_string(&mut count).unwrap();
            if status != 0 {
                fail(&format!("the pipe reader failed (wait status {status:#x})"));
            }
            Some(count.parse::<u64>().unwrap())
        }
        (Out::File(path), _) => {
            let size = fs::metadata(path).unwrap().len();
            // Removed at once: its dirty pages are dropped instead of written back while the
            // next runs are timed; the sync then lets the file system finish freeing its blocks
            // (and the discards of a `discard` mount) before the next run, not during it.
            fs::remove_file(path).unwrap();
            // SAFETY: sync(2) has no preconditions.
            unsafe { libc::sync() };
            Some(size)
        }
        (Out::DevNull, _) => wchar,
        (Out::Sink, None) => unreachable!(),
    };
    // Counts that come for free (pipe, file) are checked on every run; /dev/null's only on the
    // warm-up run.
    if let Some(w) = written {
        let ok = match s.out {
            // /dev/null keeps nothing to count: wchar counts every byte cat wrote, and our
            // runtime also writes 8 bytes per wake-up to its eventfd.
            Out::DevNull => (s.expected..s.expected + 4 * KIB).contains(&w),
            _ => w == s.expected,
        };
        if !ok {
            fail(&format!(
                "{} wrote {w} bytes, expected {}",
                side.name(),
                s.expected
            ));
        }
    }
    let maxrss_kib = probe.map(|report| {
        let kib = fs::read_to_string(report).unwrap();
        fs::remove_file(report).unwrap();
        kib.parse().unwrap()
    });
    Run {
        elapsed,
        maxrss_kib,
    }
}

/// (e): spawn-and-wait of `cat tiny > /dev/null`, alternating sides, `rounds` timed runs each
/// after 20 warm-up runs each. Measured here rather than by hyperfine, which runs all of one
/// command's runs before the other's; the method (spawn, wait) is the same as `hyperfine -N`.
fn latency(work: &WorkDir, rounds: usize) -> Results {
    eprintln!("cat bench: cat tiny → /dev/null, latency: {rounds} rounds per side");
    let args = [OsString::from("tiny")];
    for side in [Side::Gnu, Side::Ours] {
        let out = side
            .command(&args)
            .current_dir(&work.0)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if !out.status.success() || out.stdout != TINY || !out.stderr.is_empty() {
            fail(&format!(
                "{} printed a tiny file wrongly: {out:?}",
                side.name()
            ));
        }
    }
    let s = Scenario {
        args: args.to_vec(),
        out: Out::DevNull,
        expected: TINY.len() as u64,
        rounds,
        timeout: Duration::from_secs(10),
        rss: false,
    };
    for _ in 0..20 {
        for side in [Side::Gnu, Side::Ours] {
            run_once(work, &s, side, false, None);
        }
    }
    let mut results = Results::default();
    for _ in 0..rounds {
        for side in [Side::Gnu, Side::Ours] {
            let run = run_once(work, &s, side, false, None);
            results.side(side).push(run);
        }
    }
    results
}

/// `--rss-probe REPORT PROGRAM ARGS...`: runs PROGRAM (inheriting stdio) and writes its
/// `ru_maxrss` (KiB) to REPORT; exits with its status.
///
/// Why a probe: the kernel folds the memory a child had before its exec into its `ru_maxrss`
/// (exec records the old mm's high-water mark). std spawns with posix_spawn, which runs the
/// child on the parent's memory until the exec, so every cat would appear as big as the bench;
/// a fork copies the parent's anonymous pages, which grow in the bench as it makes its data.
/// This probe is a fresh, small process that forks (a `pre_exec` hook makes std fork rather
/// than posix_spawn), so what it adds is small, and [`rss_floor`] shows how small.
fn rss_probe(args: &[String]) {
    let [report, program, rest @ ..] = args else {
        fail("usage: --rss-probe REPORT PROGRAM [ARGS...]");
    };
    let mut cmd = Command::new(program);
    cmd.args(rest);
    // SAFETY: the hook does nothing, so it is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| Ok(()));
    }
    // Reaped by `reap` (wait4), which gives its rusage, rather than by `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().unwrap();
    let (status, maxrss_kib) = reap(child.id() as libc::pid_t);
    fs::write(report, maxrss_kib.to_string()).unwrap();
    std::process::exit(if status == 0 { 0 } else { 1 });
}

/// The `ru_maxrss` (KiB) the probe reports for `true`: the lowest peak RSS (g) can show.
fn rss_floor(work: &WorkDir) -> u64 {
    let report = work.path("rss");
    let status = Command::new(std::env::current_exe().unwrap())
        .arg("--rss-probe")
        .arg(&report)
        .arg("true")
        .status()
        .unwrap();
    assert!(status.success(), "the probe failed to run true");
    let kib = fs::read_to_string(&report).unwrap().parse().unwrap();
    fs::remove_file(&report).unwrap();
    kib
}

/// Waits until `pid` has exited, leaving it a zombie (WNOWAIT): the watchdog may still signal
/// it without risk of hitting a recycled pid, and its /proc entry stays readable.
fn wait_exited(pid: libc::pid_t) {
    loop {
        // SAFETY: waitid writes into the zeroed siginfo it is given.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            panic!("waitid {pid}: {e}");
        }
    }
}

/// Reaps an exited child: its wait status and peak RSS (KiB).
fn reap(pid: libc::pid_t) -> (i32, u64) {
    let mut status = 0;
    // SAFETY: wait4 writes the status and the zeroed rusage it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return (status, usage.ru_maxrss as u64);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            panic!("wait4 {pid}: {e}");
        }
    }
}

fn timed_out(status: i32) -> bool {
    libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL
}

/// Bytes an exited (not yet reaped) process wrote, from `wchar` in /proc/PID/io.
fn written_bytes(pid: libc::pid_t) -> u64 {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Children the watchdog kills once their deadline has passed: every run is bounded in time.
static WATCHED: Mutex<Vec<(libc::pid_t, Instant)>> = Mutex::new(Vec::new());

fn watch(pid: libc::pid_t, deadline: Instant) {
    WATCHED.lock().unwrap().push((pid, deadline));
}

/// Called before reaping, so the watchdog never signals a pid that could have been reused.
fn unwatch(pid: libc::pid_t) {
    WATCHED.lock().unwrap().retain(|&(p, _)| p != pid);
}

fn watchdog() {
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = Instant::now();
        for &(pid, deadline) in WATCHED.lock().unwrap().iter() {
            if now > deadline {
                // SAFETY: the pid is an unreaped child of ours (see `unwatch`).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// Pins this thread, and so the children it spawns (affinity is inherited), to CPU 0 — what
/// `taskset -c 0` does, without an extra exec inside the timed span or in `ru_maxrss` — and
/// restores the previous CPU set when dropped.
struct Pinned(libc::cpu_set_t);

impl Pinned {
    fn to_cpu0() -> Pinned {
        // SAFETY: sched_{get,set}affinity read and write the cpu_set_t given, of the size given.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            if libc::sched_getaffinity(0, size, &mut old) != 0 {
                panic!("sched_getaffinity: {}", io::Error::last_os_error());
            }
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut one);
            if libc::sched_setaffinity(0, size, &one) != 0 {
                panic!("sched_setaffinity: {}", io::Error::last_os_error());
            }
            Pinned(old)
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reporting.

struct Row {
    scenario: &'static str,
    gnu: String,
    ours: String,
    ratio: f64,
    target: String,
    met: bool,
}

impl Row {
    /// A timing row: medians and their ratio against `target`.
    fn time(scenario: &'static str, r: &Results, target: f64) -> Row {
        let gnu = median(r.gnu.iter().map(|x| x.elapsed.as_secs_f64()));
        let ours = median(r.ours.iter().map(|x| x.elapsed.as_secs_f64()));
        let ratio = ours / gnu;
        eprintln!(
            "cat bench: {scenario}: GNU {} [{}..{}], ours {} [{}..{}], ratio {ratio:.2}",
            secs(gnu),
            secs(min(r.gnu.iter().map(|x| x.elapsed.as_secs_f64()))),
            secs(max(r.gnu.iter().map(|x| x.elapsed.as_secs_f64()))),
            secs(ours),
            secs(min(r.ours.iter().map(|x| x.elapsed.as_secs_f64()))),
            secs(max(r.ours.iter().map(|x| x.elapsed.as_secs_f64()))),
        );
        Row {
            scenario,
            gnu: secs(gnu),
            ours: secs(ours),
            ratio,
            target: format!("≤ {target:.2}"),
            met: ratio <= target,
        }
    }

    /// A memory row: the largest `ru_maxrss` over the probed runs of each side; the target is
    /// on ours alone.
    fn rss(scenario: &'static str, r: &Results) -> Row {
        let gnu = r.gnu_rss.iter().filter_map(|x| x.maxrss_kib).max().unwrap();
        let ours = r
            .ours_rss
            .iter()
            .filter_map(|x| x.maxrss_kib)
            .max()
            .unwrap();
        Row {
            scenario,
            gnu: kib(gnu),
            ours: kib(ours),
            ratio: ours as f64 / gnu as f64,
            target: "≤ 8 MiB".into(),
            met: ours <= 8 * KIB,
        }
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn min(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(f64::INFINITY, f64::min)
}

fn max(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, f64::max)
}

fn secs(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn kib(k: u64) -> String {
    format!("{:.1} MiB", k as f64 / KIB as f64)
}

fn print_table(rows: &[Row], rss_floor: Option<u64>) {
    println!();
    println!("| scenario | GNU cat median | asyncio-tool median | ratio | target | met? |");
    println!("| --- | ---: | ---: | ---: | --- | --- |");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.2} | {} | {} |",
            r.scenario,
            r.gnu,
            r.ours,
            r.ratio,
            r.target,
            if r.met { "yes" } else { "**no**" }
        );
    }
    println!();
    println!(
        "Medians of alternating runs (GNU, ours, ...) after a warm-up, page cache warm; ratio = \
         asyncio-tool / GNU cat, lower is faster."
    );
    if let Some(floor) = rss_floor {
        println!(
            "Peak RSS: largest ru_maxrss of {RSS_ROUNDS} more runs per side, cat forked by a \
             small probe process (`true` run so: {}).",
            kib(floor)
        );
    }
}
