//! Input that a plan can read twice: a pipe (`--csv -`, /dev/stdin, a FIFO) is copied to a
//! temporary file first, and the file's SHA-256 recognises content planned before.
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::InputError;

/// Copies standard input (`-`) or any other non-regular file to a temporary file.
pub fn spool_if_stream(path: &Path) -> Result<Option<tempfile::NamedTempFile>, InputError> {
    let open_error = |source| InputError::Open {
        path: path.display().to_string(),
        source,
    };
    let source: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let meta = std::fs::metadata(path).map_err(open_error)?;
        if meta.is_file() {
            return Ok(None);
        }
        Box::new(std::fs::File::open(path).map_err(open_error)?)
    };
    let mut spool = tempfile::NamedTempFile::new().map_err(open_error)?;
    // Bounded like every read of a CSV: `/dev/zero` stops at its first overlong line.
    std::io::copy(&mut super::LineLimit::new(source), &mut spool).map_err(open_error)?;
    Ok(Some(spool))
}

/// SHA-256 of the file, read once before planning so that re-planning the same content can
/// be detected before any work is done.
pub fn file_sha256(path: &Path) -> Result<String, InputError> {
    let open_error = |source| InputError::Open {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(open_error)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(open_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
