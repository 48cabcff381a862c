//! Reading the runs `report` puts together: echo-client's `--json` summaries (one object, or
//! JSON lines whose `"type":"summary"` objects are runs) and HdrHistogram interval logs. Each
//! problem is an error naming the file, quoted, and what is wrong with it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use color_eyre::eyre::{self, WrapErr};
use serde_json::{Map, Value};

use crate::latency::Latencies;

/// The histogram unit and encoding echo-client's JSON gives, the only ones read.
const UNIT: &str = "us";
const ENCODING: &str = "HdrHistogram V2 compressed base64";
/// A year in seconds: an interval log's time stamps below it are relative.
const YEAR_S: f64 = 365.25 * 86_400.0;

/// One run, as read from its file.
pub(super) struct Run {
    /// The file it came from as messages show it (quoted), with `:LINE` when the file holds
    /// several runs.
    pub source: String,
    pub labels: BTreeMap<String, String>,
    /// `probe` or `load`; unknown for an interval log.
    pub mode: Option<String>,
    /// The run's own verdict; unknown for an interval log.
    pub ok: Option<bool>,
    /// What went wrong, when `ok` is false.
    pub trouble: Option<String>,
    /// sent, lost, mismatched: unknown for an interval log.
    pub counts: Option<Counts>,
    /// Replies that came back (an interval log: the samples).
    pub received: u64,
    pub bytes_received: Option<u64>,
    pub started: Option<SystemTime>,
    pub duration_s: f64,
    /// Round trips, in microseconds.
    pub latencies: Latencies,
}

/// The counts only a JSON summary has.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counts {
    pub sent: u64,
    pub lost: u64,
    pub mismatched: u64,
}

impl Run {
    /// Messages a second over the run's own time.
    pub fn msgs_per_s(&self) -> f64 {
        per_second(self.received as f64, self.duration_s)
    }

    /// 10^6 bytes of replies a second, when the bytes are known.
    pub fn mb_per_s(&self) -> Option<f64> {
        self.bytes_received
            .map(|b| per_second(b as f64, self.duration_s) / 1e6)
    }

    /// When the run ended, if its start is known.
    pub fn ended(&self) -> Option<SystemTime> {
        let took = Duration::try_from_secs_f64(self.duration_s).ok()?;
        self.started?.checked_add(took)
    }
}

/// `n` over `secs`, 0 for a run of no time.
pub(super) fn per_second(n: f64, secs: f64) -> f64 {
    if secs > 0.0 { n / secs } else { 0.0 }
}

/// A path as the report shows it: bare when plain, shell-quoted when a shell or a terminal
/// would take it specially (a crafted name can forge no line); `-` is standard input.
pub(super) fn name(path: &Path) -> String {
    if path == Path::new("-") {
        return "-".to_owned();
    }
    crate::ui::quote::quote(path.as_os_str())
}

/// A name as messages show it: always in quotes.
pub(super) fn shown(name: &str) -> String {
    match name {
        "-" => "standard input".to_owned(),
        _ if name.starts_with(['\'', '"', '$']) => name.to_owned(),
        _ => format!("'{name}'"),
    }
}

/// The bytes of `path`, or of standard input for `-`.
fn read(path: &Path) -> eyre::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .wrap_err("cannot read standard input")?;
    } else {
        bytes =
            std::fs::read(path).wrap_err_with(|| format!("cannot read {}", shown(&name(path))))?;
    }
    Ok(bytes)
}

/// The runs of a `--json` results file: every `"type":"summary"` object in it.
pub(super) fn json_runs(path: &Path) -> eyre::Result<Vec<Run>> {
    let bytes = read(path)?;
    let plain = name(path);
    let name = shown(&plain);
    let mut found = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(&bytes).into_iter::<Value>();
    loop {
        let at = stream.byte_offset();
        let Some(value) = stream.next() else { break };
        let value = value.map_err(|err| eyre::eyre!("{name} is not JSON: {err}"))?;
        // The offset is where the last value ended: the object starts past the blanks.
        let blanks = bytes[at..].iter().take_while(|b| b.is_ascii_whitespace());
        let start = at + blanks.count();
        let line = 1 + bytes[..start].iter().filter(|&&b| b == b'\n').count();
        // A summary object ends a JSON-lines stream; interval objects are not runs.
        match value.get("type").and_then(Value::as_str) {
            Some("summary") => found.push((line, value)),
            Some(_) => {}
            None if value.get("mode").is_some() => eyre::bail!(
                "{name} has no \"type\":\"summary\" nor \"histogram\": written by an older \
                 asyncio-tool? (report needs each run's whole histogram: run it again with \
                 this version's --json)"
            ),
            None => {}
        }
    }
    if found.is_empty() {
        eyre::bail!(
            "{name} holds no run: no JSON object with \"type\":\"summary\" (it takes \
             echo-client --json output)"
        );
    }
    let several = found.len() > 1;
    found
        .into_iter()
        .map(|(line, value)| {
            let source = if several {
                format!("{plain}:{line}")
            } else {
                plain.clone()
            };
            summary_run(source, &value)
        })
        .collect()
}

