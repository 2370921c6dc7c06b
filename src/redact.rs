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
//!   A server does not have to echo a secret as it was sent: it may quote the form body
//!   (URL-encoded), a JSON string (escaped), or a header (base64). So with each value its
//!   [`encoded_forms`] are registered too, and masked wherever they appear.
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
// base64: the standard and URL-safe alphabets, padded or not, from the crate every HTTP
// stack uses (already in the tree through reqwest and hyper-util); hand-rolled base64 is a
// classic place for an off-by-one that would leave a secret unmasked.
use base64::Engine as _;
// percent-encoding and form_urlencoded: the `url` crate's own encoders (already in the
// tree), so the forms masked are byte for byte what a URL or form library writes.
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
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

/// Remembers `value` as a secret: from now on [`redact`] masks it, and each of its
/// [`encoded_forms`], wherever they appear. Surrounding whitespace is ignored; values
/// shorter than [`MIN_SECRET_LEN`] characters are ignored (see there). Cheap to call again
/// with a value already known.
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
    for form in encoded_forms(value) {
        if !registry.values.contains(&form) {
            registry.values.push(form);
        }
    }
    // Leftmost-longest: when one secret contains another, the whole of it is masked.
    registry.matcher = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&registry.values)
        .ok();
    ANY_REGISTERED.store(true, Ordering::Release);
}

/// RFC 3986's unreserved characters stay as they are; everything else is `%XX` (what
/// `encodeURIComponent`-like encoders and reqwest's query encoder write, a space as `%20`).
const URL_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// Python's `urllib.parse.quote` keeps `/` by default.
const URL_PATH: &AsciiSet = &URL_UNRESERVED.remove(b'/');
/// JavaScript's `encodeURIComponent` keeps `!'()*` too.
const URL_COMPONENT: &AsciiSet = &URL_UNRESERVED
    .remove(b'!')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*');

/// The shortest part of a base64 form worth masking on its own: a shorter run of base64
/// characters is too likely to occur by chance in ordinary text.
const MIN_BASE64_CORE: usize = 8;

/// The forms a server or a library may give `value` when it echoes it, besides the value
/// itself, each of them masked by [`redact`] once the value is [`register`]ed:
/// - URL-encoded, as a form body (`+` for a space) and as a URL component (`%20`), also
///   with lower-case hex and with the characters common encoders leave alone (`/` for
///   Python's `quote`, `!'()*` for JavaScript's `encodeURIComponent`);
/// - JSON-escaped, as serde writes it, with `\/` for `/` (PHP, some Java encoders), and
///   with every non-ASCII character as `\uXXXX` (Python's default);
/// - base64, standard and URL-safe, with and without padding; and the part of the base64
///   text that only the value decides when it starts 1 or 2 bytes into the encoded data
///   (`Basic base64(id:secret)`), so that a secret inside a longer base64 blob is masked too;
/// - HTML-escaped (`&amp;`...), and CSV-quoted (`""`), as reports write text.
///
/// The value itself is not among them. Forms equal to it, or too short, are left out.
pub fn encoded_forms(value: &str) -> Vec<String> {
    let mut forms: Vec<String> = Vec::new();
    let mut add = |form: String| {
        if form != value && form.chars().count() >= MIN_SECRET_LEN && !forms.contains(&form) {
            forms.push(form);
        }
    };
    let url_forms = [
        form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>(),
        utf8_percent_encode(value, URL_UNRESERVED).to_string(),
        utf8_percent_encode(value, URL_PATH).to_string(),
        utf8_percent_encode(value, URL_COMPONENT).to_string(),
    ];
    for form in url_forms {
        add(lower_hex_escapes(&form));
        add(form);
    }
    let json = serde_json::to_string(value).expect("a string serializes");
    let json = &json[1..json.len() - 1];
    add(json.to_string());
    add(json.replace('/', "\\/"));
    if !value.is_ascii() {
        let ascii = json_ascii(json);
        add(ascii.replace('/', "\\/"));
        add(ascii);
    }
    let bytes = value.as_bytes();
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        add(engine.encode(bytes));
    }
    for engine in [
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for offset in 0..3usize {
            let core = base64_core(engine, bytes, offset);
            if core.len() >= MIN_BASE64_CORE {
                add(core);
            }
        }
    }
    let html = value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;");
    add(html);
    add(value.replace('"', "\"\""));
    forms
}

