//! A session with Zoho: the HTTP client, credentials and tokens, the API domain, and the
//! runtime and signals a sending command runs under. Shutdown is passed in as a
//! cancellation token that the signal handlers (or a test) cancel.
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::api::auth::{Credentials, TokenSource};
use crate::api::{self, check_base_url};
use crate::config::Config;
use crate::dispatch::DispatchSettings;
use crate::dispatch::Endpoint;
use crate::exit::{Exit, UsageError};
use crate::store::{self, StoreError};

/// How a run is sent, validated: where to connect and the dispatch settings, resolved from
/// flags over the stored run over massup.toml, with the defaults written once (in
/// `DispatchSettings::default`). Stored with the run so that `resume` and `retry` connect
/// the same way. Secrets are not part of it: they come from the environment each time.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SendSettings {
    pub api_domain: Option<String>,
    pub dc: Option<String>,
    pub accounts_url: Option<String>,
    pub api_version: Option<String>,
    /// `--content-domain`: where Bulk Write files go (None: derived from the API domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_domain: Option<String>,
    pub dispatch: Option<DispatchSettings>,
}

impl SendSettings {
    /// What was stored with the run (nothing stored: the defaults). Settings that cannot
    /// be read are damage, refused naming the run rather than replaced by defaults that
    /// would send it another way.
    pub fn load(conn: &rusqlite::Connection, run_id: i64) -> Result<SendSettings, StoreError> {
        match store::runs::send_settings_json(conn, run_id)? {
            None => Ok(SendSettings::default()),
            Some(json) => serde_json::from_str(&json).map_err(|e| StoreError::Damaged {
                what: format!("run {run_id}'s stored connection and dispatch settings"),
                problem: e.to_string(),
            }),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("settings serialize")
    }

    pub fn save(&self, conn: &rusqlite::Connection, run_id: i64) -> Result<(), StoreError> {
        store::runs::save_send_settings_json(conn, run_id, &self.to_json())
    }

    pub fn dispatch(&self) -> DispatchSettings {
        self.dispatch.clone().unwrap_or_default()
    }
}

/// A live connection: HTTP client, tokens, and the API domain to use.
pub struct Session {
    pub http: reqwest::Client,
    pub tokens: Arc<TokenSource>,
    explicit_api_domain: Option<String>,
    dc_api_domain: String,
    pub api_version: String,
    content_domain: Option<String>,
}

impl Session {
    /// Connects as `settings` say. `stop` ends waits for tokens (Ctrl-C); the caller owns
    /// it and decides what stops the session.
    pub fn new(
        settings: &SendSettings,
        credentials: Credentials,
        stop: CancellationToken,
    ) -> Result<Session, UsageError> {
        let connection = settings;
        let dc = connection.dc.as_deref().unwrap_or("us");
        let (dc_accounts, dc_api) = api::data_centre(dc)?;
        let accounts = match &connection.accounts_url {
            Some(url) => check_base_url("--accounts-url", url)?,
            None => dc_accounts.to_string(),
        };
        let explicit_api_domain = connection
            .api_domain
            .as_deref()
            .map(|url| check_base_url("--api-domain", url))
            .transpose()?;
        let dispatch = connection.dispatch();
        let http = api::http_client(dispatch.timeout, dispatch.concurrency);
        let mut tokens = TokenSource::new(credentials, accounts, http.clone(), stop);
        if let Some(dir) = token_store_dir() {
            tokens = tokens.with_token_store(&dir);
        }
        let tokens = Arc::new(tokens);
        Ok(Session {
            http,
            tokens,
            explicit_api_domain,
            dc_api_domain: dc_api.to_string(),
            api_version: connection
                .api_version
                .clone()
                .unwrap_or_else(|| "v2".into()),
            content_domain: connection.content_domain.clone(),
        })
    }

    /// The API domain: the flag, else what the token answer named (checked), else the
    /// data centre's.
    pub async fn api_domain(&self) -> Result<String, UsageError> {
        if let Some(explicit) = &self.explicit_api_domain {
            return Ok(explicit.clone());
        }
        match self.tokens.api_domain().await {
            Some(from_token) => api::check_token_api_domain(&from_token),
            None => Ok(self.dc_api_domain.clone()),
        }
    }

    /// Where calls for `module` go. Call after a first `tokens.token()`: a refresh answer
    /// may name the API domain.
    pub async fn endpoint(&self, module: &str) -> Result<Endpoint, UsageError> {
        let domain = self.api_domain().await?;
        Ok(Endpoint {
            urls: api::Endpoints::new(&domain, &self.api_version)
                .with_content_domain(self.content_domain.as_deref()),
            module: module.to_string(),
            http: self.http.clone(),
            tokens: self.tokens.clone(),
        })
    }
}

/// Turns the token store off (`MASSUP_TOKEN_STORE=off`): every process mints its own
/// access token, as before the store (for a machine whose state folder must hold no
/// secret).
pub const TOKEN_STORE_ENV: &str = "MASSUP_TOKEN_STORE";

/// Where access tokens are kept between processes: the state folder of the token budget,
/// unless `MASSUP_TOKEN_STORE` is `off` (or `0`, `false`, `no`).
pub fn token_store_dir() -> Option<std::path::PathBuf> {
    let off = std::env::var(TOKEN_STORE_ENV).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "off" | "0" | "false" | "no"
        )
    });
    if off {
        return None;
    }
    crate::api::budget::state_dir()
}

/// Credentials or a message saying how to provide them.
pub fn require_credentials(config: &Config) -> Result<Credentials, UsageError> {
    Credentials::load(config.secrets_file.as_deref())?.ok_or_else(|| {
        UsageError::new(
            "no credentials: set ZOHO_ACCESS_TOKEN, or ZOHO_CLIENT_ID + ZOHO_CLIENT_SECRET + ZOHO_REFRESH_TOKEN (or `secrets_file` in massup.toml, mode 600). `massup demo` needs none.",
        )
    })
}

/// Ctrl-C or SIGTERM: the first stops new calls and lets calls in flight finish; the
/// second exits at once (the database still holds every committed outcome, and
/// `resume` redoes chunks that were in flight).
pub fn install_signal_handlers(stop: CancellationToken, quiet: bool) {
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            wait_for_signal().await;
            seen += 1;
            if seen == 1 {
                if !quiet {
                    crate::logging::notice(
                        crate::logging::Level::Warn,
                        "signal",
                        "\nstopping: no new calls; waiting for calls in flight (press Ctrl-C again to quit at once)",
                        serde_json::Value::Null,
                    );
                }
                stop.cancel();
            } else {
                crate::logging::notice(
                    crate::logging::Level::Warn,
                    "signal",
                    "\nquitting now; `massup resume` continues the run",
                    serde_json::Value::Null,
                );
                std::process::exit(Exit::Resumable.code().into());
            }
        }
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The tokio runtime for a command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
