//! Sends the lookup queries of a `--match-by` plan: one COQL query per batch of at most 50
//! keys (and a further page only when a batch matches more rows than one answer holds),
//! under the run's concurrency and rate, with the same backoff, token refresh and credit
//! rules as the update calls. Nothing is stored here: the plan stores what was found, or
//! nothing if a lookup cannot finish.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;

use super::interpret::Step;
use super::pacing::{backoff_delay, limiter, until_ready};
use super::settings::DispatchSettings;
use super::Endpoint;
use crate::api::auth::AuthError;
use crate::api::limits::MAX_IN_VALUES;
use crate::api::response::{credits_exhausted, parse_body, CallAnswer};
use crate::api::{send_call, Exchange};
use crate::outcome::{classify_code, AnswerClass};
use crate::plan::matching::{LookupError, Matches};

/// One query's answer: the rows and whether more lie beyond them, or the next step.
#[derive(Debug)]
pub enum QueryAnswer {
    Rows {
        rows: Vec<serde_json::Map<String, serde_json::Value>>,
        more: bool,
    },
    Step(Step),
}

/// What a COQL exchange means (pure): rows, or what to do instead.
pub fn interpret_query(exchange: &Exchange, can_refresh: bool) -> QueryAnswer {
    let (status, body, retry_after, remaining) = match exchange {
        Exchange::Redirected { status, location } => {
            return QueryAnswer::Step(Step::Fatal {
                code: "REDIRECTED".into(),
                message: format!(
                    "the API answered HTTP {status} redirecting to {location}; massup follows no redirect: check --api-domain / --dc"
                ),
            })
        }
        Exchange::NoAnswer { reason } => {
            return QueryAnswer::Step(Step::Again {
                code: "NO_ANSWER".into(),
                message: reason.clone(),
                retry_after: None,
            })
        }
        Exchange::Answered {
            status,
            body,
            retry_after,
            credits_remaining,
        } => (*status, body, *retry_after, *credits_remaining),
    };
    // A query that found nothing: 204 and no body.
    if status == 204 {
        return QueryAnswer::Rows {
            rows: Vec::new(),
            more: false,
        };
    }
    if status == 200 {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            data: Vec<serde_json::Map<String, serde_json::Value>>,
            #[serde(default)]
            info: Option<Info>,
        }
        #[derive(serde::Deserialize)]
        struct Info {
            #[serde(default)]
            more_records: bool,
        }
        if let Ok(page) = serde_json::from_slice::<Page>(body) {
            return QueryAnswer::Rows {
                more: page.info.is_some_and(|i| i.more_records),
                rows: page.data,
            };
        }
    }
    if credits_exhausted(status, body, remaining.filter(|_| status != 200)) {
        let message = match parse_body(status, body) {
            CallAnswer::Request { code, message } => format!("{code}: {message}"),
            _ => format!("HTTP {status}"),
        };
        return QueryAnswer::Step(Step::CreditsExhausted {
            code: "TOO_MANY_REQUESTS".into(),
            message,
        });
    }
    let (code, message) = match parse_body(status, body) {
        CallAnswer::Request { code, message } => (code, message),
        CallAnswer::Unreadable { reason } => {
            return QueryAnswer::Step(Step::Again {
                code: "UNREADABLE_ANSWER".into(),
                message: reason,
                retry_after,
            })
        }
        CallAnswer::Records(_) => (
            "UNREADABLE_ANSWER".to_string(),
            format!("HTTP {status}: record entries where query rows were expected"),
        ),
    };
    if status == 429 || status >= 500 {
        return QueryAnswer::Step(Step::Again {
            code,
            message,
            retry_after,
        });
    }
    let class = if code == "AUTHENTICATION_FAILURE" && can_refresh {
        AnswerClass::TokenExpired
    } else {
        classify_code(&code)
    };
    QueryAnswer::Step(match class {
        AnswerClass::TokenExpired => Step::Token { code, message },
        AnswerClass::Transient => Step::Again {
            code,
            message,
            retry_after,
        },
        // A query that the server refuses (a field COQL cannot filter on, a module it does
        // not serve) is refused the same way every time.
        _ => Step::Fatal { code, message },
    })
}

