-- massup schema: one row per invocation that sent a run (run, resume, retry),
-- so that `status` can say how long each took instead of one span from the first call of
-- the first invocation to the last call of the last (which counts the hours between them).
CREATE TABLE sends (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    command     TEXT    NOT NULL,                -- run, resume, retry
    started_at  TEXT    NOT NULL,
    ended_at    TEXT,                            -- NULL while sending, or when killed
    calls       INTEGER NOT NULL DEFAULT 0,
    end_state   TEXT                             -- finished, fatal, stopped, calls_kept_failing
);
CREATE INDEX sends_by_run ON sends (run_id, id);
