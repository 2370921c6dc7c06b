//! Request bodies as Zoho expects them, built as text: a 500-id body is built per call, so
//! this avoids a JSON tree per request.

/// A `mass_update` body: `data` holds the one value set (`payload`, a JSON object), `ids`
/// the records, as strings of digits as the seed collection sends them.
pub fn mass_update(payload: &str, over_write: bool, ids: &[i64]) -> String {
    use std::fmt::Write;
    let mut body = String::with_capacity(payload.len() + 40 + ids.len() * 22);
    body.push_str("{\"data\":[");
    body.push_str(payload);
    body.push_str("],\"over_write\":");
    body.push_str(if over_write { "true" } else { "false" });
    body.push_str(",\"ids\":[");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let _ = write!(body, "\"{id}\"");
    }
    body.push_str("]}");
    body
}

/// An Update Records body: one object per record, its `id` first, then its own fields
/// (`objects[i]` is a JSON object of fields for `ids[i]`); `trigger` lists what runs, and
/// left out, Zoho's default applies (`Some(&[])` runs nothing).
pub fn update_records(ids: &[i64], objects: &[&str], trigger: Option<&[String]>) -> String {
    use std::fmt::Write;
    let mut body = String::with_capacity(64 + objects.iter().map(|o| o.len() + 32).sum::<usize>());
    body.push_str("{\"data\":[");
    for (i, (id, object)) in ids.iter().zip(objects).enumerate() {
        if i > 0 {
            body.push(',');
        }
        let _ = write!(body, "{{\"id\":\"{id}\"");
        let inner = object
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .trim();
        if !inner.is_empty() {
            body.push(',');
            body.push_str(inner);
        }
        body.push('}');
    }
    body.push(']');
    if let Some(trigger) = trigger {
        body.push_str(",\"trigger\":");
        body.push_str(&serde_json::to_string(trigger).expect("strings serialize"));
    }
    body.push('}');
    body
}

/// An Upsert Records body (`POST .../{Module}/upsert`): one object per record (each holds
/// its key field), `duplicate_check_fields` naming the key, so Zoho updates the record that
/// holds it, if one does, and creates one otherwise; `trigger` as for Update Records.
pub fn upsert_records(objects: &[&str], key_field: &str, trigger: Option<&[String]>) -> String {
    let mut body = String::with_capacity(64 + objects.iter().map(|o| o.len() + 2).sum::<usize>());
    body.push_str("{\"data\":[");
    body.push_str(&objects.join(","));
    body.push_str("],\"duplicate_check_fields\":[");
    body.push_str(&serde_json::to_string(key_field).expect("strings serialize"));
    body.push(']');
    if let Some(trigger) = trigger {
        body.push_str(",\"trigger\":");
        body.push_str(&serde_json::to_string(trigger).expect("strings serialize"));
    }
    body.push('}');
    body
}

#[cfg(test)]
mod tests {
    #[test]
    fn update_records_bodies_carry_each_records_values_and_the_trigger() {
        let body = super::update_records(
            &[1, 22],
            &[r#"{"Email":"a@x.io","City":"Oslo"}"#, r#"{"Title":null}"#],
            Some(&[]),
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"data": [
                {"id": "1", "Email": "a@x.io", "City": "Oslo"},
                {"id": "22", "Title": null}
            ], "trigger": []})
        );
        let upsert = super::upsert_records(&[r#"{"Email":"a@x.io","City":"Oslo"}"#], "Email", None);
        let json: serde_json::Value = serde_json::from_str(&upsert).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"data": [{"Email": "a@x.io", "City": "Oslo"}], "duplicate_check_fields": ["Email"]})
        );
        let default = super::update_records(&[5], &["{}"], None);
        assert_eq!(default, r#"{"data":[{"id":"5"}]}"#);
    }

    #[test]
    fn mass_update_bodies_are_zoho_shaped() {
        let body = super::mass_update(r#"{"Lead_Status":"Contacted"}"#, false, &[7]);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"data": [{"Lead_Status": "Contacted"}], "over_write": false, "ids": ["7"]})
        );
    }
}
