//! `massup report` end to end: the real binary on planned runs (rows pending or invalid) and
//! on runs sent to the in-process mock (succeeded, failed, retryable), checking that every
//! input row comes out once, in order, on its line; the filters; formula escaping; the JSON
//! form; and that an `--as-input` file plans back to the same ids and values.
mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{last_run, rows, Ran, Stream, Workspace};
use massup::mock::{MockConfig, MockServer};
use serde_json::Value;

/// The report's columns for the input `id,Last_Name,Rating` used by several tests.
const REPORT_COLUMNS: [&str; 10] = [
    "line",
    "id",
    "Last_Name",
    "Rating",
    "outcome",
    "code",
    "message",
    "attempts",
    "last_attempt_at",
    "carried_by",
];

/// A parsed CSV: header and records as strings.
struct Table {
    header: Vec<String>,
    records: Vec<Vec<String>>,
}

impl Table {
    fn read(ws: &Workspace, name: &str, delimiter: u8) -> Table {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .from_path(ws.path().join(name))
            .unwrap_or_else(|e| panic!("read {name}: {e}"));
        let header = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_string)
            .collect();
        let records = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect();
        Table { header, records }
    }

    fn column(&self, name: &str) -> Vec<String> {
        let at = self
            .header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header));
        self.records.iter().map(|r| r[at].clone()).collect()
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Rows of every kind a plan can give: a quoted cell over two lines, a blank line, a bad
/// id, a ragged row, a row with nothing to update, and cells that look like formulas.
const MIXED: &str = "id,Last_Name,Rating\n\
    1,\"Smith\nJr\",=SUM(A1)\n\
    abc,Jones,+1\n\
    \n\
    3,-5,@me\n\
    4,Brown\n\
    5,,\n\
    6,-x,Hot\n";

/// (line, id) of each MIXED row in input order; the blank line 5 holds none.
const MIXED_LINES: [(&str, &str); 6] = [
    ("2", "1"),
    ("4", "abc"),
    ("6", "3"),
    ("7", "4"),
    ("8", "5"),
    ("9", "6"),
];

fn plan_mixed(ws: &Workspace) -> i64 {
    ws.write("mixed.csv", MIXED);
    ws.plan("mixed.csv", "Leads", &[]).expect_code(3);
    last_run(&ws.open_db())
}

#[test]
fn every_input_row_comes_out_once_in_input_order_on_its_line() {
    let ws = Workspace::new();
    let run = plan_mixed(&ws);
    ws.massup(&["report", "--out", "report.csv"])
        .expect_code(0)
        .expect_in(Stream::Out, &["Wrote 6 row(s) of run 1", "report.csv"]);
    let table = Table::read(&ws, "report.csv", b',');
    assert_eq!(table.header, strings(&REPORT_COLUMNS));
    let lines: Vec<(String, String)> = table
        .column("line")
        .into_iter()
        .zip(table.column("id"))
        .collect();
    let expected: Vec<(String, String)> = MIXED_LINES
        .iter()
        .map(|&(l, i)| (l.to_string(), i.to_string()))
        .collect();
    assert_eq!(lines, expected);
    // The report's lines are the store's, and the store's are the file's.
    let stored: Vec<String> = rows(&ws.open_db(), run)
        .iter()
        .map(|r| r.line.to_string())
        .collect();
    assert_eq!(table.column("line"), stored);
    assert_eq!(
        table.column("outcome"),
        strings(&["pending", "invalid", "pending", "invalid", "invalid", "pending"])
    );
    assert_eq!(table.column("Last_Name")[0], "Smith\nJr");
    let messages = table.column("message");
    assert!(messages[1].contains("not a Zoho record id"), "{messages:?}");
    assert!(messages[3].contains("the row has 2 cells"), "{messages:?}");
    assert_eq!(table.column("code")[1], "INVALID_ROW");
    assert_eq!(table.column("attempts"), strings(&["0"; 6]));
}

