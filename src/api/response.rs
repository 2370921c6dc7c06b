//! Reading a `mass_update` answer. Pure: bytes in, a typed answer out, so that it can be
//! fuzzed and unit-tested without a server. Per-record entries are matched by
//! `details.id`, never by position.
use serde::Deserialize;

/// What one call's answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAnswer {
    /// Per-record entries, each naming its record. Entries without an id are dropped.
    Records(Vec<RecordAnswer>),
    /// One code for the whole call (a top-level error object, or a one-entry `data` array
    /// without `details.id`, such as "No field found" or MANDATORY_NOT_FOUND).
    Request { code: String, message: String },
    /// Nothing usable: not JSON, or JSON of an unexpected shape.
    Unreadable { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordAnswer {
    pub id: i64,
    pub code: String,
    pub message: String,
}

#[derive(Deserialize)]
struct Envelope {
    data: Option<Vec<Entry>>,
    code: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct Entry {
    code: Option<String>,
    message: Option<String>,
    details: Option<Details>,
}

#[derive(Deserialize)]
struct Details {
    id: Option<IdValue>,
    api_name: Option<String>,
}

/// Zoho sends ids as strings; accept numbers too rather than lose an answer.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdValue {
    Text(String),
    Number(i64),
    Other(serde::de::IgnoredAny),
}

impl IdValue {
    fn as_i64(&self) -> Option<i64> {
        match self {
            IdValue::Text(s) => s.trim().parse().ok(),
            IdValue::Number(n) => Some(*n),
            IdValue::Other(_) => None,
        }
    }
}

/// Longest message kept from the server, so a hostile or broken answer cannot bloat the
/// database.
const MAX_MESSAGE: usize = 500;

fn clip(text: &str) -> String {
    if text.len() <= MAX_MESSAGE {
        return text.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

fn entry_message(entry: &Entry) -> String {
    let message = entry.message.as_deref().unwrap_or("");
    match entry.details.as_ref().and_then(|d| d.api_name.as_deref()) {
        Some(field) => clip(&format!("{message} (field {field})")),
        None => clip(message),
    }
}

/// Parses the body of an answer with HTTP status `status`.
pub fn parse_body(status: u16, body: &[u8]) -> CallAnswer {
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(e) => {
            return CallAnswer::Unreadable {
                reason: clip(&format!(
                    "HTTP {status} with a body that is not Zoho's JSON ({e}; {} bytes)",
                    body.len()
                )),
            }
        }
    };
    if let Some(entries) = envelope.data {
        let mut records = Vec::with_capacity(entries.len());
        let mut without_id = Vec::new();
        for entry in &entries {
            let id = entry
                .details
                .as_ref()
                .and_then(|d| d.id.as_ref())
                .and_then(IdValue::as_i64);
            match (id, &entry.code) {
                (Some(id), Some(code)) => records.push(RecordAnswer {
                    id,
                    code: code.clone(),
                    message: entry_message(entry),
                }),
                _ => without_id.push(entry),
            }
        }
        if !records.is_empty() {
            return CallAnswer::Records(records);
        }
        // No entry names a record: a request-level answer if every entry says the same.
        if let Some(first) = without_id.first() {
            if let Some(code) = &first.code {
                if without_id.iter().all(|e| e.code.as_ref() == Some(code)) {
                    return CallAnswer::Request {
                        code: code.clone(),
                        message: entry_message(first),
                    };
                }
            }
        }
        return CallAnswer::Unreadable {
            reason: format!("HTTP {status}: a data array whose entries name no record"),
        };
    }
    match envelope.code {
        Some(code) => CallAnswer::Request {
            code,
            message: clip(envelope.message.as_deref().unwrap_or("")),
        },
        None => CallAnswer::Unreadable {
            reason: format!("HTTP {status}: JSON without data or code"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_record_entries_match_by_id_not_position() {
        let body = br#"{"data":[
            {"code":"RECORD_LOCKED","details":{"action":"zia_vision_processing","id":"475243000003269880"},"message":"locked","status":"error"},
            {"code":"SUCCESS","details":{"id":"738964000002131001","Modified_Time":"x"},"message":"record updated","status":"success"},
            {"code":"INVALID_DATA","details":{"api_name":"No_of_Employees","id":"738964000002130131"},"message":"invalid data","status":"error"}
        ]}"#;
        let CallAnswer::Records(records) = parse_body(207, body) else {
            panic!("expected records");
        };
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].id, 475243000003269880);
        assert_eq!(records[0].code, "RECORD_LOCKED");
        assert_eq!(records[2].message, "invalid data (field No_of_Employees)");
    }

    #[test]
    fn request_level_shapes() {
        let no_field = br#"{"data":[{"code":"INVALID_DATA","details":{},"message":"No field found","status":"error"}]}"#;
        assert_eq!(
            parse_body(200, no_field),
            CallAnswer::Request {
                code: "INVALID_DATA".into(),
                message: "No field found".into()
            }
        );
        let auth = br#"{"code":"AUTHENTICATION_FAILURE","details":{},"message":"Authentication failed","status":"error"}"#;
        assert_eq!(
            parse_body(401, auth),
            CallAnswer::Request {
                code: "AUTHENTICATION_FAILURE".into(),
                message: "Authentication failed".into()
            }
        );
    }

    #[test]
    fn garbage_is_unreadable_never_success() {
        for body in [
            &b"<html>oops</html>"[..],
            b"",
            b"[]",
            b"{}",
            b"{\"data\":[{\"code\":\"SUCCESS\"},{\"code\":\"INVALID_DATA\"}]}",
            b"null",
        ] {
            assert!(
                matches!(parse_body(200, body), CallAnswer::Unreadable { .. }),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn long_messages_are_clipped() {
        let long = "é".repeat(1000);
        let body = format!(r#"{{"code":"X","message":"{long}"}}"#);
        let CallAnswer::Request { message, .. } = parse_body(400, body.as_bytes()) else {
            panic!()
        };
        assert!(message.len() <= MAX_MESSAGE + 3);
    }
}
