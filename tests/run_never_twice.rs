//! Issue "never twice, never in clear, never blind", each defect reproduced against the
//! embedded mock over real HTTP with the real binary: overlapping senders, redirects that
//! would carry secrets or records elsewhere, servers that echo secrets, spent daily
//! credits, --min-credits under concurrency, and a damaged database. Every test checks the
//! mock's ledger, not only massup's word.

mod support;

use std::time::Duration;

use massup::mock::{MockConfig, Redirect};
use support::*;

/// A mock slow enough that a run is still sending when a second invocation starts.
fn slow(records: usize) -> MockConfig {
    MockConfig {
        records,
        latency_mean: Duration::from_millis(60),
        ..MockConfig::default()
    }
}

/// Regression: two `massup run` of the same file on the same database started together
/// both planned and both sent everything (148 requests for 74 calls).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_runs_of_one_file_plan_one_run_and_send_it_once() {
    let config = slow(600);
    let (server, ws, changes, csv) = scene(&config, 600, false).await;
    let extra = ["--concurrency", "2", "--chunk-size", "50"];
    let creds = Creds::mock_token();
    let first = ws.run(&csv, &extra, &creds);
    let second = ws.run(&csv, &extra, &creds);
    let (first, second) = tokio::join!(first, second);
    let mut codes = [first.code(), second.code()];
    codes.sort();
    // One sends (0); the other finds the run being sent and exits 4, naming the holder.
    assert_eq!(codes, [0, 4], "{}\n{}", first.report(), second.report());
    let busy = if first.code() == 4 { &first } else { &second };
    busy.expect_stderr(&["is being sent by pid", "--wait"]);

    let conn = ws.open_db();
    let runs: i64 = conn
        .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 1, "the same file planned twice at once makes one run");
    let run = last_run(&conn);
    let ledger = server.ledger();
    assert_all_applied(&conn, run, &ledger, &changes);
    assert_eq!(ledger.requests, calls(&conn, run), "nothing sent twice");
    for (id, applied) in &ledger.applied {
        if changes.expected.contains_key(id) {
            assert_eq!(*applied, 2, "record {id}: one update per field, once");
        }
    }
}

