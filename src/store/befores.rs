//! The safety net's tables: `befores` (each record's values before the run wrote them, read
//! just before its chunk's first call) and `expectations` (for an undo run, what the undone
//! run wrote, to tell a record changed since from one massup may write back).
use rusqlite::{params, Connection};

use super::StoreError;

/// One field of one record and its value, as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldValue {
    pub record_id: i64,
    pub field: String,
    pub value_json: String,
}

/// Stores a chunk's snapshot and marks the chunk snapshotted. A (record, field) read
/// before keeps its first value.
pub fn store_snapshot(
    conn: &Connection,
    run_id: i64,
    chunk_id: i64,
    values: &[FieldValue],
) -> Result<(), StoreError> {
    insert(conn, "INSERT OR IGNORE INTO befores", run_id, values)?;
    conn.prepare_cached("UPDATE chunks SET snapshotted = 1 WHERE id = ?1 AND run_id = ?2")?
        .execute(params![chunk_id, run_id])?;
    Ok(())
}

/// Every value kept for a run, in record and field order.
pub fn befores(conn: &Connection, run_id: i64) -> Result<Vec<FieldValue>, StoreError> {
    read(conn, "befores", run_id)
}

/// How many (record, field) values a run's snapshot holds.
pub fn count(conn: &Connection, run_id: i64) -> Result<u64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM befores WHERE run_id = ?1",
        [run_id],
        |r| r.get::<_, i64>(0),
    )? as u64)
}

/// Stores what an undo run expects each record to hold.
pub fn insert_expectations(
    conn: &Connection,
    run_id: i64,
    values: &[FieldValue],
) -> Result<(), StoreError> {
    insert(conn, "INSERT OR REPLACE INTO expectations", run_id, values)
}

/// `verb` (an INSERT into one of the two tables) for every value.
fn insert(
    conn: &Connection,
    verb: &str,
    run_id: i64,
    values: &[FieldValue],
) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(&format!(
        "{verb} (run_id, record_id, field, value_json) VALUES (?1, ?2, ?3, ?4)"
    ))?;
    for value in values {
        insert.execute(params![
            run_id,
            value.record_id,
            value.field,
            value.value_json
        ])?;
    }
    Ok(())
}

/// What an undo run expects (empty for other runs).
pub fn expectations(conn: &Connection, run_id: i64) -> Result<Vec<FieldValue>, StoreError> {
    read(conn, "expectations", run_id)
}

fn read(conn: &Connection, table: &str, run_id: i64) -> Result<Vec<FieldValue>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT record_id, field, value_json FROM {table} WHERE run_id = ?1 ORDER BY record_id, field"
    ))?;
    let rows = stmt.query_map([run_id], |r| {
        Ok(FieldValue {
            record_id: r.get(0)?,
            field: r.get(1)?,
            value_json: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The records a run's snapshot holds values of.
pub fn records(conn: &Connection, run_id: i64) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare("SELECT DISTINCT record_id FROM befores WHERE run_id = ?1")?;
    let rows = stmt.query_map([run_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