/// `%2F` as `%2f`: some encoders write lower-case hex.
fn lower_hex_escapes(form: &str) -> String {
    let mut out = String::with_capacity(form.len());
    let mut rest = form;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        out.push_str(&escape.to_ascii_lowercase());
        rest = &rest[at + escape.len()..];
    }
    out.push_str(rest);
    out
}

/// A JSON string's inside with every non-ASCII character as `\uXXXX` (UTF-16, lower-case
/// hex, as Python's `json.dumps` writes it).
fn json_ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    for ch in json.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// The base64 characters that `value` alone decides when it starts `offset` bytes into the
/// encoded data: whatever comes before or after it, these appear in the encoding. Each
/// character holds 6 bits; those that mix in bits of the bytes around are cut off.
fn base64_core(engine: &base64::engine::GeneralPurpose, value: &[u8], offset: usize) -> String {
    let mut data = vec![0u8; offset];
    data.extend_from_slice(value);
    let encoded = engine.encode(&data);
    let first = (8 * offset).div_ceil(6);
    let end = (8 * (offset + value.len())) / 6;
    encoded.get(first..end).unwrap_or_default().to_string()
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

    /// The issue's three secrets, each in every form a hostile server echoed them in.
    #[test]
    fn encoded_forms_of_a_registered_value_are_masked() {
        let secrets = [
            (
                "enc-test-cs/Zq+81=hunter2&x",
                "enc-test-cs%2FZq%2B81%3Dhunter2%26x",
            ),
            (
                "enc-test-rt.Pq77~swordfish/9",
                "enc-test-rt.Pq77%7Eswordfish%2F9",
            ),
            (
                "enc-test-at+Kx93/moon beam=N",
                "enc-test-at%2BKx93%2Fmoon+beam%3DN",
            ),
        ];
        let b64 = &base64::engine::general_purpose::STANDARD;
        let b64url = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for (secret, form_encoded) in secrets {
            register(secret);
            let forms = [
                form_encoded.to_string(),
                form_encoded.replace('+', "%20"),
                lower_hex_escapes(form_encoded),
                secret.replace('/', "\\/"),
                b64.encode(secret),
                b64.encode(secret).trim_end_matches('=').to_string(),
                b64url.encode(secret),
                base64::engine::general_purpose::URL_SAFE.encode(secret),
                // Inside a longer blob, one and two bytes in: `Basic base64(id:secret)`.
                b64.encode(format!("id:{secret}")),
                b64.encode(format!("i:{secret}:more")),
                b64url.encode(format!("client:{secret}")),
            ];
            for form in forms {
                let text = format!("echo <{form}> end");
                let masked = redact(&text);
                assert!(!masked.contains(&form), "{form} in {masked}");
                assert!(masked.contains("***"), "{masked}");
            }
        }
    }

    #[test]
    fn encoded_forms_cover_json_non_ascii_html_and_csv() {
        let forms = encoded_forms("pässwörd\"/x<y>");
        for want in [
            r#"pässwörd\"\/x<y>"#,
            r#"p\u00e4ssw\u00f6rd\"/x<y>"#,
            "pässwörd&quot;/x&lt;y&gt;",
            r#"pässwörd""/x<y>"#,
            "p%C3%A4ssw%C3%B6rd%22%2Fx%3Cy%3E",
            "p%c3%a4ssw%c3%b6rd%22%2fx%3cy%3e",
            "p%C3%A4ssw%C3%B6rd%22/x%3Cy%3E",
        ] {
            assert!(forms.iter().any(|f| f == want), "{want} not in {forms:?}");
        }
        // A value no encoding changes has only its base64 forms.
        assert!(encoded_forms("abcdef123").iter().all(|f| f != "abcdef123"));
    }

    #[test]
    fn base64_cores_are_exact_at_every_offset() {
        let engine = &base64::engine::general_purpose::STANDARD_NO_PAD;
        let secret = b"core-test-secret-value";
        for offset in 0..3 {
            let core = base64_core(engine, secret, offset);
            assert!(core.len() >= MIN_BASE64_CORE);
            // Other bytes around, the secret starting at the same offset modulo 3.
            for (before, after) in [(0usize, &b""[..]), (3, b"!"), (6, b"\xff\x00z")] {
                let mut data: Vec<u8> = (0..offset + before).map(|i| (i * 37) as u8).collect();
                data.extend_from_slice(secret);
                data.extend_from_slice(after);
                let encoded = engine.encode(&data);
                assert!(
                    encoded.contains(&core),
                    "offset {offset}: {core} not in {encoded}"
                );
            }
        }
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
