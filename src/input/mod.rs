//! Streams the input CSV: the header is checked once, then rows come one at a time through a
//! single reused record buffer, so a file of any size is read in constant memory.
pub mod spool;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use csv::ByteRecord;

/// More field columns than any Zoho module has fields (modules allow a few hundred
/// custom fields). A wider header is almost certainly a wrong delimiter, and refusing it
/// keeps a pathological file (a million columns) from costing memory per column.
pub const MAX_COLUMNS: usize = 2_000;

/// Bytes read from the file at a time; also how much of the file's start is looked at to
/// recognise its kind.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// The column list in a message: the first few names, then how many more.
fn shorten_list(names: &[String]) -> String {
    const SHOWN: usize = 20;
    if names.len() <= SHOWN {
        names.join(", ")
    } else {
        format!(
            "{}, ... ({} more)",
            names[..SHOWN].join(", "),
            names.len() - SHOWN
        )
    }
}

/// Input problems that stop the whole file (as opposed to one bad row).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: cannot read: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: the file is empty; expected a header row naming the id column and the fields"
    )]
    Empty { path: String },
    #[error("{path}: line {line}: header column {column} is not valid UTF-8; save the file as 'CSV UTF-8'")]
    HeaderUtf8 {
        path: String,
        line: u64,
        column: usize,
    },
    #[error(
        "{path}: line {line}: header column {column} is empty; every column needs a field API name"
    )]
    HeaderEmpty {
        path: String,
        line: u64,
        column: usize,
    },
    #[error("{path}: line {line}: column {name:?} appears twice in the header (columns {first} and {second})")]
    HeaderDuplicate {
        path: String,
        line: u64,
        name: String,
        first: usize,
        second: usize,
    },
    #[error("{path}: the header has no id column {id_column:?} (columns: {columns}); pass --id-column NAME")]
    NoIdColumn {
        path: String,
        id_column: String,
        columns: String,
    },
    #[error("{path}: line {line}: the header has {columns} columns; massup accepts at most {max} (is --delimiter right?)", max = MAX_COLUMNS)]
    TooManyColumns {
        path: String,
        line: u64,
        columns: usize,
    },
    #[error("{path}: the header has only the id column; add at least one field column to update")]
    NoFields { path: String },
    #[error("{path} is {what}, not a CSV: {fix}")]
    NotCsv {
        path: String,
        what: &'static str,
        fix: &'static str,
    },
    #[error("{path}: line {line}: the header holds NUL bytes (column {column}): this is a binary file or UTF-16 without a byte order mark, not a CSV; save it as 'CSV UTF-8' and plan that")]
    HeaderBinary {
        path: String,
        line: u64,
        column: usize,
    },
    #[error("{path}: line {line}: cannot read CSV: {message}")]
    Read {
        path: String,
        line: u64,
        message: String,
    },
}

/// How to read the file.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    pub delimiter: u8,
    pub id_column: String,
}

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// UTF-8 (or ASCII, or anything else left for the header checks to judge).
    Text,
    /// UTF-16 with a byte order mark, as Excel's "Unicode text" saves: decoded.
    Utf16 { big_endian: bool },
    NotCsv {
        what: &'static str,
        fix: &'static str,
    },
}

const SAVE_AS_CSV: &str = "save it as 'CSV UTF-8' and plan that";

fn kind_of(head: &[u8]) -> Kind {
    const NOT_CSV: &[(&[u8], &str, &str)] = &[
        (b"PK\x03\x04", "an Excel workbook (a zip file)", SAVE_AS_CSV),
        (
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
            "an Excel 97-2003 workbook (.xls)",
            SAVE_AS_CSV,
        ),
        (
            b"\x1F\x8B",
            "gzip-compressed",
            "decompress it (gunzip) and plan the CSV inside",
        ),
        // Before UTF-16 LE: its byte order mark starts the same way.
        (
            b"\xFF\xFE\x00\x00",
            "UTF-32 text",
            "save it as 'CSV UTF-8' (or UTF-16) and plan that",
        ),
        (
            b"\x00\x00\xFE\xFF",
            "UTF-32 text",
            "save it as 'CSV UTF-8' (or UTF-16) and plan that",
        ),
    ];
    if let Some(&(_, what, fix)) = NOT_CSV.iter().find(|(magic, _, _)| head.starts_with(magic)) {
        return Kind::NotCsv { what, fix };
    }
    match head {
        [0xFF, 0xFE, ..] => Kind::Utf16 { big_endian: false },
        [0xFE, 0xFF, ..] => Kind::Utf16 { big_endian: true },
        _ => Kind::Text,
    }
}

