//! Tokens and fatal answers over real HTTP: access tokens that expire mid-run (refreshed, or
//! not refreshable), refused credentials, an unknown module, and secrets that must never
//! reach stdout, stderr or the database.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use massup::mock::MockConfig;
use massup::outcome::ItemState;
use support::*;

/// 300 records in chunks of 20 (31 calls) at 15 calls/s: a run of about two seconds, so
/// a one-second token expires during it.
const SLOW: &[&str] = &["--chunk-size", "20", "--concurrency", "2", "--rate", "15/s"];

fn expiring(seed: u64) -> MockConfig {
    MockConfig {
        records: 300,
        seed,
        token_lifetime: Some(Duration::from_secs(1)),
        max_tokens_per_10min: Some(10),
        ..MockConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_expires_mid_run_is_refreshed_within_zohos_limit() {
    let config = expiring(71);
    let (server, ws, changes, csv) = scene(&config, 300, false).await;
    // The starting token is the mock's, which expires a second after the mock starts.
    let creds = Creds::refresh_of(&config).with_access_token(Some(&config.token));
    let ran = ws.run(&csv, SLOW, &creds).await;
    ran.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    assert_all_applied(&conn, last_run(&conn), &ledger, &changes);
    assert!(ledger.refreshes >= 2, "refreshed: {}", ledger.refreshes);
    assert!(
        ledger.refreshes <= 10,
        "{} tokens minted: more than Zoho's 10 per 10 minutes",
        ledger.refreshes
    );
    // A rejected token is refreshed once for all workers.
    let rejected = ledger.by_code.get("INVALID_TOKEN").copied().unwrap_or(0);
    assert!(rejected <= 2 * ledger.refreshes, "{:?}", ledger.by_code);
    assert_eq!(total_applied(&ledger), 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_token_that_expires_stops_the_run_and_resume_with_refresh_finishes() {
    let config = expiring(72);
    let (server, ws, changes, csv) = scene(&config, 300, false).await;

    let ran = ws.run(&csv, SLOW, &Creds::mock_token()).await;
    ran.expect_code(1)
        .expect_stderr(&["INVALID_TOKEN", "ZOHO_ACCESS_TOKEN", "resume"]);
    let conn = ws.open_db();
    let run = last_run(&conn);
    let checked = cross_check(&conn, run, &server.ledger());
    assert!(checked.count(ItemState::Succeeded) > 0, "{}", ran.report());
    assert!(checked.count(ItemState::Pending) > 0, "{}", ran.report());
    assert_eq!(checked.count(ItemState::Failed), 0);
    assert_eq!(checked.count(ItemState::Retryable), 0);
    drop(conn);

    let resumed = ws.again("resume", &[], &Creds::refresh_of(&config)).await;
    resumed.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    assert_all_applied(&conn, run, &ledger, &changes);
    assert!((1..=10).contains(&ledger.refreshes), "{}", ledger.refreshes);
    assert_eq!(
        total_applied(&ledger),
        600,
        "a refused call applies nothing"
    );
}

/// An accounts server that refuses every refresh as Zoho does (HTTP 200, `error`), and
/// counts the requests.
async fn refusing_accounts_server() -> (String, Arc<AtomicU64>) {
    use axum::routing::any;
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/oauth/v2/token",
        any(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                (
                    [("content-type", "application/json")],
                    r#"{"error":"invalid_client"}"#,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_secret_is_fatal_names_the_problem_and_marks_nothing() {
    let config = MockConfig {
        records: 300,
        ..MockConfig::default()
    };
    let (server, ws, _, csv) = scene(&config, 300, false).await;
    let creds = Creds::refresh_of(&config).with_client_secret("not-the-secret");
    let ran = ws
        .run(&csv, &["--chunk-size", "20", "--concurrency", "4"], &creds)
        .await;
    ran.expect_code(1)
        .expect_stderr(&["invalid_client", "ZOHO_CLIENT_SECRET"]);
    let ledger = server.ledger();
    assert_eq!(ledger.requests, 0, "no mass_update without a token");
    assert_eq!(ledger.refreshes, 0);
    let conn = ws.open_db();
    let run = last_run(&conn);
    let checked = cross_check(&conn, run, &ledger);
    assert_eq!(
        checked.count(ItemState::Pending) as usize,
        checked.final_items.len(),
        "nothing marked"
    );
    assert_eq!(calls(&conn, run), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_refresh_credentials_are_tried_once_not_once_per_worker() {
    let config = MockConfig {
        records: 300,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let (accounts, hits) = refusing_accounts_server().await;
    let mut ws = Workspace::new(&server);
    ws.accounts_url = accounts;
    let changes = changes(&config, 300, false);
    let csv = ws.write("changes.csv", &changes.text);
    let ran = ws
        .run(
            &csv,
            &["--chunk-size", "20", "--concurrency", "8"],
            &Creds::mock_refresh(),
        )
        .await;
    ran.expect_code(1).expect_stderr(&["invalid_client"]);
    // Zoho locks a client out after repeated refused refreshes: one refusal is an answer.
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "refresh requests with refused credentials\n{}",
        ran.report()
    );
    assert_eq!(server.ledger().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_module_is_fatal_with_a_clear_message() {
    let config = MockConfig {
        records: 50,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let changes = changes(&config, 50, false);
    ws.write("changes.csv", &changes.text);
    let fields = fields_file();
    let fields = fields.to_str().unwrap();

    // With metadata from a file, the first call finds out.
    let ran = ws
        .massup(
            &[
                "run",
                "--csv",
                "changes.csv",
                "--module",
                "Leadz",
                "--fields",
                fields,
                "--api-domain",
                &ws.url,
                "--accounts-url",
                &ws.url,
                "--backoff-ms",
                "5",
            ],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(1).expect_stderr(&["INVALID_MODULE"]);
    let ledger = server.ledger();
    assert_eq!(total_applied(&ledger), 0);
    assert!(
        ledger.requests <= 10,
        "stopped at once: {}",
        ledger.requests
    );
    let conn = ws.open_db();
    let checked = cross_check(&conn, last_run(&conn), &ledger);
    assert_eq!(
        checked.count(ItemState::Pending) as usize,
        checked.final_items.len()
    );

    // Without, the metadata fetch finds out before anything is planned.
    let ran = ws
        .massup(
            &[
                "run",
                "--csv",
                "changes.csv",
                "--module",
                "Contactz",
                "--api-domain",
                &ws.url,
                "--accounts-url",
                &ws.url,
            ],
            &Creds::mock_token(),
        )
        .await;
    assert!(
        [1, 2].contains(&ran.code()),
        "exit 1 or 2\n{}",
        ran.report()
    );
    ran.expect_stderr(&["Contactz", "INVALID_MODULE"]);
    assert_eq!(server.ledger().requests, ledger.requests);
}

/// Every secret of `secrets` absent from `bytes`, and no minted mock token either.
#[track_caller]
fn assert_no_secret(what: &str, bytes: &[u8], secrets: &[&str]) {
    let text = String::from_utf8_lossy(bytes);
    for secret in secrets {
        assert!(!text.contains(secret), "{what} holds {secret:?}");
    }
    // The mock mints "1000.<32 hex>.<32 hex>".
    let minted = text.match_indices("1000.").any(|(at, _)| {
        let rest = &text[at + 5..];
        rest.len() >= 65
            && rest[..32].chars().all(|c| c.is_ascii_hexdigit())
            && &rest[32..33] == "."
    });
    assert!(!minted, "{what} holds a minted access token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_output_logs_or_the_database() {
    const TOKEN: &str = "tok-S3CRET-7d1f0a";
    const CLIENT_ID: &str = "cid-S3CRET-a81c44";
    const CLIENT_SECRET: &str = "csec-S3CRET-0be9d2";
    const REFRESH: &str = "rtok-S3CRET-55e3a7";
    const WRONG_SECRET: &str = "csec-WR0NG-9911ab";
    const WRONG_TOKEN: &str = "tok-WR0NG-42ff01";
    let config = MockConfig {
        records: 200,
        token: TOKEN.into(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        refresh_token: REFRESH.into(),
        token_lifetime: Some(Duration::from_secs(1)),
        locked_fraction: 0.05,
        ..MockConfig::default()
    };
    let (server, ws, _, csv) = scene(&config, 200, false).await;
    let secrets = [
        TOKEN,
        CLIENT_ID,
        CLIENT_SECRET,
        REFRESH,
        WRONG_SECRET,
        WRONG_TOKEN,
    ];
    let good = Creds::Refresh {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        refresh_token: REFRESH.into(),
        access_token: Some(TOKEN.into()),
    };
    let log = ["-vv", "--log-format", "json"];
    let mut outputs = Vec::new();

    // A refused client secret.
    let mut args: Vec<String> = log.iter().map(|s| s.to_string()).collect();
    args.extend(ws.run_args(&csv, &["--chunk-size", "20", "--rate", "15/s"]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let bad_secret = good
        .clone()
        .with_client_secret(WRONG_SECRET)
        .with_access_token(None);
    let ran = ws.massup(&args, &bad_secret).await;
    ran.expect_code(1);
    outputs.push(ran);
    // A refused access token that cannot be refreshed.
    let ran = ws
        .massup(
            &[&log[..], &["resume"]].concat(),
            &Creds::Token(WRONG_TOKEN.into()),
        )
        .await;
    ran.expect_code(1);
    outputs.push(ran);
    // A good run with refreshes of an expiring token.
    let ran = ws.massup(&[&log[..], &["resume"]].concat(), &good).await;
    ran.expect_code(3);
    outputs.push(ran);
    assert!(server.ledger().refreshes >= 1);
    // retry (the locked records), then status, reports and a re-plan of the same file.
    let ran = ws.massup(&[&log[..], &["retry"]].concat(), &good).await;
    assert!(matches!(ran.code(), 0 | 3), "{}", ran.report());
    outputs.push(ran);
    let report_csv = ws.path().join("report.csv").display().to_string();
    let report_json = ws.path().join("report.json").display().to_string();
    let csv_arg = csv.display().to_string();
    let others: [&[&str]; 5] = [
        &["status"],
        &["status", "--json"],
        &["report", "--out", &report_csv],
        &["report", "--format", "json", "--out", &report_json],
        &["plan", "--csv", &csv_arg, "--module", "Leads", "--json"],
    ];
    for extra in others {
        let ran = ws.massup(&[&log[..], extra].concat(), &good).await;
        ran.expect_code(0);
        outputs.push(ran);
    }
    for report in [&report_csv, &report_json] {
        assert_no_secret(report, &std::fs::read(report).unwrap(), &secrets);
    }

    for ran in &outputs {
        assert_no_secret(
            &format!("stdout of {}", ran.command),
            &ran.output.stdout,
            &secrets,
        );
        assert_no_secret(
            &format!("stderr of {}", ran.command),
            &ran.output.stderr,
            &secrets,
        );
    }
    // The log really was verbose JSON.
    assert!(
        outputs[2].stderr().contains("\"level\":\"DEBUG\"")
            || outputs[2].stderr().contains("\"level\":\"TRACE\""),
        "{}",
        outputs[2].report()
    );
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let path = format!("{}{suffix}", ws.db().display());
        if let Ok(bytes) = std::fs::read(&path) {
            assert_no_secret(&path, &bytes, &secrets);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiry_during_a_429_storm_with_faults_still_finishes() {
    let config = MockConfig {
        rate_per_sec: Some(25),
        max_concurrency: Some(2),
        fail_500_rate: 0.1,
        drop_before_rate: 0.05,
        drop_after_rate: 0.05,
        garbage_rate: 0.05,
        latency_mean: Duration::from_millis(10),
        ..expiring(73)
    };
    let (server, ws, changes, csv) = scene(&config, 300, false).await;
    let creds = Creds::refresh_of(&config).with_access_token(Some(&config.token));
    let ran = ws
        .run(
            &csv,
            &[
                "--chunk-size",
                "20",
                "--concurrency",
                "6",
                "--max-attempts",
                "80",
            ],
            &creds,
        )
        .await;
    ran.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_all_applied(&conn, run, &ledger, &changes);
    assert!(
        ledger.refreshes >= 1 && ledger.refreshes <= 10,
        "{}",
        ledger.refreshes
    );
    assert!(
        ledger.by_code.contains_key("TOO_MANY_REQUESTS"),
        "{:?}",
        ledger.by_code
    );
    assert_eq!(calls(&conn, run), ledger.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_credits_stops_the_run_resumably() {
    let config = MockConfig {
        records: 300,
        daily_credits: Some(40),
        ..MockConfig::default()
    };
    let (server, ws, _, csv) = scene(&config, 300, false).await;
    let ran = ws
        .run(
            &csv,
            &[
                "--chunk-size",
                "20",
                "--concurrency",
                "1",
                "--min-credits",
                "15",
            ],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(4).expect_stderr(&["credits", "resume"]);
    let ledger = server.ledger();
    // The 25th call's answer says 15 left: one more call would leave 14, below the floor
    // of 15, so none is sent (before the floor was held under concurrency, the 26th went
    // out and left 14).
    assert_eq!(ledger.requests, 25, "{}", ran.report());
    assert_eq!(ledger.credits_remaining, Some(15));
    let conn = ws.open_db();
    let run = last_run(&conn);
    cross_check(&conn, run, &ledger);
    drop(conn);
    // Resuming with the credits still low stops again at once, without burning calls.
    let resumed = ws.again("resume", &[], &Creds::mock_token()).await;
    resumed.expect_code(4);
    assert!(
        server.ledger().requests <= 26,
        "{}",
        server.ledger().requests
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_accounts_server_stops_the_run_resumably_instead_of_hanging() {
    let config = MockConfig {
        records: 300,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let mut ws = Workspace::new(&server);
    // A port that refuses connections: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ws.accounts_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let changes = changes(&config, 300, false);
    let csv = ws.write("changes.csv", &changes.text);
    let started = std::time::Instant::now();
    let ran = tokio::time::timeout(
        Duration::from_secs(40),
        ws.run(
            &csv,
            &[
                "--chunk-size",
                "20",
                "--concurrency",
                "4",
                "--max-attempts",
                "1",
            ],
            &Creds::mock_refresh(),
        ),
    )
    .await
    .expect("massup gives up on an unreachable accounts server instead of waiting");
    ran.expect_code(4)
        .expect_stderr(&["cannot reach", "resume"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(server.ledger().requests, 0);
    let conn = ws.open_db();
    let run = last_run(&conn);
    let checked = cross_check(&conn, run, &server.ledger());
    assert_eq!(
        checked.count(ItemState::Pending) as usize,
        checked.final_items.len()
    );
    drop(conn);

    // Once the accounts server is back (the mock's), resume finishes the run.
    let resumed = ws
        .again(
            "resume",
            &["--accounts-url", &server.url()],
            &Creds::mock_refresh(),
        )
        .await;
    resumed.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    assert_all_applied(&conn, run, &ledger, &changes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_with_the_accounts_server_down_is_resumable_not_fatal() {
    // The starting token lives 2.5 s from the mock's start (1 s was too little for a busy
    // machine to plan and send the first call: CI once saw nothing succeed); 1,500 rows at
    // 15 calls/s take 5 s, so the send still outlives it.
    let config = MockConfig {
        records: 1_500,
        token_lifetime: Some(Duration::from_millis(2_500)),
        ..expiring(74)
    };
    let server = start(config.clone()).await;
    let mut ws = Workspace::new(&server);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ws.accounts_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let changes = changes(&config, 1_500, false);
    let csv = ws.write("changes.csv", &changes.text);
    // The starting token works for a while; refreshing it then cannot reach the server.
    let creds = Creds::refresh_of(&config).with_access_token(Some(&config.token));
    let ran = ws.run(&csv, SLOW, &creds).await;
    ran.expect_code(4)
        .expect_stderr(&["cannot reach", "resume"]);
    let conn = ws.open_db();
    let run = last_run(&conn);
    let checked = cross_check(&conn, run, &server.ledger());
    assert!(checked.count(ItemState::Succeeded) > 0);
    assert!(checked.count(ItemState::Pending) > 0);
    drop(conn);

    let resumed = ws
        .again("resume", &["--accounts-url", &server.url()], &creds)
        .await;
    resumed.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    assert_all_applied(&conn, run, &ledger, &changes);
}
