//! One load from many machines (issue 19): `--start-at`, `--label`, `--connect-rate`, the JSON
//! summary's run metadata and histogram, and the `report` subcommand that puts runs together.
//! The independent figures come from Python's `hdrh` (PyPI `hdrhistogram`), HdrHistogram's
//! own Python port: decode, add, get_value_at_percentile.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::util::{
    EchoServer, assert_no_panic, eventually, output_timeout, peer_present, signal, std_tool,
};

/// Bound for anything that should take well under a second.
const PROMPT: Duration = Duration::from_secs(10);
/// Bound for a run of a few seconds (debug build, busy machine).
const RUN: Duration = Duration::from_secs(60);

/// Our echo server on `listen` (a TCP port on loopback unless told), and its address.
fn server(listen: &str) -> (EchoServer, String) {
    let mut server = EchoServer::launch(std_tool(["echo-server", "-q", listen]));
    let addr = server.await_line(PROMPT).to_owned();
    (server, addr)
}

/// Runs the tool with `args` (stdin empty) to its end, at most `limit`.
fn run(args: &[&str], limit: Duration) -> Output {
    let child = std_tool(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_timeout(child, limit);
    assert_no_panic(&out.stderr);
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Seconds since 1970 now, as `date +%s.%N` prints them.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// An RFC 3339 time in seconds since 1970, by Python (an implementation not ours).
fn python_seconds(rfc3339: &str) -> f64 {
    let script = "import sys, datetime\n\
                  t = sys.argv[1].replace('Z', '+00:00')\n\
                  print(datetime.datetime.fromisoformat(t).timestamp())";
    let out = crate::util::other("python3")
        .args(["-c", script, rfc3339])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().parse().unwrap()
}

/// True when python3 with the `hdrh` module is here (CI installs it: .ci/run).
fn hdrh_available() -> bool {
    let found = crate::util::other("python3")
        .args(["-c", "import hdrh.histogram"])
        .output()
        .is_ok_and(|o| o.status.success());
    peer_present("python3 -m hdrh (pip install hdrhistogram)", found)
}

/// Runs a Python script with `hdrh` on `input` (JSON on stdin) and returns its JSON output.
fn python(script: &str, input: &Value) -> Value {
    let mut child = crate::util::other("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = output_timeout(child, RUN);
    assert!(out.status.success(), "python: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Python: merges the base64 histograms given on stdin (a JSON list) and prints the figures
/// HdrHistogram's own rules give: count, p50..p99.99, max, min.
const MERGE_PY: &str = r#"
import json, sys
from hdrh.histogram import HdrHistogram
datas = json.load(sys.stdin)
merged = HdrHistogram(1, 24 * 3600 * 10**6, 3)
each = []
for d in datas:
    h = HdrHistogram.decode(d)
    merged.add(h)
    each.append(h.get_value_at_percentile(99.0))
out = {"count": merged.get_total_count(), "max": merged.get_max_value(),
       "min": merged.get_min_value(), "each_p99": each}
for name, p in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9), ("p99_99", 99.99)]:
    out[name] = merged.get_value_at_percentile(p)
print(json.dumps(out))
"#;

/// `--start-at` more than a second ago is a usage error saying how far in the past; so is a
/// time in milliseconds (far in the future).
#[test]
fn start_at_in_the_past_is_a_usage_error() {
    let past = format!("{:.3}", unix_now() - 90.0);
    let out = run(
        &[
            "echo-client",
            "--count",
            "1",
            "--start-at",
            &past,
            "127.0.0.1:9",
        ],
        PROMPT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("in the past"), "{err}");
    assert!(err.contains("1m 30s") || err.contains("1m 29s"), "{err}");
    let rfc = "2001-02-03T04:05:06Z";
    let out = run(
        &[
            "echo-client",
            "--connections",
            "1",
            "--start-at",
            rfc,
            "127.0.0.1:9",
        ],
        PROMPT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("years"), "{}", text(&out.stderr));
    let millis = format!("{}", (unix_now() * 1000.0) as u64);
    let out = run(
        &[
            "echo-client",
            "--count",
            "1",
            "--start-at",
            &millis,
            "127.0.0.1:9",
        ],
        PROMPT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("milliseconds"),
        "{}",
        text(&out.stderr)
    );
    for bad in ["soon", "2026-13-01T00:00:00Z", "1.2.3"] {
        let out = run(
            &[
                "echo-client",
                "--count",
                "1",
                "--start-at",
                bad,
                "127.0.0.1:9",
            ],
            PROMPT,
        );
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(text(&out.stderr).contains(&format!("'{bad}'")), "{bad}");
    }
}

/// A probe told to start 1.5 s from now sends nothing before then: its `started` is not
/// before that time and the whole run takes at least as long; it says it waits.
#[test]
fn start_at_waits_until_then() {
    let (_server, addr) = server("127.0.0.1:0");
    let at = unix_now() + 1.5;
    let at_text = format!("{at:.3}");
    let begun = Instant::now();
    let out = run(
        &[
            "echo-client",
            "--count",
            "1",
            "--json",
            "--start-at",
            &at_text,
            &addr,
        ],
        RUN,
    );
    let took = begun.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("waiting until"),
        "{}",
        text(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let started = python_seconds(summary["run"]["started"].as_str().unwrap());
    assert!(started >= at - 0.001, "started {started}, asked for {at}");
    assert!(started < at + 5.0, "started {started}, asked for {at}");
    assert!(took >= Duration::from_millis(1300), "took {took:?}");
    assert!(summary["run"]["options"]["start_at"].is_string());
    // The same in RFC 3339, on load mode, quietly.
    let at = SystemTime::now() + Duration::from_millis(1200);
    let rfc = python_rfc3339(at);
    let out = run(
        &[
            "echo-client",
            "-q",
            "--connections",
            "2",
            "--duration",
            "200ms",
            "--json",
            "--start-at",
            &rfc,
            &addr,
        ],
        RUN,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("waiting"),
        "-q: {}",
        text(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let started = python_seconds(summary["run"]["started"].as_str().unwrap());
    let at = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(started >= at - 0.001, "started {started}, asked for {at}");
}

/// `t` as RFC 3339 with microseconds, by Python.
fn python_rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let script = "import sys, datetime\n\
                  t = datetime.datetime.fromtimestamp(float(sys.argv[1]), datetime.timezone.utc)\n\
                  print(t.isoformat().replace('+00:00', 'Z'))";
    let out = crate::util::other("python3")
        .args(["-c", script, &format!("{secs:.6}")])
        .output()
        .unwrap();
    text(&out.stdout).trim().to_owned()
}

/// Ctrl-C while waiting for `--start-at` ends the run at once with 130: nothing was measured.
#[test]
fn ctrl_c_while_waiting_for_start_at_exits_130() {
    let (_server, addr) = server("127.0.0.1:0");
    let at = format!("{:.0}", unix_now() + 60.0);
    let mut child = std_tool(["echo-client", "--count", "1", "--start-at", &at, &addr])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (seen, said) = crate::util::read_until(err, b"waiting until", PROMPT);
    assert!(seen, "{}", text(&said));
    let begun = Instant::now();
    signal(&child, libc::SIGINT);
    let status = crate::util::wait_timeout(&mut child, PROMPT);
    assert_eq!(status.code(), Some(130));
    assert!(begun.elapsed() < Duration::from_secs(5));
}

/// A TCP echo server in the test that notes when it accepts each connection.
fn accept_clock() -> (String, Arc<Mutex<Vec<Instant>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let times = Arc::clone(&accepted);
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            times.lock().unwrap().push(Instant::now());
            thread::spawn(move || {
                let mut read = conn.try_clone().unwrap();
                let _ = std::io::copy(&mut read, &mut conn);
            });
        }
    });
    (addr, accepted)
}

/// `--connect-rate 100 --connections 300` opens the connections over about 3 s, never much
/// more than 100 in any second, and reports their connect times; without it they come in
/// one burst, as before.
#[test]
fn connect_rate_spreads_the_connections() {
    let (addr, accepted) = accept_clock();
    let out = run(
        &[
            "echo-client",
            "--connections",
            "300",
            "--connect-rate",
            "100",
            "--duration",
            "500ms",
            "--json",
            &addr,
        ],
        RUN,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("opening 300 connections at 100 a second"));
    let times = accepted.lock().unwrap().clone();
    assert_eq!(times.len(), 300);
    let spread = times[299] - times[0];
    assert!(
        spread >= Duration::from_millis(2700) && spread <= Duration::from_millis(4500),
        "300 connections at 100/s opened over {spread:?}"
    );
    let most_in_a_second = times
        .iter()
        .map(|&t| {
            times
                .iter()
                .filter(|&&u| u >= t && u - t < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    assert!(
        most_in_a_second <= 115,
        "{most_in_a_second} connections in one second"
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["connections_up"], 300);
    assert!(summary["connect_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert_eq!(summary["run"]["options"]["connect_rate"], 100);
    // All at once without it: the kernel's accept order, well under a second.
    let (addr, accepted) = accept_clock();
    let out = run(
        &[
            "echo-client",
            "--connections",
            "100",
            "--duration",
            "300ms",
            &addr,
        ],
        RUN,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("connect p50/p90/p99/max = "),
        "{}",
        text(&out.stdout)
    );
    let times = accepted.lock().unwrap().clone();
    assert!(times[99] - times[0] < Duration::from_millis(900));
}

/// The JSON summary of either mode, over each transport: "type":"summary", the run's
/// metadata (id, start, version, host, labels, every option in effect), the bytes moved and
/// the whole histogram, which HdrHistogram's Python port decodes to the run's own count.
#[test]
fn json_summary_carries_run_metadata_and_histogram() {
    let dir = tempfile::tempdir().unwrap();
    let unix = format!("unix:{}", dir.path().join("e.sock").display());
    let host = text(&crate::util::other("hostname").output().unwrap().stdout)
        .trim()
        .to_owned();
    let mut ids = Vec::new();
    for listen in [
        "127.0.0.1:0",
        unix.as_str(),
        "udp:127.0.0.1:0",
        "tls:127.0.0.1:0",
    ] {
        let (_server, addr) = server(listen);
        let tls = listen.starts_with("tls:");
        for mode in [
            &["--count", "3", "-i", "0.05"][..],
            &["--connections", "2", "--duration", "300ms"],
        ] {
            let mut args = vec![
                "echo-client",
                "--json",
                "--size",
                "100",
                "--label",
                "test=meta",
                "--label",
                "gen=a b",
            ];
            args.extend_from_slice(mode);
            if tls {
                args.push("--insecure");
            }
            args.push(&addr);
            let out = run(&args, RUN);
            assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
            let s: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(s["type"], "summary");
            let r = &s["run"];
            let id = r["id"].as_str().unwrap();
            assert!(
                id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "{id}"
            );
            ids.push(id.to_owned());
            assert!(python_seconds(r["started"].as_str().unwrap()) > unix_now() - 60.0);
            assert_eq!(r["version"], env!("CARGO_PKG_VERSION"));
            assert_eq!(r["host"], host.as_str());
            assert_eq!(r["labels"], json!({"test": "meta", "gen": "a b"}));
            let o = &r["options"];
            assert_eq!(o["size"], 100);
            assert_eq!(o["target"], addr.trim_start_matches("tls:"));
            let transport = if tls {
                assert_eq!(
                    o["tls"],
                    json!({"trust": "insecure", "servername": null, "client_cert": false})
                );
                "tls"
            } else if addr.starts_with("udp:") {
                "udp"
            } else if addr.starts_with("unix:") {
                "unix"
            } else {
                "tcp"
            };
            assert_eq!(o["transport"], transport);
            assert_eq!(o["mode"], s["mode"]);
            if s["mode"] == "probe" {
                assert_eq!(
                    (o["count"].clone(), o["interval_s"].clone()),
                    (json!(3), json!(0.05))
                );
            } else {
                assert_eq!(
                    (o["connections"].clone(), o["duration_s"].clone()),
                    (json!(2), json!(0.3))
                );
                assert_eq!(o["rate"], Value::Null);
            }
            let (sent, received) = (s["sent"].as_u64().unwrap(), s["received"].as_u64().unwrap());
            assert_eq!(s["bytes_sent"], sent * 100);
            assert_eq!(s["bytes_received"], received * 100);
            let h = &s["histogram"];
            assert_eq!(h["unit"], "us");
            assert_eq!(h["encoding"], "HdrHistogram V2 compressed base64");
            if hdrh_available() {
                let figures = python(MERGE_PY, &json!([h["data"]]));
                assert_eq!(figures["count"], received, "{args:?}");
            }
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8, "run ids repeat");
}

/// A label not KEY=VALUE, or a key given twice, is a usage error naming it.
#[test]
fn bad_labels_are_usage_errors() {
    for (label, says) in [
        ("host", "not KEY=VALUE"),
        ("9x=1", "KEY '9x'"),
        ("=v", "KEY"),
    ] {
        let out = run(
            &[
                "echo-client",
                "--count",
                "1",
                "--label",
                label,
                "127.0.0.1:9",
            ],
            PROMPT,
        );
        assert_eq!(out.status.code(), Some(2), "{label}");
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("'{label}'")) && err.contains(says),
            "{err}"
        );
    }
    let out = run(
        &[
            "echo-client",
            "--count",
            "1",
            "--label",
            "a=1",
            "--label",
            "a=2",
            "127.0.0.1:9",
        ],
        PROMPT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("'--label a' is given twice"),
        "{}",
        text(&out.stderr)
    );
}

/// Three generator processes on loopback against one server, each `--json`: `report` of the
/// three gives the counts summed and the percentiles of one histogram of all their samples,
/// as HdrHistogram's Python port builds it from the runs' histograms.
#[test]
fn merge_is_exact() {
    if !hdrh_available() {
        return;
    }
    let (_server, addr) = server("127.0.0.1:0");
    let dir = tempfile::tempdir().unwrap();
    let at = format!("{:.3}", unix_now() + 2.0);
    let generators: Vec<_> = (1..=3)
        .map(|i| {
            let file = std::fs::File::create(dir.path().join(format!("gen{i}.json"))).unwrap();
            let label = format!("host=gen{i}");
            std_tool([
                "echo-client",
                "--connections",
                "3",
                "--duration",
                "1s",
                "--start-at",
                &at,
                "--label",
                "test=merge",
                "--label",
                &label,
                "--json",
                &addr,
            ])
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    for mut g in generators {
        assert!(crate::util::wait_timeout(&mut g, RUN).success());
    }
    let files: Vec<String> = (1..=3)
        .map(|i| {
            dir.path()
                .join(format!("gen{i}.json"))
                .display()
                .to_string()
        })
        .collect();
    let mut args = vec!["report", "--group-by", "test", "--json"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&args, RUN);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    let total = &groups[0]["total"];
    let runs: Vec<Value> = files
        .iter()
        .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
        .collect();
    let sum = |key: &str| runs.iter().map(|r| r[key].as_u64().unwrap()).sum::<u64>();
    for key in ["sent", "received", "lost", "mismatched"] {
        assert_eq!(total[key], sum(key), "{key}");
    }
    let rates: f64 = runs.iter().map(|r| r["msgs_per_s"].as_f64().unwrap()).sum();
    assert!((total["msgs_per_s"].as_f64().unwrap() - rates).abs() < rates * 1e-3);
    assert_eq!(
        total["overlapping"], true,
        "--start-at made them run together"
    );
    let datas: Vec<Value> = runs
        .iter()
        .map(|r| r["histogram"]["data"].clone())
        .collect();
    let want = python(MERGE_PY, &json!(datas));
    let got = &total["rtt_us"];
    for key in ["count", "p50", "p90", "p99", "p99_9", "p99_99", "max"] {
        assert_eq!(got[key], want[key], "{key}: report {got}, hdrh {want}");
    }
    assert_eq!(want["count"], sum("received"));
    // Each run's row is its own histogram's.
    for (row, run) in groups[0]["runs"].as_array().unwrap().iter().zip(&runs) {
        let own = python(MERGE_PY, &json!([run["histogram"]["data"]]));
        assert_eq!(row["rtt_us"]["p99"], own["p99"]);
        assert_eq!(row["labels"]["host"], run["run"]["labels"]["host"]);
    }
    // The table says the same.
    let mut args = vec!["report", "--group-by", "test"];
    args.extend(files.iter().map(String::as_str));
    let table = text(&run(&args, RUN).stdout);
    let p99_ms = format!("{:.3}", want["p99"].as_f64().unwrap() / 1e3);
    let total_line = table.lines().find(|l| l.starts_with("total ")).unwrap();
    assert!(total_line.contains(&p99_ms), "{table}");
    assert!(
        table.contains("runs: test=merge · load · 3 runs"),
        "{table}"
    );
}

/// A summary as echo-client --json writes one, with `histogram` base64 and the given labels.
fn summary(mode: &str, data: &Value, received: u64, labels: Value) -> Value {
    // Each a run of its own: report refuses one run given twice.
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    json!({
        "type": "summary",
        "run": {"id": id.to_string(), "started": "2026-12-06T17:00:00Z", "version": "0", "host": "h",
                "labels": labels, "options": {}},
        "mode": mode, "server": "127.0.0.1:7", "size": 64,
        "sent": received, "received": received, "lost": 0, "mismatched": 0, "ok": true,
        "duration_s": 10.0,
        "histogram": {"unit": "us", "encoding": "HdrHistogram V2 compressed base64", "data": data},
    })
}

/// Python: three histograms whose p99s average to a value none of the runs' samples nor their
/// merge has: two fast runs and a slow one.
const THREE_PY: &str = r#"
import json, sys
from hdrh.histogram import HdrHistogram
out = []
for fast, slow in [(100, 1), (200, 1), (5000, 20000)]:
    h = HdrHistogram(1, 10**9, 3)
    h.record_value(fast, 990)
    h.record_value(slow, 10)
    out.append(h.encode().decode())
print(json.dumps(out))
"#;

/// Built so that they must differ: the merged p99 is the merged histogram's (HdrHistogram's
/// Python port says which), not the average of the runs' p99s, and report shows the merged one.
#[test]
fn merged_p99_is_not_the_average_of_p99s() {
    if !hdrh_available() {
        return;
    }
    let datas = python(THREE_PY, &json!(null));
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, data) in datas.as_array().unwrap().iter().enumerate() {
        let path = dir.path().join(format!("r{i}.json"));
        let s = summary("load", data, 1000, json!({"gen": i.to_string()}));
        std::fs::write(&path, s.to_string()).unwrap();
        files.push(path.display().to_string());
    }
    let want = python(MERGE_PY, &datas);
    let each: Vec<f64> = want["each_p99"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let average = each.iter().sum::<f64>() / 3.0;
    let merged = want["p99"].as_f64().unwrap();
    assert!(
        (merged - average).abs() > average * 0.1,
        "merged {merged}, average {average}"
    );
    let mut args = vec!["report", "--merge", "--json"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&args, RUN);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let total = &report["groups"][0]["total"];
    assert_eq!(total["rtt_us"]["p99"], want["p99"]);
    assert_eq!(total["rtt_us"]["count"], 3000);
    assert_eq!(total["msgs_per_s"], 300.0);
    // The merged histogram report carries is the one Python merged.
    let again = python(MERGE_PY, &json!([total["histogram"]["data"]]));
    assert_eq!(again["p99"], want["p99"]);
}

/// Runs with other labels stay apart by default; --group-by KEY merges those that differ only
/// in other keys; --merge puts all in one.
#[test]
fn runs_with_other_labels_stay_apart_unless_merged() {
    if !hdrh_available() {
        return;
    }
    let datas = python(THREE_PY, &json!(null));
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let labels = [
        json!({"test": "a", "host": "x"}),
        json!({"test": "a", "host": "y"}),
        json!({"test": "b", "host": "x"}),
    ];
    for (i, labels) in labels.iter().enumerate() {
        let path = dir.path().join(format!("r{i}.json"));
        let s = summary("load", &datas[i], 1000, labels.clone());
        std::fs::write(&path, s.to_string()).unwrap();
        files.push(path.display().to_string());
    }
    let groups = |extra: &[&str]| -> Vec<Value> {
        let mut args = vec!["report", "--json"];
        args.extend_from_slice(extra);
        args.extend(files.iter().map(String::as_str));
        let out = run(&args, RUN);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        report["groups"].as_array().unwrap().clone()
    };
    let apart = groups(&[]);
    assert_eq!(apart.len(), 3);
    let by_test = groups(&["--group-by", "test"]);
    assert_eq!(by_test.len(), 2);
    assert_eq!(by_test[0]["labels"], json!({"test": "a"}));
    assert_eq!(by_test[0]["total"]["received"], 2000);
    assert_eq!(by_test[1]["labels"], json!({"test": "b", "host": "x"}));
    let all = groups(&["--merge"]);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["total"]["received"], 3000);
    assert_eq!(all[0]["total"]["runs"], 3);
}

/// Every input that cannot be used is an error naming the file, quoted, and what is wrong:
/// exit 1; no input at all is a usage error.
#[test]
fn bad_inputs_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let good = json!({"type": "summary", "mode": "load", "sent": 10, "received": 10, "lost": 0,
        "mismatched": 0, "ok": true, "duration_s": 1.0,
        "histogram": {"unit": "us", "encoding": "HdrHistogram V2 compressed base64",
                      "data": "HISTFAAAACV4nJNpmSzMwMDAygABzFCaEURYzzrFYP8BItDNyJXIBQBkPwUf"}});
    let write = |name: &str, v: &Value| std::fs::write(path(name), v.to_string()).unwrap();
    std::fs::write(path("text.json"), "hello\n").unwrap();
    let mut no_hist = good.clone();
    no_hist.as_object_mut().unwrap().remove("histogram");
    write("nohist.json", &no_hist);
    let mut ns = good.clone();
    ns["histogram"]["unit"] = json!("ns");
    write("ns.json", &ns);
    let mut garbled = good.clone();
    garbled["histogram"]["data"] = json!("bm90IGEgaGlzdG9ncmFt");
    write("garbled.json", &garbled);
    write("probe.json", &json!({"type": "summary", "mode": "probe"}));
    // A run that lost messages, its verdict gone: not taken for ok.
    let mut no_ok = good.clone();
    no_ok.as_object_mut().unwrap().remove("ok");
    no_ok["lost"] = json!(5);
    write("nook.json", &no_ok);
    let mut probe = good.clone();
    probe["mode"] = json!("probe");
    write("probe.json", &probe);
    write("load.json", &good);
    write("other.json", &json!({"a": 1}));
    for (files, says) in [
        (
            vec!["missing.json"],
            "cannot read 'DIR/missing.json': No such file or directory",
        ),
        (
            vec!["text.json"],
            "'DIR/text.json' is not JSON: expected value at line 1 column 1",
        ),
        (vec!["other.json"], "'DIR/other.json' holds no run"),
        (
            vec!["nohist.json"],
            "'DIR/nohist.json': the summary has no \"histogram\"",
        ),
        (
            vec!["ns.json"],
            "'DIR/ns.json': the histogram's unit is \"ns\", not \"us\"",
        ),
        (
            vec!["nook.json"],
            "'DIR/nook.json': the summary has no \"ok\" (true or false)",
        ),
        (
            vec!["garbled.json"],
            "'DIR/garbled.json': \"histogram\": not an encoded histogram",
        ),
        (
            vec!["load.json", "probe.json"],
            "'DIR/probe.json' is a probe run and 'DIR/load.json' a load run",
        ),
    ] {
        let mut args = vec!["report".to_owned()];
        args.extend(files.iter().map(|f| path(f)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args, PROMPT);
        let err = text(&out.stderr).replace(&dir.path().display().to_string(), "DIR");
        assert_eq!(out.status.code(), Some(1), "{files:?}: {err}");
        assert!(err.contains(says), "{files:?}: {err}");
        assert!(out.stdout.is_empty(), "{files:?}");
    }
    let out = run(&["report"], PROMPT);
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        &["report", "--merge", "--group-by", "x", &path("load.json")],
        PROMPT,
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        &["report", "--group-by", "not a key", &path("load.json")],
        PROMPT,
    );
    assert_eq!(out.status.code(), Some(2));
}

/// A run that lost messages makes the report exit 1, naming it and why, after the table.
/// Several runs in one JSON-lines stream on stdin are each a run.
#[test]
fn a_run_that_lost_messages_fails_the_report() {
    let hist = json!("HISTFAAAACV4nJNpmSzMwMDAygABzFCaEURYzzrFYP8BItDNyJXIBQBkPwUf");
    let fine = summary("load", &hist, 10, json!({}));
    let mut lost = fine.clone();
    lost["run"]["id"] = json!("another run");
    lost["lost"] = json!(2);
    lost["sent"] = json!(12);
    lost["ok"] = json!(false);
    let interval = json!({"type": "interval", "mode": "load"});
    let lines = format!("{interval}\n{fine}\n{interval}\n{lost}\n");
    let mut cmd = std_tool(["report", "-"]);
    cmd.stderr(Stdio::piped()).stdout(Stdio::piped());
    let out = crate::util::output_with_input(cmd, lines.as_bytes(), PROMPT);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("-:2 "), "{table}");
    assert!(table.contains("-:4 "), "{table}");
    let total = table.lines().find(|l| l.starts_with("total")).unwrap();
    assert!(total.contains(" 22 ") && total.ends_with("NO"), "{table}");
    let err = text(&out.stderr);
    assert!(
        err.contains("1 of 2 runs were not ok: '-:4' (2 of 12 messages lost)"),
        "{err}"
    );
}

/// An HdrHistogram interval log (as HdrHistogram's Python port writes one) is one run: its
/// intervals summed, its count the samples, its percentiles the merged histogram's.
#[test]
fn hdr_log_files_are_read() {
    if !hdrh_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.hlog");
    let script = r##"
import json, sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogWriter
out = open(sys.argv[1], "w")
# hdrh's output_start_time fails (it takes milliseconds as seconds): the line as Java writes it.
out.write("#[Histogram log format version 1.3]\n")
out.write("#[StartTime: 1796576400.000 (seconds since epoch), Sun Dec 06 17:00:00 UTC 2026]\n")
w = HistogramLogWriter(out)
w.output_base_time(1796576400000)
w.base_time = 1796576400000
w.output_legend()
datas = []
for i in range(3):
    h = HdrHistogram(1, 10**9, 3)
    h.record_value(100 + i * 1000, 100)
    h.set_start_time_stamp(1796576400000 + i * 1000)
    h.set_end_time_stamp(1796576401000 + i * 1000)
    w.output_interval_histogram(h)
    datas.append(h.encode().decode())
out.close()
print(json.dumps(datas))
"##;
    let out = crate::util::other("python3")
        .args(["-c", script, &log.display().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let datas: Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = python(MERGE_PY, &datas);
    let out = run(
        &["report", "--json", "--hdr-log", &log.display().to_string()],
        PROMPT,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &report["groups"][0]["runs"][0];
    assert_eq!(row["received"], 300);
    assert_eq!(row["sent"], Value::Null);
    assert_eq!(row["rtt_us"]["p50"], want["p50"]);
    assert_eq!(row["duration_s"], 3.0);
    assert_eq!(row["msgs_per_s"], 100.0);
    assert_eq!(row["started"], "2026-12-06T17:00:00Z");
    std::fs::write(
        dir.path().join("bad.hlog"),
        "#[StartTime: 1 (x)]\n1.0,2.0\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.hlog").display().to_string();
    let out = run(&["report", "--hdr-log", &bad], PROMPT);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("bad.hlog' line 2: not an interval line"),
        "{}",
        text(&out.stderr)
    );
}

/// The README's recipe, its variant on one machine, run as written: GNU parallel starts three
/// generators that begin together, then report puts their results together.
#[test]
fn readme_local_recipe_runs_as_written() {
    if !crate::util::peer_available("parallel") {
        return;
    }
    let readme = crate::util::readme();
    let marker = "<!-- tests/report.rs: readme_local_recipe_runs_as_written -->";
    let (block, _) = crate::util::readme_block(&readme, marker, "sh");
    let dir = tempfile::tempdir().unwrap();
    // The binary under test as the recipe names it.
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let path = crate::util::path_with_bin(&bin_dir);
    // GNU parallel's citation notice goes once per home: a home of its own, told it was seen.
    std::fs::create_dir_all(dir.path().join(".parallel")).unwrap();
    std::fs::write(dir.path().join(".parallel/will-cite"), "").unwrap();
    // The harness's own line first: a recipe that fails half-way must not leave its server
    // holding the output pipe open.
    let script = format!("trap 'kill \"${{COPROC_PID:-}}\" 2>/dev/null || true' EXIT\n{block}");
    let child = crate::util::other("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_timeout(child, RUN);
    let table = text(&out.stdout);
    assert!(out.status.success(), "{table}\n{}", text(&out.stderr));
    assert!(table.contains("runs: test=demo · load · 3 runs"), "{table}");
    let total = table.lines().find(|l| l.starts_with("total")).unwrap();
    assert!(total.ends_with("yes"), "{table}");
    assert!(eventually(PROMPT, || dir
        .path()
        .join("results.jsonl")
        .exists()));
}

/// An encoded V2 histogram (HdrHistogram's layout, 3 digits, 1..2^40 µs) whose header claims
/// `claimed` bytes of counts and holds `counts`, deflated as a log line carries it or not.
fn v2(claimed: u32, counts: &[u8], deflated: bool) -> String {
    use base64::Engine as _;
    let mut v2 = Vec::new();
    for word in [0x1c84_9313u32, claimed, 0, 3] {
        v2.extend(word.to_be_bytes());
    }
    v2.extend(1u64.to_be_bytes());
    v2.extend((1u64 << 40).to_be_bytes());
    v2.extend(1.0f64.to_be_bytes());
    v2.extend(counts);
    let bytes = if deflated {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&v2).unwrap();
        let z = z.finish().unwrap();
        let mut out = 0x1c84_9314u32.to_be_bytes().to_vec();
        out.extend((z.len() as u32).to_be_bytes());
        out.extend(z);
        out
    } else {
        v2
    };
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Python: a V2 histogram whose counts, 1 GiB of empty buckets, deflate to 1 MB (a zip bomb).
const BOMB_PY: &str = r#"
import base64, struct, sys, zlib
n = 1 << 30
z = zlib.compressobj(9)
parts = [z.compress(struct.pack('>iiiiqqd', 0x1c849313, n, 0, 3, 1, 2**40, 1.0))]
chunk = bytes(1 << 20)
parts += [z.compress(chunk) for _ in range(n >> 20)]
parts.append(z.flush())
comp = b''.join(parts)
sys.stdout.write(base64.b64encode(struct.pack('>ii', 0x1c849314, len(comp)) + comp).decode())
"#;

/// A results file is anyone's: a histogram whose header claims 2 GB of counts (1 KB of
/// JSON), one that inflates to 1 GiB, one whose counts add up past 2^64 or past its run's
/// replies, each is refused naming the file, within a memory limit the decoder would have
/// blown (the crate allocates what the header claims; it inflates all it is given).
#[test]
fn hostile_histograms_are_refused_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    // i64::MAX zig-zagged, as HdrHistogram's varint writes it: 7 bits a byte for 8 bytes, then
    // the top 8 bits whole.
    let mut v = i64::MAX as u64 * 2;
    let mut varint = Vec::new();
    for _ in 0..8 {
        varint.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    varint.push(v as u8);
    let mut cases = vec![
        (
            "claims",
            v2(0x7fff_fff0, &[], true),
            "claims 2147483632 bytes",
        ),
        ("claims-plain", v2(0x7fff_fff0, &[], false), "claims"),
        ("overflows", v2(27, &varint.repeat(3), true), "past 2^64"),
        // Two samples (zig-zag 4 = 2) in a run of one reply.
        ("more", v2(1, &[4], true), "more than the 1 replies"),
    ];
    let bomb = crate::util::other("python3").args(["-c", BOMB_PY]).output();
    if peer_present("python3", bomb.is_ok()) {
        let bomb = text(&bomb.unwrap().stdout);
        cases.push(("bomb", bomb, "inflates past"));
    }
    for (name, data, says) in cases {
        let path = dir.path().join(format!("{name}.json"));
        let s = summary("load", &json!(data), 1, json!({}));
        std::fs::write(&path, s.to_string()).unwrap();
        let mut cmd = std_tool(["report".as_ref(), path.as_os_str()]);
        // The decoder alone would take 1 to 2 GiB.
        limit_memory(&mut cmd, 768 << 20);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = output_timeout(child, RUN);
        let err = text(&out.stderr);
        assert_no_panic(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(&format!("{name}.json")), "{name}: {err}");
        assert!(err.contains(says), "{name}: {err}");
    }
}

/// The same run given twice (the same file, or its line in a stream beside its own file)
/// would count its messages twice: refused, naming both. Standard input given twice is a
/// usage error. Counts that add up past 2^64 and a negative run time are errors, not a
/// panic nor a wrapped sum.
#[test]
fn a_run_given_twice_or_impossible_numbers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hist = json!("HISTFAAAACV4nJNpmSzMwMDAygABzFCaEURYzzrFYP8BItDNyJXIBQBkPwUf");
    let path = |name: &str| dir.path().join(name).display().to_string();
    let write = |name: &str, v: &Value| std::fs::write(path(name), v.to_string()).unwrap();
    let a = summary("load", &hist, 10, json!({}));
    write("a.json", &a);
    std::fs::write(
        path("stream.jsonl"),
        format!("{}\n{a}\n", summary("load", &hist, 10, json!({}))),
    )
    .unwrap();
    let mut huge = summary("load", &hist, u64::MAX, json!({}));
    write("huge1.json", &huge);
    huge["run"]["id"] = json!("another");
    write("huge2.json", &huge);
    let mut backwards = summary("load", &hist, 10, json!({}));
    backwards["duration_s"] = json!(-5.0);
    write("backwards.json", &backwards);
    for (files, says) in [
        (
            vec!["a.json", "a.json"],
            "'DIR/a.json' and 'DIR/a.json' are the same run",
        ),
        (
            vec!["stream.jsonl", "a.json"],
            "'DIR/stream.jsonl:2' and 'DIR/a.json' are the same run",
        ),
        (vec!["huge1.json", "huge2.json"], "add up past 2^64"),
        (
            vec!["backwards.json"],
            "\"duration_s\" is not a time in seconds",
        ),
    ] {
        let mut args = vec!["report".to_owned()];
        args.extend(files.iter().map(|f| path(f)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args, PROMPT);
        let err = text(&out.stderr).replace(&dir.path().display().to_string(), "DIR");
        assert_eq!(out.status.code(), Some(1), "{files:?}: {err}");
        assert!(err.contains(says), "{files:?}: {err}");
        assert!(out.stdout.is_empty(), "{files:?}");
    }
    let out = run(&["report", "-", "--hdr-log", "-"], PROMPT);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("given twice"));
}

/// Python: seeded random runs (each a few samples to thousands, log-spread from 1 µs to
/// minutes, some values repeated), encoded; and each group's merged figures by hdrh's rules.
const RANDOM_PY: &str = r#"
import json, random, sys
from hdrh.histogram import HdrHistogram
cases = []
for seed in range(12):
    rng = random.Random(seed)
    runs, merged = [], HdrHistogram(1, 2**40, 3)
    for _ in range(rng.randint(1, 4)):
        h = HdrHistogram(1, 2**40, 3)
        for _ in range(rng.choice([1, 2, 7, 150, 1000, 5000])):
            h.record_value(int(10 ** rng.uniform(0, 8)), rng.choice([1, 1, 1, 3, 1000]))
        runs.append({"data": h.encode().decode(), "count": h.get_total_count()})
        merged.add(h)
    want = {"count": merged.get_total_count(), "max": merged.get_max_value(),
            "min": merged.get_min_value()}
    for name, p in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9),
                    ("p99_99", 99.99)]:
        want[name] = merged.get_value_at_percentile(p)
    cases.append({"runs": runs, "want": want})
print(json.dumps(cases))
"#;

/// report's percentiles equal HdrHistogram's (its Python port) on seeded random runs: sizes
/// from one sample to thousands, values from 1 µs to minutes, counts that put a percentile's
/// target on a bucket's edge.
#[test]
fn percentiles_equal_hdrh_on_random_runs() {
    if !hdrh_available() {
        return;
    }
    let cases = python(RANDOM_PY, &json!(null));
    let dir = tempfile::tempdir().unwrap();
    for (i, case) in cases.as_array().unwrap().iter().enumerate() {
        let mut files = Vec::new();
        for (j, r) in case["runs"].as_array().unwrap().iter().enumerate() {
            let count = r["count"].as_u64().unwrap();
            let path = dir.path().join(format!("{i}-{j}.json"));
            let s = summary("load", &r["data"], count, json!({}));
            std::fs::write(&path, s.to_string()).unwrap();
            files.push(path.display().to_string());
        }
        let mut args = vec!["report", "--json"];
        args.extend(files.iter().map(String::as_str));
        let out = run(&args, PROMPT);
        assert!(out.status.success(), "case {i}: {}", text(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let got = &report["groups"][0]["total"]["rtt_us"];
        let want = &case["want"];
        for key in [
            "count", "min", "max", "p50", "p90", "p99", "p99_9", "p99_99",
        ] {
            assert_eq!(got[key], want[key], "case {i}, {key}: {got} vs {want}");
        }
    }
}

/// Label values with blanks, empty ones and crafted keys read apart in the table's heading and
/// rows: `host='gen 1'`, `note=''`, never `host=gen 1` (two labels?) nor a raw escape.
#[test]
fn labels_with_blanks_read_apart() {
    let hist = json!("HISTFAAAACV4nJNpmSzMwMDAygABzFCaEURYzzrFYP8BItDNyJXIBQBkPwUf");
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, host) in ["gen 1", "gen2"].iter().enumerate() {
        let labels = json!({"host": host, "note": "", "x y\u{1b}[2J": "z", "test": "a=b"});
        let path = dir.path().join(format!("{i}.json"));
        std::fs::write(&path, summary("load", &hist, 10, labels).to_string()).unwrap();
        files.push(path.display().to_string());
    }
    let out = run(&["report", "--merge", &files[0], &files[1]], PROMPT);
    let table = text(&out.stdout);
    assert!(out.status.success(), "{table}{}", text(&out.stderr));
    let heading = table.lines().next().unwrap();
    assert!(heading.starts_with("runs: note='' test='a=b' "), "{table}");
    assert!(!table.contains('\u{1b}'), "{table}");
    assert!(table.contains(" host='gen 1' "), "{table}");
}

/// A tagged interval line (`Tag=NAME,`: another histogram of the same run, such as a writer's
/// uncorrected one) is left out, as HdrHistogram's log processor leaves it without -tag:
/// summed with the untagged lines it would count each reply twice. A log of tagged lines
/// only says so.
#[test]
fn tagged_hdr_log_lines_are_not_summed_in() {
    let hist = "HISTFAAAACV4nJNpmSzMwMDAygABzFCaEURYzzrFYP8BItDNyJXIBQBkPwUf";
    let dir = tempfile::tempdir().unwrap();
    let head = "#[StartTime: 1796576400.000 (seconds since epoch)]\n\
                \"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";
    let tagged = format!("Tag=uncorrected,0.000,1.000,0.120,{hist}\n");
    let both = dir.path().join("both.hlog");
    std::fs::write(&both, format!("{head}0.000,1.000,0.120,{hist}\n{tagged}")).unwrap();
    let only = dir.path().join("only.hlog");
    std::fs::write(&only, format!("{head}{tagged}")).unwrap();
    let out = run(
        &["report", "--json", "--hdr-log", &both.display().to_string()],
        PROMPT,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["groups"][0]["total"]["received"], 10, "{report}");
    let out = run(
        &["report", "--hdr-log", &only.display().to_string()],
        PROMPT,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("only.hlog' holds only tagged interval lines"),
        "{}",
        text(&out.stderr)
    );
}

/// Labels in any script keep the table's columns in line as a terminal shows them: every row
/// of a table is as wide as its header (a CJK character takes two columns).
#[test]
fn wide_labels_keep_the_columns_in_line() {
    use unicode_width::UnicodeWidthStr as _;
    let hist = json!("HISTFAAAACV4nJNpmSzMwMDAygABzFCaEURYzzrFYP8BItDNyJXIBQBkPwUf");
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, host) in ["東京の生成器", "gen2"].iter().enumerate() {
        let path = dir.path().join(format!("{i}.json"));
        let s = summary("load", &hist, 10, json!({"host": host}));
        std::fs::write(&path, s.to_string()).unwrap();
        files.push(path.display().to_string());
    }
    let out = run(&["report", "--merge", &files[0], &files[1]], PROMPT);
    let table = text(&out.stdout);
    assert!(out.status.success(), "{table}{}", text(&out.stderr));
    let rows: Vec<&str> = table.lines().skip(1).take(4).collect();
    assert!(
        rows[0].starts_with("RUN") && rows[3].starts_with("total"),
        "{table}"
    );
    for row in &rows {
        assert_eq!(row.width(), rows[0].width(), "{table}");
    }
}

/// Runs `cmd` with `bytes` of address space (`ulimit -v`): a memory bound a test can see.
fn limit_memory(cmd: &mut std::process::Command, bytes: u64) {
    // SAFETY: setrlimit(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            match libc::setrlimit(libc::RLIMIT_AS, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
}

/// Many runs in one JSON-lines file (a fleet's results, interval objects between) are read in
/// one pass and kept small: 20,000 runs (6 MB) in seconds and within 256 MiB, where counting
/// each one's line from the file's start took 9 minutes and each decoded histogram 20 KiB.
#[test]
fn many_runs_in_one_file_are_read_in_linear_time_and_bounded_memory() {
    let hist = json!("HISTFAAAACV4nJNpmSzMwMDAygABzFCaEURYzzrFYP8BItDNyJXIBQBkPwUf");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.jsonl");
    let mut lines = String::new();
    let interval = json!({"type": "interval", "mode": "load"});
    for _ in 0..20_000 {
        lines.push_str(&format!(
            "{interval}\n{}\n",
            summary("load", &hist, 10, json!({}))
        ));
    }
    std::fs::write(&path, lines).unwrap();
    let mut cmd = std_tool(["report".as_ref(), "--merge".as_ref(), path.as_os_str()]);
    limit_memory(&mut cmd, 256 << 20);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let out = output_timeout(child, RUN);
    let table = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "{:?}",
        started.elapsed()
    );
    let total = table.lines().find(|l| l.starts_with("total")).unwrap();
    assert!(total.contains(" 200000 "), "{total}");
    assert!(table.contains("fleet.jsonl:40000 "), "the last run's line");
}
