//! What people read: the plan summary, a run's status, the line `--quiet` prints, and the
//! progress display. Commands decide what to show; this module decides how it looks.
pub mod html;
pub mod json;
pub mod progress;
pub mod report;

use std::fmt::Write;
use std::path::Path;

use crate::outcome::ItemState;
use crate::plan::{MappedBy, PlanSummary, SnapshotDecision};
use crate::store::RunInfo;
use crate::summary::{RowOutcome, RunCounts};

/// A run's counts on one line, for `--quiet`.
pub fn run_line(run: &RunInfo, counts: &RunCounts) -> String {
    format!(
        "run {}: {} rows: {} succeeded, {} retryable, {} failed, {} invalid, {} pending; {} credits, {} calls",
        run.id,
        count(run.input_rows.max(0) as u64),
        count(counts.rows(RowOutcome::Succeeded)),
        count(counts.rows(RowOutcome::Retryable)),
        count(counts.rows(RowOutcome::Failed)),
        count(counts.rows(RowOutcome::Invalid)),
        count(counts.rows(RowOutcome::Pending)),
        count(counts.credits),
        count(counts.calls)
    )
}

/// Every run of a database, one line each, with its rows by outcome (`status --all`).
pub fn run_list(runs: &[(RunInfo, RunCounts)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>4}  {:<10} {:<11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7}  {:<25} csv",
        "id",
        "module",
        "state",
        "rows",
        "succeeded",
        "retryable",
        "failed",
        "invalid",
        "pending",
        "credits",
        "calls",
        "to send",
        "created"
    );
    for (run, counts) in runs {
        let _ = writeln!(
            out,
            "{:>4}  {:<10} {:<11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7}  {:<25} {}",
            run.id,
            run.module,
            run.shown_state(),
            run.input_rows,
            counts.rows(RowOutcome::Succeeded),
            counts.rows(RowOutcome::Retryable),
            counts.rows(RowOutcome::Failed),
            counts.rows(RowOutcome::Invalid),
            counts.rows(RowOutcome::Pending),
            counts.credits,
            counts.calls,
            crate::summary::resume_would_send(run, counts),
            run.created_at,
            run.csv_path
        );
    }
    out
}

/// `n` with thousands separators: `21,519`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate for people: whole units with separators (`7,183/s`), one decimal below 10.
pub fn rate(per_sec: f64) -> String {
    if per_sec < 10.0 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{}/s", count(per_sec.round() as u64))
    }
}

fn parse_time(t: Option<&str>) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    t.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
}

/// Seconds an invocation sent for (None while it sends or when it was killed).
pub fn send_secs(send: &crate::store::sends::Send) -> Option<f64> {
    let start = parse_time(Some(&send.started_at))?;
    let end = parse_time(send.ended_at.as_deref())?;
    (end >= start).then(|| (end - start).num_milliseconds() as f64 / 1000.0)
}

/// How long the run sent and its record updates settled per second of sending. Time is
/// the sum of the invocations' own times (not the span from the first to the last, which
/// counts the hours between a run and its retry); runs sent before invocations were
/// recorded fall back to that span.
pub fn timing(run: &RunInfo, counts: &RunCounts) -> (Option<f64>, Option<f64>) {
    let ended: Vec<f64> = counts.sends.iter().filter_map(send_secs).collect();
    let secs = if ended.is_empty() {
        let start = parse_time(run.started_at.as_deref())
            .or_else(|| parse_time(counts.first_call_at.as_deref()));
        let end = parse_time(run.finished_at.as_deref())
            .or_else(|| parse_time(counts.last_call_at.as_deref()));
        match (start, end) {
            (Some(s), Some(e)) if e >= s => Some((e - s).num_milliseconds() as f64 / 1000.0),
            _ => None,
        }
    } else {
        Some(ended.iter().sum::<f64>())
    };
    let done =
        counts.items.values().sum::<u64>() - counts.items.get("pending").copied().unwrap_or(0);
    let per_sec = secs
        .filter(|&s| s > 0.0)
        .map(|s| (done as f64 / s * 10.0).round() / 10.0);
    (secs, per_sec)
}

