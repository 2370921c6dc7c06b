//! What decides how a file is planned, checked in one place when flags are resolved, so
//! that `run` refuses a bad `--chunk-size` or `--timezone` before any network call.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fields::{CoerceOptions, DateFormat, FieldType};

/// A settings value that cannot be planned with; the message names the flag.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

pub use crate::api::limits::default_field_limit;
use crate::api::limits::MAX_IDS_PER_CALL;

/// What decides how a file is planned; stored with the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanSettings {
    pub module: String,
    /// The record id column. Stored as the header writes the column used; see
    /// [`PlanSettings::from_header`] for when the header picks it.
    pub id_column: String,
    /// The field separator; stored as the one used, so later reads and reports agree.
    pub delimiter: char,
    pub null_marker: String,
    pub max_fields_per_call: usize,
    pub chunk_size: usize,
    pub over_write: bool,
    pub timezone: Option<String>,
    pub multiselect_separator: char,
    /// Type overrides, field API name -> type name.
    pub types: BTreeMap<String, FieldType>,
    /// Which kinds of call may carry the changes (`--api`).
    #[serde(default)]
    pub api: ApiChoice,
    /// What `--api auto` minimises (`--optimize`). Runs stored before it existed read as
    /// credits; left out of the stored JSON when it is the default, so that a file planned
    /// again with the same flags is still recognised as the same settings.
    #[serde(default, skip_serializing_if = "Optimize::is_default")]
    pub optimize: Optimize,
    /// What Update Records runs (`--trigger`): None leaves Zoho's default; an empty list
    /// runs no workflow, approval or blueprint (and so rules out mass_update, which always
    /// runs them).
    #[serde(default)]
    pub trigger: Option<Vec<String>>,
    /// `--match-by FIELD`: the id column holds values of this field (an Email, an external
    /// id) that are looked up to find each row's record, instead of record ids.
    #[serde(default)]
    pub match_by: Option<String>,
    /// `--create-missing` (with `--match-by`): a row whose key no record holds creates a
    /// record with the sheet's values (Upsert Records on the key), instead of being invalid.
    /// Left out of the stored JSON when off, so runs planned before read the same.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_missing: bool,
    /// Read and keep each record's values before they are written, so the run can be
    /// undone (`--snapshot` / `--no-snapshot`; None: decided by what it costs, see
    /// [`snapshot_by_default`]). A stored run holds the decision.
    #[serde(default)]
    pub snapshot: Option<bool>,
    /// Records that already hold their values are left out of the calls (`--skip-unchanged`,
    /// which takes the snapshot to know).
    #[serde(default)]
    pub skip_unchanged: bool,
    /// An undo run: the run whose writes it takes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo_of: Option<i64>,
    /// The file's character encoding when not UTF-8 (`--encoding windows-1252`, any label
    /// the WHATWG Encoding Standard knows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Numbers are written with a decimal comma (`1.250,50`, `1250,50`), `--decimal-comma`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decimal_comma: bool,
    /// How date cells are written (`--date-format`, strftime-like, e.g. `%d.%m.%Y`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_format: Option<String>,
    /// How datetime cells are written (`--datetime-format`, e.g. `%d.%m.%Y %H:%M`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datetime_format: Option<String>,
    /// Columns that are not for Zoho (`--ignore-column`, a map's `[skip]`), sorted: never
    /// read, and listed by the plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_columns: Vec<String>,
    /// `--map`'s `[columns]`: sheet header -> field (API name or label), as the map writes
    /// them (the plan reads each as an API name and says so in `column_mapping`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub map_columns: BTreeMap<String, String>,
    /// `--map`'s `[set]`: field -> the value every row gets, written as a cell would be.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub map_set: BTreeMap<String, String>,
    /// Where the map file said what it says, for messages. Never stored.
    #[serde(skip)]
    pub map_origin: Option<super::column_map::MapOrigin>,
    /// Boolean columns are checkbox columns (`--bool-x`): `x` is true, an empty cell false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bool_x: bool,
    /// What the user left for the header to decide. Never stored: a stored run's settings
    /// hold what was used.
    #[serde(skip)]
    pub from_header: FromHeader,
}

