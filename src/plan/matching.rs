//! `--match-by FIELD`: a sheet keyed by Email (or an account number, an external id) instead
//! of Zoho record ids. Planning reads the key column once to collect the distinct keys, the
//! keys are looked up with as few COQL queries as Zoho allows (`dispatch::lookup` sends
//! them), and each row's key then resolves to exactly one record id, or the row is invalid
//! with the reason: no record has that key, or several do (and then none of them is
//! touched). This module is the pure part: how a key is compared, the query text, and the
//! table of keys to ids.
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::fields::{FieldMeta, FieldType};
use crate::input::{CsvInput, CsvOptions, InputError};

/// A key longer than this is not a key (Zoho's longest single-line fields hold 255).
const MAX_KEY_CHARS: usize = 1_000;

/// How Zoho compares the field's values in a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    /// Text compares case-insensitively (`where Email = 'a@x.com'` finds `A@X.COM`).
    Text,
    /// Whole numbers compare as numbers (`007` is `7`).
    Number,
}

/// The field rows are matched by, and how its keys compare.
#[derive(Debug, Clone)]
pub struct MatchField {
    module: String,
    api_name: String,
    compare: Compare,
    /// The field's type: how a key is written into a record `--create-missing` creates.
    data_type: FieldType,
}

impl MatchField {
    /// The field `meta` of `module` as a key, or why it cannot be one.
    pub fn new(module: &str, meta: &FieldMeta) -> Result<MatchField, String> {
        let compare = match &meta.data_type {
            FieldType::Text
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Website
            | FieldType::AutoNumber
            | FieldType::Picklist => Compare::Text,
            FieldType::Integer | FieldType::BigInt => Compare::Number,
            FieldType::TextArea => {
                return Err(format!(
                    "--match-by {}: a multi-line field cannot be searched (COQL refuses it in a where clause); match by a field that identifies a record, such as Email or an external id",
                    meta.api_name
                ))
            }
            other => {
                return Err(format!(
                    "--match-by {}: a {other} field does not identify a record; match by a text, email, phone or whole-number field such as Email or an external id",
                    meta.api_name
                ))
            }
        };
        Ok(MatchField {
            module: module.to_string(),
            api_name: meta.api_name.clone(),
            compare,
            data_type: meta.data_type.clone(),
        })
    }

    /// The key cell as the field's value in a record `--create-missing` creates: the text
    /// as the sheet writes it (trimmed; Zoho keeps an address's case), a whole number as a
    /// JSON number for an integer field and as a string of digits for a bigint (Zoho's
    /// encoding of each type). None when the cell cannot be a key.
    pub fn json_value(&self, raw: &str) -> Option<serde_json::Value> {
        let normalized = self.normalize(raw).ok()?;
        Some(match (self.compare, &self.data_type) {
            (Compare::Number, FieldType::Integer) => {
                serde_json::Value::Number(normalized.parse::<i64>().ok()?.into())
            }
            (Compare::Number, _) => serde_json::Value::String(normalized),
            (Compare::Text, _) => serde_json::Value::String(raw.trim().to_string()),
        })
    }

    pub fn api_name(&self) -> &str {
        &self.api_name
    }

    pub fn module(&self) -> &str {
        &self.module
    }

    /// The key as Zoho compares it, or why the cell cannot be a key.
    pub fn normalize(&self, raw: &str) -> Result<String, String> {
        let key = raw.trim();
        if key.is_empty() {
            return Err(format!(
                "the {} cell is empty: there is no key to find a {} record by",
                self.api_name, self.module
            ));
        }
        if key.chars().count() > MAX_KEY_CHARS {
            return Err(format!(
                "the {} cell holds more than {MAX_KEY_CHARS} characters: it is not a key",
                self.api_name
            ));
        }
        match self.compare {
            Compare::Text => {
                if key.chars().any(|c| c.is_control() || c == '\\') {
                    return Err(format!(
                        "{} = {key:?} holds a control character or a backslash, which a lookup cannot carry",
                        self.api_name
                    ));
                }
                Ok(key.to_lowercase())
            }
            Compare::Number => key
                .parse::<i64>()
                .map(|n| n.to_string())
                .map_err(|_| format!("{} = {key:?} is not a whole number", self.api_name)),
        }
    }

