//! Reading a `mass_update` answer. Pure: bytes in, a typed answer out, so that it can be
//! fuzzed and unit-tested without a server. Per-record entries are matched by
//! `details.id`, never by position. Every message taken from an answer is passed through
//! `redact` (messages are stored in SQLite and shown, and a server may quote a token) and
//! has its control characters escaped (a server may send terminal escapes).
use std::borrow::Cow;

use serde::Deserialize;

use crate::logging::{escape_controls, server_text};
use crate::redact::{needs_redaction, redact};

/// What one call's answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAnswer<'a> {
    /// Per-record entries, each naming its record. Entries without an id are dropped.
    Records(Vec<RecordAnswer<'a>>),
    /// One code for the whole call (a top-level error object, or a one-entry `data` array
    /// without `details.id`, such as "No field found" or MANDATORY_NOT_FOUND).
    Request { code: String, message: String },
    /// Nothing usable: not JSON, or JSON of an unexpected shape.
    Unreadable { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordAnswer<'a> {
    pub id: i64,
    /// Borrowed from the body where it can be: most answers are 500 identical SUCCESS
    /// entries whose code and message are looked at, never kept.
    pub code: Cow<'a, str>,
    pub message: Cow<'a, str>,
}

// The answer is read with borrowed strings: a 500-record answer is ~160 KB, mostly
// timestamps and user objects that are skipped, and allocating every code and message
// made this parser the hottest spot of a dispatch (profiled: 35% of CPU).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: Option<Vec<Entry<'a>>>,
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    details: Option<Details<'a>>,
}

#[derive(Deserialize)]
struct Details<'a> {
    #[serde(default, deserialize_with = "record_id")]
    id: Option<i64>,
    #[serde(borrow)]
    api_name: Option<Cow<'a, str>>,
}

/// Zoho sends ids as strings; accept numbers too rather than lose an answer, and treat
/// anything else as no id.
fn record_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Id;
    impl<'de> serde::de::Visitor<'de> for Id {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a record id")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<i64>, E> {
            Ok(v.trim().parse().ok())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Option<i64>, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Option<i64>, E> {
            Ok(i64::try_from(v).ok())
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Option<i64>, E> {
            Ok(None)
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Option<i64>, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Option<i64>, E> {
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Option<i64>, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Option<i64>, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
    }
    d.deserialize_any(Id)
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

/// Longest code kept from the server: Zoho's are under 40 characters; a longer one is not
/// Zoho's, and is kept cut short (it is read as an unknown code, a refusal, either way).
const MAX_CODE: usize = 100;

/// A code as kept: [`clip`]ped to [`MAX_CODE`], borrowed when it fits (nearly always).
fn clip_code(code: Cow<'_, str>) -> Cow<'_, str> {
    if code.len() <= MAX_CODE {
        return code;
    }
    let mut end = MAX_CODE;
    while !code.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}...", &code[..end]))
}

/// `text` redacted when `suspect` (the answer as a whole holds something to mask), its
/// control characters escaped; still borrowed from the answer when nothing changed.
fn redacted(text: Cow<'_, str>, suspect: bool) -> Cow<'_, str> {
    let text = masked(text, suspect);
    // A cheap look first: every control character but C1 is a byte below 0x20 or 0x7f, and
    // C1 is 0xC2 0x80..0x9F in UTF-8.
    if !text.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xC2) {
        return text;
    }
    match escape_controls(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(escaped) => Cow::Owned(escaped),
    }
}

/// A borrowed string is a slice of the body, so `suspect` (the body holds nothing to
/// mask) speaks for it; an owned one had JSON escapes decoded (`\u0073ecret`), which the
/// look at the body could not see through, so it is always redacted.
fn masked(text: Cow<'_, str>, suspect: bool) -> Cow<'_, str> {
    match text {
        Cow::Borrowed(text) if !suspect => Cow::Borrowed(text),
        Cow::Borrowed(text) => redact(text),
        Cow::Owned(text) => {
            let masked = match redact(&text) {
                Cow::Owned(masked) => Some(masked),
                Cow::Borrowed(_) => None,
            };
            Cow::Owned(masked.unwrap_or(text))
        }
    }
}

fn entry_message<'a>(entry: &mut Entry<'a>, suspect: bool) -> Cow<'a, str> {
    let message = redacted(entry.message.take().unwrap_or_default(), suspect);
    match entry.details.as_ref().and_then(|d| d.api_name.as_deref()) {
        Some(field) => Cow::Owned(clip(&format!("{message} (field {})", server_text(field)))),
        None if message.len() <= MAX_MESSAGE => message,
        None => Cow::Owned(clip(&message)),
    }
}

/// One `data[]` entry, in the order of the answer, whether or not it names a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryAnswer<'a> {
    pub id: Option<i64>,
    pub code: Cow<'a, str>,
    pub message: Cow<'a, str>,
}

/// The `data[]` entries of an answer in order, when it has them and each has a code. For
/// Update Records, whose answer lists one entry per record in request order (Zoho's
/// update-records page), and whose DUPLICATE_DATA entry names the *other* record in
/// `details.id`: there the position, not the id, says which record an entry is about.
pub fn parse_entries(body: &[u8]) -> Option<Vec<EntryAnswer<'_>>> {
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let suspect = std::str::from_utf8(body).map_or(true, needs_redaction);
    let mut out = Vec::new();
    for mut entry in envelope.data? {
        let code = clip_code(redacted(entry.code.take()?, suspect));
        let id = entry.details.as_ref().and_then(|d| d.id);
        let message = entry_message(&mut entry, suspect);
        out.push(EntryAnswer { id, code, message });
    }
    Some(out)
}

