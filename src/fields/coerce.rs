//! Coercion of one raw CSV cell into the JSON value Zoho expects for the field's type.
//!
//! It runs once per non-empty cell, millions of times on a large file, so parsing is done by
//! hand over bytes and the success path allocates nothing beyond the returned value. The
//! same raw value always gives the same JSON, because rows are grouped by their JSON values.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::format::{Fixed, Item, Numeric, ParseErrorKind, StrftimeItems};
use chrono::{
    DateTime, FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Timelike,
};
use serde_json::{Map, Number, Value};

use super::{FieldMeta, FieldType, FieldsError};

/// Zoho joins multi-select values with ';' in its own exports, and ',' often appears inside
/// the values themselves.
pub const DEFAULT_MULTISELECT_SEPARATOR: char = ';';

/// ZOHO_API.md: single-line text holds at most 255 characters; used when metadata gives no
/// length.
const DEFAULT_TEXT_LENGTH: usize = 255;
/// ZOHO_API.md: integer fields hold at most 9 digits.
const MAX_INTEGER_DIGITS: usize = 9;
/// ZOHO_API.md: bigint fields hold at most 18 digits (sent as a string).
const MAX_BIGINT_DIGITS: usize = 18;
/// An f64 carries any decimal of at most 15 significant digits exactly (DBL_DIG); a longer
/// one would reach Zoho as a different number.
const MAX_NUMBER_SIGNIFICANT_DIGITS: usize = 15;
/// Real UTC offsets lie within -12:00..+14:00; a larger one in a cell is a typo.
const MAX_OFFSET_MINUTES: u32 = 14 * 60;
/// Messages quote the value; a paragraph pasted into a cell should not flood the report.
const MAX_SHOWN_VALUE_CHARS: usize = 60;
/// Enough allowed picklist values to spot the intended one without listing hundreds.
const MAX_LISTED_ALLOWED_VALUES: usize = 5;

/// A value that cannot be sent for a field: what the field takes, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoerceError {
    /// What the field accepts, e.g. "integer (at most 9 digits)".
    pub expected: String,
    /// A short message naming the problem and the (possibly shortened) value.
    pub message: String,
}

impl fmt::Display for CoerceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CoerceError {}

fn error(expected: impl Into<String>, message: String) -> CoerceError {
    CoerceError {
        expected: expected.into(),
        message,
    }
}

/// The value quoted for a message, cut to [`MAX_SHOWN_VALUE_CHARS`] characters.
fn shown(raw: &str) -> String {
    match raw.char_indices().nth(MAX_SHOWN_VALUE_CHARS) {
        None => format!("{raw:?}"),
        Some((cut, _)) => format!("{:?}... ({} characters)", &raw[..cut], raw.chars().count()),
    }
}

/// The zone a datetime without an offset is read in (`--timezone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timezone {
    /// A fixed offset such as +05:30 (UTC is +00:00): no DST, every local time exists once.
    Fixed(FixedOffset),
    /// An IANA zone such as Europe/Berlin, with its DST rules.
    Named(chrono_tz::Tz),
}

impl FromStr for Timezone {
    type Err = FieldsError;

    /// IANA names (Europe/Berlin; ASCII case is forgiven), `UTC` or `Z`, and fixed offsets
    /// `±hh:mm` or `±hh`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let unknown = || FieldsError::UnknownTimezone(name.to_owned());
        if name.eq_ignore_ascii_case("utc") || name == "Z" {
            return Ok(Timezone::Fixed(
                FixedOffset::east_opt(0).expect("zero offset"),
            ));
        }
        if name.starts_with(['+', '-']) {
            let minutes = match name.len() {
                3 => parse_offset_minutes(&format!("{name}:00")),
                _ => parse_offset_minutes(name),
            };
            return minutes
                .and_then(|minutes| FixedOffset::east_opt(minutes * 60))
                .map(Timezone::Fixed)
                .ok_or_else(unknown);
        }
        if let Ok(zone) = name.parse::<chrono_tz::Tz>() {
            return Ok(Timezone::Named(zone));
        }
        chrono_tz::TZ_VARIANTS
            .iter()
            .find(|zone| zone.name().eq_ignore_ascii_case(name))
            .map(|zone| Timezone::Named(*zone))
            .ok_or_else(unknown)
    }
}

impl fmt::Display for Timezone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timezone::Fixed(offset) => f.write_str(&offset_text(offset.local_minus_utc())),
            Timezone::Named(zone) => f.write_str(zone.name()),
        }
    }
}

/// Settings that change how cells are read, fixed for a whole run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoerceOptions {
    /// The zone for datetimes written without an offset; `None` makes those an error.
    pub timezone: Option<Timezone>,
    /// Separator between the values of a multi-select picklist cell.
    pub multiselect_separator: char,
    /// Numbers are written with a decimal comma, and '.' or a space (NBSP too) between
    /// thousands, as much of Europe writes them (`--decimal-comma`).
    pub decimal_comma: bool,
    /// How date cells are written (`--date-format`); `None`: yyyy-MM-dd only.
    pub date_format: Option<DateFormat>,
    /// How datetime cells are written (`--datetime-format`); `None`: ISO 8601 only.
    pub datetime_format: Option<DateFormat>,
    /// Boolean columns are checkbox columns (`--bool-x`): `x` is true and an empty cell
    /// false (the caller hands empty boolean cells over instead of leaving them unchanged).
    pub bool_x: bool,
}

