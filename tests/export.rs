//! `massup export` end to end with the real binary against the mock: every record with the
//! values the mock's ledger holds, a round trip through `run` that writes exactly the edited
//! column, `--where`, a refused field name, and an export killed with SIGKILL then resumed
//! into the same file as an export never interrupted.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use massup::mock::MockConfig;
use serde_json::{Map, Value};
use support::*;

/// `massup export --module Leads --fields <fields> --api-domain <mock> ...extra`.
async fn export(ws: &Workspace, fields: &str, extra: &[&str]) -> Ran {
    let mut args = vec![
        "export",
        "--module",
        "Leads",
        "--fields",
        fields,
        "--api-domain",
        &ws.url,
        "--accounts-url",
        &ws.accounts_url,
    ];
    args.extend_from_slice(extra);
    ws.massup(&args, &Creds::mock_token()).await
}

/// The rows of an exported CSV: header, then id -> cells.
fn read_csv(path: &Path) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    let mut reader = csv::Reader::from_path(path).expect("the export is a CSV");
    let header = reader
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            let r = r.expect("a row");
            let cells: Vec<String> = r.iter().map(str::to_string).collect();
            (cells[0].clone(), cells[1..].to_vec())
        })
        .collect();
    (header, rows)
}

/// What a cell should hold for a value the ledger has (none: empty).
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn json_of(ran: &Ran) -> Value {
    serde_json::from_str(&ran.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", ran.report()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_of_5000_records_holds_every_id_and_the_values_the_mock_holds() {
    let config = MockConfig {
        records: 5_000,
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = scene(&config, 1_500, true).await;
    ws.run(&csv, &["--yes"], &Creds::mock_token())
        .await
        .expect_code(0);
    let charged_before = server.ledger().credits_charged;
    let out = ws.path().join("leads.csv");
    let ran = export(
        &ws,
        "Email,Lead_Status,City,No_of_Employees",
        &[
            "--api-version",
            "v8",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    ran.expect_code(0);
    let summary = json_of(&ran);
    let (header, rows) = read_csv(&out);
    assert_eq!(
        header,
        ["id", "Email", "Lead_Status", "City", "No_of_Employees"]
    );
    assert_eq!(rows.len(), 5_000);
    assert_eq!(summary["records"], 5_000);
    // 25 pages of 200 (10 by number, 15 by token) and the metadata call.
    assert_eq!(summary["calls"], 26, "{}", ran.report());
    let ledger = server.ledger();
    assert_eq!(
        summary["credits"].as_u64().unwrap(),
        ledger.credits_charged - charged_before,
        "the credits reported are those the mock charged"
    );
    let emails: BTreeMap<String, String> = config
        .record_ids()
        .into_iter()
        .zip(config.record_emails())
        .collect();
    let mut ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5_000, "every record once");
    let empty = Map::new();
    for (id, cells) in &rows {
        let held = ledger.records.get(id).unwrap_or(&empty);
        assert_eq!(cells[0], emails[id], "{id}'s Email");
        for (at, field) in ["Lead_Status", "City", "No_of_Employees"]
            .iter()
            .enumerate()
        {
            assert_eq!(cells[at + 1], cell(held.get(*field)), "{id}'s {field}");
        }
    }
    // The values the run wrote are among them.
    let written = rows
        .iter()
        .filter(|(id, _)| changes.expected.contains_key(id))
        .filter(|(_, cells)| !cells[1].is_empty())
        .count();
    assert_eq!(written, 1_500);
    assert!(
        !ws.path().join("leads.csv.export-state").exists(),
        "a finished export leaves no state"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_edit_one_column_and_run_writes_exactly_that_column() {
    let config = MockConfig {
        records: 400,
        ..MockConfig::default()
    };
    let (server, ws, _, csv) = scene(&config, 300, true).await;
    ws.run(&csv, &["--yes"], &Creds::mock_token())
        .await
        .expect_code(0);
    let before = server.ledger().records;
    let out = ws.path().join("leads.csv");
    export(
        &ws,
        "Lead_Status,City,No_of_Employees",
        &["--out", out.to_str().unwrap()],
    )
    .await
    .expect_code(0);
    // Change City on every record that holds one; keep everything else as exported.
    let text = std::fs::read_to_string(&out).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(reader.headers().unwrap())
        .expect("header");
    let mut edited = 0;
    for record in reader.records() {
        let mut cells: Vec<String> = record.unwrap().iter().map(str::to_string).collect();
        if !cells[2].is_empty() {
            cells[2] = format!("{} (moved)", cells[2]);
            edited += 1;
        }
        writer.write_record(&cells).expect("row");
    }
    assert_eq!(edited, 300);
    let edited_csv = ws.write(
        "edited.csv",
        &String::from_utf8(writer.into_inner().unwrap()).unwrap(),
    );
    let ran = ws.run(&edited_csv, &["--yes"], &Creds::mock_token()).await;
    // The 100 records no run wrote export with every cell empty, which `run` reports as
    // invalid ("nothing to update": exit 3) and sends nothing for.
    ran.expect_code(3);
    let conn = ws.open_db();
    let outcomes = row_outcomes(&conn, last_run(&conn));
    assert_eq!(outcomes.len(), 400);
    let invalid = outcomes
        .iter()
        .filter(|(_, o)| *o == massup::summary::RowOutcome::Invalid)
        .count();
    assert_eq!(invalid, 100, "{}", ran.report());
    ran.expect_in(Stream::Out, &["nothing to update"]);
    let after = server.ledger().records;
    let empty = Map::new();
    for (id, now) in &after {
        let was = before.get(id).unwrap_or(&empty);
        let changed: Vec<&String> = now
            .keys()
            .chain(was.keys())
            .filter(|f| now.get(*f) != was.get(*f))
            .collect();
        match was.get("City") {
            Some(Value::String(city)) => {
                assert_eq!(now["City"], Value::from(format!("{city} (moved)")), "{id}");
                assert!(
                    changed.iter().all(|f| *f == "City"),
                    "{id}: only City changes, not {changed:?}\n{}",
                    ran.report()
                );
            }
            _ => assert!(changed.is_empty(), "{id} untouched, not {changed:?}"),
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_exports_only_the_matching_records_and_a_bad_field_is_refused_by_name() {
    let config = MockConfig {
        records: 600,
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = scene(&config, 500, false).await;
    ws.run(&csv, &["--yes"], &Creds::mock_token())
        .await
        .expect_code(0);
    let out = ws.path().join("porto.csv");
    export(
        &ws,
        "City,Lead_Status",
        &["--where", "City = 'Porto'", "--out", out.to_str().unwrap()],
    )
    .await
    .expect_code(0);
    let (_, rows) = read_csv(&out);
    let mut got: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
    got.sort();
    let mut want: Vec<String> = changes
        .expected
        .iter()
        .filter(|(_, v)| v["City"] == "Porto")
        .map(|(id, _)| id.clone())
        .collect();
    want.sort();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    assert!(rows.iter().all(|(_, cells)| cells[0] == "Porto"));
    // A condition Zoho refuses is the user's to fix: exit 2, and nothing left to resume.
    let ran = export(
        &ws,
        "City",
        &["--where", "Cty = 'Porto'", "--out", "bad.csv"],
    )
    .await;
    ran.expect_code(2).expect_stderr(&["--where"]);
    assert!(!ws.path().join("bad.csv.export-state").exists());
    // A read-only field is exported, with a note that `run` will refuse its column.
    export(&ws, "City,Created_Time", &["--out", "created.csv"])
        .await
        .expect_code(0)
        .expect_stderr(&["Created_Time is read-only"]);
    // A field the module does not have: refused before any record is read, by name.
    let reads = server.ledger().get_records_requests + server.ledger().coql_requests;
    let ran = export(&ws, "Email,Cty", &["--out", "x.csv"]).await;
    ran.expect_code(2)
        .expect_stderr(&["Cty", "did you mean City?"]);
    assert_eq!(
        server.ledger().get_records_requests + server.ledger().coql_requests,
        reads
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_killed_mid_way_and_resumed_writes_the_same_file() {
    let config = MockConfig {
        records: 3_000,
        latency_mean: Duration::from_millis(60),
        ..MockConfig::default()
    };
    let (server, ws, _, csv) = scene(&config, 800, true).await;
    ws.run(&csv, &["--yes"], &Creds::mock_token())
        .await
        .expect_code(0);
    let fields = "Email,Lead_Status,City,No_of_Employees";
    let whole = ws.path().join("whole.csv");
    export(
        &ws,
        fields,
        &["--api-version", "v8", "--out", whole.to_str().unwrap()],
    )
    .await
    .expect_code(0);

    let out = ws.path().join("killed.csv");
    let state = ws.path().join("killed.csv.export-state");
    let args = [
        "export",
        "--module",
        "Leads",
        "--fields",
        fields,
        "--api-domain",
        &ws.url,
        "--api-version",
        "v8",
        "--out",
        out.to_str().unwrap(),
    ];
    let mut child = ws
        .command(&args, &Creds::mock_token())
        .spawn()
        .expect("start the export");
    // Kill it once a few pages are on disk, mid-way through the 15.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rows = std::fs::read_to_string(&state)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|s| s["rows"].as_u64())
            .unwrap_or(0);
        if rows >= 600 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the export never got going"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("reaped");
    assert!(state.exists(), "a killed export keeps its state");
    let partial = std::fs::read(&out).unwrap();
    assert!(partial.len() < std::fs::read(&whole).unwrap().len());

    // Resuming with other fields is refused, naming both.
    let ran = export(
        &ws,
        "Email,City",
        &[
            "--api-version",
            "v8",
            "--out",
            out.to_str().unwrap(),
            "--resume",
        ],
    )
    .await;
    ran.expect_code(2).expect_stderr(&[
        "--resume",
        "--fields Email,Lead_Status,City,No_of_Employees",
    ]);
    // Starting again over it without --resume is refused too: it would lose the pages.
    export(&ws, fields, &["--out", out.to_str().unwrap()])
        .await
        .expect_code(2)
        .expect_stderr(&["--resume"]);

    // The API version is the state's when not given.
    let ran = export(
        &ws,
        fields,
        &["--out", out.to_str().unwrap(), "--resume", "--json"],
    )
    .await;
    ran.expect_code(0);
    assert_eq!(json_of(&ran)["records"], 3_000);
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(&whole).unwrap(),
        "the resumed file is the uninterrupted one"
    );
    assert!(!state.exists());
    // Nothing left to resume.
    export(&ws, fields, &["--out", out.to_str().unwrap(), "--resume"])
        .await
        .expect_code(2)
        .expect_stderr(&["no unfinished export"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_through_500s_dropped_connections_and_garbage_writes_what_a_quiet_server_gives() {
    let quiet = MockConfig {
        records: 2_600,
        ..MockConfig::default()
    };
    let noisy = MockConfig {
        fail_500_rate: 0.15,
        drop_before_rate: 0.1,
        garbage_rate: 0.1,
        ..quiet.clone()
    };
    let mut files = Vec::new();
    for config in [quiet, noisy] {
        let server = start(config).await;
        let ws = Workspace::new(&server);
        let out = ws.path().join("all.csv");
        let ran = export(
            &ws,
            "Email,City",
            &[
                "--api-version",
                "v8",
                "--out",
                out.to_str().unwrap(),
                "--backoff-ms",
                "5",
            ],
        )
        .await;
        ran.expect_code(0);
        files.push(std::fs::read(&out).unwrap());
        // 13 pages; the noisy server made some of them take more than one call.
        let requests = server.ledger().get_records_requests;
        assert!(requests >= 13, "{requests}");
        if files.len() == 2 {
            assert!(requests > 13, "no fault was drawn: {requests} calls");
        }
        server.shutdown().await;
    }
    assert!(files[0] == files[1], "faults change nothing in the file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_credits_stops_an_export_resumably_and_counts_its_earlier_invocations() {
    let config = MockConfig {
        records: 1_200,
        ..MockConfig::default()
    };
    let server = start(config).await;
    let ws = Workspace::new(&server);
    let out = ws.path().join("budget.csv");
    let out = out.to_str().unwrap();
    let flags = ["--api-version", "v8", "--out", out, "--json"];
    // The metadata call and three pages fit in 4 credits; the fourth page would not.
    let ran = export(
        &ws,
        "Email",
        &[&flags[..], &["--max-credits", "4"]].concat(),
    )
    .await;
    ran.expect_code(4);
    let stopped = json_of(&ran);
    assert_eq!(stopped["error"]["kind"], "resumable", "{}", ran.report());
    let (_, rows) = read_csv(Path::new(out));
    assert_eq!(rows.len(), 600);
    // A budget of 8 counts the 4 spent: the metadata call and the three pages left.
    let ran = export(
        &ws,
        "Email",
        &[&flags[..], &["--max-credits", "8", "--resume"]].concat(),
    )
    .await;
    ran.expect_code(0);
    let done = json_of(&ran);
    assert_eq!(done["records"], 1_200);
    assert_eq!(done["credits"], 8);
    assert_eq!(server.ledger().credits_charged, 8);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_reach_of_coql_an_export_says_what_to_do_instead() {
    // v2 has no page tokens, so an export goes by COQL, whose OFFSET reaches 10,000 rows.
    let config = MockConfig {
        records: 10_300,
        ..MockConfig::default()
    };
    let server = start(config).await;
    let ws = Workspace::new(&server);
    let ran = export(&ws, "Email", &["--api-version", "v2", "--out", "all.csv"]).await;
    ran.expect_code(2)
        .expect_stderr(&["LIMIT_EXCEEDED", "--api-version v2.1 or later"]);
    assert!(!ws.path().join("all.csv.export-state").exists());
    // The way it names goes past it.
    export(&ws, "Email", &["--api-version", "v2.1", "--out", "all.csv"])
        .await
        .expect_code(0);
    let (_, rows) = read_csv(&ws.path().join("all.csv"));
    assert_eq!(rows.len(), 10_300);
    server.shutdown().await;
}
