//! Dispatch: sends a run's pending chunks under the API's limits and records what happens
//! to every item. One picture:
//!
//! ```text
//!  feeder (this module) --claim--> writer (owns SQLite; commits claims before they are
//!    |                               sent, and outcomes in batches)
//!    +--spawn (at most 2 x concurrency chunks in flight)--> worker
//!                          worker --call slot, limiter, token--> HTTP --> interpret
//!                             |
//!                             +--chunk updates--> writer
//! ```
//!
//! - [`settings`]: how a run is sent (rate, concurrency, attempts, budgets).
//! - [`pacing`]: the rate limiter and the backoff.
//! - [`attempt`]: the one attempt loop every call goes through (admission, token, send,
//!   interpret, decide), with the [`attempt::Caller`] that holds the pace and budgets.
//! - [`call`]: the write kinds (mass_update, Update Records): bodies and answers.
//! - [`read`]: the reading kinds (Get Records, COQL): rows.
//! - [`interpret`]: what one write exchange means, a pure function.
//! - [`worker`]: one chunk: its snapshot, then its call, ending as a `ChunkEnd`.
//! - [`snapshot`]: the values a chunk overwrites, read and kept before its first call.
//! - [`lookup`]: the `--match-by` lookups a plan sends.
//! - [`writer`]: the single owner of the database connection.
//!
//! Failures are data: every attempt, answered or not, becomes a stored chunk update. A chunk
//! is `in_flight` in the database (committed) before its first request leaves, so a crash
//! at any moment leaves it for `resume` to send again; resending a mass update writes the
//! same values, which is harmless.
pub mod attempt;
pub mod bulk;
pub mod call;
pub mod context;
pub mod interpret;
pub mod lookup;
pub mod pacing;
pub mod read;
pub mod settings;
pub mod snapshot;
pub mod worker;
pub mod writer;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::api::auth::TokenSource;
use crate::api::limits::CallKind;
use crate::api::Endpoints;
use crate::store::chunks::ClaimedChunk;
use crate::store::{self, StoreError};
use attempt::Caller;
use worker::{send_chunk, ChunkEnd, SendContext};
use writer::{run_writer, WriterMsg, WRITER_BATCH};

pub use pacing::{backoff_delay, until_ready, Limiter, TokioClock};
pub use settings::{DispatchSettings, Rate, RateChoice};

/// Why dispatching stopped before every chunk was done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StopReason {
    Interrupted,
    MaxCalls {
        calls: u64,
    },
    /// The next call would take the run's credits past --max-credits.
    MaxCredits {
        /// Credits the run has spent (or has in flight).
        spent: u64,
        max: u64,
        /// What the next call costs.
        next: u64,
    },
    /// Zoho reported fewer credits left than --min-credits keeps in reserve.
    Credits {
        remaining: u64,
    },
    /// The org's daily API credits are spent: every call would be refused until the
    /// rolling 24-hour window frees some, so the run stops, resumable.
    CreditsExhausted,
    /// No access token could be had (the accounts server unreachable or failing): every
    /// other chunk would wait for the same, so the run stops, resumable.
    TokenUnavailable {
        message: String,
    },
    Fatal {
        code: String,
        message: String,
    },
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Interrupted => write!(f, "interrupted"),
            StopReason::MaxCalls { calls } => write!(f, "--max-calls reached ({calls} calls)"),
            StopReason::MaxCredits { spent, max, next } => write!(
                f,
                "--max-credits {max} reached: the run has spent {spent} credits and the next call costs {next}"
            ),
            StopReason::Credits { remaining } => {
                write!(
                    f,
                    "Zoho reports {remaining} API credits left, below --min-credits"
                )
            }
            StopReason::CreditsExhausted => write!(
                f,
                "daily API credits exhausted; resumable when the 24-hour window frees credits (`resume --wait-credits` waits for them)"
            ),
            StopReason::TokenUnavailable { message } => {
                write!(f, "no access token: {message}")
            }
            StopReason::Fatal { code, message } => write!(f, "{code}: {message}"),
        }
    }
}

/// Counters the progress display reads while workers run.
pub struct Progress {
    pub items_total: AtomicU64,
    pub items_settled: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub retryable: AtomicU64,
    pub calls: AtomicU64,
    pub retries: AtomicU64,
    /// What Zoho last said is left (`X-API-CREDITS-REMAINING`); `u64::MAX` until it says.
    pub credits_remaining: AtomicU64,
}

impl Default for Progress {
    fn default() -> Progress {
        Progress {
            items_total: AtomicU64::new(0),
            items_settled: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retryable: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            credits_remaining: AtomicU64::new(u64::MAX),
        }
    }
}