/// The record id of a row Zoho answered (Get Records, COQL): `"id"` as a string of digits
/// (as Zoho writes it) or a number.
pub fn row_record_id(row: &serde_json::Map<String, serde_json::Value>) -> Option<i64> {
    match row.get("id") {
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        _ => None,
    }
    .filter(|&id| id > 0)
}

/// Parses the body of an answer with HTTP status `status`.
pub fn parse_body(status: u16, body: &[u8]) -> CallAnswer<'_> {
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(e) => {
            return CallAnswer::Unreadable {
                reason: clip(&server_text(&format!(
                    "HTTP {status} with a body that is not Zoho's JSON ({e}; {} bytes)",
                    body.len()
                ))),
            }
        }
    };
    // Redaction per message only when the body holds something to mask: one scan of a
    // 150 KB, 500-record answer takes ~0.05 ms (debug build), where redacting its 1,000
    // codes and messages one by one took ~0.6 ms of the 2 ms parse. A body that is not
    // UTF-8 is redacted message by message.
    let suspect = std::str::from_utf8(body).map_or(true, needs_redaction);
    if let Some(entries) = envelope.data {
        let mut records = Vec::with_capacity(entries.len());
        let mut without_id = Vec::new();
        for mut entry in entries {
            let id = entry.details.as_ref().and_then(|d| d.id);
            match (id, entry.code.take()) {
                (Some(id), Some(code)) => {
                    let code = clip_code(redacted(code, suspect));
                    let message = entry_message(&mut entry, suspect);
                    records.push(RecordAnswer { id, code, message });
                }
                (_, code) => {
                    entry.code = code;
                    without_id.push(entry);
                }
            }
        }
        if !records.is_empty() {
            return CallAnswer::Records(records);
        }
        // No entry names a record: a request-level answer if every entry says the same.
        if let Some(code) = without_id.first().and_then(|e| e.code.clone()) {
            if without_id.iter().all(|e| e.code.as_ref() == Some(&code)) {
                let message = entry_message(&mut without_id[0], suspect).into_owned();
                return CallAnswer::Request {
                    code: clip_code(server_text(&code)).into_owned(),
                    message,
                };
            }
        }
        return CallAnswer::Unreadable {
            reason: format!("HTTP {status}: a data array whose entries name no record"),
        };
    }
    match envelope.code {
        Some(code) => CallAnswer::Request {
            code: clip_code(server_text(&code)).into_owned(),
            message: clip(&server_text(envelope.message.as_deref().unwrap_or(""))),
        },
        None => CallAnswer::Unreadable {
            reason: format!("HTTP {status}: JSON without data or code"),
        },
    }
}

