//! `massup retry`: re-queue a run's retryable records (locked, not approved, ...) or those
//! with the given codes into fresh chunks, regrouped so that scattered records share calls,
//! and send them.
use crate::cli::GlobalArgs;
use crate::commands::dispatching::{pick_run, ConnectionFlags, DispatchFlags, StoredRun};
use crate::config::Config;
use crate::dispatch;
use crate::exit::Exit;
use crate::store;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run to retry [default: the latest run]
    #[arg(long)]
    pub run: Option<i64>,
    /// Re-queue records whose last code is one of these (retryable or failed), e.g. RECORD_LOCKED,INVALID_DATA [default: every retryable record]
    #[arg(long, value_delimiter = ',')]
    pub codes: Option<Vec<String>>,
    #[command(flatten)]
    pub connection: ConnectionFlags,
    #[command(flatten)]
    pub dispatch: DispatchFlags,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let config = Config::load(global.config.as_deref())?;
    let db = config.db_path(global.db.as_deref());
    let mut conn = store::open(&db)?;
    let run = pick_run(&conn, args.run, true, &db)?;
    let stored = StoredRun::load(&conn, run, &args.connection, &args.dispatch, &config)?;
    let codes: Option<Vec<String>> = args.codes.map(|codes| {
        codes
            .into_iter()
            .map(|c| c.trim().to_uppercase())
            .filter(|c| !c.is_empty())
            .collect()
    });
    let (items, chunks) = dispatch::requeue(
        &mut conn,
        stored.run.id,
        codes.as_deref(),
        stored.plan.chunk_size,
    )?;
    drop(conn);
    if !global.quiet {
        crate::outln!(
            "Run {}: {items} record update(s) re-queued into {chunks} call(s)",
            stored.run.id
        );
    }
    stored.send(&db, global)
}