/// What a dispatch did.
#[derive(Debug, Clone)]
pub struct DispatchReport {
    /// Write calls made.
    pub calls: u64,
    /// Calls of every kind (writes and snapshot reads) and the credits they cost.
    pub all_calls: u64,
    pub credits: u64,
    /// What Zoho last said the org has left, if it said.
    pub credits_remaining: Option<u64>,
    pub stop: Option<StopReason>,
    pub elapsed: Duration,
}

/// Where and how to send: the URLs, the module, the HTTP client and the tokens.
pub struct Endpoint {
    pub urls: Endpoints,
    pub module: String,
    pub http: reqwest::Client,
    pub tokens: Arc<TokenSource>,
}

/// Adds a claim's chunks to `ready`; false when the claim failed (the writer is gone).
fn take_claimed(
    ctx: &SendContext,
    answer: Result<Result<Vec<ClaimedChunk>, StoreError>, oneshot::error::RecvError>,
    ready: &mut VecDeque<ClaimedChunk>,
) -> bool {
    match answer {
        Ok(Ok(claimed)) => {
            ready.extend(claimed);
            true
        }
        // Damage found before the call: the send stops (resumable once the database is
        // restored), naming the chunk; nothing of the claim was marked or sent.
        Ok(Err(damaged @ StoreError::ChunkDamaged { .. })) => {
            ctx.caller.stop_with(StopReason::Fatal {
                code: crate::codes::DAMAGED_CHUNK.into(),
                message: damaged.to_string(),
            });
            false
        }
        Ok(Err(e)) => {
            tracing::error!("cannot claim chunks: {e}");
            ctx.writer_failed.store(true, Ordering::Relaxed);
            false
        }
        Err(_) => {
            ctx.writer_failed.store(true, Ordering::Relaxed);
            false
        }
    }
}

