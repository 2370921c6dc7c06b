//! What `run`, `resume` and `retry` share: the connection and dispatch flags, the
//! validated send settings they resolve to (over the stored run and massup.toml), and the
//! send itself with its closing summary.
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use super::session::SendSettings;
use super::session::{install_signal_handlers, require_credentials, runtime, Session};
use crate::api::auth::AuthError;
use crate::config::Config;
use crate::dispatch::{self, DispatchReport, DispatchSettings, Progress, RateChoice, StopReason};
use crate::exit::{exit_for_send, Exit, SendEnd, UsageError};
use crate::global::GlobalArgs;
use crate::lease;
use crate::render::{self, progress::with_progress};
use crate::store::{self, RunInfo, RunState, StoreError};
use crate::summary;

/// Where to send calls, as the command line said (None: not said).
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub api_domain: Option<String>,
    pub dc: Option<String>,
    pub accounts_url: Option<String>,
    pub api_version: Option<String>,
    pub content_domain: Option<String>,
}

/// How fast and how hard to send, as the command line said (None: not said).
#[derive(Debug, Clone, Default)]
pub struct Pace {
    pub rate: Option<RateChoice>,
    pub concurrency: Option<usize>,
    pub timeout: Option<f64>,
    pub max_attempts: Option<u32>,
    pub max_calls: Option<u64>,
    pub min_credits: Option<u64>,
    pub max_credits: Option<u64>,
    /// Queue behind another sender of the run instead of exiting (4).
    pub wait: bool,
    pub backoff_ms: Option<u64>,
    pub bulk_wait: Option<u64>,
    pub bulk_jobs: Option<usize>,
    pub bulk_poll_ms: Option<u64>,
}

/// Writes `--results DIR`'s files if a folder is given; their paths and rows, for the
/// JSON (null if not asked for, or when they could not be written: a warning says why, and
/// the send's own exit code stands).
/// `excel`: written for a spreadsheet (a UTF-8 byte order mark first).
pub fn write_results(
    dir: Option<&Path>,
    excel: bool,
    db: &Path,
    run: &RunInfo,
) -> serde_json::Value {
    let Some(dir) = dir else {
        return serde_json::Value::Null;
    };
    try_write_results(dir, excel, db, run).unwrap_or_else(|e| {
        crate::logging::notice(
            crate::logging::Level::Warn,
            "results_failed",
            &format!("warning: cannot write the --results files: {e:#}"),
            serde_json::json!({ "run": run.id }),
        );
        serde_json::Value::Null
    })
}

fn try_write_results(
    dir: &Path,
    excel: bool,
    db: &Path,
    run: &RunInfo,
) -> anyhow::Result<serde_json::Value> {
    std::fs::create_dir_all(dir).map_err(|e| {
        UsageError::new(format!(
            "--results {}: cannot create it: {e}",
            dir.display()
        ))
    })?;
    use crate::summary::RowOutcome::*;
    let conn = store::open(db)?;
    let success = dir.join(format!("run-{}-success.csv", run.id));
    let errors = dir.join(format!("run-{}-errors.csv", run.id));
    let dialect = crate::render::report::CsvDialect::of_run(run, excel)?;
    let succeeded = crate::render::report::write_csv(&conn, run, dialect, &[Succeeded], &success)?;
    let others = crate::render::report::write_csv(
        &conn,
        run,
        dialect,
        &[Failed, Retryable, Invalid, Pending],
        &errors,
    )?;
    crate::logging::notice(
        crate::logging::Level::Info,
        "results_written",
        &format!(
            "Results: {} row(s) that succeeded in {}, {} other row(s) in {}",
            render::count(succeeded),
            success.display(),
            render::count(others),
            errors.display()
        ),
        serde_json::json!({ "run": run.id, "succeeded": succeeded, "others": others }),
    );
    Ok(serde_json::json!({
        "success": { "path": success.display().to_string(), "rows": succeeded },
        "errors": { "path": errors.display().to_string(), "rows": others },
    }))
}

