//! Faults a client's reliability is judged against: the answer once the org's API credits
//! are used up.

use massup::mock::{MockConfig, MockServer};
use serde_json::{json, Value};

const TOKEN: &str = "mock-token";

async fn start(config: MockConfig) -> MockServer {
    MockServer::start(config).await.expect("mock starts")
}

/// A client that shows redirects instead of following them.
fn no_follow() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

fn update_body(server: &MockServer) -> Value {
    json!({"data": [{"Rating": "Active"}], "ids": &server.config().record_ids()[..2]})
}

#[tokio::test]
async fn exhausted_credits_answer_429_with_none_remaining() {
    let server = start(MockConfig {
        daily_credits: Some(2),
        ..MockConfig::default()
    })
    .await;
    let body = update_body(&server);
    let send = || {
        no_follow()
            .post(format!("{}/crm/v2/Leads/actions/mass_update", server.url()))
            .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
            .json(&body)
            .send()
    };
    let header = |r: &reqwest::Response| {
        r.headers()
            .get("x-api-credits-remaining")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let first = send().await.expect("answer");
    // Half the credits used: the header appears, as on Zoho.
    assert_eq!(
        (first.status().as_u16(), header(&first)),
        (200, Some("1".into()))
    );
    let second = send().await.expect("answer");
    assert_eq!(
        (second.status().as_u16(), header(&second)),
        (200, Some("0".into()))
    );
    for _ in 0..2 {
        let refused = send().await.expect("answer");
        assert_eq!(refused.status().as_u16(), 429);
        assert_eq!(header(&refused), Some("0".into()));
        assert_eq!(
            refused
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json;charset=utf-8")
        );
        let answer: Value = refused.json().await.expect("JSON");
        assert_eq!(
            answer,
            json!({
                "code": "TOO_MANY_REQUESTS",
                "details": {},
                "message": "Number of API requests for the 24 hour period is exceeded",
                "status": "error",
            })
        );
    }
    let ledger = server.ledger();
    assert_eq!(ledger.credits_remaining, Some(0));
    assert_eq!(ledger.by_code["TOO_MANY_REQUESTS"], 2);
    assert_eq!(ledger.by_code["SUCCESS"], 4);
    // A refused call applies nothing.
    assert!(ledger.applied.values().all(|n| *n <= 2));
    server.shutdown().await;
}
