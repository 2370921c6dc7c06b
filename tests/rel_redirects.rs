//! A redirect is never followed: not by the token refresh (which carries the client secret
//! and refresh token), not by a mass_update or field metadata call (which carry the access
//! token). Each test points massup at a loopback server that answers 307 to a second
//! loopback server, and the second server must see no request at all.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::Router;
use massup::api::auth::{AuthError, Credentials, Secret, TokenSource};
use massup::api::{fetch_fields, http_client, send_call, Exchange};
use tokio_util::sync::CancellationToken;

async fn serve(app: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// A server that counts every request it gets and answers 200.
async fn counting_server() -> (u16, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            r#"{"access_token":"1000.stolen","data":[]}"#
        }
    });
    (serve(app).await, count)
}

/// A server that answers every request with `status` and `Location: location`.
async fn redirecting_server(status: StatusCode, location: String) -> (u16, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = Router::new().fallback(move || {
        let (seen, location) = (seen.clone(), location.clone());
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            (status, [(header::LOCATION, location)], "moved")
        }
    });
    (serve(app).await, count)
}

fn refresh_credentials() -> Credentials {
    Credentials::Refresh {
        client_id: Secret::new("redirect-test-client"),
        client_secret: Secret::new("redirect-test-secret"),
        refresh_token: Secret::new("redirect-test-refresh"),
        access_token: None,
    }
}

#[tokio::test]
async fn a_redirected_token_refresh_is_refused_and_sends_nothing_to_the_target() {
    let (target, target_hits) = counting_server().await;
    for status in [
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
        StatusCode::FOUND,
    ] {
        let location = format!("http://localhost:{target}/oauth/v2/token?steal=1#x");
        let (origin, origin_hits) = redirecting_server(status, location).await;
        let tokens = TokenSource::new(
            refresh_credentials(),
            format!("http://127.0.0.1:{origin}"),
            http_client(Duration::from_secs(2), 1),
            CancellationToken::new(),
        )
        .with_budget_in_memory();
        let Err(AuthError::Refused(message)) = tokens.token().await else {
            panic!("a redirected refresh must be refused");
        };
        assert!(
            message.contains(&format!(
                "redirected the token request to http://localhost:{target}/oauth/v2/token:"
            )),
            "{message}"
        );
        assert!(message.contains("--accounts-url"), "{message}");
        assert!(
            !message.contains("steal"),
            "the query is not shown: {message}"
        );
        // Refused is remembered: asking again does not go back to the server.
        assert!(matches!(tokens.token().await, Err(AuthError::Refused(_))));
        assert_eq!(origin_hits.load(Ordering::SeqCst), 1, "{status}");
    }
    assert_eq!(target_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_redirected_mass_update_is_reported_not_followed() {
    let (target, target_hits) = counting_server().await;
    let location =
        format!("http://localhost:{target}/crm/v2/Leads/actions/mass_update?access_token=x");
    let (origin, origin_hits) = redirecting_server(StatusCode::TEMPORARY_REDIRECT, location).await;
    let url = format!("http://127.0.0.1:{origin}/crm/v2/Leads/actions/mass_update");
    let (exchange, _) = send_call(
        &http_client(Duration::from_secs(2), 1),
        reqwest::Method::POST,
        &url,
        &Secret::new("redirect-test-access"),
        r#"{"data":[{"Lead_Status":"x"}],"ids":["1"]}"#.to_string(),
        None,
    )
    .await;
    let Exchange::Redirected { status, location } = &exchange else {
        panic!("expected a redirect, got {exchange:?}");
    };
    assert_eq!(*status, 307);
    assert_eq!(
        *location,
        format!("http://localhost:{target}/crm/v2/Leads/actions/mass_update")
    );
    assert_eq!(origin_hits.load(Ordering::SeqCst), 1);
    assert_eq!(target_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_ordinary_answer_is_no_redirect() {
    let (server, _) = counting_server().await;
    let (exchange, _) = send_call(
        &http_client(Duration::from_secs(2), 1),
        reqwest::Method::POST,
        &format!("http://127.0.0.1:{server}/crm/v2/Leads/actions/mass_update"),
        &Secret::new("redirect-test-access"),
        "{}".to_string(),
        None,
    )
    .await;
    assert!(
        matches!(exchange, Exchange::Answered { .. }),
        "{exchange:?}"
    );
}

#[tokio::test]
async fn a_redirected_field_metadata_fetch_is_an_error_naming_the_target() {
    let (target, target_hits) = counting_server().await;
    let location = format!("http://localhost:{target}/crm/v2/settings/fields?module=Leads");
    let (origin, origin_hits) = redirecting_server(StatusCode::MOVED_PERMANENTLY, location).await;
    let err = fetch_fields(
        &http_client(Duration::from_secs(2), 1),
        &format!("http://127.0.0.1:{origin}"),
        "v2",
        "Leads",
        &Secret::new("redirect-test-access"),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!(
            "HTTP 301 redirecting to http://localhost:{target}/crm/v2/settings/fields;"
        )),
        "{err}"
    );
    assert_eq!(origin_hits.load(Ordering::SeqCst), 1);
    assert_eq!(target_hits.load(Ordering::SeqCst), 0);
}
