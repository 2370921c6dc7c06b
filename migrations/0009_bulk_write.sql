-- massup schema, version 9: Bulk Write jobs. A Bulk Write chunk is sent in steps (upload
-- the zipped CSV, create the job, poll it, read its result), and each step's id is
-- committed before the next step is taken: the file id before the job is created, the job
-- id before it is polled. A resume after a kill at any step continues from the row (polls
-- the job it created, or creates the job from the file it uploaded) instead of uploading
-- or creating again. One row per chunk, for its current job; `jobs` counts the jobs the
-- chunk has created (a job that failed with no row applied is created again).
CREATE TABLE bulk_jobs (
    chunk_id   INTEGER PRIMARY KEY REFERENCES chunks(id),
    run_id     INTEGER NOT NULL REFERENCES runs(id),
    -- 'uploading': a file is being uploaded (its id not known yet); 'uploaded': file_id
    -- holds it; 'creating': the job's creation was sent (its id not known yet);
    -- 'created': job_id holds it; 'read': the job's result was read into the chunk.
    phase      TEXT NOT NULL,
    file_id    TEXT,
    job_id     TEXT,
    jobs       INTEGER NOT NULL DEFAULT 0,
    -- The job's last status as Zoho gave it (ADDED, IN PROGRESS, COMPLETED, FAILED).
    status     TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX bulk_jobs_by_run ON bulk_jobs(run_id);
-- The org id (`GET /crm/{v}/org`) the uploads name in X-CRM-ORG, kept with the run.
ALTER TABLE runs ADD COLUMN org_id TEXT;
