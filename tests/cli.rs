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
