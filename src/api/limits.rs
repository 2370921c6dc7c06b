//! Zoho's numbers in one place: how much one call may carry, and what each kind of call
//! costs in API credits (the unit Zoho bills, over a rolling 24 hours). Every number names
//! the page it comes from; docs/ZOHO_API_NOTES.md says which were confirmed and how.

/// Zoho updates at most 500 records per `mass_update` call when ids are given (the cvid
/// mode allows more but schedules a background job, which massup does not use). Mass
/// Update API page, <https://www.zoho.com/crm/developer/docs/api/mass-update-records.html>.
pub const MAX_IDS_PER_CALL: usize = 500;

/// Update Records takes at most 100 records a call (Zoho's update-records page; the mock
/// answers LIMIT_EXCEEDED above it, as Zoho's OpenAPI examples show).
pub const MAX_RECORDS_PER_UPDATE: usize = 100;

/// Upsert Records (and Insert Records) take at most 100 records a call, as Update Records
/// (Zoho's upsert-records and insert-records pages; ZOHO_API.md).
pub const MAX_RECORDS_PER_UPSERT: usize = 100;

/// Delete Records takes at most 100 ids a call (`DELETE .../{Module}?ids=...`, Zoho's
/// delete-records page; ZOHO_API.md).
pub const MAX_IDS_PER_DELETE: usize = 100;

/// Get Records returns at most 100 records a call and at most 50 fields (Zoho's
/// get-records page; see docs/ZOHO_API_NOTES.md).
pub const MAX_IDS_PER_READ: usize = 100;
pub const MAX_FIELDS_PER_READ: usize = 50;

/// Records one page of a listing (`GET .../{Module}?page=N&per_page=M`) holds at most
/// (Get Records page, v2 to v8: `per_page` up to 200).
pub const MAX_RECORDS_PER_PAGE: usize = 200;

/// Records a listing reaches by page number; past them only `page_token` goes on (Get
/// Records page, v8: "you can fetch only up to 2000 records" with `page`; the token is in
/// `info.next_page_token` from v2.1 on, ZOHO_API.md).
pub const MAX_DISCRETE_PAGING: usize = 2_000;

/// Whether a listing of `api_version` answers `info.next_page_token` (v2.1 and later), and
/// so can go past [`MAX_DISCRETE_PAGING`] records.
pub fn has_page_tokens(api_version: &str) -> bool {
    let number = api_version.trim_start_matches(['v', 'V']);
    let mut parts = number.split('.');
    let major = parts
        .next()
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(2);
    let minor = parts
        .next()
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    (major, minor) >= (2, 1)
}

/// Values in one COQL `in (...)`: 50 in every version's "Query API - Limitations" page
/// (v2 to v8; one stored copy of the v7 page says 100, another 50: the lower is used).
pub const MAX_IN_VALUES: usize = 50;

/// Records an Insert, Update or Upsert call is billed by: one credit for each started
/// group of this many (API limits page, "credit deduction" table).
pub const RECORDS_PER_WRITE_CREDIT: usize = 10;

/// Insert, Update and Upsert calls carrying more than this many records have their own
/// concurrency cap per org, whatever the edition (API limits page, "sub-concurrency").
pub const SUB_CONCURRENCY_RECORDS: usize = 10;
/// That cap: calls of that kind in flight at once per org.
pub const SUB_CONCURRENCY_LIMIT: usize = 10;

/// Zoho's documented field limit per mass update: one field, three for Deals (Mass Update
/// API page).
pub fn default_field_limit(module: &str) -> usize {
    if module.eq_ignore_ascii_case("Deals") {
        3
    } else {
        1
    }
}

/// Rows one COQL query may return (its LIMIT): 200 up to v3, 2,000 from v4 (the COQL
/// limitations page of each version).
pub fn max_rows_per_query(api_version: &str) -> usize {
    if major_version(api_version) >= 4 {
        2_000
    } else {
        200
    }
}

fn major_version(api_version: &str) -> u32 {
    api_version
        .trim_start_matches(['v', 'V'])
        .split('.')
        .next()
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(2)
}

