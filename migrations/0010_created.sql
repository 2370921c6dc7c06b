-- massup schema, version 10: `--create-missing`. The records a run created: a row whose key
-- no record held when it was planned is sent by Upsert Records (chunks of kind
-- 'upsert_records', whose members carry a placeholder id below zero), and the id Zoho gives
-- the new record is kept here, by input row, in the same transaction as the chunk's answer.
-- What `report`, `status` and `undo` (which deletes them) read.
CREATE TABLE IF NOT EXISTS created (
    run_id    INTEGER NOT NULL REFERENCES runs (id),
    row_no    INTEGER NOT NULL,                   -- the new record's first row
    record_id INTEGER NOT NULL,
    -- 'created'; or 'updated' when Zoho found a record holding the key that this run did not
    -- create (someone made it between plan and send): it was updated, not created.
    action    TEXT    NOT NULL,
    PRIMARY KEY (run_id, row_no)
) WITHOUT ROWID;
