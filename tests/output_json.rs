//! `--json` on every command and `--log-format json`, over real HTTP against the embedded
//! mock: exactly one JSON object on stdout, in the schema docs/JSON.md documents, on
//! success, partial failure (exit 3), a stop (exit 4) and fatal errors (exit 1 and 2); with
//! `--log-format json -v` every stderr line is a JSON object and there is one call event
//! per call the mock received.

mod support;

use massup::mock::MockConfig;
use serde_json::Value;
use support::*;

/// The envelope every `--json` object has (docs/JSON.md, "Envelope").
#[track_caller]
fn check_envelope(ran: &Ran, command: &str) -> Value {
    let stdout = ran.stdout();
    let value: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON object: {e}\n{}", ran.report()));
    let object = value.as_object().expect("an object");
    let keys: Vec<&str> = object.keys().map(String::as_str).take(4).collect();
    assert_eq!(
        keys,
        ["schema", "command", "exit_code", "error"],
        "{}",
        ran.report()
    );
    assert_eq!(value["schema"], "massup/1");
    assert_eq!(value["command"], command);
    assert_eq!(value["exit_code"], ran.code(), "{}", ran.report());
    match &value["error"] {
        Value::Null => assert!(
            matches!(ran.code(), 0 | 3),
            "no error object for exit {}\n{}",
            ran.code(),
            ran.report()
        ),
        Value::Object(error) => {
            let kind = error["kind"].as_str().expect("error.kind is a string");
            let want = match ran.code() {
                2 => "usage",
                4 => "resumable",
                _ => "fatal",
            };
            assert_eq!(kind, want, "{}", ran.report());
            assert!(error["message"].is_string(), "{}", ran.report());
            assert!(matches!(ran.code(), 1 | 2 | 4), "{}", ran.report());
        }
        other => panic!("error is {other}\n{}", ran.report()),
    }
    value
}

/// A sending command's body (docs/JSON.md, "run, resume, retry").
#[track_caller]
fn check_send(value: &Value) {
    for key in ["id", "module", "state", "input_rows", "min_calls"] {
        assert!(!value["run"][key].is_null(), "run.{key} in {value:#}");
    }
    for outcome in ["succeeded", "retryable", "pending", "failed", "invalid"] {
        assert!(
            value["counts"]["rows"][outcome].is_u64(),
            "counts.rows.{outcome}"
        );
    }
    for key in ["calls", "min_calls", "retries", "calls_unlogged_at_most"] {
        assert!(value["counts"][key].is_u64(), "counts.{key} in {value:#}");
    }
    let state = value["end"]["state"].as_str().expect("end.state");
    assert!(
        ["finished", "fatal", "stopped", "calls_kept_failing"].contains(&state),
        "{state}"
    );
    assert!(value["next"].is_array());
    assert!(value.get("duration_secs").is_some() && value.get("records_per_sec").is_some());
}

