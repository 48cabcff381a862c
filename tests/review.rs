//! Regressions found reviewing issue 14 ("Trust"): each test fails on the merged main.

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
