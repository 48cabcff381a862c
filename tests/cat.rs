//! `cat` against GNU cat as the oracle: same bytes, same exit status, for random data and
//! random option sets; every error case; every kind of input; every copy path.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use proptest::prelude::*;

use crate::util::{
    KillOnDrop, assert_no_panic, other, output_timeout, pty, random_bytes, read_until, std_tool,
    tool,
};

const OPTIONS: [&str; 17] = [
    "-A",
    "-b",
    "-e",
    "-E",
    "-n",
    "-s",
    "-t",
    "-T",
    "-u",
    "-v",
    "--show-all",
    "--number-nonblank",
    "--show-ends",
    "--number",
    "--squeeze-blank",
    "--show-tabs",
    "--show-nonprinting",
];

/// What one run produced: stdout and exit code.
type Run = (Vec<u8>, Option<i32>);

/// Runs GNU cat and ours with the same arguments, stdin and working directory; returns both
/// (stdout, exit code).
fn both(dir: &Path, args: &[String], stdin: &[u8]) -> (Run, Run) {
    let run = |mut cmd: Command| {
        cmd.current_dir(dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        let data = stdin.to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let out = output_timeout(child, Duration::from_secs(30));
        feeder.join().unwrap();
        assert_no_panic(&out.stderr);
        (out.stdout, out.status.code())
    };
    let gnu = run(other("cat"));
    let mut ours = std_tool(["cat"]);
    ours.env_remove("COLUMNS");
    (gnu, run(ours))
}

/// Bytes that exercise every rendering rule: runs of newlines, tabs, controls, DEL, high bytes.
fn interesting_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => Just(b'\n'),
        2 => Just(b'\t'),
        6 => b'a'..=b'z',
        1 => 0u8..32,
        1 => Just(127u8),
        2 => Just(b'\r'),
        2 => 128u8..=255,
        1 => Just(b' '),
    ];
    prop::collection::vec(byte, 0..400)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn matches_gnu_cat(
        files in prop::collection::vec(interesting_bytes(), 1..4),
        stdin in interesting_bytes(),
        opts in prop::collection::vec(prop::sample::select(OPTIONS.to_vec()), 0..4),
        stdin_at in 0usize..5,
        missing_at in 0usize..6,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        let mut operands = Vec::new();
        for (i, data) in files.iter().enumerate() {
            let name = format!("f{i}");
            std::fs::write(dir.path().join(&name), data).unwrap();
            operands.push(name);
        }
        if stdin_at < operands.len() { operands.insert(stdin_at, "-".into()); }
        if missing_at < operands.len() { operands.insert(missing_at, "missing".into()); }
        args.extend(operands);
        let (gnu, ours) = both(dir.path(), &args, &stdin);
        prop_assert_eq!(ours.1, gnu.1, "exit status for {:?}", args);
        prop_assert!(ours.0 == gnu.0, "stdout differs for {:?}:\n gnu: {:?}\nours: {:?}",
            args, String::from_utf8_lossy(&gnu.0), String::from_utf8_lossy(&ours.0));
    }
}

#[test]
fn stdin_twice_and_no_operands_read_stdin() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), "A\n").unwrap();
    for args in [
        vec![],
        vec!["-"],
        vec!["a", "-", "a", "-"],
        vec!["-n", "-", "a", "-"],
    ] {
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        let (gnu, ours) = both(dir.path(), &args, b"one\ntwo\n\n\nthree");
        assert_eq!(ours, gnu, "{args:?}");
    }
}

#[test]
fn numbering_continues_across_large_inputs() {
    // Lines far beyond one read chunk, and past 6-digit line numbers' width change.
    let dir = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    for i in 0..120_000 {
        text.extend_from_slice(format!("{}\n", "x".repeat(i % 7)).as_bytes());
    }
    std::fs::write(dir.path().join("a"), &text).unwrap();
    for opt in ["-n", "-b", "-sn", "-A"] {
        let args = vec![opt.to_string(), "a".into(), "a".into()];
        let (gnu, ours) = both(dir.path(), &args, b"");
        assert!(ours == gnu, "{opt}: outputs differ");
    }
}

#[test]
fn missing_file_among_others_is_reported_and_the_rest_printed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), "first\n").unwrap();
    std::fs::write(dir.path().join("b"), "second\n").unwrap();
    let out = tool(["cat", "a", "nope", "b"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout, b"first\nsecond\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "asyncio-tool: cat: nope: No such file or directory\n"
    );
}

#[test]
fn many_failures_still_exit_exactly_1() {
    // 256 failures would wrap an exit count to 0.
    let args: Vec<String> = std::iter::once("cat".to_string())
        .chain((0..256).map(|i| format!("/nonexistent/{i}")))
        .collect();
    let out = tool(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 256);
}

