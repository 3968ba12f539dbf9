//! What `sluice run` keeps from the program before launching it: sluice's
//! own state (the audit record, the configuration, the session records, the
//! policy's pins and files) and other sessions' directories, denied to the
//! sandbox and never served by the broker; what the policy denies, never
//! served either; the approvals overlay, trusted only where no sandbox
//! could have written it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use policies::Policy;

use super::run_args::RunArgs;
use super::run_session::{check_policy_pins, Session};
use crate::audit::{self, AuditLog};
use crate::prompt::{self, overlay::Overlay};
use crate::{nesting, phase, policy_files, session_dir};

/// sluice's own state: the audit record, the configuration (the approvals
/// overlay), the session records; made private before the program starts,
/// so it can be denied to it, and never writable from inside whatever the
/// policy says.
pub(super) struct StateDirs {
    pub(super) audit: PathBuf,
    pub(super) config: PathBuf,
    pub(super) records: PathBuf,
    /// What the `[filesystem] deny` walk learnt at earlier launches, beside
    /// the records; none when stacked (the outer program could write it).
    pub(super) walk_cache: Option<PathBuf>,
    /// Python's bytecode kept across sessions (`crate::pycache`), beside
    /// the records; none when stacked.
    pub(super) pycache: Option<PathBuf>,
}

impl StateDirs {
    pub(super) fn make(args: &RunArgs, s: &Session) -> Result<StateDirs> {
        let (audit_dir, config_dir) = match &s.outer {
            // Stacked: the outer sandbox lets sluice write nowhere else.
            Some(_) => {
                let state = nesting::state_dir();
                (state.join("audit"), state.join("config"))
            }
            None => (AuditLog::default_dir()?, config_dir()?),
        };
        let audit_dir = args.audit_dir.clone().unwrap_or(audit_dir);
        for (dir, what, moved_by) in [
            (&audit_dir, "audit", "--audit-dir DIR or XDG_STATE_HOME"),
            (&config_dir, "configuration", "XDG_CONFIG_HOME"),
        ] {
            audit::ensure_private_dir(dir).with_context(|| {
                format!(
                    "sluice's {what} directory {} (set {moved_by} to a directory you can write)",
                    dir.display()
                )
            })?;
        }
        let records = s.records.canonicalize()?;
        let (walk_cache, pycache) = match &s.outer {
            Some(_) => (None, None),
            None => (
                state_dir(
                    &records,
                    "deny-walk",
                    "no cache of the deny patterns' walk, every directory is listed",
                ),
                state_dir(&records, "pycache", "no bytecode cache across sessions"),
            ),
        };
        Ok(StateDirs {
            audit: audit_dir.canonicalize()?,
            config: config_dir.canonicalize()?,
            records,
            walk_cache,
            pycache,
        })
    }
}

/// `<records>/../NAME`, made private; none, with a warning saying `without`
/// and why, where it cannot be made.
fn state_dir(records: &Path, name: &str, without: &str) -> Option<PathBuf> {
    let dir = records.parent()?.join(name);
    match audit::ensure_private_dir(&dir).and_then(|()| dir.canonicalize()) {
        Ok(dir) => Some(dir),
        Err(e) => {
            tracing::warn!("{without}: {e}");
            None
        }
    }
}

impl StateDirs {
    /// The walk's cache if it may be believed: not where this session's
    /// program may write (it is denied to the program there too, but a
    /// listing in it is not looked at again); a warning naming why not.
    pub(super) fn trusted_walk_cache(&self, s: &Session) -> Option<&Path> {
        let dir = self.walk_cache.as_deref()?;
        let Some(tree) = writable_tree(dir, s) else {
            return Some(dir);
        };
        tracing::warn!(
            "not using the cache of the deny patterns' walk in {}: it lies in {}, which this \
             session's program may write; every directory is listed (set XDG_STATE_HOME \
             outside it)",
            dir.display(),
            tree.display()
        );
        None
    }

    /// Python's bytecode cache if it may be used: as the walk's cache
    /// (`crate::pycache` trusts what it copies there).
    pub(super) fn trusted_pycache(&self, s: &Session) -> Option<&Path> {
        let dir = self.pycache.as_deref()?;
        let Some(tree) = writable_tree(dir, s) else {
            return Some(dir);
        };
        tracing::debug!(
            "no bytecode cache across sessions: {} lies in {}, which this session's program \
             may write",
            dir.display(),
            tree.display()
        );
        None
    }
}

