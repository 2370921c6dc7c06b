//! The joins between commands: what `run` does with an earlier plan of the same file. A
//! run's settings are its identity (an old plan is never sent in place of what was asked),
//! and a nightly job's unchanged file is a deliberate, successful no-op.

mod support;

use std::collections::BTreeMap;

use massup::mock::MockConfig;
#[allow(unused_imports)]
use support::Stream;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_other_settings_never_sends_the_old_plan() {
    let config = MockConfig {
        records: 300,
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = scene(&config, 300, false).await;
    // A plan with the defaults (Zoho's default trigger)...
    let planned = ws.plan(&csv, &["--no-snapshot"], &Creds::None).await;
    planned.expect_code(0);
    // ...then `run` of the same file asking for no workflows: refused, naming the setting,
    // and nothing is sent.
    let ran = ws
        .run(
            &csv,
            &["--api", "auto", "--trigger", "none"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(2).expect_stderr(&[
        "other settings",
        "trigger: planned null, now []",
        "--new-run",
    ]);
    let ledger = server.ledger();
    assert_eq!(
        ledger.requests + ledger.update_requests,
        0,
        "{}",
        ran.report()
    );
    // With --new-run it is planned and sent as asked: every call carries "trigger": [].
    let ran = ws
        .run(
            &csv,
            &["--api", "auto", "--trigger", "none", "--new-run"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(0);
    let ledger = server.ledger();
    assert_eq!(
        ledger.requests, 0,
        "no mass_update call can turn workflows off"
    );
    assert!(ledger.update_requests > 0);
    assert!(
        ledger
            .update_triggers
            .iter()
            .all(|t| t.as_deref() == Some(&[][..])),
        "{:?}",
        ledger.update_triggers
    );
    let conn = ws.open_db();
    assert_all_applied(&conn, last_run(&conn), &ledger, &changes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_nightly_file_is_a_successful_no_op() {
    let config = MockConfig {
        records: 200,
        ..MockConfig::default()
    };
    let (server, ws, _, csv) = scene(&config, 200, false).await;
    ws.run(&csv, &[], &Creds::mock_token()).await.expect_code(0);
    let sent = server.ledger().requests;
    // The next night, the same file: exit 0, nothing sent, and the JSON says so.
    let ran = ws.run(&csv, &["--json"], &Creds::mock_token()).await;
    ran.expect_code(0);
    let json = ran.json();
    assert_eq!(json["already_sent"]["run"], 1, "{json:#}");
    assert!(json["next"].as_array().is_some_and(|n| !n.is_empty()));
    assert_eq!(server.ledger().requests, sent);
    // --if-sent fail keeps the old refusal; --if-sent again sends it as a new run.
    ws.run(&csv, &["--if-sent", "fail"], &Creds::mock_token())
        .await
        .expect_code(2);
    assert_eq!(server.ledger().requests, sent);
    ws.run(&csv, &["--if-sent", "again"], &Creds::mock_token())
        .await
        .expect_code(0);
    assert_eq!(server.ledger().requests, 2 * sent);
    let conn = ws.open_db();
    assert_eq!(last_run(&conn), 2);
}

/// Records with 60 ms answers: a run long enough to start something beside it.
fn slow(records: usize) -> MockConfig {
    MockConfig {
        records,
        latency_mean: std::time::Duration::from_millis(60),
        ..MockConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_resume_never_sends_an_abandoned_plan() {
    let config = MockConfig {
        records: 300,
        ..MockConfig::default()
    };
    let (server, ws, _, csv) = scene(&config, 300, false).await;
    // Planned, never sent (run 1); then planned again with a snapshot and sent (run 2,
    // which supersedes run 1); then run 2 undone (run 3).
    ws.plan(&csv, &["--no-snapshot"], &Creds::None)
        .await
        .expect_code(0);
    ws.run(&csv, &["--snapshot", "--new-run"], &Creds::mock_token())
        .await
        .expect_code(0);
    ws.massup(&["undo", "--run", "2", "--yes"], &Creds::mock_token())
        .await
        .expect_code(0);
    let written = total_applied(&server.ledger());
    // A bare resume finds nothing to continue: run 1 is superseded, 2 undone, 3 finished.
    let resumed = ws.again("resume", &[], &Creds::mock_token()).await;
    resumed.expect_code(0);
    assert_eq!(
        total_applied(&server.ledger()),
        written,
        "{}",
        resumed.report()
    );
    // Asked for by number, an undone run is refused; status names what ended each.
    ws.again("resume", &["--run", "2"], &Creds::mock_token())
        .await
        .expect_code(2)
        .expect_stderr(&["run 2 was undone", "undone by run 3"]);
    let all = ws.massup(&["status", "--all"], &Creds::None).await;
    all.expect_code(0)
        .expect_in(Stream::Out, &["superseded", "undone"]);
    assert_eq!(total_applied(&server.ledger()), written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discarded_run_is_never_sent() {
    let config = MockConfig {
        records: 100,
        ..MockConfig::default()
    };
    let (server, ws, _, csv) = scene(&config, 100, false).await;
    ws.plan(&csv, &[], &Creds::None).await.expect_code(0);
    ws.massup(&["discard", "--run", "1"], &Creds::None)
        .await
        .expect_code(0)
        .expect_in(Stream::Out, &["run 1 discarded"]);
    ws.again("resume", &["--run", "1"], &Creds::mock_token())
        .await
        .expect_code(2)
        .expect_stderr(&["run 1 was discarded"]);
    ws.again("resume", &[], &Creds::mock_token())
        .await
        .expect_code(0);
    assert_eq!(server.ledger().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_takes_the_runs_lease_and_two_undos_make_one() {
    let config = slow(600);
    let (server, ws, _, csv) = scene(&config, 600, false).await;
    let creds = Creds::mock_token();
    let extra = ["--snapshot", "--concurrency", "2", "--chunk-size", "50"];
    // An undo started while the run sends is refused (exit 4), writing nothing.
    let running = ws.run(&csv, &extra, &creds);
    let undo = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        ws.massup(&["undo", "--run", "1", "--yes"], &creds).await
    };
    let (running, undo) = tokio::join!(running, undo);
    running.expect_code(0);
    undo.expect_code(4).expect_stderr(&["is being sent by pid"]);
    let after_run = server.ledger();
    assert!(after_run.applied.values().all(|&n| n <= 2));
    // Two undos at once: one undoes, the other exits 4; every record written back once.
    let first = ws.massup(&["undo", "--run", "1", "--yes"], &creds);
    let second = ws.massup(&["undo", "--run", "1", "--yes"], &creds);
    let (first, second) = tokio::join!(first, second);
    let mut codes = [first.code(), second.code()];
    codes.sort();
    assert_eq!(codes, [0, 4], "{}\n{}", first.report(), second.report());
    let ledger = server.ledger();
    for (id, n) in &ledger.applied {
        let before = after_run.applied.get(id).copied().unwrap_or(0);
        assert!(
            n - before <= 2,
            "record {id} written {} times by the undos",
            n - before
        );
    }
    let conn = ws.open_db();
    let undo_runs: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE settings_json LIKE '%\"undo_of\":1%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(undo_runs, 1, "two undos at once made one undo run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_locked_forever_end_as_failed_after_the_total() {
    // A tenth of the records are locked and never unlock.
    let config = MockConfig {
        records: 200,
        locked_fraction: 0.1,
        unlock_after: u32::MAX,
        ..MockConfig::default()
    };
    let (server, ws, _, csv) = scene(&config, 200, false).await;
    ws.run(&csv, &[], &Creds::mock_token()).await.expect_code(3);
    let locked = server.ledger().locked.len();
    assert!(locked > 0);
    let mut last = None;
    for _ in 0..5 {
        let ran = ws
            .again(
                "retry",
                &["--max-attempts-total", "3", "--yes", "--json"],
                &Creds::mock_token(),
            )
            .await;
        last = Some(ran.json());
    }
    let last = last.unwrap();
    // The run ends: no row is retryable any more, and retry is no longer offered.
    assert_eq!(last["counts"]["rows"]["retryable"], 0, "{last:#}");
    assert!(
        last["next"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| !n.as_str().unwrap().contains("retry")),
        "{last:#}"
    );
    let conn = ws.open_db();
    let run = last_run(&conn);
    let outcomes = row_outcomes(&conn, run);
    let failed = outcomes
        .iter()
        .filter(|(_, o)| *o == massup::summary::RowOutcome::Failed)
        .count();
    assert!(
        failed >= locked,
        "{failed} failed rows for {locked} locked records"
    );
    let report = ws
        .massup(
            &["report", "--run", "1", "--only", "failed", "--out", "-"],
            &Creds::None,
        )
        .await;
    report.expect_in(Stream::Out, &["still RECORD_LOCKED after 3 attempts"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_senders_through_a_symlink_take_one_lease() {
    let config = slow(600);
    let (server, ws, changes, csv) = scene(&config, 600, false).await;
    // Planned into the workspace's database (massup.db), nothing sent.
    ws.plan(
        &csv,
        &["--no-snapshot", "--chunk-size", "50", "--api", "mass"],
        &Creds::None,
    )
    .await
    .expect_code(0);
    let link = ws.path().join("link.db");
    std::os::unix::fs::symlink(ws.db(), &link).unwrap();
    // One resume through the real path, one through the symlink, at once.
    let through = |db: std::path::PathBuf| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_massup"));
        command
            .current_dir(ws.path())
            .env_remove("MASSUP_DB")
            .env("HOME", ws.path())
            .env("ZOHO_ACCESS_TOKEN", "mock-token")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .arg("--db")
            .arg(db)
            .args([
                "resume",
                "--run",
                "1",
                "--api-domain",
                &ws.url,
                "--concurrency",
                "2",
            ]);
        async move { command.output().await.expect("run massup") }
    };
    let (first, second) = tokio::join!(through(ws.db()), through(link));
    let mut codes = [first.status.code(), second.status.code()];
    codes.sort();
    assert_eq!(
        codes,
        [Some(0), Some(4)],
        "{}\n{}",
        String::from_utf8_lossy(&first.stderr),
        String::from_utf8_lossy(&second.stderr)
    );
    let ledger = server.ledger();
    assert!(
        ledger.applied.values().all(|&n| n <= 2),
        "a record was written more than once per field"
    );
    let conn = ws.open_db();
    assert_all_applied(&conn, 1, &ledger, &changes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_deleted_mid_run_stops_its_sender() {
    let config = slow(600);
    let (server, ws, _, csv) = scene(&config, 600, false).await;
    let db = ws.db();
    let creds = Creds::mock_token();
    let running = ws.run(&csv, &["--concurrency", "1", "--chunk-size", "10"], &creds);
    let delete = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        for suffix in ["", "-wal", "-shm"] {
            let mut path = db.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(&path);
        }
        server.ledger().requests
    };
    let (ran, at_delete) = tokio::join!(running, delete);
    ran.expect_code(1)
        .expect_stderr(&["was deleted or replaced while this process was sending"]);
    // It stopped at its next commit: at most the calls in flight then (one at
    // --concurrency 1, and the claims ahead of it) went out after the file was gone.
    let after = server.ledger().requests - at_delete;
    assert!(after <= 3, "{after} calls after the database was deleted");
    assert!(server.ledger().requests < 120, "the run stopped early");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windows_1252_sheet_is_refused_whole_then_sent_right_with_encoding() {
    let config = MockConfig {
        records: 50,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let ids = config.record_ids();
    // Every other row holds an umlaut (0xf6 in windows-1252): the rest is plain ASCII.
    let mut bytes = b"id,City\n".to_vec();
    for (i, id) in ids.iter().take(50).enumerate() {
        bytes.extend_from_slice(id.as_bytes());
        bytes.extend_from_slice(if i % 2 == 0 {
            b",K\xf6ln\n"
        } else {
            b",Bonn\n"
        });
    }
    let csv = ws.path().join("sheet.csv");
    std::fs::write(&csv, &bytes).unwrap();
    let ran = ws.run(&csv, &[], &Creds::mock_token()).await;
    ran.expect_code(2)
        .expect_stderr(&["line 2: not valid UTF-8", "--encoding windows-1252"]);
    assert_eq!(server.ledger().requests, 0, "never half a file");
    ws.run(&csv, &["--encoding", "windows-1252"], &Creds::mock_token())
        .await
        .expect_code(0);
    let ledger = server.ledger();
    for (i, id) in ids.iter().take(50).enumerate() {
        let want = if i % 2 == 0 { "Köln" } else { "Bonn" };
        assert_eq!(ledger.records[id]["City"], want, "record {i}");
    }
}

/// A sheet as a sales team keeps it: its own "Stadt" header, a "Notes" column that is not
/// for Zoho, a checkbox column in German, and no Lead_Source (the map sets it). Row 4's
/// checkbox says "vielleicht": that row is invalid and every other row is sent.
fn kept_sheet(
    ids: &[String],
) -> (
    String,
    BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
) {
    let mut text = String::from("id,Stadt,Notes,Email_Opt_Out\n");
    let mut expected = BTreeMap::new();
    let cities = ["Köln", "Lyon", "Porto"];
    let checkboxes = [
        ("ja", true),
        ("Nein", false),
        (" oui ", true),
        ("vielleicht", false),
    ];
    for (i, id) in ids.iter().enumerate() {
        let city = cities[i % cities.len()];
        let (word, value) = checkboxes[i % checkboxes.len()];
        text.push_str(&format!("{id},{city},\"call back, maybe\",{word}\n"));
        if word != "vielleicht" {
            let values = serde_json::json!({
                "City": city,
                "Email_Opt_Out": value,
                "Lead_Source": "Partner",
            });
            expected.insert(id.clone(), values.as_object().unwrap().clone());
        }
    }
    (text, expected)
}

const KEPT_SHEET_MAP: &str = r#"[columns]
"Stadt" = "City"

[skip]
columns = ["Notes"]

[set]
Lead_Source = "Partner"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_sheet_is_refused_naming_its_columns_then_sent_as_its_map_says() {
    let config = MockConfig {
        records: 12,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let ids = config.record_ids();
    let (text, expected) = kept_sheet(&ids);
    let csv = ws.write("kept.csv", &text);
    let map = ws.write("kept-map.toml", KEPT_SHEET_MAP);

    // Without --map or --ignore-column: refused before anything is stored, naming each
    // column and both fixes.
    ws.plan(&csv, &[], &Creds::None)
        .await
        .expect_code(2)
        .expect_stderr(&[
            "kept.csv: 2 column(s) cannot be planned for Leads, nothing was stored",
            "column \"Stadt\" is not a field of this module",
            "column \"Notes\" is not a field of this module",
            "--ignore-column \"Stadt\"",
            "--map FILE",
        ]);

    let ran = ws
        .run(
            &csv,
            &["--map", map.to_str().unwrap(), "--api", "auto", "--json"],
            &Creds::mock_token(),
        )
        .await;
    // One row's checkbox is not a boolean: exit 3, and the others are all sent.
    ran.expect_code(3);
    let body = ran.json();
    let plan = &body["plan"];
    assert_eq!(plan["ignored_columns"], serde_json::json!(["Notes"]));
    assert_eq!(
        plan["fixed_values"],
        serde_json::json!([{"field": "Lead_Source", "value": "Partner"}])
    );
    assert_eq!(
        plan["column_mapping"],
        serde_json::json!([{"header": "Stadt", "api_name": "City", "by": "map"}])
    );
    assert_eq!(plan["invalid_rows"], 3, "{}", ran.report());
    let problem = &plan["problems"][0];
    let message = problem["message"].as_str().unwrap();
    assert_eq!(problem["line"], 5);
    assert!(
        problem["path"].as_str().unwrap().ends_with("kept.csv")
            && message.contains("column Email_Opt_Out")
            && message.contains("\"vielleicht\" is not a boolean")
            && message.contains("ja/nein"),
        "{problem}"
    );
    let ledger = server.ledger();
    for id in &ids {
        match expected.get(id) {
            Some(values) => assert_eq!(&ledger.records[id], values, "record {id}"),
            None => assert!(ledger.records[id].is_empty(), "record {id} is left alone"),
        }
    }
    let conn = ws.open_db();
    let run = last_run(&conn);
    let settings: serde_json::Value = conn
        .query_row("SELECT settings_json FROM runs WHERE id = ?1", [run], |r| {
            r.get::<_, String>(0)
        })
        .map(|text| serde_json::from_str(&text).unwrap())
        .unwrap();
    assert_eq!(
        (
            &settings["map_columns"],
            &settings["map_set"],
            &settings["ignore_columns"]
        ),
        (
            &serde_json::json!({"Stadt": "City"}),
            &serde_json::json!({"Lead_Source": "Partner"}),
            &serde_json::json!(["Notes"])
        )
    );

    // The same sheet with another fixed value is other settings: `run` refuses the older
    // plan and sends nothing.
    let sent = server.ledger().update_requests + server.ledger().requests;
    let other = ws.write(
        "kept-map-2.toml",
        &KEPT_SHEET_MAP.replace("\"Partner\"", "\"Cold Call\""),
    );
    ws.run(
        &csv,
        &["--map", other.to_str().unwrap(), "--api", "auto"],
        &Creds::mock_token(),
    )
    .await
    .expect_code(2)
    .expect_stderr(&[
        "other settings",
        "map_set: planned {\"Lead_Source\":\"Partner\"}, now {\"Lead_Source\":\"Cold Call\"}",
        "--new-run",
    ]);
    // And so is the same sheet without the map at all.
    ws.run(
        &csv,
        &[
            "--ignore-column",
            "Notes",
            "--ignore-column",
            "Stadt",
            "--api",
            "auto",
        ],
        &Creds::mock_token(),
    )
    .await
    .expect_code(2)
    .expect_stderr(&[
        "other settings",
        "map_set: planned",
        "ignore_columns: planned",
    ]);
    let ledger = server.ledger();
    assert_eq!(
        ledger.update_requests + ledger.requests,
        sent,
        "nothing more was sent"
    );
}

/// A resume or retry with nothing to send (cron calling them after the run finished) asks
/// for no credentials, connects nowhere and adds no send to the run's times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_and_retry_with_nothing_to_send_need_no_credentials() {
    let config = MockConfig {
        records: 40,
        seed: 77,
        ..MockConfig::default()
    };
    let (server, ws, _changes, csv) = scene(&config, 40, false).await;
    ws.run(&csv, &["--yes"], &Creds::mock_token())
        .await
        .expect_code(0);
    let requests = server.ledger().requests;
    assert_eq!(send_count(&ws).await, 1);
    for command in ["resume", "retry"] {
        let ran = ws.again(command, &[], &Creds::None).await;
        ran.expect_code(0)
            .expect_in(Stream::Out, &["nothing left to send"]);
        assert!(!ran.stderr().contains("no credentials"), "{}", ran.report());
    }
    let json = ws.again("resume", &["--json"], &Creds::None).await;
    json.expect_code(0);
    let doc: serde_json::Value = serde_json::from_slice(&json.output.stdout).unwrap();
    assert_eq!(doc["exit_code"], 0, "{doc}");
    assert_eq!(send_count(&ws).await, 1, "no send added to the run's times");
    assert_eq!(
        server.ledger().requests,
        requests,
        "nothing was asked of Zoho"
    );
}

/// How many sends (invocations that sent) `status --json` lists for the latest run.
async fn send_count(ws: &Workspace) -> usize {
    let status = ws.massup(&["status", "--json"], &Creds::None).await;
    let json: serde_json::Value = serde_json::from_slice(&status.output.stdout).unwrap();
    json["counts"]["sends"].as_array().unwrap().len()
}
