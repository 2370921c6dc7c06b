//! `massup resume`: continue a run where it stopped (a kill, Ctrl-C, a budget, a fatal
//! error since fixed). Chunks left in flight are sent again.
use crate::cli::GlobalArgs;
use crate::commands::dispatching::{pick_run, ConnectionFlags, DispatchFlags, StoredRun};
use crate::config::Config;
use crate::exit::Exit;
use crate::store;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run to continue [default: the latest unfinished run, else the latest]
    #[arg(long)]
    pub run: Option<i64>,
    #[command(flatten)]
    pub connection: ConnectionFlags,
    #[command(flatten)]
    pub dispatch: DispatchFlags,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let config = Config::load(global.config.as_deref())?;
    let db = config.db_path(global.db.as_deref());
    let conn = store::open(&db)?;
    // With nothing unfinished, resuming the latest run is a no-op that reports how it
    // ended: `resume` can be repeated safely (a cron job may call it until exit != 4).
    let run = match pick_run(&conn, args.run, false, &db) {
        Ok(run) => run,
        Err(_) if args.run.is_none() => pick_run(&conn, None, true, &db)?,
        Err(e) => return Err(e.into()),
    };
    let stored = StoredRun::load(&conn, run, &args.connection, &args.dispatch, &config)?;
    drop(conn);
    if !global.quiet {
        let run = &stored.run;
        crate::outln!("Resuming run {} ({}, {})", run.id, run.module, run.csv_path);
    }
    stored.send(&db, global)
}
