//! The planner: pure and in memory. Each row is validated and its cells coerced; its
//! field-value set is split into parts of at most the per-call field limit; identical parts
//! across rows form one group (one request body); each group is cut into chunks of at most
//! the chunk size (one call each). Nothing here touches the database: the orchestration in
//! `plan` stores what the planner decides.
use std::collections::HashMap;

// FxHash: the planner hashes millions of small keys it made itself; SipHash's protection
// against hostile keys costs a third of the reading thread's time here for nothing.
use std::hash::BuildHasher;
use std::sync::Arc;

// hashbrown's HashTable (the table under std's HashMap, with the hash kept outside the
// entries): the record-id index stores row numbers only, hashed through `row_record`.
use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::Serialize;

use super::matching::{KeyMatch, Matches};
use super::settings::{ApiChoice, BulkUse, Optimize, PlanSettings, SettingsError};
use super::PlanError;
use crate::api::limits::{
    credits, CallKind, BULK_WRITE_JOB_CREDITS, MAX_BULK_CSV_BYTES, MAX_IDS_PER_CALL,
    MAX_RECORDS_PER_BULK_JOB, MAX_RECORDS_PER_UPDATE, RECORDS_PER_WRITE_CREDIT,
};
use crate::fields::{
    self, CoerceOptions, ColumnMatch, ColumnProblem, ColumnProblemKind, FieldMeta, FieldType,
    ModuleFields,
};
use crate::input::RawRow;
use crate::outcome::Member;
use crate::store::rows::{NewRow, RowStatus};

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

/// How many row problems a summary or error shows; the store keeps all of them.
pub const PROBLEMS_SHOWN: usize = 10;

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

/// Which kinds of call can carry a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnRoute {
    Any,
    /// mass_update refuses it (email, multi-line text, lookups, `mass_update: false`), but
    /// Update Records takes it.
    UpdateOnly,
    /// A multi-select appended to (no --over-write): Update Records replaces the values.
    MassOnly,
}

/// A header cell read as another API name, and the API name it was read as: what is sent
/// and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnMapping {
    pub header: String,
    pub api_name: String,
    /// Why: `name` (the field's label, or its API name in another case or spacing) or
    /// `map` (`--map`'s `[columns]`).
    pub by: MappedBy,
}

/// See [`ColumnMapping::by`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MappedBy {
    Name,
    Map,
}

/// A value `--map`'s `[set]` gives every row, as planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixedValue {
    /// The field's API name.
    pub field: String,
    /// The value as the map writes it.
    pub value: String,
}

/// How one field column is coerced, decided once from metadata and overrides.
struct ColumnPlan {
    /// The field's API name: the key sent to Zoho.
    name: String,
    /// The column as messages name it: the header, and the API name when they differ.
    shown: String,
    meta: FieldMeta,
    /// Which kinds of call can carry this column's values.
    route: ColumnRoute,
    /// Whether a Bulk Write CSV can carry its values (see [`bulk_type_ok`]).
    bulk: bool,
    /// Raw cell -> its atom or the message for an invalid value.
    cache: FxHashMap<Box<[u8]>, Result<u32, String>>,
}

/// A column to plan: a header of the sheet, or a field `--map`'s `[set]` gives a value.
struct ColumnSource {
    /// As messages and the file name it (`Stadt`; `[set] Lead_Source`).
    header: String,
    /// What it is read as: the header, or the field the map names for it.
    wanted: String,
    /// The map entry it comes from, for messages (`map.toml: line 3: [columns] "Stadt"`).
    map_entry: Option<String>,
    /// `[set]`'s value for every row.
    fixed: Option<String>,
}

/// The columns to plan: the sheet's field columns, each read as its map entry says when
/// it has one, then the `[set]` fields. Map entries for columns the header lacks are noted.
fn column_sources(
    names: &[String],
    settings: &PlanSettings,
    warnings: &mut Vec<String>,
) -> Vec<ColumnSource> {
    use super::column_map::{MapOrigin, Section};
    let origin = settings.map_origin.as_ref();
    // A map key names the column of that exact header, else the one of the same loose name.
    let mut used = std::collections::HashSet::new();
    let mut sources: Vec<ColumnSource> = names
        .iter()
        .map(|header| {
            let key = settings.map_columns.get_key_value(header).or_else(|| {
                let loose = crate::input::loose_name(header);
                settings
                    .map_columns
                    .iter()
                    .find(|(k, _)| crate::input::loose_name(k) == loose)
            });
            match key {
                Some((key, field)) => {
                    used.insert(key.as_str());
                    ColumnSource {
                        header: header.clone(),
                        wanted: field.clone(),
                        map_entry: Some(MapOrigin::entry(origin, Section::Columns, key)),
                        fixed: None,
                    }
                }
                None => ColumnSource {
                    header: header.clone(),
                    wanted: header.clone(),
                    map_entry: None,
                    fixed: None,
                },
            }
        })
        .collect();
    for key in settings.map_columns.keys() {
        if !used.contains(key.as_str()) {
            warnings.push(format!(
                "{}: the header has no such column",
                MapOrigin::entry(origin, Section::Columns, key)
            ));
        }
    }
    sources.extend(settings.map_set.iter().map(|(field, value)| ColumnSource {
        header: format!("[set] {field}"),
        wanted: field.clone(),
        map_entry: Some(MapOrigin::entry(origin, Section::Set, field)),
        fixed: Some(value.clone()),
    }));
    sources
}

/// The API name each column is read as (by [`ModuleFields::match_column`]), the header
/// cells read as another name, and every column that names no field, several fields, or a
/// field another column names.
fn map_headers(
    sources: &[ColumnSource],
    metadata: &ModuleFields,
) -> (Vec<String>, Vec<ColumnMapping>, Vec<ColumnProblem>) {
    let mut api_names = Vec::with_capacity(sources.len());
    let mut mapping = Vec::new();
    let mut problems = Vec::new();
    let mut header_of: HashMap<&str, &str> = HashMap::new();
    for source in sources {
        let header = &source.header;
        let problem = |reason, suggestion| ColumnProblem {
            column: header.clone(),
            reason,
            suggestion,
        };
        let meta = match metadata.match_column(&source.wanted) {
            ColumnMatch::ApiName(meta) | ColumnMatch::Loose(meta) => meta,
            ColumnMatch::Ambiguous(candidates) => {
                let described = candidates
                    .iter()
                    .filter_map(|c| metadata.get(c))
                    .map(ModuleFields::describe)
                    .collect();
                problems.push(match &source.map_entry {
                    Some(entry) => problem(
                        ColumnProblemKind::MapTarget {
                            entry: entry.clone(),
                            field: source.wanted.clone(),
                            candidates: described,
                        },
                        None,
                    ),
                    None => problem(ColumnProblemKind::Ambiguous(described), None),
                });
                api_names.push(source.wanted.clone());
                continue;
            }
            ColumnMatch::Unknown(suggestion) => {
                problems.push(match &source.map_entry {
                    Some(entry) => problem(
                        ColumnProblemKind::MapTarget {
                            entry: entry.clone(),
                            field: source.wanted.clone(),
                            candidates: Vec::new(),
                        },
                        suggestion,
                    ),
                    None => problem(ColumnProblemKind::Unknown, suggestion),
                });
                api_names.push(source.wanted.clone());
                continue;
            }
        };
        if source.fixed.is_none() && meta.api_name != *header {
            mapping.push(ColumnMapping {
                header: header.clone(),
                api_name: meta.api_name.clone(),
                by: if source.map_entry.is_some() {
                    MappedBy::Map
                } else {
                    MappedBy::Name
                },
            });
        }
        if let Some(other) = header_of.insert(&meta.api_name, header) {
            problems.push(problem(
                ColumnProblemKind::SameField {
                    other: other.to_string(),
                    api_name: meta.api_name.clone(),
                },
                None,
            ));
        }
        api_names.push(meta.api_name.clone());
    }
    (api_names, mapping, problems)
}

/// Without metadata a column is read as what it names (its map entry's field, else its
/// header), and only two columns naming one field can be found wrong.
fn map_headers_blind(
    sources: &[ColumnSource],
) -> (Vec<String>, Vec<ColumnMapping>, Vec<ColumnProblem>) {
    let mut header_of: HashMap<&str, &str> = HashMap::new();
    let mut mapping = Vec::new();
    let mut problems = Vec::new();
    for source in sources {
        if source.fixed.is_none() && source.wanted != source.header {
            mapping.push(ColumnMapping {
                header: source.header.clone(),
                api_name: source.wanted.clone(),
                by: MappedBy::Map,
            });
        }
        if let Some(other) = header_of.insert(&source.wanted, &source.header) {
            problems.push(ColumnProblem {
                column: source.header.clone(),
                reason: ColumnProblemKind::SameField {
                    other: other.to_string(),
                    api_name: source.wanted.clone(),
                },
                suggestion: None,
            });
        }
    }
    let api_names = sources.iter().map(|s| s.wanted.clone()).collect();
    (api_names, mapping, problems)
}

/// What to do about a column that names no field: leave it out, or say which field it is.
fn unknown_column_hint(column: &str) -> String {
    format!(
        "A column that is not for Zoho can be left out with --ignore-column {column:?}; one that names a field otherwise can be mapped to it with --map FILE (a TOML file: [columns] {column:?} = \"API_Name\"; `massup fields MODULE` lists the fields)."
    )
}

/// The columns as planned: how each is coerced, the header cells read as API names, and
/// the raw values of the `[set]` columns (which come after the sheet's).
struct Columns {
    plans: Vec<ColumnPlan>,
    mapping: Vec<ColumnMapping>,
    fixed: Vec<FixedColumn>,
}

/// A `[set]` column: its value, and the map entry that gave it, for messages.
struct FixedColumn {
    value: String,
    entry: String,
}

