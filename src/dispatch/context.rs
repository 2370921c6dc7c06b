//! What the workers of one dispatch share ([`SendContext`]: the caller with its pace and
//! budgets, the writer, the snapshot's state) and how a chunk leaves its worker
//! ([`ChunkEnd`]). Its own file so that the kinds of call, the snapshot and the worker all
//! use it without importing each other in a circle.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rusqlite::Connection;
use serde_json::Value;
use tokio::sync::mpsc;

use super::attempt::{Caller, Failure};
use super::writer::WriterMsg;
use super::StopReason;
use crate::store::chunks::{CallRecord, ChunkState, ChunkUpdate, ClaimedChunk};
use crate::store::StoreError;

/// What every worker of a dispatch shares.
pub struct SendContext {
    /// The connection, pace and budgets every call goes through.
    pub caller: Caller,
    pub writer: mpsc::Sender<WriterMsg>,
    pub writer_failed: AtomicBool,
    /// An undo run's values as the undone run wrote them (empty otherwise).
    pub expectations: Expectations,
    /// The run's field columns: what a snapshot reads of a record.
    pub columns: Vec<String>,
    /// Records whose values the run has read and stored, or is reading (a plain snapshot
    /// reads a record once per run).
    pub records_read: Mutex<rustc_hash::FxHashMap<i64, ReadState>>,
    /// The org id Bulk Write uploads name (kept with the run once asked for).
    pub org_id: tokio::sync::Mutex<Option<String>>,
    /// Bulk Write jobs in progress (`--bulk-jobs`): a chunk holds a permit from its upload
    /// (or wherever a resume finds it) to its result.
    pub bulk_jobs: tokio::sync::Semaphore,
}

impl SendContext {
    /// Stores a chunk's update through the writer.
    pub async fn store(&self, update: ChunkUpdate) {
        if self
            .writer
            .send(WriterMsg::Attempt(Box::new(update)))
            .await
            .is_err()
        {
            // Nothing more can be recorded: no call may go out unrecorded.
            self.writer_failed.store(true, Ordering::Relaxed);
            self.caller.stop.cancel();
        }
    }

    /// Keeps the ids of records an Upsert answer created (`--create-missing`).
    pub async fn store_created(&self, records: Vec<crate::store::created::CreatedRecord>) {
        if self.writer.send(WriterMsg::Created(records)).await.is_err() {
            self.writer_failed.store(true, Ordering::Relaxed);
            self.caller.stop.cancel();
        }
    }

    /// Logs a call that changes no item (a snapshot's read) with its chunk.
    pub async fn log_call(&self, chunk_id: i64, call: CallRecord) {
        if self
            .writer
            .send(WriterMsg::Call { chunk_id, call })
            .await
            .is_err()
        {
            // Nothing more can be recorded: no call may go out unrecorded.
            self.writer_failed.store(true, Ordering::Relaxed);
            self.caller.stop.cancel();
        }
    }

    /// Ends a chunk: stops the run if `end` says so, then stores the chunk as it leaves.
    pub async fn finish_chunk(&self, chunk: &ClaimedChunk, end: ChunkEnd) {
        if let Some(reason) = end.stop {
            self.caller.stop_with(reason);
        }
        let update = ChunkUpdate {
            chunk_id: chunk.id,
            outcomes: chunk.outcomes.clone(),
            details: chunk.details.clone(),
            leaves_as: Some(end.state),
            code: end.code,
            message: end.message,
            call: end.call,
        };
        self.store(update).await;
    }
}

/// How a chunk leaves its worker.
#[derive(Debug)]
pub struct ChunkEnd {
    pub state: ChunkState,
    /// Stop the whole run, for this reason.
    pub stop: Option<StopReason>,
    /// The answer that ended it, if any (None keeps what is stored).
    pub code: Option<String>,
    pub message: Option<String>,
    /// The last HTTP attempt, if one was made since the last stored update.
    pub call: Option<CallRecord>,
}

impl ChunkEnd {
    /// Every item answered.
    pub fn done() -> ChunkEnd {
        ChunkEnd {
            state: ChunkState::Done,
            stop: None,
            code: None,
            message: None,
            call: None,
        }
    }

    /// Left for a later attempt (resume), nothing sent since the last update.
    pub fn pending() -> ChunkEnd {
        ChunkEnd {
            state: ChunkState::Pending,
            ..ChunkEnd::done()
        }
    }

    pub(super) fn stopping(mut self, reason: Option<StopReason>) -> ChunkEnd {
        self.stop = reason;
        self
    }

    pub(super) fn answered(mut self, code: String, message: String) -> ChunkEnd {
        self.code = Some(code);
        self.message = Some(message);
        self
    }
}

impl From<Failure> for ChunkEnd {
    /// A call that ended without every answer leaves its chunk pending, with the answer
    /// that ended it and the stop it calls for.
    fn from(failure: Failure) -> ChunkEnd {
        match failure {
            Failure::Stopped => ChunkEnd::pending(),
            Failure::AttemptsUsed { code, message } => ChunkEnd::pending().answered(code, message),
            Failure::Stop {
                reason,
                code,
                message,
            } => ChunkEnd::pending()
                .stopping(Some(reason))
                .answered(code, message),
        }
    }
}

/// What an undo run expects each (record, field) to hold: what the undone run wrote.
#[derive(Debug, Default)]
pub struct Expectations(HashMap<(i64, String), Value>);

impl Expectations {
    /// A stored value that cannot be read is damage: the undo stops naming the record and
    /// field rather than take it for an empty field (and clear what is there).
    pub fn load(conn: &Connection, run_id: i64) -> Result<Expectations, StoreError> {
        let values = crate::store::befores::expectations(conn, run_id)?;
        let mut expected = HashMap::with_capacity(values.len());
        for v in values {
            let value = serde_json::from_str(&v.value_json).map_err(|e| StoreError::Damaged {
                what: format!(
                    "the value run {run_id} expects in field {} of record {}",
                    v.field, v.record_id
                ),
                problem: e.to_string(),
            })?;
            expected.insert((v.record_id, v.field), value);
        }
        Ok(Expectations(expected))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, record: i64, field: &str) -> Option<&Value> {
        self.0.get(&(record, field.to_string()))
    }
}

/// Where a record's plain snapshot stands in this run.
#[derive(Debug, Clone)]
pub enum ReadState {
    /// Read by a chunk whose read is under way; the channel turns true when it ends.
    Reading(tokio::sync::watch::Receiver<bool>),
    /// Read and stored.
    Read,
}
