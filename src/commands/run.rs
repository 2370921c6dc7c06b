//! `massup run`: plan a CSV (fetching field metadata unless --fields is given) and send it.
use super::flags::PlanFlags;
use super::flags::{ConnectionFlags, DispatchFlags};
use super::Workspace;
use crate::app::send::{send_run, SendSettings};
use crate::app::session::{install_signal_handlers, require_credentials, runtime, Session};
use crate::exit::{Exit, UsageError};
use crate::global::{DbArg, GlobalArgs};
use crate::plan::PlanOutcome;
use crate::render;
use crate::store::{self, RunState};

const EXAMPLES: &str = "Examples:
  massup run --csv changes.csv --module Leads --dc eu
      plan, show what will be sent and ask, then send (on a terminal)
  massup run --csv changes.csv --module Leads --rate 10/s --concurrency 5 --yes
      send without asking, at most 10 calls a second, 5 at once
  massup -q run --csv nightly.csv --module Leads --json --results out/
      for cron: one JSON object on stdout, success and error files in out/
  massup run --csv fix.csv --module Leads --fields samples/fields/Leads.json --max-calls 100
      field metadata from a file; stop (resumable) after 100 calls";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(flatten, next_help_heading = "Plan options")]
    pub plan: PlanFlags,
    #[command(flatten, next_help_heading = "Connection options")]
    pub connection: ConnectionFlags,
    #[command(flatten, next_help_heading = "Dispatch options")]
    pub dispatch: DispatchFlags,
    #[command(flatten, next_help_heading = "Output options")]
    pub results: super::flags::ResultsFlag,
    /// Print one JSON object on stdout (docs/JSON.md), whatever happens.
    #[arg(long)]
    pub json: bool,
    /// Send without asking. The question is only asked when stdin is a terminal (never
    /// under cron or in a pipe) and not with --json.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// When this exact file was sent before (a run of it finished): skip (exit 0, nothing
    /// sent; a nightly job's unchanged file), again (plan and send it once more, as a new
    /// run) or fail (exit 2).
    #[arg(long, value_enum, default_value_t = IfSent::Skip, value_name = "WHAT")]
    pub if_sent: IfSent,
    #[command(flatten)]
    pub db: DbArg,
}

