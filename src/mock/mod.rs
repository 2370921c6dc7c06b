//! Embedded Zoho-compatible mock CRM: `mass_update`, Update Records, Get Records, COQL, field
//! metadata and OAuth refresh on one loopback port, with seeded faults and limits, used by
//! tests, the demo and benchmarks.
//!
//! - `schema`: field rules, read from the shipped `samples/fields/*.json`.
//! - `metadata`: the metadata documents (`settings/fields` in full, `settings/modules`,
//!   `settings/custom_views`) as Zoho and its SDKs shape them.
//! - `store`: the records, their generated emails and their lock / approval gates.
//! - `jobs`: scheduled mass updates (`cvid`), applied in the background and polled by job id.
//! - `auth`: access tokens and the refresh endpoint's rules.
//! - `server`: the HTTP side: routes, limits, headers and the ledger.
//! - `call`: one record call's admission, faults and answer, shared by every record endpoint.
//! - `mass_update`: validation and the byte-level response writer of the main endpoint.
//! - `records`: Update Records (`PUT /crm/{v}/{Module}`) and Get Records
//!   (`GET /crm/{v}/{Module}?ids=`, and the listing by `page` / `page_token`).
//! - `upsert`: Upsert Records (`POST /crm/{v}/{Module}/upsert`), Insert Records
//!   (`POST /crm/{v}/{Module}`) and Delete Records (`DELETE /crm/{v}/{Module}?ids=`).
//! - `coql`: `POST /crm/{v}/coql`, the select subset key look-ups need.
//! - `buffers`: reused response buffers for the 500-id answers.
//! - [`cli`]: the `massup mock-server` arguments.
//!
//! Choices where the sources leave room (each is also commented where it is made, and
//! `docs/ZOHO_API_NOTES.md` says which behaviour is confirmed and by which page):
//! - The seed collection's NOT_APPROVED and RECORD_LOCKED examples use ids that are not part
//!   of the generated store; [`MockConfig::with_seed_fixture_records`] (CLI:
//!   `--seed-fixtures`) adds them in those states.
//! - mass_update status: 200 when every record succeeded, 207 when outcomes are mixed, 400
//!   when every record failed for good. The seed answers a call whose only records are locked
//!   or not approved with 200, so such a call stays 200. Call-level one-entry errors (no
//!   field, field not mass-updatable, field or id limit, ids missing) are 200, as in the seed.
//!   Update Records answers 400 when no record succeeded, locked ones included, as Zoho's
//!   examples for that API show.
//! - A locked / not-approved record refuses `unlock_after` / `approve_after` attempts and
//!   succeeds on the next one, whichever endpoint the attempts came through.
//! - The n-th admitted record call (any endpoint) draws its latency and fault from (seed, n),
//!   so a client that sends the same calls in the same order sees the same faults. Rate and
//!   concurrency are counted across the record endpoints, credits across every API call.
//! - Ids and lookup ids are taken as JSON strings or numbers, as Zoho does (its SDKs send
//!   numbers). `ids` and `cvid` are exclusive; a `cvid` call schedules a job over one of the
//!   module's custom views.
//! - Credits follow Zoho's prices (API limits page, v2 to v8, "credit deduction" table): Update
//!   Records one per 10 records or part of 10 in the body's `data`, at least one, at most 10
//!   (100 records cost 10; a body the mock cannot read costs one); a COQL query by its LIMIT
//!   (from v4); metadata calls (`settings/*`) one, as the table says; mass_update, Get Records
//!   and job status polls one each (the table's "all other APIs"). A call is priced when it is
//!   admitted, before any work, and charged even if it is then refused for what it holds. The
//!   ledger's `credits_charged` is the total. Metadata calls and polls meet neither the rate
//!   nor the concurrency limit and draw no fault.
//! - Zoho's sub-concurrency limit: Update Records calls carrying more than [`LARGE_WRITE`]
//!   records are held to [`MockConfig::sub_concurrency`] in flight at once (10 by default, as
//!   on every Zoho edition), apart from `max_concurrency`; the next one gets the concurrency
//!   limit's 429. Such a call takes its place once admitted (rate and concurrency passed) and
//!   keeps it until it is answered or dropped. mass_update, Get Records and COQL are not
//!   sub-limited (COQL's own sub-limit is not modelled).
//! - A call refused for rate, concurrency, sub-concurrency or credits is charged nothing. A call that costs more
//!   than the credits left is refused as if they were all gone (the mock's choice; Zoho's pages
//!   do not say): 429 TOO_MANY_REQUESTS with `X-API-CREDITS-REMAINING: 0`, nothing charged,
//!   and a cheaper call may still pass afterwards.
//! - Every record has an email (`MockConfig::record_emails`), optionally shared by pairs of
//!   records and stored in mixed case, for key look-ups through COQL.
//! - Faults that are not Zoho behaviour, off by default: redirects from the token endpoint or
//!   the record endpoints, and error answers that echo the client's credentials.

