//! Credentials and access tokens. Secrets live in `Secret`, whose Debug and Display print a
//! placeholder, so no log line, error or report can show one by accident; none is ever
//! written to SQLite. The access token is refreshed once for all workers (single flight:
//! the refresh happens under a lock and a worker whose rejected token is already replaced
//! just takes the new one), and never more than Zoho's 10 tokens per 10 minutes, counted
//! for the OAuth client across every massup process (see `budget`). A minted token is kept
//! for later processes in the token store (see `token_store`), so a cron loop over many
//! files mints one an hour, not one per process.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::budget::{self, RefreshBudget};
use super::token_store::TokenStore;
use crate::error::UsageError;

pub use super::budget::{MAX_REFRESHES, REFRESH_WINDOW};

/// Fresh tokens rejected by the API in a row after which no more are minted: when three
/// new tokens in a row are refused, the credentials lack something a token cannot fix
/// (a revoked grant, a missing scope), and each further one would spend Zoho's budget of
/// ten.
pub const MAX_FRESH_TOKENS_REJECTED: u32 = 3;

/// The longest wait for Zoho's token budget that massup sits through (with a log line).
/// A longer one fails the refresh at once with a message that says what it waits for,
/// so that the run stops resumably instead of hanging silently for up to ten minutes.
pub const MAX_BUDGET_WAIT: Duration = Duration::from_secs(5);

/// A credential. Only `expose` reveals it, at the one place it is put on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How massup authenticates.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A fixed access token (`ZOHO_ACCESS_TOKEN`): when it expires the run stops, resumable.
    AccessToken(Secret),
    /// A self-client's refresh token: massup mints access tokens as needed.
    Refresh {
        client_id: Secret,
        client_secret: Secret,
        refresh_token: Secret,
        /// A starting access token, if one was given too.
        access_token: Option<Secret>,
    },
}

impl Credentials {
    /// Reads credentials from the environment, then from the secrets file (which must not be
    /// readable by group or others). Environment variables win.
    pub fn load(secrets_file: Option<&Path>) -> Result<Option<Credentials>, UsageError> {
        let mut values = SecretValues::default();
        if let Some(path) = secrets_file {
            values = SecretValues::read_file(path)?;
        }
        let env = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| Secret::new(v.trim()))
        };
        values.access_token = env("ZOHO_ACCESS_TOKEN").or(values.access_token);
        values.client_id = env("ZOHO_CLIENT_ID").or(values.client_id);
        values.client_secret = env("ZOHO_CLIENT_SECRET").or(values.client_secret);
        values.refresh_token = env("ZOHO_REFRESH_TOKEN").or(values.refresh_token);
        // From here on, any of them echoed by a server or quoted in an error is masked.
        for value in [
            &values.access_token,
            &values.client_id,
            &values.client_secret,
            &values.refresh_token,
        ]
        .into_iter()
        .flatten()
        {
            crate::redact::register(value.expose());
        }
        match (values.client_id, values.client_secret, values.refresh_token) {
            (Some(client_id), Some(client_secret), Some(refresh_token)) => {
                Ok(Some(Credentials::Refresh {
                    client_id,
                    client_secret,
                    refresh_token,
                    access_token: values.access_token,
                }))
            }
            (None, None, None) => Ok(values.access_token.map(Credentials::AccessToken)),
            (id, secret, refresh) => {
                let missing: Vec<&str> = [
                    ("ZOHO_CLIENT_ID", id.is_none()),
                    ("ZOHO_CLIENT_SECRET", secret.is_none()),
                    ("ZOHO_REFRESH_TOKEN", refresh.is_none()),
                ]
                .into_iter()
                .filter(|(_, missing)| *missing)
                .map(|(name, _)| name)
                .collect();
                Err(UsageError::new(format!(
                    "incomplete refresh credentials: {} missing (set all three, or only ZOHO_ACCESS_TOKEN)",
                    missing.join(", ")
                )))
            }
        }
    }

    pub fn can_refresh(&self) -> bool {
        matches!(self, Credentials::Refresh { .. })
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretValues {
    access_token: Option<Secret>,
    client_id: Option<Secret>,
    client_secret: Option<Secret>,
    refresh_token: Option<Secret>,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl SecretValues {
    fn read_file(path: &Path) -> Result<SecretValues, UsageError> {
        let shown = path.display();
        let meta = std::fs::metadata(path)
            .map_err(|e| UsageError::new(format!("secrets file {shown}: {e}")))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(UsageError::new(format!(
                    "secrets file {shown} can be read by others (mode {:o}); run `chmod 600 {shown}`",
                    mode & 0o777
                )));
            }
        }
        let _ = meta;
        // Four short values: 64 KiB is more than any honest secrets file, and a FIFO or a
        // device is refused rather than waited on or read without end.
        let text = crate::plain_file::read_to_string(path, 64 << 10)
            .map_err(|e| UsageError::new(format!("secrets file: {e}")))?;
        // The TOML error would quote the offending line, which may hold a secret: say only where.
        toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!(" near byte {}", s.start))
                .unwrap_or_default();
            UsageError::new(format!(
                "secrets file {shown} is not valid (expected access_token, client_id, client_secret, refresh_token as TOML strings){at}"
            ))
        })
    }
}

