//! The other direction of [`super::coerce()`]: a value as Zoho answers it, written as the CSV
//! cell that `coerce` reads back to the same value, so that `export` -> edit -> `run` sends
//! only what was edited. The rule for each type is the coercer's: booleans `true`/`false`,
//! numbers as JSON writes them (a decimal point, no thousands separator), multi-select values
//! joined by [`DEFAULT_MULTISELECT_SEPARATOR`], a lookup or owner by its record id, dates and
//! datetimes as Zoho sends them (ISO 8601 with the offset: no zone is guessed). An empty value
//! (null, "", []) is an empty cell, which a run leaves unchanged.
use std::borrow::Cow;

use serde_json::Value;

use super::DEFAULT_MULTISELECT_SEPARATOR;

/// The cell for `value`.
pub fn cell_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Null => Cow::Borrowed(""),
        Value::String(text) => Cow::Borrowed(text),
        Value::Bool(true) => Cow::Borrowed("true"),
        Value::Bool(false) => Cow::Borrowed("false"),
        Value::Number(number) => Cow::Owned(number.to_string()),
        Value::Array(items) => {
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(DEFAULT_MULTISELECT_SEPARATOR);
                }
                out.push_str(&cell_text(item));
            }
            Cow::Owned(out)
        }
        // A lookup or owner: `{"id": "...", "name": "..."}`; the id is what a run sends back.
        Value::Object(object) => match object.get("id") {
            Some(id @ (Value::String(_) | Value::Number(_))) => cell_text(id).into_owned().into(),
            // Anything else (a subform, a field massup does not know) as its JSON, what
            // `--type F=json` reads.
            _ => Cow::Owned(value.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fields::{coerce, same_value, CoerceOptions, FieldMeta, FieldType};

    /// Every type's value written as a cell and read back by the coercer is the same value.
    #[test]
    fn cells_read_back_to_the_value_they_were_written_from() {
        let cases = [
            (FieldType::Text, json!("Lyon, \"vieux\" port")),
            (FieldType::TextArea, json!("two\nlines")),
            (FieldType::Email, json!("a@x.com")),
            (FieldType::Picklist, json!("Contacted")),
            (FieldType::MultiSelect, json!(["Red", "Green, light"])),
            (FieldType::Integer, json!(-42)),
            (FieldType::BigInt, json!("123456789012345678")),
            (FieldType::Double, json!(12.5)),
            (FieldType::Currency, json!(1000.0)),
            (FieldType::Percent, json!(0.25)),
            (FieldType::Boolean, json!(true)),
            (FieldType::Boolean, json!(false)),
            (FieldType::Date, json!("2024-02-29")),
            (FieldType::DateTime, json!("2021-05-12T07:26:48+05:30")),
            (
                FieldType::Lookup,
                json!({"id": "738964000002131001", "name": "Acme"}),
            ),
            (
                FieldType::OwnerLookup,
                json!({"id": "738964000000000001", "name": "Ann", "email": "a@x.com"}),
            ),
        ];
        for (data_type, value) in cases {
            let meta = FieldMeta::new("F", data_type.clone());
            let cell = cell_text(&value);
            let back = coerce(&meta, &cell, &CoerceOptions::default())
                .unwrap_or_else(|e| panic!("{value} as {data_type}: cell {cell:?}: {e}"));
            assert!(
                same_value(&value, &back),
                "{data_type}: {value} -> {cell:?} -> {back}"
            );
        }
    }

    #[test]
    fn empty_values_are_empty_cells() {
        for value in [json!(null), json!(""), json!([])] {
            assert_eq!(cell_text(&value), "");
        }
        assert_eq!(cell_text(&json!({"a": 1})), r#"{"a":1}"#);
    }
}