/// `--if-sent`: what `run` does with a file it sent before.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfSent {
    /// Nothing sent, exit 0, saying which run sent it.
    Skip,
    /// Plan and send it again, as a new run.
    Again,
    /// Exit 2.
    Fail,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let workspace = Workspace::new(global, &args.db)?;
    let config = &workspace.config;
    let settings = args.plan.settings(config)?;
    let credentials = require_credentials(config)?;
    let send = SendSettings::resolve(
        &SendSettings::default(),
        &args.connection.choice(),
        &args.dispatch.choice(),
        config,
        &settings,
    )?;
    let db = workspace.db.clone();
    runtime()?.block_on(async {
        let stop = tokio_util::sync::CancellationToken::new();
        install_signal_handlers(stop.clone(), global.quiet);
        let session = Session::new(&send, credentials, stop.clone())?;
        let send_json = send.to_json();
        let connected = crate::app::planning::Connected {
            session: &session,
            handle: tokio::runtime::Handle::current(),
            dispatch: send.dispatch(),
            stop: stop.clone(),
        };
        let mut job = args.plan.job(
            &settings,
            Some(&send_json),
            global.quiet || global.json,
            "massup run",
        );
        // Planning is synchronous (and blocks on the runtime for lookups): it runs in
        // place, off the runtime's task scheduling.
        let mut planned = tokio::task::block_in_place(|| {
            crate::app::planning::plan_file(&db, &job, Some(&connected))
        })?;
        if let PlanOutcome::Existing(run) = &planned {
            if run.state == RunState::Finished && args.if_sent == IfSent::Again {
                job.new_run = true;
                planned = tokio::task::block_in_place(|| {
                    crate::app::planning::plan_file(&db, &job, Some(&connected))
                })?;
            }
        }
        let mut plan_json = serde_json::Value::Null;
        let run = match planned {
            PlanOutcome::Planned(summary) => {
                if !global.quiet && !global.json {
                    crate::out!("{}", render::plan_summary(&summary, &db, Some(args.plan.show_request)));
                }
                crate::app::send::log_planned(&summary);
                plan_json = serde_json::to_value(&summary)?;
                store::runs::run(&store::open(&db)?, summary.run_id)?
                    .ok_or_else(|| anyhow::anyhow!("run {} vanished after planning", summary.run_id))?
            }
            PlanOutcome::Existing(run) => {
                // A run's settings are its identity: an earlier plan of this file that
                // would send otherwise (another trigger, snapshot, types, locale, key...)
                // is never sent in their place.
                let differences = crate::app::planning::settings_differences(&settings, &run)?;
                if !differences.is_empty() {
                    return Err(UsageError::new(format!(
                        "{} was planned before as run {} ({}) with other settings than these:\n  {}\nNothing was sent. Add --new-run to plan it with these settings, or send run {} as it was planned: massup --db {} resume --run {}",
                        args.plan.csv.display(),
                        run.id,
                        run.state,
                        differences.join("\n  "),
                        run.id,
                        db.display(),
                        run.id
                    ))
                    .into());
                }
                if run.state == RunState::Finished {
                    return already_sent(&args, &run, &db, global);
                }
                if !global.quiet && !global.json {
                    crate::outln!(
                        "{} was already planned as run {} ({}); continuing it",
                        args.plan.csv.display(),
                        run.id,
                        run.state
                    );
                }
                run
            }
        };
        // One sender per run: a second `run` of the same file (or a `resume`) that finds
        // it being sent exits 4 naming the holder, or queues behind it with --wait.
        let _lease = crate::app::send::hold_run(&db, run.id, "massup run", args.dispatch.wait, Some(&stop))?;
        let outcome = send_run(&db, &run, &send, &session, stop, global).await?;
        let results = args.results.write(&db, &outcome.run);
        if global.json {
            let (error, mut body) = outcome.to_json(&db);
            body["plan"] = plan_json;
            body["results"] = results;
            let value = crate::render::json::envelope("run", outcome.exit, error, body);
            crate::render::json::print(&value);
        }
        Ok(outcome.exit)
    })
}

/// `run` of a file a finished run sent already, as `--if-sent` says: skip (exit 0, nothing
/// sent: the nightly job whose file did not change) or fail (exit 2).
fn already_sent(
    args: &Args,
    run: &crate::store::RunInfo,
    db: &std::path::Path,
    global: &GlobalArgs,
) -> anyhow::Result<Exit> {
    let when = run.finished_at.as_deref().unwrap_or(&run.created_at);
    let message = format!(
        "{} was already sent as run {} on {when}; nothing sent",
        args.plan.csv.display(),
        run.id
    );
    let next = vec![
        format!("massup --db {} status --run {}", db.display(), run.id),
        format!("massup --db {} retry --run {}", db.display(), run.id),
        format!(
            "massup --db {} run --csv {} --if-sent again",
            db.display(),
            args.plan.csv.display()
        ),
    ];
    if args.if_sent == IfSent::Fail {
        return Err(UsageError::new(format!(
            "{message} (--if-sent fail). `massup retry --run {}` re-sends retryable records; --if-sent again sends the file once more as a new run",
            run.id
        ))
        .into());
    }
    if global.json {
        crate::render::json::print_result(
            "run",
            Exit::Success,
            serde_json::json!({
                "already_sent": { "run": run.id, "finished_at": run.finished_at },
                "run": run,
                "next": next,
            }),
        );
    } else {
        crate::logging::notice(
            crate::logging::Level::Info,
            "already_sent",
            &format!("{message}. Send it again with --if-sent again."),
            serde_json::json!({ "run": run.id, "next": next }),
        );
    }
    Ok(Exit::Success)
}