/// Why no token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// The credentials were refused: nothing will work until a person fixes them.
    #[error("{0}")]
    Refused(String),
    /// The accounts server could not be reached or answered oddly, or Zoho's token budget
    /// is spent for longer than [`MAX_BUDGET_WAIT`] (the message says when the next token
    /// is possible); later may work, so the run stops resumably.
    #[error("{0}")]
    Unavailable(String),
    #[error("stopped while waiting to refresh the access token")]
    Stopped,
}

struct TokenState {
    token: Option<Secret>,
    /// Bumped on every new token: a worker reports which token was rejected, and only a
    /// rejection of the current one causes a refresh.
    generation: u64,
    /// Whether the current token was minted here (not given): only fresh tokens count
    /// towards [`MAX_FRESH_TOKENS_REJECTED`].
    fresh: bool,
    /// The last generation counted as rejected: a token rejected by many workers at
    /// once counts once.
    counted_rejection: u64,
    expires_at: Option<Instant>,
    /// Refresh so long before expiry (a quarter of the lifetime, at most 5 minutes).
    margin: Duration,
    api_domain: Option<String>,
    /// Opened at the first refresh (never, for a fixed access token).
    budget: Option<RefreshBudget>,
    /// Why the accounts server refused these credentials, once it has: asking again with
    /// the same credentials cannot help, and repeated refusals can lock the client out.
    refused: Option<String>,
    /// When the last refresh gave up without an answer, and why: workers that were waiting
    /// for that refresh take its failure instead of each trying (and waiting) again.
    unavailable: Option<(Instant, String)>,
}

/// Hands out the current access token and refreshes it when needed.
///
/// `http` must come from [`super::http_client`], which follows no redirect: the token
/// request carries the client secret and the refresh token.
pub struct TokenSource {
    credentials: Credentials,
    accounts_url: String,
    http: reqwest::Client,
    state: Mutex<TokenState>,
    stop: CancellationToken,
    budget_home: BudgetHome,
    /// The current generation, readable without waiting for a refresh under way.
    current_generation: AtomicU64,
    /// Fresh tokens the API rejected in a row, for the whole process (every worker).
    rejected_in_row: AtomicU32,
    /// Where tokens are kept between processes (`token_store`); none for a fixed token.
    store: Option<TokenStore>,
}

/// Where the refresh times of the client are kept.
#[derive(Debug, Clone)]
enum BudgetHome {
    /// `budget::state_dir()`: `$MASSUP_STATE_DIR`, else the user's state folder.
    StateDir,
    Dir(PathBuf),
    Memory,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    api_domain: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
}