#[test]
fn unreadable_file_is_reported_and_skipped() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "hidden\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::write(dir.path().join("a"), "ok\n").unwrap();
    // A copy of the binary where nobody can run it (the build folder may be under /root).
    let tool_copy = dir.path().join("asyncio-tool");
    std::fs::copy(crate::util::bin(), &tool_copy).unwrap();
    let mut cmd = other(&tool_copy);
    cmd.args(["cat", "secret", "a"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec. Root reads any file, so
    // the child drops to nobody (65534) when the test runs as root (as CI does).
    unsafe {
        cmd.pre_exec(|| {
            if libc::geteuid() == 0 && (libc::setgid(65534) != 0 || libc::setuid(65534) != 0) {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Another test's fork may briefly hold the fresh copy open for writing (ETXTBSY).
    let mut spawned = cmd.spawn();
    for _ in 0..50 {
        match &spawned {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(20));
                spawned = cmd.spawn();
            }
            _ => break,
        }
    }
    let out = output_timeout(spawned.unwrap(), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout, b"ok\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "asyncio-tool: cat: secret: Permission denied\n"
    );
}

#[test]
fn directory_is_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), "ok\n").unwrap();
    let out = tool(["cat", ".", "a"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout, b"ok\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "asyncio-tool: cat: .: Is a directory\n"
    );
}

#[test]
fn read_error_midway_is_reported() {
    // /proc/self/mem fails with EIO at offset 0: a read error, never swallowed.
    let out = tool(["cat", "/proc/self/mem"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/proc/self/mem: Input/output error"), "{err}");
}

#[test]
fn input_file_is_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, "data\n").unwrap();
    std::fs::write(dir.path().join("g"), "other\n").unwrap();
    // `cat g f g >> f`: f is refused, nothing is written for it, the others are.
    let out_file = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
    let out = std_tool(["cat", "g", "f", "g"])
        .current_dir(dir.path())
        .stdout(out_file)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "asyncio-tool: cat: f: input file is output file\n"
    );
    assert_eq!(std::fs::read(&f).unwrap(), b"data\nother\nother\n");

    // `cat - < f >> f`
    let out_file = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
    let out = std_tool(["cat", "-"])
        .stdin(std::fs::File::open(&f).unwrap())
        .stdout(out_file)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "asyncio-tool: cat: -: input file is output file\n"
    );
    assert_eq!(std::fs::read(&f).unwrap().len(), 17);

    // With formatting options too.
    let out_file = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
    let out = std_tool(["cat", "-n", "f"])
        .current_dir(dir.path())
        .stdout(out_file)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(&f).unwrap().len(), 17);
}

#[test]
fn full_device_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), "x".repeat(100_000)).unwrap();
    for args in [vec!["cat", "a"], vec!["cat", "-n", "a"]] {
        let out = std_tool(&args)
            .current_dir(dir.path())
            .stdout(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            )
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("No space left on device"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn closed_stdout_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, random_bytes(8 << 20, 7)).unwrap();
    for opt in [None, Some("-v")] {
        let mut cmd = std_tool(["cat"]);
        cmd.args(opt).arg(&big).arg(&big);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 1];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let out = output_timeout(child, Duration::from_secs(10));
        assert!(
            matches!(out.status.code(), Some(0) | Some(141)),
            "{opt:?}: status {:?}",
            out.status
        );
        assert!(
            out.stderr.is_empty(),
            "quiet: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn proc_files_are_copied_in_full() {
    // stat size 0: a kernel copy refuses (or would copy nothing); the fallback reads it all.
    let gnu = other("cat").arg("/proc/version").output().unwrap();
    assert!(!gnu.stdout.is_empty());
    let dir = tempfile::tempdir().unwrap();
    for target in ["file", "pipe"] {
        let out = if target == "file" {
            let path = dir.path().join("out");
            let status = std_tool(["cat", "--verbose", "/proc/version"])
                .stdout(std::fs::File::create(&path).unwrap())
                .stderr(Stdio::piped())
                .output()
                .unwrap();
            assert!(status.status.success());
            (std::fs::read(&path).unwrap(), status.stderr)
        } else {
            let out = tool(["cat", "--verbose", "/proc/version"])
                .output()
                .unwrap();
            assert!(out.status.success());
            (out.stdout, out.stderr)
        };
        assert_eq!(out.0, gnu.stdout, "{target}");
        let log = String::from_utf8_lossy(&out.1);
        if target == "file" {
            // copy_file_range refuses /proc files (EXDEV); splice into a pipe may accept them.
            assert!(
                log.contains("by read/write") && log.contains("refused"),
                "{target}: {log}"
            );
        }
    }
}

#[test]
fn fifo_input() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let status = other("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let data = random_bytes(3 << 20, 11);
    let expected = data.clone();
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(writer_path)
            .unwrap();
        f.write_all(&data).unwrap();
    });
    let child = std_tool(["cat"])
        .arg(&fifo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_timeout(child, Duration::from_secs(20));
    writer.join().unwrap();
    assert!(out.status.success());
    assert!(out.stdout == expected);
}

