//! Which runs make one total, and the total of each: counts and rates summed, the
//! histograms merged (percentiles are read from the merged histogram, never averaged).

use std::collections::BTreeMap;
use std::time::SystemTime;

use color_eyre::eyre;

use super::input::{Counts, Run, per_second, shown};
use crate::latency::Latencies;

/// How runs are grouped: `report`'s `--merge` and `--group-by`.
pub(super) enum By<'a> {
    /// Runs with the same whole set of labels.
    Labels,
    /// Runs with the same values of these keys (unset counts as a value).
    Keys(&'a [String]),
    /// All runs in one.
    All,
}

/// Runs that make one total.
pub(super) struct Group {
    /// The labels every run of the group has, with the same value.
    pub labels: BTreeMap<String, String>,
    /// The mode of its runs, when any says.
    pub mode: Option<String>,
    pub runs: Vec<Run>,
    pub total: Total,
}

/// A group's runs put together.
pub(super) struct Total {
    /// Summed over the runs that have them; `None` when a run does not (an interval log).
    pub counts: Option<Counts>,
    pub received: u64,
    /// The sum of the runs' own rates.
    pub msgs_per_s: f64,
    pub mb_per_s: Option<f64>,
    /// From the first run's start to the last one's end, when every start is known.
    pub span_s: Option<f64>,
    /// The runs' times did not all overlap: the summed rate overstates the load.
    pub apart: bool,
    /// Every run that says was ok; `None` when none says.
    pub ok: Option<bool>,
    pub latencies: Latencies,
}

/// Puts `runs` in groups, in the order their first run was given, each with its total.
pub(super) fn groups(runs: Vec<Run>, by: &By<'_>) -> eyre::Result<Vec<Group>> {
    let mut keyed: Vec<(Key, Vec<Run>)> = Vec::new();
    for run in runs {
        let key = key(&run, by);
        match keyed.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(run),
            None => keyed.push((key, vec![run])),
        }
    }
    keyed
        .into_iter()
        .map(|(_, runs)| {
            let mode = one_mode(&runs)?;
            let total = total(&runs)?;
            Ok(Group {
                labels: shared_labels(&runs),
                mode,
                runs,
                total,
            })
        })
        .collect()
}

/// What tells a run's group from the others: label keys and their values (`None`: unset).
type Key = Vec<(String, Option<String>)>;

/// What tells `run`'s group from the others.
fn key(run: &Run, by: &By<'_>) -> Key {
    match by {
        By::Labels => run
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect(),
        By::Keys(keys) => keys
            .iter()
            .map(|k| (k.clone(), run.labels.get(k).cloned()))
            .collect(),
        By::All => Vec::new(),
    }
}

/// The labels all `runs` share, key and value.
fn shared_labels(runs: &[Run]) -> BTreeMap<String, String> {
    let Some((first, rest)) = runs.split_first() else {
        return BTreeMap::new();
    };
    first
        .labels
        .iter()
        .filter(|(k, v)| rest.iter().all(|r| r.labels.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The one mode of `runs`, or an error naming two runs that differ.
fn one_mode(runs: &[Run]) -> eyre::Result<Option<String>> {
    let mut moded = runs.iter().filter_map(|r| r.mode.as_ref().map(|m| (r, m)));
    let Some((first, mode)) = moded.next() else {
        return Ok(None);
    };
    if let Some((other, its)) = moded.find(|(_, m)| *m != mode) {
        eyre::bail!(
            "{} is a {its} run and {} a {mode} run: one total merges runs of one mode \
             (give them apart, or --label them and --group-by that label)",
            shown(&other.source),
            shown(&first.source)
        );
    }
    Ok(Some(mode.clone()))
}

/// The total of `runs`.
fn total(runs: &[Run]) -> eyre::Result<Total> {
    let mut latencies = Latencies::new();
    for run in runs {
        latencies.add(&run.latencies)?;
    }
    let counts = runs.iter().try_fold(Counts::default(), |sum, run| {
        let c = run.counts?;
        Some(Counts {
            sent: sum.sent + c.sent,
            lost: sum.lost + c.lost,
            mismatched: sum.mismatched + c.mismatched,
        })
    });
    let mb_per_s = runs.iter().map(Run::mb_per_s).sum::<Option<f64>>();
    let oks: Vec<bool> = runs.iter().filter_map(|r| r.ok).collect();
    let (span_s, apart) = span(runs);
    Ok(Total {
        counts,
        received: runs.iter().map(|r| r.received).sum(),
        msgs_per_s: runs.iter().map(Run::msgs_per_s).sum(),
        mb_per_s,
        span_s,
        apart,
        ok: (!oks.is_empty()).then(|| oks.iter().all(|&ok| ok)),
        latencies,
    })
}

/// The span of `runs` in seconds (first start to last end), and whether some run ended
/// before another began; `(None, false)` when a start is unknown.
fn span(runs: &[Run]) -> (Option<f64>, bool) {
    let times: Option<Vec<(SystemTime, SystemTime)>> = runs
        .iter()
        .map(|r| Some((r.started?, r.ended()?)))
        .collect();
    let Some(times) = times.filter(|t| !t.is_empty()) else {
        return (None, false);
    };
    let first = times.iter().map(|t| t.0).min();
    let last_start = times.iter().map(|t| t.0).max();
    let first_end = times.iter().map(|t| t.1).min();
    let last = times.iter().map(|t| t.1).max();
    let (Some(first), Some(last_start), Some(first_end), Some(last)) =
        (first, last_start, first_end, last)
    else {
        return (None, false);
    };
    let span = last.duration_since(first).map_or(0.0, |d| d.as_secs_f64());
    (Some(span), last_start > first_end)
}

/// The figures of a set of latencies, in microseconds, from its histogram.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub(super) struct Figures {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub p99_99: u64,
    pub max: u64,
}

/// `l`'s figures, `None` without a sample.
pub(super) fn figures(l: &Latencies) -> Option<Figures> {
    let h = l.histogram();
    if h.is_empty() {
        return None;
    }
    let p = |p: f64| l.value_at_percentile_us(p);
    Some(Figures {
        count: h.len(),
        min: h.lowest_equivalent(h.min()),
        mean: h.mean(),
        p50: p(50.0),
        p90: p(90.0),
        p99: p(99.0),
        p99_9: p(99.9),
        p99_99: p(99.99),
        max: l.max_us(),
    })
}

/// The share of `received` over a span, for a total shown beside its runs.
pub(super) fn over_span(total: &Total) -> Option<f64> {
    total
        .span_s
        .map(|span| per_second(total.received as f64, span))
}
