//! `sluice explain PATH [--write] [--policy P]`: would the sandbox let a
//! program read (or write) this path, by which rule (file and line), and
//! what would change the answer. From outside a sandbox, with nothing run.
//!
//! The answer is the sandbox's own model of its file-system layer
//! ([`SandboxView`], which transparent brokering consults for every call),
//! the guard's `protect` rules for writes, and the broker's decision for
//! what the program could ask sluice for; the rule named is the most
//! specific `[filesystem]` entry covering the path, resolved as the launch
//! resolves it ([`policies::PolicySpec::fs_rules`]).

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use policies::{FsRule, Want};

use crate::broker::protect::{judge_name, Naming};
use crate::broker::safe_open;
use crate::broker::transparent::view::SandboxView;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The path to ask about (relative to the current directory, or ~/...).
    #[arg(value_name = "PATH")]
    pub path: String,
    /// Ask about writing (creating, changing, removing), not reading.
    #[arg(long)]
    pub write: bool,
    /// A built-in policy name or a policy file.
    #[arg(long, default_value = "default", value_name = "NAME|FILE")]
    pub policy: String,
    /// The workspace ($WORKSPACE); defaults to the current directory.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

/// Exit status: 0 if allowed, 1 if refused.
pub fn run(args: ExplainArgs) -> Result<i32> {
    let spec = policies::load(&args.policy)?;
    let (vars, _dir) = super::policy::session_vars(args.workspace.clone())?;
    let policy = spec.resolve(&vars)?;
    let rules = spec.fs_rules(&vars)?;
    let path = real_path(&args.path, &vars.home)?;
    // The name may hold what a terminal acts on (`judge_name`).
    let shown = crate::audit::escape::for_terminal(&tilde(&path, &vars.home)).into_owned();
    let access = if args.write { "write" } else { "read" };

    // A `deny` pattern (`**/.env`) hides what it matches at launch.
    let pattern = policy.filesystem.deny_pattern_for(&vars.workspace, &path);
    let allowed =
        pattern.is_none() && SandboxView::new(&policy.filesystem).allows(&path, args.write);
    let covering = |lists: &[&str]| deepest(&rules, lists, &path, false);
    let grants: &[&str] = if args.write {
        &["write"]
    } else {
        &["read", "write", "execute"]
    };
    let protected = if args.write {
        let protect = &policy.filesystem.protect;
        protect.protects(&path).or_else(|| protect.leads_to(&path))
    } else {
        None
    };
    // A name holding a control character is not made (the guard's rule,
    // whatever the lists say).
    let bad_name = (args.write && !policy.filesystem.protect.is_empty())
        .then(|| path.file_name())
        .flatten()
        .and_then(|name| judge_name(name.as_bytes(), Naming::File));
    let verdict = if allowed && protected.is_none() && bad_name.is_none() {
        "allowed"
    } else {
        "refused"
    };
    println!("{shown}: {access} {verdict} by policy '{}'", args.policy);

    // A deny whose target is not there yet still names what the policy
    // means (`~/.ssh` on a machine without one).
    let denied = covering(&["deny"]).or_else(|| deepest(&rules, &["deny"], &path, true));
    if let Some(rule) = denied {
        println!("  refused by {}", named(rule));
        println!(
            "  a deny holds inside every allowed tree, and a policy extending this one \
             cannot lift it (lists only grow): write a policy without that line"
        );
    } else if let Some(rule) = pattern {
        println!("  refused by {rule}: a file of that name is hidden at any depth");
        println!(
            "  a policy extending this one can except it: [filesystem] deny = [\"!{}\"]",
            tilde(&path, &vars.home)
        );
    } else if let Some(rule) = args.write.then(|| covering(&["read_only"])).flatten() {
        println!("  refused by {}", named(rule));
        println!(
            "  read_only holds inside writable trees; to change the file, do it outside sluice"
        );
    } else if let Some(rule) = covering(grants) {
        println!("  allowed by {}", named(rule));
    } else {
        let (flag, list) = if args.write {
            ("--allow-write", "write")
        } else {
            ("--allow-read", "read")
        };
        let covers = if args.write {
            "write"
        } else {
            "read, write or execute"
        };
        println!("  no {covers} rule covers it");
        println!(
            "  to allow: sluice run {flag} {shown} ..., or in a policy that extends '{}': \
             [filesystem] {list} = [\"{shown}\"]",
            args.policy
        );
    }
    if let Some(rule) = protected {
        println!("  refused by {rule}: it runs code outside the sandbox later");
        println!("  the sandbox never writes it; make the change yourself outside sluice");
        if !rule.pinned() {
            println!(
                "  Python's bytecode: python in the sandbox keeps its cache in the session's \
                 TMPDIR (PYTHONPYCACHEPREFIX), over the host's own bytecode that sluice keeps \
                 across the workspace's sessions; one run without that variable \
                 (`python -E`) has its cache writes refused and recompiles, no harm done"
            );
        }
        if pinned(&policy.filesystem, &path) {
            println!(
                "  it exists: `sluice run` keeps it in place (a read-only mount), so it is \
                 not removed or renamed away either, nor is a directory above it"
            );
        }
    }
    if let Some(refusal) = &bad_name {
        println!(
            "  refused by the guard: {} ({}); it may be written if it is there already",
            refusal.rule, refusal.why
        );
        println!("  the sandbox makes no such name (EINVAL); make it yourself outside sluice");
    }
    let want = if args.write { Want::Write } else { Want::Read };
    let broker = policy.broker.decide(&path, want);
    // The broker refuses a protected path whatever its rules say.
    let (answer, reason) = match protected {
        Some(rule) => ("deny", format!("protected by {rule}")),
        None => (broker.verdict.as_str(), broker.reason),
    };
    println!(
        "  through the broker (sluice open, the SDK, --transparent): {answer} ({})",
        reason.trim_end_matches('.')
    );
    Ok(if verdict == "allowed" { 0 } else { 1 })
}

