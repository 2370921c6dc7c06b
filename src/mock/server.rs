//! The HTTP side of the mock: routes, auth, admission limits, faults and the ledger.
//!
//! Each connection is served by hyper directly (not `axum::serve`) so a handler can close its
//! own TCP connection without answering: the handler fires the connection's [`ConnAbort`], and
//! the connection task, racing the connection against that signal, drops the socket.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Router};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::auth::{token_from_header, MintOutcome, TokenCheck, Tokens};
use super::buffers::BufferPool;
use super::jobs::Jobs;
use super::metadata::{self, custom_view_json, MODULES_MODIFIED};
use super::schema::{load_modules, ModuleSpec};
use super::store::{Gate, Store};
use super::{coql, mass_update, records, Ledger, MockConfig, Redirect};

/// Every code the ledger counts. A fixed set so counting is an array of atomics, not a map
/// behind a lock on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    Success,
    InvalidData,
    MandatoryNotFound,
    LimitExceeded,
    RecordLocked,
    NotApproved,
    InvalidRequestMethod,
    AuthenticationFailure,
    InvalidToken,
    TooManyRequests,
    InternalError,
    InvalidModule,
    NoRecordsFound,
    AlreadyScheduled,
    DuplicateData,
    SyntaxError,
    InvalidQuery,
    RequiredParamMissing,
    NoContent,
    DroppedBefore,
    DroppedAfter,
    Garbage,
    DiscretePaginationLimitExceeded,
}

pub(crate) const CODE_COUNT: usize = 23;

impl Code {
    const ALL: [Code; CODE_COUNT] = [
        Code::Success,
        Code::InvalidData,
        Code::MandatoryNotFound,
        Code::LimitExceeded,
        Code::RecordLocked,
        Code::NotApproved,
        Code::InvalidRequestMethod,
        Code::AuthenticationFailure,
        Code::InvalidToken,
        Code::TooManyRequests,
        Code::InternalError,
        Code::InvalidModule,
        Code::NoRecordsFound,
        Code::AlreadyScheduled,
        Code::DuplicateData,
        Code::SyntaxError,
        Code::InvalidQuery,
        Code::RequiredParamMissing,
        Code::NoContent,
        Code::DroppedBefore,
        Code::DroppedAfter,
        Code::Garbage,
        Code::DiscretePaginationLimitExceeded,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Code::Success => "SUCCESS",
            Code::InvalidData => "INVALID_DATA",
            Code::MandatoryNotFound => "MANDATORY_NOT_FOUND",
            Code::LimitExceeded => "LIMIT_EXCEEDED",
            Code::RecordLocked => "RECORD_LOCKED",
            Code::NotApproved => "NOT_APPROVED",
            Code::InvalidRequestMethod => "INVALID_REQUEST_METHOD",
            Code::AuthenticationFailure => "AUTHENTICATION_FAILURE",
            Code::InvalidToken => "INVALID_TOKEN",
            Code::TooManyRequests => "TOO_MANY_REQUESTS",
            Code::InternalError => "INTERNAL_ERROR",
            Code::InvalidModule => "INVALID_MODULE",
            Code::NoRecordsFound => "NO_RECORDS_FOUND",
            Code::AlreadyScheduled => "ALREADY_SCHEDULED",
            Code::DuplicateData => "DUPLICATE_DATA",
            Code::SyntaxError => "SYNTAX_ERROR",
            Code::InvalidQuery => "INVALID_QUERY",
            Code::RequiredParamMissing => "REQUIRED_PARAM_MISSING",
            Code::NoContent => "NO_CONTENT",
            Code::DroppedBefore => "DROPPED_BEFORE",
            Code::DroppedAfter => "DROPPED_AFTER",
            Code::Garbage => "GARBAGE",
            Code::DiscretePaginationLimitExceeded => "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
        }
    }
}

/// The API endpoints whose calls the ledger counts separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    MassUpdate,
    UpdateRecords,
    GetRecords,
    Coql,
    /// `POST /crm/{v}/{Module}/upsert`.
    Upsert,
    /// `POST /crm/{v}/{Module}`.
    Insert,
    /// `DELETE /crm/{v}/{Module}?ids=...`.
    Delete,
}

