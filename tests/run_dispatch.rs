//! `massup run`, `retry` and `resume` over real HTTP against the embedded mock: clean runs,
//! records that are locked for a while, faults of every kind, and the call budget, rate and
//! concurrency flags. Every test checks every record's stored outcome against the mock's
//! ledger (see `support::cross_check`).

mod support;

use std::time::{Duration, Instant};

use massup::mock::MockConfig;
use massup::outcome::ItemState;
use massup::summary::RowOutcome;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_run_sends_the_minimum_calls_and_every_value_lands() {
    let config = MockConfig {
        records: 1200,
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = scene(&config, 1200, true).await;

    let ran = ws.run(&csv, &[], &Creds::mock_token()).await;
    ran.expect_code(0);

    let ledger = server.ledger();
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_all_applied(&conn, run, &ledger, &changes);
    // 4 statuses x 300 ids, 3 cities x 400, 2 head counts x 600 (two calls each).
    assert_eq!(min_calls(&conn, run), 4 + 3 + 4);
    assert_eq!(calls(&conn, run), min_calls(&conn, run), "{}", ran.report());
    assert_eq!(ledger.requests, min_calls(&conn, run));
    assert_eq!(ledger.by_code.get("SUCCESS"), Some(&(1200 * 3)));
    // One apply per record and field group (one field per call for Leads).
    for id in changes.expected.keys() {
        assert_eq!(ledger.applied[id], 3, "record {id}");
    }
    // Records not in the file were not touched.
    assert_eq!(total_applied(&ledger), 1200 * 3);
    // `status --json` tells the same story.
    let status = ws.massup(&["status", "--json"], &Creds::mock_token()).await;
    status.expect_code(0);
    let json: serde_json::Value = serde_json::from_slice(&status.output.stdout).unwrap();
    assert_eq!(json["run"]["state"], "finished");
    assert_eq!(json["counts"]["rows"]["succeeded"], 1200);
    assert_eq!(json["counts"]["items"]["succeeded"], 3600);
    assert_eq!(json["counts"]["calls"], ledger.requests);
    assert_eq!(json["counts"]["retries"], 0);
}

/// Record ids of `changes` that the mock holds in a closed gate right now.
fn gated(ledger: &massup::mock::Ledger, changes: &Changes) -> std::collections::BTreeSet<String> {
    ledger
        .locked
        .iter()
        .chain(&ledger.not_approved)
        .filter(|id| changes.expected.contains_key(*id))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_records_are_retryable_and_retry_finishes_them_in_regrouped_calls() {
    let config = MockConfig {
        records: 400,
        locked_fraction: 0.1,
        unlock_after: 2,
        not_approved_fraction: 0.1,
        approve_after: 2,
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = scene(&config, 400, false).await;
    let gated_at_start = gated(&server.ledger(), &changes);
    assert!(gated_at_start.len() > 40, "the mock gates some records");

    let ran = ws
        .run(&csv, &["--chunk-size", "50"], &Creds::mock_token())
        .await;
    ran.expect_code(3);
    let conn = ws.open_db();
    let run = last_run(&conn);
    let ledger = server.ledger();
    let checked = cross_check(&conn, run, &ledger);
    // Each gated record refuses both of its calls (one per field), then opens.
    for (record, outcome) in row_outcomes(&conn, run) {
        let want = if gated_at_start.contains(&record) {
            RowOutcome::Retryable
        } else {
            RowOutcome::Succeeded
        };
        assert_eq!(outcome, want, "record {record}\n{}", ran.report());
    }
    assert_eq!(
        checked.count(ItemState::Retryable) as usize,
        2 * gated_at_start.len()
    );
    assert!(gated(&ledger, &changes).is_empty(), "every gate opened");
    // The fewest calls that can carry the retryable items: per group, ceil(items / 50).
    let mut per_group = std::collections::BTreeMap::<i64, u64>::new();
    for item in &checked.final_items {
        if item.state == ItemState::Retryable {
            *per_group.entry(item.group_id).or_default() += 1;
        }
    }
    let minimal: u64 = per_group.values().map(|n| n.div_ceil(50)).sum();
    let calls_before = calls(&conn, run);
    let requests_before = ledger.requests;
    drop(conn);

    let retried = ws.again("retry", &[], &Creds::mock_token()).await;
    retried.expect_code(0);
    assert!(
        retried
            .stdout()
            .contains(&format!("re-queued into {minimal} call(s)")),
        "{}",
        retried.report()
    );
    let ledger = server.ledger();
    let conn = ws.open_db();
    assert_all_applied(&conn, run, &ledger, &changes);
    assert_eq!(calls(&conn, run) - calls_before, minimal);
    assert_eq!(ledger.requests - requests_before, minimal);
    for id in changes.expected.keys() {
        assert_eq!(ledger.applied[id], 2, "record {id}: one apply per field");
    }
}

/// A run of 300 records in chunks of 20 ids (31 calls) against a mock with `config`'s faults,
/// with `extra` flags.
async fn faulty_run(
    config: MockConfig,
    extra: &[&str],
) -> (massup::mock::MockServer, Workspace, Changes, Ran) {
    let (server, ws, changes, csv) = scene(&config, 300, false).await;
    let mut flags = vec!["--chunk-size", "20"];
    if !extra.contains(&"--concurrency") {
        flags.extend_from_slice(&["--concurrency", "4"]);
    }
    flags.extend_from_slice(extra);
    let ran = ws.run(&csv, &flags, &Creds::mock_token()).await;
    (server, ws, changes, ran)
}

fn faults(seed: u64) -> MockConfig {
    MockConfig {
        records: 300,
        seed,
        ..MockConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_alone_is_retried_until_the_run_finishes() {
    let cases: Vec<((&str, &str), MockConfig)> = vec![
        (
            ("429 storm (rate and concurrency)", "TOO_MANY_REQUESTS"),
            MockConfig {
                rate_per_sec: Some(40),
                max_concurrency: Some(1),
                latency_mean: Duration::from_millis(5),
                ..faults(11)
            },
        ),
        (
            ("500s", "INTERNAL_ERROR"),
            MockConfig {
                fail_500_rate: 0.3,
                ..faults(12)
            },
        ),
        (
            ("drops before applying", "DROPPED_BEFORE"),
            MockConfig {
                drop_before_rate: 0.3,
                ..faults(13)
            },
        ),
        (
            ("drops after applying", "DROPPED_AFTER"),
            MockConfig {
                drop_after_rate: 0.3,
                ..faults(14)
            },
        ),
        (
            ("garbage bodies", "GARBAGE"),
            MockConfig {
                garbage_rate: 0.3,
                ..faults(15)
            },
        ),
    ];
    for ((name, code), config) in cases {
        let (server, ws, changes, ran) = faulty_run(config, &["--max-attempts", "60"]).await;
        assert_eq!(ran.code(), 0, "{name}\n{}", ran.report());
        let ledger = server.ledger();
        let conn = ws.open_db();
        let run = last_run(&conn);
        assert_all_applied(&conn, run, &ledger, &changes);
        // Every HTTP attempt is logged, and the mock saw each of them.
        assert_eq!(calls(&conn, run), ledger.requests, "{name}");
        let faulted = ledger.requests - 31;
        assert!(
            faulted > 0,
            "{name}: the mock injected faults: {:?}",
            ledger.by_code
        );
        assert!(
            ledger.by_code.contains_key(code),
            "{name}: {:?}",
            ledger.by_code
        );
        // Applies beyond one per item come only from calls dropped after applying.
        let extra = total_applied(&ledger) - 600;
        let dropped_after = ledger.by_code.get("DROPPED_AFTER").copied().unwrap_or(0);
        assert!(extra <= dropped_after * 20, "{name}: {extra} extra applies");
        if dropped_after == 0 {
            assert_eq!(extra, 0, "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn combined_faults_with_locks_finish_with_exit_3_and_only_the_locked_left() {
    let config = MockConfig {
        rate_per_sec: Some(60),
        max_concurrency: Some(2),
        fail_500_rate: 0.1,
        drop_before_rate: 0.1,
        drop_after_rate: 0.1,
        garbage_rate: 0.1,
        locked_fraction: 0.05,
        unlock_after: 0,
        latency_mean: Duration::from_millis(10),
        ..faults(21)
    };
    let server = start(config.clone()).await;
    let locked: std::collections::BTreeSet<String> = server.ledger().locked.into_iter().collect();
    drop(server);
    let (server, ws, changes, ran) = faulty_run(config, &["--max-attempts", "60"]).await;
    ran.expect_code(3);
    let ledger = server.ledger();
    let conn = ws.open_db();
    let run = last_run(&conn);
    cross_check(&conn, run, &ledger);
    for (record, outcome) in row_outcomes(&conn, run) {
        let want = if locked.contains(&record) {
            RowOutcome::Retryable
        } else {
            RowOutcome::Succeeded
        };
        assert_eq!(outcome, want, "record {record}\n{}", ran.report());
        if want == RowOutcome::Succeeded {
            assert_eq!(ledger.records[&record], changes.expected[&record]);
        }
    }
    for code in [
        "TOO_MANY_REQUESTS",
        "INTERNAL_ERROR",
        "DROPPED_BEFORE",
        "DROPPED_AFTER",
        "GARBAGE",
    ] {
        assert!(
            ledger.by_code.contains_key(code),
            "{code} injected: {:?} (max concurrency {})",
            ledger.by_code,
            ledger.max_concurrency_seen
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_attempts_leave_the_run_resumable_and_resume_finishes_it() {
    let config = MockConfig {
        fail_500_rate: 0.2,
        drop_before_rate: 0.1,
        drop_after_rate: 0.1,
        garbage_rate: 0.1,
        ..faults(31)
    };
    let (server, ws, changes, ran) = faulty_run(config, &["--max-attempts", "1"]).await;
    ran.expect_code(4).expect_stderr(&["resume"]);
    let conn = ws.open_db();
    let run = last_run(&conn);
    let checked = cross_check(&conn, run, &server.ledger());
    assert!(checked.count(ItemState::Pending) > 0);
    assert!(checked.count(ItemState::Succeeded) > 0);
    drop(conn);

    let resumed = ws
        .again("resume", &["--max-attempts", "60"], &Creds::mock_token())
        .await;
    resumed.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    assert_all_applied(&conn, run, &ledger, &changes);
    assert_eq!(calls(&conn, run), ledger.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_calls_stops_after_exactly_n_calls_and_resume_finishes() {
    let config = faults(41);
    let (server, ws, changes, ran) = faulty_run(config, &["--max-calls", "7"]).await;
    ran.expect_code(4)
        .expect_stderr(&["--max-calls reached", "resume"]);
    assert_eq!(server.ledger().requests, 7);
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_eq!(calls(&conn, run), 7);
    let checked = cross_check(&conn, run, &server.ledger());
    let done: Vec<i64> = conn
        .prepare("SELECT size FROM chunks WHERE state = 'done'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(done.len(), 7, "one chunk per call");
    assert_eq!(
        checked.count(ItemState::Succeeded),
        done.iter().sum::<i64>() as u64
    );
    drop(conn);

    // A budget on resume counts that invocation's calls.
    let resumed = ws
        .again("resume", &["--max-calls", "10"], &Creds::mock_token())
        .await;
    resumed.expect_code(4);
    assert_eq!(server.ledger().requests, 17);

    let resumed = ws.again("resume", &[], &Creds::mock_token()).await;
    resumed.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    assert_all_applied(&conn, run, &ledger, &changes);
    assert_eq!(ledger.requests, 31, "no call sent twice");
    assert_eq!(total_applied(&ledger), 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_never_exceeded() {
    let config = MockConfig {
        latency_mean: Duration::from_millis(20),
        ..faults(51)
    };
    let (server, ws, changes, ran) = faulty_run(config, &["--concurrency", "3"]).await;
    ran.expect_code(0);
    let ledger = server.ledger();
    assert!(
        ledger.max_concurrency_seen <= 3,
        "{} calls in flight at once",
        ledger.max_concurrency_seen
    );
    assert!(ledger.max_concurrency_seen >= 2, "workers ran side by side");
    let conn = ws.open_db();
    assert_all_applied(&conn, last_run(&conn), &ledger, &changes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_spaces_calls() {
    let config = faults(61);
    let started = Instant::now();
    // 31 calls at 40/s: the first is free, the other 30 take at least 0.75 s.
    let (server, ws, changes, ran) = faulty_run(config, &["--rate", "40/s"]).await;
    let elapsed = started.elapsed();
    ran.expect_code(0);
    assert!(
        elapsed >= Duration::from_millis(600),
        "31 calls at 40/s took only {elapsed:?}"
    );
    let ledger = server.ledger();
    let conn = ws.open_db();
    assert_all_applied(&conn, last_run(&conn), &ledger, &changes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_calls_with_a_rate_limit_still_makes_exactly_n_calls() {
    let config = faults(42);
    let (server, ws, _changes, ran) = faulty_run(
        config,
        &["--max-calls", "7", "--rate", "20/s", "--concurrency", "4"],
    )
    .await;
    ran.expect_code(4).expect_stderr(&["--max-calls reached"]);
    assert_eq!(server.ledger().requests, 7, "{}", ran.report());
    let conn = ws.open_db();
    assert_eq!(calls(&conn, last_run(&conn)), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_time_out_are_sent_again_and_counted_once_applied() {
    // Half the calls take longer than --timeout; the mock may apply them after massup gave
    // up, so a record can be applied twice, but never recorded without its values.
    let config = MockConfig {
        latency_mean: Duration::from_millis(300),
        latency_spread: Duration::from_millis(250),
        ..faults(81)
    };
    let (server, ws, changes, ran) = faulty_run(
        config,
        &[
            "--timeout",
            "0.3",
            "--max-attempts",
            "40",
            "--concurrency",
            "8",
        ],
    )
    .await;
    ran.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_all_applied(&conn, run, &ledger, &changes);
    let timed_out: u64 = conn
        .query_row(
            "SELECT COUNT(*) FROM calls WHERE run_id = ?1 AND http_status IS NULL",
            [run],
            |r| r.get(0),
        )
        .unwrap();
    assert!(timed_out > 0, "some calls timed out");
    assert_eq!(calls(&conn, run), ledger.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_fail_for_good_and_retry_by_code_sends_them_again() {
    let config = MockConfig {
        records: 100,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let mut changes = changes(&config, 100, false);
    // Ten ids the mock does not hold, in the same groups as the others.
    for i in 0..10u64 {
        changes.text.push_str(&format!(
            "{},Contacted,Berlin\n",
            999_000_000_000_000_000 + i
        ));
    }
    let csv = ws.write("changes.csv", &changes.text);
    let ran = ws.run(&csv, &[], &Creds::mock_token()).await;
    ran.expect_code(3);
    let ledger = server.ledger();
    let conn = ws.open_db();
    let run = last_run(&conn);
    let checked = cross_check(&conn, run, &ledger);
    assert_eq!(checked.count(ItemState::Failed), 20);
    for (record, outcome) in row_outcomes(&conn, run) {
        let unknown = record.starts_with("999");
        let want = if unknown {
            RowOutcome::Failed
        } else {
            RowOutcome::Succeeded
        };
        assert_eq!(outcome, want, "record {record}");
    }
    let calls_before = calls(&conn, run);
    drop(conn);

    // Plain retry leaves failed records alone: nothing to send.
    let retried = ws.again("retry", &[], &Creds::mock_token()).await;
    retried.expect_code(3);
    assert_eq!(server.ledger().requests, ledger.requests);
    // By code, they go out again, two calls (one per field), and fail again.
    let retried = ws
        .again("retry", &["--codes", "INVALID_DATA"], &Creds::mock_token())
        .await;
    retried.expect_code(3);
    let ledger = server.ledger();
    let conn = ws.open_db();
    assert_eq!(calls(&conn, run), calls_before + 2);
    let checked = cross_check(&conn, run, &ledger);
    assert_eq!(checked.count(ItemState::Failed), 20);
    assert_eq!(checked.count(ItemState::Succeeded), 200);
}
