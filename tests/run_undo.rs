//! The safety net end to end: the real binary against the mock, which remembers every
//! record's values and serves Get Records. A run overwrites what a first run set; `undo`
//! restores exactly the earlier values (clearing fields that were empty) in grouped calls;
//! a record edited in between is a CONFLICT and left alone; an undo survives kill -9 and
//! resume; `--skip-unchanged` writes nothing to records that hold their values already.
//! Every test reads the mock's ledger for what each record holds and how often it was
//! written.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use massup::mock::MockConfig;
use serde_json::Value;
use support::*;

const STATUSES: [&str; 3] = ["Contacted", "Junk Lead", "Pre-Qualified"];

/// Run 1: every record a status and, for the first half, a city. Run 2: every record a new
/// status, and a city for every other record (half of which had none).
fn sheets(ids: &[String]) -> (String, String) {
    let mut first = String::from("id,Lead_Status,City\n");
    let mut second = String::from("id,Lead_Status,City\n");
    for (i, id) in ids.iter().enumerate() {
        let city = if i < ids.len() / 2 {
            format!("City {}", i % 4)
        } else {
            String::new()
        };
        first.push_str(&format!("{id},{},{city}\n", STATUSES[i % 3]));
        let new_city = if i.is_multiple_of(2) { "Oslo" } else { "" };
        second.push_str(&format!("{id},Attempted to Contact,{new_city}\n"));
    }
    (first, second)
}

/// Fields run 2 wrote to record `i`, so fields its undo writes back.
fn fields_undone(i: usize) -> u64 {
    if i.is_multiple_of(2) {
        2
    } else {
        1
    }
}

