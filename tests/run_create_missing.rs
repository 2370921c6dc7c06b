//! `--create-missing` end to end: the real binary against the mock over HTTP, checked by the
//! mock's ledger. A sheet keyed by Email with 2,000 known and 100 unknown addresses creates
//! exactly the 100 (holding the sheet's values) and updates the 2,000; the same sheet sent
//! again creates none; rows that cannot make a record (a mandatory column empty, two rows of
//! one new key that disagree) are refused before anything is sent while the others go;
//! faults and `resume` never create a record twice; `undo` deletes what the run created
//! (unless changed since: CONFLICT, or `--force`) and restores what it updated.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use massup::mock::MockConfig;
use serde_json::Value;
use support::*;

const KNOWN: usize = 2_000;
const NEW: usize = 100;

fn config() -> MockConfig {
    MockConfig {
        records: KNOWN,
        ..MockConfig::default()
    }
}

/// `Email,Last_Name,Company,City`: every known address, then `NEW` unknown ones.
fn sheet(emails: &[String]) -> String {
    let mut csv = String::from("Email,Last_Name,Company,City\n");
    for (i, email) in emails.iter().enumerate() {
        csv.push_str(&format!("{email},Known {i},Acme,City {}\n", i % 7));
    }
    for k in 0..NEW {
        csv.push_str(&format!(
            "New{k}@Example.com,New {k},NewCo {},Newtown\n",
            k % 3
        ));
    }
    csv
}

/// `massup run` with live field metadata (the mock's, which marks Last_Name and Company
/// mandatory for Leads), keyed by Email, creating what is missing.
async fn run(ws: &Workspace, csv: &std::path::Path, extra: &[&str]) -> Ran {
    let mut flags = vec!["--api", "auto", "--match-by", "Email", "--create-missing"];
    flags.extend_from_slice(extra);
    let mut args = ws.run_args(csv, &flags);
    let at = args.iter().position(|a| a == "--fields").unwrap();
    args.drain(at..at + 2);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ws.massup(&args, &Creds::mock_token()).await
}

fn report(stdout: &[u8]) -> Vec<Value> {
    serde_json::from_slice(stdout).expect("a JSON report")
}

