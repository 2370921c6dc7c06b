//! Zoho field metadata (what each column of the CSV may hold) and the coercion of raw CSV
//! cells into the JSON values `mass_update` expects, so a bad value is caught per row before
//! anything is sent instead of failing a whole call of 500 records on the server.
//!
//! Metadata comes from `GET /crm/v2/settings/fields` ([`ModuleFields::from_zoho_json`]) or is
//! built by hand from `--type FIELD=TYPE` overrides ([`FieldMeta::new`]). Coercion
//! ([`coerce()`]) is strict: a value is either unambiguous or an error, never a guess.

mod cell;
mod coerce;

pub use cell::cell_text;

pub use coerce::{
    coerce, CoerceError, CoerceOptions, DateFormat, Timezone, DEFAULT_MULTISELECT_SEPARATOR,
};

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// Errors from reading field metadata, field type names and timezone names.
#[derive(Debug, thiserror::Error)]
pub enum FieldsError {
    #[error("field metadata is not the JSON of GET /crm/v2/settings/fields: {0}")]
    Json(#[from] serde_json::Error),
    #[error("field metadata lists the API name {0:?} twice")]
    DuplicateField(String),
    #[error("unknown field type {given:?}; known types: {known}")]
    UnknownFieldType { given: String, known: String },
    #[error(
        "unknown timezone {0:?}; use an IANA name such as Europe/Berlin, UTC, or a fixed offset such as +05:30"
    )]
    UnknownTimezone(String),
}

/// A Zoho field `data_type`, which decides how a cell is encoded and whether the field can be
/// mass-updated at all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldType {
    Text,
    TextArea,
    Email,
    Phone,
    Website,
    Picklist,
    MultiSelect,
    Integer,
    BigInt,
    Double,
    Currency,
    Percent,
    Decimal,
    Boolean,
    Date,
    DateTime,
    Lookup,
    OwnerLookup,
    AutoNumber,
    /// A value given as JSON, sent as it is (`--type F=json`; what `undo` writes back).
    Json,
    /// A `data_type` massup has no special handling for (formula, fileupload, subform, ...):
    /// its values are passed through as text and the metadata's `mass_update` decides.
    Other(String),
}

/// Zoho `data_type` names, then the friendlier aliases accepted by `--type FIELD=TYPE`.
const TYPE_NAMES: &[(&str, FieldType)] = &[
    ("text", FieldType::Text),
    ("textarea", FieldType::TextArea),
    ("email", FieldType::Email),
    ("phone", FieldType::Phone),
    ("website", FieldType::Website),
    ("picklist", FieldType::Picklist),
    ("multiselectpicklist", FieldType::MultiSelect),
    ("integer", FieldType::Integer),
    ("bigint", FieldType::BigInt),
    ("double", FieldType::Double),
    ("currency", FieldType::Currency),
    ("percent", FieldType::Percent),
    ("decimal", FieldType::Decimal),
    ("boolean", FieldType::Boolean),
    ("date", FieldType::Date),
    ("datetime", FieldType::DateTime),
    ("lookup", FieldType::Lookup),
    ("ownerlookup", FieldType::OwnerLookup),
    ("autonumber", FieldType::AutoNumber),
    ("json", FieldType::Json),
    // Aliases: names people reach for first when typing a column's type by hand.
    ("string", FieldType::Text),
    ("int", FieldType::Integer),
    ("long", FieldType::BigInt),
    ("float", FieldType::Double),
    ("number", FieldType::Double),
    ("bool", FieldType::Boolean),
    ("multiselect", FieldType::MultiSelect),
];

/// `data_type`s of layout and line-item fields, which ZOHO_API.md lists as not
/// mass-updatable; they arrive as [`FieldType::Other`].
const NOT_MASS_UPDATABLE_OTHER_TYPES: &[&str] = &["layout", "lineitem", "subform"];

impl FromStr for FieldType {
    type Err = FieldsError;

