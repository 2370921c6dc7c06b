//! What people read: the plan summary, a run's status, the line `--quiet` prints, and the
//! progress display. Commands decide what to show; this module decides how it looks.
pub mod json;
pub mod progress;

use std::fmt::Write;
use std::path::Path;

use crate::plan::PlanSummary;
use crate::store::RunInfo;
use crate::summary::{RowOutcome, RunCounts};

/// A run's counts on one line, for `--quiet`.
pub fn run_line(run: &RunInfo, counts: &RunCounts) -> String {
    format!(
        "run {}: {} succeeded, {} retryable, {} failed, {} invalid, {} pending; {} calls",
        run.id,
        counts.rows(RowOutcome::Succeeded),
        counts.rows(RowOutcome::Retryable),
        counts.rows(RowOutcome::Failed),
        counts.rows(RowOutcome::Invalid),
        counts.rows(RowOutcome::Pending),
        counts.calls
    )
}

/// Every run of a database, one line each, with its rows by outcome (`status --all`).
pub fn run_list(runs: &[(RunInfo, RunCounts)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>4}  {:<10} {:<11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}  {:<25} csv",
        "id",
        "module",
        "state",
        "rows",
        "succeeded",
        "retryable",
        "failed",
        "invalid",
        "pending",
        "calls",
        "created"
    );
    for (run, counts) in runs {
        let _ = writeln!(
            out,
            "{:>4}  {:<10} {:<11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}  {:<25} {}",
            run.id,
            run.module,
            run.state.to_string(),
            run.input_rows,
            counts.rows(RowOutcome::Succeeded),
            counts.rows(RowOutcome::Retryable),
            counts.rows(RowOutcome::Failed),
            counts.rows(RowOutcome::Invalid),
            counts.rows(RowOutcome::Pending),
            counts.calls,
            run.created_at,
            run.csv_path
        );
    }
    out
}

/// How long a run took and its record updates per second, from its stored times.
pub fn timing(run: &RunInfo, counts: &RunCounts) -> (Option<f64>, Option<f64>) {
    let parse = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let start = parse(&run.started_at).or_else(|| parse(&counts.first_call_at));
    let end = parse(&run.finished_at).or_else(|| parse(&counts.last_call_at));
    match (start, end) {
        (Some(s), Some(e)) if e >= s => {
            let secs = (e - s).num_milliseconds() as f64 / 1000.0;
            let done = counts.items.values().sum::<u64>()
                - counts.items.get("pending").copied().unwrap_or(0);
            (Some(secs), (secs > 0.0).then(|| done as f64 / secs))
        }
        _ => (None, None),
    }
}

/// Commands worth running next, most useful first.
pub fn next_steps(run: &RunInfo, counts: &RunCounts, db: &Path) -> Vec<String> {
    let mut next = Vec::new();
    let db = db.display();
    if counts.unfinished_chunks() > 0 {
        next.push(format!("massup --db {db} resume --run {}", run.id));
    }
    if counts.rows(RowOutcome::Retryable) > 0 {
        next.push(format!("massup --db {db} retry --run {}", run.id));
    }
    if counts.rows(RowOutcome::Failed) + counts.rows(RowOutcome::Invalid) > 0 {
        next.push(format!(
            "massup --db {db} report --run {} --only failed,invalid --out failed-{}.csv",
            run.id, run.id
        ));
    }
    next
}

/// The human summary of one run.
pub fn run_status(run: &RunInfo, counts: &RunCounts, db: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run {} — {} — {} ({})",
        run.id, run.module, run.csv_path, run.state
    );
    let _ = writeln!(
        out,
        "  rows      {:>9} total: {} succeeded, {} retryable, {} failed, {} invalid, {} pending",
        run.input_rows,
        counts.rows(RowOutcome::Succeeded),
        counts.rows(RowOutcome::Retryable),
        counts.rows(RowOutcome::Failed),
        counts.rows(RowOutcome::Invalid),
        counts.rows(RowOutcome::Pending)
    );
    let _ = write!(
        out,
        "  calls     {:>9} made (theoretical minimum {}), {} retries",
        counts.calls, counts.min_calls, counts.retries
    );
    if counts.calls_unlogged_at_most > 0 {
        let _ = write!(
            out,
            "; up to {} more sent by interrupted processes, not logged",
            counts.calls_unlogged_at_most
        );
    }
    out.push('\n');
    if !counts.items_by_code.is_empty() {
        let codes: Vec<String> = counts
            .items_by_code
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        let _ = writeln!(out, "  by code   {}", codes.join(", "));
    }
    let (secs, rate) = timing(run, counts);
    if let Some(secs) = secs {
        let _ = write!(out, "  time      {secs:>9.1} s");
        if let Some(rate) = rate {
            let _ = write!(out, " ({rate:.0} record updates/s)");
        }
        out.push('\n');
    }
    let next = next_steps(run, counts, db);
    if !next.is_empty() {
        let _ = writeln!(out, "Next:");
        for step in next {
            let _ = writeln!(out, "  {step}");
        }
    }
    out
}

/// The human summary of a plan.
pub fn plan_summary(summary: &PlanSummary, db: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Planned run {} of {} for {} into {}",
        summary.run_id,
        summary.csv_path,
        summary.module,
        db.display()
    );
    let _ = writeln!(out, "  input rows     {:>10}", summary.totals.input_rows);
    let _ = writeln!(out, "  valid rows     {:>10}", summary.totals.valid_rows);
    if summary.totals.merged_rows > 0 {
        let _ = writeln!(out, "  merged dups    {:>10}", summary.totals.merged_rows);
    }
    let _ = writeln!(out, "  invalid rows   {:>10}", summary.totals.invalid_rows);
    let _ = writeln!(out, "  groups         {:>10}", summary.totals.groups);
    let t = &summary.totals;
    let _ = writeln!(
        out,
        "  calls needed   {:>10}   (theoretical minimum {})",
        t.calls, t.min_calls
    );
    if t.update_records_calls > 0 {
        let _ = writeln!(
            out,
            "    mass_update    {:>10}   (one value set, up to 500 records a call)",
            t.mass_update_calls
        );
        let _ = writeln!(
            out,
            "    Update Records {:>10}   (each record its own values, up to 100 a call)",
            t.update_records_calls
        );
    }
    let alternative =
        |calls: Option<u64>| calls.map_or_else(|| "not possible".to_string(), |n| n.to_string());
    let _ = writeln!(
        out,
        "  alternatives   all mass_update {}, all Update Records {}",
        alternative(t.all_mass_update_calls),
        alternative(t.all_update_records_calls)
    );
    for warning in &summary.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    if !summary.problems.is_empty() {
        let _ = writeln!(
            out,
            "First invalid rows (all are stored; `massup report --only invalid` lists them):"
        );
        for problem in &summary.problems {
            let _ = writeln!(out, "  {problem}");
        }
    }
    if let Some(example) = &summary.example_request {
        let _ = writeln!(
            out,
            "Example request (first call):\n{}",
            serde_json::to_string_pretty(example).unwrap_or_default()
        );
    }
    out
}
