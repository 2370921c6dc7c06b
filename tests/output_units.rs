//! Honest units: `status` names rows and record updates as such, rounds rates, and gives
//! the time of each invocation that sent the run; a report's `attempts` is the calls of a
//! row's most-tried record update (1 for a row whose fields all succeeded first time).

mod support;

use massup::mock::MockConfig;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_gives_time_per_invocation_and_attempts_count_one_update() {
    let config = MockConfig {
        records: 200,
        locked_fraction: 0.1,
        unlock_after: 2,
        ..MockConfig::default()
    };
    let (_server, ws, _, csv) = scene(&config, 200, false).await;
    let creds = Creds::mock_token();
    ws.run(&csv, &["--chunk-size", "50"], &creds)
        .await
        .expect_code(3);
    ws.again("retry", &[], &creds).await.expect_code(0);

    let status = ws.massup(&["status", "--json"], &creds).await;
    status.expect_code(0);
    let json = status.json();
    let sends = json["counts"]["sends"].as_array().unwrap();
    let commands: Vec<&str> = sends
        .iter()
        .map(|s| s["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["run", "retry"], "{json:#}");
    let calls: u64 = sends.iter().map(|s| s["calls"].as_u64().unwrap()).sum();
    assert_eq!(calls, json["counts"]["calls"].as_u64().unwrap());
    for send in sends {
        assert!(send["ended_at"].is_string());
        assert_eq!(send["end_state"], "finished");
    }

    let human = ws.massup(&["status"], &creds).await;
    human.expect_code(0);
    let text = human.stdout();
    assert!(
        text.contains("  rows            200 total: 200 succeeded"),
        "{text}"
    );
    assert!(
        text.contains("record updates (a record's values in one call)"),
        "{text}"
    );
    let time = text
        .lines()
        .find(|l| l.trim_start().starts_with("time"))
        .unwrap();
    assert!(
        time.contains("s sending: run ") && time.contains(", retry "),
        "{time}"
    );
    if let Some(rate) = text.lines().find(|l| l.trim_start().starts_with("rate")) {
        // Whole units with separators: no `7183.3275/s`.
        let figure = rate.split_whitespace().nth(1).unwrap();
        assert!(!figure.contains('.') || figure.len() <= 5, "{rate}");
    }

    // Two fields per row, one call each; rows never locked took one call per update.
    let out = ws.path().join("report.json").display().to_string();
    ws.massup(&["report", "--format", "json", "--out", &out], &creds)
        .await
        .expect_code(0);
    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let attempts: Vec<u64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["attempts"].as_u64().unwrap())
        .collect();
    assert!(
        attempts.iter().all(|&a| (1..=3).contains(&a)),
        "{attempts:?}"
    );
    assert!(
        attempts.iter().filter(|&&a| a == 1).count() > 100,
        "{attempts:?}"
    );
    assert!(
        attempts.iter().any(|&a| a > 1),
        "locked rows took more calls"
    );
}
