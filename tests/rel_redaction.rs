//! Never in clear: a server that echoes the client id, client secret, refresh token or
//! access token back in its error text does not get them into massup's errors, logs or
//! panic messages.
use std::collections::HashMap;
use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use massup::api::auth::{AuthError, Credentials, Secret, TokenSource};
use massup::api::response::{parse_body, CallAnswer};
use massup::api::{fetch_fields, http_client, send_call, Exchange};
use massup::redact::{redact, register, RedactingWriter};
use tokio_util::sync::CancellationToken;

const CLIENT_ID: &str = "1000.REDACTIONTESTCLIENTID";
const CLIENT_SECRET: &str = "redaction-test-client-secret";
const REFRESH_TOKEN: &str = "redaction-test-refresh-token";
const MINTED: &str = "redaction-test-minted-access-token";

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn credentials() -> Credentials {
    Credentials::Refresh {
        client_id: Secret::new(CLIENT_ID),
        client_secret: Secret::new(CLIENT_SECRET),
        refresh_token: Secret::new(REFRESH_TOKEN),
        access_token: None,
    }
}

fn assert_clean(what: &str, text: &str) {
    for secret in [CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, MINTED] {
        assert!(!text.contains(secret), "{what} shows {secret}: {text}");
    }
}

/// Refuses the refresh, quoting every value it was sent (without their names, so that
/// only the registered values, not the credential shapes, can mask them).
#[tokio::test]
async fn a_refusal_that_echoes_the_credentials_shows_none_of_them() {
    let accounts = serve(Router::new().route(
        "/oauth/v2/token",
        post(|body: String| async move {
            let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap();
            let sent: Vec<&str> = form.values().map(String::as_str).collect();
            axum::Json(serde_json::json!({ "error": format!("invalid_client {}", sent.join(" ")) }))
        }),
    ))
    .await;
    let tokens = TokenSource::new(
        credentials(),
        accounts,
        http_client(Duration::from_secs(2), 1),
        CancellationToken::new(),
    )
    .with_budget_in_memory();
    let Err(AuthError::Refused(message)) = tokens.token().await else {
        panic!("expected a refusal");
    };
    assert!(message.contains("invalid_client"), "{message}");
    assert!(message.contains("***"), "{message}");
    assert_clean("the refusal", &message);
}

/// The accounts server mints MINTED; the API answers every call with an error quoting the
/// Authorization header it got.
#[tokio::test]
async fn api_errors_that_echo_the_access_token_show_none_of_it() {
    let accounts = serve(Router::new().route(
        "/oauth/v2/token",
        post(|| async {
            axum::Json(serde_json::json!({ "access_token": MINTED, "expires_in": 3600 }))
        }),
    ))
    .await;
    let echo = |headers: HeaderMap| async move {
        let sent = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .replace("Zoho-oauthtoken ", "");
        let body = serde_json::json!({
            "code": "INVALID_TOKEN",
            "details": {},
            "message": format!("invalid oauth token {sent}"),
            "status": "error",
        });
        (StatusCode::UNAUTHORIZED, axum::Json(body))
    };
    let api = serve(
        Router::new()
            .route("/crm/v2/settings/fields", get(echo))
            .route("/crm/v2/Leads/actions/mass_update", post(echo)),
    )
    .await;
    let http = http_client(Duration::from_secs(2), 1);
    let tokens = TokenSource::new(
        credentials(),
        accounts,
        http.clone(),
        CancellationToken::new(),
    )
    .with_budget_in_memory();
    let (token, _) = tokens.token().await.unwrap();
    assert_eq!(token.expose(), MINTED);

    let err = fetch_fields(&http, &api, "v2", "Leads", &token)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("INVALID_TOKEN: invalid oauth token ***"),
        "{err}"
    );
    assert_clean("the field metadata error", &err);

    let url = format!("{api}/crm/v2/Leads/actions/mass_update");
    let (exchange, _) = send_call(
        &http,
        reqwest::Method::POST,
        &url,
        &token,
        "{}".into(),
        None,
    )
    .await;
    let Exchange::Answered { status, body, .. } = exchange else {
        panic!("expected an answer, got {exchange:?}");
    };
    let CallAnswer::Request { code, message } = parse_body(status, &body) else {
        panic!("expected a request-level answer");
    };
    assert_eq!(code, "INVALID_TOKEN");
    assert_clean("the recorded message", &message);
}

#[cfg(unix)]
#[test]
fn loaded_credentials_are_registered() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.toml");
    std::fs::write(
        &path,
        "client_id = \"1000.LOADTESTCLIENT\"\nclient_secret = \"load-test-secret-1\"\nrefresh_token = \"load-test-refresh-1\"\naccess_token = \"load-test-access-1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    if std::env::var_os("ZOHO_CLIENT_SECRET").is_some() {
        return; // the environment wins over the file: nothing of the file is used
    }
    Credentials::load(Some(&path)).unwrap().unwrap();
    for value in [
        "1000.LOADTESTCLIENT",
        "load-test-secret-1",
        "load-test-refresh-1",
        "load-test-access-1",
    ] {
        assert_eq!(redact(&format!("<{value}>")), "<***>", "{value}");
    }
}

/// A `Write` into a shared buffer, for a tracing subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn log_lines_are_redacted_before_they_are_written() {
    register("log-test-registered-secret");
    let captured = Captured::default();
    let sink = captured.clone();
    for json in [false, true] {
        let sink = sink.clone();
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(RedactingWriter::new(move || sink.clone()));
        let message =
            "sent log-test-registered-secret with Authorization: Zoho-oauthtoken 1000.abc.def";
        if json {
            let subscriber = builder.json().finish();
            tracing::subscriber::with_default(subscriber, || tracing::warn!("{message}"));
        } else {
            let subscriber = builder.finish();
            tracing::subscriber::with_default(subscriber, || tracing::warn!("{message}"));
        }
    }
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(!text.contains("log-test-registered-secret"), "{text}");
    assert!(!text.contains("1000.abc.def"), "{text}");
    assert!(
        text.contains("sent *** with Authorization: Zoho-oauthtoken ***"),
        "{text}"
    );
}

const PANIC_CHILD_ENV: &str = "REDACTION_PANIC_CHILD";

/// Run normally, does nothing; run as the child of the test below, panics with secrets.
#[test]
fn child_panics_with_a_secret() {
    if std::env::var_os(PANIC_CHILD_ENV).is_none() {
        return;
    }
    register("panic-test-registered-secret");
    massup::redact::install_panic_hook();
    panic!("boom: panic-test-registered-secret, client_secret=panic-shape-secret");
}

#[test]
fn panic_messages_are_redacted() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_panics_with_a_secret",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PANIC_CHILD_ENV, "1")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("boom: ***, client_secret=***"), "{stderr}");
    assert!(!stderr.contains("panic-test-registered-secret"), "{stderr}");
    assert!(!stderr.contains("panic-shape-secret"), "{stderr}");
}