/// Settings the header decides when the user left them out (`plan` without
/// `--delimiter` or `--id-column`). A library caller that sets `PlanSettings::delimiter`
/// or `id_column` gets exactly those, as before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FromHeader {
    /// A header that reads as one cell holding ';' or a tab is read with that delimiter.
    pub delimiter: bool,
    /// The id column is the one named `id` or `Record Id` (see `input::ID_COLUMN_NAMES`).
    pub id_column: bool,
}

/// `--api`: which kinds of call a plan may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ApiChoice {
    /// The fewest credits (or calls, with --optimize calls): mass_update for large groups
    /// of equal values, Update Records for the rest and for fields mass_update refuses.
    #[default]
    Auto,
    /// mass_update only (`POST .../actions/mass_update`, 500 ids, one value set).
    Mass,
    /// Update Records only (`PUT .../{module}`, 100 records, each its own values).
    Update,
    /// Bulk Write jobs (a zipped CSV of up to 25,000 records a job, 500 credits a job)
    /// for every change a CSV can carry, whatever the cost; Update Records for the rest
    /// (lookups, dates). Bulk Write cannot turn automation off.
    Bulk,
}

/// Whether a plan may put per-record changes into Bulk Write jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkUse {
    /// No: `--api mass|update`, `--trigger none` (a job cannot turn automation off), or
    /// `--optimize calls` (a job is asynchronous: it saves calls but not time).
    Never,
    /// When a job costs fewer credits than the Update Records calls it replaces.
    ByCost,
    /// Every change a job can carry (`--api bulk`).
    Always,
}

impl PlanSettings {
    /// Whether this plan may use Bulk Write jobs (see [`BulkUse`]).
    pub fn bulk_use(&self) -> BulkUse {
        let no_trigger = self.trigger.as_ref().is_some_and(Vec::is_empty);
        match self.api {
            ApiChoice::Bulk => BulkUse::Always,
            ApiChoice::Auto if !no_trigger && self.optimize == Optimize::Credits => BulkUse::ByCost,
            _ => BulkUse::Never,
        }
    }
}

/// What `--api auto` minimises when it splits the changes between mass_update and Update
/// Records (`--optimize`, or `optimize` in massup.toml).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Optimize {
    /// The fewest API credits (what Zoho bills: mass_update 1 a call, Update Records 1 per
    /// 10 records), then the fewest calls.
    #[default]
    Credits,
    /// The fewest calls (faster, for an org with credits to spare), then the fewest credits.
    Calls,
}

impl Optimize {
    pub fn name(self) -> &'static str {
        match self {
            Optimize::Credits => "credits",
            Optimize::Calls => "calls",
        }
    }

    fn is_default(&self) -> bool {
        *self == Optimize::default()
    }

    /// The key a candidate plan of `credits` and `calls` is compared by: the smaller wins.
    pub fn key(self, credits: u64, calls: u64) -> (u64, u64) {
        match self {
            Optimize::Credits => (credits, calls),
            Optimize::Calls => (calls, credits),
        }
    }
}

/// The largest share of the run's write credits, in percent, that the snapshot's reads may
/// add for it to be taken when the user did not say. An undo is worth a quarter more
/// credits; a run whose reads cost more than that (a mass_update run of large groups pays
/// one credit for a call of 500 ids and five reads of 100 to snapshot them, +500%) goes
/// without, and the plan says what `--snapshot` would add. A spreadsheet sent by Update
/// Records pays 10 credits for a full batch and 1 to read it (+10%): it keeps its undo.
pub const SNAPSHOT_MAX_SHARE_PERCENT: u64 = 25;

/// Whether a run takes a snapshot when the user did not say: when its reads add at most
/// [`SNAPSHOT_MAX_SHARE_PERCENT`] of the write credits (Get Records costs one credit a
/// call).
pub fn snapshot_by_default(write_credits: u64, snapshot_credits: u64) -> bool {
    snapshot_credits.saturating_mul(100) <= write_credits.saturating_mul(SNAPSHOT_MAX_SHARE_PERCENT)
}

