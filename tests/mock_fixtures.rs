//! Replays every request/response pair of the seed collection (samples/fixtures/) against the
//! mock over real HTTP: status, body (timestamps aside) and the seed's headers must match.

use massup::mock::{MockConfig, MockServer};
use serde_json::Value;
use std::path::PathBuf;

/// Keys whose values are times of the capture, not behaviour.
const TIME_KEYS: [&str; 2] = ["Modified_Time", "Created_Time"];
/// Headers whose values must match the seed exactly; others must only be present.
const EXACT_HEADERS: [&str; 7] = [
    "server",
    "content-type",
    "cache-control",
    "x-frame-options",
    "x-content-type-options",
    "pragma",
    "content-disposition",
];

fn blank_times(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if TIME_KEYS.contains(&key.as_str()) {
                    *v = Value::Null;
                } else {
                    blank_times(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(blank_times),
        _ => {}
    }
}

fn fixtures() -> Vec<(PathBuf, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("samples/fixtures exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable fixture");
            let value = serde_json::from_str(&text).expect("fixture is JSON");
            (p, value)
        })
        .collect()
}

#[tokio::test]
async fn every_seed_pair_replays_exactly() {
    let server = MockServer::start(MockConfig::default().with_seed_fixture_records())
        .await
        .expect("mock starts");
    massup::api::install_crypto_provider();
    let client = reqwest::Client::new();
    let cases = fixtures();
    assert_eq!(cases.len(), 8, "one fixture per seed pair");
    for (path, fixture) in cases {
        let name = fixture["name"].as_str().unwrap_or("?");
        let request = &fixture["request"];
        let method =
            reqwest::Method::from_bytes(request["method"].as_str().expect("method").as_bytes())
                .expect("valid method");
        let url = format!(
            "{}{}",
            server.url(),
            request["path"].as_str().expect("path")
        );
        let mut builder = client.request(method, url);
        for (k, v) in request["headers"].as_object().expect("headers") {
            builder = builder.header(k, v.as_str().expect("header value"));
        }
        if !request["body"].is_null() {
            builder = builder.body(serde_json::to_vec(&request["body"]).expect("body"));
        }
        let response = builder.send().await.expect("mock answers");
        let expected = &fixture["response"];
        assert_eq!(
            response.status().as_u16() as u64,
            expected["status"].as_u64().expect("status"),
            "{name} ({}): status",
            path.display()
        );
        for (key, value) in expected["headers"].as_object().expect("headers") {
            let key = key.to_ascii_lowercase();
            // hyper may fold Connection into its own handling; Date and lengths vary.
            if key == "connection" {
                continue;
            }
            let got = response.headers().get(&key);
            assert!(got.is_some(), "{name}: header {key} missing");
            if EXACT_HEADERS.contains(&key.as_str()) {
                assert_eq!(
                    got.and_then(|v| v.to_str().ok()),
                    value.as_str(),
                    "{name}: header {key}"
                );
            }
        }
        let mut body: Value = response.json().await.expect("JSON body");
        let mut want = expected["body"].clone();
        blank_times(&mut body);
        blank_times(&mut want);
        assert_eq!(body, want, "{name}: body");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_success_pair_keeps_the_seed_creation_times() {
    let server = MockServer::start(MockConfig::default())
        .await
        .expect("mock starts");
    let success = fixtures()
        .into_iter()
        .find(|(_, f)| f["name"] == "success")
        .expect("success fixture")
        .1;
    massup::api::install_crypto_provider();
    let response: Value = reqwest::Client::new()
        .post(format!("{}/crm/v2/Leads/actions/mass_update", server.url()))
        .header("Authorization", "Bearer mock-token")
        .json(&success["request"]["body"])
        .send()
        .await
        .expect("mock answers")
        .json()
        .await
        .expect("JSON body");
    for i in 0..2 {
        assert_eq!(
            response["data"][i]["details"]["Created_Time"],
            success["response"]["body"]["data"][i]["details"]["Created_Time"]
        );
    }
    let ledger = server.ledger();
    assert_eq!(ledger.applied["738964000002131001"], 1);
    assert_eq!(
        ledger.records["738964000002130131"]["No_of_Employees"],
        Value::from(1000)
    );
    server.shutdown().await;
}
