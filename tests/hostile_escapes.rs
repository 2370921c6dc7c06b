//! Terminal escapes from a server: an error message holding `ESC ]0;PWNED BEL ESC [31m`
//! (retitle the terminal, turn it red) was printed raw. Every control character of a
//! server's text is now escaped where it enters massup and again on the way out: no ESC
//! byte reaches stderr or stdout, and the database keeps the escaped text.
#![cfg(target_os = "linux")]

#[path = "hostile_support/mod.rs"]
mod support;

use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use massup::mock::MockConfig;
use support::{leads_fields, off_runtime, serve, status_csv, Bounded, Dir};

const HOSTILE: &str = "\u{1b}]0;PWNED\u{7}\u{1b}[31m";
const DEADLINE: Duration = Duration::from_secs(30);

fn assert_no_escape(ran: &Bounded) {
    for (stream, bytes) in [("stderr", &ran.stderr), ("stdout", &ran.stdout)] {
        assert!(
            !bytes.contains(&0x1b) && !bytes.contains(&0x07),
            "a control character on {stream}\n{}",
            ran.report()
        );
    }
}

async fn massup(dir: Dir, args: Vec<String>, env: Vec<(String, String)>) -> (Dir, Bounded) {
    off_runtime(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let ran = dir.massup(&args, &env, DEADLINE);
        (dir, ran)
    })
    .await
}

/// Regression: an API error and a token refusal whose text holds terminal escapes reached
/// the terminal as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_text_with_terminal_escapes_reaches_no_terminal() {
    let refusal = serde_json::json!({
        "code": "NO_PERMISSION",
        "details": {},
        "message": format!("permission denied{HOSTILE}"),
        "status": "error",
    });
    let url = serve(
        Router::new()
            .route(
                "/crm/v2/Leads/actions/mass_update",
                post(move || {
                    let body = refusal.clone();
                    async move { (StatusCode::FORBIDDEN, axum::Json(body)) }
                }),
            )
            .route(
                "/oauth/v2/token",
                post(|| async {
                    axum::Json(serde_json::json!({ "error": format!("invalid_client{HOSTILE}") }))
                }),
            ),
    )
    .await;
    let dir = Dir::new();
    let ids: Vec<String> = MockConfig::default().record_ids()[..10].to_vec();
    let csv = dir.write("in.csv", status_csv(&ids));
    let token = vec![(
        "ZOHO_ACCESS_TOKEN".to_string(),
        "escape-test-token".to_string(),
    )];
    let run_args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "run",
            "--csv",
            csv.to_str().unwrap(),
            "--module",
            "Leads",
            "--fields",
            leads_fields().to_str().unwrap(),
            "--api-domain",
            &url,
            "--api",
            "mass",
            "--no-snapshot",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    // The API's refusal: a fatal stop, its message on stderr (and at -vv in the log).
    let (dir, ran) = massup(dir, run_args(&["-vv"]), token.clone()).await;
    ran.expect_code(1);
    assert!(ran.stderr().contains("PWNED"), "{}", ran.report());
    assert_no_escape(&ran);
    let (dir, status) = massup(dir, vec!["status".into()], vec![]).await;
    assert_no_escape(&status);
    let (dir, report) = massup(
        dir,
        vec!["report".into(), "--out".into(), "-".into()],
        vec![],
    )
    .await;
    assert_no_escape(&report);
    // The token endpoint's refusal.
    let refresh = vec![
        ("ZOHO_CLIENT_ID".to_string(), "escape-client-id".to_string()),
        (
            "ZOHO_CLIENT_SECRET".to_string(),
            "escape-client-secret".to_string(),
        ),
        (
            "ZOHO_REFRESH_TOKEN".to_string(),
            "escape-refresh-token".to_string(),
        ),
    ];
    let args: Vec<String> = [
        "fields",
        "Leads",
        "--api-domain",
        &url,
        "--accounts-url",
        &url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (dir, refused) = massup(dir, args, refresh).await;
    assert!(refused.stderr().contains("PWNED"), "{}", refused.report());
    assert_no_escape(&refused);
    // What is stored keeps the escapes as text.
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let message: String = conn
        .query_row(
            "SELECT message FROM chunks WHERE message IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(message.contains(r"\x1b]0;PWNED\x07\x1b[31m"), "{message}");
}
