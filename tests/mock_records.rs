//! The mock's record APIs beyond mass_update, over real HTTP: Update Records
//! (`PUT /crm/{v}/{Module}`), Get Records (`GET /crm/{v}/{Module}?ids=`) and COQL
//! (`POST /crm/{v}/coql`): their shapes, limits, per-record codes, gates, the records' memory
//! shared with mass_update, generated emails, and the same faults and limits as mass_update.

use massup::mock::{MockConfig, MockServer};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};

const TOKEN: &str = "mock-token";

async fn start(config: MockConfig) -> MockServer {
    MockServer::start(config).await.expect("mock starts")
}

fn client() -> reqwest::Client {
    massup::api::install_crypto_provider();
    reqwest::Client::new()
}

/// Status and parsed body (None for an empty one, as a 204 has).
async fn parts(response: reqwest::Response) -> (u16, Option<Value>) {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    if bytes.is_empty() {
        return (status, None);
    }
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{status}: not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, Some(body))
}

async fn try_put(
    server: &MockServer,
    path: &str,
    body: &Value,
) -> reqwest::Result<reqwest::Response> {
    client()
        .put(format!("{}/crm/{path}", server.url()))
        .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
        .json(body)
        .send()
        .await
}

/// Update Records: `path` is `v2/Leads` or `v2/Leads/{id}`.
async fn put(server: &MockServer, path: &str, body: &Value) -> (u16, Value) {
    let (status, body) = parts(try_put(server, path, body).await.expect("mock answers")).await;
    (status, body.expect("a body"))
}

async fn try_get(server: &MockServer, path: &str) -> reqwest::Result<reqwest::Response> {
    client()
        .get(format!("{}/crm/{path}", server.url()))
        .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
        .send()
        .await
}

/// Get Records: `path` is `v2/Leads?ids=...&fields=...` or the like.
async fn get(server: &MockServer, path: &str) -> (u16, Option<Value>) {
    parts(try_get(server, path).await.expect("mock answers")).await
}

async fn try_coql(
    server: &MockServer,
    version: &str,
    query: &str,
) -> reqwest::Result<reqwest::Response> {
    client()
        .post(format!("{}/crm/{version}/coql", server.url()))
        .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
        .json(&json!({ "select_query": query }))
        .send()
        .await
}

async fn coql(server: &MockServer, version: &str, query: &str) -> (u16, Option<Value>) {
    parts(
        try_coql(server, version, query)
            .await
            .expect("mock answers"),
    )
    .await
}

async fn mass_update(server: &MockServer, field: &str, value: Value, ids: &[String]) -> u16 {
    client()
        .post(format!("{}/crm/v2/Leads/actions/mass_update", server.url()))
        .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
        .json(&json!({"data": [{ field: value }], "over_write": false, "ids": ids}))
        .send()
        .await
        .expect("mock answers")
        .status()
        .as_u16()
}

fn codes(body: &Value) -> Vec<&str> {
    body["data"]
        .as_array()
        .expect("a data array")
        .iter()
        .map(|e| e["code"].as_str().unwrap_or(""))
        .collect()
}

/// `select id, Email from Leads where Email in (...)` over the given values (200 rows at
/// most, v2's limit).
fn email_query(emails: &[&str]) -> String {
    let list: Vec<String> = emails.iter().map(|e| format!("'{e}'")).collect();
    format!(
        "select id, Email from Leads where Email in ({}) limit 200",
        list.join(", ")
    )
}

/// The ids of a read's rows, in order.
fn row_ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_str().expect("an id").to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Update Records