/// Every kind of call massup makes to Zoho: what the attempt loop sends, what a chunk
/// stores, and what the price list prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    /// `POST .../{module}/actions/mass_update`: one value set for up to 500 ids.
    MassUpdate,
    /// `PUT .../{module}`: up to 100 records, each with its own values.
    UpdateRecords,
    /// `GET .../{module}?ids=...&fields=...`: the snapshot's reads; and a listing page
    /// (`?fields=...&page=N`), `export`'s.
    GetRecords,
    /// `POST .../coql`: the `--match-by` lookups, `export --where`.
    Coql,
    /// `GET .../settings/...`: field and module metadata; and `GET .../org`, the org id
    /// Bulk Write's upload names.
    Metadata,
    /// `POST .../crm/bulk/{v}/write`: a Bulk Write job over an uploaded CSV of up to 25,000
    /// records, each with its own values. A chunk's kind: the job is what Zoho bills (500
    /// credits); the upload, the polls and the result are its steps, priced apart.
    BulkWrite,
    /// `POST {content domain}/crm/{v}/upload`: the zipped CSV a Bulk Write job reads.
    BulkUpload,
    /// `GET .../crm/bulk/{v}/write/{job id}`: a Bulk Write job's status.
    BulkStatus,
    /// `GET {download_url}`: a finished Bulk Write job's result file.
    BulkResult,
    /// `POST .../{module}/upsert` with `duplicate_check_fields: [key]`: `--create-missing`'s
    /// rows whose key no record held when planned, up to 100 records, each its own values.
    UpsertRecords,
    /// `DELETE .../{module}?ids=...`: an undo's records its run created, up to 100 ids.
    DeleteRecords,
}

/// Every kind, in declaration order (the order of per-kind tables).
pub const ALL_KINDS: [CallKind; 11] = [
    CallKind::MassUpdate,
    CallKind::UpdateRecords,
    CallKind::GetRecords,
    CallKind::Coql,
    CallKind::Metadata,
    CallKind::BulkWrite,
    CallKind::BulkUpload,
    CallKind::BulkStatus,
    CallKind::BulkResult,
    CallKind::UpsertRecords,
    CallKind::DeleteRecords,
];

impl CallKind {
    /// The kind's name in logs, the database, reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            CallKind::MassUpdate => "mass_update",
            CallKind::UpdateRecords => "update_records",
            CallKind::GetRecords => "get_records",
            CallKind::Coql => "coql",
            CallKind::Metadata => "metadata",
            CallKind::BulkWrite => "bulk_write",
            CallKind::BulkUpload => "bulk_upload",
            CallKind::BulkStatus => "bulk_status",
            CallKind::BulkResult => "bulk_result",
            CallKind::UpsertRecords => "upsert_records",
            CallKind::DeleteRecords => "delete_records",
        }
    }

    /// The kind named `name` (as [`CallKind::name`] writes it).
    pub fn from_name(name: &str) -> Option<CallKind> {
        ALL_KINDS.into_iter().find(|k| k.name() == name)
    }

    /// Whether the kind writes records (and so is a chunk's kind).
    pub fn writes(self) -> bool {
        matches!(
            self,
            CallKind::MassUpdate
                | CallKind::UpdateRecords
                | CallKind::BulkWrite
                | CallKind::UpsertRecords
                | CallKind::DeleteRecords
        )
    }

    /// Whether each record of a chunk of this kind carries its own values (a JSON object
    /// per member, stored in the chunk's `payloads`): Update Records, Bulk Write, Upsert
    /// Records; not mass_update (the chunk's one value set).
    pub fn per_record(self) -> bool {
        matches!(
            self,
            CallKind::UpdateRecords | CallKind::BulkWrite | CallKind::UpsertRecords
        )
    }
}

