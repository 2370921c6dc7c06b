//! Redaction: the last line of defence that keeps credentials out of everything massup
//! prints, logs or stores. `Secret` (in `api::auth`) keeps a credential from being
//! formatted by accident; this module catches what `Secret` cannot: a server that echoes
//! a token back in an error message, a reqwest error that quotes a request, a panic that
//! formats a value it should not have.
//!
//! Two layers, applied by [`redact`]:
//! - **Registered values**: every credential massup holds (client id, client secret,
//!   refresh token, every access token given or minted) is [`register`]ed once, and each
//!   occurrence of it in any text is replaced with `***`. The client id is registered
//!   too: it is not a password, but it is half of the client's credentials, nothing
//!   massup prints needs it, and the token-budget file names a client by a hash instead.
//! - **Shapes**: text that looks like a credential even though massup never held it
//!   (`Zoho-oauthtoken x`, `Bearer x`, `client_secret=x`, `refresh_token=x`,
//!   `access_token=x`, `"access_token":"x"` and the like, and Zoho's token shape
//!   `1000.<hex>.<hex>`), so that another client's token quoted by a server is masked too.
//!
//! The registry is process-wide because secrets are found in one place (loading
//! credentials, minting tokens) and must be masked everywhere else (logs, errors, the
//! database) without threading a value through every function.
use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Values shorter than this are not registered: masking every "abc" or "1" in every
/// message would make output unreadable, and no real credential is that short (Zoho's
/// tokens and secrets are 30+ characters; the tests' mock ones are 10+).
pub const MIN_SECRET_LEN: usize = 6;

struct Registry {
    values: Vec<String>,
    matcher: Option<AhoCorasick>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    values: Vec::new(),
    matcher: None,
});

/// Set once anything is registered, so that the common case (nothing registered, e.g.
/// `plan`) costs one atomic load rather than a lock.
static ANY_REGISTERED: AtomicBool = AtomicBool::new(false);

/// Credential shapes, one alternative each. `kN` groups are the part kept (the key or
/// scheme); what follows them up to a delimiter is masked. The Zoho token shape is masked
/// whole. Every alternative starts with a short set of case-sensitive literals, so the
/// regex skips text between them with a SIMD prefilter: `(?i)` on the key names made the
/// literal sets too large to extract, and a whole 150 KB answer took 1.3 ms to scan in a
/// debug build instead of ~0.1 ms. ASCII word boundaries (`(?-u:\b)`) keep the regex on
/// its DFA path for any input.
static SHAPES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        // Authorization header values: `Zoho-oauthtoken x`, `Bearer x`. The value must hold
        // a digit or punctuation, so that prose ("the bearer of bad news") is left alone.
        r"(?P<k1>(?-u:\b)(?:Zoho-oauthtoken|zoho-oauthtoken|Bearer|bearer|BEARER)[ \t]+)",
        r"[A-Za-z]*[0-9._~+/=-][A-Za-z0-9._~+/=-]*",
        // Form or query fields: `client_secret=x&...`.
        r#"|(?P<k2>(?-u:\b)(?:client_secret|refresh_token|access_token)=)[^&\s"',;]+"#,
        // JSON fields: `"access_token": "x"`, also inside a JSON string (`\"access_token\":\"x\"`,
        // as a JSON log line quotes a message). Tokens hold no quote or backslash.
        r#"|(?P<k3>(?:client_secret|refresh_token|access_token)\\?"[ \t]*:[ \t]*\\?")[^"\\]*"#,
        // Zoho's access and refresh tokens: 1000.<32+ hex>.<32+ hex>.
        r"|(?-u:\b)1000\.[0-9a-fA-F]{32,}\.[0-9a-fA-F]{32,}",
    ))
    .expect("the credential shapes are a valid regex")
});

/// Remembers `value` as a secret: from now on [`redact`] masks it wherever it appears.
/// Surrounding whitespace is ignored; values shorter than [`MIN_SECRET_LEN`] characters
/// are ignored (see there). Cheap to call again with a value already known.
pub fn register(value: &str) {
    let value = value.trim();
    if value.chars().count() < MIN_SECRET_LEN {
        return;
    }
    let mut registry = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    if registry.values.iter().any(|v| v == value) {
        return;
    }
    registry.values.push(value.to_string());
    // Leftmost-longest: when one secret contains another, the whole of it is masked.
    registry.matcher = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&registry.values)
        .ok();
    ANY_REGISTERED.store(true, Ordering::Release);
}

/// `text` with every registered secret and every credential-shaped substring replaced by
/// `***`. Borrows (no allocation) when there is nothing to mask, which is nearly always.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    if ANY_REGISTERED.load(Ordering::Acquire) {
        let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
        if let Some(matcher) = &registry.matcher {
            if matcher.is_match(text) {
                let masks = vec![MASK; registry.values.len()];
                out = Cow::Owned(matcher.replace_all(text, &masks));
            }
        }
    }
    match SHAPES.replace_all(&out, mask_shape) {
        Cow::Borrowed(_) => out,
        Cow::Owned(masked) => Cow::Owned(masked),
    }
}

