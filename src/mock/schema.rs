//! Field metadata of the mock's modules, read from the shipped `samples/fields/*.json` so the
//! samples a user sees and the rules the mock enforces cannot drift apart. The document served
//! is the sample file with the rest of Zoho's keys filled in (`metadata::enrich_fields`).

use axum::body::Bytes;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

use super::metadata::{self, CustomView};

/// The modules the mock knows, with the metadata document it serves for each.
const MODULE_FILES: [(&str, &str); 4] = [
    ("Leads", include_str!("../../samples/fields/Leads.json")),
    (
        "Contacts",
        include_str!("../../samples/fields/Contacts.json"),
    ),
    (
        "Accounts",
        include_str!("../../samples/fields/Accounts.json"),
    ),
    ("Deals", include_str!("../../samples/fields/Deals.json")),
];

/// One field as the mock needs it to judge a mass update.
#[derive(Debug, Clone, Deserialize)]
pub struct FieldSpec {
    pub api_name: String,
    pub data_type: String,
    pub json_type: String,
    pub read_only: bool,
    pub mass_update: bool,
    pub length: usize,
}

impl FieldSpec {
    /// Whether a mass update may write this field at all.
    pub fn updatable(&self) -> bool {
        self.mass_update && !self.read_only
    }

    pub fn is_multiselect(&self) -> bool {
        self.data_type == "multiselectpicklist"
    }

