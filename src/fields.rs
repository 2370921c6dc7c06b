//! TEMPORARY interface stub; replaced by the fields branch.
use std::collections::HashMap;
#[derive(Debug, Clone, PartialEq, Eq)]
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
    Other(String),
}
impl std::str::FromStr for FieldType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "integer" => FieldType::Integer,
            "text" => FieldType::Text,
            o => FieldType::Other(o.into()),
        })
    }
}
impl FieldType {
    pub fn name(&self) -> &str {
        "x"
    }
}
#[derive(Debug, Clone)]
pub struct FieldMeta {
    pub api_name: String,
    pub data_type: FieldType,
    pub read_only: bool,
    pub mass_update: bool,
    pub length: Option<usize>,
    pub pick_list_values: Vec<String>,
}
#[derive(Debug, Clone, Default)]
pub struct ModuleFields {
    f: HashMap<String, FieldMeta>,
}
#[derive(Debug)]
pub struct FieldsError(pub String);
impl std::fmt::Display for FieldsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for FieldsError {}
impl ModuleFields {
    pub fn from_zoho_json(_json: &[u8]) -> Result<ModuleFields, FieldsError> {
        Ok(ModuleFields::default())
    }
    pub fn get(&self, n: &str) -> Option<&FieldMeta> {
        self.f.get(n)
    }
    pub fn check_columns<'a>(&self, _c: impl IntoIterator<Item = &'a str>) -> Vec<ColumnProblem> {
        vec![]
    }
}
#[derive(Debug)]
pub struct ColumnProblem {
    pub column: String,
}
impl std::fmt::Display for ColumnProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.column)
    }
}
#[derive(Debug, Clone, Default)]
pub struct CoerceOptions {
    pub timezone: Option<chrono::FixedOffset>,
    pub multiselect_separator: char,
}
impl CoerceOptions {
    pub fn parse_timezone(_n: &str) -> Result<chrono::FixedOffset, FieldsError> {
        Err(FieldsError("x".into()))
    }
}
#[derive(Debug)]
pub struct CoerceError {
    pub expected: String,
    pub message: String,
}
impl std::fmt::Display for CoerceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
pub fn coerce(
    field: &FieldMeta,
    raw: &str,
    _o: &CoerceOptions,
) -> Result<serde_json::Value, CoerceError> {
    match field.data_type {
        FieldType::Integer => raw.parse::<i64>().map(Into::into).map_err(|_| CoerceError {
            expected: "integer".into(),
            message: format!("not an integer: {raw:?}"),
        }),
        _ => Ok(raw.into()),
    }
}
