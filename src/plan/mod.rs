//! Planning: the stage between the CSV and the store. [`settings`] holds what decides a
//! plan, checked once; [`planner`] decides rows, groups and chunks in memory; this module
//! orchestrates: it reads the file (spooled and hashed by `input`), feeds the planner on one
//! thread while the store takes rows on another, and stores the result in one transaction,
//! so a plan is either stored whole or not at all. [`requeue`] plans `retry`'s new chunks.
pub mod column_map;
pub mod diff;
pub mod matching;
pub mod planner;
pub mod requeue;
pub mod settings;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::Connection;
use serde::Serialize;

use crate::fields::ModuleFields;
use crate::input::spool::{scan_file, spool_if_stream};
use crate::input::{CsvInput, CsvOptions, InputError};
use crate::store::rows::NewRow;
use crate::store::{self, RunInfo, StoreError};
use matching::Matches;

use crate::api::limits::{credits, CallKind, MAX_FIELDS_PER_READ, MAX_IDS_PER_READ};
pub use crate::api::limits::{MAX_IDS_PER_CALL, MAX_RECORDS_PER_UPDATE};
pub use planner::{
    balanced_chunks, parse_record_id, update_batch_sizes, ColumnMapping, FixedValue, MappedBy,
    PlanTotals, Planner, RowProblem, PROBLEMS_SHOWN,
};
use settings::snapshot_by_default;
pub use settings::{
    default_field_limit, ApiChoice, FromHeader, Optimize, PlanSettings, SettingsError,
    SNAPSHOT_MAX_SHARE_PERCENT,
};

/// Problems that stop a plan before anything is stored. All are input or usage errors.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("{path}: {} column(s) cannot be planned for {module}, nothing was stored:\n{}{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"), hint.as_deref().map(|h| format!("\n{h}")).unwrap_or_default())]
    Columns {
        path: String,
        module: String,
        problems: Vec<String>,
        /// The fix, when one applies to every such column (a column that names no field).
        hint: Option<String>,
    },
    #[error("{path}: {invalid} invalid row(s) and --strict is set, nothing was stored:\n{}", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Strict {
        path: String,
        invalid: u64,
        problems: Vec<RowProblem>,
    },
    /// Not valid UTF-8 and no `--encoding`: refused whole, before anything is looked up,
    /// stored or sent (half a file sent is worse than none).
    #[error("{path}: line {line}: not valid UTF-8 (byte 0x{byte:02x}); the whole file was refused and nothing was planned. A sheet Excel saved as plain 'CSV' in Western Europe is windows-1252: plan it with --encoding windows-1252 (or save it as 'CSV UTF-8')")]
    NotUtf8 { path: String, line: u64, byte: u8 },
    #[error(transparent)]
    Lookup(#[from] matching::LookupError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for PlanError {
    fn from(e: rusqlite::Error) -> Self {
        PlanError::Store(StoreError::Sql(e))
    }
}

/// What `plan` reports.
#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    pub run_id: i64,
    pub csv_path: String,
    pub module: String,
    /// Rows, groups and calls; flattened, so the JSON keeps one level.
    #[serde(flatten)]
    pub totals: PlanTotals,
    pub problems: Vec<RowProblem>,
    pub warnings: Vec<String>,
    /// Header cells read as other API names (labels, other case or spacing): header ->
    /// API name. Columns already named by their API name are not listed.
    pub column_mapping: Vec<ColumnMapping>,
    /// Columns left out as asked (`--ignore-column`, a map's `[skip]`), as the header
    /// writes them.
    pub ignored_columns: Vec<String>,
    /// The values `--map`'s `[set]` gives every row (`field`, `value`).
    pub fixed_values: Vec<FixedValue>,
    pub example_request: Option<serde_json::Value>,
    /// Whether the run reads and keeps its records' values before writing them (undo).
    pub snapshot: bool,
    /// How the snapshot was decided: `asked` (`--snapshot`, `--no-snapshot` or massup.toml),
    /// `needed` (`--skip-unchanged` or an undo compares values), or `by_cost` (on when its
    /// reads add at most [`SNAPSHOT_MAX_SHARE_PERCENT`] of the write credits).
    pub snapshot_decided: SnapshotDecision,
    /// The Get Records calls that costs (0 without a snapshot).
    pub snapshot_calls: u64,
    /// Their credits, one a call (0 without a snapshot).
    pub snapshot_credits: u64,
    /// The snapshot's read credits whether or not it is taken: what `--snapshot` adds to
    /// a run that goes without.
    pub snapshot_credits_estimate: u64,
    /// With `--match-by`: the keys looked up, what they found, and the calls spent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup: Option<matching::LookupTotals>,
    /// What Zoho last said the org has left (`X-API-CREDITS-REMAINING` during a send from
    /// this database within 24 hours) and when: the plan's share of it is shown.
    pub org_credits_left: Option<OrgCredits>,
}

