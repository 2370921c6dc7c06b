//! Input that a plan can read twice: a pipe (`--csv -`, /dev/stdin, a FIFO) is copied to a
//! temporary file first, and the file's SHA-256 recognises content planned before.
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::InputError;

/// Copies standard input (`-`) or any other non-regular file to a temporary file.
pub fn spool_if_stream(path: &Path) -> Result<Option<tempfile::NamedTempFile>, InputError> {
    let open_error = |cause| InputError::Open {
        path: path.display().to_string(),
        cause,
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

/// What one read of a file before planning finds: its SHA-256 (so re-planning the same
/// content is recognised before any work is done) and the first line that is not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    pub sha256: String,
    /// The first line (1-based) holding bytes that are not UTF-8, with the first such
    /// byte; None when the file is valid UTF-8 or starts with a UTF-16 byte order mark.
    pub not_utf8: Option<(u64, u8)>,
}

/// Reads the file once: its SHA-256 and whether it is UTF-8 (see [`Scanned`]).
pub fn scan_file(path: &Path) -> Result<Scanned, InputError> {
    let open_error = |cause| InputError::Open {
        path: path.display().to_string(),
        cause,
    };
    let mut file = std::fs::File::open(path).map_err(open_error)?;
    let mut hasher = Sha256::new();
    let mut utf8 = Utf8Scan::default();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(open_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        utf8.feed(&buf[..n]);
    }
    Ok(Scanned {
        sha256: hex::encode(hasher.finalize()),
        not_utf8: utf8.finish(),
    })
}

/// Checks text for UTF-8 as it streams by, chunk by chunk: a character cut by a chunk's end
/// is completed from the next.
#[derive(Default)]
struct Utf8Scan {
    started: bool,
    utf16: bool,
    line: u64,
    found: Option<(u64, u8)>,
    /// The bytes of a character cut by the end of the last chunk.
    pending: Vec<u8>,
}

impl Utf8Scan {
    fn feed(&mut self, chunk: &[u8]) {
        if !self.started {
            self.started = true;
            self.line = 1;
            self.utf16 = chunk.starts_with(&[0xFF, 0xFE]) || chunk.starts_with(&[0xFE, 0xFF]);
        }
        if self.utf16 || self.found.is_some() {
            return;
        }
        let mut rest = chunk;
        // Complete a character cut by the last chunk's end (at most 3 more bytes).
        while !self.pending.is_empty() && !rest.is_empty() {
            self.pending.push(rest[0]);
            rest = &rest[1..];
            match std::str::from_utf8(&self.pending) {
                Ok(_) => self.pending.clear(),
                Err(e) if e.error_len().is_some() => {
                    self.found = Some((self.line, self.pending[0]));
                    return;
                }
                Err(_) => {}
            }
        }
        match std::str::from_utf8(rest) {
            Ok(_) => self.line += count_lines(rest),
            Err(e) => {
                let valid = e.valid_up_to();
                self.line += count_lines(&rest[..valid]);
                match e.error_len() {
                    Some(_) => self.found = Some((self.line, rest[valid])),
                    None => self.pending.extend_from_slice(&rest[valid..]),
                }
            }
        }
    }

    fn finish(self) -> Option<(u64, u8)> {
        match (self.found, self.pending.first()) {
            (Some(found), _) => Some(found),
            // The file ends inside a character.
            (None, Some(&byte)) => Some((self.line, byte)),
            (None, None) => None,
        }
    }
}

fn count_lines(text: &[u8]) -> u64 {
    text.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&[u8]]) -> Option<(u64, u8)> {
        let mut utf8 = Utf8Scan::default();
        for chunk in chunks {
            utf8.feed(chunk);
        }
        utf8.finish()
    }

    #[test]
    fn utf8_is_checked_across_chunks_naming_the_line() {
        assert_eq!(scan(&[b"id,City\n1,K\xc3", b"\xb6ln\n"]), None);
        assert_eq!(scan(&[b"id,City\n1,Berlin\n2,K\xf6ln\n"]), Some((3, 0xf6)));
        assert_eq!(scan(&[b"id\n", b"1\n", b"\xff\n"]), Some((3, 0xff)));
        assert_eq!(scan(&[b"id\n1,\xe2\x82"]), Some((2, 0xe2)));
        assert_eq!(scan(&[b"\xff\xfei\x00d\x00"]), None);
    }
}