/// Regression: a `resume` started while another process sends re-sent that process's
/// in-flight chunks, then died with "Query changed 0 rows", and the first process could
/// leave records wrongly pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_during_a_run_is_refused_and_the_run_ends_whole() {
    let config = slow(600);
    let (server, ws, changes, csv) = scene(&config, 600, false).await;
    let args = ws.run_args(&csv, &["--concurrency", "2", "--chunk-size", "50"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut command = ws.command(&args, &Creds::mock_token());
    let running = command.output();
    let resume = async {
        // Wait until the run is sending, then try to resume it.
        for _ in 0..200 {
            if server.ledger().requests >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ws.again("resume", &[], &Creds::mock_token()).await
    };
    let (running, resumed) = tokio::join!(running, resume);
    resumed.expect_code(4);
    resumed.expect_stderr(&["run 1 is being sent by pid", "massup run"]);
    assert_eq!(running.unwrap().status.code(), Some(0));

    let conn = ws.open_db();
    let ledger = server.ledger();
    assert_all_applied(&conn, 1, &ledger, &changes);
    assert_eq!(ledger.requests, calls(&conn, 1), "the resume sent nothing");
    let status = ws.massup(&["status", "--json"], &Creds::mock_token()).await;
    let json: serde_json::Value = serde_json::from_slice(&status.output.stdout).unwrap();
    assert_eq!(json["run"]["state"], "finished");
    assert_eq!(json["counts"]["rows"]["pending"], 0);
}

/// `--wait` queues behind the sender instead of exiting; it then finds nothing left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_a_second_sender_queues_and_sends_nothing_twice() {
    let config = slow(400);
    let (server, ws, changes, csv) = scene(&config, 400, false).await;
    let args = ws.run_args(&csv, &["--concurrency", "2", "--chunk-size", "50"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut command = ws.command(&args, &Creds::mock_token());
    let running = command.output();
    let waiting = async {
        for _ in 0..200 {
            if server.ledger().requests >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ws.again("resume", &["--run", "1", "--wait"], &Creds::mock_token())
            .await
    };
    let (running, waited) = tokio::join!(running, waiting);
    assert_eq!(running.unwrap().status.code(), Some(0));
    waited.expect_code(0);
    waited.expect_stderr(&["waiting for it to end"]);
    let conn = ws.open_db();
    let ledger = server.ledger();
    assert_all_applied(&conn, 1, &ledger, &changes);
    assert_eq!(ledger.requests, calls(&conn, 1));
}

/// Regression: an accounts server answering the refresh with a 307 to a plain-http address
/// made massup POST the client secret and refresh token there, four times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_token_refresh_sends_no_secret_anywhere() {
    // The redirect's target: another mock, whose ledger counts what reached it.
    let elsewhere = start(MockConfig::default()).await;
    let config = MockConfig {
        records: 50,
        token_redirect: Some(Redirect::temporary(format!(
            "http://localhost:{}/oauth/v2/token",
            elsewhere.addr().port()
        ))),
        ..MockConfig::default()
    };
    let (server, ws, _changes, csv) = scene(&config, 50, false).await;
    let ran = ws.run(&csv, &[], &Creds::mock_refresh()).await;
    ran.expect_code(1);
    ran.expect_stderr(&["redirect", "localhost"]);
    let target = elsewhere.ledger();
    assert_eq!(target.refreshes, 0);
    assert_eq!(target.requests, 0);
    assert_eq!(server.ledger().refreshes, 0);
    assert_eq!(
        server.ledger().requests,
        0,
        "no record was sent without a token"
    );
    assert_eq!(
        server.ledger().redirects,
        1,
        "asked once, refused, not retried"
    );
}

/// Regression: API-domain redirects were followed to plain http (record data sent there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_api_call_stops_the_run_and_sends_nothing_there() {
    let elsewhere = start(MockConfig::default()).await;
    let config = MockConfig {
        records: 50,
        api_redirect: Some(Redirect {
            status: 308,
            location: format!(
                "http://localhost:{}/crm/v2/Leads/actions/mass_update",
                elsewhere.addr().port()
            ),
        }),
        ..MockConfig::default()
    };
    let (server, ws, _changes, csv) = scene(&config, 50, false).await;
    let ran = ws
        .run(&csv, &["--concurrency", "1"], &Creds::mock_token())
        .await;
    ran.expect_code(1);
    ran.expect_stderr(&["REDIRECTED", "redirecting to http://localhost:"]);
    assert_eq!(elsewhere.ledger().requests, 0);
    assert_eq!(
        server.ledger().redirects,
        1,
        "one call, then the run stopped"
    );
    let conn = ws.open_db();
    let status = ws.massup(&["status", "--json"], &Creds::mock_token()).await;
    let json: serde_json::Value = serde_json::from_slice(&status.output.stdout).unwrap();
    assert_eq!(
        json["counts"]["rows"]["pending"], 50,
        "resumable once fixed"
    );
    drop(conn);
}

/// Regression: servers whose error text echoes the secret, refresh token or access token
/// got them copied into errors, logs, the database and reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_secrets_reach_no_output_database_or_report() {
    let config = MockConfig {
        records: 20,
        echo_secrets: true,
        ..MockConfig::default()
    };
    let (server, ws, _changes, csv) = scene(&config, 20, false).await;
    // A refused client: the accounts server's error repeats the secret and refresh token.
    let refused = Creds::mock_refresh().with_client_secret("s3cret-that-is-wrong");
    let ran = ws.run(&csv, &["-vv"], &refused).await;
    ran.expect_code(1);
    // A refused access token: the API's 401 repeats the Authorization header.
    let token = "1000.0123456789abcdef0123456789abcdef.fedcba9876543210fedcba9876543210";
    let ran_token = ws
        .again("resume", &["-vv"], &Creds::Token(token.to_string()))
        .await;
    ran_token.expect_code(1);
    let report = ws.path().join("report.csv");
    let reported = ws
        .massup(
            &["report", "--out", report.to_str().unwrap()],
            &Creds::mock_token(),
        )
        .await;
    reported.expect_code(0);
    let mut everything = String::new();
    for ran in [&ran, &ran_token, &reported] {
        everything.push_str(&ran.stdout());
        everything.push_str(&ran.stderr());
    }
    everything.push_str(&std::fs::read_to_string(&report).unwrap());
    // The database, every page of it (the WAL too), as bytes.
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", ws.db().display());
        if let Ok(bytes) = std::fs::read(&path) {
            everything.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    for secret in [
        "s3cret-that-is-wrong",
        "mock-refresh-token",
        token,
        "0123456789abcdef0123456789abcdef",
    ] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked:\n{}\n{}",
            ran.report(),
            ran_token.report()
        );
    }
    assert!(server.ledger().refreshes == 0);
}

