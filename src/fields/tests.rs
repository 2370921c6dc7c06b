//! Tests for field metadata, column checks and coercion, one group per field type.

use super::*;
use proptest::prelude::*;
use serde_json::json;

/// A trimmed but realistic `GET /crm/v2/settings/fields?module=Leads` answer: extra keys
/// Zoho sends, a field without `mass_update`, length 0, a picklist with `-None-`.
const LEADS_FIELDS: &str = r#"{
  "fields": [
    {"api_name": "Owner", "data_type": "ownerlookup", "json_type": "jsonobject",
     "field_label": "Lead Owner", "read_only": false, "mass_update": true, "length": 120,
     "visible": true, "pick_list_values": [], "lookup": {}},
    {"api_name": "Company", "data_type": "text", "json_type": "string",
     "read_only": false, "mass_update": true, "length": 200, "pick_list_values": []},
    {"api_name": "Email", "data_type": "email", "json_type": "string",
     "read_only": false, "mass_update": false, "length": 100},
    {"api_name": "Lead_Status", "data_type": "picklist", "json_type": "string",
     "read_only": false, "mass_update": true, "length": 120,
     "pick_list_values": [
       {"display_value": "-None-", "actual_value": "-None-", "id": "1"},
       {"display_value": "Attempted to Contact", "actual_value": "Attempted to Contact"},
       {"display_value": "Contacted", "actual_value": "Contacted"},
       {"display_value": "Junk", "actual_value": "Junk Lead"}
     ]},
    {"api_name": "Annual_Revenue", "data_type": "currency", "json_type": "double",
     "read_only": false, "mass_update": true, "length": 16, "decimal_place": 2},
    {"api_name": "No_of_Employees", "data_type": "integer", "json_type": "integer",
     "read_only": false, "length": 9},
    {"api_name": "Description", "data_type": "textarea", "json_type": "string",
     "read_only": false, "length": 32000},
    {"api_name": "Created_Time", "data_type": "datetime", "json_type": "string",
     "read_only": true, "mass_update": false, "length": 0},
    {"api_name": "Email_Opt_Out", "data_type": "boolean", "json_type": "boolean",
     "read_only": false, "length": 0},
    {"api_name": "Layout", "data_type": "layout", "json_type": "jsonobject"},
    {"api_name": "Score", "data_type": "formula", "json_type": "double", "read_only": true},
    {"api_name": "Secret_Notes", "data_type": "text", "mass_update": false, "length": 255}
  ],
  "info": {"more": false}
}"#;

fn leads() -> ModuleFields {
    ModuleFields::from_zoho_json(LEADS_FIELDS.as_bytes()).expect("sample parses")
}

fn field(data_type: FieldType) -> FieldMeta {
    FieldMeta::new("Field", data_type)
}

fn picklist(data_type: FieldType, values: &[&str]) -> FieldMeta {
    FieldMeta {
        pick_list_values: values.iter().map(|value| value.to_string()).collect(),
        ..field(data_type)
    }
}

fn ok(meta: &FieldMeta, raw: &str) -> serde_json::Value {
    coerce(meta, raw, &CoerceOptions::default())
        .unwrap_or_else(|error| panic!("{raw:?} as {}: {error}", meta.data_type))
}

fn bad(meta: &FieldMeta, raw: &str) -> CoerceError {
    match coerce(meta, raw, &CoerceOptions::default()) {
        Ok(value) => panic!("{raw:?} as {} gave {value}", meta.data_type),
        Err(error) => error,
    }
}

fn in_zone(zone: &str) -> CoerceOptions {
    CoerceOptions {
        timezone: Some(CoerceOptions::parse_timezone(zone).expect("known zone")),
        ..CoerceOptions::default()
    }
}

const ALL_TYPES: &[FieldType] = &[
    FieldType::Text,
    FieldType::TextArea,
    FieldType::Email,
    FieldType::Phone,
    FieldType::Website,
    FieldType::Picklist,
    FieldType::MultiSelect,
    FieldType::Integer,
    FieldType::BigInt,
    FieldType::Double,
    FieldType::Currency,
    FieldType::Percent,
    FieldType::Decimal,
    FieldType::Boolean,
    FieldType::Date,
    FieldType::DateTime,
    FieldType::Lookup,
    FieldType::OwnerLookup,
    FieldType::AutoNumber,
];

// --- FieldType ---

#[test]
fn every_zoho_type_name_parses_and_names_itself() {
    for field_type in ALL_TYPES {
        assert_eq!(&field_type.name().parse::<FieldType>().unwrap(), field_type);
        assert_eq!(field_type.to_string(), field_type.name());
    }
    assert_eq!(FieldType::MultiSelect.name(), "multiselectpicklist");
    assert_eq!(FieldType::OwnerLookup.name(), "ownerlookup");
}

#[test]
fn aliases_parse_to_their_types_ignoring_case() {
    let cases = [
        ("string", FieldType::Text),
        ("int", FieldType::Integer),
        ("long", FieldType::BigInt),
        ("float", FieldType::Double),
        ("number", FieldType::Double),
        ("bool", FieldType::Boolean),
        ("multiselect", FieldType::MultiSelect),
        ("Integer", FieldType::Integer),
        ("DATETIME", FieldType::DateTime),
    ];
    for (name, expected) in cases {
        assert_eq!(name.parse::<FieldType>().unwrap(), expected, "{name}");
    }
}