mod auth;
mod buffers;
pub mod bulk;
mod call;
pub mod cli;
mod coql;
mod jobs;
mod mass_update;
mod metadata;
mod records;
mod schema;
mod server;
mod store;
mod upsert;

pub use coql::{
    credits as coql_credits, max_reach as coql_max_reach, max_rows as coql_max_rows,
    DEFAULT_LIMIT as COQL_DEFAULT_LIMIT, MAX_IN_VALUES as COQL_MAX_IN_VALUES,
};
pub use jobs::{JobPhase, JobStatus};
pub use metadata::{SAMPLE_VIEW_SIZE, USERS};
pub use records::{credits as records_credits, RECORDS_PER_CREDIT};

pub use cli::{run_cli, MockServerArgs};
pub use server::MockServer;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The most ids Zoho takes in one `mass_update` call with `ids`.
pub const MAX_IDS_PER_CALL: usize = 500;
/// The most records one Update Records call may carry.
pub const MAX_UPDATE_RECORDS: usize = 100;
/// A write call (Insert, Update, Upsert Records) carrying more records than this is under
/// Zoho's sub-concurrency limit.
pub const LARGE_WRITE: usize = 10;
/// Zoho's sub-concurrency limit: write calls of more than [`LARGE_WRITE`] records in flight at
/// once per org, on every edition.
pub const SUB_CONCURRENCY: usize = 10;
/// The most ids one Get Records call may name.
pub const MAX_GET_IDS: usize = 100;
/// The most fields one Get Records call may name.
pub const MAX_GET_FIELDS: usize = 50;

/// The id of the seed collection's NOT_APPROVED example.
pub const SEED_NOT_APPROVED_ID: &str = "1306462000000496025";
/// The id of the seed collection's RECORD_LOCKED example.
pub const SEED_LOCKED_ID: &str = "475243000003269880";

/// The state a record is created in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeedState {
    Open,
    Locked,
    NotApproved,
}

