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
/// The largest input read: a day's JSON lines at one interval a second, or its interval log,
/// take some 200 MB.
const MAX_INPUT: u64 = 512 << 20;

/// One run, as read from its file.
pub(super) struct Run {
    /// The file it came from as messages show it (quoted), with `:LINE` when the file holds
    /// several runs.
    pub source: String,
    pub labels: BTreeMap<String, String>,
    /// The run's own id (`run.id`): the same run given twice has the same one. Unknown for an
    /// interval log.
    pub id: Option<String>,
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
    /// Round trips, in microseconds: the histogram encoded (a few hundred bytes, where the
    /// decoded one takes 16 KiB or more: a file may hold many thousand runs), and its figures.
    pub histogram: String,
    pub rtt: Option<super::group::Figures>,
}

/// The counts only a JSON summary has.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counts {
    pub sent: u64,
    pub lost: u64,
    pub mismatched: u64,
}

impl Run {
    /// The round trips, decoded again.
    pub fn latencies(&self) -> eyre::Result<Latencies> {
        Latencies::decode(&self.histogram)
    }

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

/// The bytes of `path`, or of standard input for `-`, up to [`MAX_INPUT`]: the whole file
/// is held while it is read.
fn read(path: &Path) -> eyre::Result<Vec<u8>> {
    let what = shown(&name(path));
    let mut bytes = Vec::new();
    let read = if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut bytes))
    };
    read.wrap_err_with(|| format!("cannot read {what}"))?;
    if bytes.len() as u64 > MAX_INPUT {
        eyre::bail!(
            "{what} is larger than {} MiB: no run's results are (is it a results file?)",
            MAX_INPUT >> 20
        );
    }
    Ok(bytes)
}

/// The runs of a `--json` results file: every `"type":"summary"` object in it, each made a
/// run as it is read (a file may hold many thousand, with interval objects between).
pub(super) fn json_runs(path: &Path) -> eyre::Result<Vec<Run>> {
    let bytes = read(path)?;
    let plain = name(path);
    let name = shown(&plain);
    let mut found = Vec::new();
    // The latest summary, made a run once the next one shows whether the file holds several
    // (then each is named FILE:LINE), so at most one parsed object is held.
    let mut pending: Option<(usize, Value)> = None;
    let named = |line: usize| format!("{plain}:{line}");
    let mut stream = serde_json::Deserializer::from_slice(&bytes).into_iter::<Value>();
    // Lines counted as the values go, once over the file.
    let (mut counted, mut line) = (0, 1);
    loop {
        let at = stream.byte_offset();
        let Some(value) = stream.next() else { break };
        let value = value.map_err(|err| eyre::eyre!("{name} is not JSON: {err}"))?;
        // The offset is where the last value ended: the object starts past the blanks.
        let blanks = bytes[at..].iter().take_while(|b| b.is_ascii_whitespace());
        let start = at + blanks.count();
        line += bytes[counted..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        counted = start;
        // A summary object ends a JSON-lines stream; interval objects are not runs.
        match value.get("type").and_then(Value::as_str) {
            Some("summary") => {
                if let Some((line, before)) = pending.replace((line, value)) {
                    found.push(summary_run(named(line), &before)?);
                }
            }
            Some(_) => {}
            None if value.get("mode").is_some() => eyre::bail!(
                "{name} has no \"type\":\"summary\" nor \"histogram\": written by an older \
                 asyncio-tool? (report needs each run's whole histogram: run it again with \
                 this version's --json)"
            ),
            None => {}
        }
    }
    if let Some((line, last)) = pending {
        let source = if found.is_empty() {
            plain.clone()
        } else {
            named(line)
        };
        found.push(summary_run(source, &last)?);
    }
    if found.is_empty() {
        eyre::bail!(
            "{name} holds no run: no JSON object with \"type\":\"summary\" (it takes \
             echo-client --json output)"
        );
    }
    Ok(found)
}

/// One summary object as a run.
fn summary_run(source: String, value: &Value) -> eyre::Result<Run> {
    let at = shown(&source);
    let obj = value
        .as_object()
        .ok_or_else(|| eyre::eyre!("{at}: the summary is not a JSON object"))?;
    let latencies = histogram(&at, obj)?;
    let (counts, received, duration_s) = figures(&at, obj, &latencies)?;
    let mode = obj.get("mode").and_then(Value::as_str).map(str::to_owned);
    if !matches!(mode.as_deref(), Some("probe" | "load")) {
        eyre::bail!("{at}: the summary's \"mode\" is not \"probe\" or \"load\"");
    }
    // The run's own verdict, required: without it a run that lost messages would pass.
    let ok = obj.get("ok").and_then(Value::as_bool);
    if ok.is_none() {
        eyre::bail!("{at}: the summary has no \"ok\" (true or false)");
    }
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
        id: run
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        duration_s,
        source,
        mode,
        ok,
        counts: Some(counts),
        received,
        bytes_received,
        started,
        histogram: latencies.encode(),
        rtt: super::group::figures(&latencies),
    })
}

/// A summary's counts, replies and run time, checked to be what a run could report: whole
/// numbers, a time of 0 or more, no more samples in its histogram than replies (a count
/// claimed in the billions would be summed as if true).
fn figures(
    at: &str,
    obj: &Map<String, Value>,
    latencies: &Latencies,
) -> eyre::Result<(Counts, u64, f64)> {
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
    if latencies.len() > received {
        eyre::bail!(
            "{at}: the histogram holds {} samples, more than the {received} replies received",
            latencies.len()
        );
    }
    let duration_s = match obj.get("duration_s") {
        None => 0.0,
        Some(d) => d
            .as_f64()
            .filter(|d| d.is_finite() && *d >= 0.0)
            .ok_or_else(|| eyre::eyre!("{at}: \"duration_s\" is not a time in seconds"))?,
    };
    Ok((counts, received, duration_s))
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
    super::hist::decode(field("data")).wrap_err_with(|| format!("{source}: \"histogram\""))
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
        if log.tagged > 0 {
            eyre::bail!(
                "{name} holds only tagged interval lines (Tag=NAME,...): report reads the \
                 untagged ones, as HdrHistogram's log processor does without -tag"
            );
        }
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
        id: None,
        mode: None,
        ok: None,
        trouble: None,
        counts: None,
        received: log.merged.len(),
        bytes_received: None,
        started,
        duration_s: (last - first).max(0.0),
        histogram: log.merged.encode(),
        rtt: super::group::figures(&log.merged),
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
    /// Tagged interval lines, left out.
    tagged: usize,
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
        // A `Tag=NAME,` first (log format 1.3) names another histogram of the same run (a
        // writer's uncorrected one beside the corrected): summed with the untagged ones it
        // would count each reply twice. Left out, as HdrHistogram's log processor leaves them
        // without -tag.
        if line.starts_with("Tag=") {
            self.tagged += 1;
            return Ok(());
        }
        let fields: Vec<&str> = line.split(',').collect();
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
        let interval = super::hist::decode(data)?;
        if self.merged.len().checked_add(interval.len()).is_none() {
            eyre::bail!("the intervals' counts add up past 2^64");
        }
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