#[test]
fn unknown_type_name_is_an_error_for_the_cli_but_other_from_metadata() {
    let error = "intger".parse::<FieldType>().unwrap_err().to_string();
    assert!(
        error.contains("\"intger\"") && error.contains("integer"),
        "{error}"
    );
    assert_eq!(
        FieldType::from_zoho("formula"),
        FieldType::Other("formula".into())
    );
    assert_eq!(FieldType::Other("formula".into()).name(), "formula");
}

#[test]
fn mass_updatable_by_type_follows_the_api_notes() {
    for not in [
        FieldType::Email,
        FieldType::Lookup,
        FieldType::TextArea,
        FieldType::AutoNumber,
        FieldType::Other("layout".into()),
        FieldType::Other("lineitem".into()),
    ] {
        assert!(!not.mass_updatable_by_type(), "{not}");
    }
    for can in [
        FieldType::OwnerLookup,
        FieldType::Text,
        FieldType::Picklist,
        FieldType::MultiSelect,
        FieldType::DateTime,
        FieldType::Other("formula".into()),
    ] {
        assert!(can.mass_updatable_by_type(), "{can}");
    }
}

// --- metadata ---

#[test]
fn from_zoho_json_reads_a_realistic_sample() {
    let fields = leads();
    assert_eq!(fields.len(), 12);
    let names: Vec<&str> = fields.iter().map(|meta| meta.api_name.as_str()).collect();
    assert_eq!(&names[..3], ["Owner", "Company", "Email"]);

    let owner = fields.get("Owner").unwrap();
    assert_eq!(owner.data_type, FieldType::OwnerLookup);
    assert!(owner.mass_update && !owner.read_only);

    let status = fields.get("Lead_Status").unwrap();
    assert_eq!(
        status.pick_list_values,
        ["-None-", "Attempted to Contact", "Contacted", "Junk Lead"]
    );
    assert_eq!(
        fields.get("Annual_Revenue").unwrap().decimal_places,
        Some(2)
    );
    assert_eq!(fields.get("Company").unwrap().length, Some(200));
    assert_eq!(
        fields.get("Created_Time").unwrap().length,
        None,
        "0 means no limit"
    );
    assert!(fields.get("Created_Time").unwrap().read_only);
    assert_eq!(
        fields.get("Score").unwrap().data_type,
        FieldType::Other("formula".into())
    );
    assert!(
        fields.get("lead_status").is_none(),
        "API names are case-sensitive"
    );
}

#[test]
fn missing_mass_update_is_derived_from_the_type() {
    let fields = leads();
    assert!(fields.get("No_of_Employees").unwrap().mass_update);
    assert!(fields.get("Email_Opt_Out").unwrap().mass_update);
    assert!(!fields.get("Description").unwrap().mass_update, "textarea");
    assert!(!fields.get("Layout").unwrap().mass_update, "layout");
    assert!(
        !fields.get("Secret_Notes").unwrap().mass_update,
        "metadata says false"
    );
}

#[test]
fn picklist_value_without_actual_value_falls_back_to_display_value() {
    let json = br#"{"fields":[{"api_name":"P","data_type":"picklist",
        "pick_list_values":[{"display_value":"A"},{"display_value":"B","actual_value":"b"}]}]}"#;
    let fields = ModuleFields::from_zoho_json(json).unwrap();
    assert_eq!(fields.get("P").unwrap().pick_list_values, ["A", "b"]);
}

