//! `massup mock-server`: the embedded Zoho-compatible CRM on loopback, for rehearsals.
use crate::cli::GlobalArgs;
use crate::commands::dispatching::runtime;
use crate::exit::Exit;
pub use crate::mock::MockServerArgs as Args;

pub fn run(args: Args, _global: &GlobalArgs) -> anyhow::Result<Exit> {
    runtime()?.block_on(async {
        crate::mock::run_cli(args, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })?;
    Ok(Exit::Success)
}
