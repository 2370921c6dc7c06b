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
    Plan(Box<commands::plan::Args>),
    /// Plan a CSV and send it: the main job.
    // Boxed: the plan and send flags make these two variants ten times the others.
    Run(Box<commands::run::Args>),
    /// Continue a run that stopped (killed, interrupted, out of budget, fatal error fixed).
    Resume(commands::resume::Args),
    /// Re-send a run's retryable records (locked, not approved, ...) in fresh, regrouped calls.
    Retry(commands::retry::Args),
    /// List a module's fields: API names, labels, types, and which calls can write them.
    Fields(commands::fields::Args),
    /// Write a module's records (id and the fields named) to a CSV that `run` reads back.
    Export(commands::export::Args),
    /// Take a run back: write every record's old value again (from the run's snapshot), leaving records changed since alone.
    Undo(commands::undo::Args),
    /// Show runs and what their records came to.
    Status(commands::status::Args),
    /// End a run that was never meant to go: resume and retry will not send it.
    Discard(commands::discard::Args),
    /// Write one row per input row with its outcome, in input order.
    Report(commands::report::Args),
    /// Delete the access tokens massup keeps between runs (the next run mints a new one).
    Logout(commands::logout::Args),
    /// Serve the embedded Zoho-compatible mock CRM on 127.0.0.1.
    #[command(
        after_help = "Its records: Leads with 18-digit ids, the same for the same --records and --seed (the seed collection's 738964000002131001 and 738964000002130131 first, then ascending from 738964000002140000 with gaps), emails lead00000.s1@example.com, lead00001.s1@example.com, ... (the record's index and --seed); every other field is empty until a call writes it (the fields are those of samples/fields/Leads.json). `--print-sheet N` writes a sheet of the first N.

Examples:
  massup mock-server --port 8080
      serve on http://127.0.0.1:8080 until Ctrl-C; then, in another shell:
  massup mock-server --print-sheet 500 > sheet.csv
      500 of its records (id, Email) with a new Lead_Status and City each
  ZOHO_ACCESS_TOKEN=mock-token massup run --csv sheet.csv --module Leads --api-domain http://127.0.0.1:8080 --fields samples/fields/Leads.json --yes"
    )]
    MockServer(commands::mock_server::Args),
    /// A complete rehearsal against the embedded mock CRM: no credentials, no network.
    Demo(commands::demo::Args),
    /// Print shell completions, e.g. `massup completions bash > /etc/bash_completion.d/massup`.
    #[command(after_help = "Examples:
  massup completions bash > ~/.local/share/bash-completion/completions/massup
  massup completions zsh > \"${fpath[1]}/_massup\"
  massup completions fish > ~/.config/fish/completions/massup.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The command's name, as typed (for the JSON envelope).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Plan(_) => "plan",
            Command::Run(_) => "run",
            Command::Resume(_) => "resume",
            Command::Retry(_) => "retry",
            Command::Fields(_) => "fields",
            Command::Export(_) => "export",
            Command::Undo(_) => "undo",
            Command::Status(_) => "status",
            Command::Discard(_) => "discard",
            Command::Report(_) => "report",
            Command::Logout(_) => "logout",
            Command::MockServer(_) => "mock-server",
            Command::Demo(_) => "demo",
            Command::Completions { .. } => "completions",
        }
    }

    /// Whether the command was asked for one JSON object on stdout (`--json`).
    pub fn json(&self) -> bool {
        match self {
            Command::Plan(args) => args.json,
            Command::Run(args) => args.json,
            Command::Resume(args) => args.json,
            Command::Retry(args) => args.json,
            Command::Fields(args) => args.json,
            Command::Export(args) => args.json,
            Command::Undo(args) => args.json,
            Command::Status(args) => args.json,
            Command::Discard(args) => args.json,
            Command::Report(args) => args.json,
            Command::Logout(args) => args.json,
            Command::Demo(args) => args.json,
            Command::MockServer(_) | Command::Completions { .. } => false,
        }
    }
}

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    crate::redact::install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_error(e),
    };
    let mut global = cli.global.clone();
    global.json = cli.command.json();
    global.command_name = cli.command.name();
    global.ask_first = match &cli.command {
        Command::Run(args) => !args.yes && !args.json,
        Command::Retry(args) => !args.yes && !args.json,
        Command::Undo(args) => !args.yes && !args.json,
        _ => false,
    };
    crate::logging::init(&global);
    let name = cli.command.name();
    let global = &global;
    let result = match cli.command {
        Command::Plan(args) => commands::plan::run(*args, global),
        Command::Run(args) => commands::run::run(*args, global),
        Command::Resume(args) => commands::resume::run(args, global),
        Command::Retry(args) => commands::retry::run(args, global),
        Command::Fields(args) => commands::fields::run(args, global),
        Command::Export(args) => commands::export::run(args, global),
        Command::Undo(args) => commands::undo::run(args, global),
        Command::Status(args) => commands::status::run(args, global),
        Command::Discard(args) => commands::discard::run(args, global),
        Command::Report(args) => commands::report::run(args, global),
        Command::Logout(args) => commands::logout::run(args, global),
        Command::MockServer(args) => commands::mock_server::run(args, global),
        Command::Demo(args) => commands::demo::run(args, global),
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
            // Errors can carry server text; the redactor masks any secret in it (here,
            // and again on the way out).
            let message = crate::redact::redact(&format!("{error:#}")).into_owned();
            let hint = crate::exit::hint_for_error(&error);
            report_error(name, global.json, exit, &message, hint);
            exit.into()
        }
    }
}

