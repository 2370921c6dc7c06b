//! The log of every HTTP attempt: for `status` (calls made against the minimum, retries)
//! and post-mortems.
use rusqlite::{params, Connection};

use super::chunks::CallRecord;
use super::StoreError;

pub(super) fn insert(
    conn: &Connection,
    run_id: i64,
    chunk_id: i64,
    call: &CallRecord,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO calls (run_id, chunk_id, started_at, duration_ms, http_status, code, ids)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        run_id,
        chunk_id,
        call.started_at,
        call.duration.as_millis() as i64,
        call.http_status,
        call.code,
        call.ids
    ])?;
    Ok(())
}

/// What the call log says about a run.
#[derive(Debug, Clone, Default)]
pub struct CallStats {
    pub calls: u64,
    /// Distinct chunks called: calls beyond these are retries.
    pub chunks_called: u64,
    pub first_call_at: Option<String>,
    pub last_call_at: Option<String>,
}

pub fn stats(conn: &Connection, run_id: i64) -> Result<CallStats, StoreError> {
    Ok(conn.query_row(
        "SELECT COUNT(*), COUNT(DISTINCT chunk_id), MIN(started_at), MAX(started_at)
         FROM calls WHERE run_id = ?1",
        params![run_id],
        |r| {
            Ok(CallStats {
                calls: r.get(0)?,
                chunks_called: r.get(1)?,
                first_call_at: r.get(2)?,
                last_call_at: r.get(3)?,
            })
        },
    )?)
}
