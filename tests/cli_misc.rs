//! The command line as a user meets it: the demo end to end, status JSON, configuration
//! precedence, secrets-file permissions, help and completions.
use std::path::Path;
use std::process::{Command, Output};

fn massup(dir: &Path, args: &[&str]) -> Output {
    massup_with_env(dir, args, &[])
}

/// Runs massup in `dir` with no credentials but those in `env`.
fn massup_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_massup"))
        .current_dir(dir)
        .args(args)
        .env_remove("MASSUP_DB")
        .env_remove("ZOHO_ACCESS_TOKEN")
        .env_remove("ZOHO_CLIENT_ID")
        .env_remove("ZOHO_CLIENT_SECRET")
        .env_remove("ZOHO_REFRESH_TOKEN")
        .env("HOME", dir) // keep the user's config folder out
        .env("XDG_CONFIG_HOME", dir.join("xdg"))
        .envs(env.iter().copied())
        .output()
        .expect("run massup");
    if std::env::var_os("MASSUP_TEST_VERBOSE").is_some() {
        eprintln!(
            "$ massup {}\n{}\n{}",
            args.join(" "),
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn explain(args: &[&str], out: &Output) -> String {
    format!(
        "massup {}\nexit: {:?}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

#[test]
fn demo_runs_end_to_end_and_leaves_a_finished_run() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["demo", "--dir", "d", "--fast", "--rows", "1500"];
    let out = massup(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&args, &out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("re-queued"), "{}", explain(&args, &out));
    // Run 2 is the demo's spreadsheet migration: 500 records, each its own values, in
    // Update Records batches of 100.
    let args = ["--db", "d/massup.db", "status", "--run", "2", "--json"];
    let out = massup(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&args, &out));
    let migration: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(migration["counts"]["rows"]["succeeded"], 500, "{migration}");
    // Five calls planned and sent; a call refused because the demo's short-lived token
    // expired in flight is sent again (a retry), so only the calls beyond them may vary.
    let counts = &migration["counts"];
    assert_eq!(counts["min_calls"], 5, "{migration}");
    assert_eq!(
        counts["calls"].as_u64().unwrap() - counts["retries"].as_u64().unwrap(),
        5,
        "{migration}"
    );
    // Run 3 is keyed by Email: the 100 leads the other runs left alone, and one address no
    // lead has.
    let args = ["--db", "d/massup.db", "status", "--run", "3", "--json"];
    let out = massup(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&args, &out));
    let keyed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = &keyed["counts"]["rows"];
    assert_eq!(rows["invalid"], 1, "{keyed}");
    assert_eq!(
        rows["succeeded"].as_u64().unwrap() + rows["retryable"].as_u64().unwrap(),
        100,
        "{keyed}"
    );
    // Run 4 is the large migration: 6,000 records, each its own values, in one Bulk Write
    // job (500 credits where Update Records would take 600); its locked and not-approved
    // rows went again by Update Records in the retry.
    let args = ["--db", "d/massup.db", "status", "--run", "4", "--json"];
    let out = massup(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&args, &out));
    let bulk: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bulk["counts"]["rows"]["succeeded"], 6_000, "{bulk}");
    let spend = &bulk["counts"]["spend"];
    assert_eq!(spend["bulk_write"]["calls"], 1, "{bulk}");
    assert_eq!(spend["bulk_write"]["credits"], 500, "{bulk}");
    assert!(
        spend["update_records"]["calls"].as_u64().unwrap() >= 1,
        "{bulk}"
    );
    let args = ["--db", "d/massup.db", "status", "--run", "1", "--json"];
    let out = massup(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&args, &out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["run"]["state"], "finished");
    let rows = &status["counts"]["rows"];
    // The demo's deliberate problems: two invalid values, two unknown ids; everything
    // else (locked and not approved records included, after the retry) succeeded.
    assert_eq!(rows["invalid"], 2, "{status}");
    assert_eq!(rows["failed"], 2, "{status}");
    assert_eq!(rows["pending"], 0, "{status}");
    assert_eq!(rows["retryable"], 0, "{status}");
    assert_eq!(rows["succeeded"], 1496, "{status}");
    assert_eq!(status["run"]["input_rows"], 1500);
    assert!(
        status["counts"]["calls"].as_u64().unwrap()
            >= status["counts"]["min_calls"].as_u64().unwrap()
    );
    assert!(
        status["next"][0].as_str().unwrap().contains("report"),
        "{status}"
    );
}