impl SendSettings {
    /// Flags override what was stored, which overrides massup.toml.
    pub fn resolve(
        stored: &SendSettings,
        conn_flags: &Connection,
        flags: &Pace,
        config: &Config,
        plan: &crate::plan::PlanSettings,
    ) -> Result<SendSettings, UsageError> {
        let config_rate = config
            .rate
            .as_deref()
            .map(str::parse::<RateChoice>)
            .transpose()
            .map_err(|e| UsageError::new(format!("massup.toml rate: {e}")))?
            .and_then(|r| match r {
                RateChoice::Limit(rate) => Some(rate),
                RateChoice::Unlimited => None,
            });
        let base = stored.dispatch.clone().unwrap_or_else(|| DispatchSettings {
            concurrency: config.concurrency.unwrap_or(10),
            rate: config_rate,
            max_attempts: config.max_attempts.unwrap_or(5),
            timeout: Duration::from_secs_f64(config.timeout_secs.unwrap_or(60.0)),
            ..DispatchSettings::default()
        });
        // How values are written is the plan's: stored with it, the same on every send.
        let mut settings = DispatchSettings {
            over_write: plan.over_write,
            trigger: plan.trigger.clone(),
            max_calls: flags.max_calls,
            min_credits: flags.min_credits.or(base.min_credits),
            max_credits: flags
                .max_credits
                .or(base.max_credits)
                .or(config.max_credits),
            ..base
        };
        if let Some(n) = flags.concurrency {
            settings.concurrency = n;
        }
        if settings.concurrency == 0 {
            return Err(UsageError::new("--concurrency must be at least 1"));
        }
        match flags.rate {
            Some(RateChoice::Limit(rate)) => settings.rate = Some(rate),
            Some(RateChoice::Unlimited) => settings.rate = None,
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
        if let Some(n) = flags.bulk_jobs {
            if n == 0 {
                return Err(UsageError::new("--bulk-jobs must be at least 1"));
            }
            settings.bulk_jobs = n;
        }
        if let Some(secs) = flags.bulk_wait {
            settings.bulk_wait = Duration::from_secs(secs.max(1));
        }
        if let Some(ms) = flags.bulk_poll_ms {
            settings.bulk_poll = Duration::from_millis(ms.max(1));
            settings.bulk_poll_max = settings.bulk_poll * 15;
        }
        let content_domain = conn_flags
            .content_domain
            .clone()
            .or_else(|| stored.content_domain.clone());
        if let Some(url) = &content_domain {
            crate::api::check_base_url("--content-domain", url)?;
        }
        let pick = |flag: &Option<String>, stored: &Option<String>, config: &Option<String>| {
            flag.clone()
                .or_else(|| stored.clone())
                .or_else(|| config.clone())
        };
        Ok(SendSettings {
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
            content_domain,
            dispatch: Some(settings),
        })
    }
}

/// Takes the run's lease (one sender per run, across processes) before anything of the
/// run changes: requeue, in-flight reset, sending. Held by another process: with `wait`,
/// queue behind it (saying who); else a `RunBusy` error naming the holder (exit 4).
pub fn hold_run(
    db: &Path,
    run_id: i64,
    command: &str,
    wait: bool,
    stop: Option<&CancellationToken>,
) -> anyhow::Result<lease::Lease> {
    let path = lease::run_lock_path(db, run_id);
    let stopped = || stop.is_some_and(CancellationToken::is_cancelled);
    let mut on_wait = |holder: Option<&lease::Holder>| {
        let who = holder.map_or_else(|| "another process".to_string(), |h| h.to_string());
        crate::logging::notice(
            crate::logging::Level::Info,
            "lease_wait",
            &format!("run {run_id} is being sent by {who}; waiting for it to end (--wait)"),
            serde_json::json!({ "run": run_id }),
        );
    };
    match lease::acquire_blocking(&path, command, wait, &stopped, &mut on_wait) {
        Ok(lease) => Ok(lease),
        Err(lease::LeaseError::Held { holder, .. }) => Err(lease::RunBusy {
            run_id,
            holder: holder.map_or_else(|| "another process".to_string(), |h| h.to_string()),
        }
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// Holds the database's plan lock while `plan` looks for an earlier run of the file and
/// stores a new one, so that two invocations planning the same file at once make one run
/// (the second waits, then finds the first's run).
pub fn holding_plan_lock<T>(
    db: &Path,
    command: &str,
    plan: impl FnOnce() -> T,
) -> anyhow::Result<T> {
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let path = lease::plan_lock_path(db);
    let mut on_wait = |holder: Option<&lease::Holder>| {
        let who = holder.map_or_else(|| "another process".to_string(), |h| h.to_string());
        tracing::info!("{} is planning into {}; waiting for it", who, db.display());
    };
    let _lock = lease::acquire_blocking(&path, command, true, &|| false, &mut on_wait)?;
    Ok(plan())
}

/// The lifecycle event of a stored plan (at the default level).
pub fn log_planned(summary: &crate::plan::PlanSummary) {
    let t = &summary.totals;
    tracing::info!(
        run = summary.run_id,
        module = %summary.module,
        input_rows = t.input_rows,
        valid_rows = t.valid_rows,
        invalid_rows = t.invalid_rows,
        credits = summary.total_credits(),
        calls = t.calls,
        min_calls = t.min_calls,
        "plan done"
    );
}

/// How a send ended: the exit code, why, and the run and its counts as it left them.
#[derive(Debug, Clone)]
pub struct SendOutcome {
    pub exit: Exit,
    pub end: SendEnd,
    pub run: RunInfo,
    pub counts: summary::RunCounts,
}

impl SendOutcome {
    /// The body of the JSON a sending command prints (docs/JSON.md): the run, its counts,
    /// how the send ended, timing and what to do next; the error when it did not finish.
    pub fn to_json(&self, db: &Path) -> (Option<serde_json::Value>, serde_json::Value) {
        let resume = format!("massup --db {} resume --run {}", db.display(), self.run.id);
        let state = self.end.state_name();
        let error = match &self.end {
            SendEnd::Finished => None,
            SendEnd::Fatal { code, message } => Some(render::json::error(
                "fatal",
                &format!("stopped on {code}: {message}"),
                Some(&format!("fix that, then: {resume}")),
                serde_json::json!({ "code": code }),
            )),
            SendEnd::Stopped(reason) => Some(render::json::error(
                "resumable",
                &format!("stopped ({reason})"),
                Some(&resume),
                serde_json::Value::Null,
            )),
            SendEnd::Declined => Some(render::json::error(
                "resumable",
                "declined at the prompt; nothing was sent",
                Some(&resume),
                serde_json::Value::Null,
            )),
            SendEnd::CallsKeptFailing => Some(render::json::error(
                "resumable",
                "some calls kept failing within this invocation's attempts",
                Some(&resume),
                serde_json::Value::Null,
            )),
        };
        let stop = match &self.end {
            SendEnd::Fatal { code, message } => serde_json::json!({
                "reason": "fatal", "code": code, "message": message
            }),
            SendEnd::Stopped(reason) => serde_json::to_value(reason).unwrap_or_default(),
            _ => serde_json::Value::Null,
        };
        let (duration_secs, records_per_sec) = render::timing(&self.run, &self.counts);
        let body = serde_json::json!({
            "run": &self.run,
            "counts": &self.counts,
            "end": { "state": state, "stop": stop },
            "duration_secs": duration_secs,
            "records_per_sec": records_per_sec,
            "next": render::next_steps(&self.run, &self.counts, db),
        });
        (error, body)
    }
}

/// Sends a run's pending chunks and ends with its summary, its exit code and how it ended.
pub async fn send_run(
    db: &Path,
    run: &RunInfo,
    send: &SendSettings,
    session: &Session,
    stop: CancellationToken,
    global: &GlobalArgs,
) -> anyhow::Result<SendOutcome> {
    let conn = store::open(db)?;
    store::check_before_sending(&conn, db)?;
    store::chunks::reset_in_flight(&conn, run.id)?;
    let dispatch_settings = with_plan(send.dispatch(), run)?;
    if let Some(max) = dispatch_settings.max_credits {
        let estimate = CreditEstimate::of(&conn, run, &dispatch_settings)?;
        if estimate.total() > max {
            return Err(UsageError::new(format!(
                "run {}: sending it is estimated to take the run to {} credits ({}), above --max-credits {max}; nothing was sent. Raise --max-credits (or `max_credits` in massup.toml), or send fewer rows",
                run.id,
                render::count(estimate.total()),
                estimate
            ))
            .into());
        }
    }
    send.save(&conn, run.id)?;
    // A first token before the URL is fixed. Refused credentials are left for the dispatch
    // to report; but when the accounts server cannot be reached at all (its refresh already
    // retried), the workers would only wait for the same, so the run stops here, resumable.
    let first_token = session.tokens.token().await;
    let endpoint = session.endpoint(&run.module).await?;
    if global.ask_first && std::io::stdin().is_terminal() {
        let work = store::chunks::pending_work(&conn, run.id)?;
        if work.calls > 0 && !confirm(run, &work, &endpoint.urls.records(&run.module)).await? {
            drop(conn);
            return declined(db, run);
        }
    }
    store::runs::set_run_state(&conn, run.id, RunState::Running)?;
    let send_id = store::sends::begin(&conn, run.id, global.command_name)?;
    let progress = Arc::new(Progress::default());
    progress.items_total.store(
        store::chunks::unsettled_items(&conn, run.id)?,
        Ordering::Relaxed,
    );
    let credits_before = summary::credits_spent(&conn, run.id)?;
    drop(conn);
    tracing::debug!(run = run.id, url = %endpoint.urls.records(&run.module), "sending");
    let report = match first_token {
        Err(AuthError::Unavailable(message)) => DispatchReport {
            calls: 0,
            all_calls: 0,
            credits: 0,
            credits_remaining: None,
            stop: Some(StopReason::TokenUnavailable { message }),
            elapsed: Duration::ZERO,
        },
        _ => {
            with_progress(
                progress.clone(),
                global.quiet,
                dispatch::dispatch(
                    db,
                    run.id,
                    dispatch_settings,
                    endpoint,
                    // A stop the dispatch calls for (credits, a fatal answer) ends this
                    // send only; Ctrl-C (the parent) ends every one.
                    stop.child_token(),
                    progress,
                    credits_before,
                ),
            )
            .await?
        }
    };
    finish_run(db, run.id, send_id, &report, global)
}

/// What the rest of a run is expected to cost: the credits spent already, the pending
/// writes (fault-free) and the snapshot's reads.
#[derive(Debug, Clone, Copy)]
pub struct CreditEstimate {
    pub spent: u64,
    pub writes: u64,
    pub reads: u64,
}

impl CreditEstimate {
    pub fn of(
        conn: &rusqlite::Connection,
        run: &RunInfo,
        settings: &DispatchSettings,
    ) -> anyhow::Result<CreditEstimate> {
        let work = store::chunks::pending_work(conn, run.id)?;
        let reads_per_record_batch = run
            .columns
            .len()
            .div_ceil(crate::api::limits::MAX_FIELDS_PER_READ)
            .max(1) as u64;
        let reads = match (settings.snapshot, settings.skip_unchanged) {
            (false, _) => 0,
            // Compared before each call: every chunk reads its records.
            (true, true) => work.read_calls * reads_per_record_batch,
            // A plain snapshot reads each record once.
            (true, false) => {
                work.read_calls.min(
                    work.unread_records
                        .div_ceil(crate::api::limits::MAX_IDS_PER_READ as u64),
                ) * reads_per_record_batch
            }
        };
        Ok(CreditEstimate {
            spent: summary::credits_spent(conn, run.id)?,
            writes: work.credits,
            reads,
        })
    }

    pub fn total(&self) -> u64 {
        self.spent + self.writes + self.reads
    }
}

impl std::fmt::Display for CreditEstimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} spent, {} for the writes, {} for snapshot reads",
            render::count(self.spent),
            render::count(self.writes),
            render::count(self.reads)
        )
    }
}

