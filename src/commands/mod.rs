//! One module per subcommand, each with an `Args` struct and a `run` function;
//! `dispatching` holds what run, resume and retry share.
pub mod demo;
pub mod dispatching;
pub mod mock_server;
pub mod plan;
pub mod report;
pub mod resume;
pub mod retry;
pub mod run;
pub mod status;
