//! `massup plan` end to end: the real binary on bad and unusual CSVs, checking the exit
//! code, that messages name the file, line and column, and what landed in the database.
mod common;

use common::{chunks, groups, last_run, payload_by_row, rows, run_value, Stream, Workspace};
use serde_json::json;

/// The field metadata used by the `--fields` tests (a trimmed Leads answer of
/// GET /crm/v2/settings/fields).
fn leads_fields() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/Leads.json").to_string()
}

fn statuses(conn: &rusqlite::Connection, run: i64) -> Vec<(i64, String)> {
    rows(conn, run)
        .into_iter()
        .map(|r| (r.line, r.status))
        .collect()
}

fn strings(items: &[(i64, &str)]) -> Vec<(i64, String)> {
    items.iter().map(|&(l, s)| (l, s.to_string())).collect()
}

// ---- row-level problems: exit 3, the valid rows are stored ----

#[test]
fn ragged_rows_are_invalid_with_their_line_and_the_rest_is_stored() {
    let ws = Workspace::new();
    ws.write(
        "ragged.csv",
        "id,Last_Name,Rating\n1,Smith,Hot\n2,Jones\n3,Brown,Cold,extra\n4,Green,Hot\n",
    );
    let ran = ws.plan("ragged.csv", "Leads", &[]);
    ran.expect_code(3).expect_in(
        Stream::Out,
        &[
            "ragged.csv:3: the row has 2 cells but the header has 3",
            "ragged.csv:4: the row has 4 cells but the header has 3",
        ],
    );
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_eq!(
        statuses(&conn, run),
        strings(&[(2, "valid"), (3, "invalid"), (4, "invalid"), (5, "valid")]),
        "{}",
        ran.report()
    );
    assert_eq!(run_value::<i64>(&conn, run, "valid_rows"), 2);
    assert_eq!(run_value::<i64>(&conn, run, "invalid_rows"), 2);
    let payloads = payload_by_row(&conn, run);
    assert_eq!(
        serde_json::Value::Object(payloads[&0].clone()),
        json!({"Last_Name": "Smith", "Rating": "Hot"})
    );
    assert!(!payloads.contains_key(&1) && !payloads.contains_key(&2));
}

/// Regression: a Windows-1252 sheet (what Excel's plain "CSV" writes in much of Europe)
/// was half planned: its rows with an umlaut invalid, the others sent. Now the file is
/// refused whole, naming the first bad line and the flag; with it every row is read right.
#[test]
fn a_file_that_is_not_utf8_is_refused_whole_and_read_right_with_encoding() {
    let ws = Workspace::new();
    ws.write(
        "latin1.csv",
        b"id,Last_Name,City\n1,Smith,Berlin\n2,M\xfcller,Wien\n3,Brown,K\xf6ln\n".as_slice(),
    );
    ws.plan("latin1.csv", "Leads", &[])
        .expect_code(2)
        .expect_in(
            Stream::Err,
            &[
                "latin1.csv: line 3: not valid UTF-8 (byte 0xfc)",
                "nothing was planned",
                "--encoding windows-1252",
            ],
        );
    assert_eq!(ws.run_count(), 0);
    ws.plan("latin1.csv", "Leads", &["--encoding", "windows-1252"])
        .expect_code(0);
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_eq!(
        statuses(&conn, run),
        strings(&[(2, "valid"), (3, "valid"), (4, "valid")])
    );
    let payloads = payload_by_row(&conn, run);
    assert_eq!(payloads[&1]["Last_Name"], "Müller");
    assert_eq!(payloads[&2]["City"], "Köln");
    // An encoding massup does not know is refused by name.
    ws.plan(
        "latin1.csv",
        "Leads",
        &["--encoding", "klingon", "--new-run"],
    )
    .expect_code(2)
    .expect_in(Stream::Err, &["--encoding \"klingon\""]);
}

#[test]
fn all_empty_field_cells_are_nothing_to_update() {
    let ws = Workspace::new();
    ws.write("empty_cells.csv", "id,A,B\n1,x,\n2,,\n3, ,\n");
    ws.plan("empty_cells.csv", "Leads", &[])
        .expect_code(3)
        .expect_in(
            Stream::Out,
            &[
                "empty_cells.csv:3: nothing to update",
                "empty_cells.csv:4: nothing to update",
            ],
        );
    let conn = ws.open_db();
    assert_eq!(
        statuses(&conn, last_run(&conn)),
        strings(&[(2, "valid"), (3, "invalid"), (4, "invalid")])
    );
}

#[test]
fn bad_record_ids_are_invalid_rows() {
    let ws = Workspace::new();
    ws.write(
        "ids.csv",
        "id,A\n1,x\nabc,x\n0,x\n,x\n99999999999999999999,x\n",
    );
    let ran = ws.plan("ids.csv", "Leads", &[]);
    ran.expect_code(3).expect_in(
        Stream::Out,
        &[
            "ids.csv:3: record id \"abc\" is not a Zoho record id",
            "ids.csv:4: record id 0 is not a Zoho record id",
            "ids.csv:5: the record id is empty",
            "ids.csv:6: record id 99999999999999999999",
        ],
    );
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_eq!(run_value::<i64>(&conn, run, "valid_rows"), 1);
    assert_eq!(run_value::<i64>(&conn, run, "invalid_rows"), 4);
    // A malformed id is stored as given.
    assert_eq!(rows(&conn, run)[1].record_id, "abc");
}

