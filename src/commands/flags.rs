//! Flags several commands share (how a file is planned, connection, pace, `--results`),
//! turned into the typed values of [`crate::app`] and [`crate::plan`] at the command's edge.
use std::path::PathBuf;

use crate::app::send::{Connection, Pace};
use crate::config::Config;
use crate::dispatch::RateChoice;
use crate::exit::UsageError;
use crate::plan::PlanSettings;
use crate::store::RunInfo;

/// `--results DIR`: the files a send leaves behind.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ResultsFlag {
    /// When the send ends, write run-ID-success.csv (rows that succeeded) and
    /// run-ID-errors.csv (every other row, with its code and message) into this folder, one
    /// line per input row with its input line number, like Data Loader's files.
    #[arg(long, value_name = "DIR")]
    pub results: Option<std::path::PathBuf>,
    /// Write the --results files for a spreadsheet: a UTF-8 byte order mark first (so Excel
    /// reads Köln as Köln), in the input's delimiter.
    #[arg(long, requires = "results")]
    pub excel: bool,
}

impl ResultsFlag {
    /// Writes the files if asked for (see [`crate::app::send::write_results`]).
    pub fn write(&self, db: &std::path::Path, run: &RunInfo) -> serde_json::Value {
        crate::app::send::write_results(self.results.as_deref(), self.excel, db, run)
    }
}

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
    /// Where Bulk Write files are uploaded [default: content.zohoapis.X for www.zohoapis.X; any other API domain serves both]
    #[arg(long, value_name = "URL")]
    pub content_domain: Option<String>,
}

/// How fast and how hard to send.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DispatchFlags {
    /// Calls per second/minute/hour shared by all workers, e.g. 10/s or 600/min; `none` for no limit [default: none]
    #[arg(long, value_name = "RATE", value_parser = str::parse::<RateChoice>)]
    pub rate: Option<RateChoice>,
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
    /// Stop cleanly (resumable) before the org's API credits left (as Zoho reports them)
    /// would fall below this, counting the next call's price and the calls in flight.
    #[arg(long, value_name = "N")]
    pub min_credits: Option<u64>,
    /// A budget for the run in API credits (every call counted: writes, retries, snapshot
    /// reads, lookups): refuse a plan estimated above it, and stop cleanly (resumable)
    /// before a call would cross it. `resume --max-credits` with a higher budget goes on.
    #[arg(long, value_name = "N")]
    pub max_credits: Option<u64>,
    /// If another process is sending this run, wait for it to end instead of exiting (4).
    #[arg(long)]
    pub wait: bool,
    /// First backoff step in milliseconds (doubles per retry, full jitter) [default: 500]
    #[arg(long, value_name = "MS", hide = true)]
    pub backoff_ms: Option<u64>,
    /// Seconds one invocation waits for a Bulk Write job to finish before it stops, resumable (the job goes on at Zoho; `resume` polls it again) [default: 7200]
    #[arg(long, value_name = "SECS")]
    pub bulk_wait: Option<u64>,
    /// Bulk Write jobs of the run in progress at once, from upload to result (Zoho limits an org's jobs in progress; a job beyond waits its turn) [default: 3]
    #[arg(long, value_name = "N")]
    pub bulk_jobs: Option<usize>,
    /// First wait in milliseconds before a Bulk Write job's status is polled (then half as long again each time, up to 15 times it) [default: 2000]
    #[arg(long, value_name = "MS", hide = true)]
    pub bulk_poll_ms: Option<u64>,
}

/// How fast and how hard an export reads (its pages go one call at a time).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ReadPaceFlags {
    /// Calls per second/minute/hour, e.g. 2/s or 100/min; `none` for no limit [default: none]
    #[arg(long, value_name = "RATE", value_parser = str::parse::<RateChoice>)]
    pub rate: Option<RateChoice>,
    /// Seconds before a call without an answer is given up (and retried) [default: 60]
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// HTTP attempts per page before the export stops (resumable) [default: 5]
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Stop cleanly (resumable) before the org's API credits left (as Zoho reports them)
    /// would fall below this.
    #[arg(long, value_name = "N")]
    pub min_credits: Option<u64>,
    /// A budget in API credits for the export, its earlier invocations included: stop
    /// cleanly (resumable) before a call would cross it; `--resume` with a higher budget
    /// goes on.
    #[arg(long, value_name = "N")]
    pub max_credits: Option<u64>,
    /// First backoff step in milliseconds (doubles per retry, full jitter) [default: 500]
    #[arg(long, value_name = "MS", hide = true)]
    pub backoff_ms: Option<u64>,
}

impl ReadPaceFlags {
    pub fn choice(&self) -> Pace {
        Pace {
            rate: self.rate,
            timeout: self.timeout,
            max_attempts: self.max_attempts,
            min_credits: self.min_credits,
            max_credits: self.max_credits,
            backoff_ms: self.backoff_ms,
            ..Pace::default()
        }
    }
}

impl ConnectionFlags {
    pub fn choice(&self) -> Connection {
        Connection {
            api_domain: self.api_domain.clone(),
            dc: self.dc.clone(),
            accounts_url: self.accounts_url.clone(),
            api_version: self.api_version.clone(),
            content_domain: self.content_domain.clone(),
        }
    }
}