/// What one endpoint saw: the calls it received (any method, any outcome) and the codes it
/// answered. Atomics, not a map behind a lock, since mass_update counts on its hot path.
#[derive(Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    codes: [AtomicU64; CODE_COUNT],
}

impl Counters {
    pub(crate) fn count(&self, code: Code, n: u64) {
        self.codes[code as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn count_all(&self, counts: &[u64; CODE_COUNT]) {
        for (slot, n) in self.codes.iter().zip(counts) {
            if *n > 0 {
                slot.fetch_add(*n, Ordering::Relaxed);
            }
        }
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn by_code(&self) -> BTreeMap<String, u64> {
        Code::ALL
            .iter()
            .filter_map(|code| {
                let n = self.codes[*code as usize].load(Ordering::Relaxed);
                (n > 0).then(|| (code.as_str().to_string(), n))
            })
            .collect()
    }
}

/// The message of a 429 for too many calls in flight (the overall limit and the
/// sub-concurrency limit of large writes alike).
const CONCURRENCY_EXCEEDED: &str =
    "The number of concurrent API requests has exceeded the allowed limit";

/// Credits a metadata call (`settings/*`) or a scheduled job's status poll costs: one, the
/// price Zoho's credit table gives metadata calls and "all other APIs" (a poll is not listed).
pub(crate) const METADATA_CREDITS: u64 = 1;

/// How many Update Records calls the ledger remembers the `trigger` of (the latest ones), so
/// a long soak does not grow the ledger without bound.
pub(crate) const TRIGGERS_KEPT: usize = 10_000;

/// State shared by every handler.
pub(crate) struct Shared {
    pub config: MockConfig,
    pub modules: HashMap<String, ModuleSpec>,
    pub store: Mutex<Store>,
    tokens: Mutex<Tokens>,
    /// Per endpoint, in [`Endpoint`] order.
    counters: [Counters; 7],
    /// Record API calls in flight now (every endpoint: Zoho's concurrency limit is per org).
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// Admitted write calls of more than [`LARGE_WRITE`](super::LARGE_WRITE) records in
    /// flight now, for the sub-concurrency limit, and the most seen at once.
    large_writes: AtomicU64,
    max_large_writes: AtomicU64,
    /// Sequence number of admitted calls (every endpoint): the fault draws are a function of
    /// it and the seed.
    pub admitted: AtomicU64,
    /// Credits charged so far (counted with or without a credit limit).
    credits_charged: AtomicU64,
    rate_window: Mutex<VecDeque<Instant>>,
    api_domain: String,
    pub buffers: Arc<BufferPool>,
    pub jobs: Jobs,
    pub bulk: super::bulk::BulkStore,
    redirects: AtomicU64,
    /// The `trigger` of each Update Records call whose body was read, oldest first.
    update_triggers: Mutex<VecDeque<Option<Vec<String>>>>,
}

/// Locks a mutex, taking the data even if a panicking thread poisoned it: the mock's state
/// stays usable for the test that wants to read the ledger after a failure.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// The mock's own base URL (what a job's `download_url` starts with).
    pub(crate) fn api_domain(&self) -> &str {
        &self.api_domain
    }

    pub(crate) fn counters(&self, endpoint: Endpoint) -> &Counters {
        &self.counters[endpoint as usize]
    }

    /// Remembers the `trigger` an Update Records call sent (None: the key was left out).
    pub(crate) fn record_trigger(&self, trigger: Option<Vec<String>>) {
        let mut triggers = lock(&self.update_triggers);
        if triggers.len() == TRIGGERS_KEPT {
            triggers.pop_front();
        }
        triggers.push_back(trigger);
    }

    fn ledger(&self) -> Ledger {
        let mass_update = self.counters(Endpoint::MassUpdate);
        let update = self.counters(Endpoint::UpdateRecords);
        let get = self.counters(Endpoint::GetRecords);
        let coql = self.counters(Endpoint::Coql);
        let mut ledger = Ledger {
            requests: mass_update.requests(),
            by_code: mass_update.by_code(),
            update_requests: update.requests(),
            update_by_code: update.by_code(),
            update_triggers: lock(&self.update_triggers).iter().cloned().collect(),
            get_records_requests: get.requests(),
            get_records_by_code: get.by_code(),
            coql_requests: coql.requests(),
            coql_by_code: coql.by_code(),
            upsert_requests: self.counters(Endpoint::Upsert).requests(),
            upsert_by_code: self.counters(Endpoint::Upsert).by_code(),
            insert_requests: self.counters(Endpoint::Insert).requests(),
            insert_by_code: self.counters(Endpoint::Insert).by_code(),
            delete_requests: self.counters(Endpoint::Delete).requests(),
            delete_by_code: self.counters(Endpoint::Delete).by_code(),
            max_concurrency_seen: self.max_in_flight.load(Ordering::Relaxed),
            max_sub_concurrency_seen: self.max_large_writes.load(Ordering::Relaxed),
            refreshes: lock(&self.tokens).refreshes,
            credits_remaining: self
                .config
                .daily_credits
                .map(|d| d.saturating_sub(self.credits_charged.load(Ordering::Relaxed))),
            credits_charged: self.credits_charged.load(Ordering::Relaxed),
            redirects: self.redirects.load(Ordering::Relaxed),
            jobs: self.jobs.all(),
            bulk: self.bulk.ledger(),
            ..Ledger::default()
        };
        let store = lock(&self.store);
        ledger.created = store.created.clone();
        ledger.deleted = store.deleted.clone();
        for record in &store.records {
            ledger
                .records
                .insert(record.id.clone(), record.fields.iter().cloned().collect());
            ledger.applied.insert(record.id.clone(), record.applied);
            match record.gate {
                Gate::Open => {}
                Gate::Locked { .. } => ledger.locked.push(record.id.clone()),
                Gate::NotApproved { .. } => ledger.not_approved.push(record.id.clone()),
            }
        }
        ledger
    }

    /// What an error answer repeats of the request when `echo_secrets` is set: the
    /// Authorization header as sent.
    pub(crate) fn echo(&self, headers: &HeaderMap) -> Option<String> {
        if !self.config.echo_secrets {
            return None;
        }
        let sent = headers
            .get(header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        Some(format!("Authorization: {sent}"))
    }

    /// The answer to a request-level refusal, with the request echoed in its message when
    /// `echo_secrets` is set (401 and 400 answers only: those are the ones a client shows).
    pub(crate) fn refuse(&self, reject: Reject, headers: &HeaderMap) -> Response {
        let echo = match reject.status().as_u16() {
            400 | 401 => self.echo(headers),
            _ => None,
        };
        reject.response_with(echo.as_deref())
    }

    /// A configured redirect, counted in the ledger.
    pub(crate) fn redirect(&self, redirect: &Redirect) -> Response {
        self.redirects.fetch_add(1, Ordering::Relaxed);
        let mut response = Response::new(Body::empty());
        *response.status_mut() =
            StatusCode::from_u16(redirect.status).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
        if let Ok(location) = HeaderValue::from_str(&redirect.location) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
            .headers_mut()
            .insert(header::SERVER, HeaderValue::from_static("ZGS"));
        response
    }

    /// Judges the Authorization header; on success returns the token's expiry.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Instant>, Reject> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(Reject::AuthenticationFailure);
        };
        let token = value
            .to_str()
            .ok()
            .and_then(token_from_header)
            .ok_or(Reject::AuthenticationFailure)?;
        match lock(&self.tokens).check(token, Instant::now()) {
            TokenCheck::Valid(expiry) => Ok(expiry),
            TokenCheck::Invalid => Err(Reject::InvalidToken),
        }
    }

    /// The first limits a record call must pass before any work: rate, then concurrency. The
    /// sub-concurrency limit of large writes ([`InFlight::enter_large_write`]) and the credits
    /// ([`Shared::charge`]) come after, so a call refused here costs no credit.
    pub(crate) fn pass_limits(&self) -> Result<(), Reject> {
        if let Some(rate) = self.config.rate_per_sec {
            let now = Instant::now();
            let mut window = lock(&self.rate_window);
            while window
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                window.pop_front();
            }
            if window.len() >= rate as usize {
                return Err(Reject::TooManyRequests(
                    "The number of API requests has exceeded the allowed rate",
                ));
            }
            window.push_back(now);
        }
        if let Some(max) = self.config.max_concurrency {
            if self.in_flight.load(Ordering::Relaxed) > max as u64 {
                return Err(Reject::TooManyRequests(CONCURRENCY_EXCEEDED));
            }
        }
        Ok(())
    }