// ---- file-level problems: exit 2, nothing stored ----

#[test]
fn bad_utf8_in_the_header_is_a_file_error() {
    let ws = Workspace::new();
    ws.write("header.csv", b"id,Last\xe9Name\n1,x\n".as_slice());
    ws.plan("header.csv", "Leads", &[])
        .expect_code(2)
        .expect_in(
            Stream::Err,
            &["header.csv: line 1: not valid UTF-8 (byte 0xe9)"],
        );
    assert_eq!(ws.run_count(), 0);
}

#[test]
fn duplicate_header_is_a_file_error() {
    let ws = Workspace::new();
    ws.write("dup_header.csv", "id,Rating,Last_Name,Rating\n1,a,b,c\n");
    ws.plan("dup_header.csv", "Leads", &[])
        .expect_code(2)
        .expect_in(
            Stream::Err,
            &[
                "dup_header.csv: line 1:",
                "\"Rating\" appears twice in the header (columns 2 and 4)",
            ],
        );
    assert_eq!(ws.run_count(), 0);
}

#[test]
fn missing_id_column_is_a_file_error() {
    let ws = Workspace::new();
    ws.write("no_id.csv", "Key,Last_Name\n1,x\n");
    ws.plan("no_id.csv", "Leads", &[]).expect_code(2).expect_in(
        Stream::Err,
        &[
            "no_id.csv: line 1: the header has no id column \"id\" or \"record id\"",
            "Key, Last_Name",
            "--id-column",
        ],
    );
    assert_eq!(ws.run_count(), 0);
    // The hint works.
    ws.plan("no_id.csv", "Leads", &["--id-column", "Key"])
        .expect_code(0);
    assert_eq!(ws.run_count(), 1);
}

#[test]
fn empty_file_is_a_file_error() {
    let ws = Workspace::new();
    ws.write("empty.csv", "");
    ws.plan("empty.csv", "Leads", &[])
        .expect_code(2)
        .expect_in(Stream::Err, &["empty.csv: the file is empty"]);
    assert_eq!(ws.run_count(), 0);
}

#[test]
fn header_with_only_the_id_column_is_a_file_error() {
    let ws = Workspace::new();
    ws.write("only_id.csv", "id\n1\n2\n");
    ws.plan("only_id.csv", "Leads", &[])
        .expect_code(2)
        .expect_in(
            Stream::Err,
            &["only_id.csv: the header has only the id column"],
        );
    assert_eq!(ws.run_count(), 0);
}

#[test]
fn missing_csv_file_is_a_usage_error() {
    let ws = Workspace::new();
    ws.plan("nowhere.csv", "Leads", &[])
        .expect_code(2)
        .expect_in(Stream::Err, &["nowhere.csv"]);
    assert_eq!(ws.run_count(), 0);
}

#[test]
fn header_only_file_plans_a_run_with_no_rows() {
    let ws = Workspace::new();
    ws.write("header_only.csv", "id,Last_Name\r\n");
    let ran = ws.plan("header_only.csv", "Leads", &["--json"]);
    ran.expect_code(0);
    let summary = ran.json();
    assert_eq!(summary["input_rows"], 0, "{}", ran.report());
    assert_eq!(summary["calls"], 0);
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_eq!(run_value::<i64>(&conn, run, "input_rows"), 0);
    assert!(rows(&conn, run).is_empty());
    assert!(chunks(&conn, run).is_empty());
}

// ---- duplicates ----

#[test]
fn conflicting_duplicates_make_every_row_of_the_record_invalid() {
    let ws = Workspace::new();
    ws.write(
        "conflict.csv",
        "id,Rating,City\n7,Hot,\n8,Cold,\n7,,Berlin\n7,Warm,\n9,Hot,\n7,Hot,\n",
    );
    let ran = ws.plan("conflict.csv", "Leads", &[]);
    ran.expect_code(3);
    for line in [2, 4, 5, 7] {
        ran.expect_in(
            Stream::Out,
            &[&format!("conflict.csv:{line}: conflicting duplicate")],
        );
    }
    ran.expect_in(Stream::Out, &["Rating", "(lines 2, 4, 5, 7)"]);
    let conn = ws.open_db();
    let run = last_run(&conn);
    let stored = rows(&conn, run);
    assert_eq!(
        statuses(&conn, run),
        strings(&[
            (2, "invalid"),
            (3, "valid"),
            (4, "invalid"),
            (5, "invalid"),
            (6, "valid"),
            (7, "invalid"),
        ]),
        "{}",
        ran.report()
    );
    for row in stored.iter().filter(|r| r.record_id == "7") {
        let message = row.message.as_deref().unwrap_or_default();
        assert!(
            message.contains("Rating") && message.contains("lines 2, 4, 5, 7"),
            "line {}: {message}",
            row.line
        );
        assert_eq!(row.merged_into, None);
    }
    // Record 7 is in no chunk; 8 and 9 are.
    let ids: Vec<i64> = chunks(&conn, run)
        .iter()
        .flat_map(|c| c.members.iter().map(|m| m.1))
        .collect();
    assert!(!ids.contains(&7), "{ids:?}");
    assert_eq!(ids.len(), 2);
    assert_eq!(run_value::<i64>(&conn, run, "invalid_rows"), 4);
    assert_eq!(run_value::<i64>(&conn, run, "valid_rows"), 2);
    assert_eq!(run_value::<i64>(&conn, run, "merged_rows"), 0);
}