/// The tree this session's program may write that holds `dir`, if any.
fn writable_tree<'a>(dir: &'a Path, s: &'a Session) -> Option<&'a Path> {
    let fs = &s.policy.filesystem;
    let writable = (fs.write.iter()).find(|w| dir.starts_with(w));
    writable
        .or(dir.starts_with(&s.workspace).then_some(&s.workspace))
        .map(PathBuf::as_path)
}

/// Denies sluice's state and other sessions' directories to the sandbox,
/// and returns what the broker never serves (`Shared::protected`).
pub(super) fn hide_state(
    s: &mut Session,
    dirs: &StateDirs,
    pins_dir: Option<PathBuf>,
) -> Vec<(PathBuf, &'static str)> {
    let mut protected = vec![
        (dirs.audit.clone(), "sluice's audit record"),
        (dirs.config.clone(), "sluice's configuration"),
        (s.dir.private(), "sluice's session state"),
        (dirs.records.clone(), "sluice's session records"),
        (
            PathBuf::from("/proc"),
            "process internals (of the supervisor too)",
        ),
        (PathBuf::from("/sys"), "kernel state"),
    ];
    // The broker never serves the policy's files, not even for reading.
    for file in &s.policy_files {
        protected.push((file.clone(), "the session's policy"));
    }
    let mut state = vec![&dirs.audit, &dirs.config, &dirs.records];
    if let Some(cache) = &dirs.walk_cache {
        protected.push((cache.clone(), "sluice's cache of the deny patterns' walk"));
        state.push(cache);
    }
    if let Some(cache) = &dirs.pycache {
        protected.push((cache.clone(), "sluice's cache of Python's bytecode"));
        state.push(cache);
    }
    if let Some(pins) = &pins_dir {
        protected.push((pins.clone(), "sluice's policy pins"));
        state.push(pins);
    }
    deny_in_sandbox(&mut s.policy, &state);
    // Other sessions' directories: the child hides those under our parent
    // (`Veil`), and the broker serves nothing there; live sessions started
    // with another TMPDIR are denied like sluice's own state.
    s.policy.broker.protect_except(
        s.dir.parent().to_path_buf(),
        Some(s.dir.tmp()),
        "another sluice session's directory",
    );
    let others = session_dir::other_live_parents(&dirs.records, s.dir.parent());
    deny_in_sandbox(&mut s.policy, &others.iter().collect::<Vec<_>>());
    for other in others {
        s.policy
            .broker
            .protect(other, "another sluice session's directory");
    }
    protected
}

/// `[filesystem] deny` patterns: every match that exists now is denied like
/// a listed path (a placeholder mounted over it). What the sandbox hides
/// the broker never serves: under `--transparent` an open the placeholder
/// refuses goes to the broker, whose rules (`allow_write = ["$WORKSPACE"]`)
/// would serve the file itself.
///
/// The same walk meets the repositories nested in the workspace: where
/// `nested_hooks`, each one's `core.hooksPath` is protected as the
/// workspace's own is (`hooks_path`).
///
/// With `cache` (`StateDirs::walk_cache`) only the directories changed since
/// an earlier launch are listed (`policies`' `deny_walk::cache`).
///
/// Returns what else the walk learnt for [`pin_protected`]: what the
/// `protect` list protects in the writable trees (`None` if the walk did
/// not look) and the directories and files it added to that list.
pub(super) fn protect_denied(
    s: &mut Session,
    cache: Option<&Path>,
    verbose: bool,
    nested_hooks: bool,
) -> Result<Protected> {
    let fs = &mut s.policy.filesystem;
    let walked = match cache {
        Some(dir) => fs.expand_deny_patterns_cached(&s.workspace, dir),
        None => fs.expand_deny_patterns(&s.workspace),
    }
    .map_err(|why| anyhow::anyhow!("{why}"))?;
    if let Some(why) = &walked.cache_error {
        tracing::warn!("{why}");
    }
    if verbose && walked.entries > 0 {
        eprintln!(
            "sluice: deny patterns: {} entries looked at, {} denied; {} directories listed, \
             {} unchanged since the last launch",
            walked.entries, walked.matches, walked.listed, walked.cached
        );
    }
    phase::mark("deny patterns walked");
    // The repositories there at launch, checked when the session ends
    // (`git_state`): those the walk met, and the workspace's own.
    s.repositories.clone_from(&walked.git);
    let own = s.workspace.join(".git");
    if !s.repositories.contains(&own) && own.symlink_metadata().is_ok() {
        s.repositories.push(own);
    }
    let guards = s
        .policy
        .filesystem
        .protect
        .rules()
        .iter()
        .any(|r| !r.except);
    let added = match nested_hooks && guards {
        true => protect_nested_hooks(s, &walked.git, verbose)?,
        false => Vec::new(),
    };
    for path in s.policy.filesystem.deny.clone() {
        let why = format!(
            "deny \"{}\" (the policy's [filesystem] deny)",
            path.display()
        );
        s.policy.broker.protect(path, &why);
    }
    Ok(Protected {
        found: walked.protected,
        added,
        tools: nested_hooks && guards,
    })
}

