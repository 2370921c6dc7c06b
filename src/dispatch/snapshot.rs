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
use crate::api::limits::{MAX_FIELDS_PER_READ, MAX_IDS_PER_READ};
use crate::fields::same_value;
use crate::outcome::ItemState;
use crate::store::befores::FieldValue;
use crate::store::chunks::ClaimedChunk;
use crate::store::codec::member_writes;
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
    let writes = member_writes(
        &chunk.payload,
        chunk.payloads.as_deref(),
        pending.iter().copied(),
    );
    // A plain snapshot (nothing to compare before the call) reads each record once, every
    // field the run writes, in the first chunk that carries it: a record in three chunks
    // (a field each, by mass_update) is read once, not three times. The first value stored
    // for a (record, field) wins and is committed before its chunk's call, so a read that
    // comes after another chunk wrote a field never replaces what that chunk kept.
    let plain = !ctx.settings.skip_unchanged && ctx.expectations.0.is_empty();
    if plain && chunk.snapshotted {
        return Ok(());
    }
    let (ids, fields): (Vec<i64>, Vec<String>) = if plain {
        let read = ctx.records_read.lock().expect("records read lock");
        let ids: Vec<i64> = pending
            .iter()
            .map(|&i| chunk.members[i].record_id)
            .filter(|id| !read.contains(id))
            .collect();
        (ids, ctx.columns.clone())
    } else {
        let ids = pending
            .iter()
            .map(|&i| chunk.members[i].record_id)
            .collect();
        let fields = writes
            .iter()
            .flat_map(|(_, w)| w.keys().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        (ids, fields)
    };
    let current = if ids.is_empty() {
        HashMap::new()
    } else {
        read_values(ctx, &ids, &fields).await?
    };
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
        if plain {
            ctx.records_read
                .lock()
                .expect("records read lock")
                .extend(ids.iter().copied());
        }
    }
    if plain {
        return Ok(());
    }
    for (i, write) in &writes {
        let record_id = chunk.members[*i].record_id;
        let Some(record) = current.get(&record_id) else {
            continue;
        };
        let held = |field: &str| record.get(field).unwrap_or(&Value::Null);
        let unchanged = write
            .iter()
            .all(|(field, value)| same_value(held(field), value));
        if unchanged && ctx.settings.skip_unchanged {
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

/// Current values of `fields` for `ids` in the worker: under a call slot, mapping a
/// failure to how the chunk ends.
async fn read_values(
    ctx: &SendContext,
    ids: &[i64],
    fields: &[String],
) -> Result<HashMap<i64, Map<String, Value>>, ChunkEnd> {
    let slot = tokio::select! {
        biased;
        _ = ctx.stop.cancelled() => return Err(ChunkEnd::pending()),
        slot = ctx.call_slots.acquire() => slot,
    };
    let reader = Reader {
        endpoint: &ctx.endpoint,
        settings: &ctx.settings,
        pace: ctx.limiter.as_ref(),
        calls: &ctx.reads,
        stop: &ctx.stop,
    };
    let read = reader.current_values(ids, fields).await;
    drop(slot);
    read.map_err(|failure| match failure {
        ReadFailure::Stopped => ChunkEnd::pending(),
        ReadFailure::CreditsExhausted { message, .. } => {
            ctx.stop.cancel();
            ChunkEnd::pending()
                .stopping(Some(StopReason::CreditsExhausted))
                .answered("TOO_MANY_REQUESTS".into(), message)
        }
        ReadFailure::AttemptsUsed { code, message } => ChunkEnd::pending().answered(
            code,
            format!("reading the values before writing: {message}"),
        ),
        ReadFailure::Fatal { code, message } => {
            ctx.stop.cancel();
            let message = format!("reading the values before writing: {message}");
            ChunkEnd::pending()
                .stopping(Some(StopReason::Fatal {
                    code: code.clone(),
                    message: message.clone(),
                }))
                .answered(code, message)
        }
    })
}

/// Reads records' current values (Get Records) at a pace, with retries.
pub struct Reader<'a> {
    pub endpoint: &'a super::Endpoint,
    pub settings: &'a super::DispatchSettings,
    pub pace: Option<&'a super::Limiter>,
    /// Calls made, counted here.
    pub calls: &'a std::sync::atomic::AtomicU64,
    pub stop: &'a tokio_util::sync::CancellationToken,
}

impl Reader<'_> {
    /// Current values of `fields` for `ids`, by record id (100 ids and 50 fields a call);
    /// records Zoho does not return are left out.
    pub async fn current_values(
        &self,
        ids: &[i64],
        fields: &[String],
    ) -> Result<HashMap<i64, Map<String, Value>>, ReadFailure> {
        let mut current: HashMap<i64, Map<String, Value>> = HashMap::with_capacity(ids.len());
        for batch in ids.chunks(MAX_IDS_PER_READ) {
            for columns in fields.chunks(MAX_FIELDS_PER_READ) {
                let listed: Vec<String> = batch.iter().map(i64::to_string).collect();
                let url = format!(
                    "{}?ids={}&fields={}",
                    self.endpoint.records_url(),
                    listed.join(","),
                    columns.join(",")
                );
                let request = RowRequest {
                    method: reqwest::Method::GET,
                    url: &url,
                    body: String::new(),
                    kind: "get_records",
                };
                let (rows, _) = read_rows(
                    self.endpoint,
                    &request,
                    self.settings,
                    self.pace,
                    self.calls,
                    self.stop,
                )
                .await?;
                for row in rows {
                    let id = crate::api::response::row_record_id(&row);
                    if let Some(id) = id {
                        current.entry(id).or_default().extend(row);
                    }
                }
            }
        }
        Ok(current)
    }
}
