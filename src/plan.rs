//! Planning: the stage between the CSV and the store. Each row is validated and its cells
//! coerced; its field-value set is split into parts of at most the per-call field limit;
//! identical parts across rows form one group (one request body); each group is cut into
//! chunks of at most 500 ids (one call each). Everything lands in one SQLite transaction,
//! so a plan is either stored whole or not at all.
use std::collections::{BTreeMap, HashMap};

// FxHash: the planner hashes millions of small keys it made itself; SipHash's protection
// against hostile keys costs a third of the reading thread's time here for nothing.
use rustc_hash::FxHashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fields::{self, CoerceOptions, FieldMeta, FieldType, ModuleFields};
use crate::input::{CsvInput, CsvOptions, InputError, RawRow};
use crate::outcome::{decode_members, encode_members, ItemState, Member};
use crate::store::{self, RunInfo, StoreError};

/// Zoho updates at most 500 records per `mass_update` call when ids are given (the cvid
/// mode allows more but schedules a background job, which massup does not use).
pub const MAX_IDS_PER_CALL: usize = 500;

/// How many row problems a summary or error shows; the store keeps all of them.
pub const PROBLEMS_SHOWN: usize = 10;

/// Zoho's documented field limit per mass update: one field, three for Deals.
pub fn default_field_limit(module: &str) -> usize {
    if module.eq_ignore_ascii_case("Deals") {
        3
    } else {
        1
    }
}

/// Caching the result of coercing each distinct raw cell (per column) is what makes planning
/// fast: real files repeat a few values millions of times. The cap bounds memory on columns
/// where every value is different; past it, cells are coerced each time.
const CELL_CACHE_LIMIT: usize = 65_536;

/// A row larger than this cannot be a Zoho record update (the largest fields hold 32,000
/// characters): it is invalid, and its cells are stored cut to `STORED_CELL_BYTES` so one
/// pathological row cannot bloat the database.
pub const MAX_ROW_BYTES: usize = 1 << 20;
const STORED_CELL_BYTES: usize = 1024;

/// Rows read before the file's row count is estimated (see `Planner::reserve_for_file`).
const ROWS_BEFORE_ESTIMATE: u32 = 1_024;

/// What decides how a file is planned; stored with the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanSettings {
    pub module: String,
    pub id_column: String,
    pub delimiter: char,
    pub null_marker: String,
    pub max_fields_per_call: usize,
    pub chunk_size: usize,
    pub over_write: bool,
    pub timezone: Option<String>,
    pub multiselect_separator: char,
    /// Type overrides, field API name -> type name.
    pub types: BTreeMap<String, String>,
}

impl PlanSettings {
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
        }
    }
}

/// Problems that stop a plan before anything is stored. All are input or usage errors.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{0}")]
    Settings(String),
    #[error("{path}: {} column(s) cannot be mass-updated in {module}, nothing was stored:\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Columns {
        path: String,
        module: String,
        problems: Vec<String>,
    },
    #[error("{path}: {invalid} invalid row(s) and --strict is set, nothing was stored:\n{}", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Strict {
        path: String,
        invalid: u64,
        problems: Vec<RowProblem>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for PlanError {
    fn from(e: rusqlite::Error) -> Self {
        PlanError::Store(StoreError::Sql(e))
    }
}

/// One invalid row as shown to the user.
#[derive(Debug, Clone, Serialize)]
pub struct RowProblem {
    pub path: String,
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

/// What `plan` reports.
#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    pub run_id: i64,
    pub csv_path: String,
    pub module: String,
    pub input_rows: u64,
    pub valid_rows: u64,
    pub invalid_rows: u64,
    pub merged_rows: u64,
    pub groups: u64,
    pub calls: u64,
    pub min_calls: u64,
    pub problems: Vec<RowProblem>,
    pub warnings: Vec<String>,
    pub example_request: Option<serde_json::Value>,
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
    /// Connection and dispatch settings (`run` stores them with the plan, in the same
    /// transaction, so that a kill right after planning cannot lose them for `resume`).
    pub dispatch_json: Option<&'a str>,
}

