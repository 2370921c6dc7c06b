//! `massup resume`: continue a run where it stopped (a kill, Ctrl-C, a budget, a fatal
//! error since fixed). Chunks left in flight are sent again.
use super::flags::{ConnectionFlags, DispatchFlags};
use super::{Latest, Workspace};
use crate::app::send::{CreditWait, StoredRun};
use crate::exit::{Exit, UsageError};
use crate::global::{DbArg, GlobalArgs};
use crate::store;

const EXAMPLES: &str = "Examples:
  massup resume
      continue the latest unfinished run where it stopped
  massup resume --run 7 --rate 5/s
      continue run 7, more slowly than it was sent
  massup resume --wait-credits --probe-every 600
      when the daily credits are spent, wait for them (probing every 10 minutes)";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Run to continue [default: the latest unfinished run, else the latest]
    #[arg(long)]
    pub run: Option<i64>,
    #[command(flatten, next_help_heading = "Connection options")]
    pub connection: ConnectionFlags,
    #[command(flatten, next_help_heading = "Dispatch options")]
    pub dispatch: DispatchFlags,
    #[command(flatten, next_help_heading = "Output options")]
    pub results: super::flags::ResultsFlag,
    /// When the daily API credits are spent, wait for them instead of stopping: probe with
    /// one call every --probe-every seconds, for at most --wait-hours, then send the rest.
    #[arg(long)]
    pub wait_credits: bool,
    /// Seconds between probes with --wait-credits.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 900,
        requires = "wait_credits"
    )]
    pub probe_every: u64,
    /// Hours to wait for credits with --wait-credits before giving up (exit 4).
    #[arg(
        long,
        value_name = "HOURS",
        default_value_t = 24.0,
        requires = "wait_credits"
    )]
    pub wait_hours: f64,
    /// Print one JSON object on stdout (docs/JSON.md), whatever happens.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArg,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let workspace = Workspace::new(global, &args.db)?;
    let conn = workspace.open()?;
    store::check_before_sending(&conn, &workspace.db)?;
    // With nothing unfinished, resuming the latest run is a no-op that reports how it
    // ended: `resume` can be repeated safely (a cron job may call it until exit != 4).
    // A bare resume never guesses: it continues the one run that can be continued
    // (never a superseded, discarded or undone one), and names them when there are more.
    let run = match args.run {
        Some(id) => workspace.pick_run(&conn, Some(id), Latest::Any)?,
        None => {
            let mut resumable = store::runs::resumable_runs(&conn)?;
            match resumable.len() {
                0 => {
                    let latest = workspace.pick_run(&conn, None, Latest::Any)?;
                    if let Some(note) = &latest.ended_note {
                        // Nothing can be resumed: say so, successfully (cron may call
                        // resume until it stops exiting 4).
                        let message = format!(
                            "nothing to resume: the latest run, {}, was {note}",
                            latest.id
                        );
                        if args.json {
                            crate::render::json::print_result(
                                "resume",
                                Exit::Success,
                                serde_json::json!({ "run": latest, "message": message, "next": [] }),
                            );
                        } else if !global.quiet {
                            crate::outln!("{message}");
                        }
                        return Ok(Exit::Success);
                    }
                    latest
                }
                1 => resumable.remove(0),
                _ => {
                    let listed: Vec<String> = resumable
                        .iter()
                        .map(|r| {
                            format!("run {} ({}, {}, {})", r.id, r.state, r.module, r.csv_path)
                        })
                        .collect();
                    return Err(UsageError::new(format!(
                        "more than one run can be resumed: {}. Pass --run N (`massup status --all` lists them; `massup discard --run N` ends one that should not go)",
                        listed.join("; ")
                    ))
                    .into());
                }
            }
        }
    };
    let stored = StoredRun::load(
        &conn,
        run,
        &args.connection.choice(),
        &args.dispatch.choice(),
        &workspace,
        "massup resume",
    )?;
    drop(conn);
    if !global.quiet && !global.json {
        let run = &stored.run;
        crate::outln!("Resuming run {} ({}, {})", run.id, run.module, run.csv_path);
    }
    if !(args.wait_hours.is_finite() && args.wait_hours >= 0.0) {
        return Err(crate::exit::UsageError::new(format!(
            "--wait-hours {}: give a number of hours, e.g. 24 or 0.5",
            args.wait_hours
        ))
        .into());
    }
    let wait = args.wait_credits.then(|| CreditWait {
        probe_every: std::time::Duration::from_secs(args.probe_every.max(1)),
        give_up_after: std::time::Duration::from_secs_f64(args.wait_hours.max(0.0) * 3600.0),
    });
    let outcome = stored.send(&workspace.db, global, wait)?;
    let results = args.results.write(&workspace.db, &outcome.run);
    if global.json {
        let (error, mut body) = outcome.to_json(&workspace.db);
        body["results"] = results;
        let value = crate::render::json::envelope("resume", outcome.exit, error, body);
        crate::render::json::print(&value);
    }
    Ok(outcome.exit)
}
