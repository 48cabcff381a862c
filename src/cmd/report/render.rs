//! The report on stdout: a table per group (a row per run, then the total), or one JSON
//! object.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::group::{Figures, Group, Total, figures, over_span};
use super::input::Run;

/// The report as text: per group a heading, a row per run, the total, and a line on how the
/// total's rate is made.
pub(super) fn text(groups: &[Group]) -> String {
    let mut out = String::new();
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&heading(group));
        let varying = varying_keys(group);
        let mut rows = vec![header(!varying.is_empty())];
        for run in &group.runs {
            rows.push(run_row(run, &varying));
        }
        rows.push(total_row(group, !varying.is_empty()));
        out.push_str(&table(&rows));
        out.push_str(&footnote(&group.total));
    }
    out
}

/// `runs: test=baseline · load · 3 runs`.
fn heading(group: &Group) -> String {
    let labels = if group.labels.is_empty() {
        "no labels in common".to_owned()
    } else {
        labels_text(&group.labels)
    };
    let mode = group.mode.as_deref().unwrap_or("latency log");
    let n = group.runs.len();
    format!(
        "runs: {labels} · {mode} · {n} {}\n",
        if n == 1 { "run" } else { "runs" }
    )
}

/// `a=1 b=2`; a control character (a results file is anyone's text) in its escaped form, so
/// a crafted label can forge no line and send no escape sequence.
pub(super) fn labels_text(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let kv = format!("{k}={v}");
            crate::ui::quote::address(&kv).into_owned()
        })
        .collect();
    parts.join(" ")
}

