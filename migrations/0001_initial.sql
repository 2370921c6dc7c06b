-- massup schema, version 1. Released migrations are never edited: a change is a new file.
--
-- One database holds many runs. A run is one CSV planned for one module; its input rows,
-- groups (distinct payloads), chunks (one mass_update call's worth of items, each item
-- one row x group with its own outcome) and calls (every HTTP attempt) hang off it.

CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    module        TEXT    NOT NULL,
    csv_path      TEXT    NOT NULL,
    csv_sha256    TEXT    NOT NULL,
    id_column     TEXT    NOT NULL,
    columns_json  TEXT    NOT NULL,              -- field column names in input order
    settings_json TEXT    NOT NULL,              -- plan settings
    dispatch_json TEXT,                          -- connection and dispatch settings of the last run, never secrets
    fields_json   TEXT,                          -- field metadata used to coerce, if any
    state         TEXT    NOT NULL,              -- planned | running | interrupted | finished
    created_at    TEXT    NOT NULL,
    started_at    TEXT,
    finished_at   TEXT,
    input_rows    INTEGER NOT NULL DEFAULT 0,
    valid_rows    INTEGER NOT NULL DEFAULT 0,
    invalid_rows  INTEGER NOT NULL DEFAULT 0,
    merged_rows   INTEGER NOT NULL DEFAULT 0,
    min_calls     INTEGER NOT NULL DEFAULT 0     -- sum over groups of ceil(ids / 500) at plan time
);
CREATE INDEX runs_by_sha ON runs (csv_sha256, module);

-- Every input row, valid or not: nothing is dropped silently.
CREATE TABLE rows (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    row_no      INTEGER NOT NULL,                -- 0-based position among the data rows
    line        INTEGER NOT NULL,                -- 1-based line where the row starts in the file
    record_id   TEXT    NOT NULL,                -- as given, even when malformed
    values_json TEXT    NOT NULL,                -- the field cells as given, JSON array in column order
    status      TEXT    NOT NULL,                -- valid | invalid | merged
    message     TEXT,                            -- why invalid, or which line it merged into
    merged_into INTEGER,                         -- row_no of the row that carries its changes
    PRIMARY KEY (run_id, row_no)
) WITHOUT ROWID;

-- A distinct field-value set of at most the per-call field limit: one request body.
CREATE TABLE groups (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs (id),
    payload_json TEXT    NOT NULL,               -- the object sent as data[0]
    items        INTEGER NOT NULL
);
CREATE INDEX groups_by_run ON groups (run_id);

-- One mass_update call's worth of items. An item (one input row x one group) is the unit
-- that gets an outcome; a chunk stores its items packed rather than one SQL row each,
-- because per-item rows capped planning at ~90k rows/s (see README, "Benchmarks").
-- A chunk is marked in_flight, committed, before it is sent; `resume` puts in_flight
-- chunks back to pending (resending a mass update writes the same values again).
CREATE TABLE chunks (
    id              INTEGER PRIMARY KEY,
    run_id          INTEGER NOT NULL REFERENCES runs (id),
    group_id        INTEGER NOT NULL REFERENCES groups (id),
    state           TEXT    NOT NULL,            -- pending | in_flight | done
    size            INTEGER NOT NULL,            -- items in the chunk
    members         BLOB    NOT NULL,            -- size x (row_no u32 LE, record_id i64 LE)
    outcomes        BLOB    NOT NULL,            -- size bytes, one item state each (outcome.rs)
    details_json    TEXT,                        -- {"index": [code, message]} where an item's answer differs from the chunk's
    code            TEXT,                        -- the last answer's code for the call as a whole
    message         TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,  -- calls made for this chunk
    created_at      TEXT    NOT NULL,
    last_attempt_at TEXT
);
CREATE INDEX chunks_by_state ON chunks (run_id, state);

-- Every HTTP attempt, for status (calls made vs the minimum) and post-mortems.
CREATE TABLE calls (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    chunk_id    INTEGER NOT NULL REFERENCES chunks (id),
    started_at  TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL,
    http_status INTEGER,                         -- NULL when no answer came (timeout, drop)
    code        TEXT,                            -- request-level code, or SUCCESS / MIXED
    ids         INTEGER NOT NULL
);
CREATE INDEX calls_by_run ON calls (run_id);

-- When access tokens were minted (times only): Zoho allows 10 per refresh token in 10
-- minutes, and a `run` followed by a `resume` must share that budget.
CREATE TABLE token_refreshes (
    at TEXT NOT NULL
);