    /// Charges `cost` credits, or refuses the call with nothing charged when fewer than `cost`
    /// are left. Returns the credits left once half are used, for the
    /// `X-API-CREDITS-REMAINING` header.
    pub(crate) fn charge(&self, cost: u64) -> Result<Option<u64>, Reject> {
        let Some(daily) = self.config.daily_credits else {
            self.credits_charged.fetch_add(cost, Ordering::Relaxed);
            return Ok(None);
        };
        let used = self
            .credits_charged
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(cost).filter(|after| *after <= daily)
            })
            .map_err(|_| Reject::CreditsExhausted)?
            + cost;
        // Zoho shows the header once half the credits are used.
        Ok((used * 2 >= daily).then_some(daily - used))
    }
}

/// Counts a record API call in flight for as long as it lives, including while it waits for
/// injected latency and when its connection is dropped (the guard drops with the handler); and,
/// once admitted as a large write, holds one of the sub-concurrency limit's places.
pub(crate) struct InFlight<'a> {
    shared: &'a Shared,
    large_write: bool,
}

impl<'a> InFlight<'a> {
    pub(crate) fn enter(shared: &'a Shared, endpoint: Endpoint) -> InFlight<'a> {
        shared
            .counters(endpoint)
            .requests
            .fetch_add(1, Ordering::Relaxed);
        let now = shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight {
            shared,
            large_write: false,
        }
    }

    /// Takes a place under the sub-concurrency limit of writes carrying more than
    /// [`LARGE_WRITE`](super::LARGE_WRITE) records, held until the call ends; refused (429,
    /// the overall limit's answer) when every place is taken. Unlike the overall limit, which
    /// counts calls from their arrival, this counts admitted calls only, so exactly the calls
    /// beyond the limit are refused.
    pub(crate) fn enter_large_write(&mut self) -> Result<(), Reject> {
        if self.large_write {
            return Ok(());
        }
        let limit = self.shared.config.sub_concurrency.map(|n| n as u64);
        let now = self
            .shared
            .large_writes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                limit.is_none_or(|limit| n < limit).then_some(n + 1)
            })
            .map_err(|_| Reject::TooManyRequests(CONCURRENCY_EXCEEDED))?
            + 1;
        self.shared
            .max_large_writes
            .fetch_max(now, Ordering::Relaxed);
        self.large_write = true;
        Ok(())
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.large_write {
            self.shared.large_writes.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Request-level refusals that share one body shape and header set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    InvalidRequestMethod,
    AuthenticationFailure,
    InvalidToken,
    TooManyRequests(&'static str),
    /// The org's API credits are used up: 429 TOO_MANY_REQUESTS with
    /// `X-API-CREDITS-REMAINING: 0` (see docs/ZOHO_API_NOTES.md for the sources).
    CreditsExhausted,
    InternalError,
    InvalidModule,
}

impl Reject {
    pub(crate) fn code(self) -> Code {
        match self {
            Reject::InvalidRequestMethod => Code::InvalidRequestMethod,
            Reject::AuthenticationFailure => Code::AuthenticationFailure,
            Reject::InvalidToken => Code::InvalidToken,
            Reject::TooManyRequests(_) | Reject::CreditsExhausted => Code::TooManyRequests,
            Reject::InternalError => Code::InternalError,
            Reject::InvalidModule => Code::InvalidModule,
        }
    }

    pub(crate) fn status(self) -> StatusCode {
        self.parts().0
    }

    /// The answer, with `echo` appended to the message when given.
    pub(crate) fn response_with(self, echo: Option<&str>) -> Response {
        let (status, message, profile) = self.parts();
        let message = match echo {
            Some(echo) => Cow::Owned(format!("{message} ({echo})")),
            None => Cow::Borrowed(message),
        };
        let body = json!({
            "code": self.code().as_str(),
            "details": {},
            "message": message,
            "status": "error",
        });
        // Once the credits are gone the header says so, whatever share of them that is.
        let credits = (self == Reject::CreditsExhausted).then_some(0);
        zoho_response(status, json_bytes(&body).into(), profile, None, credits)
    }

    fn parts(self) -> (StatusCode, &'static str, HeaderProfile) {
        match self {
            Reject::InvalidRequestMethod => (
                StatusCode::BAD_REQUEST,
                "The http request method type is not a valid one",
                HeaderProfile::Gateway,
            ),
            Reject::AuthenticationFailure => (
                StatusCode::UNAUTHORIZED,
                "Authentication failed",
                HeaderProfile::Unauthenticated,
            ),
            Reject::InvalidToken => (
                StatusCode::UNAUTHORIZED,
                "invalid oauth token",
                HeaderProfile::Unauthenticated,
            ),
            Reject::TooManyRequests(message) => {
                (StatusCode::TOO_MANY_REQUESTS, message, HeaderProfile::Api)
            }
            // The words of Zoho's status code table for 429 (its daily-credit half).
            Reject::CreditsExhausted => (
                StatusCode::TOO_MANY_REQUESTS,
                "Number of API requests for the 24 hour period is exceeded",
                HeaderProfile::Api,
            ),
            Reject::InternalError => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                HeaderProfile::Api,
            ),
            Reject::InvalidModule => (
                StatusCode::BAD_REQUEST,
                "the module name given seems to be invalid",
                HeaderProfile::Api,
            ),
        }
    }
}

pub(crate) fn json_bytes(value: &Value) -> Vec<u8> {
    // Serialising a Value into a Vec cannot fail: it has only string keys and no I/O.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Which of the seed's header sets a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderProfile {
    /// The CRM API's full set (success and data-envelope errors).
    Api,
    /// The set of the seed's AUTHENTICATION_FAILURE answer.
    Unauthenticated,
    /// The front gateway's short set of the seed's INVALID_REQUEST_METHOD answer.
    Gateway,
}

const JSON_UTF8: HeaderValue = HeaderValue::from_static("application/json;charset=utf-8");

/// Builds a response with Zoho's headers. `token_expiry` feeds `X-ACCESSTOKEN-RESET`;
/// `credits` is set once half the credits are used.
pub(crate) fn zoho_response(
    status: StatusCode,
    body: Bytes,
    profile: HeaderProfile,
    token_expiry: Option<Option<Instant>>,
    credits: Option<u64>,
) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::SERVER, HeaderValue::from_static("ZGS"));
    h.insert(header::CONTENT_TYPE, JSON_UTF8);
    // No `Connection: keep-alive` although the seed shows one: HTTP/1.1 implies it, and hyper
    // must stay free to answer `close` when the client asks for it.
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    match profile {
        HeaderProfile::Gateway => {
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("deny"));
            h.insert("x-download-options", HeaderValue::from_static("noopen"));
        }
        HeaderProfile::Unauthenticated => {
            common_api_headers(h);
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert("x-download-options", HeaderValue::from_static("noopen"));
        }
        HeaderProfile::Api => {
            common_api_headers(h);
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, no-cache, must-revalidate, private"),
            );
            h.insert("clientversion", HeaderValue::from_static("4027076"));
            h.insert(
                "clientsubversion",
                HeaderValue::from_static("748ecbe82ec7e144b66ee25f264bbd88"),
            );
            h.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=response.json"),
            );
            h.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static("en-US"));
            h.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=15768000"),
            );
        }
    }
    if let Some(expiry) = token_expiry {
        // A token that never expires still gets a reset time, an hour ahead, as Zoho's do.
        let left = match expiry {
            Some(e) => e.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        let reset = chrono::Utc::now() + chrono::Duration::milliseconds(left.as_millis() as i64);
        if let Ok(v) = HeaderValue::from_str(&reset.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()) {
            h.insert("x-accesstoken-reset", v);
        }
    }
    if let Some(left) = credits {
        h.insert("x-api-credits-remaining", HeaderValue::from(left));
    }
    response
}