#[test]
fn null_marker_against_a_value_is_a_conflict() {
    let ws = Workspace::new();
    ws.write("null_conflict.csv", "id,Rating\n7,Hot\n7,#N/A\n");
    ws.plan("null_conflict.csv", "Leads", &[])
        .expect_code(3)
        .expect_in(
            Stream::Out,
            &["null_conflict.csv:2: conflicting", "null_conflict.csv:3:"],
        );
}

#[test]
fn identical_and_complementary_duplicates_are_merged() {
    let ws = Workspace::new();
    ws.write(
        "merge.csv",
        "id,Rating,City\n7,Hot,\n8,Cold,\n7,Hot,\n7,,Berlin\n7,Hot,Berlin\n",
    );
    let ran = ws.plan("merge.csv", "Leads", &["--json"]);
    ran.expect_code(0);
    let summary = ran.json();
    assert_eq!(
        (
            &summary["input_rows"],
            &summary["valid_rows"],
            &summary["merged_rows"]
        ),
        (&json!(5), &json!(2), &json!(3)),
        "{}",
        ran.report()
    );
    let conn = ws.open_db();
    let run = last_run(&conn);
    let stored = rows(&conn, run);
    assert_eq!(
        statuses(&conn, run),
        strings(&[
            (2, "valid"),
            (3, "valid"),
            (4, "merged"),
            (5, "merged"),
            (6, "merged"),
        ])
    );
    for row in &stored[2..] {
        assert_eq!(row.merged_into, Some(0), "line {}", row.line);
        let message = row.message.as_deref().unwrap_or_default();
        assert!(message.contains("line 2"), "line {}: {message}", row.line);
    }
    // Record 7 gets Rating and City exactly once each, over its rows' items.
    let mut fields_of_7 = serde_json::Map::new();
    let by_row = payload_by_row(&conn, run);
    for row in stored.iter().filter(|r| r.record_id == "7") {
        for (field, value) in by_row.get(&(row.row_no as u32)).into_iter().flatten() {
            assert!(
                fields_of_7.insert(field.clone(), value.clone()).is_none(),
                "record 7 gets {field} twice"
            );
        }
    }
    assert_eq!(
        serde_json::Value::Object(fields_of_7),
        json!({"Rating": "Hot", "City": "Berlin"})
    );
}

// ---- field metadata and types ----

#[test]
fn unknown_read_only_and_not_mass_updatable_columns_are_file_errors_with_fields() {
    let ws = Workspace::new();
    ws.write(
        "columns.csv",
        "id,Last_Name,Created_Time,Lead_Source,Email,Description,last_name,Nope\n1,a,b,c,d,e,f,g\n",
    );
    ws.plan("columns.csv", "Leads", &["--fields", &leads_fields()])
        .expect_code(2)
        .expect_in(
            Stream::Err,
            &[
                "columns.csv: 6 column(s) cannot be planned for Leads, nothing was stored",
                "column \"Created_Time\" is a read-only field",
                "column \"Lead_Source\" cannot be mass-updated",
                "column \"Email\" cannot be mass-updated: Zoho does not mass-update email fields; without --api mass (--api auto, the default, or --api update) it goes by Update Records",
                "column \"Description\" cannot be mass-updated",
                // Case and spacing are forgiven, so this one names Last_Name twice.
                "columns \"Last_Name\" and \"last_name\" both name the field Last_Name",
                "column \"Nope\" is not a field of this module",
            ],
        );
    assert_eq!(ws.run_count(), 0);
}

