//! Credits, the unit Zoho bills, end to end with the real binary against the mock, which
//! charges Zoho's prices (Update Records 1 credit per 10 records, mass_update and Get
//! Records 1 a call, COQL by its LIMIT). Each test checks what the mock charged against
//! what massup planned and what `status --json` says it spent.

mod support;

use std::collections::BTreeMap;

use massup::mock::MockConfig;
use serde_json::{Map, Value};
use support::*;

/// A sheet `id,City` over the first `n` records, a City shared by groups of `group`
/// records (one unique City per record with `group` 1), and an optional unique Phone.
fn sheet(config: &MockConfig, n: usize, group: usize, phone: bool) -> Changes {
    let ids = config.record_ids();
    let mut text = String::from(if phone {
        "id,City,Phone\n"
    } else {
        "id,City\n"
    });
    let mut expected = BTreeMap::new();
    for (i, id) in ids.iter().take(n).enumerate() {
        let city = format!("City {}", i / group);
        let mut values = Map::new();
        values.insert("City".into(), Value::from(city.clone()));
        text.push_str(&format!("{id},{city}"));
        if phone {
            let number = format!("+49 30 {:07}", i);
            text.push_str(&format!(",{number}"));
            values.insert("Phone".into(), Value::from(number));
        }
        text.push('\n');
        expected.insert(id.clone(), values);
    }
    Changes { text, expected }
}

