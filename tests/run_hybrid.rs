//! The hybrid planner end to end: the real binary against the mock, which serves both
//! mass_update and Update Records (`PUT /crm/v2/Leads`). A spreadsheet of unique values
//! goes in batches of 100 records; a nightly file of few values stays at its mass_update
//! minimum; fields mass_update refuses go by Update Records; `--trigger none` is sent as
//! `"trigger": []`; retry regroups retryable records of both kinds. Every test checks the
//! mock's ledger: the values each record holds and the calls of each kind.

mod support;

use massup::mock::MockConfig;
use support::*;

fn json(ran: &Ran) -> serde_json::Value {
    serde_json::from_slice(&ran.output.stdout).unwrap_or_else(|e| panic!("{e}\n{}", ran.report()))
}

/// A migration sheet: every record with its own city, phone and title.
fn sheet(ids: &[String]) -> String {
    let mut csv = String::from("id,City,Phone,Title\n");
    for (i, id) in ids.iter().enumerate() {
        csv.push_str(&format!("{id},City {i},+47 {i:08},Title {i}\n"));
    }
    csv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sheet_of_unique_values_is_sent_in_50_calls_not_15000() {
    // 5,000 records: Update Records' 500 credits tie with one Bulk Write job, and a tie
    // stays with Update Records (more records go in a job: tests/run_bulk.rs).
    let config = MockConfig {
        records: 5_000,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let ids = config.record_ids();
    let csv = ws.write("sheet.csv", &sheet(&ids));
    let ran = ws
        .run(
            &csv,
            &["--api", "auto", "--concurrency", "4"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(0);
    ran.expect_in(
        Stream::Out,
        &[
            "credits needed        500   (mass_update 0; Update Records 500 in 50 calls)",
            "alternatives   all mass_update: 15,000 credits / 15,000 calls; all Update Records: 500 credits / 50 calls",
        ],
    );
    let ledger = server.ledger();
    assert_eq!(ledger.update_requests, 50, "{}", ran.report());
    assert_eq!(ledger.requests, 0, "no mass_update call");
    for (i, id) in ids.iter().enumerate() {
        let held = &ledger.records[id];
        assert_eq!(held["City"], format!("City {i}"), "record {id}");
        assert_eq!(held["Phone"], format!("+47 {i:08}"));
        assert_eq!(held["Title"], format!("Title {i}"));
        assert_eq!(ledger.applied[id], 1, "one update per record");
    }
    let status = ws.massup(&["status", "--json"], &Creds::mock_token()).await;
    let status = json(&status);
    assert_eq!(status["counts"]["rows"]["succeeded"], 5_000);
    assert_eq!(status["counts"]["calls"], 50);
    assert_eq!(status["run"]["min_calls"], 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nightly_file_of_few_values_stays_at_its_mass_update_minimum() {
    let config = MockConfig {
        records: 1200,
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = scene(&config, 1200, true).await;
    let ran = ws.run(&csv, &["--api", "auto"], &Creds::mock_token()).await;
    ran.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_all_applied(&conn, run, &ledger, &changes);
    assert_eq!(ledger.update_requests, 0);
    assert_eq!(ledger.requests, min_calls(&conn, run));
    assert_eq!(min_calls(&conn, run), 4 + 3 + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_mass_update_refuses_go_by_update_records_with_the_trigger_asked_for() {
    let config = MockConfig {
        records: 300,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let ids = config.record_ids();
    // Email and Description (multi-line) are not mass-updatable; the status is shared.
    let mut text = String::from("id,Email,Description,Lead_Status\n");
    for (i, id) in ids.iter().enumerate() {
        text.push_str(&format!(
            "{id},lead{i}@new.example,\"line one\nline two {i}\",Contacted\n"
        ));
    }
    let csv = ws.write("emails.csv", &text);
    // --api mass cannot carry them: refused before anything is stored, naming the columns.
    let refused = ws.run(&csv, &["--api", "mass"], &Creds::mock_token()).await;
    refused.expect_code(2);
    refused.expect_stderr(&["Email", "Description"]);
    // --api mass with --trigger none is refused with its reason.
    let refused = ws
        .run(
            &csv,
            &["--api", "mass", "--trigger", "none"],
            &Creds::mock_token(),
        )
        .await;
    refused.expect_code(2);
    refused.expect_stderr(&["only Update Records can turn them off"]);
    assert!(
        !ws.db().exists() || {
            let n: i64 = ws
                .open_db()
                .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
                .unwrap();
            n == 0
        }
    );
    assert_eq!(
        server.ledger().update_requests + server.ledger().requests,
        0
    );

    let ran = ws
        .run(
            &csv,
            &["--api", "auto", "--trigger", "none"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(0);
    let ledger = server.ledger();
    // --trigger none sends everything by Update Records, with "trigger": [] on every call.
    assert_eq!(ledger.requests, 0);
    assert_eq!(ledger.update_requests, 3);
    assert_eq!(ledger.update_triggers, vec![Some(vec![]); 3]);
    for (i, id) in ids.iter().enumerate() {
        let held = &ledger.records[id];
        assert_eq!(held["Email"], format!("lead{i}@new.example"));
        assert_eq!(held["Description"], format!("line one\nline two {i}"));
        assert_eq!(held["Lead_Status"], "Contacted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_regroups_retryable_records_of_both_kinds() {
    let config = MockConfig {
        records: 600,
        locked_fraction: 0.1,
        // A locked record refuses two attempts: the mass_update and the Update Records
        // call of the run both meet it; retry's calls find it open.
        unlock_after: 2,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let ids = config.record_ids();
    // A shared status (mass_update) and a city of their own for the first 100 (one batch).
    let mut text = String::from("id,Lead_Status,City\n");
    for (i, id) in ids.iter().enumerate() {
        let city = if i < 100 {
            format!("C{i}")
        } else {
            String::new()
        };
        text.push_str(&format!("{id},Contacted,{city}\n"));
    }
    let csv = ws.write("mixed.csv", &text);
    let ran = ws
        .run(
            &csv,
            &["--api", "auto", "--concurrency", "2"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(3);
    ran.expect_in(
        Stream::Out,
        &["credits needed         12   (mass_update 2 in 2 calls; Update Records 10 in 1 call)"],
    );
    let first = server.ledger();
    assert_eq!((first.requests, first.update_requests), (2, 1));
    assert!(first.by_code.contains_key("RECORD_LOCKED"));
    assert!(first.update_by_code.contains_key("RECORD_LOCKED"));
    // Records outside the batch met only one call so far: two retries open them all.
    let retried = ws.again("retry", &[], &Creds::mock_token()).await;
    let after_one = server.ledger();
    // One more call of each kind: the locked records regrouped, each kind on its own.
    assert_eq!(
        (after_one.requests, after_one.update_requests),
        (3, 2),
        "{}",
        retried.report()
    );
    if retried.code() != 0 {
        ws.again("retry", &[], &Creds::mock_token())
            .await
            .expect_code(0);
    }
    let ledger = server.ledger();
    for (i, id) in ids.iter().enumerate() {
        let held = &ledger.records[id];
        assert_eq!(held["Lead_Status"], "Contacted", "record {id}");
        if i < 100 {
            assert_eq!(held["City"], format!("C{i}"), "record {id}");
        }
    }
    let report = ws.path().join("report.csv");
    ws.massup(
        &["report", "--out", report.to_str().unwrap()],
        &Creds::mock_token(),
    )
    .await
    .expect_code(0);
    let text = std::fs::read_to_string(report).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.contains(",succeeded,")).count(),
        600
    );
}
