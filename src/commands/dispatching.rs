//! What `run`, `resume` and `retry` share: connection and dispatch flags, resolving them
//! over the stored run and massup.toml, signals, progress, and the closing summary with its
//! exit code.
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::api::auth::{AuthError, Credentials, TokenSource};
use crate::api::{self, check_base_url};
use crate::cli::GlobalArgs;
use crate::config::Config;
use crate::dispatch::{
    self, DispatchReport, DispatchSettings, Endpoint, Progress, Rate, StopReason,
};
use crate::exit::{Exit, UsageError};
use crate::store::{self, RunInfo};
use crate::summary::{self, RowOutcome};

/// Where to send calls.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConnectionFlags {
    /// API base URL, e.g. https://www.zohoapis.eu [default: the token answer's api_domain, else the data centre's]
    #[arg(long, value_name = "URL")]
    pub api_domain: Option<String>,
    /// Data centre: us, eu, in, au, jp, cn, ca, sa [default: us]
    #[arg(long, value_name = "DC")]
    pub dc: Option<String>,
    /// Accounts server for token refresh [default: the data centre's]
    #[arg(long, value_name = "URL")]
    pub accounts_url: Option<String>,
    /// CRM API version in the URL path.
    #[arg(long, value_name = "VERSION")]
    pub api_version: Option<String>,
}

/// How fast and how hard to send.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DispatchFlags {
    /// Calls per second/minute/hour shared by all workers, e.g. 10/s or 600/min; `none` for no limit [default: none]
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub rate: Option<RateFlag>,
    /// Calls in flight at once (Zoho allows 5 to 25 per org by edition) [default: 10]
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Seconds before a call without an answer is given up (and retried) [default: 60]
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// HTTP attempts per chunk in one invocation before it is left pending [default: 5]
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Stop cleanly (resumable) after this many calls.
    #[arg(long, value_name = "N")]
    pub max_calls: Option<u64>,
    /// Stop cleanly (resumable) when Zoho reports fewer API credits left than this.
    #[arg(long, value_name = "N")]
    pub min_credits: Option<u64>,
    /// First backoff step in milliseconds (doubles per retry, full jitter) [default: 500]
    #[arg(long, value_name = "MS", hide = true)]
    pub backoff_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateFlag {
    Unlimited,
    Limit(Rate),
}

fn parse_rate(text: &str) -> Result<RateFlag, String> {
    if text.eq_ignore_ascii_case("none") {
        Ok(RateFlag::Unlimited)
    } else {
        text.parse().map(RateFlag::Limit)
    }
}

/// What is stored with a run so that `resume` and `retry` connect the same way. Secrets
/// are not part of it: they come from the environment each time.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct StoredConnection {
    pub api_domain: Option<String>,
    pub dc: Option<String>,
    pub accounts_url: Option<String>,
    pub api_version: Option<String>,
    pub dispatch: Option<DispatchSettings>,
}

impl StoredConnection {
    pub fn load(run: &RunInfo, conn: &rusqlite::Connection) -> StoredConnection {
        conn.query_row(
            "SELECT dispatch_json FROM runs WHERE id = ?1",
            [run.id],
            |r| r.get::<_, Option<String>>(0),
        )
        .ok()
        .flatten()
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default()
    }

    pub fn save(&self, conn: &rusqlite::Connection, run_id: i64) -> Result<(), store::StoreError> {
        let json = serde_json::to_string(self).expect("settings serialize");
        conn.execute(
            "UPDATE runs SET dispatch_json = ?2 WHERE id = ?1",
            rusqlite::params![run_id, json],
        )?;
        Ok(())
    }