    /// Parses a Zoho `data_type` or an alias, ignoring ASCII case. Unknown names are an
    /// error, so a typo in `--type` is not silently treated as text; use
    /// [`FieldType::from_zoho`] for metadata, where unknown types are expected.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        TYPE_NAMES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, field_type)| field_type.clone())
            .ok_or_else(|| FieldsError::UnknownFieldType {
                given: name.to_owned(),
                known: TYPE_NAMES
                    .iter()
                    .map(|(known, _)| *known)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

impl FieldType {
    /// The type of a metadata `data_type`; anything not known becomes [`FieldType::Other`].
    pub fn from_zoho(data_type: &str) -> FieldType {
        data_type
            .parse()
            .unwrap_or_else(|_| FieldType::Other(data_type.to_owned()))
    }

    /// The Zoho `data_type` name (aliases are never returned).
    pub fn name(&self) -> &str {
        match self {
            FieldType::Other(name) => name,
            known => TYPE_NAMES
                .iter()
                .find(|(_, field_type)| field_type == known)
                .map(|(name, _)| *name)
                .expect("every known FieldType has a name in TYPE_NAMES"),
        }
    }

    /// Whether Zoho can mass-update a field of this type at all. Email, lookup, multi-line,
    /// autonumber, layout and line-item fields cannot (the server answers INVALID_DATA);
    /// the owner lookup can, and is one of the most commonly mass-updated fields.
    pub fn mass_updatable_by_type(&self) -> bool {
        match self {
            FieldType::Email | FieldType::Lookup | FieldType::TextArea | FieldType::AutoNumber => {
                false
            }
            FieldType::Other(name) => !NOT_MASS_UPDATABLE_OTHER_TYPES
                .iter()
                .any(|bad| bad.eq_ignore_ascii_case(name)),
            _ => true,
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What massup needs to know about one field of a module.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMeta {
    /// The API name, case-sensitive, as used in CSV headers and request bodies.
    pub api_name: String,
    /// The name people see in Zoho and in its exports (`field_label`), if known: a
    /// spreadsheet's header may use it instead of the API name.
    pub label: Option<String>,
    pub data_type: FieldType,
    pub read_only: bool,
    /// The metadata's `mass_update`, or [`FieldType::mass_updatable_by_type`] when absent.
    pub mass_update: bool,
    /// Maximum length in characters for text-like fields.
    pub length: Option<usize>,
    /// Maximum digits after the decimal point for number fields (Zoho's `decimal_place`);
    /// more are rejected rather than left for the server to round.
    pub decimal_places: Option<u32>,
    /// Allowed `actual_value`s of a (multi-select) picklist; empty means any value.
    pub pick_list_values: Vec<String>,
}

impl FieldMeta {
    /// A field known only by name and type (from `--type FIELD=TYPE`): writable,
    /// mass-updatable as far as its type allows, no length or picklist constraints.
    pub fn new(api_name: impl Into<String>, data_type: FieldType) -> FieldMeta {
        FieldMeta {
            api_name: api_name.into(),
            label: None,
            mass_update: data_type.mass_updatable_by_type(),
            data_type,
            read_only: false,
            length: None,
            decimal_places: None,
            pick_list_values: Vec::new(),
        }
    }
}

/// The fields of one module, looked up by case-sensitive API name, in metadata order.
#[derive(Debug, Clone, Default)]
pub struct ModuleFields {
    fields: Vec<FieldMeta>,
    by_name: HashMap<String, usize>,
    /// API names of the fields a record cannot be created without (the metadata's
    /// `system_mandatory` or `mandatory`), in metadata order: what `--create-missing` checks.
    mandatory: Vec<String>,
}

/// The parts of `GET /crm/v2/settings/fields` massup reads; other keys are ignored.
#[derive(Deserialize)]
struct ZohoFieldsResponse {
    fields: Vec<ZohoField>,
}

#[derive(Deserialize)]
struct ZohoField {
    api_name: String,
    #[serde(default)]
    field_label: Option<String>,
    data_type: String,
    #[serde(default)]
    read_only: Option<bool>,
    #[serde(default)]
    mass_update: Option<bool>,
    #[serde(default)]
    length: Option<u64>,
    #[serde(default)]
    decimal_place: Option<u32>,
    #[serde(default)]
    pick_list_values: Option<Vec<ZohoPicklistValue>>,
    /// Zoho's `system_mandatory` (a field every record of the module must have) and the
    /// layout's `mandatory`: either makes a value required when a record is created.
    #[serde(default)]
    system_mandatory: Option<bool>,
    #[serde(default)]
    mandatory: Option<bool>,
}

#[derive(Deserialize)]
struct ZohoPicklistValue {
    #[serde(default)]
    display_value: Option<String>,
    #[serde(default)]
    actual_value: Option<String>,
}

impl From<ZohoField> for FieldMeta {
    fn from(field: ZohoField) -> FieldMeta {
        let data_type = FieldType::from_zoho(&field.data_type);
        FieldMeta {
            mass_update: field
                .mass_update
                .unwrap_or_else(|| data_type.mass_updatable_by_type()),
            data_type,
            api_name: field.api_name,
            label: field.field_label.filter(|l| !l.trim().is_empty()),
            read_only: field.read_only.unwrap_or(false),
            // Zoho reports length 0 on fields it does not limit; 0 as a real limit would
            // reject every non-empty value, so it means "no limit" here.
            length: field
                .length
                .filter(|&length| length > 0)
                .map(|length| usize::try_from(length).unwrap_or(usize::MAX)),
            decimal_places: field.decimal_place,
            // The API takes actual_value; display_value only stands in where an older
            // response leaves actual_value out.
            pick_list_values: field
                .pick_list_values
                .unwrap_or_default()
                .into_iter()
                .filter_map(|value| value.actual_value.or(value.display_value))
                .collect(),
        }
    }
}

impl ModuleFields {
    pub fn new() -> ModuleFields {
        ModuleFields::default()
    }

    /// Reads the body of `GET /crm/v2/settings/fields?module=...`. A field without
    /// `mass_update` gets the rule of its type; a name listed twice is an error, because
    /// which of the two definitions is right cannot be known.
    pub fn from_zoho_json(json: &[u8]) -> Result<ModuleFields, FieldsError> {
        let response: ZohoFieldsResponse = serde_json::from_slice(json)?;
        let mut module = ModuleFields::new();
        for field in response.fields {
            let required = field.system_mandatory == Some(true) || field.mandatory == Some(true);
            if required && !field.read_only.unwrap_or(false) {
                module.mandatory.push(field.api_name.clone());
            }
            let meta = FieldMeta::from(field);
            if module.by_name.contains_key(&meta.api_name) {
                return Err(FieldsError::DuplicateField(meta.api_name));
            }
            module.insert(meta);
        }
        Ok(module)
    }

    /// Adds a field, or replaces the one with the same API name (a `--type` override) and
    /// returns it.
    pub fn insert(&mut self, meta: FieldMeta) -> Option<FieldMeta> {
        match self.by_name.get(&meta.api_name) {
            Some(&index) => Some(std::mem::replace(&mut self.fields[index], meta)),
            None => {
                self.by_name
                    .insert(meta.api_name.clone(), self.fields.len());
                self.fields.push(meta);
                None
            }
        }
    }

    /// The fields a record of the module cannot be created without (see the field).
    pub fn mandatory(&self) -> &[String] {
        &self.mandatory
    }

    pub fn get(&self, api_name: &str) -> Option<&FieldMeta> {
        self.by_name.get(api_name).map(|&index| &self.fields[index])
    }

    pub fn iter(&self) -> impl Iterator<Item = &FieldMeta> {
        self.fields.iter()
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Checks CSV columns before anything is stored: returns every column that is unknown,
    /// read-only or not mass-updatable, each with its reason, in column order. The record id
    /// column is the caller's to leave out.
    pub fn check_columns<'a>(
        &self,
        columns: impl IntoIterator<Item = &'a str>,
    ) -> Vec<ColumnProblem> {
        columns
            .into_iter()
            .filter_map(|column| {
                let (reason, suggestion) = match self.get(column) {
                    None => (
                        ColumnProblemKind::Unknown,
                        self.same_name_ignoring_case(column),
                    ),
                    Some(meta) if meta.read_only => (ColumnProblemKind::ReadOnly, None),
                    Some(meta) if !meta.mass_update || !meta.data_type.mass_updatable_by_type() => {
                        (
                            ColumnProblemKind::NotMassUpdatable(meta.data_type.clone()),
                            None,
                        )
                    }
                    Some(_) => return None,
                };
                Some(ColumnProblem {
                    column: column.to_owned(),
                    reason,
                    suggestion,
                })
            })
            .collect()
    }

    /// API names are case-sensitive, and a header typed with the wrong case is the most
    /// likely unknown column: point at the real name.
    fn same_name_ignoring_case(&self, column: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|meta| meta.api_name.eq_ignore_ascii_case(column))
            .map(|meta| meta.api_name.clone())
    }
}

/// What a header cell names, by [`ModuleFields::match_column`].
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnMatch<'a> {
    /// The API name, exactly: what massup always accepted.
    ApiName(&'a FieldMeta),
    /// A field's label or its API name, ignoring case, spaces and underscores.
    Loose(&'a FieldMeta),
    /// Several fields answer to the name; their API names.
    Ambiguous(Vec<String>),
    /// No field; the nearest API name or label, if one is close.
    Unknown(Option<String>),
}

impl ModuleFields {
    /// Which field a header cell names. The exact API name always wins (API names are
    /// unique, and a file of API names must keep planning as it did); otherwise the API
    /// names and labels are compared by [`crate::input::loose_name`], and more than one
    /// field answering is an error, never a pick.
    pub fn match_column(&self, header: &str) -> ColumnMatch<'_> {
        if let Some(meta) = self.get(header) {
            return ColumnMatch::ApiName(meta);
        }
        let wanted = crate::input::loose_name(header);
        let matches: Vec<&FieldMeta> = self
            .fields
            .iter()
            .filter(|meta| {
                crate::input::loose_name(&meta.api_name) == wanted
                    || meta
                        .label
                        .as_deref()
                        .is_some_and(|label| crate::input::loose_name(label) == wanted)
            })
            .collect();
        match matches[..] {
            [one] => ColumnMatch::Loose(one),
            [] => ColumnMatch::Unknown(self.nearest(&wanted)),
            _ => ColumnMatch::Ambiguous(matches.iter().map(|m| m.api_name.clone()).collect()),
        }
    }

    /// The API name or label closest to `wanted`, if close enough (a field's API name
    /// before its label).
    fn nearest(&self, wanted: &str) -> Option<String> {
        let names = self
            .fields
            .iter()
            .flat_map(|meta| std::iter::once(meta.api_name.as_str()).chain(meta.label.as_deref()));
        crate::suggest::nearest(wanted, names).map(str::to_string)
    }

    /// How a field is named in a message: its label and API name when they differ.
    pub fn describe(meta: &FieldMeta) -> String {
        match &meta.label {
            Some(label) if label != &meta.api_name => {
                format!("{} (label {label:?})", meta.api_name)
            }
            _ => meta.api_name.clone(),
        }
    }
}

/// A CSV column that cannot be mass-updated, found before anything is stored or sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnProblem {
    pub column: String,
    pub reason: ColumnProblemKind,
    /// For an unknown column, the field whose API name differs only in case.
    pub suggestion: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnProblemKind {
    Unknown,
    /// Several fields answer to the column's name (API names, with their labels).
    Ambiguous(Vec<String>),
    /// Two columns name the same field (the other column).
    SameField {
        other: String,
        api_name: String,
    },
    ReadOnly,
    NotMassUpdatable(FieldType),
    /// A `--map` entry names a field the module does not have (no candidates), or several
    /// (their API names, with labels).
    MapTarget {
        /// The entry as messages name it (file, line, table, key).
        entry: String,
        field: String,
        candidates: Vec<String>,
    },
}

impl fmt::Display for ColumnProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let column = &self.column;
        match &self.reason {
            ColumnProblemKind::Unknown => {
                write!(
                    f,
                    "column {column:?} is not a field of this module (neither an API name nor a label"
                )?;
                match &self.suggestion {
                    Some(name) => write!(f, "; did you mean {name:?}?)"),
                    None => f.write_str(")"),
                }
            }
            ColumnProblemKind::Ambiguous(candidates) => write!(
                f,
                "column {column:?} could name any of the fields {}: name the column by its API name",
                candidates.join(", ")
            ),
            ColumnProblemKind::SameField { other, api_name } => write!(
                f,
                "columns {other:?} and {column:?} both name the field {api_name}: keep one"
            ),
            ColumnProblemKind::MapTarget {
                entry,
                field,
                candidates,
            } if candidates.is_empty() => {
                write!(
                    f,
                    "{entry}: {field:?} is not a field of this module (neither an API name nor a label"
                )?;
                match &self.suggestion {
                    Some(name) => write!(f, "; did you mean {name:?}?)"),
                    None => f.write_str(")"),
                }
            }
            ColumnProblemKind::MapTarget {
                entry,
                field,
                candidates,
            } => write!(
                f,
                "{entry}: {field:?} could name any of the fields {}: write the API name",
                candidates.join(", ")
            ),
            ColumnProblemKind::ReadOnly => write!(f, "column {column:?} is a read-only field"),
            ColumnProblemKind::NotMassUpdatable(field_type)
                if !field_type.mass_updatable_by_type() =>
            {
                write!(
                    f,
                    "column {column:?} cannot be mass-updated: Zoho does not mass-update {field_type} fields; without --api mass (--api auto, the default, or --api update) it goes by Update Records"
                )
            }
            ColumnProblemKind::NotMassUpdatable(_) => write!(
                f,
                "column {column:?} cannot be mass-updated: Zoho's field metadata says mass_update is false; without --api mass (--api auto, the default, or --api update) it goes by Update Records"
            ),
        }
    }
}

/// Whether a value read from Zoho is the value written: numbers as numbers, text as text,
/// lookups by id, multi-selects as sets, and empty ("", [], null) as empty.
pub fn same_value(read: &serde_json::Value, written: &serde_json::Value) -> bool {
    use serde_json::Value;
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if empty(read) || empty(written) {
        return empty(read) && empty(written);
    }
    match (read, written) {
        (Value::Object(a), Value::Object(b)) => match (a.get("id"), b.get("id")) {
            (Some(x), Some(y)) => same_value(x, y),
            _ => a == b,
        },
        (Value::Object(a), other) | (other, Value::Object(a)) => {
            a.get("id").is_some_and(|id| same_value(id, other))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            s.trim().parse::<f64>().ok() == n.as_f64()
        }
        (Value::Array(a), Value::Array(b)) => {
            let set = |items: &Vec<Value>| -> std::collections::BTreeSet<String> {
                items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect()
            };
            set(a) == set(b)
        }
        _ => read == written,
    }
}

impl serde::Serialize for FieldType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for FieldType {
    /// A type by its name, as `--type` takes it and a run stores it.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<FieldType, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod same_value_tests {
    use super::same_value;
    use serde_json::json;

    #[test]
    fn values_read_compare_with_values_written_as_zoho_stores_them() {
        assert!(same_value(&json!("Contacted"), &json!("Contacted")));
        assert!(!same_value(&json!("Contacted"), &json!("contacted")));
        assert!(same_value(&json!(1250.5), &json!(1250.50)));
        assert!(same_value(&json!("123456789012"), &json!(123456789012_i64)));
        assert!(same_value(&json!(null), &json!("")));
        assert!(!same_value(&json!(null), &json!("x")));
        assert!(same_value(
            &json!({"name": "Patricia Boyle", "id": "42"}),
            &json!({"id": "42"})
        ));
        assert!(same_value(&json!(["a", "b"]), &json!(["b", "a"])));
        assert!(!same_value(&json!(["a"]), &json!(["a", "b"])));
    }
}
