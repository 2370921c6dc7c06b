//! `--map FILE`: how a sheet people keep is read, written once beside it in TOML (or as a
//! CSV of `column,field,value` rows, for a map kept in a spreadsheet). Its own
//! headers are read as field names (`[columns] "Stadt" = "City"`), columns that are not
//! for Zoho are left out (`[skip] columns = ["Notes"]`), and fixed values are set on every
//! row (`[set] Lead_Source = "Partner"`). The file is read when flags are resolved; what
//! it says becomes part of the plan settings (and so of the run's identity), and where it
//! said it (file and line) stays with them for messages.
use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

/// What a map file says, checked for itself (whether its fields exist is the plan's to
/// check, with the module's metadata).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnMap {
    /// Sheet header -> field (API name or label), as written.
    pub columns: BTreeMap<String, String>,
    /// Columns to leave out.
    pub skip: Vec<String>,
    /// Field -> the value every row gets, as a cell would write it.
    pub set: BTreeMap<String, String>,
    /// Where each entry was written, for messages.
    pub origin: MapOrigin,
}

/// Where a map's entries were written: the file as the user named it and each entry's
/// line. Never stored with a run (moving the file changes nothing about the plan).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapOrigin {
    pub file: String,
    /// `(section, key)` -> 1-based line.
    pub lines: BTreeMap<(Section, String), usize>,
}

/// The two tables whose entries a message can point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Columns,
    Set,
}

impl MapOrigin {
    /// An entry as messages name it: `map.toml: line 3: [columns] "Stadt"`. Without an
    /// origin (settings built by a library caller) it is named by its table alone.
    pub fn entry(origin: Option<&MapOrigin>, section: Section, key: &str) -> String {
        let table = match section {
            Section::Columns => format!("[columns] {key:?}"),
            Section::Set => format!("[set] {key}"),
        };
        match origin {
            Some(origin) => match origin.lines.get(&(section, key.to_string())) {
                Some(line) => format!("{}: line {line}: {table}", origin.file),
                None => format!("{}: {table}", origin.file),
            },
            None => format!("--map {table}"),
        }
    }
}

/// A map file that cannot be used; the message names the file, and the line and key where
/// there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MapError(pub String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMap {
    #[serde(default)]
    columns: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    skip: RawSkip,
    #[serde(default)]
    set: BTreeMap<String, Spanned<toml::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSkip {
    #[serde(default)]
    columns: Vec<Spanned<String>>,
}

/// The largest map file read: an honest one is a few dozen lines.
const MAX_MAP_BYTES: u64 = 1 << 20;

/// Reads `--map FILE`: TOML, or CSV when its name ends in `.csv` (see [`parse_csv`]).
pub fn read(path: &Path) -> Result<ColumnMap, MapError> {
    let shown = path.display().to_string();
    // A plain file only: a FIFO or a device in its place is refused, not waited on.
    let text = crate::plain_file::read_to_string(path, MAX_MAP_BYTES).map_err(|e| match e {
        crate::plain_file::PlainFileError::Io { source, .. } => MapError(format!(
            "--map {shown}: cannot read it: {}",
            crate::input::io_reason(&source)
        )),
        other => MapError(format!("--map {other}")),
    })?;
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        parse_csv(&shown, &text)
    } else {
        parse(&shown, &text)
    }
}

/// One entry of a map file, as written, with its line: what the TOML and the CSV forms
/// both come to before they are checked.
enum Entry {
    Column { header: String, field: String },
    Skip { column: String },
    Set { field: String, value: String },
}