#[test]
fn terminal_stdin_echoes_each_line_as_typed() {
    for opts in [vec![], vec!["-n"]] {
        let term = pty();
        let mut cmd = std_tool(["cat"]);
        cmd.args(&opts)
            .stdin(term.slave.try_clone().unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = KillOnDrop(cmd.spawn().unwrap());
        drop(term.slave);
        let stdout = child.0.stdout.take().unwrap();
        let mut master = term.master;
        master.write_all(b"hello\n").unwrap();
        let (seen, got) = read_until(stdout, b"hello\n", Duration::from_secs(10));
        assert!(
            seen,
            "{opts:?}: a typed line must appear before EOF, got {got:?}"
        );
        // Ctrl-D at the start of a line is EOF for the terminal: cat ends with success.
        master.write_all(&[4]).unwrap();
        let status = crate::util::wait_timeout(&mut child.0, Duration::from_secs(10));
        assert!(status.success(), "{status:?}");
    }
}

#[test]
fn ctrl_c_exits_130() {
    // Waiting on an idle stdin pipe, and waiting in open() for a FIFO's writer.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(other("mkfifo").arg(&fifo).status().unwrap().success());
    for operand in [None, Some(&fifo)] {
        let mut cmd = std_tool(["cat"]);
        cmd.args(operand)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = KillOnDrop(cmd.spawn().unwrap());
        std::thread::sleep(Duration::from_millis(300));
        crate::util::signal(&child.0, libc::SIGINT);
        let status = crate::util::wait_timeout(&mut child.0, Duration::from_secs(10));
        assert_eq!(status.code(), Some(130), "{operand:?}");
    }
}

/// Runs `cat --verbose ARGS` with stdout sent to `stdout`; returns (stderr text, success).
fn verbose_run(args: &[&Path], stdout: Stdio, extra: &[&str]) -> (String, bool) {
    let mut cmd = std_tool(["cat", "--verbose"]);
    cmd.args(extra)
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::piped());
    let out = output_timeout(cmd.spawn().unwrap(), Duration::from_secs(60));
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

#[test]
fn zero_copy_paths_and_their_fallbacks() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let data = random_bytes(5 << 20, 3);
    std::fs::write(&src, &data).unwrap();
    let dst: PathBuf = dir.path().join("dst");

    // file → file: copy_file_range.
    let (log, ok) = verbose_run(
        &[&src],
        Stdio::from(std::fs::File::create(&dst).unwrap()),
        &[],
    );
    assert!(ok && log.contains("by copy_file_range"), "{log}");
    assert!(std::fs::read(&dst).unwrap() == data);

    // file → appending file: copy_file_range refuses O_APPEND; read/write takes over.
    let append = std::fs::OpenOptions::new().append(true).open(&dst).unwrap();
    let (log, ok) = verbose_run(&[&src], Stdio::from(append), &[]);
    assert!(
        ok && log.contains("by read/write (copy_file_range refused"),
        "{log}"
    );
    let both = std::fs::read(&dst).unwrap();
    assert!(both.len() == 2 * data.len() && both[data.len()..] == data[..]);

    // file → pipe: splice; read in a thread so the pipe never fills.
    let mut cmd = std_tool(["cat", "--verbose"]);
    cmd.arg(&src).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = output_timeout(cmd.spawn().unwrap(), Duration::from_secs(60));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("+ vmsplice"));
    assert!(out.stdout == data);

    // file → /dev/null: sendfile.
    let devnull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let (log, ok) = verbose_run(&[&src], Stdio::from(devnull), &[]);
    assert!(ok && log.contains("by sendfile"), "{log}");

    // /proc → /dev/null: sendfile refused, read/write.
    let devnull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let (log, ok) = verbose_run(&[Path::new("/proc/self/maps")], Stdio::from(devnull), &[]);
    assert!(
        ok && log.contains("by read/write") && log.contains("refused"),
        "{log}"
    );

    // Mixed: a fallback in one file does not stick to the next.
    let (log, ok) = verbose_run(
        &[Path::new("/proc/version"), &src],
        Stdio::from(std::fs::File::create(&dst).unwrap()),
        &[],
    );
    assert!(ok && log.contains("by copy_file_range"), "{log}");
    let proc_version = other("cat").arg("/proc/version").output().unwrap().stdout;
    let got = std::fs::read(&dst).unwrap();
    assert!(got[..proc_version.len()] == proc_version[..] && got[proc_version.len()..] == data[..]);
}