    /// The query for one batch of at most
    /// [`MAX_IN_VALUES`](crate::api::limits::MAX_IN_VALUES) normalised keys: ids and the
    /// field, `limit` rows from `offset`.
    pub fn query(&self, keys: &[String], limit: usize, offset: usize) -> String {
        let mut query = format!(
            "select id, {} from {} where {} in (",
            self.api_name, self.module, self.api_name
        );
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                query.push_str(", ");
            }
            match self.compare {
                Compare::Number => query.push_str(key),
                Compare::Text => {
                    // COQL strings are single-quoted; a quote inside is escaped with a
                    // backslash (keys holding a backslash are refused in `normalize`).
                    query.push('\'');
                    query.push_str(&key.replace('\'', "\\'"));
                    query.push('\'');
                }
            }
        }
        let _ = write!(query, ") limit {limit}");
        if offset > 0 {
            let _ = write!(query, " offset {offset}");
        }
        query
    }
}

/// Why the keys could not all be looked up; nothing was planned.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("stopped before every key was looked up; nothing was planned")]
    Stopped,
    #[error("looking up {field} keys: Zoho says the org's daily API credits are spent ({message}) after {calls} lookup call(s); nothing was planned. Plan again when Zoho's rolling 24-hour window frees credits")]
    CreditsExhausted {
        field: String,
        message: String,
        calls: u64,
    },
    /// No access token could be had (the accounts server unreachable): resumable.
    #[error("looking up {field} keys: no access token ({message}); nothing was planned. Plan again when the accounts server answers")]
    TokenUnavailable { field: String, message: String },
    /// The lookups would cross a budget (--max-credits, --max-calls).
    #[error("looking up {field} keys: {message}; nothing was planned")]
    Budget { field: String, message: String },
    #[error("looking up {field} keys: {code}: {message}; nothing was planned")]
    Failed {
        field: String,
        code: String,
        message: String,
    },
}

/// What a lookup found, for the plan summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LookupTotals {
    /// The field keys were matched by.
    pub field: String,
    /// Distinct keys looked up.
    pub keys: u64,
    /// Keys that found exactly one record.
    pub matched: u64,
    /// Keys that found no record.
    pub unmatched: u64,
    /// Keys that found several records (none of which is touched).
    pub ambiguous: u64,
    /// COQL queries sent.
    pub calls: u64,
    /// Their API credits.
    pub credits: u64,
    /// Keys whose ids came from a lookup of the same module and field in this database
    /// within the last hour, instead of a new query (`--fresh-lookups` asks again).
    pub reused: u64,
}

/// What a key cell names (see [`Matches::resolve_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMatch {
    /// Exactly one record holds the key.
    Found(i64),
    /// No record holds the key (normalised as Zoho compares it).
    Missing(String),
}

/// Every distinct key of a sheet with the record ids Zoho found for it.
#[derive(Debug, Clone)]
pub struct Matches {
    field: MatchField,
    ids: HashMap<Box<str>, Vec<i64>>,
    /// Lookup calls spent.
    pub calls: u64,
    /// Their credits (a COQL query is priced by its LIMIT).
    pub credits: u64,
    /// Keys resolved from an earlier lookup (see [`Matches::reuse`]): not asked again.
    reused: std::collections::HashSet<Box<str>>,
}

impl Matches {
    /// A table of `keys` (normalised), none found yet.
    pub fn new(field: MatchField, keys: impl IntoIterator<Item = String>) -> Matches {
        Matches {
            field,
            ids: keys
                .into_iter()
                .map(|k| (k.into_boxed_str(), Vec::new()))
                .collect(),
            calls: 0,
            credits: 0,
            reused: Default::default(),
        }
    }

    /// Takes the ids an earlier lookup found for keys of this table (the same module and
    /// field, and so the same normalisation); returns how many keys it resolved.
    pub fn reuse(&mut self, found: impl IntoIterator<Item = (String, Vec<i64>)>) -> u64 {
        for (key, ids) in found {
            if let Some(slot) = self.ids.get_mut(key.as_str()) {
                *slot = ids;
                self.reused.insert(key.into_boxed_str());
            }
        }
        self.reused.len() as u64
    }

    /// The keys still to look up (every key but the reused ones).
    pub fn unresolved(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .ids
            .keys()
            .filter(|k| !self.reused.contains(*k))
            .map(|k| k.to_string())
            .collect();
        keys.sort_unstable();
        keys
    }