/// Parses a map file's text; `file` names it in messages.
pub fn parse(file: &str, text: &str) -> Result<ColumnMap, MapError> {
    let line_of = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
    let raw: RawMap = toml::from_str(text).map_err(|e| {
        // toml's own message names the line and column and quotes the line; a mistyped
        // table name gets the ones there are.
        let hint = if e.message().starts_with("unknown field") {
            "\nA map file has the tables [columns] (\"Sheet header\" = \"Field\"), [skip] (columns = [\"Notes\"]) and [set] (Field = \"value\")."
        } else {
            ""
        };
        MapError(format!(
            "--map {file}: {}{hint}",
            e.to_string().trim_end()
        ))
    })?;
    let mut entries = Vec::new();
    // In file order, so a message about two entries names them as the file does.
    let mut columns: Vec<_> = raw.columns.into_iter().collect();
    columns.sort_by_key(|(_, field)| field.span().start);
    for (header, field) in columns {
        let line = line_of(field.span().start);
        let field = field.into_inner();
        entries.push((line, Entry::Column { header, field }));
    }
    for column in raw.skip.columns {
        let line = line_of(column.span().start);
        let column = column.into_inner();
        entries.push((line, Entry::Skip { column }));
    }
    for (field, value) in raw.set {
        let line = line_of(value.span().start);
        let value = match value.into_inner() {
            toml::Value::String(text) => text,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(x) => x.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Datetime(d) => d.to_string(),
            toml::Value::Array(_) | toml::Value::Table(_) => {
                return Err(MapError(format!(
                    "{file}: line {line}: [set] {field}: write the value as a sheet's cell would (a multi-select's values in one string, separated as in the sheet)"
                )))
            }
        };
        entries.push((line, Entry::Set { field, value }));
    }
    assemble(file, entries, Form::Toml)
}

/// The CSV form of a map, for people who keep it in a spreadsheet: a header row
/// `column,field,value` (`;` or tab separated too), then one row an entry:
/// - `Stadt,City,`: the sheet's column Stadt is the field City;
/// - `Notes,,`: the column Notes is left out;
/// - `,Lead_Source,Partner`: every row gets Lead_Source = Partner.
pub fn parse_csv(file: &str, text: &str) -> Result<ColumnMap, MapError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.lines().next().unwrap_or("");
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| first.bytes().filter(|b| b == d).count())
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let expected = ["column", "field", "value"];
    let headers = reader
        .headers()
        .map_err(|e| MapError(format!("--map {file}: line 1: {e}")))?
        .clone();
    let named: Vec<String> = headers.iter().map(|h| h.trim().to_lowercase()).collect();
    if named.len() < 2 || named.iter().zip(expected).any(|(h, e)| h != e) {
        return Err(MapError(format!(
            "--map {file}: line 1: the header must be column,field,value (found {:?}); then one row an entry: `Stadt,City,` maps a column, `Notes,,` leaves one out, `,Lead_Source,Partner` sets a value on every row",
            headers.iter().collect::<Vec<_>>().join(",")
        )));
    }
    let mut entries = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| MapError(format!("--map {file}: {e}")))?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let cell = |i: usize| record.get(i).unwrap_or("").trim().to_string();
        let (column, field, value) = (cell(0), cell(1), cell(2));
        if record.len() > 3 && record.iter().skip(3).any(|c| !c.trim().is_empty()) {
            return Err(MapError(format!(
                "{file}: line {line}: more than three cells (column, field, value)"
            )));
        }
        let entry = match (column.is_empty(), field.is_empty(), value.is_empty()) {
            (true, true, true) => continue,
            (false, false, true) => Entry::Column {
                header: column,
                field,
            },
            (false, true, true) => Entry::Skip { column },
            (true, false, false) => Entry::Set { field, value },
            (true, false, true) => Entry::Set { field, value },
            _ => {
                return Err(MapError(format!(
                    "{file}: line {line}: a row maps a column (column,field,), leaves one out (column,,) or sets a value (,field,value), not {column:?},{field:?},{value:?}"
                )))
            }
        };
        entries.push((line, entry));
    }
    assemble(file, entries, Form::Csv)
}

/// Which form a map was written in, for how messages name an entry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Toml,
    Csv,
}