fn rows(value: &Value, outcome: &str) -> u64 {
    value["counts"]["rows"][outcome].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_status_report_and_plan_print_one_object_on_success() {
    let config = MockConfig {
        records: 60,
        ..MockConfig::default()
    };
    let (server, ws, _, csv) = scene(&config, 60, false).await;
    let creds = Creds::mock_token();

    let ran = ws.run(&csv, &["--json"], &creds).await;
    ran.expect_code(0);
    let value = check_envelope(&ran, "run");
    check_send(&value);
    assert_eq!(value["end"]["state"], "finished");
    assert_eq!(rows(&value, "succeeded"), 60);
    assert_eq!(value["counts"]["calls"], server.ledger().requests);
    assert!(value["plan"]["run_id"].is_i64(), "the plan made now");

    let status = ws.massup(&["status", "--json"], &creds).await;
    status.expect_code(0);
    let status = check_envelope(&status, "status");
    assert_eq!(status["run"], value["run"]);
    assert_eq!(status["counts"], value["counts"]);

    let all = ws.massup(&["status", "--all", "--json"], &creds).await;
    all.expect_code(0);
    let all = check_envelope(&all, "status");
    assert_eq!(all["runs"][0]["rows"]["succeeded"], 60);
    assert_eq!(all["runs"][0]["state"], "finished");

    let out = ws.path().join("r.csv").display().to_string();
    let report = ws
        .massup(&["report", "--out", &out, "--json"], &creds)
        .await;
    report.expect_code(0);
    let report = check_envelope(&report, "report");
    assert_eq!(report["rows_written"], 60);
    assert_eq!(report["format"], "csv");

    // The same file again: plan says it is planned already.
    let csv_arg = csv.display().to_string();
    let plan = ws
        .massup(
            &["plan", "--csv", &csv_arg, "--module", "Leads", "--json"],
            &creds,
        )
        .await;
    plan.expect_code(0);
    let plan = check_envelope(&plan, "plan");
    assert_eq!(plan["existing_run"], value["run"]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_failure_exits_3_with_a_null_error_and_retry_finishes_it() {
    let config = MockConfig {
        records: 200,
        locked_fraction: 0.2,
        unlock_after: 2,
        ..MockConfig::default()
    };
    let (_server, ws, _, csv) = scene(&config, 200, false).await;
    let creds = Creds::mock_token();
    let ran = ws
        .run(&csv, &["--json", "--chunk-size", "50"], &creds)
        .await;
    ran.expect_code(3);
    let value = check_envelope(&ran, "run");
    check_send(&value);
    assert!(rows(&value, "retryable") > 0);
    assert!(value["next"][0].as_str().unwrap().contains("retry"));

    let retried = ws.again("retry", &["--json"], &creds).await;
    retried.expect_code(0);
    let value = check_envelope(&retried, "retry");
    check_send(&value);
    assert!(value["requeued"]["updates"].as_u64().unwrap() > 0);
    assert_eq!(rows(&value, "succeeded"), 200);

    // Invalid rows make `plan` exit 3 too.
    let bad = ws.write("bad.csv", "id,Lead_Status\n12x,Contacted\n");
    let bad = bad.display().to_string();
    let plan = ws
        .massup(
            &[
                "plan",
                "--csv",
                &bad,
                "--module",
                "Leads",
                "--fields",
                fields_file().to_str().unwrap(),
                "--json",
            ],
            &creds,
        )
        .await;
    plan.expect_code(3);
    let plan = check_envelope(&plan, "plan");
    assert_eq!(plan["invalid_rows"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_exits_4_with_a_resumable_error_and_resume_finishes() {
    let config = MockConfig {
        records: 100,
        ..MockConfig::default()
    };
    let (_server, ws, _, csv) = scene(&config, 100, false).await;
    let creds = Creds::mock_token();
    let ran = ws
        .run(
            &csv,
            &["--json", "--chunk-size", "20", "--max-calls", "2"],
            &creds,
        )
        .await;
    ran.expect_code(4);
    let value = check_envelope(&ran, "run");
    check_send(&value);
    assert_eq!(value["end"]["state"], "stopped");
    assert_eq!(value["end"]["stop"]["reason"], "max_calls");
    assert!(value["error"]["hint"].as_str().unwrap().contains("resume"));

    let resumed = ws.again("resume", &["--json"], &creds).await;
    resumed.expect_code(0);
    let value = check_envelope(&resumed, "resume");
    check_send(&value);
    assert_eq!(rows(&value, "succeeded"), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_and_usage_errors_are_one_object_too() {
    let config = MockConfig {
        records: 20,
        ..MockConfig::default()
    };
    let (_server, ws, _, csv) = scene(&config, 20, false).await;
    // No database yet: status is a usage error.
    for args in [
        &["status", "--json"][..],
        &["status", "--all", "--json"],
        &["resume", "--json"],
        &["retry", "--json"],
        &["report", "--out", "x.csv", "--json"],
    ] {
        let ran = ws.massup(args, &Creds::mock_token()).await;
        ran.expect_code(2);
        let value = check_envelope(&ran, args[0]);
        assert!(
            value["error"]["message"]
                .as_str()
                .unwrap()
                .contains("database")
                || value["error"]["message"].as_str().unwrap().contains("run"),
            "{}",
            ran.report()
        );
    }
    // A refused access token: the run stops on it (exit 1).
    let ran = ws
        .run(&csv, &["--json"], &Creds::Token("tok-WR0NG-42ff01".into()))
        .await;
    ran.expect_code(1);
    let value = check_envelope(&ran, "run");
    check_send(&value);
    assert_eq!(value["end"]["state"], "fatal");
    assert_eq!(value["error"]["kind"], "fatal");
    assert!(value["error"]["code"].is_string());
    assert!(
        !ran.stdout().contains("tok-WR0NG-42ff01"),
        "{}",
        ran.report()
    );
    // resume with the same refused token: exit 1, one object.
    let ran = ws
        .again(
            "resume",
            &["--json"],
            &Creds::Token("tok-WR0NG-42ff01".into()),
        )
        .await;
    ran.expect_code(1);
    let value = check_envelope(&ran, "resume");
    check_send(&value);
    assert_eq!(value["end"]["state"], "fatal");
    // plan and demo refuse what they cannot do with one object too (exit 2).
    let ran = ws
        .massup(
            &[
                "plan",
                "--csv",
                "missing.csv",
                "--module",
                "Leads",
                "--json",
            ],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(2);
    check_envelope(&ran, "plan");
    ws.write("not-a-folder", "x");
    let ran = ws
        .massup(
            &["demo", "--dir", "not-a-folder/d", "--json"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(2);
    check_envelope(&ran, "demo");
    // A file that does not exist (exit 2), and a flag clap refuses (exit 2).
    let ran = ws
        .run(Path::new("missing.csv"), &["--json"], &Creds::mock_token())
        .await;
    ran.expect_code(2);
    check_envelope(&ran, "run");
    let ran = ws
        .massup(
            &["status", "--json", "--no-such-flag"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(2);
    let value = check_envelope(&ran, "status");
    assert_eq!(value["error"]["kind"], "usage");
    // `report --out -` with `--json` would put two things on stdout.
    let ran = ws
        .massup(&["report", "--out", "-", "--json"], &Creds::mock_token())
        .await;
    ran.expect_code(2);
    check_envelope(&ran, "report");
}

use std::path::Path;

/// Every stderr line parsed as a JSON object.
#[track_caller]
fn json_lines(ran: &Ran) -> Vec<Value> {
    ran.stderr()
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("stderr line is not JSON ({e}): {line:?}\n{}", ran.report())
            });
            assert!(value.is_object(), "{line}");
            value
        })
        .collect()
}

fn events<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["fields"]["message"] == message)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_call_event_per_call_and_lifecycle_events() {
    let config = MockConfig {
        records: 300,
        fail_500_rate: 0.2,
        locked_fraction: 0.05,
        unlock_after: 1,
        seed: 7,
        ..MockConfig::default()
    };
    let (server, ws, _, csv) = scene(&config, 300, false).await;
    let ran = ws
        .run(
            &csv,
            &[
                "-v",
                "--log-format",
                "json",
                "--chunk-size",
                "20",
                "--max-attempts",
                "10",
            ],
            &Creds::mock_refresh(),
        )
        .await;
    assert!(matches!(ran.code(), 0 | 3), "{}", ran.report());
    let lines = json_lines(&ran);
    let ledger = server.ledger();
    let calls = events(&lines, "call");
    assert_eq!(
        calls.len() as u64,
        ledger.requests + ledger.update_requests,
        "{}",
        ran.report()
    );
    assert!(
        ledger.by_code.contains_key("INTERNAL_ERROR")
            || calls.iter().any(|c| c["fields"]["http_status"] == 500),
        "the mock failed some calls"
    );
    for call in &calls {
        let f = &call["fields"];
        assert_eq!(f["kind"], "mass_update");
        for key in ["chunk", "ids", "attempt", "http_status", "latency_ms"] {
            assert!(f[key].is_i64() || f[key].is_u64(), "{key} in {call}");
        }
        assert!(f["codes"].as_str().unwrap().contains('='), "{call}");
    }
    // Lifecycle events at the default level and the closing summary.
    for event in [
        "plan done",
        "dispatch started",
        "dispatch ended",
        "access token refreshed",
    ] {
        assert!(
            !events(&lines, event).is_empty(),
            "no {event:?} event\n{}",
            ran.report()
        );
    }
    let summary: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["event"] == "run_summary")
        .collect();
    assert_eq!(summary.len(), 1, "{}", ran.report());
    assert_eq!(summary[0]["fields"]["exit_code"], ran.code());

    // A fatal error is a JSON line too, with -q.
    let ran = ws
        .massup(
            &["-q", "--log-format", "json", "status", "--run", "99"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(2);
    let lines = json_lines(&ran);
    assert_eq!(lines.len(), 1, "{}", ran.report());
    assert_eq!(lines[0]["level"], "ERROR");
    assert_eq!(lines[0]["fields"]["event"], "error");
    assert_eq!(lines[0]["fields"]["exit_code"], 2);
    // And a flag clap refuses.
    let ran = ws
        .massup(
            &["--log-format", "json", "status", "--bogus"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(2);
    assert_eq!(json_lines(&ran).len(), 1, "{}", ran.report());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_out_dash_writes_the_report_on_stdout() {
    let config = MockConfig {
        records: 30,
        ..MockConfig::default()
    };
    let (_server, ws, _, csv) = scene(&config, 30, false).await;
    ws.run(&csv, &[], &Creds::mock_token()).await.expect_code(0);
    let ran = ws
        .massup(&["report", "--out", "-"], &Creds::mock_token())
        .await;
    ran.expect_code(0);
    let text = ran.stdout();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("line,id,Lead_Status,City,outcome"),
        "{}",
        ran.report()
    );
    assert_eq!(lines.count(), 30);
    assert!(!ws.path().join("-").exists(), "no file named -");
    let ran = ws
        .massup(
            &["report", "--out", "-", "--format", "json"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(0);
    assert_eq!(ran.json().as_array().unwrap().len(), 30);
}

#[test]
fn demo_json_collects_each_steps_own_object() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_massup"))
        .current_dir(dir.path())
        .env_remove("MASSUP_DB")
        .env("HOME", dir.path())
        .args(["demo", "--dir", "d", "--fast", "--rows", "300", "--json"])
        .output()
        .unwrap();
    let ran = Ran {
        command: "massup demo --json".into(),
        output,
    };
    ran.expect_code(0);
    let value = check_envelope(&ran, "demo");
    let steps = value["steps"].as_array().unwrap();
    let commands: Vec<&str> = steps
        .iter()
        .map(|s| s["args"][0].as_str().unwrap())
        .collect();
    assert_eq!(
        commands,
        // Then the spreadsheet migration, the sheet keyed by Email, and the Bulk Write
        // migration with its retry.
        ["run", "retry", "status", "report", "report", "report", "run", "run", "run", "retry"],
        "{value:#}"
    );
    for step in steps {
        assert_eq!(step["result"]["schema"], "massup/1", "{step:#}");
        assert_eq!(step["result"]["exit_code"], step["exit_code"]);
    }
    let mock = &value["mock"];
    let calls = mock["mass_update_calls"].as_u64().unwrap()
        + mock["update_records_calls"].as_u64().unwrap();
    assert!(calls > 0, "{value:#}");
    assert_eq!(mock["bulk_write_jobs"], 1, "{value:#}");
}
