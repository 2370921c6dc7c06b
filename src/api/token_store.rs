//! The access token kept between processes, as Zoho's own SDKs keep it in their token
//! store: a cron loop that sends eleven files one by one must not mint eleven tokens,
//! since Zoho mints at most ten per ten minutes for a client (see `budget`).
//!
//! - One file per OAuth client and accounts server (data centre), in the state folder of
//!   the token budget (`budget::state_dir()`): `token-<16 hex digits of SHA-256 of the
//!   client id and accounts URL>.json`, so no client id is written in a file name.
//! - It holds the access token, the API domain its answer named, when it expires, and a
//!   fingerprint (16 hex digits of SHA-256) of the client id, client secret, refresh token
//!   and accounts URL it was minted with: a process with other credentials for the same
//!   client (a rotated secret, another grant with other scopes) never takes it.
//! - It is a secret: mode 0600 from its creation (written to a temporary file in the same
//!   folder, then renamed over the old one, so a reader sees a whole file or the old one),
//!   registered with the redactor when read, never printed, never in SQLite. One that
//!   others could read, or that is not a plain file, is not used. `massup logout` deletes
//!   every stored token.
//! - A token is reused until a few minutes before it expires (a quarter of its life, at
//!   most five minutes, as for a token minted in the process), and dropped when the API
//!   refuses it or the accounts server refuses the credentials.
//!
//! A token store that cannot be used (no state folder, a read-only disk) is reported once
//! and the process goes on minting as before: it costs tokens, not the run.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::auth::Secret;
use crate::plain_file;

/// The largest token file read: an honest one is a few hundred bytes.
const MAX_FILE_BYTES: u64 = 16 << 10;

const FILE_PREFIX: &str = "token-";
const FILE_SUFFIX: &str = ".json";

/// A token read from the store.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub token: Secret,
    pub api_domain: Option<String>,
    /// How long it has left (zero or more).
    pub remaining: Duration,
    /// How long it lived when minted.
    pub lifetime: Duration,
}

/// What the file holds. `access_token` is the only secret.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    /// Always 1 for now; another number is a file of another massup, not used.
    version: u32,
    credentials: String,
    access_token: String,
    api_domain: Option<String>,
    expires_at_ms: u64,
    lifetime_secs: u64,
}

/// The token file of one set of refresh credentials.
#[derive(Debug, Clone)]
pub struct TokenStore {
    path: PathBuf,
    fingerprint: String,
}

impl TokenStore {
    /// The store for these credentials in `dir`.
    pub fn new(
        dir: &Path,
        client_id: &Secret,
        client_secret: &Secret,
        refresh_token: &Secret,
        accounts_url: &str,
    ) -> TokenStore {
        let accounts = accounts_url.trim_end_matches('/');
        let name = short_hash(&[client_id.expose(), accounts]);
        let fingerprint = short_hash(&[
            client_id.expose(),
            client_secret.expose(),
            refresh_token.expose(),
            accounts,
        ]);
        TokenStore {
            path: dir.join(format!("{FILE_PREFIX}{name}{FILE_SUFFIX}")),
            fingerprint,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored token of these credentials, if there is one with time left at `now_ms`.
    /// A file that cannot be used is logged (without its contents) and ignored.
    pub fn load(&self, now_ms: u64) -> Option<StoredToken> {
        let file = match self.read() {
            Ok(file) => file?,
            Err(problem) => {
                tracing::warn!(
                    "the stored access token {} is not used: {problem}; a new one will be minted",
                    self.path.display()
                );
                return None;
            }
        };
        if file.version != 1 || file.credentials != self.fingerprint {
            return None;
        }
        // From here on it is a secret of this process like any other.
        crate::redact::register(&file.access_token);
        let remaining = Duration::from_millis(file.expires_at_ms.saturating_sub(now_ms));
        if remaining.is_zero() {
            return None;
        }
        Some(StoredToken {
            token: Secret::new(file.access_token),
            api_domain: file.api_domain,
            remaining,
            lifetime: Duration::from_secs(file.lifetime_secs.max(1)),
        })
    }

    /// The file, `None` when there is none.
    fn read(&self) -> Result<Option<TokenFile>, String> {
        let text = match plain_file::read_to_string(&self.path, MAX_FILE_BYTES) {
            Ok(text) => text,
            Err(plain_file::PlainFileError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e.to_string()),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.path)
                .map_err(|e| e.to_string())?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(format!(
                    "others can read it (mode {:o}), so it may have leaked",
                    mode & 0o777
                ));
            }
        }
        // serde's message could quote the file's text, which holds the token: say only where.
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("not a token file massup wrote (line {})", e.line()))
    }

    /// Keeps `token`, minted now with `lifetime`, for later processes.
    pub fn save(&self, token: &Secret, api_domain: Option<&str>, lifetime: Duration, now_ms: u64) {
        let file = TokenFile {
            version: 1,
            credentials: self.fingerprint.clone(),
            access_token: token.expose().to_string(),
            api_domain: api_domain.map(str::to_string),
            expires_at_ms: now_ms + lifetime.as_millis() as u64,
            lifetime_secs: lifetime.as_secs(),
        };
        if let Err(e) = self.write(&file) {
            tracing::warn!(
                "cannot keep the access token in {}: {e}; the next process will mint its own",
                self.path.display()
            );
        }
    }

    fn write(&self, file: &TokenFile) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        plain_file::create_private_dir(dir)?;
        // tempfile: created with mode 0600 and O_EXCL in the same folder, then renamed
        // over the old file (atomic on one file system); it never follows a symlink at
        // the final name, since rename replaces the link itself.
        let mut temp = tempfile::Builder::new()
            .prefix(".token-")
            .suffix(".tmp")
            .tempfile_in(dir)?;
        let json = serde_json::to_vec(file).map_err(std::io::Error::other)?;
        temp.write_all(&json)?;
        temp.as_file().sync_all()?;
        temp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Drops the stored token if it is `token` (the API or the accounts server refused
    /// it), or any token of these credentials when `token` is `None`.
    pub fn forget(&self, token: Option<&Secret>) {
        let Ok(Some(file)) = self.read() else {
            return;
        };
        let same = file.credentials == self.fingerprint
            && token.is_none_or(|t| t.expose() == file.access_token);
        if same {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(
                    "cannot delete the refused access token {}: {e}",
                    self.path.display()
                );
            }
        }
    }
}

