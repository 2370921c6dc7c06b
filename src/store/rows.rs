//! Input rows: every row of the CSV, valid or not, so nothing is dropped silently. Written
//! in bulk while planning (multi-row INSERTs), read back in input order for reports.
use rusqlite::{params, Connection};

use super::StoreError;

/// A row's verdict as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowStatus {
    Valid,
    Invalid,
    /// Same record id as an earlier valid row with no conflicting value: its changes ride
    /// with that row (and any field the earlier row lacks gets items of its own).
    Merged,
}

impl RowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Valid => "valid",
            RowStatus::Invalid => "invalid",
            RowStatus::Merged => "merged",
        }
    }

    fn parse(text: &str) -> Option<RowStatus> {
        [RowStatus::Valid, RowStatus::Invalid, RowStatus::Merged]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A planned row, as handed to [`insert_rows`].
#[derive(Debug, Clone)]
pub struct NewRow {
    pub row_no: u32,
    pub line: u64,
    pub record_id: String,
    /// The field cells as given, a JSON array in column order.
    pub values_json: String,
    pub status: RowStatus,
    pub message: Option<String>,
    pub merged_into: Option<u32>,
}

/// Rows per multi-row INSERT: one INSERT of 64 rows costs far less than 64 of one.
const ROW_BATCH: usize = 64;
const ROW_PARAMS: usize = 8;

fn insert_sql(rows: usize) -> String {
    let one = format!("({})", ["?"; ROW_PARAMS].join(","));
    format!(
        "INSERT INTO rows (run_id, row_no, line, record_id, values_json, status, message, merged_into) VALUES {}",
        vec![one; rows].join(",")
    )
}

/// Inserts a batch of rows of a run, checking that every one was written.
pub fn insert_rows(conn: &Connection, run_id: i64, batch: &[NewRow]) -> Result<(), StoreError> {
    let mut full = conn.prepare_cached(&insert_sql(ROW_BATCH))?;
    let mut single = conn.prepare_cached(&insert_sql(1))?;
    let mut written = 0;
    for chunk in batch.chunks(ROW_BATCH) {
        let (stmt, per) = if chunk.len() == ROW_BATCH {
            (&mut full, ROW_BATCH)
        } else {
            (&mut single, 1)
        };
        for rows in chunk.chunks(per) {
            for (i, row) in rows.iter().enumerate() {
                let at = i * ROW_PARAMS;
                stmt.raw_bind_parameter(at + 1, run_id)?;
                stmt.raw_bind_parameter(at + 2, row.row_no)?;
                stmt.raw_bind_parameter(at + 3, row.line)?;
                stmt.raw_bind_parameter(at + 4, &row.record_id)?;
                stmt.raw_bind_parameter(at + 5, &row.values_json)?;
                stmt.raw_bind_parameter(at + 6, row.status.as_str())?;
                // Why a row is invalid may quote its cells (an input file's text):
                // stored with its control characters escaped, as server text is.
                let message = row.message.as_deref().map(crate::logging::escape_controls);
                stmt.raw_bind_parameter(at + 7, message.as_deref())?;
                stmt.raw_bind_parameter(at + 8, row.merged_into)?;
            }
            written += stmt.raw_execute()?;
        }
    }
    if written != batch.len() {
        return Err(StoreError::Sql(rusqlite::Error::StatementChangedRows(
            written,
        )));
    }
    Ok(())
}

/// Marks a planned row invalid with `message` (a conflicting duplicate found later).
pub fn mark_invalid(
    conn: &Connection,
    run_id: i64,
    row_no: u32,
    message: &str,
) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE rows SET status = ?3, message = ?4, merged_into = NULL WHERE run_id = ?1 AND row_no = ?2",
        )?
        .execute(params![
            run_id,
            row_no,
            RowStatus::Invalid.as_str(),
            crate::logging::escape_controls(message)
        ])?;
    super::runs::expect_one_changed(changed)
}

/// A row as stored.
#[derive(Debug, Clone)]
pub struct StoredRow {
    pub row_no: u32,
    pub line: u64,
    pub record_id: String,
    pub values: Vec<String>,
    pub status: RowStatus,
    pub message: Option<String>,
    pub merged_into: Option<u32>,
}

/// Calls `each` with every row of a run in input order. The first error from `each` ends
/// the walk and is returned as it is.
pub fn for_each_row<E: From<StoreError>>(
    conn: &Connection,
    run_id: i64,
    mut each: impl FnMut(StoredRow) -> Result<(), E>,
) -> Result<(), E> {
    let sql = |e: rusqlite::Error| E::from(StoreError::Sql(e));
    let mut stmt = conn
        .prepare(
            "SELECT row_no, line, record_id, values_json, status, message, merged_into
             FROM rows WHERE run_id = ?1 ORDER BY row_no",
        )
        .map_err(sql)?;
    let mut query = stmt.query(params![run_id]).map_err(sql)?;
    while let Some(r) = query.next().map_err(sql)? {
        let row = (|| -> rusqlite::Result<StoredRow> {
            let status: String = r.get(4)?;
            let record_id = match r.get_ref(2)? {
                rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                other => String::from_utf8_lossy(other.as_bytes().unwrap_or_default()).into_owned(),
            };
            Ok(StoredRow {
                row_no: r.get(0)?,
                line: r.get(1)?,
                record_id,
                values: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
                status: RowStatus::parse(&status).unwrap_or(RowStatus::Invalid),
                message: r.get(5)?,
                merged_into: r.get(6)?,
            })
        })()
        .map_err(sql)?;
        each(row)?;
    }
    Ok(())
}

/// The merged rows of a run and the row each merged into.
pub fn merged_rows(conn: &Connection, run_id: i64) -> Result<Vec<(u32, u32)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT row_no, merged_into FROM rows WHERE run_id = ?1 AND status = ?2 AND merged_into IS NOT NULL",
    )?;
    let rows = stmt
        .query_map(params![run_id, RowStatus::Merged.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
