//! What a `--match-by` plan resolved: each distinct key with the record ids Zoho found for
//! it, and the lookup calls that cost. Written once in the plan's transaction.
use rusqlite::{params, Connection};

use super::StoreError;

/// Stores every key with its ids (none, one, or several) and the calls spent finding them.
pub fn insert<'a>(
    conn: &Connection,
    run_id: i64,
    keys: impl IntoIterator<Item = (&'a str, &'a [i64])>,
    calls: u64,
    credits: u64,
) -> Result<(), StoreError> {
    let mut stmt =
        conn.prepare_cached("INSERT INTO lookups (run_id, key, ids) VALUES (?1, ?2, ?3)")?;
    let mut ids_text = String::new();
    for (key, ids) in keys {
        ids_text.clear();
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                ids_text.push(',');
            }
            ids_text.push_str(&id.to_string());
        }
        stmt.execute(params![run_id, key, ids_text])?;
    }
    conn.execute(
        "UPDATE runs SET lookup_calls = ?2, lookup_credits = ?3 WHERE id = ?1",
        params![run_id, calls, credits],
    )?;
    Ok(())
}

/// Every key of a run with the ids it resolved to, in key order.
pub fn all(conn: &Connection, run_id: i64) -> Result<Vec<(String, Vec<i64>)>, StoreError> {
    let mut stmt = conn.prepare("SELECT key, ids FROM lookups WHERE run_id = ?1 ORDER BY key")?;
    let rows = stmt.query_map([run_id], |r| {
        let key: String = r.get(0)?;
        let ids: String = r.get(1)?;
        Ok((key, ids))
    })?;
    rows.map(|row| {
        let (key, ids) = row?;
        Ok((key, parse_ids(&ids)))
    })
    .collect()
}

/// Keys looked up for `module` and `field` by runs of this database created at or after
/// `since`, with the ids each found (the newest run's answer for a key wins).
pub fn recent(
    conn: &Connection,
    module: &str,
    field: &str,
    since: &str,
) -> Result<Vec<(String, Vec<i64>)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT l.key, l.ids FROM lookups l JOIN runs r ON r.id = l.run_id
         WHERE r.module = ?1 AND json_extract(r.settings_json, '$.match_by') = ?2
           AND r.created_at >= ?3
         ORDER BY r.id",
    )?;
    let rows = stmt.query_map(params![module, field, since], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut found = std::collections::HashMap::new();
    for row in rows {
        let (key, ids) = row?;
        found.insert(key, parse_ids(&ids));
    }
    Ok(found.into_iter().collect())
}

fn parse_ids(ids: &str) -> Vec<i64> {
    ids.split(',')
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}
