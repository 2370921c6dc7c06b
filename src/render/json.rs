//! The JSON a command prints on stdout with `--json`: exactly one object per invocation,
//! on success, partial failure and fatal error alike, in an envelope that carries the
//! schema version, the command, the exit code and the error (null when the command did
//! its job). The schema is documented in docs/JSON.md; a change that removes or renames a
//! key bumps [`SCHEMA`].
use serde_json::{Map, Value};

use crate::exit::Exit;

/// The version of the JSON output, first key of every object.
pub const SCHEMA: &str = "massup/1";

/// What kind of error ended a command, by its exit code (docs/JSON.md lists them).
pub fn error_kind(exit: Exit) -> &'static str {
    match exit {
        Exit::Usage => "usage",
        Exit::Resumable => "resumable",
        Exit::Success | Exit::Failures | Exit::Fatal => "fatal",
    }
}

/// The envelope around `body` (an object; its keys follow the envelope's).
pub fn envelope(command: &str, exit: Exit, error: Option<Value>, body: Value) -> Value {
    let mut object = Map::new();
    object.insert("schema".into(), Value::from(SCHEMA));
    object.insert("command".into(), Value::from(command));
    object.insert("exit_code".into(), Value::from(exit.code()));
    object.insert("error".into(), error.unwrap_or(Value::Null));
    if let Value::Object(body) = body {
        for (key, value) in body {
            object.entry(key).or_insert(value);
        }
    }
    Value::Object(object)
}

/// An error object: `{"kind", "message", "hint"?}` plus `extra`'s keys.
pub fn error(kind: &str, message: &str, hint: Option<&str>, extra: Value) -> Value {
    let mut object = Map::new();
    object.insert("kind".into(), Value::from(kind));
    object.insert("message".into(), Value::from(message));
    if let Some(hint) = hint {
        object.insert("hint".into(), Value::from(hint));
    }
    if let Value::Object(extra) = extra {
        for (key, value) in extra {
            object.entry(key).or_insert(value);
        }
    }
    Value::Object(object)
}

/// Prints `value` on stdout, pretty, through the redactor (a secret echoed by a server
/// into a stored message is masked here as everywhere).
pub fn print(value: &Value) {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    crate::outln!("{}", crate::redact::redact(&text));
}

/// Prints the envelope of a command that did its job (or part of it).
pub fn print_result(command: &str, exit: Exit, body: Value) {
    print(&envelope(command, exit, None, body));
}

/// Prints the envelope of a command that ended with an error.
pub fn print_error(command: &str, exit: Exit, message: &str, hint: Option<&str>) {
    let error = error(error_kind(exit), message, hint, Value::Null);
    print(&envelope(command, exit, Some(error), Value::Null));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_envelope_comes_first_and_the_body_cannot_replace_it() {
        let value = envelope(
            "status",
            Exit::Failures,
            None,
            json!({"exit_code": 0, "run": {"id": 1}}),
        );
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["schema", "command", "exit_code", "error", "run"]);
        assert_eq!(value["exit_code"], 3);
        assert_eq!(value["error"], Value::Null);
    }

    #[test]
    fn errors_carry_their_kind_by_exit_code() {
        let e = error(
            error_kind(Exit::Usage),
            "bad flag",
            Some("see --help"),
            Value::Null,
        );
        assert_eq!(
            e,
            json!({"kind": "usage", "message": "bad flag", "hint": "see --help"})
        );
        assert_eq!(error_kind(Exit::Fatal), "fatal");
        assert_eq!(error_kind(Exit::Resumable), "resumable");
    }
}
