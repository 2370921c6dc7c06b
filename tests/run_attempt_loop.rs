//! One attempt loop for every kind of call: reads (the snapshot's Get Records, the lookups'
//! COQL) answer failures the way writes do. Each test is a regression of the days when
//! reads had a loop of their own: an accounts-server outage during a read exited 1 instead
//! of stopping resumably (4), a read's 429 never lowered the pace, and a read in backoff
//! held its call slot.

mod support;

use std::time::Duration;

use massup::mock::MockConfig;
use massup::outcome::ItemState;
use support::*;

/// A port that refuses connections: bound, then closed.
fn closed_port() -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    url
}

/// 300 records whose starting access token lives one second, at 15 calls/s: the token
/// expires while the run reads and writes, and refreshing it cannot reach the accounts
/// server.
fn expiring() -> MockConfig {
    MockConfig {
        records: 300,
        seed: 19,
        token_lifetime: Some(Duration::from_secs(1)),
        max_tokens_per_10min: Some(10),
        ..MockConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_outage_during_snapshot_reads_stops_resumably() {
    let config = expiring();
    let server = start(config.clone()).await;
    let mut ws = Workspace::new(&server);
    let changes = changes(&config, 300, false);
    let csv = ws.write("changes.csv", &changes.text);
    let creds = Creds::refresh_of(&config).with_access_token(Some(&config.token));
    ws.run(&csv, &["--concurrency", "2"], &creds)
        .await
        .expect_code(0);
    let applied = total_applied(&server.ledger());
    // The same sheet again with --skip-unchanged: every chunk reads its records and finds
    // them holding the values, so every call is a read. The starting token has expired
    // and the accounts server is down.
    std::thread::sleep(Duration::from_millis(1_500));
    ws.accounts_url = closed_port();
    let ran = tokio::time::timeout(
        Duration::from_secs(60),
        ws.run(
            &csv,
            &[
                "--new-run",
                "--skip-unchanged",
                "--concurrency",
                "2",
                "--max-attempts",
                "2",
            ],
            &creds,
        ),
    )
    .await
    .expect("the run ends");
    ran.expect_code(4)
        .expect_stderr(&["cannot reach", "resume"]);
    let ledger = server.ledger();
    assert!(ledger.get_records_requests > 0, "{}", ran.report());
    assert_eq!(total_applied(&ledger), applied, "nothing was written");
    let conn = ws.open_db();
    let run = last_run(&conn);
    let checked = cross_check(&conn, run, &ledger);
    assert_eq!(
        checked.count(ItemState::Pending) as usize,
        checked.final_items.len(),
        "{}",
        ran.report()
    );
    drop(conn);
    // With the accounts server back, resume finds every record unchanged.
    let resumed = ws
        .again("resume", &["--accounts-url", &server.url()], &creds)
        .await;
    resumed.expect_code(0);
    assert_eq!(total_applied(&server.ledger()), applied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_outage_during_lookups_stops_resumably() {
    let config = MockConfig {
        records: 3_000,
        ..expiring()
    };
    let server = start(config.clone()).await;
    let mut ws = Workspace::new(&server);
    ws.accounts_url = closed_port();
    let mut text = String::from("Email,City\n");
    for email in config.record_emails().iter().take(3_000) {
        text.push_str(&format!("{email},Oslo\n"));
    }
    let csv = ws.write("sheet.csv", &text);
    let creds = Creds::refresh_of(&config).with_access_token(Some(&config.token));
    // 60 lookup queries at 15/s: the token expires among them.
    let ran = tokio::time::timeout(
        Duration::from_secs(60),
        ws.run(
            &csv,
            &[
                "--match-by",
                "Email",
                "--concurrency",
                "1",
                "--rate",
                "15/s",
                "--max-attempts",
                "2",
            ],
            &creds,
        ),
    )
    .await
    .expect("the plan ends");
    ran.expect_code(4)
        .expect_stderr(&["no access token", "nothing was planned"]);
    let ledger = server.ledger();
    assert!(ledger.coql_requests > 1, "{}", ran.report());
    // Nothing was planned, so nothing was written.
    assert_eq!(total_applied(&ledger), 0, "{}", ran.report());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_during_snapshot_reads_lowers_the_pace() {
    let config = MockConfig {
        records: 2_000,
        max_concurrency: Some(2),
        latency_mean: Duration::from_millis(20),
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = scene(&config, 2_000, false).await;
    // mass_update chunks of 25 with a snapshot: every chunk reads its 25 records first,
    // so half the calls are reads.
    let ran = ws
        .run(
            &csv,
            &[
                "--snapshot",
                "--chunk-size",
                "25",
                "--concurrency",
                "10",
                "--rate",
                "none",
                "-v",
            ],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_all_applied(&conn, run, &ledger, &changes);
    let too_many = |codes: &std::collections::BTreeMap<String, u64>| {
        codes.get("TOO_MANY_REQUESTS").copied().unwrap_or(0)
    };
    let throttled = too_many(&ledger.by_code) + too_many(&ledger.get_records_by_code);
    let requests = ledger.requests + ledger.get_records_requests;
    let calls_needed = requests - throttled;
    eprintln!(
        "{calls_needed} calls ({} reads), {throttled} answered 429 ({} of them reads)",
        ledger.get_records_requests,
        too_many(&ledger.get_records_by_code)
    );
    assert!(ledger.get_records_requests > 0);
    assert!(
        throttled * 4 <= calls_needed,
        "{throttled} 429s for {calls_needed} calls\n{}",
        ran.report()
    );
    // Every request, read or write, is one call event at -v, and the reads' 429s lower
    // the pool like the writes'.
    let call_events = ran
        .stderr()
        .lines()
        .filter(|l| l.contains(" call ") && l.contains(" credits="))
        .count() as u64;
    assert_eq!(call_events, requests, "{}", ran.report());
    let read_events = ran
        .stderr()
        .lines()
        .filter(|l| l.contains(" call ") && l.contains("kind=\"get_records\""))
        .count() as u64;
    assert_eq!(read_events, ledger.get_records_requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_in_backoff_holds_no_slot() {
    // A third of the calls fail with a 500 and are tried again after a backoff. With one
    // call slot, a read that kept its slot through its backoff stalled every other chunk;
    // now other chunks' calls go out while it waits. The calls table (every call, reads
    // included, with its chunk and start) shows it.
    let config = MockConfig {
        records: 400,
        fail_500_rate: 0.3,
        seed: 7,
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = scene(&config, 400, false).await;
    let ran = ws
        .run(
            &csv,
            &[
                "--api",
                "update",
                "--snapshot",
                "--chunk-size",
                "10",
                "--concurrency",
                "1",
                "--max-attempts",
                "30",
                "--backoff-ms",
                "300",
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
        ledger.max_concurrency_seen <= 1,
        "the mock saw {} calls at once with --concurrency 1",
        ledger.max_concurrency_seen
    );
    // (chunk, kind, http status) of every call in the order they started.
    let mut stmt = conn
        .prepare(
            "SELECT chunk_id, kind, http_status FROM calls WHERE run_id = ?1
             ORDER BY started_at, id",
        )
        .unwrap();
    let calls: Vec<(i64, String, Option<i64>)> = stmt
        .query_map([run], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let failed_reads: Vec<usize> = (0..calls.len())
        .filter(|&i| calls[i].1 == "get_records" && calls[i].2 == Some(500))
        .collect();
    assert!(!failed_reads.is_empty(), "no read failed: {calls:?}");
    // Between a failed read and its chunk's next call, another chunk was served.
    let overtaken = failed_reads
        .iter()
        .filter(|&&i| {
            let chunk = calls[i].0;
            calls[i + 1..]
                .iter()
                .take_while(|c| c.0 != chunk)
                .any(|c| c.0 != chunk)
        })
        .count();
    assert!(
        overtaken * 2 >= failed_reads.len(),
        "only {overtaken} of {} failed reads let another chunk's call go during their backoff",
        failed_reads.len()
    );
}