/// The org's credits left, as Zoho last reported them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgCredits {
    pub remaining: u64,
    pub at: String,
}

/// See [`PlanSummary::snapshot_decided`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotDecision {
    Asked,
    Needed,
    ByCost,
}

impl PlanSummary {
    /// What the plan costs in credits in all: the writes, the snapshot's reads when it is
    /// taken, and the lookups already spent (when their price is known).
    pub fn total_credits(&self) -> u64 {
        self.totals.credits + self.snapshot_credits + self.lookup.as_ref().map_or(0, |l| l.credits)
    }
}

pub enum PlanOutcome {
    Planned(PlanSummary),
    /// The same file content was planned for this module before; nothing new was stored.
    Existing(RunInfo),
}

/// Everything a plan needs besides the database.
pub struct PlanRequest<'a> {
    pub csv_path: &'a Path,
    pub settings: &'a PlanSettings,
    /// Field metadata (Zoho's settings/fields answer) and its JSON text, stored with the run.
    pub fields: Option<(&'a ModuleFields, &'a str)>,
    pub strict: bool,
    pub new_run: bool,
    /// Connection and send settings (`run` stores them with the plan, in the same
    /// transaction, so that a kill right after planning cannot lose them for `resume`).
    pub send_json: Option<&'a str>,
    /// With `--match-by`: turns the keys of the file (at the path given, read with the
    /// options given) into record ids. The command supplies it, since it holds the
    /// connection; it is called once the header and columns have passed their checks, so
    /// a sheet that cannot be planned spends no lookup.
    pub resolve_keys: Option<&'a KeyResolver<'a>>,
    /// An undo run: what the undone run wrote, stored with the plan in its transaction so
    /// that no undo run can be sent without them.
    pub expectations: Option<&'a [store::befores::FieldValue]>,
}

/// See [`PlanRequest::resolve_keys`].
pub type KeyResolver<'a> = dyn Fn(&Path, &CsvOptions) -> Result<Matches, PlanError> + Sync + 'a;

/// A file about to be planned: pipes copied to a temporary file (a plan reads its input
/// more than once), and its SHA-256, which tells a file planned before.
pub struct PlanInput {
    given: PathBuf,
    spooled: Option<tempfile::NamedTempFile>,
    sha256: String,
    /// The first line that is not UTF-8, and its first such byte.
    not_utf8: Option<(u64, u8)>,
}

impl PlanInput {
    pub fn open(given: &Path) -> Result<PlanInput, PlanError> {
        // A pipe (`--csv -`, /dev/stdin, a FIFO) can be read only once, and a plan reads its
        // file twice (its SHA-256 first): such input is copied to a temporary file.
        let spooled = spool_if_stream(given)?;
        let path: &Path = spooled.as_ref().map_or(given, |f| f.path());
        let scanned = scan_file(path)?;
        Ok(PlanInput {
            given: given.to_path_buf(),
            spooled,
            sha256: scanned.sha256,
            not_utf8: scanned.not_utf8,
        })
    }

    /// Where the content can be read (the file itself, or its spooled copy).
    pub fn path(&self) -> &Path {
        self.spooled.as_ref().map_or(&self.given, |f| f.path())
    }

    /// The file as the user named it.
    pub fn given(&self) -> &Path {
        &self.given
    }

