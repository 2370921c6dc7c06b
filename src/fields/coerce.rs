//! Coercion of one raw CSV cell into the JSON value Zoho expects for the field's type.
//!
//! It runs once per non-empty cell, millions of times on a large file, so parsing is done by
//! hand over bytes and the success path allocates nothing beyond the returned value. The
//! same raw value always gives the same JSON, because rows are grouped by their JSON values.

use std::fmt;
use std::str::FromStr;

use chrono::{
    FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoerceOptions {
    /// The zone for datetimes written without an offset; `None` makes those an error.
    pub timezone: Option<Timezone>,
    /// Separator between the values of a multi-select picklist cell.
    pub multiselect_separator: char,
}

impl Default for CoerceOptions {
    fn default() -> Self {
        CoerceOptions {
            timezone: None,
            multiselect_separator: DEFAULT_MULTISELECT_SEPARATOR,
        }
    }
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
        FieldType::Integer => coerce_integer(raw),
        FieldType::BigInt => coerce_bigint(raw),
        FieldType::Double | FieldType::Currency | FieldType::Percent | FieldType::Decimal => {
            coerce_number(raw, field.decimal_places)
        }
        FieldType::Boolean => coerce_boolean(raw),
        FieldType::Date => {
            parse_date(raw)?;
            Ok(Value::String(raw.to_owned()))
        }
        FieldType::DateTime => coerce_datetime(raw, opts.timezone),
        FieldType::Lookup | FieldType::OwnerLookup => coerce_lookup(raw),
    }
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
    } else if raw.contains(',') {
        "thousands separators and decimal commas are not accepted"
    } else if raw.contains(['e', 'E']) && raw.bytes().any(|byte| byte.is_ascii_digit()) {
        "exponents are not accepted; write the number out"
    } else if raw.contains(['%', '$', '€', '£']) {
        "write the number without a currency or percent sign"
    } else {
        "it is not a plain decimal number"
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

fn coerce_boolean(raw: &str) -> Result<Value, CoerceError> {
    const TRUE: [&str; 3] = ["true", "yes", "1"];
    const FALSE: [&str; 3] = ["false", "no", "0"];
    if TRUE.iter().any(|word| word.eq_ignore_ascii_case(raw)) {
        Ok(Value::Bool(true))
    } else if FALSE.iter().any(|word| word.eq_ignore_ascii_case(raw)) {
        Ok(Value::Bool(false))
    } else {
        Err(error(
            "true/false, yes/no or 1/0",
            format!(
                "{} is not a boolean; write true/false, yes/no or 1/0",
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
    Err(error(
        DATE_EXPECTED,
        format!(
            "{} is not a date in the form yyyy-MM-dd{problem}",
            shown(raw)
        ),
    ))
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
        error(
            DATETIME_EXPECTED,
            format!(
                "{} is not a datetime in the form yyyy-MM-ddTHH:mm:ss+hh:mm{problem}",
                shown(raw)
            ),
        )
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