/// Plans `request.csv_path` into `conn`.
pub fn plan(conn: &mut Connection, request: &PlanRequest<'_>) -> Result<PlanOutcome, PlanError> {
    let settings = request.settings;
    check_settings(settings)?;
    // Every flag is checked before anything else, so a typo is reported even when the
    // file turns out to be planned already.
    let coerce_options = CoerceOptions {
        timezone: match &settings.timezone {
            Some(name) => Some(
                CoerceOptions::parse_timezone(name)
                    .map_err(|e| PlanError::Settings(format!("--timezone {name}: {e}")))?,
            ),
            None => None,
        },
        multiselect_separator: settings.multiselect_separator,
    };
    for (field, type_name) in &settings.types {
        type_name
            .parse::<FieldType>()
            .map_err(|e| PlanError::Settings(format!("--type {field}={type_name}: {e}")))?;
    }
    let given = request.csv_path;
    let shown = given.display().to_string();
    // A pipe (`--csv -`, /dev/stdin, a FIFO) can be read only once, and a plan reads its
    // file twice (its SHA-256 first): such input is copied to a temporary file.
    let spooled = spool_if_stream(given)?;
    let path: &Path = spooled.as_ref().map_or(given, |f| f.path());
    let sha256 = file_sha256(path)?;
    if !request.new_run {
        if let Some(existing) = store::run_by_sha(conn, &sha256, &settings.module)? {
            return Ok(PlanOutcome::Existing(existing));
        }
    }
    let file = std::fs::File::open(path).map_err(|source| InputError::Open {
        path: shown.clone(),
        source,
    })?;
    let input = CsvInput::from_reader(
        given,
        Box::new(std::io::BufReader::with_capacity(256 * 1024, file)),
        &CsvOptions {
            delimiter: settings.delimiter as u8,
            id_column: settings.id_column.clone(),
        },
    )?;
    let mut warnings = Vec::new();
    let columns = column_plans(
        input.field_columns(),
        settings,
        request.fields.map(|f| f.0),
        &shown,
        &mut warnings,
    )?;
    let tx = conn.transaction()?;
    let now = store::now();
    let settings_json = serde_json::to_string(settings).expect("settings serialize");
    let columns_json = serde_json::to_string(input.field_columns()).expect("names serialize");
    let absolute = match spooled {
        Some(_) => PathBuf::from(given),
        None => std::fs::canonicalize(given).unwrap_or_else(|_| PathBuf::from(given)),
    };
    tx.execute(
        "INSERT INTO runs (module, csv_path, csv_sha256, id_column, columns_json, settings_json, fields_json, state, created_at, dispatch_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'planned', ?8, ?9)",
        params![
            settings.module,
            absolute.display().to_string(),
            sha256,
            settings.id_column,
            columns_json,
            settings_json,
            request.fields.map(|f| f.1),
            now,
            request.dispatch_json
        ],
    )?;
    let run_id = tx.last_insert_rowid();

    let file_size = std::fs::metadata(path).map_or(0, |m| m.len());
    let planner = Planner::new(columns, settings, coerce_options, shown.clone(), file_size);
    let planner = stream_rows(&tx, run_id, input, planner)?;
    let built = planner.finish(&tx, run_id)?;
    if request.strict && built.invalid_rows > 0 {
        let problems = built.problems.clone();
        drop(tx); // rolls back: a strict plan stores nothing
        return Err(PlanError::Strict {
            path: shown,
            invalid: built.invalid_rows,
            problems,
        });
    }
    if request.fields.is_none() {
        warnings.push(
            "no field metadata: values are sent as text unless --type says otherwise; pass --fields FILE (or let `run` fetch it) to check types before sending".into(),
        );
    }
    tx.execute(
        "UPDATE runs SET input_rows = ?2, valid_rows = ?3, invalid_rows = ?4, merged_rows = ?5, min_calls = ?6 WHERE id = ?1",
        params![
            run_id,
            built.input_rows,
            built.valid_rows,
            built.invalid_rows,
            built.merged_rows,
            built.min_calls
        ],
    )?;
    let example_request = example_request(&tx, run_id, settings.over_write)?;
    tx.commit()?;
    Ok(PlanOutcome::Planned(PlanSummary {
        run_id,
        csv_path: shown,
        module: settings.module.clone(),
        input_rows: built.input_rows,
        valid_rows: built.valid_rows,
        invalid_rows: built.invalid_rows,
        merged_rows: built.merged_rows,
        groups: built.groups,
        calls: built.calls,
        min_calls: built.min_calls,
        problems: built.problems,
        warnings,
        example_request,
    }))
}

fn check_settings(settings: &PlanSettings) -> Result<(), PlanError> {
    if settings.chunk_size == 0 || settings.chunk_size > MAX_IDS_PER_CALL {
        return Err(PlanError::Settings(format!(
            "--chunk-size {} is out of range: Zoho accepts 1 to {MAX_IDS_PER_CALL} ids per mass_update call",
            settings.chunk_size
        )));
    }
    if settings.max_fields_per_call == 0 {
        return Err(PlanError::Settings(
            "--max-fields-per-call must be at least 1".into(),
        ));
    }
    if !settings.delimiter.is_ascii() {
        return Err(PlanError::Settings(format!(
            "--delimiter {:?} must be a single ASCII character",
            settings.delimiter
        )));
    }
    Ok(())
}

