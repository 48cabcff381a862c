//! The measure modes' interval series and histogram outputs (issue 19): `--report-every`,
//! `--json-lines`, `--warmup`, `--hdr-log` (read back by Python's `hdrh`, HdrHistogram's own
//! port), `--percentiles` (wrk2's .hgrm) and `--rate`'s uncorrected figures; over TCP, a Unix
//! socket, UDP and TLS.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::util::{EchoServer, assert_no_panic, output_timeout, peer_present, std_tool};

/// Bound for anything that should take well under a second.
const PROMPT: Duration = Duration::from_secs(10);
/// Bound for a run of a few seconds (debug build, busy machine).
const RUN: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
enum Net {
    Tcp,
    Unix,
    Udp,
    Tls,
}

/// Our echo server on `net`, and the address the client takes for it.
fn our_server(net: Net, dir: &Path) -> (EchoServer, String) {
    let listen = match net {
        Net::Tcp => "127.0.0.1:0".to_owned(),
        Net::Unix => format!("unix:{}", dir.join("echo.sock").display()),
        Net::Udp => "udp:127.0.0.1:0".to_owned(),
        Net::Tls => "tls:127.0.0.1:0".to_owned(),
    };
    let mut server = EchoServer::launch(std_tool(["echo-server", "-q", &listen]));
    let addr = server.await_line(PROMPT).to_owned();
    (server, addr)
}

