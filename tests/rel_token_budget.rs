//! Zoho mints at most 10 access tokens per refresh token in 10 minutes. massup counts
//! them per OAuth client in a file of the state folder, shared by every process: each
//! `TokenSource` here stands for one massup process (they share nothing in memory), and a
//! loopback accounts server counts the tokens it mints.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use massup::api::auth::{Credentials, Secret, TokenSource};
use massup::api::budget::{budget_file, now_ms, MAX_REFRESHES};
use massup::api::http_client;
use tokio_util::sync::CancellationToken;

struct Accounts {
    url: String,
    mints: Arc<AtomicUsize>,
}

/// An accounts server that mints a new token for every request.
async fn accounts_server() -> Accounts {
    let mints = Arc::new(AtomicUsize::new(0));
    let counter = mints.clone();
    let app = Router::new().route(
        "/oauth/v2/token",
        post(move || {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                axum::Json(serde_json::json!({
                    "access_token": format!("budget-test-token-{n:04}"),
                    "api_domain": "https://www.zohoapis.eu",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Accounts { url, mints }
}

fn process(accounts: &Accounts, client_id: &str, state_dir: &std::path::Path) -> TokenSource {
    TokenSource::new(
        Credentials::Refresh {
            client_id: Secret::new(client_id),
            client_secret: Secret::new("budget-test-secret"),
            refresh_token: Secret::new("budget-test-refresh"),
            access_token: None,
        },
        accounts.url.clone(),
        http_client(Duration::from_secs(2), 1),
        CancellationToken::new(),
    )
    .with_budget_dir(state_dir)
}

/// Writes `times` (unix ms) as the budget file of `client_id`, as earlier processes would.
fn spent(state_dir: &std::path::Path, client_id: &str, times: &[u64]) {
    let text: String = times.iter().map(|t| format!("{t}\n")).collect();
    std::fs::write(budget_file(state_dir, client_id), text).unwrap();
}

#[tokio::test]
async fn another_client_has_its_own_budget() {
    let accounts = accounts_server().await;
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    spent(
        dir.path(),
        "budget-client-busy",
        &[now - 1000; MAX_REFRESHES],
    );
    process(&accounts, "budget-client-idle", dir.path())
        .token()
        .await
        .unwrap();
    assert_eq!(accounts.mints.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn refreshes_of_earlier_invocations_count_against_the_limit() {
    let accounts = accounts_server().await;
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let times: Vec<u64> = (0..MAX_REFRESHES as u64)
        .map(|i| now - 60_000 + i)
        .collect();
    spent(dir.path(), "budget-client-earlier", &times);
    let tokens = process(&accounts, "budget-client-earlier", dir.path());
    // The budget is spent: the refresh waits instead of asking Zoho.
    let waited = tokio::time::timeout(Duration::from_millis(500), tokens.token()).await;
    assert!(waited.is_err(), "a refresh went out although 10 were made");
    assert_eq!(accounts.mints.load(Ordering::SeqCst), 0);
}
