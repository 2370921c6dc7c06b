//! `massup plan`: read, validate and group a CSV into a stored run, without calling the API.
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Workspace;
use crate::config::Config;
use crate::exit::{Exit, UsageError};
use crate::fields::ModuleFields;
use crate::global::{DbArg, GlobalArgs};
use crate::plan::{PlanOutcome, PlanSettings};
use crate::render;

/// Flags that decide how a CSV is planned; shared by `plan` and `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanFlags {
    /// The CSV of changes: a header row, an id column, one column per field (API name, or label with field metadata).
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
    /// Zoho module API name (Leads, Contacts, Deals, ...) [or `module` in massup.toml]
    #[arg(long)]
    pub module: Option<String>,
    /// Column holding the Zoho record id, or with --match-by the key (case, spaces and underscores ignored if no column is named exactly so) [default: the column named id or Record Id, in any case; with --match-by, the column named like the field]
    #[arg(long, value_name = "NAME")]
    pub id_column: Option<String>,
    /// Match rows by this field (Email, an external id, ...) instead of record ids: each key is looked up in Zoho (COQL, 50 keys a call); a key no record or several records hold makes its row invalid
    #[arg(long, value_name = "FIELD")]
    pub match_by: Option<String>,
    /// Field separator of the CSV (one ASCII character; `\t` for tab) [default: ',', or ';' or tab when the header is one cell holding them; the plan says so]
    #[arg(long, value_parser = parse_delimiter)]
    pub delimiter: Option<char>,
    /// Numbers are written with a decimal comma: 1250,50 and 1.250,50 (or 1 250,50) are 1250.50.
    #[arg(long)]
    pub decimal_comma: bool,
    /// How date cells are written, strftime-like, e.g. %d.%m.%Y or %m/%d/%Y (yyyy-MM-dd is read too). massup never guesses day-first or month-first.
    #[arg(long, value_name = "FMT")]
    pub date_format: Option<String>,
    /// How datetime cells are written, e.g. "%d.%m.%Y %H:%M" or "%m/%d/%Y %I:%M %p"; read in --timezone unless the format has %z.
    #[arg(long, value_name = "FMT")]
    pub datetime_format: Option<String>,
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
    /// Kinds of call: auto (fewest credits, see --optimize: mass_update for large groups of equal values, Update Records for the rest), mass, or update [default: auto]
    #[arg(long, value_enum, default_value_t = crate::plan::ApiChoice::Auto)]
    pub api: crate::plan::ApiChoice,
    /// What --api auto minimises: credits (what Zoho bills: mass_update 1 a call, Update Records 1 per 10 records; fewer calls break ties) or calls (fewer, faster calls for an org with credits to spare) [default: credits; or `optimize` in massup.toml]
    #[arg(long, value_enum, value_name = "WHAT")]
    pub optimize: Option<crate::plan::Optimize>,
    /// What Update Records runs: workflow,approval,blueprint (comma-separated) or none [default: Zoho's default]
    #[arg(long, value_name = "LIST", value_parser = parse_trigger)]
    pub trigger: Option<TriggerList>,
    /// Read and keep each record's values before writing them, so `massup undo` can take the run back [default: when its reads add at most 25% to the write credits; or `snapshot` in massup.toml]
    #[arg(long, overrides_with = "no_snapshot")]
    pub snapshot: bool,
    /// Take no snapshot: the run cannot be undone.
    #[arg(long)]
    pub no_snapshot: bool,
    /// Leave out of the calls every record that already holds its values (no write, no workflow); reported as UNCHANGED. Takes the snapshot to know.
    #[arg(long)]
    pub skip_unchanged: bool,
    /// Abort (exit 2, nothing stored) if any row is invalid.
    #[arg(long)]
    pub strict: bool,
    /// Plan again even if this exact file was planned for this module before.
    #[arg(long)]
    pub new_run: bool,
}