impl Default for CoerceOptions {
    fn default() -> Self {
        CoerceOptions {
            timezone: None,
            multiselect_separator: DEFAULT_MULTISELECT_SEPARATOR,
            decimal_comma: false,
            date_format: None,
            datetime_format: None,
            bool_x: false,
        }
    }
}

/// A strftime-like format (chrono's: `%d.%m.%Y`, `%m/%d/%Y %I:%M %p`, ...) for dates or
/// datetimes as a locale writes them. Checked once when flags are resolved: a format that
/// does not name every part of the value would make chrono refuse every cell, or worse,
/// read a value the user did not mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateFormat {
    text: String,
    /// It reads an offset (`%z`, `%:z`): such datetimes need no `--timezone`.
    has_offset: bool,
}

/// A day whose day and month cannot be mistaken for each other (29 > 12), at a time whose
/// hour, minute and second differ: a format that reads it back whole names every part.
fn sample_datetime() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 29)
        .and_then(|d| d.and_hms_opt(13, 45, 56))
        .expect("a real date")
}

impl DateFormat {
    /// A format for date cells: day, month and year, no time of day.
    pub fn date(text: &str) -> Result<DateFormat, String> {
        let items = Self::items(text)?;
        if items.iter().any(is_time_item) {
            return Err(
                "a date format takes no time of day (%H, %M, %S, ...); datetimes have --datetime-format".into(),
            );
        }
        let sample = sample_datetime().date();
        let written = format_with(&sample.format_with_items(items.iter()))?;
        match NaiveDate::parse_from_str(&written, text) {
            Ok(read) if read == sample => Ok(DateFormat {
                text: text.to_string(),
                has_offset: false,
            }),
            _ => Err(format!(
                "it does not name the day, the month and the year (2026-11-29 would be written {written:?}); e.g. %d.%m.%Y or %m/%d/%Y"
            )),
        }
    }

    /// A format for datetime cells: a date and at least hours and minutes; with `%z` or
    /// `%:z` it reads the offset too.
    pub fn datetime(text: &str) -> Result<DateFormat, String> {
        let items = Self::items(text)?;
        let has_offset = items.iter().any(|item| {
            matches!(
                item,
                Item::Fixed(
                    Fixed::TimezoneOffset
                        | Fixed::TimezoneOffsetColon
                        | Fixed::TimezoneOffsetColonZ
                        | Fixed::TimezoneOffsetZ
                        | Fixed::TimezoneOffsetDoubleColon
                        | Fixed::TimezoneOffsetTripleColon
                )
            )
        });
        if items
            .iter()
            .any(|item| matches!(item, Item::Fixed(Fixed::TimezoneName)))
        {
            return Err(
                "%Z (a zone name) cannot be read back; use %z for an offset such as +0100, or --timezone".into(),
            );
        }
        let sample = sample_datetime();
        let offset = FixedOffset::east_opt(3600).expect("one hour");
        let read = if has_offset {
            let sample = offset.from_local_datetime(&sample).unwrap();
            let written = format_with(&sample.format_with_items(items.iter()))?;
            DateTime::parse_from_str(&written, text).map(|d| (d.naive_local(), written))
        } else {
            let written = format_with(&sample.format_with_items(items.iter()))?;
            NaiveDateTime::parse_from_str(&written, text).map(|d| (d, written))
        };
        let whole = |d: NaiveDateTime| {
            d.date() == sample.date() && d.hour() == sample.hour() && d.minute() == sample.minute()
        };
        match read {
            Ok((read, _)) if whole(read) => Ok(DateFormat {
                text: text.to_string(),
                has_offset,
            }),
            _ => Err(
                "it does not name the day, the month, the year, the hour and the minute; e.g. \"%d.%m.%Y %H:%M\" or \"%m/%d/%Y %I:%M %p\"".into(),
            ),
        }
    }

    /// The format as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn items(text: &str) -> Result<Vec<Item<'_>>, String> {
        let items: Vec<Item<'_>> = StrftimeItems::new(text).collect();
        if items.iter().any(|item| matches!(item, Item::Error)) {
            return Err(
                "not a format massup can read: use strftime specifiers such as %d, %m, %Y, %y, %H, %M, %S, %p, %z (and %% for a percent sign)".into(),
            );
        }
        if items.is_empty() {
            return Err("the format is empty".into());
        }
        Ok(items)
    }
}

fn is_time_item(item: &Item<'_>) -> bool {
    matches!(
        item,
        Item::Numeric(
            Numeric::Hour
                | Numeric::Hour12
                | Numeric::Minute
                | Numeric::Second
                | Numeric::Nanosecond
                | Numeric::Timestamp,
            _
        ) | Item::Fixed(
            Fixed::LowerAmPm
                | Fixed::UpperAmPm
                | Fixed::Nanosecond
                | Fixed::Nanosecond3
                | Fixed::Nanosecond6
                | Fixed::Nanosecond9
                | Fixed::TimezoneOffset
                | Fixed::TimezoneOffsetColon
                | Fixed::TimezoneOffsetZ
                | Fixed::TimezoneName
        )
    )
}

/// Writes a chrono `DelayedFormat`, which fails (rather than panics) on items the value
/// cannot give.
fn format_with(delayed: &impl fmt::Display) -> Result<String, String> {
    use fmt::Write;
    let mut out = String::new();
    write!(out, "{delayed}")
        .map_err(|_| "the format asks for parts this value has not".to_string())?;
    Ok(out)
}

impl CoerceOptions {
    /// Parses a `--timezone` value; see [`Timezone::from_str`].
    pub fn parse_timezone(name: &str) -> Result<Timezone, FieldsError> {
        name.parse()
    }
}

