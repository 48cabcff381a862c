//! A failing stderr never kills the program: a message that cannot be written is dropped, the
//! work goes on, and the exit status follows the usual rules (issue "Trust", item 5).

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use crate::util::*;

/// A pipe as two files (std's `io::pipe` needs Rust 1.87; rust-version is 1.85).
fn pipe() -> (std::fs::File, std::fs::File) {
    let (r, w) = rustix::pipe::pipe().unwrap();
    (r.into(), w.into())
}

/// `cat --verbose` with its messages going to a full device: the data is still copied in full
/// and the exit status still says a file was missing, with no abort.
#[test]
fn cat_with_stderr_on_a_full_device_copies_and_reports_by_status() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::write(&a, b"first\n").unwrap();
    let missing = dir.path().join("missing");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = std_tool([
        "cat".as_ref(),
        "--verbose".as_ref(),
        a.as_os_str(),
        missing.as_os_str(),
        a.as_os_str(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(full)
    .spawn()
    .unwrap();
    let out = output_timeout(out, COMMAND_TIMEOUT);
    assert_eq!(out.stdout, b"first\nfirst\n");
    assert_eq!(out.status.code(), Some(1), "a missing file is exit 1");
}

/// Every kind of message with stderr closed by its reader: `cat --verbose` logs, an error, and
/// `--progress`. Nothing aborts (exit 134) or dies by a signal.
#[test]
fn cat_with_stderr_closed_by_its_reader_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::write(&a, vec![b'x'; 3 << 20]).unwrap();
    let (reader, writer) = pipe();
    drop(reader);
    let child = std_tool([
        "cat".as_ref(),
        "--verbose".as_ref(),
        "--progress".as_ref(),
        a.as_os_str(),
        dir.path().join("missing").as_os_str(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(writer)
    .spawn()
    .unwrap();
    let out = output_timeout(child, COMMAND_TIMEOUT);
    assert_eq!(out.stdout.len(), 3 << 20);
    assert_eq!(out.status.code(), Some(1), "status: {:?}", out.status);
}

/// `echo-client -v` with a closed stderr still delivers every reply and exits 0.
#[test]
fn echo_client_with_stderr_closed_by_its_reader_delivers_everything() {
    let server = std_tool(["echo-server", "--no-status", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = KillOnDrop(server);
    let (ready, line) = read_until(
        server.0.stdout.take().unwrap(),
        b"\n",
        Duration::from_secs(20),
    );
    assert!(ready, "no address line");
    let addr = String::from_utf8(line).unwrap().trim().to_owned();

    let (reader, writer) = pipe();
    drop(reader);
    let data = random_bytes(1 << 20, 5);
    let mut client = std_tool(["echo-client", "-v", "--progress", &addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(writer)
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let feeder = {
        let data = data.clone();
        std::thread::spawn(move || stdin.write_all(&data))
    };
    let out = output_timeout(client, COMMAND_TIMEOUT);
    feeder.join().unwrap().unwrap();
    assert_eq!(out.status.code(), Some(0), "status: {:?}", out.status);
    assert!(out.stdout == data, "replies differ from the input");
}
