//! Runs: one row per planned CSV, its typed state, and the settings stored with it.
use rusqlite::{params, Connection, OptionalExtension};

use super::{now, StoreError};

/// Where a run stands. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Planned, nothing sent yet.
    Planned,
    /// A process is sending it (or was, and died: `resume` continues it).
    Running,
    /// Stopped with work left: a signal, a budget, a fatal answer, calls that kept failing.
    Interrupted,
    /// Every chunk is done (records may still have failed or be retryable).
    Finished,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Planned => "planned",
            RunState::Running => "running",
            RunState::Interrupted => "interrupted",
            RunState::Finished => "finished",
        }
    }

    fn parse(text: &str) -> Option<RunState> {
        [
            RunState::Planned,
            RunState::Running,
            RunState::Interrupted,
            RunState::Finished,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl rusqlite::types::FromSql for RunState {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        RunState::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown run state {text:?}").into())
        })
    }
}

/// A run as stored, without its rows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunInfo {
    pub id: i64,
    pub module: String,
    pub csv_path: String,
    pub csv_sha256: String,
    pub id_column: String,
    pub columns: Vec<String>,
    /// The plan settings (parsed from `settings_json`), for JSON output.
    pub settings: serde_json::Value,
    #[serde(skip)]
    pub settings_json: String,
    /// Field metadata can be large; `status --json` leaves it out.
    #[serde(skip)]
    pub fields_json: Option<String>,
    pub state: RunState,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub input_rows: i64,
    pub valid_rows: i64,
    pub invalid_rows: i64,
    pub merged_rows: i64,
    pub min_calls: i64,
    /// How a run ended that will not be sent as planned: superseded, discarded, undone.
    pub ended_as: Option<String>,
    /// Why, for people: by which run, when.
    pub ended_note: Option<String>,
    /// Stored as running, but its sender is gone (killed: its lease is free and the process
    /// that held it is not alive). Not stored: `status` finds it out.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sender_gone: bool,
}

impl RunInfo {
    /// A planned run of `module` with nothing else known: for tests that need a run.
    #[cfg(test)]
    pub fn planned(id: i64, module: &str) -> RunInfo {
        RunInfo {
            id,
            module: module.into(),
            csv_path: "in.csv".into(),
            csv_sha256: String::new(),
            id_column: "id".into(),
            columns: Vec::new(),
            settings: serde_json::Value::Null,
            settings_json: String::new(),
            fields_json: None,
            state: RunState::Planned,
            created_at: String::new(),
            started_at: None,
            finished_at: None,
            input_rows: 0,
            valid_rows: 0,
            invalid_rows: 0,
            merged_rows: 0,
            min_calls: 0,
            ended_as: None,
            ended_note: None,
            sender_gone: false,
        }
    }

    /// The state as people read it: how it ended (superseded, discarded, undone), else
    /// "stopped (was killed)" for a running run whose sender is gone, else the state.
    pub fn shown_state(&self) -> String {
        match &self.ended_as {
            Some(ended) => ended.clone(),
            None if self.sender_gone => "stopped (was killed)".into(),
            None => self.state.to_string(),
        }
    }
}

const RUN_COLUMNS: &str =
    "id, module, csv_path, csv_sha256, id_column, columns_json, settings_json, \
     fields_json, state, created_at, started_at, finished_at, input_rows, valid_rows, \
     invalid_rows, merged_rows, min_calls, ended_as, ended_note";

fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunInfo> {
    let columns_json: String = row.get(5)?;
    Ok(RunInfo {
        id: row.get(0)?,
        module: row.get(1)?,
        csv_path: row.get(2)?,
        csv_sha256: row.get(3)?,
        id_column: row.get(4)?,
        columns: serde_json::from_str(&columns_json).unwrap_or_default(),
        settings: serde_json::from_str(&row.get::<_, String>(6)?).unwrap_or_default(),
        settings_json: row.get(6)?,
        fields_json: row.get(7)?,
        state: row.get(8)?,
        created_at: row.get(9)?,
        started_at: row.get(10)?,
        finished_at: row.get(11)?,
        input_rows: row.get(12)?,
        valid_rows: row.get(13)?,
        invalid_rows: row.get(14)?,
        merged_rows: row.get(15)?,
        min_calls: row.get(16)?,
        ended_as: row.get(17)?,
        ended_note: row.get(18)?,
        sender_gone: false,
    })
}