impl TokenSource {
    /// A source for `credentials`, refreshing at `accounts_url`. With refresh credentials,
    /// the tokens minted are counted against Zoho's budget in the client's file in
    /// `budget::state_dir()` (see `api::budget`), shared with every other massup process
    /// of the same client; [`TokenSource::with_budget_dir`] and
    /// [`TokenSource::with_budget_in_memory`] choose otherwise. Nothing is read or written
    /// until the first refresh.
    pub fn new(
        credentials: Credentials,
        accounts_url: String,
        http: reqwest::Client,
        stop: CancellationToken,
    ) -> TokenSource {
        // Registered here too, for credentials not made by `Credentials::load`.
        match &credentials {
            Credentials::AccessToken(token) => crate::redact::register(token.expose()),
            Credentials::Refresh {
                client_id,
                client_secret,
                refresh_token,
                access_token,
            } => {
                for value in [Some(client_id), Some(client_secret), Some(refresh_token)]
                    .into_iter()
                    .chain([access_token.as_ref()])
                    .flatten()
                {
                    crate::redact::register(value.expose());
                }
            }
        }
        let token = match &credentials {
            Credentials::AccessToken(t) => Some(t.clone()),
            Credentials::Refresh { access_token, .. } => access_token.clone(),
        };
        TokenSource {
            credentials,
            accounts_url,
            http,
            state: Mutex::new(TokenState {
                token,
                generation: 1,
                fresh: false,
                counted_rejection: 0,
                expires_at: None,
                margin: Duration::ZERO,
                api_domain: None,
                budget: None,
                refused: None,
                unavailable: None,
            }),
            stop,
            budget_home: BudgetHome::StateDir,
            current_generation: AtomicU64::new(1),
            rejected_in_row: AtomicU32::new(0),
            store: None,
        }
    }

    /// Takes the access token from the token store in `dir` before minting one, and keeps
    /// each minted token there for later processes (see `token_store`). Only for refresh
    /// credentials: a fixed token is never stored.
    pub fn with_token_store(mut self, dir: &Path) -> TokenSource {
        if let Credentials::Refresh {
            client_id,
            client_secret,
            refresh_token,
            ..
        } = &self.credentials
        {
            self.store = Some(TokenStore::new(
                dir,
                client_id,
                client_secret,
                refresh_token,
                &self.accounts_url,
            ));
        }
        self
    }

    /// The token store's file, if tokens are kept between processes.
    pub fn token_store_path(&self) -> Option<&Path> {
        self.store.as_ref().map(TokenStore::path)
    }

    /// Keeps the client's token budget in `dir` instead of `budget::state_dir()` (the
    /// user's state folder, or `$MASSUP_STATE_DIR`). For tests, and for callers that
    /// already know the folder. The file in it is `budget::budget_file(dir, client_id)`.
    pub fn with_budget_dir(mut self, dir: impl Into<PathBuf>) -> TokenSource {
        self.budget_home = BudgetHome::Dir(dir.into());
        self
    }

    /// Counts refreshes in this process only: other processes' tokens are not seen. For
    /// tests and tools that must not touch the user's state folder; never for a real run.
    pub fn with_budget_in_memory(mut self) -> TokenSource {
        self.budget_home = BudgetHome::Memory;
        self
    }

    /// The budget of refresh credentials `client_id`, opened where `budget_home` says.
    fn open_budget(&self, client_id: &Secret) -> RefreshBudget {
        let dir = match &self.budget_home {
            BudgetHome::Memory => None,
            BudgetHome::Dir(dir) => Some(dir.clone()),
            BudgetHome::StateDir => budget::state_dir(),
        };
        match dir {
            Some(dir) => RefreshBudget::in_file(budget::budget_file(&dir, client_id.expose())),
            None => RefreshBudget::in_memory(),
        }
    }

    pub fn can_refresh(&self) -> bool {
        self.credentials.can_refresh()
    }

