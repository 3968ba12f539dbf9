//! Command-line parsing: raw arguments into one of the subcommands.

use clap::{Parser, Subcommand};

use crate::commands;
use crate::exit;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Run untrusted programs in a sealed sandbox; let file handles through by policy."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a command inside the sandbox.
    Run(commands::run_args::RunArgs),
    /// Check, show and list policies.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
    /// Review the audit record: list, show, verify, stats, tail.
    Audit(commands::audit::AuditCommand),
    /// Inside the sandbox: read, write or query a file through the broker.
    Open(commands::open::OpenArgs),
    /// Would a policy let the program read (or write) PATH, by which rule,
    /// and what would change it. Exit 0 if allowed, 1 if refused.
    #[cfg(target_os = "linux")]
    Explain(commands::explain::ExplainArgs),
}

/// Runs sluice and returns the process exit code.
pub fn main() -> i32 {
    crate::phase::init();
    // Started as `bwrap` (the stand-in in the sandbox's view): bubblewrap's
    // command line, not sluice's.
    #[cfg(target_os = "linux")]
    if commands::bwrap::stand_in::invoked_as_bwrap() {
        init_tracing(commands::bwrap::stand_in::LOG_LEVEL);
        return commands::bwrap::main();
    }
    // Started as `sandbox-exec` (macOS: first on the program's PATH).
    #[cfg(target_os = "macos")]
    if commands::sandbox_exec::invoked_as_sandbox_exec() {
        init_tracing("error");
        return commands::sandbox_exec::main();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit::ERROR } else { 0 };
        }
    };
    init_tracing("warn");
    crate::phase::mark("start-up, arguments");
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Policy(cmd) => commands::policy::run(cmd),
        Command::Audit(cmd) => commands::audit::run(cmd),
        Command::Open(args) => commands::open::run(args),
        #[cfg(target_os = "linux")]
        Command::Explain(args) => commands::explain::run(args),
    };
    exit::finish("sluice", result)
}

/// Logs on stderr at `level` unless `SLUICE_LOG` says otherwise.
fn init_tracing(level: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    // Colour codes only for a person's terminal: in a log file or a pipe
    // they are noise (and NO_COLOR, https://no-color.org, turns them off).
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let colour = std::io::stderr().is_terminal() && !no_color;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .try_init();
}
