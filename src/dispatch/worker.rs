//! The worker: sends one claimed chunk until every item has its answer, the chunk runs out
//! of attempts, or the run stops. Each attempt takes a concurrency slot (held from just
//! before the request until its answer is read), a limiter slot and a token; what it did is
//! stored through the writer whatever happened. A chunk leaves the worker as one
//! [`ChunkEnd`]: done, or pending for a later attempt, perhaps stopping the run.
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rustc_hash::FxHashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::call::CallKind;
use super::interpret::{Interpretation, Step};
use super::pacing::{backoff_delay, until_ready, Limiter};
use super::settings::DispatchSettings;
use super::writer::WriterMsg;
use super::{Endpoint, Progress, StopReason};
use crate::aimd::{AdaptiveLimit, AdaptivePermit};
use crate::api::auth::AuthError;
use crate::api::{send_call, Exchange};
use crate::outcome::ItemState;
use crate::store;
use crate::store::chunks::{CallRecord, ChunkState, ChunkUpdate, ClaimedChunk};

/// What every worker of a dispatch shares.
pub struct SendContext {
    pub settings: DispatchSettings,
    pub endpoint: Endpoint,
    /// The concurrency cap: a permit is held from just before a request is sent until its
    /// answer has been read, so reading, recording and backing off never hold a slot. It
    /// adapts: a 429 halves it, a round of answers without one adds a slot back, up to
    /// --concurrency (with or without --rate).
    pub call_slots: Arc<AdaptiveLimit>,
    /// Calls holding a slot right now (for the credits reserve).
    pub calls_in_flight: AtomicUsize,
    pub limiter: Option<Limiter>,
    pub writer: mpsc::Sender<WriterMsg>,
    pub stop: CancellationToken,
    pub stop_reason: Mutex<Option<StopReason>>,
    pub progress: Arc<Progress>,
    /// Calls counted against --max-calls.
    pub calls_counted: AtomicU64,
    pub writer_failed: AtomicBool,
    /// An undo run's values as the undone run wrote them (empty otherwise).
    pub expectations: super::snapshot::Expectations,
    /// Get Records calls made for snapshots.
    pub reads: AtomicU64,
    /// The run's field columns: what a snapshot reads of a record.
    pub columns: Vec<String>,
    /// Records whose values this invocation has read and stored (a plain snapshot reads a
    /// record once).
    pub records_read: Mutex<rustc_hash::FxHashSet<i64>>,
}

impl SendContext {
    /// Records why dispatching stops (the first reason wins) and stops feeding new chunks.
    pub fn stop_with(&self, reason: StopReason) {
        let mut slot = self.stop_reason.lock().expect("stop reason lock");
        if slot.is_none() {
            tracing::warn!("stopping: {reason}");
            *slot = Some(reason);
        }
        self.stop.cancel();
    }

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

    /// Ends a chunk: stops the run if `end` says so, then stores the chunk as it leaves.
    pub async fn finish_chunk(&self, chunk: &ClaimedChunk, end: ChunkEnd) {
        if let Some(reason) = end.stop {
            self.stop_with(reason);
        }
        let update = ChunkUpdate {
            leaves_as: Some(end.state),
            code: end.code,
            message: end.message,
            call: end.call,
            ..update_of(chunk, None, None)
        };
        self.store(update).await;
    }
}

/// 429s (too many calls at once) a chunk takes without using up an attempt: the pool
/// lowers its calls in flight on each, so a few are expected while it finds the org's cap.
const MAX_THROTTLED_PER_CHUNK: u32 = 20;

/// A call's slot, counted in `calls_in_flight` for as long as it is held.
struct InFlight<'a> {
    ctx: &'a SendContext,
    _slot: AdaptivePermit,
}

