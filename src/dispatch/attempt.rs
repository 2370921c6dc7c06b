//! The one attempt loop: every call massup makes to Zoho (mass_update, Update Records, Get
//! Records, COQL) goes through [`attempt`], so every kind gets the same admission, token
//! handling, backoff, Retry-After, adaptive pace on 429, credit accounting, `-v` call
//! event and budgets. A kind of call is a [`Call`]: how to build its request, how to read
//! its answer (a pure interpreter, unit-tested with the kind), and what it costs.
//!
//! One attempt: admit (sub-concurrency slot for heavy writes, call slot, limiter, then the
//! budgets: --max-calls, --max-credits, --min-credits), token, send, interpret, and decide:
//! done, again after a backoff (with every slot released), a stop of the whole invocation
//! (resumable or fatal), or left for later when the attempts are used up.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_util::sync::CancellationToken;

use super::interpret::Step;
use super::pacing::{backoff_delay, limiter, until_ready, Limiter};
use super::settings::DispatchSettings;
use super::{Endpoint, Progress, StopReason};
use crate::aimd::{AdaptiveLimit, AdaptivePermit, Aimd};
use crate::api::auth::AuthError;
use crate::api::limits::{CallKind, SUB_CONCURRENCY_LIMIT, SUB_CONCURRENCY_RECORDS};
use crate::api::{send_call, Exchange};
use crate::store;
use crate::store::chunks::CallRecord;

/// 429s (too many calls at once) one call takes without using up an attempt: the pool
/// lowers its calls in flight on each, so a few are expected while it finds the org's cap.
const MAX_THROTTLED_PER_CALL: u32 = 20;

/// One request of a kind, as one attempt sends it.
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: CallKind,
    pub method: reqwest::Method,
    pub url: String,
    /// The JSON body; empty for a GET.
    pub body: String,
    /// A Bulk Write upload instead of the JSON body.
    pub upload: Option<crate::api::Upload>,
    /// Records (ids) the call carries: its price for writes, the log's `ids`.
    pub records: usize,
    /// What Zoho charges for it (see [`crate::api::limits::credits`]).
    pub credits: u64,
}

impl Request {
    /// Whether Zoho's sub-concurrency cap applies: Insert, Update and Upsert calls of more
    /// than 10 records.
    fn heavy(&self) -> bool {
        matches!(self.kind, CallKind::UpdateRecords | CallKind::UpsertRecords)
            && self.records > SUB_CONCURRENCY_RECORDS
    }
}

/// What one attempt's answer means for the call.
#[derive(Debug)]
pub struct Verdict<T> {
    /// Done with this output, or the step to take instead (never [`Step::Settled`]).
    pub outcome: Result<T, Step>,
    /// None without an HTTP answer.
    pub http_status: Option<u16>,
    /// The code logged for the call as a whole (SUCCESS, MIXED, or the request's code).
    pub call_code: String,
}

/// A kind of call, as the loop drives it.
pub trait Call {
    type Output;
    /// The request of the next attempt (a write carries only what is still unanswered).
    fn request(&self) -> Request;
    /// What an exchange means; a write updates its items here.
    fn read(&mut self, exchange: &Exchange, can_refresh: bool) -> Verdict<Self::Output>;
    /// The codes an answer gave, counted, for the call event (`SUCCESS=480,RECORD_LOCKED=20`).
    fn codes(&self, call_code: &str) -> String {
        format!("{call_code}=1")
    }
    /// The chunk the call belongs to, for the call event.
    fn chunk(&self) -> Option<i64> {
        None
    }
    /// Keeps an attempt: `retry` holds the code and message when another attempt follows
    /// (a write stores its chunk's progress then), None when this attempt ends the call.
    fn attempted(
        &mut self,
        call: CallRecord,
        retry: Option<(String, String)>,
    ) -> impl std::future::Future<Output = ()> + Send;
}

/// How a call ended without its output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The invocation is stopping (Ctrl-C, or another call's stop): nothing to add.
    #[error("stopped")]
    Stopped,
    /// Every attempt failed on something that may pass (5xx, 429, no answer): left for a
    /// later invocation.
    #[error("{code}: {message}")]
    AttemptsUsed { code: String, message: String },
    /// This call stops the invocation: resumable or fatal as the reason says.
    #[error("{reason}")]
    Stop {
        reason: StopReason,
        code: String,
        message: String,
    },
}

