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
/// recognise its kind and its header's delimiter.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// Names a spreadsheet gives the record id column when `--id-column` is not given, compared
/// by [`loose_name`]: massup's own `id`, and Zoho's exports' `Record Id`.
pub const ID_COLUMN_NAMES: [&str; 2] = ["id", "record id"];

/// A header name as people mean it: ASCII case ignored, underscores read as spaces, runs
/// of spaces as one, so `Record_Id`, `record id` and `RECORD  ID` are the same name.
pub fn loose_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for word in name
        .split(|c: char| c == '_' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word.to_lowercase());
    }
    out
}

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

/// What went wrong with a file, in words a person reads: "no such file", not "No such
/// file or directory (os error 2)".
pub fn io_reason(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::NotFound => "no such file".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::IsADirectory => "it is a folder, not a file".into(),
        _ => {
            let text = error.to_string();
            match text.find(" (os error") {
                Some(at) => text[..at].to_string(),
                None => text,
            }
        }
    }
}

/// Input problems that stop the whole file (as opposed to one bad row).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The io error is in the message in words and is not a `source`: a chain would say
    /// "No such file or directory (os error 2)" a second time.
    #[error("{path}: cannot read it: {}", io_reason(cause))]
    Open { path: String, cause: std::io::Error },
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
    #[error("{path}: line {line}: the header has no id column {looked_for} (columns: {columns}); pass --id-column NAME for the column holding Zoho record ids, or --match-by FIELD for a sheet keyed by Email or another unique field")]
    NoIdColumn {
        path: String,
        line: u64,
        /// What was looked for, quoted.
        looked_for: String,
        columns: String,
    },
    #[error("{path}: line {line}: no column holds the keys of --match-by {field} (columns: {columns}); name the column with --id-column NAME")]
    NoKeyColumn {
        path: String,
        line: u64,
        field: String,
        columns: String,
    },
    #[error("{path}: line {line}: the header is one column {header:?}, which holds {found:?}: the file is separated by {found:?}; pass --delimiter {found_flag}", found_flag = delimiter_flag(*.found))]
    OneColumnHeader {
        path: String,
        line: u64,
        header: String,
        found: char,
    },
    #[error("{path}: line {line}: {what} could be any of the columns {candidates}; pass --id-column NAME to say which holds the Zoho record ids")]
    IdColumnAmbiguous {
        path: String,
        line: u64,
        what: String,
        candidates: String,
    },
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
    #[error("{path}: line {line}: the header has {columns} columns; massup accepts at most {max} (is --delimiter right?)", max = MAX_COLUMNS)]
    TooManyColumns {
        path: String,
        line: u64,
        columns: usize,
    },
    #[error("{path}: the header has only the id column; add at least one field column to update")]
    NoFields { path: String },
    #[error("{path}: line {line}: column {column:?} is the id column and cannot be ignored (--ignore-column, or [skip] of --map); to key the sheet by another column pass --id-column NAME")]
    IgnoredIdColumn {
        path: String,
        line: u64,
        column: String,
    },
    #[error("{path}: line {line}: cannot read CSV: {message}")]
    Read {
        path: String,
        line: u64,
        message: String,
    },
}

/// How `--delimiter` is written for a character (a tab as `'\t'`).
pub fn delimiter_flag(delimiter: char) -> String {
    match delimiter {
        '\t' => "'\\t'".to_string(),
        c => format!("'{c}'"),
    }
}

/// How to read the file.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// The field separator; `None`: ',', or ';' or a tab when the header reads as one
    /// cell holding them (what Excel saves in much of Europe), said in [`CsvInput::notes`].
    pub delimiter: Option<u8>,
    /// The record id column; `None`: the one column named like [`ID_COLUMN_NAMES`]. A
    /// given name that the header lacks exactly is matched by [`loose_name`].
    pub id_column: Option<String>,
    /// `--encoding`: the file's character encoding when it is not UTF-8 (decoded to UTF-8
    /// while streaming). None: UTF-8 (or UTF-16 with a byte order mark).
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// Columns that are not for Zoho (`--ignore-column`, a map's `[skip]`): never read. A
    /// name the header lacks exactly is matched by [`loose_name`].
    pub ignore_columns: Vec<String>,
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