fn common_api_headers(h: &mut HeaderMap) {
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin"),
    );
    h.insert(
        header::X_XSS_PROTECTION,
        HeaderValue::from_static("1; mode=block"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::EXPIRES,
        HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
}

/// The signal a handler fires to have its connection closed without a response.
#[derive(Clone, Default)]
pub(crate) struct ConnAbort(Arc<Notify>);

/// Closes the calling request's connection with no response. Never returns when the request
/// came through [`serve_connection`]: the connection task drops this future with the socket.
pub(crate) async fn drop_connection(
    abort: Option<Extension<ConnAbort>>,
    in_flight: Option<InFlight<'_>>,
) -> Response {
    // The call ends here for the concurrency count: once the client sees the connection
    // close it may send the next call, which must not find this one still counted.
    drop(in_flight);
    match abort {
        Some(Extension(abort)) => {
            abort.0.notify_one();
            std::future::pending::<()>().await;
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        // Only reachable if the router is served by something other than this module; an
        // empty 500 is the closest honest answer.
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A running mock. Dropping it stops the server too; [`MockServer::shutdown`] also waits
/// until every connection task has ended.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Starts on an ephemeral loopback port.
    pub async fn start(config: MockConfig) -> std::io::Result<MockServer> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(config: MockConfig, addr: SocketAddr) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let modules = load_modules()?;
        let now = Instant::now();
        let tokens = Tokens::new(
            &config.token,
            config.token_lifetime,
            config.max_tokens_per_10min,
            config.seed,
            now,
        );
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(&config)),
            tokens: Mutex::new(tokens),
            modules,
            counters: Default::default(),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            large_writes: AtomicU64::new(0),
            max_large_writes: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
            credits_charged: AtomicU64::new(0),
            rate_window: Mutex::new(VecDeque::new()),
            api_domain: format!("http://{addr}"),
            buffers: Arc::default(),
            jobs: Jobs::default(),
            bulk: Default::default(),
            redirects: AtomicU64::new(0),
            update_triggers: Mutex::new(VecDeque::new()),
            config,
        });
        let router = router(shared.clone());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, router, stopped));
        Ok(MockServer {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// "http://127.0.0.1:PORT": the API domain and the accounts URL at once.
    pub fn url(&self) -> String {
        self.shared.api_domain.clone()
    }

    pub fn ledger(&self) -> Ledger {
        self.shared.ledger()
    }

    pub fn config(&self) -> &MockConfig {
        &self.shared.config
    }

    pub async fn shutdown(mut self) {
        self.shared.jobs.abort_all();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shared.jobs.abort_all();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/crm/{version}/{module}/actions/mass_update",
            any(mass_update::handle),
        )
        .route("/crm/{version}/coql", any(coql::handle))
        .route("/crm/{version}/org", any(super::bulk::org))
        .route(
            "/crm/{version}/upload",
            // A Bulk Write file may be 25 MB (axum's default body limit is 2 MB).
            any(super::bulk::upload).layer(axum::extract::DefaultBodyLimit::max(
                super::bulk::MAX_FILE_BYTES + 1024 * 1024,
            )),
        )
        .route("/crm/bulk/{version}/write", any(super::bulk::create))
        .route("/crm/bulk/{version}/write/{job}", any(super::bulk::status))
        .route(
            "/crm/bulk/{version}/write/{job}/result",
            any(super::bulk::result),
        )
        .route("/crm/{version}/{module}", any(records::collection))
        .route("/crm/{version}/{module}/{id}", any(records::single))
        .route("/crm/{version}/settings/fields", any(fields))
        .route("/crm/{version}/settings/modules", any(modules))
        .route("/crm/{version}/settings/custom_views", any(custom_views))
        .route(
            "/crm/{version}/settings/custom_views/{id}",
            any(custom_view),
        )
        .route("/oauth/v2/token", any(oauth_token))
        .route("/__mock/ledger", get(ledger))
        .fallback(not_found)
        .with_state(shared)
}

async fn accept_loop(listener: TcpListener, router: Router, mut stopped: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, router.clone()));
                }
                // Out of file descriptors and the like: pause instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished connections so the set does not grow over a long run.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(stream: TcpStream, router: Router) {
    // Responses are written whole; Nagle would only add delay to small ones.
    let _ = stream.set_nodelay(true);
    let abort = ConnAbort::default();
    let tagged = {
        let abort = abort.clone();
        tower::ServiceExt::map_request(router, move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(abort.clone());
            request
        })
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(tagged));
    tokio::select! {
        _ = connection => {}
        // Dropping the connection future here closes the socket with no response written.
        _ = abort.0.notified() => {}
    }
}

