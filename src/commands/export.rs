//! `massup export --module M --fields A,B [--where COND] [--out FILE] [--resume]`: a module's
//! records (or those a COQL condition matches), their ids and the fields, as a CSV that `run`
//! reads back: edit a column, run the file, and only that column is written.
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::flags::{ConnectionFlags, ReadPaceFlags};
use crate::app::export::{export_pages, state_path, ExportSpec, ExportState, Sink, Stopped};
use crate::app::send::SendSettings;
use crate::app::session::{install_signal_handlers, require_credentials, runtime, Session};
use crate::config::Config;
use crate::dispatch::attempt::{Caller, Failure};
use crate::dispatch::{Progress, StopReason};
use crate::exit::{Exit, UsageError};
use crate::fields::{ColumnMatch, ModuleFields};
use crate::global::GlobalArgs;
use crate::plan::PlanSettings;

const EXAMPLES: &str = "Examples:
  massup export --module Leads --fields Email,Lead_Status,City --out leads.csv
      every lead's id, Email, Lead_Status and City; edit leads.csv, then
      `massup run --csv leads.csv --module Leads` writes what was edited
  massup export --module Leads --fields Email,City --where \"City = 'Lyon'\" > lyon.csv
      only the leads a COQL condition matches, to stdout
  massup export --module Leads --fields Email,City --out leads.csv --resume
      go on with an export that was interrupted (the file ends up as if it never was)
  massup export --module Deals --fields Deal_Name,Stage --api-version v8 --json --out deals.csv
      through v8's page tokens (past 2,000 records by listing); a JSON summary on stdout";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Module API name: Leads, Contacts, Accounts, Deals, ... [or `module` in massup.toml]
    #[arg(long)]
    pub module: Option<String>,
    /// The fields to export, comma-separated (API names or labels; the CSV headers are the
    /// API names, after an `id` column). At most 50.
    #[arg(long, value_name = "A,B,...", required = true)]
    pub fields: String,
    /// Only the records this COQL condition matches, e.g. "City = 'Lyon' and Lead_Status is
    /// null" (sent as the query's where clause).
    #[arg(long = "where", value_name = "CONDITION")]
    pub condition: Option<String>,
    /// Write the CSV to this file (progress is kept beside it in FILE.export-state, so an
    /// interrupted export can be resumed) [default: stdout]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Continue the interrupted export to --out FILE from where the file was last whole.
    #[arg(long, requires = "out")]
    pub resume: bool,
    #[command(flatten, next_help_heading = "Connection options")]
    pub connection: ConnectionFlags,
    /// Print one JSON object on stdout (docs/JSON.md); needs --out.
    #[arg(long, requires = "out")]
    pub json: bool,
    #[command(flatten, next_help_heading = "Pace options")]
    pub pace: ReadPaceFlags,
}

/// The most fields one export names: what one Get Records call or COQL select may carry.
const MAX_FIELDS: usize = crate::api::limits::MAX_FIELDS_PER_READ;

