//! `massup run`: plan a CSV (fetching field metadata unless --fields is given) and send it.
use super::plan::PlanFlags;
use super::send::{send_run, ConnectionFlags, DispatchFlags, SendSettings};
use super::session::{install_signal_handlers, require_credentials, runtime, Session};
use super::Workspace;
use crate::exit::{Exit, UsageError};
use crate::global::{DbArg, GlobalArgs};
use crate::plan::PlanOutcome;
use crate::render;
use crate::store::{self, RunState};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub plan: PlanFlags,
    #[command(flatten)]
    pub connection: ConnectionFlags,
    #[command(flatten)]
    pub dispatch: DispatchFlags,
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
        let send_json = send.to_json();
        let connected = super::lookup::Connected {
            session: &session,
            handle: tokio::runtime::Handle::current(),
            dispatch: send.dispatch(),
            stop: stop.clone(),
        };
        let job = super::lookup::PlanJob {
            csv: &args.plan.csv,
            settings: &settings,
            fields_file: args.plan.fields.as_deref(),
            strict: args.plan.strict,
            new_run: args.plan.new_run,
            send_json: Some(&send_json),
            quiet: global.quiet,
            command: "massup run",
            expectations: None,
        };
        // Planning is synchronous (and blocks on the runtime for lookups): it runs in
        // place, off the runtime's task scheduling.
        let planned = tokio::task::block_in_place(|| {
            super::lookup::plan_file(&db, &job, Some(&connected))
        })?;
        let run = match planned {
            PlanOutcome::Planned(summary) => {
                if !global.quiet {
                    crate::out!("{}", render::plan_summary(&summary, &db));
                }
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
                if !global.quiet {
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
        Ok(send_run(&db, &run, &send, &session, stop, global).await?.0)
    })
}