#[test]
fn output_opened_mid_file_is_overwritten_in_place_like_gnu() {
    // Big copies to a file reserve the output's blocks first; what the file holds afterwards
    // must still be exactly what GNU cat leaves: overwritten from the write position, the rest
    // untouched, the size unchanged unless the copy runs past the end.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let data = random_bytes(5 << 20, 4);
    std::fs::write(&src, &data).unwrap();
    for (old_len, pos) in [(8 << 20, 1 << 20), (2 << 20, 1 << 20), (0, 0)] {
        let mut results = Vec::new();
        for mut cmd in [std_tool(["cat"]), other("cat")] {
            let dst = dir.path().join("dst");
            std::fs::write(&dst, vec![b'x'; old_len]).unwrap();
            let mut out = std::fs::OpenOptions::new().write(true).open(&dst).unwrap();
            std::io::Seek::seek(&mut out, std::io::SeekFrom::Start(pos)).unwrap();
            cmd.arg(&src).stdout(out).stderr(Stdio::piped());
            let run = output_timeout(cmd.spawn().unwrap(), Duration::from_secs(60));
            assert!(run.status.success() && run.stderr.is_empty(), "{run:?}");
            results.push(std::fs::read(&dst).unwrap());
        }
        let expected_len = old_len.max(pos as usize + data.len());
        assert!(
            results[0].len() == expected_len,
            "size {}",
            results[0].len()
        );
        assert!(
            results[0] == results[1],
            "differs from GNU cat at {old_len}/{pos}"
        );
    }
}

#[test]
fn many_small_files_are_gathered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    let mut expected = Vec::new();
    for i in 0..300 {
        let data = random_bytes(1 + (i * 37) % 3000, i as u64 + 1);
        let name = format!("s{i:03}");
        std::fs::write(dir.path().join(&name), &data).unwrap();
        expected.extend_from_slice(&data);
        names.push(name);
    }
    let out = tool(std::iter::once("cat".to_string()).chain(names.iter().cloned()))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout == expected);
}

