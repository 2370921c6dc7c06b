//! `massup status`: the runs in a database, and for one run what its records came to and
//! what to do next. `--json` is stable and complete enough for a nightly job to alert on.
use std::fmt::Write;
use std::path::Path;

use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::commands::dispatching::pick_run;
use crate::config::Config;
use crate::exit::Exit;
use crate::store::{self, RunInfo};
use crate::summary::{self, RowOutcome, RunCounts};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run to show [default: the latest]
    #[arg(long)]
    pub run: Option<i64>,
    /// List every run instead of showing one.
    #[arg(long)]
    pub all: bool,
    /// Print JSON (see README, "status --json").
    #[arg(long)]
    pub json: bool,
}

/// The JSON shape of one run's status. Field names are part of massup's interface.
#[derive(Serialize)]
pub struct RunStatus<'a> {
    pub run: &'a RunInfo,
    pub counts: &'a RunCounts,
    pub duration_secs: Option<f64>,
    pub records_per_sec: Option<f64>,
    pub next: Vec<String>,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let config = Config::load(global.config.as_deref())?;
    let db = config.db_path(global.db.as_deref());
    if !db.exists() {
        return Err(crate::exit::UsageError::new(format!(
            "no database at {}; `massup plan` or `massup run` creates it",
            db.display()
        ))
        .into());
    }
    let conn = store::open(&db)?;
    if args.all {
        let runs = store::runs(&conn)?;
        if args.json {
            crate::outln!("{}", serde_json::to_string_pretty(&runs)?);
        } else {
            crate::outln!(
                "{:>4}  {:<10} {:<11} {:<24} {:<24} csv",
                "id",
                "module",
                "state",
                "created",
                "finished"
            );
            for run in runs {
                crate::outln!(
                    "{:>4}  {:<10} {:<11} {:<24} {:<24} {}",
                    run.id,
                    run.module,
                    run.state,
                    run.created_at,
                    run.finished_at.as_deref().unwrap_or("-"),
                    run.csv_path
                );
            }
        }
        return Ok(Exit::Success);
    }
    let run = pick_run(&conn, args.run, true, &db)?;
    let counts = summary::run_counts(&conn, &run)?;
    if args.json {
        let (duration_secs, records_per_sec) = timing(&run, &counts);
        let status = RunStatus {
            run: &run,
            counts: &counts,
            duration_secs,
            records_per_sec,
            next: next_steps(&run, &counts, &db),
        };
        crate::outln!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        crate::out!("{}", render_run(&run, &counts, &db));
    }
    Ok(Exit::Success)
}

fn timing(run: &RunInfo, counts: &RunCounts) -> (Option<f64>, Option<f64>) {
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
pub fn render_run(run: &RunInfo, counts: &RunCounts, db: &Path) -> String {
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
    let _ = writeln!(
        out,
        "  calls     {:>9} made (theoretical minimum {}), {} retries",
        counts.calls, counts.min_calls, counts.retries
    );
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
