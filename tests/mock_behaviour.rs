//! The mock's behaviour over real HTTP: validation and status selection, the apply and the
//! ledger, tokens, limits, gates that open after K attempts, faults and seeded determinism.

use massup::mock::{Ledger, MockConfig, MockServer, MockServerArgs};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "mock-token";

async fn start(config: MockConfig) -> MockServer {
    MockServer::start(config).await.expect("mock starts")
}

fn client() -> reqwest::Client {
    massup::api::install_crypto_provider();
    reqwest::Client::new()
}

/// One mass_update call with the default token; returns status and parsed body.
async fn update(server: &MockServer, module: &str, body: &Value) -> (u16, Value) {
    let response = send(server, module, body, TOKEN)
        .await
        .expect("mock answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

async fn send(
    server: &MockServer,
    module: &str,
    body: &Value,
    token: &str,
) -> reqwest::Result<reqwest::Response> {
    client()
        .post(format!(
            "{}/crm/v8/{module}/actions/mass_update",
            server.url()
        ))
        .header("Authorization", format!("Zoho-oauthtoken {token}"))
        .json(body)
        .send()
        .await
}

fn body(field: &str, value: Value, ids: &[String]) -> Value {
    json!({"data": [{field: value}], "over_write": true, "ids": ids})
}

fn codes(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["code"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn refresh(server: &MockServer, client_id: &str, refresh_token: &str) -> (u16, Value) {
    let response = client()
        .post(format!("{}/oauth/v2/token", server.url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("client_secret", "mock-client-secret"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .expect("mock answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn status_is_200_207_or_400_by_outcome() {
    let server = start(MockConfig::default()).await;
    let ids = server.config().record_ids();
    let (status, all_ok) = update(
        &server,
        "Leads",
        &body("Rating", json!("Active"), &ids[..3]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(codes(&all_ok), ["SUCCESS"; 3]);

    let mixed_ids = vec![ids[3].clone(), "111".to_string(), ids[4].clone()];
    let (status, mixed) = update(
        &server,
        "Leads",
        &body("Rating", json!("Active"), &mixed_ids),
    )
    .await;
    assert_eq!(status, 207);
    assert_eq!(codes(&mixed), ["SUCCESS", "INVALID_DATA", "SUCCESS"]);
    // Entries follow the order of `ids` and each names its id.
    for (entry, id) in mixed["data"]
        .as_array()
        .expect("array")
        .iter()
        .zip(&mixed_ids)
    {
        assert_eq!(entry["details"]["id"], json!(id));
    }
    assert_eq!(
        mixed["data"][1]["message"],
        "the id given seems to be invalid"
    );

    let bad_ids = vec!["1".to_string(), "abc".to_string()];
    let (status, none) = update(&server, "Leads", &body("Rating", json!("Active"), &bad_ids)).await;
    assert_eq!(status, 400);
    assert_eq!(codes(&none), ["INVALID_DATA"; 2]);
    server.shutdown().await;
}

#[tokio::test]
async fn values_of_the_wrong_type_fail_every_record() {
    let server = start(MockConfig::default()).await;
    let ids = server.config().record_ids()[..2].to_vec();
    let cases = [
        ("No_of_Employees", json!("1000"), "integer"),
        ("No_of_Employees", json!(1.5), "integer"),
        ("Big_Number", json!(12), "bigint"),
        ("Big_Number", json!("12a"), "bigint"),
        ("Tags_Multi", json!("Priority"), "multiselectpicklist"),
        ("Owner", json!({"name": "x"}), "ownerlookup"),
        ("Email_Opt_Out", json!("true"), "boolean"),
        ("Follow_Up_Date", json!("12/05/2021"), "date"),
        ("Last_Contacted", json!("2021-05-12T07:26:48"), "datetime"),
        ("Score", json!("4.5"), "double"),
    ];
    for (field, value, expected) in cases {
        let (status, answer) = update(&server, "Leads", &body(field, value.clone(), &ids)).await;
        assert_eq!(status, 400, "{field}={value}");
        for (entry, id) in answer["data"].as_array().expect("array").iter().zip(&ids) {
            assert_eq!(entry["code"], "INVALID_DATA");
            assert_eq!(
                entry["details"],
                json!({"api_name": field, "id": id, "expected_data_type": expected}),
                "{field}={value}"
            );
        }
    }
    let (status, long) = update(
        &server,
        "Leads",
        &body("Last_Name", json!("x".repeat(81)), &ids),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(long["data"][0]["details"]["maximum_length"], 80);

    // Right types, and null, are accepted.
    let good = [
        ("Big_Number", json!("123456789012345678")),
        ("Tags_Multi", json!(["Priority"])),
        ("Owner", json!({"id": "738964000000291009"})),
        ("Last_Contacted", json!("2021-05-12T07:26:48+05:30")),
        ("Discount", json!(12.5)),
        ("Phone", Value::Null),
    ];
    for (field, value) in good {
        let (status, _) = update(&server, "Leads", &body(field, value.clone(), &ids)).await;
        assert_eq!(status, 200, "{field}={value}");
    }
    let ledger = server.ledger();
    assert_eq!(ledger.records[&ids[0]]["Phone"], Value::Null);
    assert!(ledger.records[&ids[0]].contains_key("Phone"));
    assert_eq!(ledger.applied[&ids[0]], 6);
    server.shutdown().await;
}

#[tokio::test]
async fn call_level_errors_are_one_entry_answers() {
    let config = MockConfig {
        field_limits: [("Leads".to_string(), 1), ("Deals".to_string(), 3)]
            .into_iter()
            .collect(),
        ..MockConfig::default()
    };
    let server = start(config).await;
    let ids = server.config().record_ids();

    let two_fields = json!({"data": [{"Rating": "Active", "City": "Pune"}], "ids": &ids[..1]});
    let (status, answer) = update(&server, "Leads", &two_fields).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"data": [{"code": "LIMIT_EXCEEDED", "details": {"limit": 1},
                         "message": "Max field limit exceeded", "status": "error"}]})
    );
    let three = json!({"data": [{"Stage": "Qualification", "Amount": 10.5, "Next_Step": "call"}], "ids": &ids[..1]});
    assert_eq!(update(&server, "Deals", &three).await.0, 200);
    let four = json!({"data": [{"Stage": "Qualification", "Amount": 1, "Next_Step": "a", "Type": "New Business"}], "ids": &ids[..1]});
    let (_, answer) = update(&server, "Deals", &four).await;
    assert_eq!(answer["data"][0]["details"], json!({"limit": 3}));

    let (status, answer) =
        update(&server, "Leads", &body("Email", json!("a@b.c"), &ids[..1])).await;
    assert_eq!(status, 200);
    assert_eq!(answer["data"][0]["details"], json!({"api_name": "Email"}));
    let (_, answer) = update(
        &server,
        "Leads",
        &body("Lead_Number", json!("7"), &ids[..1]),
    )
    .await;
    assert_eq!(
        answer["data"][0]["message"],
        "This field cannot be updated in the Mass Update"
    );

    let (status, answer) = update(
        &server,
        "Leads",
        &body("Rating", json!("Active"), &ids[..500]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(codes(&answer).len(), 500);
    let mut too_many = ids[..500].to_vec();
    too_many.push(ids[500].clone());
    let (status, answer) = update(
        &server,
        "Leads",
        &body("Rating", json!("Active"), &too_many),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(codes(&answer), ["LIMIT_EXCEEDED"]);
    assert_eq!(answer["data"][0]["details"], json!({"limit": 500}));

    let (status, answer) = update(
        &server,
        "Leads",
        &json!({"data": [{"Rating": "Active"}], "ids": []}),
    )
    .await;
    assert_eq!(
        (status, codes(&answer)),
        (200, vec!["MANDATORY_NOT_FOUND".to_string()])
    );

    let (status, answer) =
        update(&server, "Nope", &body("Rating", json!("Active"), &ids[..1])).await;
    assert_eq!(status, 400);
    assert_eq!(answer["code"], "INVALID_MODULE");

    // GET is the job status poll of the scheduled mode; other methods are refused before
    // authentication, as the seed's COPY is.
    let response = client()
        .put(format!("{}/crm/v2/Leads/actions/mass_update", server.url()))
        .send()
        .await
        .expect("mock answers");
    assert_eq!(response.status().as_u16(), 400);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer["code"], "INVALID_REQUEST_METHOD");

    let ledger = server.ledger();
    assert_eq!(ledger.by_code["LIMIT_EXCEEDED"], 3);
    assert_eq!(ledger.by_code["INVALID_MODULE"], 1);
    assert_eq!(ledger.by_code["INVALID_REQUEST_METHOD"], 1);
    assert_eq!(ledger.by_code["MANDATORY_NOT_FOUND"], 1);
    // The 500-id call applied, the refused ones did not.
    assert_eq!(ledger.applied[&ids[499]], 1);
    assert_eq!(ledger.applied[&ids[500]], 0);
    server.shutdown().await;
}

#[tokio::test]
async fn multiselect_appends_unless_over_write() {
    let server = start(MockConfig::default()).await;
    let ids = server.config().record_ids()[..1].to_vec();
    let call = |values: Value, over_write: bool| json!({"data": [{"Tags_Multi": values}], "over_write": over_write, "ids": &ids});
    update(&server, "Leads", &call(json!(["Priority"]), true)).await;
    update(
        &server,
        "Leads",
        &call(json!(["Webinar", "Priority"]), false),
    )
    .await;
    assert_eq!(
        server.ledger().records[&ids[0]]["Tags_Multi"],
        json!(["Priority", "Webinar"])
    );
    update(&server, "Leads", &call(json!(["Renewal"]), true)).await;
    assert_eq!(
        server.ledger().records[&ids[0]]["Tags_Multi"],
        json!(["Renewal"])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn gates_open_after_k_attempts() {
    let config = MockConfig {
        records: 20,
        locked_fraction: 0.5,
        unlock_after: 2,
        not_approved_fraction: 1.0,
        approve_after: 1,
        ..MockConfig::default()
    };
    let server = start(config).await;
    let ledger = server.ledger();
    assert!(!ledger.locked.is_empty(), "some records start locked");
    assert_eq!(ledger.locked.len() + ledger.not_approved.len(), 20);
    let locked = ledger.locked[0].clone();
    let waiting = ledger.not_approved[0].clone();
    let ids = vec![locked.clone(), waiting.clone()];
    let call = body("Rating", json!("Active"), &ids);

    let (status, first) = update(&server, "Leads", &call).await;
    assert_eq!(status, 200, "only passing states: 200 as in the seed");
    assert_eq!(codes(&first), ["RECORD_LOCKED", "NOT_APPROVED"]);
    assert_eq!(
        first["data"][0]["details"],
        json!({"action": "zia_vision_processing", "id": locked})
    );
    let (status, second) = update(&server, "Leads", &call).await;
    assert_eq!(status, 207);
    assert_eq!(codes(&second), ["RECORD_LOCKED", "SUCCESS"]);
    let (status, third) = update(&server, "Leads", &call).await;
    assert_eq!(status, 200);
    assert_eq!(codes(&third), ["SUCCESS", "SUCCESS"]);

    let ledger = server.ledger();
    assert!(!ledger.locked.contains(&locked));
    assert!(!ledger.not_approved.contains(&waiting));
    assert_eq!(ledger.applied[&locked], 1);
    assert_eq!(ledger.applied[&waiting], 2);
    assert_eq!(ledger.by_code["RECORD_LOCKED"], 2);
    assert_eq!(ledger.by_code["NOT_APPROVED"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_refresh_and_are_rate_limited() {
    let config = MockConfig {
        token_lifetime: Some(Duration::from_secs(1)),
        max_tokens_per_10min: Some(10),
        ..MockConfig::default()
    };
    let started = Instant::now();
    let server = start(config).await;
    let ids = server.config().record_ids()[..1].to_vec();
    let call = body("Rating", json!("Active"), &ids);

    let response = send(&server, "Leads", &call, TOKEN).await.expect("answer");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().contains_key("x-accesstoken-reset"));
    let no_auth = client()
        .post(format!("{}/crm/v2/Leads/actions/mass_update", server.url()))
        .json(&call)
        .send()
        .await
        .expect("answer");
    assert_eq!(no_auth.status().as_u16(), 401);
    let answer: Value = no_auth.json().await.expect("JSON");
    assert_eq!(answer["code"], "AUTHENTICATION_FAILURE");
    let bearer = client()
        .post(format!("{}/crm/v2/Leads/actions/mass_update", server.url()))
        .bearer_auth(TOKEN)
        .json(&call)
        .send()
        .await
        .expect("answer");
    assert_eq!(bearer.status().as_u16(), 200);

    tokio::time::sleep_until((started + Duration::from_millis(1100)).into()).await;
    let response = send(&server, "Leads", &call, TOKEN).await.expect("answer");
    assert_eq!(response.status().as_u16(), 401);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(
        answer,
        json!({"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"})
    );

    assert_eq!(
        refresh(&server, "someone-else", "mock-refresh-token").await,
        (200, json!({"error": "invalid_client"}))
    );
    assert_eq!(
        refresh(&server, "mock-client-id", "stale").await,
        (200, json!({"error": "invalid_code"}))
    );
    let (status, minted) = refresh(&server, "mock-client-id", "mock-refresh-token").await;
    assert_eq!(status, 200);
    assert_eq!(minted["api_domain"], json!(server.url()));
    assert_eq!(minted["token_type"], "Bearer");
    assert_eq!(minted["expires_in"], 1);
    let fresh = minted["access_token"].as_str().expect("token").to_string();
    assert_ne!(fresh, TOKEN);
    let response = send(&server, "Leads", &call, &fresh).await.expect("answer");
    assert_eq!(response.status().as_u16(), 200);

    for _ in 0..9 {
        assert_eq!(
            refresh(&server, "mock-client-id", "mock-refresh-token")
                .await
                .0,
            200
        );
    }
    let (status, denied) = refresh(&server, "mock-client-id", "mock-refresh-token").await;
    assert_eq!(status, 400);
    assert_eq!(denied["error"], "Access Denied");
    assert_eq!(server.ledger().refreshes, 10);

    // Minted tokens are a function of the seed.
    let again = start(MockConfig::default()).await;
    let (_, first) = refresh(&again, "mock-client-id", "mock-refresh-token").await;
    let other = start(MockConfig::default()).await;
    let (_, second) = refresh(&other, "mock-client-id", "mock-refresh-token").await;
    assert_eq!(first["access_token"], second["access_token"]);
    server.shutdown().await;
}

#[tokio::test]
async fn rate_concurrency_and_credit_limits_answer_429() {
    let server = start(MockConfig {
        rate_per_sec: Some(3),
        ..MockConfig::default()
    })
    .await;
    let call = body(
        "Rating",
        json!("Active"),
        &server.config().record_ids()[..1],
    );
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(update(&server, "Leads", &call).await);
    }
    assert_eq!(statuses.iter().filter(|(s, _)| *s == 200).count(), 3);
    let refused: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(refused.len(), 2);
    assert_eq!(refused[0].1["code"], "TOO_MANY_REQUESTS");
    server.shutdown().await;

    let server = start(MockConfig {
        max_concurrency: Some(2),
        // Long enough that all five calls arrive while the first two are held, even on a
        // loaded machine.
        latency_mean: Duration::from_millis(800),
        ..MockConfig::default()
    })
    .await;
    let call = body(
        "Rating",
        json!("Active"),
        &server.config().record_ids()[..1],
    );
    let calls = (0..5).map(|_| update(&server, "Leads", &call));
    let answers = futures::future::join_all(calls).await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let refused = answers.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!((ok, refused), (2, 3));
    let ledger = server.ledger();
    // Two held plus at least one refused while they were in flight.
    assert!(
        ledger.max_concurrency_seen >= 3,
        "{}",
        ledger.max_concurrency_seen
    );
    assert_eq!(ledger.by_code["TOO_MANY_REQUESTS"], 3);
    server.shutdown().await;

    let server = start(MockConfig {
        latency_mean: Duration::from_millis(800),
        ..MockConfig::default()
    })
    .await;
    let call = body(
        "Rating",
        json!("Active"),
        &server.config().record_ids()[..1],
    );
    let answers = futures::future::join_all((0..5).map(|_| update(&server, "Leads", &call))).await;
    assert!(answers.iter().all(|(s, _)| *s == 200));
    assert_eq!(server.ledger().max_concurrency_seen, 5);
    server.shutdown().await;

    let server = start(MockConfig {
        daily_credits: Some(4),
        ..MockConfig::default()
    })
    .await;
    let call = body(
        "Rating",
        json!("Active"),
        &server.config().record_ids()[..1],
    );
    let mut remaining = Vec::new();
    let mut last = Value::Null;
    for _ in 0..5 {
        let response = send(&server, "Leads", &call, TOKEN).await.expect("answer");
        let header = response
            .headers()
            .get("x-api-credits-remaining")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        remaining.push((response.status().as_u16(), header));
        last = response.json().await.expect("JSON");
    }
    let some = |s: &str| Some(s.to_string());
    // The header appears once half the credits are used; a call refused for want of credits
    // says 0 left.
    assert_eq!(
        remaining,
        [
            (200, None),
            (200, some("2")),
            (200, some("1")),
            (200, some("0")),
            (429, some("0"))
        ]
    );
    assert_eq!(last["code"], "TOO_MANY_REQUESTS");
    assert_eq!(server.ledger().credits_remaining, Some(0));
    server.shutdown().await;
}

#[tokio::test]
async fn faults_fail_drop_or_garble_and_apply_only_after() {
    let ids: Vec<String> = MockConfig::default().record_ids()[..2].to_vec();
    let call = body("Rating", json!("Active"), &ids);

    let server = start(MockConfig {
        fail_500_rate: 1.0,
        ..MockConfig::default()
    })
    .await;
    let (status, answer) = update(&server, "Leads", &call).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (500, Some("INTERNAL_ERROR"))
    );
    assert_eq!(server.ledger().applied[&ids[0]], 0);
    server.shutdown().await;

    let server = start(MockConfig {
        garbage_rate: 1.0,
        ..MockConfig::default()
    })
    .await;
    let response = send(&server, "Leads", &call, TOKEN).await.expect("answer");
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.expect("body");
    assert!(serde_json::from_str::<Value>(&text).is_err());
    let ledger = server.ledger();
    assert_eq!((ledger.applied[&ids[0]], ledger.by_code["GARBAGE"]), (0, 1));
    server.shutdown().await;

    let server = start(MockConfig {
        drop_before_rate: 1.0,
        ..MockConfig::default()
    })
    .await;
    let error = send(&server, "Leads", &call, TOKEN)
        .await
        .expect_err("no response");
    assert!(!error.is_timeout(), "closed, not stalled: {error}");
    let ledger = server.ledger();
    assert_eq!(
        (ledger.applied[&ids[0]], ledger.by_code["DROPPED_BEFORE"]),
        (0, 1)
    );
    server.shutdown().await;

    // At the socket: the request goes out whole and the connection ends with no byte back.
    let server = start(MockConfig {
        drop_before_rate: 1.0,
        ..MockConfig::default()
    })
    .await;
    let payload = serde_json::to_string(&call).expect("body");
    let raw = format!(
        "POST /crm/v2/Leads/actions/mass_update HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    );
    let mut stream = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connects");
    stream
        .write_all(raw.as_bytes())
        .await
        .expect("request written");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("closed promptly");
    assert!(read.is_err() || answer.is_empty(), "got {answer:?}");
    assert_eq!(server.ledger().by_code["DROPPED_BEFORE"], 1);
    server.shutdown().await;

    let server = start(MockConfig {
        drop_after_rate: 1.0,
        ..MockConfig::default()
    })
    .await;
    send(&server, "Leads", &call, TOKEN)
        .await
        .expect_err("no response");
    let ledger = server.ledger();
    assert_eq!(
        (ledger.applied[&ids[0]], ledger.by_code["DROPPED_AFTER"]),
        (1, 1)
    );
    assert_eq!(ledger.records[&ids[1]]["Rating"], "Active");
    assert!(
        !ledger.by_code.contains_key("SUCCESS"),
        "no response carried the entries"
    );
    server.shutdown().await;

    let server = start(MockConfig {
        latency_mean: Duration::from_millis(120),
        latency_spread: Duration::from_millis(20),
        ..MockConfig::default()
    })
    .await;
    let started = Instant::now();
    assert_eq!(update(&server, "Leads", &call).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(100));
    server.shutdown().await;
}

/// Sends `n` calls one after another and lists what came back, faults included.
async fn outcomes(server: &MockServer, n: usize) -> Vec<String> {
    let call = body(
        "Rating",
        json!("Active"),
        &server.config().record_ids()[..1],
    );
    let mut seen = Vec::new();
    for _ in 0..n {
        seen.push(match send(server, "Leads", &call, TOKEN).await {
            Err(_) => "dropped".to_string(),
            Ok(r) => {
                let status = r.status().as_u16();
                match r.json::<Value>().await {
                    Ok(_) => status.to_string(),
                    Err(_) => format!("{status} garbage"),
                }
            }
        });
    }
    seen
}

#[tokio::test]
async fn a_seed_fixes_ids_states_and_the_fault_sequence() {
    let config = |seed| MockConfig {
        seed,
        records: 200,
        locked_fraction: 0.2,
        not_approved_fraction: 0.2,
        fail_500_rate: 0.2,
        drop_before_rate: 0.1,
        drop_after_rate: 0.1,
        garbage_rate: 0.1,
        ..MockConfig::default()
    };
    let a = start(config(42)).await;
    let b = start(config(42)).await;
    let c = start(config(43)).await;
    assert_eq!(a.config().record_ids(), b.config().record_ids());
    assert_ne!(a.config().record_ids(), c.config().record_ids());
    let (la, lb, lc) = (a.ledger(), b.ledger(), c.ledger());
    assert_eq!(
        (&la.locked, &la.not_approved),
        (&lb.locked, &lb.not_approved)
    );
    assert_ne!(la.locked, lc.locked);
    let (sa, sb) = (outcomes(&a, 30).await, outcomes(&b, 30).await);
    assert_eq!(sa, sb);
    for kind in ["dropped", "500", "200 garbage"] {
        assert!(
            sa.iter().any(|s| s == kind),
            "{kind} never happened in {sa:?}"
        );
    }
    for server in [a, b, c] {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn the_ledger_endpoint_and_field_metadata() {
    let server = start(MockConfig {
        records: 10,
        ..MockConfig::default()
    })
    .await;
    let ids = server.config().record_ids();
    update(
        &server,
        "Leads",
        &body("No_of_Employees", json!(42), &ids[..4]),
    )
    .await;
    update(
        &server,
        "Leads",
        &body("Annual_Revenue", json!(1.5), &ids[2..6]),
    )
    .await;
    let ledger: Ledger = client()
        .get(format!("{}/__mock/ledger", server.url()))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("ledger JSON");
    assert_eq!(ledger, server.ledger());
    assert_eq!(ledger.requests, 2);
    assert_eq!(ledger.by_code["SUCCESS"], 8);
    assert_eq!(ledger.records.len(), 10);
    assert_eq!(ledger.records[&ids[3]]["No_of_Employees"], 42);
    assert_eq!(ledger.records[&ids[3]]["Annual_Revenue"], 1.5);
    assert!(ledger.records[&ids[9]].is_empty());
    let applied: Vec<u64> = ids.iter().map(|id| ledger.applied[id]).collect();
    assert_eq!(applied, [1, 1, 2, 2, 1, 1, 0, 0, 0, 0]);
    assert_eq!(ledger.max_concurrency_seen, 1);
    // Counted without a credit limit too: one credit a mass_update.
    assert_eq!(
        (ledger.credits_charged, ledger.credits_remaining),
        (2, None)
    );

    let get = |path: String, auth: bool| {
        let request = client().get(format!("{}{path}", server.url()));
        let request = if auth {
            request.bearer_auth(TOKEN)
        } else {
            request
        };
        async move {
            let r = request.send().await.expect("answer");
            (r.status().as_u16(), r.json::<Value>().await.expect("JSON"))
        }
    };
    let (status, fields) = get("/crm/v2/settings/fields?module=Leads".into(), true).await;
    assert_eq!(status, 200);
    let by_name: HashMap<&str, &Value> = fields["fields"]
        .as_array()
        .expect("fields array")
        .iter()
        .map(|f| (f["api_name"].as_str().unwrap_or(""), f))
        .collect();
    assert_eq!(by_name["Email"]["mass_update"], false);
    assert_eq!(by_name["Tags_Multi"]["json_type"], "jsonarray");
    assert_eq!(by_name["Lead_Number"]["read_only"], true);
    assert!(by_name["Lead_Status"]["pick_list_values"][1]["actual_value"].is_string());
    let (status, deals) = get("/crm/v8/settings/fields?module=Deals".into(), true).await;
    assert_eq!(status, 200);
    assert!(deals["fields"]
        .as_array()
        .expect("array")
        .iter()
        .any(|f| f["api_name"] == "Stage"));
    let (status, unknown) = get("/crm/v2/settings/fields?module=Nope".into(), true).await;
    assert_eq!(
        (status, unknown["code"].as_str()),
        (400, Some("INVALID_MODULE"))
    );
    let (status, anonymous) = get("/crm/v2/settings/fields?module=Leads".into(), false).await;
    assert_eq!(
        (status, anonymous["code"].as_str()),
        (401, Some("AUTHENTICATION_FAILURE"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn run_cli_serves_until_shutdown() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: MockServerArgs,
    }
    let cli = Cli::try_parse_from(["mock", "--records", "5", "--seed-fixtures"]).expect("flags");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(massup::mock::run_cli(cli.args, async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = stop.send(());
    run.await.expect("task joins").expect("run_cli succeeds");
}
