//! The records a `--create-missing` run created (migration 0009): the id Zoho gave each new
//! record, by the input row that carries it. Written by the dispatch's writer in the same
//! transaction as the chunk's answer; read by the report, status and undo.
use rusqlite::{params, Connection};

use super::StoreError;

/// What an Upsert Records answer did for a row planned as new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The run created the record (the key's first Upsert answer, or a repeat of a call
    /// whose answer was lost, which found the record that call had created).
    Created,
    /// A record holding the key appeared between plan and send, made by someone else: it
    /// was updated, not created (and an undo does not delete it).
    Updated,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
        }
    }

    fn parse(text: &str) -> Action {
        if text == "updated" {
            Action::Updated
        } else {
            Action::Created
        }
    }
}

/// One new record as the answer gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedRecord {
    pub row_no: u32,
    pub record_id: i64,
    pub action: Action,
}

/// Keeps what answers said. A row answered twice (a repeated call) keeps its first answer:
/// the record a lost answer created is the one the repeat found.
pub fn insert(conn: &Connection, run_id: i64, records: &[CreatedRecord]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO created (run_id, row_no, record_id, action) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for r in records {
        stmt.execute(params![run_id, r.row_no, r.record_id, r.action.as_str()])?;
    }
    Ok(())
}

/// Every record a run created or updated through Upsert Records, by row.
pub fn of_run(conn: &Connection, run_id: i64) -> Result<Vec<CreatedRecord>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT row_no, record_id, action FROM created WHERE run_id = ?1 ORDER BY row_no",
    )?;
    let rows = stmt.query_map([run_id], |r| {
        Ok(CreatedRecord {
            row_no: r.get(0)?,
            record_id: r.get(1)?,
            action: Action::parse(&r.get::<_, String>(2)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many records the run created.
pub fn count(conn: &Connection, run_id: i64) -> Result<u64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM created WHERE run_id = ?1 AND action = 'created'",
        [run_id],
        |r| r.get::<_, i64>(0),
    )? as u64)
}

/// A record an undo deletes: its id and what the undone run wrote into it (a JSON object),
/// which the undo compares with what the record holds before deleting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub record_id: i64,
    pub wrote: String,
}

/// Adds to an undo run (planned from its sheet of old values) one row per record to delete
/// and Delete Records chunks of at most
/// [`MAX_IDS_PER_DELETE`](crate::api::limits::MAX_IDS_PER_DELETE) ids, in one transaction:
/// the rows come after the sheet's (line 0: they are not in it), each with the values the
/// undone run wrote, which the undo's read before the call compares (CONFLICT when changed).
pub fn add_deletions(
    conn: &mut Connection,
    run_id: i64,
    deletions: &[Deletion],
) -> Result<(), StoreError> {
    use crate::api::limits::{CallKind, MAX_IDS_PER_DELETE};
    use crate::outcome::Member;
    if deletions.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    let first_row: u32 = tx.query_row(
        "SELECT COALESCE(MAX(row_no) + 1, 0) FROM rows WHERE run_id = ?1",
        [run_id],
        |r| r.get(0),
    )?;
    let rows: Vec<super::rows::NewRow> = deletions
        .iter()
        .enumerate()
        .map(|(k, d)| super::rows::NewRow {
            row_no: first_row + k as u32,
            line: 0,
            record_id: d.record_id.to_string(),
            values_json: "[]".into(),
            status: super::rows::RowStatus::Valid,
            message: Some("created by the undone run: deleted".into()),
            merged_into: None,
        })
        .collect();
    super::rows::insert_rows(&tx, run_id, &rows)?;
    let changed = tx.execute(
        "UPDATE runs SET input_rows = input_rows + ?2, valid_rows = valid_rows + ?2 WHERE id = ?1",
        params![run_id, deletions.len() as i64],
    )?;
    super::runs::expect_one_changed(changed)?;
    let group = super::chunks::insert_group(&tx, run_id, "{}", deletions.len())?;
    let members: Vec<Member> = rows
        .iter()
        .zip(deletions)
        .map(|(row, d)| Member {
            row_no: row.row_no,
            record_id: d.record_id,
        })
        .collect();
    for (part, wrote) in members
        .chunks(MAX_IDS_PER_DELETE)
        .zip(deletions.chunks(MAX_IDS_PER_DELETE))
    {
        let objects: Vec<String> = wrote.iter().map(|d| d.wrote.clone()).collect();
        super::chunks::insert_chunk_kind(
            &tx,
            run_id,
            group,
            CallKind::DeleteRecords,
            part,
            Some(&objects),
        )?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_answer_for_a_row_is_kept() {
        let conn = crate::store::open_in_memory().unwrap();
        let run = crate::store::runs::insert_run(
            &conn,
            &crate::store::runs::NewRun {
                module: "Leads",
                csv_path: "x.csv",
                csv_sha256: "0",
                id_column: "Email",
                columns_json: "[]",
                settings_json: "{}",
                fields_json: None,
                send_json: None,
            },
        )
        .unwrap();
        let created = |record_id, action| CreatedRecord {
            row_no: 3,
            record_id,
            action,
        };
        insert(&conn, run, &[created(77, Action::Created)]).unwrap();
        insert(&conn, run, &[created(78, Action::Updated)]).unwrap();
        assert_eq!(
            of_run(&conn, run).unwrap(),
            vec![created(77, Action::Created)]
        );
        assert_eq!(count(&conn, run).unwrap(), 1);
    }
}
