//! massup: turn a CSV of record changes into the Zoho CRM calls that cost the fewest API
//! credits (mass_update and Update Records), send them under the API's limits, and record
//! every record's outcome in SQLite.
//!
//! The pipeline is the architecture: CSV -> plan -> store -> dispatch -> outcomes ->
//! status and reports. The modules form layers, and each uses only the layers above it:
//!
//! - Leaves: [`outcome`] (the states of one item and the pure function that moves them),
//!   [`error`] (the error that is the user's to fix), [`fields`] (Zoho field metadata and
//!   the coercion of raw cells into JSON values), [`input`] (streams the CSV through one
//!   reused record buffer; spools pipes and hashes files), [`output`] (the pipe-safe
//!   printer), [`global`] (flags every command takes), [`suggest`] ("did you mean"),
//!   [`codes`] (massup's own outcome codes).
//! - [`store`]: the SQLite run (runs, rows, groups, chunks with their packed items, calls)
//!   and its embedded migrations; the only module that speaks SQL.
//! - [`api`]: the Zoho API: every URL ([`api::Endpoints`]), Zoho's numbers and the price
//!   of each kind of call in credits ([`api::limits`]), request bodies, OAuth tokens,
//!   reading answers.
//! - [`plan`]: validates rows, splits each row's field-value set into parts of at most the
//!   per-call field limit, groups identical parts and cuts groups into chunks; stores the
//!   plan; plans `retry`'s new chunks.
//! - [`dispatch`]: sends a run's chunks: feeder, workers, the one attempt loop every call
//!   goes through (writes, snapshot reads, lookups), pacing, answer interpretation and the
//!   single SQLite writer.
//! - [`summary`]: per-row outcomes and counts for `status`, `report` and the end of a run.
//! - [`render`]: what people read (plan summary, run status, progress).
//! - [`exit`]: exit codes, decided in one place.
//! - [`redact`] (secrets masked in everything that leaves the process), [`lease`] (one
//!   sender per run, by an OS file lock), [`aimd`] (concurrency that backs off on 429s),
//!   [`config`] (massup.toml), [`plain_file`] (state and config files opened as plain
//!   files only, never a device or a FIFO) and [`logging`] (with the escaping of control
//!   characters in text from servers and input files).
//! - [`app`]: the use cases the commands share: the workspace, the session with Zoho,
//!   planning a file (metadata, lookups), resolving how a run is sent, sending, finishing.
//! - [`commands`]: one module per subcommand, thin: flags to typed values, then [`app`] and
//!   [`render`]; no command imports another.
//! - [`cli`]: argument parsing; picks the command and returns its exit code.
//!
//! Beside them, [`mock`]: an embedded Zoho-compatible CRM used by tests, the demo and
//! benchmarks; it shares no code with the client side, so it cannot agree with a bug.
pub mod aimd;
pub mod api;
pub mod app;
pub mod cli;
pub mod codes;
pub mod commands;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod exit;
pub mod fields;
pub mod global;
pub mod input;
pub mod lease;
pub mod logging;
pub mod mock;
pub mod outcome;
pub mod output;
pub mod plain_file;
pub mod plan;
pub mod redact;
pub mod render;
pub mod store;
pub mod suggest;
pub mod summary;
