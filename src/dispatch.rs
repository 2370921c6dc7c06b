//! Dispatch: sends a run's pending chunks under the API's limits and records what happens
//! to every item. One picture:
//!
//! ```text
//!  feeder --claim--> writer (owns SQLite; commits claims before they are sent,
//!    |                 and outcomes in batches)
//!    +--spawn (semaphore permit = concurrency cap)--> worker --rate limiter--> HTTP
//!                                                        |
//!                                                        +--attempt records--> writer
//! ```
//!
//! Failures are data: every attempt, answered or not, becomes an `AttemptRecord`. A chunk
//! is `in_flight` in the database (committed) before its first request leaves, so a crash
//! at any moment leaves it for `resume` to send again; resending a mass update writes the
//! same values, which is harmless.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::BackoffBuilder;
use governor::{Quota, RateLimiter};
use rand::{Rng, SeedableRng};
use rusqlite::{params, Connection};
use rustc_hash::FxHashMap;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::api::auth::{AuthError, TokenSource};
use crate::api::response::{parse_body, CallAnswer};
use crate::api::{send_mass_update, Exchange};
use crate::outcome::{classify_code, decode_members, next_state, AnswerClass, ItemState, Member};
use crate::store::{self, StoreError};

/// A rate: `count` calls per `per`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl std::str::FromStr for Rate {
    type Err = String;

    /// `10/s`, `600/min`, `5000/h`, or a bare number meaning per second.
    fn from_str(text: &str) -> Result<Rate, String> {
        let (count, unit) = text.split_once('/').unwrap_or((text, "s"));
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{text:?}: the count must be a whole number above 0"))?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use s, min or h)"
                ))
            }
        };
        Ok(Rate { count, per })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            60 => "min",
            3600 => "h",
            _ => "s",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// How a run is sent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct DispatchSettings {
    pub concurrency: usize,
    pub rate: Option<Rate>,
    /// HTTP attempts per chunk within one run before it is left pending.
    pub max_attempts: u32,
    pub timeout: Duration,
    /// Stop (resumable) after this many HTTP calls.
    pub max_calls: Option<u64>,
    /// Stop (resumable) once Zoho reports fewer credits left than this.
    pub min_credits: Option<u64>,
    /// First backoff step; each retry doubles it up to `backoff_max`, with full jitter.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub over_write: bool,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            concurrency: 10,
            rate: None,
            max_attempts: 5,
            timeout: Duration::from_secs(60),
            max_calls: None,
            min_credits: None,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            over_write: false,
        }
    }
}

/// Why dispatching stopped before every chunk was done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StopReason {
    Interrupted,
    MaxCalls {
        calls: u64,
    },
    Credits {
        remaining: u64,
    },
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

// ---------------------------------------------------------------------------------------
// Rate limiting: governor's GCRA, on a clock that follows tokio's, so that tests with
// paused time are exact and a limiter wait is a tokio sleep that a stop can cancel.

#[derive(Clone, Debug, Default)]
pub struct TokioClock;

impl governor::clock::Clock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> Self::Instant {
        tokio::time::Instant::now().into_std()
    }
}

impl governor::clock::ReasonablyRealtime for TokioClock {}

pub type Limiter = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    TokioClock,
    governor::middleware::NoOpMiddleware<std::time::Instant>,
>;

/// A limiter for `rate`. The burst is one call: calls are spread evenly instead of
/// bursting at the start of each period, which is what a server-side per-second window
/// tolerates best.
pub fn limiter(rate: Rate) -> Limiter {
    let period = rate.per / rate.count;
    let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
        .expect("a non-zero period")
        .allow_burst(std::num::NonZeroU32::MIN);
    RateLimiter::direct_with_clock(quota, TokioClock)
}

/// Waits for the limiter's next slot.
pub async fn until_ready(limiter: &Limiter) {
    use governor::clock::Clock;
    while let Err(not_until) = limiter.check() {
        tokio::time::sleep(not_until.wait_time_from(TokioClock.now())).await;
    }
}