impl DispatchFlags {
    pub fn choice(&self) -> Pace {
        Pace {
            rate: self.rate,
            concurrency: self.concurrency,
            timeout: self.timeout,
            max_attempts: self.max_attempts,
            max_calls: self.max_calls,
            min_credits: self.min_credits,
            max_credits: self.max_credits,
            wait: self.wait,
            backoff_ms: self.backoff_ms,
            bulk_wait: self.bulk_wait,
            bulk_jobs: self.bulk_jobs,
            bulk_poll_ms: self.bulk_poll_ms,
        }
    }
}

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
    /// With --match-by: a row whose key no record holds creates a record with the row's values (Upsert Records on the key field, 100 records a call, 1 credit per 10), instead of being invalid. The module's mandatory fields must have values in such rows.
    #[arg(long, requires = "match_by")]
    pub create_missing: bool,
    /// Field separator of the CSV (one ASCII character; `\t` for tab) [default: ',', or ';' or tab when the header is one cell holding them; the plan says so]
    #[arg(long, value_parser = parse_delimiter)]
    pub delimiter: Option<char>,
    /// The file's character encoding when it is not UTF-8, e.g. windows-1252 (what Excel's plain "CSV" writes in much of Europe), iso-8859-15, shift_jis. Without it a file that is not valid UTF-8 is refused whole, naming the first bad line.
    #[arg(long, value_name = "NAME")]
    pub encoding: Option<String>,
    /// Numbers are written with a decimal comma: 1250,50 and 1.250,50 (or 1 250,50) are 1250.50.
    #[arg(long)]
    pub decimal_comma: bool,
    /// How date cells are written, strftime-like, e.g. %d.%m.%Y or %m/%d/%Y (yyyy-MM-dd is read too). massup never guesses day-first or month-first.
    #[arg(long, value_name = "FMT")]
    pub date_format: Option<String>,
    /// How datetime cells are written, e.g. "%d.%m.%Y %H:%M" or "%m/%d/%Y %I:%M %p"; read in --timezone unless the format has %z.
    #[arg(long, value_name = "FMT")]
    pub datetime_format: Option<String>,
    /// Boolean columns are checkbox columns: x (any case) is true and an empty cell is false, not "unchanged". Without it a boolean cell is true/false, yes/no, ja/nein, wahr/falsch, oui/non, vrai/faux, sí/no or 1/0 (any case, spaces around ignored).
    #[arg(long)]
    pub bool_x: bool,
    /// A cell equal to this clears the field (sends JSON null); an empty cell leaves it unchanged.
    #[arg(long, default_value = "#N/A")]
    pub null_marker: String,
    /// A column that is not for Zoho ("Notes", an own reference): left out, and the plan lists it (repeatable; case, spaces and underscores ignored if no column is named exactly so). Without it a column that names no field stops the plan.
    #[arg(long = "ignore-column", value_name = "NAME")]
    pub ignore_columns: Vec<String>,
    /// A TOML file saying how the sheet is read: [columns] "Stadt" = "City" (a header read as a field), [skip] columns = ["Notes"] (as --ignore-column), [set] Lead_Source = "Partner" (a value for every row). Or a CSV (name ending in .csv) with the header column,field,value: `Stadt,City,` maps, `Notes,,` skips, `,Lead_Source,Partner` sets. What it says is part of the run's settings.
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,
    /// Field metadata in the shape of Zoho's settings/fields answer, used to coerce and check values.
    #[arg(long, value_name = "FILE")]
    pub fields: Option<PathBuf>,
    /// Override one field's type, e.g. --type No_of_Employees=integer (repeatable).
    #[arg(long = "type", value_name = "FIELD=TYPE", value_parser = parse_type_override)]
    pub types: Vec<(String, crate::fields::FieldType)>,
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
    /// Kinds of call: auto (fewest credits, see --optimize: mass_update for large groups of equal values, Update Records for the rest, Bulk Write jobs when more than 5,000 records would go by Update Records), mass, update, or bulk (a Bulk Write job for every change a CSV can carry) [default: auto]
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
    /// With --match-by: look every key up again, instead of reusing what a lookup of the
    /// same module and field in this database found within the last hour.
    #[arg(long)]
    pub fresh_lookups: bool,
    /// Show the first call's request (method, URL, body) in the plan; `--json` always
    /// holds it as `example_request`. Only what is shown: not part of the run's settings.
    #[arg(long)]
    pub show_request: bool,
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

fn parse_type_override(text: &str) -> Result<(String, crate::fields::FieldType), String> {
    let (field, type_name) = text
        .split_once('=')
        .ok_or_else(|| format!("expected FIELD=TYPE, got {text:?}"))?;
    let field_type = type_name
        .trim()
        .parse::<crate::fields::FieldType>()
        .map_err(|e| format!("{type_name:?}: {e}"))?;
    Ok((field.trim().to_string(), field_type))
}

impl PlanFlags {
    /// The file to plan, as these flags describe it.
    pub fn job<'a>(
        &'a self,
        settings: &'a PlanSettings,
        send_json: Option<&'a str>,
        quiet: bool,
        command: &'a str,
    ) -> crate::app::planning::PlanJob<'a> {
        crate::app::planning::PlanJob {
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
            fresh_lookups: self.fresh_lookups,
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
        settings.create_missing = self.create_missing;
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
        settings.bool_x = self.bool_x;
        settings.ignore_columns = self.ignore_columns.clone();
        if let Some(path) = &self.map {
            let map = crate::plan::column_map::read(path).map_err(|e| UsageError::new(e.0))?;
            settings.ignore_columns.extend(map.skip);
            settings.map_columns = map.columns;
            settings.map_set = map.set;
            settings.map_origin = Some(map.origin);
        }
        // A set, not a sequence: the same columns in another order are the same settings.
        settings.ignore_columns.sort();
        settings.ignore_columns.dedup();
        settings.encoding = self.encoding.clone();
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
