//! Credentials and access tokens. Secrets live in `Secret`, whose Debug and Display print a
//! placeholder, so no log line, error or report can show one by accident; none is ever
//! written to SQLite. The access token is refreshed once for all workers (single flight:
//! the refresh happens under a lock and a worker whose rejected token is already replaced
//! just takes the new one), and never more than Zoho's 10 tokens per 10 minutes.
use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::exit::UsageError;

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
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError::new(format!("secrets file {shown}: {e}")))?;
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
    /// The accounts server could not be reached or answered oddly; later may work.
    #[error("{0}")]
    Unavailable(String),
    #[error("stopped while waiting to refresh the access token")]
    Stopped,
}

/// Zoho mints at most 10 access tokens per refresh token in 10 minutes.
pub const MAX_REFRESHES: usize = 10;
pub const REFRESH_WINDOW: Duration = Duration::from_secs(600);

struct TokenState {
    token: Option<Secret>,
    /// Bumped on every new token: a worker reports which token was rejected, and only a
    /// rejection of the current one causes a refresh.
    generation: u64,
    expires_at: Option<Instant>,
    /// Refresh so long before expiry (a quarter of the lifetime, at most 5 minutes).
    margin: Duration,
    api_domain: Option<String>,
    refreshed_at: VecDeque<Instant>,
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
    /// Keeps refresh times across invocations (a `run` then a `resume` within ten minutes
    /// share Zoho's budget of 10 tokens).
    ledger: Option<std::path::PathBuf>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    api_domain: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
}

impl TokenSource {
    pub fn new(
        credentials: Credentials,
        accounts_url: String,
        http: reqwest::Client,
        stop: CancellationToken,
    ) -> TokenSource {
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
                expires_at: None,
                margin: Duration::ZERO,
                api_domain: None,
                refreshed_at: VecDeque::new(),
                refused: None,
                unavailable: None,
            }),
            stop,
            ledger: None,
        }
    }

    /// Counts the refreshes recorded in the database at `db` within Zoho's window and
    /// records new ones there (times only: nothing secret).
    pub fn sharing_refresh_budget(mut self, db: &Path) -> TokenSource {
        let now_wall = std::time::SystemTime::now();
        let now = Instant::now();
        // store::open creates and migrates the database if this is its first use.
        if let Ok(conn) = crate::store::open(db) {
            let since = chrono::Utc::now()
                - chrono::Duration::from_std(REFRESH_WINDOW).expect("ten minutes");
            let times: Vec<String> = conn
                .prepare("SELECT at FROM token_refreshes WHERE at > ?1 ORDER BY at")
                .and_then(|mut stmt| {
                    stmt.query_map(
                        [since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)],
                        |r| r.get(0),
                    )?
                    .collect()
                })
                .unwrap_or_default();
            let state = self.state.get_mut();
            for at in times {
                let Ok(at) = chrono::DateTime::parse_from_rfc3339(&at) else {
                    continue;
                };
                let ago = now_wall
                    .duration_since(std::time::SystemTime::from(at))
                    .unwrap_or_default();
                if let Some(instant) = now.checked_sub(ago) {
                    state.refreshed_at.push_back(instant);
                }
            }
        }
        self.ledger = Some(db.to_path_buf());
        self
    }

    fn record_refresh(&self) {
        let Some(db) = &self.ledger else { return };
        let recorded = rusqlite::Connection::open(db).and_then(|conn| {
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.execute(
                "INSERT INTO token_refreshes (at) VALUES (?1)",
                [crate::store::now()],
            )
        });
        if let Err(e) = recorded {
            tracing::debug!("cannot record a token refresh: {e}");
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

    /// A call was refused with the token of `generation`: refresh unless another worker
    /// already did. Returns false when refreshing is impossible (a fixed access token).
    pub async fn rejected(&self, generation: u64) -> Result<bool, AuthError> {
        if !self.can_refresh() {
            return Ok(false);
        }
        let mut state = self.state.lock().await;
        if state.generation == generation {
            self.refresh_locked(&mut state).await?;
        }
        Ok(true)
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
        // Zoho's limit: wait for the oldest refresh to leave the window rather than be
        // refused (which would lock the refresh token out for a while).
        loop {
            let now = Instant::now();
            while state
                .refreshed_at
                .front()
                .is_some_and(|t| now.duration_since(*t) >= REFRESH_WINDOW)
            {
                state.refreshed_at.pop_front();
            }
            if state.refreshed_at.len() < MAX_REFRESHES {
                break;
            }
            let wait = REFRESH_WINDOW - now.duration_since(state.refreshed_at[0]);
            tracing::warn!(
                "{MAX_REFRESHES} access tokens minted in the last 10 minutes (Zoho's limit); waiting {}s before the next",
                wait.as_secs()
            );
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.stop.cancelled() => return Err(AuthError::Stopped),
            }
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
            let response = match self.http.post(&url).form(&form).send().await {
                Ok(r) => r,
                Err(e) => {
                    // reqwest's error names the URL only (the secrets are in the body).
                    last_problem = format!("cannot reach {url}: {}", without_url(&e));
                    continue;
                }
            };
            let status = response.status();
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
            // Zoho's limit is on tokens minted: a request that never reached the server or
            // that it failed on (5xx) minted none, and counting those would make an outage
            // look like ten refreshes and stall the run for ten minutes.
            if !status.is_server_error() {
                state.refreshed_at.push_back(Instant::now());
                self.record_refresh();
            }
            let body = response.bytes().await.unwrap_or_default();
            let answer: Option<TokenAnswer> = serde_json::from_slice(&body).ok();
            match answer {
                Some(TokenAnswer {
                    access_token: Some(token),
                    api_domain,
                    expires_in,
                    ..
                }) => {
                    let lifetime = Duration::from_secs(expires_in.unwrap_or(3600).max(1));
                    state.token = Some(Secret::new(token));
                    state.generation += 1;
                    state.expires_at = Some(Instant::now() + lifetime);
                    state.margin = (lifetime / 4).min(Duration::from_secs(300));
                    if api_domain.is_some() {
                        state.api_domain = api_domain;
                    }
                    state.unavailable = None;
                    tracing::debug!(generation = state.generation, "access token refreshed");
                    return Ok(());
                }
                Some(TokenAnswer {
                    error: Some(error), ..
                }) => {
                    if status.is_server_error() {
                        last_problem = format!("{url} answered HTTP {status}: {error}");
                        continue;
                    }
                    let reason = format!(
                        "Zoho refused to refresh the access token: {error}. Check ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET and ZOHO_REFRESH_TOKEN, and that --dc / --accounts-url is the data centre the client was made in"
                    );
                    state.refused = Some(reason.clone());
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

/// A reqwest error's text without the URL (which is never secret here, but long).
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
    text
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
