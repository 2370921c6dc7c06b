//! Bulk Write end to end: the real binary against the mock, which serves the org, the
//! upload, the jobs, their status and their result files, applies each job's rows as
//! Update Records would, and charges 500 credits a job. Each test checks every record's
//! value and applied count in the mock's ledger against what massup recorded.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use massup::mock::{Ledger, MockConfig, MockServer};
use serde_json::{Map, Value};
use support::*;

/// `id,City` over the first `n` records, a City of its own for each.
fn unique_sheet(config: &MockConfig, n: usize, tag: &str) -> Changes {
    let mut text = String::from("id,City\n");
    let mut expected = BTreeMap::new();
    for (i, id) in config.record_ids().iter().take(n).enumerate() {
        let city = format!("{tag} {i}");
        text.push_str(&format!("{id},{city}\n"));
        let mut values = Map::new();
        values.insert("City".into(), Value::from(city));
        expected.insert(id.clone(), values);
    }
    Changes { text, expected }
}

/// The mock with `config`, a workspace, and a sheet of unique Cities (`tag` N) over all
/// its records, written as sheet.csv.
async fn bulk_scene(
    config: &MockConfig,
    tag: &str,
) -> (MockServer, Workspace, Changes, std::path::PathBuf) {
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let changes = unique_sheet(config, config.records, tag);
    let csv = ws.write("sheet.csv", &changes.text);
    (server, ws, changes, csv)
}

/// The flags every send here uses: the planner decides (not `--api mass`, the dispatch
/// tests' default), polls 50 ms apart.
const BULK: &[&str] = &["--api", "auto", "--bulk-poll-ms", "50", "--bulk-wait", "60"];

/// How long a kill may wait for its moment.
const MINUTE: Duration = Duration::from_secs(60);

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = BULK.to_vec();
    all.extend_from_slice(extra);
    all
}

/// `resume`, `retry` and `undo` poll 50 ms apart too.
fn again<'a>(command: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![command, "--bulk-poll-ms", "50", "--bulk-wait", "60"];
    all.extend_from_slice(extra);
    all
}

/// No record was written more than once, and exactly `n` were written once.
#[track_caller]
fn applied_once(ledger: &Ledger, n: usize) {
    let twice: Vec<_> = ledger.applied.iter().filter(|(_, &a)| a > 1).collect();
    assert!(
        twice.is_empty(),
        "applied twice: {:?}",
        &twice[..twice.len().min(5)]
    );
    assert_eq!(ledger.applied.values().filter(|&&a| a == 1).count(), n);
}

