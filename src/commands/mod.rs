//! One module per subcommand, each with an `Args` struct and a `run` function: flags to
//! typed values at the edge, then the use cases in [`crate::app`], then [`crate::render`].
//! A command imports no other command; the flags several share are in [`flags`].
pub mod demo;
pub mod discard;
pub mod export;
pub mod fields;
pub mod flags;
pub mod logout;
pub mod mock_server;
pub mod plan;
pub mod report;
pub mod resume;
pub mod retry;
pub mod run;
pub mod status;
pub mod undo;

pub use crate::app::{Latest, Workspace};