    /// Refuses a file that is not valid UTF-8 when no `--encoding` says what it is: checked
    /// over the whole file before anything is planned or sent. A file with a UTF-16 byte
    /// order mark is decoded as such and passes.
    pub fn check_encoding(&self, settings: &PlanSettings) -> Result<(), PlanError> {
        if settings.encoding.is_some() {
            return Ok(());
        }
        match self.not_utf8 {
            Some((line, byte)) => Err(PlanError::NotUtf8 {
                path: self.given.display().to_string(),
                line,
                byte,
            }),
            None => Ok(()),
        }
    }

    /// The run this same content was planned as for this module before, if any.
    pub fn planned_before(
        &self,
        conn: &Connection,
        settings: &PlanSettings,
    ) -> Result<Option<RunInfo>, PlanError> {
        Ok(store::runs::run_by_sha(
            conn,
            &self.sha256,
            &settings.module,
        )?)
    }
}

/// How a plan reads its file.
pub fn csv_options(settings: &PlanSettings) -> CsvOptions {
    CsvOptions {
        delimiter: (!settings.from_header.delimiter).then_some(settings.delimiter as u8),
        id_column: (!settings.from_header.id_column).then(|| settings.id_column.clone()),
        encoding: settings
            .encoding
            .as_deref()
            .and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes())),
        ignore_columns: settings.ignore_columns.clone(),
    }
}

/// Plans `request.csv_path` into `conn`.
pub fn plan(conn: &mut Connection, request: &PlanRequest<'_>) -> Result<PlanOutcome, PlanError> {
    // Every flag is checked before anything else, so a typo is reported even when the
    // file turns out to be planned already.
    request.settings.check()?;
    let input = PlanInput::open(request.csv_path)?;
    input.check_encoding(request.settings)?;
    if !request.new_run {
        if let Some(existing) = input.planned_before(conn, request.settings)? {
            return Ok(PlanOutcome::Existing(existing));
        }
    }
    plan_input(conn, &input, request)
}