/// What the deny walk learnt of the `protect` list ([`protect_denied`]).
pub(super) struct Protected {
    /// What it protects in the writable trees, if the walk looked.
    found: Option<Vec<PathBuf>>,
    /// What the launch added to it after the walk (nested repositories'
    /// hooks directories and included configurations).
    added: Vec<PathBuf>,
    /// Whether what the tool configurations found name is protected too
    /// ([`protect_named_by_tools`]): as for the nested repositories' hooks.
    tools: bool,
}

/// What the `protect` list protects that exists at launch in a tree the
/// program may write is made `read_only` (a bind mount of its own, made
/// read-only, its ancestors up to the writable tree pinned: mount points),
/// so the program can neither remove it (`EBUSY`, `EROFS`) nor rename it,
/// or a directory above it, away; the guard stops only writes and names
/// made. A person's pre-commit hook in a nested repository, a project's
/// `.claude` with its deny rules. Left out: what a `read_only` or `deny`
/// entry covers already, a writable tree itself or one holding another,
/// and what the guard lets
/// the program replace whole once checked (a git configuration,
/// `.gitmodules`: a pin would refuse `git config`, and removing one does
/// no more than the replacement). What the deny walk found
/// ([`protect_denied`]), else a walk of its own (with the `deny` patterns'
/// cache). Not when stacked: the inner sandbox can mount nothing, the
/// outer session's pins hold in its view.
pub(super) fn pin_protected(
    s: &mut Session,
    cache: Option<&Path>,
    verbose: bool,
    known: Protected,
) -> Result<()> {
    if s.outer.is_some() {
        return Ok(());
    }
    let fs = &s.policy.filesystem;
    let mut found = match known.found {
        Some(found) => found,
        None => {
            let (found, walked) = fs
                .existing_protected(&s.workspace, cache)
                .map_err(|why| anyhow::anyhow!("{why}"))?;
            if let Some(why) = &walked.cache_error {
                tracing::warn!("{why}");
            }
            found
        }
    };
    // Added after the walk: each is protected whole, and pinned whole.
    let exists = |p: &PathBuf| p.symlink_metadata().is_ok_and(|m| !m.is_symlink());
    let named = match known.tools {
        true => protect_named_by_tools(s, &found, verbose)?,
        false => Vec::new(),
    };
    found.extend(known.added.into_iter().chain(named).filter(exists));
    found.sort();
    found.dedup();
    let fs = &s.policy.filesystem;
    let mut pinned: Vec<PathBuf> = Vec::new();
    for path in found {
        // A writable tree itself, or one holding another (a read-only
        // mount there would take its grant away), is not pinned.
        let covered = (fs.read_only.iter().chain(&fs.deny).chain(&pinned))
            .any(|c| path.starts_with(c))
            || holds_writable_tree(fs, &path);
        if !covered && !crate::broker::replaced_when_checked(&path) {
            pinned.push(path);
        }
    }
    if verbose && !pinned.is_empty() {
        eprintln!(
            "sluice: protect: {} protected paths kept in place (read-only mounts)",
            pinned.len()
        );
    }
    s.policy.filesystem.read_only.extend(pinned);
    phase::mark("protected paths pinned");
    Ok(())
}

/// `$XDG_CONFIG_HOME/sluice` or `~/.config/sluice`: approvals remembered
/// for later sessions live there.
fn config_dir() -> Result<PathBuf> {
    Ok(crate::xdg::base_dir("XDG_CONFIG_HOME", ".config")?.join("sluice"))
}

/// The approvals overlay in `file`, and whether answers may be remembered
/// there; an empty one, with a warning naming why, where a sandbox could
/// have written it (`overlay::distrust`).
pub(super) fn trusted_overlay(s: &Session, file: &Path) -> Result<(Overlay, bool)> {
    prompt::overlay::load_trusted(
        file,
        &s.policy.filesystem.write,
        &s.workspace,
        s.outer.is_some(),
        &s.vars,
    )
}

