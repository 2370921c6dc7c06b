//! `massup plan` on sheets as spreadsheets save them: ';'-separated with a BOM and CRLF,
//! headed by field labels, decimal commas, day-first dates, UTF-16, Zoho's `zcrm_` ids,
//! and the workbooks and binary files that are not CSVs at all. Every new flag has a
//! bad-input case whose message names the file, the line and the column or field.
mod common;

use common::{last_run, payload_by_row, rows, run_value, Stream, Workspace};
use serde_json::json;

/// Zoho's settings/fields answer for Leads (with `field_label`s), as shipped in samples/.
fn leads_fields() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/samples/fields/Leads.json").to_string()
}

/// The `problems` of a `plan --json` summary as "path:line: message" lines.
fn problems(summary: &serde_json::Value) -> Vec<String> {
    summary["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            format!(
                "{}:{}: {}",
                p["path"].as_str().unwrap(),
                p["line"],
                p["message"].as_str().unwrap()
            )
        })
        .collect()
}

/// The `warnings` of a `plan --json` summary, one a line.
fn warnings(summary: &serde_json::Value) -> String {
    summary["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[track_caller]
fn assert_problem(summary: &serde_json::Value, needles: &[&str]) {
    let all = problems(summary);
    assert!(
        all.iter().any(|p| needles.iter().all(|n| p.contains(n))),
        "no problem holds all of {needles:?}: {all:#?}"
    );
}

/// As Excel saves a sheet in Germany: UTF-8 BOM, ';', CRLF, labels, decimal commas,
/// dd.mm.yyyy dates, and Zoho's export ids.
const EUROPEAN_SHEET: &str = concat!(
    "\u{feff}Record Id;Lead Status;Annual Revenue;No. of Employees;follow_up_date;City\r\n",
    "zcrm_1001;Contacted;1.250,50;1.200;29.11.2026;Köln\r\n",
    "1002;Junk Lead;980,00;7;01.02.2027;\r\n",
    "zcrm_1003;;1 250,50;;;Zürich, Altstadt\r\n",
);

#[test]
fn a_semicolon_bom_crlf_label_headed_sheet_plans_with_the_mapping_shown() {
    let ws = Workspace::new();
    ws.write("leads-de.csv", EUROPEAN_SHEET);
    let fields = leads_fields();
    let flags = [
        "--fields",
        fields.as_str(),
        "--decimal-comma",
        "--date-format",
        "%d.%m.%Y",
        "--json",
    ];
    let ran = ws.plan("leads-de.csv", "Leads", &flags);
    ran.expect_code(0);
    let summary = ran.json();
    assert_eq!(summary["invalid_rows"], 0, "{}", ran.report());
    assert_eq!(
        summary["column_mapping"],
        json!([
            {"header": "Lead Status", "api_name": "Lead_Status", "by": "name"},
            {"header": "Annual Revenue", "api_name": "Annual_Revenue", "by": "name"},
            {"header": "No. of Employees", "api_name": "No_of_Employees", "by": "name"},
            {"header": "follow_up_date", "api_name": "Follow_Up_Date", "by": "name"},
        ]),
        "City is an API name already and is not listed"
    );
    let warnings = warnings(&summary);
    assert!(
        warnings.contains("separated by ';'") && warnings.contains("--delimiter ';'"),
        "{warnings}"
    );

    let conn = ws.open_db();
    let run = last_run(&conn);
    // Stored as used: later stages read the run with API names, ';' and "Record Id".
    assert_eq!(
        run_value::<String>(&conn, run, "columns_json"),
        r#"["Lead_Status","Annual_Revenue","No_of_Employees","Follow_Up_Date","City"]"#
    );
    assert_eq!(run_value::<String>(&conn, run, "id_column"), "Record Id");
    let settings: serde_json::Value =
        serde_json::from_str(&run_value::<String>(&conn, run, "settings_json")).unwrap();
    assert_eq!(
        (
            &settings["delimiter"],
            &settings["id_column"],
            &settings["decimal_comma"],
            &settings["date_format"]
        ),
        (
            &json!(";"),
            &json!("Record Id"),
            &json!(true),
            &json!("%d.%m.%Y")
        )
    );
    let payloads = payload_by_row(&conn, run);
    assert_eq!(
        serde_json::Value::Object(payloads[&0].clone()),
        json!({"Lead_Status": "Contacted", "Annual_Revenue": 1250.5, "No_of_Employees": 1200,
               "Follow_Up_Date": "2026-11-29", "City": "Köln"})
    );
    assert_eq!(
        serde_json::Value::Object(payloads[&1].clone()),
        json!({"Lead_Status": "Junk Lead", "Annual_Revenue": 980, "No_of_Employees": 7,
               "Follow_Up_Date": "2027-02-01"})
    );
    assert_eq!(
        serde_json::Value::Object(payloads[&2].clone()),
        json!({"Annual_Revenue": 1250.5, "City": "Zürich, Altstadt"})
    );
    let stored = rows(&conn, run);
    assert_eq!(
        stored
            .iter()
            .map(|r| (r.line, r.record_id.as_str()))
            .collect::<Vec<_>>(),
        [(2, "zcrm_1001"), (3, "1002"), (4, "zcrm_1003")],
        "lines count the header; ids are stored as given"
    );

    // The human summary prints the mapping, one line a column.
    let ran = ws.plan(
        "leads-de.csv",
        "Leads",
        &[
            "--fields",
            &fields,
            "--decimal-comma",
            "--date-format",
            "%d.%m.%Y",
            "--new-run",
        ],
    );
    ran.expect_code(0).expect_in(
        Stream::Out,
        &[
            "\"Lead Status\" -> Lead_Status",
            "\"No. of Employees\" -> No_of_Employees",
            "warning: the header is separated by ';'",
        ],
    );
}

#[test]
fn a_utf16le_file_with_a_bom_is_decoded() {
    let ws = Workspace::new();
    let text = "ID\tLast_Name\tCity\r\n1\tMüller\tMünchen\r\n2\t日本\t東京\r\n";
    let mut bytes = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    ws.write("unicode.txt", bytes);
    let ran = ws.plan("unicode.txt", "Leads", &["--json"]);
    ran.expect_code(0);
    let summary = ran.json();
    let warnings = warnings(&summary);
    assert!(warnings.contains("UTF-16 LE"), "{warnings}");
    assert!(warnings.contains("separated by '\\t'"), "{warnings}");
    let conn = ws.open_db();
    let run = last_run(&conn);
    let payloads = payload_by_row(&conn, run);
    assert_eq!(
        serde_json::Value::Object(payloads[&1].clone()),
        json!({"Last_Name": "日本", "City": "東京"})
    );
    assert_eq!(run_value::<String>(&conn, run, "id_column"), "ID");
}

#[test]
fn an_excel_workbook_is_refused_by_name() {
    let ws = Workspace::new();
    let mut xlsx = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00".to_vec();
    xlsx.extend_from_slice(b"[Content_Types].xml");
    ws.write("leads.csv", xlsx);
    ws.plan("leads.csv", "Leads", &[]).expect_code(2).expect_in(
        Stream::Err,
        &["leads.csv is an Excel workbook (a zip file), not a CSV: save it as 'CSV UTF-8' and plan that"],
    );
    assert_eq!(ws.run_count(), 0);
}

#[test]
fn a_binary_header_is_refused_with_its_line_and_column() {
    let ws = Workspace::new();
    ws.write("blob.csv", b"id,Last\x00Name\n1,x\n");
    ws.plan("blob.csv", "Leads", &[]).expect_code(2).expect_in(
        Stream::Err,
        &[
            "blob.csv: line 1: the header holds NUL bytes (column 2)",
            "CSV UTF-8",
        ],
    );
    assert_eq!(ws.run_count(), 0);
}

// ---- the delimiter ----

#[test]
fn a_given_delimiter_is_never_overridden_and_the_fix_is_named() {
    let ws = Workspace::new();
    ws.write("semi.csv", "id;Last_Name\n1;x\n");
    ws.plan("semi.csv", "Leads", &["--delimiter", ","])
        .expect_code(2)
        .expect_in(
            Stream::Err,
            &[
                "semi.csv: line 1: the header is one column \"id;Last_Name\"",
                "pass --delimiter ';'",
            ],
        );
    assert_eq!(ws.run_count(), 0);
}

// ---- --decimal-comma ----

#[test]
fn decimal_comma_bad_numbers_name_file_line_and_column() {
    let ws = Workspace::new();
    ws.write(
        "amounts.csv",
        "id;Annual Revenue;Score\n1;1.250,50;3,5\n2;12.5;1\n3;4;1,2,3\n",
    );
    let fields = leads_fields();
    let ran = ws.plan(
        "amounts.csv",
        "Leads",
        &["--fields", &fields, "--decimal-comma", "--json"],
    );
    ran.expect_code(3);
    let summary = ran.json();
    assert_eq!(summary["valid_rows"], 1, "{}", ran.report());
    assert_problem(
        &summary,
        &[
            "amounts.csv:3:",
            "column Annual Revenue (Annual_Revenue)",
            "\"12.5\" is not a number",
            "'.' separates thousands",
        ],
    );
    assert_problem(
        &summary,
        &[
            "amounts.csv:4:",
            "column Score",
            "\"1,2,3\"",
            "more than one decimal comma",
        ],
    );
}

#[test]
fn without_decimal_comma_a_comma_number_is_refused_naming_the_flag() {
    let ws = Workspace::new();
    ws.write("amounts.csv", "id,Annual_Revenue\n1,\"1250,50\"\n2,10\n");
    let ran = ws.plan(
        "amounts.csv",
        "Leads",
        &["--fields", &leads_fields(), "--json"],
    );
    ran.expect_code(3);
    assert_problem(
        &ran.json(),
        &[
            "amounts.csv:2:",
            "column Annual_Revenue",
            "\"1250,50\"",
            "pass --decimal-comma",
        ],
    );
}

// ---- --date-format and --datetime-format ----

#[test]
fn a_date_that_does_not_match_the_format_names_file_line_and_column() {
    let ws = Workspace::new();
    ws.write(
        "dates.csv",
        "id,Follow Up Date\n1,29.11.2026\n2,31.02.2026\n3,11/29/2026\n",
    );
    let ran = ws.plan(
        "dates.csv",
        "Leads",
        &[
            "--fields",
            &leads_fields(),
            "--date-format",
            "%d.%m.%Y",
            "--json",
        ],
    );
    ran.expect_code(3);
    let summary = ran.json();
    assert_eq!(summary["valid_rows"], 1);
    assert_problem(
        &summary,
        &[
            "dates.csv:3:",
            "column Follow Up Date (Follow_Up_Date)",
            "\"31.02.2026\"",
            "not a calendar date",
        ],
    );
    assert_problem(
        &summary,
        &["dates.csv:4:", "\"11/29/2026\"", "%d.%m.%Y (--date-format)"],
    );
}

#[test]
fn without_date_format_a_local_date_is_refused_naming_the_format() {
    let ws = Workspace::new();
    ws.write(
        "dates.csv",
        "id,Follow_Up_Date\n1,11/29/2026\n2,05/06/2026\n",
    );
    let ran = ws.plan(
        "dates.csv",
        "Leads",
        &["--fields", &leads_fields(), "--json"],
    );
    ran.expect_code(3);
    let summary = ran.json();
    assert_problem(
        &summary,
        &[
            "dates.csv:2:",
            "column Follow_Up_Date",
            "--date-format %m/%d/%Y",
        ],
    );
    assert_problem(
        &summary,
        &[
            "dates.csv:3:",
            "--date-format %d/%m/%Y",
            "--date-format %m/%d/%Y",
            "does not guess",
        ],
    );
}

#[test]
fn datetimes_in_a_format_honour_the_timezone_and_bad_ones_name_line_and_column() {
    let ws = Workspace::new();
    ws.write(
        "times.csv",
        "id,Last Contacted\n1,29.11.2026 14:30\n2,29.11.2026 25:00\n3,29.03.2026 02:30\n",
    );
    let ran = ws.plan(
        "times.csv",
        "Leads",
        &[
            "--fields",
            &leads_fields(),
            "--datetime-format",
            "%d.%m.%Y %H:%M",
            "--timezone",
            "Europe/Berlin",
            "--json",
        ],
    );
    ran.expect_code(3);
    let summary = ran.json();
    assert_problem(
        &summary,
        &[
            "times.csv:3:",
            "column Last Contacted (Last_Contacted)",
            "\"29.11.2026 25:00\"",
        ],
    );
    assert_problem(
        &summary,
        &["times.csv:4:", "does not exist in Europe/Berlin"],
    );
    let conn = ws.open_db();
    let payloads = payload_by_row(&conn, last_run(&conn));
    assert_eq!(
        serde_json::Value::Object(payloads[&0].clone()),
        json!({"Last_Contacted": "2026-11-29T14:30:00+01:00"})
    );
}

#[test]
fn a_bad_format_is_refused_before_reading_naming_the_flag() {
    let ws = Workspace::new();
    ws.write("dates.csv", "id,Follow_Up_Date\n1,29.11.2026\n");
    ws.plan("dates.csv", "Leads", &["--date-format", "%d.%m"])
        .expect_code(2)
        .expect_in(
            Stream::Err,
            &[
                "--date-format \"%d.%m\"",
                "does not name the day, the month and the year",
            ],
        );
    ws.plan("dates.csv", "Leads", &["--datetime-format", "%d.%m.%Y %Q"])
        .expect_code(2)
        .expect_in(Stream::Err, &["--datetime-format \"%d.%m.%Y %Q\""]);
    assert_eq!(ws.run_count(), 0);
}

// ---- the id column and ids ----

#[test]
fn two_id_like_columns_are_refused_naming_both() {
    let ws = Workspace::new();
    ws.write("ids.csv", "Id,Record_Id,Last_Name\n1,2,x\n");
    ws.plan("ids.csv", "Leads", &[]).expect_code(2).expect_in(
        Stream::Err,
        &[
            "ids.csv: line 1:",
            "\"Id\" (column 1), \"Record_Id\" (column 2)",
            "--id-column NAME",
        ],
    );
    // Saying which one works.
    ws.plan("ids.csv", "Leads", &["--id-column", "record id"])
        .expect_code(0);
    let conn = ws.open_db();
    assert_eq!(
        run_value::<String>(&conn, last_run(&conn), "id_column"),
        "Record_Id"
    );
}

#[test]
fn no_id_column_names_the_columns_and_both_fixes() {
    let ws = Workspace::new();
    ws.write("keyed.csv", "Email,Last_Name\na@b.c,x\n");
    ws.plan("keyed.csv", "Leads", &[]).expect_code(2).expect_in(
        Stream::Err,
        &[
            "keyed.csv: line 1: the header has no id column",
            "(columns: Email, Last_Name)",
            "--id-column NAME",
            "--match-by FIELD",
        ],
    );
    ws.plan("keyed.csv", "Leads", &["--id-column", "Key"])
        .expect_code(2)
        .expect_in(
            Stream::Err,
            &["keyed.csv: line 1: the header has no id column \"Key\""],
        );
    assert_eq!(ws.run_count(), 0);
}

#[test]
fn zoho_export_ids_are_accepted_and_bad_ones_name_their_line() {
    let ws = Workspace::new();
    ws.write(
        "export.csv",
        "Record Id,Last_Name\nzcrm_4876876000000333001,a\nzcrm_x1,b\n",
    );
    let ran = ws.plan("export.csv", "Leads", &["--json"]);
    ran.expect_code(3);
    assert_problem(&ran.json(), &["export.csv:3:", "record id \"x1\""]);
    let conn = ws.open_db();
    let run = last_run(&conn);
    let members: Vec<i64> = common::chunks(&conn, run)
        .iter()
        .flat_map(|c| c.members.iter().map(|&(_, id)| id))
        .collect();
    assert_eq!(members, [4876876000000333001]);
}

// ---- labels ----

#[test]
fn ambiguous_and_unknown_labels_are_refused_naming_the_candidates() {
    let ws = Workspace::new();
    let fields = ws.write(
        "fields.json",
        json!({"fields": [
            {"api_name": "Region", "field_label": "Area", "data_type": "text"},
            {"api_name": "Area_2", "field_label": "Area", "data_type": "text"},
            {"api_name": "Lead_Status", "field_label": "Lead Status", "data_type": "text"},
        ]})
        .to_string(),
    );
    ws.write("labels.csv", "id,Area,Lead Statsu\n1,x,y\n");
    ws.plan("labels.csv", "Leads", &["--fields", fields.to_str().unwrap()])
        .expect_code(2)
        .expect_in(
            Stream::Err,
            &[
                "labels.csv: 2 column(s)",
                "column \"Area\" could name any of the fields Region (label \"Area\"), Area_2 (label \"Area\")",
                "column \"Lead Statsu\" is not a field of this module",
                "did you mean \"Lead_Status\"?",
            ],
        );
    assert_eq!(ws.run_count(), 0);
}

#[test]
fn planning_a_sniffed_sheet_again_finds_its_run_with_the_same_settings() {
    let ws = Workspace::new();
    ws.write("semi.csv", "Record Id;Last_Name\n1;x\n");
    ws.plan("semi.csv", "Leads", &[]).expect_code(0);
    let ran = ws.plan("semi.csv", "Leads", &[]);
    ran.expect_code(0)
        .expect_in(Stream::Out, &["was already planned for Leads as run 1"]);
    assert!(
        !ran.stdout().contains("with other settings"),
        "the delimiter and id column the header decided are the same settings\n{}",
        ran.report()
    );
    let ran = ws.plan("semi.csv", "Leads", &["--null-marker", "NULL"]);
    ran.expect_in(Stream::Out, &["with other settings than these"]);
}

#[test]
fn ignored_columns_are_listed_and_never_read() {
    let ws = Workspace::new();
    ws.write(
        "notes.csv",
        "id,Notes,City,Stadt\n1,\"call, later\",Oslo,Bergen\n2,,Rome,\n",
    );
    let fields = leads_fields();
    let ran = ws.plan(
        "notes.csv",
        "Leads",
        &[
            "--fields",
            fields.as_str(),
            "--ignore-column",
            "notes",
            "--ignore-column",
            "Stadt",
            "--ignore-column",
            "Fax",
        ],
    );
    ran.expect_code(0).expect_in(
        Stream::Out,
        &[
            "Columns ignored as asked: \"Notes\", \"Stadt\"",
            "warning: column \"Fax\" is to be ignored, but the header has no such column",
        ],
    );
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_eq!(
        run_value::<String>(&conn, run, "columns_json"),
        r#"["City"]"#
    );
    assert_eq!(rows(&conn, run)[0].values, ["Oslo"]);
}

#[test]
fn a_map_reads_headers_as_fields_and_sets_values_on_every_row() {
    let ws = Workspace::new();
    ws.write("kept.csv", "Record Id,Stadt,Notes\n1,Köln,x\n2,,\n");
    let map = ws.write(
        "map.toml",
        "[columns]\n\"stadt\" = \"City\"\n\"Ort\" = \"City_2\"\n[skip]\ncolumns = [\"Notes\"]\n[set]\n\"Lead Source\" = \"Partner\"\n",
    );
    let fields = leads_fields();
    let ran = ws.plan(
        "kept.csv",
        "Leads",
        &[
            "--fields",
            fields.as_str(),
            "--map",
            map.to_str().unwrap(),
            "--api",
            "mass",
        ],
    );
    ran.expect_code(0).expect_in(
        Stream::Out,
        &[
            "Columns read as --map says:\n  \"Stadt\" -> City",
            "Set on every row (--map [set]):\n  Lead_Source = \"Partner\"",
            "Columns ignored as asked: \"Notes\"",
            "map.toml: line 3: [columns] \"Ort\": the header has no such column",
        ],
    );
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_eq!(
        run_value::<String>(&conn, run, "columns_json"),
        r#"["City","Lead_Source"]"#
    );
    // Row 2 changes only what the map sets.
    let payloads = payload_by_row(&conn, run);
    assert_eq!(
        serde_json::Value::Object(payloads[&1].clone()),
        json!({"Lead_Source": "Partner"})
    );
    assert_eq!(rows(&conn, run)[0].values, ["Köln", "Partner"]);
}

/// The map kept as a spreadsheet (`column,field,value`, here `;`-separated as Excel saves
/// it in Europe) plans exactly as its TOML form does.
#[test]
fn a_map_kept_as_a_csv_plans_as_its_toml_form() {
    let ws = Workspace::new();
    ws.write("kept.csv", "Record Id,Stadt,Notes\n1,Köln,x\n2,,\n");
    let map = ws.write(
        "map.csv",
        "column;field;value\nStadt;City;\nNotes;;\n;Lead Source;Partner\n",
    );
    let fields = leads_fields();
    let ran = ws.plan(
        "kept.csv",
        "Leads",
        &[
            "--fields",
            fields.as_str(),
            "--map",
            map.to_str().unwrap(),
            "--api",
            "mass",
        ],
    );
    ran.expect_code(0).expect_in(
        Stream::Out,
        &[
            "Columns read as --map says:\n  \"Stadt\" -> City",
            "Set on every row (--map [set]):\n  Lead_Source = \"Partner\"",
            "Columns ignored as asked: \"Notes\"",
        ],
    );
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_eq!(rows(&conn, run)[0].values, ["Köln", "Partner"]);
    // A bad row names the file and its line.
    let bad = ws.write("bad.csv", "column,field,value\nStadt,City,Berlin\n");
    ws.plan(
        "kept.csv",
        "Leads",
        &[
            "--fields",
            fields.as_str(),
            "--map",
            bad.to_str().unwrap(),
            "--new-run",
        ],
    )
    .expect_code(2)
    .expect_in(Stream::Err, &["bad.csv: line 2: a row maps a column"]);
}

#[test]
fn a_map_naming_a_field_that_does_not_exist_is_refused_naming_its_line() {
    let ws = Workspace::new();
    ws.write("kept.csv", "id,Stadt\n1,Köln\n");
    let fields = leads_fields();
    let map = ws.write(
        "map.toml",
        "[columns]\n\"Stadt\" = \"Cty\"\n[set]\nLead_Sorce = \"Partner\"\n",
    );
    ws.plan(
        "kept.csv",
        "Leads",
        &["--fields", fields.as_str(), "--map", map.to_str().unwrap()],
    )
    .expect_code(2)
    .expect_in(
        Stream::Err,
        &[
            "map.toml: line 2: [columns] \"Stadt\": \"Cty\" is not a field of this module",
            "did you mean \"City\"?",
            "map.toml: line 4: [set] Lead_Sorce: \"Lead_Sorce\" is not a field of this module",
            "did you mean \"Lead_Source\"?",
        ],
    );
    // A value its field refuses stops the plan, not every row.
    ws.write("city.csv", "id,City\n1,Köln\n");
    let map = ws.write("map.toml", "[set]\nLead_Source = \"Spreadsheet\"\n");
    ws.plan(
        "city.csv",
        "Leads",
        &["--fields", fields.as_str(), "--map", map.to_str().unwrap()],
    )
    .expect_code(2)
    .expect_in(
        Stream::Err,
        &[
            "map.toml: line 2: [set] Lead_Source = \"Spreadsheet\"",
            "is not a value of this picklist",
        ],
    );
    // Not TOML: the file and the line.
    let map = ws.write("map.toml", "[columns]\n\"Stadt\" = City\n");
    ws.plan("kept.csv", "Leads", &["--map", map.to_str().unwrap()])
        .expect_code(2)
        .expect_in(Stream::Err, &["--map", "map.toml", "line 2"]);
    assert_eq!(ws.run_count(), 0);
}
