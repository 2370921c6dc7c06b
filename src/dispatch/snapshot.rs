//! The safety net in the worker: before a chunk's first call in an invocation, the current
//! values of the fields it writes are read for its records (Get Records, 100 ids and 50
//! fields a call, at the run's pace) and, the first time, stored and committed (the
//! `befores` table, what `undo` writes back) before anything is sent. The values read then
//! decide two things without a call:
//! - `--skip-unchanged`: a record that holds every value already is left out (succeeded,
//!   code UNCHANGED: nothing written, no workflow fired). An undo run always does this, so
//!   a record already holding its old value (an undo resumed after a kill) is not written
//!   twice.
//! - an undo run: a record whose value is no longer what the undone run wrote was changed
//!   by someone since; it is left alone (failed, code CONFLICT) unless `undo --force`.
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use rusqlite::Connection;
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::lookup::{read_rows, ReadFailure, RowRequest};
use super::worker::{ChunkEnd, SendContext};
use super::writer::WriterMsg;
use super::StopReason;
use crate::outcome::ItemState;
use crate::plan::settings::{MAX_FIELDS_PER_READ, MAX_IDS_PER_READ};
use crate::store::befores::FieldValue;
use crate::store::chunks::{ChunkKind, ClaimedChunk};
use crate::store::StoreError;

/// What an undo run expects each (record, field) to hold: what the undone run wrote.
#[derive(Debug, Default)]
pub struct Expectations(HashMap<(i64, String), Value>);

impl Expectations {
    pub fn load(conn: &Connection, run_id: i64) -> Result<Expectations, StoreError> {
        let values = crate::store::befores::expectations(conn, run_id)?;
        Ok(Expectations(
            values
                .into_iter()
                .map(|v| {
                    let value = serde_json::from_str(&v.value_json).unwrap_or(Value::Null);
                    ((v.record_id, v.field), value)
                })
                .collect(),
        ))
    }

    fn get(&self, record: i64, field: &str) -> Option<&Value> {
        self.0.get(&(record, field.to_string()))
    }
}

/// Whether a value read from Zoho is the value written: numbers as numbers, text as text,
/// lookups by id, multi-selects as sets, and empty ("", [], null) as empty.
pub fn same_value(read: &Value, written: &Value) -> bool {
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if empty(read) || empty(written) {
        return empty(read) && empty(written);
    }
    match (read, written) {
        (Value::Object(a), Value::Object(b)) => match (a.get("id"), b.get("id")) {
            (Some(x), Some(y)) => same_value(x, y),
            _ => a == b,
        },
        (Value::Object(a), other) | (other, Value::Object(a)) => {
            a.get("id").is_some_and(|id| same_value(id, other))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            s.trim().parse::<f64>().ok() == n.as_f64()
        }
        (Value::Array(a), Value::Array(b)) => {
            let set = |items: &Vec<Value>| -> BTreeSet<String> {
                items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect()
            };
            set(a) == set(b)
        }
        _ => read == written,
    }
}

/// The fields each pending item writes, in member order.
fn written(chunk: &ClaimedChunk, pending: &[usize]) -> Vec<(usize, Map<String, Value>)> {
    let parse = |text: &str| -> Map<String, Value> {
        serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| match v {
                Value::Object(map) => Some(map),
                _ => None,
            })
            .unwrap_or_default()
    };
    match (chunk.kind, &chunk.payloads) {
        (ChunkKind::UpdateRecords, Some(objects)) => pending
            .iter()
            .map(|&i| (i, parse(objects.get(i).map_or("{}", String::as_str))))
            .collect(),
        _ => {
            let shared = parse(&chunk.payload);
            pending.iter().map(|&i| (i, shared.clone())).collect()
        }
    }
}