/// Rows handed from the reading thread to the writing one, in batches.
struct RowRecord {
    row_no: u32,
    line: u64,
    record_id: String,
    values_json: String,
    status: RowStatus,
    message: Option<String>,
    merged_into: Option<u32>,
}

/// Rows per batch sent between the threads, and per multi-row INSERT (fewer statement
/// executions: one INSERT of 64 rows costs far less than 64 INSERTs of one).
const ROW_BATCH: usize = 64;
/// Rows per message between the threads: large enough that handing over is rare.
const CHANNEL_BATCH: usize = 4096;
const ROW_PARAMS: usize = 8;

/// Reads, checks and places every row on one thread while this one inserts them: on two
/// cores the CSV work and SQLite's B-tree work overlap. Returns the planner for `finish`.
fn stream_rows(
    tx: &rusqlite::Transaction<'_>,
    run_id: i64,
    mut input: CsvInput,
    mut planner: Planner,
) -> Result<Planner, PlanError> {
    std::thread::scope(|scope| {
        // A few batches in flight keep both threads busy and memory bounded.
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<RowRecord>>(4);
        let reader = scope.spawn(move || -> Result<Planner, InputError> {
            let columns = planner.columns.len();
            let mut batch = Vec::with_capacity(CHANNEL_BATCH);
            while let Some(row) = input.next_row()? {
                let verdict = planner.plan_row(&row);
                let mut values_json = String::with_capacity(16 * columns);
                cells_json(&row, columns, &mut values_json);
                batch.push(RowRecord {
                    row_no: verdict.row_no,
                    line: row.line,
                    record_id: lossy(row.id().trim_ascii()).into_owned(),
                    values_json,
                    status: verdict.status,
                    message: verdict.message,
                    merged_into: verdict.merged_into,
                });
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
        let written = write_rows(tx, run_id, &receiver);
        drop(receiver); // unblocks the reader if writing failed
        let planner = reader.join().expect("the CSV reader thread panicked");
        written?;
        Ok(planner?)
    })
}

fn write_rows(
    tx: &rusqlite::Transaction<'_>,
    run_id: i64,
    receiver: &std::sync::mpsc::Receiver<Vec<RowRecord>>,
) -> Result<(), PlanError> {
    let sql = |rows: usize| {
        let one = format!("({})", ["?"; ROW_PARAMS].join(","));
        format!(
            "INSERT INTO rows (run_id, row_no, line, record_id, values_json, status, message, merged_into) VALUES {}",
            vec![one; rows].join(",")
        )
    };
    let mut full = tx.prepare_cached(&sql(ROW_BATCH))?;
    let mut single = tx.prepare_cached(&sql(1))?;
    for batch in receiver {
        let mut written = 0;
        for chunk in batch.chunks(ROW_BATCH) {
            let stmt = if chunk.len() == ROW_BATCH {
                &mut full
            } else {
                &mut single
            };
            for rows in chunk.chunks(if chunk.len() == ROW_BATCH {
                ROW_BATCH
            } else {
                1
            }) {
                for (i, row) in rows.iter().enumerate() {
                    let at = i * ROW_PARAMS;
                    stmt.raw_bind_parameter(at + 1, run_id)?;
                    stmt.raw_bind_parameter(at + 2, row.row_no)?;
                    stmt.raw_bind_parameter(at + 3, row.line)?;
                    stmt.raw_bind_parameter(at + 4, &row.record_id)?;
                    stmt.raw_bind_parameter(at + 5, &row.values_json)?;
                    stmt.raw_bind_parameter(at + 6, row.status.as_str())?;
                    stmt.raw_bind_parameter(at + 7, &row.message)?;
                    stmt.raw_bind_parameter(at + 8, row.merged_into)?;
                }
                written += stmt.raw_execute()?;
            }
        }
        if written != batch.len() {
            return Err(PlanError::Store(StoreError::Sql(
                rusqlite::Error::StatementChangedRows(written),
            )));
        }
    }
    Ok(())
}

/// Copies standard input (`-`) or any other non-regular file to a temporary file.
fn spool_if_stream(path: &Path) -> Result<Option<tempfile::NamedTempFile>, InputError> {
    let open_error = |source| InputError::Open {
        path: path.display().to_string(),
        source,
    };
    let mut source: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let meta = std::fs::metadata(path).map_err(open_error)?;
        if meta.is_file() {
            return Ok(None);
        }
        Box::new(std::fs::File::open(path).map_err(open_error)?)
    };
    let mut spool = tempfile::NamedTempFile::new().map_err(open_error)?;
    std::io::copy(&mut source, &mut spool).map_err(open_error)?;
    Ok(Some(spool))
}

/// SHA-256 of the file, read once before planning so that re-planning the same content can
/// be detected before any work is done.
pub fn file_sha256(path: &Path) -> Result<String, InputError> {
    let open_error = |source| InputError::Open {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(open_error)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(open_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// How one field column is coerced, decided once from metadata and overrides.
struct ColumnPlan {
    name: String,
    meta: FieldMeta,
    /// Raw cell -> its atom or the message for an invalid value.
    cache: FxHashMap<Box<[u8]>, Result<u32, String>>,
}

fn column_plans(
    names: &[String],
    settings: &PlanSettings,
    metadata: Option<&ModuleFields>,
    shown: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<ColumnPlan>, PlanError> {
    for field in settings.types.keys() {
        if !names.iter().any(|n| n == field) {
            warnings.push(format!("--type {field}=...: the CSV has no column {field}"));
        }
    }
    if let Some(metadata) = metadata {
        let problems = metadata.check_columns(names.iter().map(String::as_str));
        if !problems.is_empty() {
            return Err(PlanError::Columns {
                path: shown.to_string(),
                module: settings.module.clone(),
                problems: problems.iter().map(|p| p.to_string()).collect(),
            });
        }
    }
    let mut plans = Vec::with_capacity(names.len());
    for name in names {
        let mut meta = match metadata.and_then(|m| m.get(name)) {
            Some(meta) => meta.clone(),
            // Without metadata a value is sent as the text it is.
            None => FieldMeta::new(name.clone(), FieldType::Other("text".into())),
        };
        if let Some(type_name) = settings.types.get(name) {
            meta.data_type = type_name
                .parse()
                .map_err(|e| PlanError::Settings(format!("--type {name}={type_name}: {e}")))?;
        }
        plans.push(ColumnPlan {
            name: name.clone(),
            meta,
            cache: FxHashMap::default(),
        });
    }
    Ok(plans)
}

/// A row's state as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowStatus {
    Valid,
    Invalid,
    /// Same record id as an earlier valid row with no conflicting value: its changes ride
    /// with that row (and any field the earlier row lacks gets items of its own).
    Merged,
}

impl RowStatus {
    fn as_str(self) -> &'static str {
        match self {
            RowStatus::Valid => "valid",
            RowStatus::Invalid => "invalid",
            RowStatus::Merged => "merged",
        }
    }
}

struct Verdict {
    row_no: u32,
    status: RowStatus,
    message: Option<String>,
    merged_into: Option<u32>,
}

/// One coerced cell value: a column and the JSON text of its value.
struct Atom {
    column: u16,
    json: String,
}

/// Rows sharing a record id, tracked only for the (rare) duplicates.
#[derive(Default)]
struct Duplicates {
    rows: Vec<u32>,
    conflict: Option<String>,
}

/// The in-memory side of planning: per row only the group ids it needs (a few bytes), so
/// memory grows with rows, not with the size of their values.
struct Planner {
    columns: Vec<ColumnPlan>,
    settings_null: String,
    field_limit: usize,
    chunk_size: usize,
    coerce_options: CoerceOptions,
    shown: String,
    file_size: u64,
    atoms: Vec<Atom>,
    atom_index: FxHashMap<(u16, String), u32>,
    /// Atoms of each group, in column order.
    groups: Vec<Box<[u32]>>,
    group_index: FxHashMap<Box<[u32]>, u32>,
    /// Flat group ids of every row; row r owns `row_groups[row_start[r]..row_start[r + 1]]`.
    row_groups: Vec<u32>,
    row_start: Vec<u32>,
    row_record: Vec<i64>,
    row_line: Vec<u64>,
    row_status: Vec<RowStatus>,
    by_record: FxHashMap<i64, u32>,
    duplicates: FxHashMap<i64, Duplicates>,
    problems: Vec<RowProblem>,
    invalid_rows: u64,
    // Reused per-row buffers.
    row_atoms: Vec<u32>,
    part: Vec<u32>,
    errors: Vec<String>,
}

struct Built {
    input_rows: u64,
    valid_rows: u64,
    invalid_rows: u64,
    merged_rows: u64,
    groups: u64,
    calls: u64,
    min_calls: u64,
    problems: Vec<RowProblem>,
}

impl Planner {
    fn new(
        columns: Vec<ColumnPlan>,
        settings: &PlanSettings,
        coerce_options: CoerceOptions,
        shown: String,
        file_size: u64,
    ) -> Planner {
        Planner {
            columns,
            settings_null: settings.null_marker.clone(),
            field_limit: settings.max_fields_per_call,
            chunk_size: settings.chunk_size,
            coerce_options,
            shown,
            file_size,
            atoms: Vec::new(),
            atom_index: FxHashMap::default(),
            groups: Vec::new(),
            group_index: FxHashMap::default(),
            row_groups: Vec::new(),
            row_start: vec![0],
            row_record: Vec::new(),
            row_line: Vec::new(),
            row_status: Vec::new(),
            by_record: FxHashMap::default(),
            duplicates: FxHashMap::default(),
            problems: Vec::new(),
            invalid_rows: 0,
            row_atoms: Vec::new(),
            part: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn plan_row(&mut self, row: &RawRow<'_>) -> Verdict {
        let row_no = self.row_status.len() as u32;
        if row_no == ROWS_BEFORE_ESTIMATE && self.file_size > 0 {
            self.reserve_for_file(row.byte_offset());
        }
        self.row_line.push(row.line);
        let verdict = match self.check_row(row) {
            Err(message) => self.invalid(row_no, row.line, message),
            Ok(record) => self.place(row_no, row.line, record),
        };
        self.row_start.push(self.row_groups.len() as u32);
        verdict
    }

    /// Sizes the per-row tables once for the whole file, estimated from the bytes the first
    /// rows took: growing them by doubling would briefly need both copies (a third more
    /// peak memory on a large file).
    fn reserve_for_file(&mut self, bytes_so_far: u64) {
        let per_row = (bytes_so_far / u64::from(ROWS_BEFORE_ESTIMATE)).max(1);
        // 5% slack for rows longer than the first ones.
        let rows = (self.file_size / per_row + self.file_size / per_row / 20) as usize;
        let parts = self.row_groups.len() / ROWS_BEFORE_ESTIMATE as usize + 1;
        self.row_groups.reserve(rows * parts);
        self.row_start.reserve(rows);
        self.row_record.reserve(rows);
        self.row_line.reserve(rows);
        self.row_status.reserve(rows);
        self.by_record.reserve(rows);
    }

    fn invalid(&mut self, row_no: u32, line: u64, message: String) -> Verdict {
        self.row_record.push(0);
        self.row_status.push(RowStatus::Invalid);
        self.invalid_rows += 1;
        if self.problems.len() < PROBLEMS_SHOWN {
            self.problems.push(RowProblem {
                path: self.shown.clone(),
                line,
                message: message.clone(),
            });
        }
        Verdict {
            row_no,
            status: RowStatus::Invalid,
            message: Some(message),
            merged_into: None,
        }
    }

    /// Validates the row's shape, id and cells; fills `row_atoms` and returns the record id.
    fn check_row(&mut self, row: &RawRow<'_>) -> Result<i64, String> {
        if row.byte_len() > MAX_ROW_BYTES {
            return Err(format!(
                "the row holds {} bytes, more than any Zoho record update ({} at most); its cells are stored cut short",
                row.byte_len(),
                MAX_ROW_BYTES
            ));
        }
        if row.is_ragged() {
            return Err(format!(
                "the row has {} cells but the header has {}",
                row.len(),
                self.columns.len() + 1
            ));
        }
        let record = parse_record_id(row.id())?;
        self.row_atoms.clear();
        self.errors.clear();
        for column in 0..self.columns.len() {
            let raw = row.field(column);
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue; // empty: leave the field unchanged
            }
            match self.atom_for(column, raw) {
                Ok(atom) => self.row_atoms.push(atom),
                Err(message) => self
                    .errors
                    .push(format!("column {}: {message}", self.columns[column].name)),
            }
        }
        if !self.errors.is_empty() {
            return Err(self.errors.join("; "));
        }
        if self.row_atoms.is_empty() {
            return Err("nothing to update: every field cell is empty".into());
        }
        Ok(record)
    }

    fn atom_for(&mut self, column: usize, raw: &[u8]) -> Result<u32, String> {
        if let Some(cached) = self.columns[column].cache.get(raw) {
            return cached.clone();
        }
        let result = self.coerce_cell(column, raw);
        let plan = &mut self.columns[column];
        if plan.cache.len() < CELL_CACHE_LIMIT {
            plan.cache.insert(raw.into(), result.clone());
        }
        result
    }

    fn coerce_cell(&mut self, column: usize, raw: &[u8]) -> Result<u32, String> {
        let text = std::str::from_utf8(raw).map_err(|e| {
            format!(
                "not valid UTF-8 (byte {} of the cell); save the file as UTF-8",
                e.valid_up_to() + 1
            )
        })?;
        let json = if text == self.settings_null {
            "null".to_string()
        } else {
            let value = fields::coerce(&self.columns[column].meta, text, &self.coerce_options)
                .map_err(|e| e.to_string())?;
            value.to_string()
        };
        let key = (column as u16, json);
        if let Some(&atom) = self.atom_index.get(&key) {
            return Ok(atom);
        }
        let atom = self.atoms.len() as u32;
        self.atoms.push(Atom {
            column: key.0,
            json: key.1.clone(),
        });
        self.atom_index.insert(key, atom);
        Ok(atom)
    }

    /// Places a valid row: registers its record id, handles duplicates, records its groups.
    fn place(&mut self, row_no: u32, line: u64, record: i64) -> Verdict {
        let Some(&first) = self.by_record.get(&record) else {
            self.by_record.insert(record, row_no);
            self.row_record.push(record);
            self.row_status.push(RowStatus::Valid);
            let atoms = std::mem::take(&mut self.row_atoms);
            self.push_parts(&atoms);
            self.row_atoms = atoms;
            return Verdict {
                row_no,
                status: RowStatus::Valid,
                message: None,
                merged_into: None,
            };
        };
        let first_line = self.row_line[first as usize];
        let duplicates = self.duplicates.entry(record).or_default();
        if duplicates.rows.is_empty() {
            duplicates.rows.push(first);
        }
        if duplicates.conflict.is_some() {
            duplicates.rows.push(row_no);
            self.row_record.push(record);
            return self.conflicting(row_no);
        }
        // What the record already gets from the rows before, column -> atom.
        let rows = duplicates.rows.clone();
        let mut known: HashMap<u16, (u32, u64)> = HashMap::new();
        for &r in &rows {
            for &group in self.row_group_ids(r) {
                for &atom in self.groups[group as usize].iter() {
                    known.insert(
                        self.atoms[atom as usize].column,
                        (atom, self.row_line[r as usize]),
                    );
                }
            }
        }
        let mut extra = Vec::new();
        let mut conflict = None;
        for &atom in &self.row_atoms {
            let column = self.atoms[atom as usize].column;
            match known.get(&column) {
                Some(&(other, _)) if other == atom => {}
                Some(&(other, other_line)) => {
                    conflict = Some(format!(
                        "record id {record} gets {} = {} on line {other_line} but {} on line {line}",
                        self.columns[column as usize].name,
                        self.atoms[other as usize].json,
                        self.atoms[atom as usize].json,
                    ));
                    break;
                }
                None => extra.push(atom),
            }
        }
        let duplicates = self.duplicates.get_mut(&record).expect("entry made above");
        duplicates.rows.push(row_no);
        self.row_record.push(record);
        if let Some(conflict) = conflict {
            duplicates.conflict = Some(conflict);
            return self.conflicting(row_no);
        }
        self.row_status.push(RowStatus::Merged);
        let message = if extra.is_empty() {
            format!("same record as line {first_line}; merged")
        } else {
            let names: Vec<&str> = extra
                .iter()
                .map(|&a| {
                    self.columns[self.atoms[a as usize].column as usize]
                        .name
                        .as_str()
                })
                .collect();
            format!(
                "same record as line {first_line}; merged, adding {}",
                names.join(", ")
            )
        };
        self.push_parts(&extra);
        Verdict {
            row_no,
            status: RowStatus::Merged,
            message: Some(message),
            merged_into: Some(first),
        }
    }

    /// A row whose record id has conflicting values. Its message is written when planning
    /// finishes and every line of that record is known.
    fn conflicting(&mut self, row_no: u32) -> Verdict {
        self.row_status.push(RowStatus::Invalid);
        self.invalid_rows += 1;
        Verdict {
            row_no,
            status: RowStatus::Invalid,
            message: Some("conflicting duplicate record id".into()),
            merged_into: None,
        }
    }

    fn row_group_ids(&self, row: u32) -> &[u32] {
        let start = self.row_start[row as usize] as usize;
        let end = self
            .row_start
            .get(row as usize + 1)
            .map_or(self.row_groups.len(), |&e| e as usize);
        &self.row_groups[start..end]
    }

    /// Splits atoms (in column order) into parts of at most the field limit and records the
    /// group of each part for the current row.
    fn push_parts(&mut self, atoms: &[u32]) {
        for part in atoms.chunks(self.field_limit) {
            self.part.clear();
            self.part.extend_from_slice(part);
            let group = match self.group_index.get(self.part.as_slice()) {
                Some(&g) => g,
                None => {
                    let g = self.groups.len() as u32;
                    let key: Box<[u32]> = self.part.as_slice().into();
                    self.groups.push(key.clone());
                    self.group_index.insert(key, g);
                    g
                }
            };
            self.row_groups.push(group);
        }
    }

    fn payload_json(&self, group: u32) -> String {
        let mut out = String::from("{");
        for (i, &atom) in self.groups[group as usize].iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let atom = &self.atoms[atom as usize];
            out.push_str(
                &serde_json::to_string(&self.columns[atom.column as usize].name).expect("string"),
            );
            out.push(':');
            out.push_str(&atom.json);
        }
        out.push('}');
        out
    }

    /// Settles duplicates, then writes groups, chunks and items (in group order, so the
    /// items of a chunk are contiguous) and returns the totals.
    fn finish(mut self, tx: &rusqlite::Transaction<'_>, run_id: i64) -> Result<Built, PlanError> {
        // Conflicting duplicates: every row of that record id is invalid.
        let mut conflict_problems = Vec::new();
        {
            let mut update = tx.prepare_cached(
                "UPDATE rows SET status = 'invalid', message = ?3, merged_into = NULL WHERE run_id = ?1 AND row_no = ?2",
            )?;
            for duplicates in self.duplicates.values() {
                let Some(conflict) = &duplicates.conflict else {
                    continue;
                };
                let lines: Vec<String> = duplicates
                    .rows
                    .iter()
                    .map(|&r| self.row_line[r as usize].to_string())
                    .collect();
                let message = format!(
                    "conflicting duplicate: {conflict}; every row of this record id is left out (lines {})",
                    lines.join(", ")
                );
                for &r in &duplicates.rows {
                    if self.row_status[r as usize] != RowStatus::Invalid {
                        self.invalid_rows += 1;
                    }
                    self.row_status[r as usize] = RowStatus::Invalid;
                    let changed = update.execute(params![run_id, r, message])?;
                    debug_assert_eq!(changed, 1);
                    conflict_problems.push(RowProblem {
                        path: self.shown.clone(),
                        line: self.row_line[r as usize],
                        message: message.clone(),
                    });
                }
            }
        }
        let mut problems = std::mem::take(&mut self.problems);
        problems.extend(conflict_problems);
        problems.sort_by_key(|p| p.line);
        problems.truncate(PROBLEMS_SHOWN);

        // Count the ids of each group, then order rows by group (a counting sort).
        let mut counts = vec![0u32; self.groups.len()];
        let rows = self.row_status.len();
        for r in 0..rows {
            if self.row_status[r] != RowStatus::Invalid {
                for &g in self.row_group_ids(r as u32) {
                    counts[g as usize] += 1;
                }
            }
        }
        let mut offsets = Vec::with_capacity(counts.len() + 1);
        let mut total = 0u32;
        for &c in &counts {
            offsets.push(total);
            total += c;
        }
        offsets.push(total);
        let mut fill = offsets.clone();
        let mut ordered = vec![0u32; total as usize];
        for r in 0..rows {
            if self.row_status[r] != RowStatus::Invalid {
                for &g in self.row_group_ids(r as u32) {
                    ordered[fill[g as usize] as usize] = r as u32;
                    fill[g as usize] += 1;
                }
            }
        }

        let now = store::now();
        let mut insert_group = tx.prepare_cached(
            "INSERT INTO groups (run_id, payload_json, items) VALUES (?1, ?2, ?3)",
        )?;
        let mut insert_chunk = tx.prepare_cached(
            "INSERT INTO chunks (run_id, group_id, state, size, members, outcomes, created_at)
             VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6)",
        )?;
        let (mut groups, mut calls, mut min_calls) = (0u64, 0u64, 0u64);
        for g in 0..self.groups.len() {
            let rows_of_group = &ordered[offsets[g] as usize..offsets[g + 1] as usize];
            if rows_of_group.is_empty() {
                continue; // every row of this group turned out invalid
            }
            insert_group.execute(params![
                run_id,
                self.payload_json(g as u32),
                rows_of_group.len()
            ])?;
            let group_id = tx.last_insert_rowid();
            groups += 1;
            min_calls += rows_of_group.len().div_ceil(MAX_IDS_PER_CALL) as u64;
            for chunk in balanced_chunks(rows_of_group, self.chunk_size) {
                let members = encode_members(chunk.iter().map(|&r| Member {
                    row_no: r,
                    record_id: self.row_record[r as usize],
                }));
                let outcomes = vec![ItemState::Pending as u8; chunk.len()];
                insert_chunk.execute(params![
                    run_id,
                    group_id,
                    chunk.len(),
                    members,
                    outcomes,
                    now
                ])?;
                calls += 1;
            }
        }
        let merged_rows = self
            .row_status
            .iter()
            .filter(|s| **s == RowStatus::Merged)
            .count() as u64;
        Ok(Built {
            input_rows: rows as u64,
            valid_rows: rows as u64 - self.invalid_rows - merged_rows,
            invalid_rows: self.invalid_rows,
            merged_rows,
            groups,
            calls,
            min_calls,
            problems,
        })
    }
}

/// Cuts `ids` into the fewest chunks of at most `size`, as even as possible (so that the
/// last call of a group is not a straggler of a few ids while the others carry 500).
pub fn balanced_chunks<T>(ids: &[T], size: usize) -> impl Iterator<Item = &[T]> {
    let count = ids.len().div_ceil(size.max(1));
    let base = ids.len().checked_div(count).unwrap_or(0);
    let extra = ids.len().checked_rem(count).unwrap_or(0);
    let mut start = 0;
    (0..count).map(move |i| {
        let len = base + usize::from(i < extra);
        let chunk = &ids[start..start + len];
        start += len;
        chunk
    })
}

/// Zoho record ids are positive Java longs written as digits.
pub fn parse_record_id(raw: &[u8]) -> Result<i64, String> {
    let trimmed = raw.trim_ascii();
    if trimmed.is_empty() {
        return Err("the record id is empty".into());
    }
    if !trimmed.iter().all(u8::is_ascii_digit) {
        let shown = String::from_utf8_lossy(trimmed);
        return Err(format!(
            "record id {:?} is not a Zoho record id (digits only)",
            truncate(&shown, 40)
        ));
    }
    std::str::from_utf8(trimmed)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|&id| id > 0)
        .ok_or_else(|| {
            format!(
                "record id {} is not a Zoho record id (a positive 64-bit number, at most 19 digits)",
                truncate(&String::from_utf8_lossy(trimmed), 40)
            )
        })
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}...")
    }
}

