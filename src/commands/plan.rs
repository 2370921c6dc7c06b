//! `massup plan`: read, validate and group a CSV into a stored run, without calling the API.
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Workspace;
use crate::config::Config;
use crate::exit::{Exit, UsageError};
use crate::fields::ModuleFields;
use crate::global::{DbArg, GlobalArgs};
use crate::plan::{self, PlanOutcome, PlanRequest, PlanSettings};
use crate::render;

/// Flags that decide how a CSV is planned; shared by `plan` and `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanFlags {
    /// The CSV of changes: a header row, an id column, one column per field API name.
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
    /// Zoho module API name (Leads, Contacts, Deals, ...) [or `module` in massup.toml]
    #[arg(long)]
    pub module: Option<String>,
    /// Column holding the Zoho record id.
    #[arg(long, default_value = "id")]
    pub id_column: String,
    /// Field separator of the CSV (one ASCII character; `\t` for tab).
    #[arg(long, default_value = ",", value_parser = parse_delimiter)]
    pub delimiter: char,
    /// A cell equal to this clears the field (sends JSON null); an empty cell leaves it unchanged.
    #[arg(long, default_value = "#N/A")]
    pub null_marker: String,
    /// Field metadata in the shape of Zoho's settings/fields answer, used to coerce and check values.
    #[arg(long, value_name = "FILE")]
    pub fields: Option<PathBuf>,
    /// Override one field's type, e.g. --type No_of_Employees=integer (repeatable).
    #[arg(long = "type", value_name = "FIELD=TYPE", value_parser = parse_type_override)]
    pub types: Vec<(String, String)>,
    /// Time zone for datetimes written without an offset (IANA name such as Europe/Berlin, or +05:30).
    #[arg(long)]
    pub timezone: Option<String>,
    /// Separator between the values of a multi-select picklist cell.
    #[arg(long, default_value = ";")]
    pub multiselect_separator: char,
    /// Fields per call [default: the module's documented limit: 1, Deals 3]
    #[arg(long)]
    pub max_fields_per_call: Option<usize>,
    /// Ids per call, at most 500 (Zoho's limit) [default: 500]
    #[arg(long)]
    pub chunk_size: Option<usize>,
    /// Send over_write: true (multi-select picklists: replace instead of append).
    #[arg(long)]
    pub over_write: bool,
    /// Kinds of call: auto (fewest calls: mass_update for large groups of equal values, Update Records for the rest), mass, or update [default: auto]
    #[arg(long, value_enum, default_value_t = crate::plan::ApiChoice::Auto)]
    pub api: crate::plan::ApiChoice,
    /// What Update Records runs: workflow,approval,blueprint (comma-separated) or none [default: Zoho's default]
    #[arg(long, value_name = "LIST", value_parser = parse_trigger)]
    pub trigger: Option<TriggerList>,
    /// Abort (exit 2, nothing stored) if any row is invalid.
    #[arg(long)]
    pub strict: bool,
    /// Plan again even if this exact file was planned for this module before.
    #[arg(long)]
    pub new_run: bool,
}

const EXAMPLES: &str = "Examples:
  massup plan --csv changes.csv --module Leads
      validate and group the file; show the calls it needs (no API call)
  massup plan --csv changes.tsv --module Deals --delimiter '\\t' --strict
      a tab-separated file; refuse it whole if any row is invalid
  massup plan --csv changes.csv --module Leads --fields samples/fields/Leads.json --json";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    pub plan: PlanFlags,
    /// Print one JSON object on stdout (docs/JSON.md), whatever happens.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub db: DbArg,
}

fn parse_delimiter(text: &str) -> Result<char, String> {
    match text {
        "\\t" | "tab" => Ok('\t'),
        _ => {
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii() => Ok(c),
                _ => Err("the delimiter must be one ASCII character (or \\t)".into()),
            }
        }
    }
}

/// `--trigger`'s value: what Update Records runs (empty for `none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerList(pub Vec<String>);

