//! Properties of planning over generated CSVs: every input row is stored once with its
//! line, statuses follow a simple model of duplicates, chunks respect the limits, and
//! grouping never changes, drops or adds a value; the split between mass_update and Update
//! Records costs what it says and never more credits than the better single-kind plan.
mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use common::{chunks, groups, last_run, payload_by_row, rows, run_value, Workspace};
use massup::plan::{
    plan, ApiChoice, Optimize, PlanOutcome, PlanRequest, PlanSettings, PlanSummary,
    MAX_IDS_PER_CALL,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

const NULL_MARKER: &str = "#N/A";

/// Cells: empty and blank (leave unchanged), the null marker, plain text, and text that
/// needs quoting (delimiter, quote, newline) or is not ASCII.
const CELLS: &[&str] = &[
    "",
    "",
    " ",
    NULL_MARKER,
    "a",
    "b",
    "c,d",
    "e\"f",
    "g\nh",
    "ü",
];

/// Record ids: a few valid ones (so duplicates are common), one written with leading
/// zeros (the same record as 7), and malformed ones.
fn record_id() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => (1u64..=12).prop_map(|n| n.to_string()),
        1 => Just("0007".to_string()),
        1 => prop::sample::select(vec!["", "0", "x1", "-3"]).prop_map(str::to_string),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    columns: usize,
    rows: Vec<(String, Vec<String>)>,
    field_limit: usize,
    chunk_size: usize,
    crlf: bool,
    bom: bool,
    /// Rows followed by a blank line (skipped by the reader, but counted in line numbers).
    blank_after: Vec<bool>,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=4)
        .prop_flat_map(|columns| {
            let row = (
                record_id(),
                prop::collection::vec(prop::sample::select(CELLS), columns)
                    .prop_map(|cells| cells.into_iter().map(str::to_string).collect()),
            );
            (
                Just(columns),
                prop::collection::vec(row, 0..60),
                1usize..=3,
                // Small sizes make many chunks per group; any size up to Zoho's limit is legal.
                prop_oneof![1usize..=8, 1usize..=MAX_IDS_PER_CALL],
                any::<bool>(),
                any::<bool>(),
                prop::collection::vec(prop::bool::weighted(0.1), 60),
            )
        })
        .prop_map(
            |(columns, rows, field_limit, chunk_size, crlf, bom, blank_after)| Case {
                columns,
                rows,
                field_limit,
                chunk_size,
                crlf,
                bom,
                blank_after,
            },
        )
}

impl Case {
    fn header(&self) -> Vec<String> {
        let mut header = vec!["id".to_string()];
        header.extend((0..self.columns).map(|i| format!("Field_{i}")));
        header
    }

    /// The CSV bytes and the 1-based line where each data row starts.
    fn csv(&self) -> (Vec<u8>, Vec<i64>) {
        let terminator: &[u8] = if self.crlf { b"\r\n" } else { b"\n" };
        // One record as the csv crate writes it (quoting cells as needed).
        let record = |fields: Vec<&str>| {
            let mut writer = csv::WriterBuilder::new()
                .terminator(if self.crlf {
                    csv::Terminator::CRLF
                } else {
                    csv::Terminator::Any(b'\n')
                })
                .from_writer(Vec::new());
            writer.write_record(fields).unwrap();
            writer.into_inner().unwrap()
        };
        let mut bytes = if self.bom {
            b"\xEF\xBB\xBF".to_vec()
        } else {
            Vec::new()
        };
        bytes.extend(record(self.header().iter().map(String::as_str).collect()));
        let mut lines = Vec::new();
        let mut line = 2;
        for (i, (id, cells)) in self.rows.iter().enumerate() {
            lines.push(line);
            let fields = std::iter::once(id).chain(cells).map(String::as_str);
            bytes.extend(record(fields.collect()));
            line += 1 + cells
                .iter()
                .map(|c| c.matches('\n').count() as i64)
                .sum::<i64>();
            if self.blank_after[i] {
                bytes.extend_from_slice(terminator);
                line += 1;
            }
        }
        (bytes, lines)
    }