/// The backoff before attempt `attempt + 1` (attempt counts from 1): an exponential step
/// from backon's builder, then full jitter (uniform between zero and the step) so that
/// workers hit by the same 429 storm do not come back in step. A Retry-After from the
/// server, if any, is the floor.
pub fn backoff_delay(
    settings: &DispatchSettings,
    attempt: u32,
    retry_after: Option<Duration>,
    rng: &mut impl Rng,
) -> Duration {
    // backon gives the capped exponential schedule; it only adds jitter on top of the step
    // ("equal jitter"), so full jitter is applied here.
    let step = backon::ExponentialBuilder::default()
        .with_min_delay(settings.backoff_base)
        .with_max_delay(settings.backoff_max)
        .with_factor(2.0)
        .with_max_times(attempt as usize)
        .build()
        .take(attempt as usize)
        .last()
        .unwrap_or(settings.backoff_base);
    let jittered = step.mul_f64(rng.random::<f64>());
    match retry_after {
        Some(floor) => jittered.max(floor),
        None => jittered,
    }
}

// ---------------------------------------------------------------------------------------
// The writer: the only owner of the database connection during a dispatch.

/// A chunk handed to a worker.
pub struct Claimed {
    pub id: i64,
    pub payload: String,
    pub members: Vec<Member>,
    pub outcomes: Vec<u8>,
    pub details: BTreeMap<u32, (String, String)>,
}

/// One HTTP attempt, as logged in `calls`.
pub struct CallLog {
    pub started_at: String,
    pub duration: Duration,
    pub http_status: Option<u16>,
    pub code: Option<String>,
    pub ids: usize,
}

/// The state of a chunk after one attempt (or after a decision not to send it).
pub struct AttemptRecord {
    pub chunk_id: i64,
    pub outcomes: Vec<u8>,
    pub details: BTreeMap<u32, (String, String)>,
    pub code: Option<String>,
    pub message: Option<String>,
    /// None: still in flight (another attempt follows); Some: done or pending.
    pub final_state: Option<&'static str>,
    pub call: Option<CallLog>,
}

enum WriterMsg {
    Claim {
        chunk_ids: Vec<i64>,
        reply: oneshot::Sender<Result<Vec<Claimed>, StoreError>>,
    },
    Attempt(Box<AttemptRecord>),
}

/// Messages a writer transaction takes before it commits: large enough to make commits
/// rare at 1,000 calls/s, small enough that a crash loses little (and loses nothing that
/// `resume` cannot redo).
const WRITER_BATCH: usize = 512;

fn run_writer(
    conn: &mut Connection,
    run_id: i64,
    mut receiver: mpsc::Receiver<WriterMsg>,
) -> Result<(), StoreError> {
    while let Some(first) = receiver.blocking_recv() {
        let tx = conn.transaction()?;
        let mut replies = Vec::new();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(msg) = next.take() {
            taken += 1;
            match msg {
                WriterMsg::Claim { chunk_ids, reply } => {
                    let claimed = claim(&tx, run_id, &chunk_ids);
                    replies.push((reply, claimed));
                }
                WriterMsg::Attempt(record) => record_attempt(&tx, run_id, &record)?,
            }
            if taken < WRITER_BATCH {
                next = receiver.try_recv().ok();
            }
        }
        tx.commit()?;
        // Claims are answered only once committed: nothing is sent before it is in_flight
        // on disk.
        for (reply, claimed) in replies {
            let _ = reply.send(claimed);
        }
    }
    Ok(())
}

