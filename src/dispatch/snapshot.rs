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

use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::attempt::Failure;
use super::context::{ChunkEnd, SendContext};
pub use super::context::{Expectations, ReadState};
use super::writer::WriterMsg;
use super::StopReason;
use crate::fields::same_value;
use crate::outcome::ItemState;
use crate::store::befores::FieldValue;
use crate::store::chunks::ClaimedChunk;
use crate::store::codec::member_writes;

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
    let settings = &ctx.caller.settings;
    let plain = !settings.skip_unchanged && ctx.expectations.is_empty();
    if plain {
        return plain_snapshot(ctx, chunk, &pending).await;
    }
    // Comparing before the call (--skip-unchanged, an undo) reads the chunk's records just
    // before it, every time: what they hold now decides what is sent.
    let ids: Vec<i64> = pending
        .iter()
        .map(|&i| chunk.members[i].record_id)
        .collect();
    let fields: Vec<String> = writes
        .iter()
        .flat_map(|(_, w)| w.keys().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let current = read_values(ctx, chunk.id, &ids, &fields).await?;
    if !chunk.snapshotted {
        keep(ctx, chunk, &ids, &fields, &current).await?;
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
        // A record an undo deletes holds what its run wrote: that is no reason to keep it.
        let deleting = chunk.kind == crate::api::limits::CallKind::DeleteRecords;
        if unchanged && settings.skip_unchanged && !deleting {
            chunk.outcomes[*i] = ItemState::Succeeded as u8;
            chunk.details.insert(
                *i as u32,
                (
                    crate::codes::UNCHANGED.into(),
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
                    crate::codes::CONFLICT.into(),
                    format!(
                        "changed since the undone run wrote it ({}); left alone: `massup undo --force` {} it",
                        changed.join("; "),
                        if deleting { "deletes" } else { "overwrites" }
                    ),
                ),
            );
        }
    }
    Ok(())
}

/// A plain snapshot (nothing to compare before the call) reads each record once per run,
/// every field the run writes, in the first chunk that carries it: a record in three
/// chunks (a field each, by mass_update) is read once, not three times, whatever the
/// concurrency. A record another chunk is reading is waited for (its values must be on
/// disk before anything writes it); if that read fails, this chunk reads it. The first
/// value stored for a (record, field) wins and is committed before its chunk's call.
async fn plain_snapshot(
    ctx: &SendContext,
    chunk: &mut ClaimedChunk,
    pending: &[usize],
) -> Result<(), ChunkEnd> {
    if chunk.snapshotted {
        return Ok(());
    }
    let records: Vec<i64> = pending
        .iter()
        .map(|&i| chunk.members[i].record_id)
        .collect();
    loop {
        let mut waits = Vec::new();
        let mut mine = Vec::new();
        let claim = {
            let mut read = ctx.records_read.lock().expect("records read lock");
            for id in &records {
                match read.get(id) {
                    Some(ReadState::Read) => {}
                    Some(ReadState::Reading(done)) => waits.push(done.clone()),
                    None => mine.push(*id),
                }
            }
            (!mine.is_empty()).then(|| {
                let (tx, rx) = tokio::sync::watch::channel(false);
                for id in &mine {
                    read.insert(*id, ReadState::Reading(rx.clone()));
                }
                tx
            })
        };
        if let Some(done) = claim {
            let read = match read_values(ctx, chunk.id, &mine, &ctx.columns).await {
                Ok(current) => keep(ctx, chunk, &mine, &ctx.columns, &current).await,
                Err(end) => Err(end),
            };
            let mut states = ctx.records_read.lock().expect("records read lock");
            for id in &mine {
                match read {
                    Ok(()) => states.insert(*id, ReadState::Read),
                    // Whoever waits for these reads them itself.
                    Err(_) => states.remove(id),
                };
            }
            drop(states);
            let _ = done.send(true);
            read?;
        }
        if waits.is_empty() {
            chunk.snapshotted = true;
            return Ok(());
        }
        for mut done in waits {
            tokio::select! {
                _ = done.wait_for(|d| *d) => {}
                _ = ctx.caller.stop.cancelled() => return Err(ChunkEnd::pending()),
            }
        }
    }
}

/// Stores the values read for `ids` as the chunk's snapshot, committed before anything
/// is sent.
async fn keep(
    ctx: &SendContext,
    chunk: &mut ClaimedChunk,
    ids: &[i64],
    fields: &[String],
    current: &HashMap<i64, Map<String, Value>>,
) -> Result<(), ChunkEnd> {
    let mut values = Vec::with_capacity(ids.len() * fields.len());
    for id in ids {
        let Some(record) = current.get(id) else {
            continue; // no such record: the call will say so
        };
        for field in fields {
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
            code: crate::codes::SNAPSHOT_NOT_STORED.into(),
            message: "the values read before writing could not be stored; nothing was sent".into(),
        })));
    }
    chunk.snapshotted = true;
    Ok(())
}

/// Current values of `fields` for `ids` in the worker, each read logged with the chunk,
/// mapping a failure to how the chunk ends. Reads take their slots per attempt like every
/// call, so a read in backoff holds none.
async fn read_values(
    ctx: &SendContext,
    chunk_id: i64,
    ids: &[i64],
    fields: &[String],
) -> Result<HashMap<i64, Map<String, Value>>, ChunkEnd> {
    super::read::current_values(&ctx.caller, ids, fields, Some((ctx, chunk_id)))
        .await
        .map_err(|failure| {
            ChunkEnd::from(match failure {
                Failure::AttemptsUsed { code, message } => Failure::AttemptsUsed {
                    code,
                    message: format!("reading the values before writing: {message}"),
                },
                Failure::Stop {
                    reason: StopReason::Fatal { code, message },
                    ..
                } => {
                    let message = format!("reading the values before writing: {message}");
                    Failure::Stop {
                        reason: StopReason::Fatal {
                            code: code.clone(),
                            message: message.clone(),
                        },
                        code,
                        message,
                    }
                }
                other => other,
            })
        })
}
