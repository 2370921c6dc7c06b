//! The `massup` binary: parses arguments and hands over to the library.
fn main() -> std::process::ExitCode {
    massup::cli::main()
}
