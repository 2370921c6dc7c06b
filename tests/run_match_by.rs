//! `--match-by`: sheets keyed by Email instead of record ids, end to end with the real binary
//! against the mock, which holds an email on every record (some in another case, some shared
//! by two records) and answers COQL. Every test checks the mock's ledger: which records
//! hold what, how many lookup queries were spent, and that ambiguous keys touched nothing.

mod support;

use std::collections::BTreeSet;

use massup::mock::MockConfig;
use support::*;

/// A sheet `Email,Lead_Status,City` over the first `n` records, each key written in another
/// case on every third row, then `unknown` addresses no record holds.
fn email_sheet(emails: &[String], n: usize, unknown: usize) -> (String, Vec<(String, String)>) {
    let mut csv = String::from("Email,Lead_Status,City\n");
    let mut values = Vec::new();
    for (i, email) in emails.iter().take(n).enumerate() {
        let key = match i % 3 {
            0 => email.to_uppercase(),
            1 => email.to_lowercase(),
            _ => email.clone(),
        };
        let status = ["Contacted", "Junk Lead", "Pre-Qualified"][i % 3];
        let city = format!("City {}", i % 7);
        csv.push_str(&format!("{key},{status},{city}\n"));
        values.push((status.to_string(), city));
    }
    for k in 0..unknown {
        csv.push_str(&format!("nobody{k}@example.com,Contacted,Nowhere\n"));
    }
    (csv, values)
}