/// A metadata request that passed the method, token and credit checks: its query parameters,
/// and the token's expiry and the credits left for the answer's headers.
pub(crate) struct MetadataCall {
    params: HashMap<String, String>,
    expiry: Option<Instant>,
    credits: Option<u64>,
}

/// The checks every `settings/*` GET shares: method, token, then one credit (Zoho's price for
/// a metadata call). Metadata calls meet neither the rate nor the
/// concurrency limit, and draw no fault (see the module docs).
// The error is the finished answer to send, on a cold path (once per metadata call); boxing
// it would only add an allocation for the lint's sake.
#[allow(clippy::result_large_err)]
pub(crate) fn metadata_call(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<MetadataCall, Response> {
    if method != Method::GET {
        return Err(shared.refuse(Reject::InvalidRequestMethod, headers));
    }
    let expiry = shared
        .authenticate(headers)
        .map_err(|reject| shared.refuse(reject, headers))?;
    let credits = shared
        .charge(METADATA_CREDITS)
        .map_err(|reject| shared.refuse(reject, headers))?;
    let params = serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
    Ok(MetadataCall {
        params,
        expiry,
        credits,
    })
}

impl MetadataCall {
    /// The module named by `?module=`, or the answer refusing the call.
    #[allow(clippy::result_large_err)] // as for `metadata_call`
    fn module<'s>(
        &self,
        shared: &'s Shared,
        headers: &HeaderMap,
    ) -> Result<&'s ModuleSpec, Response> {
        let Some(module) = self.params.get("module") else {
            return Err(self.answer(
                StatusCode::BAD_REQUEST,
                &json!({
                    "code": "REQUIRED_PARAM_MISSING",
                    "details": {"param": "module"},
                    "message": "One of the expected parameter is missing",
                    "status": "error",
                }),
            ));
        };
        shared
            .modules
            .get(module)
            .ok_or_else(|| shared.refuse(Reject::InvalidModule, headers))
    }

    pub(crate) fn answer(&self, status: StatusCode, body: &Value) -> Response {
        self.answer_bytes(status, json_bytes(body).into())
    }

    pub(crate) fn answer_bytes(&self, status: StatusCode, body: Bytes) -> Response {
        zoho_response(
            status,
            body,
            HeaderProfile::Api,
            Some(self.expiry),
            self.credits,
        )
    }
}