/// Says what sending would do and asks the person at the terminal (stdin) to confirm:
/// "About to update 21,519 field values on 5,000 Leads records at www.zohoapis.eu in 44
/// calls (run 3). Send? [y/N]". Only `y` or `yes` sends; anything else, or end of input,
/// does not.
async fn confirm(
    run: &RunInfo,
    work: &store::chunks::PendingWork,
    url: &str,
) -> anyhow::Result<bool> {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| u.port().map_or(h.to_string(), |p| format!("{h}:{p}")))
        })
        .unwrap_or_else(|| url.to_string());
    let question = format!(
        "About to update {} field values on {} {} records at {host} in {} calls costing {} API credits (run {}). Send? [y/N] ",
        render::count(work.field_values),
        render::count(work.records),
        run.module,
        render::count(work.calls),
        render::count(work.credits),
        run.id
    );
    // Blocking reads belong off the runtime's workers.
    let answer = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        use std::io::Write;
        let mut err = std::io::stderr().lock();
        err.write_all(question.as_bytes())?;
        err.flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line)
    })
    .await??;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// The end of a send the person at the terminal declined: nothing sent, the run left as
/// it was for `resume`.
fn declined(db: &Path, run: &RunInfo) -> anyhow::Result<SendOutcome> {
    let conn = store::open(db)?;
    let run = store::runs::run(&conn, run.id)?.ok_or_else(|| no_run(run.id, db))?;
    let counts = summary::run_counts(&conn, &run)?;
    let resume = format!("massup --db {} resume --run {}", db.display(), run.id);
    crate::logging::notice(
        crate::logging::Level::Warn,
        "declined",
        &format!("Nothing sent. Send it later with: {resume}"),
        serde_json::json!({ "run": run.id, "next": &resume }),
    );
    Ok(SendOutcome {
        exit: exit_for_send(&SendEnd::Declined, &counts),
        end: SendEnd::Declined,
        run,
        counts,
    })
}