/// The most specific rule of `lists` covering `path`: the deepest of the
/// paths it stands for (or, with `absent`, those it would stand for) that
/// `path` is or lies beneath.
fn deepest<'a>(
    rules: &'a [FsRule],
    lists: &[&str],
    path: &Path,
    absent: bool,
) -> Option<&'a FsRule> {
    rules
        .iter()
        .filter(|r| lists.contains(&r.list))
        .filter_map(|r| {
            let paths = if absent { &r.absent } else { &r.paths };
            let depth = paths
                .iter()
                .filter(|p| path.starts_with(p))
                .map(|p| p.components().count())
                .max()?;
            Some((depth, r))
        })
        // The deepest; among equals, the last written (the child's).
        .max_by_key(|(depth, _)| *depth)
        .map(|(_, r)| r)
}

fn named(rule: &FsRule) -> String {
    format!("{} \"{}\" ({})", rule.list, rule.written, rule.location)
}

/// `written` as an absolute path with symlinks resolved as far as it
/// exists (the rest kept as written, `.` and `..` applied lexically).
fn real_path(written: &str, home: &Path) -> Result<PathBuf> {
    let path = if written == "~" {
        home.to_path_buf()
    } else if let Some(rest) = written.strip_prefix("~/") {
        home.join(rest)
    } else {
        std::env::current_dir()
            .context("the current directory")?
            .join(written)
    };
    let path = safe_open::normalize(&path);
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return Ok(rest.iter().rev().fold(real, |p, c| p.join(c)));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return Ok(path),
        }
    }
}

/// `path` with the home directory written `~`.
fn tilde(path: &Path, home: &Path) -> String {
    let home = home.canonicalize().unwrap_or_else(|_| home.to_path_buf());
    match path.strip_prefix(&home) {
        Ok(rest) if rest.as_os_str().is_empty() => "~".to_owned(),
        Ok(rest) => format!("~/{}", rest.display()),
        Err(_) => path.display().to_string(),
    }
}

/// Whether `sluice run` pins `path` (`run_state::pin_protected`): what
/// the `protect` list protects, exists (not a symlink: no mount sits on
/// one) in a writable tree, is not covered by a `read_only` or `deny`
/// entry already (an `.env` there at launch: its placeholder stays), and is
/// not a file the guard lets the program replace whole nor Python's bytecode
/// (`ProtectRule::pinned`).
fn pinned(fs: &policies::FsPolicy, path: &Path) -> bool {
    let exists = path.symlink_metadata().is_ok_and(|m| !m.is_symlink());
    let covered = (fs.read_only.iter().chain(&fs.deny)).any(|c| path.starts_with(c))
        || fs.deny_patterns.protects(path).is_some();
    exists
        && !covered
        && fs.protect.pinned().protects(path).is_some()
        && fs.write.iter().any(|w| path.starts_with(w))
        && !fs.write.iter().any(|w| w.starts_with(path))
        && !crate::broker::replaced_when_checked(path)
}
