//! The reading kinds of call: COQL queries (the `--match-by` lookups) and Get Records by
//! ids (the snapshot, `plan --diff`). Both answer rows (`data`, `info.more_records`; 204
//! for none) and go through the attempt loop like the writes.
use std::collections::HashMap;

use serde_json::{Map, Value};

use super::attempt::{attempt, Call, Caller, Failure, Request, Verdict};
use super::context::SendContext;
use super::interpret::Step;
use crate::api::limits::{credits, CallKind, MAX_FIELDS_PER_READ, MAX_IDS_PER_READ};
use crate::api::response::{credits_exhausted, parse_body, CallAnswer};
use crate::api::Exchange;
use crate::outcome::{classify_code, AnswerClass};
use crate::store::chunks::CallRecord;

pub type Rows = Vec<Map<String, Value>>;

/// One page of rows: the rows, whether more lie beyond them, and the token Zoho gives for
/// the next page of a listing (`info.next_page_token`, from v2.1; the only way past 2,000
/// records).
#[derive(Debug, Default)]
pub struct Page {
    pub rows: Rows,
    pub more: bool,
    pub next_page_token: Option<String>,
}

/// One query's answer: a page of rows, or the next step.
#[derive(Debug)]
pub enum QueryAnswer {
    Rows(Page),
    Step(Step),
}

/// What a COQL exchange means (pure): rows, or what to do instead.
pub fn interpret_query(exchange: &Exchange, can_refresh: bool) -> QueryAnswer {
    let (status, body, retry_after, remaining) = match exchange {
        Exchange::Redirected { status, location } => {
            return QueryAnswer::Step(Step::Fatal {
                code: crate::codes::REDIRECTED.into(),
                message: format!(
                    "the API answered HTTP {status} redirecting to {location}; massup follows no redirect: check --api-domain / --dc"
                ),
            })
        }
        Exchange::NoAnswer { reason } => {
            return QueryAnswer::Step(Step::Again {
                code: crate::codes::NO_ANSWER.into(),
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
        return QueryAnswer::Rows(Page::default());
    }
    if status == 200 {
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            data: Vec<serde_json::Map<String, serde_json::Value>>,
            #[serde(default)]
            info: Option<Info>,
        }
        #[derive(serde::Deserialize)]
        struct Info {
            #[serde(default)]
            more_records: bool,
            #[serde(default)]
            next_page_token: Option<String>,
        }
        if let Ok(page) = serde_json::from_slice::<Answer>(body) {
            let info = page.info.unwrap_or(Info {
                more_records: false,
                next_page_token: None,
            });
            return QueryAnswer::Rows(Page {
                rows: page.data,
                more: info.more_records,
                next_page_token: info.next_page_token.filter(|t| !t.is_empty()),
            });
        }
    }
    QueryAnswer::Step(refused(status, body, retry_after, remaining, can_refresh))
}

/// What an answer that is not the rows or document asked for means: the daily credits
/// spent, an answer to try again (429, 5xx, unreadable), a refused token, or a refusal
/// that the same request would meet every time (fatal).
pub fn refused(
    status: u16,
    body: &[u8],
    retry_after: Option<std::time::Duration>,
    remaining: Option<u64>,
    can_refresh: bool,
) -> Step {
    if credits_exhausted(status, body, remaining.filter(|_| status != 200)) {
        let message = match parse_body(status, body) {
            CallAnswer::Request { code, message } => format!("{code}: {message}"),
            _ => format!("HTTP {status}"),
        };
        return Step::CreditsExhausted {
            code: "TOO_MANY_REQUESTS".into(),
            message,
        };
    }
    let (code, message) = match parse_body(status, body) {
        CallAnswer::Request { code, message } => (code, message),
        CallAnswer::Unreadable { reason } => {
            return Step::Again {
                code: crate::codes::UNREADABLE_ANSWER.into(),
                message: reason,
                retry_after,
            }
        }
        CallAnswer::Records(_) => (
            crate::codes::UNREADABLE_ANSWER.to_string(),
            format!("HTTP {status}: record entries where another answer was expected"),
        ),
    };
    if status == 429 || status >= 500 {
        return Step::Again {
            code,
            message,
            retry_after,
        };
    }
    let class = if code == "AUTHENTICATION_FAILURE" && can_refresh {
        AnswerClass::TokenExpired
    } else {
        classify_code(&code)
    };
    match class {
        AnswerClass::TokenExpired => Step::Token { code, message },
        AnswerClass::Transient => Step::Again {
            code,
            message,
            retry_after,
        },
        // A query that the server refuses (a field COQL cannot filter on, a module it does
        // not serve) is refused the same way every time.
        _ => Step::Fatal { code, message },
    }
}

/// One request that answers rows, as the attempt loop drives it. A snapshot's read is
/// logged with the chunk it reads for.
pub struct RowsCall<'a> {
    request: Request,
    log_with: Option<(&'a SendContext, i64)>,
}

impl<'a> RowsCall<'a> {
    /// A COQL query (priced by its LIMIT).
    pub fn coql(caller: &Caller, query: String, limit: usize) -> RowsCall<'a> {
        RowsCall {
            request: Request {
                kind: CallKind::Coql,
                method: reqwest::Method::POST,
                url: caller.endpoint.urls.coql(),
                body: serde_json::json!({ "select_query": query }).to_string(),
                records: 0,
                credits: credits(CallKind::Coql, limit),
                upload: None,
            },
            log_with: None,
        }
    }

    /// One page of a listing of every record of the module: `fields` (at most 50), `per_page`
    /// records (at most 200), priced as any Get Records call.
    pub fn list(
        caller: &Caller,
        fields: &[String],
        per_page: usize,
        at: &crate::api::PageAt,
    ) -> RowsCall<'a> {
        let endpoint = &caller.endpoint;
        RowsCall {
            request: Request {
                kind: CallKind::GetRecords,
                method: reqwest::Method::GET,
                url: endpoint
                    .urls
                    .list_records(&endpoint.module, fields, per_page, at),
                body: String::new(),
                records: 0,
                credits: credits(CallKind::GetRecords, per_page),
                upload: None,
            },
            log_with: None,
        }
    }

    /// Get Records of `ids` (at most 100) and `fields` (at most 50).
    pub fn get_records(
        caller: &Caller,
        ids: &[i64],
        fields: &[String],
        log_with: Option<(&'a SendContext, i64)>,
    ) -> RowsCall<'a> {
        let endpoint = &caller.endpoint;
        RowsCall {
            request: Request {
                kind: CallKind::GetRecords,
                method: reqwest::Method::GET,
                url: endpoint.urls.get_records(&endpoint.module, ids, fields),
                body: String::new(),
                records: ids.len(),
                credits: credits(CallKind::GetRecords, ids.len()),
                upload: None,
            },
            log_with,
        }
    }
}

