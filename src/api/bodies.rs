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

#[cfg(test)]
mod tests {
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
