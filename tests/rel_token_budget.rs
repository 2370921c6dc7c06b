//! Zoho mints at most 10 access tokens per refresh token in 10 minutes. massup counts
//! them per OAuth client in a file of the state folder, shared by every process: each
//! `TokenSource` here stands for one massup process (they share nothing in memory), and a
//! loopback accounts server counts the tokens it mints.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use massup::api::auth::{AuthError, Credentials, Secret, TokenSource};
use massup::api::budget::{budget_file, now_ms, MAX_REFRESHES};
use massup::api::http_client;
use tokio_util::sync::CancellationToken;

struct Accounts {
    url: String,
    mints: Arc<AtomicUsize>,
}

/// An accounts server that mints a new token for every request.
async fn accounts_server() -> Accounts {
    accounts_server_with_lifetime(3600).await
}

async fn accounts_server_with_lifetime(expires_in: u64) -> Accounts {
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
                    "expires_in": expires_in,
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
async fn processes_of_one_client_share_ten_tokens() {
    let accounts = accounts_server().await;
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..MAX_REFRESHES {
        process(&accounts, "budget-client-shared", dir.path())
            .token()
            .await
            .unwrap();
    }
    assert_eq!(accounts.mints.load(Ordering::SeqCst), MAX_REFRESHES);
    let eleventh = process(&accounts, "budget-client-shared", dir.path());
    let started = Instant::now();
    let Err(AuthError::Unavailable(message)) = eleventh.token().await else {
        panic!("the eleventh token of the client must be refused before asking Zoho");
    };
    assert!(started.elapsed() < Duration::from_secs(2), "no silent wait");
    assert!(
        message.starts_with(
            "Zoho allows 10 access tokens per 10 minutes; 10 were minted in the last 10 minutes; the next is possible in "
        ),
        "{message}"
    );
    assert_eq!(accounts.mints.load(Ordering::SeqCst), MAX_REFRESHES);
    // The file holds times, nothing else.
    let text = std::fs::read_to_string(budget_file(dir.path(), "budget-client-shared")).unwrap();
    assert!(!text.contains("budget-test"), "{text}");
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
async fn refreshes_of_earlier_invocations_count_and_a_long_wait_is_an_error() {
    let accounts = accounts_server().await;
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    // Ten minted in the last minute: the next is possible in nine minutes or more.
    let times: Vec<u64> = (0..MAX_REFRESHES as u64)
        .map(|i| now - 60_000 + i)
        .collect();
    spent(dir.path(), "budget-client-earlier", &times);
    let tokens = process(&accounts, "budget-client-earlier", dir.path());
    let Err(AuthError::Unavailable(message)) = tokens.token().await else {
        panic!("expected the budget to be reported");
    };
    assert!(message.ends_with("the next is possible in 9m"), "{message}");
    assert_eq!(accounts.mints.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_wait_of_a_few_seconds_is_waited() {
    let accounts = accounts_server().await;
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    // The oldest of ten leaves the window in 1.5 s.
    let oldest = now - 600_000 + 1500;
    let times: Vec<u64> = (0..MAX_REFRESHES as u64).map(|i| oldest + i).collect();
    spent(dir.path(), "budget-client-short", &times);
    let started = Instant::now();
    process(&accounts, "budget-client-short", dir.path())
        .token()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1000));
    assert_eq!(accounts.mints.load(Ordering::SeqCst), 1);
}

/// The API refuses every token (a revoked grant, a wrong scope): four workers that each
/// report every rejection get exactly three fresh tokens minted between them, and then
/// the source says no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_refuses_every_token_costs_exactly_three_tokens() {
    let accounts = accounts_server().await;
    let dir = tempfile::tempdir().unwrap();
    let tokens = Arc::new(process(&accounts, "budget-client-refused", dir.path()));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let tokens = tokens.clone();
            tokio::spawn(async move {
                loop {
                    let (_, generation) = tokens.token().await.unwrap();
                    // The API answers 401 INVALID_TOKEN to this token.
                    if !tokens.rejected(generation).await.unwrap() {
                        return;
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(accounts.mints.load(Ordering::SeqCst), 3);
    assert_eq!(tokens.fresh_tokens_rejected(), 3);
}

#[tokio::test]
async fn a_call_that_succeeds_resets_the_count() {
    let accounts = accounts_server().await;
    let dir = tempfile::tempdir().unwrap();
    let tokens = process(&accounts, "budget-client-flaky", dir.path());
    for _ in 0..2 {
        let (_, generation) = tokens.token().await.unwrap();
        assert!(tokens.rejected(generation).await.unwrap());
    }
    assert_eq!(tokens.fresh_tokens_rejected(), 2);
    let (_, generation) = tokens.token().await.unwrap();
    tokens.accepted(generation);
    assert_eq!(tokens.fresh_tokens_rejected(), 0);
    // A late success of an older token says nothing about the current one.
    assert!(tokens.rejected(generation).await.unwrap());
    tokens.accepted(generation);
    assert_eq!(tokens.fresh_tokens_rejected(), 1);
    // Three more rejections in a row: the third says stop.
    let (_, generation) = tokens.token().await.unwrap();
    assert!(tokens.rejected(generation).await.unwrap());
    let (_, generation) = tokens.token().await.unwrap();
    assert!(!tokens.rejected(generation).await.unwrap());
    assert_eq!(accounts.mints.load(Ordering::SeqCst), 5);
}

/// A token rejected at the end of its life expired: it is replaced, but it does not count
/// against the credentials.
#[tokio::test]
async fn an_expired_token_is_not_a_refused_one() {
    let accounts = accounts_server_with_lifetime(1).await;
    let dir = tempfile::tempdir().unwrap();
    let tokens = process(&accounts, "budget-client-expiring", dir.path());
    for _ in 0..4 {
        let (_, generation) = tokens.token().await.unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(tokens.rejected(generation).await.unwrap());
    }
    assert_eq!(tokens.fresh_tokens_rejected(), 0);
}

/// A fixed access token cannot be refreshed: rejected says so at once, and nothing is
/// asked of the accounts server.
#[tokio::test]
async fn a_fixed_token_is_never_refreshed() {
    let accounts = accounts_server().await;
    let tokens = TokenSource::new(
        Credentials::AccessToken(Secret::new("budget-test-fixed-token")),
        accounts.url.clone(),
        http_client(Duration::from_secs(2), 1),
        CancellationToken::new(),
    )
    .with_budget_in_memory();
    let (_, generation) = tokens.token().await.unwrap();
    assert!(!tokens.rejected(generation).await.unwrap());
    assert_eq!(accounts.mints.load(Ordering::SeqCst), 0);
}
