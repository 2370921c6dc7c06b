//! `massup logout`: delete the access tokens massup keeps between processes (the token
//! store, `api::token_store`). The next run mints a new one; the refresh credentials are
//! not touched (they are yours, in the environment or the secrets file).
use crate::api::token_store;
use crate::exit::{Exit, UsageError};
use crate::global::GlobalArgs;

const EXAMPLES: &str = "Examples:
  massup logout
      delete every stored access token (the next run mints a new one)
  MASSUP_TOKEN_STORE=off massup run --csv sheet.csv ...
      a run that neither reads nor keeps a stored token";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Print one JSON object on stdout (docs/JSON.md), whatever happens.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let Some(dir) = crate::api::budget::state_dir() else {
        return Err(UsageError::new(
            "this system has no state folder for massup (no home folder): no token is stored",
        )
        .into());
    };
    let removed = token_store::forget_all(&dir).map_err(|e| {
        UsageError::new(format!(
            "cannot delete the stored access tokens in {}: {e}",
            dir.display()
        ))
    })?;
    let message = match removed {
        0 => format!("no stored access token in {}", dir.display()),
        1 => format!("deleted 1 stored access token from {}", dir.display()),
        n => format!("deleted {n} stored access tokens from {}", dir.display()),
    };
    if args.json {
        crate::render::json::print_result(
            "logout",
            Exit::Success,
            serde_json::json!({
                "removed": removed,
                "folder": dir.display().to_string(),
                "message": message,
            }),
        );
    } else if !global.quiet {
        crate::outln!("{message}");
    }
    Ok(Exit::Success)
}
