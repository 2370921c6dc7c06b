//! The mock's credit prices, over real HTTP: Update Records one credit per 10 records,
//! mass_update, Get Records, metadata calls and job polls one each; the ledger's
//! `credits_charged`, the `X-API-CREDITS-REMAINING` header and the 429 when a call costs more
//! than is left; the sub-concurrency limit of Update Records calls of more than 10 records.

use massup::mock::{records_credits, MockConfig, MockServer};
use serde_json::{json, Value};

const TOKEN: &str = "mock-token";

async fn start(config: MockConfig) -> MockServer {
    MockServer::start(config).await.expect("mock starts")
}

fn client() -> reqwest::Client {
    massup::api::install_crypto_provider();
    reqwest::Client::new()
}

/// Status and the `X-API-CREDITS-REMAINING` header of an answer.
fn status_and_credits(response: &reqwest::Response) -> (u16, Option<String>) {
    let header = response
        .headers()
        .get("x-api-credits-remaining")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (response.status().as_u16(), header)
}

/// An Update Records body setting `City` on each of `ids`.
fn update_body(ids: &[String]) -> Value {
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "City": "Lyon"}))
        .collect();
    json!({ "data": data })
}

async fn update_records(server: &MockServer, ids: &[String]) -> reqwest::Response {
    client()
        .put(format!("{}/crm/v8/Leads", server.url()))
        .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
        .json(&update_body(ids))
        .send()
        .await
        .expect("mock answers")
}

