-- massup schema, version 5: the safety net. Before a chunk's first call, massup reads the
-- current values of the fields it is about to write for its records (Get Records) and keeps
-- them here, one row per record and field: what `massup undo` writes back. The first value
-- read for a (record, field) is the one kept: a later read (a chunk sent again after a
-- dropped answer) may already see massup's own write.
CREATE TABLE befores (
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    record_id  INTEGER NOT NULL,
    field      TEXT    NOT NULL,
    value_json TEXT    NOT NULL,                 -- the value as Get Records answered it; 'null' when empty
    PRIMARY KEY (run_id, record_id, field)
) WITHOUT ROWID;

-- Whether a chunk's snapshot is stored (it is taken, and committed, before the first call).
ALTER TABLE chunks ADD COLUMN snapshotted INTEGER NOT NULL DEFAULT 0;

-- An undo run: what the run it undoes wrote, per record and field. Before writing a value
-- back, massup compares the record's current value with this; a record changed since is a
-- conflict and is left alone (unless --force).
CREATE TABLE expectations (
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    record_id  INTEGER NOT NULL,
    field      TEXT    NOT NULL,
    value_json TEXT    NOT NULL,
    PRIMARY KEY (run_id, record_id, field)
) WITHOUT ROWID;