/// Plans an opened file (whether it was planned before is the caller's to have checked).
pub fn plan_input(
    conn: &mut Connection,
    file: &PlanInput,
    request: &PlanRequest<'_>,
) -> Result<PlanOutcome, PlanError> {
    let settings = request.settings;
    settings.check()?;
    let given = file.given();
    let shown = given.display().to_string();
    let path = file.path();
    let sha256 = file.sha256.clone();
    let spooled = file.spooled.is_some();
    let options = csv_options(settings);
    let file = std::fs::File::open(path).map_err(|cause| InputError::Open {
        path: shown.clone(),
        cause,
    })?;
    let input = CsvInput::from_reader(given, Box::new(file), &options).map_err(|e| {
        match (e, &settings.match_by) {
            (
                InputError::NoIdColumn {
                    path,
                    line,
                    columns,
                    ..
                },
                Some(field),
            ) => InputError::NoKeyColumn {
                path,
                line,
                field: field.clone(),
                columns,
            },
            (e, _) => e,
        }
    })?;
    // What is stored is what was used: resume, retry and report read the run this way.
    let settings = &PlanSettings {
        delimiter: char::from(input.delimiter()),
        id_column: input.id_column().to_string(),
        from_header: FromHeader::default(),
        ..settings.clone()
    };
    let mut warnings = input.notes().to_vec();
    let ignored_columns = input.ignored_columns().to_vec();
    let source = planner::Source {
        shown: shown.clone(),
        size: std::fs::metadata(path).map_or(0, |m| m.len()),
    };
    let planner = Planner::new(
        input.field_columns(),
        settings,
        request.fields.map(|f| f.0),
        source,
        &mut warnings,
    )?;
    let matches = match request.resolve_keys {
        Some(resolve) => Some(Arc::new(resolve(path, &csv_options(settings))?)),
        None => None,
    };
    let planner = match &matches {
        Some(matches) => planner.with_matches(matches.clone()),
        None => planner,
    };
    let tx = conn.transaction()?;
    let settings_json = serde_json::to_string(settings).expect("settings serialize");
    // API names (a header may name a field by its label): later stages send them as they are.
    let columns_json = serde_json::to_string(&planner.api_names()).expect("names serialize");
    let column_count = planner.api_names().len();
    let column_mapping = planner.mapping().to_vec();
    let fixed_values = planner.fixed_values().to_vec();
    let absolute = if spooled {
        PathBuf::from(given)
    } else {
        std::fs::canonicalize(given).unwrap_or_else(|_| PathBuf::from(given))
    };
    let run_id = store::runs::insert_run(
        &tx,
        &store::runs::NewRun {
            module: &settings.module,
            csv_path: &absolute.display().to_string(),
            csv_sha256: &sha256,
            id_column: &settings.id_column,
            columns_json: &columns_json,
            settings_json: &settings_json,
            fields_json: request.fields.map(|f| f.1),
            send_json: request.send_json,
        },
    )?;
    let planner = stream_rows(&tx, run_id, input, planner)?;
    let planned = planner.finish();
    let totals = planned.totals;
    if request.strict && totals.invalid_rows > 0 {
        drop(tx); // rolls back: a strict plan stores nothing
        return Err(PlanError::Strict {
            path: shown,
            invalid: totals.invalid_rows,
            problems: planned.problems,
        });
    }
    for (row_no, message) in &planned.conflicts {
        store::rows::mark_invalid(&tx, run_id, *row_no, message)?;
    }
    // A snapshot reads each chunk's records, 100 a call, 50 fields a call.
    let reads_per_100 = column_count.div_ceil(MAX_FIELDS_PER_READ).max(1) as u64;
    let mut snapshot_calls = 0u64;
    for group in planned.groups() {
        let group_id =
            store::chunks::insert_group(&tx, run_id, &group.payload_json(), group.items())?;
        for chunk in group.chunks() {
            snapshot_calls += chunk.len().div_ceil(MAX_IDS_PER_READ) as u64;
            store::chunks::insert_chunk(&tx, run_id, group_id, &chunk)?;
        }
    }
    if !planned.update_batches.is_empty() {
        // Update Records calls carry each record's own values; their group is the run's
        // per-record group ('{}').
        let records: usize = planned.update_batches.iter().map(Vec::len).sum();
        let group_id = store::chunks::insert_group(&tx, run_id, "{}", records)?;
        for batch in &planned.update_batches {
            snapshot_calls += batch.len().div_ceil(MAX_IDS_PER_READ) as u64 * reads_per_100;
            let (members, objects): (Vec<_>, Vec<_>) = batch.iter().cloned().unzip();
            store::chunks::insert_chunk_of(&tx, run_id, group_id, &members, Some(&objects))?;
        }
    }
    if !planned.bulk_jobs.is_empty() {
        // Bulk Write jobs carry each record's own values too, in the same '{}' group kind
        // of group; each job is a chunk.
        let records: usize = planned.bulk_jobs.iter().map(Vec::len).sum();
        let group_id = store::chunks::insert_group(&tx, run_id, "{}", records)?;
        for job in &planned.bulk_jobs {
            snapshot_calls += job.len().div_ceil(MAX_IDS_PER_READ) as u64 * reads_per_100;
            let (members, objects): (Vec<_>, Vec<_>) = job.iter().cloned().unzip();
            store::chunks::insert_chunk_kind(
                &tx,
                run_id,
                group_id,
                CallKind::BulkWrite,
                &members,
                Some(&objects),
            )?;
        }
    }
    if !planned.upsert_batches.is_empty() {
        // `--create-missing`: Upsert Records calls, each record its own values, in a group
        // of their own. Nothing to snapshot: the records do not
        // exist yet.
        let records: usize = planned.upsert_batches.iter().map(Vec::len).sum();
        // What every call of the group shares: the key Zoho finds records by.
        let shared = serde_json::json!({"duplicate_check_fields": [settings.match_by.as_deref().unwrap_or_default()]});
        let group_id = store::chunks::insert_group(&tx, run_id, &shared.to_string(), records)?;
        for batch in &planned.upsert_batches {
            let (members, objects): (Vec<_>, Vec<_>) = batch.iter().cloned().unzip();
            store::chunks::insert_chunk_kind(
                &tx,
                run_id,
                group_id,
                CallKind::UpsertRecords,
                &members,
                Some(&objects),
            )?;
        }
    }
    if request.fields.is_none() {
        warnings.push(
            "no field metadata: values are sent as text unless --type says otherwise; pass --fields FILE (or let `run` fetch it) to check types before sending".into(),
        );
    }
    // A plain snapshot reads each record once, all its fields; comparing before each call
    // (--skip-unchanged, an undo) reads each chunk's records.
    if !(settings.skip_unchanged || settings.undo_of.is_some()) {
        snapshot_calls =
            snapshot_calls.min(totals.valid_rows.div_ceil(MAX_IDS_PER_READ as u64) * reads_per_100);
    }
    // Get Records costs a credit a call.
    let snapshot_credits = snapshot_calls * credits(CallKind::GetRecords, MAX_IDS_PER_READ);
    // Whether the run keeps its records' values before writing them (undo): as asked, or
    // by what it costs; --skip-unchanged needs the values to compare.
    let (snapshot, snapshot_decided) = if settings.skip_unchanged || settings.undo_of.is_some() {
        (true, SnapshotDecision::Needed)
    } else if let Some(asked) = settings.snapshot {
        (asked, SnapshotDecision::Asked)
    } else {
        (
            snapshot_by_default(totals.credits, snapshot_credits),
            SnapshotDecision::ByCost,
        )
    };
    if settings.snapshot != Some(snapshot) {
        let decided = PlanSettings {
            snapshot: Some(snapshot),
            ..settings.clone()
        };
        let json = serde_json::to_string(&decided).expect("settings serialize");
        store::runs::set_settings_json(&tx, run_id, &json)?;
    }
    if snapshot_decided == SnapshotDecision::ByCost && !snapshot && totals.calls > 0 {
        warnings.push(format!(
            "no snapshot: reading the values before writing them would add {} credit(s) to the {} write credit(s) ({}, more than the {SNAPSHOT_MAX_SHARE_PERCENT}% taken by default), so this run cannot be undone; pass --snapshot to take it",
            crate::render::count(snapshot_credits),
            crate::render::count(totals.credits),
            share_of(snapshot_credits, totals.credits),
        ));
    }
    store::runs::set_plan_totals(
        &tx,
        run_id,
        &store::runs::PlanTotals {
            input_rows: totals.input_rows,
            valid_rows: totals.valid_rows,
            invalid_rows: totals.invalid_rows,
            merged_rows: totals.merged_rows,
            min_calls: totals.min_calls,
        },
    )?;
    if let Some(matches) = &matches {
        store::lookups::insert(
            &tx,
            run_id,
            matches.entries(),
            matches.calls,
            matches.credits,
        )?;
    }
    if let Some(expectations) = request.expectations {
        store::befores::insert_expectations(&tx, run_id, expectations)?;
    }
    let example_request = example_request(&tx, run_id, settings)?;
    tx.commit()?;
    Ok(PlanOutcome::Planned(PlanSummary {
        run_id,
        csv_path: shown,
        module: settings.module.clone(),
        totals,
        problems: planned.problems,
        warnings,
        column_mapping,
        ignored_columns,
        fixed_values,
        example_request,
        lookup: matches.map(|m| m.totals()),
        snapshot,
        snapshot_decided,
        snapshot_calls: if snapshot { snapshot_calls } else { 0 },
        snapshot_credits: if snapshot { snapshot_credits } else { 0 },
        snapshot_credits_estimate: snapshot_credits,
        org_credits_left: store::sends::org_credits_left(conn)?
            .map(|(remaining, at)| OrgCredits { remaining, at }),
    }))
}