pub fn run(mut args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let config = Config::load(global.config.as_deref())?;
    let module = args
        .module
        .clone()
        .or_else(|| config.module.clone())
        .ok_or_else(|| {
            UsageError::new("no module: name one with --module (or set `module` in massup.toml)")
        })?;
    let asked: Vec<String> = args
        .fields
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    if asked.is_empty() {
        return Err(UsageError::new(
            "--fields names no field: list them, e.g. --fields Email,City",
        )
        .into());
    }
    // A resumed export pages as it began: the API version its state names, unless given.
    if args.resume && args.connection.api_version.is_none() {
        if let Some(out) = &args.out {
            args.connection.api_version = stored_api_version(out);
        }
    }
    let credentials = require_credentials(&config)?;
    let send = SendSettings::resolve(
        &SendSettings::default(),
        &args.connection.choice(),
        &args.pace.choice(),
        &config,
        &PlanSettings::new(&module),
    )?;
    let quiet = global.quiet || global.json;
    runtime()?.block_on(async {
        let stop = tokio_util::sync::CancellationToken::new();
        install_signal_handlers(stop.clone(), quiet);
        let session = Session::new(&send, credentials, stop.clone())?;
        let (metadata, _) = crate::app::planning::live_metadata(&session, &module).await?;
        let fields = api_names(&module, &metadata, &asked)?;
        let read_only: Vec<&str> = fields
            .iter()
            .filter(|f| metadata.get(f).is_some_and(|m| m.read_only))
            .map(String::as_str)
            .collect();
        if !read_only.is_empty() && !quiet {
            crate::logging::notice(
                crate::logging::Level::Warn,
                "export",
                &format!(
                    "note: {} read-only: `run` refuses such columns, so delete them before sending the file back",
                    match read_only.as_slice() {
                        [one] => format!("{one} is"),
                        many => format!("{} are", many.join(", ")),
                    }
                ),
                serde_json::json!({ "read_only": read_only }),
            );
        }
        let spec = ExportSpec {
            fields,
            module: module.clone(),
            condition: args.condition.clone(),
        };
        let (mut sink, mut state) = match (&args.out, args.resume) {
            (Some(out), true) => Sink::resume(out, &spec)?,
            (out, _) => {
                let mut state = ExportState {
                    next: spec.first_page(&session.api_version),
                    spec: spec.clone(),
                    api_version: session.api_version.clone(),
                    rows: 0,
                    bytes: 0,
                    calls: 0,
                    credits: 0,
                };
                let sink = match out {
                    Some(out) => Sink::create(out, &mut state)?,
                    None => Sink::stdout(&spec)?,
                };
                (sink, state)
            }
        };
        // The metadata call that checked the fields, priced as Zoho prices it.
        state.calls += 1;
        state.credits += crate::api::limits::credits(crate::api::limits::CallKind::Metadata, 0);
        let endpoint = session.endpoint(&module).await?;
        // --max-credits is the export's budget: what earlier invocations spent counts.
        let caller = Caller::new(
            send.dispatch(),
            endpoint,
            stop.clone(),
            Arc::new(Progress::default()),
            state.credits,
        );
        let written = Arc::new(AtomicU64::new(0));
        // Rows on the terminal already show the progress; a bar would tear them apart.
        let rows_on_terminal =
            args.out.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout());
        let ended = crate::render::progress::with_export_progress(
            written.clone(),
            quiet || rows_on_terminal,
            export_pages(&caller, &mut sink, &mut state, &written),
        )
        .await;
        // `massup export ... | head`: the reader has what it wanted; nothing is wrong.
        let ended = match ended {
            Err(e) if args.out.is_none() && closed_pipe(&e) => return Ok(Exit::Success),
            ended => ended?,
        };
        let out_name = args
            .out
            .as_ref()
            .map_or_else(|| "stdout".to_string(), |p| p.display().to_string());
        let exported = format!(
            "{} record{} of {module} ({}) to {out_name}: {} credits ({} calls)",
            crate::render::count(state.rows),
            if state.rows == 1 { "" } else { "s" },
            spec.fields.join(", "),
            crate::render::count(state.credits),
            crate::render::count(state.calls),
        );
        let summary = serde_json::json!({
            "module": module,
            "fields": spec.fields,
            "where": spec.condition,
            "records": state.rows,
            "calls": state.calls,
            "credits": state.credits,
            "out": args.out,
        });
        match ended {
            Ok(()) => {
                sink.finish()?;
                if global.json {
                    crate::render::json::print_result("export", Exit::Success, summary);
                } else {
                    // The summary line stays with --quiet, as every command's does.
                    crate::logging::notice(
                        crate::logging::Level::Info,
                        "export",
                        &format!("exported {exported}"),
                        summary,
                    );
                }
                Ok(Exit::Success)
            }
            Err(Stopped(failure)) => {
                let (exit, why) = why_stopped(failure, caller.stop_reason());
                if exit == Exit::Usage {
                    sink.abandon()?;
                    let message = format!("export of {module} refused: {why}");
                    return Err(UsageError::new(message).into());
                }
                let again = match &args.out {
                    Some(out) => format!(
                        "the same command with --resume continues it ({} keeps its place)",
                        state_path(out).display()
                    ),
                    None => "run it again (with --out FILE an export can be resumed)".into(),
                };
                let message = format!("export stopped after {exported}: {why}");
                if global.json {
                    crate::render::json::print_error("export", exit, &message, Some(&again));
                } else {
                    crate::logging::notice(
                        crate::logging::Level::Error,
                        "export",
                        &format!("error: {message}\nhint: {again}"),
                        summary,
                    );
                }
                Ok(exit)
            }
        }
    })
}

