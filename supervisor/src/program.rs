//! The program a session runs: its environment and where its executable
//! is, as the sandbox will see them. Shared by the Linux and macOS
//! launchers.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use policies::Policy;

use crate::exit;

/// The child's environment: the policy's pass list filtered from ours, then
/// its fixed values, then sluice's own variables.
pub fn child_env(policy: &Policy, extra: &[(&str, &OsStr)]) -> Result<Vec<(OsString, OsString)>> {
    let mut b = globset::GlobSetBuilder::new();
    for pat in &policy.env.pass {
        b.add(globset::Glob::new(pat).with_context(|| format!("environment pattern '{pat}'"))?);
    }
    let pass = b.build()?;
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| k.to_str().is_some_and(|k| pass.is_match(k)))
        .collect();
    let mut set = |k: OsString, v: OsString| {
        env.retain(|(ek, _)| *ek != k);
        env.push((k, v));
    };
    for (k, v) in &policy.env.set {
        set(k.into(), v.into());
    }
    for (k, v) in extra {
        set(k.into(), (*v).to_owned());
    }
    env.sort();
    Ok(env)
}

/// Finds `cmd` as execvp would, in the child's PATH, in the sandbox's view:
/// a PATH entry whose file the policy does not let the program execute
/// (outside every `execute` tree, or denied) is skipped, so the program
/// starts what it would have found itself (`~/.pyenv/shims/python3`
/// outside the policy: `/usr/bin/python3`). Found only outside, it is
/// taken with a warning (the sandbox refuses the exec). A command named
/// with a `/` is taken as named.
pub fn find_program(
    cmd: &OsStr,
    env: &[(OsString, OsString)],
    cwd: &Path,
    fs: &policies::FsPolicy,
) -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
    };
    if cmd.as_bytes().contains(&b'/') {
        let p = cwd.join(cmd);
        if !p.exists() {
            return Err(exit::with_code(
                exit::NOT_FOUND,
                format!("{}: No such file or directory", cmd.to_string_lossy()),
            ));
        }
        if !executable(&p) {
            return Err(exit::with_code(
                exit::CANNOT_EXECUTE,
                format!("{}: Permission denied", cmd.to_string_lossy()),
            ));
        }
        return Ok(p);
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let in_view = |p: &Path| {
        p.canonicalize().is_ok_and(|real| {
            fs.execute.iter().any(|root| real.starts_with(root))
                && !fs.deny.iter().any(|denied| real.starts_with(denied))
        })
    };
    let found: Vec<PathBuf> = std::env::split_paths(&path)
        .map(|dir| cwd.join(dir).join(cmd))
        .filter(|p| executable(p))
        .collect();
    if let Some(program) = found.iter().find(|p| in_view(p)) {
        return Ok(program.clone());
    }
    match found.into_iter().next() {
        // Launched all the same, as the program itself would have tried it:
        // the sandbox refuses the exec (127 or 126) unless a required layer
        // stops the launch first.
        Some(outside) => {
            tracing::warn!(
                "{}: the only one on PATH is {}, which the policy does not let the program \
                 execute: add its directory to [filesystem] execute",
                cmd.to_string_lossy(),
                outside.display()
            );
            Ok(outside)
        }
        None => Err(exit::with_code(
            exit::NOT_FOUND,
            format!("{}: command not found", cmd.to_string_lossy()),
        )),
    }
}