/// The JSON value to send for one non-empty cell. The caller handles empty cells (leave
/// unchanged) and the null marker (JSON null) itself.
pub fn coerce(field: &FieldMeta, raw: &str, opts: &CoerceOptions) -> Result<Value, CoerceError> {
    match &field.data_type {
        FieldType::Text
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Website
        | FieldType::AutoNumber
        | FieldType::Other(_) => {
            check_length(raw, field.length.unwrap_or(DEFAULT_TEXT_LENGTH))?;
            Ok(Value::String(raw.to_owned()))
        }
        // Multi-line fields are long by design; only a length from metadata limits them.
        FieldType::TextArea => {
            if let Some(limit) = field.length {
                check_length(raw, limit)?;
            }
            Ok(Value::String(raw.to_owned()))
        }
        FieldType::Picklist => {
            if field.pick_list_values.is_empty() {
                check_length(raw, field.length.unwrap_or(DEFAULT_TEXT_LENGTH))?;
            } else {
                check_allowed(field, raw, raw)?;
            }
            Ok(Value::String(raw.to_owned()))
        }
        FieldType::MultiSelect => coerce_multiselect(field, raw, opts.multiselect_separator),
        FieldType::Integer => with_decimal_point(raw, opts, coerce_integer),
        FieldType::BigInt => with_decimal_point(raw, opts, coerce_bigint),
        FieldType::Double | FieldType::Currency | FieldType::Percent | FieldType::Decimal => {
            with_decimal_point(raw, opts, |text| coerce_number(text, field.decimal_places))
        }
        FieldType::Boolean => coerce_boolean(raw, opts.bool_x),
        FieldType::Date => match &opts.date_format {
            Some(format) => coerce_date_in(raw, format),
            None => {
                parse_date(raw)?;
                Ok(Value::String(raw.to_owned()))
            }
        },
        FieldType::DateTime => match &opts.datetime_format {
            Some(format) => coerce_datetime_in(raw, format, opts.timezone),
            None => coerce_datetime(raw, opts.timezone),
        },
        FieldType::Lookup | FieldType::OwnerLookup => coerce_lookup(raw),
        FieldType::Json => coerce_json(raw),
    }
}

/// A value written as the JSON Zoho answered it (what `undo` writes back): sent as it is,
/// except that a lookup object keeps only its id.
fn coerce_json(raw: &str) -> Result<Value, CoerceError> {
    let value: Value = serde_json::from_str(raw)
        .map_err(|e| error("a JSON value", format!("{raw:?} is not JSON: {e}")))?;
    Ok(match value {
        Value::Object(map) if map.contains_key("id") => {
            serde_json::json!({ "id": map["id"].clone() })
        }
        other => other,
    })
}

/// Zoho counts characters, not bytes. The byte length bounds the character count, so most
/// values are accepted without counting.
fn check_length(raw: &str, limit: usize) -> Result<(), CoerceError> {
    if raw.len() <= limit {
        return Ok(());
    }
    let chars = raw.chars().count();
    if chars <= limit {
        return Ok(());
    }
    Err(error(
        format!("text of at most {limit} characters"),
        format!(
            "{} is {chars} characters long; the field holds at most {limit}",
            shown(raw)
        ),
    ))
}

/// `value` must be one of the picklist's actual values, exactly (Zoho matches them
/// case-sensitively). `raw` is the whole cell, quoted when a multi-select item fails.
fn check_allowed(field: &FieldMeta, value: &str, raw: &str) -> Result<(), CoerceError> {
    if field
        .pick_list_values
        .iter()
        .any(|allowed| allowed == value)
    {
        return Ok(());
    }
    let mut message = if value == raw {
        format!("{} is not a value of this picklist", shown(value))
    } else {
        format!(
            "{} (in {}) is not a value of this picklist",
            shown(value),
            shown(raw)
        )
    };
    if let Some(close) = field
        .pick_list_values
        .iter()
        .find(|allowed| allowed.to_lowercase() == value.to_lowercase())
    {
        message.push_str(&format!(
            " (values are case-sensitive: did you mean {close:?}?)"
        ));
    }
    let listed: Vec<String> = field
        .pick_list_values
        .iter()
        .take(MAX_LISTED_ALLOWED_VALUES)
        .map(|allowed| format!("{allowed:?}"))
        .collect();
    message.push_str("; allowed: ");
    message.push_str(&listed.join(", "));
    let more = field.pick_list_values.len().saturating_sub(listed.len());
    if more > 0 {
        message.push_str(&format!(" and {more} more"));
    }
    Err(error("one of the picklist's values", message))
}

fn coerce_multiselect(field: &FieldMeta, raw: &str, separator: char) -> Result<Value, CoerceError> {
    let mut items = Vec::new();
    for item in raw.split(separator).map(str::trim) {
        if item.is_empty() {
            continue;
        }
        if !field.pick_list_values.is_empty() {
            check_allowed(field, item, raw)?;
        }
        items.push(Value::String(item.to_owned()));
    }
    if items.is_empty() {
        // An empty array would clear or append nothing depending on over_write: the cell
        // says neither, so it is not sent. Clearing is the null marker's job.
        return Err(error(
            format!("values separated by {separator:?}"),
            format!(
                "{} holds no value between its separators; use the null marker to clear the field",
                shown(raw)
            ),
        ));
    }
    Ok(Value::Array(items))
}