fn claim(
    tx: &rusqlite::Transaction<'_>,
    run_id: i64,
    chunk_ids: &[i64],
) -> Result<Vec<Claimed>, StoreError> {
    let mut mark = tx.prepare_cached(
        "UPDATE chunks SET state = 'in_flight' WHERE id = ?1 AND run_id = ?2 AND state = 'pending'",
    )?;
    let mut load = tx.prepare_cached(
        "SELECT c.members, c.outcomes, c.details_json, g.payload_json
         FROM chunks c JOIN groups g ON g.id = c.group_id WHERE c.id = ?1",
    )?;
    let mut claimed = Vec::with_capacity(chunk_ids.len());
    for &id in chunk_ids {
        if mark.execute(params![id, run_id])? != 1 {
            continue; // not pending any more (another massup on the same run?)
        }
        let (members, outcomes, details_json, payload) = load.query_row(params![id], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        claimed.push(Claimed {
            id,
            payload,
            members: decode_members(&members),
            outcomes,
            details: details_json
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default(),
        });
    }
    Ok(claimed)
}

fn record_attempt(
    tx: &rusqlite::Transaction<'_>,
    run_id: i64,
    record: &AttemptRecord,
) -> Result<(), StoreError> {
    let details_json = if record.details.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&record.details).expect("details serialize"))
    };
    let attempts = i64::from(record.call.is_some());
    let last_attempt_at = record.call.as_ref().map(|c| c.started_at.clone());
    let changed = tx
        .prepare_cached(
            "UPDATE chunks SET outcomes = ?2, details_json = ?3, code = COALESCE(?4, code),
                 message = COALESCE(?5, message), attempts = attempts + ?6,
                 last_attempt_at = COALESCE(?7, last_attempt_at), state = COALESCE(?8, state)
             WHERE id = ?1 AND state = 'in_flight'",
        )?
        .execute(params![
            record.chunk_id,
            record.outcomes,
            details_json,
            record.code,
            record.message,
            attempts,
            last_attempt_at,
            record.final_state,
        ])?;
    if changed != 1 {
        return Err(StoreError::Sql(rusqlite::Error::StatementChangedRows(
            changed,
        )));
    }
    if let Some(call) = &record.call {
        tx.prepare_cached(
            "INSERT INTO calls (run_id, chunk_id, started_at, duration_ms, http_status, code, ids)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            run_id,
            record.chunk_id,
            call.started_at,
            call.duration.as_millis() as i64,
            call.http_status,
            call.code,
            call.ids
        ])?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Workers.

struct Shared {
    settings: DispatchSettings,
    endpoint: Endpoint,
    /// The concurrency cap: a permit is held from just before a request is sent until its
    /// answer has been read, so reading, recording and backing off never hold a slot.
    calls_in_flight: Arc<Semaphore>,
    limiter: Option<Limiter>,
    writer: mpsc::Sender<WriterMsg>,
    stop: CancellationToken,
    stop_reason: Mutex<Option<StopReason>>,
    progress: Arc<Progress>,
    calls: AtomicU64,
    writer_failed: AtomicBool,
}

impl Shared {
    /// Records why dispatching stops (the first reason wins) and stops feeding new chunks.
    fn stop_with(&self, reason: StopReason) {
        let mut slot = self.stop_reason.lock().expect("stop reason lock");
        if slot.is_none() {
            tracing::warn!("stopping: {reason}");
            *slot = Some(reason);
        }
        self.stop.cancel();
    }

    async fn send(&self, record: AttemptRecord) {
        if self
            .writer
            .send(WriterMsg::Attempt(Box::new(record)))
            .await
            .is_err()
        {
            self.writer_failed.store(true, Ordering::Relaxed);
        }
    }
}

/// How an attempt ended, for the worker loop.
enum Step {
    /// Every item has its final answer for this run.
    Settled,
    /// Try again after a backoff (what went wrong, and the server's Retry-After).
    Again {
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The token was refused: refresh (single flight) and repeat at once.
    Token { code: String, message: String },
    /// Stop everything.
    Fatal { code: String, message: String },
}

fn build_body(payload: &str, over_write: bool, ids: &[i64]) -> String {
    use std::fmt::Write;
    let mut body = String::with_capacity(payload.len() + 40 + ids.len() * 22);
    body.push_str("{\"data\":[");
    body.push_str(payload);
    body.push_str("],\"over_write\":");
    body.push_str(if over_write { "true" } else { "false" });
    body.push_str(",\"ids\":[");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let _ = write!(body, "\"{id}\"");
    }
    body.push_str("]}");
    body
}

