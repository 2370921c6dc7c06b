//! Faults a client's reliability is judged against: redirecting accounts and API endpoints,
//! error answers that echo the client's credentials back, and the answer once the org's API
//! credits are used up.

use massup::mock::{MockConfig, MockServer, Redirect};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};

const TOKEN: &str = "mock-token";

async fn start(config: MockConfig) -> MockServer {
    MockServer::start(config).await.expect("mock starts")
}

/// A client that shows redirects instead of following them.
fn no_follow() -> reqwest::Client {
    massup::api::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

fn refresh_form(secret: &str, refresh: &str) -> [(&'static str, String); 4] {
    [
        ("grant_type", "refresh_token".to_string()),
        ("client_id", "mock-client-id".to_string()),
        ("client_secret", secret.to_string()),
        ("refresh_token", refresh.to_string()),
    ]
}

fn location(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
}

fn update_body(server: &MockServer) -> Value {
    json!({"data": [{"Rating": "Active"}], "ids": &server.config().record_ids()[..2]})
}

#[tokio::test]
async fn the_token_endpoint_can_redirect_to_another_server() {
    // The target is a second mock, named through `localhost`, as a test of a client that
    // must not follow (or must re-check) a redirect would set it up.
    let target = start(MockConfig::default()).await;
    let elsewhere = format!("http://localhost:{}/oauth/v2/token", target.addr().port());
    let server = start(MockConfig {
        token_redirect: Some(Redirect::temporary(elsewhere.clone())),
        ..MockConfig::default()
    })
    .await;
    let url = format!("{}/oauth/v2/token", server.url());
    let response = no_follow()
        .post(&url)
        .form(&refresh_form("mock-client-secret", "mock-refresh-token"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 307);
    assert_eq!(location(&response), Some(elsewhere.as_str()));
    assert_eq!(
        server.ledger().refreshes,
        0,
        "the redirecting server mints nothing"
    );

    // A client that follows a 307 repeats the POST and its body at the target.
    massup::api::install_crypto_provider();
    let followed: Value = reqwest::Client::new()
        .post(&url)
        .form(&refresh_form("mock-client-secret", "mock-refresh-token"))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert!(followed["access_token"].is_string(), "{followed}");
    assert_eq!(server.ledger().redirects, 2);
    assert_eq!(target.ledger().refreshes, 1);
    // The API is not redirected by this setting.
    let (status, _) = post(&server, &update_body(&server), TOKEN).await;
    assert_eq!(status, 200);
    server.shutdown().await;
    target.shutdown().await;
}

async fn post(server: &MockServer, body: &Value, token: &str) -> (u16, Value) {
    let response = no_follow()
        .post(format!("{}/crm/v2/Leads/actions/mass_update", server.url()))
        .header("Authorization", format!("Zoho-oauthtoken {token}"))
        .json(body)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_mass_update_path_can_redirect_before_anything_else() {
    let target = start(MockConfig::default()).await;
    let elsewhere = format!("{}/crm/v2/Leads/actions/mass_update", target.url());
    for redirect in [
        Redirect::temporary(elsewhere.clone()),
        Redirect::permanent(elsewhere.clone()),
    ] {
        let server = start(MockConfig {
            api_redirect: Some(redirect.clone()),
            ..MockConfig::default()
        })
        .await;
        let url = format!("{}/crm/v2/Leads/actions/mass_update", server.url());
        // Any method, with or without a valid token: the redirect comes first.
        for (method, token) in [
            (reqwest::Method::POST, TOKEN),
            (reqwest::Method::POST, "wrong"),
            (reqwest::Method::GET, TOKEN),
        ] {
            let response = no_follow()
                .request(method.clone(), &url)
                .header("Authorization", format!("Zoho-oauthtoken {token}"))
                .json(&update_body(&server))
                .send()
                .await
                .expect("answer");
            assert_eq!(response.status().as_u16(), redirect.status, "{method}");
            assert_eq!(location(&response), Some(elsewhere.as_str()));
        }
        let ledger = server.ledger();
        assert_eq!((ledger.redirects, ledger.requests), (3, 3));
        assert!(ledger.applied.values().all(|n| *n == 0), "nothing applied");
        assert!(ledger.by_code.is_empty(), "{:?}", ledger.by_code);
        // The token endpoint is not redirected by this setting.
        let minted = no_follow()
            .post(format!("{}/oauth/v2/token", server.url()))
            .form(&refresh_form("mock-client-secret", "mock-refresh-token"))
            .send()
            .await
            .expect("answer");
        assert_eq!(minted.status().as_u16(), 200);
        server.shutdown().await;
    }
    // A client that follows a 308 repeats the call at the target; reqwest drops the
    // Authorization header on the way to another origin (here another port), so the target
    // sees an unauthenticated call.
    let server = start(MockConfig {
        api_redirect: Some(Redirect::permanent(elsewhere)),
        ..MockConfig::default()
    })
    .await;
    massup::api::install_crypto_provider();
    let response = reqwest::Client::new()
        .post(format!("{}/crm/v2/Leads/actions/mass_update", server.url()))
        .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
        .json(&update_body(&server))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 401);
    let target_ledger = target.ledger();
    assert_eq!(target_ledger.requests, 1);
    assert_eq!(target_ledger.by_code["AUTHENTICATION_FAILURE"], 1);
    server.shutdown().await;
    target.shutdown().await;
}

#[tokio::test]
async fn echo_mode_repeats_the_credentials_in_error_answers() {
    let secret = "s3cret-client-secret";
    let refresh = "1000.r3fresh-token";
    let config = MockConfig {
        client_secret: secret.into(),
        refresh_token: refresh.into(),
        echo_secrets: true,
        ..MockConfig::default()
    };
    let server = start(config).await;
    let token_url = format!("{}/oauth/v2/token", server.url());
    let refused = |secret: &'static str, refresh: &'static str| {
        let url = token_url.clone();
        async move {
            no_follow()
                .post(url)
                .form(&refresh_form(secret, refresh))
                .send()
                .await
                .expect("answer")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    // A wrong client: the answer carries the secret and refresh token that were sent.
    let answer = refused("wrong-secret", "1000.r3fresh-token").await;
    let error = answer["error"].as_str().expect("error");
    assert!(error.starts_with("invalid_client"), "{error}");
    assert!(
        error.contains("wrong-secret") && error.contains("1000.r3fresh-token"),
        "{error}"
    );
    let answer = refused("s3cret-client-secret", "1000.stale").await;
    let error = answer["error"].as_str().expect("error");
    assert!(error.starts_with("invalid_code"), "{error}");
    assert!(
        error.contains("s3cret-client-secret") && error.contains("1000.stale"),
        "{error}"
    );
    // A good refresh is answered as usual.
    let minted = refused("s3cret-client-secret", "1000.r3fresh-token").await;
    assert!(minted["access_token"].is_string());

    // The API's 401 answers carry the Authorization header as sent.
    let body = update_body(&server);
    let (status, answer) = post(&server, &body, "1000.expired-access-token").await;
    assert_eq!(status, 401);
    assert_eq!(answer["code"], "INVALID_TOKEN");
    let message = answer["message"].as_str().expect("message");
    assert!(message.starts_with("invalid oauth token"), "{message}");
    assert!(
        message.contains("Zoho-oauthtoken 1000.expired-access-token"),
        "{message}"
    );
    // And its request-level 400s.
    let response = no_follow()
        .post(format!("{}/crm/v2/Nope/actions/mass_update", server.url()))
        .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 400);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer["code"], "INVALID_MODULE");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains(TOKEN)),
        "{answer}"
    );
    let response = no_follow()
        .post(format!("{}/crm/v2/Leads/actions/mass_update", server.url()))
        .header("Authorization", format!("Zoho-oauthtoken {TOKEN}"))
        .body("not json")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 400);
    let answer: Value = response.json().await.expect("JSON");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains(TOKEN)),
        "{answer}"
    );
    let (status, answer) = get_fields(&server, "1000.other-token").await;
    assert_eq!(status, 401);
    assert!(answer["message"]
        .as_str()
        .is_some_and(|m| m.contains("1000.other-token")));
    // Successful answers are as usual.
    let (status, answer) = post(&server, &body, TOKEN).await;
    assert_eq!(status, 200);
    assert!(!answer.to_string().contains(TOKEN));
    server.shutdown().await;
}