/// Whether writing failed because stdout's reader went away.
fn closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let io = cause.downcast_ref::<std::io::Error>().or_else(|| {
            match cause.downcast_ref::<csv::Error>().map(csv::Error::kind) {
                Some(csv::ErrorKind::Io(io)) => Some(io),
                _ => None,
            }
        });
        io.is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The API version an unfinished export to `out` was paging with, if its state says.
fn stored_api_version(out: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(state_path(out)).ok()?;
    let state: serde_json::Value = serde_json::from_str(&text).ok()?;
    state["api_version"].as_str().map(str::to_string)
}

/// The fields' API names, each named once, checked against the module's metadata: every
/// name no field answers to is refused at once, with the nearest one when there is one.
fn api_names(
    module: &str,
    metadata: &ModuleFields,
    asked: &[String],
) -> Result<Vec<String>, UsageError> {
    let mut names: Vec<String> = Vec::with_capacity(asked.len());
    let mut problems = Vec::new();
    for name in asked {
        if name.eq_ignore_ascii_case("id") {
            continue; // always the first column
        }
        match metadata.match_column(name) {
            ColumnMatch::ApiName(meta) | ColumnMatch::Loose(meta) => {
                if !names.contains(&meta.api_name) {
                    names.push(meta.api_name.clone());
                }
            }
            ColumnMatch::Unknown(hint) => problems.push(match hint {
                Some(near) => format!("{name} (did you mean {near}?)"),
                None => name.clone(),
            }),
            ColumnMatch::Ambiguous(fields) => problems.push(format!(
                "{name} (more than one field answers to it: {}; use the API name)",
                fields.join(", ")
            )),
        }
    }
    if !problems.is_empty() {
        return Err(UsageError::new(format!(
            "--fields: {module} has no field {} (`massup fields {module}` lists them)",
            problems.join(", ")
        )));
    }
    if names.is_empty() {
        return Err(UsageError::new(
            "--fields names no field besides id (which is always exported)",
        ));
    }
    if names.len() > MAX_FIELDS {
        return Err(UsageError::new(format!(
            "--fields names {} fields; one Zoho call reads at most {MAX_FIELDS}: export them in two files",
            names.len()
        )));
    }
    Ok(names)
}

/// The exit code and the words for an export that stopped: a refused query (a bad
/// --where) is the user's to fix; credits, the network or a signal pass, so resumable.
fn why_stopped(failure: Failure, reason: Option<StopReason>) -> (Exit, String) {
    match (failure, reason) {
        (Failure::Stopped, Some(reason)) | (Failure::Stop { reason, .. }, _)
            if !matches!(reason, StopReason::Fatal { .. }) =>
        {
            (Exit::Resumable, reason.to_string())
        }
        (Failure::Stopped, Some(reason)) => (Exit::Fatal, reason.to_string()),
        (Failure::Stopped, None) => (Exit::Resumable, "interrupted".into()),
        (Failure::AttemptsUsed { code, message }, _) => (
            Exit::Resumable,
            format!("{code}: {message} (every attempt failed)"),
        ),
        (Failure::Stop { code, message, .. }, _)
            if matches!(code.as_str(), "INVALID_QUERY" | "SYNTAX_ERROR") =>
        {
            (
                Exit::Usage,
                format!("Zoho refused the query: {code}: {message} (check --where)"),
            )
        }
        // COQL's OFFSET reaches only so far (10,000 rows up to v6, 100,000 from v7): going
        // on the same way cannot help.
        (Failure::Stop { code, message, .. }, _) if code == "LIMIT_EXCEEDED" => (
            Exit::Usage,
            format!(
                "{code}: {message}: a COQL export reaches only so many rows by OFFSET; without --where, --api-version v2.1 or later pages by page_token with no such limit; with --where, narrow the condition (the file holds the records written so far)"
            ),
        ),
        (Failure::Stop { reason, .. }, _) => (Exit::Fatal, reason.to_string()),
    }
}