/// Deletes every stored access token in `dir` (`massup logout`); returns how many.
pub fn forget_all(dir: &Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = (name.starts_with(FILE_PREFIX) && name.ends_with(FILE_SUFFIX))
            || (name.starts_with(".token-") && name.ends_with(".tmp"));
        if ours {
            std::fs::remove_file(entry.path())?;
            removed += usize::from(!name.ends_with(".tmp"));
        }
    }
    Ok(removed)
}

/// The first 16 hex digits of SHA-256 over `parts`, each ended by a NUL (so no two lists
/// of parts hash the same text).
fn short_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, secret: &str) -> TokenStore {
        TokenStore::new(
            dir,
            &Secret::new("client-1"),
            &Secret::new(secret),
            &Secret::new("refresh-1"),
            "https://accounts.zoho.eu/",
        )
    }

    #[test]
    fn a_saved_token_is_read_back_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), "secret-1");
        assert!(store.load(1_000).is_none());
        store.save(
            &Secret::new("1000.tok"),
            Some("https://www.zohoapis.eu"),
            Duration::from_secs(3600),
            1_000,
        );
        let got = store.load(61_000).unwrap();
        assert_eq!(got.token.expose(), "1000.tok");
        assert_eq!(got.api_domain.as_deref(), Some("https://www.zohoapis.eu"));
        assert_eq!(got.remaining, Duration::from_secs(3540));
        assert_eq!(got.lifetime, Duration::from_secs(3600));
        assert!(store.load(1_000 + 3_600_000).is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let name = store
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(!name.contains("client-1"), "{name}");
    }

    #[test]
    fn other_credentials_of_the_client_do_not_take_it() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), "secret-1").save(
            &Secret::new("1000.tok"),
            None,
            Duration::from_secs(3600),
            0,
        );
        let rotated = store(dir.path(), "secret-2");
        assert_eq!(rotated.path(), store(dir.path(), "secret-1").path());
        assert!(rotated.load(1).is_none());
        // Nor does it drop the other's token.
        rotated.forget(None);
        assert!(store(dir.path(), "secret-1").load(1).is_some());
    }

    #[test]
    fn a_refused_token_is_forgotten_and_a_newer_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), "secret-1");
        store.save(&Secret::new("new"), None, Duration::from_secs(60), 0);
        store.forget(Some(&Secret::new("old")));
        assert!(store.load(1).is_some());
        store.forget(Some(&Secret::new("new")));
        assert!(store.load(1).is_none());
        assert!(!store.path().exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_or_not_plain_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), "secret-1");
        store.save(&Secret::new("tok"), None, Duration::from_secs(60), 0);
        std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(store.load(1).is_none());
        std::fs::remove_file(store.path()).unwrap();
        std::os::unix::fs::symlink("/dev/zero", store.path()).unwrap();
        assert!(store.load(1).is_none());
        // Saving replaces the link, never writes through it.
        store.save(&Secret::new("tok2"), None, Duration::from_secs(60), 0);
        assert_eq!(store.load(1).unwrap().token.expose(), "tok2");
        std::fs::write(store.path(), "{not json \"tok2\"").unwrap();
        std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(store.load(1).is_none());
    }

    #[test]
    fn logout_forgets_every_token() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), "a").save(&Secret::new("t"), None, Duration::from_secs(60), 0);
        TokenStore::new(
            dir.path(),
            &Secret::new("client-2"),
            &Secret::new("a"),
            &Secret::new("b"),
            "x",
        )
        .save(&Secret::new("t2"), None, Duration::from_secs(60), 0);
        std::fs::write(dir.path().join("token-budget-0123.txt"), "1\n").unwrap();
        assert_eq!(forget_all(dir.path()).unwrap(), 2);
        assert!(dir.path().join("token-budget-0123.txt").exists());
        assert_eq!(forget_all(&dir.path().join("none")).unwrap(), 0);
    }
}
