//! The log of every HTTP attempt: for `status` (calls made against the minimum, retries)
//! and post-mortems.
use rusqlite::{params, Connection};

use super::StoreError;
use crate::api::limits::CallKind;

/// One HTTP attempt, as logged in `calls`.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub kind: CallKind,
    pub started_at: String,
    pub duration: std::time::Duration,
    pub http_status: Option<u16>,
    pub code: Option<String>,
    pub ids: usize,
    /// What Zoho charged for it (nothing for a call refused at the door).
    pub credits: u64,
}

pub fn insert(
    conn: &Connection,
    run_id: i64,
    chunk_id: i64,
    call: &CallRecord,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO calls (run_id, chunk_id, started_at, duration_ms, http_status, code, ids, kind, credits)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        run_id,
        chunk_id,
        call.started_at,
        call.duration.as_millis() as i64,
        call.http_status,
        call.code,
        call.ids,
        call.kind.name(),
        call.credits as i64
    ])?;
    Ok(())
}

/// What the call log says about a run.
#[derive(Debug, Clone, Default)]
pub struct CallStats {
    /// Write calls (mass_update, Update Records).
    pub calls: u64,
    /// Distinct chunks written: write calls beyond these are retries.
    pub chunks_called: u64,
    pub first_call_at: Option<String>,
    pub last_call_at: Option<String>,
    /// Every logged call by kind (name): calls and credits.
    pub by_kind: Vec<(String, u64, u64)>,
}

pub fn stats(conn: &Connection, run_id: i64) -> Result<CallStats, StoreError> {
    let mut stats = conn.query_row(
        "SELECT COUNT(*), COUNT(DISTINCT chunk_id), MIN(started_at), MAX(started_at)
         FROM calls WHERE run_id = ?1 AND kind IN ('mass_update', 'update_records', 'bulk_write', 'upsert_records', 'delete_records')",
        params![run_id],
        |r| {
            Ok(CallStats {
                calls: r.get(0)?,
                chunks_called: r.get(1)?,
                first_call_at: r.get(2)?,
                last_call_at: r.get(3)?,
                by_kind: Vec::new(),
            })
        },
    )?;
    let mut stmt = conn.prepare_cached(
        "SELECT kind, COUNT(*), SUM(credits) FROM calls WHERE run_id = ?1 GROUP BY kind",
    )?;
    let rows = stmt.query_map(params![run_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)? as u64,
            r.get::<_, i64>(2)? as u64,
        ))
    })?;
    stats.by_kind = rows.collect::<Result<_, _>>()?;
    Ok(stats)
}

/// One logged call, as the HTML report's timeline reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedCall {
    pub started_at: String,
    pub duration_ms: u64,
    /// None when no answer came.
    pub http_status: Option<u16>,
}

/// Calls `each` with every logged call of a run, oldest first.
pub fn for_each_call(
    conn: &Connection,
    run_id: i64,
    mut each: impl FnMut(LoggedCall),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT started_at, duration_ms, http_status FROM calls
         WHERE run_id = ?1 AND kind IN ('mass_update', 'update_records', 'bulk_write', 'bulk_upload', 'bulk_status', 'bulk_result', 'upsert_records', 'delete_records')
         ORDER BY started_at, id",
    )?;
    let mut rows = stmt.query(params![run_id])?;
    while let Some(r) = rows.next()? {
        each(LoggedCall {
            started_at: r.get(0)?,
            duration_ms: r.get::<_, i64>(1)?.max(0) as u64,
            http_status: r.get::<_, Option<i64>>(2)?.map(|s| s as u16),
        });
    }
    Ok(())
}