#[test]
fn config_file_sets_defaults_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "id,Lead_Status\n1,Contacted\n").unwrap();
    std::fs::write(
        dir.path().join("massup.toml"),
        "module = \"Leads\"\ndb = \"from-config.db\"\nchunk_size = 100\n",
    )
    .unwrap();
    let args = ["plan", "--csv", "a.csv"];
    let out = massup(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&args, &out));
    assert!(dir.path().join("from-config.db").exists());
    let args = [
        "--db", "flag.db", "plan", "--csv", "a.csv", "--module", "Contacts", "--json",
    ];
    let out = massup(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&args, &out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["module"], "Contacts");
    assert!(dir.path().join("flag.db").exists());
    let conn = rusqlite::Connection::open(dir.path().join("flag.db")).unwrap();
    let settings: String = conn
        .query_row("SELECT settings_json FROM runs", [], |r| r.get(0))
        .unwrap();
    assert!(settings.contains("\"chunk_size\":100"), "{settings}");
    // An unknown key is an error naming the file.
    std::fs::write(dir.path().join("massup.toml"), "modul = \"Leads\"\n").unwrap();
    let args = ["plan", "--csv", "a.csv", "--module", "Leads"];
    let out = massup(dir.path(), &args);
    assert_eq!(out.status.code(), Some(2), "{}", explain(&args, &out));
    assert!(
        text(&out.stderr).contains("massup.toml"),
        "{}",
        explain(&args, &out)
    );
}

#[cfg(unix)]
#[test]
fn a_secrets_file_others_can_read_is_refused_without_showing_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "id,Lead_Status\n1,Contacted\n").unwrap();
    let secrets = dir.path().join("secrets.toml");
    std::fs::write(
        &secrets,
        "client_id = \"1000.CLIENTID\"\nclient_secret = \"SUPER-SECRET-VALUE\"\nrefresh_token = \"1000.REFRESH-SECRET\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(
        dir.path().join("massup.toml"),
        "secrets_file = \"secrets.toml\"\n",
    )
    .unwrap();
    let args = [
        "run",
        "--csv",
        "a.csv",
        "--module",
        "Leads",
        "--api-domain",
        "http://127.0.0.1:9",
    ];
    let out = massup(dir.path(), &args);
    assert_eq!(out.status.code(), Some(2), "{}", explain(&args, &out));
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains("chmod 600"), "{}", explain(&args, &out));
    assert!(!all.contains("SUPER-SECRET-VALUE") && !all.contains("REFRESH-SECRET"));
}

#[test]
fn run_without_credentials_says_how_to_give_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "id,Lead_Status\n1,Contacted\n").unwrap();
    let args = ["run", "--csv", "a.csv", "--module", "Leads"];
    let out = massup(dir.path(), &args);
    assert_eq!(out.status.code(), Some(2), "{}", explain(&args, &out));
    assert!(
        text(&out.stderr).contains("ZOHO_REFRESH_TOKEN"),
        "{}",
        explain(&args, &out)
    );
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "id,Lead_Status\n1,Contacted\n").unwrap();
    let args = [
        "run",
        "--csv",
        "a.csv",
        "--module",
        "Leads",
        "--api-domain",
        "http://zohoapis.example",
    ];
    let out = massup_with_env(dir.path(), &args, &[("ZOHO_ACCESS_TOKEN", "x")]);
    assert_eq!(out.status.code(), Some(2), "{}", explain(&args, &out));
    assert!(
        text(&out.stderr).contains("in clear"),
        "{}",
        explain(&args, &out)
    );
}