/// Separators a header that reads as one cell is checked for, most common first.
const OTHER_DELIMITERS: [u8; 4] = [b';', b'\t', b',', b'|'];

/// The delimiter a header written as one cell holds, other than `used`: the most frequent
/// of [`OTHER_DELIMITERS`] (the first on a tie).
fn delimiter_in(cell: &[u8], used: u8) -> Option<u8> {
    OTHER_DELIMITERS
        .iter()
        .filter(|&&d| d != used)
        .map(|&d| (d, cell.iter().filter(|&&b| b == d).count()))
        .filter(|&(_, n)| n > 0)
        .fold(None, |best: Option<(u8, usize)>, (d, n)| match best {
            Some((_, m)) if m >= n => best,
            _ => Some((d, n)),
        })
        .map(|(d, _)| d)
}

/// The delimiter the file's first line shows when no `--delimiter` was given: ',' unless
/// the line, read with ',', is one cell holding ';' or a tab. `head` is the start of the
/// file as buffered; a header longer than that is read with ','.
fn sniff_delimiter(head: &[u8]) -> u8 {
    let Some(end) = head.iter().position(|&b| b == b'\n') else {
        return b',';
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&head[..end]);
    let mut header = ByteRecord::new();
    match reader.read_byte_record(&mut header) {
        // Only the separators spreadsheets save with: a '|' in a header is more likely
        // part of a name.
        Ok(true) if header.len() == 1 => delimiter_in(&header[0], b',')
            .filter(|d| matches!(d, b';' | b'\t'))
            .unwrap_or(b','),
        _ => b',',
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
    /// The delimiter used (given, or found in the header).
    delimiter: u8,
    /// The id column's name as the header writes it.
    id_column: String,
    /// Columns left out (`CsvOptions::ignore_columns`), as the header writes them.
    ignored: Vec<String>,
    /// What was decided about the file that the user did not say (a delimiter found in
    /// the header, UTF-16 decoded), for the plan's warnings.
    notes: Vec<String>,
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

    /// Cells in the header, ignored columns included.
    pub fn header_len(&self) -> usize {
        self.header_len
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
        let file = File::open(path).map_err(|cause| InputError::Open {
            path: path.display().to_string(),
            cause,
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
        let io_error = |cause| InputError::Open {
            path: shown.clone(),
            cause,
        };
        let mut notes = Vec::new();
        let mut raw = BufReader::with_capacity(READ_BUFFER_BYTES, source);
        let mut text: Box<dyn BufRead + Send> = match kind_of(raw.fill_buf().map_err(io_error)?) {
            Kind::NotCsv { what, fix } => {
                return Err(InputError::NotCsv {
                    path: shown,
                    what,
                    fix,
                })
            }
            Kind::Utf16 { big_endian } => {
                // Excel's "Unicode text" and some exports are UTF-16. encoding_rs_io
                // transcodes it to UTF-8 while streaming (the BOM picks the byte order;
                // an unpaired surrogate becomes U+FFFD), so the rest of massup reads
                // UTF-8 as always and memory stays constant.
                notes.push(format!(
                    "the file is UTF-16 {} (it starts with a byte order mark): decoded as UTF-16",
                    if big_endian { "BE" } else { "LE" }
                ));
                let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
                    .strip_bom(true)
                    .build(raw);
                Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, decoded))
            }
            Kind::Text => match options.encoding.filter(|e| *e != encoding_rs::UTF_8) {
                Some(encoding) => {
                    notes.push(format!(
                        "the file is read as {} (--encoding)",
                        encoding.name()
                    ));
                    let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
                        .encoding(Some(encoding))
                        .build(raw);
                    Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, decoded))
                }
                None => Box::new(raw),
            },
        };
        let delimiter = match options.delimiter {
            Some(given) => given,
            None => {
                let found = sniff_delimiter(text.fill_buf().map_err(io_error)?);
                if found != b',' {
                    let found = char::from(found);
                    notes.push(format!(
                        "the header is separated by {found:?}, not ',': read with --delimiter {}",
                        delimiter_flag(found)
                    ));
                }
                found
            }
        };
        // `flexible`: a ragged row becomes one invalid row with a clear message instead of
        // an error that would stop the file.
        // Records end at '\n' only, and a '\r' before it is stripped from the last cell
        // (see `RawRow::cell`): with the csv crate's CRLF terminator, the '\n' of a CRLF
        // is counted only once the next record starts, which puts every row of a
        // Windows-made file one line early in messages.
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .terminator(csv::Terminator::Any(b'\n'))
            .flexible(true)
            .has_headers(false)
            .from_reader(EofWatch {
                inner: LineLimit::new(Box::new(text) as Box<dyn Read + Send>),
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
        let id_index = find_id_column(&names, options, delimiter, &shown, header_line)?;
        let ignored = ignored_columns(&names, &options.ignore_columns, &mut notes);
        if ignored.contains(&id_index) {
            return Err(InputError::IgnoredIdColumn {
                path: shown,
                line: header_line,
                column: names[id_index].clone(),
            });
        }
        let field_indexes: Vec<usize> = (0..names.len())
            .filter(|&i| i != id_index && !ignored.contains(&i))
            .collect();
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
            delimiter,
            id_column: names[id_index].clone(),
            ignored: ignored.iter().map(|&i| names[i].clone()).collect(),
            notes,
            record: ByteRecord::new(),
        })
    }

    /// The columns left out as asked, as the header writes them, in header order.
    pub fn ignored_columns(&self) -> &[String] {
        &self.ignored
    }

    /// The delimiter the file is read with.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// The id column's name, as the header writes it.
    pub fn id_column(&self) -> &str {
        &self.id_column
    }

    /// What massup decided about the file that the user did not say.
    pub fn notes(&self) -> &[String] {
        &self.notes
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

/// The positions (in header order) of the columns `ignore` names: a name matches the
/// column of that exact name, else every column of the same [`loose_name`] (people type
/// "notes" for "Notes"). A name no column answers to is said in `notes`, not refused: one
/// list of columns to skip often serves several sheets.
fn ignored_columns(names: &[String], ignore: &[String], notes: &mut Vec<String>) -> Vec<usize> {
    let mut ignored = Vec::new();
    for name in ignore {
        let found: Vec<usize> = match names.iter().position(|n| n == name) {
            Some(exact) => vec![exact],
            None => {
                let wanted = loose_name(name);
                (0..names.len())
                    .filter(|&i| loose_name(&names[i]) == wanted)
                    .collect()
            }
        };
        if found.is_empty() {
            notes.push(format!(
                "column {name:?} is to be ignored, but the header has no such column"
            ));
        }
        ignored.extend(found);
    }
    ignored.sort_unstable();
    ignored.dedup();
    ignored
}

/// The position of the record id column: the one `--id-column` names (exactly, else by
/// [`loose_name`]), or else the one named like [`ID_COLUMN_NAMES`]. Two candidates are an
/// error naming both: picking one would send one column's values as record ids.
fn find_id_column(
    names: &[String],
    options: &CsvOptions,
    delimiter: u8,
    shown: &str,
    line: u64,
) -> Result<usize, InputError> {
    let candidates: Vec<usize> = match &options.id_column {
        Some(given) => match names.iter().position(|n| n == given) {
            Some(exact) => vec![exact],
            None => {
                let wanted = loose_name(given);
                (0..names.len())
                    .filter(|&i| loose_name(&names[i]) == wanted)
                    .collect()
            }
        },
        None => (0..names.len())
            .filter(|&i| ID_COLUMN_NAMES.contains(&loose_name(&names[i]).as_str()))
            .collect(),
    };
    let looked_for = || match &options.id_column {
        Some(given) => format!("{given:?}"),
        None => ID_COLUMN_NAMES
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(" or "),
    };
    match candidates[..] {
        [one] => Ok(one),
        [] => {
            // A header that reads as one cell holding another separator: the delimiter is
            // the fix, not --id-column.
            if let [only] = names {
                if let Some(found) = delimiter_in(only.as_bytes(), delimiter) {
                    return Err(InputError::OneColumnHeader {
                        path: shown.to_string(),
                        line,
                        header: shorten(only, 80),
                        found: char::from(found),
                    });
                }
            }
            Err(InputError::NoIdColumn {
                path: shown.to_string(),
                line,
                looked_for: looked_for(),
                columns: shorten_list(names),
            })
        }
        _ => Err(InputError::IdColumnAmbiguous {
            path: shown.to_string(),
            line,
            what: format!("the id column ({} ignoring case)", looked_for()),
            candidates: candidates
                .iter()
                .map(|&i| format!("{:?} (column {})", names[i], i + 1))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Checks a data cell for what no value of a Zoho field can hold: a NUL byte. A NUL in a
/// cell is almost always damage (a binary or UTF-16 file read as text, a truncated export)
/// and never a value anyone means; sent as JSON's `\u0000` it would be stored or cut short
/// differently by each system that reads the record after Zoho. So the cell makes its row
/// invalid, saying where (the caller names the line and the column), and the other rows
/// go on. Other control characters are left alone: a tab or a line break in a multi-line
/// field is data.
pub fn check_cell(raw: &[u8]) -> Result<(), String> {
    match raw.iter().position(|&b| b == 0) {
        None => Ok(()),
        Some(at) => Err(format!(
            "holds a NUL byte (byte {} of the cell), which no field can store; remove it, or if the file is UTF-16 or binary, save it as 'CSV UTF-8'",
            at + 1
        )),
    }
}

/// `text` cut to `max` characters for a message.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}...", &text[..cut]),
    }
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

    fn open_bytes(bytes: &[u8], options: &CsvOptions) -> Result<CsvInput, InputError> {
        CsvInput::from_reader(
            Path::new("t.csv"),
            Box::new(std::io::Cursor::new(bytes.to_vec())),
            options,
        )
    }

    /// Read as `plan` reads without --delimiter and --id-column.
    fn open_str(text: &str) -> Result<CsvInput, InputError> {
        open_bytes(
            text.as_bytes(),
            &CsvOptions {
                delimiter: None,
                id_column: None,
                encoding: None,
                ignore_columns: Vec::new(),
            },
        )
    }

    fn with(delimiter: Option<u8>, id_column: Option<&str>) -> CsvOptions {
        CsvOptions {
            delimiter,
            id_column: id_column.map(str::to_string),
            encoding: None,
            ignore_columns: Vec::new(),
        }
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
        let message = err.to_string();
        for part in [
            "t.csv: line 1: the header has no id column \"id\" or \"record id\"",
            "(columns: record, A)",
            "--id-column NAME",
            "--match-by FIELD",
        ] {
            assert!(message.contains(part), "{message}");
        }
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
    fn ignored_columns_are_never_read_and_unknown_ones_are_noted() {
        let options = CsvOptions {
            ignore_columns: vec!["notes".into(), "Stadt".into(), "Fax".into()],
            ..with(None, None)
        };
        let mut input =
            open_bytes(b"id,Notes,City,Stadt\n1,call back,Oslo,Bergen\n", &options).unwrap();
        assert_eq!(input.field_columns(), ["City"]);
        assert_eq!(input.ignored_columns(), ["Notes", "Stadt"]);
        assert_eq!(
            input.notes(),
            ["column \"Fax\" is to be ignored, but the header has no such column"]
        );
        let row = input.next_row().unwrap().unwrap();
        assert!(!row.is_ragged());
        assert_eq!((row.field(0), row.field(1)), (&b"Oslo"[..], &b""[..]));
        assert_eq!(row.header_len(), 4);
        let options = CsvOptions {
            ignore_columns: vec!["Record Id".into()],
            ..with(None, None)
        };
        let err = open_bytes(b"Record Id,City\n", &options)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(
                "t.csv: line 1: column \"Record Id\" is the id column and cannot be ignored"
            ),
            "{err}"
        );
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

    #[test]
    fn loose_names_ignore_case_underscores_and_extra_spaces() {
        assert_eq!(loose_name("Record_Id"), "record id");
        assert_eq!(loose_name("  RECORD   id "), "record id");
        assert_eq!(loose_name("No. of_Employees"), "no. of employees");
    }

    #[test]
    fn the_id_column_is_found_by_its_usual_names() {
        for header in [
            "id",
            "Id",
            "ID",
            "Record Id",
            "Record_Id",
            "record id",
            "RECORD_ID",
        ] {
            let input = open_str(&format!("Last_Name,{header}\nx,1\n")).unwrap();
            assert_eq!(input.id_column(), header);
            assert_eq!(input.field_columns(), ["Last_Name"]);
        }
        let err = open_str("Id,Record Id,A\n").err().unwrap().to_string();
        assert!(
            err.contains("t.csv: line 1: the id column")
                && err.contains("\"Id\" (column 1), \"Record Id\" (column 2)")
                && err.contains("--id-column NAME"),
            "{err}"
        );
    }

    #[test]
    fn a_given_id_column_wins_exactly_then_loosely() {
        let input = open_bytes(b"id,Key,A\n", &with(None, Some("Key"))).unwrap();
        assert_eq!(
            (input.id_column(), input.field_columns()),
            ("Key", &["id".to_string(), "A".to_string()][..])
        );
        let input = open_bytes(b"Record Id,A\n", &with(None, Some("record_id"))).unwrap();
        assert_eq!(input.id_column(), "Record Id");
        let err = open_bytes(b"id,A\n", &with(None, Some("Key")))
            .err()
            .unwrap();
        assert!(err.to_string().contains("no id column \"Key\""), "{err}");
    }

    #[test]
    fn a_semicolon_or_tab_header_is_read_with_its_delimiter_and_said_so() {
        let mut input = open_str("id;Last_Name;City\r\n1;Smith, Jr.;Berlin\r\n").unwrap();
        assert_eq!(input.delimiter(), b';');
        assert_eq!(input.field_columns(), ["Last_Name", "City"]);
        assert!(
            input.notes()[0].contains("separated by ';'"),
            "{:?}",
            input.notes()
        );
        assert!(input.notes()[0].contains("--delimiter ';'"));
        let row = input.next_row().unwrap().unwrap();
        assert_eq!(row.field(0), b"Smith, Jr.");
        let input = open_str("id\tLast_Name\n1\tx\n").unwrap();
        assert_eq!(input.delimiter(), b'\t');
        // A header that is one column of its own stays one column.
        assert!(matches!(
            open_str("id\n1\n"),
            Err(InputError::NoFields { .. })
        ));
        assert!(open_str("id,A\n").unwrap().notes().is_empty());
    }

    #[test]
    fn a_given_delimiter_is_never_replaced_and_the_fix_is_named() {
        let err = open_bytes(b"id;Last_Name\n1;x\n", &with(Some(b','), None))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("t.csv: line 1: the header is one column \"id;Last_Name\"")
                && err.contains("pass --delimiter ';'"),
            "{err}"
        );
        let err = open_bytes(b"id,Last_Name\n", &with(Some(b'\t'), None))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("pass --delimiter ','"), "{err}");
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
            let mut input = open_bytes(&bytes, &with(None, None)).unwrap();
            assert_eq!(input.field_columns(), ["Last_Name"]);
            assert!(
                input.notes().iter().any(|n| n.contains("UTF-16")),
                "{:?}",
                input.notes()
            );
            let row = input.next_row().unwrap().unwrap();
            assert_eq!(
                (row.line, row.id(), row.field(0)),
                (2, &b"1"[..], "Müller".as_bytes())
            );
        }
    }

    #[test]
    fn a_nul_byte_in_a_cell_is_named_with_its_place() {
        assert!(check_cell(b"plain\ttext\r\n").is_ok());
        let err = check_cell(b"ab\0c").unwrap_err();
        assert!(
            err.starts_with("holds a NUL byte (byte 3 of the cell)"),
            "{err}"
        );
    }

    #[test]
    fn workbooks_and_binary_files_are_refused_by_name() {
        let err = open_bytes(b"PK\x03\x04\x14\x00rest", &with(None, None))
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "t.csv is an Excel workbook (a zip file), not a CSV: save it as 'CSV UTF-8' and plan that"
        );
        let err = open_bytes(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", &with(None, None))
            .err()
            .unwrap();
        assert!(err.to_string().contains(".xls"), "{err}");
        let err = open_bytes(b"i\0d\0,\0A\0\n\0", &with(None, None))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("t.csv: line 1: the header holds NUL bytes (column 1)"),
            "{err}"
        );
    }
}