/// What one call of `kind` costs in API credits. `size` is what the price depends on:
/// the records an Update Records call carries, a COQL query's LIMIT; ignored by the rest.
///
/// Zoho's API limits page (v2 to v8, "credit deduction" table,
/// <https://www.zoho.com/crm/developer/docs/api/v8/api-limits.html>): Insert, Update and
/// Upsert 1 credit per 10 records; COQL by LIMIT from v4 (1 to 200 one credit, 201 to
/// 1,000 two, 1,001 to 2,000 three); every call not in the table one (mass_update, Get
/// Records by ids, metadata, Delete Records: the table does not list deletion, so it is
/// "all other APIs").
pub fn credits(kind: CallKind, size: usize) -> u64 {
    match kind {
        CallKind::UpdateRecords | CallKind::UpsertRecords => write_credits(size),
        CallKind::DeleteRecords => 1,
        CallKind::Coql => match size {
            0..=200 => 1,
            201..=1_000 => 2,
            _ => 3,
        },
        CallKind::BulkWrite => BULK_WRITE_JOB_CREDITS,
        CallKind::MassUpdate
        | CallKind::GetRecords
        | CallKind::Metadata
        | CallKind::BulkUpload
        | CallKind::BulkStatus
        | CallKind::BulkResult => 1,
    }
}

/// What Zoho bills a Bulk Write job (its initialisation), whatever its size: the credit
/// table's "Bulk Write: 500 credits per job". The upload, the status polls and the result's
/// download are not in the table, so each is priced one, the "all other APIs" rate (the
/// safe side: an estimate may be a few credits high, never low).
pub const BULK_WRITE_JOB_CREDITS: u64 = 500;

/// Records a Bulk Write job's CSV may hold (Zoho's Bulk Write limits page).
pub const MAX_RECORDS_PER_BULK_JOB: usize = 25_000;

/// Bytes a Bulk Write job's CSV may hold: Zoho's limit is 25 MB a file; massup keeps a
/// margin under it (the zip of it is smaller still).
pub const MAX_BULK_CSV_BYTES: usize = 24 * 1024 * 1024;

/// Credits of one Insert, Update or Upsert call of `records` records (at least one).
pub fn write_credits(records: usize) -> u64 {
    records.div_ceil(RECORDS_PER_WRITE_CREDIT).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_follow_zohos_table() {
        assert_eq!(credits(CallKind::MassUpdate, 500), 1);
        assert_eq!(credits(CallKind::UpdateRecords, 100), 10);
        assert_eq!(credits(CallKind::UpdateRecords, 91), 10);
        assert_eq!(credits(CallKind::UpdateRecords, 90), 9);
        assert_eq!(credits(CallKind::UpdateRecords, 1), 1);
        assert_eq!(credits(CallKind::UpdateRecords, 0), 1);
        assert_eq!(credits(CallKind::GetRecords, 100), 1);
        assert_eq!(credits(CallKind::Coql, 200), 1);
        assert_eq!(credits(CallKind::Coql, 201), 2);
        assert_eq!(credits(CallKind::Coql, 1_000), 2);
        assert_eq!(credits(CallKind::Coql, 2_000), 3);
        assert_eq!(credits(CallKind::Metadata, 0), 1);
        assert_eq!(credits(CallKind::UpsertRecords, 100), 10);
        assert_eq!(credits(CallKind::UpsertRecords, 11), 2);
        assert_eq!(credits(CallKind::DeleteRecords, 100), 1);
        assert_eq!(credits(CallKind::BulkWrite, 25_000), 500);
        assert_eq!(credits(CallKind::BulkWrite, 1), 500);
        assert_eq!(credits(CallKind::BulkStatus, 0), 1);
    }

    #[test]
    fn kinds_are_listed_in_declaration_order() {
        for (i, kind) in ALL_KINDS.into_iter().enumerate() {
            assert_eq!(kind as usize, i);
        }
    }

    #[test]
    fn versions_and_kinds() {
        assert_eq!(max_rows_per_query("v2"), 200);
        assert_eq!(max_rows_per_query("v3"), 200);
        assert_eq!(max_rows_per_query("v8"), 2_000);
        for kind in ALL_KINDS {
            assert_eq!(CallKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(default_field_limit("deals"), 3);
        assert!(!has_page_tokens("v2"));
        assert!(has_page_tokens("v2.1"));
        assert!(has_page_tokens("v8"));
        assert_eq!(default_field_limit("Leads"), 1);
    }
}