    /// A row's changes: column name -> JSON value, for its non-blank cells in column order.
    fn changes(&self, cells: &[String]) -> Vec<(String, Value)> {
        cells
            .iter()
            .enumerate()
            .filter(|(_, cell)| !cell.trim_ascii().is_empty())
            .map(|(i, cell)| {
                let value = if cell == NULL_MARKER {
                    Value::Null
                } else {
                    Value::String(cell.clone())
                };
                (format!("Field_{i}"), value)
            })
            .collect()
    }

    /// The expected status of each row, and the row each merged row merges into.
    fn model(&self) -> Vec<(&'static str, Option<i64>)> {
        let parsed: Vec<Option<i64>> = self
            .rows
            .iter()
            .map(|(id, cells)| {
                let record = id
                    .parse::<i64>()
                    .ok()
                    .filter(|&n| n > 0 && id.bytes().all(|b| b.is_ascii_digit()));
                record.filter(|_| !self.changes(cells).is_empty())
            })
            .collect();
        let mut by_record: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (row, record) in parsed.iter().enumerate() {
            if let Some(record) = record {
                by_record.entry(*record).or_default().push(row);
            }
        }
        let mut verdicts = vec![("invalid", None); self.rows.len()];
        for rows_of_record in by_record.values() {
            let mut seen: HashMap<String, Value> = HashMap::new();
            let conflict = rows_of_record.iter().any(|&row| {
                self.changes(&self.rows[row].1)
                    .into_iter()
                    .any(|(field, value)| seen.entry(field).or_insert(value.clone()) != &value)
            });
            if conflict {
                continue;
            }
            let first = rows_of_record[0];
            verdicts[first] = ("valid", None);
            for &row in &rows_of_record[1..] {
                verdicts[row] = ("merged", Some(first as i64));
            }
        }
        verdicts
    }
}

fn plan_case(dir: &Path, case: &Case) -> (rusqlite::Connection, i64) {
    let (bytes, _) = case.csv();
    let csv_path = dir.join("generated.csv");
    std::fs::write(&csv_path, bytes).unwrap();
    let mut settings = PlanSettings::new("Leads");
    // The properties are mass_update's grouping (auto would batch small files instead).
    settings.api = massup::plan::ApiChoice::Mass;
    settings.max_fields_per_call = case.field_limit;
    settings.chunk_size = case.chunk_size;
    settings.null_marker = NULL_MARKER.into();
    let mut conn = massup::store::open(&dir.join("massup.db")).unwrap();
    let outcome = plan(
        &mut conn,
        &PlanRequest {
            csv_path: &csv_path,
            settings: &settings,
            fields: None,
            strict: false,
            new_run: false,
            send_json: None,
            resolve_keys: None,
            expectations: None,
        },
    )
    .unwrap();
    let run = match outcome {
        PlanOutcome::Planned(summary) => summary.run_id,
        PlanOutcome::Existing(_) => panic!("a fresh database has no run to find"),
    };
    (conn, run)
}