async fn get(server: &MockServer, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", server.url()))
        .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
        .send()
        .await
        .expect("mock answers")
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn write_calls_cost_one_credit_per_ten_records() {
    let prices: Vec<u64> = [0, 1, 5, 10, 11, 20, 21, 99, 100, 101, 1_000]
        .into_iter()
        .map(records_credits)
        .collect();
    // Over the 100-record limit: 10, the most a write call costs (and it is refused).
    assert_eq!(prices, [1, 1, 1, 1, 2, 2, 3, 10, 10, 10, 10]);
}

#[tokio::test]
async fn update_records_is_priced_by_the_records_it_carries() {
    let server = start(MockConfig {
        daily_credits: Some(20),
        ..MockConfig::default()
    })
    .await;
    let ids = server.config().record_ids();
    // 100 records: 10 credits, half of 20, so the header appears.
    let answer = update_records(&server, &ids[..100]).await;
    assert_eq!(status_and_credits(&answer), (200, some("10")));
    assert_eq!(server.ledger().credits_charged, 10);
    // 5 records: one credit.
    let answer = update_records(&server, &ids[100..105]).await;
    assert_eq!(status_and_credits(&answer), (200, some("9")));
    // 11 records: two.
    let answer = update_records(&server, &ids[105..116]).await;
    assert_eq!(status_and_credits(&answer), (200, some("7")));
    // One record through `.../Leads/{id}`: one.
    let answer = client()
        .put(format!("{}/crm/v8/Leads/{}", server.url(), ids[0]))
        .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
        .json(&json!({"data": [{"City": "Nice"}]}))
        .send()
        .await
        .expect("mock answers");
    assert_eq!(status_and_credits(&answer), (200, some("6")));
    // A body the mock cannot read: one, and refused after.
    let answer = client()
        .put(format!("{}/crm/v8/Leads", server.url()))
        .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
        .body("not json")
        .send()
        .await
        .expect("mock answers");
    assert_eq!(status_and_credits(&answer), (400, some("5")));
    let ledger = server.ledger();
    assert_eq!(
        (ledger.credits_charged, ledger.credits_remaining),
        (15, Some(5))
    );
    server.shutdown().await;

    // Without a credit limit: no header, still counted.
    let server = start(MockConfig::default()).await;
    let answer = update_records(&server, &ids[..100]).await;
    assert_eq!(status_and_credits(&answer), (200, None));
    let answer = update_records(&server, &ids[..5]).await;
    assert_eq!(status_and_credits(&answer), (200, None));
    let ledger = server.ledger();
    assert_eq!(
        (ledger.credits_charged, ledger.credits_remaining),
        (11, None)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn mass_update_get_records_metadata_and_polls_cost_one_each() {
    let server = start(MockConfig::default()).await;
    let ids = server.config().record_ids();
    let charged = || server.ledger().credits_charged;
    let answer = client()
        .post(format!("{}/crm/v8/Leads/actions/mass_update", server.url()))
        .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
        .json(&json!({"data": [{"City": "Lyon"}], "ids": &ids[..500]}))
        .send()
        .await
        .expect("mock answers");
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(charged(), 1, "mass_update of 500 ids costs 1");
    let answer = get(
        &server,
        &format!("/crm/v8/Leads?ids={}&fields=City", ids[..100].join(",")),
    )
    .await;
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(charged(), 2, "Get Records of 100 ids costs 1");
    let mut expected = 2;
    for path in [
        "/crm/v8/settings/fields?module=Leads",
        "/crm/v8/settings/modules",
        "/crm/v8/settings/custom_views?module=Leads",
        // A metadata call that fails for what it asks is charged too.
        "/crm/v8/settings/fields?module=Nothing",
        // A job status poll, for a job that does not exist.
        "/crm/v8/Leads/actions/mass_update?job_id=1",
    ] {
        let answer = get(&server, path).await;
        assert_ne!(answer.status().as_u16(), 429, "{path}");
        expected += 1;
        assert_eq!(charged(), expected, "{path} costs 1");
    }
    // A call refused before its price is taken (no token) costs nothing.
    let answer = client()
        .get(format!("{}/crm/v8/settings/modules", server.url()))
        .send()
        .await
        .expect("mock answers");
    assert_eq!(answer.status().as_u16(), 401);
    assert_eq!(charged(), expected);
    server.shutdown().await;
}

#[tokio::test]
async fn metadata_calls_and_polls_meet_the_credit_limit() {
    let server = start(MockConfig {
        daily_credits: Some(2),
        ..MockConfig::default()
    })
    .await;
    let answer = get(&server, "/crm/v2/settings/fields?module=Leads").await;
    assert_eq!(status_and_credits(&answer), (200, some("1")));
    let answer = get(&server, "/crm/v2/Leads/actions/mass_update?job_id=1").await;
    assert_eq!(status_and_credits(&answer), (400, some("0")));
    for path in [
        "/crm/v2/settings/modules",
        "/crm/v2/Leads/actions/mass_update?job_id=1",
    ] {
        let answer = get(&server, path).await;
        assert_eq!(status_and_credits(&answer), (429, some("0")), "{path}");
        let body: Value = answer.json().await.expect("JSON");
        assert_eq!(body["code"], "TOO_MANY_REQUESTS");
    }
    let ledger = server.ledger();
    assert_eq!(
        (ledger.credits_charged, ledger.credits_remaining),
        (2, Some(0))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_call_costing_more_than_is_left_is_refused_and_charged_nothing() {
    let server = start(MockConfig {
        daily_credits: Some(25),
        ..MockConfig::default()
    })
    .await;
    let ids = server.config().record_ids();
    let first = update_records(&server, &ids[..100]).await;
    assert_eq!(status_and_credits(&first), (200, None));
    let second = update_records(&server, &ids[100..200]).await;
    assert_eq!(status_and_credits(&second), (200, some("5")));
    // 10 credits asked, 5 left: refused as if none were left, nothing charged or applied.
    let third = update_records(&server, &ids[200..300]).await;
    assert_eq!(status_and_credits(&third), (429, some("0")));
    let body: Value = third.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({
            "code": "TOO_MANY_REQUESTS",
            "details": {},
            "message": "Number of API requests for the 24 hour period is exceeded",
            "status": "error",
        })
    );
    let ledger = server.ledger();
    assert_eq!(
        (ledger.credits_charged, ledger.credits_remaining),
        (20, Some(5))
    );
    assert_eq!(ledger.update_by_code["TOO_MANY_REQUESTS"], 1);
    assert!(ids[200..300].iter().all(|id| ledger.applied[id] == 0));
    // A cheaper call still passes.
    let fourth = update_records(&server, &ids[200..205]).await;
    assert_eq!(status_and_credits(&fourth), (200, some("4")));
    assert_eq!(server.ledger().credits_charged, 21);
    server.shutdown().await;
}

/// Sends one Update Records call per group of `ids`, all at once, held in flight by the mock's
/// latency; returns the statuses.
async fn concurrent_updates(server: &MockServer, groups: &[&[String]]) -> Vec<u16> {
    let answers =
        futures::future::join_all(groups.iter().map(|ids| update_records(server, ids))).await;
    answers.iter().map(|a| a.status().as_u16()).collect()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn eleven_large_writes_at_once_meet_the_sub_concurrency_limit() {
    let server = start(MockConfig {
        latency_mean: std::time::Duration::from_millis(600),
        ..MockConfig::default()
    })
    .await;
    let ids = server.config().record_ids();
    // 11 calls of 11 records each: one over Zoho's 10.
    let groups: Vec<&[String]> = ids.chunks(11).take(11).collect();
    let statuses = concurrent_updates(&server, &groups).await;
    assert_eq!(
        (count(&statuses, 200), count(&statuses, 429)),
        (10, 1),
        "{statuses:?}"
    );
    let ledger = server.ledger();
    assert_eq!(ledger.max_sub_concurrency_seen, 10);
    assert_eq!(ledger.update_by_code["TOO_MANY_REQUESTS"], 1);
    // The refused call is charged nothing: 10 calls of 2 credits.
    assert_eq!(ledger.credits_charged, 20);

    // 11 calls of 10 records each are not under the sub-limit.
    let groups: Vec<&[String]> = ids[200..].chunks(10).take(11).collect();
    let statuses = concurrent_updates(&server, &groups).await;
    assert_eq!(count(&statuses, 200), 11, "{statuses:?}");
    assert_eq!(server.ledger().max_sub_concurrency_seen, 10);
    server.shutdown().await;
}

#[tokio::test]
async fn the_sub_concurrency_limit_is_configurable_and_answers_as_the_concurrency_limit() {
    let server = start(MockConfig {
        latency_mean: std::time::Duration::from_millis(600),
        sub_concurrency: Some(2),
        ..MockConfig::default()
    })
    .await;
    let ids = server.config().record_ids();
    let groups: Vec<&[String]> = ids.chunks(20).take(3).collect();
    let answers =
        futures::future::join_all(groups.iter().map(|ids| update_records(&server, ids))).await;
    let mut refused = Vec::new();
    for answer in answers {
        if answer.status().as_u16() == 429 {
            assert_eq!(status_and_credits(&answer), (429, None));
            refused.push(answer.json::<Value>().await.expect("JSON"));
        }
    }
    assert_eq!(
        refused,
        [json!({
            "code": "TOO_MANY_REQUESTS",
            "details": {},
            "message": "The number of concurrent API requests has exceeded the allowed limit",
            "status": "error",
        })]
    );
    server.shutdown().await;

    // No sub-limit: 11 large writes at once all pass.
    let server = start(MockConfig {
        latency_mean: std::time::Duration::from_millis(300),
        sub_concurrency: None,
        ..MockConfig::default()
    })
    .await;
    let groups: Vec<&[String]> = ids.chunks(11).take(11).collect();
    let statuses = concurrent_updates(&server, &groups).await;
    assert_eq!(count(&statuses, 200), 11, "{statuses:?}");
    assert_eq!(server.ledger().max_sub_concurrency_seen, 11);
    server.shutdown().await;
}
