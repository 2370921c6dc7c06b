-- massup schema, version 4: sheets keyed by a field (`--match-by Email`) instead of record
-- ids. Every distinct key, as compared (normalised the way Zoho compares that field), with
-- the record ids Zoho's lookup found for it: the ids are resolved once, at plan time, and
-- `resume`, `retry` and `report` read them here instead of asking Zoho again.
CREATE TABLE lookups (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    key    TEXT    NOT NULL,
    ids    TEXT    NOT NULL,                     -- record ids found, comma-separated; '' when none
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

-- The lookup calls (COQL queries) the plan spent, beside the update calls.
ALTER TABLE runs ADD COLUMN lookup_calls INTEGER NOT NULL DEFAULT 0;