#[test]
fn help_version_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["--version"],
        &["run", "--help"],
        &["completions", "bash"],
    ] {
        let out = massup(dir.path(), args);
        assert_eq!(out.status.code(), Some(0), "{}", explain(args, &out));
        assert!(!out.stdout.is_empty());
    }
    let out = massup(dir.path(), &["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn status_without_a_database_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = massup(dir.path(), &["--db", "none.db", "status"]);
    assert_eq!(out.status.code(), Some(2), "{}", explain(&["status"], &out));
    assert!(text(&out.stderr).contains("no database"));
    assert!(
        !dir.path().join("none.db").exists(),
        "status must not create a database"
    );
}

#[test]
fn mock_server_prints_its_address_first_and_serves_the_ledger() {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_massup"))
        .args(["mock-server", "--port", "0", "--records", "10"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("first line was {first:?}"))
        .to_string();
    assert!(url.starts_with("127.0.0.1:"), "{url}");
    let mut stream = std::net::TcpStream::connect(&url).unwrap();
    write!(
        stream,
        "GET /__mock/ledger HTTP/1.1\r\nHost: {url}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let ledger: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(ledger["records"].as_object().unwrap().len(), 10);
    assert!(ledger["records"].get("738964000002131001").is_some());
}

#[test]
fn a_csv_can_come_through_a_pipe() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let plan_from_stdin = |csv_arg: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_massup"))
            .current_dir(dir.path())
            .args([
                "--db", "p.db", "plan", "--csv", csv_arg, "--module", "Leads", "--json",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"id,Lead_Status\n1,Contacted\n2,Contacted\n3,x\n")
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = plan_from_stdin("-");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        explain(&["plan", "--csv", "-"], &out)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["valid_rows"], 3);
    assert_eq!(summary["csv_path"], "-");
    // The same content through /dev/stdin is recognised as planned already.
    let out = plan_from_stdin("/dev/stdin");
    assert_eq!(out.status.code(), Some(0), "{}", explain(&["plan"], &out));
    assert!(
        text(&out.stdout).contains("existing_run"),
        "{}",
        explain(&["plan"], &out)
    );
}

/// A file that is not there (or a folder) gets one clean line naming it, with no
/// "(os error 2)" said twice, and no call or credential asked for first.
#[test]
fn a_missing_csv_is_one_clean_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("folder")).unwrap();
    for command in ["plan", "run"] {
        for (csv, reason) in [
            ("nope.csv", "nope.csv: cannot read it: no such file"),
            (
                "folder",
                "folder: cannot read it: it is a folder, not a file",
            ),
        ] {
            let args = [
                command,
                "--csv",
                csv,
                "--module",
                "Leads",
                "--api-domain",
                "http://127.0.0.1:9",
            ];
            let out = massup_with_env(dir.path(), &args, &[("ZOHO_ACCESS_TOKEN", "tok")]);
            assert_eq!(out.status.code(), Some(2), "{}", explain(&args, &out));
            let stderr = text(&out.stderr);
            assert_eq!(
                stderr.trim(),
                format!("error: {reason}"),
                "{}",
                explain(&args, &out)
            );
        }
    }
}

/// The plan is short by default: the first call's request (some 40 lines) only with
/// `--show-request`, and always in `--json`.
#[test]
fn the_example_request_is_shown_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.csv"),
        "id,Lead_Status\n4150868000000224005,Contacted\n4150868000000224006,Contacted\n",
    )
    .unwrap();
    let fields = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/Leads.json");
    let base = [
        "plan", "--csv", "s.csv", "--module", "Leads", "--fields", fields,
    ];
    let out = massup(dir.path(), &base);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&base, &out));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("Example request"), "{stdout}");
    assert!(stdout.contains("--show-request"), "{stdout}");

    let mut shown = base.to_vec();
    shown.extend(["--show-request", "--new-run"]);
    let out = massup(dir.path(), &shown);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&shown, &out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Example request (first call):"), "{stdout}");
    assert!(stdout.contains("Contacted"), "{stdout}");

    let mut json = base.to_vec();
    json.extend(["--json", "--new-run"]);
    let out = massup(dir.path(), &json);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["example_request"].is_object(), "{doc}");
}