/// The automation Update Records can be told to run.
pub const TRIGGERS: &[&str] = &["workflow", "approval", "blueprint"];

impl PlanSettings {
    /// The settings a run was planned with, read back from the store; settings that cannot
    /// be read are damage, named with the run.
    pub fn of_run(run: &crate::store::RunInfo) -> Result<PlanSettings, crate::store::StoreError> {
        serde_json::from_str(&run.settings_json).map_err(|e| crate::store::StoreError::Damaged {
            what: format!("run {}'s stored plan settings", run.id),
            problem: e.to_string(),
        })
    }

    pub fn new(module: &str) -> PlanSettings {
        PlanSettings {
            module: module.to_string(),
            id_column: "id".into(),
            delimiter: ',',
            null_marker: "#N/A".into(),
            max_fields_per_call: default_field_limit(module),
            chunk_size: MAX_IDS_PER_CALL,
            over_write: false,
            timezone: None,
            multiselect_separator: ';',
            types: BTreeMap::new(),
            api: ApiChoice::Auto,
            optimize: Optimize::Credits,
            trigger: None,
            match_by: None,
            create_missing: false,
            snapshot: None,
            skip_unchanged: false,
            undo_of: None,
            encoding: None,
            decimal_comma: false,
            date_format: None,
            datetime_format: None,
            bool_x: false,
            ignore_columns: Vec::new(),
            map_columns: BTreeMap::new(),
            map_set: BTreeMap::new(),
            map_origin: None,
            from_header: FromHeader::default(),
        }
    }
}