async fn work(shared: Arc<Shared>, mut chunk: Claimed) {
    let index: FxHashMap<i64, usize> = chunk
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.record_id, i))
        .collect();
    let mut attempts = 0u32;
    let mut token_refreshes = 0u32;
    let mut rng = rand::rngs::SmallRng::from_os_rng();
    loop {
        let pending: Vec<usize> = (0..chunk.members.len())
            .filter(|&i| ItemState::from_byte(chunk.outcomes[i]) == ItemState::Pending)
            .collect();
        if pending.is_empty() {
            return leave(&shared, &chunk, "done", None, None, None, None).await;
        }
        if shared.stop.is_cancelled() {
            return leave(&shared, &chunk, "pending", None, None, None, None).await;
        }
        let slot = tokio::select! {
            biased;
            _ = shared.stop.cancelled() => None,
            slot = shared.calls_in_flight.clone().acquire_owned() => slot.ok(),
        };
        // A stop can come while waiting for the slot (the answer that freed it may have
        // called for one): check again before anything is sent.
        let Some(slot) = slot.filter(|_| !shared.stop.is_cancelled()) else {
            return leave(&shared, &chunk, "pending", None, None, None, None).await;
        };
        // The limiter first, the budget second: a call counted against --max-calls is sent,
        // never abandoned in the limiter's queue when the budget's stop comes.
        if let Some(limiter) = &shared.limiter {
            if !tokio::select! {
                _ = until_ready(limiter) => !shared.stop.is_cancelled(),
                _ = shared.stop.cancelled() => false,
            } {
                return leave(&shared, &chunk, "pending", None, None, None, None).await;
            }
        }
        if let Some(max) = shared.settings.max_calls {
            if shared.calls.fetch_add(1, Ordering::SeqCst) >= max {
                let stop = StopReason::MaxCalls { calls: max };
                return leave(&shared, &chunk, "pending", Some(stop), None, None, None).await;
            }
        } else {
            shared.calls.fetch_add(1, Ordering::SeqCst);
        }
        let (token, generation) = match shared.endpoint.tokens.token().await {
            Ok(found) => found,
            Err(problem) => {
                shared.calls.fetch_sub(1, Ordering::SeqCst); // nothing was sent
                let (stop, code, message) = match problem {
                    AuthError::Stopped => (None, None, None),
                    AuthError::Refused(message) => (
                        Some(StopReason::Fatal {
                            code: "AUTHENTICATION_FAILURE".into(),
                            message: message.clone(),
                        }),
                        Some("AUTHENTICATION_FAILURE".to_string()),
                        Some(message),
                    ),
                    AuthError::Unavailable(message) => {
                        attempts += 1;
                        let code = "TOKEN_UNAVAILABLE".to_string();
                        if attempts < shared.settings.max_attempts {
                            let delay = backoff_delay(&shared.settings, attempts, None, &mut rng);
                            if sleep_unless_stopped(&shared.stop, delay).await {
                                continue;
                            }
                            (None, None, None)
                        } else {
                            let stop = StopReason::TokenUnavailable {
                                message: message.clone(),
                            };
                            (Some(stop), Some(code), Some(message))
                        }
                    }
                };
                return leave(&shared, &chunk, "pending", stop, code, message, None).await;
            }
        };
        let ids: Vec<i64> = pending
            .iter()
            .map(|&i| chunk.members[i].record_id)
            .collect();
        let body = build_body(&chunk.payload, shared.settings.over_write, &ids);
        let started_at = store::now();
        let (exchange, took) = send_mass_update(
            &shared.endpoint.http,
            &shared.endpoint.mass_update_url,
            &token,
            body,
        )
        .await;
        // The answer is read while the slot is held, so that a stop it calls for (credits
        // below --min-credits, a fatal code) comes before the next call can leave.
        note_credits(&shared, &exchange);
        let (step, http_status, call_code) = interpret(&shared, &mut chunk, &index, &exchange);
        if matches!(step, Step::Fatal { .. }) {
            shared.stop.cancel(); // `leave` below records why
        }
        drop(slot);
        attempts += 1;
        shared.progress.calls.fetch_add(1, Ordering::Relaxed);
        if attempts > 1 {
            shared.progress.retries.fetch_add(1, Ordering::Relaxed);
        }
        let call = CallLog {
            started_at,
            duration: took,
            http_status,
            code: Some(call_code.clone()),
            ids: ids.len(),
        };
        // What the attempt means for the chunk: done (returns at once), another attempt
        // after a backoff (Ok: the answer to record), or left pending, perhaps stopping the
        // run (Err).
        let after = match step {
            Step::Settled => {
                count_settled(&shared, &chunk, &pending);
                let all_done = chunk
                    .outcomes
                    .iter()
                    .all(|&b| ItemState::from_byte(b) != ItemState::Pending);
                if all_done {
                    let message = (call_code == "SUCCESS").then(|| "record updated".to_string());
                    let code = Some(call_code);
                    return leave(&shared, &chunk, "done", None, code, message, Some(call)).await;
                }
                // Some records were not in the answer: send those again.
                let message = "the answer did not name every record; sending the rest again";
                let code = if attempts >= shared.settings.max_attempts {
                    "NO_ANSWER_FOR_RECORD".to_string()
                } else {
                    call_code
                };
                Ok((code, message.to_string(), None))
            }
            Step::Again {
                code,
                message,
                retry_after,
            } => Ok((code, message, retry_after)),
            Step::Token { code, message } => {
                // A refused token is not the chunk's fault: it does not use up an attempt.
                attempts -= 1;
                token_refreshes += 1;
                let refreshed = if token_refreshes <= 3 {
                    shared.endpoint.tokens.rejected(generation).await
                } else {
                    Ok(false)
                };
                let stop = match refreshed {
                    Ok(true) => {
                        record(&shared, &chunk, None, Some(code), Some(message), Some(call)).await;
                        continue;
                    }
                    Ok(false) => Some(StopReason::Fatal {
                        code: code.clone(),
                        message: if shared.endpoint.tokens.can_refresh() {
                            format!(
                                "{message} (still refused after {} fresh tokens)",
                                token_refreshes - 1
                            )
                        } else {
                            format!("{message}: the access token is invalid or expired; set a fresh ZOHO_ACCESS_TOKEN, or ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET and ZOHO_REFRESH_TOKEN so massup can refresh it")
                        },
                    }),
                    Err(AuthError::Stopped) => None,
                    // The accounts server is down, not the credentials wrong: resumable.
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
                Err((stop, code, message))
            }
            Step::Fatal { code, message } => {
                let stop = StopReason::Fatal {
                    code: code.clone(),
                    message: message.clone(),
                };
                Err((Some(stop), code, message))
            }
        };
        let (code, message, retry_after) = match after {
            Ok(again) => again,
            Err((stop, code, message)) => {
                let (code, message) = (Some(code), Some(message));
                return leave(&shared, &chunk, "pending", stop, code, message, Some(call)).await;
            }
        };
        if attempts >= shared.settings.max_attempts {
            let (code, message) = (Some(code), Some(message));
            return leave(&shared, &chunk, "pending", None, code, message, Some(call)).await;
        }
        record(&shared, &chunk, None, Some(code), Some(message), Some(call)).await;
        let delay = backoff_delay(&shared.settings, attempts, retry_after, &mut rng);
        if !sleep_unless_stopped(&shared.stop, delay).await {
            return leave(&shared, &chunk, "pending", None, None, None, None).await;
        }
    }
}

