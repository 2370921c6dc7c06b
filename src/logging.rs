//! Logging through `tracing`: human lines on stderr by default, JSON lines for cron jobs.
//! Secrets never reach a log line: credentials are held in `Secret` values whose Debug and
//! Display print a placeholder, and every line passes `redact` on its way to stderr.
//!
//! Besides tracing's events, a command writes a few lines that are not log detail but
//! messages to the person or job that ran it (a fatal error, the summary `--quiet` keeps,
//! "continue with: massup resume"). [`notice`] writes those: as plain text for people, and
//! with `--log-format json` as a JSON line in the shape tracing's own JSON lines have, so
//! that every stderr line of a JSON-logging process parses.
//!
//! Text that came from a server or an input file may hold terminal control sequences
//! (`ESC ]0;title BEL` retitles a terminal, `ESC [31m` recolours it, a bare CR overwrites
//! the line shown). [`escape_controls`] writes every such character as visible text; it is
//! applied where that text enters massup (answers, errors, stored messages) and again on
//! the way to stderr.
use std::borrow::Cow;
use std::io::Write;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};
use tracing_subscriber::EnvFilter;

use crate::global::{GlobalArgs, LogFormat};

/// Whether `ch` is a control character that must not reach a terminal as it is: C0 (but
/// tab and newline, which text needs and which move nothing but the cursor), DEL and C1
/// (`U+0080..U+009F`: some terminals read `U+009B` as ESC `[`).
pub fn is_unsafe_control(ch: char) -> bool {
    (ch.is_control() && ch != '\t' && ch != '\n') || ch == '\u{7f}'
}

/// `text` with every [`is_unsafe_control`] character written as an escape, `\x1b` for C0
/// and DEL, `\u{9b}` for C1 (as Rust writes them), so that a message shows what a server
/// sent without letting it drive the terminal. Borrows when there is nothing to escape,
/// which is nearly always.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for ch in text.chars() {
        if !is_unsafe_control(ch) {
            out.push(ch);
        } else if (ch as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", ch as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", ch as u32));
        }
    }
    Cow::Owned(out)
}

/// What every piece of server text goes through before massup keeps or shows it: secrets
/// masked ([`crate::redact::redact`]), then control characters escaped.
pub fn server_text(text: &str) -> Cow<'_, str> {
    match crate::redact::redact(text) {
        Cow::Borrowed(text) => escape_controls(text),
        Cow::Owned(masked) => Cow::Owned(escape_controls(&masked).into_owned()),
    }
}

/// The process's log format, set once by [`init`] (human until then).
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

pub fn init(global: &GlobalArgs) {
    set_format(global.log_format);
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        // A person at a terminal sees the progress bar and the summary; the lifecycle
        // lines (dispatch started, token refreshed, ...) would interleave with the bar.
        // They stay for logs (stderr not a terminal) and JSON logs, and come back at -v.
        (false, 0) if terminal && global.log_format == LogFormat::Human => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // Our own crate at the chosen level; dependencies stay at warn unless RUST_LOG says.
    let filter = EnvFilter::try_from_env("MASSUP_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,massup={level}")));
    let ansi = terminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        // Every line passes the redactor: a secret that reached a message by any path
        // (an echoing server, a URL) is masked before it leaves the process; and control
        // characters are escaped (but tracing's own colours, when it writes them).
        .with_writer(crate::redact::RedactingWriter::new(std::io::stderr).with_colours(ansi));
    let _ = match global.log_format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Sets the format of [`notice`] lines and panic reports (the first call wins). `init`
/// calls it; so does a command line clap refused, before any subscriber exists.
pub fn set_format(format: LogFormat) {
    let _ = FORMAT.set(format);
    crate::redact::panics_as_json(self::format() == LogFormat::Json);
}

/// The log format this process writes stderr in.
pub fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or(LogFormat::Human)
}

/// How much a notice matters (the level of its JSON line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// Writes a message for the person or job that ran the command to stderr, whatever the
/// log level (these are the lines `--quiet` keeps): `text` as it is for people; with
/// `--log-format json`, one JSON line `{"timestamp", "level", "fields": {"message",
/// "event", ...fields}, "target": "massup"}`. `fields` is an object (anything else is
/// ignored). Everything passes the redactor, and control characters are escaped (a
/// notice often quotes a server's error).
pub fn notice(level: Level, event: &str, text: &str, fields: Value) {
    let text = escape_controls(text);
    let line = match format() {
        LogFormat::Human => format!("{text}\n"),
        LogFormat::Json => json_line(level, event, text.trim(), fields),
    };
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(crate::redact::redact(&line).as_bytes());
    let _ = err.flush();
}

/// One JSON log line (with its newline) in tracing's JSON shape.
fn json_line(level: Level, event: &str, text: &str, fields: Value) -> String {
    let mut all = Map::new();
    all.insert("message".into(), Value::from(text));
    all.insert("event".into(), Value::from(event));
    if let Value::Object(extra) = fields {
        for (key, value) in extra {
            // The message and the event name are the notice's own.
            all.entry(key).or_insert(value);
        }
    }
    let line = json!({
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "level": level.as_str(),
        "fields": all,
        "target": "massup",
    });
    format!("{line}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_but_tab_and_newline() {
        let hostile = "x\x1b]0;PWNED\x07\x1b[31m red\r\ttab\nline\u{9b}2J\u{7f}\0 é";
        let escaped = escape_controls(hostile);
        assert_eq!(
            escaped,
            "x\\x1b]0;PWNED\\x07\\x1b[31m red\\x0d\ttab\nline\\u{9b}2J\\x7f\\x00 é"
        );
        assert!(!escaped.chars().any(is_unsafe_control));
        assert!(matches!(escape_controls("plain\ttext\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_json_notice_is_one_line_in_tracings_shape() {
        let line = json_line(
            Level::Error,
            "error",
            "no run 7",
            json!({"exit_code": 2, "message": "not this"}),
        );
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "ERROR");
        assert_eq!(value["fields"]["event"], "error");
        assert_eq!(value["fields"]["exit_code"], 2);
        assert_eq!(value["target"], "massup");
        // Extra fields never replace the message or the event name.
        assert_eq!(value["fields"]["message"], "no run 7");
    }
}
