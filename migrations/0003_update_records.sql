-- massup schema, version 3: a second kind of call. A chunk is either a mass_update call
-- (one value set, its group's payload, for up to 500 ids) or an Update Records call (up to
-- 100 records, each with its own values). For the second kind, `payloads` holds one JSON
-- object of fields per member (in member order) and the chunk's group is the run's
-- per-record group, whose payload_json is '{}'.
ALTER TABLE chunks ADD COLUMN kind TEXT NOT NULL DEFAULT 'mass_update';
ALTER TABLE chunks ADD COLUMN payloads TEXT;
