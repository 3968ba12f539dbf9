//! `sluice run`: launch a command in the sandbox and supervise it.

use std::ffi::OsStr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use policies::{NetPolicy, Policy, Vars};

use crate::cgroup::SessionCgroup;
use crate::cli::RunArgs;
use crate::launch::{self, Launch, SessionDir};
use crate::session;

/// The resolved inputs of one session.
struct Session {
    id: String,
    dir: SessionDir,
    policy: Policy,
    workspace: PathBuf,
}

fn home_dir() -> Result<PathBuf> {
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

fn open_session(args: &RunArgs) -> Result<Session> {
    let mut spec = policies::load(&args.policy)?;
    for p in &args.allow_read {
        spec.allow_read(p);
    }
    for p in &args.allow_write {
        spec.allow_write(p);
    }
    if let Some(net) = &args.net {
        let net: NetPolicy = net
            .parse()
            .map_err(|e| anyhow::anyhow!("--net '{net}': {e}"))?;
        spec.set_network(net);
    }
    let workspace = workspace(args.workspace.clone())?;
    let id = launch::new_session_id()?;
    let dir = SessionDir::create(&id)?;
    let vars = Vars {
        home: home_dir()?,
        workspace: workspace.clone(),
        tmpdir: dir.tmp(),
    };
    let policy = spec.resolve(&vars)?;
    Ok(Session {
        id,
        dir,
        policy,
        workspace,
    })
}

pub fn run(args: RunArgs) -> Result<i32> {
    let s = open_session(&args)?;
    let tmp = s.dir.tmp();
    let env = launch::child_env(
        &s.policy,
        &[
            ("TMPDIR", tmp.as_os_str()),
            ("SLUICE_SESSION", OsStr::new(&s.id)),
        ],
    )?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| s.workspace.clone());
    let program = launch::find_program(&args.command[0], &env, &cwd)?;
    let cgroup = s
        .policy
        .limits
        .processes
        .and_then(|n| SessionCgroup::create(&s.id, n));
    session::prepare_supervisor().context("preparing the supervisor")?;
    let spawned = launch::spawn(
        &s.policy,
        Launch {
            program,
            argv: args.command.clone(),
            env,
            cwd,
            placeholder_dir: s.dir.private(),
            cgroup,
            verbose: args.verbose,
            banner: format!("session {} with policy '{}'", s.id, s.policy.name),
        },
    )?;
    let code = session::supervise(spawned.pid, spawned.cgroup.as_ref())
        .context("supervising the program")?;
    drop(spawned.cgroup);
    drop(s.dir);
    Ok(code)
}