#[test]
fn bad_values_are_checked_against_field_metadata() {
    let ws = Workspace::new();
    ws.write(
        "typed.csv",
        concat!(
            "id,Last_Name,No_of_Employees,Email_Opt_Out,Follow_Up_Date,Follow_Up_At,Lead_Status\n",
            "1,Smith,12,yes,2024-01-02,2024-01-02T10:00:00+02:00,Contacted\n",
            "2,,12 people,,,,\n",
            "3,,,perhaps,,,\n",
            "4,,,,02/01/2024,,\n",
            "5,,,,2024-02-30,,\n",
            "6,,,,,2024-01-02T10:00:00,\n",
            "7,,,,,,Hot\n",
        ),
    );
    let ran = ws.plan("typed.csv", "Leads", &["--fields", &leads_fields()]);
    ran.expect_code(3).expect_in(
        Stream::Out,
        &[
            "typed.csv:3: column No_of_Employees:",
            "typed.csv:4: column Email_Opt_Out:",
            "typed.csv:5: column Follow_Up_Date:",
            "typed.csv:6: column Follow_Up_Date:",
            "typed.csv:7: column Follow_Up_At:",
            "has no offset",
            "typed.csv:8: column Lead_Status:",
        ],
    );
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_eq!(run_value::<i64>(&conn, run, "valid_rows"), 1);
    assert_eq!(run_value::<i64>(&conn, run, "invalid_rows"), 6);
    // The valid row is coerced: an integer, a boolean, a datetime with its offset.
    assert_eq!(
        serde_json::Value::Object(payload_by_row(&conn, run)[&0].clone()),
        json!({
            "Last_Name": "Smith",
            "No_of_Employees": 12,
            "Email_Opt_Out": true,
            "Follow_Up_Date": "2024-01-02",
            "Follow_Up_At": "2024-01-02T10:00:00+02:00",
            "Lead_Status": "Contacted",
        })
    );
    // With --timezone the datetime without offset is valid.
    ws.plan(
        "typed.csv",
        "Leads",
        &[
            "--fields",
            &leads_fields(),
            "--timezone",
            "Europe/Berlin",
            "--new-run",
        ],
    )
    .expect_code(3);
    let run = last_run(&conn);
    let stored = rows(&conn, run);
    assert_eq!(stored[5].status, "valid", "{:?}", stored[5]);
    assert_eq!(
        payload_by_row(&conn, run)[&5]["Follow_Up_At"],
        json!("2024-01-02T10:00:00+01:00")
    );
}

#[test]
fn bad_values_are_checked_against_type_overrides() {
    let ws = Workspace::new();
    ws.write(
        "overrides.csv",
        "id,N,D,F,T\n1,12,2024-01-02,no,2024-01-02T10:00:00Z\n2,1.5,,,\n3,,2024-13-01,,\n4,,,maybe,\n5,,,,2024-01-02T10:00\n",
    );
    let ran = ws.plan(
        "overrides.csv",
        "Leads",
        &[
            "--type",
            "N=integer",
            "--type",
            "D=date",
            "--type",
            "F=boolean",
            "--type",
            "T=datetime",
        ],
    );
    ran.expect_code(3).expect_in(
        Stream::Out,
        &[
            "overrides.csv:3: column N:",
            "overrides.csv:4: column D:",
            "overrides.csv:5: column F:",
            "overrides.csv:6: column T:",
        ],
    );
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_eq!(
        statuses(&conn, run),
        strings(&[
            (2, "valid"),
            (3, "invalid"),
            (4, "invalid"),
            (5, "invalid"),
            (6, "invalid"),
        ])
    );
    for row in &rows(&conn, run)[1..] {
        let column = ["N", "D", "F", "T"][row.row_no as usize - 1];
        let message = row.message.as_deref().unwrap_or_default();
        assert!(
            message.starts_with(&format!("column {column}:")),
            "line {}: {message}",
            row.line
        );
    }
    assert_eq!(
        serde_json::Value::Object(payload_by_row(&conn, run)[&0].clone()),
        json!({"N": 12, "D": "2024-01-02", "F": false, "T": "2024-01-02T10:00:00+00:00"})
    );
}

#[test]
fn unknown_type_name_is_a_usage_error() {
    let ws = Workspace::new();
    ws.write("t.csv", "id,N\n1,2\n");
    ws.plan("t.csv", "Leads", &["--type", "N=integr"])
        .expect_code(2)
        .expect_in(Stream::Err, &["integr"]);
    assert_eq!(ws.run_count(), 0);
}

// ---- strict, re-planning, JSON ----

#[test]
fn strict_stores_nothing_when_a_row_is_invalid() {
    let ws = Workspace::new();
    ws.write("strict.csv", "id,Rating\n1,Hot\n2\n3,Cold\n");
    ws.plan("strict.csv", "Leads", &["--strict"])
        .expect_code(2)
        .expect_in(
            Stream::Err,
            &[
                "1 invalid row(s) and --strict is set, nothing was stored",
                "strict.csv:3:",
            ],
        );
    assert_eq!(ws.run_count(), 0);
    // Nothing was stored, so the same file is planned (not "already planned") next time.
    ws.plan("strict.csv", "Leads", &[]).expect_code(3);
    assert_eq!(ws.run_count(), 1);
}

#[test]
fn strict_with_conflicting_duplicates_stores_nothing() {
    let ws = Workspace::new();
    ws.write("strict_dup.csv", "id,Rating\n1,Hot\n1,Cold\n");
    ws.plan("strict_dup.csv", "Leads", &["--strict"])
        .expect_code(2)
        .expect_in(Stream::Err, &["strict_dup.csv:2:", "strict_dup.csv:3:"]);
    assert_eq!(ws.run_count(), 0);
}

