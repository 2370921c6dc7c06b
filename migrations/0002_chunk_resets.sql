-- massup schema, version 2. A chunk left in flight by a process that died may have been
-- sent before its answer was recorded: `resets` counts how often that happened to it, so
-- `status` can show the calls (and credits) that the call log cannot.
ALTER TABLE chunks ADD COLUMN resets INTEGER NOT NULL DEFAULT 0;

-- Readers walk a run's chunks in plan order (status, report, requeue). Without an index
-- that gives that order, SQLite sorted every chunk with its packed members in memory
-- (status of a 20M-row run: 835 MB).
CREATE INDEX chunks_by_run ON chunks (run_id, id);