/// Splits an optional leading sign off.
fn split_sign(raw: &str) -> (bool, &str) {
    match raw.as_bytes().first() {
        Some(b'-') => (true, &raw[1..]),
        Some(b'+') => (false, &raw[1..]),
        _ => (false, raw),
    }
}

fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// Why a cell is not a plain decimal number, for the message.
fn number_problem(raw: &str) -> &'static str {
    if raw.trim() != raw {
        "it has leading or trailing spaces"
    } else if looks_like_decimal_comma(raw) {
        "decimal commas are not accepted; pass --decimal-comma if the file writes 1250,50 for 1250.50"
    } else if raw.contains(',') {
        "thousands separators are not accepted"
    } else if raw.contains(['e', 'E']) && raw.bytes().any(|byte| byte.is_ascii_digit()) {
        "exponents are not accepted; write the number out"
    } else if raw.contains(['%', '$', '€', '£']) {
        "write the number without a currency or percent sign"
    } else {
        "it is not a plain decimal number"
    }
}

/// `1250,50`, `-1.250,5`, `1 250,50`: digits, then a comma and 1 or 2 digits, or a comma
/// after dot- or space-grouped thousands. A US `1,250` (three digits after the comma)
/// is not taken for one: it reads as a thousands separator.
fn looks_like_decimal_comma(raw: &str) -> bool {
    let (_, unsigned) = split_sign(raw);
    let Some((whole, fraction)) = unsigned.rsplit_once(',') else {
        return false;
    };
    let grouped = whole.contains(['.', ' ', '\u{a0}', '\u{202f}']);
    !whole.is_empty()
        && all_digits(fraction)
        && (fraction.len() < 3 || grouped)
        && whole
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | ' ' | '\u{a0}' | '\u{202f}'))
}

/// Separators between groups of thousands with `--decimal-comma`: the dot, and the spaces
/// Excel and LibreOffice write (a plain space, a no-break space, a narrow no-break space).
const DECIMAL_COMMA_GROUPING: [char; 4] = ['.', ' ', '\u{a0}', '\u{202f}'];

/// A number written with a decimal comma, as `[-]digits[.digits]` for the plain readers:
/// `1.250,50` and `1 250,50` become `1250.50`. Thousands separators must be one kind and
/// split the whole part into groups of three, so `12.5` (a decimal point in a
/// decimal-comma file) is refused rather than read as 125. A cell with neither a comma nor
/// a separator is returned as it is, with no allocation.
fn decimal_comma_to_point(raw: &str) -> Result<Cow<'_, str>, &'static str> {
    if !raw.contains(',') && !raw.contains(DECIMAL_COMMA_GROUPING) {
        return Ok(Cow::Borrowed(raw));
    }
    let (negative, unsigned) = split_sign(raw);
    let (whole, fraction) = match unsigned.split_once(',') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    if fraction.is_some_and(|f| f.contains(',')) {
        return Err("it has more than one decimal comma");
    }
    let separator = whole.chars().find(|c| DECIMAL_COMMA_GROUPING.contains(c));
    let mut digits = String::with_capacity(raw.len());
    if negative {
        digits.push('-');
    }
    match separator {
        None => digits.push_str(whole),
        Some(separator) => {
            let mut groups = whole.split(separator);
            let first = groups.next().unwrap_or_default();
            if first.is_empty() || first.len() > 3 || !all_digits(first) {
                return Err("thousands separators must split the digits into groups of three");
            }
            digits.push_str(first);
            for group in groups {
                if group.len() != 3 || !all_digits(group) {
                    return Err(if separator == '.' {
                        "with --decimal-comma a '.' separates thousands (groups of three digits); the decimal separator is ','"
                    } else {
                        "thousands separators must split the digits into groups of three"
                    });
                }
                digits.push_str(group);
            }
        }
    }
    if let Some(fraction) = fraction {
        digits.push('.');
        digits.push_str(fraction);
    }
    Ok(Cow::Owned(digits))
}

/// Reads a number cell with `read`, first turning a decimal comma into a point when the
/// run says numbers are written that way. Messages quote the cell as written.
fn with_decimal_point(
    raw: &str,
    opts: &CoerceOptions,
    read: impl Fn(&str) -> Result<Value, CoerceError>,
) -> Result<Value, CoerceError> {
    if !opts.decimal_comma {
        return read(raw);
    }
    let text = decimal_comma_to_point(raw).map_err(|problem| {
        error(
            "number written with a decimal comma (1.250,50)",
            format!("{} is not a number: {problem}", shown(raw)),
        )
    })?;
    match text {
        Cow::Borrowed(text) => read(text),
        Cow::Owned(text) => read(&text).map_err(|mut e| {
            e.message = e.message.replacen(&shown(&text), &shown(raw), 1);
            e
        }),
    }
}

/// The digits of a whole number without sign and leading zeros ("" for zero), or why not.
fn whole_number_digits<'a>(raw: &'a str, expected: &str) -> Result<(bool, &'a str), CoerceError> {
    let (negative, digits) = split_sign(raw);
    if !all_digits(digits) {
        let problem = if all_digits(&digits.replace('.', "")) && digits.contains('.') {
            "a whole number takes no decimal point"
        } else {
            number_problem(raw)
        };
        return Err(error(
            expected,
            format!("{} is not a whole number: {problem}", shown(raw)),
        ));
    }
    Ok((negative, digits.trim_start_matches('0')))
}