async fn status_json(ws: &Workspace) -> Value {
    let ran = ws.massup(&["status", "--json"], &Creds::None).await;
    ran.expect_code(0);
    ran.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sheet_of_60000_unique_values_goes_as_3_jobs_for_at_most_1600_credits() {
    let n = 60_000;
    let config = MockConfig {
        records: n,
        bulk_delay: Duration::from_millis(150),
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = bulk_scene(&config, "Town").await;
    let planned = ws
        .plan(&csv, &["--no-snapshot", "--json"], &Creds::None)
        .await;
    planned.expect_code(0);
    let plan = planned.json();
    assert_eq!(plan["bulk_write_jobs"], 3, "{plan:#}");
    assert_eq!(plan["bulk_write_records"], n, "{plan:#}");
    assert_eq!(plan["bulk_write_credits"], 1_500, "{plan:#}");
    // Update Records alone would cost 6,000.
    assert_eq!(plan["all_update_records_credits"], 6_000, "{plan:#}");

    std::fs::remove_file(ws.db()).unwrap();
    let ran = ws
        .run(
            &csv,
            &args(&["--no-snapshot", "--yes"]),
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(0);
    let ledger = server.ledger();
    assert_eq!(ledger.bulk.jobs_created, 3, "{:#?}", ledger.bulk);
    assert_eq!(ledger.bulk.uploads, 3);
    assert_eq!(ledger.bulk.results, 3);
    assert_eq!(ledger.update_requests, 0, "nothing went by Update Records");
    assert_eq!(ledger.requests, 0, "nothing went by mass_update");
    assert!(
        ledger.credits_charged <= 1_600,
        "charged {}",
        ledger.credits_charged
    );
    for job in ledger.bulk.jobs.values() {
        assert_eq!((job.rows, job.updated), (20_000, 20_000), "{job:?}");
    }
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_all_applied(&conn, run, &ledger, &changes);
    applied_once(&ledger, n);
    // What massup says it spent is what the mock charged.
    let status = status_json(&ws).await;
    assert_eq!(
        status["counts"]["credits"], ledger.credits_charged,
        "{status:#}"
    );
    assert_eq!(status["counts"]["rows"]["succeeded"], n, "{status:#}");
    // Every row's outcome, carried by a Bulk Write job.
    let report = ws.path().join("report.csv");
    ws.massup(&["report", "--out", report.to_str().unwrap()], &Creds::None)
        .await
        .expect_code(0);
    let text = std::fs::read_to_string(&report).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (outcome, carried) = (at("outcome"), at("carried_by"));
    let mut rows = 0;
    for record in reader.records() {
        let record = record.unwrap();
        assert_eq!(&record[outcome], "succeeded");
        assert_eq!(&record[carried], "bulk");
        rows += 1;
    }
    assert_eq!(rows, n);
}

/// Chunks whose Bulk Write job reached `phase` (per `store::bulk`).
fn in_phase(conn: &rusqlite::Connection, phase: &str) -> i64 {
    conn.query_row(
        "SELECT COUNT(*) FROM bulk_jobs WHERE phase = ?1",
        [phase],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_uploading_after_creating_and_while_polling_resume_creates_each_job_once() {
    let n = 60_000;
    let config = MockConfig {
        records: n,
        // Long enough to kill a process in the middle of each step.
        bulk_upload_latency: Duration::from_millis(1_500),
        bulk_delay: Duration::from_millis(2_500),
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = bulk_scene(&config, "Kill").await;
    let run_args = ws.run_args(
        &csv,
        &args(&["--no-snapshot", "--yes", "--quiet", "--timeout", "20"]),
    );
    let run_args: Vec<&str> = run_args.iter().map(String::as_str).collect();
    let resume = again("resume", &["--quiet", "--timeout", "20"]);

    // 1. While the uploads are on their way: no file is kept, nothing created.
    kill_when(
        &ws,
        &server,
        &run_args,
        "an upload arrived",
        MINUTE,
        |l, _| l.bulk.upload_requests >= 1,
    )
    .await;
    assert_eq!(server.ledger().bulk.jobs_created, 0);
    // 2. Once a job's id is committed.
    kill_when(&ws, &server, &resume, "a job created", MINUTE, |_, ws| {
        in_phase(&ws.open_db(), "created") >= 1
    })
    .await;
    let created = server.ledger().bulk.jobs_created;
    assert!((1..=3).contains(&created), "{created} jobs");
    // 3. While polling: every job created and committed, none finished yet.
    kill_when(
        &ws,
        &server,
        &resume,
        "every job polled",
        MINUTE,
        |l, ws| in_phase(&ws.open_db(), "created") == 3 && l.bulk.polls >= 3,
    )
    .await;
    assert_eq!(server.ledger().bulk.jobs_created, 3);
    // 4. To the end.
    ws.massup(&resume, &Creds::mock_token())
        .await
        .expect_code(0);
    let ledger = server.ledger();
    assert_eq!(ledger.bulk.jobs_created, 3, "{:#?}", ledger.bulk);
    let conn = ws.open_db();
    assert_eq!(in_phase(&conn, "read"), 3);
    let run = last_run(&conn);
    assert_all_applied(&conn, run, &ledger, &changes);
    applied_once(&ledger, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_and_not_approved_rows_of_a_job_are_retried_by_update_records() {
    let n = 6_000;
    let config = MockConfig {
        records: n,
        locked_fraction: 0.02,
        unlock_after: 1,
        not_approved_fraction: 0.01,
        approve_after: 1,
        bulk_delay: Duration::from_millis(100),
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = bulk_scene(&config, "Lock").await;
    let gated = server.ledger().locked.len() + server.ledger().not_approved.len();
    assert!(gated > 50, "{gated} gated records");
    let ran = ws
        .run(
            &csv,
            &args(&["--no-snapshot", "--yes"]),
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(3);
    let status = status_json(&ws).await;
    assert_eq!(status["counts"]["rows"]["retryable"], gated, "{status:#}");
    let codes = status["counts"]["items_by_code"].to_string();
    assert!(
        codes.contains("RECORD_LOCKED") && codes.contains("NOT_APPROVED"),
        "{codes}"
    );
    assert_eq!(server.ledger().bulk.jobs_created, 1);
    // A few rows are not worth a 500-credit job: retry sends them by Update Records.
    let retried = ws
        .again(
            "retry",
            &["--bulk-poll-ms", "50", "--yes"],
            &Creds::mock_token(),
        )
        .await;
    retried.expect_code(0);
    let ledger = server.ledger();
    assert_eq!(ledger.bulk.jobs_created, 1);
    assert_eq!(
        ledger.update_requests as usize,
        gated.div_ceil(100),
        "{ledger:#?}"
    );
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_all_applied(&conn, run, &ledger, &changes);
    // A gated record was refused once (not applied), then applied once.
    applied_once(&ledger, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_a_failed_job_and_unprocessed_rows_end_with_every_row_applied_once() {
    let n = 6_000;
    let config = MockConfig {
        records: n,
        bulk_fail_uploads: 1,
        bulk_fail_jobs: 1,
        bulk_unprocessed_every: 100,
        bulk_delay: Duration::from_millis(100),
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = bulk_scene(&config, "Fault").await;
    let ran = ws
        .run(
            &csv,
            &args(&["--no-snapshot", "--yes"]),
            &Creds::mock_token(),
        )
        .await;
    // The failed job applied nothing and was created again; its second run left every
    // 100th row unprocessed, which ends retryable.
    ran.expect_code(3);
    let ledger = server.ledger();
    assert_eq!(ledger.bulk.upload_requests, 3, "{:#?}", ledger.bulk);
    assert_eq!(ledger.bulk.jobs_created, 2, "{:#?}", ledger.bulk);
    let statuses: Vec<&str> = ledger
        .bulk
        .jobs
        .values()
        .map(|j| j.status.as_str())
        .collect();
    assert_eq!(statuses, ["FAILED", "COMPLETED"]);
    let status = status_json(&ws).await;
    assert_eq!(status["counts"]["rows"]["retryable"], n / 100, "{status:#}");
    assert!(status["counts"]["items_by_code"]
        .to_string()
        .contains("UNPROCESSED"));
    ws.again(
        "retry",
        &["--bulk-poll-ms", "50", "--yes"],
        &Creds::mock_token(),
    )
    .await
    .expect_code(0);
    let ledger = server.ledger();
    assert_eq!(ledger.bulk.jobs_created, 2);
    let conn = ws.open_db();
    assert_all_applied(&conn, last_run(&conn), &ledger, &changes);
    applied_once(&ledger, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planner_uses_bulk_write_only_where_it_may_and_it_pays() {
    let config = MockConfig {
        records: 6_000,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let plan = |csv: std::path::PathBuf, extra: Vec<&'static str>| {
        let ws = &ws;
        async move {
            let _ = std::fs::remove_file(ws.db());
            let mut all = vec!["--no-snapshot", "--json"];
            all.extend(extra);
            let ran = ws.plan(&csv, &all, &Creds::None).await;
            ran.expect_code(0);
            ran.json()
        }
    };
    let big = ws.write("big.csv", &unique_sheet(&config, 6_000, "P").text);
    let small = ws.write("small.csv", &unique_sheet(&config, 5_000, "P").text);
    let jobs = |plan: &Value| plan["bulk_write_jobs"].as_u64().unwrap();
    // 6,000 records: one job (500 credits) beats 600 credits of Update Records.
    let p = plan(big.clone(), vec![]).await;
    assert_eq!(
        (jobs(&p), p["credits"].as_u64().unwrap()),
        (1, 500),
        "{p:#}"
    );
    // 5,000: a tie at 500 stays with Update Records.
    let p = plan(small.clone(), vec![]).await;
    assert_eq!(
        (jobs(&p), p["credits"].as_u64().unwrap()),
        (0, 500),
        "{p:#}"
    );
    // A job cannot turn automation off, nor save time.
    for extra in [
        vec!["--trigger", "none"],
        vec!["--api", "update"],
        vec!["--optimize", "calls"],
    ] {
        let p = plan(big.clone(), extra.clone()).await;
        assert_eq!(jobs(&p), 0, "{extra:?}: {p:#}");
        assert_eq!(p["credits"], 600, "{extra:?}");
    }
    // --api bulk takes a job whatever it costs.
    let p = plan(small, vec!["--api", "bulk"]).await;
    assert_eq!(jobs(&p), 1, "{p:#}");
    // ... but not with --trigger none.
    let refused = ws
        .plan(&big, &["--api", "bulk", "--trigger", "none"], &Creds::None)
        .await;
    refused.expect_code(2);
    refused.expect_in(Stream::Err, &["--api bulk with --trigger none"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_run_with_a_snapshot_is_undone_by_a_bulk_job() {
    let n = 6_000;
    let config = MockConfig {
        records: n,
        bulk_delay: Duration::from_millis(100),
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    // The first sheet gives every record a City of its own, the second another: undoing
    // the second writes 6,000 different values back, which one job carries.
    let first = unique_sheet(&config, n, "Old");
    let second = unique_sheet(&config, n, "New");
    let first_csv = ws.write("first.csv", &first.text);
    let second_csv = ws.write("second.csv", &second.text);
    ws.run(
        &first_csv,
        &args(&["--no-snapshot", "--yes"]),
        &Creds::mock_token(),
    )
    .await
    .expect_code(0);
    ws.run(
        &second_csv,
        &args(&["--snapshot", "--yes"]),
        &Creds::mock_token(),
    )
    .await
    .expect_code(0);
    let ledger = server.ledger();
    assert_eq!(ledger.bulk.jobs_created, 2);
    let conn = ws.open_db();
    assert_all_applied(&conn, last_run(&conn), &ledger, &second);
    let undone = ws
        .massup(
            &again("undo", &["--yes", "--backoff-ms", "5"]),
            &Creds::mock_token(),
        )
        .await;
    undone.expect_code(0);
    let ledger = server.ledger();
    assert_eq!(ledger.bulk.jobs_created, 3, "the undo went as one job too");
    for (id, values) in &first.expected {
        assert_eq!(&ledger.records[id], values, "record {id}'s City is back");
    }
    let status = status_json(&ws).await;
    assert_eq!(status["counts"]["rows"]["succeeded"], n, "{status:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_beyond_the_orgs_limit_in_progress_wait_their_turn() {
    let n = 40_000;
    let config = MockConfig {
        records: n,
        bulk_delay: Duration::from_millis(200),
        bulk_max_in_progress: Some(1),
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    // --bulk-jobs 1: one job at a time, the org never refuses one.
    let first = unique_sheet(&config, n, "One");
    let csv = ws.write("one.csv", &first.text);
    ws.run(
        &csv,
        &args(&["--no-snapshot", "--yes", "--bulk-jobs", "1"]),
        &Creds::mock_token(),
    )
    .await
    .expect_code(0);
    let ledger = server.ledger();
    assert_eq!(ledger.bulk.jobs_created, 2, "{:#?}", ledger.bulk);
    assert_eq!(ledger.bulk.refused_creates, 0);
    assert_eq!(ledger.bulk.max_in_progress_seen, 1);
    // The default lets three go at once: the org refuses the second (429, charged nothing),
    // which waits with a backoff and is created once the first is done; nothing twice.
    let second = unique_sheet(&config, n, "Two");
    let csv = ws.write("two.csv", &second.text);
    ws.run(
        &csv,
        &args(&["--no-snapshot", "--yes"]),
        &Creds::mock_token(),
    )
    .await
    .expect_code(0);
    let ledger = server.ledger();
    assert_eq!(ledger.bulk.jobs_created, 4, "{:#?}", ledger.bulk);
    assert!(ledger.bulk.refused_creates >= 1, "{:#?}", ledger.bulk);
    assert_eq!(ledger.bulk.max_in_progress_seen, 1);
    let conn = ws.open_db();
    assert_all_applied(&conn, last_run(&conn), &ledger, &second);
    let status = status_json(&ws).await;
    assert_eq!(
        status["counts"]["spend"]["bulk_write"]["credits"], 1_000,
        "the refused creations cost nothing: {status:#}"
    );
}
