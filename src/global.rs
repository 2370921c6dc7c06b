//! Flags that apply to every command, and the database flag that only the commands with a
//! database take. Kept apart from `cli` so that commands depend on these and `cli` on the
//! commands, one way.
use std::path::{Path, PathBuf};

/// Flags every command takes (`--db` only before the command name; see [`DbArg`]).
#[derive(clap::Args, Debug, Clone)]
pub struct GlobalArgs {
    /// SQLite database holding runs [default: massup.db, or `db` in massup.toml]
    #[arg(
        long,
        env = "MASSUP_DB",
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub db: Option<PathBuf>,
    /// Configuration file [default: ./massup.toml, else the user config folder]
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub config: Option<PathBuf>,
    /// Print only errors and the final summary line.
    #[arg(long, short, global = true, help_heading = "Global options")]
    pub quiet: bool,
    /// More log detail (-v debug, -vv trace).
    #[arg(long, short, global = true, action = clap::ArgAction::Count, help_heading = "Global options")]
    pub verbose: u8,
    /// Log format: human for people, json for cron jobs and log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, help_heading = "Global options")]
    pub log_format: LogFormat,
    /// The command's own `--json` flag, copied here by `cli` so that the layers a command
    /// shares with others (the end of a send, the progress display) know that stdout is
    /// for one JSON object only.
    #[arg(skip)]
    pub json: bool,
    /// The command's name (`run`, `resume`, ...), set by `cli`: stored with each send.
    #[arg(skip)]
    pub command_name: &'static str,
    /// Ask before sending when stdin is a terminal (`run` and `retry` without `--yes` or
    /// `--json`), set by `cli`.
    #[arg(skip)]
    pub ask_first: bool,
}

/// `--db` for the commands that work on a database, so that it is listed where it means
/// something (not on `demo`, `mock-server` or `completions`). `massup --db F CMD` works too.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DbArg {
    /// SQLite database holding runs [default: massup.db, or `db` in massup.toml; env MASSUP_DB]
    #[arg(long = "db", value_name = "FILE", help_heading = "Global options")]
    pub db: Option<PathBuf>,
}

impl GlobalArgs {
    /// The database named on the command line: after the command name, else before it
    /// (or MASSUP_DB).
    pub fn db_flag<'a>(&'a self, local: &'a DbArg) -> Option<&'a Path> {
        local.db.as_deref().or(self.db.as_deref())
    }
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}