#[test]
fn bad_metadata_is_an_error() {
    assert!(ModuleFields::from_zoho_json(b"not json").is_err());
    assert!(ModuleFields::from_zoho_json(br#"{"data": []}"#).is_err());
    assert!(ModuleFields::from_zoho_json(br#"{"fields":[{"api_name":"A"}]}"#).is_err());
    let twice = br#"{"fields":[{"api_name":"A","data_type":"text"},{"api_name":"A","data_type":"integer"}]}"#;
    assert!(matches!(
        ModuleFields::from_zoho_json(twice),
        Err(FieldsError::DuplicateField(name)) if name == "A"
    ));
}

#[test]
fn insert_replaces_a_field_with_the_same_name() {
    let mut fields = leads();
    let old = fields.insert(FieldMeta::new("Company", FieldType::Integer));
    assert_eq!(old.unwrap().data_type, FieldType::Text);
    assert_eq!(fields.get("Company").unwrap().data_type, FieldType::Integer);
    assert_eq!(fields.len(), 12);
    assert!(fields
        .insert(FieldMeta::new("New", FieldType::Date))
        .is_none());
    assert_eq!(fields.iter().last().unwrap().api_name, "New");
}

#[test]
fn check_columns_reports_every_problem_with_its_reason() {
    let fields = leads();
    let problems = fields.check_columns([
        "Owner",
        "lead_status",
        "Created_Time",
        "Email",
        "Company",
        "Nope",
        "Secret_Notes",
        "Description",
    ]);
    let kinds: Vec<(&str, &ColumnProblemKind)> = problems
        .iter()
        .map(|problem| (problem.column.as_str(), &problem.reason))
        .collect();
    assert_eq!(
        kinds,
        [
            ("lead_status", &ColumnProblemKind::Unknown),
            ("Created_Time", &ColumnProblemKind::ReadOnly),
            (
                "Email",
                &ColumnProblemKind::NotMassUpdatable(FieldType::Email)
            ),
            ("Nope", &ColumnProblemKind::Unknown),
            (
                "Secret_Notes",
                &ColumnProblemKind::NotMassUpdatable(FieldType::Text)
            ),
            (
                "Description",
                &ColumnProblemKind::NotMassUpdatable(FieldType::TextArea)
            ),
        ]
    );
    assert_eq!(problems[0].suggestion.as_deref(), Some("Lead_Status"));
    assert_eq!(problems[3].suggestion, None);

    let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        messages[0].contains("did you mean \"Lead_Status\""),
        "{}",
        messages[0]
    );
    assert!(messages[1].contains("read-only"), "{}", messages[1]);
    assert!(messages[2].contains("email fields"), "{}", messages[2]);
    assert!(
        messages[4].contains("mass_update is false"),
        "{}",
        messages[4]
    );
}

#[test]
fn check_columns_ignores_the_type_when_metadata_wrongly_allows_it() {
    let mut fields = ModuleFields::new();
    fields.insert(FieldMeta {
        mass_update: true,
        ..FieldMeta::new("Email", FieldType::Email)
    });
    assert_eq!(
        fields.check_columns(["Email"])[0].reason,
        ColumnProblemKind::NotMassUpdatable(FieldType::Email)
    );
    assert!(leads().check_columns(["Owner", "Company"]).is_empty());
}

// --- text ---

#[test]
fn text_is_passed_through_untrimmed() {
    let text = field(FieldType::Text);
    assert_eq!(ok(&text, " Acme, Inc. "), json!(" Acme, Inc. "));
    for data_type in [
        FieldType::Phone,
        FieldType::Website,
        FieldType::Email,
        FieldType::AutoNumber,
        FieldType::Other("formula".into()),
    ] {
        assert_eq!(ok(&field(data_type), "x y"), json!("x y"));
    }
}

#[test]
fn text_length_counts_characters_not_bytes() {
    let limited = FieldMeta {
        length: Some(5),
        ..field(FieldType::Text)
    };
    assert_eq!(ok(&limited, "äöüßé"), json!("äöüßé"), "10 bytes, 5 chars");
    assert_eq!(ok(&limited, "日本語テキ"), json!("日本語テキ"));
    let error = bad(&limited, "äöüßéa");
    assert_eq!(error.expected, "text of at most 5 characters");
    assert!(error.message.contains("6 characters"), "{error}");
}

#[test]
fn text_defaults_to_255_characters_but_textarea_to_no_limit() {
    let text = field(FieldType::Text);
    ok(&text, &"é".repeat(255));
    bad(&text, &"a".repeat(256));
    let area = field(FieldType::TextArea);
    ok(&area, &"a".repeat(10_000));
    let limited_area = FieldMeta {
        length: Some(3),
        ..area
    };
    bad(&limited_area, "abcd");
}

#[test]
fn long_values_are_shortened_in_messages() {
    let error = bad(&field(FieldType::Integer), &"x".repeat(1000));
    assert!(error.message.len() < 200, "{error}");
    assert!(error.message.contains("1000 characters"), "{error}");
}

// --- picklists ---

#[test]
fn picklist_takes_exact_actual_values_only() {
    let status = leads().get("Lead_Status").unwrap().clone();
    assert_eq!(ok(&status, "Contacted"), json!("Contacted"));
    assert_eq!(ok(&status, "Junk Lead"), json!("Junk Lead"));
    assert!(bad(&status, "Junk").message.contains("not a value"));
    let error = bad(&status, "contacted");
    assert!(
        error.message.contains("did you mean \"Contacted\""),
        "{error}"
    );
    assert!(error.message.contains("\"-None-\""), "{error}");
    bad(&status, " Contacted");
}

#[test]
fn picklist_error_lists_a_few_allowed_values() {
    let values: Vec<String> = (0..20).map(|i| format!("V{i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let error = bad(&picklist(FieldType::Picklist, &refs), "X");
    assert!(error.message.contains("\"V4\" and 15 more"), "{error}");
    assert!(!error.message.contains("V5"), "{error}");
}

#[test]
fn picklist_without_values_takes_any_text() {
    assert_eq!(
        ok(&field(FieldType::Picklist), "Anything"),
        json!("Anything")
    );
    bad(&field(FieldType::Picklist), &"a".repeat(256));
}

#[test]
fn multiselect_splits_trims_and_checks_each_item() {
    let tags = picklist(FieldType::MultiSelect, &["Red", "Green", "Blue Sky"]);
    assert_eq!(ok(&tags, "Red"), json!(["Red"]));
    assert_eq!(ok(&tags, " Red ; Blue Sky;;"), json!(["Red", "Blue Sky"]));
    let error = bad(&tags, "Red;green");
    assert!(
        error.message.contains("\"green\" (in \"Red;green\")"),
        "{error}"
    );
    assert!(bad(&tags, " ; ;").message.contains("null marker"));
    assert_eq!(ok(&field(FieldType::MultiSelect), "a;b"), json!(["a", "b"]));

    let comma = CoerceOptions {
        multiselect_separator: ',',
        ..CoerceOptions::default()
    };
    assert_eq!(
        coerce(&tags, "Red, Green", &comma).unwrap(),
        json!(["Red", "Green"])
    );
}

// --- whole numbers ---

#[test]
fn integer_takes_up_to_nine_digits_with_a_sign() {
    let integer = field(FieldType::Integer);
    assert_eq!(ok(&integer, "42"), json!(42));
    assert_eq!(ok(&integer, "-42"), json!(-42));
    assert_eq!(ok(&integer, "+42"), json!(42));
    assert_eq!(ok(&integer, "0"), json!(0));
    assert_eq!(ok(&integer, "-0"), json!(0));
    assert_eq!(ok(&integer, "007"), json!(7));
    assert_eq!(ok(&integer, "999999999"), json!(999_999_999));
    assert_eq!(ok(&integer, "-999999999"), json!(-999_999_999));
    assert_eq!(ok(&integer, "000000000999999999"), json!(999_999_999));
    let error = bad(&integer, "1000000000");
    assert_eq!(error.expected, "integer (at most 9 digits)");
    assert!(error.message.contains("10 digits"), "{error}");
}

#[test]
fn integer_rejects_anything_but_digits() {
    let integer = field(FieldType::Integer);
    let cases = [
        ("1e3", "exponent"),
        ("1,000", "separator"),
        ("1.0", "decimal point"),
        (" 1", "spaces"),
        ("1 ", "spaces"),
        ("-", "not a plain"),
        ("+-1", "not a plain"),
        ("١٢", "not a plain"),
        ("0x1F", "not a plain"),
        ("12%", "percent"),
    ];
    for (raw, problem) in cases {
        let error = bad(&integer, raw);
        assert!(error.message.contains(problem), "{raw:?}: {error}");
    }
}

#[test]
fn bigint_is_a_canonical_string_of_up_to_eighteen_digits() {
    let bigint = field(FieldType::BigInt);
    assert_eq!(
        ok(&bigint, "123456789012345678"),
        json!("123456789012345678")
    );
    assert_eq!(
        ok(&bigint, "-123456789012345678"),
        json!("-123456789012345678")
    );
    assert_eq!(ok(&bigint, "+0042"), json!("42"));
    assert_eq!(ok(&bigint, "-000"), json!("0"));
    let error = bad(&bigint, "1234567890123456789");
    assert!(error.message.contains("19 digits"), "{error}");
    bad(&bigint, "1.5");
    bad(&bigint, "12e3");
}

// --- decimal numbers ---

#[test]
fn numbers_are_sent_in_one_canonical_form() {
    for data_type in [
        FieldType::Double,
        FieldType::Currency,
        FieldType::Percent,
        FieldType::Decimal,
    ] {
        let number = field(data_type);
        assert_eq!(ok(&number, "12.50"), json!(12.5));
        assert_eq!(ok(&number, "3"), json!(3));
        assert_eq!(ok(&number, "3.00"), json!(3));
        assert_eq!(ok(&number, "-0.5"), json!(-0.5));
        assert_eq!(ok(&number, "+0.25"), json!(0.25));
        assert_eq!(ok(&number, "-0.0"), json!(0));
        assert_eq!(ok(&number, "0.1").to_string(), "0.1");
        assert_eq!(
            ok(&number, "123456789012345").to_string(),
            "123456789012345"
        );
        assert_eq!(
            ok(&number, "1234567890.12345").to_string(),
            "1234567890.12345"
        );
        assert_eq!(ok(&number, "0.000000000000001").to_string(), "1e-15");
    }
}

#[test]
fn numbers_reject_exponents_separators_and_non_finite_values() {
    let number = field(FieldType::Double);
    for raw in [
        "1e3",
        "1E3",
        "1,000",
        "1,5",
        "NaN",
        "inf",
        "-infinity",
        "0x10",
        ".5",
        "5.",
        "1.2.3",
        " 1",
        "$5",
        "12%",
        "--1",
        "",
    ] {
        bad(&number, raw);
    }
    assert!(bad(&number, "1e3").message.contains("exponent"));
    assert!(bad(&number, "1,000").message.contains("separator"));
}

#[test]
fn numbers_beyond_fifteen_significant_digits_are_rejected() {
    let number = field(FieldType::Double);
    ok(&number, "0.00123456789012345");
    ok(&number, "100000000000000.0");
    let error = bad(&number, "1234567890123456");
    assert!(error.message.contains("16 significant digits"), "{error}");
    bad(&number, "0.1234567890123456");
}

#[test]
fn currency_decimal_places_from_metadata_are_enforced() {
    let revenue = leads().get("Annual_Revenue").unwrap().clone();
    assert_eq!(ok(&revenue, "1999.99"), json!(1999.99));
    assert_eq!(
        ok(&revenue, "1999.9900"),
        json!(1999.99),
        "trailing zeros round nothing"
    );
    let error = bad(&revenue, "1999.999");
    assert_eq!(error.expected, "number with at most 2 decimal places");
    assert!(error.message.contains("3 decimal places"), "{error}");
}

// --- boolean ---

#[test]
fn boolean_words_in_any_case() {
    let boolean = field(FieldType::Boolean);
    for raw in ["true", "TRUE", "Yes", "yes", "1"] {
        assert_eq!(ok(&boolean, raw), json!(true), "{raw}");
    }
    for raw in ["false", "False", "NO", "no", "0"] {
        assert_eq!(ok(&boolean, raw), json!(false), "{raw}");
    }
    for raw in ["y", "n", "2", "on", "off", "t", "x", "", "vielleicht"] {
        bad(&boolean, raw);
    }
}

#[test]
fn boolean_words_of_the_languages_sheets_are_kept_in_trimmed() {
    let boolean = field(FieldType::Boolean);
    for raw in [
        "ja", "JA", "wahr", "Wahr", "oui", "OUI", "si", "sí", "Sí", "SÍ", "vrai", " true", "yes\t",
        "\u{a0}1",
    ] {
        assert_eq!(ok(&boolean, raw), json!(true), "{raw:?}");
    }
    for raw in [
        "nein", "Nein", "falsch", "non", "Non", "faux", "FAUX", " no ", "0 ",
    ] {
        assert_eq!(ok(&boolean, raw), json!(false), "{raw:?}");
    }
}

#[test]
fn a_refused_boolean_names_the_words_and_the_checkbox_flag() {
    let error = bad(&field(FieldType::Boolean), "x");
    for part in [
        "\"x\" is not a boolean",
        "ja/nein",
        "oui/non",
        "sí/no",
        "vrai/faux",
        "wahr/falsch",
        "1/0",
        "--bool-x",
    ] {
        assert!(error.message.contains(part), "{part}: {error}");
    }
}

#[test]
fn with_bool_x_x_is_true_and_empty_is_false() {
    let boolean = field(FieldType::Boolean);
    let opts = CoerceOptions {
        bool_x: true,
        ..CoerceOptions::default()
    };
    let read = |raw| coerce(&boolean, raw, &opts);
    assert_eq!(read("x").unwrap(), json!(true));
    assert_eq!(read(" X ").unwrap(), json!(true));
    assert_eq!(read("").unwrap(), json!(false));
    assert_eq!(read("  ").unwrap(), json!(false));
    assert_eq!(read("ja").unwrap(), json!(true), "the words still count");
    let error = read("✓").unwrap_err();
    assert!(
        error.message.contains("with --bool-x, x is true"),
        "{error}"
    );
}

// --- dates ---

#[test]
fn date_must_be_a_real_calendar_day_in_iso_form() {
    let date = field(FieldType::Date);
    assert_eq!(ok(&date, "2024-02-29"), json!("2024-02-29"));
    assert_eq!(ok(&date, "2000-02-29"), json!("2000-02-29"));
    assert_eq!(ok(&date, "0001-01-01"), json!("0001-01-01"));
    assert_eq!(ok(&date, "9999-12-31"), json!("9999-12-31"));
    for raw in [
        "2023-02-29",
        "1900-02-29",
        "2024-04-31",
        "2024-13-01",
        "2024-00-10",
        "0000-01-01",
    ] {
        assert!(
            bad(&date, raw).message.contains("not a calendar date"),
            "{raw}"
        );
    }
    for raw in [
        "2024-1-05",
        "05/01/2024",
        "2024/01/05",
        "20240105",
        "2024-01-05 ",
        "+2024-01-05",
    ] {
        assert!(bad(&date, raw).message.contains("yyyy-MM-dd"), "{raw}");
    }
    assert!(bad(&date, "2024-01-05T10:00:00Z")
        .message
        .contains("no time of day"));
}

#[test]
fn datetime_keeps_the_given_offset_in_canonical_form() {
    let datetime = field(FieldType::DateTime);
    let cases = [
        ("2021-05-12T07:26:48+00:00", "2021-05-12T07:26:48+00:00"),
        ("2021-05-12T07:26:48Z", "2021-05-12T07:26:48+00:00"),
        ("2021-05-12T07:26Z", "2021-05-12T07:26:00+00:00"),
        ("2021-05-12T07:26:48+05:30", "2021-05-12T07:26:48+05:30"),
        ("2021-05-12T23:59:59-08:00", "2021-05-12T23:59:59-08:00"),
        ("2021-05-12T00:00-00:00", "2021-05-12T00:00:00+00:00"),
        ("2024-02-29T12:00:00+14:00", "2024-02-29T12:00:00+14:00"),
    ];
    for (raw, expected) in cases {
        assert_eq!(ok(&datetime, raw), json!(expected), "{raw}");
    }
}

#[test]
fn datetime_rejects_what_it_would_have_to_guess() {
    let datetime = field(FieldType::DateTime);
    let cases = [
        ("2021-05-12T07:26:48", "explicit offset"),
        ("2021-05-12T07:26:48.123Z", "fractional seconds"),
        ("2021-05-12T07:26:48,5+01:00", "fractional seconds"),
        ("2021-05-12 07:26:48Z", "'T'"),
        ("2021-05-12", "time of day is missing"),
        ("2023-02-29T10:00:00Z", "not a calendar date"),
        ("2021-05-12T24:00:00Z", "not a time of day"),
        ("2021-05-12T10:60:00Z", "not a time of day"),
        ("2021-05-12T10:00:60Z", "not a time of day"),
        ("2021-05-12T10:00:00+0100", "offset"),
        ("2021-05-12T10:00:00+01", "offset"),
        ("2021-05-12T10:00:00+15:00", "offset"),
        ("2021-05-12T10:00:00+01:60", "offset"),
        ("2021-05-12T10:00:00z", "offset"),
        ("2021-05-12T10:00:00Z ", "offset"),
        ("2021-05-12T1:00:00Z", "yyyy-MM-dd"),
        ("12.05.2021 10:00", "yyyy-MM-dd"),
    ];
    for (raw, problem) in cases {
        let error = bad(&datetime, raw);
        assert!(error.message.contains(problem), "{raw:?}: {error}");
        assert!(error.expected.starts_with("datetime"), "{raw:?}");
    }
}

#[test]
fn datetime_without_offset_is_read_in_the_given_zone() {
    let datetime = field(FieldType::DateTime);
    let berlin = in_zone("Europe/Berlin");
    let read = |raw: &str, opts: &CoerceOptions| coerce(&datetime, raw, opts);
    assert_eq!(
        read("2024-01-15T10:00", &berlin).unwrap(),
        json!("2024-01-15T10:00:00+01:00")
    );
    assert_eq!(
        read("2024-07-15T10:00:30", &berlin).unwrap(),
        json!("2024-07-15T10:00:30+02:00")
    );
    // An explicit offset wins over the zone.
    assert_eq!(
        read("2024-07-15T10:00Z", &berlin).unwrap(),
        json!("2024-07-15T10:00:00+00:00")
    );
    assert_eq!(
        read("2024-07-15T10:00", &in_zone("+05:30")).unwrap(),
        json!("2024-07-15T10:00:00+05:30")
    );
    assert_eq!(
        read("2024-07-15T10:00", &in_zone("UTC")).unwrap(),
        json!("2024-07-15T10:00:00+00:00")
    );
    assert_eq!(
        read("2024-07-15T10:00", &in_zone("America/New_York")).unwrap(),
        json!("2024-07-15T10:00:00-04:00")
    );
}

#[test]
fn datetime_in_a_dst_gap_or_overlap_names_both_readings() {
    let datetime = field(FieldType::DateTime);
    let cases = [
        (
            "Europe/Berlin",
            "2024-03-31T02:30",
            "does not exist",
            "2024-03-31T02:30:00+01:00 or 2024-03-31T02:30:00+02:00",
        ),
        (
            "Europe/Berlin",
            "2024-10-27T02:30:00",
            "happens twice",
            "2024-10-27T02:30:00+02:00 or 2024-10-27T02:30:00+01:00",
        ),
        (
            "America/New_York",
            "2024-03-10T02:15",
            "does not exist",
            "2024-03-10T02:15:00-05:00 or 2024-03-10T02:15:00-04:00",
        ),
        (
            "America/New_York",
            "2024-11-03T01:30",
            "happens twice",
            "2024-11-03T01:30:00-04:00 or 2024-11-03T01:30:00-05:00",
        ),
    ];
    for (zone, raw, problem, readings) in cases {
        let error = coerce(&datetime, raw, &in_zone(zone)).unwrap_err();
        assert!(error.message.contains(problem), "{zone} {raw}: {error}");
        assert!(error.message.contains(readings), "{zone} {raw}: {error}");
        assert!(error.message.contains(zone), "{zone} {raw}: {error}");
    }
    // Just outside the gap and the overlap the reading is unique.
    let berlin = in_zone("Europe/Berlin");
    assert_eq!(
        coerce(&datetime, "2024-03-31T03:00", &berlin).unwrap(),
        json!("2024-03-31T03:00:00+02:00")
    );
    assert_eq!(
        coerce(&datetime, "2024-10-27T03:00", &berlin).unwrap(),
        json!("2024-10-27T03:00:00+01:00")
    );
}

#[test]
fn datetime_in_a_zone_offset_that_is_not_whole_minutes_is_an_error() {
    // Berlin kept local mean time, +00:53:28, until 1893.
    let error = coerce(
        &field(FieldType::DateTime),
        "1880-01-01T12:00",
        &in_zone("Europe/Berlin"),
    )
    .unwrap_err();
    assert!(error.message.contains("+00:53:28"), "{error}");
}

#[test]
fn timezones_parse_from_iana_names_utc_and_offsets() {
    let parse = |name: &str| CoerceOptions::parse_timezone(name);
    assert_eq!(parse("Europe/Berlin").unwrap().to_string(), "Europe/Berlin");
    assert_eq!(parse("europe/berlin").unwrap().to_string(), "Europe/Berlin");
    assert_eq!(parse("UTC").unwrap().to_string(), "+00:00");
    assert_eq!(parse("Z").unwrap().to_string(), "+00:00");
    assert_eq!(parse("+05:30").unwrap().to_string(), "+05:30");
    assert_eq!(parse("-08:00").unwrap().to_string(), "-08:00");
    assert_eq!(parse("+09").unwrap().to_string(), "+09:00");
    for name in ["Mars/Olympus", "", "+5:30", "+25:00", "0530", "CEST+1"] {
        assert!(
            matches!(parse(name), Err(FieldsError::UnknownTimezone(_))),
            "{name:?}"
        );
    }
}

// --- lookups ---

#[test]
fn lookups_take_digit_ids() {
    for data_type in [FieldType::Lookup, FieldType::OwnerLookup] {
        let lookup = field(data_type);
        assert_eq!(
            ok(&lookup, "4150868000000225013"),
            json!({"id": "4150868000000225013"})
        );
        for raw in ["", "abc", "123 ", "-1", "12.0", "4150868000000225013x"] {
            bad(&lookup, raw);
        }
    }
}

#[test]
fn error_display_is_the_message() {
    let error = bad(&field(FieldType::Integer), "1,000");
    assert_eq!(error.to_string(), error.message);
    assert!(error.message.starts_with("\"1,000\""), "{error}");
}

// --- properties ---

fn any_field_type() -> impl Strategy<Value = FieldType> {
    prop_oneof![
        proptest::sample::select(ALL_TYPES.to_vec()),
        Just(FieldType::Other("formula".into())),
    ]
}

/// Strings biased toward the shapes the parsers look at, plus arbitrary text.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[-+0-9.,eE:TZ ]{0,30}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?([.][0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?",
    ]
}

proptest! {
    #[test]
    fn coerce_never_panics(data_type in any_field_type(), raw in cell(), zone in 0..3usize) {
        let meta = FieldMeta {
            length: Some(10),
            decimal_places: Some(2),
            pick_list_values: vec!["A".into(), "b".into()],
            ..field(data_type.clone())
        };
        let opts = [
            CoerceOptions::default(),
            in_zone("Europe/Berlin"),
            in_zone("-03:30"),
        ][zone]
        .clone();
        for meta in [&meta, &field(data_type)] {
            let first = coerce(meta, &raw, &opts);
            // Grouping relies on the same cell always giving the same JSON.
            prop_assert_eq!(first, coerce(meta, &raw, &opts));
        }
    }

    #[test]
    fn integer_round_trips(value in -999_999_999i32..=999_999_999) {
        let json = ok(&field(FieldType::Integer), &value.to_string());
        prop_assert_eq!(json, json!(value));
    }

    #[test]
    fn date_round_trips(days in 0i64..3_652_059) {
        let date = chrono::NaiveDate::from_ymd_opt(1, 1, 1).unwrap() + chrono::TimeDelta::days(days);
        let text = date.format("%Y-%m-%d").to_string();
        prop_assert_eq!(ok(&field(FieldType::Date), &text), json!(text));
    }

    #[test]
    fn numbers_round_trip_through_json(whole in -999_999_999i64..=999_999_999, cents in 0u32..100) {
        let text = format!("{whole}.{cents:02}");
        let json = ok(&field(FieldType::Currency), &text);
        let parsed: f64 = text.parse().unwrap();
        prop_assert_eq!(json.as_f64().unwrap(), parsed);
        prop_assert_eq!(json.to_string().parse::<f64>().unwrap(), parsed);
    }
}

// ---- spreadsheets: decimal commas, locale dates, labels ----

fn comma() -> CoerceOptions {
    CoerceOptions {
        decimal_comma: true,
        ..CoerceOptions::default()
    }
}

#[test]
fn decimal_commas_are_read_with_the_flag() {
    let currency = field(FieldType::Currency);
    let read = |meta: &FieldMeta, raw: &str| coerce(meta, raw, &comma());
    for (raw, value) in [
        ("1250,50", json!(1250.5)),
        ("1.250,50", json!(1250.5)),
        ("1 250,50", json!(1250.5)),
        ("1\u{a0}250,50", json!(1250.5)),
        ("1\u{202f}250,5", json!(1250.5)),
        ("-1.234.567,25", json!(-1234567.25)),
        ("1.250", json!(1250)),
        ("12,00", json!(12)),
        ("12", json!(12)),
    ] {
        assert_eq!(read(&currency, raw).unwrap(), value, "{raw:?}");
    }
    assert_eq!(
        read(&field(FieldType::Integer), "1.250").unwrap(),
        json!(1250)
    );
    assert_eq!(
        read(&field(FieldType::BigInt), "123.456.789.012").unwrap(),
        json!("123456789012")
    );
    for bad in ["12.5", "1.25,5", "1,2,3", "1.250 000,5", ",5", "1.2345,6"] {
        let error = read(&currency, bad).unwrap_err();
        assert!(
            error
                .message
                .starts_with(&format!("{bad:?} is not a number")),
            "{bad:?}: {error}"
        );
    }
    // Messages quote the cell as written, not as normalised.
    let error = read(&field(FieldType::Integer), "1.250,5").unwrap_err();
    assert!(error.message.starts_with("\"1.250,5\""), "{error}");
    let limited = FieldMeta {
        decimal_places: Some(2),
        ..currency.clone()
    };
    let error = read(&limited, "1,125").unwrap_err();
    assert!(error.message.contains("3 decimal places"), "{error}");
}

#[test]
fn without_the_flag_a_decimal_comma_is_refused_naming_the_flag() {
    for raw in ["1250,50", "1.250,5", "-3,75"] {
        let error = bad(&field(FieldType::Double), raw);
        assert!(
            error.message.contains("--decimal-comma"),
            "{raw:?}: {error}"
        );
    }
    let error = bad(&field(FieldType::Double), "1,250");
    assert!(error.message.contains("thousands separators"), "{error}");
    assert!(!error.message.contains("--decimal-comma"), "{error}");
}

fn dates(date: Option<&str>, datetime: Option<&str>, zone: Option<&str>) -> CoerceOptions {
    CoerceOptions {
        date_format: date.map(|f| DateFormat::date(f).expect("a good format")),
        datetime_format: datetime.map(|f| DateFormat::datetime(f).expect("a good format")),
        timezone: zone.map(|z| CoerceOptions::parse_timezone(z).unwrap()),
        ..CoerceOptions::default()
    }
}

#[test]
fn dates_are_read_in_the_given_format() {
    let date = field(FieldType::Date);
    let german = dates(Some("%d.%m.%Y"), None, None);
    assert_eq!(
        coerce(&date, "29.11.2026", &german).unwrap(),
        json!("2026-11-29")
    );
    assert_eq!(
        coerce(&date, "1.2.2026", &german).unwrap(),
        json!("2026-02-01")
    );
    // yyyy-MM-dd cannot be misread, so it is still taken.
    assert_eq!(
        coerce(&date, "2026-11-29", &german).unwrap(),
        json!("2026-11-29")
    );
    let us = dates(Some("%m/%d/%Y"), None, None);
    assert_eq!(
        coerce(&date, "11/29/2026", &us).unwrap(),
        json!("2026-11-29")
    );
    for (raw, problem) in [
        ("31.02.2026", "not a calendar date"),
        ("29/11/2026", "does not match"),
        ("29.11.26", "the year 26"),
        ("29.11.2026 10:00", "text after the date"),
    ] {
        let error = coerce(&date, raw, &german).unwrap_err();
        assert!(error.message.contains(problem), "{raw:?}: {error}");
        assert!(
            error.message.contains("%d.%m.%Y (--date-format)") || problem == "the year 26",
            "{error}"
        );
    }
}

#[test]
fn a_local_date_without_the_flag_names_the_format_and_never_guesses() {
    let date = field(FieldType::Date);
    let message = |raw: &str| bad(&date, raw).message;
    assert!(
        message("11/29/2026").contains("--date-format %m/%d/%Y"),
        "{}",
        message("11/29/2026")
    );
    assert!(!message("11/29/2026").contains("%d/%m/%Y"));
    assert!(message("29.11.2026").contains("--date-format %d.%m.%Y"));
    let both = message("05/06/2026");
    assert!(
        both.contains("%d/%m/%Y") && both.contains("%m/%d/%Y") && both.contains("does not guess"),
        "{both}"
    );
    let datetime = field(FieldType::DateTime);
    let error = bad(&datetime, "29.11.2026 14:30");
    assert!(
        error
            .message
            .contains("--datetime-format \"%d.%m.%Y %H:%M\""),
        "{error}"
    );
}

#[test]
fn datetimes_are_read_in_the_given_format_and_zone() {
    let datetime = field(FieldType::DateTime);
    let berlin = dates(None, Some("%d.%m.%Y %H:%M"), Some("Europe/Berlin"));
    assert_eq!(
        coerce(&datetime, "29.11.2026 14:30", &berlin).unwrap(),
        json!("2026-11-29T14:30:00+01:00")
    );
    assert_eq!(
        coerce(&datetime, "2026-07-01T08:00:00Z", &berlin).unwrap(),
        json!("2026-07-01T08:00:00+00:00")
    );
    let error = coerce(&datetime, "29.03.2026 02:30", &berlin).unwrap_err();
    assert!(error.message.contains("does not exist"), "{error}");
    let no_zone = dates(None, Some("%d.%m.%Y %H:%M"), None);
    let error = coerce(&datetime, "29.11.2026 14:30", &no_zone).unwrap_err();
    assert!(error.message.contains("--timezone"), "{error}");
    let with_offset = dates(None, Some("%m/%d/%Y %I:%M %p %z"), None);
    assert_eq!(
        coerce(&datetime, "11/29/2026 02:30 PM -0500", &with_offset).unwrap(),
        json!("2026-11-29T14:30:00-05:00")
    );
    let error = coerce(&datetime, "11/29/2026 14:30", &with_offset).unwrap_err();
    assert!(error.message.contains("(--datetime-format)"), "{error}");
}

#[test]
fn formats_that_cannot_read_a_whole_value_are_refused() {
    assert!(DateFormat::date("%d.%m.%Y").is_ok());
    assert!(DateFormat::date("%Y%m%d").is_ok());
    for bad in ["%d.%m", "%m/%Y", "%d.%q.%Y", "", "%d.%m.%Y %H:%M"] {
        assert!(DateFormat::date(bad).is_err(), "{bad:?}");
    }
    assert!(DateFormat::datetime("%d.%m.%Y %H:%M").is_ok());
    assert!(DateFormat::datetime("%d/%m/%Y %H:%M:%S%:z").is_ok());
    for bad in ["%d.%m.%Y", "%d.%m.%Y %H", "%d.%m.%Y %H:%M %Z", "%H:%M"] {
        assert!(DateFormat::datetime(bad).is_err(), "{bad:?}");
    }
}

fn labelled() -> ModuleFields {
    let mut fields = ModuleFields::new();
    for (api, label) in [
        ("Lead_Status", "Lead Status"),
        ("No_of_Employees", "No. of Employees"),
        ("Owner", "Lead Owner"),
        ("Status", "Stage"),
        ("Stage_2", "Status"),
        ("Region", "Area"),
        ("Area_2", "Area"),
    ] {
        fields.insert(FieldMeta {
            label: Some(label.into()),
            ..FieldMeta::new(api, FieldType::Text)
        });
    }
    fields
}

#[test]
fn columns_are_matched_by_api_name_or_label_loosely() {
    let fields = labelled();
    let api = |m: ColumnMatch<'_>| match m {
        ColumnMatch::ApiName(meta) => format!("exact {}", meta.api_name),
        ColumnMatch::Loose(meta) => format!("loose {}", meta.api_name),
        other => format!("{other:?}"),
    };
    assert_eq!(api(fields.match_column("Lead_Status")), "exact Lead_Status");
    assert_eq!(api(fields.match_column("Lead Status")), "loose Lead_Status");
    assert_eq!(api(fields.match_column("lead_status")), "loose Lead_Status");
    assert_eq!(
        api(fields.match_column("NO. OF EMPLOYEES")),
        "loose No_of_Employees"
    );
    assert_eq!(api(fields.match_column("Lead Owner")), "loose Owner");
    // The exact API name wins over another field's label.
    assert_eq!(api(fields.match_column("Status")), "exact Status");
    // Loosely, "status" is Status's API name and Stage_2's label: refused, both named.
    assert_eq!(
        fields.match_column("status"),
        ColumnMatch::Ambiguous(vec!["Status".into(), "Stage_2".into()])
    );
    // Two fields share a label.
    assert_eq!(
        fields.match_column("Area"),
        ColumnMatch::Ambiguous(vec!["Region".into(), "Area_2".into()])
    );
    assert_eq!(
        fields.match_column("Lead Statsu"),
        ColumnMatch::Unknown(Some("Lead_Status".into()))
    );
    assert_eq!(
        fields.match_column("Completely Else"),
        ColumnMatch::Unknown(None)
    );
}

#[test]
fn labels_are_read_from_zoho_metadata() {
    assert_eq!(
        leads().get("Owner").unwrap().label.as_deref(),
        Some("Lead Owner")
    );
    assert_eq!(leads().get("Company").unwrap().label, None);
}