#[test]
fn strict_with_only_valid_rows_plans_normally() {
    let ws = Workspace::new();
    ws.write("strict_ok.csv", "id,Rating\n1,Hot\n2,Cold\n");
    ws.plan("strict_ok.csv", "Leads", &["--strict"])
        .expect_code(0);
    assert_eq!(ws.run_count(), 1);
}

#[test]
fn replanning_the_same_file_reports_the_existing_run() {
    let ws = Workspace::new();
    ws.write("again.csv", "id,Rating\n1,Hot\n2,Cold\n");
    ws.plan("again.csv", "Leads", &[]).expect_code(0);
    ws.plan("again.csv", "Leads", &[]).expect_code(0).expect_in(
        Stream::Out,
        &["already planned for Leads as run 1", "--new-run"],
    );
    let ran = ws.plan("again.csv", "Leads", &["--json"]);
    ran.expect_code(0);
    assert_eq!(ran.json()["existing_run"], 1, "{}", ran.report());
    assert_eq!(ws.run_count(), 1);
    // The same content under another name is the same plan; another module is not.
    ws.write("copy.csv", "id,Rating\n1,Hot\n2,Cold\n");
    ws.plan("copy.csv", "Leads", &[])
        .expect_code(0)
        .expect_in(Stream::Out, &["already planned"]);
    ws.plan("again.csv", "Contacts", &[]).expect_code(0);
    assert_eq!(ws.run_count(), 2);
}

#[test]
fn new_run_plans_the_same_file_again() {
    let ws = Workspace::new();
    ws.write("again.csv", "id,Rating\n1,Hot\n2,Cold\n");
    ws.plan("again.csv", "Leads", &[]).expect_code(0);
    let ran = ws.plan("again.csv", "Leads", &["--new-run", "--json"]);
    ran.expect_code(0);
    assert_eq!(ran.json()["run_id"], 2, "{}", ran.report());
    let conn = ws.open_db();
    assert_eq!(rows(&conn, 1).len(), 2);
    assert_eq!(rows(&conn, 2).len(), 2);
    assert_eq!(chunks(&conn, 2).len(), 2);
}

#[test]
fn json_summary_parses_and_has_the_counts() {
    let ws = Workspace::new();
    ws.write(
        "summary.csv",
        "id,Rating,City\n1,Hot,Berlin\n2,Hot,\n3,,\n1,Hot,\n4,Cold,Berlin\n",
    );
    let ran = ws.plan("summary.csv", "Leads", &["--json"]);
    ran.expect_code(3);
    let summary = ran.json();
    let counts: Vec<&serde_json::Value> = [
        "input_rows",
        "valid_rows",
        "merged_rows",
        "invalid_rows",
        "groups",
        "calls",
        "min_calls",
    ]
    .iter()
    .map(|k| &summary[*k])
    .collect();
    // Groups: Rating=Hot (1, 2), City=Berlin (1, 4), Rating=Cold (4).
    assert_eq!(
        counts,
        [
            &json!(5),
            &json!(3),
            &json!(1),
            &json!(1),
            &json!(3),
            &json!(3),
            &json!(3)
        ],
        "{}",
        ran.report()
    );
    assert_eq!(summary["module"], "Leads");
    assert_eq!(summary["problems"][0]["line"], 4);
    assert!(summary["problems"][0]["message"]
        .as_str()
        .unwrap()
        .contains("nothing to update"));
    assert_eq!(summary["example_request"]["over_write"], false);
    let conn = ws.open_db();
    let run = summary["run_id"].as_i64().unwrap();
    assert_eq!(run_value::<i64>(&conn, run, "valid_rows"), 3);
    assert_eq!(run_value::<i64>(&conn, run, "merged_rows"), 1);
    assert_eq!(run_value::<i64>(&conn, run, "min_calls"), 3);
}

// ---- file formats ----

#[test]
fn crlf_bom_and_quoted_newlines_keep_line_numbers() {
    let ws = Workspace::new();
    ws.write(
        "windows.csv",
        concat!(
            "\u{feff}id,Description_Text,Rating\r\n", // line 1
            "1,\"two\r\nlines\",Hot\r\n",             // lines 2-3
            "2,plain,\r\n",                           // line 4
            "\r\n",                                   // line 5, blank
            "3,,\r\n",                                // line 6: nothing to update
            "4,\"three\nlf\nlines\",Cold\r\n",        // lines 7-9
            "5,\"a \"\"quote\"\"\",oops,extra\r\n",   // line 10: ragged
            "6,last,Hot",                             // line 11, no final newline
        ),
    );
    let ran = ws.plan("windows.csv", "Leads", &[]);
    ran.expect_code(3).expect_in(
        Stream::Out,
        &[
            "windows.csv:6: nothing to update",
            "windows.csv:10: the row has 4 cells",
        ],
    );
    let conn = ws.open_db();
    let run = last_run(&conn);
    let stored = rows(&conn, run);
    let lines: Vec<i64> = stored.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 4, 6, 7, 10, 11], "{}", ran.report());
    // The BOM is not part of the id column's name, and no cell keeps the CR of its line.
    assert_eq!(
        run_value::<String>(&conn, run, "columns_json"),
        r#"["Description_Text","Rating"]"#
    );
    assert_eq!(stored[0].values, ["two\r\nlines", "Hot"]);
    assert_eq!(stored[1].values, ["plain", ""]);
    assert_eq!(stored[3].values, ["three\nlf\nlines", "Cold"]);
    assert_eq!(stored[5].values, ["last", "Hot"]);
    let payloads = payload_by_row(&conn, run);
    assert_eq!(
        serde_json::Value::Object(payloads[&1].clone()),
        json!({"Description_Text": "plain"})
    );
    assert_eq!(payloads[&5]["Rating"], json!("Hot"));
}

