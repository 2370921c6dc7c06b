-- massup schema, version 2. A chunk left in flight by a process that died may have been
-- sent before its answer was recorded: `resets` counts how often that happened to it, so
-- `status` can show the calls (and credits) that the call log cannot.
ALTER TABLE chunks ADD COLUMN resets INTEGER NOT NULL DEFAULT 0;