/// Regression: with the org's credits spent, every chunk was retried --max-attempts times
/// (350 calls for 5 successes) and each `resume` repeated it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spent_daily_credits_stop_the_run_at_once_and_resume_does_not_burn() {
    let config = MockConfig {
        records: 500,
        daily_credits: Some(5),
        ..MockConfig::default()
    };
    let (server, ws, _changes, csv) = scene(&config, 500, false).await;
    let ran = ws
        .run(
            &csv,
            &["--chunk-size", "10", "--concurrency", "2"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(4);
    ran.expect_stderr(&["daily API credits exhausted", "resume"]);
    let after_run = server.ledger().requests;
    // 5 calls got through; at most the other call in flight was refused besides.
    assert!(after_run <= 5 + 2, "{after_run} requests\n{}", ran.report());
    let resumed = ws.again("resume", &[], &Creds::mock_token()).await;
    resumed.expect_code(4);
    resumed.expect_stderr(&["daily API credits exhausted"]);
    assert!(
        server.ledger().requests - after_run <= 2,
        "a resume into a spent quota makes at most one round of calls"
    );
    let conn = ws.open_db();
    let run = last_run(&conn);
    let checked = cross_check(&conn, run, &server.ledger());
    assert_eq!(checked.count(massup::outcome::ItemState::Succeeded), 50);
}

/// Regression: `--min-credits 10` at concurrency 10 let the credits fall from 9 to 2: the
/// calls already in flight were not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_credits_holds_at_full_concurrency() {
    let config = MockConfig {
        records: 2000,
        // The header appears once half the credits are used, as Zoho sends it.
        daily_credits: Some(120),
        latency_mean: Duration::from_millis(20),
        ..MockConfig::default()
    };
    let (server, ws, _changes, csv) = scene(&config, 2000, false).await;
    let ran = ws
        .run(
            &csv,
            &[
                "--chunk-size",
                "10",
                "--concurrency",
                "10",
                "--min-credits",
                "10",
            ],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(4);
    ran.expect_stderr(&["below --min-credits"]);
    let left = server.ledger().credits_remaining.unwrap();
    assert!(left >= 10, "only {left} credits left\n{}", ran.report());
}

/// Regression: a corrupt database was found only after every call had been sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_database_is_refused_before_any_call() {
    let config = MockConfig {
        records: 100,
        ..MockConfig::default()
    };
    let (server, ws, _changes, csv) = scene(&config, 100, false).await;
    // Plan only, then damage the chunks table's pages on disk.
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
            ],
            &Creds::mock_token(),
        )
        .await;
    planned.expect_code(0);
    {
        let conn = ws.open_db();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let root: i64 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = 'chunks'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let page: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        drop(conn);
        let mut bytes = std::fs::read(ws.db()).unwrap();
        let at = ((root - 1) * page) as usize;
        for b in &mut bytes[at + 8..at + 64] {
            *b = 0xA5;
        }
        std::fs::write(ws.db(), bytes).unwrap();
    }
    let ran = ws
        .again("resume", &["--api-domain", &ws.url], &Creds::mock_token())
        .await;
    ran.expect_code(1);
    ran.expect_stderr(&["is damaged", "nothing was sent"]);
    assert_eq!(server.ledger().requests, 0);
}

/// Regression: with the default `--rate none`, a storm of 429s (more calls in flight than
/// the org allows) was retried blindly at full concurrency. The pool now halves its calls
/// in flight on a 429 and adds them back slowly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_lowers_the_calls_in_flight_instead_of_retrying_blindly() {
    let config = MockConfig {
        records: 2000,
        max_concurrency: Some(2),
        latency_mean: Duration::from_millis(20),
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = scene(&config, 2000, false).await;
    let ran = ws
        .run(
            &csv,
            &[
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
    let throttled = ledger
        .by_code
        .get("TOO_MANY_REQUESTS")
        .copied()
        .unwrap_or(0);
    let calls_needed = ledger.requests - throttled;
    eprintln!("{calls_needed} calls, {throttled} answered 429");
    // Measured once by hand on this scene (2,000 records, cap 2, 20 ms): the binary before
    // this change drew 70 429s for 160 calls and gave up on some chunks (exit 4); now it
    // draws a handful while the pool finds the cap.
    assert!(
        throttled * 4 <= calls_needed,
        "{throttled} 429s for {calls_needed} calls\n{}",
        ran.report()
    );
    ran.expect_stderr(&["calls in flight lowered"]);
    // Regression: -v logged two lines for a whole run. Now one event per call.
    let call_events = ran
        .stderr()
        .lines()
        .filter(|l| l.contains(" call chunk="))
        .count() as u64;
    assert_eq!(call_events, ledger.requests);
}

/// `resume --wait-credits` waits for the 24-hour window instead of stopping, probing with
/// one call at a time (the mock's credits never come back, so every probe is refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_credits_probes_with_one_call_at_a_time_then_gives_up_resumably() {
    let config = MockConfig {
        records: 200,
        daily_credits: Some(3),
        ..MockConfig::default()
    };
    let (server, ws, _changes, csv) = scene(&config, 200, false).await;
    let ran = ws
        .run(
            &csv,
            &["--chunk-size", "10", "--concurrency", "2"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(4);
    let before = server.ledger().requests;
    let waited = ws
        .again(
            "resume",
            &[
                "--wait-credits",
                "--probe-every",
                "1",
                "--wait-hours",
                "0.0009",
            ],
            &Creds::mock_token(),
        )
        .await;
    waited.expect_code(4);
    waited.expect_stderr(&[
        "waiting 1s for the 24-hour window",
        "probing with one call",
        "giving up",
    ]);
    let probes = waited.stderr().matches("probing with one call").count() as u64;
    assert!(probes >= 2, "{}", waited.report());
    // The first round at --concurrency 2, then one call a probe.
    let sent = server.ledger().requests - before;
    assert!(
        sent <= 2 + probes,
        "{sent} calls for {probes} probes\n{}",
        waited.report()
    );
    // The run keeps its own settings, not the probe's one call at a time.
    let conn = ws.open_db();
    let stored: String = conn
        .query_row("SELECT dispatch_json FROM runs WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["dispatch"]["concurrency"], 2);
    assert_eq!(stored["dispatch"]["max_calls"], serde_json::Value::Null);
}