/// `echo-client ARGS` (with `--insecure` for a `tls:` address), no stdin.
fn client(args: &[&str]) -> Output {
    let tls = args.iter().any(|a| a.starts_with("tls:"));
    let insecure = tls.then_some("--insecure");
    let child = std_tool(
        std::iter::once("echo-client")
            .chain(insecure)
            .chain(args.iter().copied()),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let out = output_timeout(child, RUN);
    assert_no_panic(&out.stderr);
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing: {v}"))
}

/// `--json-lines`' stdout: the interval objects, then the summary.
fn json_lines(out: &Output) -> (Vec<serde_json::Value>, serde_json::Value) {
    let stdout = text(&out.stdout);
    let mut all: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{stdout}")))
        .collect();
    let summary = all.pop().unwrap_or_else(|| panic!("no output: {stdout}"));
    assert!(
        summary["mode"].is_string(),
        "the summary comes last: {stdout}"
    );
    for i in &all {
        assert_eq!(i["type"], "interval", "{i}");
    }
    (all, summary)
}

/// The intervals after the warmup add up to the summary, count by count.
fn assert_intervals_add_up(intervals: &[serde_json::Value], summary: &serde_json::Value) {
    let measured: Vec<&serde_json::Value> =
        intervals.iter().filter(|i| i["warmup"] == false).collect();
    for key in ["sent", "received", "lost", "mismatched"] {
        let sum: f64 = measured.iter().map(|i| num(i, key)).sum();
        assert_eq!(sum, num(summary, key), "{key}: {intervals:?}\n{summary}");
    }
    // In order, each ending where the next starts.
    for w in intervals.windows(2) {
        assert!(
            (num(&w[0], "end_s") - num(&w[1], "start_s")).abs() < 1e-6,
            "{w:?}"
        );
    }
}

/// What Python's hdrh reads in an --hdr-log file: every interval's count, and the merged
/// histogram's count, p50, p90, p99 and max (its top and its bucket's bottom), in µs.
const READ_LOG: &str = r#"
import json, sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
reader = HistogramLogReader(sys.argv[1], HdrHistogram(1, 3600 * 1000 * 1000, 3))
total = HdrHistogram(1, 3600 * 1000 * 1000, 3)
intervals = []
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    intervals.append(h.get_total_count())
    total.add(h)
top = total.get_max_value()
# Interval_Max is each histogram's max in milliseconds (unit ratio 1000 over microseconds), as
# HistogramLogWriter writes it: "%.3f" of max / ratio.
max_columns_ok = all(
    "%.3f" % (HdrHistogram.decode(f[3]).get_max_value() / 1000.0) == f[2]
    for f in (l.rstrip("\n").split(",") for l in open(sys.argv[1]))
    if len(f) == 4 and f[0][:1] not in ('#', chr(34))
)
print(json.dumps({
    "max_columns_ok": max_columns_ok,
    "intervals": intervals, "count": total.get_total_count(),
    "p50": total.get_value_at_percentile(50), "p90": total.get_value_at_percentile(90),
    "p99": total.get_value_at_percentile(99), "max": top,
    "max_bottom": total.get_lowest_equivalent_value(top), "start": reader.get_start_time_sec(),
}))
"#;

/// Python's reading of `log`, or `None` where python3 or its hdrh package is missing (a
/// failure under CI, which installs them).
fn python_reads(log: &Path) -> Option<serde_json::Value> {
    let found = std::process::Command::new("python3")
        .args(["-c", "import hdrh.log"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !peer_present("python3 with hdrh (pip install hdrhistogram)", found) {
        return None;
    }
    let out = std::process::Command::new("python3")
        .args(["-c", READ_LOG])
        .arg(log)
        .output()
        .unwrap();
    assert!(out.status.success(), "python: {}", text(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// The log Python read holds exactly the summary's round trips: the same count, the same
/// p50/p90/p99 (ours are never beyond the exact min and max, so Python's are taken within
/// them), and a max in the same histogram bucket as our exact one.
fn assert_log_is_the_summary(py: &serde_json::Value, summary: &serde_json::Value, what: &str) {
    assert_eq!(
        num(py, "count"),
        num(summary, "received"),
        "{what}: {py}\n{summary}"
    );
    assert_eq!(py["max_columns_ok"], true, "{what}: Interval_Max: {py}");
    let rtt = &summary["rtt_ms"];
    let (min_us, max_us) = (num(rtt, "min") * 1e3, num(rtt, "max") * 1e3);
    for p in ["p50", "p90", "p99"] {
        let theirs = num(py, p).clamp(min_us, max_us);
        let ours = num(rtt, p) * 1e3;
        assert!((theirs - ours).abs() < 1e-6, "{what} {p}: {py}\n{summary}");
    }
    // Whole microseconds in the histogram: the exact max lies in the bucket of its top.
    assert!(
        num(py, "max_bottom") <= max_us && max_us < num(py, "max") + 1.0,
        "{what} max: {py}\n{summary}"
    );
}

/// The data rows of a .hgrm spectrum (value in ms, percentile, total count), checked to be
/// laid out exactly as wrk2 prints them (HdrHistogram C's `%12s %12s %12s %12s` header, then
/// `%12.3f %12f %12d %12.2f` rows, the last one's 1/(1-Percentile) `inf`).
fn hgrm_rows(hgrm: &str) -> Vec<(f64, f64, u64)> {
    let mut lines = hgrm.lines();
    assert_eq!(
        lines.next(),
        Some("       Value   Percentile   TotalCount 1/(1-Percentile)"),
        "{hgrm}"
    );
    assert_eq!(lines.next(), Some(""), "{hgrm}");
    let (mut rows, mut inverses, mut footer) = (Vec::new(), Vec::new(), Vec::new());
    for line in lines {
        if line.starts_with("#[") {
            footer.push(line);
            continue;
        }
        assert!(footer.is_empty(), "a row after the footer: {hgrm}");
        // Four right-aligned columns of 12, one space apart.
        assert_eq!(line.len(), 51, "{line:?}\n{hgrm}");
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 4, "{line}");
        let (value, percentile) = (f[0], f[1]);
        assert_eq!(
            value.split_once('.').map(|(_, d)| d.len()),
            Some(3),
            "{line}"
        );
        assert_eq!(
            percentile.split_once('.').map(|(_, d)| d.len()),
            Some(6),
            "{line}"
        );
        rows.push((
            value.parse().unwrap(),
            percentile.parse().unwrap(),
            f[2].parse().unwrap(),
        ));
        inverses.push(f[3].to_owned());
    }
    // Every 1/(1-Percentile) a number but the last row's, C's printf of 1/0.
    assert_eq!(inverses.last().map(String::as_str), Some("inf"), "{hgrm}");
    let finite = &inverses[..inverses.len() - 1];
    assert!(
        finite
            .iter()
            .all(|i| i.parse::<f64>().is_ok_and(f64::is_finite)),
        "{hgrm}"
    );
    assert_eq!(footer.len(), 3, "{hgrm}");
    assert!(footer[0].starts_with("#[Mean    = ") && footer[0].contains(", StdDeviation   = "));
    assert!(footer[1].starts_with("#[Max     = ") && footer[1].contains(", Total count    = "));
    assert!(footer[2].starts_with("#[Buckets = ") && footer[2].contains(", SubBuckets     = "));
    assert!(
        rows.windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1 && w[0].2 <= w[1].2),
        "values, percentiles and counts never go down: {hgrm}"
    );
    let last = rows.last().unwrap_or_else(|| panic!("no rows: {hgrm}"));
    assert_eq!(last.1, 1.0, "{hgrm}");
    rows
}

/// Every option at once over every transport: the intervals add up to the summary, the
/// warmup's are marked and left out, Python's hdrh reads the log as our summary, the
/// percentile file ends at the summary's count.
#[test]
fn the_series_over_every_transport() {
    for net in [Net::Tcp, Net::Unix, Net::Udp, Net::Tls] {
        let dir = tempfile::tempdir().unwrap();
        let (server, addr) = our_server(net, dir.path());
        let log = dir.path().join("run.hlog");
        let hgrm = dir.path().join("run.hgrm");
        let out = client(&[
            "--connections",
            "2",
            "--duration",
            "1s",
            "--warmup",
            "400ms",
            "--report-every",
            "200ms",
            "--json-lines",
            "--hdr-log",
            log.to_str().unwrap(),
            "--percentiles",
            hgrm.to_str().unwrap(),
            &addr,
        ]);
        assert!(out.status.success(), "{net:?}: {}", text(&out.stderr));
        let (intervals, summary) = json_lines(&out);
        let what = format!("{net:?}");
        assert_intervals_add_up(&intervals, &summary);
        let warm = intervals.iter().filter(|i| i["warmup"] == true).count();
        let measured = intervals.len() - warm;
        assert_eq!(warm, 2, "{what}: {intervals:?}");
        assert_eq!(measured, 5, "{what}: {intervals:?}");
        assert!(num(&summary, "received") > 0.0, "{what}: {summary}");
        // The options in effect say how the series was made.
        let o = &summary["run"]["options"];
        assert_eq!(
            (num(o, "report_every_s"), num(o, "warmup_s")),
            (0.2, 0.4),
            "{o}"
        );
        assert_eq!(o["json_lines"], true, "{o}");
        assert_eq!(o["hdr_log"], log.to_str().unwrap(), "{o}");
        assert_eq!(o["percentiles"], hgrm.to_str().unwrap(), "{o}");
        // --json-lines: no interval lines on stderr.
        assert!(
            !text(&out.stderr).contains(" msgs/s "),
            "{}",
            text(&out.stderr)
        );
        let rows = hgrm_rows(&std::fs::read_to_string(&hgrm).unwrap());
        assert_eq!(
            rows.last().unwrap().2 as f64,
            num(&summary, "received"),
            "{what}"
        );
        if let Some(py) = python_reads(&log) {
            assert_log_is_the_summary(&py, &summary, &what);
            assert_eq!(py["intervals"].as_array().unwrap().len(), 5, "{what}: {py}");
        }
        drop(server);
    }
}

/// `--report-every 200ms` over a 1 s run: five lines on stderr as iperf3 -i prints them,
/// then the text report, whose counts the lines add up to.
#[test]
fn report_every_prints_a_line_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = our_server(Net::Tcp, dir.path());
    let out = client(&[
        "--connections",
        "2",
        "--duration",
        "1s",
        "--report-every",
        "0.2",
        &addr,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains(" msgs/s ")).collect();
    assert_eq!(lines.len(), 5, "{err}");
    let mut received = 0.0;
    for (i, line) in lines.iter().enumerate() {
        // `  0.20-0.40   s  41234 msgs/s  2.64 MB/s  p50 0.081  p99 0.240  max 1.203 ms  errors 0`
        let f: Vec<&str> = line.split_whitespace().collect();
        let (start, end) = f[0].split_once('-').unwrap();
        let start: f64 = start.parse().unwrap();
        assert!((start - 0.2 * i as f64).abs() < 1e-9, "{line}");
        let length = end.parse::<f64>().unwrap() - start;
        let words = (f[1], f[3], f[5], f[6], f[8], f[10], f[12], f[13], f[14]);
        let want = (
            "s", "msgs/s", "MB/s", "p50", "p99", "max", "ms", "errors", "0",
        );
        assert_eq!(words, want, "{line}");
        received += f[2].parse::<f64>().unwrap() * length;
    }
    let stdout = text(&out.stdout);
    let report: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("messages: "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|r| r.strip_suffix(" received"))
        .unwrap_or_else(|| panic!("{stdout}"))
        .parse()
        .unwrap();
    // Rates and times are rounded in the lines (the JSON objects add up exactly).
    assert!(
        (received - report).abs() <= report * 0.01,
        "{received} vs {report}: {err}\n{stdout}"
    );
    drop(server);
}

/// `--warmup` is run but counted nowhere: at --rate 200 for 1 s after a 1 s warmup, about
/// 200 messages are reported, not 400, and the log holds those only.
#[test]
fn warmup_is_left_out_of_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = our_server(Net::Tcp, dir.path());
    let log = dir.path().join("warm.hlog");
    let out = client(&[
        "--connections",
        "2",
        "--rate",
        "200",
        "--duration",
        "1s",
        "--warmup",
        "1s",
        "--json-lines",
        "--hdr-log",
        log.to_str().unwrap(),
        &addr,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (intervals, summary) = json_lines(&out);
    assert_intervals_add_up(&intervals, &summary);
    let received = num(&summary, "received");
    assert!((185.0..=215.0).contains(&received), "{summary}");
    assert_eq!(num(&summary, "sent"), received, "{summary}");
    assert!((num(&summary, "duration_s") - 1.0).abs() < 0.2, "{summary}");
    assert!(
        (num(&summary, "msgs_per_s") - 200.0).abs() < 25.0,
        "{summary}"
    );
    // The warmup's interval was run: about 200 replies, marked, in no other figure.
    let warm: Vec<&serde_json::Value> = intervals.iter().filter(|i| i["warmup"] == true).collect();
    assert_eq!(warm.len(), 1, "{intervals:?}");
    assert!(
        (185.0..=215.0).contains(&num(warm[0], "received")),
        "{intervals:?}"
    );
    assert_eq!((num(warm[0], "start_s"), num(warm[0], "end_s")), (0.0, 1.0));
    if let Some(py) = python_reads(&log) {
        assert_log_is_the_summary(&py, &summary, "warmup");
        assert_eq!(py["intervals"].as_array().unwrap().len(), 1, "{py}");
    }
    // In text, the warmup's line is marked as iperf3 -O marks its omitted ones.
    let out = client(&[
        "--connections",
        "1",
        "--duration",
        "300ms",
        "--warmup",
        "200ms",
        "--report-every",
        "100ms",
        &addr,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("after a 200ms warmup"), "{err}");
    let marked = err.lines().filter(|l| l.ends_with("  (warmup)")).count();
    assert_eq!(marked, 2, "{err}");
    drop(server);
}

/// A server that echoes 64-byte messages, and stalls once for `ms` before its 20th echo.
fn stalls_once(ms: u64) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let stalled = Arc::new(AtomicBool::new(false));
    thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let stalled = Arc::clone(&stalled);
            thread::spawn(move || {
                let mut msg = [0u8; 64];
                for n in 0u64.. {
                    if c.read_exact(&mut msg).is_err() {
                        return;
                    }
                    if n == 19 && !stalled.swap(true, Ordering::Relaxed) {
                        thread::sleep(Duration::from_millis(ms));
                    }
                    if c.write_all(&msg).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// `--rate` against a server that stalls once: the corrected figures (from the intended send
/// times) show the backlog the stall left, the uncorrected ones (from the actual sends, as
/// wrk2 -U) hide it: corrected >= uncorrected, far above at p90.
#[test]
fn rate_reports_the_uncorrected_figures_beside_the_corrected() {
    let addr = stalls_once(400);
    let args = [
        "--connections",
        "1",
        "--rate",
        "100",
        "--duration",
        "1500ms",
    ];
    let out = client(&[&args[..], &["--json", &addr]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (c, u) = (&v["rtt_ms"], &v["rtt_uncorrected_ms"]);
    for p in ["min", "avg", "p50", "p90", "p99", "p99_9", "max"] {
        assert!(num(c, p) >= num(u, p), "{p}: {v}");
    }
    // The ~40 messages the stall held back waited up to 400 ms behind the schedule, but
    // went out back to back once it ended.
    assert!(num(c, "p90") >= 100.0, "{v}");
    assert!(num(u, "p90") < 50.0, "{v}");
    assert!(
        num(c, "max") >= 350.0 && num(u, "max") >= 350.0,
        "the stalled one: {v}"
    );
    // In text, beside each other.
    let out = client(&[&args[..], &[&addr]].concat());
    let stdout = text(&out.stdout);
    // Each line says which figures it holds, as wrk2 -U heads them.
    let said = |head: &str, tail: &str| {
        stdout
            .lines()
            .any(|l| l.starts_with(head) && l.ends_with(tail))
    };
    assert!(
        said(
            "latency p50/p90/p99/p99.9/max = ",
            " ms (corrected: from the scheduled send)"
        ),
        "{stdout}"
    );
    assert!(
        said(
            "uncorrected p50/p90/p99/p99.9/max = ",
            " ms (uncorrected: from the actual send)"
        ),
        "{stdout}"
    );
    // Without --rate there is no schedule to be late for.
    let dir = tempfile::tempdir().unwrap();
    let (server, ours) = our_server(Net::Tcp, dir.path());
    let out = client(&["--connections", "1", "--duration", "200ms", "--json", &ours]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["rtt_uncorrected_ms"].is_null(), "{v}");
    let out = client(&["--connections", "1", "--duration", "200ms", &ours]);
    assert!(
        !text(&out.stdout).contains("uncorrected"),
        "{}",
        text(&out.stdout)
    );
    drop(server);
}

/// A histogram of a wide range, one 500 ms stall among replies of tens of microseconds: the
/// log Python reads, the JSON and the wrk2 spectrum agree on it, from the fast replies' p50
/// to the stall at the top.
#[test]
fn a_stall_among_fast_replies_reads_the_same_everywhere() {
    let addr = stalls_once(500);
    let dir = tempfile::tempdir().unwrap();
    let (log, hgrm) = (dir.path().join("stall.hlog"), dir.path().join("stall.hgrm"));
    let out = client(&[
        "--connections",
        "1",
        "--duration",
        "1500ms",
        "--report-every",
        "250ms",
        "--json",
        "--hdr-log",
        log.to_str().unwrap(),
        "--percentiles",
        hgrm.to_str().unwrap(),
        &addr,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rtt = &v["rtt_ms"];
    assert!(num(rtt, "max") >= 500.0 && num(rtt, "p50") < 5.0, "{v}");
    let rows = hgrm_rows(&std::fs::read_to_string(&hgrm).unwrap());
    let last = rows.last().unwrap();
    assert_eq!(last.2 as f64, num(&v, "received"), "{rows:?}");
    // The top row is the stall's bucket: its top, within 0.1% of the exact max.
    assert!(
        last.0 >= num(rtt, "max") - 0.001 && last.0 <= num(rtt, "max") * 1.001,
        "{rows:?} {v}"
    );
    if let Some(py) = python_reads(&log) {
        assert_log_is_the_summary(&py, &v, "stall");
        assert_eq!(py["intervals"].as_array().unwrap().len(), 6, "{py}");
    }
}

/// `--percentiles FILE` is wrk2's spectrum (Python's hdrh reads the same figures from the
/// log of the same run); `-` prints it after the text report.
#[test]
fn percentiles_are_wrk2s_spectrum() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = our_server(Net::Tcp, dir.path());
    let hgrm = dir.path().join("p.hgrm");
    let out = client(&[
        "--connections",
        "2",
        "--duration",
        "500ms",
        "--json",
        "--percentiles",
        hgrm.to_str().unwrap(),
        &addr,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let spectrum = std::fs::read_to_string(&hgrm).unwrap();
    let rows = hgrm_rows(&spectrum);
    assert_eq!(rows.last().unwrap().2 as f64, num(&v, "received"));
    let footer = format!("Total count    = {:>12}]", num(&v, "received"));
    assert!(spectrum.contains(&footer), "{spectrum}");
    // At the 50th percentile row, the summary's p50 (both HdrHistogram's, in ms).
    let p50 = rows.iter().find(|r| r.1 >= 0.5).unwrap();
    assert!(
        (p50.0 - num(&v["rtt_ms"], "p50")).abs() < 0.0015,
        "{p50:?} {v}"
    );
    let out = client(&[
        "--connections",
        "1",
        "--duration",
        "300ms",
        "--percentiles",
        "-",
        &addr,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let (report, spectrum) = stdout.split_once("errors: none\n").unwrap();
    assert!(report.contains("load statistics"), "{stdout}");
    hgrm_rows(spectrum);
    drop(server);
}

/// A file that cannot be created fails the run before it starts (no LOAD line), naming the
/// option, the file (quoted) and the reason; stdout-bound choices that clash with the JSON,
/// and intervals too short to mean anything, are usage errors.
#[test]
fn bad_files_and_values_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = our_server(Net::Tcp, dir.path());
    let missing = dir.path().join("no such dir").join("run.hlog");
    let out = client(&[
        "--connections",
        "1",
        "--hdr-log",
        missing.to_str().unwrap(),
        &addr,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let quoted = format!(
        "--hdr-log '{}': cannot create it: No such file or directory",
        missing.display()
    );
    assert!(err.contains(&quoted), "{err}");
    assert!(!err.contains("LOAD"), "the run started: {err}");
    let out = client(&[
        "--connections",
        "1",
        "--percentiles",
        dir.path().to_str().unwrap(),
        &addr,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Is a directory"),
        "{}",
        text(&out.stderr)
    );
    for (args, says) in [
        (&["--hdr-log", "-"][..], "give a file name"),
        (&["--percentiles", "-", "--json"], "stdout carries the JSON"),
        (
            &["--percentiles", "-", "--json-lines"],
            "stdout carries the JSON",
        ),
        (&["--report-every", "50ms"], "at least 100ms"),
        (&["--warmup", "-1s"], "negative"),
        (&["--hdr-log", "x", "--percentiles", "x"], "the same file"),
    ] {
        let out = client(&[&["--connections", "1"][..], args, &[&addr]].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // A file that takes nothing (a full disk) ends the run with exit 1, naming it.
    for option in ["--hdr-log", "--percentiles"] {
        let args = [
            "--connections",
            "1",
            "--duration",
            "200ms",
            option,
            "/dev/full",
            &addr,
        ];
        let out = client(&args);
        assert_eq!(out.status.code(), Some(1), "{option}");
        let says = format!("{option} /dev/full: cannot write: No space left on device");
        assert!(text(&out.stderr).contains(&says), "{}", text(&out.stderr));
    }
    // One file under two names is refused too, before the run: two writers would garble it.
    let log = dir.path().join("one.hlog");
    std::os::unix::fs::symlink(&log, dir.path().join("link.hgrm")).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let dotted = format!("{}/sub/../one.hlog", dir.path().display());
    let linked = dir.path().join("link.hgrm");
    for other in [dotted.as_str(), linked.to_str().unwrap()] {
        let hdr = ["--hdr-log", log.to_str().unwrap(), "--percentiles", other];
        let out = client(&[&["--connections", "1"][..], &hdr, &[&addr]].concat());
        assert_eq!(out.status.code(), Some(1), "{other}");
        let err = text(&out.stderr);
        assert!(err.contains("are the same file"), "{other}: {err}");
        assert!(err.contains(other), "{err}");
        assert!(!err.contains("LOAD"), "the run started: {err}");
    }
    // They belong to the measure modes.
    let out = client(&["--report-every", "1s", &addr]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    drop(server);
}

/// The intervals after a probe's warmup add up to its summary: sent, received, mismatched;
/// and lost, less the late replies (counted where they came, their loss where it was
/// declared).
fn assert_probe_intervals_add_up(intervals: &[serde_json::Value], summary: &serde_json::Value) {
    let measured: Vec<&serde_json::Value> =
        intervals.iter().filter(|i| i["warmup"] == false).collect();
    let sum = |key: &str| measured.iter().map(|i| num(i, key)).sum::<f64>();
    for key in ["sent", "received", "mismatched", "duplicates"] {
        assert_eq!(
            sum(key),
            num(summary, key),
            "{key}: {intervals:?}\n{summary}"
        );
    }
    assert_eq!(
        sum("lost") - sum("late"),
        num(summary, "lost"),
        "{intervals:?}\n{summary}"
    );
    for w in intervals.windows(2) {
        assert!(
            (num(&w[0], "end_s") - num(&w[1], "start_s")).abs() < 1e-6,
            "{w:?}"
        );
    }
}

/// Probe mode's series over every transport: --count counts the probes after the warmup,
/// whose own are marked and left out; the intervals add up to the summary; Python's hdrh
/// reads the log as the summary; the spectrum ends at the count.
#[test]
fn the_probe_series_over_every_transport() {
    for net in [Net::Tcp, Net::Unix, Net::Udp, Net::Tls] {
        let dir = tempfile::tempdir().unwrap();
        let (server, addr) = our_server(net, dir.path());
        let log = dir.path().join("probe.hlog");
        let hgrm = dir.path().join("probe.hgrm");
        let out = client(&[
            "-c",
            "12",
            "-i",
            "50ms",
            "--warmup",
            "200ms",
            "--report-every",
            "200ms",
            "--json-lines",
            "--hdr-log",
            log.to_str().unwrap(),
            "--percentiles",
            hgrm.to_str().unwrap(),
            &addr,
        ]);
        let what = format!("{net:?}");
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        let (intervals, summary) = json_lines(&out);
        assert_eq!(summary["mode"], "probe");
        assert_eq!(
            (num(&summary, "sent"), num(&summary, "received")),
            (12.0, 12.0)
        );
        assert_probe_intervals_add_up(&intervals, &summary);
        // The warmup's 4 probes (every 50ms for 200ms): run, marked, counted nowhere else. A
        // busy machine's late tick shifts the schedule (ping's way), leaving fewer.
        let warm: Vec<&serde_json::Value> =
            intervals.iter().filter(|i| i["warmup"] == true).collect();
        assert_eq!(warm.len(), 1, "{what}: {intervals:?}");
        assert!(
            (1.0..=5.0).contains(&num(warm[0], "sent")),
            "{what}: {intervals:?}"
        );
        // 12 probes 50ms apart: 550ms of sending, in 3 intervals of 200ms (the last takes
        // the last replies).
        assert_eq!(intervals.len() - warm.len(), 3, "{what}: {intervals:?}");
        // The probes' lines are on stderr with --json-lines, the warmup's marked.
        let err = text(&out.stderr);
        let marked = err.lines().filter(|l| l.ends_with(" (warmup)")).count();
        assert_eq!(marked as f64, num(warm[0], "received"), "{what}: {err}");
        let rows = hgrm_rows(&std::fs::read_to_string(&hgrm).unwrap());
        assert_eq!(rows.last().unwrap().2, 12, "{what}");
        if let Some(py) = python_reads(&log) {
            assert_log_is_the_summary(&py, &summary, &what);
            assert_eq!(py["intervals"].as_array().unwrap().len(), 3, "{what}: {py}");
        }
        drop(server);
    }
}

/// Answers the first 3 messages of each connection, then reads and answers nothing.
fn answers_three_then_nothing(listener: TcpListener) {
    thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut msg = [0u8; 64];
                for _ in 0..3 {
                    if c.read_exact(&mut msg).is_err() || c.write_all(&msg).is_err() {
                        return;
                    }
                }
                let mut sink = [0u8; 4096];
                while matches!(c.read(&mut sink), Ok(1..)) {}
            });
        }
    });
}

/// The probe's interval lines on stderr say what each interval lost (ping's figure, where
/// load's say errors), and they add up to the summary.
#[test]
fn probe_lines_per_interval_count_the_losses() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    answers_three_then_nothing(l);
    let out = client(&[
        "-c",
        "6",
        "-i",
        "0.1",
        "-W",
        "0.15",
        "--report-every",
        "0.2",
        "--summary-only",
        &addr,
    ]);
    // Three probes lost: exit 1, with the summary.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains(" msgs/s ")).collect();
    assert!((2..=4).contains(&lines.len()), "{err}");
    let lost: u64 = lines
        .iter()
        .map(|l| {
            let tail = l.split("  lost ").nth(1).unwrap_or_else(|| panic!("{l}"));
            tail.split_whitespace()
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(lost, 3, "{err}");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("6 sent, 3 received, 3 lost"), "{stdout}");
}

/// One histogram everywhere: `report` over two runs' --json results and over their
/// --hdr-log files (one run with a warmup, left out of both) gives the same merged round
/// trips, count for count and percentile for percentile.
#[test]
fn report_of_the_logs_is_report_of_the_json() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = our_server(Net::Tcp, dir.path());
    let mut jsons = Vec::new();
    let mut logs = Vec::new();
    for (i, warmup) in [(1, None), (2, Some("300ms"))] {
        let log = dir.path().join(format!("{i}.hlog"));
        let mut args = vec!["--connections", "2", "--duration", "600ms", "--json"];
        args.extend(warmup.map(|w| ["--warmup", w]).iter().flatten());
        let log_arg = log.to_str().unwrap().to_owned();
        let out = client(&[&args[..], &["--hdr-log", &log_arg, &addr]].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        let json = dir.path().join(format!("{i}.json"));
        std::fs::write(&json, &out.stdout).unwrap();
        jsons.push(json.to_str().unwrap().to_owned());
        logs.push(log_arg);
    }
    let report = |args: Vec<&str>| {
        let child = std_tool(std::iter::once("report").chain(args))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = output_timeout(child, RUN);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["groups"][0]["total"]["rtt_us"].clone()
    };
    let from_json = report(vec!["--json", &jsons[0], &jsons[1]]);
    let from_logs = report(vec!["--json", "--hdr-log", &logs[0], "--hdr-log", &logs[1]]);
    assert!(num(&from_json, "count") > 0.0, "{from_json}");
    assert_eq!(from_json, from_logs);
    drop(server);
}

/// `echo-client ARGS`, interrupted (SIGINT, as Ctrl-C) once its first stdout line is out: its
/// exit status, every stdout line, and its stderr.
fn interrupted_after_first_line(args: &[&str]) -> (std::process::ExitStatus, Vec<String>, String) {
    use std::io::BufRead;
    let mut child = std_tool(std::iter::once("echo-client").chain(args.iter().copied()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded by the run's own end: the runs here last a few seconds at most.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    crate::util::signal(&child, libc::SIGINT);
    let mut lines: Vec<String> = vec![first.trim_end().to_owned()];
    lines.extend(stdout.lines().map(Result::unwrap));
    let status = crate::util::wait_timeout(&mut child, RUN);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_no_panic(err.as_bytes());
    (status, lines, err)
}

/// Ctrl-C under `--json-lines` ends the stream with the summary, `interrupted: true`; during
/// the warmup nothing was measured, which is no success and says so.
#[test]
fn json_lines_under_ctrl_c_end_with_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = our_server(Net::Tcp, dir.path());
    let common = [
        "--connections",
        "1",
        "--report-every",
        "100ms",
        "--json-lines",
    ];
    let (status, lines, err) =
        interrupted_after_first_line(&[&common[..], &["--duration", "5s", &addr]].concat());
    assert_eq!(status.code(), Some(0), "{err}\n{lines:?}");
    let summary: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(summary["type"], "summary", "{lines:?}");
    assert_eq!(summary["interrupted"], true, "{summary}");
    assert!(num(&summary, "received") > 0.0, "{summary}");
    for l in &lines[..lines.len() - 1] {
        let i: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(
            (&i["type"], &i["warmup"]),
            (&"interval".into(), &false.into()),
            "{l}"
        );
    }
    // Interrupted in the warmup: its intervals came out, the summary holds nothing, exit 1.
    // The probe's --count, too, is the measured part after the warmup.
    let load = [
        "--connections",
        "1",
        "--duration",
        "5s",
        "--warmup",
        "5s",
        &addr,
    ];
    let probe = [
        "--count",
        "5",
        "--interval",
        "50ms",
        "--warmup",
        "5s",
        &addr,
    ];
    for mode in [&load[..], &probe[..]] {
        let args = [&["--report-every", "100ms", "--json-lines"][..], mode].concat();
        let (status, lines, err) = interrupted_after_first_line(&args);
        assert_eq!(status.code(), Some(1), "{err}\n{lines:?}");
        let summary: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
        assert_eq!(summary["type"], "summary", "{lines:?}");
        assert_eq!(summary["interrupted"], true, "{summary}");
        let counts = (num(&summary, "sent"), num(&summary, "received"));
        assert_eq!(counts, (0.0, 0.0), "{summary}");
        assert_eq!(summary["ok"], false, "{summary}");
        let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(first["warmup"], true, "{lines:?}");
        assert!(num(&first, "sent") > 0.0, "the warmup ran: {lines:?}");
        assert!(
            err.contains("ended during the 5s warmup: nothing was measured"),
            "{err}"
        );
    }
    drop(server);
}

/// `--json-lines | head -1`: the reader has what it wanted; the run ends quietly, exit 0, as
/// when stdout closes under any report.
#[test]
fn json_lines_into_head_exits_quietly() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = our_server(Net::Tcp, dir.path());
    let args = [
        "--connections",
        "1",
        "--duration",
        "5s",
        "--report-every",
        "100ms",
    ];
    let mut child = std_tool(
        ["echo-client", "--json-lines"]
            .into_iter()
            .chain(args)
            .chain([addr.as_str()]),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone: the next interval's line meets a closed pipe.
    let started = std::time::Instant::now();
    let status = crate::util::wait_timeout(&mut child, RUN);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_no_panic(err.as_bytes());
    assert!(first.contains(r#""type":"interval""#), "{first}");
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(err.lines().count(), 1, "only the LOAD line: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "it ran on: {err}"
    );
    drop(server);
}

/// A log whose reader goes away mid-run (a FIFO read for its header only): the run goes on,
/// says so at once, prints its summary, and exits 1 for the lost lines.
#[test]
fn a_log_that_fails_mid_run_keeps_the_summary() {
    use std::io::BufRead;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = our_server(Net::Tcp, dir.path());
    let fifo = dir.path().join("log.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        thread::spawn(move || {
            let mut log = std::io::BufReader::new(std::fs::File::open(fifo).unwrap());
            let mut first = String::new();
            log.read_line(&mut first).unwrap();
            first
        })
    };
    let out = client(&[
        "--connections",
        "1",
        "--duration",
        "1s",
        "--report-every",
        "200ms",
        "--json",
        "--hdr-log",
        fifo.to_str().unwrap(),
        &addr,
    ]);
    // A reader still blocked in its open (the client never opened the FIFO) is let go.
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo);
    let first = reader.join().unwrap();
    assert!(
        first.starts_with("#[asyncio-tool "),
        "{first:?}: {}",
        text(&out.stderr)
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(num(&v, "received") > 0.0, "{v}");
    assert!(
        (num(&v, "duration_s") - 1.0).abs() < 0.2,
        "the run went on: {v}"
    );
    let says = format!("--hdr-log {}: cannot write: Broken pipe", fifo.display());
    assert!(
        err.contains(&format!("{says}; the run goes on without it")),
        "{err}"
    );
    assert!(err.trim_end().ends_with(&says), "the last word: {err}");
    drop(server);
}

/// A server that takes connections and answers nothing: the intervals still come out, one a
/// period as the run goes, empty, and the loss lands in the last one when declared.
#[test]
fn a_stalled_server_still_gets_its_intervals() {
    use std::io::BufRead;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let held: Vec<_> = l.incoming().take(4).collect();
        thread::sleep(RUN);
        drop(held);
    });
    let args = [
        "--duration",
        "500ms",
        "--report-every",
        "100ms",
        "--timeout",
        "1s",
    ];
    let mut child = std_tool(
        ["echo-client", "--connections", "1", "--json-lines"]
            .into_iter()
            .chain(args)
            .chain([addr.as_str()]),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        seen.push((started.elapsed(), line.unwrap()));
    }
    let status = crate::util::wait_timeout(&mut child, RUN);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_no_panic(err.as_bytes());
    assert_eq!(status.code(), Some(1), "the message was lost: {err}");
    let (summary, intervals) = seen.split_last().unwrap();
    let v: Vec<serde_json::Value> = intervals
        .iter()
        .map(|(_, l)| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), 5, "{seen:?}");
    for i in &v[..4] {
        assert_eq!((num(i, "received"), num(i, "lost")), (0.0, 0.0), "{i}");
        assert!(i["rtt_ms"].is_null(), "{i}");
    }
    assert_eq!(
        num(&v[4], "lost"),
        1.0,
        "declared at 1s, in the last: {seen:?}"
    );
    // As the run went: the first empty interval long before the loss ended the run.
    let (first_at, end_at) = (seen[0].0, summary.0);
    assert!(end_at - first_at >= Duration::from_millis(500), "{seen:?}");
    assert!(summary.1.contains(r#""type":"summary""#), "{seen:?}");
}