/// Ends a worker: the chunk is stored as `state` (done, or pending for a later attempt)
/// with the answer that ended it, after stopping the run if `stop` says so.
async fn leave(
    shared: &Shared,
    chunk: &Claimed,
    state: &'static str,
    stop: Option<StopReason>,
    code: Option<String>,
    message: Option<String>,
    call: Option<CallLog>,
) {
    if let Some(reason) = stop {
        shared.stop_with(reason);
    }
    record(shared, chunk, Some(state), code, message, call).await;
}

async fn sleep_unless_stopped(stop: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = stop.cancelled() => false,
    }
}

fn count_settled(shared: &Shared, chunk: &Claimed, were_pending: &[usize]) {
    for &i in were_pending {
        let counter = match ItemState::from_byte(chunk.outcomes[i]) {
            ItemState::Succeeded => &shared.progress.succeeded,
            ItemState::Failed => &shared.progress.failed,
            ItemState::Retryable => &shared.progress.retryable,
            _ => continue,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        shared
            .progress
            .items_settled
            .fetch_add(1, Ordering::Relaxed);
    }
}

async fn record(
    shared: &Shared,
    chunk: &Claimed,
    final_state: Option<&'static str>,
    code: Option<String>,
    message: Option<String>,
    call: Option<CallLog>,
) {
    shared
        .send(AttemptRecord {
            chunk_id: chunk.id,
            outcomes: chunk.outcomes.clone(),
            details: chunk.details.clone(),
            code,
            message,
            final_state,
            call,
        })
        .await;
}

/// Keeps the credits Zoho reports, and stops the run below --min-credits.
fn note_credits(shared: &Shared, exchange: &Exchange) {
    if let Exchange::Answered {
        credits_remaining: Some(left),
        ..
    } = exchange
    {
        shared
            .progress
            .credits_remaining
            .store(*left, Ordering::Relaxed);
        if shared.settings.min_credits.is_some_and(|min| *left < min) {
            shared.stop_with(StopReason::Credits { remaining: *left });
        }
    }
}

/// Turns one exchange into item states (updating `chunk`) and the worker's next step.
fn interpret(
    shared: &Shared,
    chunk: &mut Claimed,
    index: &FxHashMap<i64, usize>,
    exchange: &Exchange,
) -> (Step, Option<u16>, String) {
    let (status, body, retry_after) = match exchange {
        Exchange::NoAnswer { reason } => {
            return (
                Step::Again {
                    code: "NO_ANSWER".into(),
                    message: reason.clone(),
                    retry_after: None,
                },
                None,
                "NO_ANSWER".into(),
            )
        }
        Exchange::Answered {
            status,
            body,
            retry_after,
            ..
        } => (*status, body, *retry_after),
    };
    let answer = parse_body(status, body);
    let transient_status = status == 429 || status >= 500;
    match answer {
        CallAnswer::Unreadable { reason } => (
            Step::Again {
                code: "UNREADABLE_ANSWER".into(),
                message: reason,
                retry_after,
            },
            Some(status),
            "UNREADABLE_ANSWER".into(),
        ),
        CallAnswer::Request { code, message } => {
            let class = if transient_status {
                AnswerClass::Transient
            } else if code == "AUTHENTICATION_FAILURE" && shared.endpoint.tokens.can_refresh() {
                // Zoho answers this for a revoked token as well: a fresh token may help once.
                AnswerClass::TokenExpired
            } else {
                classify_code(&code)
            };
            let step = match class {
                AnswerClass::Transient => Step::Again {
                    code: code.clone(),
                    message,
                    retry_after,
                },
                // A request-level SUCCESS names no record: nothing can be marked done.
                AnswerClass::Success => Step::Again {
                    code: "UNREADABLE_ANSWER".into(),
                    message: "SUCCESS without record ids".into(),
                    retry_after,
                },
                AnswerClass::TokenExpired => Step::Token {
                    code: code.clone(),
                    message,
                },
                AnswerClass::Fatal => Step::Fatal {
                    code: code.clone(),
                    message,
                },
                AnswerClass::Failed | AnswerClass::Retryable => {
                    for i in 0..chunk.outcomes.len() {
                        let before = ItemState::from_byte(chunk.outcomes[i]);
                        let after = next_state(before, class);
                        if after != before {
                            chunk.outcomes[i] = after as u8;
                            chunk
                                .details
                                .insert(i as u32, (code.clone(), message.clone()));
                        }
                    }
                    Step::Settled
                }
            };
            (step, Some(status), code)
        }
        CallAnswer::Records(records) => {
            let mut all_success = true;
            let mut unsettled = None;
            for answer in &records {
                let Some(&i) = index.get(&answer.id) else {
                    tracing::debug!(id = answer.id, "an answer for a record not in the call");
                    continue;
                };
                let class = classify_code(&answer.code);
                let before = ItemState::from_byte(chunk.outcomes[i]);
                let after = next_state(before, class);
                if class != AnswerClass::Success {
                    all_success = false;
                }
                if after != before {
                    chunk.outcomes[i] = after as u8;
                    if after == ItemState::Succeeded {
                        chunk.details.remove(&(i as u32));
                    } else {
                        chunk.details.insert(
                            i as u32,
                            (answer.code.to_string(), answer.message.to_string()),
                        );
                    }
                } else if before == ItemState::Pending {
                    // Per-record transient codes: keep the reason for the record.
                    unsettled = Some((answer.code.to_string(), answer.message.to_string()));
                    chunk.details.insert(
                        i as u32,
                        (answer.code.to_string(), answer.message.to_string()),
                    );
                }
            }
            let code = if all_success { "SUCCESS" } else { "MIXED" };
            let step = match unsettled {
                Some((code, message)) if transient_status => Step::Again {
                    code,
                    message,
                    retry_after,
                },
                _ => Step::Settled,
            };
            (step, Some(status), code.to_string())
        }
    }
}

/// Adds a claim's chunks to `ready`; false when the claim failed (the writer is gone).
fn absorb(
    shared: &Shared,
    answer: Result<Result<Vec<Claimed>, StoreError>, oneshot::error::RecvError>,
    ready: &mut std::collections::VecDeque<Claimed>,
) -> bool {
    match answer {
        Ok(Ok(claimed)) => {
            ready.extend(claimed);
            true
        }
        Ok(Err(e)) => {
            tracing::error!("cannot claim chunks: {e}");
            shared.writer_failed.store(true, Ordering::Relaxed);
            false
        }
        Err(_) => {
            shared.writer_failed.store(true, Ordering::Relaxed);
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
    let mut conn = store::open(db)?;
    // Closing the last connection would checkpoint the whole WAL inside the run's time;
    // later commits (or the next command) checkpoint it instead.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    let pending: Vec<i64> = {
        let mut stmt = conn
            .prepare("SELECT id FROM chunks WHERE run_id = ?1 AND state = 'pending' ORDER BY id")?;
        let ids = stmt
            .query_map(params![run_id], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        ids
    };
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
    let shared = Arc::new(Shared {
        calls_in_flight: Arc::new(Semaphore::new(concurrency)),
        limiter: settings.rate.map(limiter),
        settings,
        endpoint,
        writer: writer_tx,
        stop: stop.clone(),
        stop_reason: Mutex::new(None),
        progress,
        calls: AtomicU64::new(0),
        writer_failed: AtomicBool::new(false),
    });
    let mut workers = tokio::task::JoinSet::new();
    // Chunks are claimed ahead of the calls so that a claim's commit overlaps with calls
    // instead of idling them, but at most `2 x concurrency` chunks are in flight (a worker
    // holds one, or it is claimed and waiting) at any moment, which bounds what a kill
    // makes `resume` send again.
    let budget = 2 * concurrency;
    let live = Arc::new(Semaphore::new(budget));
    let mut queue = pending.into_iter();
    let mut exhausted = false;
    let mut ready: std::collections::VecDeque<Claimed> = std::collections::VecDeque::new();
    let mut claiming: Option<oneshot::Receiver<Result<Vec<Claimed>, StoreError>>> = None;
    loop {
        if stop.is_cancelled() || shared.writer_failed.load(Ordering::Relaxed) {
            break;
        }
        if claiming.is_none() && !exhausted {
            let room = live.available_permits().saturating_sub(ready.len());
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
                    if shared.writer.send(msg).await.is_err() {
                        shared.writer_failed.store(true, Ordering::Relaxed);
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
            if !absorb(&shared, receiver.await, &mut ready) {
                break;
            }
            continue;
        }
        tokio::select! {
            permit = live.clone().acquire_owned() => {
                let permit = permit.expect("semaphore never closed");
                let chunk = ready.pop_front().expect("not empty");
                let shared = shared.clone();
                workers.spawn(async move {
                    work(shared, chunk).await;
                    drop(permit);
                });
                // Reap finished workers so the set does not grow with the run.
                while workers.try_join_next().is_some() {}
            }
            answer = async { claiming.as_mut().expect("guarded").await }, if claiming.is_some() => {
                claiming = None;
                if !absorb(&shared, answer, &mut ready) {
                    break;
                }
            }
            _ = stop.cancelled() => break,
        }
    }
    // Claimed but never sent: back to pending.
    if let Some(receiver) = claiming.take() {
        absorb(&shared, receiver.await, &mut ready);
    }
    for chunk in ready.drain(..) {
        leave(&shared, &chunk, "pending", None, None, None, None).await;
    }
    while let Some(joined) = workers.join_next().await {
        if let Err(e) = joined {
            tracing::error!("a worker failed: {e}");
        }
    }
    let calls = shared.progress.calls.load(Ordering::Relaxed);
    let stop_reason = shared.stop_reason.lock().expect("stop lock").clone();
    let writer_failed = shared.writer_failed.load(Ordering::Relaxed);
    drop(shared); // closes the writer's channel
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
    Ok(DispatchReport {
        calls,
        stop: stop_reason,
        elapsed: started.elapsed(),
    })
}

/// Puts retryable items (or, with `codes`, any retryable or failed item whose code is in the
/// list) of a run into fresh chunks, grouped by payload so that records scattered over many
/// old chunks share calls again. The old items are marked requeued. Returns (items, chunks).
pub fn requeue(
    conn: &mut Connection,
    run_id: i64,
    codes: Option<&[String]>,
    chunk_size: usize,
) -> Result<(u64, u64), StoreError> {
    use crate::outcome::encode_members;
    let tx = conn.transaction()?;
    let mut by_group: BTreeMap<i64, Vec<Member>> = BTreeMap::new();
    {
        let mut select = tx.prepare(
            "SELECT id, group_id, members, outcomes, details_json, code FROM chunks
             WHERE run_id = ?1 AND state <> 'in_flight' ORDER BY id",
        )?;
        let mut update =
            tx.prepare("UPDATE chunks SET outcomes = ?2 WHERE id = ?1 AND state <> 'in_flight'")?;
        let mut rows = select.query(params![run_id])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let group_id: i64 = r.get(1)?;
            let members = decode_members(&r.get::<_, Vec<u8>>(2)?);
            let mut outcomes: Vec<u8> = r.get(3)?;
            let details: BTreeMap<u32, (String, String)> = r
                .get::<_, Option<String>>(4)?
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default();
            let chunk_code: Option<String> = r.get(5)?;
            let mut changed = false;
            for (i, member) in members.iter().enumerate() {
                let state = ItemState::from_byte(outcomes[i]);
                let code = details
                    .get(&(i as u32))
                    .map(|(c, _)| c.as_str())
                    .or(chunk_code.as_deref());
                let wanted = match codes {
                    None => state == ItemState::Retryable,
                    Some(codes) => {
                        matches!(state, ItemState::Retryable | ItemState::Failed)
                            && code.is_some_and(|c| codes.iter().any(|w| w == c))
                    }
                };
                if wanted {
                    outcomes[i] = ItemState::Requeued as u8;
                    by_group.entry(group_id).or_default().push(*member);
                    changed = true;
                }
            }
            if changed && update.execute(params![id, outcomes])? != 1 {
                return Err(StoreError::Sql(rusqlite::Error::StatementChangedRows(0)));
            }
        }
    }
    let now = store::now();
    let (mut items, mut chunks) = (0u64, 0u64);
    {
        let mut insert = tx.prepare(
            "INSERT INTO chunks (run_id, group_id, state, size, members, outcomes, created_at)
             VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6)",
        )?;
        for (group_id, members) in by_group {
            for part in crate::plan::balanced_chunks(&members, chunk_size) {
                insert.execute(params![
                    run_id,
                    group_id,
                    part.len(),
                    encode_members(part.iter().copied()),
                    vec![ItemState::Pending as u8; part.len()],
                    now
                ])?;
                items += part.len() as u64;
                chunks += 1;
            }
        }
    }
    tx.commit()?;
    Ok((items, chunks))
}

/// Puts chunks left in flight by a crash or kill back to pending. Returns how many.
pub fn reset_in_flight(conn: &Connection, run_id: i64) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE chunks SET state = 'pending' WHERE run_id = ?1 AND state = 'in_flight'",
        params![run_id],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn rates_parse() {
        assert_eq!(
            "10/s".parse::<Rate>().unwrap(),
            Rate {
                count: 10,
                per: Duration::from_secs(1)
            }
        );
        assert_eq!(
            "600/min".parse::<Rate>().unwrap().per,
            Duration::from_secs(60)
        );
        assert_eq!("5".parse::<Rate>().unwrap().count, 5);
        assert!("0/s".parse::<Rate>().is_err());
        assert!("10/day".parse::<Rate>().is_err());
        assert_eq!("600/min".parse::<Rate>().unwrap().to_string(), "600/min");
    }

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_cap() {
        let settings = DispatchSettings {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            ..DispatchSettings::default()
        };
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for attempt in 1..=10u32 {
            let cap =
                (Duration::from_millis(100) * 2u32.pow(attempt - 1)).min(Duration::from_secs(2));
            let mut seen_low = false;
            for _ in 0..200 {
                let d = backoff_delay(&settings, attempt, None, &mut rng);
                assert!(d <= cap, "attempt {attempt}: {d:?} > {cap:?}");
                seen_low |= d < cap / 4;
            }
            assert!(seen_low, "full jitter reaches near zero");
        }
        let floor = Duration::from_secs(5);
        assert!(backoff_delay(&settings, 1, Some(floor), &mut rng) >= floor);
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_spaces_calls_evenly_in_paused_time() {
        let limiter = limiter("20/s".parse().unwrap());
        let start = tokio::time::Instant::now();
        for _ in 0..41 {
            until_ready(&limiter).await;
        }
        // 41 calls at 20/s: the first is free, the other 40 take exactly two seconds.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[test]
    fn request_bodies_are_zoho_shaped() {
        let body = build_body(r#"{"Lead_Status":"Contacted"}"#, true, &[1, 22]);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"data": [{"Lead_Status": "Contacted"}], "over_write": true, "ids": ["1", "22"]})
        );
    }
}