#[test]
fn quoted_header_after_a_bom_is_read() {
    // Zoho's own exports quote every cell, header included, after a BOM.
    let ws = Workspace::new();
    ws.write(
        "quoted.csv",
        "\u{feff}\"id\",\"Last_Name\"\r\n\"1\",\"Smith\"\r\n",
    );
    ws.plan("quoted.csv", "Leads", &[]).expect_code(0);
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_eq!(
        serde_json::Value::Object(payload_by_row(&conn, run)[&0].clone()),
        json!({"Last_Name": "Smith"})
    );
}

#[test]
fn tab_delimiter_reads_tab_separated_files() {
    let ws = Workspace::new();
    ws.write(
        "tabs.tsv",
        "id\tLast_Name\tCity\n1\tSmith, Jr.\tBerlin\n2\t\tWien\n3\tx\n",
    );
    for flag in ["\\t", "tab"] {
        let ran = ws.plan("tabs.tsv", "Leads", &["--delimiter", flag, "--new-run"]);
        ran.expect_code(3)
            .expect_in(Stream::Out, &["tabs.tsv:4: the row has 2 cells"]);
        let conn = ws.open_db();
        let run = last_run(&conn);
        let payloads = payload_by_row(&conn, run);
        assert_eq!(
            serde_json::Value::Object(payloads[&0].clone()),
            json!({"Last_Name": "Smith, Jr.", "City": "Berlin"}),
            "{}",
            ran.report()
        );
        assert_eq!(
            serde_json::Value::Object(payloads[&1].clone()),
            json!({"City": "Wien"})
        );
    }
    ws.plan("tabs.tsv", "Leads", &["--delimiter", "ab"])
        .expect_code(2);
}

#[test]
fn null_marker_becomes_json_null_in_the_payload() {
    let ws = Workspace::new();
    ws.write(
        "nulls.csv",
        "id,Rating,City\n1,#N/A,Berlin\n2,NULL,\n3,,#N/A\n",
    );
    ws.plan("nulls.csv", "Leads", &[]).expect_code(0);
    let conn = ws.open_db();
    let run = last_run(&conn);
    let payloads = payload_by_row(&conn, run);
    assert_eq!(
        serde_json::Value::Object(payloads[&0].clone()),
        json!({"Rating": null, "City": "Berlin"})
    );
    assert_eq!(payloads[&1]["Rating"], json!("NULL"));
    assert_eq!(payloads[&2]["City"], json!(null));

    ws.plan(
        "nulls.csv",
        "Leads",
        &["--null-marker", "NULL", "--new-run"],
    )
    .expect_code(0);
    let run = last_run(&conn);
    let payloads = payload_by_row(&conn, run);
    assert_eq!(payloads[&0]["Rating"], json!("#N/A"));
    assert_eq!(payloads[&1]["Rating"], json!(null));
    // The null marker of a typed column is null too, not a type error.
    ws.write("typed_null.csv", "id,N\n1,#N/A\n");
    ws.plan("typed_null.csv", "Leads", &["--type", "N=integer"])
        .expect_code(0);
    let run = last_run(&conn);
    assert_eq!(payload_by_row(&conn, run)[&0]["N"], json!(null));
}

// ---- grouping and chunking ----

#[test]
fn max_fields_per_call_2_groups_fields_in_pairs() {
    let ws = Workspace::new();
    ws.write(
        "pairs.csv",
        "id,A,B,C\n1,a,b,c\n2,a,b,c\n3,a,b,\n4,,b,c\n5,a,,x\n",
    );
    ws.plan("pairs.csv", "Leads", &["--max-fields-per-call", "2"])
        .expect_code(0);
    let conn = ws.open_db();
    let run = last_run(&conn);
    let mut payloads: Vec<(serde_json::Value, i64)> = groups(&conn, run)
        .into_iter()
        .map(|g| (serde_json::Value::Object(g.payload), g.items))
        .collect();
    payloads.sort_by_key(|p| p.0.to_string());
    // Each row's non-empty cells, in column order, cut into parts of at most two.
    let mut expected = vec![
        (json!({"A": "a", "B": "b"}), 3), // rows 1, 2, 3
        (json!({"C": "c"}), 2),           // rows 1, 2
        (json!({"B": "b", "C": "c"}), 1), // row 4
        (json!({"A": "a", "C": "x"}), 1), // row 5
    ];
    expected.sort_by_key(|p| p.0.to_string());
    assert_eq!(payloads, expected);
    for group in groups(&conn, run) {
        assert!(group.payload.len() <= 2);
    }
}

