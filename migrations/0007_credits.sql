-- massup schema, version 7: credits, the unit Zoho bills. Every call the attempt loop makes
-- is logged with its kind and the credits it cost (an Update Records call of 100 records
-- costs 10, a mass_update 1, a Get Records read 1); the snapshot's reads are logged too,
-- with the chunk they read for. Calls made while planning (COQL lookups, field metadata)
-- belong to no chunk: the run keeps their credits beside `lookup_calls`.
ALTER TABLE calls ADD COLUMN kind TEXT NOT NULL DEFAULT 'mass_update';
ALTER TABLE calls ADD COLUMN credits INTEGER NOT NULL DEFAULT 1;
-- Calls logged before this version: their kind is their chunk's, and an Update Records
-- call cost one credit per started ten records.
UPDATE calls SET kind = (SELECT c.kind FROM chunks c WHERE c.id = calls.chunk_id)
    WHERE EXISTS (SELECT 1 FROM chunks c WHERE c.id = calls.chunk_id);
UPDATE calls SET credits = MAX(1, (ids + 9) / 10) WHERE kind = 'update_records';

ALTER TABLE runs ADD COLUMN lookup_credits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN metadata_calls INTEGER NOT NULL DEFAULT 0;
-- The plan's estimate of what sending will cost, for status and the budget.
ALTER TABLE runs ADD COLUMN planned_credits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sends ADD COLUMN credits INTEGER NOT NULL DEFAULT 0;
-- What Zoho last said the org has left (X-API-CREDITS-REMAINING, sent once half the day's
-- credits are used), for the plan's "share of the org's credits left".
ALTER TABLE sends ADD COLUMN credits_remaining INTEGER;

-- A run that will not be sent as planned: `superseded` (the same file planned again with
-- other settings), `discarded` (`massup discard`), `undone` (`massup undo` took it back).
-- A bare `resume` never picks such a run; `resume --run N` refuses a discarded or undone one.
ALTER TABLE runs ADD COLUMN ended_as TEXT;
ALTER TABLE runs ADD COLUMN ended_note TEXT;
ALTER TABLE runs ADD COLUMN ended_by INTEGER;           -- the run that superseded or undid it

-- Calls the items of a chunk made `retry` had before they were re-queued into it (the
-- most of any of its items): with the chunk's own attempts, a record's attempts across
-- retries, which `--max-attempts-total` ends.
ALTER TABLE chunks ADD COLUMN prior_attempts INTEGER NOT NULL DEFAULT 0;

-- Never read since the token budget moved to a file shared by processes of one client.
DROP TABLE token_refreshes;