/// Whether [`redact`] would change `text`. One pass over a whole answer is cheaper than
/// redacting each of its hundreds of short messages, and nearly always says no.
pub fn needs_redaction(text: &str) -> bool {
    if ANY_REGISTERED.load(Ordering::Acquire) {
        let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
        if registry.matcher.as_ref().is_some_and(|m| m.is_match(text)) {
            return true;
        }
    }
    SHAPES.is_match(text)
}

fn mask_shape(caps: &regex::Captures<'_>) -> String {
    let kept = ["k1", "k2", "k3"]
        .iter()
        .find_map(|name| caps.name(name))
        .map_or("", |m| m.as_str());
    format!("{kept}{MASK}")
}

/// A `tracing_subscriber` writer factory that passes every log line through [`redact`]
/// before it reaches the wrapped writer (stderr in massup):
/// `fmt().with_writer(RedactingWriter::new(std::io::stderr))`. The formatter writes one
/// event per writer, so a secret is never split between two writes. Control characters
/// are escaped too ([`crate::logging::escape_controls`]), so a server's text cannot drive
/// the terminal through a log line.
#[derive(Debug, Clone)]
pub struct RedactingWriter<M> {
    inner: M,
    colours: bool,
}

impl<M> RedactingWriter<M> {
    pub fn new(inner: M) -> RedactingWriter<M> {
        RedactingWriter {
            inner,
            colours: false,
        }
    }

    /// The formatter writes ANSI colours (stderr is a terminal): ESC is left alone, since
    /// the colours are the formatter's own; tracing-subscriber (0.3.20 on) escapes ESC,
    /// BEL and the C1 range inside every field value itself, and every other control
    /// character is still escaped here.
    pub fn with_colours(mut self, colours: bool) -> RedactingWriter<M> {
        self.colours = colours;
        self
    }
}

impl<'a, M> tracing_subscriber::fmt::MakeWriter<'a> for RedactingWriter<M>
where
    M: tracing_subscriber::fmt::MakeWriter<'a>,
{
    type Writer = RedactingLine<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingLine::new(self.inner.make_writer()).with_colours(self.colours)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        RedactingLine::new(self.inner.make_writer_for(meta)).with_colours(self.colours)
    }
}

/// One event's worth of output: collected, then redacted, its control characters escaped,
/// and written on flush or drop.
pub struct RedactingLine<W: Write> {
    inner: W,
    buffer: Vec<u8>,
    colours: bool,
}

impl<W: Write> RedactingLine<W> {
    pub fn new(inner: W) -> RedactingLine<W> {
        RedactingLine {
            inner,
            buffer: Vec::new(),
            colours: false,
        }
    }

    /// See [`RedactingWriter::with_colours`].
    pub fn with_colours(mut self, colours: bool) -> RedactingLine<W> {
        self.colours = colours;
        self
    }

    fn emit(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buffer);
        let masked = redact(&text);
        let shown = if self.colours {
            escape_but_esc(&masked)
        } else {
            crate::logging::escape_controls(&masked)
        };
        let result = self.inner.write_all(shown.as_bytes());
        self.buffer.clear();
        result.and_then(|()| self.inner.flush())
    }
}

/// [`crate::logging::escape_controls`] that keeps ESC (a colour the formatter wrote).
fn escape_but_esc(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|ch| ch != '\x1b' && crate::logging::is_unsafe_control(ch))
    {
        return Cow::Borrowed(text);
    }
    let parts: Vec<Cow<'_, str>> = text
        .split('\x1b')
        .map(crate::logging::escape_controls)
        .collect();
    Cow::Owned(parts.join("\x1b"))
}

impl<W: Write> Write for RedactingLine<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.emit()
    }
}

impl<W: Write> Drop for RedactingLine<W> {
    fn drop(&mut self) {
        let _ = self.emit();
    }
}

/// Replaces the panic hook with one that prints the same information as Rust's default
/// (thread, location, message, and a backtrace when RUST_BACKTRACE asks for one), with
/// the message and backtrace passed through [`redact`]. Call once, early in `main`.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = panic_message(info.payload());
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_else(|| "an unknown location".into());
        let mut text = format!(
            "thread '{name}' panicked at {location}:\n{}\n",
            crate::logging::escape_controls(&redact(&message))
        );
        let wanted = std::env::var("RUST_BACKTRACE").is_ok_and(|v| v != "0");
        if wanted {
            let trace = std::backtrace::Backtrace::force_capture().to_string();
            text.push_str(&redact(&trace));
            text.push('\n');
        } else {
            text.push_str(
                "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
            );
        }
        if PANICS_AS_JSON.load(Ordering::Relaxed) {
            text = panic_json_line(&text);
        }
        let _ = std::io::stderr().write_all(text.as_bytes());
    }));
}

