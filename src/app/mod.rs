//! The use cases the commands share, between the command line and the stages: open a
//! workspace and pick a run ([`Workspace`]), connect ([`session`]), plan a file with its
//! metadata and lookups ([`planning`]), resolve how a run is sent once (flags over the
//! stored run over massup.toml) and send it, finish it and write what it leaves behind
//! ([`send`]). Commands call these; nothing here knows clap.
pub mod export;
pub mod planning;
pub mod send;
pub mod session;

use std::path::PathBuf;

use rusqlite::Connection;

use crate::config::Config;
use crate::exit::UsageError;
use crate::global::{DbArg, GlobalArgs};
use crate::store::{self, RunInfo, StoreError};

/// What every command that works on a database sets up first.
pub struct Workspace {
    pub config: Config,
    pub db: PathBuf,
}

/// Which run a command takes when `--run` is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latest {
    /// The newest run that is not finished.
    Unfinished,
    /// The newest run.
    Any,
}

impl Workspace {
    /// Reads massup.toml and resolves the database path (flag, env, config, default).
    pub fn new(global: &GlobalArgs, db: &DbArg) -> Result<Workspace, UsageError> {
        let config = Config::load(global.config.as_deref())?;
        let db = config.db_path(global.db_flag(db));
        Ok(Workspace { config, db })
    }

    /// Opens (creating if needed) the database.
    pub fn open(&self) -> Result<Connection, StoreError> {
        store::open(&self.db)
    }

    /// Opens a database that must exist already: for commands that only read runs.
    pub fn open_existing(&self) -> anyhow::Result<Connection> {
        if !self.db.exists() {
            return Err(UsageError::new(format!(
                "no database at {}; `massup plan` or `massup run` creates it",
                self.db.display()
            ))
            .into());
        }
        Ok(self.open()?)
    }

    /// The run named by --run, else the latest of the kind `latest` says. A missing run is
    /// a usage error; a database that cannot be read stays a store error (exit 1).
    pub fn pick_run(
        &self,
        conn: &Connection,
        run: Option<i64>,
        latest: Latest,
    ) -> anyhow::Result<RunInfo> {
        let found = match (run, latest) {
            (Some(id), _) => store::runs::run(conn, id)?,
            (None, Latest::Any) => store::runs::latest_run(conn)?,
            (None, Latest::Unfinished) => store::runs::latest_unfinished_run(conn)?,
        };
        let db = self.db.display();
        found.ok_or_else(|| {
            let message = match (run, latest) {
                (Some(id), _) => {
                    format!("no run {id} in {db}; `massup status` lists the runs")
                }
                (None, Latest::Any) => format!("no runs in {db}"),
                (None, Latest::Unfinished) => format!(
                    "no unfinished run in {db}; `massup status` lists the runs (pass --run ID)"
                ),
            };
            UsageError::new(message).into()
        })
    }
}