fn column_plans(
    names: &[String],
    settings: &PlanSettings,
    metadata: Option<&ModuleFields>,
    shown: &str,
    warnings: &mut Vec<String>,
) -> Result<Columns, PlanError> {
    let sources = column_sources(names, settings, warnings);
    let headers: Vec<String> = sources.iter().map(|s| s.header.clone()).collect();
    // With field metadata a header may name its fields by label: from here on columns are
    // API names, which is what is sent and stored.
    let (api_names, mapping, mut problems) = match metadata {
        Some(metadata) => map_headers(&sources, metadata),
        None => map_headers_blind(&sources),
    };
    for field in settings.types.keys() {
        if !headers.iter().chain(&api_names).any(|n| n == field) {
            warnings.push(format!("--type {field}=...: the CSV has no column {field}"));
        }
    }
    // Columns the API would refuse stop the plan. A column only mass_update refuses goes
    // through Update Records instead, unless --api mass rules that out.
    let mut update_only = std::collections::HashSet::new();
    if let Some(metadata) = metadata {
        let named = headers
            .iter()
            .zip(&api_names)
            .filter(|(header, _)| !problems.iter().any(|p| &p.column == *header));
        let (named_headers, resolved): (Vec<&String>, Vec<&String>) = named.unzip();
        let mut found = metadata.check_columns(resolved.iter().map(|n| n.as_str()));
        if settings.api != ApiChoice::Mass {
            found.retain(|p| {
                let only_mass_refuses = matches!(p.reason, ColumnProblemKind::NotMassUpdatable(_));
                if only_mass_refuses {
                    update_only.insert(p.column.clone());
                }
                !only_mass_refuses
            });
        }
        for mut problem in found {
            // Named as the header writes it, so it can be found in the file.
            if let Some(at) = resolved.iter().position(|n| **n == problem.column) {
                problem.column = named_headers[at].clone();
            }
            problems.push(problem);
        }
    }
    if !problems.is_empty() {
        // In header order, as the file shows them ([set] fields last).
        problems.sort_by_key(|p| headers.iter().position(|n| *n == p.column));
        let unknown = problems
            .iter()
            .find(|p| p.reason == ColumnProblemKind::Unknown);
        return Err(PlanError::Columns {
            path: shown.to_string(),
            module: settings.module.clone(),
            problems: problems.iter().map(|p| p.to_string()).collect(),
            hint: unknown.map(|p| unknown_column_hint(&p.column)),
        });
    }
    let update_everything = matches!(settings.api, ApiChoice::Update | ApiChoice::Bulk)
        || settings.trigger.as_ref().is_some_and(Vec::is_empty);
    let mut plans = Vec::with_capacity(sources.len());
    let mut fixed = Vec::new();
    for (source, name) in sources.iter().zip(&api_names) {
        let header = &source.header;
        let mut meta = match metadata.and_then(|m| m.get(name)) {
            Some(meta) => meta.clone(),
            // Without metadata a value is sent as the text it is.
            None => FieldMeta::new(name.clone(), FieldType::Other("text".into())),
        };
        // The type a Bulk Write CSV cell is judged by: an undo's JSON values (as Zoho
        // answered them) keep their field's type from the metadata.
        let mut bulk_type = metadata
            .and_then(|m| m.get(name))
            .map(|m| m.data_type.clone());
        if let Some(field_type) = settings
            .types
            .get(name)
            .or_else(|| settings.types.get(header))
        {
            meta.data_type = field_type.clone();
            if *field_type != FieldType::Json {
                bulk_type = Some(field_type.clone());
            }
        }
        let bulk = match &bulk_type {
            Some(t) => bulk_type_ok(t),
            // Without metadata a value is sent as the text it is.
            None => meta.data_type != FieldType::Json,
        };
        let route = if update_only.contains(name) {
            ColumnRoute::UpdateOnly
        } else if meta.data_type == FieldType::MultiSelect && !settings.over_write {
            ColumnRoute::MassOnly
        } else {
            ColumnRoute::Any
        };
        if route == ColumnRoute::MassOnly && update_everything {
            return Err(PlanError::Settings(SettingsError(format!(
                "{shown}: column {name} is a multi-select picklist that this plan appends to, which only mass_update does (Update Records replaces the values), but --api update, --api bulk or --trigger none sends everything per record: pass --over-write to replace the values, or use --api auto with the default --trigger"
            ))));
        }
        if let (Some(value), Some(entry)) = (&source.fixed, &source.map_entry) {
            fixed.push(FixedColumn {
                value: value.clone(),
                entry: entry.clone(),
            });
        }
        plans.push(ColumnPlan {
            bulk,
            name: name.clone(),
            shown: if header == name {
                name.clone()
            } else {
                format!("{header} ({name})")
            },
            meta,
            route,
            cache: FxHashMap::default(),
        });
    }
    Ok(Columns {
        plans,
        mapping,
        fixed,
    })
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
pub struct Planner {
    /// The sheet's field columns, then the `[set]` columns.
    columns: Vec<ColumnPlan>,
    /// How many of `columns` are the sheet's.
    sheet_columns: usize,
    /// The atoms of the `[set]` values, which every valid row gets.
    fixed_atoms: Vec<u32>,
    /// The `[set]` values as stored cells (`,"Partner"`), after the sheet's.
    fixed_cells_json: String,
    fixed_values: Vec<FixedValue>,
    /// Header cells read as other API names.
    mapping: Vec<ColumnMapping>,
    null_marker: String,
    field_limit: usize,
    chunk_size: usize,
    /// Every group goes through Update Records (--api update, or --trigger none).
    update_everything: bool,
    /// Every group goes through mass_update (--api mass).
    mass_everything: bool,
    /// Whether per-record changes may go in Bulk Write jobs.
    bulk: BulkUse,
    /// What the split between the two kinds minimises (`--optimize`).
    optimize: Optimize,
    coerce_options: CoerceOptions,
    /// With `--match-by`: the key cell names the record, through what the lookup found.
    matches: Option<Arc<Matches>>,
    /// `--create-missing`: rows whose key no record holds are created (see [`NewRecords`]).
    new_records: Option<NewRecords>,
    shown: String,
    file_size: u64,
    atoms: Vec<Atom>,
    /// Atom numbers hashed by (column, JSON): the text is kept once, in `atoms`.
    atom_index: HashTable<u32>,
    /// Atoms of each group, in column order.
    groups: Vec<Box<[u32]>>,
    /// Group numbers hashed by their atoms: the atoms are kept once, in `groups`.
    group_index: HashTable<u32>,
    /// Flat group ids of every row; row r owns `row_groups[row_start[r]..row_start[r + 1]]`.
    row_groups: Vec<u32>,
    row_start: Vec<u32>,
    row_record: Vec<i64>,
    /// Where each row starts.
    row_line: LineIndex,
    row_status: Vec<RowStatus>,
    /// The first row of each record id, as a table of row numbers hashed by their record
    /// id (`row_record` holds the id): 4 bytes a row instead of the 12 of an id -> row map,
    /// which is what lets 20 million rows plan in under 1 GB.
    by_record: HashTable<u32>,
    duplicates: FxHashMap<i64, Duplicates>,
    problems: Vec<RowProblem>,
    invalid_rows: u64,
    // Reused per-row buffers.
    row_atoms: Vec<u32>,
    part: Vec<u32>,
    errors: Vec<String>,
}

/// Where the rows come from, for messages and for sizing the per-row tables.
pub struct Source {
    /// The file as the user named it, for messages.
    pub shown: String,
    /// Its size in bytes (0 if unknown): the per-row tables are sized from it.
    pub size: u64,
}

impl Planner {
    /// A planner for a CSV whose field columns are `names`. With field metadata, columns
    /// the API would refuse stop the plan here, naming each. Notes for the user (a `--type`
    /// for a column the file lacks) are added to `warnings`.
    pub fn new(
        names: &[String],
        settings: &PlanSettings,
        metadata: Option<&ModuleFields>,
        source: Source,
        warnings: &mut Vec<String>,
    ) -> Result<Planner, PlanError> {
        let coerce_options = settings.check()?;
        let Columns {
            plans: columns,
            mapping,
            fixed,
        } = column_plans(names, settings, metadata, &source.shown, warnings)?;
        let (shown, file_size) = (source.shown, source.size);
        let mut fixed_cells_json = String::new();
        for column in &fixed {
            fixed_cells_json.push(',');
            push_json_string(&mut fixed_cells_json, &column.value);
        }
        let sheet_columns = columns.len() - fixed.len();
        let fixed_values = columns[sheet_columns..]
            .iter()
            .zip(&fixed)
            .map(|(plan, column)| FixedValue {
                field: plan.name.clone(),
                value: column.value.clone(),
            })
            .collect();
        let mut planner = Planner {
            sheet_columns,
            fixed_values,
            fixed_atoms: Vec::with_capacity(fixed.len()),
            fixed_cells_json,
            columns,
            mapping,
            null_marker: settings.null_marker.clone(),
            field_limit: settings.max_fields_per_call,
            update_everything: matches!(settings.api, ApiChoice::Update | ApiChoice::Bulk)
                || settings.trigger.as_ref().is_some_and(Vec::is_empty),
            mass_everything: settings.api == ApiChoice::Mass,
            bulk: settings.bulk_use(),
            optimize: settings.optimize,
            chunk_size: settings.chunk_size,
            coerce_options,
            matches: None,
            new_records: settings.create_missing.then(|| NewRecords {
                module: settings.module.clone(),
                mandatory: metadata.map(|m| m.mandatory().to_vec()).unwrap_or_default(),
                ..NewRecords::default()
            }),
            shown,
            file_size,
            atoms: Vec::new(),
            atom_index: HashTable::new(),
            groups: Vec::new(),
            group_index: HashTable::new(),
            row_groups: Vec::new(),
            row_start: vec![0],
            row_record: Vec::new(),
            row_line: LineIndex::default(),
            row_status: Vec::new(),
            by_record: HashTable::new(),
            duplicates: FxHashMap::default(),
            problems: Vec::new(),
            invalid_rows: 0,
            row_atoms: Vec::new(),
            part: Vec::new(),
            errors: Vec::new(),
        };
        // A `[set]` value is coerced once, here: one that its field refuses would make every
        // row invalid, so it stops the plan instead, naming the map's line.
        for (i, column) in fixed.iter().enumerate() {
            let at = planner.sheet_columns + i;
            let atom = planner
                .coerce_cell(at, column.value.as_bytes())
                .map_err(|e| {
                    SettingsError(format!("{} = {:?}: {e}", column.entry, column.value))
                })?;
            planner.fixed_atoms.push(atom);
        }
        Ok(planner)
    }

    /// Rows name their record by a key that `matches` resolves (`--match-by`), not by id.
    pub fn with_matches(mut self, matches: Arc<Matches>) -> Planner {
        self.matches = Some(matches);
        self
    }

    /// Number of field columns (the `[set]` fields included).
    pub fn columns(&self) -> usize {
        self.columns.len()
    }

    /// The values `--map`'s `[set]` gives every row.
    pub fn fixed_values(&self) -> &[FixedValue] {
        &self.fixed_values
    }

    /// The field columns' API names, in input order: what is stored as the run's columns.
    pub fn api_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// The header cells that were read as another API name (by label, case, spacing).
    pub fn mapping(&self) -> &[ColumnMapping] {
        &self.mapping
    }

    /// Checks and places one row; returns it as it is to be stored.
    pub fn plan_row(&mut self, row: &RawRow<'_>) -> NewRow {
        let verdict = self.verdict(row);
        let mut values_json = String::with_capacity(16 * self.columns.len());
        cells_json(row, self.sheet_columns, &mut values_json);
        // The stored row holds what is sent for it, under the run's columns ([set] values
        // after the sheet's; nothing to do, per row, without a map's [set]).
        if !self.fixed_cells_json.is_empty() {
            values_json.insert_str(values_json.len() - 1, &self.fixed_cells_json);
        }
        NewRow {
            row_no: verdict.row_no,
            line: row.line,
            record_id: lossy(row.id().trim_ascii()).into_owned(),
            values_json,
            status: verdict.status,
            message: verdict.message,
            merged_into: verdict.merged_into,
        }
    }

    fn verdict(&mut self, row: &RawRow<'_>) -> Verdict {
        let row_no = self.row_status.len() as u32;
        if row_no == ROWS_BEFORE_ESTIMATE && self.file_size > 0 {
            self.reserve_for_file(row.byte_offset());
        }
        self.row_line.push(row_no, row.line);
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
        self.row_status.reserve(rows);
        let records = &self.row_record;
        self.by_record
            .reserve(rows, |&r| FxBuildHasher.hash_one(records[r as usize]));
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
                row.header_len()
            ));
        }
        let record = match (&self.matches, &mut self.new_records) {
            (Some(matches), Some(new)) => match matches.resolve_key(row.id())? {
                KeyMatch::Found(id) => id,
                KeyMatch::Missing(key) => new.placeholder(key, matches, row.id()),
            },
            (Some(matches), None) => matches.resolve(row.id())?,
            (None, _) => parse_record_id(row.id())?,
        };
        self.row_atoms.clear();
        self.errors.clear();
        for column in 0..self.sheet_columns {
            let raw = row.field(column);
            if raw.iter().all(u8::is_ascii_whitespace) && !self.empty_is_false(column) {
                continue; // empty: leave the field unchanged
            }
            match self.atom_for(column, raw) {
                Ok(atom) => self.row_atoms.push(atom),
                Err(message) => self
                    .errors
                    .push(format!("column {}: {message}", self.columns[column].shown)),
            }
        }
        if !self.errors.is_empty() {
            return Err(self.errors.join("; "));
        }
        // After the sheet's columns, as the atoms of a group are in column order.
        self.row_atoms.extend_from_slice(&self.fixed_atoms);
        if self.row_atoms.is_empty() {
            return Err("nothing to update: every field cell is empty".into());
        }
        Ok(record)
    }

    /// With `--bool-x` a boolean column is a column of checkboxes: an empty cell is an
    /// unticked box (false), not a field left unchanged.
    fn empty_is_false(&self, column: usize) -> bool {
        self.coerce_options.bool_x && self.columns[column].meta.data_type == FieldType::Boolean
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
        crate::input::check_cell(raw)?;
        let text = std::str::from_utf8(raw).map_err(|e| {
            format!(
                "not valid UTF-8 (byte {} of the cell); save the file as UTF-8",
                e.valid_up_to() + 1
            )
        })?;
        let json = if text == self.null_marker {
            "null".to_string()
        } else {
            let value = fields::coerce(&self.columns[column].meta, text, &self.coerce_options)
                .map_err(|e| e.to_string())?;
            value.to_string()
        };
        let column = column as u16;
        let hash = FxBuildHasher.hash_one((column, json.as_str()));
        let atoms = &self.atoms;
        let same = |&a: &u32| {
            let atom = &atoms[a as usize];
            atom.column == column && atom.json == json
        };
        if let Some(&atom) = self.atom_index.find(hash, same) {
            return Ok(atom);
        }
        let atom = self.atoms.len() as u32;
        self.atoms.push(Atom { column, json });
        let atoms = &self.atoms;
        self.atom_index.insert_unique(hash, atom, |&a| {
            let atom = &atoms[a as usize];
            FxBuildHasher.hash_one((atom.column, atom.json.as_str()))
        });
        Ok(atom)
    }

    /// Places a valid row: registers its record id, handles duplicates, records its groups.
    fn place(&mut self, row_no: u32, line: u64, record: i64) -> Verdict {
        let hash = FxBuildHasher.hash_one(record);
        let records = &self.row_record;
        let first = self
            .by_record
            .find(hash, |&r| records[r as usize] == record)
            .copied();
        let Some(first) = first else {
            self.row_record.push(record);
            let records = &self.row_record;
            self.by_record.insert_unique(hash, row_no, |&r| {
                FxBuildHasher.hash_one(records[r as usize])
            });
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
        let first_line = self.row_line.line(first);
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
                        (atom, self.row_line.line(r)),
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
                        "{} gets {} = {} on line {other_line} but {} on line {line}",
                        self.record_named(record),
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
        let has_update_only = atoms.iter().any(|&a| {
            self.columns[self.atoms[a as usize].column as usize].route == ColumnRoute::UpdateOnly
        });
        if !has_update_only {
            for part in atoms.chunks(self.field_limit) {
                self.push_part(part);
            }
            return;
        }
        // Values only Update Records can carry are parts of their own: their groups all go
        // that way, and the other values keep their mass_update groups.
        let (update_only, others): (Vec<u32>, Vec<u32>) = atoms.iter().partition(|&&a| {
            self.columns[self.atoms[a as usize].column as usize].route == ColumnRoute::UpdateOnly
        });
        for part in others.chunks(self.field_limit) {
            self.push_part(part);
        }
        for &atom in &update_only {
            self.push_part(&[atom]);
        }
    }

    fn push_part(&mut self, part: &[u32]) {
        self.part.clear();
        self.part.extend_from_slice(part);
        let hash = FxBuildHasher.hash_one(self.part.as_slice());
        let (groups, part) = (&self.groups, &self.part);
        let found = self
            .group_index
            .find(hash, |&g| groups[g as usize][..] == part[..])
            .copied();
        let group = match found {
            Some(g) => g,
            None => {
                let g = self.groups.len() as u32;
                self.groups.push(self.part.as_slice().into());
                let groups = &self.groups;
                self.group_index.insert_unique(hash, g, |&g| {
                    FxBuildHasher.hash_one(&groups[g as usize][..])
                });
                g
            }
        };
        self.row_groups.push(group);
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

    /// Settles duplicates (every row of a record id with conflicting values becomes
    /// invalid) and orders the items by group, so that the items of a chunk are contiguous.
    pub fn finish(mut self) -> PlannedCalls {
        let mut conflicts = Vec::new();
        let mut conflict_problems = Vec::new();
        for duplicates in self.duplicates.values() {
            let Some(conflict) = &duplicates.conflict else {
                continue;
            };
            let lines: Vec<String> = duplicates
                .rows
                .iter()
                .map(|&r| self.row_line.line(r).to_string())
                .collect();
            let message = if self.row_record[duplicates.rows[0] as usize] < 0 {
                format!(
                    "conflicting rows for one new record: {conflict}; no record is created for this key (lines {}): make the rows agree or keep one",
                    lines.join(", ")
                )
            } else {
                format!(
                    "conflicting duplicate: {conflict}; every row of this record id is left out (lines {})",
                    lines.join(", ")
                )
            };
            for &r in &duplicates.rows {
                if self.row_status[r as usize] != RowStatus::Invalid {
                    self.invalid_rows += 1;
                }
                self.row_status[r as usize] = RowStatus::Invalid;
                conflicts.push((r, message.clone()));
                conflict_problems.push(RowProblem {
                    path: self.shown.clone(),
                    line: self.row_line.line(r),
                    message: message.clone(),
                });
            }
        }
        self.refuse_incomplete_new_records(&mut conflicts, &mut conflict_problems);
        let mut problems = std::mem::take(&mut self.problems);
        problems.extend(conflict_problems);
        problems.sort_by_key(|p| p.line);
        problems.truncate(PROBLEMS_SHOWN);

        // Count the ids of each group, then order rows by group (a counting sort).
        let mut counts = vec![0u32; self.groups.len()];
        let rows = self.row_status.len();
        // Rows that create a record go by Upsert Records (see `upsert_batches`), not in
        // the groups of updates.
        let grouped =
            |r: usize| self.row_status[r] != RowStatus::Invalid && self.row_record[r] >= 0;
        for r in 0..rows {
            if grouped(r) {
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
            if grouped(r) {
                for &g in self.row_group_ids(r as u32) {
                    ordered[fill[g as usize] as usize] = r as u32;
                    fill[g as usize] += 1;
                }
            }
        }
        let routes = self.routes(&counts, &ordered, &offsets);
        let (mut groups, mut mass_calls, mut min_calls) = (0u64, 0u64, 0u64);
        for (g, &count) in counts.iter().enumerate() {
            if count > 0 {
                groups += 1;
                if routes.of[g] == Route::Mass {
                    mass_calls += (count as usize).div_ceil(self.chunk_size) as u64;
                    min_calls += (count as usize).div_ceil(MAX_IDS_PER_CALL) as u64;
                }
            }
        }
        let (bulk_jobs, update_batches) = self.update_batches(&routes.of, &ordered, &offsets);
        let bulk_records: usize = bulk_jobs.iter().map(Vec::len).sum();
        let bulk_write_jobs = bulk_jobs.len() as u64;
        let bulk_credits = bulk_write_jobs * BULK_WRITE_JOB_CREDITS;
        let update_calls = update_batches.len() as u64;
        let update_records: usize = update_batches.iter().map(Vec::len).sum();
        // What the batches as cut cost (which is ceil(records / 10), see update_batch_sizes).
        let update_credits: u64 = update_batches
            .iter()
            .map(|batch| credits(CallKind::UpdateRecords, batch.len()))
            .sum();
        debug_assert_eq!(
            update_credits,
            batched_update_credits(update_records as u64)
        );
        let upsert_batches = self.upsert_batches();
        let upsert_calls = upsert_batches.len() as u64;
        let created_records: u64 = upsert_batches.iter().map(|b| b.len() as u64).sum();
        let upsert_credits: u64 = upsert_batches
            .iter()
            .map(|batch| credits(CallKind::UpsertRecords, batch.len()))
            .sum();
        let mass_credits = mass_calls * credits(CallKind::MassUpdate, self.chunk_size);
        let min_mass_credits = min_calls * credits(CallKind::MassUpdate, MAX_IDS_PER_CALL);
        let merged_rows = self
            .row_status
            .iter()
            .filter(|s| **s == RowStatus::Merged)
            .count() as u64;
        let totals = PlanTotals {
            input_rows: rows as u64,
            valid_rows: rows as u64 - self.invalid_rows - merged_rows,
            invalid_rows: self.invalid_rows,
            merged_rows,
            groups,
            calls: mass_calls + update_calls + bulk_write_jobs + upsert_calls,
            min_calls: min_calls + update_calls + bulk_write_jobs + upsert_calls,
            mass_update_calls: mass_calls,
            update_records_calls: update_calls,
            all_mass_update_calls: routes.all_mass.map(|c| c.calls),
            all_update_records_calls: routes.all_update.map(|c| c.calls),
            optimize: self.optimize,
            credits: mass_credits + update_credits + bulk_credits + upsert_credits,
            min_credits: min_mass_credits
                + batched_update_credits(update_records as u64)
                + bulk_credits
                + batched_update_credits(created_records),
            mass_update_credits: mass_credits,
            update_records_credits: update_credits,
            bulk_write_jobs,
            bulk_write_records: bulk_records as u64,
            bulk_write_credits: bulk_credits,
            all_mass_update_credits: routes.all_mass.map(|c| c.credits),
            all_update_records_credits: routes.all_update.map(|c| c.credits),
            create_records: created_records,
            upsert_records_calls: upsert_calls,
            upsert_records_credits: upsert_credits,
        };
        PlannedCalls {
            routes: routes.of,
            update_batches,
            bulk_jobs,
            upsert_batches,
            planner: self,
            ordered,
            offsets,
            conflicts,
            problems,
            totals,
        }
    }

    /// The row that carries a record's changes: its first valid row (merged rows ride
    /// with it).
    fn owner(&self, row: u32) -> u32 {
        if self.duplicates.is_empty() {
            return row; // every record has one row (the usual file)
        }
        let record = self.row_record[row as usize];
        let records = &self.row_record;
        self.by_record
            .find(FxBuildHasher.hash_one(record), |&r| {
                records[r as usize] == record
            })
            .copied()
            .unwrap_or(row)
    }

    /// Decides which kind of call carries each group. Groups that only one kind can carry
    /// go that way. The others are sent by mass_update when large and by Update Records
    /// when small: of all the thresholds "groups below this size go in update batches",
    /// the one with the fewest credits is chosen, the fewest calls breaking ties
    /// (`--optimize calls` turns the order round). Moving a group to the batches saves its
    /// mass_update calls (one credit each) and costs only the records not already in a
    /// batch: N records in batches cost ceil(N / 10) credits in ceil(N / 100) calls, as
    /// `update_batch_sizes` cuts them. So each threshold's cost is known exactly from the
    /// count of records in batches, and the scan over groups by size finds the cheapest
    /// threshold exactly; it includes "none" (all mass_update) and "all" (all Update
    /// Records), so the plan never costs more credits (or, optimising calls, needs more
    /// calls) than the better of the two.
    fn routes(&self, counts: &[u32], ordered: &[u32], offsets: &[u32]) -> Routes {
        let rows_of = |g: usize| &ordered[offsets[g] as usize..offsets[g + 1] as usize];
        let class = |g: usize| {
            let mut class = Route::Flexible;
            for &atom in self.groups[g].iter() {
                match self.columns[self.atoms[atom as usize].column as usize].route {
                    ColumnRoute::UpdateOnly => return Route::Update,
                    ColumnRoute::MassOnly => class = Route::Mass,
                    ColumnRoute::Any => {}
                }
            }
            class
        };
        let live: Vec<usize> = (0..counts.len()).filter(|&g| counts[g] > 0).collect();
        // mass_update calls of a group; each costs one credit.
        let mass_cost = |g: usize| (counts[g] as usize).div_ceil(self.chunk_size) as u64;
        let mass_credit = credits(CallKind::MassUpdate, self.chunk_size);
        // A candidate: `mass` mass_update calls and `records` records sent per record (in
        // update batches, or Bulk Write jobs where those cost less).
        let cost = |mass: u64, records: u64| {
            let per_record = self.per_record_cost(records);
            Cost {
                credits: mass * mass_credit + per_record.credits,
                calls: mass + per_record.calls,
                jobs: per_record.jobs,
            }
        };
        // The records with any change, for the all-Update-Records alternative.
        let mut owners = vec![false; self.row_record.len()];
        let mut all_records = 0u64;
        for &g in &live {
            for &r in rows_of(g) {
                let o = self.owner(r) as usize;
                if !owners[o] {
                    owners[o] = true;
                    all_records += 1;
                }
            }
        }
        let classes: Vec<Route> = (0..counts.len()).map(class).collect();
        let all_mass = live
            .iter()
            .all(|&g| classes[g] != Route::Update)
            .then(|| cost(live.iter().map(|&g| mass_cost(g)).sum::<u64>(), 0));
        // The all-Update-Records alternative is priced as that kind alone (no jobs).
        let all_update = live
            .iter()
            .all(|&g| classes[g] != Route::Mass)
            .then(|| Cost {
                credits: batched_update_credits(all_records),
                calls: all_records.div_ceil(MAX_RECORDS_PER_UPDATE as u64),
                jobs: 0,
            });
        let mut of: Vec<Route> = classes
            .iter()
            .map(|&c| match c {
                Route::Flexible if self.update_everything => Route::Update,
                Route::Flexible if self.mass_everything => Route::Mass,
                c => c,
            })
            .collect();
        if !self.update_everything && !self.mass_everything {
            let mut in_update = vec![false; self.row_record.len()];
            let mut records = 0u64;
            let mark = |g: usize, in_update: &mut Vec<bool>, records: &mut u64| {
                for &r in rows_of(g) {
                    let o = self.owner(r) as usize;
                    if !in_update[o] {
                        in_update[o] = true;
                        *records += 1;
                    }
                }
            };
            let mut mass = 0u64;
            for &g in &live {
                match of[g] {
                    Route::Update => mark(g, &mut in_update, &mut records),
                    _ => mass += mass_cost(g),
                }
            }
            let mut flexible: Vec<usize> = live
                .iter()
                .copied()
                .filter(|&g| of[g] == Route::Flexible)
                .collect();
            flexible.sort_by_key(|&g| (counts[g], g));
            // Full ties keep the earlier threshold (fewer groups moved). Optimising calls,
            // a later threshold with as many calls never has fewer credits (the batches'
            // credits, per 10 records, grow at least as fast as their calls, per 100), so
            // there the second key only states the rule.
            let key = |c: Cost| {
                let (first, second) = self.optimize.key(c.credits, c.calls);
                (first, c.jobs, second)
            };
            let (mut best, mut best_k) = (key(cost(mass, records)), 0);
            for (k, &g) in flexible.iter().enumerate() {
                mass -= mass_cost(g);
                mark(g, &mut in_update, &mut records);
                let candidate = key(cost(mass, records));
                if candidate < best {
                    (best, best_k) = (candidate, k + 1);
                }
            }
            for (k, &g) in flexible.iter().enumerate() {
                of[g] = if k < best_k {
                    Route::Update
                } else {
                    Route::Mass
                };
            }
        }
        for route in &mut of {
            if *route == Route::Flexible {
                *route = Route::Mass; // empty groups
            }
        }
        Routes {
            of,
            all_mass,
            all_update,
        }
    }

    /// What `records` records sent per record cost: Update Records batches, or as many
    /// Bulk Write jobs as cost less (see [`bulk_job_sizes`]), assuming every record can go
    /// in a job (the split by what a job can carry comes after the routes).
    fn per_record_cost(&self, records: u64) -> Cost {
        let update = Cost {
            credits: batched_update_credits(records),
            calls: records.div_ceil(MAX_RECORDS_PER_UPDATE as u64),
            jobs: 0,
        };
        if self.bulk != BulkUse::ByCost {
            return update;
        }
        let (jobs, rest) = bulk_job_sizes(records as usize, MAX_RECORDS_PER_BULK_JOB);
        let jobs = jobs.len() as u64;
        Cost {
            credits: jobs * BULK_WRITE_JOB_CREDITS + batched_update_credits(rest as u64),
            calls: jobs * BULK_CALLS_PER_JOB
                + (rest as u64).div_ceil(MAX_RECORDS_PER_UPDATE as u64),
            jobs,
        }
    }

    /// Splits the per-record changes between Bulk Write jobs and Update Records batches.
    /// A job's CSV has one column per field for every row, so records go in jobs by the set
    /// of fields they change (their signature), and only when every value is one a CSV
    /// cell carries as is; of each signature's records, as many go in jobs as cost fewer
    /// credits than Update Records would (all of them with `--api bulk`).
    fn split_bulk(
        &self,
        records: Vec<(Member, String)>,
        signatures: Vec<u32>,
    ) -> (Vec<Batch>, Batch) {
        if self.bulk == BulkUse::Never || records.is_empty() {
            return (Vec::new(), records);
        }
        // Records of each signature (u32::MAX: not for a job), with their largest object.
        let mut by_signature: FxHashMap<u32, (Vec<usize>, usize)> = FxHashMap::default();
        for (i, &sig) in signatures.iter().enumerate() {
            if sig != u32::MAX {
                let entry = by_signature.entry(sig).or_default();
                entry.0.push(i);
                entry.1 = entry.1.max(records[i].1.len());
            }
        }
        let mut in_job = vec![false; records.len()];
        let mut job_members: Vec<Vec<usize>> = Vec::new();
        let mut signatures: Vec<_> = by_signature.into_iter().collect();
        signatures.sort_unstable_by_key(|(sig, _)| *sig);
        for (_, (members, widest)) in signatures {
            // An object's JSON is longer than its CSV row (keys, quotes); the id adds 20.
            let cap = (MAX_BULK_CSV_BYTES / (widest + 21)).clamp(1, MAX_RECORDS_PER_BULK_JOB);
            let sizes = match self.bulk {
                BulkUse::Always => {
                    let all: Vec<()> = vec![(); members.len()];
                    balanced_chunks(&all, cap).map(<[()]>::len).collect()
                }
                _ => bulk_job_sizes(members.len(), cap).0,
            };
            let mut at = 0;
            for size in sizes {
                let job: Vec<usize> = members[at..at + size].to_vec();
                for &i in &job {
                    in_job[i] = true;
                }
                job_members.push(job);
                at += size;
            }
        }
        if job_members.is_empty() {
            return (Vec::new(), records);
        }
        let mut slots: Vec<Option<(Member, String)>> = records.into_iter().map(Some).collect();
        let jobs = job_members
            .into_iter()
            .map(|job| {
                job.into_iter()
                    .map(|i| slots[i].take().expect("each record in one job"))
                    .collect()
            })
            .collect();
        let rest = slots
            .into_iter()
            .zip(in_job)
            .filter_map(|(slot, taken)| if taken { None } else { slot })
            .collect();
        (jobs, rest)
    }

    /// The per-record calls: every record with a change in a group routed there, with all
    /// those changes in one object; in Bulk Write jobs where they cost less (see
    /// [`Planner::split_bulk`]), the rest in Update Records batches of at most 100.
    fn update_batches(
        &self,
        routes: &[Route],
        ordered: &[u32],
        offsets: &[u32],
    ) -> (Vec<Batch>, Vec<Batch>) {
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for (g, &route) in routes.iter().enumerate() {
            if route != Route::Update {
                continue;
            }
            for &r in &ordered[offsets[g] as usize..offsets[g + 1] as usize] {
                pairs.push((self.owner(r), g as u32));
            }
        }
        if pairs.is_empty() {
            return (Vec::new(), Vec::new());
        }
        pairs.sort_unstable();
        let mut records: Vec<(Member, String)> = Vec::new();
        // Each record's signature for Bulk Write (its fields, interned), or u32::MAX when
        // a job cannot carry one of its values.
        let bulk = self.bulk != BulkUse::Never;
        let column_ok: Vec<bool> = (0..self.columns.len())
            .map(|c| bulk && self.columns[c].bulk)
            .collect();
        let mut signatures: Vec<u32> = Vec::new();
        let mut interned: FxHashMap<Vec<u16>, u32> = FxHashMap::default();
        let mut fields: Vec<u16> = Vec::new();
        let mut at = 0;
        while at < pairs.len() {
            let owner = pairs[at].0;
            let mut object = String::from("{");
            let mut carried = bulk;
            fields.clear();
            while at < pairs.len() && pairs[at].0 == owner {
                let group = pairs[at].1;
                if carried {
                    for &atom in self.groups[group as usize].iter() {
                        let atom = &self.atoms[atom as usize];
                        carried &= column_ok[atom.column as usize] && bulk_cell(&atom.json);
                        fields.push(atom.column);
                    }
                }
                let body = self.payload_json(group);
                let inner = &body[1..body.len() - 1];
                if object.len() > 1 && !inner.is_empty() {
                    object.push(',');
                }
                object.push_str(inner);
                at += 1;
            }
            object.push('}');
            let member = Member {
                row_no: owner,
                record_id: self.row_record[owner as usize],
            };
            records.push((member, object));
            if bulk {
                signatures.push(if carried {
                    fields.sort_unstable();
                    let next = interned.len() as u32;
                    *interned.entry(fields.clone()).or_insert(next)
                } else {
                    u32::MAX
                });
            }
        }
        let (jobs, records) = self.split_bulk(records, signatures);
        // Cut into batches billed at the fewest credits, moving the records (no copy of
        // their objects).
        let mut records = records.into_iter();
        let batches = update_batch_sizes(records.len())
            .map(|size| records.by_ref().take(size).collect())
            .collect();
        (jobs, batches)
    }
}

/// Records with their objects of fields: an Update Records batch, a Bulk Write job.
pub type Batch = Vec<(Member, String)>;

impl Planner {
    /// A record as messages name it: its id, or the new record a key would create.
    fn record_named(&self, record: i64) -> String {
        match &self.new_records {
            Some(new) if record < 0 => new.named(record),
            _ => format!("record id {record}"),
        }
    }

    /// `--create-missing`: a new record needs a value for every mandatory field of the
    /// module (from the field metadata; Zoho refuses it with MANDATORY_NOT_FOUND
    /// otherwise). Every row of a new key whose rows together leave one empty is refused
    /// here, before anything is sent, naming the column; the other rows still go.
    fn refuse_incomplete_new_records(
        &mut self,
        refused: &mut Vec<(u32, String)>,
        problems: &mut Vec<RowProblem>,
    ) {
        let Some(new) = &self.new_records else {
            return;
        };
        if new.mandatory.is_empty() || new.keys.is_empty() {
            return;
        }
        // Rows of each new record (its first row owns it; merged rows add columns).
        let mut rows_of: FxHashMap<i64, Vec<u32>> = FxHashMap::default();
        for r in 0..self.row_status.len() {
            let record = self.row_record[r];
            if record < 0 && self.row_status[r] != RowStatus::Invalid {
                rows_of.entry(record).or_default().push(r as u32);
            }
        }
        let sheet_names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        let mut records: Vec<(i64, Vec<u32>)> = rows_of.into_iter().collect();
        records.sort_unstable_by_key(|(_, rows)| rows[0]);
        for (record, rows) in records {
            let mut present: std::collections::HashSet<&str> = std::collections::HashSet::new();
            present.insert(new.key_field.as_str());
            for &r in &rows {
                for &g in self.row_group_ids(r) {
                    for &atom in self.groups[g as usize].iter() {
                        let atom = &self.atoms[atom as usize];
                        if atom.json != "null" {
                            present.insert(self.columns[atom.column as usize].name.as_str());
                        }
                    }
                }
            }
            let missing: Vec<&String> = new
                .mandatory
                .iter()
                .filter(|f| !present.contains(f.as_str()))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let described: Vec<String> = missing
                .iter()
                .map(|f| {
                    if sheet_names.contains(&f.as_str()) {
                        format!("column {f} is empty")
                    } else {
                        format!("the sheet has no column {f}")
                    }
                })
                .collect();
            let message = format!(
                "{} cannot be created: {} ({} mandatory for a new {} record); give {} a value or leave the row out",
                new.named(record),
                described.join(", "),
                missing.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", "),
                new.module,
                if missing.len() == 1 { "it" } else { "them" },
            );
            for &r in &rows {
                self.row_status[r as usize] = RowStatus::Invalid;
                self.invalid_rows += 1;
                refused.push((r, message.clone()));
                problems.push(RowProblem {
                    path: self.shown.clone(),
                    line: self.row_line.line(r),
                    message: message.clone(),
                });
            }
        }
    }

    /// `--create-missing`'s Upsert Records calls: every new record with all its rows'
    /// values in one object, the key field first, in batches of at most 100 billed at the
    /// fewest credits (as Update Records batches).
    fn upsert_batches(&self) -> Vec<Vec<(Member, String)>> {
        let Some(new) = &self.new_records else {
            return Vec::new();
        };
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for r in 0..self.row_status.len() {
            if self.row_record[r] < 0 && self.row_status[r] != RowStatus::Invalid {
                let owner = self.owner(r as u32);
                for &g in self.row_group_ids(r as u32) {
                    pairs.push((owner, g));
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut records: Vec<(Member, String)> = Vec::new();
        let mut at = 0;
        while at < pairs.len() {
            let owner = pairs[at].0;
            let record = self.row_record[owner as usize];
            let mut object = String::from("{");
            let mut has_key = false;
            let mut inner_parts = Vec::new();
            while at < pairs.len() && pairs[at].0 == owner {
                let body = self.payload_json(pairs[at].1);
                let inner = body[1..body.len() - 1].to_string();
                has_key |= self.groups[pairs[at].1 as usize].iter().any(|&a| {
                    self.columns[self.atoms[a as usize].column as usize].name == new.key_field
                });
                if !inner.is_empty() {
                    inner_parts.push(inner);
                }
                at += 1;
            }
            if !has_key {
                object.push_str(&serde_json::to_string(&new.key_field).expect("string"));
                object.push(':');
                object.push_str(&new.value(record).to_string());
                if !inner_parts.is_empty() {
                    object.push(',');
                }
            }
            object.push_str(&inner_parts.join(","));
            object.push('}');
            records.push((
                Member {
                    row_no: owner,
                    record_id: record,
                },
                object,
            ));
        }
        let mut records = records.into_iter();
        billed_chunk_sizes(
            records.len(),
            crate::api::limits::MAX_RECORDS_PER_UPSERT,
            RECORDS_PER_WRITE_CREDIT,
        )
        .map(|size| records.by_ref().take(size).collect())
        .collect()
    }
}

/// `--create-missing`: the keys no record held when planned, each standing for the record
/// it creates by a placeholder id below zero (-1 for the first new key, -2 for the next):
/// rows of one new key are then one record to the planner, merged when their values agree
/// and refused, naming both lines, when they do not, exactly as rows of one record id are.
#[derive(Default)]
struct NewRecords {
    module: String,
    /// The key field (`--match-by`), written into every record created.
    key_field: String,
    /// Fields a new record needs (from the metadata; empty without it).
    mandatory: Vec<String>,
    /// Normalised key -> placeholder.
    keys: FxHashMap<String, i64>,
    /// The key's value in the record, by placeholder (-1 at 0): as its first row writes it.
    values: Vec<serde_json::Value>,
}

impl NewRecords {
    fn placeholder(&mut self, key: String, matches: &Matches, raw: &[u8]) -> i64 {
        if self.key_field.is_empty() {
            self.key_field = matches.field().api_name().to_string();
        }
        if let Some(&id) = self.keys.get(&key) {
            return id;
        }
        let value = std::str::from_utf8(raw)
            .ok()
            .and_then(|text| matches.field().json_value(text))
            .unwrap_or_else(|| serde_json::Value::String(key.clone()));
        self.values.push(value);
        let id = -(self.values.len() as i64);
        self.keys.insert(key, id);
        id
    }

    fn value(&self, placeholder: i64) -> &serde_json::Value {
        &self.values[(-placeholder - 1) as usize]
    }

    /// `the new record Email = "a@x.com"`.
    fn named(&self, placeholder: i64) -> String {
        format!(
            "the new {} record {} = {}",
            self.module,
            self.key_field,
            self.value(placeholder)
        )
    }
}

/// Which kind of call carries a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Mass,
    Update,
    /// Either; decided by what it costs.
    Flexible,
}

/// What a candidate split costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cost {
    credits: u64,
    calls: u64,
    /// Bulk Write jobs: between plans of equal credits, fewer jobs win before fewer calls
    /// (a job is asynchronous, and cannot turn automation off).
    jobs: u64,
}

struct Routes {
    of: Vec<Route>,
    /// The single-kind alternatives (None when some column rules the kind out).
    all_mass: Option<Cost>,
    all_update: Option<Cost>,
}

/// The line where each row starts, kept as the runs over which `line - row_no` is the
/// same: in most files that is one run (a header, then a row a line), so the index costs
/// nothing per row; quoted line breaks or blank lines start a new run.
#[derive(Default)]
struct LineIndex {
    /// (first row of the run, line - row_no over the run), rows ascending.
    runs: Vec<(u32, u64)>,
}

impl LineIndex {
    fn push(&mut self, row_no: u32, line: u64) {
        let offset = line.saturating_sub(u64::from(row_no));
        if self.runs.last().is_none_or(|&(_, o)| o != offset) {
            self.runs.push((row_no, offset));
        }
    }

    fn line(&self, row_no: u32) -> u64 {
        let at = self.runs.partition_point(|&(first, _)| first <= row_no);
        let offset = at.checked_sub(1).map_or(0, |i| self.runs[i].1);
        u64::from(row_no) + offset
    }
}

/// What a plan counted. Credits are Zoho's API credits (`api::limits::credits`): a
/// mass_update call costs one, an Update Records call one per started 10 records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PlanTotals {
    pub input_rows: u64,
    pub valid_rows: u64,
    pub invalid_rows: u64,
    pub merged_rows: u64,
    pub groups: u64,
    /// Calls of both kinds.
    pub calls: u64,
    /// The least calls for this plan's split: ceil(ids / 500) per mass_update group plus
    /// the Update Records batches.
    pub min_calls: u64,
    pub mass_update_calls: u64,
    pub update_records_calls: u64,
    /// The alternatives: every change by mass_update, or by Update Records (None when
    /// some column rules that kind out).
    pub all_mass_update_calls: Option<u64>,
    pub all_update_records_calls: Option<u64>,
    /// What the split between the kinds minimised (`--optimize`).
    pub optimize: Optimize,
    /// The write calls' credits, both kinds (lookups and snapshot reads are counted apart).
    pub credits: u64,
    /// A lower bound of the write credits for this plan's split, as `min_calls` is of its
    /// calls: one credit per 500 ids of each mass_update group (Zoho's limit, whatever
    /// `--chunk-size` says) plus ceil(records / 10) for the records in Update Records
    /// batches (Zoho bills started tens of records). The plan's batches are cut to reach
    /// it, so `credits` equals it unless `--chunk-size` is below 500. It bounds this
    /// split only; another split can cost less when the plan optimises calls or forces a
    /// kind with `--api` (see the all_* alternatives).
    pub min_credits: u64,
    pub mass_update_credits: u64,
    pub update_records_credits: u64,
    /// The alternatives in credits (None when some column rules that kind out).
    pub all_mass_update_credits: Option<u64>,
    pub all_update_records_credits: Option<u64>,
    /// Bulk Write jobs (500 credits each, whatever their size), and the records in them.
    /// Each job also makes a few one-credit calls (its upload, status polls, result), which
    /// are counted with the reads, not here.
    pub bulk_write_jobs: u64,
    pub bulk_write_records: u64,
    pub bulk_write_credits: u64,
    /// `--create-missing`: records the plan creates (rows whose key no record holds, rows
    /// of one new key counted once), the Upsert Records calls that carry them and their
    /// credits (included in `calls` and `credits`).
    #[serde(skip_serializing_if = "is_zero")]
    pub create_records: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub upsert_records_calls: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub upsert_records_credits: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A finished plan: totals, rows that turned out invalid, and the groups with their chunks.
pub struct PlannedCalls {
    planner: Planner,
    routes: Vec<Route>,
    /// Update Records calls: each record with its object of fields.
    pub update_batches: Vec<Vec<(Member, String)>>,
    /// Bulk Write jobs: each record with its object of fields (a CSV row at send time).
    pub bulk_jobs: Vec<Vec<(Member, String)>>,
    /// `--create-missing`'s Upsert Records calls: each new record (its first row, and a
    /// placeholder id below zero until Zoho gives it one) with its object of fields, the
    /// key field included.
    pub upsert_batches: Vec<Vec<(Member, String)>>,
    /// Row numbers ordered by group; group g owns `ordered[offsets[g]..offsets[g + 1]]`.
    ordered: Vec<u32>,
    offsets: Vec<u32>,
    /// Rows found invalid only at the end (conflicting duplicates), with their message.
    pub conflicts: Vec<(u32, String)>,
    /// The first problems, for the summary (the store keeps every row's message).
    pub problems: Vec<RowProblem>,
    pub totals: PlanTotals,
}

impl PlannedCalls {
    /// The mass_update groups that kept at least one item, in the order they were first
    /// seen.
    pub fn groups(&self) -> impl Iterator<Item = PlannedGroup<'_>> {
        (0..self.planner.groups.len()).filter_map(move |g| {
            let rows = &self.ordered[self.offsets[g] as usize..self.offsets[g + 1] as usize];
            (!rows.is_empty() && self.routes[g] == Route::Mass).then_some(PlannedGroup {
                plan: self,
                index: g as u32,
                rows,
            })
        })
    }
}

/// One request body and the rows that get it.
pub struct PlannedGroup<'a> {
    plan: &'a PlannedCalls,
    index: u32,
    rows: &'a [u32],
}