/// `GET /crm/{version}/settings/fields?module=M`: the sample file with Zoho's full key set.
async fn fields(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let call = match metadata_call(&shared, &method, &headers, query.as_deref()) {
        Ok(call) => call,
        Err(answer) => return answer,
    };
    match call.module(&shared, &headers) {
        Ok(spec) => call.answer_bytes(StatusCode::OK, spec.document.clone()),
        Err(answer) => answer,
    }
}

/// `GET /crm/{version}/settings/modules`: the mock's modules. An `If-Modified-Since` (Zoho's
/// SDKs send one when they refresh cached metadata) at or after the modules' last change is
/// answered `304 Not Modified`.
async fn modules(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let call = match metadata_call(&shared, &method, &headers, query.as_deref()) {
        Ok(call) => call,
        Err(answer) => return answer,
    };
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_or_iso_time);
    let changed = chrono::DateTime::parse_from_rfc3339(MODULES_MODIFIED).ok();
    if let (Some(since), Some(changed)) = (since, changed) {
        if since >= changed {
            let mut response = call.answer_bytes(StatusCode::NOT_MODIFIED, Bytes::new());
            response.headers_mut().remove(header::CONTENT_TYPE);
            return response;
        }
    }
    call.answer(StatusCode::OK, &metadata::modules_document())
}