#[test]
fn a_file_over_1_gib_streams_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    let len: u64 = (1 << 30) + 12_345;
    // Sparse: costs no disk, and reads like a real file of zeros.
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(len).unwrap();
    drop(f);
    for opts in [vec![], vec!["-v"]] {
        let mut cmd = std_tool(["cat"]);
        cmd.args(&opts)
            .arg(&big)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !opts.is_empty() {
            // A debug build renders slowly: the formatting path is checked on 64 MiB.
            cmd.arg("/dev/null");
        }
        let mut child = KillOnDrop(cmd.spawn().unwrap());
        let mut stdout = child.0.stdout.take().unwrap();
        let want = if opts.is_empty() { len } else { 64 << 20 };
        let mut total = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        while total < want {
            let n = stdout.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        let hwm = peak_rss_kib(child.0.id());
        assert!(hwm < 16 * 1024, "{opts:?}: peak RSS {hwm} KiB");
        if opts.is_empty() {
            assert_eq!(total, len);
            let status = crate::util::wait_timeout(&mut child.0, Duration::from_secs(60));
            assert!(status.success());
        }
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn progress_bar_shows_on_a_terminal_and_never_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(other("mkfifo").arg(&fifo).status().unwrap().success());
    let term = pty();
    let mut cmd = std_tool(["cat", "--progress"]);
    cmd.arg(&fifo)
        .stdout(Stdio::piped())
        .stderr(term.slave.try_clone().unwrap())
        .env("TERM", "xterm");
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    drop(term.slave);
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let mut stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    // Keep the input open while the bar is read, so the copy is still running.
    writer.write_all(&vec![b'x'; 300_000]).unwrap();
    let (seen, text) = read_until(term.master, b"292.97 KiB", Duration::from_secs(10));
    drop(writer);
    let status = crate::util::wait_timeout(&mut child.0, Duration::from_secs(10));
    assert!(status.success());
    assert_eq!(
        reader.join().unwrap().len(),
        300_000,
        "stdout carries data only"
    );
    assert!(
        seen,
        "progress on the terminal: {:?}",
        String::from_utf8_lossy(&text)
    );
}

#[test]
fn quiet_hides_progress_and_unknown_options_are_usage_errors() {
    let out = tool(["cat", "-q", "--progress", "/proc/version"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stderr.is_empty());
    let out = tool(["cat", "-z"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn progress_appears_by_itself_only_when_the_copy_is_slow() {
    // A short copy with stderr on a terminal: nothing on the terminal.
    let term = pty();
    let mut cmd = std_tool(["cat", "/proc/version"]);
    cmd.stdout(Stdio::piped())
        .stderr(term.slave.try_clone().unwrap());
    let out = output_timeout(cmd.spawn().unwrap(), Duration::from_secs(10));
    drop(term.slave);
    assert!(out.status.success());
    let (seen, text) = read_until(term.master, b"B", Duration::from_millis(300));
    assert!(
        !seen,
        "no bar for a short copy: {:?}",
        String::from_utf8_lossy(&text)
    );

    // A copy still running after a second: the bar shows up without --progress.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(other("mkfifo").arg(&fifo).status().unwrap().success());
    let term = pty();
    let mut cmd = std_tool(["cat"]);
    cmd.arg(&fifo)
        .stdout(Stdio::piped())
        .stderr(term.slave.try_clone().unwrap());
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    drop(term.slave);
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let mut stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    writer.write_all(&[b'y'; 2048]).unwrap();
    let (seen, text) = read_until(term.master, b"2 KiB", Duration::from_secs(5));
    drop(writer);
    let status = crate::util::wait_timeout(&mut child.0, Duration::from_secs(10));
    assert!(status.success());
    assert_eq!(reader.join().unwrap().len(), 2048);
    assert!(
        seen,
        "bar after a second: {:?}",
        String::from_utf8_lossy(&text)
    );
}

#[test]
fn socket_and_character_device_inputs() {
    let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let data = random_bytes(1 << 20, 5);
    let expected = data.clone();
    let writer = std::thread::spawn(move || {
        ours.write_all(&data).unwrap();
    });
    let child = std_tool(["cat", "-u", "-"])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writer.join().unwrap();
    let out = output_timeout(child, Duration::from_secs(20));
    assert!(out.status.success());
    assert!(out.stdout == expected);

    // /dev/null is a character device with nothing in it.
    let out = tool(["cat", "/dev/null", "-"]).output().unwrap();
    assert!(out.status.success() && out.stdout.is_empty());
}

/// Runs `sh -c SCRIPT` in `dir`, where the script calls `cat_` for the cat under test (ours
/// or GNU's), so its redirections are real shell redirections. Returns (stderr, exit).
fn sh_cat(dir: &Path, ours: bool, script: &str) -> (String, Option<i32>) {
    let cat = if ours { "\"$TOOL\" cat" } else { "cat" };
    // A file-size limit makes a runaway copy into its own input fail fast instead of filling
    // the disk (ulimit -f counts 512-byte blocks).
    let script = format!("ulimit -f 2048; cat_() {{ {cat} \"$@\"; }}; {script}");
    let mut cmd = other("sh");
    cmd.arg("-c")
        .arg(script)
        .env("TOOL", crate::util::bin())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let out = output_timeout(cmd.spawn().unwrap(), Duration::from_secs(20));
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

/// GNU's stderr with our prefix, for comparison.
fn as_ours(gnu_stderr: &str) -> String {
    gnu_stderr
        .lines()
        .map(|l| format!("asyncio-tool: {l}\n"))
        .collect()
}

#[test]
fn input_file_is_output_file_whatever_the_output_mode() {
    let dir = tempfile::tempdir().unwrap();
    // Every way of making stdout the input's own file while the input still has bytes to
    // read: GNU refuses all of them, leaves the file alone and exits 1.
    for script in [
        "cat_ f 1<>f",
        "cat_ -n f 1<>f",
        "cat_ -A f 1<>f",
        "cat_ f >>f",
        "cat_ -n f >>f",
        "cat_ - <f 1<>f",
        "cat_ - <f >>f",
        "cat_ -n - <f 1<>f",
        "cat_ g f g >f",
        "cat_ g f g >>f",
        "cat_ -b g f 1<>f",
        // An input read to its end already is no danger: allowed.
        "exec 3<f; cat <&3 >/dev/null; cat_ - <&3 1<>f",
        "cat_ empty 1<>empty",
    ] {
        let mut results = Vec::new();
        for ours in [false, true] {
            std::fs::write(dir.path().join("f"), "one\ntwo\n").unwrap();
            std::fs::write(dir.path().join("g"), "gg\n").unwrap();
            std::fs::write(dir.path().join("empty"), "").unwrap();
            let (stderr, code) = sh_cat(dir.path(), ours, script);
            assert_no_panic(stderr.as_bytes());
            let f = std::fs::read(dir.path().join("f")).unwrap();
            results.push((stderr, code, f));
        }
        let (gnu, ours) = (&results[0], &results[1]);
        assert_eq!(ours.1, gnu.1, "{script}: exit status; stderr {:?}", ours.0);
        assert_eq!(ours.0, as_ours(&gnu.0), "{script}: message");
        assert!(ours.2 == gnu.2, "{script}: file afterwards: {:?}", ours.2);
    }
}

#[test]
fn closed_stdin_or_stdout_is_a_bad_file_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "data\n").unwrap();
    for (script, message) in [
        ("cat_ f >&-", "cat: standard output: Bad file descriptor"),
        ("cat_ -n f >&-", "cat: standard output: Bad file descriptor"),
        ("cat_ <&-", "cat: -: Bad file descriptor"),
        ("cat_ - <&-", "cat: -: Bad file descriptor"),
        ("cat_ -n - <&- >/dev/null", "cat: -: Bad file descriptor"),
    ] {
        let (gnu, gnu_code) = sh_cat(dir.path(), false, script);
        let (ours, code) = sh_cat(dir.path(), true, script);
        assert_eq!(gnu_code, Some(1), "{script}");
        assert_eq!(code, Some(1), "{script}: {ours}");
        // GNU adds "closing standard input: Bad file descriptor" for a closed stdin: the
        // same failure said twice; the first line is the one that names the operand.
        assert_eq!(gnu.lines().next(), Some(message), "{script}");
        assert_eq!(ours, format!("asyncio-tool: {message}\n"), "{script}");
    }
}

#[test]
fn messages_stay_between_the_files_bytes() {
    // `cat a missing b > o 2>&1`: small files are gathered before being written; an error
    // message must still come after the bytes of the files before it, as with GNU.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), "A\n").unwrap();
    std::fs::write(dir.path().join("b"), "B").unwrap();
    std::fs::write(dir.path().join("c"), "C\n").unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    for opts in ["", "-n", "-A", "-s"] {
        let script = format!("cat_ {opts} a missing b d c missing >o 2>&1");
        let mut outputs = Vec::new();
        for ours in [false, true] {
            let (_, code) = sh_cat(dir.path(), ours, &script);
            assert_eq!(code, Some(1), "{script}");
            let text = std::fs::read_to_string(dir.path().join("o")).unwrap();
            outputs.push(text.replace("asyncio-tool: cat: ", "cat: "));
        }
        assert_eq!(outputs[1], outputs[0], "{script}");
    }
}

/// The names GNU quotes in messages, one of each kind: spaces and shell specials, an
/// apostrophe, control characters, escape sequences, invalid UTF-8, a forged second line.
const TRICKY_NAMES: [&[u8]; 14] = [
    b"plain",
    b"a b",
    b"a:b",
    b"it's",
    b"it's $HOME",
    b"a\nb",
    b"\x1b[31mred\x1b[0m",
    b"\x1b]0;title\x07",
    b"bad\xffutf8",
    "caf\u{e9}".as_bytes(),
    b"~home",
    b"#x",
    b"",
    b"x: No such file or directory\nasyncio-tool: cat: y",
];

/// GNU cat's message for a missing `name`, in a UTF-8 locale (ours does not follow the
/// locale: it always shows UTF-8).
fn gnu_missing_message(dir: &Path, name: &std::ffi::OsStr) -> String {
    let out = other("cat")
        .env("LC_ALL", "C.UTF-8")
        .arg("--")
        .arg(name)
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8(out.stderr).unwrap()
}

fn our_missing_message(dir: &Path, name: &std::ffi::OsStr) -> String {
    let out = tool(["cat", "--"])
        .arg(name)
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn file_names_in_messages_are_quoted_as_gnu_does() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    for name in TRICKY_NAMES {
        let name = std::ffi::OsStr::from_bytes(name);
        let gnu = gnu_missing_message(dir.path(), name);
        let ours = our_missing_message(dir.path(), name);
        assert_eq!(ours, as_ours(&gnu), "{name:?}");
        assert_eq!(ours.lines().count(), 1, "one line for {name:?}: {ours:?}");
        assert!(
            !ours.trim_end().chars().any(char::is_control),
            "control characters in {ours:?}"
        );
    }
    // The same quoting for every message naming a file: an unreadable directory, and
    // --verbose's account of a copy.
    let name = dir.path().join("dir\nname");
    std::fs::create_dir(&name).unwrap();
    let out = tool(["cat"]).arg(&name).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.ends_with("'$'\\n''name': Is a directory\n"), "{err}");
    let file = dir.path().join("f\x1b[2J");
    std::fs::write(&file, "x").unwrap();
    let out = tool(["cat", "--verbose"]).arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.contains("$'\\033''[2J"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_file_names_are_quoted_as_gnu_does(
        name in prop::collection::vec(
            prop_oneof![
                4 => (b'a'..=b'z').prop_map(|b| vec![b]),
                1 => prop::sample::select(b" !\"#$%&'()*+,-.:;<=>?@[\\]^_`{|}~".to_vec())
                    .prop_map(|b| vec![b]),
                1 => (1u8..32).prop_map(|b| vec![b]),
                // Assigned printable characters (glibc also escapes unassigned code points,
                // which we show as they are), a C1 control, invalid and truncated UTF-8.
                1 => prop::sample::select(vec![
                    "\u{e9}", "\u{20ac}", "\u{65e5}", "\u{85}", "\u{7f}", "\u{a0}",
                ]).prop_map(|s| s.as_bytes().to_vec()),
                1 => prop::sample::select(vec![
                    &b"\xff"[..], b"\xfe", b"\x80", b"\xc3", b"\xe2\x82",
                ]).prop_map(<[u8]>::to_vec),
            ],
            1..8,
        ).prop_map(|units| units.concat())
        .prop_filter("a name that is not an option, stdin or a path", |n| {
            n != b"-" && !n.contains(&b'/')
        })
    ) {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let name = std::ffi::OsStr::from_bytes(&name);
        let gnu = as_ours(&gnu_missing_message(dir.path(), name));
        let ours = our_missing_message(dir.path(), name);
        prop_assert!(same_as_gnu(&ours, &gnu), "{:?}:\n gnu: {}ours: {}", name, gnu, ours);
    }
}

#[test]
fn no_progress_bar_while_a_terminal_is_read() {
    // `cat > notes` typed at a terminal: stdin and stderr are the terminal. A bar would draw
    // over the text being typed, so none appears, however long the typing takes.
    let term = pty();
    let mut cmd = std_tool(["cat"]);
    cmd.stdin(term.slave.try_clone().unwrap())
        .stdout(Stdio::piped())
        .stderr(term.slave.try_clone().unwrap())
        .env("TERM", "xterm");
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    drop(term.slave);
    let stdout = child.0.stdout.take().unwrap();
    let mut master = term.master;
    let screen = master.try_clone().unwrap();
    master.write_all(b"typed text\n").unwrap();
    let (seen, _) = read_until(stdout, b"typed text\n", Duration::from_secs(10));
    assert!(seen, "the line reaches stdout");
    // The bar would show after a second: watch the terminal for three (the echo of the
    // typed line is all it may show).
    let (bar, text) = read_until(screen, b" B", Duration::from_secs(3));
    assert!(
        !bar,
        "no bar over typed text: {:?}",
        String::from_utf8_lossy(&text)
    );
    master.write_all(&[4]).unwrap();
    let status = crate::util::wait_timeout(&mut child.0, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

/// The states a forced bar drew into a file, as text (each draw starts with a line clear).
fn bar_states(record: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(record)
        .split("\r\x1b[2K")
        .map(|s| s.trim_end().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn forced_progress_into_a_file_ends_at_100_percent() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::write(&src, random_bytes(40 << 20, 9)).unwrap();
    let record = dir.path().join("progress");
    let out = std_tool(["cat", "--progress"])
        .arg(&src)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&record).unwrap())
        .status()
        .unwrap();
    assert!(out.success());
    let record = std::fs::read(&record).unwrap();
    let states = bar_states(&record);
    let last = states.last().map(String::as_str).unwrap_or_default();
    assert!(
        last.contains("100% 40 MiB / 40 MiB"),
        "last state: {last:?} in {states:?}"
    );
    assert!(record.ends_with(b"\n"), "the record ends its line");
}

/// Bytes per second of every `N UNIT/s` in `text`.
fn rates(text: &str) -> Vec<f64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .filter_map(|w| {
            let unit = w[1].strip_suffix("/s")?;
            let scale = match unit {
                "B" => 1.0,
                "KiB" => 1024.0,
                "MiB" => 1024.0 * 1024.0,
                "GiB" => 1024.0 * 1024.0 * 1024.0,
                "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
                _ => return None,
            };
            Some(w[0].parse::<f64>().ok()? * scale)
        })
        .collect()
}

#[test]
fn progress_rate_counts_only_what_moved_while_the_bar_was_up() {
    // A 1 MiB file is copied before the bar exists (the quick phase); then 10 bytes come
    // through a FIFO. Any rate shown is measured over at least a second of the bar's own
    // time, so it can never exceed 10 B/s (it used to read 1 MiB over a few microseconds).
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::write(&small, random_bytes(1 << 20, 2)).unwrap();
    let fifo = dir.path().join("fifo");
    assert!(other("mkfifo").arg(&fifo).status().unwrap().success());
    let record = dir.path().join("progress");
    let mut child = KillOnDrop(
        std_tool(["cat", "--progress"])
            .arg(&small)
            .arg(&fifo)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&record).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    // The bar is drawn while the FIFO is still open.
    let drawn = crate::util::eventually(Duration::from_secs(10), || {
        std::fs::read(&record).is_ok_and(|r| !r.is_empty())
    });
    assert!(drawn, "a forced bar is drawn");
    writer.write_all(b"0123456789").unwrap();
    drop(writer);
    let status = crate::util::wait_timeout(&mut child.0, Duration::from_secs(10));
    assert!(status.success());
    let text = String::from_utf8_lossy(&std::fs::read(&record).unwrap()).into_owned();
    for rate in rates(&text) {
        assert!(rate <= 10.0, "rate {rate} B/s in {text:?}");
    }
}

#[test]
fn what_cat_wrote_into_a_pipe_stays_as_read() {
    // `cat FILE | slow-reader`: once cat has returned, changing FILE in place must not change
    // what the reader gets (splicing the file put its page cache pages into the pipe).
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    // Bigger than the small files gathered into a buffer, and within a 1 MiB pipe.
    let old = random_bytes(1000 << 10, 21);
    std::fs::write(&path, &old).unwrap();
    for opts in [vec![], vec!["--verbose"]] {
        let (read_end, write_end) = rustix::pipe::pipe().unwrap();
        let mut cmd = std_tool(["cat"]);
        cmd.args(&opts)
            .arg(&path)
            .stdout(Stdio::from(write_end))
            .stderr(Stdio::piped());
        let out = output_timeout(cmd.spawn().unwrap(), Duration::from_secs(20));
        assert!(out.status.success(), "{out:?}");
        drop(cmd);
        // cat has exited; nothing has read the pipe yet. Now the file changes in place.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&vec![b'X'; old.len()], 0).unwrap();
        drop(file);
        let mut got = Vec::new();
        std::fs::File::from(read_end).read_to_end(&mut got).unwrap();
        assert!(
            got == old,
            "{opts:?}: the reader saw the file's later contents ({} of {} bytes differ); {}",
            got.iter().zip(&old).filter(|(a, b)| a != b).count(),
            old.len(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&path, &old).unwrap();
    }
}

#[test]
fn gnulib_9_1_restart_forms_are_allowed_for_names_starting_with_an_escape() {
    // The names the property test above found differing: an escape, an apostrophe, an
    // escape. GNU 9.1 prints '\001'\'''$'\001' for the first; ours reads back as the name.
    let dir = tempfile::tempdir().unwrap();
    for name in [&b"\x01'\x01"[..], b"\x01a'\x01", b"a\x01'\x01"] {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(name);
        let gnu = as_ours(&gnu_missing_message(dir.path(), name));
        let ours = our_missing_message(dir.path(), name);
        assert!(
            same_as_gnu(&ours, &gnu),
            "{name:?}:\n gnu: {gnu}ours: {ours}"
        );
    }
}

/// Whether our message is GNU's, allowing for the older gnulib's form of the same quoting.
fn same_as_gnu(ours: &str, gnu: &str) -> bool {
    // coreutils 9.1's gnulib, for a name with an apostrophe that ends in an escape,
    // quotes it a second time starting as if a $'...' were open: it adds an empty ''
    // after the opening quote (same name when read back by a shell) or, when the name
    // starts with an escape, leaves out the '$' that opens it (a form a shell reads back
    // as another name). Later gnulib fixed it; we print the later form.
    ours == gnu
        || ours.replacen("cat: '", "cat: '''", 1) == gnu
        || ours.replacen("cat: ''$'", "cat: '", 1) == gnu
}

/// A file of known size read slowly (its reader takes 64 KiB every 40 ms): the bar on the
/// terminal shows the percentage and the time left at the current rate, as pv does.
#[test]
fn progress_for_a_file_of_known_size_shows_percent_and_time_left() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::write(&src, random_bytes(8 << 20, 20)).unwrap();
    let term = pty();
    let mut cmd = std_tool(["cat", "--progress"]);
    cmd.arg(&src)
        .stdout(Stdio::piped())
        .stderr(term.slave.try_clone().unwrap())
        .env("TERM", "xterm");
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    drop(term.slave);
    let mut stdout = child.0.stdout.take().unwrap();
    let slow = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let pace = std::sync::Arc::clone(&slow);
    let reader = std::thread::spawn(move || {
        let (mut buf, mut total) = (vec![0u8; 64 << 10], 0);
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
            if pace.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(40));
            }
        }
    });
    let (seen, screen) = read_until(term.master, b"ETA 0:00:", Duration::from_secs(20));
    slow.store(false, std::sync::atomic::Ordering::Relaxed);
    let status = crate::util::wait_timeout(&mut child.0, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    assert_eq!(reader.join().unwrap(), 8 << 20, "stdout carries data only");
    let screen = String::from_utf8_lossy(&screen);
    assert!(seen, "no time left on the bar: {screen:?}");
    let last = screen
        .rsplit("\r\x1b[2K")
        .find(|s| s.contains("ETA"))
        .unwrap();
    assert!(
        last.contains("% ") && last.contains(" / 8 MiB") && last.contains("/s  ETA 0:00:"),
        "percent, size, rate and time left: {last:?}"
    );
}