/// Looks every key of `matches` up and fills in what Zoho found.
pub async fn look_up(
    endpoint: &Endpoint,
    coql_url: &str,
    matches: &mut Matches,
    max_rows: usize,
    settings: &DispatchSettings,
    stop: &CancellationToken,
) -> Result<(), LookupError> {
    let keys: Vec<String> = matches
        .entries()
        .into_iter()
        .map(|(k, _)| k.to_string())
        .collect();
    let field = matches.field().clone();
    let pace = settings.rate.map(limiter);
    let calls = AtomicU64::new(0);
    let found = Mutex::new(&mut *matches);
    let batches = keys.chunks(MAX_IN_VALUES).map(|batch| {
        let (field, pace, calls, found) = (&field, &pace, &calls, &found);
        async move {
            let mut offset = 0;
            loop {
                let request = RowRequest {
                    method: reqwest::Method::POST,
                    url: coql_url,
                    body:
                        serde_json::json!({ "select_query": field.query(batch, max_rows, offset) })
                            .to_string(),
                    kind: "coql",
                };
                let name = field.api_name().to_string();
                let (rows, more) =
                    read_rows(endpoint, &request, settings, pace.as_ref(), calls, stop)
                        .await
                        .map_err(|failure| match failure {
                            ReadFailure::Stopped => LookupError::Stopped,
                            ReadFailure::CreditsExhausted { message, calls } => {
                                LookupError::CreditsExhausted {
                                    field: name,
                                    message,
                                    calls,
                                }
                            }
                            ReadFailure::AttemptsUsed { code, message }
                            | ReadFailure::Fatal { code, message } => LookupError::Failed {
                                field: name,
                                code,
                                message,
                            },
                        })?;
                offset += rows.len();
                let mut found = found.lock().expect("lookup table lock");
                for row in &rows {
                    found.absorb(row).map_err(|message| LookupError::Failed {
                        field: field.api_name().to_string(),
                        code: "UNREADABLE_ANSWER".into(),
                        message,
                    })?;
                }
                if !more || rows.is_empty() {
                    return Ok::<(), LookupError>(());
                }
            }
        }
    });
    let mut results = futures::stream::iter(batches).buffer_unordered(settings.concurrency.max(1));
    let mut failure = None;
    while let Some(result) = results.next().await {
        if let Err(e) = result {
            // The first failure ends the lookup: the queries still in flight are dropped
            // (a query changes nothing), and nothing is planned.
            failure = Some(e);
            break;
        }
    }
    drop(results);
    matches.calls = calls.load(Ordering::SeqCst);
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Why a read (a COQL query, a Get Records call) gave no rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadFailure {
    /// The stop was called for (Ctrl-C, another worker's fatal answer).
    #[error("stopped")]
    Stopped,
    /// The org's daily credits are spent.
    #[error("the org's daily API credits are spent ({message})")]
    CreditsExhausted { message: String, calls: u64 },
    /// Every attempt failed on something that may pass (5xx, 429, no answer).
    #[error("{code}: {message}")]
    AttemptsUsed { code: String, message: String },
    /// An answer that will not change: a refused token, a bad query, a redirect.
    #[error("{code}: {message}")]
    Fatal { code: String, message: String },
}

/// A request that answers rows (`data`, `info.more_records`; 204 for none).
pub struct RowRequest<'a> {
    pub method: reqwest::Method,
    pub url: &'a str,
    /// The JSON body (a COQL query); empty for a GET.
    pub body: String,
    /// What the call is, for the log.
    pub kind: &'static str,
}

