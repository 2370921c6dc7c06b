//! The mock's Upsert, Insert and Delete Records over real HTTP: the action each upsert entry
//! reports (insert, update) and the field that found the record, DUPLICATE_DATA for a key
//! several records hold, MANDATORY_NOT_FOUND for a new record without its mandatory fields,
//! deletion by ids, and the prices (1 credit per 10 records written, 1 a delete call).

use massup::mock::{MockConfig, MockServer};
use serde_json::{json, Value};

const TOKEN: &str = "mock-token";

fn client() -> reqwest::Client {
    massup::api::install_crypto_provider();
    reqwest::Client::new()
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request
        .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
        .send()
        .await
        .expect("mock answers");
    let status = response.status().as_u16();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

#[tokio::test]
async fn upsert_inserts_updates_and_refuses_as_zoho_does() {
    let config = MockConfig {
        records: 20,
        duplicate_emails: 1,
        ..MockConfig::default()
    };
    let server = MockServer::start(config.clone()).await.unwrap();
    let emails = config.record_emails();
    let ids = config.record_ids();
    let body = json!({
        "data": [
            {"Email": "new@example.com", "Last_Name": "Nova", "Company": "Acme", "City": "Oslo"},
            {"Email": emails[5].to_uppercase(), "City": "Rome"},
            {"Email": emails[2], "City": "Paris"},
            {"Email": "other@example.com", "City": "Lima"},
        ],
        "duplicate_check_fields": ["Email"],
    });
    let (status, answer) = send(
        client()
            .post(format!("{}/crm/v2/Leads/upsert", server.url()))
            .json(&body),
    )
    .await;
    assert_eq!(status, 207, "{answer}");
    let data = answer["data"].as_array().unwrap();
    assert_eq!(data[0]["code"], "SUCCESS");
    assert_eq!(data[0]["action"], "insert");
    assert_eq!(data[0]["duplicate_field"], Value::Null);
    let created = data[0]["details"]["id"].as_str().unwrap().to_string();
    assert_eq!(data[1]["action"], "update");
    assert_eq!(data[1]["duplicate_field"], "Email");
    assert_eq!(data[1]["details"]["id"], ids[5].as_str());
    // Records 2 and 19 share an address: several matches, nothing written.
    assert_eq!(data[2]["code"], "DUPLICATE_DATA");
    assert_eq!(data[3]["code"], "MANDATORY_NOT_FOUND");
    assert_eq!(data[3]["details"]["api_name"], "Last_Name");
    let ledger = server.ledger();
    assert_eq!(ledger.created, vec![created.clone()]);
    assert_eq!(ledger.records[&created]["City"], "Oslo");
    assert_eq!(ledger.records[&created]["Email"], "new@example.com");
    assert_eq!(ledger.records[&ids[5]]["City"], "Rome");
    assert_eq!(ledger.applied[&ids[2]], 0);
    assert_eq!(ledger.upsert_requests, 1);
    assert_eq!(ledger.upsert_by_code["SUCCESS"], 2);
    // Four records: one credit.
    assert_eq!(ledger.credits_charged, 1);

    // The same record again: found by its key, updated, never a second record.
    let (status, answer) = send(
        client()
            .post(format!("{}/crm/v2/Leads/upsert", server.url()))
            .json(&json!({"data": [{"Email": "NEW@example.com", "Last_Name": "Nova", "Company": "Acme"}],
                          "duplicate_check_fields": ["Email"]})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"][0]["action"], "update");
    assert_eq!(answer["data"][0]["details"]["id"], created.as_str());
    assert_eq!(server.ledger().created.len(), 1);

    // Insert Records always creates; Delete Records removes by id.
    let (status, answer) = send(
        client()
            .post(format!("{}/crm/v2/Leads", server.url()))
            .json(&json!({"data": [{"Email": "x@example.com", "Last_Name": "X", "Company": "Y"}]})),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let inserted = answer["data"][0]["details"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, answer) = send(client().delete(format!(
        "{}/crm/v2/Leads?ids={created},{inserted},123",
        server.url()
    )))
    .await;
    assert_eq!(status, 207, "{answer}");
    assert_eq!(answer["data"][0]["code"], "SUCCESS");
    assert_eq!(answer["data"][0]["details"]["id"], created.as_str());
    assert_eq!(answer["data"][2]["code"], "INVALID_DATA");
    let ledger = server.ledger();
    assert!(!ledger.records.contains_key(&created));
    assert!(!ledger.records.contains_key(&inserted));
    assert_eq!(ledger.deleted, vec![created, inserted]);
    assert_eq!(ledger.delete_requests, 1);
    assert_eq!(ledger.insert_requests, 1);
    // 1 + 1 + 1 (insert) + 1 (delete).
    assert_eq!(ledger.credits_charged, 4);
    // The remaining records are still found by id after the deletions.
    let (status, _) = send(client().get(format!(
        "{}/crm/v2/Leads?ids={}&fields=City",
        server.url(),
        ids[5]
    )))
    .await;
    assert_eq!(status, 200);
}