/// An open CSV whose header has been checked.
pub struct CsvInput {
    path: PathBuf,
    reader: csv::Reader<EofWatch<LineLimit<Box<dyn Read + Send>>>>,
    header_line: u64,
    id_index: usize,
    /// Field column names in input order (the id column excluded).
    field_columns: Vec<String>,
    /// Position in the record of each field column.
    field_indexes: Vec<usize>,
    header_len: usize,
    record: ByteRecord,
}

/// One data row, borrowed from the reader's buffer until the next call.
pub struct RawRow<'a> {
    /// 1-based line where the row starts (a quoted cell may span several lines).
    pub line: u64,
    record: &'a ByteRecord,
    id_index: usize,
    field_indexes: &'a [usize],
    header_len: usize,
}

impl RawRow<'_> {
    /// Cells in the row; differs from the header's count on a ragged row.
    pub fn len(&self) -> usize {
        self.record.len()
    }

    pub fn is_empty(&self) -> bool {
        self.record.is_empty()
    }

    pub fn is_ragged(&self) -> bool {
        self.record.len() != self.header_len
    }

    /// Bytes of all the row's cells.
    pub fn byte_len(&self) -> usize {
        self.record.as_slice().len()
    }

    /// Byte offset where the row starts in the file.
    pub fn byte_offset(&self) -> u64 {
        self.record.position().map_or(0, |p| p.byte())
    }

    pub fn id(&self) -> &[u8] {
        self.cell(self.id_index)
    }

    fn cell(&self, at: usize) -> &[u8] {
        let cell = self.record.get(at).unwrap_or(b"");
        if at + 1 == self.record.len() {
            cell.strip_suffix(b"\r").unwrap_or(cell)
        } else {
            cell
        }
    }

    /// The cell of field column `i` (0-based among field columns); empty when missing.
    pub fn field(&self, i: usize) -> &[u8] {
        self.field_indexes
            .get(i)
            .map_or(&b""[..], |&at| self.cell(at))
    }
}

impl CsvInput {
    pub fn open(path: &Path, options: &CsvOptions) -> Result<CsvInput, InputError> {
        let file = File::open(path).map_err(|source| InputError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_reader(path, Box::new(file), options)
    }

    /// Reads from any source (buffered here); `path` is only used in messages.
    pub fn from_reader(
        path: &Path,
        source: Box<dyn Read + Send>,
        options: &CsvOptions,
    ) -> Result<CsvInput, InputError> {
        let shown = path.display().to_string();
        let mut raw = BufReader::with_capacity(READ_BUFFER_BYTES, source);
        let head = raw.fill_buf().map_err(|source| InputError::Open {
            path: shown.clone(),
            source,
        })?;
        let text: Box<dyn Read + Send> = match kind_of(head) {
            Kind::NotCsv { what, fix } => {
                return Err(InputError::NotCsv {
                    path: shown,
                    what,
                    fix,
                })
            }
            Kind::Utf16 { big_endian: _ } => {
                // Excel's "Unicode text" and some exports are UTF-16. encoding_rs_io
                // transcodes it to UTF-8 while streaming (the BOM picks the byte order;
                // an unpaired surrogate becomes U+FFFD), so the rest of massup reads
                // UTF-8 as always and memory stays constant.
                let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
                    .strip_bom(true)
                    .build(raw);
                Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, decoded))
            }
            Kind::Text => Box::new(raw),
        };
        // `flexible`: a ragged row becomes one invalid row with a clear message instead of
        // an error that would stop the file.
        // Records end at '\n' only, and a '\r' before it is stripped from the last cell
        // (see `RawRow::cell`): with the csv crate's CRLF terminator, the '\n' of a CRLF
        // is counted only once the next record starts, which puts every row of a
        // Windows-made file one line early in messages.
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(options.delimiter)
            .terminator(csv::Terminator::Any(b'\n'))
            .flexible(true)
            .has_headers(false)
            .from_reader(EofWatch {
                inner: LineLimit::new(text),
                at_eof: false,
            });
        let mut header = ByteRecord::new();
        let got = reader
            .read_byte_record(&mut header)
            .map_err(|e| read_error(&shown, &e))?;
        if !got {
            return Err(InputError::Empty { path: shown });
        }
        let header_line = start_line(&reader, &header);
        if header.len() > MAX_COLUMNS {
            return Err(InputError::TooManyColumns {
                path: shown,
                line: header_line,
                columns: header.len(),
            });
        }
        let names = header_names(&header, &shown, header_line)?;
        let Some(id_index) = names.iter().position(|n| *n == options.id_column) else {
            return Err(InputError::NoIdColumn {
                path: shown,
                id_column: options.id_column.clone(),
                columns: shorten_list(&names),
            });
        };
        let field_indexes: Vec<usize> = (0..names.len()).filter(|&i| i != id_index).collect();
        if field_indexes.is_empty() {
            return Err(InputError::NoFields { path: shown });
        }
        let field_columns = field_indexes.iter().map(|&i| names[i].clone()).collect();
        Ok(CsvInput {
            path: path.to_path_buf(),
            reader,
            header_line,
            id_index,
            field_columns,
            field_indexes,
            header_len: names.len(),
            record: ByteRecord::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header_line(&self) -> u64 {
        self.header_line
    }

    pub fn field_columns(&self) -> &[String] {
        &self.field_columns
    }

    /// The next data row, or `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<RawRow<'_>>, InputError> {
        loop {
            let got = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| read_error(&self.path.display().to_string(), &e))?;
            if !got {
                return Ok(None);
            }
            // A blank line of a CRLF file reaches us as one cell holding "\r": skip it as
            // the csv crate skips blank LF lines.
            let blank = self.record.len() == 1 && matches!(&self.record[0], b"" | b"\r");
            if !blank {
                break;
            }
        }
        let line = start_line(&self.reader, &self.record);
        Ok(Some(RawRow {
            line,
            record: &self.record,
            id_index: self.id_index,
            field_indexes: &self.field_indexes,
            header_len: self.header_len,
        }))
    }
}