    /// Flags override what was stored, which overrides massup.toml.
    pub fn resolve(
        stored: &StoredConnection,
        conn_flags: &ConnectionFlags,
        flags: &DispatchFlags,
        config: &Config,
        over_write: bool,
    ) -> Result<StoredConnection, UsageError> {
        let config_rate = config
            .rate
            .as_deref()
            .map(parse_rate)
            .transpose()
            .map_err(|e| UsageError::new(format!("massup.toml rate: {e}")))?
            .and_then(|r| match r {
                RateFlag::Limit(rate) => Some(rate),
                RateFlag::Unlimited => None,
            });
        let base = stored.dispatch.clone().unwrap_or_else(|| DispatchSettings {
            concurrency: config.concurrency.unwrap_or(10),
            rate: config_rate,
            max_attempts: config.max_attempts.unwrap_or(5),
            timeout: Duration::from_secs_f64(config.timeout_secs.unwrap_or(60.0)),
            ..DispatchSettings::default()
        });
        let mut settings = DispatchSettings {
            over_write,
            max_calls: flags.max_calls,
            min_credits: flags.min_credits.or(base.min_credits),
            ..base
        };
        if let Some(n) = flags.concurrency {
            settings.concurrency = n;
        }
        if settings.concurrency == 0 {
            return Err(UsageError::new("--concurrency must be at least 1"));
        }
        match flags.rate {
            Some(RateFlag::Limit(rate)) => settings.rate = Some(rate),
            Some(RateFlag::Unlimited) => settings.rate = None,
            None => {}
        }
        if let Some(t) = flags.timeout {
            if !(t.is_finite() && t > 0.0) {
                return Err(UsageError::new(
                    "--timeout must be a positive number of seconds",
                ));
            }
            settings.timeout = Duration::from_secs_f64(t);
        }
        if let Some(n) = flags.max_attempts {
            settings.max_attempts = n.max(1);
        }
        if let Some(ms) = flags.backoff_ms {
            settings.backoff_base = Duration::from_millis(ms);
            settings.backoff_max =
                Duration::from_millis(ms.saturating_mul(64)).max(settings.backoff_base);
        }
        let pick = |flag: &Option<String>, stored: &Option<String>, config: &Option<String>| {
            flag.clone()
                .or_else(|| stored.clone())
                .or_else(|| config.clone())
        };
        Ok(StoredConnection {
            api_domain: pick(
                &conn_flags.api_domain,
                &stored.api_domain,
                &config.api_domain,
            ),
            dc: pick(&conn_flags.dc, &stored.dc, &config.dc),
            accounts_url: pick(
                &conn_flags.accounts_url,
                &stored.accounts_url,
                &config.accounts_url,
            ),
            api_version: conn_flags
                .api_version
                .clone()
                .or_else(|| stored.api_version.clone()),
            dispatch: Some(settings),
        })
    }

    pub fn settings(&self) -> DispatchSettings {
        self.dispatch.clone().unwrap_or_default()
    }
}

/// A live connection: HTTP client, tokens, and the API domain to use.
pub struct Connected {
    pub http: reqwest::Client,
    pub tokens: Arc<TokenSource>,
    explicit_api_domain: Option<String>,
    dc_api_domain: String,
    pub api_version: String,
}

impl Connected {
    pub fn new(
        connection: &StoredConnection,
        credentials: Credentials,
        stop: CancellationToken,
        db: &Path,
    ) -> Result<Connected, UsageError> {
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
        let settings = connection.settings();
        let http = api::http_client(settings.timeout, settings.concurrency);
        let tokens = Arc::new(
            TokenSource::new(credentials, accounts, http.clone(), stop).sharing_refresh_budget(db),
        );
        Ok(Connected {
            http,
            tokens,
            explicit_api_domain,
            dc_api_domain: dc_api.to_string(),
            api_version: connection
                .api_version
                .clone()
                .unwrap_or_else(|| "v2".into()),
        })
    }

    /// The API domain: the flag, else what the token answer named (checked), else the
    /// data centre's.
    pub async fn api_domain(&self) -> Result<String, UsageError> {
        if let Some(explicit) = &self.explicit_api_domain {
            return Ok(explicit.clone());
        }
        match self.tokens.api_domain().await {
            Some(from_token) => check_base_url("the token answer's api_domain", &from_token),
            None => Ok(self.dc_api_domain.clone()),
        }
    }