#[test]
fn formula_cells_are_escaped_in_the_report_and_exact_in_as_input() {
    let ws = Workspace::new();
    plan_mixed(&ws);
    ws.massup(&["report", "--out", "report.csv"]).expect_code(0);
    let report = Table::read(&ws, "report.csv", b',');
    assert_eq!(
        report.column("Rating"),
        strings(&["'=SUM(A1)", "+1", "'@me", "", "", "Hot"])
    );
    assert_eq!(
        report.column("Last_Name"),
        strings(&["Smith\nJr", "Jones", "-5", "Brown", "", "'-x"])
    );

    ws.massup(&["report", "--out", "input.csv", "--as-input"])
        .expect_code(0);
    let input = Table::read(&ws, "input.csv", b',');
    assert_eq!(input.header, strings(&["id", "Last_Name", "Rating"]));
    // The ragged row (line 7) is left out: see ragged_and_non_utf8_rows_...
    assert_eq!(
        input.records,
        vec![
            strings(&["1", "Smith\nJr", "=SUM(A1)"]),
            strings(&["abc", "Jones", "+1"]),
            strings(&["3", "-5", "@me"]),
            strings(&["5", "", ""]),
            strings(&["6", "-x", "Hot"]),
        ]
    );
}

#[test]
fn an_as_input_file_plans_back_to_the_same_ids_and_values() {
    let ws = Workspace::new();
    // A semicolon file with a changed id column name and null marker: the as-input file
    // keeps the delimiter, and the printed command carries the flags.
    ws.write(
        "semi.csv",
        "Record;Last_Name;Rating\n11;\"a;b\";-5\n12;  padded  ;NULL\nx1;Jones;Hot\n13;=1+2;\n",
    );
    let flags = [
        "--delimiter",
        ";",
        "--id-column",
        "Record",
        "--null-marker",
        "NULL",
    ];
    ws.plan("semi.csv", "Leads", &flags).expect_code(3);
    let conn = ws.open_db();
    let first = last_run(&conn);
    ws.massup(&["report", "--out", "again.csv", "--as-input"])
        .expect_code(0)
        .expect_in(
            Stream::Out,
            &["run --csv again.csv --module Leads --id-column \"Record\" --delimiter ';' --null-marker \"NULL\""],
        );
    // Every row was stored as given and this file needs no quoting beyond the original's,
    // so the round trip is byte for byte (and planning it again needs --new-run).
    let text = std::fs::read_to_string(ws.path().join("again.csv")).unwrap();
    assert_eq!(
        text,
        std::fs::read_to_string(ws.path().join("semi.csv")).unwrap()
    );

    let ran = ws.plan("again.csv", "Leads", &[&flags[..], &["--new-run"]].concat());
    ran.expect_code(3);
    let second = last_run(&conn);
    assert_ne!(first, second, "{}", ran.report());
    let shape = |run: i64| -> Vec<(String, Vec<String>, String)> {
        rows(&conn, run)
            .into_iter()
            .map(|r| (r.record_id, r.values, r.status))
            .collect()
    };
    assert_eq!(shape(second), shape(first));
    assert_eq!(
        common::run_value::<i64>(&conn, second, "valid_rows"),
        common::run_value::<i64>(&conn, first, "valid_rows")
    );
    assert_eq!(common::run_value::<i64>(&conn, second, "valid_rows"), 3);
}

#[test]
fn a_pending_only_as_input_file_plans_with_the_same_valid_rows() {
    let ws = Workspace::new();
    let run = plan_mixed(&ws);
    ws.massup(&[
        "report",
        "--out",
        "pending.csv",
        "--only",
        "pending",
        "--as-input",
    ])
    .expect_code(0)
    .expect_in(Stream::Out, &["Wrote 3 row(s)"]);
    ws.plan("pending.csv", "Leads", &[]).expect_code(0);
    let conn = ws.open_db();
    let again = last_run(&conn);
    let valid = |run: i64| -> Vec<(String, Vec<String>)> {
        rows(&conn, run)
            .into_iter()
            .filter(|r| r.status == "valid")
            .map(|r| (r.record_id, r.values))
            .collect()
    };
    assert_eq!(valid(again), valid(run));
    assert_eq!(common::run_value::<i64>(&conn, again, "valid_rows"), 3);
}

