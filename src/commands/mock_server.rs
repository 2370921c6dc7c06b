//! `massup mock-server`: the embedded Zoho-compatible CRM on loopback, for rehearsals.
use crate::app::session::runtime;
use crate::exit::{Exit, UsageError};
use crate::global::GlobalArgs;
pub use crate::mock::MockServerArgs as Args;

pub fn run(args: Args, _global: &GlobalArgs) -> anyhow::Result<Exit> {
    // Bad flags are the user's to fix (exit 2), found before the server starts.
    args.to_config()
        .map_err(|e| UsageError::new(format!("{e:#}")))?;
    runtime()?.block_on(async {
        crate::mock::run_cli(args, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })?;
    Ok(Exit::Success)
}