/// The field cells as given, as a JSON array of strings (invalid UTF-8 replaced).
fn cells_json(row: &RawRow<'_>, columns: usize, out: &mut String) {
    let oversized = row.byte_len() > MAX_ROW_BYTES;
    out.push('[');
    for i in 0..columns {
        if i > 0 {
            out.push(',');
        }
        let mut raw = row.field(i);
        if oversized && raw.len() > STORED_CELL_BYTES {
            raw = &raw[..STORED_CELL_BYTES];
        }
        let cell = lossy(raw);
        push_json_string(out, &cell);
    }
    out.push(']');
}

/// Text of a cell; invalid UTF-8 (already reported as a row problem) is replaced.
fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

fn push_json_string(out: &mut String, s: &str) {
    // serde_json's escaping, appended without an intermediate allocation per cell.
    let mut buf = std::mem::take(out).into_bytes();
    serde_json::to_writer(&mut buf, s).expect("writing to a Vec cannot fail");
    *out = String::from_utf8(buf).expect("serde_json writes UTF-8");
}

/// The body of the first chunk, with at most five ids shown.
fn example_request(
    conn: &Connection,
    run_id: i64,
    over_write: bool,
) -> Result<Option<serde_json::Value>, PlanError> {
    let first = conn.query_row(
        "SELECT c.members, g.payload_json FROM chunks c JOIN groups g ON g.id = c.group_id WHERE c.run_id = ?1 ORDER BY c.id LIMIT 1",
        params![run_id],
        |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?)),
    );
    let (members, payload) = match first {
        Ok(found) => found,
        Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let ids: Vec<String> = decode_members(&members)
        .iter()
        .take(6)
        .map(|m| m.record_id.to_string())
        .collect();
    let payload: serde_json::Value =
        serde_json::from_str(&payload).expect("stored payloads are JSON");
    let mut shown: Vec<serde_json::Value> = ids.iter().take(5).map(|s| s.as_str().into()).collect();
    if ids.len() > 5 {
        shown.push("...".into());
    }
    Ok(Some(serde_json::json!({
        "data": [payload],
        "over_write": over_write,
        "ids": shown,
    })))
}
