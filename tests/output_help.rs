//! `--help`: every command has an Examples section, and the flags every command takes are
//! listed under their own heading, not mixed into the command's own.

fn help(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_massup"))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_command_has_examples_and_global_options_apart() {
    let commands = [
        "plan",
        "run",
        "resume",
        "retry",
        "fields",
        "undo",
        "status",
        "report",
        "demo",
        "mock-server",
        "completions",
    ];
    for command in commands {
        for flag in ["-h", "--help"] {
            let text = help(&[command, flag]);
            let examples = text
                .find("Examples:\n  massup ")
                .unwrap_or_else(|| panic!("{command} {flag}: no Examples section\n{text}"));
            assert!(
                text[examples..].contains(&format!("massup {command}"))
                    || text[examples..].contains(&format!("massup -q {command}")),
                "{command} {flag}: the examples use the command\n{text}"
            );
            let global = text
                .find("\nGlobal options:\n")
                .unwrap_or_else(|| panic!("{command} {flag}: no Global options heading\n{text}"));
            for global_flag in ["--quiet", "--verbose", "--log-format", "--config"] {
                let at = text
                    .find(global_flag)
                    .unwrap_or_else(|| panic!("{command} {flag}: no {global_flag}"));
                assert!(
                    at > global,
                    "{command} {flag}: {global_flag} before its heading\n{text}"
                );
            }
        }
    }
    // The sending commands group their own flags by what they are for.
    let run = help(&["run", "-h"]);
    for heading in [
        "Plan options:",
        "Connection options:",
        "Dispatch options:",
        "Output options:",
    ] {
        assert!(run.contains(heading), "run -h lacks {heading}\n{run}");
    }
}
