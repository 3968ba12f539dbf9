//! What `sluice run` knows before it launches anything: the session (its
//! id and directory, the resolved policy with the command line's additions,
//! the workspace, an enclosing sluice sandbox), and the pins of the policy
//! files the sandbox could otherwise rewrite.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use policies::{NetPolicy, Policy, Vars};

use super::run_args::RunArgs;
use crate::audit;
use crate::session_dir::{self, SessionDir};
use crate::{launch, nesting, phase, policy_files};

/// The resolved inputs of one session.
pub(super) struct Session {
    pub(super) id: String,
    pub(super) dir: SessionDir,
    pub(super) policy: Policy,
    pub(super) workspace: PathBuf,
    /// `$HOME`, `$WORKSPACE`, `$TMPDIR` as the policy was resolved with
    /// (and the approvals overlay is read with).
    pub(super) vars: Vars,
    /// The enclosing sluice sandbox, when stacking inside one.
    pub(super) outer: Option<nesting::Outer>,
    /// Where the liveness records of sessions are (see `session_dir`).
    pub(super) records: PathBuf,
    /// The files the policy was read from (see [`policy_files`]).
    pub(super) policy_files: Vec<PathBuf>,
    /// When the session began, and the repositories (each `.git`) the
    /// launch's walk met: checked after the session (`crate::git_state`).
    pub(super) started: crate::git_state::Since,
    pub(super) repositories: Vec<PathBuf>,
}

pub(super) fn home_dir() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set: sluice needs it to resolve '~' in policies")
}

fn workspace(arg: Option<PathBuf>) -> Result<PathBuf> {
    let ws = match arg {
        Some(ws) => ws,
        None => std::env::current_dir().context("the current directory")?,
    };
    ws.canonicalize()
        .with_context(|| format!("workspace '{}'", ws.display()))
}

/// A path given on the command line, as a policy path: one that is not
/// anchored (/, ~ or a variable) is taken from the current directory, as
/// every other command-line tool takes it (`--allow-read ./sub`).
fn command_line_path(flag: &str, written: &str) -> Result<String> {
    let anchored = written.starts_with(['/', '$']) || written == "~" || written.starts_with("~/");
    if anchored {
        return Ok(written.to_owned());
    }
    let cwd = std::env::current_dir().with_context(|| {
        format!("{flag} '{written}' is relative, and the current directory is unknown")
    })?;
    let joined = cwd.join(written);
    joined.into_os_string().into_string().map_err(|_| {
        anyhow::anyhow!(
            "{flag} '{written}': the current directory is not valid text; give an absolute path"
        )
    })
}

/// The variables sluice sets itself in every sandbox; `--env` cannot
/// replace them (it would be overridden without a word).
pub(crate) const SLUICE_SET: [&str; 4] =
    ["TMPDIR", "SLUICE_SESSION", "SLUICE_BROKER_FD", "SLUICE_BIN"];

/// `--pass-env` and `--env` on top of the policy's `[environment]`.
fn add_environment(policy: &mut Policy, args: &RunArgs) -> Result<()> {
    for pattern in &args.pass_env {
        globset::Glob::new(pattern)
            .map_err(|e| anyhow::anyhow!("--pass-env '{pattern}': {}", e.kind()))?;
        if !policy.env.pass.contains(pattern) {
            policy.env.pass.push(pattern.clone());
        }
    }
    for assignment in &args.env {
        let (name, value) = assignment
            .split_once('=')
            .filter(|(name, _)| !name.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--env '{assignment}': expected NAME=VALUE (e.g. --env IS_SANDBOX=1)"
                )
            })?;
        if name.contains('\0') || value.contains('\0') {
            anyhow::bail!("--env '{name}': a NUL byte cannot be put in an environment");
        }
        if SLUICE_SET.contains(&name) {
            anyhow::bail!(
                "--env {name}: sluice sets {name} itself in every sandbox; it cannot be replaced"
            );
        }
        policy.env.set.insert(name.to_owned(), value.to_owned());
    }
    Ok(())
}

/// Makes the policy's missing `create = true` directories (owned by the
/// person running sluice, mode 0700) before the policy is resolved, so that
/// they are granted like any existing path.
fn make_dirs(to_make: &[(PathBuf, PathBuf)]) -> Result<()> {
    for (base, path) in to_make {
        // Checked by `dirs_to_create`: `path` lies strictly beneath `base`.
        let rest = path.strip_prefix(base).unwrap_or(path).to_path_buf();
        let base = base
            .canonicalize()
            .with_context(|| format!("creating {}: {}", path.display(), base.display()))?;
        let inside = base.join(rest);
        if let Err(e) = crate::broker::safe_open::make_dirs_beneath(&base, &inside, 0o700) {
            let why = match e.raw_os_error() {
                Some(libc::ELOOP) | Some(libc::EXDEV) => {
                    "a symlink is on the way, and sluice follows none when it makes \
                     directories: make it yourself, or name the link's target"
                        .to_owned()
                }
                _ => e.to_string(),
            };
            anyhow::bail!(
                "creating {} (create = true in the policy) beneath {}: {why}",
                path.display(),
                base.display()
            );
        }
        tracing::info!("made {} (create = true)", path.display());
    }
    Ok(())
}

