//! `massup run`: plan a CSV (fetching field metadata unless --fields is given) and send it.
use crate::cli::GlobalArgs;
use crate::commands::dispatching::{
    dispatch_run, install_signal_handlers, require_credentials, runtime, Connected,
    ConnectionFlags, DispatchFlags, StoredConnection,
};
use crate::commands::plan::{read_fields_file, render_summary, PlanFlags};
use crate::config::Config;
use crate::exit::{Exit, UsageError};
use crate::fields::ModuleFields;
use crate::plan::{self, PlanOutcome, PlanRequest};
use crate::store;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub plan: PlanFlags,
    #[command(flatten)]
    pub connection: ConnectionFlags,
    #[command(flatten)]
    pub dispatch: DispatchFlags,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let config = Config::load(global.config.as_deref())?;
    let settings = args.plan.settings(&config)?;
    let credentials = require_credentials(&config)?;
    let connection = StoredConnection::resolve(
        &StoredConnection::default(),
        &args.connection,
        &args.dispatch,
        &config,
        settings.over_write,
    )?;
    let db = config.db_path(global.db.as_deref());
    runtime()?.block_on(async {
        let stop = tokio_util::sync::CancellationToken::new();
        install_signal_handlers(stop.clone(), global.quiet);
        let connected = Connected::new(&connection, credentials, stop.clone(), &db)?;
        let (fields, fields_json) = match &args.plan.fields {
            Some(path) => {
                let (fields, text) = read_fields_file(path)?;
                (fields, text)
            }
            None => {
                let (token, _) = connected
                    .tokens
                    .token()
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot get an access token: {e}"))?;
                let domain = connected.api_domain().await?;
                let text = crate::api::fetch_fields(&connected.http, &domain, &settings.module, &token)
                    .await
                    .map_err(anyhow::Error::msg)?;
                let fields = ModuleFields::from_zoho_json(text.as_bytes()).map_err(|e| {
                    UsageError::new(format!("the field metadata Zoho sent for {} cannot be read: {e}", settings.module))
                })?;
                (fields, text)
            }
        };
        let csv = args.plan.csv.clone();
        let strict = args.plan.strict;
        let new_run = args.plan.new_run;
        let db_for_plan = db.clone();
        let dispatch_json = serde_json::to_string(&connection)?;
        let planned = tokio::task::spawn_blocking(move || -> anyhow::Result<PlanOutcome> {
            let mut conn = store::open(&db_for_plan)?;
            let request = PlanRequest {
                csv_path: &csv,
                settings: &settings,
                fields: Some((&fields, fields_json.as_str())),
                strict,
                new_run,
                dispatch_json: Some(&dispatch_json),
            };
            Ok(plan::plan(&mut conn, &request)?)
        })
        .await??;
        let run = match planned {
            PlanOutcome::Planned(summary) => {
                if !global.quiet {
                    crate::out!("{}", render_summary(&summary, &db));
                }
                store::run(&store::open(&db)?, summary.run_id)?.expect("just planned")
            }
            PlanOutcome::Existing(run) => {
                if run.state == "finished" {
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
        dispatch_run(&db, &run, &connection, &connected, stop, global).await
    })
}