#[test]
fn ragged_rows_are_left_out_of_as_input_with_a_warning() {
    // (A file that is not UTF-8 is refused whole since --encoding; rows stored from such
    // files by older versions are left out the same way.)
    let ws = Workspace::new();
    ws.write(
        "bad.csv",
        b"id,Last_Name,Rating\n1,Smith,Hot\n2,Muller,Cold,x\n3,Brown\n4,Green,Hot,extra\n"
            .as_slice(),
    );
    ws.plan("bad.csv", "Leads", &[]).expect_code(3);
    ws.massup(&[
        "report",
        "--out",
        "fix.csv",
        "--as-input",
        "--only",
        "invalid",
    ])
    .expect_code(0)
    .expect_in(Stream::Out, &["Wrote 0 row(s)"])
    .expect_in(
        Stream::Err,
        &["left out 3 invalid row(s)", "line(s) 3, 4, 5"],
    );
    let table = Table::read(&ws, "fix.csv", b',');
    assert!(table.records.is_empty(), "{:?}", table.records);
    // The human report still lists them.
    ws.massup(&["report", "--out", "all.csv", "--only", "invalid"])
        .expect_code(0);
    assert_eq!(
        Table::read(&ws, "all.csv", b',').column("line"),
        strings(&["3", "4", "5"])
    );
}

#[test]
fn json_report_is_an_array_with_the_same_keys_and_raw_values() {
    let ws = Workspace::new();
    plan_mixed(&ws);
    ws.massup(&["report", "--out", "report.json", "--format", "json"])
        .expect_code(0);
    let text = std::fs::read_to_string(ws.path().join("report.json")).unwrap();
    let rows: Vec<serde_json::Map<String, Value>> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"));
    assert_eq!(rows.len(), 6);
    let keys: Vec<&str> = rows[0].keys().map(String::as_str).collect();
    assert_eq!(keys, REPORT_COLUMNS);
    assert_eq!(rows[0]["line"], 2);
    assert_eq!(rows[0]["Rating"], "=SUM(A1)");
    assert_eq!(rows[0]["code"], Value::Null);
    assert_eq!(rows[2]["Last_Name"], "-5");
    assert_eq!(rows[1]["outcome"], "invalid");
    assert_eq!(rows[5]["attempts"], 0);

    // An empty selection is still a JSON array.
    ws.massup(&[
        "report",
        "--out",
        "none.json",
        "--format",
        "json",
        "--only",
        "succeeded",
    ])
    .expect_code(0);
    let none: Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path().join("none.json")).unwrap())
            .unwrap();
    assert_eq!(none, serde_json::json!([]));
}

#[test]
fn report_columns_named_like_an_input_column_get_a_prefix() {
    let ws = Workspace::new();
    ws.write("code.csv", "id,code,message\n1,A,hello\n");
    ws.plan("code.csv", "Leads", &[]).expect_code(0);
    ws.massup(&["report", "--out", "r.csv"]).expect_code(0);
    let table = Table::read(&ws, "r.csv", b',');
    assert_eq!(
        table.header,
        strings(&[
            "line",
            "id",
            "code",
            "message",
            "outcome",
            "massup_code",
            "massup_message",
            "attempts",
            "last_attempt_at",
            "carried_by"
        ])
    );
    assert_eq!(table.records[0][2..4], strings(&["A", "hello"]));
}

// ---- usage errors: exit 2, nothing written ----

#[test]
fn a_missing_run_exits_2_and_leaves_an_existing_report_alone() {
    let ws = Workspace::new();
    plan_mixed(&ws);
    ws.write("report.csv", "old report\n");
    ws.massup(&["report", "--run", "99", "--out", "report.csv"])
        .expect_code(2)
        .expect_in(Stream::Err, &["no run 99"]);
    assert_eq!(
        std::fs::read_to_string(ws.path().join("report.csv")).unwrap(),
        "old report\n"
    );
}

#[test]
fn a_missing_database_exits_2_without_creating_one() {
    let ws = Workspace::new();
    ws.massup(&["report", "--out", "r.csv"])
        .expect_code(2)
        .expect_in(Stream::Err, &["no database"]);
    assert!(!ws.db().exists());
}

#[test]
fn bad_flags_exit_2() {
    let ws = Workspace::new();
    plan_mixed(&ws);
    for args in [
        &["report", "--out", "r.csv", "--only", "done"][..],
        &["report", "--out", "r.csv", "--format", "xml"],
        &["report", "--out", "r.csv", "--as-input", "--format", "json"],
        &["report", "--out", "mixed.csv"],
        &["report", "--out", "no/such/folder/r.csv"],
        &["report"],
    ] {
        ws.massup(args).expect_code(2);
    }
    assert!(!ws.path().join("r.csv").exists());
    assert_eq!(
        std::fs::read_to_string(ws.path().join("mixed.csv")).unwrap(),
        MIXED
    );
}