impl PlannedGroup<'_> {
    /// The object sent as the body's `data[0]`.
    pub fn payload_json(&self) -> String {
        self.plan.planner.payload_json(self.index)
    }

    pub fn items(&self) -> usize {
        self.rows.len()
    }

    /// The group's chunks: the fewest of at most the chunk size, as even as possible.
    pub fn chunks(&self) -> impl Iterator<Item = Vec<Member>> + '_ {
        let records = &self.plan.planner.row_record;
        balanced_chunks(self.rows, self.plan.planner.chunk_size).map(move |chunk| {
            chunk
                .iter()
                .map(|&r| Member {
                    row_no: r,
                    record_id: records[r as usize],
                })
                .collect()
        })
    }
}

/// Credits of `records` records sent by Update Records in batches cut by
/// [`update_batch_sizes`]: ceil(records / 10), the least any cut can cost.
pub fn batched_update_credits(records: u64) -> u64 {
    records.div_ceil(RECORDS_PER_WRITE_CREDIT as u64)
}

/// Calls a Bulk Write job makes besides its creation, roughly: the upload, a status poll
/// or two, the result's download (for `--optimize calls`-style tie breaks only).
const BULK_CALLS_PER_JOB: u64 = 4;

/// How `records` records sent per record split between Bulk Write jobs of at most `cap`
/// records and Update Records: the job sizes (as even as possible) and the records left
/// for Update Records. A job costs 500 credits and Update Records one per 10 records, so
/// every full job is worth it, and the remainder goes in one more job only when Update
/// Records would cost more than the job (more than 5,000 records; a tie stays with Update
/// Records, which is synchronous and can turn automation off). Fewer than 5,001 records
/// make no job at all.
pub fn bulk_job_sizes(records: usize, cap: usize) -> (Vec<usize>, usize) {
    let cap = cap.max(1);
    let (full, rest) = (records / cap, records % cap);
    let (jobs, in_jobs) = if batched_update_credits(rest as u64) > BULK_WRITE_JOB_CREDITS {
        (full + 1, records)
    } else {
        (full, records - rest)
    };
    let all: Vec<()> = vec![(); in_jobs];
    let sizes = if jobs == 0 {
        Vec::new()
    } else {
        balanced_chunks(&all, in_jobs.div_ceil(jobs))
            .map(<[()]>::len)
            .collect()
    };
    (sizes, records - in_jobs)
}