/// Whether an answer says the org's daily API credits are used up, so that nothing more
/// can be sent until Zoho's rolling 24-hour window frees some: the run should stop,
/// resumable, rather than retry (every retry is refused the same way).
///
/// Zoho reports credit exhaustion with HTTP 429 and the same code as the concurrency cap,
/// `TOO_MANY_REQUESTS`. Zoho's status-code tables describe 429 as "Number of API requests
/// for the 24 hour period is exceeded or the concurrency limit of the user for the app is
/// exceeded" (<https://www.zoho.com/people/api/status-codes.html> has the row word for word;
/// Zoho CRM's SDKs carry the same row), and Zoho's post "Kaizen #203 - Handling API Limits
/// and Error Responses" (<https://help.zoho.com/portal/en/community/topic/kaizen-203-answering-your-questions-handling-api-limits-and-error-responses>)
/// gives TOO_MANY_REQUESTS for the limits; the credit counts are on
/// <https://www.zoho.com/crm/developer/docs/api/v2/api-limits.html>. No separate code (such
/// as LIMIT_REACHED) is documented for the CRM API. So:
/// - `X-API-CREDITS-REMAINING: 0` (sent once half the credits are used) is exhaustion
///   whatever the status: the call that brought it may have succeeded, the next will not.
/// - A 429 whose text speaks of the 24-hour period or of credits, and not of concurrency,
///   is exhaustion; Zoho's generic sentence above names both and is not (a concurrency
///   429 must be retried with backoff, and the header tells the two apart once credits
///   run low).
///
/// Pure, cheap, and reads only the first few KB of the body.
pub fn credits_exhausted(status: u16, body: &[u8], credits_remaining: Option<u64>) -> bool {
    if credits_remaining == Some(0) {
        return true;
    }
    if status != 429 {
        return false;
    }
    let head = &body[..body.len().min(4096)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let daily = ["24 hour", "24-hour", "24hour", "per day", "daily", "credit"]
        .iter()
        .any(|w| text.contains(w));
    daily && !text.contains("concurren")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_exhaustion_is_told_from_a_concurrency_429() {
        let daily = br#"{"code":"TOO_MANY_REQUESTS","details":{},"message":"Number of API requests for the 24 hour period is exceeded","status":"error"}"#;
        let old_shape = br#"{"code":429,"error":"TOO_MANY_REQUESTS","error_info":"Many requests fired than the allowed limit for the past 24 hours."}"#;
        let credits = br#"{"code":"TOO_MANY_REQUESTS","details":{},"message":"API credits exhausted","status":"error"}"#;
        let concurrency = br#"{"code":"TOO_MANY_REQUESTS","details":{},"message":"The concurrency limit of the user for the app is exceeded","status":"error"}"#;
        let generic = br#"{"code":"TOO_MANY_REQUESTS","details":{},"message":"Number of API requests for the 24 hour period is exceeded or the concurrency limit of the user for the app is exceeded","status":"error"}"#;
        let bare = br#"{"code":"TOO_MANY_REQUESTS","details":{},"message":"too many requests","status":"error"}"#;
        assert!(credits_exhausted(429, daily, None));
        assert!(credits_exhausted(429, old_shape, None));
        assert!(credits_exhausted(429, credits, None));
        assert!(!credits_exhausted(429, concurrency, None));
        assert!(!credits_exhausted(429, generic, None));
        assert!(!credits_exhausted(429, bare, None));
        assert!(!credits_exhausted(429, b"", None));
        // Only a 429 is read for words: a record message mentioning credits is not one.
        assert!(!credits_exhausted(200, daily, None));
        assert!(!credits_exhausted(400, credits, Some(12)));
    }

    #[test]
    fn no_credits_left_is_exhaustion_whatever_the_answer() {
        assert!(credits_exhausted(200, b"{}", Some(0)));
        assert!(credits_exhausted(429, b"", Some(0)));
        assert!(!credits_exhausted(429, b"", Some(1)));
        assert!(!credits_exhausted(200, b"{}", Some(25_000)));
    }

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
    fn messages_are_redacted() {
        crate::redact::register("response-test-token-abcdef");
        let body = br#"{"code":"INVALID_TOKEN","message":"bad token response-test-token-abcdef"}"#;
        let CallAnswer::Request { message, .. } = parse_body(401, body) else {
            panic!()
        };
        assert_eq!(message, "bad token ***");
        let body = br#"{"data":[{"code":"INVALID_DATA","details":{"id":"1","api_name":"F"},"message":"Bearer 1000.x.y refused"}]}"#;
        let CallAnswer::Records(records) = parse_body(400, body) else {
            panic!()
        };
        assert_eq!(records[0].message, "Bearer *** refused (field F)");
        // Escaped in the JSON so that the body itself holds no registered form.
        let body = br#"{"code":"X","message":"echo \u0072esponse-test-token-abcdef"}"#;
        let CallAnswer::Request { message, .. } = parse_body(400, body) else {
            panic!()
        };
        assert_eq!(message, "echo ***");
    }

    #[test]
    fn control_characters_are_escaped() {
        let body = br#"{"code":"INVALID_DATA\u001b[2J","message":"bad \u001b]0;PWNED\u0007\u001b[31m \u009b"}"#;
        let CallAnswer::Request { code, message } = parse_body(400, body) else {
            panic!()
        };
        assert_eq!(code, "INVALID_DATA\\x1b[2J");
        assert_eq!(message, "bad \\x1b]0;PWNED\\x07\\x1b[31m \\u{9b}");
        let body =
            br#"{"data":[{"code":"INVALID_DATA","details":{"id":"1"},"message":"x\u001by"}]}"#;
        let CallAnswer::Records(records) = parse_body(400, body) else {
            panic!()
        };
        assert_eq!(records[0].message, "x\\x1by");
        let entries = parse_entries(body).unwrap();
        assert_eq!(entries[0].message, "x\\x1by");
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