pub(super) fn open_session(args: &RunArgs, given: Option<policies::PolicySpec>) -> Result<Session> {
    // The bwrap stand-in's policy says all the command may see: nothing is
    // added to it (not even git's repository above its workspace).
    let exact = given.is_some();
    let mut spec = match given {
        Some(spec) => spec,
        None => policies::load(&args.policy)?,
    };
    phase::mark("policy loaded");
    for p in &args.allow_read {
        spec.allow_read(&command_line_path("--allow-read", p)?);
    }
    for p in &args.allow_write {
        spec.allow_write(&command_line_path("--allow-write", p)?);
    }
    if args.transparent || args.learn.is_some() {
        spec.set_transparent();
    }
    if let Some(net) = &args.net {
        let net: NetPolicy = net
            .parse()
            .map_err(|e| anyhow::anyhow!("--net '{net}': {e}"))?;
        spec.set_network(net);
    }
    for (flag, given) in [
        ("--allow-host", &args.allow_host),
        ("--ask-host", &args.ask_host),
    ] {
        if let (Some(net), false) = (&args.net, given.is_empty()) {
            anyhow::bail!(
                "{flag} and --net {net} do not go together: {flag} makes the \
                 program's only way out sluice's proxy (leave out --net)"
            );
        }
    }
    for host in &args.allow_host {
        let rule = host
            .parse()
            .map_err(|e| anyhow::anyhow!("--allow-host '{host}': {e}"))?;
        spec.allow_host(rule);
    }
    for host in &args.ask_host {
        let rule = host
            .parse()
            .map_err(|e| anyhow::anyhow!("--ask-host '{host}': {e}"))?;
        spec.ask_host(rule);
    }
    if let Some(mode) = args.nested {
        spec.set_nested(mode);
    }
    // Before anything is created: skip and warn execute the command here.
    let outer = match nesting::decide(spec.nested(), &args.command)? {
        nesting::Decision::Launch => None,
        nesting::Decision::Stack(outer) => Some(outer),
    };
    let workspace = workspace(args.workspace.clone())?;
    // git below its repository's root: the repository's `.git`, read only.
    let git = if exact {
        None
    } else {
        super::git_root::enclosing(&workspace, &home_dir()?)
    };
    if let Some(text) = git.as_deref().and_then(Path::to_str) {
        spec.allow_read(&text.replace('$', "$$"));
        if args.verbose {
            eprintln!(
                "sluice: git: the workspace is in the repository of {text}: readable, not writable"
            );
        }
    }
    // Hooks where git's configuration says (`core.hooksPath`), and the
    // files it includes: protected as `.git/hooks` is, where the policy
    // protects anything.
    if !exact {
        // The workspace's `.git`: a directory, or a linked worktree's or
        // submodule's file naming one.
        let own = Some(workspace.join(".git")).filter(|g| g.exists());
        let hooks = super::hooks_path::to_protect(own.or(git.clone()).as_deref(), &home_dir()?);
        for text in hooks.iter().filter_map(|h| h.to_str()) {
            if text.contains(['*', '?', '[', ']', '{', '}', '\\']) {
                tracing::warn!(
                    "git runs hooks or reads a configuration from {text}, which is not \
                     protected: a pattern cannot name it"
                );
            } else if spec.protect_too(&text.replace('$', "$$")) && args.verbose {
                eprintln!("sluice: git: {text} (hooks, or a configuration included): protected");
            }
        }
    }
    // Dead sessions are swept while the child runs its steps (`run`'s
    // `alongside`), off the launch's path.
    let records =
        session_dir::records_dir_for(outer.is_some()).context("the session records directory")?;
    let id = launch::new_session_id()?;
    let dir = SessionDir::create(&id, &records)?;
    phase::mark("session directory");
    let vars = Vars {
        home: home_dir()?,
        workspace: workspace.clone(),
        tmpdir: dir.tmp(),
    };
    let mut policy = spec.resolve(&vars)?;
    let to_make = spec.dirs_to_create(&vars)?;
    if !to_make.is_empty() {
        // A policy a sandbox could have changed makes nothing before the
        // person has accepted the change (the pins, checked again later).
        if outer.is_none() {
            let mut fs = policy.filesystem.clone();
            let exposed = policy_files::keep_read_only(&mut fs, spec.files());
            check_policy_pins(&exposed, args.accept_policy_change)?;
        }
        make_dirs(&to_make)?;
        policy = spec.resolve(&vars)?;
    }
    add_environment(&mut policy, args)?;
    if git.is_some() {
        let discovery = super::git_root::DISCOVERY.to_owned();
        policy
            .env
            .set
            .entry(discovery)
            .or_insert_with(|| "1".to_owned());
    }
    phase::mark("policy resolved");
    if outer.is_some() {
        policy.layers = policy.layers.when_nested();
    }
    Ok(Session {
        id,
        dir,
        policy,
        workspace,
        vars,
        outer,
        records,
        policy_files: spec.files().to_vec(),
        started: crate::git_state::Since::now(),
        repositories: Vec::new(),
    })
}

/// Checks (and, first time, makes) the pins of the `exposed` policy files;
/// returns the pins' directory.
pub(super) fn check_policy_pins(exposed: &[(PathBuf, PathBuf)], accept: bool) -> Result<PathBuf> {
    let pins = policy_files::default_pins_dir()?;
    audit::ensure_private_dir(&pins)
        .with_context(|| format!("sluice's policy pins {}", pins.display()))?;
    let pins = pins.canonicalize()?;
    policy_files::check_pins(&pins, exposed, accept)?;
    Ok(pins)
}