    pub fn field(&self) -> &MatchField {
        &self.field
    }

    /// Takes one row of a query's answer (`{"id": ..., FIELD: ...}`). A row whose value
    /// is not one of the keys asked for (Zoho compared more loosely than massup) is left
    /// out: no row's key resolves to it.
    pub fn absorb(
        &mut self,
        row: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), String> {
        let id = crate::api::response::row_record_id(row).ok_or_else(|| {
            format!(
                "a lookup answer row has no record id: {}",
                serde_json::Value::Object(row.clone())
            )
        })?;
        let value = match row.get(&self.field.api_name) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => return Ok(()),
        };
        let Ok(key) = self.field.normalize(&value) else {
            return Ok(());
        };
        if let Some(ids) = self.ids.get_mut(key.as_str()) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(())
    }

    /// Takes only the keys an earlier lookup found records for. With `--create-missing` a
    /// key that found none may have a record now (created by the run that looked it up):
    /// it is asked again, so a sheet sent twice never creates twice.
    pub fn reuse_found(&mut self, found: impl IntoIterator<Item = (String, Vec<i64>)>) -> u64 {
        self.reuse(found.into_iter().filter(|(_, ids)| !ids.is_empty()))
    }

    /// What a row's key cell names: one record, or (with `--create-missing`) no record yet,
    /// or why the row cannot be sent.
    pub fn resolve_key(&self, raw: &[u8]) -> Result<KeyMatch, String> {
        match self.resolve(raw) {
            Ok(id) => Ok(KeyMatch::Found(id)),
            Err(message) => {
                let text = std::str::from_utf8(raw).map_err(|_| message.clone())?;
                let key = self.field.normalize(text).map_err(|_| message.clone())?;
                match self.ids.get(key.as_str()).map(Vec::len) {
                    Some(0) | None => Ok(KeyMatch::Missing(key)),
                    _ => Err(message),
                }
            }
        }
    }

    /// The one record id a row's key cell names, or why the row cannot be sent.
    pub fn resolve(&self, raw: &[u8]) -> Result<i64, String> {
        let field = &self.field;
        let text = std::str::from_utf8(raw).map_err(|_| {
            format!(
                "the {} cell is not valid UTF-8; save the file as UTF-8",
                field.api_name
            )
        })?;
        let key = field.normalize(text)?;
        let shown = text.trim();
        match self.ids.get(key.as_str()).map(Vec::as_slice) {
            Some([id]) => Ok(*id),
            Some([]) | None => Err(format!(
                "no {} record has {} = {shown:?}",
                field.module, field.api_name
            )),
            Some(ids) => {
                let mut sorted = ids.to_vec();
                sorted.sort_unstable();
                let listed: Vec<String> = sorted.iter().take(10).map(i64::to_string).collect();
                let more = if sorted.len() > 10 { ", ..." } else { "" };
                Err(format!(
                    "{} = {shown:?} matches {} {} records (ids {}{more}): none of them is updated; make the key unique in Zoho or key this row by record id",
                    field.api_name,
                    sorted.len(),
                    field.module,
                    listed.join(", ")
                ))
            }
        }
    }

    /// Every key with its ids, sorted by key, for the store.
    pub fn entries(&self) -> Vec<(&str, &[i64])> {
        let mut entries: Vec<(&str, &[i64])> = self
            .ids
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_slice()))
            .collect();
        entries.sort_unstable_by_key(|(k, _)| *k);
        entries
    }

    pub fn totals(&self) -> LookupTotals {
        let mut totals = LookupTotals {
            field: self.field.api_name.clone(),
            keys: self.ids.len() as u64,
            calls: self.calls,
            credits: self.credits,
            reused: self.reused.len() as u64,
            ..LookupTotals::default()
        };
        for ids in self.ids.values() {
            match ids.len() {
                0 => totals.unmatched += 1,
                1 => totals.matched += 1,
                _ => totals.ambiguous += 1,
            }
        }
        totals
    }
}