pub fn run(conn: &Connection, id: i64) -> Result<Option<RunInfo>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
    Ok(conn.query_row(&sql, params![id], run_from_row).optional()?)
}

pub fn runs(conn: &Connection) -> Result<Vec<RunInfo>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id");
    let mut stmt = conn.prepare(&sql)?;
    let runs = stmt
        .query_map([], run_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(runs)
}

/// The newest run of this file content for this module, if one was planned before.
pub fn run_by_sha(
    conn: &Connection,
    sha256: &str,
    module: &str,
) -> Result<Option<RunInfo>, StoreError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE csv_sha256 = ?1 AND module = ?2 ORDER BY id DESC LIMIT 1"
    );
    Ok(conn
        .query_row(&sql, params![sha256, module], run_from_row)
        .optional()?)
}

/// The newest run that still has work to do (not finished), if any.
pub fn latest_unfinished_run(conn: &Connection) -> Result<Option<RunInfo>, StoreError> {
    Ok(resumable_runs(conn)?.into_iter().next())
}

/// Runs a bare `resume` may continue, newest first: not finished, and not superseded,
/// discarded or undone.
pub fn resumable_runs(conn: &Connection) -> Result<Vec<RunInfo>, StoreError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE state <> 'finished' AND ended_as IS NULL
         ORDER BY id DESC"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], run_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks how a run ended that will not be sent as planned (`superseded`, `discarded`,
/// `undone`), with a note for people. A run marked already keeps its first mark.
pub fn mark_ended(
    conn: &Connection,
    run_id: i64,
    ended_as: &str,
    note: &str,
    by: Option<i64>,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE runs SET ended_as = ?2, ended_note = ?3, ended_by = ?4
         WHERE id = ?1 AND ended_as IS NULL",
        params![run_id, ended_as, note, by],
    )?;
    Ok(changed == 1)
}

/// Unfinished, unmarked runs of the same file and module as `run_id`, older than it.
pub fn older_unfinished_of_same_file(
    conn: &Connection,
    run_id: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT o.id FROM runs o JOIN runs n ON n.id = ?1
         WHERE o.csv_sha256 = n.csv_sha256 AND o.module = n.module AND o.id < n.id
           AND o.state <> 'finished' AND o.ended_as IS NULL",
    )?;
    let rows = stmt.query_map(params![run_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn latest_run(conn: &Connection) -> Result<Option<RunInfo>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT 1");
    Ok(conn.query_row(&sql, [], run_from_row).optional()?)
}

/// Moves a run to `state`, checking that exactly one row changed. Running clears the
/// finish time and keeps the first start; finished stamps the finish time.
pub fn set_run_state(conn: &Connection, run_id: i64, state: RunState) -> Result<(), StoreError> {
    let changed = match state {
        RunState::Running => conn.execute(
            "UPDATE runs SET state = ?2, started_at = COALESCE(started_at, ?3), finished_at = NULL WHERE id = ?1",
            params![run_id, state.as_str(), now()],
        )?,
        RunState::Finished => conn.execute(
            "UPDATE runs SET state = ?2, finished_at = ?3 WHERE id = ?1",
            params![run_id, state.as_str(), now()],
        )?,
        RunState::Planned | RunState::Interrupted => conn.execute(
            "UPDATE runs SET state = ?2 WHERE id = ?1",
            params![run_id, state.as_str()],
        )?,
    };
    expect_one_changed(changed)
}

/// A run about to be planned.
pub struct NewRun<'a> {
    pub module: &'a str,
    pub csv_path: &'a str,
    pub csv_sha256: &'a str,
    pub id_column: &'a str,
    pub columns_json: &'a str,
    pub settings_json: &'a str,
    pub fields_json: Option<&'a str>,
    /// Connection and send settings, stored in the plan's transaction by `run`.
    pub send_json: Option<&'a str>,
}