/// Commands worth running next, most useful first.
pub fn next_steps(run: &RunInfo, counts: &RunCounts, db: &Path) -> Vec<String> {
    let mut next = Vec::new();
    let db = db.display();
    // A superseded, discarded or undone run is not to be sent again: no resume, no retry.
    let ended = run.ended_as.is_some();
    if counts.unfinished_chunks() > 0 && !ended {
        next.push(format!("massup --db {db} resume --run {}", run.id));
    }
    if counts.rows(RowOutcome::Retryable) > 0 && !ended {
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

/// The command that takes the run back, when it kept the values it overwrote: with the
/// database named, as the other next steps are.
pub fn undo_step(run: &RunInfo, counts: &RunCounts, db: &Path) -> Option<String> {
    counts
        .undo_command
        .as_ref()
        .map(|_| format!("massup --db {} undo --run {}", db.display(), run.id))
}

/// The human summary of one run.
pub fn run_status(run: &RunInfo, counts: &RunCounts, db: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run {} — {} — {} ({})",
        run.id,
        run.module,
        run.csv_path,
        if run.sender_gone {
            "stopped: was killed; resume continues it".to_string()
        } else {
            run.state.to_string()
        }
    );
    if let Some(note) = &run.ended_note {
        let _ = writeln!(out, "  ended     {note}: resume does not pick it");
    }
    let _ = writeln!(
        out,
        "  rows      {:>9} total: {} succeeded, {} retryable, {} failed, {} invalid, {} pending",
        count(run.input_rows as u64),
        count(counts.rows(RowOutcome::Succeeded)),
        count(counts.rows(RowOutcome::Retryable)),
        count(counts.rows(RowOutcome::Failed)),
        count(counts.rows(RowOutcome::Invalid)),
        count(counts.rows(RowOutcome::Pending))
    );
    if let Some(created) = counts.created {
        let _ = writeln!(
            out,
            "  created   {:>9} record(s) created (--create-missing); the other succeeded rows updated a record",
            count(created)
        );
    }
    let updates: u64 = counts.items.values().sum();
    if updates > 0 {
        let _ = writeln!(
            out,
            "  updates   {:>9} record updates (a record's values in one call): {} succeeded, {} retryable, {} failed, {} pending",
            count(updates),
            count(counts.items(ItemState::Succeeded)),
            count(counts.items(ItemState::Retryable)),
            count(counts.items(ItemState::Failed)),
            count(counts.items(ItemState::Pending))
        );
    }
    let _ = writeln!(
        out,
        "  credits   {:>9} API credits spent{}",
        count(counts.credits),
        spend_by_kind(counts)
    );
    let _ = write!(
        out,
        "  calls     {:>9} write calls made (theoretical minimum {}), {} retries",
        count(counts.calls),
        count(counts.min_calls),
        count(counts.retries)
    );
    if counts.calls_unlogged_at_most > 0 {
        let _ = write!(
            out,
            "; up to {} more sent by interrupted processes, not logged",
            counts.calls_unlogged_at_most
        );
    }
    out.push('\n');
    match undo_step(run, counts, db) {
        Some(command) => {
            let _ = writeln!(
                out,
                "  undo      {} value(s) kept before they were written: `{command}` takes the run back",
                count(counts.snapshot_values)
            );
        }
        None if run.settings["snapshot"] == serde_json::json!(true) => {
            let _ = writeln!(
                out,
                "  undo      values are kept as chunks are sent; none yet"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  undo      no snapshot: this run cannot be undone (plan with --snapshot)"
            );
        }
    }
    if !counts.items_by_code.is_empty() {
        let codes: Vec<String> = counts
            .items_by_code
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        let _ = writeln!(out, "  by code   {}", codes.join(", "));
    }
    let (secs, per_sec) = timing(run, counts);
    if let Some(secs) = secs {
        let _ = write!(out, "  time      {secs:>9.1} s sending");
        if !counts.sends.is_empty() {
            let each: Vec<String> = counts
                .sends
                .iter()
                .map(|send| match send_secs(send) {
                    Some(s) => format!(
                        "{} {s:.1} s ({} credits, {} call{})",
                        send.command,
                        count(send.credits),
                        count(send.calls),
                        if send.calls == 1 { "" } else { "s" }
                    ),
                    None => format!("{} (did not end)", send.command),
                })
                .collect();
            let _ = write!(out, ": {}", each.join(", "));
        }
        out.push('\n');
        if let Some(per_sec) = per_sec {
            let _ = writeln!(
                out,
                "  rate      {:>11} record updates while sending",
                rate(per_sec)
            );
        }
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

/// What the credits went on, by kind of call: ` (update_records 1,000 in 100 calls,
/// get_records 100 in 100 calls)`; empty when nothing was spent.
pub fn spend_by_kind(counts: &RunCounts) -> String {
    if counts.spend.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = counts
        .spend
        .iter()
        .map(|(kind, spend)| {
            format!(
                "{kind} {} in {} call{}",
                count(spend.credits),
                count(spend.calls),
                if spend.calls == 1 { "" } else { "s" }
            )
        })
        .collect();
    format!(" ({})", parts.join(", "))
}

/// The human summary of a plan.
/// `plan --diff`: per field, the writes that would change a record and those it holds
/// already, with samples.
pub fn plan_diff(diff: &crate::plan::diff::PlanDiff) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Compared with the records' current values ({} Get Records call(s)):",
        diff.calls
    );
    for field in &diff.fields {
        let _ = writeln!(
            out,
            "  {:<20} {:>8} change   {:>8} hold the value already",
            field.field, field.changes, field.unchanged
        );
        for sample in &field.samples {
            let _ = writeln!(
                out,
                "      {}: {} -> {}",
                sample.record_id, sample.before, sample.after
            );
        }
    }
    if diff.missing_records > 0 {
        let _ = writeln!(
            out,
            "  {} planned write(s) name a record Zoho did not return (deleted, or not a record of this module)",
            diff.missing_records
        );
    }
    if diff.fields.iter().any(|f| f.unchanged > 0) {
        let _ = writeln!(
            out,
            "  --skip-unchanged leaves the records that hold their values out of the calls"
        );
    }
    out
}

/// `show_request`: `Some(true)` prints the first call's request, `Some(false)` a line saying
/// `--show-request` would, `None` neither (a command without the flag).
pub fn plan_summary(summary: &PlanSummary, db: &Path, show_request: Option<bool>) -> String {
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
    if let Some(lookup) = &summary.lookup {
        let credits = format!("{} credit{}", count(lookup.credits), plural(lookup.credits));
        let reused = if lookup.reused > 0 {
            format!(
                "; {} key{} reused from a lookup of the last hour (--fresh-lookups asks again)",
                count(lookup.reused),
                plural(lookup.reused)
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  lookup calls   {:>10}   ({} distinct {} keys: {} found one record, {} none, {} several; {credits}{reused})",
            lookup.calls, lookup.keys, lookup.field, lookup.matched, lookup.unmatched, lookup.ambiguous
        );
    }
    out.push_str(&plan_costs(summary));
    for (by, title) in [
        (MappedBy::Map, "Columns read as --map says:"),
        (
            MappedBy::Name,
            "Columns read by their field's label or a loose name:",
        ),
    ] {
        let mapped: Vec<_> = summary
            .column_mapping
            .iter()
            .filter(|m| m.by == by)
            .collect();
        if !mapped.is_empty() {
            let _ = writeln!(out, "{title}");
            for mapped in mapped {
                let _ = writeln!(out, "  {:?} -> {}", mapped.header, mapped.api_name);
            }
        }
    }
    if !summary.fixed_values.is_empty() {
        let _ = writeln!(out, "Set on every row (--map [set]):");
        for fixed in &summary.fixed_values {
            let _ = writeln!(out, "  {} = {:?}", fixed.field, fixed.value);
        }
    }
    if !summary.ignored_columns.is_empty() {
        let shown: Vec<String> = summary
            .ignored_columns
            .iter()
            .map(|c| format!("{c:?}"))
            .collect();
        let _ = writeln!(out, "Columns ignored as asked: {}", shown.join(", "));
    }
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
    match &summary.example_request {
        Some(example) if show_request == Some(true) => {
            let _ = writeln!(
                out,
                "Example request (first call):\n{}",
                serde_json::to_string_pretty(example).unwrap_or_default()
            );
        }
        Some(_) if show_request == Some(false) => {
            let _ = writeln!(out, "(--show-request shows the first call's request)");
        }
        _ => {}
    }
    out
}

/// The plan's cost, credits first and calls second: the writes by kind, the alternatives
/// in both units, the snapshot's reads (taken or not, and why), and the total.
fn plan_costs(summary: &PlanSummary) -> String {
    let mut out = String::new();
    let t = &summary.totals;
    let calls = |n: u64| format!("{} call{}", count(n), plural(n));
    let by_kind = |credits: u64, n: u64| {
        if n == 0 {
            "0".to_string()
        } else {
            format!("{} in {}", count(credits), calls(n))
        }
    };
    let bulk = if t.bulk_write_jobs > 0 {
        format!(
            "; Bulk Write {} in {} job{} of {} records",
            count(t.bulk_write_credits),
            count(t.bulk_write_jobs),
            plural(t.bulk_write_jobs),
            count(t.bulk_write_records)
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  credits needed {:>10}   (mass_update {}; Update Records {}{bulk})",
        count(t.credits),
        by_kind(t.mass_update_credits, t.mass_update_calls),
        by_kind(t.update_records_credits, t.update_records_calls)
    );
    if t.bulk_write_jobs > 0 {
        let _ = writeln!(
            out,
            "                              (each job also makes about 4 one-credit calls: its upload, status polls, result)"
        );
    }
    let _ = writeln!(
        out,
        "  calls needed   {:>10}   (theoretical minimum {})",
        count(t.calls),
        count(t.min_calls)
    );
    let alternative = |credits: Option<u64>, n: Option<u64>| match (credits, n) {
        (Some(credits), Some(n)) => format!("{} credits / {}", count(credits), calls(n)),
        _ => "not possible".to_string(),
    };
    let _ = writeln!(
        out,
        "  alternatives   all mass_update: {}; all Update Records: {}{}",
        alternative(t.all_mass_update_credits, t.all_mass_update_calls),
        alternative(t.all_update_records_credits, t.all_update_records_calls),
        match t.optimize {
            crate::plan::Optimize::Credits => "",
            crate::plan::Optimize::Calls => " (--optimize calls: the fewest calls chosen)",
        }
    );
    let reads = summary.snapshot_credits_estimate;
    let share = format!(
        "{} of {} write credits",
        crate::plan::share_of(reads, t.credits),
        count(t.credits)
    );
    let read_credits = format!("{} read credit{}", count(reads), plural(reads));
    let snapshot = match (summary.snapshot, summary.snapshot_decided) {
        (true, decided) => format!(
            "on{}, {read_credits} ({share}) in {} Get Records {}; `massup undo --run {}` can take the run back",
            match decided {
                SnapshotDecision::ByCost => "",
                SnapshotDecision::Asked => " as asked",
                SnapshotDecision::Needed => " (values are compared before each call)",
            },
            count(summary.snapshot_calls),
            if summary.snapshot_calls == 1 { "call" } else { "calls" },
            summary.run_id
        ),
        (false, SnapshotDecision::ByCost) => format!(
            "off by default, it would add {} credit{} ({share}); --snapshot takes it",
            count(reads),
            plural(reads),
        ),
        (false, _) => format!(
            "off as asked: the run cannot be undone (it would have added {})",
            read_credits
        ),
    };
    let _ = writeln!(out, "  snapshot       {snapshot}");
    let lookups = summary.lookup.as_ref().map_or(0, |l| l.credits);
    if summary.snapshot_credits > 0 || lookups > 0 {
        let mut parts = vec![format!("writes {}", count(t.credits))];
        if summary.snapshot_credits > 0 {
            parts.push(format!("snapshot {}", count(summary.snapshot_credits)));
        }
        if lookups > 0 {
            parts.push(format!("lookups spent {}", count(lookups)));
        }
        let _ = writeln!(
            out,
            "  credits in all {:>10}   ({})",
            count(summary.total_credits()),
            parts.join(" + ")
        );
    }
    if let Some(org) = &summary.org_credits_left {
        let total = summary.total_credits();
        let share = if org.remaining == 0 {
            "none are left".to_string()
        } else {
            format!(
                "this plan takes {}%",
                ((total as f64 * 100.0 / org.remaining as f64).round() as u64)
            )
        };
        let _ = writeln!(
            out,
            "  org credits    {:>10}   left when Zoho last said so ({}); {share}",
            count(org.remaining),
            org.at
        );
    }
    out
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_rates_read_as_people_write_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(21_519), "21,519");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(rate(7183.3275), "7,183/s");
        assert_eq!(rate(2.345), "2.3/s");
    }
}