/// The dispatch settings with what the run's plan decided: whether it takes a snapshot
/// before writing and leaves unchanged records out.
fn with_plan(
    mut settings: DispatchSettings,
    run: &RunInfo,
) -> Result<DispatchSettings, StoreError> {
    let plan = crate::plan::PlanSettings::of_run(run)?;
    settings.snapshot = plan.snapshot.unwrap_or(false);
    settings.skip_unchanged = plan.skip_unchanged;
    Ok(settings)
}

/// Sets the run's final state, prints its summary and what to do next, and returns the
/// exit code (decided in `exit`).
pub fn finish_run(
    db: &Path,
    run_id: i64,
    send_id: i64,
    report: &DispatchReport,
    global: &GlobalArgs,
) -> anyhow::Result<SendOutcome> {
    let conn = store::open(db)?;
    let run = store::runs::run(&conn, run_id)?.ok_or_else(|| no_run(run_id, db))?;
    let counts = summary::run_counts(&conn, &run)?;
    let end = SendEnd::of(report.stop.as_ref(), counts.unfinished_chunks() > 0);
    let state = match end {
        SendEnd::Finished => RunState::Finished,
        _ => RunState::Interrupted,
    };
    store::runs::set_run_state(&conn, run_id, state)?;
    let totals = store::sends::SendTotals {
        calls: report.calls,
        credits: report.credits,
        credits_remaining: report.credits_remaining,
    };
    store::sends::end(&conn, send_id, totals, end.state_name())?;
    summarize(&conn, db, run_id, end, global)
}

