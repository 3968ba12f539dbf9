//! Command-line parsing: raw arguments into one of the subcommands.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use crate::commands;
use crate::commands::run_args::RunArgs;
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

/// `sluice run ARGS...` parsed as the command line would be (the bwrap
/// stand-in builds its stacked session from these).
pub fn run_args<I, T>(args: I) -> Result<RunArgs, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv = ["sluice".into(), "run".into()]
        .into_iter()
        .chain(args.into_iter().map(Into::into));
    match Cli::try_parse_from(argv)?.command {
        Command::Run(args) => Ok(args),
        _ => unreachable!("parsed as `sluice run`"),
    }
}

/// Runs sluice and returns the process exit code.
pub fn main() -> i32 {
    crate::phase::init();
    // Started as `bwrap` (the stand-in in the sandbox's view): bubblewrap's
    // command line, not sluice's.
    #[cfg(target_os = "linux")]
    if commands::bwrap::invoked_as_bwrap() {
        init_tracing(commands::bwrap::LOG_LEVEL);
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
    finish("sluice", result)
}

/// The exit code of a command's result; an error is said on stderr after
/// `name: ` and ends with its code (125 unless it carries one).
pub fn finish(name: &str, result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(err) => {
            let code = err
                .downcast_ref::<exit::Exit>()
                .map_or(exit::ERROR, |e| e.code);
            eprintln!("{name}: {err:#}");
            code
        }
    }
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