/// The entries of either form, checked: each column mapped once and to a field no other
/// column names, a column not both mapped and skipped, a value for every `set`.
fn assemble(file: &str, entries: Vec<(usize, Entry)>, form: Form) -> Result<ColumnMap, MapError> {
    let mut map = ColumnMap {
        origin: MapOrigin {
            file: file.to_string(),
            lines: BTreeMap::new(),
        },
        ..ColumnMap::default()
    };
    let at = |line: usize, table: String| match form {
        Form::Toml => format!("{file}: line {line}: {table}"),
        Form::Csv => format!("{file}: line {line}"),
    };
    for (line, entry) in entries {
        match entry {
            Entry::Column { header, field } => {
                if header.trim().is_empty() || field.trim().is_empty() {
                    return Err(MapError(format!(
                        "{}: a column and the field it names must both be given",
                        at(line, format!("[columns] {header:?} = {field:?}"))
                    )));
                }
                if let Some((other, _)) = map.columns.iter().find(|(_, f)| **f == field.trim()) {
                    return Err(MapError(format!(
                        "{}: the columns {other:?} and {header:?} both name the field {field}; keep one",
                        at(line, format!("[columns] {header:?}"))
                    )));
                }
                if map.columns.contains_key(&header) {
                    return Err(MapError(format!(
                        "{}: the column {header:?} is mapped twice; keep one",
                        at(line, format!("[columns] {header:?}"))
                    )));
                }
                map.origin
                    .lines
                    .insert((Section::Columns, header.clone()), line);
                map.columns.insert(header, field.trim().to_string());
            }
            Entry::Skip { column } => {
                if map.columns.contains_key(&column) {
                    return Err(MapError(format!(
                        "{}: {column:?} is both mapped in [columns] and skipped; keep one",
                        at(line, "[skip]".to_string())
                    )));
                }
                if column.trim().is_empty() {
                    return Err(MapError(format!(
                        "{}: an empty column name",
                        at(line, "[skip]".to_string())
                    )));
                }
                map.skip.push(column);
            }
            Entry::Set { field, value } => {
                let entry = at(line, format!("[set] {field}"));
                if value.trim().is_empty() {
                    return Err(MapError(format!(
                        "{entry}: an empty value changes nothing; to clear the field on every row, set it to the null marker (#N/A, or --null-marker)"
                    )));
                }
                map.origin.lines.insert((Section::Set, field.clone()), line);
                map.set.insert(field, value);
            }
        }
    }
    // A column skipped before it was mapped (the CSV form allows any order).
    if let Some(column) = map.skip.iter().find(|c| map.columns.contains_key(*c)) {
        return Err(MapError(format!(
            "--map {file}: {column:?} is both mapped and skipped; keep one"
        )));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHEET_MAP: &str = r#"# How the sales team's sheet is read.
[columns]
"Stadt" = "City"
"E-Mail" = "Email"

[skip]
columns = ["Notes", "Bearbeiter"]

[set]
Lead_Source = "Partner"
No_of_Employees = 12
Email_Opt_Out = false
"#;

    #[test]
    fn a_map_reads_columns_skips_and_fixed_values_with_their_lines() {
        let map = parse("map.toml", SHEET_MAP).unwrap();
        assert_eq!(map.columns["Stadt"], "City");
        assert_eq!(map.columns["E-Mail"], "Email");
        assert_eq!(map.skip, ["Notes", "Bearbeiter"]);
        assert_eq!(map.set["Lead_Source"], "Partner");
        assert_eq!(map.set["No_of_Employees"], "12");
        assert_eq!(map.set["Email_Opt_Out"], "false");
        let origin = Some(&map.origin);
        assert_eq!(
            MapOrigin::entry(origin, Section::Columns, "Stadt"),
            "map.toml: line 3: [columns] \"Stadt\""
        );
        assert_eq!(
            MapOrigin::entry(origin, Section::Set, "Lead_Source"),
            "map.toml: line 10: [set] Lead_Source"
        );
        assert_eq!(
            MapOrigin::entry(None, Section::Set, "Lead_Source"),
            "--map [set] Lead_Source"
        );
    }

    #[test]
    fn every_table_is_optional() {
        let map = parse("m.toml", "[skip]\ncolumns = [\"Notes\"]\n").unwrap();
        assert!(map.columns.is_empty() && map.set.is_empty());
        assert_eq!(parse("m.toml", "").unwrap().skip, Vec::<String>::new());
    }

    #[track_caller]
    fn refused(text: &str, parts: &[&str]) {
        let message = parse("m.toml", text).unwrap_err().to_string();
        for part in parts {
            assert!(message.contains(part), "{part:?} not in:\n{message}");
        }
    }

    #[test]
    fn bad_map_files_name_the_file_the_line_and_the_key() {
        // Not TOML: toml names the line and column.
        refused("[columns]\n\"Stadt\" = City\n", &["--map m.toml", "line 2"]);
        // A mistyped table: the tables there are.
        refused(
            "[colums]\n\"Stadt\" = \"City\"\n",
            &["--map m.toml", "colums", "[columns]", "[skip]", "[set]"],
        );
        refused(
            "[skip]\ncolumn = [\"Notes\"]\n",
            &["--map m.toml", "column"],
        );
        // A field that is not text.
        refused("[columns]\n\"Stadt\" = 5\n", &["--map m.toml", "line 2"]);
        refused(
            "[columns]\n\"Stadt\" = \"\"\n",
            &[
                "m.toml: line 2: [columns] \"Stadt\" = \"\"",
                "must both be given",
            ],
        );
        refused(
            "[columns]\n\"Stadt\" = \"City\"\n\"Ort\" = \"City\"\n",
            &[
                "m.toml: line 3: [columns] \"Ort\"",
                "\"Stadt\" and \"Ort\" both name the field City",
            ],
        );
        refused(
            "[columns]\n\"Notes\" = \"Description\"\n[skip]\ncolumns = [\"Notes\"]\n",
            &["m.toml: line 4: [skip]", "\"Notes\" is both mapped"],
        );
        refused(
            "[set]\nLead_Source = \"\"\n",
            &["m.toml: line 2: [set] Lead_Source", "null marker"],
        );
        refused(
            "[set]\nTags = [\"a\", \"b\"]\n",
            &["m.toml: line 2: [set] Tags", "one string"],
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let message = read(Path::new("/nonexistent/map.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("--map /nonexistent/map.toml: cannot read"),
            "{message}"
        );
    }

    #[test]
    fn the_csv_form_says_what_the_toml_form_says() {
        let csv = "\u{feff}Column;Field;Value\nStadt;City;\nE-Mail;Email;\nNotes;;\nBearbeiter;;\n;;\n;Lead_Source;Partner\n;No_of_Employees;12\n;Email_Opt_Out;false\n";
        let from_csv = parse_csv("map.csv", csv).unwrap();
        let from_toml = parse("map.toml", SHEET_MAP).unwrap();
        assert_eq!(from_csv.columns, from_toml.columns);
        assert_eq!(from_csv.skip, from_toml.skip);
        assert_eq!(from_csv.set, from_toml.set);
        assert_eq!(
            MapOrigin::entry(Some(&from_csv.origin), Section::Set, "Lead_Source"),
            "map.csv: line 7: [set] Lead_Source"
        );
        let refused = |text: &str, parts: &[&str]| {
            let message = parse_csv("m.csv", text).unwrap_err().to_string();
            for part in parts {
                assert!(message.contains(part), "{part:?} not in:\n{message}");
            }
        };
        refused(
            "header,field\nStadt,City\n",
            &["m.csv: line 1", "column,field,value"],
        );
        refused(
            "column,field,value\nStadt,City,Berlin\n",
            &["m.csv: line 2", "not \"Stadt\",\"City\",\"Berlin\""],
        );
        refused(
            "column,field,value\nStadt,City,\nOrt,City,\n",
            &["m.csv: line 3", "both name the field City"],
        );
        refused(
            "column,field,value\nNotes,,\nNotes,Description,\n",
            &["m.csv", "\"Notes\" is both mapped and skipped"],
        );
        refused(
            "column,field,value\n,Lead_Source,\n",
            &["m.csv: line 2", "null marker"],
        );
    }

    #[test]
    fn a_map_file_ending_in_csv_is_read_as_csv() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Map.CSV");
        std::fs::write(&path, "column,field,value\nStadt,City,\n").unwrap();
        assert_eq!(read(&path).unwrap().columns["Stadt"], "City");
    }
}