/// Everything the mock can be told. `Default` is a well-behaved server: no faults, no limits
/// beyond Zoho's field limits.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// How many generated records the store holds (see [`MockConfig::record_ids`]).
    pub records: usize,
    /// Seeds record ids, which records are locked / not approved, emails, minted tokens, and
    /// the latency and fault of each admitted record call (by its sequence number).
    pub seed: u64,
    /// The access token accepted from the start.
    pub token: String,
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// None = tokens never expire. Applies to the initial token (from server start) too.
    pub token_lifetime: Option<Duration>,
    /// Zoho allows 10; None = unlimited.
    pub max_tokens_per_10min: Option<u32>,
    /// Share of generated records that start locked (RECORD_LOCKED).
    pub locked_fraction: f64,
    /// A locked record refuses this many attempts, then opens (0 = never).
    pub unlock_after: u32,
    /// Share of generated records that start not approved (NOT_APPROVED).
    pub not_approved_fraction: f64,
    /// A not-approved record refuses this many attempts, then opens (0 = never).
    pub approve_after: u32,
    /// Record calls (every record endpoint) per second over a sliding 1 s window; beyond -> 429.
    pub rate_per_sec: Option<u32>,
    /// Record calls (every record endpoint) in flight at once; beyond -> 429.
    pub max_concurrency: Option<usize>,
    /// Update Records calls carrying more than [`LARGE_WRITE`] records in flight at once,
    /// whatever `max_concurrency` ([`SUB_CONCURRENCY`], Zoho's limit on every edition, by
    /// default); beyond -> 429 with the `max_concurrency` answer. None = unlimited.
    pub sub_concurrency: Option<usize>,
    /// Credits for the server's life, each admitted call charged its price (see the module
    /// docs: Update Records one per 10 records, a COQL query from v4 by its LIMIT, any other
    /// call one, metadata and job polls included). None = unlimited (still counted in the
    /// ledger's `credits_charged`).
    pub daily_credits: Option<u64>,
    /// Each admitted call is answered `latency_mean ± latency_spread` (uniform) after it
    /// arrived; the mock's own processing happens inside that time.
    pub latency_mean: Duration,
    pub latency_spread: Duration,
    /// Share of admitted calls answered 500 INTERNAL_ERROR (not applied).
    pub fail_500_rate: f64,
    /// Share of admitted calls whose connection is closed with no response (not applied).
    pub drop_before_rate: f64,
    /// Share of admitted calls applied, then closed with no response.
    pub drop_after_rate: f64,
    /// Share of admitted calls answered 200 with a body that is not JSON (not applied).
    pub garbage_rate: f64,
    /// Fields per call, per module; modules not listed allow 1.
    pub field_limits: HashMap<String, usize>,
    /// Records added after the generated ones, in the given states (not in `record_ids`).
    pub extra_records: Vec<(String, SeedState)>,
    /// A scheduled (cvid) job applies this many records per step...
    pub job_batch_size: usize,
    /// ...one step every this long (the first step too, so a poll right after scheduling
    /// sees SCHEDULED).
    pub job_batch_interval: Duration,
    /// When set, `POST /oauth/v2/token` answers this redirect instead of a token.
    pub token_redirect: Option<Redirect>,
    /// When set, the record paths (mass_update, Update / Get Records, COQL; any method) answer
    /// this redirect before anything else.
    pub api_redirect: Option<Redirect>,
    /// Error answers repeat what the client sent: the token endpoint's errors carry the
    /// client_id, client_secret and refresh_token of the request, and the API's request-level
    /// 401 and 400 answers carry the Authorization header. What a hostile or buggy server
    /// does; a client must not print such a message as it came.
    pub echo_secrets: bool,
    /// Pairs of generated records that share an email address (see
    /// [`MockConfig::record_emails`]): record `records - 1 - k` takes the address of record
    /// `2 + k`, for each k below this (at most `(records - 2) / 2` pairs).
    pub duplicate_emails: usize,
    /// Share of generated records (0..1, drawn from the seed) whose email is stored in mixed
    /// case, `Lead00042.s1@EXAMPLE.COM`, for case-insensitive look-ups.
    pub mixed_case_emails: f64,
    /// Fields whose values must be unique, as (module, field API name): an Update Records
    /// value another record already holds answers DUPLICATE_DATA. Email values compare
    /// case-insensitively. None by default, as in a new Zoho org.
    pub unique_fields: Vec<(String, String)>,
    /// A Bulk Write job answers IN PROGRESS to its polls for this long after its creation,
    /// then applies its rows and answers COMPLETED.
    pub bulk_delay: Duration,
    /// The first this many Bulk Write uploads answer 500 INTERNAL_ERROR (nothing kept).
    pub bulk_fail_uploads: u32,
    /// An upload is answered (and its file kept) this long after it arrived: a client
    /// killed meanwhile leaves no file.
    pub bulk_upload_latency: Duration,
    /// The first this many Bulk Write jobs end FAILED with no row applied (their result
    /// lists every row as Unprocessed).
    pub bulk_fail_jobs: u32,
    /// Every this-many-th row of a Bulk Write job's file (the 1st, the N+1th, ...) is left
    /// Unprocessed in its result (0: none).
    pub bulk_unprocessed_every: usize,
    /// Bulk Write jobs the org may have in progress (created, result not yet made): one
    /// more is refused 429 TOO_MANY_REQUESTS. None = no limit.
    pub bulk_max_in_progress: Option<usize>,
}

/// A redirect the mock answers with: the status (301, 302, 303, 307 or 308) and the
/// `Location` header, sent verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub status: u16,
    pub location: String,
}