fn coerce_integer(raw: &str) -> Result<Value, CoerceError> {
    const EXPECTED: &str = "integer (at most 9 digits)";
    let (negative, digits) = whole_number_digits(raw, EXPECTED)?;
    if digits.len() > MAX_INTEGER_DIGITS {
        return Err(error(
            EXPECTED,
            format!(
                "{} has {} digits; an integer field holds at most {MAX_INTEGER_DIGITS}",
                shown(raw),
                digits.len()
            ),
        ));
    }
    let magnitude = digits
        .bytes()
        .fold(0i64, |value, digit| value * 10 + i64::from(digit - b'0'));
    Ok(Value::from(if negative { -magnitude } else { magnitude }))
}

/// Zoho takes bigint values as JSON strings (beyond 2^53 a JSON number loses digits in many
/// parsers). The string is canonical, without '+' or leading zeros, so "007" and "7" group
/// together.
fn coerce_bigint(raw: &str) -> Result<Value, CoerceError> {
    const EXPECTED: &str = "integer (at most 18 digits)";
    let (negative, digits) = whole_number_digits(raw, EXPECTED)?;
    if digits.len() > MAX_BIGINT_DIGITS {
        return Err(error(
            EXPECTED,
            format!(
                "{} has {} digits; a bigint field holds at most {MAX_BIGINT_DIGITS}",
                shown(raw),
                digits.len()
            ),
        ));
    }
    Ok(Value::String(match (negative, digits) {
        (_, "") => "0".to_owned(),
        (true, digits) => format!("-{digits}"),
        (false, digits) => digits.to_owned(),
    }))
}

/// Accepts `[+-]digits[.digits]` only: no exponent, no separators, no bare ".5" or "5.".
/// Whole values are sent as JSON integers ("3", "3.0" and "3.00" all become 3) and others
/// in shortest form ("12.50" becomes 12.5), so equal amounts always group together.
fn coerce_number(raw: &str, decimal_places: Option<u32>) -> Result<Value, CoerceError> {
    let expected = || match decimal_places {
        Some(places) => format!("number with at most {places} decimal places"),
        None => "number".to_owned(),
    };
    let (_, unsigned) = split_sign(raw);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (unsigned, "0"),
    };
    if !all_digits(whole) || !all_digits(fraction) {
        return Err(error(
            expected(),
            format!("{} is not a number: {}", shown(raw), number_problem(raw)),
        ));
    }
    let whole = whole.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    let significant = if whole.is_empty() {
        fraction.trim_start_matches('0').len()
    } else {
        whole.len() + fraction.len()
    };
    if significant > MAX_NUMBER_SIGNIFICANT_DIGITS {
        return Err(error(
            expected(),
            format!(
                "{} has {significant} significant digits; at most {MAX_NUMBER_SIGNIFICANT_DIGITS} reach Zoho unchanged",
                shown(raw)
            ),
        ));
    }
    if let Some(places) = decimal_places {
        if fraction.len() > places as usize {
            return Err(error(
                expected(),
                format!(
                    "{} has {} decimal places; the field keeps {places} and would round it",
                    shown(raw),
                    fraction.len()
                ),
            ));
        }
    }
    let value: f64 = raw.parse().map_err(|_| {
        error(
            expected(),
            format!("{} is not a number: {}", shown(raw), number_problem(raw)),
        )
    })?;
    if value.fract() == 0.0 {
        // At most 15 significant digits keeps this below 10^15, well inside i64; "-0" is 0.
        return Ok(Value::from(value as i64));
    }
    Number::from_f64(value)
        .map(Value::Number)
        .ok_or_else(|| error(expected(), format!("{} is not a finite number", shown(raw))))
}

/// Words for true and false in the languages sheets are kept in (English, German, French,
/// Spanish, Italian), compared trimmed and ignoring case. Each word means one thing in
/// every language listed: "no" is false in English and Spanish alike. Single letters
/// (`y`, `n`, `j`, `t`, `f`) are left out on purpose: they are as often initials or typos.
const TRUE_WORDS: [&str; 8] = ["true", "yes", "1", "ja", "wahr", "oui", "vrai", "si"];
const FALSE_WORDS: [&str; 7] = ["false", "no", "0", "nein", "falsch", "non", "faux"];

/// What a boolean cell may hold, for the message of a refused one.
const BOOLEAN_WORDS: &str =
    "true/false, yes/no, ja/nein, wahr/falsch, oui/non, vrai/faux, sí/no or 1/0 (any case)";

fn coerce_boolean(raw: &str, bool_x: bool) -> Result<Value, CoerceError> {
    let word = raw.trim();
    let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(word));
    // "sí" is the one word with a letter outside ASCII (in either case).
    let si = || matches!(word, "sí" | "Sí" | "SÍ" | "sÍ");
    if is(&TRUE_WORDS) || si() || (bool_x && word.eq_ignore_ascii_case("x")) {
        Ok(Value::Bool(true))
    } else if is(&FALSE_WORDS) || (bool_x && word.is_empty()) {
        Ok(Value::Bool(false))
    } else {
        let checkbox = if bool_x {
            "; with --bool-x, x is true and an empty cell false"
        } else {
            "; a checkbox column marked with x reads with --bool-x"
        };
        Err(error(
            BOOLEAN_WORDS,
            format!(
                "{} is not a boolean; write {BOOLEAN_WORDS}{checkbox}",
                shown(raw)
            ),
        ))
    }
}

/// The number written by exactly `digits.len()` ASCII digits.
fn fixed_digits(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |value, &digit| {
        digit
            .is_ascii_digit()
            .then(|| value * 10 + u32::from(digit - b'0'))
    })
}

const DATE_EXPECTED: &str = "date yyyy-MM-dd";

