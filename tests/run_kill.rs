//! SIGKILL at several moments of a run, `resume` after each: in the end every item has
//! exactly one final outcome, the ledger agrees with every recorded success, and only
//! records whose chunks were in flight at a kill were sent more than once.

mod support;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use massup::mock::MockConfig;
use support::*;

const CONCURRENCY: u64 = 4;
const CHUNK: u64 = 25;

/// Starts `args` and SIGKILLs it once the mock has received `more` further requests.
async fn kill_after(ws: &Workspace, server: &massup::mock::MockServer, args: &[&str], more: u64) {
    let start = server.ledger().requests;
    let what = format!("{more} requests");
    kill_when(ws, server, args, &what, Duration::from_secs(20), |l, _| {
        l.requests >= start + more
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_any_moment_then_resume_loses_nothing_and_resends_little() {
    let config = MockConfig {
        records: 3000,
        latency_mean: Duration::from_millis(20),
        latency_spread: Duration::from_millis(5),
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = scene(&config, 3000, false).await;
    let run_args = ws.run_args(
        &csv,
        &["--chunk-size", "25", "--concurrency", "4", "--quiet"],
    );
    let run_args: Vec<&str> = run_args.iter().map(String::as_str).collect();
    let resume_args = ["--quiet", "resume", "--backoff-ms", "5"];

    // record id -> chunks holding it that were in flight (on disk) at a kill.
    let mut in_flight_at_kills: HashMap<String, u64> = HashMap::new();
    let mut kills = 0u64;
    for (i, more) in [1u64, 50, 50].into_iter().enumerate() {
        let args: &[&str] = if i == 0 { &run_args } else { &resume_args };
        kill_after(&ws, &server, args, more).await;
        kills += 1;
        let conn = ws.open_db();
        let run = last_run(&conn);
        // What the killed process committed agrees with the ledger already.
        let checked = cross_check(&conn, run, &server.ledger());
        let state: String = conn
            .query_row("SELECT state FROM runs WHERE id = ?1", [run], |r| r.get(0))
            .unwrap();
        assert_eq!(state, "running", "a killed run cannot mark itself");
        // But status can tell: its lease is free and its process is gone.
        let shown = ws.massup(&["status", "--json"], &Creds::None).await;
        let json: serde_json::Value = serde_json::from_slice(&shown.output.stdout).unwrap();
        assert_eq!(json["run"]["sender_gone"], true, "{json}");
        assert!(
            json["next"][0].as_str().unwrap().contains("resume"),
            "{json}"
        );
        ws.massup(&["status"], &Creds::None)
            .await
            .expect_in(Stream::Out, &["(stopped: was killed; resume continues it)"]);
        ws.massup(&["status", "--all"], &Creds::None)
            .await
            .expect_in(Stream::Out, &["stopped (was killed)"]);
        let mut chunks = std::collections::HashSet::new();
        for item in &checked.final_items {
            if item.chunk_state == "in_flight" {
                chunks.insert(item.chunk_id);
                *in_flight_at_kills
                    .entry(item.record_id.clone())
                    .or_default() += 1;
            }
        }
        assert!(
            chunks.len() as u64 <= 2 * CONCURRENCY,
            "{} chunks in flight at kill {kills}",
            chunks.len()
        );
    }

    assert!(
        !in_flight_at_kills.is_empty(),
        "the kills caught calls in flight"
    );
    let ran = ws.massup(&resume_args, &Creds::mock_token()).await;
    ran.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    let run = last_run(&conn);
    assert_all_applied(&conn, run, &ledger, &changes);
    // Two items per record (one per field); anything more is a resend of an in-flight chunk.
    for (id, applied) in &ledger.applied {
        let extra = applied.saturating_sub(2);
        let allowed = in_flight_at_kills.get(id).copied().unwrap_or(0);
        assert!(
            extra <= allowed,
            "record {id} applied {applied} times, but in flight at only {allowed} kill(s)"
        );
    }
    let items = 3000 * 2;
    assert!(total_applied(&ledger) <= items + kills * 2 * CONCURRENCY * CHUNK);
    // Calls logged in the database never exceed what the mock received (a killed process
    // loses the log of calls in flight, never invents one).
    assert!(calls(&conn, run) <= ledger.requests);
    // Regression: `status` counted only logged calls, so the credits spent by chunks
    // re-sent after the kills were invisible. It now adds, as an upper bound, one call per
    // chunk a killed process left in flight.
    let status = ws.massup(&["status", "--json"], &Creds::mock_token()).await;
    let json: serde_json::Value = serde_json::from_slice(&status.output.stdout).unwrap();
    let logged = json["counts"]["calls"].as_u64().unwrap();
    let unlogged = json["counts"]["calls_unlogged_at_most"].as_u64().unwrap();
    assert!(unlogged > 0, "the kills left chunks in flight");
    assert!(
        logged + unlogged >= ledger.requests,
        "status shows {logged} + up to {unlogged} calls; the mock saw {}",
        ledger.requests
    );
    let text = ws.massup(&["status"], &Creds::mock_token()).await;
    text.expect_in(Stream::Out, &["sent by interrupted processes, not logged"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_lets_calls_in_flight_finish_so_resume_resends_nothing() {
    let config = MockConfig {
        records: 1000,
        latency_mean: Duration::from_millis(20),
        ..MockConfig::default()
    };
    let (server, ws, changes, csv) = scene(&config, 1000, false).await;
    let args = ws.run_args(&csv, &["--chunk-size", "25", "--concurrency", "4"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = ws
        .command(&args, &Creds::mock_token())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start massup");
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.ledger().requests < 20 {
        assert!(Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let pid = child.id().expect("running") as i32;
    // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let output = child.wait_with_output().await.unwrap();
    let ran = Ran {
        command: "massup run (SIGINT)".into(),
        output,
    };
    ran.expect_code(4).expect_stderr(&["resume"]);
    let conn = ws.open_db();
    let run = last_run(&conn);
    let state: String = conn
        .query_row("SELECT state FROM runs WHERE id = ?1", [run], |r| r.get(0))
        .unwrap();
    assert_eq!(state, "interrupted");
    let checked = cross_check(&conn, run, &server.ledger());
    assert!(
        checked
            .final_items
            .iter()
            .all(|i| i.chunk_state != "in_flight"),
        "a clean stop leaves nothing in flight"
    );
    assert!(checked.count(massup::outcome::ItemState::Pending) > 0);
    // Every call that went out has its answer recorded.
    assert_eq!(calls(&conn, run), server.ledger().requests);
    drop(conn);

    let ran = ws.again("resume", &["--quiet"], &Creds::mock_token()).await;
    ran.expect_code(0);
    let ledger = server.ledger();
    let conn = ws.open_db();
    assert_all_applied(&conn, run, &ledger, &changes);
    for (id, applied) in &ledger.applied {
        assert_eq!(*applied, 2, "record {id} sent once per field");
    }
    assert_eq!(
        ledger.requests,
        min_calls(&conn, run).max(calls(&conn, run))
    );
}