/// Sends every pending chunk of `run_id`. Returns when all are done, or when stopped
/// (by `stop`, a budget, or a fatal answer); chunks not finished are left pending.
/// `credits_before` is what the run spent before this send (its --max-credits budget
/// counts them).
pub async fn dispatch(
    db: &Path,
    run_id: i64,
    settings: DispatchSettings,
    endpoint: Endpoint,
    stop: CancellationToken,
    progress: Arc<Progress>,
    credits_before: u64,
) -> Result<DispatchReport, StoreError> {
    let started = tokio::time::Instant::now();
    let mut conn = store::open_for_writer(db)?;
    let pending = store::chunks::pending_chunk_ids(&conn, run_id)?;
    let expectations = snapshot::Expectations::load(&conn, run_id)?;
    let org_id = store::bulk::org_id(&conn, run_id)?;
    let columns = store::runs::run(&conn, run_id)?
        .map(|run| run.columns)
        .unwrap_or_default();
    // Records a plain snapshot has kept already (an earlier invocation) are not read again.
    let records_read = if settings.snapshot && !settings.skip_unchanged && expectations.is_empty() {
        store::befores::records(&conn, run_id)?
            .into_iter()
            .map(|id| (id, snapshot::ReadState::Read))
            .collect()
    } else {
        Default::default()
    };
    tracing::info!(
        run = run_id,
        chunks = pending.len(),
        concurrency = settings.concurrency,
        rate = settings.rate.map(|r| r.to_string()),
        "dispatch started"
    );
    let (writer_tx, writer_rx) = mpsc::channel(4 * WRITER_BATCH);
    let db_path: PathBuf = db.to_path_buf();
    let identity = store::file_identity(db);
    let writer = std::thread::Builder::new()
        .name("massup-writer".into())
        .spawn(move || {
            let result = run_writer(&mut conn, run_id, writer_rx, &db_path, identity);
            if let Err(e) = &result {
                tracing::error!("the database writer failed on {}: {e}", db_path.display());
            }
            result
        })
        .expect("spawn the writer thread");
    let concurrency = settings.concurrency.max(1);
    let settings_bulk_jobs = settings.bulk_jobs.max(1);
    let ctx = Arc::new(SendContext {
        caller: Caller::new(settings, endpoint, stop.clone(), progress, credits_before),
        writer: writer_tx,
        writer_failed: AtomicBool::new(false),
        expectations,
        columns,
        records_read: Mutex::new(records_read),
        org_id: tokio::sync::Mutex::new(org_id),
        bulk_jobs: Semaphore::new(settings_bulk_jobs),
    });
    let mut workers = tokio::task::JoinSet::new();
    // Chunks are claimed ahead of the calls so that a claim's commit overlaps with calls
    // instead of idling them, but at most `2 x concurrency` chunks are in flight (a worker
    // holds one, or it is claimed and waiting) at any moment, which bounds what a kill
    // makes `resume` send again.
    let chunks_in_flight = Arc::new(Semaphore::new(2 * concurrency));
    let mut queue = pending.into_iter();
    let mut exhausted = false;
    let mut ready: VecDeque<ClaimedChunk> = VecDeque::new();
    let mut claiming: Option<oneshot::Receiver<Result<Vec<ClaimedChunk>, StoreError>>> = None;
    loop {
        if stop.is_cancelled() || ctx.writer_failed.load(Ordering::Relaxed) {
            break;
        }
        if claiming.is_none() && !exhausted {
            let room = chunks_in_flight
                .available_permits()
                .saturating_sub(ready.len());
            if room >= (concurrency / 2).max(1) || (ready.is_empty() && room > 0) {
                let batch: Vec<i64> = queue.by_ref().take(room.min(concurrency)).collect();
                if batch.is_empty() {
                    exhausted = true;
                } else {
                    let (reply, receiver) = oneshot::channel();
                    let msg = WriterMsg::Claim {
                        chunk_ids: batch,
                        reply,
                    };
                    if ctx.writer.send(msg).await.is_err() {
                        ctx.writer_failed.store(true, Ordering::Relaxed);
                        break;
                    }
                    claiming = Some(receiver);
                }
            }
        }
        if ready.is_empty() {
            let Some(receiver) = claiming.take() else {
                if exhausted {
                    break;
                }
                // Every slot is taken: wait for a worker to finish.
                tokio::select! {
                    _ = workers.join_next(), if !workers.is_empty() => {}
                    _ = stop.cancelled() => break,
                }
                continue;
            };
            if !take_claimed(&ctx, receiver.await, &mut ready) {
                break;
            }
            continue;
        }
        tokio::select! {
            permit = chunks_in_flight.clone().acquire_owned() => {
                let permit = permit.expect("semaphore never closed");
                let chunk = ready.pop_front().expect("not empty");
                let ctx = ctx.clone();
                workers.spawn(async move {
                    send_chunk(ctx, chunk).await;
                    drop(permit);
                });
                // Reap finished workers so the set does not grow with the run.
                while workers.try_join_next().is_some() {}
            }
            answer = async { claiming.as_mut().expect("guarded").await }, if claiming.is_some() => {
                claiming = None;
                if !take_claimed(&ctx, answer, &mut ready) {
                    break;
                }
            }
            _ = stop.cancelled() => break,
        }
    }
    // Claimed but never sent: back to pending.
    if let Some(receiver) = claiming.take() {
        take_claimed(&ctx, receiver.await, &mut ready);
    }
    for chunk in ready.drain(..) {
        ctx.finish_chunk(&chunk, ChunkEnd::pending()).await;
    }
    while let Some(joined) = workers.join_next().await {
        if let Err(e) = joined {
            tracing::error!("a worker failed: {e}");
        }
    }
    let calls = ctx.caller.progress.calls.load(Ordering::Relaxed);
    let spent = &ctx.caller.spent;
    // Every kind a send makes: all but the lookups and metadata of planning.
    let all_calls = crate::api::limits::ALL_KINDS
        .into_iter()
        .filter(|k| !matches!(k, CallKind::Coql | CallKind::Metadata))
        .map(|k| spent.calls(k))
        .sum();
    let credits = spent.total_credits();
    let credits_remaining = Some(
        ctx.caller
            .progress
            .credits_remaining
            .load(Ordering::Relaxed),
    )
    .filter(|&left| left != u64::MAX);
    let stop_reason = ctx.caller.stop_reason();
    let writer_failed = ctx.writer_failed.load(Ordering::Relaxed);
    drop(ctx); // closes the writer's channel
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await
        .expect("join the writer");
    match written {
        Ok(result) => result?,
        Err(_) => panic!("the database writer thread panicked"),
    }
    if writer_failed {
        return Err(StoreError::WriterFailed {
            path: db.display().to_string(),
        });
    }
    let stop_reason =
        stop_reason.or_else(|| stop.is_cancelled().then_some(StopReason::Interrupted));
    tracing::info!(
        run = run_id,
        calls,
        credits,
        elapsed_ms = started.elapsed().as_millis() as u64,
        stop = stop_reason.as_ref().map(|r| r.to_string()),
        "dispatch ended"
    );
    Ok(DispatchReport {
        calls,
        all_calls,
        credits,
        credits_remaining,
        stop: stop_reason,
        elapsed: started.elapsed(),
    })
}