#[tokio::test]
async fn update_records_answers_each_record_in_request_order() {
    let server = start(MockConfig::default()).await;
    let ids = server.config().record_ids();
    let number: u64 = ids[3].parse().expect("digits");
    let body = json!({"data": [
        // Email, multi-line text and an owner given by a numeric id: none mass-updatable.
        {"id": ids[2], "Email": "new.address@example.org", "Description": "line one\nline two",
         "Owner": {"id": 738964000000291023u64}},
        {"id": number, "City": "Lyon"},
        {"id": "111", "City": "Paris"},
        {"City": "Nowhere"},
        {"id": ids[4], "Created_Time": "2024-01-01T00:00:00+00:00"},
        {"id": ids[5], "Shoe_Size": 43},
        {"id": ids[6], "No_of_Employees": "many"},
        {"id": ids[7], "Email": "not an address"},
        {"id": ids[8], "First_Name": "x".repeat(41)},
    ]});
    let (status, answer) = put(&server, "v2/Leads", &body).await;
    assert_eq!(status, 207, "{answer}");
    assert_eq!(
        codes(&answer),
        [
            "SUCCESS",
            "SUCCESS",
            "INVALID_DATA",
            "MANDATORY_NOT_FOUND",
            "INVALID_DATA",
            "INVALID_DATA",
            "INVALID_DATA",
            "INVALID_DATA",
            "INVALID_DATA"
        ]
    );
    let data = answer["data"].as_array().expect("entries");
    let ok = &data[0];
    assert_eq!(ok["message"], "record updated");
    assert_eq!(ok["status"], "success");
    let details = ok["details"].as_object().expect("details");
    for key in [
        "id",
        "Modified_Time",
        "Modified_By",
        "Created_Time",
        "Created_By",
    ] {
        assert!(details.contains_key(key), "{key} missing: {ok}");
    }
    assert_eq!(ok["details"]["id"], json!(ids[2]));
    assert_eq!(ok["details"]["Modified_By"]["name"], "Patricia Boyle");
    // A numeric id is answered as a string.
    assert_eq!(data[1]["details"]["id"], json!(ids[3]));
    assert_eq!(data[2]["message"], "the id given seems to be invalid");
    assert_eq!(data[2]["details"], json!({"id": "111"}));
    assert_eq!(data[3]["details"], json!({"api_name": "id"}));
    assert!(data[3]["details"].get("id").is_none());
    assert_eq!(
        data[4]["details"],
        json!({"api_name": "Created_Time", "id": ids[4]})
    );
    assert_eq!(
        data[5]["details"],
        json!({"api_name": "Shoe_Size", "id": ids[5]})
    );
    assert_eq!(
        data[5]["message"],
        "the field api name given seems to be invalid"
    );
    assert_eq!(
        data[6]["details"],
        json!({"api_name": "No_of_Employees", "id": ids[6], "expected_data_type": "integer"})
    );
    assert_eq!(data[7]["details"]["expected_data_type"], "email");
    assert_eq!(data[8]["details"]["maximum_length"], 40);
    for refused in &data[2..] {
        assert_eq!(refused["status"], "error");
    }

    let ledger = server.ledger();
    assert_eq!(ledger.update_requests, 1);
    assert_eq!(ledger.update_by_code["SUCCESS"], 2);
    assert_eq!(ledger.update_by_code["INVALID_DATA"], 6);
    assert_eq!(ledger.update_by_code["MANDATORY_NOT_FOUND"], 1);
    assert_eq!(
        (ledger.requests, ledger.by_code.len()),
        (0, 0),
        "mass_update untouched"
    );
    assert_eq!(ledger.applied[&ids[2]], 1);
    assert_eq!(ledger.applied[&ids[3]], 1);
    assert_eq!(
        ledger.applied[&ids[4]], 0,
        "a refused record is not applied"
    );
    let record = &ledger.records[&ids[2]];
    assert_eq!(record["Email"], "new.address@example.org");
    assert_eq!(record["Description"], "line one\nline two");
    assert_eq!(
        record["Owner"],
        json!({"name": "Daniel Ortiz", "id": "738964000000291023"})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn update_records_status_is_200_all_ok_400_none_ok() {
    let server = start(MockConfig::default()).await;
    let ids = server.config().record_ids();
    let (status, ok) = put(
        &server,
        "v8/Leads",
        &json!({"data": [{"id": ids[0], "City": "A"}, {"id": ids[1], "City": "B"}]}),
    )
    .await;
    assert_eq!((status, codes(&ok)), (200, vec!["SUCCESS"; 2]));
    let (status, none) = put(
        &server,
        "v8/Leads",
        &json!({"data": [{"id": "1", "City": "A"}, {"id": ids[1], "Lead_Number": "9"}]}),
    )
    .await;
    assert_eq!((status, codes(&none)), (400, vec!["INVALID_DATA"; 2]));
    server.shutdown().await;
}

#[tokio::test]
async fn update_records_takes_at_most_100_records() {
    let server = start(MockConfig::default()).await;
    let ids = server.config().record_ids();
    let records = |n: usize| -> Value {
        let data: Vec<Value> = ids[..n]
            .iter()
            .map(|id| json!({"id": id, "City": "Rome"}))
            .collect();
        json!({ "data": data })
    };
    let (status, hundred) = put(&server, "v2/Leads", &records(100)).await;
    assert_eq!(status, 200);
    assert_eq!(codes(&hundred).len(), 100);
    let (status, over) = put(&server, "v2/Leads", &records(101)).await;
    assert_eq!(status, 400);
    assert_eq!(
        over,
        json!({"data": [{
            "code": "LIMIT_EXCEEDED",
            "details": {"maximum_length": 100, "api_name": "data"},
            "message": "count of records in your request exceeds the limit",
            "status": "error",
        }]})
    );
    let ledger = server.ledger();
    assert!(
        ledger.applied[&ids[0]] == 1,
        "only the 100-record call applied"
    );
    assert_eq!(ledger.update_by_code["LIMIT_EXCEEDED"], 1);
    // A body without records is refused as a whole.
    let (status, empty) = put(&server, "v2/Leads", &json!({"data": []})).await;
    assert_eq!(status, 400);
    assert_eq!(empty["code"], "MANDATORY_NOT_FOUND");
    assert_eq!(empty["details"], json!({"api_name": "data"}));
    server.shutdown().await;
}

#[tokio::test]
async fn lookups_must_name_a_record_and_ids_may_be_numbers() {
    let server = start(MockConfig::default()).await;
    let ids = server.config().record_ids();
    let account: u64 = ids[10].parse().expect("digits");
    let (status, answer) = put(
        &server,
        "v2/Contacts",
        &json!({"data": [
            {"id": ids[0], "Account_Name": {"id": account}, "Reports_To": {"id": ids[11]}},
            {"id": ids[1], "Account_Name": {"id": "5"}},
            {"id": ids[2], "Account_Name": "Zylker"},
        ]}),
    )
    .await;
    assert_eq!(status, 207, "{answer}");
    assert_eq!(codes(&answer), ["SUCCESS", "INVALID_DATA", "INVALID_DATA"]);
    assert_eq!(
        answer["data"][1]["details"],
        json!({"api_name": "Account_Name", "id": ids[1]})
    );
    assert_eq!(answer["data"][2]["details"]["expected_data_type"], "lookup");
    let ledger = server.ledger();
    assert_eq!(
        ledger.records[&ids[0]]["Account_Name"],
        json!({"id": ids[10]})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn locked_and_not_approved_records_pass_after_their_refusals() {
    let server = start(MockConfig {
        records: 10,
        locked_fraction: 1.0,
        unlock_after: 2,
        ..MockConfig::default()
    })
    .await;
    let ids = server.config().record_ids();
    let body = json!({"data": [{"id": ids[0], "City": "Oslo"}]});
    for _ in 0..2 {
        let (status, answer) = put(&server, "v2/Leads", &body).await;
        assert_eq!(status, 400, "a call whose every record is locked failed");
        assert_eq!(
            answer["data"][0],
            json!({
                "code": "RECORD_LOCKED",
                "details": {"api_name": "id", "action": "record_locking", "id": ids[0]},
                "message": "Sorry, you cannot perform this operation as the record is locked.",
                "status": "error",
            })
        );
    }
    let (status, answer) = put(&server, "v2/Leads", &body).await;
    assert_eq!((status, codes(&answer)), (200, vec!["SUCCESS"]));
    // Refusals of Update Records and mass_update count against the same gate.
    assert_eq!(
        mass_update(&server, "Rating", json!("Hot"), &ids[1..2]).await,
        200
    );
    let (_, answer) = put(
        &server,
        "v2/Leads",
        &json!({"data": [{"id": ids[1], "City": "Oslo"}]}),
    )
    .await;
    assert_eq!(codes(&answer), ["RECORD_LOCKED"]);
    assert_eq!(
        mass_update(&server, "Rating", json!("Hot"), &ids[1..2]).await,
        200
    );
    let ledger = server.ledger();
    assert_eq!(ledger.applied[&ids[0]], 1);
    assert_eq!(ledger.applied[&ids[1]], 1);
    assert_eq!(ledger.update_by_code["RECORD_LOCKED"], 3);
    server.shutdown().await;

    let server = start(MockConfig {
        records: 10,
        not_approved_fraction: 1.0,
        approve_after: 1,
        ..MockConfig::default()
    })
    .await;
    let ids = server.config().record_ids();
    let body = json!({"data": [{"id": ids[0], "City": "Oslo"}, {"id": ids[1], "City": "Oslo"}]});
    let (status, answer) = put(&server, "v2/Leads", &body).await;
    assert_eq!(status, 400);
    assert_eq!(codes(&answer), ["NOT_APPROVED"; 2]);
    assert_eq!(answer["data"][0]["details"], json!({"id": ids[0]}));
    let (status, answer) = put(&server, "v2/Leads", &body).await;
    assert_eq!((status, codes(&answer)), (200, vec!["SUCCESS"; 2]));
    server.shutdown().await;
}

#[tokio::test]
async fn the_ledger_records_each_calls_trigger() {
    let server = start(MockConfig::default()).await;
    let ids = server.config().record_ids();
    let data = json!([{"id": ids[0], "City": "Bern"}]);
    for body in [
        json!({"data": data, "trigger": []}),
        json!({"data": data, "trigger": ["workflow", "approval"]}),
        json!({ "data": data }),
    ] {
        let (status, _) = put(&server, "v2/Leads", &body).await;
        assert_eq!(status, 200);
    }
    let (status, refused) = put(
        &server,
        "v2/Leads",
        &json!({"data": data, "trigger": ["everything"]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(refused["code"], "INVALID_DATA");
    assert_eq!(refused["details"]["api_name"], "trigger");
    let ledger = server.ledger();
    assert_eq!(
        ledger.update_triggers,
        vec![
            Some(vec![]),
            Some(vec!["workflow".to_string(), "approval".to_string()]),
            None
        ]
    );
    assert_eq!(ledger.applied[&ids[0]], 3);
    server.shutdown().await;
}

#[tokio::test]
async fn multi_select_is_replaced_unless_append_values_asks_from_v3() {
    let server = start(MockConfig::default()).await;
    let ids = server.config().record_ids();
    let tags = |body: &Value| body["data"][0]["Tags_Multi"].clone();
    let read = |id: &str| format!("v2/Leads?ids={id}&fields=Tags_Multi");
    // mass_update with over_write false appends...
    assert_eq!(
        mass_update(&server, "Tags_Multi", json!(["a"]), &ids[..1]).await,
        200
    );
    assert_eq!(
        mass_update(&server, "Tags_Multi", json!(["b"]), &ids[..1]).await,
        200
    );
    assert_eq!(
        tags(&get(&server, &read(&ids[0])).await.1.expect("rows")),
        json!(["a", "b"])
    );
    // ...Update Records replaces.
    let (status, _) = put(
        &server,
        "v2/Leads",
        &json!({"data": [{"id": ids[0], "Tags_Multi": ["c"]}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        tags(&get(&server, &read(&ids[0])).await.1.expect("rows")),
        json!(["c"])
    );
    // $append_values appends from v3 on...
    let append = json!({"data": [{"id": ids[0], "Tags_Multi": ["d", "c"], "$append_values": {"Tags_Multi": true}}]});
    let (status, _) = put(&server, "v3/Leads", &append).await;
    assert_eq!(status, 200);
    assert_eq!(
        tags(&get(&server, &read(&ids[0])).await.1.expect("rows")),
        json!(["c", "d"])
    );
    // ...and is not read by v2, which replaces.
    let (status, _) = put(&server, "v2/Leads", &append).await;
    assert_eq!(status, 200);
    assert_eq!(
        tags(&get(&server, &read(&ids[0])).await.1.expect("rows")),
        json!(["d", "c"])
    );
    // Only multi-select fields can be appended to.
    let (status, answer) = put(
        &server,
        "v8/Leads",
        &json!({"data": [{"id": ids[0], "City": "x", "$append_values": {"City": true}}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(answer["data"][0]["details"]["api_name"], "$append_values");
    server.shutdown().await;
}

#[tokio::test]
async fn a_unique_field_refuses_a_value_another_record_holds() {
    let config = MockConfig {
        records: 20,
        mixed_case_emails: 1.0,
        unique_fields: vec![("Leads".to_string(), "Email".to_string())],
        ..MockConfig::default()
    };
    let ids = config.record_ids();
    let emails = config.record_emails();
    let server = start(config).await;
    // Record 5 takes record 3's generated address, in other case: a duplicate.
    let (status, answer) = put(
        &server,
        "v2/Leads",
        &json!({"data": [
            {"id": ids[5], "Email": emails[3].to_lowercase()},
            {"id": ids[6], "Email": "fresh@example.org"},
            {"id": ids[7], "Email": "FRESH@example.org"},
            {"id": ids[3], "Email": emails[3]},
        ]}),
    )
    .await;
    assert_eq!(status, 207, "{answer}");
    assert_eq!(
        codes(&answer),
        ["DUPLICATE_DATA", "SUCCESS", "DUPLICATE_DATA", "SUCCESS"]
    );
    let duplicate = &answer["data"][0];
    assert_eq!(duplicate["message"], "duplicate data");
    assert_eq!(duplicate["details"]["api_name"], "Email");
    // As in Zoho's example, details.id names the record that holds the value already.
    assert_eq!(duplicate["details"]["id"], json!(ids[3]));
    assert_eq!(
        duplicate["details"]["duplicate_record"]["id"],
        json!(ids[3])
    );
    // A record written earlier in the same call counts.
    assert_eq!(answer["data"][2]["details"]["id"], json!(ids[6]));
    // Not unique elsewhere: Contacts' Email takes any value.
    let (status, _) = put(
        &server,
        "v2/Contacts",
        &json!({"data": [{"id": ids[8], "Email": emails[3]}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(server.ledger().applied[&ids[5]], 0);
    server.shutdown().await;
}

#[tokio::test]
async fn one_record_paths_update_and_read_it() {
    let server = start(MockConfig::default()).await;
    let ids = server.config().record_ids();
    let (status, answer) = put(
        &server,
        &format!("v2/Leads/{}", ids[9]),
        &json!({"data": [{"City": "Turin"}], "trigger": []}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"][0]["details"]["id"], json!(ids[9]));
    let (status, body) = get(&server, &format!("v2/Leads/{}?fields=City,Email", ids[9])).await;
    assert_eq!(status, 200);
    let body = body.expect("a record");
    assert_eq!(body["data"][0]["City"], "Turin");
    assert_eq!(body["data"][0]["id"], json!(ids[9]));
    assert_eq!(server.ledger().update_triggers, vec![Some(vec![])]);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Get Records

#[tokio::test]
async fn get_records_reads_back_what_mass_update_and_update_records_wrote() {
    let config = MockConfig::default();
    let emails = config.record_emails();
    let server = start(config).await;
    let ids = server.config().record_ids();
    assert_eq!(
        mass_update(&server, "Rating", json!("Hot"), &ids[..3]).await,
        200
    );
    let (status, _) = put(
        &server,
        "v2/Leads",
        &json!({"data": [{"id": ids[1], "Email": "one@example.org", "No_of_Employees": 12}]}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = get(
        &server,
        &format!(
            "v2/Leads?ids={},{},{},{},999&fields=Rating,Email,No_of_Employees,City",
            ids[2], ids[1], ids[0], ids[1]
        ),
    )
    .await;
    assert_eq!(status, 200);
    let body = body.expect("rows");
    // Request order, each record once, unknown ids left out.
    assert_eq!(
        row_ids(&body),
        [ids[2].clone(), ids[1].clone(), ids[0].clone()]
    );
    assert_eq!(
        body["data"][1],
        json!({"id": ids[1], "Rating": "Hot", "Email": "one@example.org", "No_of_Employees": 12, "City": null})
    );
    // A field nobody wrote reads as the record was created: its generated email, or null.
    assert_eq!(body["data"][0]["Email"], json!(emails[2]));
    assert_eq!(body["data"][0]["No_of_Employees"], Value::Null);
    assert_eq!(
        body["info"],
        json!({"per_page": 200, "count": 3, "page": 1, "more_records": false})
    );
    // Nothing matches: 204 with no body.
    let response = try_get(&server, "v2/Leads?ids=5,6&fields=Email")
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 204);
    assert!(response.headers().get("content-type").is_none());
    assert!(response.bytes().await.expect("body").is_empty());
    let ledger = server.ledger();
    assert_eq!(ledger.get_records_requests, 2);
    assert_eq!(ledger.get_records_by_code["SUCCESS"], 1);
    assert_eq!(ledger.get_records_by_code["NO_CONTENT"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn get_records_limits_ids_and_fields() {
    let server = start(MockConfig::default()).await;
    let ids = server.config().record_ids();
    let (status, body) = get(
        &server,
        &format!("v2/Leads?ids={}&fields=Email", ids[..100].join(",")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body.expect("rows")["info"]["count"], 100);
    let (status, body) = get(
        &server,
        &format!("v2/Leads?ids={}&fields=Email", ids[..101].join(",")),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body.expect("error"),
        json!({"code": "LIMIT_EXCEEDED", "details": {"limit": 100, "param_name": "ids"},
               "message": "limit exceeded", "status": "error"})
    );
    let fields = vec!["Email"; 51].join(",");
    let (status, body) = get(&server, &format!("v2/Leads?ids={}&fields={fields}", ids[0])).await;
    assert_eq!(status, 400);
    assert_eq!(
        body.expect("error")["details"],
        json!({"limit": 50, "param_name": "fields"})
    );
    let (status, body) = get(&server, &format!("v2/Leads?ids={}&fields=Nope", ids[0])).await;
    assert_eq!(status, 400);
    assert_eq!(body.expect("error")["details"]["param_name"], "fields");
    let (status, body) = get(&server, "v2/Leads?ids=12a").await;
    assert_eq!(status, 400);
    assert_eq!(body.expect("error")["details"]["param_name"], "ids");
    let (status, body) = get(&server, &format!("v2/Nowhere?ids={}", ids[0])).await;
    assert_eq!(status, 400);
    assert_eq!(body.expect("error")["code"], "INVALID_MODULE");
    // Without fields every field of the module comes back.
    let (status, body) = get(&server, &format!("v2/Leads?ids={}", ids[0])).await;
    assert_eq!(status, 200);
    let row = &body.expect("rows")["data"][0];
    for field in ["Email", "Tags_Multi", "Created_Time", "Lead_Number"] {
        assert!(row.get(field).is_some(), "{field} missing: {row}");
    }
    // Without ids, a page of records.
    let (status, body) = get(&server, "v2/Leads?fields=Email&per_page=10&page=2").await;
    assert_eq!(status, 200);
    let body = body.expect("rows");
    assert_eq!(row_ids(&body), ids[10..20].to_vec());
    assert_eq!(body["info"]["more_records"], true);
    server.shutdown().await;
}

#[tokio::test]
async fn listing_pages_by_number_to_2000_records_then_only_by_page_token() {
    let config = MockConfig {
        records: 2_450,
        ..MockConfig::default()
    };
    let mut ids = config.record_ids();
    ids.sort_by_key(|id| id.parse::<u64>().expect("digits"));
    let server = start(config).await;
    // Page 10 of 200 is the last a page number reaches; 11 is Zoho's error.
    let (status, body) = get(&server, "v8/Leads?fields=Email&per_page=200&page=10").await;
    assert_eq!(status, 200);
    let body = body.expect("rows");
    assert_eq!(row_ids(&body), ids[1_800..2_000].to_vec());
    assert_eq!(body["info"]["count"], 200);
    assert_eq!(body["info"]["more_records"], true);
    let token = body["info"]["next_page_token"]
        .as_str()
        .expect("a token from v2.1")
        .to_string();
    let (status, body) = get(&server, "v8/Leads?fields=Email&per_page=200&page=11").await;
    assert_eq!(status, 400);
    assert_eq!(
        body.expect("error")["code"],
        "DISCRETE_PAGINATION_LIMIT_EXCEEDED"
    );
    // The token goes on, to the end.
    let mut seen = ids[..2_000].to_vec();
    let mut token = Some(token);
    while let Some(t) = token {
        let (status, body) = get(
            &server,
            &format!("v8/Leads?fields=Email&per_page=200&page_token={t}"),
        )
        .await;
        assert_eq!(status, 200);
        let body = body.expect("rows");
        seen.extend(row_ids(&body));
        token = body["info"]["next_page_token"].as_str().map(str::to_string);
        assert_eq!(body["info"]["more_records"], token.is_some());
    }
    assert_eq!(seen, ids);
    // v2 names no token; a listing is priced as any read, a credit a call.
    let (_, body) = get(&server, "v2/Leads?fields=Email&per_page=5").await;
    assert!(body.expect("rows")["info"].get("next_page_token").is_none());
    assert_eq!(
        server.ledger().credits_charged,
        server.ledger().get_records_requests
    );
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// COQL

#[tokio::test]
async fn coql_finds_emails_whatever_their_case_and_reports_duplicates() {
    let config = MockConfig {
        records: 50,
        duplicate_emails: 3,
        mixed_case_emails: 0.5,
        ..MockConfig::default()
    };
    let ids = config.record_ids();
    let emails = config.record_emails();
    assert!(
        emails
            .iter()
            .any(|e| e.chars().any(|c| c.is_ascii_uppercase())),
        "some emails are stored in mixed case"
    );
    let server = start(config).await;
    // Looked up in lower case, a key stored in any case is found; the duplicated address of
    // record 2 (shared with record 49) comes back twice; an unknown key not at all.
    let wanted: Vec<String> = [10, 11, 12, 2]
        .iter()
        .map(|i| emails[*i].to_lowercase())
        .collect();
    let mut asked: Vec<&str> = wanted.iter().map(String::as_str).collect();
    asked.push("nobody@example.com");
    let (status, body) = coql(&server, "v2", &email_query(&asked)).await;
    assert_eq!(status, 200);
    let body = body.expect("rows");
    // Rows in ascending id order.
    assert_eq!(
        row_ids(&body),
        [
            ids[2].clone(),
            ids[10].clone(),
            ids[11].clone(),
            ids[12].clone(),
            ids[49].clone()
        ]
    );
    assert_eq!(body["data"][0]["Email"], json!(emails[2]));
    assert_eq!(body["data"][4]["Email"], json!(emails[49]));
    assert!(emails[49].eq_ignore_ascii_case(&emails[2]));
    assert_eq!(body["info"], json!({"count": 5, "more_records": false}));
    // `=` and upper case.
    let (status, body) = coql(
        &server,
        "v2",
        &format!(
            "SELECT Email FROM Leads WHERE Email = '{}'",
            emails[20].to_uppercase()
        ),
    )
    .await;
    assert_eq!(status, 200);
    let body = body.expect("a row");
    assert_eq!(body["data"], json!([{"Email": emails[20], "id": ids[20]}]));
    // No match: 204.
    let (status, body) = coql(&server, "v2", &email_query(&["nobody@example.com"])).await;
    assert_eq!((status, body), (204, None));
    let ledger = server.ledger();
    assert_eq!(ledger.coql_requests, 3);
    assert_eq!(ledger.coql_by_code["SUCCESS"], 2);
    assert_eq!(ledger.coql_by_code["NO_CONTENT"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn coql_reads_the_values_updates_wrote() {
    let server = start(MockConfig::default()).await;
    let ids = server.config().record_ids();
    let (status, _) = put(
        &server,
        "v2/Leads",
        &json!({"data": [{"id": ids[4], "Email": "Moved@Example.org"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        mass_update(&server, "City", json!("Graz"), &ids[4..6]).await,
        200
    );
    let (status, body) = coql(
        &server,
        "v8",
        "select Email, City from Leads where (Email = 'moved@example.org' or City in ('graz')) limit 10",
    )
    .await;
    assert_eq!(status, 200);
    let body = body.expect("rows");
    assert_eq!(
        body["data"],
        json!([
            {"Email": "Moved@Example.org", "City": "Graz", "id": ids[4]},
            {"Email": server.config().record_emails()[5], "City": "Graz", "id": ids[5]},
        ])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn coql_takes_at_most_50_values_in_an_in() {
    let server = start(MockConfig::default()).await;
    let emails = server.config().record_emails();
    let fifty: Vec<&str> = emails[..50].iter().map(String::as_str).collect();
    let (status, body) = coql(&server, "v2", &email_query(&fifty)).await;
    assert_eq!(status, 200);
    assert_eq!(body.expect("rows")["info"]["count"], 50);
    let fifty_one: Vec<&str> = emails[..51].iter().map(String::as_str).collect();
    let (status, body) = coql(&server, "v2", &email_query(&fifty_one)).await;
    assert_eq!(status, 400);
    let body = body.expect("error");
    assert_eq!(body["code"], "LIMIT_EXCEEDED");
    assert_eq!(body["status"], "error");
    assert_eq!(
        body["details"],
        json!({"column_name": "Email", "operator": "in", "limit": 50})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn coql_rows_per_call_follow_the_version() {
    let server = start(MockConfig {
        records: 2_100,
        daily_credits: Some(1_000),
        ..MockConfig::default()
    })
    .await;
    let ids = server.config().record_ids();
    let query = |limit: &str| format!("select id from Leads where Email is not null limit {limit}");
    // v4 and later: 2,000 rows a call.
    let (status, body) = coql(&server, "v8", &query("2000")).await;
    assert_eq!(status, 200);
    let body = body.expect("rows");
    assert_eq!(body["info"], json!({"count": 2000, "more_records": true}));
    assert_eq!(
        server.ledger().credits_remaining,
        Some(997),
        "LIMIT 2000 costs 3 credits"
    );
    let (status, body) = coql(&server, "v8", &query("2001")).await;
    assert_eq!(status, 400);
    let body = body.expect("error");
    assert_eq!(body["code"], "LIMIT_EXCEEDED");
    assert_eq!(body["details"], json!({"clause": "limit", "limit": 2000}));
    // The next page: offset, limit.
    let (status, body) = coql(&server, "v8", &query("2000, 500")).await;
    assert_eq!(status, 200);
    let body = body.expect("rows");
    assert_eq!(body["info"], json!({"count": 100, "more_records": false}));
    let mut sorted: Vec<u64> = ids.iter().map(|id| id.parse().expect("digits")).collect();
    sorted.sort_unstable();
    assert_eq!(body["data"][0]["id"], json!(sorted[2000].to_string()));
    // v2: 200 rows a call.
    let (status, _) = coql(&server, "v2", &query("200")).await;
    assert_eq!(status, 200);
    let (status, body) = coql(&server, "v2", &query("201")).await;
    assert_eq!(status, 400);
    assert_eq!(body.expect("error")["details"]["limit"], 200);
    // No LIMIT: 200 rows.
    let (status, body) = coql(&server, "v8", "select id from Leads").await;
    assert_eq!(status, 200);
    assert_eq!(body.expect("rows")["info"]["count"], 200);
    // Deeper than paging reaches.
    let (status, body) = coql(&server, "v8", &query("99000, 2000")).await;
    assert_eq!(status, 400);
    assert_eq!(body.expect("error")["details"]["limit"], 100_000);
    server.shutdown().await;
}

#[tokio::test]
async fn coql_errors_take_zohos_shapes() {
    let server = start(MockConfig::default()).await;
    let cases = [
        (
            "update Leads set Email = 'x'",
            "SYNTAX_ERROR",
            json!({"near": "update"}),
        ),
        (
            "select Email from Leads where",
            "SYNTAX_ERROR",
            json!({"clause": "where"}),
        ),
        (
            "select Shoe_Size from Leads",
            "INVALID_QUERY",
            json!({"column_name": "Shoe_Size", "clause": "select"}),
        ),
        (
            "select Email, Email from Leads",
            "DUPLICATE_DATA",
            json!({"column_name": "Email"}),
        ),
        ("select Email from Nowhere", "INVALID_MODULE", json!({})),
        ("select Email from Leads limit 0", "INVALID_DATA", json!({})),
        (
            "select Email from Leads limit s",
            "INVALID_QUERY",
            json!({"limit": "s"}),
        ),
        (
            "select Email from Leads where Description = 'x'",
            "INVALID_QUERY",
            json!({"column_name": "Description", "clause": "where"}),
        ),
        (
            "select Email from Leads where No_of_Employees = 'many'",
            "INVALID_QUERY",
            json!({"column_name": "No_of_Employees", "value": "many", "operator": "="}),
        ),
    ];
    for (query, code, details) in cases {
        let (status, body) = coql(&server, "v2", query).await;
        let body = body.expect("an error");
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["code"], code, "{query}: {body}");
        assert_eq!(body["details"], details, "{query}: {body}");
        assert_eq!(body["status"], "error");
    }
    let response = client()
        .post(format!("{}/crm/v2/coql", server.url()))
        .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
        .json(&json!({"query": "select Email from Leads"}))
        .send()
        .await
        .expect("answer");
    let (status, body) = parts(response).await;
    assert_eq!(status, 400);
    assert_eq!(
        body.expect("error"),
        json!({"code": "MANDATORY_NOT_FOUND", "details": {"api_name": "select_query"},
               "message": "mandatory key not found", "status": "error"})
    );
    let (status, body) = parts(try_get(&server, "v2/coql").await.expect("answer")).await;
    assert_eq!(status, 400);
    assert_eq!(body.expect("error")["code"], "INVALID_REQUEST_METHOD");
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Faults, limits and credits

/// What one call to each new endpoint came to: its status, or `dropped`.
async fn outcomes(server: &MockServer) -> Vec<String> {
    let ids = server.config().record_ids();
    let shown = |r: reqwest::Result<reqwest::Response>| match r {
        Ok(response) => response.status().as_u16().to_string(),
        Err(_) => "dropped".to_string(),
    };
    vec![
        shown(
            try_put(
                server,
                "v2/Leads",
                &json!({"data": [{"id": ids[0], "City": "X"}]}),
            )
            .await,
        ),
        shown(try_get(server, &format!("v2/Leads?ids={}", ids[0])).await),
        shown(try_coql(server, "v2", "select Email from Leads limit 5").await),
    ]
}

#[tokio::test]
async fn the_faults_of_mass_update_apply_to_the_new_endpoints() {
    let fault = |set: fn(&mut MockConfig)| {
        let mut config = MockConfig {
            records: 10,
            ..MockConfig::default()
        };
        set(&mut config);
        config
    };
    // 500s: nothing applied.
    let server = start(fault(|c| c.fail_500_rate = 1.0)).await;
    assert_eq!(outcomes(&server).await, ["500", "500", "500"]);
    let ledger = server.ledger();
    assert!(ledger.applied.values().all(|n| *n == 0));
    assert_eq!(ledger.update_by_code["INTERNAL_ERROR"], 1);
    assert_eq!(ledger.get_records_by_code["INTERNAL_ERROR"], 1);
    assert_eq!(ledger.coql_by_code["INTERNAL_ERROR"], 1);
    server.shutdown().await;

    // Garbage: a 200 that is not JSON.
    let server = start(fault(|c| c.garbage_rate = 1.0)).await;
    let ids = server.config().record_ids();
    let response = try_put(
        &server,
        "v2/Leads",
        &json!({"data": [{"id": ids[0], "City": "X"}]}),
    )
    .await
    .expect("answer");
    assert_eq!(response.status().as_u16(), 200);
    assert!(serde_json::from_slice::<Value>(&response.bytes().await.expect("body")).is_err());
    assert_eq!(outcomes(&server).await, ["200", "200", "200"]);
    assert_eq!(server.ledger().update_by_code["GARBAGE"], 2);
    assert_eq!(server.ledger().applied[&ids[0]], 0);
    server.shutdown().await;

    // Dropped before: no answer, nothing applied.
    let server = start(fault(|c| c.drop_before_rate = 1.0)).await;
    let ids = server.config().record_ids();
    assert_eq!(outcomes(&server).await, ["dropped"; 3]);
    let ledger = server.ledger();
    assert_eq!(ledger.applied[&ids[0]], 0);
    assert_eq!(ledger.update_by_code["DROPPED_BEFORE"], 1);
    assert_eq!(ledger.coql_by_code["DROPPED_BEFORE"], 1);
    server.shutdown().await;

    // Dropped after: applied, but no answer carried the codes.
    let server = start(fault(|c| c.drop_after_rate = 1.0)).await;
    let ids = server.config().record_ids();
    assert_eq!(outcomes(&server).await, ["dropped"; 3]);
    let ledger = server.ledger();
    assert_eq!(ledger.applied[&ids[0]], 1);
    assert_eq!(ledger.records[&ids[0]]["City"], "X");
    assert_eq!(ledger.update_by_code.get("SUCCESS"), None);
    assert_eq!(ledger.update_by_code["DROPPED_AFTER"], 1);
    assert_eq!(ledger.get_records_by_code["DROPPED_AFTER"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn faults_are_drawn_by_call_number_across_endpoints() {
    let config = || MockConfig {
        records: 10,
        seed: 7,
        fail_500_rate: 0.3,
        garbage_rate: 0.2,
        drop_before_rate: 0.1,
        ..MockConfig::default()
    };
    let run = |server: MockServer| async move {
        let ids = server.config().record_ids();
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.extend(outcomes(&server).await);
            let mass = client()
                .post(format!("{}/crm/v2/Leads/actions/mass_update", server.url()))
                .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
                .json(&json!({"data": [{"City": "Y"}], "ids": &ids[..1]}))
                .send()
                .await;
            seen.push(match mass {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "dropped".to_string(),
            });
        }
        server.shutdown().await;
        seen
    };
    let first = run(start(config()).await).await;
    let second = run(start(config()).await).await;
    assert_eq!(
        first, second,
        "the same calls in the same order meet the same faults"
    );
    assert!(first.iter().any(|s| s == "500"), "{first:?}");
    assert!(first.iter().any(|s| s != "500"), "{first:?}");
}

#[tokio::test]
async fn rate_concurrency_and_credits_are_shared_with_mass_update() {
    // One call a second across every record endpoint.
    let server = start(MockConfig {
        records: 10,
        rate_per_sec: Some(1),
        ..MockConfig::default()
    })
    .await;
    let ids = server.config().record_ids();
    assert_eq!(
        mass_update(&server, "City", json!("A"), &ids[..1]).await,
        200
    );
    assert_eq!(outcomes(&server).await, ["429", "429", "429"]);
    let ledger = server.ledger();
    assert_eq!(ledger.update_by_code["TOO_MANY_REQUESTS"], 1);
    assert_eq!(ledger.get_records_by_code["TOO_MANY_REQUESTS"], 1);
    server.shutdown().await;

    // Credits: one a call (COQL by its LIMIT), then 429 with none remaining.
    let server = start(MockConfig {
        records: 10,
        daily_credits: Some(4),
        ..MockConfig::default()
    })
    .await;
    assert_eq!(outcomes(&server).await, ["200", "200", "200"]);
    assert_eq!(server.ledger().credits_remaining, Some(1));
    let response = try_coql(&server, "v8", "select Email from Leads limit 201")
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 429, "LIMIT 201 costs 2 credits");
    assert_eq!(
        response.headers()["x-api-credits-remaining"].to_str().ok(),
        Some("0")
    );
    assert_eq!(outcomes(&server).await, ["200", "429", "429"]);
    assert_eq!(server.ledger().credits_remaining, Some(0));
    server.shutdown().await;

    // Concurrency: calls in flight on any endpoint count against one limit.
    let server = start(MockConfig {
        records: 10,
        max_concurrency: Some(1),
        latency_mean: std::time::Duration::from_millis(300),
        ..MockConfig::default()
    })
    .await;
    let (a, b, c) = tokio::join!(outcomes(&server), outcomes(&server), outcomes(&server));
    let all: Vec<String> = [a, b, c].concat();
    assert!(all.iter().any(|s| s == "429"), "{all:?}");
    assert!(all.iter().any(|s| s == "200"), "{all:?}");
    assert!(server.ledger().max_concurrency_seen >= 2);
    server.shutdown().await;
}

#[tokio::test]
async fn the_api_redirect_covers_the_new_endpoints() {
    let server = start(MockConfig {
        records: 5,
        api_redirect: Some(massup::mock::Redirect::temporary("http://127.0.0.1:9/x")),
        ..MockConfig::default()
    })
    .await;
    massup::api::install_crypto_provider();
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (method, path) in [
        (reqwest::Method::PUT, "/crm/v2/Leads"),
        (reqwest::Method::GET, "/crm/v2/Leads?ids=1"),
        (reqwest::Method::POST, "/crm/v2/coql"),
    ] {
        let response = no_follow
            .request(method, format!("{}{path}", server.url()))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), 307, "{path}");
    }
    assert_eq!(server.ledger().redirects, 3);
    server.shutdown().await;
}

#[test]
fn mock_server_flags_set_emails_and_unique_fields() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_massup"))
        .args(["mock-server", "--help"])
        .output()
        .expect("massup runs");
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--duplicate-emails",
        "--mixed-case-emails",
        "--unique-field",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_massup"))
        .args([
            "mock-server",
            "--port",
            "0",
            "--records",
            "10",
            "--duplicate-emails",
            "2",
            "--mixed-case-emails",
            "1",
            "--unique-field",
            "Leads.Email",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("massup runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line was {first:?}"))
        .to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (found, duplicate) = runtime.block_on(async {
        let found: Value = client()
            .post(format!("{url}/crm/v2/coql"))
            .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
            .json(&json!({"select_query": "select Email from Leads where Email = 'lead00002.s1@example.com'"}))
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("JSON");
        let duplicate: Value = client()
            .put(format!("{url}/crm/v2/Leads"))
            .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
            .json(&json!({"data": [{"id": found["data"][0]["id"], "Email": "lead00003.s1@example.com"}]}))
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("JSON");
        (found, duplicate)
    });
    child.kill().expect("kill");
    child.wait().expect("wait");
    // Record 2's address is shared with record 9, both stored in mixed case.
    assert_eq!(found["info"]["count"], 2, "{found}");
    assert_eq!(found["data"][0]["Email"], "Lead00002.s1@EXAMPLE.COM");
    assert_eq!(
        duplicate["data"][0]["code"], "DUPLICATE_DATA",
        "{duplicate}"
    );
}