    /// Checks one value against the field's type the way Zoho does, returning the reason it is
    /// refused. `null` is always accepted: it clears the field.
    pub fn check(&self, value: &Value) -> Result<(), ValueError> {
        let type_error = Err(ValueError::Type);
        match value {
            Value::Null => Ok(()),
            _ => match self.data_type.as_str() {
                "integer" => match value.as_i64() {
                    // Zoho's integer fields hold at most nine digits.
                    Some(n) if n.unsigned_abs() <= 999_999_999 => Ok(()),
                    _ => type_error,
                },
                "bigint" => match value.as_str() {
                    Some(s) if is_bigint(s) => Ok(()),
                    _ => type_error,
                },
                "double" | "currency" | "percent" | "decimal" => {
                    if value.is_number() {
                        Ok(())
                    } else {
                        type_error
                    }
                }
                "boolean" => {
                    if value.is_boolean() {
                        Ok(())
                    } else {
                        type_error
                    }
                }
                "date" => match value.as_str() {
                    Some(s) if chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() => Ok(()),
                    _ => type_error,
                },
                "datetime" => match value.as_str() {
                    // An explicit offset is required: Zoho refuses a zone-less time.
                    Some(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => Ok(()),
                    _ => type_error,
                },
                "multiselectpicklist" => match value.as_array() {
                    Some(items) if items.iter().all(Value::is_string) => Ok(()),
                    _ => type_error,
                },
                // An address with one '@', something on either side and no spaces: the form
                // Zoho's email fields check (the length is checked as for any text).
                "email" => match value.as_str() {
                    Some(s) if s.chars().count() > self.length => Err(ValueError::TooLong),
                    Some(s) if is_email(s) => Ok(()),
                    _ => type_error,
                },
                // Zoho takes the id as a string or a number (its Java SDK declares lookup ids
                // `Long`, and the Python SDK sends them as JSON numbers).
                "lookup" | "ownerlookup" => match lookup_id(value) {
                    Some(_) => Ok(()),
                    None => type_error,
                },
                // Text-like types (and any type a sample file adds later) go by json_type.
                _ => match (self.json_type.as_str(), value) {
                    ("integer", Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(()),
                    ("double", Value::Number(_)) => Ok(()),
                    ("boolean", Value::Bool(_)) => Ok(()),
                    ("jsonarray", Value::Array(_)) => Ok(()),
                    ("jsonobject", Value::Object(_)) => Ok(()),
                    ("string", Value::String(s)) if s.chars().count() > self.length => {
                        Err(ValueError::TooLong)
                    }
                    ("string", Value::String(_)) => Ok(()),
                    _ => type_error,
                },
            },
        }
    }
}

/// Why a value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueError {
    /// Wrong JSON type or format: answered with `expected_data_type`.
    Type,
    /// A string longer than the field allows: answered with `maximum_length`.
    TooLong,
    /// A well-formed lookup to a record or user that does not exist.
    UnknownLookup,
}

/// The id of a lookup value `{"id": ...}`, as digits, whether it came as a string or a number.
pub fn lookup_id(value: &Value) -> Option<String> {
    match value.as_object()?.get("id")? {
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(s.clone())
        }
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

fn is_bigint(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    // Zoho's bigint holds at most eighteen digits.
    !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Deserialize)]
struct FieldsDocument {
    fields: Vec<FieldSpec>,
}

/// One module: its field rules, the exact document `GET /settings/fields` serves, and its
/// custom views.
#[derive(Debug)]
pub struct ModuleSpec {
    pub fields: HashMap<String, FieldSpec>,
    /// Field API names in the sample file's order (what a read without `fields` answers).
    pub field_order: Vec<String>,
    pub document: Bytes,
    pub views: Vec<CustomView>,
}

impl ModuleSpec {
    pub fn view(&self, id: &str) -> Option<&CustomView> {
        self.views.iter().find(|v| v.id == id)
    }
}

/// Parses the embedded field files once at server start.
pub fn load_modules() -> std::io::Result<HashMap<String, ModuleSpec>> {
    let invalid = |name: &str, e: serde_json::Error| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("samples/fields/{name}.json: {e}"),
        )
    };
    let mut modules = HashMap::new();
    for (name, document) in MODULE_FILES {
        let info = metadata::module_info(name).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("samples/fields/{name}.json: no module {name} in metadata::MODULES"),
            )
        })?;
        let parsed: FieldsDocument =
            serde_json::from_str(document).map_err(|e| invalid(name, e))?;
        let field_order = parsed.fields.iter().map(|f| f.api_name.clone()).collect();
        let fields = parsed
            .fields
            .into_iter()
            .map(|f| (f.api_name.clone(), f))
            .collect();
        let mut full: Value = serde_json::from_str(document).map_err(|e| invalid(name, e))?;
        metadata::enrich_fields(info, &mut full);
        let document = Bytes::from(serde_json::to_vec(&full).map_err(|e| invalid(name, e))?);
        modules.insert(
            name.to_string(),
            ModuleSpec {
                fields,
                field_order,
                document,
                views: metadata::custom_views(info),
            },
        );
    }
    Ok(modules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(data_type: &str) -> FieldSpec {
        FieldSpec {
            api_name: "F".into(),
            data_type: data_type.into(),
            json_type: "string".into(),
            read_only: false,
            mass_update: true,
            length: 5,
        }
    }

    #[test]
    fn every_sample_file_parses() {
        let modules = load_modules().expect("embedded samples parse");
        assert_eq!(modules.len(), 4);
        assert!(!modules["Leads"].fields["Email"].updatable());
        assert!(modules["Leads"].fields["No_of_Employees"].updatable());
    }

    #[test]
    fn values_are_checked_by_type() {
        assert!(field("integer").check(&json!(12)).is_ok());
        assert!(field("integer").check(&json!("12")).is_err());
        assert!(field("integer").check(&json!(1.5)).is_err());
        assert!(field("integer").check(&Value::Null).is_ok());
        assert!(field("bigint").check(&json!("123456789012345678")).is_ok());
        assert!(field("bigint").check(&json!(12)).is_err());
        assert!(field("multiselectpicklist").check(&json!(["a"])).is_ok());
        assert!(field("multiselectpicklist").check(&json!("a")).is_err());
        assert!(field("lookup").check(&json!({"id": "1"})).is_ok());
        assert!(field("ownerlookup")
            .check(&json!({"id": 738964000000291009u64}))
            .is_ok());
        assert!(field("ownerlookup").check(&json!({"id": "12a"})).is_err());
        assert!(field("ownerlookup").check(&json!({"id": 1.5})).is_err());
        assert!(field("lookup").check(&json!({"name": "x"})).is_err());
        assert!(field("date").check(&json!("2024-02-30")).is_err());
        assert!(field("datetime")
            .check(&json!("2024-02-03T10:00:00"))
            .is_err());
        assert!(field("datetime")
            .check(&json!("2024-02-03T10:00:00+05:30"))
            .is_ok());
        assert_eq!(
            field("text").check(&json!("toolong")),
            Err(ValueError::TooLong)
        );
        let email = FieldSpec {
            length: 100,
            ..field("email")
        };
        assert!(email.check(&json!("a.b@example.com")).is_ok());
        for bad in [
            "a.example.com",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@@x.com",
        ] {
            assert_eq!(email.check(&json!(bad)), Err(ValueError::Type), "{bad}");
        }
        assert_eq!(email.check(&json!(12)), Err(ValueError::Type));
    }
}
