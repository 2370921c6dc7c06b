//! `massup status`: the runs in a database, and for one run what its records came to and
//! what to do next. `--json` is stable and complete enough for a nightly job to alert on.
use serde::Serialize;

use super::{Latest, Workspace};
use crate::exit::Exit;
use crate::global::{DbArg, GlobalArgs};
use crate::render;
use crate::store::{self, RunInfo};
use crate::summary::{self, RunCounts};

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
    let run = workspace.pick_run(&conn, args.run, Latest::Any)?;
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
        crate::outln!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        crate::out!("{}", render::run_status(&run, &counts, db));
    }
    Ok(Exit::Success)
}