/// How a send ended, told: the run's status (or the summary line), what to do next, and
/// the exit code. Also for a resume or retry that found nothing to send.
fn summarize(
    conn: &rusqlite::Connection,
    db: &Path,
    run_id: i64,
    end: SendEnd,
    global: &GlobalArgs,
) -> anyhow::Result<SendOutcome> {
    use crate::logging::{notice, Level};
    let run = store::runs::run(conn, run_id)?.ok_or_else(|| no_run(run_id, db))?;
    let counts = summary::run_counts(conn, &run)?;
    let exit = exit_for_send(&end, &counts);
    // The summary line: what --quiet keeps, and with --log-format json always (a job
    // reading the log gets the outcome without the human table on stdout).
    if global.quiet || crate::logging::format() == crate::global::LogFormat::Json {
        let fields = serde_json::json!({
            "run": run.id,
            "state": run.state,
            "rows": &counts.rows,
            "credits": counts.credits,
            "calls": counts.calls,
            "min_calls": counts.min_calls,
            "exit_code": exit.code(),
        });
        notice(
            Level::Info,
            "run_summary",
            &render::run_line(&run, &counts),
            fields,
        );
    }
    if !global.quiet && !global.json {
        crate::out!("{}", render::run_status(&run, &counts, db));
    }
    let resume = format!("massup --db {} resume --run {}", db.display(), run.id);
    let fields = serde_json::json!({ "run": run.id, "next": &resume });
    match &end {
        SendEnd::Fatal { code, message } => notice(
            Level::Error,
            "stopped",
            &format!("error: stopped on {code}: {message}\nFix that, then continue with: {resume}"),
            serde_json::json!({ "run": run.id, "code": code, "next": &resume }),
        ),
        SendEnd::Stopped(reason) => notice(
            Level::Warn,
            "stopped",
            &format!("stopped ({reason}); continue with: {resume}"),
            fields,
        ),
        SendEnd::CallsKeptFailing => notice(
            Level::Warn,
            "stopped",
            &format!("some calls kept failing (see `massup status`); continue with: {resume}"),
            fields,
        ),
        SendEnd::Finished | SendEnd::Declined => {}
    }
    Ok(SendOutcome {
        exit,
        end,
        run,
        counts,
    })
}