    /// The mass_update endpoint. Call after a first `tokens.token()`: a refresh answer may
    /// name the API domain.
    pub async fn endpoint(&self, module: &str) -> Result<Endpoint, UsageError> {
        let domain = self.api_domain().await?;
        Ok(Endpoint {
            mass_update_url: format!(
                "{domain}/crm/{}/{module}/actions/mass_update",
                self.api_version
            ),
            http: self.http.clone(),
            tokens: self.tokens.clone(),
        })
    }
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
                    eprintln!("\nstopping: no new calls; waiting for calls in flight (press Ctrl-C again to quit at once)");
                }
                stop.cancel();
            } else {
                eprintln!("\nquitting now; `massup resume` continues the run");
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

/// Shows progress while `work` runs: a bar on a terminal, a log line every few seconds
/// otherwise (cron), nothing with --quiet.
pub async fn with_progress<T>(
    progress: Arc<Progress>,
    quiet: bool,
    work: impl std::future::Future<Output = T>,
) -> T {
    let total = progress.items_total.load(Ordering::Relaxed);
    if quiet {
        return work.await;
    }
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} records  {per_sec}  ETA {eta}  {msg}",
            )
            .expect("static template"),
        );
        bar
    });
    let describe = |p: &Progress| {
        format!(
            "calls {}  ok {}  retryable {}  failed {}",
            p.calls.load(Ordering::Relaxed),
            p.succeeded.load(Ordering::Relaxed),
            p.retryable.load(Ordering::Relaxed),
            p.failed.load(Ordering::Relaxed)
        )
    };
    let tick = if terminal {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(5)
    };
    tokio::pin!(work);
    let mut interval = tokio::time::interval(tick);
    interval.tick().await;
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            _ = interval.tick() => {
                let settled = progress.items_settled.load(Ordering::Relaxed);
                match &bar {
                    Some(bar) => {
                        bar.set_position(settled);
                        bar.set_message(describe(&progress));
                    }
                    None => tracing::info!("{settled}/{total} records settled; {}", describe(&progress)),
                }
            }
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result
}

/// Items not yet settled: the progress bar's total.
pub fn pending_items(conn: &rusqlite::Connection, run_id: i64) -> Result<u64, store::StoreError> {
    let mut stmt =
        conn.prepare("SELECT outcomes FROM chunks WHERE run_id = ?1 AND state <> 'done'")?;
    let mut rows = stmt.query([run_id])?;
    let mut total = 0u64;
    while let Some(r) = rows.next()? {
        let outcomes: Vec<u8> = r.get(0)?;
        total += outcomes.iter().filter(|&&b| b == 0).count() as u64;
    }
    Ok(total)
}

/// Sends a run's pending chunks and ends with its summary and exit code.
pub async fn dispatch_run(
    db: &Path,
    run: &RunInfo,
    connection: &StoredConnection,
    connected: &Connected,
    stop: CancellationToken,
    global: &GlobalArgs,
) -> anyhow::Result<Exit> {
    let conn = store::open(db)?;
    dispatch::reset_in_flight(&conn, run.id)?;
    connection.save(&conn, run.id)?;
    store::set_run_state(&conn, run.id, "running")?;
    let progress = Arc::new(Progress::default());
    progress
        .items_total
        .store(pending_items(&conn, run.id)?, Ordering::Relaxed);
    drop(conn);
    // A first token before the URL is fixed. Refused credentials are left for the dispatch
    // to report; but when the accounts server cannot be reached at all (its refresh already
    // retried), the workers would only wait for the same, so the run stops here, resumable.
    let first_token = connected.tokens.token().await;
    let endpoint = connected.endpoint(&run.module).await?;
    tracing::debug!(run = run.id, url = %endpoint.mass_update_url, "sending");
    let report = match first_token {
        Err(AuthError::Unavailable(message)) => DispatchReport {
            calls: 0,
            stop: Some(StopReason::TokenUnavailable { message }),
            elapsed: Duration::ZERO,
        },
        _ => {
            with_progress(
                progress.clone(),
                global.quiet,
                dispatch::dispatch(db, run.id, connection.settings(), endpoint, stop, progress),
            )
            .await?
        }
    };
    finish_run(db, run.id, &report, global)
}