    /// The current token and its generation, refreshing first if there is none yet or it
    /// is about to expire.
    pub async fn token(&self) -> Result<(Secret, u64), AuthError> {
        let asked_at = Instant::now();
        let mut state = self.state.lock().await;
        let stale = match (&state.token, state.expires_at) {
            (None, _) => true,
            (Some(_), Some(at)) => Instant::now() + state.margin >= at,
            (Some(_), None) => false,
        };
        if stale && self.can_refresh() {
            // Single flight for failures too: a refresh that failed while this caller
            // waited for the lock is this caller's answer.
            if let Some((failed_at, reason)) = &state.unavailable {
                if *failed_at >= asked_at {
                    return Err(AuthError::Unavailable(reason.clone()));
                }
            }
            self.refresh_locked(&mut state).await?;
        }
        match &state.token {
            Some(token) => Ok((token.clone(), state.generation)),
            None => Err(AuthError::Refused("no access token".into())),
        }
    }

    /// The API domain the last token answer named, if any.
    pub async fn api_domain(&self) -> Option<String> {
        self.state.lock().await.api_domain.clone()
    }

    /// A call was refused with the token of `generation` (INVALID_TOKEN, or
    /// AUTHENTICATION_FAILURE with refresh credentials). Returns `Ok(true)` when the caller
    /// should take a new token from [`TokenSource::token`] and try again (one was minted
    /// now, or another worker already replaced that token), `Ok(false)` when not: the
    /// token is fixed, or [`MAX_FRESH_TOKENS_REJECTED`] fresh tokens in a row were
    /// rejected before their expiry (counted for the whole process, a token rejected by
    /// many workers once; a token rejected in the last quarter of its life not at all),
    /// so exactly that many were minted in vain (see [`TokenSource::fresh_tokens_rejected`]).
    pub async fn rejected(&self, generation: u64) -> Result<bool, AuthError> {
        if !self.can_refresh() {
            return Ok(false);
        }
        let mut state = self.state.lock().await;
        if state.generation == generation && state.counted_rejection != generation {
            state.counted_rejection = generation;
            // A token rejected near or past the end of its lifetime simply expired: that
            // says nothing against the credentials, and a long run sees many.
            let expiring = state
                .expires_at
                .is_some_and(|at| Instant::now() + state.margin >= at);
            if state.fresh && !expiring {
                self.rejected_in_row.fetch_add(1, Ordering::SeqCst);
            }
        }
        if state.generation == generation {
            // Refused: no later process should take it either.
            if let (Some(store), Some(token)) = (&self.store, &state.token) {
                store.forget(Some(token));
            }
        }
        if self.fresh_tokens_rejected() >= MAX_FRESH_TOKENS_REJECTED {
            return Ok(false);
        }
        if state.generation == generation {
            self.refresh_locked(&mut state).await?;
        }
        Ok(true)
    }

    /// A call with the token of `generation` was answered by the API with anything but a
    /// token refusal: if that is the current token, the count of rejected fresh tokens
    /// starts again. Cheap (no lock): call it after every such answer.
    pub fn accepted(&self, generation: u64) {
        if self.current_generation.load(Ordering::SeqCst) == generation {
            self.rejected_in_row.store(0, Ordering::SeqCst);
        }
    }

    /// Fresh tokens the API rejected in a row, process-wide: what to say when
    /// [`TokenSource::rejected`] returns `Ok(false)` ("still refused after N fresh tokens").
    pub fn fresh_tokens_rejected(&self) -> u32 {
        self.rejected_in_row.load(Ordering::SeqCst)
    }