/// The header's cells as names: trimmed, UTF-8, non-empty, each once.
fn header_names(header: &ByteRecord, shown: &str, line: u64) -> Result<Vec<String>, InputError> {
    let mut names: Vec<String> = Vec::with_capacity(header.len());
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let last = header.len().saturating_sub(1);
    for (i, raw) in header.iter().enumerate() {
        let raw = if i == last {
            raw.strip_suffix(b"\r").unwrap_or(raw)
        } else {
            raw
        };
        // A UTF-8 byte order mark is common from spreadsheet exports.
        let raw = if i == 0 {
            raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
        } else {
            raw
        };
        if raw.contains(&0) {
            return Err(InputError::HeaderBinary {
                path: shown.to_string(),
                line,
                column: i + 1,
            });
        }
        let name = std::str::from_utf8(raw).map_err(|_| InputError::HeaderUtf8 {
            path: shown.to_string(),
            line,
            column: i + 1,
        })?;
        let name = name.trim();
        if name.is_empty() {
            return Err(InputError::HeaderEmpty {
                path: shown.to_string(),
                line,
                column: i + 1,
            });
        }
        if let Some(&first) = seen.get(name) {
            return Err(InputError::HeaderDuplicate {
                path: shown.to_string(),
                line,
                name: name.to_string(),
                first: first + 1,
                second: i + 1,
            });
        }
        seen.insert(name, i);
        names.push(name.to_string());
    }
    Ok(names)
}

/// The source as the csv reader sees it, noting when it ran out: a record that needed the
/// end of the file to finish is the last one, with no line terminator after it.
/// No line of a CSV massup can send is anywhere near this long (a row over
/// `MAX_ROW_BYTES` is already invalid); a longer line means input that is not a CSV at all
/// (`/dev/zero`, a binary file, a file without line breaks), and reading stops here
/// instead of buffering it whole.
pub const MAX_LINE_BYTES: u64 = 64 << 20;

/// A reader that fails once a line (bytes between two newlines) grows past
/// `MAX_LINE_BYTES`, naming the line.
pub struct LineLimit<R> {
    inner: R,
    line: u64,
    since_newline: u64,
}

impl<R> LineLimit<R> {
    pub fn new(inner: R) -> LineLimit<R> {
        LineLimit {
            inner,
            line: 1,
            since_newline: 0,
        }
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut rest = &buf[..n];
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            self.line += 1;
            self.since_newline = 0;
            rest = &rest[at + 1..];
        }
        self.since_newline += rest.len() as u64;
        if self.since_newline > MAX_LINE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "line {} is longer than {} MiB without a line break: this is not a CSV massup can read (a binary file or device?)",
                    self.line,
                    MAX_LINE_BYTES >> 20
                ),
            ));
        }
        Ok(n)
    }
}

struct EofWatch<R> {
    inner: R,
    at_eof: bool,
}

impl<R: Read> Read for EofWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.at_eof = true;
        }
        Ok(n)
    }
}