/// Why the start of a cell is not a date.
enum DateProblem {
    /// Not `yyyy-MM-dd` at all.
    Format,
    /// The right shape, but no such day (2023-02-29, 2024-13-01).
    Calendar,
}

/// Reads the first 10 bytes as `yyyy-MM-dd`, a real calendar date from year 1 on.
fn read_date(bytes: &[u8]) -> Result<NaiveDate, DateProblem> {
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return Err(DateProblem::Format);
    }
    let (Some(year), Some(month), Some(day)) = (
        fixed_digits(&bytes[0..4]),
        fixed_digits(&bytes[5..7]),
        fixed_digits(&bytes[8..10]),
    ) else {
        return Err(DateProblem::Format);
    };
    // Year 0 is a valid proleptic year for chrono but not a date anyone means.
    NaiveDate::from_ymd_opt(year as i32, month, day)
        .filter(|_| year > 0)
        .ok_or(DateProblem::Calendar)
}

fn not_a_calendar_date(raw: &str, expected: &str) -> CoerceError {
    error(expected, format!("{} is not a calendar date", shown(raw)))
}

fn parse_date(raw: &str) -> Result<NaiveDate, CoerceError> {
    let bytes = raw.as_bytes();
    let problem = match read_date(bytes) {
        Ok(date) if bytes.len() == 10 => return Ok(date),
        Ok(_) if matches!(bytes.get(10), Some(b'T' | b' ')) => {
            ": a date field takes no time of day"
        }
        Ok(_) => ": it has text after the date",
        Err(DateProblem::Calendar) => return Err(not_a_calendar_date(raw, DATE_EXPECTED)),
        Err(DateProblem::Format) => "",
    };
    let mut message = format!(
        "{} is not a date in the form yyyy-MM-dd{problem}",
        shown(raw)
    );
    if let Some(hint) = local_format_hint(raw, false) {
        message.push_str(&hint);
    }
    Err(error(DATE_EXPECTED, message))
}

/// For a cell written as a locale writes dates (`29.11.2026`, `11/29/2026 14:30`), the
/// `--date-format` or `--datetime-format` that reads it. Day-first and month-first are
/// never guessed between: when both could be meant, both are named.
fn local_format_hint(raw: &str, datetime: bool) -> Option<String> {
    let (date, time) = match raw.split_once([' ', 'T']) {
        Some((date, time)) => (date, Some(time.trim())),
        None => (raw, None),
    };
    let separator = date.chars().find(|c| matches!(c, '/' | '.' | '-'))?;
    let parts: Vec<&str> = date.split(separator).collect();
    let [a, b, c] = parts[..] else {
        return None;
    };
    if ![a, b, c].iter().all(|p| all_digits(p) && p.len() <= 4) {
        return None;
    }
    let value = |p: &str| p.parse::<u32>().unwrap_or(0);
    let year = if c.len() == 4 { "%Y" } else { "%y" };
    let s = separator;
    let dates: Vec<String> = if a.len() == 4 {
        vec![format!("%Y{s}%m{s}%d")]
    } else if c.len() != 4 && c.len() != 2 {
        return None;
    } else if value(a) > 12 {
        vec![format!("%d{s}%m{s}{year}")]
    } else if value(b) > 12 {
        vec![format!("%m{s}%d{s}{year}")]
    } else {
        vec![format!("%d{s}%m{s}{year}"), format!("%m{s}%d{s}{year}")]
    };
    let clock = match time {
        Some(time) if time.matches(':').count() >= 2 => " %H:%M:%S",
        Some(time) if time.contains(':') => " %H:%M",
        _ => "",
    };
    let (flag, clock) = if datetime && clock.is_empty() {
        ("--datetime-format", " %H:%M")
    } else if datetime || !clock.is_empty() {
        ("--datetime-format", clock)
    } else {
        ("--date-format", "")
    };
    if !datetime && !clock.is_empty() {
        return Some(format!(
            "; a date field takes no time of day (for a datetime field: {flag} \"{}{clock}\")",
            dates[0]
        ));
    }
    let quoted: Vec<String> = dates
        .iter()
        .map(|d| {
            let f = format!("{d}{clock}");
            if f.contains(' ') {
                format!("{flag} \"{f}\"")
            } else {
                format!("{flag} {f}")
            }
        })
        .collect();
    Some(match &quoted[..] {
        [one] => format!("; for dates written this way pass {one}"),
        _ => format!(
            "; for dates written this way pass {} (day first) or {} (month first): massup does not guess which",
            quoted[0], quoted[1]
        ),
    })
}

/// A date cell in the run's `--date-format` (or yyyy-MM-dd, which cannot be misread),
/// sent as yyyy-MM-dd.
fn coerce_date_in(raw: &str, format: &DateFormat) -> Result<Value, CoerceError> {
    let expected = || format!("date in the form {} (--date-format)", format.text);
    let date = match NaiveDate::parse_from_str(raw, &format.text) {
        Ok(date) => date,
        Err(e) => match parse_date(raw) {
            Ok(date) => date,
            Err(_) => {
                let problem = match e.kind() {
                    ParseErrorKind::OutOfRange | ParseErrorKind::Impossible => {
                        "it is not a calendar date"
                    }
                    ParseErrorKind::TooLong => "it has text after the date",
                    _ => "it does not match",
                };
                return Err(error(
                    expected(),
                    format!(
                        "{} is not a date in the form {} (--date-format): {problem}",
                        shown(raw),
                        format.text
                    ),
                ));
            }
        },
    };
    check_plausible_year(raw, date, expected)?;
    Ok(Value::String(date.format("%Y-%m-%d").to_string()))
}

