//! `massup mock-server`: the embedded Zoho-compatible CRM on loopback, for rehearsals.
use crate::app::session::runtime;
use crate::exit::{Exit, UsageError};
use crate::global::GlobalArgs;
pub use crate::mock::MockServerArgs as Args;

pub fn run(args: Args, _global: &GlobalArgs) -> anyhow::Result<Exit> {
    // Bad flags are the user's to fix (exit 2), found before the server starts.
    let config = args
        .to_config()
        .map_err(|e| UsageError::new(format!("{e:#}")))?;
    if let Some(n) = args.print_sheet {
        let sheet = crate::mock::cli::sample_sheet(&config, n)
            .map_err(|e| UsageError::new(format!("{e:#}")))?;
        crate::output::print(&sheet);
        return Ok(Exit::Success);
    }
    runtime()?.block_on(async {
        crate::mock::run_cli(args, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })?;
    Ok(Exit::Success)
}
