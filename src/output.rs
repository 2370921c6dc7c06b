//! Standard output for commands. A closed pipe (`massup status | head -3`) ends output
//! quietly instead of panicking as `println!` would; the command itself goes on, so a run
//! whose reader went away still finishes and records its outcomes.
use std::io::Write;

/// Writes `text` to stdout; errors (a closed pipe above all) are ignored.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// `println!` that survives a closed pipe.
#[macro_export]
macro_rules! outln {
    () => { $crate::output::print("\n") };
    ($($arg:tt)*) => { $crate::output::print(&format!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that survives a closed pipe.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::print(&format!($($arg)*)) };
}