/// The 1-based line where `record` (just read) starts. The csv crate dates a record from
/// where reading began, before the blank lines it skips, which put every row after a
/// blank line of an LF file too early; counting back from where the record ended is
/// exact: its end line less the newlines inside its quoted cells and its terminator.
fn start_line<R: Read>(reader: &csv::Reader<EofWatch<LineLimit<R>>>, record: &ByteRecord) -> u64 {
    let inside = record.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
    let terminated = u64::from(!reader.get_ref().at_eof);
    reader
        .position()
        .line()
        .saturating_sub(inside + terminated)
        .max(1)
}

fn read_error(path: &str, error: &csv::Error) -> InputError {
    let line = error.position().map_or(0, |p| p.line());
    let message = match error.kind() {
        csv::ErrorKind::Io(e) => e.to_string(),
        _ => error.to_string(),
    };
    InputError::Read {
        path: path.to_string(),
        line,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_str(text: &str) -> Result<CsvInput, InputError> {
        CsvInput::from_reader(
            Path::new("t.csv"),
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            &CsvOptions {
                delimiter: b',',
                id_column: "id".into(),
            },
        )
    }

    #[test]
    fn reads_bom_crlf_and_multiline_cells_with_start_lines() {
        let mut input =
            open_str("\u{feff}id,Last_Name\r\n1,\"two\r\nlines\"\r\n\r\n2,plain\r\n").unwrap();
        assert_eq!(input.field_columns(), ["Last_Name"]);
        let row = input.next_row().unwrap().unwrap();
        assert_eq!(
            (row.line, row.id(), row.field(0)),
            (2, &b"1"[..], &b"two\r\nlines"[..])
        );
        let row = input.next_row().unwrap().unwrap();
        assert_eq!(
            (row.line, row.id(), row.field(0)),
            (5, &b"2"[..], &b"plain"[..])
        );
        assert!(input.next_row().unwrap().is_none());
    }

    #[test]
    fn header_problems_name_the_column() {
        assert!(matches!(open_str(""), Err(InputError::Empty { .. })));
        let err = open_str("id,A,A\n").err().unwrap();
        assert!(err.to_string().contains("\"A\" appears twice"), "{err}");
        let err = open_str("record,A\n").err().unwrap();
        assert!(err.to_string().contains("no id column \"id\""), "{err}");
        assert!(matches!(
            open_str("id\n1\n"),
            Err(InputError::NoFields { .. })
        ));
        assert!(matches!(
            open_str("id,,B\n"),
            Err(InputError::HeaderEmpty { column: 2, .. })
        ));
    }

    #[test]
    fn ragged_rows_are_reported_not_fatal() {
        let mut input = open_str("id,A,B\n1,x\n2,y,z\n").unwrap();
        let row = input.next_row().unwrap().unwrap();
        assert!(row.is_ragged());
        assert_eq!(row.field(1), b"");
        let row = input.next_row().unwrap().unwrap();
        assert!(!row.is_ragged());
    }

    fn open_bytes(bytes: &[u8]) -> Result<CsvInput, InputError> {
        CsvInput::from_reader(
            Path::new("t.csv"),
            Box::new(std::io::Cursor::new(bytes.to_vec())),
            &CsvOptions {
                delimiter: b';',
                id_column: "id".into(),
            },
        )
    }

    #[test]
    fn utf16_with_a_byte_order_mark_is_decoded() {
        for big_endian in [false, true] {
            let text = "id;Last_Name\r\n1;Müller\r\n";
            let mut bytes = if big_endian {
                vec![0xFE, 0xFF]
            } else {
                vec![0xFF, 0xFE]
            };
            for unit in text.encode_utf16() {
                let pair = if big_endian {
                    unit.to_be_bytes()
                } else {
                    unit.to_le_bytes()
                };
                bytes.extend_from_slice(&pair);
            }
            let mut input = open_bytes(&bytes).unwrap();
            assert_eq!(input.field_columns(), ["Last_Name"]);
            let row = input.next_row().unwrap().unwrap();
            assert_eq!(
                (row.line, row.id(), row.field(0)),
                (2, &b"1"[..], "Müller".as_bytes())
            );
        }
    }

    #[test]
    fn workbooks_and_binary_files_are_refused_by_name() {
        let err = open_bytes(b"PK\x03\x04\x14\x00rest").err().unwrap();
        assert_eq!(
            err.to_string(),
            "t.csv is an Excel workbook (a zip file), not a CSV: save it as 'CSV UTF-8' and plan that"
        );
        let err = open_bytes(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1")
            .err()
            .unwrap();
        assert!(err.to_string().contains(".xls"), "{err}");
        let err = open_bytes(b"i\0d\0;\0A\0\n\0").err().unwrap();
        assert!(
            err.to_string()
                .contains("t.csv: line 1: the header holds NUL bytes (column 1)"),
            "{err}"
        );
    }
}
