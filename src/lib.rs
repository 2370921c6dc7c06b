//! massup: turn a CSV of record changes into the fewest Zoho CRM `mass_update` calls.
//!
//! The pipeline is the architecture, and data flows one way through these modules:
//!
//! - [`input`]: streams the CSV (one reused record buffer) into raw rows.
//! - [`fields`]: Zoho field metadata and the coercion of raw cells into JSON values.
//! - [`plan`]: validates rows, splits each row's field-value set into parts of at most the
//!   per-call field limit, groups identical parts and cuts groups into chunks of 500 ids.
//! - [`store`]: the SQLite run (rows, groups, items, chunks, outcomes) and its migrations.
//! - [`mock`]: an embedded Zoho-compatible CRM used by tests, the demo and benchmarks.
pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dispatch;
pub mod exit;
pub mod fields;
pub mod input;
pub mod logging;
pub mod mock;
pub mod outcome;
pub mod plan;
pub mod store;
pub mod summary;
