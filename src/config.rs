//! `massup.toml`: defaults for flags that a team sets once (data centre, module, rate,
//! concurrency, chunk size, field limits, database path). Command-line flags override it.
//! Secrets are never read from it: they come from the environment or a secrets file that
//! only its owner can read (see `auth`).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::UsageError;

pub const CONFIG_FILE: &str = "massup.toml";

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub db: Option<PathBuf>,
    pub module: Option<String>,
    pub dc: Option<String>,
    pub api_domain: Option<String>,
    pub accounts_url: Option<String>,
    pub rate: Option<String>,
    pub concurrency: Option<usize>,
    pub chunk_size: Option<usize>,
    pub timeout_secs: Option<f64>,
    pub max_attempts: Option<u32>,
    /// `retry --max-attempts-total`: calls a record may take in all across retries.
    pub max_attempts_total: Option<u32>,
    /// Take a snapshot (undo) on every run (`true`), never (`false`), or when it is cheap
    /// (left out).
    pub snapshot: Option<bool>,
    /// A budget in API credits for each run (`--max-credits`): a plan estimated above it
    /// is refused, and a send stops (resumable) before crossing it.
    pub max_credits: Option<u64>,
    /// What `--api auto` minimises: `"credits"` (left out: the default) or `"calls"`.
    pub optimize: Option<crate::plan::Optimize>,
    /// Per-module field limits, e.g. `Deals = 3`.
    #[serde(default)]
    pub field_limits: BTreeMap<String, usize>,
    /// A TOML file with client_id, client_secret, refresh_token (and/or access_token).
    pub secrets_file: Option<PathBuf>,
    /// Where the config was read from (not a key of the file).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// The largest massup.toml read: a real one is a few hundred bytes.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