fn no_run(run_id: i64, db: &Path) -> anyhow::Error {
    anyhow::anyhow!("run {run_id} is gone from {}", db.display())
}

/// What `resume` and `retry` need of a stored run: its plan settings and its connection
/// with this invocation's flags over it, and credentials from the environment.
pub struct StoredRun {
    pub run: RunInfo,
    pub plan: crate::plan::PlanSettings,
    pub send: SendSettings,
    /// Where credentials come from: asked for only when there is something to send.
    config: crate::config::Config,
    /// This process is the run's only sender while this is held.
    pub lease: lease::Lease,
}

impl StoredRun {
    pub fn load(
        conn: &rusqlite::Connection,
        run: RunInfo,
        connection: &Connection,
        dispatch: &Pace,
        workspace: &super::Workspace,
        command: &str,
    ) -> anyhow::Result<StoredRun> {
        let (config, db) = (&workspace.config, workspace.db.as_path());
        if let Some(ended) = run.ended_as.as_deref().filter(|e| *e != "superseded") {
            return Err(UsageError::new(format!(
                "run {} was {ended} ({}): it is not sent again. `massup status --run {}` shows it",
                run.id,
                run.ended_note.as_deref().unwrap_or(""),
                run.id
            ))
            .into());
        }
        let plan = crate::plan::PlanSettings::of_run(&run)?;
        let stored = SendSettings::load(conn, run.id)?;
        let send = SendSettings::resolve(&stored, connection, dispatch, config, &plan)?;
        // Held before anything of the run changes; kept until this process is done with it.
        let lease = hold_run(db, run.id, command, dispatch.wait, None)?;
        Ok(StoredRun {
            lease,
            run,
            plan,
            send,
            config: config.clone(),
        })
    }