impl Redirect {
    /// A `307 Temporary Redirect` to `location`: the method and body are to be repeated there.
    pub fn temporary(location: impl Into<String>) -> Redirect {
        Redirect {
            status: 307,
            location: location.into(),
        }
    }

    /// A `308 Permanent Redirect` to `location`.
    pub fn permanent(location: impl Into<String>) -> Redirect {
        Redirect {
            status: 308,
            location: location.into(),
        }
    }
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            records: 1000,
            seed: 1,
            token: "mock-token".into(),
            client_id: "mock-client-id".into(),
            client_secret: "mock-client-secret".into(),
            refresh_token: "mock-refresh-token".into(),
            token_lifetime: None,
            max_tokens_per_10min: None,
            locked_fraction: 0.0,
            unlock_after: 0,
            not_approved_fraction: 0.0,
            approve_after: 0,
            rate_per_sec: None,
            max_concurrency: None,
            sub_concurrency: Some(SUB_CONCURRENCY),
            daily_credits: None,
            latency_mean: Duration::ZERO,
            latency_spread: Duration::ZERO,
            fail_500_rate: 0.0,
            drop_before_rate: 0.0,
            drop_after_rate: 0.0,
            garbage_rate: 0.0,
            field_limits: default_field_limits(),
            extra_records: Vec::new(),
            job_batch_size: 100,
            job_batch_interval: Duration::from_millis(10),
            token_redirect: None,
            api_redirect: None,
            echo_secrets: false,
            duplicate_emails: 0,
            mixed_case_emails: 0.0,
            unique_fields: Vec::new(),
            bulk_delay: Duration::from_millis(300),
            bulk_fail_uploads: 0,
            bulk_upload_latency: Duration::ZERO,
            bulk_fail_jobs: 0,
            bulk_unprocessed_every: 0,
            bulk_max_in_progress: None,
        }
    }
}

/// Zoho's documented per-call field limits: one field, three for Deals.
pub fn default_field_limits() -> HashMap<String, usize> {
    [("Leads", 1), ("Contacts", 1), ("Accounts", 1), ("Deals", 3)]
        .into_iter()
        .map(|(m, n)| (m.to_string(), n))
        .collect()
}

impl MockConfig {
    /// The ids of the generated records, in store order: deterministic for a seed, always
    /// starting with the seed collection's 738964000002131001 and 738964000002130131.
    pub fn record_ids(&self) -> Vec<String> {
        store::generate_ids(self.records, self.seed)
    }

    /// The emails of the generated records, in the order of [`MockConfig::record_ids`]: what
    /// `Email` reads as until an update writes it. Deterministic for a seed:
    /// `lead{index:05}.s{seed}@example.com`, with the pairs of `duplicate_emails` and the mixed
    /// case of `mixed_case_emails` applied.
    pub fn record_emails(&self) -> Vec<String> {
        store::generate_emails(self)
    }

    /// Whether `field` of `module` must hold values no other record holds.
    pub fn is_unique(&self, module: &str, field: &str) -> bool {
        self.unique_fields
            .iter()
            .any(|(m, f)| m == module && f == field)
    }

    /// Adds the seed collection's NOT_APPROVED and RECORD_LOCKED records, so every recorded
    /// example replays against the mock.
    pub fn with_seed_fixture_records(mut self) -> Self {
        self.extra_records
            .push((SEED_NOT_APPROVED_ID.to_string(), SeedState::NotApproved));
        self.extra_records
            .push((SEED_LOCKED_ID.to_string(), SeedState::Locked));
        self
    }

    /// The field limit for a module.
    pub fn field_limit(&self, module: &str) -> usize {
        self.field_limits.get(module).copied().unwrap_or(1)
    }
}