impl Config {
    /// Reads `explicit`, else `./massup.toml`, else the user config folder's; none is fine.
    pub fn load(explicit: Option<&Path>) -> Result<Config, UsageError> {
        let path = match explicit {
            Some(path) => {
                if !path.exists() {
                    return Err(UsageError::new(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                Some(path.to_path_buf())
            }
            None => Self::default_paths().into_iter().find(|p| p.is_file()),
        };
        let Some(path) = path else {
            return Ok(Config::default());
        };
        // A plain file of sensible size: a FIFO or a device in its place would hang the
        // command or fill its memory (src/plain_file.rs).
        let text = crate::plain_file::read_to_string(&path, MAX_CONFIG_BYTES)
            .map_err(|e| UsageError::new(format!("cannot read config file: {e}")))?;
        let mut config: Config = toml::from_str(&text)
            .map_err(|e| UsageError::new(describe_parse_error(&path, &text, &e)))?;
        config.source = Some(path);
        Ok(config)
    }

    fn default_paths() -> Vec<PathBuf> {
        let mut paths = vec![PathBuf::from(CONFIG_FILE)];
        if let Some(dirs) = directories::ProjectDirs::from("", "", "massup") {
            paths.push(dirs.config_dir().join(CONFIG_FILE));
        }
        paths
    }

    pub fn db_path(&self, flag: Option<&Path>) -> PathBuf {
        flag.map(Path::to_path_buf)
            .or_else(|| self.db.clone())
            .unwrap_or_else(|| PathBuf::from("massup.db"))
    }

    pub fn field_limit(&self, module: &str) -> Option<usize> {
        self.field_limits
            .iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(module))
            .map(|(_, &n)| n)
    }
}

/// Parts of a key name that mark its value as a credential. `massup.toml` takes no
/// credentials, but people put them there anyway (it is where settings go), and a TOML
/// error quotes the offending line: for these keys the error says only where.
const SECRET_KEY_PARTS: &[&str] = &[
    "secret",
    "token",
    "password",
    "passwd",
    "client_id",
    "api_key",
    "apikey",
    "credential",
];

fn is_secret_key(key: &str) -> bool {
    let key = key
        .trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == '[' || c == ']')
        .to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

/// The key assigned on a line (`key = value`), if any.
fn line_key(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('#')).then_some(key)
}

/// A TOML error of `massup.toml` as a message that never shows the value of a
/// secret-looking key: when the error is on such a key's line, only the line and key are
/// named; otherwise toml's own message (which quotes the line) is shown, with the values
/// of any secret-looking keys elsewhere in the file masked and passed through `redact`.
fn describe_parse_error(path: &Path, text: &str, error: &toml::de::Error) -> String {
    let shown = path.display();
    let span = error.span().unwrap_or(0..0);
    let start = span.start.min(text.len());
    let end = span.end.clamp(start, text.len());
    let first_line = text[..start].matches('\n').count() + 1;
    // Every line the error covers (toml quotes them all).
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let covered = &text[line_start..line_end];
    let secret_key = covered
        .lines()
        .filter_map(line_key)
        .chain(covered.lines().filter(|l| l.trim_start().starts_with('[')))
        .find(|key| is_secret_key(key));
    if let Some(key) = secret_key {
        let hint = if error.message().starts_with("unknown field") {
            "massup.toml takes no credentials: put them in the environment (ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN) or in a secrets file only you can read (`secrets_file = \"...\"`, chmod 600)"
        } else {
            "not valid TOML (the line is not shown: it may hold a secret)"
        };
        return format!(
            "config file {shown}: line {first_line}, key {}: {hint}",
            key.trim()
        );
    }
    let mut message = format!("config file {shown}: {error}");
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        if is_secret_key(key) && value.len() >= 3 {
            message = message.replace(value, crate::redact::MASK);
        }
    }
    crate::redact::redact(&message).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_and_rejects_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("massup.toml");
        std::fs::write(
            &path,
            "module = \"Deals\"\nrate = \"5/s\"\n[field_limits]\ndeals = 2\n",
        )
        .unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.module.as_deref(), Some("Deals"));
        assert_eq!(config.field_limit("Deals"), Some(2));
        assert_eq!(config.db_path(None), PathBuf::from("massup.db"));
        assert_eq!(
            config.db_path(Some(Path::new("x.db"))),
            PathBuf::from("x.db")
        );
        std::fs::write(&path, "optimize = \"calls\"\n").unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.optimize, Some(crate::plan::Optimize::Calls));
        std::fs::write(&path, "optimize = \"cheap\"\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("optimize"), "{err}");
        std::fs::write(&path, "modul = \"Deals\"\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    fn load_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("massup.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path)).unwrap_err().to_string()
    }

    #[test]
    fn errors_on_secret_keys_name_only_line_and_key() {
        for (text, line, key) in [
            (
                "module = \"Leads\"\nclient_secret = \"cfg-SECRET-1\"\n",
                2,
                "client_secret",
            ),
            ("refresh_token = cfg-SECRET-2\n", 1, "refresh_token"),
            (
                "concurrency = 2\nzoho_password = [\"cfg-SECRET-3\"\n",
                2,
                "zoho_password",
            ),
            ("ACCESS_TOKEN = 5\n", 1, "ACCESS_TOKEN"),
            (
                "[credentials]\nclient_id = \"cfg-SECRET-4\"\n",
                1,
                "[credentials]",
            ),
        ] {
            let err = load_error(text);
            assert!(!err.contains("cfg-SECRET"), "{err}");
            assert!(
                err.contains(&format!("line {line}, key {key}:")),
                "{text:?}: {err}"
            );
        }
        let err = load_error("client_secret = \"cfg-SECRET-5\"\n");
        assert!(err.contains("takes no credentials"), "{err}");
    }

    #[test]
    fn other_errors_keep_toml_details_but_mask_secret_values() {
        let err = load_error("concurrency = \"many\"\n");
        assert!(err.contains("concurrency") && err.contains("many"), "{err}");
        // An error elsewhere in a file that also holds a (quoted) secret: masked if quoted.
        let err = load_error("rate = 5\n# secret = \"cfg-SECRET-6\"\n");
        assert!(!err.contains("cfg-SECRET-6"), "{err}");
    }
}