fn config() -> MockConfig {
    MockConfig {
        records: 700,
        duplicate_emails: 4,
        mixed_case_emails: 0.4,
        ..MockConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sheet_keyed_by_mixed_case_emails_updates_exactly_the_unambiguous_rows() {
    let config = config();
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let ids = config.record_ids();
    let emails = config.record_emails();
    let n = 600;
    let (text, values) = email_sheet(&emails, n, 7);
    let csv = ws.write("sheet.csv", &text);
    let ran = ws
        .run(
            &csv,
            &["--match-by", "Email", "--api", "auto"],
            &Creds::mock_token(),
        )
        .await;
    // Rows whose key finds no record, or two, are invalid: exit 3.
    ran.expect_code(3);
    let distinct: BTreeSet<String> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_lowercase())
        .collect();
    let ledger = server.ledger();
    assert!(
        ledger.coql_requests <= distinct.len().div_ceil(50) as u64,
        "{} lookup calls for {} keys\n{}",
        ledger.coql_requests,
        distinct.len(),
        ran.report()
    );
    ran.expect_in(
        Stream::Out,
        &[&format!(
            "lookup calls   {:>10}   ({} distinct Email keys: ",
            ledger.coql_requests,
            distinct.len()
        )],
    );
    // Records 2..6 share their address with records 699..695: no record of either is touched.
    let shared: Vec<(usize, usize)> = (0..4).map(|k| (2 + k, config.records - 1 - k)).collect();
    for (i, id) in ids.iter().enumerate() {
        let ambiguous = shared.iter().any(|&(a, b)| i == a || i == b);
        if i < n && !ambiguous {
            let held = &ledger.records[id];
            assert_eq!(held["Lead_Status"], values[i].0, "record {i} ({id})");
            assert_eq!(held["City"], values[i].1, "record {i} ({id})");
            // A few shared values: by mass_update, one call per field (the credit-cheapest
            // plan), so each record is written twice and never more.
            assert_eq!(
                ledger.applied[id], 2,
                "record {i}: one mass_update call per field"
            );
        } else {
            assert_eq!(ledger.applied[id], 0, "record {i} ({id}) must be untouched");
        }
    }
    // Every row has its outcome and reason.
    let conn = ws.open_db();
    let run = last_run(&conn);
    let outcomes = row_outcomes(&conn, run);
    assert_eq!(outcomes.len(), n + 7);
    let rows: Vec<Option<String>> = conn
        .prepare("SELECT message FROM rows WHERE run_id = ?1 ORDER BY row_no")
        .unwrap()
        .query_map([run], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for &(a, b) in &shared {
        let message = rows[a].clone().unwrap_or_default();
        assert!(
            message.contains("matches 2 Leads records")
                && message.contains(&ids[a])
                && message.contains(&ids[b])
                && message.contains("none of them is updated"),
            "row of record {a}: {message}"
        );
    }
    for message in &rows[n..] {
        let message = message.clone().unwrap_or_default();
        assert!(
            message.starts_with("no Leads record has Email = \"nobody"),
            "{message}"
        );
    }
    // The report names the record each key found.
    let report = ws
        .massup(
            &["report", "--format", "json", "--out", "-"],
            &Creds::mock_token(),
        )
        .await;
    let report: Vec<serde_json::Value> = serde_json::from_slice(&report.output.stdout).unwrap();
    assert_eq!(report[0]["record_id"], ids[0].as_str());
    assert_eq!(report[0]["Email"], emails[0].to_uppercase());
    assert!(
        report[n]["record_id"].is_null(),
        "an unknown key found no record"
    );
    let status = ws.massup(&["status", "--json"], &Creds::mock_token()).await;
    let status = status.json();
    assert_eq!(status["counts"]["rows"]["succeeded"], (n - 4) as u64);
    assert_eq!(status["counts"]["rows"]["invalid"], 4 + 7);

    // Resolved ids are stored with the run: retry and resume never look a key up again.
    let lookups_before = server.ledger().coql_requests;
    ws.again("retry", &[], &Creds::mock_token()).await;
    ws.again("resume", &[], &Creds::mock_token()).await;
    assert_eq!(server.ledger().coql_requests, lookups_before);
    let stored: i64 = conn
        .query_row(
            "SELECT count(*) FROM lookups WHERE run_id = ?1",
            [run],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored as usize, distinct.len());
    // Planning the same file again finds its run before any lookup is spent.
    let again = ws
        .run(
            &csv,
            &["--match-by", "Email", "--api", "auto"],
            &Creds::mock_token(),
        )
        .await;
    // Already sent as a finished run: a successful no-op (--if-sent skip, the default).
    again
        .expect_code(0)
        .expect_stderr(&["already sent as run 1"]);
    assert_eq!(server.ledger().coql_requests, lookups_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_ride_out_server_errors_and_stop_cleanly_when_credits_run_out() {
    // A quarter of all calls answer 500: lookups are retried like updates.
    let flaky = MockConfig {
        fail_500_rate: 0.25,
        ..config()
    };
    let server = start(flaky.clone()).await;
    let ws = Workspace::new(&server);
    let (text, values) = email_sheet(&flaky.record_emails(), 300, 0);
    let csv = ws.write("sheet.csv", &text);
    let ran = ws
        .run(
            &csv,
            &["--match-by", "Email", "--max-attempts", "12"],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(3); // the four shared addresses among the first 300 records
    let ledger = server.ledger();
    let ids = flaky.record_ids();
    for (i, (status, _)) in values.iter().enumerate().skip(6) {
        assert_eq!(
            ledger.records[&ids[i]]["Lead_Status"], *status,
            "record {i}"
        );
    }
    assert!(
        ledger.coql_requests >= 6,
        "300 keys take 6 queries at least"
    );

    // Two credits for 6 queries: the plan stops, names the cause, and stores nothing.
    let poor = MockConfig {
        daily_credits: Some(2),
        ..config()
    };
    let server = start(poor.clone()).await;
    let ws = Workspace::new(&server);
    let (text, _) = email_sheet(&poor.record_emails(), 300, 0);
    let csv = ws.write("sheet.csv", &text);
    let ran = ws
        .run(&csv, &["--match-by", "Email"], &Creds::mock_token())
        .await;
    ran.expect_code(1);
    ran.expect_stderr(&["credits", "nothing was planned"]);
    assert_eq!(
        server.ledger().update_requests + server.ledger().requests,
        0
    );
    let runs: i64 = ws
        .open_db()
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 0, "a plan whose lookups failed stores nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_with_match_by_and_metadata_name_their_fix() {
    let config = config();
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let (text, _) = email_sheet(&config.record_emails(), 10, 0);
    let csv = ws.write("sheet.csv", &text);
    let csv = csv.to_str().unwrap();
    let url = server.url();
    let api = ["--api-domain", url.as_str()];
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", "--csv", csv];
        args.extend_from_slice(extra);
        if !extra.contains(&"--module") {
            args.extend(["--module", "Leads"]);
        }
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let massup = |args: Vec<String>, creds: Creds| {
        let ws = &ws;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ws.massup(&args, &creds).await
        }
    };
    // No credentials: the lookup cannot be made, and the message says what to set.
    let mut args = plan(&["--match-by", "Email"]);
    args.extend(api.iter().map(|s| s.to_string()));
    massup(args, Creds::None)
        .await
        .expect_code(2)
        .expect_stderr(&["--match-by looks each key up in Zoho", "ZOHO_ACCESS_TOKEN"]);
    // A misspelt field, a field that cannot be a key, a module that does not exist.
    for (extra, needles) in [
        (
            vec!["--match-by", "Emial"],
            vec!["Leads has no field Emial", "did you mean Email?"],
        ),
        (
            vec!["--match-by", "Description"],
            vec!["multi-line field cannot be searched"],
        ),
        (
            vec!["--match-by", "Email", "--module", "Lead"],
            vec!["Lead is not a module", "did you mean Leads?"],
        ),
    ] {
        let mut args = plan(&extra);
        args.extend(api.iter().map(|s| s.to_string()));
        massup(args, Creds::mock_token())
            .await
            .expect_code(2)
            .expect_stderr(&needles);
    }
    // A refused token points at the token and the data centre, not at --fields.
    let mut args = plan(&["--match-by", "Email"]);
    args.extend(api.iter().map(|s| s.to_string()));
    let ran = massup(args, Creds::Token("not-the-token".into())).await;
    ran.expect_code(1)
        .expect_stderr(&["refused the access token", "--dc"]);
    assert!(!ran.stderr().contains("pass --fields"), "{}", ran.report());
    // Bad key cells are invalid rows naming line and column; the good rows still plan.
    let bad = ws.write(
        "bad.csv",
        &format!(
            "Email,Lead_Status\n{},Contacted\n,Contacted\nback\\slash@x.com,Contacted\no'neil@example.com,Contacted\n",
            config.record_emails()[10]
        ),
    );
    let mut args = vec![
        "plan".to_string(),
        "--csv".into(),
        bad.display().to_string(),
    ];
    args.extend(["--module", "Leads", "--match-by", "email", "--json"].map(String::from));
    args.extend(api.iter().map(|s| s.to_string()));
    let ran = massup(args, Creds::mock_token()).await;
    ran.expect_code(3);
    let summary = ran.json();
    assert_eq!(summary["valid_rows"], 1, "{}", ran.report());
    assert_eq!(summary["invalid_rows"], 3);
    let problems: Vec<String> = summary["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}:{}: {}",
                p["path"].as_str().unwrap(),
                p["line"],
                p["message"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        problems[0].ends_with(
            "bad.csv:3: the Email cell is empty: there is no key to find a Leads record by"
        ),
        "{problems:?}"
    );
    assert!(
        problems[1].contains(
            "bad.csv:4: Email = \"back\\\\slash@x.com\" holds a control character or a backslash"
        ),
        "{problems:?}"
    );
    assert!(
        problems[2].contains("bad.csv:5: no Leads record has Email = \"o'neil@example.com\""),
        "{problems:?}"
    );
    assert_eq!(summary["lookup"]["calls"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_european_sheet_keyed_by_email_with_labels_goes_in_and_a_bad_one_spends_no_lookup() {
    let config = config();
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let emails = config.record_emails();
    let ids = config.record_ids();
    // Excel in Germany: ';', a BOM, CRLF, labels, decimal commas; keys in capitals.
    let text = format!(
        "\u{feff}E-Mail;Lead Status;Annual Revenue\r\n{};Contacted;1.250,50\r\n{};Junk Lead;99,9\r\n",
        emails[10].to_uppercase(),
        emails[11]
    );
    let sheet = ws.write("kunden.csv", &text);
    let ran = ws
        .run(
            &sheet,
            &[
                "--match-by",
                "email",
                "--id-column",
                "e-mail",
                "--decimal-comma",
                "--api",
                "auto",
            ],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(0).expect_in(
        Stream::Out,
        &[
            "\"Lead Status\" -> Lead_Status",
            "\"Annual Revenue\" -> Annual_Revenue",
            "lookup calls            1",
        ],
    );
    let ledger = server.ledger();
    assert_eq!(ledger.records[&ids[10]]["Annual_Revenue"], 1250.5);
    assert_eq!(ledger.records[&ids[11]]["Lead_Status"], "Junk Lead");
    assert_eq!(ledger.coql_requests, 1);
    // A sheet whose key column is missing, or with a column no field answers to, is refused
    // before any key is looked up.
    let no_key = ws.write("no-key.csv", "Mail,Lead_Status\na@x.com,Contacted\n");
    ws.run(&no_key, &["--match-by", "Email"], &Creds::mock_token())
        .await
        .expect_code(2)
        .expect_stderr(&["no-key.csv: line 1: no column holds the keys of --match-by Email (columns: Mail, Lead_Status); name the column with --id-column NAME"]);
    let bad_column = ws.write(
        "bad-column.csv",
        &format!("Email,Lead_Statu\n{},Contacted\n", emails[12]),
    );
    ws.run(&bad_column, &["--match-by", "Email"], &Creds::mock_token())
        .await
        .expect_code(2)
        .expect_stderr(&["Lead_Statu", "did you mean"]);
    assert_eq!(
        server.ledger().coql_requests,
        1,
        "no lookup for sheets that cannot plan"
    );
}

/// `mock-server --print-sheet N` writes a sheet of the mock's own records that a new user
/// can send as it is: by id, or (its id column ignored) keyed by Email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mocks_printed_sheet_goes_in_by_id_and_by_email() {
    let config = MockConfig {
        records: 60,
        seed: 9,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let printed = ws
        .massup(
            &[
                "mock-server",
                "--records",
                "60",
                "--seed",
                "9",
                "--print-sheet",
                "40",
            ],
            &Creds::None,
        )
        .await;
    printed.expect_code(0);
    let sheet = printed.stdout();
    let mut reader = csv::Reader::from_reader(sheet.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 40);
    assert_eq!(&rows[0][0], config.record_ids()[0].as_str());
    assert_eq!(&rows[39][1], config.record_emails()[39].as_str());

    let by_id = ws.write("by-id.csv", &sheet);
    ws.run(&by_id, &["--api", "auto", "--yes"], &Creds::mock_token())
        .await
        .expect_code(0);
    let ledger = server.ledger();
    for row in &rows[..20] {
        assert_eq!(ledger.records[&row[0]]["City"], row[3].to_string());
        assert_eq!(ledger.records[&row[0]]["Lead_Status"], row[2].to_string());
    }

    // The same sheet keyed by Email, its id column left out, other cities.
    let by_email = ws.write("by-email.csv", &sheet.replace("Lyon", "Genf"));
    let ran = ws
        .run(
            &by_email,
            &[
                "--match-by",
                "Email",
                "--ignore-column",
                "id",
                "--api",
                "auto",
                "--yes",
            ],
            &Creds::mock_token(),
        )
        .await;
    ran.expect_code(0);
    let ledger = server.ledger();
    let genf = rows.iter().filter(|r| &r[3] == "Lyon").count();
    assert!(genf >= 10);
    for row in rows.iter().filter(|r| &r[3] == "Lyon") {
        assert_eq!(ledger.records[&row[0]]["City"], "Genf");
    }

    let too_many = ws
        .massup(
            &["mock-server", "--records", "5", "--print-sheet", "6"],
            &Creds::None,
        )
        .await;
    too_many
        .expect_code(2)
        .expect_stderr(&["--print-sheet 6", "5 records"]);
}
