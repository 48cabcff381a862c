//! The shared command line and error layer: help, version, usage errors, one-line errors.

use crate::util::{assert_no_panic, tool};

#[test]
fn help_lists_the_four_subcommands() {
    let out = tool(["--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in ["cat", "echo-server", "echo-client", "completions"] {
        assert!(help.contains(sub), "--help lacks {sub}: {help}");
    }
    assert!(help.contains("Examples:"), "long help has examples");
}

#[test]
fn version_prints_name_and_version() {
    let out = tool(["--version"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("asyncio-tool {}", env!("CARGO_PKG_VERSION"))
    );
    let out = tool(["-V"]).output().unwrap();
    assert!(out.status.success());
}

#[test]
fn no_subcommand_is_a_usage_error() {
    tool(Vec::<&str>::new()).assert().code(2);
}

#[test]
fn unknown_flag_exits_2() {
    let out = tool(["--frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let out = tool(["cat", "--frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_addr_exits_2_with_clap_message() {
    for args in [
        ["echo-server", "1.2.3.4"],
        ["echo-server", "::1:80"],
        ["echo-client", "host:99999"],
        ["echo-client", "--connect-timeout"],
    ] {
        let out = tool(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error:"), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn bad_duration_exits_2() {
    let out = tool(["echo-client", "--wait", "soon", "127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("soon"));
}

#[test]
fn global_options_before_or_after_the_subcommand() {
    tool(["--color", "never", "-q", "completions", "bash"])
        .assert()
        .success();
    tool(["completions", "bash", "--color", "never", "-q"])
        .assert()
        .success();
    tool(["completions", "bash", "--color", "sometimes"])
        .assert()
        .code(2);
}

#[test]
fn runtime_error_is_one_plain_line_naming_its_object() {
    let out = tool(["cat", "/nonexistent/dir/file"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("asyncio-tool: "), "{err:?}");
    assert!(
        err.contains("/nonexistent/dir/file"),
        "names the path: {err:?}"
    );
    assert!(
        err.contains("No such file or directory"),
        "OS reason: {err:?}"
    );
    assert!(!err.contains("os error"), "no Rust error codes: {err:?}");
    assert!(
        !err.contains('\x1b'),
        "no ANSI codes when stderr is a pipe: {err:?}"
    );
    assert_no_panic(&out.stderr);
}

#[test]
fn color_always_colours_the_error_and_never_does_not() {
    let out = tool(["--color", "always", "cat", "/nonexistent"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains('\x1b'));
    let out = tool(["--color", "never", "cat", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\x1b'));
}

#[test]
fn completions_bash_passes_bash_n() {
    let out = tool(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    assert!(!out.stdout.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("asyncio-tool.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let check = crate::util::other("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use crate::util::{KillOnDrop, output_timeout, pty, read_until, std_tool};

fn stderr_of(args: &[&str]) -> (Option<i32>, String) {
    let out = tool(args).output().unwrap();
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A DURATION under 1ms (zero included) is a usage error that says what is accepted, for
/// `option` of `sub`: one rule for every duration option. A negative one reaches the same
/// parser (not clap's "unexpected argument '-1'") and says it cannot be negative.
fn zero_duration_is_rejected(sub: &str, option: &str) {
    // A free port for the server, should a regression make it run.
    let addr = if sub == "echo-server" {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:9"
    };
    let (code, err) = stderr_of(&[sub, option, "-1s", addr]);
    assert_eq!(code, Some(2), "{sub} {option} -1s: {err}");
    assert!(
        err.contains("'-1s': a duration cannot be negative"),
        "{sub} {option} -1s: {err}"
    );
    for zero in ["0s", "0ms", "0", "1ns", "1us", "999us"] {
        let (code, err) = stderr_of(&[sub, option, zero, addr]);
        assert_eq!(code, Some(2), "{sub} {option} {zero}: {err}");
        assert!(
            err.contains(&format!(
                "'{zero}': a duration must be at least 1ms (e.g. 500ms, 30s, 5m)"
            )),
            "{sub} {option} {zero}: {err}"
        );
    }
}

#[test]
fn zero_server_idle_timeout_is_a_usage_error() {
    zero_duration_is_rejected("echo-server", "--idle-timeout");
}

#[test]
fn zero_shutdown_timeout_is_a_usage_error() {
    zero_duration_is_rejected("echo-server", "--shutdown-timeout");
}

#[test]
fn zero_connect_timeout_is_a_usage_error() {
    zero_duration_is_rejected("echo-client", "--connect-timeout");
}

#[test]
fn zero_wait_is_a_usage_error() {
    zero_duration_is_rejected("echo-client", "--wait");
}

#[test]
fn zero_client_idle_timeout_is_a_usage_error() {
    zero_duration_is_rejected("echo-client", "--idle-timeout");
}

#[test]
fn zero_probe_interval_probe_and_load_timeout_and_load_duration_are_usage_errors() {
    for option in [
        "--interval",
        "--timeout",
        "--duration",
        "--deadline",
        "--report-every",
        "--warmup",
    ] {
        zero_duration_is_rejected("echo-client", option);
    }
}

#[test]
fn every_duration_option_is_covered_by_a_zero_test() {
    let mut command = asyncio_tool::cli::command();
    command.build();
    let mut found = Vec::new();
    for sub in command.get_subcommands() {
        for arg in sub.get_arguments() {
            if arg
                .get_value_names()
                .is_some_and(|v| v.iter().any(|n| n == "DURATION"))
            {
                found.push(format!("{} --{}", sub.get_name(), arg.get_long().unwrap()));
            }
        }
    }
    found.sort();
    assert_eq!(
        found,
        [
            "echo-client --connect-timeout",
            "echo-client --deadline",
            "echo-client --duration",
            "echo-client --idle-timeout",
            "echo-client --interval",
            "echo-client --report-every",
            "echo-client --timeout",
            "echo-client --wait",
            "echo-client --warmup",
            "echo-server --idle-timeout",
            "echo-server --shutdown-timeout",
        ],
        "a new DURATION option needs its zero test above"
    );
}

#[test]
fn usage_errors_speak_the_users_words() {
    let cases: [(&[&str], &str); 10] = [
        (
            &["echo-server", "--max-connections", "0"],
            "'0': must be at least 1",
        ),
        (
            &["echo-server", "--max-connections", "99999999999999999999"],
            "'99999999999999999999': too large (at most 18446744073709551615)",
        ),
        (
            &["echo-client", "--wait", "101y"],
            "'101y': too long: at most 100 years (e.g. 500ms, 30s, 5m)",
        ),
        (
            &["echo-client", "http://example.com:80"],
            "a URL is not an address; expected PORT, HOST:PORT, [IPV6]:PORT, unix:PATH, unix:@NAME or udp:HOST:PORT",
        ),
        (
            &["echo-client", "SCTP:127.0.0.1:7101"],
            "unknown scheme 'SCTP:'; expected PORT, HOST:PORT, [IPV6]:PORT, unix:PATH, unix:@NAME or udp:HOST:PORT",
        ),
        (&["echo-server", "unix:"], "the socket path is missing"),
        (
            &["echo-client", "-U", "tcp:127.0.0.1:7101"],
            "-U/--unix takes a socket path",
        ),
        (&["echo-client", "::1:80"], "an IPv6 address needs brackets"),
        (
            &["echo-client", "--wait", "soon"],
            "a number followed by a unit",
        ),
        (
            &["echo-client", "--wait", "5 parsecs"],
            "unknown unit 'parsecs'",
        ),
    ];
    for (args, want) in cases {
        let (code, err) = stderr_of(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
        for internal in [
            "non-zero type",
            "expected number at",
            "needs brackets, as in [::1]:8080\n",
        ] {
            assert!(
                !err.contains(internal),
                "{args:?}: clap/parser words: {err}"
            );
        }
    }
    let (_, err) = stderr_of(&["echo-client", "TCP:127.0.0.1:7101"]);
    assert!(!err.contains("brackets"), "not an IPv6 problem: {err}");
}

/// Runs the binary with stderr on a fresh terminal and returns what the terminal showed.
fn stderr_on_a_terminal(args: &[&str]) -> Vec<u8> {
    let term = pty();
    let mut cmd = std_tool(args);
    cmd.env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(term.slave.try_clone().unwrap());
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    drop(term.slave);
    let status = crate::util::wait_timeout(&mut child.0, Duration::from_secs(60));
    assert_eq!(status.code(), Some(2), "{args:?}");
    let (_, seen) = read_until(term.master, b"--help", Duration::from_secs(10));
    seen
}

#[test]
fn color_never_uncolours_usage_errors_on_a_terminal() {
    let auto = stderr_on_a_terminal(&["cat", "--frobnicate"]);
    assert!(
        auto.contains(&0x1b),
        "control: a terminal gets colour by default: {:?}",
        String::from_utf8_lossy(&auto)
    );
    for args in [
        &["--color", "never", "cat", "--frobnicate"][..],
        &["cat", "--frobnicate", "--color=never"],
        &["--col", "never", "echo-server", "--max-connections", "0"],
    ] {
        let never = stderr_on_a_terminal(args);
        let text = String::from_utf8_lossy(&never);
        assert!(text.contains("error:"), "{args:?}: {text}");
        assert!(!never.contains(&0x1b), "{args:?}: coloured: {text:?}");
    }
}

/// A port nothing listens on: bound, then closed.
fn refused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn rust_backtrace_does_not_lengthen_errors_only_our_variable_does() {
    let addr = format!("127.0.0.1:{}", refused_port());
    let run = |vars: &[(&str, &str)]| {
        let mut cmd = tool(["echo-client", addr.as_str()]);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{vars:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let plain = run(&[("RUST_BACKTRACE", "1"), ("RUST_LIB_BACKTRACE", "1")]);
    assert_eq!(plain.lines().count(), 1, "one line: {plain:?}");
    assert!(
        plain.starts_with("asyncio-tool: cannot connect to"),
        "{plain:?}"
    );
    assert!(plain.contains("Connection refused"), "{plain:?}");
    let full = run(&[("ASYNCIO_TOOL_BACKTRACE", "1")]);
    assert!(full.lines().count() > 2, "the full report: {full:?}");
    assert!(full.contains("Connection refused"), "{full:?}");
    assert!(
        full.contains("Location"),
        "says where it was raised: {full:?}"
    );
}

/// Item 14's cost: under RUST_BACKTRACE=1 an ordinary error must capture no backtrace (it
/// never shows one, and symbolizing reads the binary's debug info: ~600 ms in a debug build).
/// Capturing shows as the executable opening itself; strace sees it.
#[test]
fn rust_backtrace_captures_no_backtrace_for_an_ordinary_error() {
    if !crate::util::peer_available("strace") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("openat");
    let bin = crate::util::bin();
    let child = std::process::Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=openat", "-o"])
        .arg(&log)
        .arg(&bin)
        .args(["echo-client", &format!("127.0.0.1:{}", refused_port())])
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1")
        .env_remove("ASYNCIO_TOOL_BACKTRACE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = crate::util::output_timeout(child, std::time::Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    let opens = std::fs::read_to_string(&log).unwrap();
    let bin = bin.canonicalize().unwrap_or(bin);
    let own = format!("\"{}\"", bin.display());
    assert!(
        !opens
            .lines()
            .any(|l| l.contains(&own) || l.contains("/proc/self/exe")),
        "the binary read itself, as a backtrace capture does:\n{opens}"
    );
}

#[test]
fn help_documents_the_backtrace_variable_and_the_duration_rule() {
    let out = tool(["--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("ASYNCIO_TOOL_BACKTRACE=1"), "{help}");
    let words = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(
            "is plain seconds, as sleep and nc -w take them (5, 0.2), or a number and a unit"
        ),
        "{help}"
    );
    assert!(words.contains("at least 1ms"), "{help}");
    assert!(
        !help.contains("> addr &"),
        "the racy example is gone: {help}"
    );
}

#[test]
fn scoped_ipv6_server_and_client_on_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("note: no IPv6 loopback here; skipping the scoped-address test");
        return;
    }
    let mut server = KillOnDrop(
        std_tool(["echo-server", "-q", "[::1%lo]:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = server.0.stdout.take().unwrap();
    let (ok, line) = read_until(stdout, b"\n", Duration::from_secs(30));
    assert!(ok, "the server printed its address");
    let addr = String::from_utf8(line).unwrap().trim().to_owned();
    assert!(addr.starts_with("[::1"), "{addr}");
    // The kernel drops a scope it does not need (::1 is not link-local), so the address
    // printed may lack it; the client is given one by number and by name (getaddrinfo would
    // refuse the name on a non-link-local address, so a literal must not go through it).
    let port = addr.rsplit_once(':').unwrap().1;
    // SAFETY: a NUL-terminated literal.
    let lo = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
    assert!(lo > 0, "lo has an index");
    for target in [
        format!("[::1%{lo}]:{port}"),
        format!("[::1%lo]:{port}"),
        addr.clone(),
    ] {
        let mut client = std_tool(["echo-client", target.as_str()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = client.stdin.take().unwrap();
            stdin.write_all(b"scoped\n").unwrap();
        }
        let out = output_timeout(client, Duration::from_secs(30));
        assert!(
            out.status.success(),
            "{target}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"scoped\n", "{target}");
    }
}

#[test]
fn a_scope_naming_no_interface_is_a_usage_error() {
    for args in [
        ["echo-server", "[fe80::1%nosuchif0]:0"],
        ["echo-client", "[fe80::1%nosuchif0]:7"],
    ] {
        let (code, err) = stderr_of(&args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(err.contains("no such network interface"), "{args:?}: {err}");
    }
}

/// GNU cat's reading of a long-option abbreviation: accepted (its output) or ambiguous (the
/// candidates it lists, sorted).
fn gnu_cat_reading(option: &str, file: &std::path::Path) -> Result<Vec<u8>, Vec<String>> {
    let out = crate::util::other("cat")
        .arg(option)
        .arg(file)
        .output()
        .unwrap();
    if out.status.success() {
        return Ok(out.stdout);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is ambiguous"), "GNU cat {option}: {err}");
    Err(candidates(&err))
}

fn candidates(err: &str) -> Vec<String> {
    let list = err.split("possibilities:").nth(1).unwrap_or("");
    let mut words: Vec<String> = list
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '\'' || c == '`').to_owned())
        .collect();
    words.sort();
    words
}

#[test]
fn cat_takes_long_option_prefixes_as_gnu_cat_does() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "a\tb\n\n\n\nc\x01\n").unwrap();
    for option in [
        "--squeeze",
        "--show-n",
        "--show-t",
        "--show-e",
        "--show-a",
        "--number-n",
        "--numb",
        "--show",
        "--num",
        "--s",
    ] {
        let gnu = gnu_cat_reading(option, &file);
        let ours = tool(["cat", option]).arg(&file).output().unwrap();
        match gnu {
            Ok(want) => {
                assert!(ours.status.success(), "{option}: {ours:?}");
                assert_eq!(ours.stdout, want, "{option}: output as GNU's");
            }
            Err(want) => {
                let err = String::from_utf8_lossy(&ours.stderr);
                assert_eq!(ours.status.code(), Some(2), "{option}: {err}");
                assert!(
                    err.contains(&format!("option '{option}' is ambiguous")),
                    "{err}"
                );
                // Ours also offers its own long options (--progress, --quiet, ...).
                let ours = candidates(&err);
                for candidate in &want {
                    assert!(ours.contains(candidate), "{option}: {candidate} in {err}");
                }
            }
        }
    }
}

/// Runs the binary with the given stdout and stderr (piped ones are collected), bounded.
fn run_into(args: &[&str], stdout: Stdio, stderr: Stdio) -> std::process::Output {
    let child = std_tool(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap();
    output_timeout(child, Duration::from_secs(60))
}

fn dev_full() -> Option<std::fs::File> {
    match std::fs::OpenOptions::new().write(true).open("/dev/full") {
        Ok(f) => Some(f),
        Err(e) => {
            eprintln!("note: no /dev/full ({e}); skipping");
            None
        }
    }
}

#[test]
fn help_and_version_into_a_full_device_fail_with_a_message() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["--version"],
        &["cat", "--help"],
        &["echo-client", "--help"],
    ] {
        let Some(full) = dev_full() else { return };
        let out = run_into(args, full.into(), Stdio::piped());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(
            err.trim_end(),
            "asyncio-tool: write error: No space left on device",
            "{args:?}"
        );
    }
    let out = run_into(&["--help"], Stdio::null(), Stdio::piped());
    assert_eq!(
        out.status.code(),
        Some(0),
        "control: /dev/null takes the help"
    );
}

#[test]
fn a_usage_error_into_a_full_stderr_exits_1() {
    let Some(full) = dev_full() else { return };
    let out = run_into(&["--frobnicate"], Stdio::null(), full.into());
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn help_into_a_pipe_whose_reader_left_is_a_quiet_success() {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two ints; both ends are owned below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (read, write) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    drop(read);
    let out = run_into(&["--help"], write.into(), Stdio::piped());
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn readme_coproc_snippet_runs_as_written() {
    let readme = crate::util::readme();
    let marker = "<!-- tested: tests/cli.rs readme_coproc_snippet_runs_as_written -->";
    let (snippet, _) = crate::util::readme_block(&readme, marker, "bash");
    let dir = tempfile::tempdir().unwrap();
    let path = crate::util::path_with_bin(dir.path());
    for _ in 0..3 {
        let out_dir = tempfile::tempdir().unwrap();
        let (stdout, stderr) = (out_dir.path().join("out"), out_dir.path().join("err"));
        // Its own process group, and files rather than pipes: whatever the snippet leaves
        // running cannot hold the test, and is found and killed below.
        let mut child = KillOnDrop(
            crate::util::other("bash")
                .arg("-c")
                .arg(snippet)
                .env("PATH", &path)
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&stdout).unwrap())
                .stderr(std::fs::File::create(&stderr).unwrap())
                .spawn()
                .unwrap(),
        );
        let status = crate::util::wait_timeout(&mut child.0, Duration::from_secs(60));
        let group = child.0.id() as i32;
        // SAFETY: kill(2) with signal 0 only asks whether the group still has members.
        let server_gone = crate::util::eventually(Duration::from_secs(30), || unsafe {
            libc::kill(-group, 0) != 0
        });
        if !server_gone {
            // SAFETY: the group is the snippet's own, created for it above.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let err = std::fs::read_to_string(&stderr).unwrap_or_default();
        assert!(status.success(), "{snippet}\n{err}");
        assert_eq!(std::fs::read_to_string(&stdout).unwrap(), "hi\n", "{err}");
        assert!(
            server_gone,
            "the snippet leaves its server running: {snippet}"
        );
    }
}

#[test]
fn help_with_stdout_closed_fails_with_a_message() {
    let mut cmd = std_tool(["--help"]);
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: close(2) on fd 1 between fork and exec touches no memory; `--help >&-`.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(1);
            Ok(())
        });
    }
    let out = output_timeout(cmd.spawn().unwrap(), Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err.trim_end(),
        "asyncio-tool: write error: Bad file descriptor"
    );
}

/// Item 19: a crafted name must not forge an output line. A newline in an address reaches
/// stderr raw in the usage error, so the second line reads like a real runtime error.
#[test]
fn an_address_with_a_newline_cannot_forge_an_error_line() {
    let forged = "asyncio-tool: cannot connect to 10.0.0.1:22: Connection refused";
    for sub in ["echo-client", "echo-server"] {
        let out = tool([sub, &format!("evil\n{forged}\n:80")])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{sub}: a usage error");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.lines().any(|l| l == forged),
            "{sub}: forged line on stderr:\n{stderr}"
        );
    }
}

/// Item 19: an escape sequence in an address reaches the terminal raw when colour is on
/// (`--color always` stands in for a terminal here).
#[test]
fn an_address_with_an_escape_sequence_is_not_sent_raw() {
    let out = tool([
        "--color",
        "always",
        "echo-client",
        "\u{1b}]0;pwned\u{7}evil:80",
    ])
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("\u{1b}]0;pwned"),
        "raw OSC sequence on stderr: {stderr:?}"
    );
}

/// Item 19 in clap's own errors: an unknown option holding a newline is echoed by clap
/// (`unexpected argument '…'`, and again in its tip); the forged second line must not appear.
#[test]
fn an_unknown_option_with_a_newline_cannot_forge_an_error_line() {
    let forged = "asyncio-tool: forged";
    for color in ["never", "always"] {
        let out = tool(["--color", color, "cat", &format!("--x\n{forged}")])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.lines().any(|l| l.starts_with(forged)),
            "forged line on stderr:\n{stderr}"
        );
        assert!(
            stderr.contains("--x'$'\\n''asyncio-tool: forged"),
            "{stderr}"
        );
        if color == "always" {
            assert!(
                stderr.contains("\u{1b}[1m"),
                "clap's colours stay: {stderr:?}"
            );
        }
    }
}

/// Item 19 in the value-validation errors, which show the value twice (clap's part and ours).
/// `--color always` stands in for a terminal: without colour, clap's output stream strips
/// escape sequences itself.
#[test]
fn a_duration_with_an_escape_sequence_is_not_sent_raw() {
    let out = tool([
        "--color",
        "always",
        "echo-client",
        "--wait",
        "\u{1b}]0;x\u{7}5s",
    ])
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("\u{1b}]0;x"),
        "raw escape on stderr: {stderr:?}"
    );
}

/// Item 17 (nc habits): under -6 a bare PORT, and the default ADDR, mean the IPv6 loopback;
/// before, they meant 127.0.0.1 and -6 refused it as "not an IPv6 (-6) address".
#[test]
fn ipv6_flag_makes_a_bare_port_the_ipv6_loopback() {
    for (args, want) in [
        (&["echo-client", "-6", "-v", "9"][..], "[::1]:9"),
        (&["echo-client", "-6", "-v"][..], "[::1]:8080"),
    ] {
        let out = crate::util::std_tool(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("not an IPv6"), "{args:?}: {err}");
        assert!(
            err.contains(&format!("connecting to {want}")),
            "{args:?}: {err}"
        );
    }
}

/// Item 17: nc takes its flags repeated (`-N -N`, `-4 -4`); so must echo-client.
#[test]
fn echo_client_flags_may_be_repeated() {
    let out = crate::util::std_tool(["echo-client", "-N", "-N", "-4", "-4", "-v", "127.0.0.1:9"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("cannot be used multiple times"), "{err}");
    assert_ne!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("connecting to 127.0.0.1:9"), "{err}");
}

/// Usage lines in errors are the fixed ones, not clap's rendering of the options given, which
/// reads as if they were required (`asyncio-tool --color <WHEN> <COMMAND>`).
#[test]
fn usage_lines_in_errors_do_not_list_the_options_given() {
    for (args, want) in [
        (
            &["--color", "never", "--frob"][..],
            "Usage: asyncio-tool [OPTIONS] <COMMAND>\n",
        ),
        (
            &["echo-client", "-4", "-6"][..],
            "Usage: asyncio-tool echo-client [OPTIONS] [ADDR] [PORT]\n",
        ),
        (
            &["echo-server", "--idle-timeout", "5s", "--frob"][..],
            "Usage: asyncio-tool echo-server [OPTIONS] [ADDR] [PORT]\n",
        ),
        (
            &["completions", "-v", "--frob"][..],
            "Usage: asyncio-tool completions [OPTIONS] <SHELL>\n",
        ),
    ] {
        let (code, err) = stderr_of(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// Issue 18 item 23: an address usage error quotes the whole word as typed (prefix, brackets
/// and all, or both words of `HOST PORT`), never only the piece the parser choked on: the old
/// `echo-client 1.2.3.4:` said `'' is not a port number`. The same for the server and the
/// client, over every transport prefix.
#[test]
fn address_usage_errors_name_the_whole_word() {
    let either: [(&str, &str); 10] = [
        ("1.2.3.4:", "'1.2.3.4:': no port after ':'"),
        ("tcp:1.2.3.4:", "'tcp:1.2.3.4:': no port after ':'"),
        ("udp:1.2.3.4:", "'udp:1.2.3.4:': no port after ':'"),
        ("tls:1.2.3.4:", "'tls:1.2.3.4:': no port after ':'"),
        ("[::1]:", "'[::1]:': no port after ':'"),
        ("tls:[::1]:", "'tls:[::1]:': no port after ':'"),
        ("[::1]", "'[::1]': no port after ']', as in [::1]:8080"),
        (
            "1.2.3.4:x",
            "'1.2.3.4:x': 'x' is not a port number (0-65535)",
        ),
        ("udp:", "'udp:': the address is empty; expected PORT"),
        ("tls:unix:", "'tls:unix:': the socket path is missing"),
    ];
    for (word, want) in either {
        for sub in ["echo-server", "echo-client"] {
            let (code, err) = stderr_of(&[sub, word]);
            assert_eq!(code, Some(2), "{sub} {word}: {err}");
            assert!(
                err.starts_with(&format!("error: {want}")),
                "{sub} {word}: want {want:?} in {err}"
            );
        }
    }
    for (args, want) in [
        (
            &["1.2.3.4", "x"][..],
            "'1.2.3.4 x': 'x' is not a port number",
        ),
        (&["1.2.3.4", ""][..], "'1.2.3.4 ': the port is empty"),
        (
            &["[::1]", "0"][..],
            "'[::1] 0': port 0 cannot be connected to",
        ),
        (&["-6", "0"][..], "'0': port 0 cannot be connected to"),
        (&["-u", "1.2.3.4:"][..], "'1.2.3.4:': no port after ':'"),
    ] {
        let all: Vec<&str> = std::iter::once("echo-client")
            .chain(args.iter().copied())
            .collect();
        let (code, err) = stderr_of(&all);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("error: {want}")),
            "{args:?}: want {want:?} in {err}"
        );
    }
}