impl<'a> InFlight<'a> {
    fn enter(ctx: &'a SendContext, slot: AdaptivePermit) -> InFlight<'a> {
        ctx.calls_in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight { ctx, _slot: slot }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.ctx.calls_in_flight.fetch_sub(1, Ordering::SeqCst);
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

    fn after(mut self, call: CallRecord) -> ChunkEnd {
        self.call = Some(call);
        self
    }
}

/// The chunk as it stands after an attempt that another attempt follows.
fn update_of(
    chunk: &ClaimedChunk,
    answer: Option<(String, String)>,
    call: Option<CallRecord>,
) -> ChunkUpdate {
    let (code, message) = answer.unzip();
    ChunkUpdate {
        chunk_id: chunk.id,
        outcomes: chunk.outcomes.clone(),
        details: chunk.details.clone(),
        code,
        message,
        leaves_as: None,
        call,
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
    if ctx.settings.snapshot {
        if let Err(end) = super::snapshot::before_first_call(ctx, chunk).await {
            return end;
        }
    }
    let index: FxHashMap<i64, usize> = chunk
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.record_id, i))
        .collect();
    let mut attempts = 0u32;
    let mut throttled = 0u32;
    let mut rng = rand::rngs::SmallRng::from_os_rng();
    loop {
        let pending: Vec<usize> = (0..chunk.members.len())
            .filter(|&i| ItemState::from_byte(chunk.outcomes[i]) == ItemState::Pending)
            .collect();
        if pending.is_empty() {
            return ChunkEnd::done();
        }
        if ctx.stop.is_cancelled() {
            return ChunkEnd::pending();
        }
        let slot = tokio::select! {
            biased;
            _ = ctx.stop.cancelled() => None,
            slot = ctx.call_slots.acquire() => Some(InFlight::enter(ctx, slot)),
        };
        // A stop can come while waiting for the slot (the answer that freed it may have
        // called for one): check again before anything is sent.
        let Some(slot) = slot.filter(|_| !ctx.stop.is_cancelled()) else {
            return ChunkEnd::pending();
        };
        // The limiter first, the budget second: a call counted against --max-calls is sent,
        // never abandoned in the limiter's queue when the budget's stop comes.
        if let Some(limiter) = &ctx.limiter {
            if !tokio::select! {
                _ = until_ready(limiter) => !ctx.stop.is_cancelled(),
                _ = ctx.stop.cancelled() => false,
            } {
                return ChunkEnd::pending();
            }
        }
        let counted = ctx.calls_counted.fetch_add(1, Ordering::SeqCst);
        if let Some(max) = ctx.settings.max_calls {
            if counted >= max {
                return ChunkEnd::pending().stopping(Some(StopReason::MaxCalls { calls: max }));
            }
        }
        let (token, generation) = match ctx.endpoint.tokens.token().await {
            Ok(found) => found,
            Err(problem) => {
                ctx.calls_counted.fetch_sub(1, Ordering::SeqCst); // nothing was sent
                match problem {
                    AuthError::Stopped => return ChunkEnd::pending(),
                    AuthError::Refused(message) => {
                        let stop = StopReason::Fatal {
                            code: "AUTHENTICATION_FAILURE".into(),
                            message: message.clone(),
                        };
                        return ChunkEnd::pending()
                            .stopping(Some(stop))
                            .answered("AUTHENTICATION_FAILURE".into(), message);
                    }
                    AuthError::Unavailable(message) => {
                        attempts += 1;
                        if attempts < ctx.settings.max_attempts {
                            let delay = backoff_delay(&ctx.settings, attempts, None, &mut rng);
                            if sleep_unless_stopped(&ctx.stop, delay).await {
                                continue;
                            }
                            return ChunkEnd::pending();
                        }
                        let stop = StopReason::TokenUnavailable {
                            message: message.clone(),
                        };
                        return ChunkEnd::pending()
                            .stopping(Some(stop))
                            .answered("TOKEN_UNAVAILABLE".into(), message);
                    }
                }
            }
        };
        let kind = CallKind::of(chunk.kind);
        let body = kind.body(chunk, &pending, &ctx.settings);
        let started_at = store::now();
        let sent_at = tokio::time::Instant::now().into_std();
        let (method, url) = kind.target(&ctx.endpoint);
        let (exchange, took) = send_call(&ctx.endpoint.http, method, url, &token, body).await;
        // The answer is read while the slot is held, so that a stop it calls for (credits
        // below --min-credits, a fatal code) comes before the next call can leave.
        note_credits(ctx, &exchange);
        let Interpretation {
            step,
            http_status,
            call_code,
        } = kind.interpret(
            &exchange,
            chunk,
            &pending,
            &index,
            ctx.endpoint.tokens.can_refresh(),
        );
        // Too many calls at once (or per minute) is the pool's pace, not the chunk's
        // fault: fewer slots, recovering slowly, and no attempt used up (within a bound).
        let mut free_attempt = false;
        match (&step, http_status) {
            (Step::Again { .. }, Some(429)) => {
                let limit = ctx.call_slots.throttled(sent_at);
                tracing::debug!(limit, "429: calls in flight lowered");
                throttled += 1;
                free_attempt = throttled <= MAX_THROTTLED_PER_CHUNK;
            }
            (_, Some(_)) => {
                ctx.call_slots.succeeded();
            }
            (_, None) => {}
        }
        if !matches!(step, Step::Token { .. }) && http_status.is_some() {
            // The server took this token: fresh tokens refused so far were not the
            // credentials' fault.
            ctx.endpoint.tokens.accepted(generation);
        }
        // One event per call at -v: enough to reconstruct a night from its log.
        let (credits, retry_after_ms) = match &exchange {
            Exchange::Answered {
                credits_remaining,
                retry_after,
                ..
            } => (
                *credits_remaining,
                retry_after.map(|d| d.as_millis() as u64),
            ),
            _ => (None, None),
        };
        tracing::debug!(
            chunk = chunk.id,
            kind = kind.name(),
            ids = pending.len(),
            attempt = attempts + 1,
            http_status = http_status.map(i64::from).unwrap_or(-1),
            code = %call_code,
            codes = %codes_counted(chunk, &pending, &call_code),
            latency_ms = took.as_millis() as u64,
            credits_remaining = credits,
            retry_after_ms,
            "call"
        );
        if matches!(step, Step::Fatal { .. } | Step::CreditsExhausted { .. }) {
            ctx.stop.cancel(); // the chunk's end below records why
        }
        drop(slot);
        if !free_attempt {
            attempts += 1;
        }
        ctx.progress.calls.fetch_add(1, Ordering::Relaxed);
        if attempts > 1 {
            ctx.progress.retries.fetch_add(1, Ordering::Relaxed);
        }
        let call = CallRecord {
            started_at,
            duration: took,
            http_status,
            code: Some(call_code.clone()),
            ids: pending.len(),
        };
        // What the attempt means for the chunk: an end (returned at once), or another
        // attempt after a backoff with the answer to store meanwhile.
        let (code, message, retry_after) = match step {
            Step::Settled => {
                count_settled(ctx, chunk, &pending);
                let all_done = chunk
                    .outcomes
                    .iter()
                    .all(|&b| ItemState::from_byte(b) != ItemState::Pending);
                if all_done {
                    // A mixed answer has no one message: the stored one is kept.
                    let message = (call_code == "SUCCESS").then(|| "record updated".to_string());
                    let mut end = ChunkEnd::done().after(call);
                    end.code = Some(call_code);
                    end.message = message;
                    return end;
                }
                // Some records were not in the answer: send those again.
                let message = "the answer did not name every record; sending the rest again";
                let code = if attempts >= ctx.settings.max_attempts {
                    "NO_ANSWER_FOR_RECORD".to_string()
                } else {
                    call_code
                };
                (code, message.to_string(), None)
            }
            Step::Again {
                code,
                message,
                retry_after,
            } => (code, message, retry_after),
            Step::Token { code, message } => {
                // A refused token is not the chunk's fault: it does not use up an attempt.
                // How many fresh tokens may be refused in a row is counted once for the
                // whole process by the token source, so the total minted is what the
                // message below says.
                attempts -= 1;
                let stop = match ctx.endpoint.tokens.rejected(generation).await {
                    Ok(true) => {
                        let update = update_of(chunk, Some((code, message)), Some(call));
                        ctx.store(update).await;
                        continue;
                    }
                    Ok(false) => Some(StopReason::Fatal {
                        code: code.clone(),
                        message: if ctx.endpoint.tokens.can_refresh() {
                            format!(
                                "{message} (still refused after {} fresh tokens)",
                                ctx.endpoint.tokens.fresh_tokens_rejected()
                            )
                        } else {
                            format!("{message}: the access token is invalid or expired; set a fresh ZOHO_ACCESS_TOKEN, or ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET and ZOHO_REFRESH_TOKEN so massup can refresh it")
                        },
                    }),
                    Err(AuthError::Stopped) => None,
                    // The accounts server is down (or Zoho's token budget is spent), not
                    // the credentials wrong: resumable.
                    Err(AuthError::Unavailable(message)) => {
                        Some(StopReason::TokenUnavailable { message })
                    }
                    Err(e) => Some(StopReason::Fatal {
                        code: code.clone(),
                        message: e.to_string(),
                    }),
                };
                let message = match &stop {
                    Some(StopReason::Fatal { message, .. })
                    | Some(StopReason::TokenUnavailable { message }) => message.clone(),
                    _ => message,
                };
                return ChunkEnd::pending()
                    .stopping(stop)
                    .answered(code, message)
                    .after(call);
            }
            Step::CreditsExhausted { code, message } => {
                return ChunkEnd::pending()
                    .stopping(Some(StopReason::CreditsExhausted))
                    .answered(code, message)
                    .after(call);
            }
            Step::Fatal { code, message } => {
                let stop = StopReason::Fatal {
                    code: code.clone(),
                    message: message.clone(),
                };
                return ChunkEnd::pending()
                    .stopping(Some(stop))
                    .answered(code, message)
                    .after(call);
            }
        };
        if attempts >= ctx.settings.max_attempts {
            return ChunkEnd::pending().answered(code, message).after(call);
        }
        let update = update_of(chunk, Some((code, message)), Some(call));
        ctx.store(update).await;
        let delay = backoff_delay(&ctx.settings, attempts, retry_after, &mut rng);
        tracing::debug!(
            chunk = chunk.id,
            kind = kind.name(),
            attempt = attempts,
            backoff_ms = delay.as_millis() as u64,
            retry_after_ms = retry_after.map(|d| d.as_millis() as u64),
            "backoff"
        );
        if !sleep_unless_stopped(&ctx.stop, delay).await {
            return ChunkEnd::pending();
        }
    }
}

async fn sleep_unless_stopped(stop: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = stop.cancelled() => false,
    }
}