/// The records the mock created, by their Email as the sheet wrote it.
fn created_by_email(ledger: &massup::mock::Ledger) -> BTreeMap<String, String> {
    ledger
        .created
        .iter()
        .filter(|id| ledger.records.contains_key(*id))
        .map(|id| {
            let email = ledger.records[id]["Email"].as_str().unwrap().to_string();
            (email, id.clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sheet_of_known_and_new_addresses_creates_exactly_the_new_ones_then_undo_takes_them_back()
{
    let config = config();
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let ids = config.record_ids();
    let emails = config.record_emails();
    let csv = ws.write("customers.csv", &sheet(&emails));
    let ran = run(&ws, &csv, &["--snapshot"]).await;
    ran.expect_code(0);
    let ledger = server.ledger();
    // Exactly the 100 new addresses, each once, holding the sheet's values.
    assert_eq!(ledger.created.len(), NEW, "{}", ran.report());
    let created = created_by_email(&ledger);
    for k in 0..NEW {
        let id = &created[&format!("New{k}@Example.com")];
        let held = &ledger.records[id];
        assert_eq!(held["Last_Name"], format!("New {k}"));
        assert_eq!(held["Company"], format!("NewCo {}", k % 3));
        assert_eq!(held["City"], "Newtown");
    }
    // And the 2,000 known ones updated.
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(ledger.records[id]["Last_Name"], format!("Known {i}"), "{i}");
        assert_eq!(ledger.records[id]["City"], format!("City {}", i % 7), "{i}");
    }
    // One Upsert call of 100 records, 10 credits.
    assert_eq!(ledger.upsert_requests, 1);
    assert_eq!(ledger.insert_requests, 0);
    // The report gives each row its action and record.
    let out = ws
        .massup(
            &["report", "--format", "json", "--out", "-"],
            &Creds::mock_token(),
        )
        .await;
    let rows = report(&out.output.stdout);
    assert_eq!(rows.len(), KNOWN + NEW);
    assert_eq!(rows[0]["action"], "updated");
    assert_eq!(rows[0]["record_id"], ids[0].as_str());
    for (k, row) in rows[KNOWN..].iter().enumerate() {
        assert_eq!(row["action"], "created", "{row}");
        assert_eq!(row["outcome"], "succeeded", "{row}");
        assert_eq!(row["carried_by"], "upsert_records", "{row}");
        assert_eq!(
            row["record_id"],
            created[&format!("New{k}@Example.com")].as_str()
        );
    }
    let status = ws.massup(&["status", "--json"], &Creds::mock_token()).await;
    let status = status.json();
    assert_eq!(status["counts"]["created"], NEW as u64, "{status}");
    assert_eq!(status["counts"]["rows"]["succeeded"], (KNOWN + NEW) as u64);
    assert_eq!(status["counts"]["spend"]["upsert_records"]["credits"], 10);

    // The same sheet again, as a new run: every key finds its record now; nothing created.
    let before = server.ledger();
    run(&ws, &csv, &["--new-run", "--no-snapshot"])
        .await
        .expect_code(0);
    let ledger = server.ledger();
    assert_eq!(ledger.created.len(), NEW, "a second run created records");
    assert_eq!(ledger.upsert_requests, before.upsert_requests);

    // Someone changes one created record; undo of run 1 leaves it alone (CONFLICT),
    // deletes the 99 others and restores the 2,000.
    let changed = created["New7@Example.com"].clone();
    edit(&server, &changed, "City", "Elsewhere").await;
    let undo = ws
        .massup(
            &[
                "undo",
                "--run",
                "1",
                "--api-domain",
                &server.url(),
                "--backoff-ms",
                "5",
            ],
            &Creds::mock_token(),
        )
        .await;
    let ledger = server.ledger();
    assert_eq!(ledger.deleted.len(), NEW - 1, "{}", undo.report());
    assert!(ledger.records.contains_key(&changed));
    assert!(!ledger.deleted.contains(&changed));
    for id in created.values().filter(|id| **id != changed) {
        assert!(!ledger.records.contains_key(id), "{id} not deleted");
    }
    // Run 1 found the known records empty (the mock's records hold no fields until
    // written): restoring clears what it wrote.
    for id in &ids {
        assert_eq!(ledger.records[id].get("City"), Some(&Value::Null), "{id}");
    }
    // 100 ids a delete call: one call.
    assert_eq!(ledger.delete_requests, 1);
    let undo_run = last_run(&ws.open_db());
    let out = ws
        .massup(
            &[
                "report",
                "--run",
                &undo_run.to_string(),
                "--format",
                "json",
                "--out",
                "-",
            ],
            &Creds::mock_token(),
        )
        .await;
    let rows = report(&out.output.stdout);
    let conflicts: Vec<&Value> = rows.iter().filter(|r| r["code"] == "CONFLICT").collect();
    assert_eq!(conflicts.len(), 1, "{}", undo.report());
    assert!(conflicts[0]["message"]
        .as_str()
        .unwrap()
        .contains("undo --force"));
    undo.expect_code(3);

    // --force deletes it too.
    let forced = ws
        .massup(
            &[
                "undo",
                "--run",
                "1",
                "--force",
                "--yes",
                "--api-domain",
                &server.url(),
                "--backoff-ms",
                "5",
            ],
            &Creds::mock_token(),
        )
        .await;
    let ledger = server.ledger();
    assert!(
        !ledger.records.contains_key(&changed),
        "{}",
        forced.report()
    );
    assert_eq!(ledger.deleted.len(), NEW);
}

/// Edits a record as a person in Zoho would (Update Records, straight to the mock).
async fn edit(server: &massup::mock::MockServer, id: &str, field: &str, value: &str) {
    massup::api::install_crypto_provider();
    let response = reqwest::Client::new()
        .put(format!("{}/crm/v2/Leads", server.url()))
        .header("Authorization", "Zoho-oauthtoken mock-token")
        .json(&serde_json::json!({"data": [{"id": id, field: value}]}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_that_cannot_make_a_record_are_refused_before_sending_and_the_rest_go() {
    let config = MockConfig {
        records: 50,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let emails = config.record_emails();
    let mut csv = String::from("Email,Last_Name,Company,City\n");
    csv.push_str(&format!("{},Known,Acme,Rome\n", emails[0])); // line 2
    csv.push_str("a@new.example,Ada,NewCo,Oslo\n"); // line 3: created
    csv.push_str("b@new.example,,NewCo,Oslo\n"); // line 4: no Last_Name
    csv.push_str("c@new.example,Cy,NewCo,Lima\n"); // line 5
    csv.push_str("C@new.example,Cy,NewCo,Paris\n"); // line 6: disagrees with line 5
    csv.push_str("d@new.example,Di,NewCo,Bonn\n"); // line 7
    csv.push_str("D@NEW.example,Di,,\n"); // line 8: agrees with line 7 (adds nothing)
    let path = ws.write("mixed.csv", &csv);
    let ran = run(&ws, &path, &[]).await;
    ran.expect_code(3);
    ran.expect_in(
        Stream::Out,
        &[
            "mixed.csv:4:",
            "column Last_Name is empty",
            "mixed.csv:5:",
            "mixed.csv:6:",
            "lines 5, 6",
        ],
    );
    let ledger = server.ledger();
    let made: BTreeSet<String> = created_by_email(&ledger).into_keys().collect();
    assert_eq!(
        made,
        BTreeSet::from(["a@new.example".to_string(), "d@new.example".to_string()]),
        "{}",
        ran.report()
    );
    assert_eq!(ledger.upsert_by_code.get("MANDATORY_NOT_FOUND"), None);
    assert_eq!(ledger.records[&config.record_ids()[0]]["City"], "Rome");
    let out = ws
        .massup(
            &["report", "--format", "json", "--out", "-"],
            &Creds::mock_token(),
        )
        .await;
    let rows = report(&out.output.stdout);
    assert_eq!(rows[2]["outcome"], "invalid");
    assert!(rows[2]["message"].as_str().unwrap().contains("Last_Name"));
    for row in &rows[3..5] {
        assert_eq!(row["outcome"], "invalid");
        assert!(
            row["message"].as_str().unwrap().contains("lines 5, 6"),
            "{row}"
        );
    }
    assert_eq!(rows[5]["action"], "created");
    assert_eq!(rows[6]["action"], "created");
    assert_eq!(rows[5]["record_id"], rows[6]["record_id"]);

    // Without --match-by the flag is refused before anything else.
    let bad = ws
        .massup(
            &[
                "plan",
                "--csv",
                path.to_str().unwrap(),
                "--module",
                "Leads",
                "--create-missing",
            ],
            &Creds::mock_token(),
        )
        .await;
    assert_ne!(bad.code(), 0);
    bad.expect_stderr(&["--match-by"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_and_resume_never_create_a_record_twice() {
    // A third of the calls fail: half of those after the mock applied them (the answer
    // lost), the others before.
    let config = MockConfig {
        records: 300,
        drop_after_rate: 0.2,
        fail_500_rate: 0.1,
        drop_before_rate: 0.05,
        ..MockConfig::default()
    };
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let emails = config.record_emails();
    let mut text = String::from("Email,Last_Name,Company,City\n");
    for (i, email) in emails.iter().enumerate() {
        text.push_str(&format!("{email},Known {i},Acme,City {}\n", i % 5));
    }
    let new = 1_000;
    for k in 0..new {
        text.push_str(&format!("n{k}@new.example,New {k},NewCo,Town {}\n", k % 9));
    }
    let csv = ws.write("faulty.csv", &text);
    // Planned (the lookups ride out the faults with the default attempts), then sent by
    // `resume` with one attempt a call: every fault leaves its chunk for the next resume,
    // and a dropped answer's chunk is sent again by a later invocation.
    let url = server.url();
    let planned = ws
        .massup(
            &[
                "plan",
                "--csv",
                csv.to_str().unwrap(),
                "--module",
                "Leads",
                "--api-domain",
                &url,
                "--accounts-url",
                &url,
                "--match-by",
                "Email",
                "--create-missing",
                "--api",
                "auto",
                "--no-snapshot",
            ],
            &Creds::mock_token(),
        )
        .await;
    planned.expect_code(0);
    let mut resumes = 0;
    loop {
        let conn = ws.open_db();
        let unfinished: i64 = conn
            .query_row(
                "SELECT count(*) FROM chunks WHERE state <> 'done'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if unfinished == 0 {
            break;
        }
        resumes += 1;
        assert!(resumes < 60, "{}", planned.report());
        ws.again("resume", &["--max-attempts", "1"], &Creds::mock_token())
            .await;
    }
    assert!(resumes > 1, "the faults never left a chunk for resume");
    let ledger = server.ledger();
    let made = created_by_email(&ledger);
    assert_eq!(
        ledger.created.len(),
        new,
        "{} records created for {new} new keys (upserts: {:?})",
        ledger.created.len(),
        ledger.upsert_by_code
    );
    assert_eq!(made.len(), new);
    assert!(
        ledger.by_code.contains_key("DROPPED_AFTER")
            || ledger.upsert_by_code.contains_key("DROPPED_AFTER"),
        "no answer was lost: the test proves nothing"
    );
    // Every new row knows its record, and calls it created.
    let out = ws
        .massup(
            &["report", "--format", "json", "--out", "-"],
            &Creds::mock_token(),
        )
        .await;
    let rows = report(&out.output.stdout);
    for (k, row) in rows[emails.len()..].iter().enumerate() {
        assert_eq!(row["outcome"], "succeeded", "{row}");
        assert_eq!(row["action"], "created", "{row}");
        assert_eq!(
            row["record_id"],
            made[&format!("n{k}@new.example")].as_str(),
            "{row}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_of_a_run_that_only_created_records_deletes_them() {
    let config = config();
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let mut csv = String::from("Email,Last_Name,Company\n");
    for k in 0..150 {
        csv.push_str(&format!("only{k}@new.example,Only {k},Solo\n"));
    }
    let csv = ws.write("only-new.csv", &csv);
    run(&ws, &csv, &[]).await.expect_code(0);
    let ledger = server.ledger();
    assert_eq!(ledger.created.len(), 150);
    let status = ws.massup(&["status", "--json"], &Creds::None).await;
    status.expect_code(0);
    let counts = &status.json()["counts"];
    assert_eq!(counts["created"], 150, "{counts:#}");
    assert_eq!(
        counts["calls"], 2,
        "two Upsert calls are write calls: {counts:#}"
    );
    let undone = ws
        .massup(
            &["undo", "--yes", "--backoff-ms", "5"],
            &Creds::mock_token(),
        )
        .await;
    undone.expect_code(0);
    let ledger = server.ledger();
    let created: BTreeSet<&String> = ledger.created.iter().collect();
    let deleted: BTreeSet<&String> = ledger.deleted.iter().collect();
    assert_eq!(
        created, deleted,
        "every created record deleted, nothing else"
    );
    assert_eq!(ledger.delete_requests, 2, "150 ids in calls of at most 100");
}