#[test]
fn deals_default_to_three_fields_per_call() {
    let ws = Workspace::new();
    ws.write("deals.csv", "id,A,B,C,D\n1,a,b,c,d\n2,a,b,c,d\n");
    ws.plan("deals.csv", "Deals", &["--json"]).expect_code(0);
    let conn = ws.open_db();
    let run = last_run(&conn);
    let sizes: Vec<usize> = groups(&conn, run).iter().map(|g| g.payload.len()).collect();
    assert_eq!(sizes, [3, 1]);
    // Leads: one field per call.
    ws.plan("deals.csv", "Leads", &[]).expect_code(0);
    let run = last_run(&conn);
    assert_eq!(groups(&conn, run).len(), 4);
}

#[test]
fn chunk_size_out_of_range_is_rejected() {
    let ws = Workspace::new();
    ws.write("c.csv", "id,A\n1,a\n");
    for size in ["0", "501"] {
        ws.plan("c.csv", "Leads", &["--chunk-size", size])
            .expect_code(2)
            .expect_in(
                Stream::Err,
                &[&format!("--chunk-size {size} is out of range")],
            );
    }
    ws.plan("c.csv", "Leads", &["--chunk-size", "-1"])
        .expect_code(2);
    ws.plan("c.csv", "Leads", &["--max-fields-per-call", "0"])
        .expect_code(2);
    assert_eq!(ws.run_count(), 0);
    ws.plan("c.csv", "Leads", &["--chunk-size", "500"])
        .expect_code(0);
}

#[test]
fn chunks_are_as_even_as_possible_and_calls_are_the_minimum() {
    let ws = Workspace::new();
    let mut csv = String::from("id,Rating\n");
    for id in 1..=1201 {
        csv.push_str(&format!("{id},Hot\n"));
    }
    for id in 2001..=2005 {
        csv.push_str(&format!("{id},Cold\n"));
    }
    ws.write("many.csv", &csv);
    let ran = ws.plan("many.csv", "Leads", &["--json"]);
    ran.expect_code(0);
    let summary = ran.json();
    assert_eq!(summary["calls"], 4, "{}", ran.report());
    assert_eq!(summary["min_calls"], 4);
    let conn = ws.open_db();
    let run = last_run(&conn);
    let sizes: Vec<i64> = chunks(&conn, run).iter().map(|c| c.size).collect();
    assert_eq!(sizes, [401, 400, 400, 5]);
    for chunk in chunks(&conn, run) {
        assert_eq!(chunk.members.len() as i64, chunk.size);
        assert_eq!(chunk.outcomes, vec![0u8; chunk.size as usize]);
        assert_eq!(chunk.state, "pending");
    }

    ws.plan("many.csv", "Leads", &["--chunk-size", "300", "--new-run"])
        .expect_code(0);
    let run = last_run(&conn);
    let sizes: Vec<i64> = chunks(&conn, run).iter().map(|c| c.size).collect();
    assert_eq!(sizes, [241, 240, 240, 240, 240, 5]);
    // min_calls stays the minimum at Zoho's 500 ids per call.
    assert_eq!(run_value::<i64>(&conn, run, "min_calls"), 4);
}

/// 1,000 records whose City is shared by groups of 50: 20 mass_update calls (20 credits),
/// or 10 Update Records calls of 100 records (100 credits).
fn groups_of_50() -> String {
    let mut csv = String::from("id,City\n");
    for i in 0..1_000 {
        csv.push_str(&format!("{},City {}\n", 1_000 + i, i / 50));
    }
    csv
}