/// Sets the run's final state, prints its summary and what to do next, and picks the exit
/// code.
pub fn finish_run(
    db: &Path,
    run_id: i64,
    report: &DispatchReport,
    global: &GlobalArgs,
) -> anyhow::Result<Exit> {
    let conn = store::open(db)?;
    let run = store::run(&conn, run_id)?.expect("the run exists");
    let counts = summary::run_counts(&conn, &run)?;
    let unfinished = counts.unfinished_chunks() > 0;
    let state = if report.stop.is_some() || unfinished {
        "interrupted"
    } else {
        "finished"
    };
    store::set_run_state(&conn, run_id, state)?;
    let run = store::run(&conn, run_id)?.expect("the run exists");
    let text = super::status::render_run(&run, &counts, db);
    if global.quiet {
        eprintln!(
            "run {}: {} succeeded, {} retryable, {} failed, {} invalid, {} pending; {} calls",
            run.id,
            counts.rows(RowOutcome::Succeeded),
            counts.rows(RowOutcome::Retryable),
            counts.rows(RowOutcome::Failed),
            counts.rows(RowOutcome::Invalid),
            counts.rows(RowOutcome::Pending),
            counts.calls
        );
    } else {
        crate::out!("{text}");
    }
    let exit = match &report.stop {
        Some(StopReason::Fatal { code, message }) => {
            eprintln!("error: stopped on {code}: {message}");
            eprintln!(
                "Fix that, then continue with: massup --db {} resume --run {}",
                db.display(),
                run.id
            );
            Exit::Fatal
        }
        Some(reason) => {
            eprintln!(
                "stopped ({reason}); continue with: massup --db {} resume --run {}",
                db.display(),
                run.id
            );
            Exit::Resumable
        }
        None if unfinished => {
            eprintln!(
                "some calls kept failing (see `massup status`); continue with: massup --db {} resume --run {}",
                db.display(),
                run.id
            );
            Exit::Resumable
        }
        None => {
            let bad = counts.rows(RowOutcome::Failed)
                + counts.rows(RowOutcome::Retryable)
                + counts.rows(RowOutcome::Invalid)
                + counts.rows(RowOutcome::Pending);
            if bad > 0 {
                Exit::Failures
            } else {
                Exit::Success
            }
        }
    };
    Ok(exit)
}

/// What `resume` and `retry` need of a stored run: its plan settings and its connection
/// with this invocation's flags over it, and credentials from the environment.
pub struct StoredRun {
    pub run: RunInfo,
    pub plan: crate::plan::PlanSettings,
    pub connection: StoredConnection,
    pub credentials: Credentials,
}

impl StoredRun {
    pub fn load(
        conn: &rusqlite::Connection,
        run: RunInfo,
        connection: &ConnectionFlags,
        dispatch: &DispatchFlags,
        config: &Config,
    ) -> anyhow::Result<StoredRun> {
        let plan: crate::plan::PlanSettings = serde_json::from_str(&run.settings_json)?;
        let stored = StoredConnection::load(&run, conn);
        let connection =
            StoredConnection::resolve(&stored, connection, dispatch, config, plan.over_write)?;
        Ok(StoredRun {
            run,
            plan,
            connection,
            credentials: require_credentials(config)?,
        })
    }

    /// Sends the run's pending chunks from a synchronous command: runtime, signals,
    /// connection, dispatch, summary.
    pub fn send(self, db: &Path, global: &GlobalArgs) -> anyhow::Result<Exit> {
        runtime()?.block_on(async {
            let stop = CancellationToken::new();
            install_signal_handlers(stop.clone(), global.quiet);
            let connected = Connected::new(&self.connection, self.credentials, stop.clone(), db)?;
            dispatch_run(db, &self.run, &self.connection, &connected, stop, global).await
        })
    }
}

/// The tokio runtime for a command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The run named by --run, else the latest unfinished (or, with `any`, the latest).
pub fn pick_run(
    conn: &rusqlite::Connection,
    run: Option<i64>,
    any: bool,
    db: &Path,
) -> Result<RunInfo, UsageError> {
    let found = match run {
        Some(id) => store::run(conn, id).map_err(|e| UsageError::new(e.to_string()))?,
        None if any => store::latest_run(conn).map_err(|e| UsageError::new(e.to_string()))?,
        None => store::latest_unfinished_run(conn).map_err(|e| UsageError::new(e.to_string()))?,
    };
    found.ok_or_else(|| match run {
        Some(id) => UsageError::new(format!(
            "no run {id} in {}; `massup status` lists the runs",
            db.display()
        )),
        None if any => UsageError::new(format!("no runs in {}", db.display())),
        None => UsageError::new(format!(
            "no unfinished run in {}; `massup status` lists the runs (pass --run ID)",
            db.display()
        )),
    })
}