/// One summary object as a run.
fn summary_run(source: String, value: &Value) -> eyre::Result<Run> {
    let at = shown(&source);
    let obj = value
        .as_object()
        .ok_or_else(|| eyre::eyre!("{at}: the summary is not a JSON object"))?;
    let latencies = histogram(&at, obj)?;
    let num = |key: &str| -> eyre::Result<u64> {
        obj.get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| eyre::eyre!("{at}: the summary has no whole number \"{key}\""))
    };
    let counts = Counts {
        sent: num("sent")?,
        lost: num("lost")?,
        mismatched: num("mismatched")?,
    };
    let received = num("received")?;
    let mode = obj.get("mode").and_then(Value::as_str).map(str::to_owned);
    if !matches!(mode.as_deref(), Some("probe" | "load")) {
        eyre::bail!("{at}: the summary's \"mode\" is not \"probe\" or \"load\"");
    }
    let ok = obj.get("ok").and_then(Value::as_bool);
    let run = obj.get("run").and_then(Value::as_object);
    let started = run
        .and_then(|r| r.get("started"))
        .and_then(Value::as_str)
        .and_then(|s| crate::cli::report::parse_time(s).ok());
    let bytes_received = obj
        .get("bytes_received")
        .and_then(Value::as_u64)
        .or_else(|| {
            let size = obj.get("size").and_then(Value::as_u64)?;
            received.checked_mul(size)
        });
    Ok(Run {
        trouble: (ok == Some(false)).then(|| trouble(obj, counts, received)),
        labels: run.map(labels).unwrap_or_default(),
        duration_s: obj.get("duration_s").and_then(Value::as_f64).unwrap_or(0.0),
        source,
        mode,
        ok,
        counts: Some(counts),
        received,
        bytes_received,
        started,
        latencies,
    })
}

/// The `run.labels` object, its string values.
fn labels(run: &Map<String, Value>) -> BTreeMap<String, String> {
    let Some(Value::Object(labels)) = run.get("labels") else {
        return BTreeMap::new();
    };
    labels
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
        .collect()
}

/// The summary's whole histogram, checked to be in the unit and encoding we read.
fn histogram(source: &str, obj: &Map<String, Value>) -> eyre::Result<Latencies> {
    let Some(hist) = obj.get("histogram").and_then(Value::as_object) else {
        eyre::bail!(
            "{source}: the summary has no \"histogram\" (report merges the runs' whole \
             histograms: run it with this version's --json)"
        );
    };
    let field = |key: &str| hist.get(key).and_then(Value::as_str).unwrap_or("");
    if field("unit") != UNIT {
        eyre::bail!(
            "{source}: the histogram's unit is \"{}\", not \"{UNIT}\": runs in other units \
             cannot be merged",
            field("unit")
        );
    }
    if field("encoding") != ENCODING {
        eyre::bail!(
            "{source}: the histogram's encoding is \"{}\", not \"{ENCODING}\"",
            field("encoding")
        );
    }
    Latencies::decode(field("data")).wrap_err_with(|| format!("{source}: \"histogram\""))
}