/// `part` as a share of `whole` for people: `+10%`, `+250%` (`+0%` of nothing).
pub fn share_of(part: u64, whole: u64) -> String {
    match (part, whole) {
        (0, _) => "+0%".into(),
        (_, 0) => "more than the writes".into(),
        _ => format!("+{}%", (part as f64 * 100.0 / whole as f64).round() as u64),
    }
}

/// Rows per message between the threads: large enough that handing over is rare.
const CHANNEL_BATCH: usize = 4096;

/// Reads, checks and places every row on one thread while this one stores them: on two
/// cores the CSV work and SQLite's B-tree work overlap. Returns the planner to finish.
fn stream_rows(
    tx: &rusqlite::Transaction<'_>,
    run_id: i64,
    mut input: CsvInput,
    mut planner: Planner,
) -> Result<Planner, PlanError> {
    std::thread::scope(|scope| {
        // A few batches in flight keep both threads busy and memory bounded.
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<NewRow>>(4);
        let reader = scope.spawn(move || -> Result<Planner, InputError> {
            let mut batch = Vec::with_capacity(CHANNEL_BATCH);
            while let Some(row) = input.next_row()? {
                batch.push(planner.plan_row(&row));
                if batch.len() == CHANNEL_BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(CHANNEL_BATCH));
                    if sender.send(full).is_err() {
                        break; // the writer failed; its error is reported
                    }
                }
            }
            if !batch.is_empty() {
                let _ = sender.send(batch);
            }
            Ok(planner)
        });
        let written = receiver
            .iter()
            .try_for_each(|batch| store::rows::insert_rows(tx, run_id, &batch));
        drop(receiver); // unblocks the reader if writing failed
        let planner = reader.join().expect("the CSV reader thread panicked");
        written?;
        Ok(planner?)
    })
}