/// A panic's (already redacted) report as one JSON line in the log's shape.
fn panic_json_line(text: &str) -> String {
    let line = serde_json::json!({
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "level": "ERROR",
        "fields": {"message": text.trim_end(), "event": "panic"},
        "target": "massup",
    });
    format!("{line}\n")
}

/// Whether the panic hook writes a JSON line (set with `--log-format json`).
static PANICS_AS_JSON: AtomicBool = AtomicBool::new(false);

/// Makes the panic hook write its report as one JSON line, so that every stderr line of a
/// JSON-logging process parses, a panic's included.
pub fn panics_as_json(on: bool) {
    PANICS_AS_JSON.store(on, Ordering::Relaxed);
}

/// The text of a panic payload (`panic!("...")` gives `&str` or `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The registry is process-wide: each test registers values of its own, so tests
    // running in parallel cannot disturb one another's expectations.

    #[test]
    fn registered_values_are_masked_wherever_they_appear() {
        register("reg-test-secret-AAA111");
        register("  reg-test-other-BBB222\n");
        let text = "a reg-test-secret-AAA111 b(reg-test-other-BBB222)c";
        assert_eq!(redact(text), "a *** b(***)c");
    }

    #[test]
    fn short_values_are_not_registered() {
        register("xyz12");
        assert_eq!(redact("value xyz12 stays"), "value xyz12 stays");
    }

    #[test]
    fn the_longest_registered_value_wins() {
        register("nest-test-abcdef");
        register("nest-test-abcdef-and-more");
        assert_eq!(redact("[nest-test-abcdef-and-more]"), "[***]");
    }

    #[test]
    fn nothing_to_mask_borrows() {
        let text = "record updated (field Lead_Status)";
        assert!(matches!(redact(text), Cow::Borrowed(_)));
    }

    #[test]
    fn credential_shapes_are_masked_without_registration() {
        let cases = [
            (
                "Authorization: Zoho-oauthtoken abc.DEF-123_x",
                "Authorization: Zoho-oauthtoken ***",
            ),
            ("authorization: bearer tok/en+==", "authorization: bearer ***"),
            (
                "grant_type=refresh_token&client_secret=s3cr3t&refresh_token=r3fr&client_id=c",
                "grant_type=refresh_token&client_secret=***&refresh_token=***&client_id=c",
            ),
            (
                r#"{"access_token":"abc.def","api_domain":"x"}"#,
                r#"{"access_token":"***","api_domain":"x"}"#,
            ),
            (
                r#"{"message":"answer {\"client_secret\":\"abc\"}"}"#,
                r#"{"message":"answer {\"client_secret\":\"***\"}"}"#,
            ),
            (
                r#"{"refresh_token" : "zzz"}"#,
                r#"{"refresh_token" : "***"}"#,
            ),
            (
                "token 1000.0123456789abcdef0123456789abcdef.fedcba9876543210fedcba9876543210 expired",
                "token *** expired",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn needs_redaction_agrees_with_redact() {
        register("needs-test-secret-1");
        for text in [
            "plain",
            "x needs-test-secret-1 y",
            "Bearer abc.def",
            r#"{"access_token":"q"}"#,
        ] {
            assert_eq!(
                needs_redaction(text),
                matches!(redact(text), Cow::Owned(_)),
                "{text}"
            );
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "grant_type=refresh_token",
            "the bearer of bad news",
            "1000.5 credits",
            "access_token expired",
            r#"{"code":"INVALID_TOKEN","message":"invalid oauth token"}"#,
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn the_writer_redacts_each_line() {
        register("writer-test-TOKEN-42");
        let mut out = Vec::new();
        {
            let mut line = RedactingLine::new(&mut out);
            line.write_all(b"sent writer-test-").unwrap();
            line.write_all(b"TOKEN-42 to the server\n").unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "sent *** to the server\n");
    }

    #[test]
    fn the_writer_escapes_control_characters() {
        for (colours, want) in [
            (false, "a \\x1b[31mred\\x07 \\x0d\n"),
            (true, "a \x1b[31mred\\x07 \\x0d\n"),
        ] {
            let mut out = Vec::new();
            {
                let mut line = RedactingLine::new(&mut out).with_colours(colours);
                line.write_all(b"a \x1b[31mred\x07 \r\n").unwrap();
            }
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn a_panic_report_becomes_one_json_line() {
        let line = panic_json_line("thread 'main' panicked at x.rs:1:1:\nboom\nnote: ...\n");
        assert_eq!(line.matches('\n').count(), 1);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["fields"]["event"], "panic");
        assert!(value["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("boom"));
    }

    #[test]
    fn panic_payloads_are_read() {
        assert_eq!(panic_message(&"static"), "static");
        assert_eq!(panic_message(&String::from("owned")), "owned");
        assert_eq!(panic_message(&42u8), "Box<dyn Any>");
    }
}