#[test]
fn a_finished_report_leaves_no_temp_file_behind() {
    let ws = Workspace::new();
    plan_mixed(&ws);
    ws.massup(&["report", "--out", "r.csv"]).expect_code(0);
    ws.massup(&["report", "--out", "r.csv", "--only", "invalid"])
        .expect_code(0);
    assert_eq!(Table::read(&ws, "r.csv", b',').records.len(), 3);
    let leftovers: Vec<String> = std::fs::read_dir(ws.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---- outcomes from a real run against the mock ----

/// `massup run` against the mock with a static token.
fn run_against(ws: &Workspace, server: &MockServer, csv: &str) -> Ran {
    let fields = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/fields/Leads.json");
    let args = [
        "run",
        "--csv",
        csv,
        "--module",
        "Leads",
        "--fields",
        fields,
        "--api-domain",
        &server.url(),
        "--accounts-url",
        &server.url(),
        "--backoff-ms",
        "1",
    ];
    let output = Command::new(env!("CARGO_BIN_EXE_massup"))
        .current_dir(ws.path())
        .env_remove("MASSUP_DB")
        .env_remove("MASSUP_LOG")
        .env("HOME", ws.path())
        .env("XDG_CONFIG_HOME", ws.path().join(".config"))
        .env("ZOHO_ACCESS_TOKEN", "mock-token")
        .arg("--db")
        .arg(ws.db())
        .args(args)
        .output()
        .expect("run the massup binary");
    Ran {
        command: format!("massup --db {} {}", ws.db().display(), args.join(" ")),
        output,
    }
}

#[test]
fn only_picks_exactly_one_outcome_after_a_real_run() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = MockConfig {
        records: 40,
        locked_fraction: 0.5,
        unlock_after: 0,
        ..MockConfig::default()
    };
    let server = runtime.block_on(MockServer::start(config.clone())).unwrap();
    let locked = server.ledger().locked;
    let ids = config.record_ids();
    let open: Vec<&String> = ids.iter().filter(|id| !locked.contains(id)).collect();
    assert!(
        open.len() >= 2 && locked.len() >= 2,
        "seed gives both kinds"
    );

    let ws = Workspace::new();
    let unknown = "999999999999999999";
    let csv = format!(
        "id,Last_Name\n{},Ok1\n{},Locked1\n{unknown},Nobody\nbad,Invalid\n{},Ok2\n{},Locked2\n",
        open[0], locked[0], open[1], locked[1]
    );
    ws.write("run.csv", csv);
    let ran = run_against(&ws, &server, "run.csv");
    ran.expect_code(3);

    ws.massup(&["report", "--out", "all.csv"]).expect_code(0);
    let all = Table::read(&ws, "all.csv", b',');
    assert_eq!(
        all.column("outcome"),
        strings(&[
            "succeeded",
            "retryable",
            "failed",
            "invalid",
            "succeeded",
            "retryable"
        ]),
        "{}",
        ran.report()
    );
    assert_eq!(all.column("line"), strings(&["2", "3", "4", "5", "6", "7"]));
    let codes = all.column("code");
    assert_eq!(codes[0], "SUCCESS");
    assert_eq!(codes[1], "RECORD_LOCKED");
    assert_eq!(codes[2], "INVALID_DATA");
    let attempts = all.column("attempts");
    assert!(attempts[0].parse::<u32>().unwrap() >= 1, "{attempts:?}");
    assert!(!all.column("last_attempt_at")[0].is_empty());

    // Each --only gives exactly the rows of that outcome, in input order.
    let mut by_outcome: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    let outcome_at = all.header.iter().position(|h| h == "outcome").unwrap();
    for record in &all.records {
        by_outcome
            .entry(record[outcome_at].clone())
            .or_default()
            .push(record.clone());
    }
    for outcome in ["succeeded", "failed", "retryable", "invalid", "pending"] {
        let out = format!("{outcome}.csv");
        ws.massup(&["report", "--out", &out, "--only", outcome])
            .expect_code(0);
        let only = Table::read(&ws, &out, b',');
        assert_eq!(
            only.records,
            by_outcome.get(outcome).cloned().unwrap_or_default(),
            "--only {outcome}"
        );
    }
    ws.massup(&["report", "--out", "both.csv", "--only", "failed,invalid"])
        .expect_code(0);
    assert_eq!(
        Table::read(&ws, "both.csv", b',').column("line"),
        strings(&["4", "5"])
    );

    // The failed rows as input plan back to the same ids and values.
    ws.massup(&[
        "report",
        "--out",
        "failed-input.csv",
        "--only",
        "failed",
        "--as-input",
    ])
    .expect_code(0);
    assert_eq!(
        std::fs::read_to_string(ws.path().join("failed-input.csv")).unwrap(),
        format!("id,Last_Name\n{unknown},Nobody\n")
    );
    ws.plan("failed-input.csv", "Leads", &[]).expect_code(0);
    let conn = ws.open_db();
    let replanned = rows(&conn, last_run(&conn));
    assert_eq!(replanned.len(), 1);
    assert_eq!(replanned[0].record_id, unknown);
    assert_eq!(replanned[0].values, strings(&["Nobody"]));
    assert_eq!(replanned[0].status, "valid");
}

// ---- reports for spreadsheets ----

/// A European sheet: `;`-separated, a city with an umlaut, phone numbers and a negative
/// number that must come back as written, and a formula that must not.
const EUROPEAN: &str = "id;City;Phone\n\
    1001;Köln;+49 30 1234567\n\
    1002;=HYPERLINK(\"http://x\");+1 (555) 010-2030\n\
    1003;-12.5;+SUM(A1)\n";

#[test]
fn excel_reports_start_with_a_bom_in_the_input_delimiter_and_keep_numbers_as_written() {
    let ws = Workspace::new();
    ws.write("sheet.csv", EUROPEAN);
    let planned = ws.plan("sheet.csv", "Leads", &["--delimiter", ";", "--api", "auto"]);
    assert!(
        matches!(planned.output.status.code(), Some(0 | 3)),
        "{}",
        planned.report()
    );
    ws.massup(&["report", "--excel", "--out", "excel.csv"])
        .expect_code(0);
    let bytes = std::fs::read(ws.path().join("excel.csv")).unwrap();
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBFline;id;City;Phone;"),
        "{:?}",
        &bytes[..20]
    );
    // The csv crate reads it back (it skips the byte order mark) with the values unchanged.
    let table = Table::read(&ws, "excel.csv", b';');
    assert_eq!(table.header[0], "line");
    assert_eq!(
        table.column("City"),
        strings(&["Köln", "'=HYPERLINK(\"http://x\")", "-12.5"])
    );
    assert_eq!(
        table.column("Phone"),
        strings(&["+49 30 1234567", "+1 (555) 010-2030", "'+SUM(A1)"])
    );

    // Without --excel: the same delimiter, no byte order mark.
    ws.massup(&["report", "--out", "plain.csv"]).expect_code(0);
    let plain = std::fs::read(ws.path().join("plain.csv")).unwrap();
    assert!(plain.starts_with(b"line;id;City;Phone;"));

    // An --excel input sheet plans back to the same values (massup reads the BOM).
    ws.massup(&["report", "--excel", "--as-input", "--out", "again.csv"])
        .expect_code(0);
    let again = std::fs::read(ws.path().join("again.csv")).unwrap();
    assert!(again.starts_with(b"\xEF\xBB\xBFid;City;Phone\n"));
    let again = Table::read(&ws, "again.csv", b';');
    let given: Vec<Vec<String>> = EUROPEAN
        .lines()
        .skip(1)
        .map(|line| line.split(';').map(str::to_string).collect())
        .collect();
    assert_eq!(again.records, given);

    ws.massup(&["report", "--excel", "--format", "json", "--out", "x.json"])
        .expect_code(2);
}

#[test]
fn a_failed_rows_report_names_the_as_input_command_that_makes_a_sheet_to_send_again() {
    let ws = Workspace::new();
    let run = plan_mixed(&ws);
    let ran = ws.massup(&["report", "--only", "invalid", "--out", "invalid.csv"]);
    ran.expect_code(0);
    let command = format!(
        "massup --db {} report --run {run} --only invalid --as-input --out invalid-input.csv",
        ws.db().display()
    );
    ran.expect_in(Stream::Out, &["Wrote 3 row(s)", &command]);
    // The command it names works as printed.
    let args: Vec<&str> = command.split(' ').skip(3).collect();
    ws.massup(&args).expect_code(0);
    let sheet = Table::read(&ws, "invalid-input.csv", b',');
    assert_eq!(sheet.header, strings(&["id", "Last_Name", "Rating"]));
    // A report of every row, or of rows that succeeded, names none.
    let all = ws.massup(&["report", "--out", "all.csv"]);
    all.expect_code(0);
    assert!(!all.stdout().contains("--as-input"), "{}", all.report());
}
