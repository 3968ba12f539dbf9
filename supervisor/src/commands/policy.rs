//! `sluice policy check | show | list`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use policies::Vars;

#[cfg(target_os = "linux")]
use crate::launch;
#[cfg(target_os = "macos")]
use crate::platform::macos::run::SessionDir;
#[cfg(target_os = "linux")]
use crate::session_dir::SessionDir;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Parse and resolve a policy file; report the first error.
    Check {
        file: String,
        #[arg(long, value_name = "DIR")]
        workspace: Option<PathBuf>,
    },
    /// Print the fully resolved policy (after extends and variables).
    Show {
        #[arg(default_value = "default")]
        name: String,
        #[arg(long, value_name = "DIR")]
        workspace: Option<PathBuf>,
        /// Print the macOS Seatbelt profile generated from it instead.
        #[arg(long)]
        seatbelt: bool,
    },
    /// List the built-in policies.
    List,
}

pub fn run(cmd: PolicyCommand) -> Result<i32> {
    match cmd {
        PolicyCommand::Check { file, workspace } => {
            let (policy, _, _) = resolve(&file, workspace)?;
            println!("policy '{file}': ok ({})", policy.name);
            Ok(0)
        }
        PolicyCommand::Show {
            name,
            workspace,
            seatbelt,
        } => {
            // $TMPDIR is different in every session: print the variable, so
            // the output is itself a policy that resolves later.
            let (mut policy, tmpdir, ws) = resolve(&name, workspace)?;
            if seatbelt {
                // As `sluice run` does: a `deny` pattern's matches that
                // exist now are denied like listed paths.
                (policy.filesystem)
                    .expand_deny_patterns(&ws)
                    .map_err(|why| anyhow::anyhow!("{why}"))?;
                let session = tmpdir.parent().unwrap_or(&tmpdir).join("private");
                print!("{}", super::seatbelt::profile(&name, &policy, &session)?);
                return Ok(0);
            }
            let tmpdir = format!("\"{}", tmpdir.display());
            print!("{}", policy.to_toml().replace(&tmpdir, "\"$TMPDIR"));
            Ok(0)
        }
        PolicyCommand::List => {
            for name in policies::builtin_names() {
                let about = policies::builtin_source(name)
                    .and_then(|src| src.lines().next())
                    .map(|l| l.trim_start_matches('#').trim())
                    .unwrap_or("");
                println!("{name:<12} {about}");
            }
            Ok(0)
        }
    }
}

/// Resolves a policy the way `sluice run` would, against a throwaway session
/// directory (so `$TMPDIR` shows a real, canonical path).
/// The policy resolved as a session would resolve it, with the session's
/// `$TMPDIR` and workspace.
fn resolve(name: &str, workspace: Option<PathBuf>) -> Result<(policies::Policy, PathBuf, PathBuf)> {
    let spec = policies::load(name)?;
    let (vars, dir) = session_vars(workspace)?;
    let policy = spec.resolve(&vars)?;
    tracing::debug!(
        files = ?spec.files(),
        broker_rules = policy.broker.len(),
        protect = policy.filesystem.protect.rules().len(),
        "policy '{}' resolved",
        policy.name
    );
    Ok((policy, dir.tmp(), vars.workspace))
}

/// The variables a session would have, with a throwaway session directory
/// for `$TMPDIR` (gone when the returned directory is dropped).
pub(super) fn session_vars(workspace: Option<PathBuf>) -> Result<(Vars, SessionDir)> {
    let ws = match workspace {
        Some(ws) => ws,
        None => std::env::current_dir()?,
    };
    #[cfg(target_os = "linux")]
    let dir = {
        let stacked = crate::nesting::detect().is_some();
        let records = crate::session_dir::records_dir_for(stacked)
            .context("the session records directory")?;
        SessionDir::create(&launch::new_session_id()?, &records)?
    };
    #[cfg(target_os = "macos")]
    let dir = {
        let records =
            crate::platform::liveness::records_dir().context("the session records directory")?;
        SessionDir::create(&crate::platform::macos::run::session_id()?, &records)?
    };
    let vars = Vars {
        home: std::env::var_os("HOME")
            .map(PathBuf::from)
            .context("HOME is not set")?,
        workspace: ws
            .canonicalize()
            .with_context(|| format!("workspace '{}'", ws.display()))?,
        tmpdir: dir.tmp(),
    };
    Ok((vars, dir))
}