/// Whether a Bulk Write CSV can carry a field type's values as Update Records would send
/// them: text, numbers, booleans, picklists. Dates and date-times (whose CSV format a job
/// would need told), lookups, and types massup does not know stay with Update Records.
fn bulk_type_ok(field_type: &FieldType) -> bool {
    match field_type {
        FieldType::Text
        | FieldType::TextArea
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Website
        | FieldType::Picklist
        | FieldType::MultiSelect
        | FieldType::Integer
        | FieldType::BigInt
        | FieldType::Double
        | FieldType::Currency
        | FieldType::Percent
        | FieldType::Decimal
        | FieldType::Boolean => true,
        // What a value without metadata is read as: its text.
        FieldType::Other(t) => t == "text",
        _ => false,
    }
}

/// Whether an atom's JSON value goes in a CSV cell as Update Records would send it: a
/// string, number, boolean or null (an empty cell), or a multi-select's strings (joined by
/// `;`, so none may hold one). Objects (lookups) do not.
fn bulk_cell(json: &str) -> bool {
    match json.as_bytes().first() {
        Some(b'{') | None => false,
        Some(b'[') => serde_json::from_str::<Vec<String>>(json)
            .is_ok_and(|items| items.iter().all(|i| !i.contains(';'))),
        _ => true,
    }
}

