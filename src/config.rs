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
    /// Per-module field limits, e.g. `Deals = 3`.
    #[serde(default)]
    pub field_limits: BTreeMap<String, usize>,
    /// A TOML file with client_id, client_secret, refresh_token (and/or access_token).
    pub secrets_file: Option<PathBuf>,
    /// Where the config was read from (not a key of the file).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

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
        let text = std::fs::read_to_string(&path).map_err(|e| {
            UsageError::new(format!("cannot read config file {}: {e}", path.display()))
        })?;
        let mut config: Config = toml::from_str(&text)
            .map_err(|e| UsageError::new(format!("config file {}: {e}", path.display())))?;
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
        std::fs::write(&path, "modul = \"Deals\"\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