/// An error that ended a command: on stderr (a JSON line with --log-format json), and as
/// the one JSON object on stdout with --json.
fn report_error(command: &str, json: bool, exit: Exit, message: &str, hint: Option<&str>) {
    let mut text = format!("error: {message}");
    if let Some(hint) = hint {
        text.push_str(&format!("\nhint: {hint}"));
    }
    let fields = serde_json::json!({
        "kind": crate::render::json::error_kind(exit),
        "exit_code": exit.code(),
        "hint": hint,
    });
    crate::logging::notice(crate::logging::Level::Error, "error", &text, fields);
    if json {
        crate::render::json::print_error(command, exit, message, hint);
    }
}

/// A command line clap refused (or `--help`, `--version`). Before parsing, the flags are
/// unknown; `--json` and `--log-format json` are looked for in the raw arguments so that a
/// cron job asking for JSON gets JSON for a typo too.
fn parse_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            Exit::Usage.into()
        } else {
            ExitCode::SUCCESS
        };
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let log_json = args.iter().any(|a| a == "--log-format=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--log-format" && w[1] == "json");
    if !json && !log_json {
        let _ = e.print();
        return Exit::Usage.into();
    }
    // clap's text without its styling, first line only for the message.
    let rendered = e.render().to_string();
    let message = rendered
        .lines()
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string();
    if log_json {
        crate::logging::set_format(crate::global::LogFormat::Json);
    } else {
        let _ = e.print();
    }
    // The first argument that names a subcommand (`--db FILE` may come before it).
    let cli = <Cli as clap::CommandFactory>::command();
    let command = args
        .iter()
        .find_map(|a| {
            cli.get_subcommands()
                .find(|c| c.get_name() == a)
                .map(|c| c.get_name().to_string())
        })
        .unwrap_or_else(|| "massup".into());
    if log_json {
        crate::logging::notice(
            crate::logging::Level::Error,
            "error",
            &format!("error: {message}"),
            serde_json::json!({"kind": "usage", "exit_code": Exit::Usage.code(), "details": rendered.trim_end()}),
        );
    }
    if json {
        crate::render::json::print_error(&command, Exit::Usage, &message, Some("see --help"));
    }
    Exit::Usage.into()
}