/// `If-Modified-Since` as HTTP sends it (RFC 2822 style) or as Zoho's SDKs send it (ISO 8601).
fn parse_http_or_iso_time(text: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc2822(text.trim())
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(text.trim()))
        .ok()
}

/// `GET /crm/{version}/settings/custom_views?module=M`: the views a scheduled mass update
/// can name as `cvid`.
async fn custom_views(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let call = match metadata_call(&shared, &method, &headers, query.as_deref()) {
        Ok(call) => call,
        Err(answer) => return answer,
    };
    match call.module(&shared, &headers) {
        Ok(spec) => call.answer(
            StatusCode::OK,
            &metadata::custom_views_document(&spec.views),
        ),
        Err(answer) => answer,
    }
}

/// `GET /crm/{version}/settings/custom_views/{id}?module=M`: one view.
async fn custom_view(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    Path((_version, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let call = match metadata_call(&shared, &method, &headers, query.as_deref()) {
        Ok(call) => call,
        Err(answer) => return answer,
    };
    let spec = match call.module(&shared, &headers) {
        Ok(spec) => spec,
        Err(answer) => return answer,
    };
    match spec.view(&id) {
        Some(view) => call.answer(
            StatusCode::OK,
            &json!({"custom_views": [custom_view_json(view)]}),
        ),
        None => call.answer(
            StatusCode::BAD_REQUEST,
            &json!({
                "code": "INVALID_DATA",
                "details": {"param_name": "id"},
                "message": "the id given seems to be invalid",
                "status": "error",
            }),
        ),
    }
}

/// `POST /oauth/v2/token`: parameters in the query string or a form body, as Zoho accepts.
async fn oauth_token(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(redirect) = &shared.config.token_redirect {
        return shared.redirect(redirect);
    }
    let mut params: HashMap<String, String> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    params.extend(form);
    let param = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    let config = &shared.config;
    // In echo mode an error names what was sent, secrets included, as a careless server would.
    let error = |code: &str| -> String {
        if config.echo_secrets {
            format!(
                "{code} (client_id={} client_secret={} refresh_token={})",
                param("client_id"),
                param("client_secret"),
                param("refresh_token")
            )
        } else {
            code.to_string()
        }
    };
    if param("grant_type") != "refresh_token" {
        return oauth_json(
            StatusCode::OK,
            json!({"error": error("unsupported_grant_type")}),
        );
    }
    let client_ok =
        param("client_id") == config.client_id && param("client_secret") == config.client_secret;
    let refresh_ok = param("refresh_token") == config.refresh_token;
    let outcome = lock(&shared.tokens).mint(client_ok, refresh_ok, Instant::now());
    match outcome {
        MintOutcome::Minted { token, expires_in } => oauth_json(
            StatusCode::OK,
            json!({
                "access_token": token,
                "api_domain": shared.api_domain,
                "token_type": "Bearer",
                "expires_in": expires_in,
            }),
        ),
        // Zoho answers credential errors with HTTP 200 and an `error` member.
        MintOutcome::InvalidClient => {
            oauth_json(StatusCode::OK, json!({"error": error("invalid_client")}))
        }
        MintOutcome::InvalidCode => {
            oauth_json(StatusCode::OK, json!({"error": error("invalid_code")}))
        }
        MintOutcome::TooMany => oauth_json(
            StatusCode::BAD_REQUEST,
            json!({
                "error": error("Access Denied"),
                "error_description":
                    "You have made too many requests continuously. Please try again after some time.",
            }),
        ),
    }
}

fn oauth_json(status: StatusCode, body: Value) -> Response {
    let mut response = Response::new(Body::from(json_bytes(&body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, JSON_UTF8);
    response
}

async fn ledger(State(shared): State<Arc<Shared>>) -> Response {
    let ledger = shared.ledger();
    let body = serde_json::to_vec(&ledger).unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn not_found() -> Response {
    let body = json!({
        "code": "INVALID_URL_PATTERN",
        "details": {},
        "message": "Please check if the URL trying to access is a correct one",
        "status": "error",
    });
    zoho_response(
        StatusCode::NOT_FOUND,
        json_bytes(&body).into(),
        HeaderProfile::Api,
        None,
        None,
    )
}

/// Path parameters of the mass_update route.
pub(crate) type MassUpdatePath = Path<(String, String)>;
