//! `massup status`: the runs in a database, and for one run what its records came to and
//! what to do next. `--json` is stable and complete enough for a nightly job to alert on.
use serde::Serialize;

use super::{Latest, Workspace};
use crate::exit::Exit;
use crate::global::{DbArg, GlobalArgs};
use crate::render;
use crate::store::{self, RunInfo};
use crate::summary::{self, RunCounts};

const EXAMPLES: &str = "Examples:
  massup status
      the latest run: rows by outcome, record updates, calls, time per invocation, next steps
  massup status --all
      every run with its rows by outcome, calls and state
  massup status --run 7 --json | jq '.counts.rows'
      for scripts: one JSON object (docs/JSON.md)";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Run to show [default: the latest]
    #[arg(long)]
    pub run: Option<i64>,
    /// List every run with its rows by outcome, calls and state, instead of showing one.
    #[arg(long)]
    pub all: bool,
    /// Print one JSON object on stdout (docs/JSON.md), whatever happens.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArg,
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
    let workspace = Workspace::new(global, &args.db)?;
    let conn = workspace.open_existing()?;
    if args.all {
        let runs = store::runs::runs(&conn)?;
        let mut listed = Vec::with_capacity(runs.len());
        for mut run in runs {
            mark_gone_sender(&workspace.db, &mut run);
            let counts = summary::run_counts(&conn, &run)?;
            listed.push((run, counts));
        }
        if args.json {
            let runs: Vec<serde_json::Value> = listed
                .iter()
                .map(|(run, counts)| {
                    let mut value = serde_json::to_value(run).unwrap_or_default();
                    value["rows"] = serde_json::to_value(&counts.rows).unwrap_or_default();
                    value["calls"] = counts.calls.into();
                    value["credits"] = counts.credits.into();
                    value["resume_would_send_calls"] =
                        summary::resume_would_send(run, counts).into();
                    value
                })
                .collect();
            render::json::print_result(
                "status",
                Exit::Success,
                serde_json::json!({ "runs": runs }),
            );
        } else {
            crate::out!("{}", render::run_list(&listed));
        }
        return Ok(Exit::Success);
    }
    let mut run = workspace.pick_run(&conn, args.run, Latest::Any)?;
    mark_gone_sender(&workspace.db, &mut run);
    let counts = summary::run_counts(&conn, &run)?;
    let db = &workspace.db;
    if args.json {
        let (duration_secs, records_per_sec) = render::timing(&run, &counts);
        let status = RunStatus {
            run: &run,
            counts: &counts,
            duration_secs,
            records_per_sec,
            next: render::next_steps(&run, &counts, db),
        };
        render::json::print_result("status", Exit::Success, serde_json::to_value(&status)?);
    } else {
        crate::out!("{}", render::run_status(&run, &counts, db));
    }
    Ok(Exit::Success)
}

/// A run stored as running whose sender was killed says so ("stopped (was killed)"): its
/// lease is free and the process the lock file names is not alive.
fn mark_gone_sender(db: &std::path::Path, run: &mut store::RunInfo) {
    if run.state == store::RunState::Running {
        let lock = crate::lease::run_lock_path(db, run.id);
        run.sender_gone = crate::lease::holder_gone(&lock) == Some(true);
    }
}