/// Why a run was not ok, from its own fields: what the run itself said when it exited 1.
fn trouble(obj: &Map<String, Value>, c: Counts, received: u64) -> String {
    let mut why = Vec::new();
    if c.lost > 0 {
        why.push(format!("{} of {} messages lost", c.lost, c.sent));
    }
    if c.mismatched > 0 {
        why.push(format!("{} of {} replies differ", c.mismatched, c.sent));
    }
    let failed = obj.get("connections_failed").and_then(Value::as_u64);
    let asked = obj.get("connections").and_then(Value::as_u64);
    if let (Some(failed @ 1..), Some(asked)) = (failed, asked) {
        why.push(format!("{failed} of {asked} connections failed"));
    }
    if received == 0 {
        why.push("no reply".to_owned());
    }
    if why.is_empty() {
        why.push("not ok".to_owned());
    }
    why.join(", ")
}

/// An HdrHistogram interval log (values in microseconds) as one run: its intervals summed,
/// its time from the first interval's start to the last one's end.
pub(super) fn hdr_log_run(path: &Path) -> eyre::Result<Run> {
    let bytes = read(path)?;
    let plain = name(path);
    let name = shown(&plain);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| eyre::eyre!("{name} is not an HdrHistogram log: not text"))?;
    let mut log = Log::default();
    for (i, line) in text.lines().enumerate() {
        log.line(line.trim())
            .wrap_err_with(|| format!("{name} line {}", i + 1))?;
    }
    let (Some(first), Some(last)) = (log.first, log.last) else {
        eyre::bail!(
            "{name} holds no interval line (start,length,max,HISTFAAA...): is it an \
             HdrHistogram log?"
        );
    };
    // As HdrHistogram's Java reader takes them: a time stamp of a year or more is since
    // 1970, a smaller one counts from the log's BaseTime, or its StartTime.
    let base = if first >= YEAR_S {
        Some(0.0)
    } else {
        log.base.or(log.start)
    };
    let started = base.and_then(|b| {
        SystemTime::UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(b + first).ok()?)
    });
    let labels = BTreeMap::new();
    Ok(Run {
        source: plain,
        labels,
        mode: None,
        ok: None,
        trouble: None,
        counts: None,
        received: log.merged.len(),
        bytes_received: None,
        started,
        duration_s: (last - first).max(0.0),
        latencies: log.merged,
    })
}

/// An interval log read so far.
#[derive(Default)]
struct Log {
    /// `#[StartTime: ...]`, `#[BaseTime: ...]`: seconds since 1970.
    start: Option<f64>,
    base: Option<f64>,
    /// The first interval's start and the last one's end, relative to the base.
    first: Option<f64>,
    last: Option<f64>,
    merged: Latencies,
}

impl Log {
    /// Takes one line: a comment (some carry the times), the legend, or an interval.
    fn line(&mut self, line: &str) -> eyre::Result<()> {
        if line.is_empty() || line.starts_with('"') {
            return Ok(());
        }
        if let Some(comment) = line.strip_prefix('#') {
            let seconds = |rest: &str| rest.split_whitespace().next()?.parse::<f64>().ok();
            if let Some(rest) = comment.strip_prefix("[StartTime:") {
                self.start = seconds(rest);
            } else if let Some(rest) = comment.strip_prefix("[BaseTime:") {
                self.base = seconds(rest);
            }
            return Ok(());
        }
        // An optional `Tag=NAME,` comes first (HdrHistogram log format 1.3).
        let untagged = match line.strip_prefix("Tag=") {
            Some(tagged) => tagged.split_once(',').map_or("", |(_, rest)| rest),
            None => line,
        };
        let fields: Vec<&str> = untagged.split(',').collect();
        let [start, length, _max, data] = fields[..] else {
            eyre::bail!("not an interval line (start,length,max,HISTFAAA...)");
        };
        let number = |s: &str| -> eyre::Result<f64> {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| eyre::eyre!("{} is not a time in seconds", quoted(s)))
        };
        let (start, length) = (number(start)?, number(length)?);
        let interval = Latencies::decode(data)?;
        self.merged.add(&interval)?;
        self.first = Some(self.first.map_or(start, |f| f.min(start)));
        self.last = Some(self.last.map_or(start + length, |l| l.max(start + length)));
        Ok(())
    }
}

/// A field of a line for a message, in quotes.
fn quoted(s: &str) -> String {
    crate::ui::quote::quoted(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted() {
        assert_eq!(name(Path::new("a.json")), "a.json");
        assert_eq!(shown(&name(Path::new("a.json"))), "'a.json'");
        assert_eq!(shown(&name(Path::new("-"))), "standard input");
        assert!(!shown(&name(Path::new("a\nb"))).contains('\n'));
    }
}