    /// Sends the run's pending chunks from a synchronous command: runtime, signals,
    /// connection, dispatch, summary.
    pub fn send(
        self,
        db: &Path,
        global: &GlobalArgs,
        wait: Option<CreditWait>,
    ) -> anyhow::Result<SendOutcome> {
        // Nothing left to send (a finished run resumed again, a retry with nothing to
        // re-queue): say how the run stands, with no credentials asked for, no connection
        // and no send added to its times.
        {
            let conn = store::open(db)?;
            if !store::chunks::has_unfinished(&conn, self.run.id)? {
                if self.run.state != RunState::Finished {
                    store::runs::set_run_state(&conn, self.run.id, RunState::Finished)?;
                }
                if !global.quiet && !global.json {
                    crate::outln!("Run {}: nothing left to send", self.run.id);
                }
                return summarize(&conn, db, self.run.id, SendEnd::Finished, global);
            }
        }
        let credentials = require_credentials(&self.config)?;
        runtime()?.block_on(async {
            let stop = CancellationToken::new();
            install_signal_handlers(stop.clone(), global.quiet);
            let session = Session::new(&self.send, credentials, stop.clone())?;
            let outcome =
                send_run(db, &self.run, &self.send, &session, stop.clone(), global).await?;
            let Some(wait) = wait else {
                return Ok(outcome);
            };
            wait.until_credits(db, &self.run, &self.send, &session, stop, global, outcome)
                .await
        })
    }
}

/// `resume --wait-credits`: when the daily credits are spent, wait and probe again with a
/// single call (which costs at most one credit, and none when refused), then send the rest
/// at full speed once a probe gets through.
#[derive(Debug, Clone, Copy)]
pub struct CreditWait {
    /// Time between probes.
    pub probe_every: Duration,
    /// Give up (exit 4, resumable) after waiting this long in all.
    pub give_up_after: Duration,
}

impl CreditWait {
    #[allow(clippy::too_many_arguments)]
    async fn until_credits(
        self,
        db: &Path,
        run: &RunInfo,
        send: &SendSettings,
        session: &Session,
        stop: CancellationToken,
        global: &GlobalArgs,
        mut last: SendOutcome,
    ) -> anyhow::Result<SendOutcome> {
        let deadline = tokio::time::Instant::now() + self.give_up_after;
        // One call at a time: a probe that is refused costs nothing and spends nothing.
        let mut probe = send.clone();
        if let Some(dispatch) = probe.dispatch.as_mut() {
            dispatch.concurrency = 1;
            dispatch.max_calls = Some(1);
        }
        use crate::logging::{notice, Level};
        while last.end == SendEnd::Stopped(StopReason::CreditsExhausted) {
            let next = tokio::time::Instant::now() + self.probe_every;
            if next > deadline {
                notice(
                    Level::Warn,
                    "credits_wait_over",
                    &format!(
                        "still no API credits after waiting {}s; giving up for now (resumable)",
                        self.give_up_after.as_secs()
                    ),
                    serde_json::json!({ "waited_secs": self.give_up_after.as_secs() }),
                );
                break;
            }
            notice(
                Level::Info,
                "credits_wait",
                &format!(
                    "waiting {}s for the 24-hour window to free API credits, then probing with one call (Ctrl-C stops)",
                    self.probe_every.as_secs()
                ),
                serde_json::json!({ "probe_in_secs": self.probe_every.as_secs() }),
            );
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = stop.cancelled() => break,
            }
            let probed = send_run(db, run, &probe, session, stop.clone(), global).await?;
            last = match probed.end {
                // The probe got through: credits are back, send the rest at full speed.
                SendEnd::Stopped(StopReason::MaxCalls { .. }) => {
                    send_run(db, run, send, session, stop.clone(), global).await?
                }
                _ => probed,
            };
        }
        // A probe stored its one-call settings with the run; the run keeps the real ones.
        send.save(&store::open(db)?, run.id)?;
        Ok(last)
    }
}
