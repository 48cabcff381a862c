//! Regressions found reviewing issue 14 ("Trust"): each test fails on the merged main.

use crate::util::tool;

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

/// Item 23: the `[-e ]` defect fixed for cat's synopsis is still in echo-client's as `[-N ]`.
#[test]
fn echo_client_man_synopsis_has_no_empty_flag_bracket() {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man/asyncio-tool-echo-client.1"),
    )
    .expect("man page");
    let synopsis = page
        .split(".SH SYNOPSIS\n")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .expect("a SYNOPSIS line");
    assert!(!synopsis.contains(" \\fR]"), "`[-N ]` in: {synopsis}");
}

/// Item 2 / "a run that lost data never exits 0": the bound address is the server's one line of
/// output (scripts read it). When it cannot be written the server says nothing and exits 0.
#[test]
fn echo_server_reports_an_address_it_could_not_write() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut cmd = crate::util::std_tool(["echo-server", "127.0.0.1:0"]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(full)
        .stderr(std::fs::File::create(&log).unwrap());
    let child = crate::util::KillOnDrop(cmd.spawn().unwrap());
    let started = crate::util::eventually(Duration::from_secs(30), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("listening on"))
    });
    assert!(started, "the server did not start");
    crate::util::signal(&child.0, libc::SIGTERM);
    let mut child = child;
    let status = crate::util::wait_timeout(&mut child.0, Duration::from_secs(30));
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(
        err.contains("standard output") || !status.success(),
        "address lost silently: {status}, stderr: {err:?}"
    );
}

/// Items 2 and 22: `completions bash >&-` exits 0 with the script thrown away (Rust reopened
/// fd 1 on /dev/null), while `--help >&-` already fails with "Bad file descriptor".
#[test]
fn completions_with_stdout_closed_fails() {
    use std::os::unix::process::CommandExt;
    let mut cmd = crate::util::std_tool(["completions", "bash"]);
    cmd.stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: close(2) on fd 1 between fork and exec touches no memory; `completions bash >&-`.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(1);
            Ok(())
        });
    }
    let out = crate::util::output_timeout(cmd.spawn().unwrap(), std::time::Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err:?}");
    assert!(err.contains("Bad file descriptor"), "stderr: {err:?}");
}
