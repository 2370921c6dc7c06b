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
//! - [`call`]: kinds of call, each owning its body builder and answer interpreter.
//! - [`interpret`]: what one exchange means, a pure function.
//! - [`worker`]: one chunk's attempts, ending as a `ChunkEnd`.
//! - [`writer`]: the single owner of the database connection.
//!
//! Failures are data: every attempt, answered or not, becomes a stored chunk update. A chunk
//! is `in_flight` in the database (committed) before its first request leaves, so a crash
//! at any moment leaves it for `resume` to send again; resending a mass update writes the
//! same values, which is harmless.
pub mod call;
pub mod interpret;
pub mod lookup;
pub mod pacing;
pub mod settings;
pub mod snapshot;
pub mod worker;
pub mod writer;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::aimd::{AdaptiveLimit, Aimd};
use crate::api::auth::TokenSource;
use crate::store::chunks::ClaimedChunk;
use crate::store::{self, StoreError};
use pacing::limiter;
use worker::{send_chunk, ChunkEnd, SendContext};
use writer::{run_writer, WriterMsg, WRITER_BATCH};

pub use pacing::{backoff_delay, until_ready, Limiter, TokioClock};
pub use settings::{DispatchSettings, Rate};

/// Why dispatching stopped before every chunk was done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StopReason {
    Interrupted,
    MaxCalls {
        calls: u64,
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
#[derive(Default)]
pub struct Progress {
    pub items_total: AtomicU64,
    pub items_settled: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub retryable: AtomicU64,
    pub calls: AtomicU64,
    pub retries: AtomicU64,
    pub credits_remaining: AtomicU64,
}

/// What a dispatch did.
#[derive(Debug, Clone)]
pub struct DispatchReport {
    pub calls: u64,
    pub stop: Option<StopReason>,
    pub elapsed: Duration,
}

/// Where and how to send.
pub struct Endpoint {
    /// Full URL of `.../crm/{version}/{module}/actions/mass_update`.
    pub mass_update_url: String,
    pub http: reqwest::Client,
    pub tokens: Arc<TokenSource>,
}

impl Endpoint {
    /// `.../crm/{version}/{module}`: where Update Records calls go.
    pub fn records_url(&self) -> &str {
        self.mass_update_url
            .strip_suffix("/actions/mass_update")
            .unwrap_or(&self.mass_update_url)
    }
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
pub async fn dispatch(
    db: &Path,
    run_id: i64,
    settings: DispatchSettings,
    endpoint: Endpoint,
    stop: CancellationToken,
    progress: Arc<Progress>,
) -> Result<DispatchReport, StoreError> {
    let started = tokio::time::Instant::now();
    let mut conn = store::open_for_writer(db)?;
    let pending = store::chunks::pending_chunk_ids(&conn, run_id)?;
    let expectations = snapshot::Expectations::load(&conn, run_id)?;
    let columns = store::runs::run(&conn, run_id)?
        .map(|run| run.columns)
        .unwrap_or_default();
    tracing::info!(
        run = run_id,
        chunks = pending.len(),
        concurrency = settings.concurrency,
        rate = settings.rate.map(|r| r.to_string()),
        "dispatch started"
    );
    let (writer_tx, writer_rx) = mpsc::channel(4 * WRITER_BATCH);
    let db_path: PathBuf = db.to_path_buf();
    let writer = std::thread::Builder::new()
        .name("massup-writer".into())
        .spawn(move || {
            let result = run_writer(&mut conn, run_id, writer_rx);
            if let Err(e) = &result {
                tracing::error!("the database writer failed on {}: {e}", db_path.display());
            }
            result
        })
        .expect("spawn the writer thread");
    let concurrency = settings.concurrency.max(1);
    let ctx = Arc::new(SendContext {
        call_slots: AdaptiveLimit::new(Aimd::new(concurrency)),
        calls_in_flight: AtomicUsize::new(0),
        limiter: settings.rate.map(limiter),
        settings,
        endpoint,
        writer: writer_tx,
        stop: stop.clone(),
        stop_reason: Mutex::new(None),
        progress,
        calls_counted: AtomicU64::new(0),
        writer_failed: AtomicBool::new(false),
        expectations,
        reads: AtomicU64::new(0),
        columns,
        records_read: Mutex::new(Default::default()),
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
    let calls = ctx.progress.calls.load(Ordering::Relaxed);
    let stop_reason = ctx.stop_reason.lock().expect("stop lock").clone();
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
        return Err(StoreError::Sql(rusqlite::Error::InvalidQuery));
    }
    let stop_reason =
        stop_reason.or_else(|| stop.is_cancelled().then_some(StopReason::Interrupted));
    tracing::info!(
        run = run_id,
        calls,
        elapsed_ms = started.elapsed().as_millis() as u64,
        stop = stop_reason.as_ref().map(|r| r.to_string()),
        "dispatch ended"
    );
    Ok(DispatchReport {
        calls,
        stop: stop_reason,
        elapsed: started.elapsed(),
    })
}