fn object(pairs: impl IntoIterator<Item = (String, Value)>) -> Map<String, Value> {
    pairs.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn planning_keeps_every_row_and_every_value(case in case()) {
        let dir = tempfile::tempdir().unwrap();
        let (conn, run) = plan_case(dir.path(), &case);
        let (_, lines) = case.csv();
        let model = case.model();

        // Every input row is stored exactly once, in order, with its line and its cells.
        let stored = rows(&conn, run);
        prop_assert_eq!(stored.len(), case.rows.len());
        for (i, row) in stored.iter().enumerate() {
            prop_assert_eq!(row.row_no, i as i64);
            prop_assert_eq!(row.line, lines[i], "row {}", i);
            prop_assert_eq!(&row.values, &case.rows[i].1, "row {}", i);
            prop_assert_eq!(&row.record_id, case.rows[i].0.trim());
            prop_assert_eq!((row.status.as_str(), row.merged_into), model[i], "row {}: {:?}", i, row);
            prop_assert_eq!(row.message.is_some(), row.status != "valid", "row {}: {:?}", i, row);
        }
        let count = |status: &str| model.iter().filter(|m| m.0 == status).count() as i64;
        prop_assert_eq!(run_value::<i64>(&conn, run, "input_rows"), case.rows.len() as i64);
        prop_assert_eq!(run_value::<i64>(&conn, run, "valid_rows"), count("valid"));
        prop_assert_eq!(run_value::<i64>(&conn, run, "merged_rows"), count("merged"));
        prop_assert_eq!(run_value::<i64>(&conn, run, "invalid_rows"), count("invalid"));

        // Chunks: at most chunk-size distinct records, members that match their rows,
        // groups of at most the field limit, split as evenly as possible.
        let groups = groups(&conn, run);
        let chunks = chunks(&conn, run);
        let mut payloads_seen = HashSet::new();
        let mut min_calls = 0;
        for group in &groups {
            prop_assert!(!group.payload.is_empty() && group.payload.len() <= case.field_limit,
                "group {:?}", group);
            prop_assert!(payloads_seen.insert(Value::Object(group.payload.clone()).to_string()),
                "two groups carry {:?}", group.payload);
            let sizes: Vec<i64> = chunks.iter().filter(|c| c.group_id == group.id).map(|c| c.size).collect();
            prop_assert_eq!(sizes.iter().sum::<i64>(), group.items);
            prop_assert_eq!(sizes.len(), (group.items as usize).div_ceil(case.chunk_size));
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            prop_assert!(max - min <= 1, "uneven chunks {:?}", sizes);
            min_calls += (group.items as usize).div_ceil(MAX_IDS_PER_CALL) as i64;
        }
        prop_assert_eq!(run_value::<i64>(&conn, run, "min_calls"), min_calls);
        for chunk in &chunks {
            prop_assert_eq!(chunk.members.len() as i64, chunk.size);
            prop_assert!(chunk.size >= 1 && chunk.size as usize <= case.chunk_size, "{:?}", chunk);
            let records: HashSet<i64> = chunk.members.iter().map(|m| m.1).collect();
            prop_assert_eq!(records.len(), chunk.members.len(), "a record twice in {:?}", chunk);
            prop_assert_eq!(&chunk.outcomes, &vec![0u8; chunk.members.len()]);
            prop_assert_eq!(chunk.state.as_str(), "pending");
            for &(row_no, record) in &chunk.members {
                let row = &stored[row_no as usize];
                prop_assert!(row.status != "invalid", "invalid row {:?} in a chunk", row);
                prop_assert_eq!(row.record_id.parse::<i64>().unwrap(), record);
            }
        }

        // No value changed by grouping. A valid row gets exactly its own cells, cut into
        // parts of at most the field limit in column order.
        let by_row = payload_by_row(&conn, run);
        for (i, (_, cells)) in case.rows.iter().enumerate() {
            if model[i].0 != "valid" {
                continue;
            }
            let changes = case.changes(cells);
            let got = by_row.get(&(i as u32)).cloned().unwrap_or_default();
            prop_assert_eq!(&got, &object(changes.clone()), "row {}", i);
            let mut parts: Vec<String> = changes
                .chunks(case.field_limit)
                .map(|part| Value::Object(object(part.to_vec())).to_string())
                .collect();
            parts.sort();
            let mut got_parts: Vec<String> = chunks
                .iter()
                .filter(|c| c.members.iter().any(|m| m.0 == i as u32))
                .map(|c| Value::Object(groups.iter().find(|g| g.id == c.group_id).unwrap().payload.clone()).to_string())
                .collect();
            got_parts.sort();
            prop_assert_eq!(got_parts, parts, "row {}", i);
        }
        // Merged rows: the record's items carry exactly the union of its rows' cells.
        let mut record_rows: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (i, row) in stored.iter().enumerate() {
            if row.status != "invalid" {
                record_rows.entry(row.record_id.parse().unwrap()).or_default().push(i);
            }
        }
        for (record, rows_of_record) in record_rows {
            let mut want = Map::new();
            let mut got = Map::new();
            for &i in &rows_of_record {
                want.extend(case.changes(&case.rows[i].1));
                for (field, value) in by_row.get(&(i as u32)).into_iter().flatten() {
                    prop_assert!(got.insert(field.clone(), value.clone()).is_none(),
                        "record {} gets {} twice", record, field);
                }
            }
            prop_assert_eq!(got, want, "record {}", record);
        }
        // With Zoho's chunk size, the calls are the theoretical minimum.
        if case.chunk_size == MAX_IDS_PER_CALL {
            prop_assert_eq!(chunks.len() as i64, min_calls);
        }
    }

    #[test]
    fn calls_are_the_minimum_with_the_default_chunk_size(mut case in case()) {
        case.chunk_size = MAX_IDS_PER_CALL;
        let dir = tempfile::tempdir().unwrap();
        let (conn, run) = plan_case(dir.path(), &case);
        let min_calls: usize = groups(&conn, run)
            .iter()
            .map(|g| (g.items as usize).div_ceil(MAX_IDS_PER_CALL))
            .sum();
        prop_assert_eq!(chunks(&conn, run).len(), min_calls);
        prop_assert_eq!(run_value::<i64>(&conn, run, "min_calls"), min_calls as i64);
    }
}

