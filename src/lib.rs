//! massup: turn a CSV of record changes into the fewest Zoho CRM `mass_update` calls, send
//! them under the API's limits, and record every record's outcome in SQLite.
//!
//! The pipeline is the architecture, and data flows one way through these modules:
//!
//! - [`input`]: streams the CSV (one reused record buffer) into raw rows.
//! - [`fields`]: Zoho field metadata and the coercion of raw cells into JSON values.
//! - [`plan`]: validates rows, splits each row's field-value set into parts of at most the
//!   per-call field limit, groups identical parts and cuts groups into chunks of 500 ids.
//! - [`store`]: the SQLite run (runs, rows, groups, chunks with their packed items, calls)
//!   and its embedded migrations.
//! - [`outcome`]: the states of one item and the pure function that moves them.
//! - [`api`]: the Zoho API: endpoints, OAuth tokens, reading answers.
//! - [`dispatch`]: rate limiter, bounded worker pool and the single SQLite writer.
//! - [`summary`]: per-row outcomes and counts for `status`, `report` and the end of a run.
//! - [`mock`]: an embedded Zoho-compatible CRM used by tests, the demo and benchmarks.
//!
//! Around them: [`cli`] (argument parsing and the one place exit codes are decided),
//! [`commands`] (one module per subcommand), [`config`] (massup.toml), [`exit`],
//! [`logging`] and [`output`].
pub mod aimd;
pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dispatch;
pub mod exit;
pub mod fields;
pub mod input;
pub mod lease;
pub mod logging;
pub mod mock;
pub mod outcome;
pub mod output;
pub mod plan;
pub mod redact;
pub mod store;
pub mod summary;