/// Sizes of the Update Records batches that carry `records` records: the fewest batches of
/// at most 100, billed at the fewest credits, as even as possible. Zoho bills an Update
/// Records call one credit per started 10 records, so evenly cut batches can waste credits
/// (150 records as 75 + 75 cost 8 + 8 = 16, where 80 + 70 cost 15): every batch holds a
/// multiple of 10 records but the last, which holds the remainder, so the batches cost
/// ceil(records / 10) in all, and no two differ by more than 10 records.
pub fn update_batch_sizes(records: usize) -> impl Iterator<Item = usize> {
    billed_chunk_sizes(records, MAX_RECORDS_PER_UPDATE, RECORDS_PER_WRITE_CREDIT)
}

/// The fewest chunks of at most `size` items that carry `len`, each a multiple of `unit`
/// items but the last (which is short by less than a unit), the units spread as evenly as
/// possible: chunks billed per started `unit` then cost ceil(len / unit) units in all.
/// Falls back to [`balanced_chunks`]' sizes when `size` is not a multiple of `unit`.
fn billed_chunk_sizes(len: usize, size: usize, unit: usize) -> impl Iterator<Item = usize> {
    let size = size.max(1);
    let unit = if unit == 0 || !size.is_multiple_of(unit) {
        1
    } else {
        unit
    };
    let count = len.div_ceil(size);
    let units = len.div_ceil(unit);
    let base = units.checked_div(count).unwrap_or(0);
    let extra = units.checked_rem(count).unwrap_or(0);
    // What the units hold beyond `len`, taken off the last chunk (which holds a unit more
    // than the first ones whenever any does, so the spread stays within one unit).
    let short = units * unit - len;
    (0..count).map(move |i| {
        let held = (base + usize::from(i >= count - extra)) * unit;
        if i + 1 == count {
            held - short
        } else {
            held
        }
    })
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

/// Zoho's own exports write record ids as `zcrm_` and the id.
const EXPORT_ID_PREFIX: &[u8] = b"zcrm_";

/// Zoho record ids are positive Java longs written as digits (`zcrm_` before them, as
/// Zoho's exports write them, is taken off).
pub fn parse_record_id(raw: &[u8]) -> Result<i64, String> {
    let trimmed = raw.trim_ascii();
    if trimmed.is_empty() {
        return Err("the record id is empty".into());
    }
    let trimmed = trimmed.strip_prefix(EXPORT_ID_PREFIX).unwrap_or(trimmed);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{CsvInput, CsvOptions};

    /// Plans `csv` in memory: the rows as they would be stored, and the finished plan.
    fn plan(csv: &str, settings: &PlanSettings) -> (Vec<NewRow>, PlannedCalls) {
        let mut input = CsvInput::from_reader(
            std::path::Path::new("t.csv"),
            Box::new(std::io::Cursor::new(csv.as_bytes().to_vec())),
            &CsvOptions {
                delimiter: Some(b','),
                id_column: Some("id".into()),
                encoding: None,
                ignore_columns: Vec::new(),
            },
        )
        .unwrap();
        let names = input.field_columns().to_vec();
        let source = Source {
            shown: "t.csv".into(),
            size: 0,
        };
        let mut planner = Planner::new(&names, settings, None, source, &mut Vec::new()).unwrap();
        let mut rows = Vec::new();
        while let Some(row) = input.next_row().unwrap() {
            rows.push(planner.plan_row(&row));
        }
        (rows, planner.finish())
    }

    fn groups(planned: &PlannedCalls) -> Vec<(String, Vec<Vec<i64>>)> {
        planned
            .groups()
            .map(|g| {
                let chunks = g
                    .chunks()
                    .map(|c| c.iter().map(|m| m.record_id).collect())
                    .collect();
                (g.payload_json(), chunks)
            })
            .collect()
    }

    /// Grouping as mass_update sees it (auto would send such small files by Update Records).
    fn mass_only(module: &str) -> PlanSettings {
        PlanSettings {
            api: ApiChoice::Mass,
            ..PlanSettings::new(module)
        }
    }

    #[test]
    fn equal_values_share_a_group_and_groups_are_cut_evenly() {
        let mut settings = mass_only("Leads");
        settings.chunk_size = 2;
        let csv = "id,Lead_Status,City\n1,New,Oslo\n2,New,Rome\n3,New,Oslo\n4,Lost,\n";
        let (rows, planned) = plan(csv, &settings);
        assert!(rows.iter().all(|r| r.status == RowStatus::Valid));
        assert_eq!(
            groups(&planned),
            vec![
                (r#"{"Lead_Status":"New"}"#.into(), vec![vec![1, 2], vec![3]]),
                (r#"{"City":"Oslo"}"#.into(), vec![vec![1, 3]]),
                (r#"{"City":"Rome"}"#.into(), vec![vec![2]]),
                (r#"{"Lead_Status":"Lost"}"#.into(), vec![vec![4]]),
            ]
        );
        let t = planned.totals;
        assert_eq!(
            (t.input_rows, t.valid_rows, t.groups, t.calls),
            (4, 4, 4, 5)
        );
        // The theoretical minimum counts 500 ids a call, whatever --chunk-size says.
        assert_eq!(t.min_calls, 4);
    }

    #[test]
    fn the_field_limit_splits_a_row_into_parts() {
        let mut settings = mass_only("Deals");
        settings.max_fields_per_call = 2;
        let (_, planned) = plan("id,A,B,C\n1,x,y,z\n2,x,y,w\n", &settings);
        let payloads: Vec<String> = groups(&planned).into_iter().map(|g| g.0).collect();
        assert_eq!(
            payloads,
            vec![r#"{"A":"x","B":"y"}"#, r#"{"C":"z"}"#, r#"{"C":"w"}"#]
        );
    }

    #[test]
    fn duplicates_merge_or_all_become_invalid_on_a_conflict() {
        let settings = mass_only("Leads");
        let csv = "id,A,B\n1,x,\n1,,y\n2,p,\n2,q,\n3,#N/A,\n";
        let (rows, planned) = plan(csv, &settings);
        assert_eq!(rows[1].status, RowStatus::Merged);
        assert_eq!(rows[1].merged_into, Some(0));
        // Record 2's rows disagree on A: both are left out, each naming both lines.
        let conflicted: Vec<u32> = planned.conflicts.iter().map(|c| c.0).collect();
        assert_eq!(conflicted.len(), 2);
        assert!(conflicted.contains(&2) && conflicted.contains(&3));
        assert!(
            planned.conflicts[0].1.contains("lines 4, 5"),
            "{:?}",
            planned.conflicts
        );
        let payloads: Vec<(String, Vec<Vec<i64>>)> = groups(&planned);
        assert_eq!(
            payloads,
            vec![
                (r#"{"A":"x"}"#.into(), vec![vec![1]]),
                (r#"{"B":"y"}"#.into(), vec![vec![1]]),
                (r#"{"A":null}"#.into(), vec![vec![3]]),
            ]
        );
        assert_eq!(planned.totals.invalid_rows, 2);
        assert_eq!(planned.totals.merged_rows, 1);
    }

    #[test]
    fn a_bad_row_is_invalid_with_its_reason_and_the_rest_go_on() {
        let settings = mass_only("Leads");
        let (rows, planned) = plan("id,A\nabc,x\n5,\n6,y\n", &settings);
        assert_eq!(rows[0].status, RowStatus::Invalid);
        assert!(rows[0]
            .message
            .as_deref()
            .unwrap()
            .contains("not a Zoho record id"));
        assert!(rows[1]
            .message
            .as_deref()
            .unwrap()
            .contains("nothing to update"));
        assert_eq!(rows[2].status, RowStatus::Valid);
        assert_eq!(planned.problems.len(), 2);
        assert_eq!(planned.problems[0].line, 2);
        assert_eq!(
            groups(&planned),
            vec![(r#"{"A":"y"}"#.into(), vec![vec![6]])]
        );
    }

    #[test]
    fn with_bool_x_an_empty_checkbox_is_false_and_other_empty_cells_unchanged() {
        let mut settings = mass_only("Leads");
        settings.types.insert("Opt_Out".into(), FieldType::Boolean);
        settings.bool_x = true;
        let csv = "id,Opt_Out,City\n1,x,Oslo\n2,,\n3, X ,\n";
        let (rows, planned) = plan(csv, &settings);
        assert!(
            rows.iter().all(|r| r.status == RowStatus::Valid),
            "{rows:?}"
        );
        assert_eq!(
            groups(&planned),
            vec![
                (r#"{"Opt_Out":true}"#.into(), vec![vec![1, 3]]),
                (r#"{"City":"Oslo"}"#.into(), vec![vec![1]]),
                (r#"{"Opt_Out":false}"#.into(), vec![vec![2]]),
            ]
        );
        // Without the flag the same sheet leaves row 2 unchanged and refuses the x's.
        settings.bool_x = false;
        let (rows, _) = plan(csv, &settings);
        let invalid: Vec<_> = rows
            .iter()
            .filter(|r| r.status == RowStatus::Invalid)
            .map(|r| r.line)
            .collect();
        assert_eq!(invalid, [2, 3, 4], "{rows:?}");
        assert!(rows[0].message.as_deref().unwrap().contains("--bool-x"));
    }

    #[test]
    fn lines_stay_exact_after_quoted_line_breaks_and_blank_lines() {
        let settings = PlanSettings::new("Leads");
        let csv = "id,A\n1,\"x\ny\"\n\n2,p\n1,z\n";
        let (rows, planned) = plan(csv, &settings);
        assert_eq!(
            rows.iter().map(|r| r.line).collect::<Vec<_>>(),
            vec![2, 5, 6]
        );
        // The conflict names the lines where record 1's rows start.
        assert!(
            planned.conflicts[0].1.contains("lines 2, 6"),
            "{:?}",
            planned.conflicts
        );
    }

    /// Every (record, field) change is carried by exactly one call of either kind, with
    /// the value of the row that asked for it; the credits and calls are those of the calls
    /// planned; the plan never costs more credits (with --optimize calls: never needs
    /// more calls) than the better of all-mass_update and all-Update-Records.
    fn assert_each_change_carried_once(csv: &str, planned: &PlannedCalls) {
        let mut expected: std::collections::BTreeMap<(i64, String), String> = Default::default();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        for line in lines {
            let cells: Vec<&str> = line.split(',').collect();
            let id: i64 = cells[0].parse().unwrap();
            for (name, cell) in header.iter().zip(&cells).skip(1) {
                if !cell.is_empty() {
                    expected.insert((id, name.to_string()), format!("{cell:?}"));
                }
            }
        }
        let mut carried: std::collections::BTreeMap<(i64, String), Vec<String>> =
            Default::default();
        for group in planned.groups() {
            let payload: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&group.payload_json()).unwrap();
            for chunk in group.chunks() {
                assert!(chunk.len() <= MAX_IDS_PER_CALL);
                for m in chunk {
                    for (field, value) in &payload {
                        carried
                            .entry((m.record_id, field.clone()))
                            .or_default()
                            .push(value.to_string());
                    }
                }
            }
        }
        for batch in &planned.update_batches {
            assert!(batch.len() <= MAX_RECORDS_PER_UPDATE);
            let mut ids = std::collections::HashSet::new();
            for (m, object) in batch {
                assert!(ids.insert(m.record_id), "a record twice in one batch");
                let object: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(object).unwrap();
                for (field, value) in &object {
                    carried
                        .entry((m.record_id, field.clone()))
                        .or_default()
                        .push(value.to_string());
                }
            }
        }
        let carried: std::collections::BTreeMap<(i64, String), String> = carried
            .into_iter()
            .map(|(k, v)| {
                assert_eq!(v.len(), 1, "{k:?} carried by {} calls", v.len());
                (k, v[0].clone())
            })
            .collect();
        assert_eq!(carried, expected);
        let t = planned.totals;
        let calls = planned
            .groups()
            .map(|g| g.chunks().count() as u64)
            .sum::<u64>()
            + planned.update_batches.len() as u64;
        assert_eq!(t.calls, calls);
        assert_eq!(t.calls, t.mass_update_calls + t.update_records_calls);
        let update_records: usize = planned.update_batches.iter().map(Vec::len).sum();
        let update_credits: u64 = planned
            .update_batches
            .iter()
            .map(|b| b.len().div_ceil(10) as u64)
            .sum();
        assert_eq!(t.update_records_credits, update_credits);
        assert_eq!(update_credits, update_records.div_ceil(10) as u64, "{t:?}");
        assert_eq!(t.mass_update_credits, t.mass_update_calls);
        assert_eq!(t.credits, t.mass_update_credits + t.update_records_credits);
        assert!(
            t.min_credits <= t.credits && t.min_calls <= t.calls,
            "{t:?}"
        );
        if planned.planner.update_everything || planned.planner.mass_everything {
            return; // a forced kind
        }
        let better = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (credits, calls) = (
            better(t.all_mass_update_credits, t.all_update_records_credits),
            better(t.all_mass_update_calls, t.all_update_records_calls),
        );
        match t.optimize {
            Optimize::Credits => assert!(t.credits <= credits.unwrap(), "{t:?}"),
            Optimize::Calls => assert!(t.calls <= calls.unwrap(), "{t:?}"),
        }
    }

    #[test]
    fn more_than_5000_records_of_unique_values_go_in_bulk_write_jobs() {
        let sheet = |n: usize, extra: &dyn Fn(usize) -> String| {
            let mut csv = String::from("id,City,Phone\n");
            for i in 0..n {
                csv.push_str(&format!("{},c{i},{}\n", 100 + i, extra(i)));
            }
            csv
        };
        let settings = PlanSettings::new("Leads");
        // 60,000 records: three jobs of 20,000 (1,500 credits, not 6,000).
        let csv = sheet(60_000, &|i| format!("p{i}"));
        let (_, planned) = plan(&csv, &settings);
        let t = planned.totals;
        assert_eq!(
            (t.bulk_write_jobs, t.bulk_write_records),
            (3, 60_000),
            "{t:?}"
        );
        assert_eq!((t.credits, t.update_records_calls), (1_500, 0), "{t:?}");
        let sizes: Vec<usize> = planned.bulk_jobs.iter().map(Vec::len).collect();
        assert_eq!(sizes, [20_000, 20_000, 20_000]);
        assert_eq!(t.all_update_records_credits, Some(6_000));
        // 27,000: one full job, and 2,000 by Update Records (200 credits beat a job).
        let (_, planned) = plan(&sheet(27_000, &|i| format!("p{i}")), &settings);
        let t = planned.totals;
        assert_eq!(
            (t.bulk_write_jobs, t.bulk_write_records),
            (1, 25_000),
            "{t:?}"
        );
        assert_eq!((t.update_records_calls, t.credits), (20, 700), "{t:?}");
        // Rows that change other fields are other jobs: 6,000 with a Phone, 6,000 whose
        // Phone cell is empty (unchanged), each set its own job.
        let (_, planned) = plan(
            &sheet(12_000, &|i| {
                if i % 2 == 0 {
                    format!("p{i}")
                } else {
                    String::new()
                }
            }),
            &settings,
        );
        assert_eq!(planned.totals.bulk_write_jobs, 2, "{:?}", planned.totals);
        for job in &planned.bulk_jobs {
            let first = crate::store::chunks::field_names(&job[0].1);
            assert!(job
                .iter()
                .all(|(_, o)| crate::store::chunks::field_names(o) == first));
        }
        // A date column stays with Update Records; so does everything with --trigger none.
        let mut dated = settings.clone();
        dated.types.insert("Phone".into(), FieldType::Date);
        let (_, planned) = plan(
            &sheet(6_000, &|i| format!("2026-01-{:02}", i % 28 + 1)),
            &dated,
        );
        assert_eq!(planned.totals.bulk_write_jobs, 0, "{:?}", planned.totals);
        let mut no_trigger = settings.clone();
        no_trigger.trigger = Some(Vec::new());
        let (_, planned) = plan(&sheet(6_000, &|i| format!("p{i}")), &no_trigger);
        assert_eq!(planned.totals.bulk_write_jobs, 0);
        assert_eq!(planned.totals.credits, 600);
    }

    #[test]
    fn a_sheet_of_unique_values_goes_by_update_records_in_batches_of_100() {
        let mut csv = String::from("id,City,Phone,Title\n");
        for i in 0..1000 {
            csv.push_str(&format!("{},c{i},p{i},t{i}\n", 100 + i));
        }
        let (_, planned) = plan(&csv, &PlanSettings::new("Leads"));
        let t = planned.totals;
        assert_eq!(t.update_records_calls, 10, "{t:?}");
        assert_eq!(t.mass_update_calls, 0);
        assert_eq!(t.all_mass_update_calls, Some(3000));
        assert_eq!(t.all_update_records_calls, Some(10));
        // 10 credits a full batch: 100 credits where mass_update would spend 3,000.
        assert_eq!((t.credits, t.update_records_credits), (100, 100));
        assert_eq!(t.all_mass_update_credits, Some(3000));
        assert_eq!(t.all_update_records_credits, Some(100));
        assert_eq!(t.min_credits, 100);
        assert_each_change_carried_once(&csv, &planned);
    }

    #[test]
    fn unique_values_cost_a_credit_per_ten_records_however_many() {
        for records in [1usize, 9, 10, 11, 150, 1_001, 1_050, 2_345] {
            let mut csv = String::from("id,City\n");
            for i in 0..records {
                csv.push_str(&format!("{},c{i}\n", 100 + i));
            }
            let (_, planned) = plan(&csv, &PlanSettings::new("Leads"));
            let t = planned.totals;
            // The odd record may stay mass_update where that costs the same (one record:
            // a credit and a call either way; 1,001: 1,000 in 10 batches and one by
            // mass_update, or 11 batches, 101 credits in 11 calls both).
            assert_eq!(t.credits, records.div_ceil(10) as u64, "{records}: {t:?}");
            assert_eq!(t.calls, records.div_ceil(100) as u64, "{records}: {t:?}");
            assert!(t.mass_update_calls <= 1, "{records}: {t:?}");
            assert_eq!(t.min_credits, t.credits);
            assert_each_change_carried_once(&csv, &planned);
        }
    }

    /// The sheet of the issue: 100,000 records whose City is shared by groups of 50.
    fn groups_of_50() -> String {
        let mut csv = String::with_capacity(3_000_000);
        csv.push_str("id,City\n");
        for i in 0..100_000u64 {
            csv.push_str(&format!("{},City {}\n", 1_000_000 + i, i / 50));
        }
        csv
    }

    #[test]
    fn groups_of_50_go_by_mass_update_at_2000_credits_not_10000() {
        let csv = groups_of_50();
        let (_, planned) = plan(&csv, &PlanSettings::new("Leads"));
        let t = planned.totals;
        // 2,000 mass_update calls of 50 ids, a credit each; Update Records would take
        // half the calls for five times the credits.
        assert_eq!(
            (t.credits, t.calls, t.update_records_calls),
            (2_000, 2_000, 0),
            "{t:?}"
        );
        assert_eq!(t.all_mass_update_credits, Some(2_000));
        assert_eq!(t.all_update_records_credits, Some(10_000));
        assert_eq!(t.all_update_records_calls, Some(1_000));
        assert_each_change_carried_once(&csv, &planned);
        // For an org with credits to spare, --optimize calls takes the fewer calls.
        let settings = PlanSettings {
            optimize: Optimize::Calls,
            ..PlanSettings::new("Leads")
        };
        let (_, planned) = plan(&csv, &settings);
        let t = planned.totals;
        assert_eq!(
            (t.credits, t.calls, t.mass_update_calls),
            (10_000, 1_000, 0),
            "{t:?}"
        );
        assert_each_change_carried_once(&csv, &planned);
    }

    #[test]
    fn equal_credits_go_to_the_fewer_calls() {
        // 20 values shared by 10 records each: 20 credits either way, in 20 mass_update
        // calls or 2 Update Records calls.
        let mut csv = String::from("id,City\n");
        for i in 0..200 {
            csv.push_str(&format!("{},c{}\n", 100 + i, i / 10));
        }
        for optimize in [Optimize::Credits, Optimize::Calls] {
            let settings = PlanSettings {
                optimize,
                ..PlanSettings::new("Leads")
            };
            let (_, planned) = plan(&csv, &settings);
            let t = planned.totals;
            assert_eq!(t.all_mass_update_credits, t.all_update_records_credits);
            assert_eq!((t.credits, t.calls), (20, 2), "{optimize:?}: {t:?}");
        }
    }

    #[test]
    fn large_groups_stay_mass_update_and_the_rest_ride_in_batches() {
        // 1,200 records share a status (3 mass_update calls); 100 of them have a city of
        // their own (one batch). All by Update Records would be 12 calls.
        let mut csv = String::from("id,Lead_Status,City\n");
        for i in 0..1200 {
            let city = if i < 100 {
                format!("c{i}")
            } else {
                String::new()
            };
            csv.push_str(&format!("{},New,{city}\n", 100 + i));
        }
        let (_, planned) = plan(&csv, &PlanSettings::new("Leads"));
        let t = planned.totals;
        assert_eq!(
            (t.mass_update_calls, t.update_records_calls),
            (3, 1),
            "{t:?}"
        );
        assert_eq!(t.all_update_records_calls, Some(12));
        assert_each_change_carried_once(&csv, &planned);
        // A nightly file of few values is all mass_update, at its minimum.
        let mut nightly = String::from("id,Lead_Status,City\n");
        for i in 0..3000 {
            nightly.push_str(&format!("{},s{},c{}\n", 100 + i, i % 3, i % 4));
        }
        let (_, planned) = plan(&nightly, &PlanSettings::new("Leads"));
        let t = planned.totals;
        assert_eq!(
            (t.mass_update_calls, t.update_records_calls),
            (t.min_calls, 0)
        );
        assert_each_change_carried_once(&nightly, &planned);
    }

    #[test]
    fn update_batches_cost_the_fewest_credits_and_stay_even() {
        let sizes = |n: usize| update_batch_sizes(n).collect::<Vec<_>>();
        assert_eq!(sizes(150), [70, 80]);
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(7), [7]);
        assert_eq!(sizes(100), [100]);
        assert_eq!(sizes(101), [50, 51]);
        for n in 1..=2_500 {
            let cut = sizes(n);
            assert_eq!(cut.iter().sum::<usize>(), n);
            assert_eq!(cut.len(), n.div_ceil(100), "{n}: {cut:?}");
            assert!(cut.iter().all(|&s| (1..=100).contains(&s)), "{n}: {cut:?}");
            let credits: usize = cut.iter().map(|s| s.div_ceil(10)).sum();
            assert_eq!(credits, n.div_ceil(10), "{n}: {cut:?}");
            let (min, max) = (cut.iter().min().unwrap(), cut.iter().max().unwrap());
            assert!(max - min <= 10, "{n}: {cut:?}");
        }
    }

    #[test]
    fn random_sheets_carry_every_change_exactly_once() {
        use rand::{Rng, SeedableRng};
        for seed in 0..40u64 {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let rows = rng.random_range(1..700);
            let values = [1usize, 2, 5, 50, 10_000][rng.random_range(0..5)];
            let mut csv = String::from("id,A,B,C\n");
            for i in 0..rows {
                let cell = |rng: &mut rand::rngs::SmallRng| {
                    if rng.random_bool(0.2) {
                        String::new()
                    } else {
                        format!("v{}", rng.random_range(0..values))
                    }
                };
                let (a, b, c) = (cell(&mut rng), cell(&mut rng), cell(&mut rng));
                if a.is_empty() && b.is_empty() && c.is_empty() {
                    continue;
                }
                csv.push_str(&format!("{},{a},{b},{c}\n", 1000 + i));
            }
            let mut settings = PlanSettings::new(if seed % 2 == 0 { "Leads" } else { "Deals" });
            settings.chunk_size = rng.random_range(1..=500);
            let (_, planned) = plan(&csv, &settings);
            assert_each_change_carried_once(&csv, &planned);
            let by_credits = planned.totals;
            settings.optimize = Optimize::Calls;
            let (_, planned) = plan(&csv, &settings);
            assert_each_change_carried_once(&csv, &planned);
            let by_calls = planned.totals;
            assert!(
                by_calls.calls <= by_credits.calls,
                "{by_calls:?} {by_credits:?}"
            );
            assert!(
                by_credits.credits <= by_calls.credits,
                "{by_calls:?} {by_credits:?}"
            );
            settings.optimize = Optimize::Credits;
            // Forcing one kind carries everything that way.
            for api in [ApiChoice::Mass, ApiChoice::Update] {
                settings.api = api;
                let (_, planned) = plan(&csv, &settings);
                assert_each_change_carried_once(&csv, &planned);
                let t = planned.totals;
                match api {
                    ApiChoice::Mass => assert_eq!(t.update_records_calls, 0),
                    _ => assert_eq!(t.mass_update_calls, 0),
                }
            }
        }
    }

    #[test]
    fn zoho_export_ids_lose_their_prefix() {
        assert_eq!(
            parse_record_id(b"zcrm_4876876000000333001"),
            Ok(4876876000000333001)
        );
        assert_eq!(parse_record_id(b" 42 "), Ok(42));
        for bad in [&b"zcrm_"[..], b"zcrm_x1", b"ZCRM_1", b"zcrm_zcrm_1", b"0"] {
            assert!(parse_record_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn balanced_chunks_are_the_fewest_and_even() {
        let ids: Vec<u32> = (0..1001).collect();
        let sizes: Vec<usize> = balanced_chunks(&ids, 500).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![334, 334, 333]);
        assert_eq!(balanced_chunks(&[] as &[u32], 500).count(), 0);
    }
}