fn parse_trigger(text: &str) -> Result<TriggerList, String> {
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(TriggerList(Vec::new()));
    }
    text.split(',')
        .map(|t| {
            let t = t.trim().to_ascii_lowercase();
            if crate::plan::settings::TRIGGERS.contains(&t.as_str()) {
                Ok(t)
            } else {
                Err(format!(
                    "{t:?}: use workflow, approval, blueprint (comma-separated) or none"
                ))
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(TriggerList)
}

fn parse_type_override(text: &str) -> Result<(String, String), String> {
    let (field, type_name) = text
        .split_once('=')
        .ok_or_else(|| format!("expected FIELD=TYPE, got {text:?}"))?;
    type_name
        .parse::<crate::fields::FieldType>()
        .map_err(|e| format!("{type_name:?}: {e}"))?;
    Ok((field.trim().to_string(), type_name.trim().to_string()))
}

impl PlanFlags {
    /// Resolves flags over the config file into the settings stored with the run.
    pub fn settings(&self, config: &Config) -> Result<PlanSettings, UsageError> {
        let module = self
            .module
            .clone()
            .or_else(|| config.module.clone())
            .ok_or_else(|| {
                UsageError::new(
                    "no module: pass --module (e.g. --module Leads) or set `module` in massup.toml",
                )
            })?;
        let mut settings = PlanSettings::new(&module);
        settings.id_column = self.id_column.clone();
        settings.delimiter = self.delimiter;
        settings.null_marker = self.null_marker.clone();
        settings.timezone = self.timezone.clone();
        settings.multiselect_separator = self.multiselect_separator;
        settings.over_write = self.over_write;
        if let Some(limit) = self
            .max_fields_per_call
            .or_else(|| config.field_limit(&module))
        {
            settings.max_fields_per_call = limit;
        }
        if let Some(size) = self.chunk_size.or(config.chunk_size) {
            settings.chunk_size = size;
        }
        settings.types = self.types.iter().cloned().collect();
        settings.api = self.api;
        settings.trigger = self.trigger.clone().map(|t| t.0);
        // Every setting is checked here, before any file is read or call made.
        settings.check().map_err(|e| UsageError::new(e.0))?;
        Ok(settings)
    }
}

/// Reads a field-metadata file; returns it parsed and as text (stored with the run).
pub fn read_fields_file(path: &Path) -> anyhow::Result<(ModuleFields, String)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError::new(format!("cannot read --fields {}: {e}", path.display())))?;
    let fields = ModuleFields::from_zoho_json(text.as_bytes())
        .map_err(|e| UsageError::new(format!("--fields {}: {e}", path.display())))?;
    Ok((fields, text))
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let workspace = Workspace::new(global, &args.db)?;
    let settings = args.plan.settings(&workspace.config)?;
    let fields = match &args.plan.fields {
        Some(path) => Some(read_fields_file(path)?),
        None => None,
    };
    let db = &workspace.db;
    let mut conn = workspace.open()?;
    let request = PlanRequest {
        csv_path: &args.plan.csv,
        settings: &settings,
        fields: fields.as_ref().map(|(f, text)| (f, text.as_str())),
        strict: args.plan.strict,
        new_run: args.plan.new_run,
        send_json: None,
    };
    let outcome =
        super::send::holding_plan_lock(db, "massup plan", || plan::plan(&mut conn, &request))?
            .with_context(|| format!("planning {}", args.plan.csv.display()))?;
    match outcome {
        PlanOutcome::Existing(run) => {
            let changed = if run.settings != serde_json::to_value(&settings)? {
                " with other settings than these"
            } else {
                ""
            };
            let message = format!(
                "{} was already planned for {} as run {} (state: {}){changed}; nothing new stored.\n  continue it:  massup --db {} resume --run {}\n  or plan again: add --new-run",
                args.plan.csv.display(),
                run.module,
                run.id,
                run.state,
                db.display(),
                run.id
            );
            if args.json {
                crate::render::json::print_result(
                    "plan",
                    Exit::Success,
                    serde_json::json!({"existing_run": run.id, "state": run.state, "message": message}),
                );
            } else {
                crate::outln!("{message}");
            }
            Ok(Exit::Success)
        }
        PlanOutcome::Planned(summary) => {
            super::send::log_planned(&summary);
            let exit = if summary.totals.invalid_rows > 0 {
                Exit::Failures
            } else {
                Exit::Success
            };
            if args.json {
                crate::render::json::print_result("plan", exit, serde_json::to_value(&summary)?);
            } else {
                crate::out!("{}", render::plan_summary(&summary, db));
            }
            Ok(exit)
        }
    }
}