#[test]
fn auto_minimises_credits_unless_told_to_minimise_calls() {
    let ws = Workspace::new();
    ws.write("g50.csv", groups_of_50());
    let ran = ws.plan("g50.csv", "Leads", &["--api", "auto", "--json"]);
    ran.expect_code(0);
    let plan = ran.json();
    let costs = |plan: &serde_json::Value| {
        [
            "optimize",
            "credits",
            "calls",
            "mass_update_credits",
            "update_records_credits",
            "min_credits",
            "all_mass_update_credits",
            "all_update_records_credits",
        ]
        .map(|k| plan[k].clone())
    };
    assert_eq!(
        costs(&plan),
        [
            json!("credits"),
            json!(20),
            json!(20),
            json!(20),
            json!(0),
            json!(20),
            json!(20),
            json!(100)
        ],
        "{}",
        ran.report()
    );
    // The text says it credits first, with both alternatives in both units.
    ws.plan("g50.csv", "Leads", &["--api", "auto", "--new-run"])
        .expect_code(0)
        .expect_in(
            Stream::Out,
            &[
                "credits needed         20   (mass_update 20 in 20 calls; Update Records 0)",
                "calls needed           20   (theoretical minimum 20)",
                "all mass_update: 20 credits / 20 calls; all Update Records: 100 credits / 10 calls",
                "snapshot       off by default, it would add 10 credits (+50% of 20 write credits); --snapshot takes it",
            ],
        );
    // --optimize calls, or `optimize = "calls"` in massup.toml: the fewer calls.
    let ran = ws.plan(
        "g50.csv",
        "Leads",
        &[
            "--api",
            "auto",
            "--optimize",
            "calls",
            "--new-run",
            "--json",
        ],
    );
    ran.expect_code(0);
    let by_calls = ran.json();
    assert_eq!(
        [
            &by_calls["optimize"],
            &by_calls["credits"],
            &by_calls["calls"]
        ],
        [&json!("calls"), &json!(100), &json!(10)],
        "{}",
        ran.report()
    );
    let conn = ws.open_db();
    let settings: String = run_value(&conn, last_run(&conn), "settings_json");
    assert!(settings.contains(r#""optimize":"calls""#), "{settings}");
    ws.write("massup.toml", "optimize = \"calls\"\n");
    let ran = ws.plan(
        "g50.csv",
        "Leads",
        &["--api", "auto", "--new-run", "--json"],
    );
    assert_eq!(ran.json()["credits"], 100, "{}", ran.report());
    // A flag beats the file.
    let ran = ws.plan(
        "g50.csv",
        "Leads",
        &[
            "--api",
            "auto",
            "--optimize",
            "credits",
            "--new-run",
            "--json",
        ],
    );
    assert_eq!(ran.json()["credits"], 20, "{}", ran.report());
    ws.plan("g50.csv", "Leads", &["--optimize", "cheap"])
        .expect_code(2)
        .expect_in(Stream::Err, &["--optimize"]);
}

#[test]
fn the_snapshot_is_on_by_default_when_its_reads_add_a_quarter_at_most() {
    let ws = Workspace::new();
    // 300 records of their own cities: 30 write credits in 3 Update Records calls, read
    // in 3 Get Records calls (+10%).
    let mut csv = String::from("id,City\n");
    for i in 0..300 {
        csv.push_str(&format!("{},C{i}\n", 1_000 + i));
    }
    ws.write("unique.csv", &csv);
    let ran = ws.plan("unique.csv", "Leads", &["--api", "auto", "--json"]);
    let plan = ran.json();
    assert_eq!(
        [
            &plan["credits"],
            &plan["snapshot"],
            &plan["snapshot_decided"],
            &plan["snapshot_credits"],
            &plan["snapshot_credits_estimate"]
        ],
        [
            &json!(30),
            &json!(true),
            &json!("by_cost"),
            &json!(3),
            &json!(3)
        ],
        "{}",
        ran.report()
    );
    ws.plan("unique.csv", "Leads", &["--api", "auto", "--new-run"])
        .expect_in(
            Stream::Out,
            &["snapshot       on, 3 read credits (+10% of 30 write credits) in 3 Get Records calls"],
        );
    // Groups of 50 by mass_update are read at 10 credits for 20 (+50%): off, saying what
    // --snapshot would add; asked for, it is on.
    ws.write("g50.csv", groups_of_50());
    let ran = ws.plan("g50.csv", "Leads", &["--api", "auto", "--json"]);
    let plan = ran.json();
    assert_eq!(
        [
            &plan["snapshot"],
            &plan["snapshot_credits"],
            &plan["snapshot_credits_estimate"]
        ],
        [&json!(false), &json!(0), &json!(10)],
        "{}",
        ran.report()
    );
    assert!(plan["warnings"].as_array().unwrap().iter().any(|w| w
        .as_str()
        .unwrap()
        .contains("would add 10 credit(s) to the 20 write credit(s)")));
    let ran = ws.plan(
        "g50.csv",
        "Leads",
        &["--api", "auto", "--snapshot", "--new-run", "--json"],
    );
    let plan = ran.json();
    assert_eq!(
        [
            &plan["snapshot"],
            &plan["snapshot_decided"],
            &plan["snapshot_credits"]
        ],
        [&json!(true), &json!("asked"), &json!(10)],
        "{}",
        ran.report()
    );
}

#[test]
fn blank_lines_in_an_lf_file_shifted_later_line_numbers() {
    // The csv crate dates a record from where reading started, before the blank lines it
    // skips, so every row after a blank line of an LF file was reported a line early.
    let ws = Workspace::new();
    ws.write(
        "blank.csv",
        "\nid,Rating\n1,Hot\n\n2,\n\n\n3,\"two\nlines\"\n4,\n5,Cold",
    );
    let ran = ws.plan("blank.csv", "Leads", &[]);
    ran.expect_code(3).expect_in(
        Stream::Out,
        &[
            "blank.csv:5: nothing to update",
            "blank.csv:10: nothing to update",
        ],
    );
    let conn = ws.open_db();
    let lines: Vec<i64> = rows(&conn, last_run(&conn))
        .iter()
        .map(|r| r.line)
        .collect();
    assert_eq!(lines, [3, 5, 8, 10, 11], "{}", ran.report());
    // A header after blank lines is named by its own line too.
    ws.write("blank_header.csv", "\n\nid,A,A\n1,x,y\n");
    ws.plan("blank_header.csv", "Leads", &[])
        .expect_code(2)
        .expect_in(Stream::Err, &["blank_header.csv: line 3:"]);
}
