//! The worker: sends one claimed chunk until every item has its answer, the chunk runs out
//! of attempts, or the run stops. The values it overwrites are read first when the run
//! takes a snapshot; the call itself goes through the attempt loop ([`super::attempt`]),
//! which stores every attempt through the writer. A chunk leaves the worker as one
//! [`ChunkEnd`]: done, or pending for a later attempt, perhaps stopping the run.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::attempt::{attempt, Caller, Failure};
use super::call::WriteCall;
use super::writer::WriterMsg;
use super::StopReason;
use crate::store::chunks::{CallRecord, ChunkState, ChunkUpdate, ClaimedChunk};

/// What every worker of a dispatch shares.
pub struct SendContext {
    /// The connection, pace and budgets every call goes through.
    pub caller: Caller,
    pub writer: mpsc::Sender<WriterMsg>,
    pub writer_failed: AtomicBool,
    /// An undo run's values as the undone run wrote them (empty otherwise).
    pub expectations: super::snapshot::Expectations,
    /// The run's field columns: what a snapshot reads of a record.
    pub columns: Vec<String>,
    /// Records whose values the run has read and stored, or is reading (a plain snapshot
    /// reads a record once per run).
    pub records_read: Mutex<rustc_hash::FxHashMap<i64, super::snapshot::ReadState>>,
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
            self.writer_failed.store(true, Ordering::Relaxed);
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
            self.writer_failed.store(true, Ordering::Relaxed);
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
    fn done() -> ChunkEnd {
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

/// Sends `chunk` until it ends (see the module doc).
pub async fn send_chunk(ctx: Arc<SendContext>, mut chunk: ClaimedChunk) {
    let end = attempt_until_end(&ctx, &mut chunk).await;
    ctx.finish_chunk(&chunk, end).await;
}

async fn attempt_until_end(ctx: &SendContext, chunk: &mut ClaimedChunk) -> ChunkEnd {
    // The values the chunk overwrites are read (and, the first time, kept) before its
    // first call; records that hold their values already, or that changed since the run
    // an undo takes back, leave the call here.
    if ctx.caller.settings.snapshot {
        if let Err(end) = super::snapshot::before_first_call(ctx, chunk).await {
            return end;
        }
    }
    let mut call = WriteCall::new(ctx, chunk);
    if call.pending().is_empty() {
        return ChunkEnd::done();
    }
    let result = attempt(&ctx.caller, &mut call).await;
    let last_call = call.last_call.take();
    let mut end = match result {
        Ok(call_code) => {
            // A mixed answer has no one message: the stored one is kept.
            let message = (call_code == crate::codes::SUCCESS)
                .then(|| crate::codes::SUCCESS_MESSAGE.to_string());
            let mut end = ChunkEnd::done();
            end.code = Some(call_code);
            end.message = message;
            end
        }
        Err(failure) => ChunkEnd::from(failure),
    };
    end.call = last_call;
    end
}