    async fn refresh_locked(&self, state: &mut TokenState) -> Result<(), AuthError> {
        let Credentials::Refresh {
            client_id,
            client_secret,
            refresh_token,
            ..
        } = &self.credentials
        else {
            return Err(AuthError::Refused("the access token expired".into()));
        };
        if let Some(reason) = &state.refused {
            return Err(AuthError::Refused(reason.clone()));
        }
        // Another process (or an earlier one) may hold a newer token than the one this
        // process has: taking it costs nothing from Zoho's budget of ten.
        if self.take_stored(state) {
            return Ok(());
        }
        if state.budget.is_none() {
            state.budget = Some(self.open_budget(client_id));
        }
        let url = format!("{}/oauth/v2/token", self.accounts_url.trim_end_matches('/'));
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", client_id.expose()),
            ("client_secret", client_secret.expose()),
            ("refresh_token", refresh_token.expose()),
        ];
        let mut last_problem = String::new();
        for attempt in 0..4u32 {
            if attempt > 0 {
                let wait = Duration::from_millis(250 << attempt);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.stop.cancelled() => return Err(AuthError::Stopped),
                }
            }
            let reservation = self.reserve(state).await?;
            let response = match self.http.post(&url).form(&form).send().await {
                Ok(r) => r,
                Err(e) => {
                    // reqwest's error names the URL only (the secrets are in the body).
                    last_problem = format!("cannot reach {url}: {}", without_url(&e));
                    Self::budget(state).release(reservation);
                    continue;
                }
            };
            let status = response.status();
            // Zoho's limit is on tokens minted: a request that it failed on (5xx) or
            // redirected minted none, and counting those would make an outage look like
            // ten refreshes and stall every process of this client for ten minutes.
            if status.is_server_error() || status.is_redirection() {
                Self::budget(state).release(reservation);
            }
            // Never followed (api::http_client): it would carry the client secret and the
            // refresh token to wherever the answer points. Asking again gets the same
            // redirect, so this is a refusal, remembered like one.
            if status.is_redirection() {
                let reason = format!(
                    "the accounts server redirected the token request to {}: refused, since the request carries the client secret and refresh token; check --accounts-url / --dc",
                    super::redirect_target(&response)
                );
                state.refused = Some(reason.clone());
                return Err(AuthError::Refused(reason));
            }
            let body = match super::read_capped(
                response,
                super::MAX_TOKEN_ANSWER_BYTES,
                "a token endpoint's answer",
            )
            .await
            {
                Ok(body) => body,
                Err(e) => {
                    // Not an answer Zoho gives: nothing was minted that massup can use.
                    last_problem = format!("{url} answered HTTP {status}: {e}");
                    continue;
                }
            };
            let answer: Option<TokenAnswer> = serde_json::from_slice(&body).ok();
            match answer {
                Some(TokenAnswer {
                    access_token: Some(token),
                    api_domain,
                    expires_in,
                    ..
                }) => {
                    let lifetime = Duration::from_secs(expires_in.unwrap_or(3600).max(1));
                    crate::redact::register(&token);
                    let token = Secret::new(token);
                    if api_domain.is_some() {
                        state.api_domain = api_domain;
                    }
                    if let Some(store) = &self.store {
                        store.save(
                            &token,
                            state.api_domain.as_deref(),
                            lifetime,
                            budget::now_ms(),
                        );
                    }
                    Self::install(state, &self.current_generation, token, lifetime, lifetime);
                    state.fresh = true;
                    tracing::info!(
                        generation = state.generation,
                        lifetime_secs = lifetime.as_secs(),
                        "access token refreshed"
                    );
                    return Ok(());
                }
                Some(TokenAnswer {
                    error: Some(error), ..
                }) => {
                    // The server's words: they may quote what it was sent, or hold
                    // terminal escapes.
                    let error = crate::logging::server_text(&error);
                    if status.is_server_error() {
                        last_problem = format!("{url} answered HTTP {status}: {error}");
                        continue;
                    }
                    let reason = format!(
                        "Zoho refused to refresh the access token: {error}. Check ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET and ZOHO_REFRESH_TOKEN, and that --dc / --accounts-url is the data centre the client was made in"
                    );
                    state.refused = Some(reason.clone());
                    // Whatever these credentials minted before is of a grant Zoho no
                    // longer honours.
                    if let Some(store) = &self.store {
                        store.forget(None);
                    }
                    return Err(AuthError::Refused(reason));
                }
                _ => {
                    last_problem = format!("{url} answered HTTP {status} without a token");
                }
            }
        }
        state.unavailable = Some((Instant::now(), last_problem.clone()));
        Err(AuthError::Unavailable(last_problem))
    }
}