/// Inserts a run in state planned; returns its id.
pub fn insert_run(conn: &Connection, run: &NewRun<'_>) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO runs (module, csv_path, csv_sha256, id_column, columns_json, settings_json, fields_json, state, created_at, dispatch_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            run.module,
            run.csv_path,
            run.csv_sha256,
            run.id_column,
            run.columns_json,
            run.settings_json,
            run.fields_json,
            RunState::Planned.as_str(),
            now(),
            run.send_json
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Replaces a run's stored plan settings (the plan's own decisions filled in).
pub fn set_settings_json(conn: &Connection, run_id: i64, json: &str) -> Result<(), StoreError> {
    let changed = conn.execute(
        "UPDATE runs SET settings_json = ?2 WHERE id = ?1",
        params![run_id, json],
    )?;
    expect_one_changed(changed)
}

/// What a plan counted, stored on its run.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanTotals {
    pub input_rows: u64,
    pub valid_rows: u64,
    pub invalid_rows: u64,
    pub merged_rows: u64,
    pub min_calls: u64,
}

pub fn set_plan_totals(conn: &Connection, run_id: i64, t: &PlanTotals) -> Result<(), StoreError> {
    let changed = conn.execute(
        "UPDATE runs SET input_rows = ?2, valid_rows = ?3, invalid_rows = ?4, merged_rows = ?5, min_calls = ?6 WHERE id = ?1",
        params![
            run_id,
            t.input_rows,
            t.valid_rows,
            t.invalid_rows,
            t.merged_rows,
            t.min_calls
        ],
    )?;
    expect_one_changed(changed)
}

/// The connection and send settings stored with a run (JSON, never secrets), if any.
pub fn send_settings_json(conn: &Connection, run_id: i64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT dispatch_json FROM runs WHERE id = ?1",
            [run_id],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()?
        .flatten())
}

pub fn save_send_settings_json(
    conn: &Connection,
    run_id: i64,
    json: &str,
) -> Result<(), StoreError> {
    let changed = conn.execute(
        "UPDATE runs SET dispatch_json = ?2 WHERE id = ?1",
        params![run_id, json],
    )?;
    expect_one_changed(changed)
}

pub(super) fn expect_one_changed(changed: usize) -> Result<(), StoreError> {
    if changed != 1 {
        return Err(StoreError::Sql(rusqlite::Error::StatementChangedRows(
            changed,
        )));
    }
    Ok(())
}

/// The metadata calls the plan made (one credit each).
pub fn set_metadata_calls(conn: &Connection, run_id: i64, calls: u64) -> Result<(), StoreError> {
    let changed = conn.execute(
        "UPDATE runs SET metadata_calls = ?2 WHERE id = ?1",
        params![run_id, calls as i64],
    )?;
    expect_one_changed(changed)
}

/// What planning a run spent: lookup calls and credits, metadata calls (one credit each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanSpend {
    pub lookup_calls: u64,
    pub lookup_credits: u64,
    pub metadata_calls: u64,
}

pub fn plan_spend(conn: &Connection, run_id: i64) -> Result<PlanSpend, StoreError> {
    Ok(conn.query_row(
        "SELECT lookup_calls, lookup_credits, metadata_calls FROM runs WHERE id = ?1",
        params![run_id],
        |r| {
            Ok(PlanSpend {
                lookup_calls: r.get::<_, i64>(0)? as u64,
                lookup_credits: r.get::<_, i64>(1)? as u64,
                metadata_calls: r.get::<_, i64>(2)? as u64,
            })
        },
    )?)
}

/// Marks `run_id` as undone by the undo run `by` (a later undo of the same run, after the
/// first finished, takes the mark over).
pub fn mark_undone(conn: &Connection, run_id: i64, by: i64, note: &str) -> Result<(), StoreError> {
    let changed = conn.execute(
        "UPDATE runs SET ended_as = 'undone', ended_note = ?3, ended_by = ?2 WHERE id = ?1",
        params![run_id, by, note],
    )?;
    expect_one_changed(changed)
}

/// The undo run that last took `run_id` back.
pub fn undone_by(conn: &Connection, run_id: i64) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT ended_by FROM runs WHERE id = ?1 AND ended_as = 'undone'",
            params![run_id],
            |r| r.get::<_, Option<i64>>(0),
        )
        .optional()?
        .flatten())
}
