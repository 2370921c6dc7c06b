-- massup schema, version 8: integrity before sending. What a call sends is read back from
-- these columns (a chunk's members and per-record payloads, its group's value set); a byte
-- damaged on disk there would send wrong ids or values, and SQLite's own checks look at a
-- page's structure, not at what a blob holds. So each carries a checksum written with it
-- (the first 16 bytes of SHA-256, see store::codec) and checked when the chunk is claimed,
-- before its call. NULL for chunks and groups planned before this version: sent unchecked.
ALTER TABLE chunks ADD COLUMN checksum BLOB;
ALTER TABLE groups ADD COLUMN checksum BLOB;