/// The policy's own files: read-only in the sandbox's view, and pinned where
/// a sandbox could write them ([`policy_files`]). Returns the pins'
/// directory; none when stacked, where sluice has no state of its own that
/// the outer program cannot write.
pub(super) fn protect_policy_files(s: &mut Session, accept: bool) -> Result<Option<PathBuf>> {
    let exposed = policy_files::keep_read_only(&mut s.policy.filesystem, &s.policy_files);
    if s.outer.is_some() {
        return Ok(None);
    }
    check_policy_pins(&exposed, accept).map(Some)
}

/// Denies `paths` to the sandbox wherever the policy would let it reach
/// them (deny-within-allow), so no policy can expose sluice's own state.
fn deny_in_sandbox(policy: &mut Policy, paths: &[&PathBuf]) {
    let fs = &mut policy.filesystem;
    for path in paths {
        let reachable = fs
            .read
            .iter()
            .chain(&fs.write)
            .chain(&fs.execute)
            .any(|root| path.starts_with(root));
        if reachable && !fs.deny.contains(path) {
            fs.deny.push((*path).clone());
        }
    }
}

/// What the tool configurations among `found` name in a tree the program
/// may write (`tool_configs`: an `hgrc`'s includes, extensions and hook
/// files, yarn's `yarnPath` and plugins), protected as trees: the person's
/// next `hg` or `yarn` there runs them. Returns those it added.
fn protect_named_by_tools(
    s: &mut Session,
    found: &[PathBuf],
    verbose: bool,
) -> Result<Vec<PathBuf>> {
    let home = super::run_session::home_dir()?;
    let fs = &mut s.policy.filesystem;
    let mut added = Vec::new();
    for path in super::tool_configs::named(found, &home) {
        let writable = fs.write.iter().any(|w| path.starts_with(w));
        if !writable || fs.protect.protects(&path).is_some() {
            continue;
        }
        if holds_writable_tree(fs, &path) {
            warn_holds_writable_tree("a tool's configuration names", &path);
        }
        match fs.protect.add_tree(&path) {
            Ok(()) => {
                if verbose {
                    eprintln!(
                        "sluice: {} (named by a tool's configuration): protected",
                        crate::audit::escape::path_for_terminal(&path)
                    )
                }
                added.push(path);
            }
            Err(why) => tracing::warn!("a tool's configuration names {why}: not protected"),
        }
    }
    Ok(added)
}

/// Whether `path` is a tree the program may write, or holds one: pinned it
/// would take that grant away, protected it refuses every write there.
fn holds_writable_tree(fs: &policies::FsPolicy, path: &Path) -> bool {
    fs.write.iter().any(|w| w.starts_with(path))
}

/// Says at launch that a named `path` [`holds_writable_tree`] and is
/// protected all the same. A configuration naming `.` (an `hgrc`'s
/// extension: hg imports the directory's `__init__.py`; a `.yarnrc.yml`'s
/// `yarnPath`; a nested repository's `core.hooksPath` of `..`) protects
/// the workspace itself: the program can write nothing there, and each
/// refusal named only the file refused, not why the workspace was
/// protected. Not protecting it would let the program write what the
/// person's tool then runs.
fn warn_holds_writable_tree(what: &str, path: &Path) {
    eprintln!(
        "sluice: {what} {}, which holds a tree the program may write: protected whole, \
         the program can write nothing there (edit that configuration to allow it)",
        crate::audit::escape::path_for_terminal(path)
    );
}

/// Each nested repository's hooks directory (`core.hooksPath` in its own
/// configuration) and the files that configuration includes, protected as
/// trees: the person's next commit or `git status` there would run what the
/// program wrote in them. Returns those it added.
fn protect_nested_hooks(s: &mut Session, git: &[PathBuf], verbose: bool) -> Result<Vec<PathBuf>> {
    let home = super::run_session::home_dir()?;
    let own = s.workspace.join(".git");
    let mut dirs: Vec<PathBuf> = (git.iter())
        .filter(|g| **g != own)
        .flat_map(|g| super::hooks_path::to_protect_nested(g, &home))
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut added = Vec::new();
    for dir in dirs {
        if s.policy.filesystem.protect.protects(&dir).is_some() {
            continue;
        }
        if holds_writable_tree(&s.policy.filesystem, &dir) {
            warn_holds_writable_tree("git runs hooks or reads a configuration from", &dir);
        }
        match s.policy.filesystem.protect.add_tree(&dir) {
            Ok(()) => {
                if verbose {
                    eprintln!(
                        "sluice: git: {} (hooks, or a configuration included): protected",
                        crate::audit::escape::path_for_terminal(&dir)
                    )
                }
                added.push(dir);
            }
            Err(why) => {
                tracing::warn!("git runs hooks or reads a configuration from {why}: not protected")
            }
        }
    }
    Ok(added)
}