/// The codes an answer gave the items it carried, counted: `SUCCESS=480,RECORD_LOCKED=20`
/// (a call-level code, such as a 500's, counts once for the call).
fn codes_counted(chunk: &ClaimedChunk, sent: &[usize], call_code: &str) -> String {
    let mut counted: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for &i in sent {
        let code = match ItemState::from_byte(chunk.outcomes[i]) {
            ItemState::Succeeded => "SUCCESS",
            ItemState::Pending => continue,
            _ => chunk
                .details
                .get(&(i as u32))
                .map_or(call_code, |(code, _)| code.as_str()),
        };
        *counted.entry(code).or_default() += 1;
    }
    if counted.is_empty() {
        return format!("{call_code}=1");
    }
    let parts: Vec<String> = counted.iter().map(|(c, n)| format!("{c}={n}")).collect();
    parts.join(",")
}

fn count_settled(ctx: &SendContext, chunk: &ClaimedChunk, were_pending: &[usize]) {
    for &i in were_pending {
        let counter = match ItemState::from_byte(chunk.outcomes[i]) {
            ItemState::Succeeded => &ctx.progress.succeeded,
            ItemState::Failed => &ctx.progress.failed,
            ItemState::Retryable => &ctx.progress.retryable,
            _ => continue,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        ctx.progress.items_settled.fetch_add(1, Ordering::Relaxed);
    }
}

/// Keeps the credits Zoho reports, and stops the run when none are left or fewer than
/// --min-credits would be once the other calls in flight are answered: each of those, and
/// the call that takes this one's slot when it is freed, costs a credit that this answer
/// does not show yet. Called while this call's own slot is held.
fn note_credits(ctx: &SendContext, exchange: &Exchange) {
    if let Exchange::Answered {
        credits_remaining: Some(left),
        ..
    } = exchange
    {
        ctx.progress
            .credits_remaining
            .store(*left, Ordering::Relaxed);
        let others_in_flight = ctx.calls_in_flight.load(Ordering::SeqCst).saturating_sub(1) as u64;
        if *left == 0 {
            ctx.stop_with(StopReason::CreditsExhausted);
        } else if let Some(min) = ctx.settings.min_credits {
            if left.saturating_sub(others_in_flight + 1) < min {
                ctx.stop_with(StopReason::Credits { remaining: *left });
            }
        }
    }
}
