//! The joins between commands: what `run` does with an earlier plan of the same file. A
//! run's settings are its identity (an old plan is never sent in place of what was asked),
//! and a nightly job's unchanged file is a deliberate, successful no-op.

mod support;

use massup::mock::MockConfig;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_other_settings_never_sends_the_old_plan() {
    let config = MockConfig {
        records: 300,
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = scene(&config, 300, false).await;
    // A plan with the defaults (Zoho's default trigger)...
    let planned = ws
        .massup(
            &[
                "plan",
                "--csv",
                csv.to_str().unwrap(),
                "--module",
                "Leads",
                "--fields",
                fields_file().to_str().unwrap(),
                "--no-snapshot",
            ],
            &Creds::None,
        )
        .await;
    planned.expect_code(0);
    // ...then `run` of the same file asking for no workflows: refused, naming the setting,
    // and nothing is sent.
    let ran = ws
        .run(&csv, &["--api", "auto", "--trigger", "none"], &Creds::mock_token())
        .await;
    ran.expect_code(2)
        .expect_stderr(&["other settings", "trigger: planned null, now []", "--new-run"]);
    let ledger = server.ledger();
    assert_eq!(ledger.requests + ledger.update_requests, 0, "{}", ran.report());
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
    assert_eq!(ledger.requests, 0, "no mass_update call can turn workflows off");
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
    ws.run(&csv, &[], &Creds::mock_token())
        .await
        .expect_code(0);
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
