//! Logging through `tracing`: human lines on stderr by default, JSON lines for cron jobs.
//! Secrets never reach a log line: credentials are held in `Secret` values whose Debug and
//! Display print a placeholder, and every line passes `redact` on its way to stderr.
use tracing_subscriber::EnvFilter;

use crate::global::{GlobalArgs, LogFormat};

pub fn init(global: &GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // Our own crate at the chosen level; dependencies stay at warn unless RUST_LOG says.
    let filter = EnvFilter::try_from_env("MASSUP_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,massup={level}")));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        // Every line passes the redactor: a secret that reached a message by any path
        // (an echoing server, a URL) is masked before it leaves the process.
        .with_writer(crate::redact::RedactingWriter::new(std::io::stderr));
    let _ = match global.log_format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