impl TokenSource {
    /// Makes `token`, with `remaining` of its `lifetime` left, the current token (a new
    /// generation), refreshed a quarter of its life (at most 5 minutes) before it expires.
    fn install(
        state: &mut TokenState,
        current_generation: &AtomicU64,
        token: Secret,
        remaining: Duration,
        lifetime: Duration,
    ) {
        state.token = Some(token);
        state.generation += 1;
        current_generation.store(state.generation, Ordering::SeqCst);
        state.expires_at = Some(Instant::now() + remaining);
        state.margin = (lifetime / 4).min(Duration::from_secs(300));
        state.unavailable = None;
    }

    /// Takes the stored token when it is not the current one and has more than the
    /// margin left. It counts as given, not fresh: a refusal of it says nothing about the
    /// credentials.
    fn take_stored(&self, state: &mut TokenState) -> bool {
        let Some(store) = &self.store else {
            return false;
        };
        let Some(stored) = store.load(budget::now_ms()) else {
            return false;
        };
        let margin = (stored.lifetime / 4).min(Duration::from_secs(300));
        if stored.remaining <= margin || state.token.as_ref() == Some(&stored.token) {
            return false;
        }
        if stored.api_domain.is_some() {
            state.api_domain = stored.api_domain;
        }
        tracing::debug!(
            remaining_secs = stored.remaining.as_secs(),
            "access token taken from the token store"
        );
        Self::install(
            state,
            &self.current_generation,
            stored.token,
            stored.remaining,
            stored.lifetime,
        );
        state.fresh = false;
        true
    }

    fn budget(state: &mut TokenState) -> &mut RefreshBudget {
        state.budget.get_or_insert_with(RefreshBudget::in_memory)
    }

    /// Takes a place in Zoho's budget for one token request (asking beyond the budget
    /// would get the refresh token locked out for a while). A place that frees up within
    /// [`MAX_BUDGET_WAIT`] is waited for; otherwise `Unavailable`, at once, saying when the
    /// next token is possible.
    async fn reserve(&self, state: &mut TokenState) -> Result<budget::Reservation, AuthError> {
        loop {
            let full = match Self::budget(state).reserve(budget::now_ms()) {
                Ok(reservation) => return Ok(reservation),
                Err(full) => full,
            };
            if full.wait > MAX_BUDGET_WAIT {
                return Err(AuthError::Unavailable(full.to_string()));
            }
            tracing::info!("{full}; waiting for it");
            tokio::select! {
                _ = tokio::time::sleep(full.wait) => {}
                _ = self.stop.cancelled() => return Err(AuthError::Stopped),
            }
        }
    }
}

/// A reqwest error's text without the URL (which is never secret here, but long), and
/// redacted (a cause may quote what was sent).
pub fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(&format!(" ({url})"), "");
        text = text.replace(url.as_str(), "<url>");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    crate::logging::server_text(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("1000.abcdef");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        let creds = Credentials::AccessToken(secret);
        assert!(!format!("{creds:?}").contains("abcdef"));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_secrets_file_others_can_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        std::fs::write(
            &path,
            "client_id = \"a\"\nclient_secret = \"s3cr3t\"\nrefresh_token = \"r\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretValues::read_file(&path).err().unwrap();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let values = SecretValues::read_file(&path).unwrap();
        assert_eq!(values.client_secret.unwrap().expose(), "s3cr3t");
        std::fs::write(&path, "client_secret = s3cr3t-unquoted\n").unwrap();
        let err = SecretValues::read_file(&path).err().unwrap();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }
}
