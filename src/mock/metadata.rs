//! The metadata documents the mock serves as Zoho does: `settings/fields` with Zoho's full key
//! set, `settings/modules`, and `settings/custom_views` (whose views the scheduled mass update
//! runs over). Zoho's own SDKs read these documents before any record call, so their shapes
//! follow the SDK's models (`Field`, `Module`, `CustomView` in `json_details.json` of
//! zohocrm-python-sdk-2.0 6.0.0).

use serde_json::{json, Map, Value};

/// One module the mock serves. Ids are fixed so a client that caches them sees the same ids
/// on every start.
#[derive(Debug, Clone, Copy)]
pub struct ModuleInfo {
    pub api_name: &'static str,
    pub singular_label: &'static str,
    pub plural_label: &'static str,
    pub id: &'static str,
    /// Position in Zoho's default tab order, also the base of the module's field and custom
    /// view ids.
    pub sequence: u64,
}

/// The modules the mock knows, in Zoho's default tab order.
pub const MODULES: [ModuleInfo; 4] = [
    ModuleInfo {
        api_name: "Leads",
        singular_label: "Lead",
        plural_label: "Leads",
        id: "738964000000002175",
        sequence: 2,
    },
    ModuleInfo {
        api_name: "Contacts",
        singular_label: "Contact",
        plural_label: "Contacts",
        id: "738964000000002179",
        sequence: 3,
    },
    ModuleInfo {
        api_name: "Accounts",
        singular_label: "Account",
        plural_label: "Accounts",
        id: "738964000000002177",
        sequence: 4,
    },
    ModuleInfo {
        api_name: "Deals",
        singular_label: "Deal",
        plural_label: "Deals",
        id: "738964000000002181",
        sequence: 5,
    },
];

/// The user every record was created and modified by: the seed's.
pub const SEED_USER: (&str, &str) = ("Patricia Boyle", "738964000000291009");

/// The org's active users, the seed's first. An owner lookup naming anyone else is refused.
pub const USERS: [(&str, &str); 3] = [
    SEED_USER,
    ("Daniel Ortiz", "738964000000291023"),
    ("Meera Raman", "738964000000291041"),
];

/// The name of a user of the org, if the id names one.
pub fn user_name(id: &str) -> Option<&'static str> {
    USERS.iter().find(|(_, u)| *u == id).map(|(name, _)| *name)
}

/// When the mock's modules were last changed: `settings/modules` answers 304 to an
/// `If-Modified-Since` at or after it, as Zoho does for unchanged metadata.
pub const MODULES_MODIFIED: &str = "2021-05-01T10:00:00+00:00";

pub fn module_info(api_name: &str) -> Option<&'static ModuleInfo> {
    MODULES.iter().find(|m| m.api_name == api_name)
}

/// Fields Zoho creates every module with a value for: a record cannot be saved without them.
pub(crate) fn system_mandatory(module: &str, field: &str) -> bool {
    matches!(
        (module, field),
        ("Leads", "Last_Name")
            | ("Leads", "Company")
            | ("Contacts", "Last_Name")
            | ("Accounts", "Account_Name")
            | ("Deals", "Deal_Name")
            | ("Deals", "Stage")
            | ("Deals", "Closing_Date")
    )
}

/// Fills every field of a `settings/fields` document with the keys Zoho sends (44 per
/// field, where the sample files hold the handful the mock and massup judge by). Keys a sample
/// file already has are kept as they are; only missing ones are added.
pub fn enrich_fields(module: &ModuleInfo, document: &mut Value) {
    let Some(fields) = document.get_mut("fields").and_then(Value::as_array_mut) else {
        return;
    };
    for (i, field) in fields.iter_mut().enumerate() {
        let Some(field) = field.as_object_mut() else {
            continue;
        };
        let generated = generated_keys(module, i, field);
        for (key, value) in generated {
            field.entry(key).or_insert(value);
        }
        if let Some(values) = field
            .get_mut("pick_list_values")
            .and_then(Value::as_array_mut)
        {
            for (n, value) in values.iter_mut().enumerate() {
                if let Some(value) = value.as_object_mut() {
                    value
                        .entry("sequence_number")
                        .or_insert(json!(n as u64 + 1));
                    value.entry("maps").or_insert(json!([]));
                    value.entry("type").or_insert(json!("used"));
                }
            }
        }
    }
}

