//! `massup run`: plan a CSV (fetching field metadata unless --fields is given) and send it.
use super::plan::{read_fields_file, PlanFlags};
use super::send::{send_run, ConnectionFlags, DispatchFlags, SendSettings};
use super::session::{install_signal_handlers, require_credentials, runtime, Session};
use super::Workspace;
use crate::exit::{Exit, UsageError};
use crate::fields::ModuleFields;
use crate::global::{DbArg, GlobalArgs};
use crate::plan::{self, PlanOutcome, PlanRequest};
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
    pub results: super::send::ResultsFlag,
    /// Print one JSON object on stdout (docs/JSON.md), whatever happens.
    #[arg(long)]
    pub json: bool,
    /// Send without asking. The question is only asked when stdin is a terminal (never
    /// under cron or in a pipe) and not with --json.
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub db: DbArg,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let workspace = Workspace::new(global, &args.db)?;
    let config = &workspace.config;
    let settings = args.plan.settings(config)?;
    let credentials = require_credentials(config)?;
    let send = SendSettings::resolve(
        &SendSettings::default(),
        &args.connection,
        &args.dispatch,
        config,
        &settings,
    )?;
    let db = workspace.db.clone();
    runtime()?.block_on(async {
        let stop = tokio_util::sync::CancellationToken::new();
        install_signal_handlers(stop.clone(), global.quiet);
        let session = Session::new(&send, credentials, stop.clone())?;
        let (fields, fields_json) = match &args.plan.fields {
            Some(path) => {
                let (fields, text) = read_fields_file(path)?;
                (fields, text)
            }
            None => {
                let (token, _) = session
                    .tokens
                    .token()
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot get an access token: {e}"))?;
                let domain = session.api_domain().await?;
                let text = crate::api::fetch_fields(&session.http, &domain, &session.api_version, &settings.module, &token)
                    .await
                    .map_err(anyhow::Error::msg)?;
                // The server's answer, not the user's input: a fatal error (exit 1).
                let fields = ModuleFields::from_zoho_json(text.as_bytes()).map_err(|e| {
                    anyhow::anyhow!("the field metadata Zoho sent for {} cannot be read: {e}", settings.module)
                })?;
                (fields, text)
            }
        };
        let csv = args.plan.csv.clone();
        let strict = args.plan.strict;
        let new_run = args.plan.new_run;
        let db_for_plan = db.clone();
        let send_json = send.to_json();
        let planned = tokio::task::spawn_blocking(move || -> anyhow::Result<PlanOutcome> {
            let mut conn = store::open(&db_for_plan)?;
            let request = PlanRequest {
                csv_path: &csv,
                settings: &settings,
                fields: Some((&fields, fields_json.as_str())),
                strict,
                new_run,
                send_json: Some(&send_json),
            };
            super::send::holding_plan_lock(&db_for_plan, "massup run", || {
                plan::plan(&mut conn, &request)
            })?
            .map_err(anyhow::Error::from)
        })
        .await??;
        let mut plan_json = serde_json::Value::Null;
        let run = match planned {
            PlanOutcome::Planned(summary) => {
                if !global.quiet && !global.json {
                    crate::out!("{}", render::plan_summary(&summary, &db));
                }
                super::send::log_planned(&summary);
                plan_json = serde_json::to_value(&summary)?;
                store::runs::run(&store::open(&db)?, summary.run_id)?
                    .ok_or_else(|| anyhow::anyhow!("run {} vanished after planning", summary.run_id))?
            }
            PlanOutcome::Existing(run) => {
                if run.state == RunState::Finished {
                    return Err(UsageError::new(format!(
                        "{} was already sent as run {} (finished). `massup retry --run {}` re-sends retryable records; add --new-run to send the file again",
                        args.plan.csv.display(), run.id, run.id
                    ))
                    .into());
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
        let _lease = super::send::hold_run(&db, run.id, "massup run", args.dispatch.wait, Some(&stop))?;
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
