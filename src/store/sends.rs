//! The invocations that sent a run (`run`, `resume`, `retry`): when each started and
//! ended, its calls and how it ended, for `status`'s time per invocation.
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::runs::expect_one_changed;
use super::{now, StoreError};

/// One invocation that sent (part of) a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Send {
    pub command: String,
    pub started_at: String,
    /// None while it sends, or when its process was killed.
    pub ended_at: Option<String>,
    pub calls: u64,
    /// Credits of every call it made (writes and snapshot reads).
    pub credits: u64,
    pub end_state: Option<String>,
}

/// Records that `command` starts sending `run_id`; returns the send's id.
pub fn begin(conn: &Connection, run_id: i64, command: &str) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO sends (run_id, command, started_at) VALUES (?1, ?2, ?3)",
        params![run_id, command, now()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// What a send did, as it ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendTotals {
    /// Write calls.
    pub calls: u64,
    /// Credits of every call.
    pub credits: u64,
    /// What Zoho last said the org has left, if it said.
    pub credits_remaining: Option<u64>,
}

/// Records how a send ended.
pub fn end(
    conn: &Connection,
    send_id: i64,
    report: SendTotals,
    end_state: &str,
) -> Result<(), StoreError> {
    let changed = conn.execute(
        "UPDATE sends SET ended_at = ?2, calls = ?3, credits = ?4, end_state = ?5,
             credits_remaining = ?6 WHERE id = ?1",
        params![
            send_id,
            now(),
            report.calls as i64,
            report.credits as i64,
            end_state,
            report.credits_remaining.map(|n| n as i64)
        ],
    )?;
    expect_one_changed(changed)
}

/// A run's sends, oldest first.
pub fn sends(conn: &Connection, run_id: i64) -> Result<Vec<Send>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT command, started_at, ended_at, calls, credits, end_state FROM sends
         WHERE run_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![run_id], |r| {
        Ok(Send {
            command: r.get(0)?,
            started_at: r.get(1)?,
            ended_at: r.get(2)?,
            calls: r.get::<_, i64>(3)? as u64,
            credits: r.get::<_, i64>(4)? as u64,
            end_state: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What Zoho last said the org has left, and when: the newest send of any run of this
/// database that heard it, within the rolling 24 hours Zoho counts credits over.
pub fn org_credits_left(conn: &Connection) -> Result<Option<(u64, String)>, StoreError> {
    let since = (chrono::Utc::now() - chrono::Duration::hours(24))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let found = conn
        .query_row(
            "SELECT credits_remaining, ended_at FROM sends
             WHERE credits_remaining IS NOT NULL AND ended_at >= ?1
             ORDER BY ended_at DESC LIMIT 1",
            params![since],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)),
        )
        .optional()?;
    Ok(found)
}
