//! `report`: many runs' results put together as one, for a load generated from several
//! machines. Each input is a run's `--json` summary (or an HdrHistogram interval log); runs
//! are grouped by their labels (or as `--group-by`/`--merge` say), and each group's total
//! sums the counts and rates and reads its percentiles from the merged histogram, never from
//! averaged percentiles. The table (or `--json`) on stdout is the command's data.

mod group;
mod input;
mod render;

use color_eyre::eyre::{self, WrapErr};

use crate::cli::report::ReportArgs;
use crate::exit::Exit;
use crate::report::stdout_error;
use crate::ui::Ui;
use group::By;

/// Reads every input, prints the report, and exits 1 if a run was not ok (it lost or garbled
/// messages, or connections failed), as that run itself did.
pub(crate) fn run(args: &ReportArgs, ui: &Ui) -> eyre::Result<Exit> {
    let mut runs = Vec::new();
    for path in &args.files {
        runs.extend(input::json_runs(path)?);
    }
    for path in &args.hdr_logs {
        runs.push(input::hdr_log_run(path)?);
    }
    let by = if args.merge {
        By::All
    } else if args.group_by.is_empty() {
        By::Labels
    } else {
        By::Keys(&args.group_by)
    };
    let groups = group::groups(runs, &by)?;
    for g in groups.iter().filter(|g| g.total.apart) {
        ui.warn(&format!(
            "the runs of {} did not all run at the same time: their summed msgs/s overstates \
             the load at any one moment (start them together with --start-at)",
            if g.labels.is_empty() {
                "a group".to_owned()
            } else {
                render::labels_text(&g.labels)
            }
        ));
    }
    let text = if args.json {
        let mut text =
            serde_json::to_string(&render::json(&groups)).wrap_err("cannot encode the report")?;
        text.push('\n');
        text
    } else {
        render::text(&groups)
    };
    let stdout = crate::sys::stdio::stdout().wrap_err("cannot write to standard output")?;
    crate::sys::fdio::write_all(stdout, text.as_bytes())
        .map_err(|err| stdout_error(err, "cannot write to standard output"))?;
    not_ok(&groups)
}

/// Success, or the error naming the runs that were not ok and why (the first few).
fn not_ok(groups: &[group::Group]) -> eyre::Result<Exit> {
    let bad: Vec<String> = groups
        .iter()
        .flat_map(|g| &g.runs)
        .filter(|r| r.ok == Some(false))
        .map(|r| {
            let why = r.trouble.as_deref().unwrap_or("not ok");
            format!("{} ({why})", input::shown(&r.source))
        })
        .collect();
    if bad.is_empty() {
        return Ok(Exit::Success);
    }
    let all: usize = groups.iter().map(|g| g.runs.len()).sum();
    let shown = bad.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
    let more = match bad.len() {
        0..=3 => String::new(),
        n => format!("; {} more", n - 3),
    };
    eyre::bail!("{} of {all} runs were not ok: {shown}{more}", bad.len())
}