/// The label keys whose values differ between the group's runs: shown per row.
fn varying_keys(group: &Group) -> Vec<String> {
    let mut keys: Vec<String> = group
        .runs
        .iter()
        .flat_map(|r| r.labels.keys())
        .filter(|k| !group.labels.contains_key(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

const TIMES: [&str; 5] = ["P50", "P90", "P99", "P99.9", "MAX"];

fn header(with_labels: bool) -> Vec<String> {
    let mut row = vec!["RUN".to_owned()];
    if with_labels {
        row.push("LABELS".to_owned());
    }
    for h in ["SENT", "RECEIVED", "LOST", "MISMATCHED", "MSGS/S", "MB/S"] {
        row.push(h.to_owned());
    }
    row.extend(TIMES.iter().map(|t| format!("{t} ms")));
    row.push("OK".to_owned());
    row
}

fn run_row(run: &Run, varying: &[String]) -> Vec<String> {
    let mut row = vec![run.source.clone()];
    if !varying.is_empty() {
        let own: BTreeMap<String, String> = varying
            .iter()
            .filter_map(|k| Some((k.clone(), run.labels.get(k)?.clone())))
            .collect();
        row.push(labels_text(&own));
    }
    counts_cells(&mut row, run.counts, run.received);
    row.push(format!("{:.1}", run.msgs_per_s()));
    row.push(optional(run.mb_per_s().map(|m| format!("{m:.2}"))));
    times_cells(&mut row, figures(&run.latencies));
    row.push(yes_no(run.ok));
    row
}

fn total_row(group: &Group, with_labels: bool) -> Vec<String> {
    let t = &group.total;
    let mut row = vec!["total".to_owned()];
    if with_labels {
        row.push(String::new());
    }
    counts_cells(&mut row, t.counts, t.received);
    row.push(format!("{:.1}", t.msgs_per_s));
    row.push(optional(t.mb_per_s.map(|m| format!("{m:.2}"))));
    times_cells(&mut row, figures(&t.latencies));
    row.push(yes_no(t.ok));
    row
}

/// Sent, received, lost, mismatched; `-` for what a run did not report.
fn counts_cells(row: &mut Vec<String>, counts: Option<super::input::Counts>, received: u64) {
    match counts {
        Some(c) => {
            for n in [c.sent, received, c.lost, c.mismatched] {
                row.push(n.to_string());
            }
        }
        None => {
            row.push("-".to_owned());
            row.push(received.to_string());
            row.push("-".to_owned());
            row.push("-".to_owned());
        }
    }
}

/// The percentiles and max in milliseconds to the microsecond the histogram holds.
fn times_cells(row: &mut Vec<String>, f: Option<Figures>) {
    let values = f.map(|f| [f.p50, f.p90, f.p99, f.p99_9, f.max]);
    for i in 0..TIMES.len() {
        row.push(match values {
            Some(v) => format!("{:.3}", v[i] as f64 / 1e3),
            None => "-".to_owned(),
        });
    }
}

fn optional(cell: Option<String>) -> String {
    cell.unwrap_or_else(|| "-".to_owned())
}

fn yes_no(ok: Option<bool>) -> String {
    match ok {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
    .to_owned()
}

/// Columns padded to their widest cell: the first two (names, labels) to the left, figures to
/// the right, two spaces between.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let width = |c: usize| {
        rows.iter()
            .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let text_columns = if rows
        .first()
        .is_some_and(|h| h.get(1).is_some_and(|c| c == "LABELS"))
    {
        2
    } else {
        1
    };
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let w = widths[c];
            let _ = if c < text_columns {
                write!(line, "{cell:<w$}")
            } else {
                write!(line, "{cell:>w$}")
            };
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// How the total's rate is made, and the span it can be compared with.
fn footnote(t: &Total) -> String {
    let mut out = "total msgs/s and MB/s: the sum of the runs' own rates".to_owned();
    if let (Some(span), Some(rate)) = (t.span_s, over_span(t)) {
        let _ = write!(
            out,
            "; the runs span {span:.2} s (first start to last end): {rate:.1} msgs/s over it"
        );
    }
    out.push('\n');
    out
}

/// The report as one JSON object.
pub(super) fn json(groups: &[Group]) -> Value {
    let ok = groups.iter().all(|g| g.total.ok != Some(false));
    let groups: Vec<Value> = groups.iter().map(group_json).collect();
    json!({ "type": "report", "ok": ok, "groups": groups })
}

fn group_json(group: &Group) -> Value {
    let runs: Vec<Value> = group.runs.iter().map(run_json).collect();
    let t = &group.total;
    let mut total = counts_json(t.counts, t.received);
    extend(
        &mut total,
        json!({
            "runs": group.runs.len(),
            "ok": t.ok,
            "msgs_per_s": t.msgs_per_s,
            "mb_per_s": t.mb_per_s,
            "span_s": t.span_s,
            "msgs_per_s_over_span": over_span(t),
            "overlapping": t.span_s.map(|_| !t.apart),
            "rtt_us": figures(&t.latencies),
            "histogram": {
                "unit": "us",
                "encoding": "HdrHistogram V2 compressed base64",
                "data": t.latencies.encode(),
            },
        }),
    );
    json!({
        "labels": group.labels,
        "mode": group.mode,
        "runs": runs,
        "total": total,
    })
}

fn run_json(run: &Run) -> Value {
    let mut row = json!({
        "source": run.source,
        "labels": run.labels,
        "mode": run.mode,
        "ok": run.ok,
    });
    extend(&mut row, counts_json(run.counts, run.received));
    extend(
        &mut row,
        json!({
            "duration_s": run.duration_s,
            "started": run.started.map(crate::cli::report::rfc3339),
            "msgs_per_s": run.msgs_per_s(),
            "mb_per_s": run.mb_per_s(),
            "rtt_us": figures(&run.latencies),
        }),
    );
    row
}

fn counts_json(counts: Option<super::input::Counts>, received: u64) -> Value {
    json!({
        "sent": counts.map(|c| c.sent),
        "received": received,
        "lost": counts.map(|c| c.lost),
        "mismatched": counts.map(|c| c.mismatched),
    })
}

/// Adds `more`'s fields to `into` (both objects).
fn extend(into: &mut Value, more: Value) {
    if let (Some(into), Value::Object(more)) = (into.as_object_mut(), more) {
        into.extend(more);
    }
}
