//! `massup retry`: re-queue a run's retryable records (locked, not approved, ...) or those
//! with the given codes into fresh chunks, regrouped so that scattered records share calls,
//! and send them.
use super::flags::{ConnectionFlags, DispatchFlags};
use super::{Latest, Workspace};
use crate::app::send::StoredRun;
use crate::exit::Exit;
use crate::global::{DbArg, GlobalArgs};
use crate::plan::requeue::{requeue, Requeue};

const EXAMPLES: &str = "Examples:
  massup retry
      re-send the latest run's locked and not-approved records, regrouped
  massup retry --run 7 --codes INVALID_DATA --yes
      re-send run 7's records refused with INVALID_DATA (after fixing the data in Zoho)
  massup retry --json --results out/
      for cron: one JSON object on stdout, success and error files in out/";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Run to retry [default: the latest run]
    #[arg(long)]
    pub run: Option<i64>,
    /// Re-queue records whose last code is one of these (retryable or failed), e.g. RECORD_LOCKED,INVALID_DATA [default: every retryable record]
    #[arg(long, value_delimiter = ',')]
    pub codes: Option<Vec<String>>,
    /// A record still locked or unapproved after this many calls in all (its first send
    /// and every retry) ends as failed instead of being retried again, so the run reaches a
    /// final state [default: 10; or `max_attempts_total` in massup.toml]
    #[arg(long, value_name = "N")]
    pub max_attempts_total: Option<u32>,
    /// Print one JSON object on stdout (docs/JSON.md), whatever happens.
    #[arg(long)]
    pub json: bool,
    /// Send without asking. The question is only asked when stdin is a terminal (never
    /// under cron or in a pipe) and not with --json.
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten, next_help_heading = "Connection options")]
    pub connection: ConnectionFlags,
    #[command(flatten, next_help_heading = "Dispatch options")]
    pub dispatch: DispatchFlags,
    #[command(flatten, next_help_heading = "Output options")]
    pub results: super::flags::ResultsFlag,
    #[command(flatten)]
    pub db: DbArg,
}

/// Calls a record may take in all before `retry` gives up on it: enough for a lock that
/// a workflow or an approval holds for a while, few enough that a nightly job stops
/// offering retry for a record that never unlocks.
const DEFAULT_MAX_ATTEMPTS_TOTAL: u32 = 10;

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let workspace = Workspace::new(global, &args.db)?;
    let mut conn = workspace.open()?;
    crate::store::check_before_sending(&conn, &workspace.db)?;
    let run = workspace.pick_run(&conn, args.run, Latest::Any)?;
    let stored = StoredRun::load(
        &conn,
        run,
        &args.connection.choice(),
        &args.dispatch.choice(),
        &workspace,
        "massup retry",
    )?;
    let which = match args.codes {
        None => Requeue::Retryable,
        Some(codes) => Requeue::Codes(
            codes
                .into_iter()
                .map(|c| c.trim().to_uppercase())
                .filter(|c| !c.is_empty())
                .collect(),
        ),
    };
    let max_total = args
        .max_attempts_total
        .or(workspace.config.max_attempts_total)
        .unwrap_or(DEFAULT_MAX_ATTEMPTS_TOTAL)
        .max(1);
    let requeued = requeue(
        &mut conn,
        stored.run.id,
        &which,
        stored.plan.chunk_size,
        Some(max_total),
    )?;
    let (items, chunks) = (requeued.items, requeued.chunks);
    drop(conn);
    if !global.quiet && !global.json {
        crate::outln!(
            "Run {}: {items} record update(s) re-queued into {chunks} call(s)",
            stored.run.id
        );
        if requeued.ended > 0 {
            crate::outln!(
                "Run {}: {} record update(s) still locked or unapproved after {max_total} attempts end as failed (--max-attempts-total)",
                stored.run.id,
                requeued.ended
            );
        }
    }
    let outcome = stored.send(&workspace.db, global, None)?;
    let results = args.results.write(&workspace.db, &outcome.run);
    if global.json {
        let (error, mut body) = outcome.to_json(&workspace.db);
        body["results"] = results;
        body["requeued"] = serde_json::json!({
            "updates": items,
            "calls": chunks,
            "ended_out_of_attempts": requeued.ended,
        });
        let value = crate::render::json::envelope("retry", outcome.exit, error, body);
        crate::render::json::print(&value);
    }
    Ok(outcome.exit)
}