/// `%Y` reads any number of digits, so `29.11.26` would be the year 26: a year before 1000
/// is a mistyped cell, not a date anyone keeps in a CRM.
fn check_plausible_year(
    raw: &str,
    date: NaiveDate,
    expected: impl Fn() -> String,
) -> Result<(), CoerceError> {
    use chrono::Datelike;
    if (1000..=9999).contains(&date.year()) {
        return Ok(());
    }
    Err(error(
        expected(),
        format!(
            "{} reads as the year {}; write the year with four digits (or use %y for two)",
            shown(raw),
            date.year()
        ),
    ))
}

/// A datetime cell in the run's `--datetime-format`, read in its own offset (`%z`) or in
/// `--timezone`, and sent as yyyy-MM-ddTHH:mm:ss±hh:mm; ISO 8601 cells are read as always.
fn coerce_datetime_in(
    raw: &str,
    format: &DateFormat,
    timezone: Option<Timezone>,
) -> Result<Value, CoerceError> {
    let expected = || format!("datetime in the form {} (--datetime-format)", format.text);
    let parsed = if format.has_offset {
        DateTime::parse_from_str(raw, &format.text)
            .map(|d| (d.naive_local(), Some(d.offset().local_minus_utc())))
    } else {
        NaiveDateTime::parse_from_str(raw, &format.text).map(|d| (d, None))
    };
    let (local, offset) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            if read_date(raw.as_bytes()).is_ok() {
                // Unambiguous ISO 8601 is read as without the flag.
                return coerce_datetime(raw, timezone);
            }
            let problem = match e.kind() {
                ParseErrorKind::OutOfRange | ParseErrorKind::Impossible => {
                    "it is not a real date and time"
                }
                ParseErrorKind::TooLong => "it has text after the time",
                _ => "it does not match",
            };
            return Err(error(
                expected(),
                format!(
                    "{} is not a datetime in the form {} (--datetime-format): {problem}",
                    shown(raw),
                    format.text
                ),
            ));
        }
    };
    check_plausible_year(raw, local.date(), expected)?;
    if local.nanosecond() != 0 {
        return Err(error(
            expected(),
            format!(
                "{} has fractional seconds; Zoho keeps whole seconds, so remove them",
                shown(raw)
            ),
        ));
    }
    let offset_seconds = match offset {
        Some(seconds) => seconds,
        None => {
            let Some(timezone) = timezone else {
                return Err(error(
                    expected(),
                    format!(
                        "{} has no offset; pass --timezone (e.g. Europe/Berlin) to say where it is local, or read the offset with %z",
                        shown(raw)
                    ),
                ));
            };
            local_offset(timezone, local, raw)?
        }
    };
    if offset_seconds % 60 != 0 {
        return Err(error(
            expected(),
            format!(
                "{} falls where the zone's offset was {}, which cannot be written as ±hh:mm; give an explicit offset",
                shown(raw),
                offset_text(offset_seconds)
            ),
        ));
    }
    let mut out = local.format("%Y-%m-%dT%H:%M:%S").to_string();
    push_offset(&mut out, offset_seconds);
    Ok(Value::String(out))
}