/// `status --json`'s counts of the last run.
async fn status(ws: &Workspace) -> Value {
    let ran = ws.massup(&["status", "--json"], &Creds::None).await;
    ran.expect_code(0);
    ran.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sheet_of_large_groups_goes_by_mass_update_at_a_fifth_of_the_credits() {
    let n = 100_000;
    let config = MockConfig {
        records: n,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let changes = sheet(&config, n, 50, false);
    let csv = ws.write("sheet.csv", &changes.text);
    let planned = ws
        .plan(&csv, &["--no-snapshot", "--json"], &Creds::None)
        .await;
    planned.expect_code(0);
    let plan = planned.json();
    let estimate = plan["credits"].as_u64().expect("the plan's credits");
    // 2,000 groups of 50 records: 2,000 mass_update calls of 1 credit, where Update
    // Records batches would cost 10,000.
    assert!(estimate <= 2_040, "{plan:#}");
    assert_eq!(plan["all_update_records_credits"], 10_000, "{plan:#}");
    let ran = ws
        .run(
            &csv,
            &["--api", "auto", "--concurrency", "10", "--rate", "none"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_all_applied(&conn, run, &ledger, &changes);
    assert_eq!(
        ledger.credits_charged, estimate,
        "the plan's estimate is what Zoho charged"
    );
    let status = status(&ws).await;
    assert_eq!(status["counts"]["credits"], estimate, "{status:#}");
    assert_eq!(
        status["counts"]["spend"]["mass_update"]["credits"],
        estimate
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_values_cost_one_credit_per_ten_records() {
    let n = 20_000;
    let config = MockConfig {
        records: n,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let changes = sheet(&config, n, 1, true);
    let csv = ws.write("sheet.csv", &changes.text);
    let ran = ws
        .run(
            &csv,
            &[
                "--api",
                "auto",
                "--concurrency",
                "20",
                "--rate",
                "none",
                "--json",
            ],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_all_applied(&conn, run, &ledger, &changes);
    assert!(
        ledger.credits_charged <= 2_000,
        "{} credits",
        ledger.credits_charged
    );
    // --concurrency 20, but Zoho allows 10 Update Records calls of more than 10 records
    // at once: none was refused for it.
    assert!(ledger.max_sub_concurrency_seen <= 10);
    assert_eq!(
        ledger
            .update_by_code
            .get("TOO_MANY_REQUESTS")
            .copied()
            .unwrap_or(0),
        0
    );
    let status = status(&ws).await;
    assert_eq!(status["counts"]["credits"], ledger.credits_charged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_over_the_budget_sends_nothing() {
    let config = MockConfig {
        records: 2_000,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let changes = sheet(&config, 2_000, 1, false);
    let csv = ws.write("sheet.csv", &changes.text);
    // 2,000 unique values: 200 credits by Update Records.
    let ran = ws
        .run(
            &csv,
            &["--api", "auto", "--max-credits", "150"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(2)
        .expect_stderr(&["--max-credits 150", "200 credits"]);
    let ledger = server.ledger();
    assert_eq!(ledger.credits_charged, 0);
    assert_eq!(ledger.update_requests + ledger.requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_stops_at_the_budget_and_resume_with_more_finishes() {
    // A third of the calls fail with a 500 (charged, as Zoho may have served them) and go
    // again: the run costs more than its 200-credit estimate.
    let config = MockConfig {
        records: 2_000,
        fail_500_rate: 0.3,
        seed: 20,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let changes = sheet(&config, 2_000, 1, false);
    let csv = ws.write("sheet.csv", &changes.text);
    let ran = ws
        .run(
            &csv,
            &[
                "--api",
                "auto",
                "--max-credits",
                "200",
                "--concurrency",
                "3",
                "--max-attempts",
                "20",
            ],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(4)
        .expect_stderr(&["--max-credits 200 reached", "resume"]);
    let charged = server.ledger().credits_charged;
    assert!(
        charged <= 200,
        "{charged} credits charged past a budget of 200"
    );
    let status = status(&ws).await;
    assert_eq!(status["counts"]["credits"], charged, "{status:#}");
    // Resume with a larger budget finishes, every value applied once.
    let resumed = ws
        .again(
            "resume",
            &["--max-credits", "1000", "--max-attempts", "20"],
            &Creds::mock_token(),
        )
        .await;
    resumed.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_all_applied(&conn, run, &ledger, &changes);
    assert!(ledger.credits_charged <= 1_000);
    let status = self::status(&ws).await;
    assert_eq!(status["counts"]["credits"], ledger.credits_charged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_reads_each_record_once_whatever_the_concurrency() {
    // Three fields by mass_update: every record is in three chunks, sent two at a time.
    let config = MockConfig {
        records: 600,
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = scene(&config, 600, true).await;
    let ran = ws
        .run(
            &csv,
            &[
                "--api",
                "mass",
                "--snapshot",
                "--concurrency",
                "2",
                "--chunk-size",
                "50",
            ],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_all_applied(&conn, run, &ledger, &changes);
    let read: i64 = conn
        .query_row(
            "SELECT COALESCE(SUM(ids), 0) FROM calls WHERE run_id = ?1 AND kind = 'get_records'
               AND http_status = 200",
            [run],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(read, 600, "records read (each once)\n{}", ran.report());
    let befores: i64 = conn
        .query_row(
            "SELECT COUNT(DISTINCT record_id) FROM befores WHERE run_id = ?1",
            [run],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(befores, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_are_not_bought_twice_within_the_hour() {
    let config = MockConfig {
        records: 1_000,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let mut text = String::from("Email,City\n");
    for email in config.record_emails().iter().take(1_000) {
        text.push_str(&format!("{email},Oslo\n"));
    }
    let csv = ws.write("sheet.csv", &text);
    let plan = |extra: &'static [&'static str]| {
        let mut args = vec![
            "plan".to_string(),
            "--csv".into(),
            csv.to_str().unwrap().to_string(),
            "--module".into(),
            "Leads".into(),
            "--fields".into(),
            fields_file().to_str().unwrap().to_string(),
            "--match-by".into(),
            "Email".into(),
            "--api-domain".into(),
            server.url(),
            "--json".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let first = plan(&[]);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let ran = ws.massup(&first, &Creds::mock_token()).await;
    ran.expect_code(0);
    let queries = server.ledger().coql_requests;
    assert_eq!(queries, 20, "1,000 keys, 50 a query");
    assert_eq!(ran.json()["lookup"]["reused"], 0);
    // The same sheet planned again with another setting: every key reused, no query.
    let again = plan(&["--new-run", "--trigger", "none"]);
    let again: Vec<&str> = again.iter().map(String::as_str).collect();
    let ran = ws.massup(&again, &Creds::mock_token()).await;
    ran.expect_code(0);
    assert_eq!(server.ledger().coql_requests, queries);
    assert_eq!(ran.json()["lookup"]["reused"], 1_000, "{}", ran.report());
    assert_eq!(ran.json()["lookup"]["matched"], 1_000);
    // --fresh-lookups asks again.
    let fresh = plan(&["--new-run", "--fresh-lookups"]);
    let fresh: Vec<&str> = fresh.iter().map(String::as_str).collect();
    ws.massup(&fresh, &Creds::mock_token()).await.expect_code(0);
    assert_eq!(server.ledger().coql_requests, 2 * queries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_shows_its_share_of_the_credits_zoho_says_are_left() {
    // 600 credits a day; 2,000 unique values (200 credits) twice leave 200, which Zoho
    // reports once half are used.
    let config = MockConfig {
        records: 2_000,
        daily_credits: Some(600),
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let first = ws.write("first.csv", &sheet(&config, 2_000, 1, false).text);
    let second = ws.write("second.csv", &sheet(&config, 2_000, 1, true).text);
    for csv in [&first, &second] {
        ws.run(csv, &["--api", "update"], &Creds::mock_token())
            .await
            .expect_code(0);
    }
    assert_eq!(server.ledger().credits_remaining, Some(200));
    let third = ws.write("third.csv", &sheet(&config, 1_000, 2, false).text);
    let planned = ws
        .plan(
            &third,
            &["--no-snapshot", "--api", "update", "--json"],
            &Creds::None,
        )
        .await;
    planned.expect_code(0);
    let plan = planned.json();
    assert_eq!(plan["org_credits_left"]["remaining"], 200, "{plan:#}");
    assert_eq!(plan["credits"], 100);
    let human = ws
        .plan(
            &third,
            &["--new-run", "--no-snapshot", "--api", "update"],
            &Creds::None,
        )
        .await;
    human.expect_in(Stream::Out, &["org credits", "200", "this plan takes 50%"]);
}