fn held(ledger: &massup::mock::Ledger, id: &str, field: &str) -> Value {
    ledger.records[id]
        .get(field)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Edits a record as a person in Zoho would (Update Records, straight to the mock).
async fn edit(server: &massup::mock::MockServer, id: &str, field: &str, value: &str) {
    massup::api::install_crypto_provider();
    let response = reqwest::Client::new()
        .put(format!("{}/crm/v2/Leads", server.url()))
        .header("Authorization", "Zoho-oauthtoken mock-token")
        .json(&serde_json::json!({"data": [{"id": id, field: value}]}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

/// Every record holds what run 1 left (run 2 gave every other record a city; those that had
/// none are cleared again), written back once per field at most since `before`: one write a
/// field by mass_update (one field a call for Leads), or one a record by Update Records.
fn assert_restored(scene: &Before, ledger: &massup::mock::Ledger, before: &massup::mock::Ledger) {
    for (i, id) in scene.ids.iter().enumerate() {
        let (status, city) = &scene.after_first[i];
        assert_eq!(&held(ledger, id, "Lead_Status"), status, "record {i}");
        assert_eq!(&held(ledger, id, "City"), city, "record {i}");
        let written = ledger.applied[id] - before.applied[id];
        assert!(
            (1..=fields_undone(i)).contains(&written),
            "record {i} written {written} times"
        );
    }
}

struct Before {
    server: massup::mock::MockServer,
    ws: Workspace,
    ids: Vec<String>,
    /// What each record held after run 1 (what undo must restore).
    after_first: Vec<(Value, Value)>,
}

/// Runs 1 and 2 of [`sheets`] over `n` records; run 2 with a snapshot.
async fn two_runs(config: MockConfig, n: usize) -> Before {
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let ids: Vec<String> = config.record_ids().into_iter().take(n).collect();
    let (first, second) = sheets(&ids);
    let first = ws.write("first.csv", &first);
    let second = ws.write("second.csv", &second);
    ws.run(&first, &["--api", "auto"], &Creds::mock_token())
        .await
        .expect_code(0);
    let ledger = server.ledger();
    let after_first = ids
        .iter()
        .map(|id| (held(&ledger, id, "Lead_Status"), held(&ledger, id, "City")))
        .collect();
    let before = server.ledger();
    ws.run(
        &second,
        &["--api", "mass", "--snapshot", "--concurrency", "1"],
        &Creds::mock_token(),
    )
    .await
    .expect_code(0);
    let ledger = server.ledger();
    // Each record is read once, all its fields, in the first call that carries it: at
    // least one read per 100 records, and never more than reading each call's records.
    let reads = ledger.get_records_requests - before.get_records_requests;
    let conn = ws.open_db();
    let per_call: i64 = conn
        .query_row(
            "SELECT sum((size + 99) / 100) FROM chunks WHERE run_id = 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        (n.div_ceil(100) as u64..=per_call as u64).contains(&reads),
        "{reads} snapshot reads for {n} records ({per_call} reading each call's records)"
    );
    let kept: i64 = conn
        .query_row("SELECT count(*) FROM befores WHERE run_id = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(kept as usize, 2 * n, "both fields of every record kept");
    for id in &ids {
        assert_eq!(held(&ledger, id, "Lead_Status"), "Attempted to Contact");
    }
    Before {
        server,
        ws,
        ids,
        after_first,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_restores_exactly_the_earlier_values_in_grouped_calls() {
    let scene = two_runs(
        MockConfig {
            records: 600,
            ..MockConfig::default()
        },
        600,
    )
    .await;
    let (server, ws) = (&scene.server, &scene.ws);
    // Run 2's report shows what each record held before it.
    let report = ws
        .massup(
            &["report", "--run", "2", "--format", "json", "--out", "-"],
            &Creds::mock_token(),
        )
        .await;
    report.expect_code(0);
    let rows: Vec<Value> = serde_json::from_slice(&report.output.stdout).unwrap();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row["before:Lead_Status"], scene.after_first[i].0,
            "row {i}: {row}"
        );
        if i.is_multiple_of(2) {
            assert_eq!(row["before:City"], scene.after_first[i].1, "row {i}: {row}");
        }
    }
    ws.massup(&["status", "--run", "2"], &Creds::mock_token())
        .await
        .expect_code(0)
        .expect_in(
            Stream::Out,
            &[&format!(
                "`massup --db {} undo --run 2` takes the run back",
                ws.db().display()
            )],
        );
    let before = server.ledger();
    let ran = ws
        .massup(
            &[
                "undo",
                "--run",
                "2",
                "--api-domain",
                &server.url(),
                "--backoff-ms",
                "5",
            ],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(0).expect_in(
        Stream::Out,
        &["Undoing run 2 as run 3: 600 record(s), 900 field value(s)"],
    );
    let ledger = server.ledger();
    assert_restored(&scene, &ledger, &before);
    // Grouped: three old statuses and four old cities (or none) over 600 records take a
    // handful of calls, not one per record.
    let calls =
        (ledger.requests + ledger.update_requests) - (before.requests + before.update_requests);
    assert!(calls <= 10, "{calls} calls for the undo\n{}", ran.report());
    let status = ws
        .massup(&["status", "--run", "3", "--json"], &Creds::mock_token())
        .await;
    let status = status.json();
    assert_eq!(status["counts"]["rows"]["succeeded"], 600);
    assert_eq!(status["counts"]["calls"], status["counts"]["min_calls"]);
    // An undo can be undone: run 4 takes run 3 back, to run 2's values.
    ws.massup(
        &["undo", "--run", "3", "--api-domain", &server.url()],
        &Creds::mock_token(),
    )
    .await
    .expect_code(0);
    let ledger = server.ledger();
    for (i, id) in scene.ids.iter().enumerate() {
        assert_eq!(
            held(&ledger, id, "Lead_Status"),
            "Attempted to Contact",
            "record {i}"
        );
        let city = if i.is_multiple_of(2) {
            Value::from("Oslo")
        } else {
            scene.after_first[i].1.clone()
        };
        assert_eq!(held(&ledger, id, "City"), city, "record {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_edited_since_is_a_conflict_and_left_alone_unless_forced() {
    let scene = two_runs(
        MockConfig {
            records: 100,
            ..MockConfig::default()
        },
        100,
    )
    .await;
    let (server, ws, ids) = (&scene.server, &scene.ws, &scene.ids);
    edit(server, &ids[7], "Lead_Status", "Lost Lead").await;
    let url = server.url();
    let ran = ws
        .massup(
            &["undo", "--run", "2", "--api-domain", &url],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(3);
    let ledger = server.ledger();
    assert_eq!(
        held(&ledger, &ids[7], "Lead_Status"),
        "Lost Lead",
        "the edit is kept"
    );
    assert_eq!(
        held(&ledger, &ids[8], "Lead_Status"),
        scene.after_first[8].0
    );
    let report = ws.path().join("undo.csv");
    ws.massup(
        &["report", "--run", "3", "--out", report.to_str().unwrap()],
        &Creds::mock_token(),
    )
    .await
    .expect_code(0);
    let report = std::fs::read_to_string(&report).unwrap();
    let conflicts: Vec<&str> = report.lines().filter(|l| l.contains("CONFLICT")).collect();
    assert_eq!(conflicts.len(), 1, "{report}");
    assert!(
        conflicts[0].contains(&ids[7]) && conflicts[0].contains("Lost Lead"),
        "{}",
        conflicts[0]
    );
    // --force writes the old value over the edit; records already restored are not written
    // again.
    let before = server.ledger();
    ws.massup(
        &["undo", "--run", "2", "--force", "--api-domain", &url],
        &Creds::mock_token(),
    )
    .await
    .expect_code(0);
    let ledger = server.ledger();
    assert_eq!(
        held(&ledger, &ids[7], "Lead_Status"),
        scene.after_first[7].0
    );
    let written: u64 = ids
        .iter()
        .map(|id| ledger.applied[id] - before.applied[id])
        .sum();
    assert_eq!(written, 1, "only the conflicting record is written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_survives_kill_9_and_resume() {
    let config = MockConfig {
        records: 1500,
        latency_mean: Duration::from_millis(15),
        ..MockConfig::default()
    };
    let scene = two_runs(config, 1500).await;
    let (server, ws) = (&scene.server, &scene.ws);
    let url = server.url();
    let start = server.ledger();
    let calls = |l: &massup::mock::Ledger| l.requests + l.update_requests + l.get_records_requests;
    let mut child = ws
        .command(
            &[
                "undo",
                "--run",
                "2",
                "--api-domain",
                &url,
                "--concurrency",
                "2",
            ],
            &Creds::mock_token(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while calls(&server.ledger()) < calls(&start) + 8 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the undo ended before the kill"
        );
        assert!(Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    ws.massup(&["resume", "--backoff-ms", "5"], &Creds::mock_token())
        .await
        .expect_code(0);
    // Resent chunks read the records first: one already restored is not written again.
    assert_restored(&scene, &server.ledger(), &start);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_unchanged_writes_nothing_to_records_that_hold_their_values() {
    let config = MockConfig {
        records: 400,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let ids = config.record_ids();
    let (first, _) = sheets(&ids[..400]);
    let first_csv = ws.write("first.csv", &first);
    ws.run(&first_csv, &["--api", "auto"], &Creds::mock_token())
        .await
        .expect_code(0);
    // The same sheet again, with 40 records changed.
    let again: String = first
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i > 0 && i <= 40 {
                line.replacen(",Contacted,", ",Lost Lead,", 1)
                    .replacen(",Junk Lead,", ",Lost Lead,", 1)
                    .replacen(",Pre-Qualified,", ",Lost Lead,", 1)
                    + "\n"
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    let again_csv = ws.write("again.csv", &again);
    let before = server.ledger();
    let ran = ws
        .run(
            &again_csv,
            &["--api", "auto", "--skip-unchanged"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(0);
    let ledger = server.ledger();
    for (i, id) in ids[..400].iter().enumerate() {
        let written = ledger.applied[id] - before.applied[id];
        assert_eq!(written, u64::from(i < 40), "record {i}");
    }
    let status = ws
        .massup(&["status", "--json"], &Creds::mock_token())
        .await
        .json();
    let unchanged = status["counts"]["items_by_code"]["UNCHANGED"].as_u64();
    assert!(unchanged.is_some_and(|n| n > 0), "{status}");
    assert_eq!(status["counts"]["rows"]["succeeded"], 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_diff_counts_changes_against_current_values_and_writes_nothing() {
    let config = MockConfig {
        records: 200,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let ids = config.record_ids();
    let mut first = String::from("id,Lead_Status\n");
    let mut second = String::from("id,Lead_Status\n");
    for (i, id) in ids.iter().enumerate() {
        first.push_str(&format!("{id},Contacted\n"));
        let status = if i < 50 { "Junk Lead" } else { "Contacted" };
        second.push_str(&format!("{id},{status}\n"));
    }
    let first = ws.write("first.csv", &first);
    ws.run(&first, &["--api", "auto"], &Creds::mock_token())
        .await
        .expect_code(0);
    let second = ws.write("second.csv", &second);
    let before = server.ledger();
    let url = server.url();
    let ran = ws
        .massup(
            &[
                "plan",
                "--csv",
                second.to_str().unwrap(),
                "--module",
                "Leads",
                "--api-domain",
                &url,
                "--diff",
                "--json",
            ],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(0);
    let diff = &ran.json()["diff"];
    assert_eq!(
        diff["fields"][0]["field"],
        "Lead_Status",
        "{}",
        ran.report()
    );
    assert_eq!(diff["fields"][0]["changes"], 50);
    assert_eq!(diff["fields"][0]["unchanged"], 150);
    assert_eq!(diff["fields"][0]["samples"][0]["before"], "Contacted");
    assert_eq!(diff["fields"][0]["samples"][0]["after"], "Junk Lead");
    // Two calls (one per value set), 50 and 150 records: one read and two.
    assert_eq!(diff["calls"], 3, "100 records a read, per call");
    let ledger = server.ledger();
    assert_eq!(ledger.applied, before.applied, "a dry run writes nothing");
    assert_eq!(ledger.get_records_requests - before.get_records_requests, 3);
    // The text a person reads.
    let ran = ws
        .massup(
            &[
                "plan",
                "--csv",
                second.to_str().unwrap(),
                "--module",
                "Leads",
                "--api-domain",
                &url,
                "--diff",
                "--new-run",
            ],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(0).expect_in(
        Stream::Out,
        &[
            "Compared with the records' current values (3 Get Records call(s))",
            "Lead_Status",
            "\"Contacted\" -> \"Junk Lead\"",
        ],
    );
    ws.massup(
        &[
            "plan",
            "--csv",
            second.to_str().unwrap(),
            "--module",
            "Leads",
            "--diff",
            "--new-run",
        ],
        &Creds::None,
    )
    .await
    .expect_code(2)
    .expect_stderr(&["--diff reads the records' current values"]);
}