proptest! {
    // Each case starts the binary twice; a few cases cover the exit codes.
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn the_binary_exit_code_follows_the_rows(case in case()) {
        let ws = Workspace::new();
        let (bytes, _) = case.csv();
        ws.write("generated.csv", bytes);
        let any_invalid = case.model().iter().any(|m| m.0 == "invalid");
        let chunk_size = case.chunk_size.to_string();
        let field_limit = case.field_limit.to_string();
        let flags = ["--chunk-size", chunk_size.as_str(), "--max-fields-per-call", field_limit.as_str()];
        let strict: Vec<&str> = flags.iter().copied().chain(["--strict"]).collect();
        let ran = ws.plan("generated.csv", "Leads", &strict);
        prop_assert_eq!(ran.code(), if any_invalid { 2 } else { 0 }, "{}", ran.report());
        prop_assert_eq!(ws.run_count(), i64::from(!any_invalid));
        let ran = ws.plan("generated.csv", "Leads", &flags);
        prop_assert_eq!(ran.code(), if any_invalid { 3 } else { 0 }, "{}", ran.report());
        let conn = ws.open_db();
        prop_assert_eq!(rows(&conn, last_run(&conn)).len(), case.rows.len());
    }
}

/// A sheet for the split between the two kinds of call: `records` distinct records, each
/// column's values drawn from a pool of its own size (1: one shared value; 100,000: nearly
/// all unique), a share of cells blank.
#[derive(Debug, Clone)]
struct Sheet {
    records: usize,
    pools: Vec<usize>,
    blank_percent: u64,
    chunk_size: usize,
    field_limit: usize,
    seed: u64,
}

fn sheet() -> impl Strategy<Value = Sheet> {
    let pool = prop_oneof![Just(1usize), 2usize..=8, 9usize..=150, Just(100_000usize)];
    (
        1usize..=1_500,
        prop::collection::vec(pool, 1..=3),
        0u64..=50,
        prop_oneof![3 => Just(MAX_IDS_PER_CALL), 1 => 1usize..=MAX_IDS_PER_CALL],
        1usize..=3,
        any::<u64>(),
    )
        .prop_map(
            |(records, pools, blank_percent, chunk_size, field_limit, seed)| Sheet {
                records,
                pools,
                blank_percent,
                chunk_size,
                field_limit,
                seed,
            },
        )
}

impl Sheet {
    fn csv(&self) -> String {
        let mut state = self.seed | 1;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        let mut csv = String::from("id");
        for c in 0..self.pools.len() {
            csv.push_str(&format!(",F{c}"));
        }
        csv.push('\n');
        for i in 0..self.records {
            csv.push_str(&(1_000 + i).to_string());
            for &pool in &self.pools {
                csv.push(',');
                if next() % 100 >= self.blank_percent {
                    csv.push_str(&format!("v{}", next() % pool as u64));
                }
            }
            csv.push('\n');
        }
        csv
    }

