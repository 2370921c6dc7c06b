//! The worker: sends one claimed chunk until every item has its answer, the chunk runs out
//! of attempts, or the run stops. The values it overwrites are read first when the run
//! takes a snapshot; the call itself goes through the attempt loop ([`super::attempt`]),
//! which stores every attempt through the writer. A chunk leaves the worker as one
//! [`ChunkEnd`]: done, or pending for a later attempt, perhaps stopping the run.
use std::sync::Arc;

use super::attempt::attempt;
use super::call::WriteCall;
pub use super::context::{ChunkEnd, SendContext};
use crate::store::chunks::ClaimedChunk;

/// Sends `chunk` until it ends (see the module doc).
pub async fn send_chunk(ctx: Arc<SendContext>, mut chunk: ClaimedChunk) {
    let end = attempt_until_end(&ctx, &mut chunk).await;
    ctx.finish_chunk(&chunk, end).await;
}

async fn attempt_until_end(ctx: &SendContext, chunk: &mut ClaimedChunk) -> ChunkEnd {
    // The values the chunk overwrites are read (and, the first time, kept) before its
    // first call; records that hold their values already, or that changed since the run
    // an undo takes back, leave the call here.
    // A record an Upsert creates has no values before it to keep (and no id yet).
    if ctx.caller.settings.snapshot && chunk.kind != crate::api::limits::CallKind::UpsertRecords {
        if let Err(end) = super::snapshot::before_first_call(ctx, chunk).await {
            return end;
        }
    }
    if chunk.kind == crate::api::limits::CallKind::BulkWrite {
        return super::bulk::send_job(ctx, chunk).await;
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