/// Parses `±hh:mm` into signed minutes, at most [`MAX_OFFSET_MINUTES`] either way.
fn parse_offset_minutes(text: &str) -> Option<i32> {
    let bytes = text.as_bytes();
    if bytes.len() != 6 || bytes[3] != b':' {
        return None;
    }
    let sign = match bytes[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours = fixed_digits(&bytes[1..3])?;
    let minutes = fixed_digits(&bytes[4..6])?;
    let total = hours * 60 + minutes;
    (minutes < 60 && total <= MAX_OFFSET_MINUTES).then_some(sign * total as i32)
}

/// `±hh:mm`, or `±hh:mm:ss` for the odd historical offset that is not whole minutes.
fn offset_text(seconds: i32) -> String {
    let mut text = String::with_capacity(9);
    push_offset(&mut text, seconds);
    text
}

/// Appends [`offset_text`] without allocating: it runs once per datetime cell.
fn push_offset(out: &mut String, seconds: i32) {
    let magnitude = seconds.unsigned_abs();
    out.push(if seconds < 0 { '-' } else { '+' });
    push_two_digits(out, magnitude / 3600);
    out.push(':');
    push_two_digits(out, magnitude / 60 % 60);
    if !magnitude.is_multiple_of(60) {
        out.push(':');
        push_two_digits(out, magnitude % 60);
    }
}

/// Appends 0..=99 as two digits; offsets stay below 100 hours.
fn push_two_digits(out: &mut String, value: u32) {
    out.push(char::from(b'0' + (value / 10 % 10) as u8));
    out.push(char::from(b'0' + (value % 10) as u8));
}

const DATETIME_EXPECTED: &str = "datetime yyyy-MM-ddTHH:mm[:ss] with an offset (Z or ±hh:mm)";

/// Accepts `yyyy-MM-ddTHH:mm[:ss]` followed by `Z`, `±hh:mm`, or nothing when a timezone is
/// given, and writes `yyyy-MM-ddTHH:mm:ss±hh:mm` with the local time unchanged. Fractional
/// seconds are rejected: Zoho keeps whole seconds and silently dropping them could move a
/// value across a boundary the user cares about.
fn coerce_datetime(raw: &str, timezone: Option<Timezone>) -> Result<Value, CoerceError> {
    let bytes = raw.as_bytes();
    let format_error = |problem: &str| {
        let mut message = format!(
            "{} is not a datetime in the form yyyy-MM-ddTHH:mm:ss+hh:mm{problem}",
            shown(raw)
        );
        if let Some(hint) = local_format_hint(raw, true) {
            message.push_str(&hint);
        }
        error(DATETIME_EXPECTED, message)
    };
    let date = match read_date(bytes) {
        Ok(date) => date,
        Err(DateProblem::Calendar) => return Err(not_a_calendar_date(raw, DATETIME_EXPECTED)),
        Err(DateProblem::Format) => return Err(format_error("")),
    };
    match bytes.get(10) {
        Some(b'T') => {}
        Some(b' ') => return Err(format_error(": separate the date and the time with 'T'")),
        None => return Err(format_error(": the time of day is missing")),
        Some(_) => return Err(format_error("")),
    }
    let hour = bytes.get(11..13).and_then(fixed_digits);
    let minute = bytes.get(14..16).and_then(fixed_digits);
    let (Some(hour), Some(minute), Some(b':')) = (hour, minute, bytes.get(13)) else {
        return Err(format_error(""));
    };
    let (second, end) = match bytes.get(16) {
        Some(b':') => match bytes.get(17..19).and_then(fixed_digits) {
            Some(second) => (second, 19),
            None => return Err(format_error("")),
        },
        _ => (0, 16),
    };
    if matches!(bytes.get(end), Some(b'.' | b',')) {
        return Err(error(
            DATETIME_EXPECTED,
            format!(
                "{} has fractional seconds; Zoho keeps whole seconds, so remove them",
                shown(raw)
            ),
        ));
    }
    let Some(time) = NaiveTime::from_hms_opt(hour, minute, second) else {
        return Err(error(
            DATETIME_EXPECTED,
            format!("{} is not a time of day", shown(raw)),
        ));
    };
    // Everything before `end` is ASCII, so slicing the offset off is on a char boundary.
    let offset_seconds = match &raw[end..] {
        "" => {
            let Some(timezone) = timezone else {
                return Err(error(
                    DATETIME_EXPECTED,
                    format!(
                        "{} has no offset; it needs an explicit offset such as Z or +01:00 (or pass --timezone)",
                        shown(raw)
                    ),
                ));
            };
            local_offset(timezone, date.and_time(time), raw)?
        }
        "Z" => 0,
        offset => match parse_offset_minutes(offset) {
            Some(minutes) => minutes * 60,
            None => {
                return Err(format_error(
                    ": the offset must be Z or ±hh:mm, at most ±14:00",
                ))
            }
        },
    };
    if offset_seconds % 60 != 0 {
        return Err(error(
            DATETIME_EXPECTED,
            format!(
                "{} falls where the zone's offset was {}, which cannot be written as ±hh:mm; give an explicit offset",
                shown(raw),
                offset_text(offset_seconds)
            ),
        ));
    }
    // "yyyy-MM-ddTHH:mm:ss" plus "+hh:mm".
    let mut out = String::with_capacity(25);
    out.push_str(&raw[..16]);
    out.push_str(if end == 16 { ":00" } else { &raw[16..19] });
    push_offset(&mut out, offset_seconds);
    Ok(Value::String(out))
}

/// The offset a local time has in `timezone`; a time that a DST change skips or repeats is
/// an error naming both readings, because picking one would shift the value by an hour.
fn local_offset(timezone: Timezone, local: NaiveDateTime, raw: &str) -> Result<i32, CoerceError> {
    let zone = match timezone {
        Timezone::Fixed(offset) => return Ok(offset.local_minus_utc()),
        Timezone::Named(zone) => zone,
    };
    let with_offset = |seconds: i32| {
        format!(
            "{}{}",
            local.format("%Y-%m-%dT%H:%M:%S"),
            offset_text(seconds)
        )
    };
    match zone.offset_from_local_datetime(&local) {
        MappedLocalTime::Single(offset) => Ok(offset.fix().local_minus_utc()),
        MappedLocalTime::Ambiguous(first, second) => Err(error(
            DATETIME_EXPECTED,
            format!(
                "{} happens twice in {} (the clocks go back): write {} or {}",
                shown(raw),
                zone.name(),
                with_offset(first.fix().local_minus_utc()),
                with_offset(second.fix().local_minus_utc()),
            ),
        )),
        MappedLocalTime::None => {
            // The offsets in force a day either side of the gap; gaps are shorter than a day.
            let offset_at = |shifted: Option<NaiveDateTime>| {
                zone.offset_from_utc_datetime(&shifted.unwrap_or(local))
                    .fix()
                    .local_minus_utc()
            };
            let before = offset_at(local.checked_sub_signed(TimeDelta::days(1)));
            let after = offset_at(local.checked_add_signed(TimeDelta::days(1)));
            Err(error(
                DATETIME_EXPECTED,
                format!(
                    "{} does not exist in {} (the clocks skip it): write {} or {}",
                    shown(raw),
                    zone.name(),
                    with_offset(before),
                    with_offset(after),
                ),
            ))
        }
    }
}

fn coerce_lookup(raw: &str) -> Result<Value, CoerceError> {
    if !all_digits(raw) {
        return Err(error(
            "record id (digits)",
            format!("{} is not a record id: ids are digits only", shown(raw)),
        ));
    }
    let mut lookup = Map::with_capacity(1);
    lookup.insert("id".to_owned(), Value::String(raw.to_owned()));
    Ok(Value::Object(lookup))
}