fn generated_keys(
    module: &ModuleInfo,
    index: usize,
    field: &Map<String, Value>,
) -> Map<String, Value> {
    let text = |k: &str| field.get(k).and_then(Value::as_str).unwrap_or("");
    let api_name = text("api_name");
    let data_type = text("data_type");
    let read_only = field
        .get("read_only")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let custom = field
        .get("custom_field")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // Created_Time and the like are filled by the system, not by a user.
    let system_filled = read_only && !custom;
    let label = match text("field_label") {
        "" => api_name.replace('_', " "),
        label => label.to_string(),
    };
    let id = format!(
        "{}",
        738_964_000_000_100_000 + module.sequence * 1000 + index as u64
    );
    let currency = if data_type == "currency" {
        json!({"rounding_option": "normal", "precision": 2})
    } else {
        json!({})
    };
    let decimal_place = match data_type {
        "currency" => json!(2),
        _ => Value::Null,
    };
    let auto_number = if data_type == "autonumber" {
        json!({"prefix": "LN-", "suffix": "", "start_number": 1})
    } else {
        json!({})
    };
    let mut keys = Map::new();
    let mut put = |k: &str, v: Value| {
        keys.insert(k.to_string(), v);
    };
    put("id", json!(id));
    put("field_label", json!(label));
    put("display_label", json!(label));
    put(
        "system_mandatory",
        json!(system_mandatory(module.api_name, api_name)),
    );
    put(
        "mandatory",
        json!(system_mandatory(module.api_name, api_name)),
    );
    put("custom_field", json!(custom));
    put(
        "created_source",
        json!(if custom { "custom" } else { "default" }),
    );
    put("visible", json!(true));
    put("field_read_only", json!(system_filled));
    put("webhook", json!(true));
    put("businesscard_supported", json!(!read_only));
    put("history_tracking", json!(false));
    put("blueprint_supported", json!(!read_only));
    put("quick_sequence_number", json!(index as u64 + 1));
    put(
        "view_type",
        json!({"view": true, "edit": !read_only, "quick_create": false, "create": !read_only}),
    );
    put("lookup", json!({}));
    put("multiselectlookup", json!({}));
    put("multi_module_lookup", json!({}));
    put("currency", currency);
    put("decimal_place", decimal_place);
    put("auto_number", auto_number);
    put("unique", json!({}));
    put("formula", json!({}));
    put("subform", Value::Null);
    put("crypt", Value::Null);
    put("tooltip", Value::Null);
    put("private", Value::Null);
    put("association_details", Value::Null);
    put("related_details", Value::Null);
    put("convert_mapping", Value::Null);
    put("validation_rule", Value::Null);
    put("criteria", Value::Null);
    put("default_value", Value::Null);
    put("personality_name", Value::Null);
    put("transition_sequence", Value::Null);
    put("column_name", Value::Null);
    put("section_id", Value::Null);
    put("pick_list_values", json!([]));
    keys
}

/// The `settings/modules` document: the mock's four modules with the keys of the SDK's
/// `Module` model that a client reads (api_name, generated_type and api_supported above all:
/// the SDK fetches the fields of every module marked api_supported).
pub fn modules_document() -> Value {
    let modules: Vec<Value> = MODULES
        .iter()
        .map(|m| {
            // Built in two parts: one json! of 43 keys is past the macro's recursion limit.
            let mut module = json!({
                "global_search_supported": true,
                "deletable": true,
                "description": null,
                "creatable": true,
                "inventory_template_supported": false,
                "modified_time": MODULES_MODIFIED,
                "plural_label": m.plural_label,
                "presence_sub_menu": true,
                "triggers_supported": true,
                "id": m.id,
                "visibility": 1,
                "convertable": m.api_name == "Leads",
                "editable": true,
                "emailTemplate_support": m.api_name != "Accounts",
                "profiles": [{"name": "Administrator", "id": "738964000000026011"}],
                "filter_supported": true,
                "show_as_tab": true,
                "web_link": null,
                "sequence_number": m.sequence,
                "singular_label": m.singular_label,
                "viewable": true,
            });
            let rest = json!({
                "api_supported": true,
                "api_name": m.api_name,
                "quick_create": true,
                "modified_by": null,
                "generated_type": "default",
                "feeds_required": false,
                "scoring_supported": true,
                "webform_supported": m.api_name != "Deals",
                "arguments": [],
                "module_name": m.plural_label,
                "business_card_field_limit": 5,
                "parent_module": {},
                "kanban_view_supported": true,
                "kanban_view": false,
                "per_page": 200,
                "filter_status": true,
                "display_field": null,
                "search_layout_fields": [],
                "territory": null,
                "custom_view": null,
                "related_list_properties": null,
                "$properties": [],
            });
            if let (Some(module), Value::Object(rest)) = (module.as_object_mut(), rest) {
                module.extend(rest);
            }
            module
        })
        .collect();
    json!({ "modules": modules })
}