impl PlanSettings {
    /// Checks every setting and returns the coercion options they make. Called when flags
    /// are resolved and again by `plan` (cheap), so a library caller cannot skip it.
    pub fn check(&self) -> Result<CoerceOptions, SettingsError> {
        if self.chunk_size == 0 || self.chunk_size > MAX_IDS_PER_CALL {
            return Err(SettingsError(format!(
                "--chunk-size {} is out of range: Zoho accepts 1 to {MAX_IDS_PER_CALL} ids per mass_update call",
                self.chunk_size
            )));
        }
        if self.create_missing && self.match_by.is_none() {
            return Err(SettingsError(
                "--create-missing creates the records whose key no record holds, so it needs --match-by FIELD (e.g. --match-by Email): rows keyed by record id name records that exist".into(),
            ));
        }
        if let Some(label) = &self.encoding {
            if encoding_rs::Encoding::for_label(label.as_bytes()).is_none() {
                return Err(SettingsError(format!(
                    "--encoding {label:?} is not an encoding massup knows; use a label such as windows-1252, iso-8859-15, shift_jis or utf-16le"
                )));
            }
        }
        if self.max_fields_per_call == 0 {
            return Err(SettingsError(
                "--max-fields-per-call must be at least 1".into(),
            ));
        }
        if !self.delimiter.is_ascii() {
            return Err(SettingsError(format!(
                "--delimiter {:?} must be a single ASCII character",
                self.delimiter
            )));
        }
        let timezone = match &self.timezone {
            Some(name) => Some(
                CoerceOptions::parse_timezone(name)
                    .map_err(|e| SettingsError(format!("--timezone {name}: {e}")))?,
            ),
            None => None,
        };
        if let Some(trigger) = &self.trigger {
            if let Some(bad) = trigger.iter().find(|t| !TRIGGERS.contains(&t.as_str())) {
                return Err(SettingsError(format!(
                    "--trigger {bad}: use workflow, approval, blueprint (comma-separated) or none"
                )));
            }
            if trigger.is_empty() && self.api == ApiChoice::Mass {
                return Err(SettingsError(
                    "--api mass with --trigger none: mass_update always runs workflows, approvals and blueprints; only Update Records can turn them off (use --api auto or update)".into(),
                ));
            }
            if trigger.is_empty() && self.api == ApiChoice::Bulk {
                return Err(SettingsError(
                    "--api bulk with --trigger none: a Bulk Write job cannot turn workflows, approvals and blueprints off; only Update Records can (use --api auto or update)".into(),
                ));
            }
        }
        let date_format = match &self.date_format {
            Some(text) => Some(
                DateFormat::date(text)
                    .map_err(|e| SettingsError(format!("--date-format {text:?}: {e}")))?,
            ),
            None => None,
        };
        let datetime_format = match &self.datetime_format {
            Some(text) => Some(
                DateFormat::datetime(text)
                    .map_err(|e| SettingsError(format!("--datetime-format {text:?}: {e}")))?,
            ),
            None => None,
        };
        Ok(CoerceOptions {
            timezone,
            multiselect_separator: self.multiselect_separator,
            decimal_comma: self.decimal_comma,
            date_format,
            datetime_format,
            bool_x: self.bool_x,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_module() {
        assert_eq!(PlanSettings::new("Deals").max_fields_per_call, 3);
        assert_eq!(PlanSettings::new("Leads").max_fields_per_call, 1);
        assert!(PlanSettings::new("Leads").check().is_ok());
    }

    #[test]
    fn every_bad_setting_names_its_flag() {
        let bad = |edit: fn(&mut PlanSettings)| {
            let mut s = PlanSettings::new("Leads");
            edit(&mut s);
            s.check().unwrap_err().to_string()
        };
        assert!(bad(|s| s.chunk_size = 0).contains("--chunk-size 0"));
        assert!(bad(|s| s.create_missing = true).contains("--create-missing"));
        assert!(bad(|s| s.chunk_size = 501).contains("--chunk-size 501"));
        assert!(bad(|s| s.max_fields_per_call = 0).contains("--max-fields-per-call"));
        assert!(bad(|s| s.delimiter = 'é').contains("--delimiter"));
        assert!(bad(|s| s.timezone = Some("Mars/Base".into())).contains("--timezone Mars/Base"));
        assert!(
            bad(|s| s.date_format = Some("%d.%q.%Y".into())).contains("--date-format \"%d.%q.%Y\"")
        );
        assert!(bad(|s| s.date_format = Some("%d.%m".into())).contains("--date-format"));
        assert!(
            bad(|s| s.date_format = Some("%d.%m.%Y %H:%M".into())).contains("--datetime-format")
        );
        assert!(bad(|s| s.datetime_format = Some("%d.%m.%Y".into()))
            .contains("--datetime-format \"%d.%m.%Y\""));
    }

    #[test]
    fn good_formats_pass_and_are_stored_only_when_given() {
        let mut s = PlanSettings::new("Leads");
        let plain = serde_json::to_value(&s).unwrap();
        assert!(plain.get("decimal_comma").is_none() && plain.get("date_format").is_none());
        s.date_format = Some("%d.%m.%Y".into());
        s.datetime_format = Some("%d.%m.%Y %H:%M".into());
        s.decimal_comma = true;
        let options = s.check().unwrap();
        assert!(options.decimal_comma && options.date_format.is_some());
        let stored: PlanSettings =
            serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(stored, s);
    }

    #[test]
    fn old_runs_read_as_credits_and_the_default_is_not_stored() {
        let s = PlanSettings::new("Leads");
        let json = serde_json::to_value(&s).unwrap();
        assert!(json.get("optimize").is_none(), "{json}");
        let stored: PlanSettings = serde_json::from_value(json).unwrap();
        assert_eq!(stored.optimize, Optimize::Credits);
        let calls = PlanSettings {
            optimize: Optimize::Calls,
            ..s
        };
        let json = serde_json::to_value(&calls).unwrap();
        assert_eq!(json["optimize"], "calls");
        let stored: PlanSettings = serde_json::from_value(json).unwrap();
        assert_eq!(stored.optimize, Optimize::Calls);
    }

    #[test]
    fn the_snapshot_is_taken_by_default_when_it_adds_a_quarter_at_most() {
        // A full Update Records batch: 10 credits, one read.
        assert!(snapshot_by_default(10, 1));
        assert!(snapshot_by_default(1_000, 250));
        assert!(!snapshot_by_default(1_000, 251));
        // A mass_update chunk of 500 ids: 1 credit, five reads.
        assert!(!snapshot_by_default(1, 5));
        assert!(snapshot_by_default(0, 0));
    }
}