/// The distinct keys of a sheet's key column, normalised and sorted (so the queries come
/// out the same on every run). Cells that cannot be keys are left out: their rows are
/// reported invalid when planned.
pub fn collect_keys(
    path: &Path,
    shown: &Path,
    options: &CsvOptions,
    field: &MatchField,
) -> Result<Vec<String>, InputError> {
    let file = std::fs::File::open(path).map_err(|cause| InputError::Open {
        path: shown.display().to_string(),
        cause,
    })?;
    let mut input = CsvInput::from_reader(shown, Box::new(file), options)?;
    let mut keys = std::collections::HashSet::new();
    while let Some(row) = input.next_row()? {
        if row.is_ragged() {
            continue;
        }
        if let Ok(key) = std::str::from_utf8(row.id())
            .map_err(|_| String::new())
            .and_then(|text| field.normalize(text))
        {
            keys.insert(key);
        }
    }
    let mut keys: Vec<String> = keys.into_iter().collect();
    keys.sort_unstable();
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> MatchField {
        MatchField::new("Leads", &FieldMeta::new("Email", FieldType::Email)).unwrap()
    }

    #[test]
    fn keys_compare_as_zoho_compares_them() {
        let field = email();
        assert_eq!(
            field.normalize("  A@Example.COM ").unwrap(),
            "a@example.com"
        );
        assert!(field
            .normalize("  ")
            .unwrap_err()
            .contains("Email cell is empty"));
        let number =
            MatchField::new("Leads", &FieldMeta::new("Account_No", FieldType::BigInt)).unwrap();
        assert_eq!(number.normalize("007").unwrap(), "7");
        assert!(number
            .normalize("7a")
            .unwrap_err()
            .contains("not a whole number"));
        let err = MatchField::new("Leads", &FieldMeta::new("Description", FieldType::TextArea))
            .unwrap_err();
        assert!(err.contains("multi-line"), "{err}");
        assert!(MatchField::new("Leads", &FieldMeta::new("Won", FieldType::Boolean)).is_err());
    }

    #[test]
    fn queries_quote_and_escape() {
        let field = email();
        let keys = vec!["a@x.com".to_string(), "o'neil@x.com".to_string()];
        assert_eq!(
            field.query(&keys, 200, 0),
            "select id, Email from Leads where Email in ('a@x.com', 'o\\'neil@x.com') limit 200"
        );
        assert!(field
            .query(&keys, 200, 400)
            .ends_with("limit 200 offset 400"));
    }

    #[test]
    fn a_key_resolves_to_one_record_or_says_why_not() {
        let keys = ["a@x.com", "b@x.com", "c@x.com"].map(String::from);
        let mut matches = Matches::new(email(), keys);
        let row = |id: &str, email: &str| {
            serde_json::json!({"id": id, "Email": email})
                .as_object()
                .unwrap()
                .clone()
        };
        matches.absorb(&row("11", "A@X.com")).unwrap();
        matches.absorb(&row("12", "b@x.com")).unwrap();
        matches.absorb(&row("13", "B@X.COM")).unwrap();
        matches.absorb(&row("13", "B@X.COM")).unwrap(); // a page seen twice
        matches.absorb(&row("14", "other@x.com")).unwrap();
        assert_eq!(matches.resolve(b"a@x.COM").unwrap(), 11);
        let err = matches.resolve(b"b@x.com").unwrap_err();
        assert!(
            err.contains("matches 2 Leads records (ids 12, 13)"),
            "{err}"
        );
        let err = matches.resolve(b"c@x.com").unwrap_err();
        assert_eq!(err, "no Leads record has Email = \"c@x.com\"");
        let err = matches.resolve(b"zzz@x.com").unwrap_err();
        assert!(err.starts_with("no Leads record"), "{err}");
        let totals = matches.totals();
        assert_eq!(
            (totals.matched, totals.unmatched, totals.ambiguous),
            (1, 1, 1)
        );
        assert!(matches.absorb(&serde_json::Map::new()).is_err());
        assert_eq!(
            matches.resolve_key(b"A@x.com").unwrap(),
            KeyMatch::Found(11)
        );
        assert_eq!(
            matches.resolve_key(b" C@X.com ").unwrap(),
            KeyMatch::Missing("c@x.com".into())
        );
        assert!(matches.resolve_key(b"b@x.com").is_err());
        assert_eq!(
            email().json_value(" New@X.com "),
            Some(serde_json::json!("New@X.com"))
        );
        // Credits are what the lookup's calls cost, as the attempt loop counted them.
        matches.calls = 4;
        matches.credits = 12;
        assert_eq!(matches.totals().credits, 12);
    }
}