/// What the mock saw and did: the same content as `GET /__mock/ledger`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Ledger {
    /// Calls to the mass_update path received (any method, any outcome).
    pub requests: u64,
    /// Codes the mass_update endpoint answered with: per-record codes and request-level codes
    /// (one per call), plus DROPPED_BEFORE,
    /// DROPPED_AFTER and GARBAGE for the faults. A DROPPED_AFTER call's per-record codes are
    /// not counted, since no response carried them; `applied` shows what it did.
    pub by_code: BTreeMap<String, u64>,
    /// Every record id -> current field values (empty for records never updated).
    pub records: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    /// Every record id -> number of updates applied (0 for records never updated).
    pub applied: BTreeMap<String, u64>,
    /// Access tokens minted by the refresh endpoint.
    pub refreshes: u64,
    /// Highest number of record API calls (mass_update, Update Records, Get Records, COQL) in
    /// flight at once, 429s included.
    pub max_concurrency_seen: u64,
    /// Highest number of admitted Update Records calls of more than [`LARGE_WRITE`] records in
    /// flight at once (the sub-concurrency limit's count).
    #[serde(default)]
    pub max_sub_concurrency_seen: u64,
    /// Ids currently locked.
    pub locked: Vec<String>,
    /// Ids currently not approved.
    pub not_approved: Vec<String>,
    /// Credits left, when a credit limit is set.
    pub credits_remaining: Option<u64>,
    /// Credits charged for admitted calls, at their prices, with or without a credit limit.
    /// A call refused for rate, concurrency or want of credits is charged nothing.
    #[serde(default)]
    pub credits_charged: u64,
    /// Redirects answered (token endpoint and API together).
    #[serde(default)]
    pub redirects: u64,
    /// Scheduled (cvid) mass update jobs by job id.
    #[serde(default)]
    pub jobs: BTreeMap<String, JobStatus>,
    /// Calls to the Update Records paths (`PUT /crm/{v}/{Module}` and `.../{Module}/{id}`), any
    /// method but GET, any outcome.
    #[serde(default)]
    pub update_requests: u64,
    /// Codes Update Records answered: one per record entry, one per request-level answer, and
    /// the fault codes, counted as `by_code` counts them for mass_update.
    #[serde(default)]
    pub update_by_code: BTreeMap<String, u64>,
    /// The `trigger` of every Update Records call whose body was read, in the order the calls
    /// were processed: `None` when the body left the key out, `Some([])` for `"trigger": []`.
    /// The latest 10,000 calls are kept.
    #[serde(default)]
    pub update_triggers: Vec<Option<Vec<String>>>,
    /// Calls to Get Records (`GET /crm/{v}/{Module}` and `.../{Module}/{id}`).
    #[serde(default)]
    pub get_records_requests: u64,
    /// Codes Get Records answered (SUCCESS and NO_CONTENT for a 200 and a 204, one per call).
    #[serde(default)]
    pub get_records_by_code: BTreeMap<String, u64>,
    /// Calls to `/crm/{v}/coql`.
    #[serde(default)]
    pub coql_requests: u64,
    /// Codes COQL answered (SUCCESS and NO_CONTENT for a 200 and a 204, one per call).
    #[serde(default)]
    pub coql_by_code: BTreeMap<String, u64>,
    /// Bulk Write: files uploaded (kept), jobs created, status polls and result downloads
    /// answered, and each job's file and row counts by job id.
    #[serde(default)]
    pub bulk: bulk::BulkLedger,
    /// Calls to Upsert Records (`POST /crm/{v}/{Module}/upsert`), any outcome.
    #[serde(default)]
    pub upsert_requests: u64,
    /// Codes Upsert Records answered, counted as `update_by_code`.
    #[serde(default)]
    pub upsert_by_code: BTreeMap<String, u64>,
    /// Calls to Insert Records (`POST /crm/{v}/{Module}`), any outcome.
    #[serde(default)]
    pub insert_requests: u64,
    /// Codes Insert Records answered.
    #[serde(default)]
    pub insert_by_code: BTreeMap<String, u64>,
    /// Calls to Delete Records (`DELETE /crm/{v}/{Module}?ids=...`), any outcome.
    #[serde(default)]
    pub delete_requests: u64,
    /// Codes Delete Records answered.
    #[serde(default)]
    pub delete_by_code: BTreeMap<String, u64>,
    /// Ids of the records Insert or Upsert Records created, in the order they were created
    /// (a record created and deleted since is listed here and in `deleted`).
    #[serde(default)]
    pub created: Vec<String>,
    /// Ids of the records Delete Records deleted, in order.
    #[serde(default)]
    pub deleted: Vec<String>,
}