/// Calls and credits spent by kind, in this invocation.
#[derive(Default, Debug)]
pub struct Spent {
    calls: [AtomicU64; KINDS],
    credits: [AtomicU64; KINDS],
}

const KINDS: usize = crate::api::limits::ALL_KINDS.len();

impl Spent {
    fn add(&self, kind: CallKind, credits: u64) {
        self.calls[kind as usize].fetch_add(1, Ordering::Relaxed);
        self.credits[kind as usize].fetch_add(credits, Ordering::Relaxed);
    }

    pub fn calls(&self, kind: CallKind) -> u64 {
        self.calls[kind as usize].load(Ordering::Relaxed)
    }

    pub fn credits(&self, kind: CallKind) -> u64 {
        self.credits[kind as usize].load(Ordering::Relaxed)
    }

    pub fn total_credits(&self) -> u64 {
        self.credits.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// What every call of one invocation shares: where to send, the pace, the budgets.
pub struct Caller {
    pub settings: DispatchSettings,
    pub endpoint: Endpoint,
    /// The concurrency cap: a permit is held from just before a request is sent until its
    /// answer has been read, so reading, recording and backing off never hold a slot. It
    /// adapts: a 429 halves it, a round of answers without one adds a slot back, up to
    /// --concurrency (with or without --rate).
    pub call_slots: Arc<AdaptiveLimit>,
    /// Zoho's sub-concurrency: Update Records calls of more than 10 records in flight.
    heavy_slots: Semaphore,
    pub limiter: Option<Limiter>,
    pub stop: CancellationToken,
    stop_reason: Mutex<Option<StopReason>>,
    pub progress: Arc<Progress>,
    /// Calls holding a slot right now, and their credits (the reserves count them).
    calls_in_flight: AtomicUsize,
    credits_in_flight: AtomicU64,
    /// Calls admitted, against --max-calls.
    calls_counted: AtomicU64,
    /// Credits the run spent before this invocation (earlier sends, lookups): the budget
    /// (--max-credits) is the run's.
    pub credits_before: u64,
    /// Credits charged or reserved in this invocation, against --max-credits.
    credits_counted: AtomicU64,
    pub spent: Spent,
}

impl Caller {
    pub fn new(
        settings: DispatchSettings,
        endpoint: Endpoint,
        stop: CancellationToken,
        progress: Arc<Progress>,
        credits_before: u64,
    ) -> Caller {
        let concurrency = settings.concurrency.max(1);
        Caller {
            call_slots: AdaptiveLimit::new(Aimd::new(concurrency)),
            heavy_slots: Semaphore::new(SUB_CONCURRENCY_LIMIT),
            limiter: settings.rate.map(limiter),
            settings,
            endpoint,
            stop,
            stop_reason: Mutex::new(None),
            progress,
            calls_in_flight: AtomicUsize::new(0),
            credits_in_flight: AtomicU64::new(0),
            calls_counted: AtomicU64::new(0),
            credits_before,
            credits_counted: AtomicU64::new(0),
            spent: Spent::default(),
        }
    }

    /// Records why the invocation stops (the first reason wins) and stops new calls.
    pub fn stop_with(&self, reason: StopReason) {
        let mut slot = self.stop_reason.lock().expect("stop reason lock");
        if slot.is_none() {
            tracing::warn!("stopping: {reason}");
            *slot = Some(reason);
        }
        self.stop.cancel();
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop_reason.lock().expect("stop reason lock").clone()
    }

    /// Credits the run has spent, this invocation's included.
    pub fn run_credits(&self) -> u64 {
        self.credits_before + self.spent.total_credits()
    }

    /// Keeps the credits Zoho reports, and stops when none are left, or when fewer than
    /// --min-credits would be once the other calls in flight are answered and the call
    /// that takes this one's slot is sent (priced as this one). Called while this call's
    /// own slot is held.
    fn note_credits(&self, exchange: &Exchange, price: u64) {
        let Exchange::Answered {
            credits_remaining: Some(left),
            ..
        } = exchange
        else {
            return;
        };
        // Answers arrive out of order: the lowest figure is the latest Zoho knows of (a
        // window that frees credits during one send is read as none freed: the safe side).
        self.progress
            .credits_remaining
            .fetch_min(*left, Ordering::Relaxed);
        let others = self
            .credits_in_flight
            .load(Ordering::SeqCst)
            .saturating_sub(price);
        if *left == 0 {
            self.stop_with(StopReason::CreditsExhausted);
        } else if let Some(min) = self.settings.min_credits {
            if left.saturating_sub(others + price) < min {
                self.stop_with(StopReason::Credits { remaining: *left });
            }
        }
    }

    /// The budgets, checked once a call has its slots and just before it is sent: the
    /// reason to stop instead, if any. The call's credits are reserved when it may go.
    fn admit(&self, request: &Request) -> Option<StopReason> {
        let counted = self.calls_counted.fetch_add(1, Ordering::SeqCst);
        if let Some(max) = self.settings.max_calls {
            if counted >= max {
                self.calls_counted.fetch_sub(1, Ordering::SeqCst);
                return Some(StopReason::MaxCalls { calls: max });
            }
        }
        let reserved = self
            .credits_counted
            .fetch_add(request.credits, Ordering::SeqCst)
            + request.credits;
        if let Some(max) = self.settings.max_credits {
            if self.credits_before + reserved > max {
                self.credits_counted
                    .fetch_sub(request.credits, Ordering::SeqCst);
                self.calls_counted.fetch_sub(1, Ordering::SeqCst);
                return Some(StopReason::MaxCredits {
                    spent: self.credits_before + reserved - request.credits,
                    max,
                    next: request.credits,
                });
            }
        }
        if let Some(min) = self.settings.min_credits {
            let left = self.progress.credits_remaining.load(Ordering::Relaxed);
            // Only once Zoho has said how many are left (u64::MAX: not yet).
            if left != u64::MAX {
                // This call's slot is held already: its credits are among those in flight.
                let others = self
                    .credits_in_flight
                    .load(Ordering::SeqCst)
                    .saturating_sub(request.credits);
                if left.saturating_sub(others + request.credits) < min {
                    self.credits_counted
                        .fetch_sub(request.credits, Ordering::SeqCst);
                    self.calls_counted.fetch_sub(1, Ordering::SeqCst);
                    return Some(StopReason::Credits { remaining: left });
                }
            }
        }
        None
    }

    /// Gives back what [`Caller::admit`] took for a call that was not sent or not charged.
    fn refund(&self, request: &Request, call_too: bool) {
        self.credits_counted
            .fetch_sub(request.credits, Ordering::SeqCst);
        if call_too {
            self.calls_counted.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A call's slots, counted in the reserves for as long as they are held.
struct InFlight<'a> {
    caller: &'a Caller,
    credits: u64,
    _slot: AdaptivePermit,
    _heavy: Option<SemaphorePermit<'a>>,
}

impl<'a> InFlight<'a> {
    fn enter(
        caller: &'a Caller,
        credits: u64,
        slot: AdaptivePermit,
        heavy: Option<SemaphorePermit<'a>>,
    ) -> InFlight<'a> {
        caller.calls_in_flight.fetch_add(1, Ordering::SeqCst);
        caller
            .credits_in_flight
            .fetch_add(credits, Ordering::SeqCst);
        InFlight {
            caller,
            credits,
            _slot: slot,
            _heavy: heavy,
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.caller.calls_in_flight.fetch_sub(1, Ordering::SeqCst);
        self.caller
            .credits_in_flight
            .fetch_sub(self.credits, Ordering::SeqCst);
    }
}

/// Takes the slots a request needs, unless the stop comes first.
async fn slots<'a>(caller: &'a Caller, request: &Request) -> Option<InFlight<'a>> {
    let heavy = if request.heavy() {
        tokio::select! {
            biased;
            _ = caller.stop.cancelled() => return None,
            permit = caller.heavy_slots.acquire() => Some(permit.expect("never closed")),
        }
    } else {
        None
    };
    let slot = tokio::select! {
        biased;
        _ = caller.stop.cancelled() => return None,
        slot = caller.call_slots.acquire() => slot,
    };
    // A stop can come while waiting (the answer that freed the slot may have called for
    // one): check again before anything is sent.
    if caller.stop.is_cancelled() {
        return None;
    }
    Some(InFlight::enter(caller, request.credits, slot, heavy))
}

async fn sleep_unless_stopped(stop: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = stop.cancelled() => false,
    }
}

/// Sends `call` until it is done, or ends (see the module doc).
pub async fn attempt<C: Call>(caller: &Caller, call: &mut C) -> Result<C::Output, Failure> {
    let mut attempts = 0u32;
    let mut throttled = 0u32;
    let mut rng = rand::rngs::SmallRng::from_os_rng();
    let tokens = &caller.endpoint.tokens;
    loop {
        if caller.stop.is_cancelled() {
            return Err(Failure::Stopped);
        }
        let request = call.request();
        let Some(slot) = slots(caller, &request).await else {
            return Err(Failure::Stopped);
        };
        // The limiter first, the budgets second: a call counted against a budget is sent,
        // never abandoned in the limiter's queue when the budget's stop comes.
        if let Some(limiter) = &caller.limiter {
            let ready = tokio::select! {
                _ = until_ready(limiter) => !caller.stop.is_cancelled(),
                _ = caller.stop.cancelled() => false,
            };
            if !ready {
                return Err(Failure::Stopped);
            }
        }
        if let Some(reason) = caller.admit(&request) {
            caller.stop_with(reason.clone());
            return Err(Failure::Stopped);
        }
        let (token, generation) = match tokens.token().await {
            Ok(found) => found,
            Err(problem) => {
                caller.refund(&request, true); // nothing was sent
                drop(slot);
                match problem {
                    AuthError::Stopped => return Err(Failure::Stopped),
                    AuthError::Refused(message) => {
                        return Err(Failure::Stop {
                            reason: StopReason::Fatal {
                                code: "AUTHENTICATION_FAILURE".into(),
                                message: message.clone(),
                            },
                            code: "AUTHENTICATION_FAILURE".into(),
                            message,
                        })
                    }
                    AuthError::Unavailable(message) => {
                        // The accounts server is down (or Zoho's token budget is spent),
                        // not the credentials wrong: wait, and in the end stop resumably.
                        attempts += 1;
                        if attempts < caller.settings.max_attempts {
                            let delay = backoff_delay(&caller.settings, attempts, None, &mut rng);
                            if sleep_unless_stopped(&caller.stop, delay).await {
                                continue;
                            }
                            return Err(Failure::Stopped);
                        }
                        return Err(Failure::Stop {
                            reason: StopReason::TokenUnavailable {
                                message: message.clone(),
                            },
                            code: crate::codes::TOKEN_UNAVAILABLE.into(),
                            message,
                        });
                    }
                }
            }
        };
        let started_at = store::now();
        let sent_at = tokio::time::Instant::now().into_std();
        let (exchange, took) = send_call(
            &caller.endpoint.http,
            request.method.clone(),
            &request.url,
            &token,
            request.body.clone(),
            request.upload.as_ref(),
        )
        .await;
        // The answer is read while the slot is held, so that a stop it calls for (credits
        // below --min-credits, a fatal code) comes before the next call can leave.
        caller.note_credits(&exchange, request.credits);
        let Verdict {
            outcome,
            http_status,
            call_code,
        } = call.read(&exchange, tokens.can_refresh());
        // What Zoho charged: nothing for a call it refused at the door (too many calls, a
        // refused token); the price for everything else, a call without an answer
        // included (it may have been served).
        let charged = match http_status {
            Some(429) | Some(401) => 0,
            _ => request.credits,
        };
        if charged == 0 {
            caller.refund(&request, false);
        }
        caller.spent.add(request.kind, charged);
        // Too many calls at once (or per minute) is the pool's pace, not the call's
        // fault: fewer slots, recovering slowly, and no attempt used up (within a bound).
        let mut free_attempt = false;
        match (&outcome, http_status) {
            (Err(Step::Again { .. }), Some(429)) => {
                let limit = caller.call_slots.throttled(sent_at);
                tracing::debug!(limit, "429: calls in flight lowered");
                throttled += 1;
                free_attempt = throttled <= MAX_THROTTLED_PER_CALL;
            }
            (_, Some(_)) => {
                caller.call_slots.succeeded();
            }
            (_, None) => {}
        }
        if !matches!(outcome, Err(Step::Token { .. })) && http_status.is_some() {
            // The server took this token: fresh tokens refused so far were not the
            // credentials' fault.
            tokens.accepted(generation);
        }
        // One event per call at -v: enough to reconstruct a night from its log.
        let (credits_remaining, retry_after_ms) = match &exchange {
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
            chunk = call.chunk(),
            kind = request.kind.name(),
            ids = request.records,
            attempt = attempts + 1,
            http_status = http_status.map(i64::from).unwrap_or(-1),
            code = %call_code,
            codes = %call.codes(&call_code),
            latency_ms = took.as_millis() as u64,
            credits = charged,
            credits_remaining,
            retry_after_ms,
            "call"
        );
        if matches!(
            outcome,
            Err(Step::Fatal { .. } | Step::CreditsExhausted { .. })
        ) {
            caller.stop.cancel(); // the failure below records why
        }
        drop(slot);
        if !free_attempt {
            attempts += 1;
        }
        if request.kind.writes() {
            caller.progress.calls.fetch_add(1, Ordering::Relaxed);
            if attempts > 1 {
                caller.progress.retries.fetch_add(1, Ordering::Relaxed);
            }
        }
        let record = CallRecord {
            kind: request.kind,
            started_at,
            duration: took,
            http_status,
            code: Some(call_code),
            ids: request.records,
            credits: charged,
        };
        let step = match outcome {
            Ok(done) => {
                call.attempted(record, None).await;
                return Ok(done);
            }
            Err(step) => step,
        };
        let (code, message, retry_after) = match step {
            Step::Settled => unreachable!("a verdict settles as Ok"),
            Step::Again {
                code,
                message,
                retry_after,
            } => (code, message, retry_after),
            Step::Token { code, message } => {
                // A refused token is not the call's fault: it uses up no attempt. How many
                // fresh tokens may be refused in a row is counted once for the whole
                // process by the token source.
                attempts = attempts.saturating_sub(1);
                let stop = match tokens.rejected(generation).await {
                    Ok(true) => {
                        call.attempted(record, Some((code, message))).await;
                        continue;
                    }
                    Ok(false) => StopReason::Fatal {
                        code: code.clone(),
                        message: if tokens.can_refresh() {
                            format!(
                                "{message} (still refused after {} fresh tokens)",
                                tokens.fresh_tokens_rejected()
                            )
                        } else {
                            format!("{message}: the access token is invalid or expired; set a fresh ZOHO_ACCESS_TOKEN, or ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET and ZOHO_REFRESH_TOKEN so massup can refresh it")
                        },
                    },
                    Err(AuthError::Stopped) => {
                        call.attempted(record, None).await;
                        return Err(Failure::Stopped);
                    }
                    // The accounts server is down (or Zoho's token budget is spent), not
                    // the credentials wrong: resumable.
                    Err(AuthError::Unavailable(message)) => {
                        StopReason::TokenUnavailable { message }
                    }
                    Err(e) => StopReason::Fatal {
                        code: code.clone(),
                        message: e.to_string(),
                    },
                };
                let message = match &stop {
                    StopReason::Fatal { message, .. }
                    | StopReason::TokenUnavailable { message } => message.clone(),
                    _ => message,
                };
                call.attempted(record, None).await;
                return Err(Failure::Stop {
                    reason: stop,
                    code,
                    message,
                });
            }
            Step::CreditsExhausted { code, message } => {
                call.attempted(record, None).await;
                return Err(Failure::Stop {
                    reason: StopReason::CreditsExhausted,
                    code,
                    message,
                });
            }
            Step::Fatal { code, message } => {
                call.attempted(record, None).await;
                return Err(Failure::Stop {
                    reason: StopReason::Fatal {
                        code: code.clone(),
                        message: message.clone(),
                    },
                    code,
                    message,
                });
            }
        };
        if attempts >= caller.settings.max_attempts {
            call.attempted(record, None).await;
            return Err(Failure::AttemptsUsed { code, message });
        }
        call.attempted(record, Some((code, message))).await;
        let delay = backoff_delay(&caller.settings, attempts, retry_after, &mut rng);
        tracing::debug!(
            chunk = call.chunk(),
            kind = request.kind.name(),
            attempt = attempts,
            backoff_ms = delay.as_millis() as u64,
            retry_after_ms = retry_after.map(|d| d.as_millis() as u64),
            "backoff"
        );
        if !sleep_unless_stopped(&caller.stop, delay).await {
            return Err(Failure::Stopped);
        }
    }
}
