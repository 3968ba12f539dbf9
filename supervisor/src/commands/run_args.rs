//! `sluice run`'s arguments ([`super::run`] runs them).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A built-in policy name or a policy file.
    #[arg(long, default_value = "default", value_name = "NAME|FILE")]
    pub policy: String,
    /// The workspace ($WORKSPACE), where the program starts; defaults to the
    /// current directory. A relative DIR is taken from the current directory.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Also allow reading this tree (relative to the current directory
    /// unless it starts with /, ~ or a variable).
    #[arg(long = "allow-read", value_name = "PATH")]
    pub allow_read: Vec<String>,
    /// Also allow reading and writing this tree (relative as --allow-read).
    #[arg(long = "allow-write", value_name = "PATH")]
    pub allow_write: Vec<String>,
    /// Also pass these environment variables from sluice's own (repeatable;
    /// globs such as 'ANTHROPIC_*').
    #[arg(long = "pass-env", value_name = "NAME")]
    pub pass_env: Vec<String>,
    /// Set this environment variable in the sandbox (repeatable; overrides
    /// the policy's `set` and a passed value).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Network: none, all, or tcp:PORTS (e.g. tcp:443,8080,bind:8000).
    #[arg(long, value_name = "none|all|tcp:PORTS")]
    pub net: Option<String>,
    /// Let the program reach this host through sluice's proxy (repeatable):
    /// a name, *.DOMAIN, or an address, with :PORT (default 443 and 80).
    /// The program gets a network of its own with nothing else in it.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    pub allow_host: Vec<String>,
    /// Put a connection to this host to you at a prompt (repeatable), as
    /// `ask_hosts` does: HOST[:PORT] as for --allow-host. Without a
    /// terminal, --approve answers.
    #[arg(long = "ask-host", value_name = "HOST[:PORT]")]
    pub ask_host: Vec<String>,
    /// How requests under an `ask` rule are answered when no person can be
    /// asked (no terminal).
    #[arg(long, value_enum, default_value = "deny", value_name = "deny|allow")]
    pub approve: Approve,
    /// Inside another sluice sandbox: apply this one on top (stack), run the
    /// command directly (skip; warn also says so), or refuse (error).
    /// Default: the policy's `nested`, else stack.
    #[arg(long, value_name = "stack|skip|warn|error")]
    pub nested: Option<policies::Nested>,
    /// Seconds a prompt waits for the person before it answers deny.
    #[arg(long, default_value_t = 60, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub approve_timeout: u64,
    /// Also broker the program's own open calls (seccomp user
    /// notification), not only requests made with the SDK.
    #[arg(long)]
    pub transparent: bool,
    /// Where the audit record goes (default $XDG_STATE_HOME/sluice/audit).
    #[arg(long, value_name = "DIR")]
    pub audit_dir: Option<PathBuf>,
    /// Run although a policy file that a sandbox could write has changed
    /// since the last session that used it: the change is yours.
    #[arg(long)]
    pub accept_policy_change: bool,
    /// Print the enforcement report on stderr, and at the end what the
    /// sandbox refused (printed anyway when the program fails).
    #[arg(short, long)]
    pub verbose: bool,
    /// Learn: broker the program's own opens (as --transparent), ask
    /// nobody, and write to FILE a policy that extends this one and allows
    /// what was refused, for you to review.
    #[arg(long, value_name = "FILE")]
    pub learn: Option<PathBuf>,
    /// The command and its arguments. sluice's options end at `--` or at
    /// the first word that is not an option: an unknown option before it is
    /// an error, never run as the command (`--polcy`).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl RunArgs {
    /// How the prompts behave (`--approve-timeout`, `--approve` once nobody
    /// can answer), "always" answers written to `overlay_file`; the same
    /// on Linux and macOS.
    pub fn prompt_settings(&self, overlay_file: Option<PathBuf>) -> crate::prompt::Settings {
        crate::prompt::Settings {
            timeout: std::time::Duration::from_secs(self.approve_timeout),
            limits: crate::prompt::queue::Limits::default(),
            overlay_file,
            fallback_allow: self.approve == Approve::Allow,
        }
    }

    /// `sluice run ARGS...` parsed as the command line would be (the bwrap
    /// stand-in builds its stacked session from these).
    pub fn parse_as_run<I, T>(args: I) -> Result<RunArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        /// `sluice` with its `run` subcommand only.
        #[derive(Parser)]
        #[command(name = "sluice")]
        struct Sluice {
            #[command(subcommand)]
            command: Only,
        }
        #[derive(Subcommand)]
        enum Only {
            /// Run a command inside the sandbox.
            Run(RunArgs),
        }
        let argv = ["sluice".into(), "run".into()]
            .into_iter()
            .chain(args.into_iter().map(Into::into));
        let Only::Run(args) = Sluice::try_parse_from(argv)?.command;
        Ok(args)
    }
}

/// The answer to `ask` rules when nobody is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Approve {
    Deny,
    Allow,
}