impl Call for RowsCall<'_> {
    type Output = Page;

    fn request(&self) -> Request {
        self.request.clone()
    }

    fn read(&mut self, exchange: &Exchange, can_refresh: bool) -> Verdict<Page> {
        let http_status = match exchange {
            Exchange::Answered { status, .. } | Exchange::Redirected { status, .. } => {
                Some(*status)
            }
            Exchange::NoAnswer { .. } => None,
        };
        match interpret_query(exchange, can_refresh) {
            QueryAnswer::Rows(page) => Verdict {
                outcome: Ok(page),
                http_status,
                call_code: crate::codes::SUCCESS.into(),
            },
            QueryAnswer::Step(step) => {
                let call_code = step.code().to_string();
                Verdict {
                    outcome: Err(step),
                    http_status,
                    call_code,
                }
            }
        }
    }

    async fn attempted(&mut self, call: CallRecord, _retry: Option<(String, String)>) {
        if let Some((ctx, chunk_id)) = self.log_with {
            ctx.log_call(chunk_id, call).await;
        }
    }
}

/// Current values of `fields` for `ids`, by record id (100 ids and 50 fields a call);
/// records Zoho does not return are left out. `log_with` logs each call with a chunk.
pub async fn current_values(
    caller: &Caller,
    ids: &[i64],
    fields: &[String],
    log_with: Option<(&SendContext, i64)>,
) -> Result<HashMap<i64, Map<String, Value>>, Failure> {
    let mut current: HashMap<i64, Map<String, Value>> = HashMap::with_capacity(ids.len());
    for batch in ids.chunks(MAX_IDS_PER_READ) {
        for columns in fields.chunks(MAX_FIELDS_PER_READ) {
            let mut call = RowsCall::get_records(caller, batch, columns, log_with);
            let page = attempt(caller, &mut call).await?;
            for row in page.rows {
                if let Some(id) = crate::api::response::row_record_id(&row) {
                    current.entry(id).or_default().extend(row);
                }
            }
        }
    }
    Ok(current)
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
            QueryAnswer::Rows(page) => assert!(page.more && page.rows.len() == 1),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            interpret_query(&answered(204, "", None), true),
            QueryAnswer::Rows(Page { more: false, .. })
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