/// Sends one row request until it is answered with rows, or fails for good: at the run's
/// pace, with its attempts and backoff, refreshing a refused token.
pub async fn read_rows(
    endpoint: &Endpoint,
    request: &RowRequest<'_>,
    settings: &DispatchSettings,
    pace: Option<&super::Limiter>,
    calls: &AtomicU64,
    stop: &CancellationToken,
) -> Result<(Vec<serde_json::Map<String, serde_json::Value>>, bool), ReadFailure> {
    let mut rng = rand::rngs::SmallRng::from_os_rng();
    let mut attempts = 0u32;
    loop {
        if stop.is_cancelled() {
            return Err(ReadFailure::Stopped);
        }
        if let Some(limiter) = pace {
            tokio::select! {
                _ = until_ready(limiter) => {}
                _ = stop.cancelled() => return Err(ReadFailure::Stopped),
            }
        }
        let (token, generation) = match endpoint.tokens.token().await {
            Ok(found) => found,
            Err(AuthError::Stopped) => return Err(ReadFailure::Stopped),
            Err(e) => {
                return Err(ReadFailure::Fatal {
                    code: "AUTHENTICATION_FAILURE".into(),
                    message: e.to_string(),
                })
            }
        };
        let (exchange, took) = send_call(
            &endpoint.http,
            request.method.clone(),
            request.url,
            &token,
            request.body.clone(),
        )
        .await;
        let made = calls.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = interpret_query(&exchange, endpoint.tokens.can_refresh());
        let status = match &exchange {
            Exchange::Answered { status, .. } | Exchange::Redirected { status, .. } => {
                i64::from(*status)
            }
            Exchange::NoAnswer { .. } => -1,
        };
        tracing::debug!(
            kind = request.kind,
            http_status = status,
            latency_ms = took.as_millis() as u64,
            attempt = attempts + 1,
            "read call"
        );
        let step = match answer {
            QueryAnswer::Rows { rows, more } => {
                endpoint.tokens.accepted(generation);
                // Credits at zero after a good answer: this one counts, the next would not.
                if let Exchange::Answered {
                    credits_remaining: Some(0),
                    ..
                } = exchange
                {
                    if more {
                        return Err(ReadFailure::CreditsExhausted {
                            message: "X-API-CREDITS-REMAINING: 0".into(),
                            calls: made,
                        });
                    }
                }
                return Ok((rows, more));
            }
            QueryAnswer::Step(step) => step,
        };
        match step {
            Step::Token { code, message } => match endpoint.tokens.rejected(generation).await {
                Ok(true) => continue,
                Ok(false) => {
                    return Err(ReadFailure::Fatal {
                        code,
                        message: format!("{message}: the access token was refused; check ZOHO_ACCESS_TOKEN (or the refresh token) and that --dc / --api-domain name the org's data centre"),
                    })
                }
                Err(AuthError::Stopped) => return Err(ReadFailure::Stopped),
                Err(e) => {
                    return Err(ReadFailure::Fatal {
                        code,
                        message: e.to_string(),
                    })
                }
            },
            Step::CreditsExhausted { message, .. } => {
                return Err(ReadFailure::CreditsExhausted {
                    message,
                    calls: made,
                })
            }
            Step::Fatal { code, message } => return Err(ReadFailure::Fatal { code, message }),
            Step::Settled => unreachable!("a read answer never settles items"),
            Step::Again {
                code,
                message,
                retry_after,
            } => {
                attempts += 1;
                if attempts >= settings.max_attempts {
                    return Err(ReadFailure::AttemptsUsed {
                        code,
                        message: format!("{message} (after {attempts} attempts)"),
                    });
                }
                let delay: Duration = backoff_delay(settings, attempts, retry_after, &mut rng);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return Err(ReadFailure::Stopped),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, body: &str, remaining: Option<u64>) -> Exchange {
        Exchange::Answered {
            status,
            body: bytes::Bytes::from(body.to_string()),
            credits_remaining: remaining,
            retry_after: None,
        }
    }

    #[test]
    fn query_answers_are_read_as_zoho_writes_them() {
        let page = answered(
            200,
            r#"{"data":[{"id":"5","Email":"a@x.com"}],"info":{"count":1,"more_records":true}}"#,
            None,
        );
        match interpret_query(&page, true) {
            QueryAnswer::Rows { rows, more } => assert!(more && rows.len() == 1),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            interpret_query(&answered(204, "", None), true),
            QueryAnswer::Rows { more: false, .. }
        ));
        let refused = answered(
            401,
            r#"{"code":"INVALID_TOKEN","details":{},"message":"invalid oauth token","status":"error"}"#,
            None,
        );
        assert!(matches!(
            interpret_query(&refused, true),
            QueryAnswer::Step(Step::Token { .. })
        ));
        let bad = answered(
            400,
            r#"{"code":"INVALID_QUERY","details":{"column_name":"Description"},"message":"unsupported column","status":"error"}"#,
            None,
        );
        assert!(matches!(
            interpret_query(&bad, true),
            QueryAnswer::Step(Step::Fatal { .. })
        ));
        let spent = answered(
            429,
            r#"{"code":"TOO_MANY_REQUESTS","details":{},"message":"API credits exhausted","status":"error"}"#,
            Some(0),
        );
        assert!(matches!(
            interpret_query(&spent, true),
            QueryAnswer::Step(Step::CreditsExhausted { .. })
        ));
        let busy = answered(
            429,
            r#"{"code":"TOO_MANY_REQUESTS","details":{},"message":"The concurrency limit of the user for the app is exceeded","status":"error"}"#,
            None,
        );
        assert!(matches!(
            interpret_query(&busy, true),
            QueryAnswer::Step(Step::Again { .. })
        ));
        assert!(matches!(
            interpret_query(&Exchange::NoAnswer { reason: "x".into() }, true),
            QueryAnswer::Step(Step::Again { .. })
        ));
    }
}