    /// Plans the sheet as a new run with `api` and `optimize`: the summary and what each
    /// stored call costs in credits (a mass_update call 1, an Update Records call 1 per
    /// started 10 records).
    fn plan(&self, dir: &Path, api: ApiChoice, optimize: Optimize) -> (PlanSummary, u64, u64) {
        let csv_path = dir.join("sheet.csv");
        std::fs::write(&csv_path, self.csv()).unwrap();
        let mut settings = PlanSettings::new("Leads");
        settings.api = api;
        settings.optimize = optimize;
        settings.chunk_size = self.chunk_size;
        settings.max_fields_per_call = self.field_limit;
        let mut conn = massup::store::open(&dir.join("massup.db")).unwrap();
        let outcome = plan(
            &mut conn,
            &PlanRequest {
                csv_path: &csv_path,
                settings: &settings,
                fields: None,
                strict: false,
                new_run: true,
                send_json: None,
                resolve_keys: None,
                expectations: None,
            },
        )
        .unwrap();
        let PlanOutcome::Planned(summary) = outcome else {
            panic!("--new-run plans again");
        };
        let mut stmt = conn
            .prepare("SELECT kind, size FROM chunks WHERE run_id = ?1")
            .unwrap();
        let stored: Vec<(String, i64)> = stmt
            .query_map([summary.run_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let credits = stored
            .iter()
            .map(|(kind, size)| match kind.as_str() {
                "update_records" => (*size as u64).div_ceil(10),
                _ => 1,
            })
            .sum();
        (summary, credits, stored.len() as u64)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn the_split_never_costs_more_credits_than_one_kind_alone(sheet in sheet()) {
        let dir = tempfile::tempdir().unwrap();
        let plans = [
            (ApiChoice::Auto, Optimize::Credits),
            (ApiChoice::Auto, Optimize::Calls),
            (ApiChoice::Mass, Optimize::Credits),
            (ApiChoice::Update, Optimize::Credits),
        ]
        .map(|(api, optimize)| sheet.plan(dir.path(), api, optimize));
        for (summary, stored_credits, stored_calls) in &plans {
            // What the plan says is what its stored calls cost.
            let t = &summary.totals;
            prop_assert_eq!(t.credits, *stored_credits, "{:?}", t);
            prop_assert_eq!(t.calls, *stored_calls, "{:?}", t);
            prop_assert_eq!(t.credits, t.mass_update_credits + t.update_records_credits);
            prop_assert_eq!(t.mass_update_credits, t.mass_update_calls);
            prop_assert!(t.min_credits <= t.credits, "{:?}", t);
            if sheet.chunk_size == MAX_IDS_PER_CALL {
                prop_assert_eq!(t.min_credits, t.credits);
            }
        }
        let [(by_credits, ..), (by_calls, ..), (mass, ..), (update, ..)] = &plans;
        let (c, k) = (&by_credits.totals, &by_calls.totals);
        // The alternatives are the plans forcing one kind.
        prop_assert_eq!(c.all_mass_update_credits, Some(mass.totals.credits));
        prop_assert_eq!(c.all_mass_update_calls, Some(mass.totals.calls));
        prop_assert_eq!(c.all_update_records_credits, Some(update.totals.credits));
        prop_assert_eq!(c.all_update_records_calls, Some(update.totals.calls));
        // Minimising credits: never more than the better single-kind plan, nor than the
        // plan that minimises calls.
        prop_assert!(c.credits <= mass.totals.credits.min(update.totals.credits), "{:?}", c);
        prop_assert!(c.credits <= k.credits, "{:?} {:?}", c, k);
        // Minimising calls: never more calls than either single-kind plan, nor than the
        // plan that minimises credits. (Its credits may exceed both: that is its choice.)
        prop_assert!(k.calls <= mass.totals.calls.min(update.totals.calls), "{:?}", k);
        prop_assert!(k.calls <= c.calls, "{:?} {:?}", c, k);
        // Update Records batches are cut so that their credits are ceil(records / 10)
        // (every valid row is a record of its own here).
        prop_assert_eq!(update.totals.credits, update.totals.valid_rows.div_ceil(10));
    }
}