async fn get_fields(server: &MockServer, token: &str) -> (u16, Value) {
    let response = no_follow()
        .get(format!(
            "{}/crm/v2/settings/fields?module=Leads",
            server.url()
        ))
        .header("Authorization", format!("Zoho-oauthtoken {token}"))
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn without_echo_mode_nothing_sent_comes_back() {
    let server = start(MockConfig::default()).await;
    let response = no_follow()
        .post(format!("{}/oauth/v2/token", server.url()))
        .form(&refresh_form("wrong-secret", "mock-refresh-token"))
        .send()
        .await
        .expect("answer");
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer, json!({"error": "invalid_client"}));
    let (status, answer) = post(&server, &update_body(&server), "1000.expired").await;
    assert_eq!(status, 401);
    assert_eq!(
        answer,
        json!({"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"})
    );
    server.shutdown().await;
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
    // The refused calls are charged nothing.
    assert_eq!(ledger.credits_charged, 2);
    assert_eq!(ledger.by_code["TOO_MANY_REQUESTS"], 2);
    assert_eq!(ledger.by_code["SUCCESS"], 4);
    // A refused call applies nothing.
    assert!(ledger.applied.values().all(|n| *n <= 2));
    server.shutdown().await;
}

#[test]
fn mock_server_flags_set_the_redirect_and_echo_modes() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_massup"))
        .args([
            "mock-server",
            "--port",
            "0",
            "--records",
            "5",
            "--token-redirect",
            "http://localhost:1/oauth/v2/token",
            "--token-redirect-status",
            "308",
            "--echo-secrets",
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
    let (redirect, echoed) = runtime.block_on(async {
        let redirect = no_follow()
            .post(format!("{url}/oauth/v2/token"))
            .form(&refresh_form("mock-client-secret", "mock-refresh-token"))
            .send()
            .await
            .expect("answer");
        let status = redirect.status().as_u16();
        let location = location(&redirect).map(str::to_string);
        let echoed: Value = no_follow()
            .get(format!("{url}/crm/v2/settings/fields?module=Leads"))
            .header("Authorization", "Zoho-oauthtoken 1000.leak-me")
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("JSON");
        ((status, location), echoed)
    });
    child.kill().expect("kill");
    child.wait().expect("wait");
    assert_eq!(
        redirect,
        (308, Some("http://localhost:1/oauth/v2/token".to_string()))
    );
    assert!(echoed["message"]
        .as_str()
        .is_some_and(|m| m.contains("1000.leak-me")));
}