const EXAMPLES: &str = "Examples:
  massup plan --csv changes.csv --module Leads
      validate and group the file; show the credits and calls it needs (no API call)
  massup plan --csv changes.tsv --module Deals --delimiter '\\t' --strict
      a tab-separated file; refuse it whole if any row is invalid
  massup plan --csv changes.csv --module Leads --fields samples/fields/Leads.json --json
  massup plan --csv contacts.csv --module Leads --match-by Email --dc eu
      a sheet keyed by email address: the keys are looked up (50 a call) and shown
  massup plan --csv kunden.csv --module Leads --decimal-comma --date-format %d.%m.%Y
      a sheet as Excel saves it in Germany (';' is found by itself)
  massup plan --csv changes.csv --module Leads --diff
      also read the records' current values: how many would change, with samples";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    pub plan: PlanFlags,
    #[command(flatten)]
    pub connection: super::send::ConnectionFlags,
    /// After planning, read the records' current values and show per field how many would change and how many hold the value already, with samples (costs Get Records calls, 100 records each; needs credentials).
    #[arg(long, conflicts_with = "offline")]
    pub diff: bool,
    /// Call nothing: no live field metadata even with credentials set (--match-by needs the API).
    #[arg(long)]
    pub offline: bool,
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
    /// The file to plan, as these flags describe it.
    pub fn job<'a>(
        &'a self,
        settings: &'a PlanSettings,
        send_json: Option<&'a str>,
        quiet: bool,
        command: &'a str,
    ) -> super::lookup::PlanJob<'a> {
        super::lookup::PlanJob {
            csv: &self.csv,
            settings,
            fields_file: self.fields.as_deref(),
            stored_fields: None,
            strict: self.strict,
            new_run: self.new_run,
            send_json,
            quiet,
            command,
            expectations: None,
        }
    }

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
        settings.match_by = self.match_by.clone();
        if let Some(id_column) = self.id_column.clone().or_else(|| self.match_by.clone()) {
            settings.id_column = id_column;
        }
        if let Some(delimiter) = self.delimiter {
            settings.delimiter = delimiter;
        }
        // Left out, they are read from the header (and stored as read). With --match-by
        // the key column is the one named like the field.
        settings.from_header = crate::plan::FromHeader {
            delimiter: self.delimiter.is_none(),
            id_column: self.id_column.is_none() && self.match_by.is_none(),
        };
        settings.snapshot = match (self.snapshot, self.no_snapshot) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => config.snapshot,
        };
        settings.skip_unchanged = self.skip_unchanged;
        if self.skip_unchanged && settings.snapshot == Some(false) {
            return Err(UsageError::new(
                "--skip-unchanged reads the records' values to compare them, which is the snapshot: drop --no-snapshot",
            ));
        }
        settings.decimal_comma = self.decimal_comma;
        settings.date_format = self.date_format.clone();
        settings.datetime_format = self.datetime_format.clone();
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
        settings.optimize = self.optimize.or(config.optimize).unwrap_or_default();
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
    let config = &workspace.config;
    let settings = args.plan.settings(config)?;
    let credentials = if args.offline {
        None
    } else {
        crate::api::auth::Credentials::load(config.secrets_file.as_deref())?
    };
    if args.diff && credentials.is_none() {
        return Err(UsageError::new(
            "--diff reads the records' current values from Zoho, but no credentials are set: set ZOHO_ACCESS_TOKEN, or ZOHO_CLIENT_ID + ZOHO_CLIENT_SECRET + ZOHO_REFRESH_TOKEN",
        )
        .into());
    }
    if settings.match_by.is_some() && credentials.is_none() {
        let why = if args.offline {
            "--offline was given"
        } else {
            "no credentials are set: set ZOHO_ACCESS_TOKEN, or ZOHO_CLIENT_ID + ZOHO_CLIENT_SECRET + ZOHO_REFRESH_TOKEN"
        };
        return Err(
            UsageError::new(format!("--match-by looks each key up in Zoho, but {why}")).into(),
        );
    }
    // With credentials, the plan checks values against the org's own metadata, fetched
    // live unless --fields names a file; without, it checks what it can.
    let connection = match credentials {
        Some(credentials)
            if settings.match_by.is_some() || args.diff || args.plan.fields.is_none() =>
        {
            let send = super::send::SendSettings::resolve(
                &super::send::SendSettings::default(),
                &args.connection,
                &super::send::DispatchFlags::default(),
                config,
                &settings,
            )?;
            let runtime = super::session::runtime()?;
            let stop = tokio_util::sync::CancellationToken::new();
            let session = super::session::Session::new(&send, credentials, stop.clone())?;
            Some((runtime, session, send, stop))
        }
        _ => None,
    };
    let connected =
        connection
            .as_ref()
            .map(|(runtime, session, send, stop)| super::lookup::Connected {
                session,
                handle: runtime.handle().clone(),
                dispatch: send.dispatch(),
                stop: stop.clone(),
            });
    let send_json = connection.as_ref().map(|(_, _, send, _)| send.to_json());
    let db = &workspace.db;
    let job = args.plan.job(
        &settings,
        send_json.as_deref(),
        global.quiet || args.json,
        "massup plan",
    );
    let outcome = super::lookup::plan_file(db, &job, connected.as_ref())
        .with_context(|| format!("planning {}", args.plan.csv.display()))?;
    match outcome {
        PlanOutcome::Existing(run) => {
            // What the header decided is stored as decided: compare what the user said.
            let mut asked = serde_json::to_value(&settings)?;
            for (decided, key) in [
                (settings.from_header.delimiter, "delimiter"),
                (settings.from_header.id_column, "id_column"),
                // Left out, the plan decides from its cost.
                (settings.snapshot.is_none(), "snapshot"),
            ] {
                if decided {
                    asked[key] = run.settings[key].clone();
                }
            }
            let changed = if run.settings != asked {
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
            let diff = match (&connected, args.diff) {
                (Some(connected), true) => {
                    Some(super::lookup::diff_run(db, summary.run_id, connected)?)
                }
                _ => None,
            };
            let exit = if summary.totals.invalid_rows > 0 {
                Exit::Failures
            } else {
                Exit::Success
            };
            if args.json {
                let mut document = serde_json::to_value(&summary)?;
                if let Some(diff) = &diff {
                    document["diff"] = serde_json::to_value(diff)?;
                }
                crate::render::json::print_result("plan", exit, document);
            } else {
                crate::out!("{}", render::plan_summary(&summary, db));
                if let Some(diff) = &diff {
                    crate::out!("{}", render::plan_diff(diff));
                }
            }
            Ok(exit)
        }
    }
}
