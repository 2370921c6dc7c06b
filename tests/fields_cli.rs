//! `massup fields MODULE`: what a person reads before turning a sheet's headers into API
//! names, from the live API (the mock) and from a saved metadata file, and the mistakes a
//! new user makes first.

mod support;

use massup::mock::MockConfig;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_lists_names_labels_types_and_what_can_write_them() {
    let server = start(MockConfig::default()).await;
    let ws = Workspace::new(&server);
    let url = server.url();
    let file = fields_file();
    let from_file = ws
        .massup(
            &[
                "fields",
                "Leads",
                "--fields",
                file.to_str().unwrap(),
                "--json",
            ],
            &Creds::None,
        )
        .await;
    from_file.expect_code(0);
    let live = ws
        .massup(
            &["fields", "Leads", "--api-domain", &url, "--json"],
            &Creds::mock_token(),
        )
        .await;
    live.expect_code(0);
    let (from_file, live) = (from_file.json(), live.json());
    assert_eq!(from_file["source"], "file");
    assert_eq!(live["source"], "api");
    let names = |doc: &serde_json::Value| -> Vec<String> {
        doc["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["api_name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&from_file),
        names(&live),
        "the mock serves the sample"
    );
    let field = |name: &str| {
        live["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["api_name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {live}"))
            .clone()
    };
    let email = field("Email");
    assert_eq!(email["data_type"], "email");
    assert_eq!(
        email["mass_update"], false,
        "mass_update cannot write Email"
    );
    assert_eq!(email["updatable"], true, "Update Records can");
    let status = field("Lead_Status");
    assert_eq!(status["label"], "Lead Status");
    assert_eq!(status["mass_update"], true);
    assert!(status["picklist_values"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "Contacted"));
    // The table a person reads.
    let table = ws
        .massup(
            &["fields", "Leads", "--api-domain", &url],
            &Creds::mock_token(),
        )
        .await;
    table.expect_code(0).expect_in(
        Stream::Out,
        &[
            "API NAME",
            "LABEL",
            "MASS_UPDATE",
            "Lead Status",
            "can be mass-updated",
        ],
    );
    let email_line = table
        .stdout()
        .lines()
        .find(|l| l.starts_with("Email "))
        .unwrap()
        .to_string();
    assert!(email_line.contains(" no "), "{email_line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_mistakes_name_their_fix() {
    let server = start(MockConfig::default()).await;
    let ws = Workspace::new(&server);
    let url = server.url();
    ws.massup(
        &["fields", "Lead", "--api-domain", &url],
        &Creds::mock_token(),
    )
    .await
    .expect_code(2)
    .expect_stderr(&["Lead is not a module of this org", "did you mean Leads?"]);
    ws.massup(&["fields", "Leads", "--api-domain", &url], &Creds::None)
        .await
        .expect_code(2)
        .expect_stderr(&["no credentials", "ZOHO_ACCESS_TOKEN"]);
    ws.massup(&["fields"], &Creds::None)
        .await
        .expect_code(2)
        .expect_stderr(&["no module", "massup fields Leads"]);
    let ran = ws
        .massup(
            &["fields", "Leads", "--api-domain", &url],
            &Creds::Token("a-wrong-token".into()),
        )
        .await;
    ran.expect_code(1)
        .expect_stderr(&["refused the access token", "--dc"]);
    assert!(!ran.stderr().contains("a-wrong-token"), "{}", ran.report());
    let bad = ws.write("bad.json", "{\"fields\": 3}");
    ws.massup(
        &["fields", "Leads", "--fields", bad.to_str().unwrap()],
        &Creds::None,
    )
    .await
    .expect_code(2)
    .expect_stderr(&["--fields", "bad.json"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_checks_values_against_live_metadata_when_it_has_credentials() {
    let config = MockConfig::default();
    let server = start(config.clone()).await;
    let ws = Workspace::new(&server);
    let url = server.url();
    let ids = config.record_ids();
    let csv = ws.write(
        "changes.csv",
        &format!(
            "id,Lead_Status\n{},Contacted\n{},Not A Status\n",
            ids[0], ids[1]
        ),
    );
    let csv = csv.to_str().unwrap();
    let live = ws
        .massup(
            &[
                "plan",
                "--csv",
                csv,
                "--module",
                "Leads",
                "--api-domain",
                &url,
                "--json",
            ],
            &Creds::mock_token(),
        )
        .await;
    live.expect_code(3);
    let summary = live.json();
    assert_eq!(summary["invalid_rows"], 1, "{}", live.report());
    assert!(summary["problems"][0]["message"]
        .as_str()
        .unwrap()
        .contains("Lead_Status"));
    let fields_json: Option<String> = ws
        .open_db()
        .query_row("SELECT fields_json FROM runs WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        fields_json.unwrap().contains("\"Lead_Status\""),
        "metadata kept with the run"
    );
    // --offline calls nothing: the value goes unchecked, and the summary says so.
    let before = server.ledger();
    let offline = ws
        .massup(
            &[
                "plan",
                "--csv",
                csv,
                "--module",
                "Leads",
                "--api-domain",
                &url,
                "--offline",
                "--new-run",
                "--json",
            ],
            &Creds::mock_token(),
        )
        .await;
    offline.expect_code(0);
    assert_eq!(offline.json()["invalid_rows"], 0);
    assert!(offline.json()["warnings"][0]
        .as_str()
        .unwrap()
        .contains("no field metadata"));
    assert_eq!(server.ledger().coql_requests, before.coql_requests);
}
