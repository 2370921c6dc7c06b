//! Command-line parsing (clap derive): which command runs, and how its result or error
//! becomes the process's exit code (the codes themselves are decided in `exit`). Each
//! subcommand lives in `commands::<name>` with the same shape: an `Args` struct and a `run`
//! function.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;
use crate::exit::{exit_for_error, Exit};
use crate::global::GlobalArgs;

#[derive(Parser, Debug)]
#[command(name = "massup", version, about = "Turn a CSV of record changes into the fewest Zoho CRM mass_update calls, send them under the API's limits, and record every record's outcome.", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read a CSV, validate and group it, and store the planned calls (no API call).
    Plan(commands::plan::Args),
    /// Plan a CSV and send it: the main job.
    Run(commands::run::Args),
    /// Continue a run that stopped (killed, interrupted, out of budget, fatal error fixed).
    Resume(commands::resume::Args),
    /// Re-send a run's retryable records (locked, not approved, ...) in fresh, regrouped calls.
    Retry(commands::retry::Args),
    /// List a module's fields: API names, labels, types, and which calls can write them.
    Fields(commands::fields::Args),
    /// Take a run back: write every record's old value again (from the run's snapshot), leaving records changed since alone.
    Undo(commands::undo::Args),
    /// Show runs and what their records came to.
    Status(commands::status::Args),
    /// Write one row per input row with its outcome, in input order.
    Report(commands::report::Args),
    /// Serve the embedded Zoho-compatible mock CRM on 127.0.0.1.
    MockServer(commands::mock_server::Args),
    /// A complete rehearsal against the embedded mock CRM: no credentials, no network.
    Demo(commands::demo::Args),
    /// Print shell completions, e.g. `massup completions bash > /etc/bash_completion.d/massup`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    crate::redact::install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => Exit::Usage.into(),
            };
        }
    };
    crate::logging::init(&cli.global);
    let result = match cli.command {
        Command::Plan(args) => commands::plan::run(args, &cli.global),
        Command::Run(args) => commands::run::run(args, &cli.global),
        Command::Resume(args) => commands::resume::run(args, &cli.global),
        Command::Retry(args) => commands::retry::run(args, &cli.global),
        Command::Fields(args) => commands::fields::run(args, &cli.global),
        Command::Undo(args) => commands::undo::run(args, &cli.global),
        Command::Status(args) => commands::status::run(args, &cli.global),
        Command::Report(args) => commands::report::run(args, &cli.global),
        Command::MockServer(args) => commands::mock_server::run(args, &cli.global),
        Command::Demo(args) => commands::demo::run(args, &cli.global),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "massup", &mut out);
            crate::output::print(&String::from_utf8_lossy(&out));
            Ok(Exit::Success)
        }
    };
    match result {
        Ok(exit) => exit.into(),
        Err(error) => {
            let exit = exit_for_error(&error);
            // Errors can carry server text; the redactor masks any secret in it.
            eprintln!("error: {}", crate::redact::redact(&format!("{error:#}")));
            if let Some(hint) = crate::exit::hint_for_error(&error) {
                eprintln!("hint: {hint}");
            }
            exit.into()
        }
    }
}