/// Which records a custom view holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewRecords {
    /// Every generated record (the store's order).
    All,
    /// The first N generated records.
    First(usize),
    /// None: a scheduled mass update over it answers NO_RECORDS_FOUND.
    Empty,
}

#[derive(Debug, Clone)]
pub struct CustomView {
    pub id: String,
    pub module: &'static str,
    pub name: String,
    pub system_name: Option<&'static str>,
    pub system_defined: bool,
    pub default: bool,
    pub records: ViewRecords,
}

/// How many records the mock's "Mock Sample" view holds.
pub const SAMPLE_VIEW_SIZE: usize = 50;

/// The custom views of a module: Zoho's system view of every record, plus two views of the
/// mock's own (a fixed sample, and an empty one) for the scheduled mass update.
pub fn custom_views(module: &ModuleInfo) -> Vec<CustomView> {
    let id = |n: u64| format!("{}", 738_964_000_000_087_500 + module.sequence * 10 + n);
    vec![
        CustomView {
            id: id(1),
            module: module.api_name,
            name: format!("All {}", module.plural_label),
            system_name: Some("ALLVIEWS"),
            system_defined: true,
            default: true,
            records: ViewRecords::All,
        },
        CustomView {
            id: id(2),
            module: module.api_name,
            name: format!("Mock Sample ({SAMPLE_VIEW_SIZE} {})", module.plural_label),
            system_name: None,
            system_defined: false,
            default: false,
            records: ViewRecords::First(SAMPLE_VIEW_SIZE),
        },
        CustomView {
            id: id(3),
            module: module.api_name,
            name: format!("Mock Empty {}", module.plural_label),
            system_name: None,
            system_defined: false,
            default: false,
            records: ViewRecords::Empty,
        },
    ]
}

/// One view as `settings/custom_views` lists it.
pub fn custom_view_json(view: &CustomView) -> Value {
    json!({
        "display_value": view.name,
        "offline": true,
        "default": view.default,
        "system_name": view.system_name.unwrap_or(view.name.as_str()),
        "system_defined": view.system_defined,
        "name": view.name,
        "id": view.id,
        "category": if view.system_defined { "public_views" } else { "created_by_me" },
        "favorite": null,
        "shared_type": null,
        "sort_by": null,
        "sort_order": null,
        "criteria": null,
        "shared_details": null,
        "fields": [],
    })
}

/// The `settings/custom_views?module=M` document.
pub fn custom_views_document(views: &[CustomView]) -> Value {
    let default = views.iter().find(|v| v.default).map(|v| v.id.clone());
    json!({
        "custom_views": views.iter().map(custom_view_json).collect::<Vec<_>>(),
        "info": {
            "per_page": 200,
            "default": default,
            "count": views.len(),
            "page": 1,
            "more_records": false,
            "translation": {
                "public_views": "Public Views",
                "other_users_views": "Other Users' Views",
                "shared_with_me": "Shared With Me",
                "created_by_me": "Created By Me",
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_keys_win_and_missing_ones_are_added() {
        let mut doc = json!({"fields": [
            {"api_name": "Lead_Status", "field_label": "Lead Status", "data_type": "picklist",
             "read_only": false, "pick_list_values": [{"display_value": "A", "actual_value": "A"}]},
            {"api_name": "Annual_Revenue", "data_type": "currency", "read_only": false,
             "decimal_place": 3}
        ]});
        enrich_fields(&MODULES[0], &mut doc);
        let status = &doc["fields"][0];
        assert_eq!(status["field_label"], "Lead Status");
        assert_eq!(status["display_label"], "Lead Status");
        assert_eq!(status["pick_list_values"][0]["sequence_number"], 1);
        assert!(status["id"].as_str().is_some_and(|id| id.len() == 18));
        assert!(status.as_object().expect("object").len() >= 40);
        let revenue = &doc["fields"][1];
        assert_eq!(revenue["decimal_place"], 3, "a key the file has is kept");
        assert_eq!(revenue["field_label"], "Annual Revenue");
        assert_eq!(revenue["currency"]["precision"], 2);
    }

    #[test]
    fn view_ids_are_unique_across_modules() {
        let ids: std::collections::HashSet<String> = MODULES
            .iter()
            .flat_map(custom_views)
            .map(|v| v.id)
            .collect();
        assert_eq!(ids.len(), MODULES.len() * 3);
    }
}