/// The body of the first chunk, with at most five ids shown.
fn example_request(
    conn: &Connection,
    run_id: i64,
    settings: &PlanSettings,
) -> Result<Option<serde_json::Value>, PlanError> {
    let Some((members, payload, payloads, kind)) = store::chunks::first_chunk(conn, run_id)? else {
        return Ok(None);
    };
    let ids: Vec<i64> = members.iter().take(5).map(|m| m.record_id).collect();
    if kind == CallKind::BulkWrite {
        // A Bulk Write job: the job's creation, and the first rows of the CSV its upload
        // carries.
        let fields = payloads
            .as_ref()
            .and_then(|p| p.first())
            .map(|o| crate::dispatch::bulk::job_fields(o))
            .unwrap_or_default();
        let body = crate::dispatch::bulk::create_body(
            &settings.module,
            "<the file_id of the upload>",
            &fields,
        );
        let mut example: serde_json::Value =
            serde_json::from_str(&body).expect("request bodies are JSON");
        let mut rows: Vec<serde_json::Value> = Vec::new();
        for (member, object) in members.iter().zip(payloads.iter().flatten()).take(5) {
            let mut row = serde_json::Map::new();
            row.insert("id".into(), member.record_id.to_string().into());
            if let Ok(serde_json::Value::Object(values)) = serde_json::from_str(object) {
                row.extend(values);
            }
            rows.push(row.into());
        }
        if members.len() > 5 {
            rows.push(format!("... {} rows in all", members.len()).into());
        }
        // What the zipped CSV's rows hold (one column per field, `id` first).
        example["csv_rows"] = rows.into();
        return Ok(Some(example));
    }
    let body = match &payloads {
        // Only new records (placeholder ids): an Upsert Records call.
        Some(objects) if ids.iter().all(|&id| id < 0) => {
            let objects: Vec<&str> = objects.iter().take(5).map(String::as_str).collect();
            crate::api::bodies::upsert_records(
                &objects,
                settings.match_by.as_deref().unwrap_or_default(),
                settings.trigger.as_deref(),
            )
        }
        // An Update Records call: each record with its own values.
        Some(objects) => {
            let objects: Vec<&str> = objects.iter().take(5).map(String::as_str).collect();
            crate::api::bodies::update_records(&ids, &objects, settings.trigger.as_deref())
        }
        None => crate::api::bodies::mass_update(&payload, settings.over_write, &ids),
    };
    let mut example: serde_json::Value =
        serde_json::from_str(&body).expect("request bodies are JSON");
    if members.len() > 5 {
        let list = if payloads.is_some() { "data" } else { "ids" };
        if let Some(shown) = example[list].as_array_mut() {
            shown.push("...".into());
        }
    }
    Ok(Some(example))
}