/// Reads the chunk's records' current values, keeps them the first time, and settles the
/// items that need no call. `Err` ends the chunk (a stop, or reads that kept failing).
pub async fn before_first_call(
    ctx: &SendContext,
    chunk: &mut ClaimedChunk,
) -> Result<(), ChunkEnd> {
    let pending: Vec<usize> = (0..chunk.members.len())
        .filter(|&i| ItemState::from_byte(chunk.outcomes[i]) == ItemState::Pending)
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let writes = written(chunk, &pending);
    let fields: Vec<String> = writes
        .iter()
        .flat_map(|(_, w)| w.keys().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let ids: Vec<i64> = pending
        .iter()
        .map(|&i| chunk.members[i].record_id)
        .collect();
    let current = read_values(ctx, &ids, &fields).await?;
    if !chunk.snapshotted {
        let mut values = Vec::with_capacity(ids.len() * fields.len());
        for id in &ids {
            let Some(record) = current.get(id) else {
                continue; // no such record: the call will say so
            };
            for field in &fields {
                values.push(FieldValue {
                    record_id: *id,
                    field: field.clone(),
                    value_json: record.get(field).unwrap_or(&Value::Null).to_string(),
                });
            }
        }
        let (reply, stored) = oneshot::channel();
        let message = WriterMsg::Snapshot {
            chunk_id: chunk.id,
            values,
            reply,
        };
        let committed = match ctx.writer.send(message).await {
            Ok(()) => stored.await.ok().and_then(Result::ok).is_some(),
            Err(_) => false,
        };
        if !committed {
            // Without the values on disk the run could not be undone: send nothing.
            ctx.writer_failed.store(true, Ordering::SeqCst);
            return Err(ChunkEnd::pending().stopping(Some(StopReason::Fatal {
                code: "SNAPSHOT_NOT_STORED".into(),
                message: "the values read before writing could not be stored; nothing was sent"
                    .into(),
            })));
        }
        chunk.snapshotted = true;
    }
    let undo = !ctx.expectations.0.is_empty();
    for (i, write) in &writes {
        let record_id = chunk.members[*i].record_id;
        let Some(record) = current.get(&record_id) else {
            continue;
        };
        let held = |field: &str| record.get(field).unwrap_or(&Value::Null);
        let unchanged = write
            .iter()
            .all(|(field, value)| same_value(held(field), value));
        if unchanged && (ctx.settings.skip_unchanged || undo) {
            chunk.outcomes[*i] = ItemState::Succeeded as u8;
            chunk.details.insert(
                *i as u32,
                (
                    "UNCHANGED".into(),
                    "the record held these values already; nothing was sent".into(),
                ),
            );
            continue;
        }
        let changed: Vec<String> = write
            .keys()
            .filter_map(|field| {
                let expected = ctx.expectations.get(record_id, field)?;
                (!same_value(held(field), expected)).then(|| {
                    format!(
                        "{field} holds {} where the undone run wrote {}",
                        held(field),
                        expected
                    )
                })
            })
            .collect();
        if !changed.is_empty() {
            chunk.outcomes[*i] = ItemState::Failed as u8;
            chunk.details.insert(
                *i as u32,
                (
                    "CONFLICT".into(),
                    format!(
                        "changed since the undone run wrote it ({}); left alone: `massup undo --force` overwrites it",
                        changed.join("; ")
                    ),
                ),
            );
        }
    }
    Ok(())
}

/// Current values of `fields` for `ids`, by record id; records Zoho does not return are
/// left out.
async fn read_values(
    ctx: &SendContext,
    ids: &[i64],
    fields: &[String],
) -> Result<HashMap<i64, Map<String, Value>>, ChunkEnd> {
    let mut current: HashMap<i64, Map<String, Value>> = HashMap::with_capacity(ids.len());
    for batch in ids.chunks(MAX_IDS_PER_READ) {
        for columns in fields.chunks(MAX_FIELDS_PER_READ) {
            let listed: Vec<String> = batch.iter().map(i64::to_string).collect();
            let url = format!(
                "{}?ids={}&fields={}",
                ctx.endpoint.records_url(),
                listed.join(","),
                columns.join(",")
            );
            let request = RowRequest {
                method: reqwest::Method::GET,
                url: &url,
                body: String::new(),
                kind: "get_records",
            };
            let slot = tokio::select! {
                biased;
                _ = ctx.stop.cancelled() => return Err(ChunkEnd::pending()),
                slot = ctx.call_slots.acquire() => slot,
            };
            let read = read_rows(
                &ctx.endpoint,
                &request,
                &ctx.settings,
                ctx.limiter.as_ref(),
                &ctx.reads,
                &ctx.stop,
            )
            .await;
            drop(slot);
            let rows = match read {
                Ok((rows, _)) => rows,
                Err(ReadFailure::Stopped) => return Err(ChunkEnd::pending()),
                Err(ReadFailure::CreditsExhausted { message, .. }) => {
                    ctx.stop.cancel();
                    return Err(ChunkEnd::pending()
                        .stopping(Some(StopReason::CreditsExhausted))
                        .answered("TOO_MANY_REQUESTS".into(), message));
                }
                Err(ReadFailure::AttemptsUsed { code, message }) => {
                    return Err(ChunkEnd::pending().answered(
                        code,
                        format!("reading the values before writing: {message}"),
                    ))
                }
                Err(ReadFailure::Fatal { code, message }) => {
                    ctx.stop.cancel();
                    let message = format!("reading the values before writing: {message}");
                    return Err(ChunkEnd::pending()
                        .stopping(Some(StopReason::Fatal {
                            code: code.clone(),
                            message: message.clone(),
                        }))
                        .answered(code, message));
                }
            };
            for row in rows {
                let id = match row.get("id") {
                    Some(Value::String(s)) => s.parse::<i64>().ok(),
                    Some(Value::Number(n)) => n.as_i64(),
                    _ => None,
                };
                if let Some(id) = id {
                    current.entry(id).or_default().extend(row);
                }
            }
        }
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::same_value;
    use serde_json::json;

    #[test]
    fn values_read_compare_with_values_written_as_zoho_stores_them() {
        assert!(same_value(&json!("Contacted"), &json!("Contacted")));
        assert!(!same_value(&json!("Contacted"), &json!("contacted")));
        assert!(same_value(&json!(1250.5), &json!(1250.50)));
        assert!(same_value(&json!("123456789012"), &json!(123456789012_i64)));
        assert!(same_value(&json!(null), &json!("")));
        assert!(!same_value(&json!(null), &json!("x")));
        assert!(same_value(
            &json!({"name": "Patricia Boyle", "id": "42"}),
            &json!({"id": "42"})
        ));
        assert!(same_value(&json!(["a", "b"]), &json!(["b", "a"])));
        assert!(!same_value(&json!(["a"]), &json!(["a", "b"])));
    }
}
