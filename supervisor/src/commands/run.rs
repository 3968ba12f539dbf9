//! `sluice run`: launch a command in the sandbox and supervise it.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use std::os::fd::AsRawFd;
use std::sync::Arc;

use anyhow::{Context, Result};
use policies::{NetPolicy, Policy, Vars};

use super::run_args::{Approve, RunArgs};
use super::run_session::{check_policy_pins, home_dir, open_session, Session};
use crate::audit::{self, AuditLog, StartRecord};
use crate::broker::outer::OuterBroker;
use crate::broker::{Approvals, Broker, Shared};
use crate::cgroup::{self, SessionCgroup};
use crate::launch::{self, Launch};
use crate::prompt::{self, overlay::Overlay, Prompter};
use crate::quarantine;
use crate::session_dir;
use crate::tty::{self, Terminal};
use crate::{nesting, phase, policy_files, supervise};

/// A session's policy made in memory rather than named by `--policy` (the
/// bwrap stand-in, `commands::bwrap`).
pub struct Given {
    pub spec: policies::PolicySpec,
    /// The program's `TMPDIR` instead of the session's own directory.
    pub tmpdir: Option<OsString>,
}

pub fn run(args: RunArgs) -> Result<i32> {
    run_with(args, None)
}

/// [`run`] with the policy given in memory instead of `args.policy`.
pub fn run_with(args: RunArgs, given: Option<Given>) -> Result<i32> {
    let (spec, given_tmpdir) = match given {
        Some(g) => (Some(g.spec), g.tmpdir),
        None => (None, None),
    };
    let mut s = open_session(&args, spec)?;
    let (audit_dir, config_dir) = match &s.outer {
        // Stacked: the outer sandbox lets sluice write nowhere else.
        Some(_) => {
            let state = nesting::state_dir();
            (state.join("audit"), state.join("config"))
        }
        None => (AuditLog::default_dir()?, config_dir()?),
    };
    let audit_dir = args.audit_dir.clone().unwrap_or(audit_dir);
    // sluice's own state exists before the program starts, so it can be
    // denied to it, and is never writable from inside whatever the policy says.
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
    let audit_dir = audit_dir.canonicalize()?;
    let config_dir = config_dir.canonicalize()?;
    let records = s.records.canonicalize()?;
    let overlay_file = config_dir.join(prompt::overlay::FILE_NAME);
    let vars = Vars {
        home: home_dir()?,
        workspace: s.workspace.clone(),
        tmpdir: s.dir.tmp(),
    };
    let (overlay, remember) = trusted_overlay(&s, &overlay_file, &vars)?;
    let pins_dir = protect_policy_files(&mut s, args.accept_policy_change)?;
    phase::mark("state dirs, overlay, pins");
    let mut protected = vec![
        (audit_dir.clone(), "sluice's audit record"),
        (config_dir.clone(), "sluice's configuration"),
        (s.dir.private(), "sluice's session state"),
        (records.clone(), "sluice's session records"),
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
    let mut state = vec![&audit_dir, &config_dir, &records];
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
    let others = session_dir::other_live_parents(&records, s.dir.parent());
    deny_in_sandbox(&mut s.policy, &others.iter().collect::<Vec<_>>());
    for other in others {
        s.policy
            .broker
            .protect(other, "another sluice session's directory");
    }
    // `[filesystem] deny` patterns: every match that exists now is denied
    // like a listed path (a placeholder mounted over it).
    phase::mark("other sessions hidden");
    let walked = s
        .policy
        .filesystem
        .expand_deny_patterns(&s.workspace)
        .map_err(|why| anyhow::anyhow!("{why}"))?;
    if args.verbose && walked.entries > 0 {
        eprintln!(
            "sluice: deny patterns: {} entries looked at, {} denied",
            walked.entries, walked.matches
        );
    }
    // What the sandbox hides the broker never serves: under `--transparent`
    // an open the placeholder refuses goes to the broker, whose rules
    // (`allow_write = ["$WORKSPACE"]`) would serve the file itself.
    phase::mark("deny patterns walked");
    for path in s.policy.filesystem.deny.clone() {
        let why = format!(
            "deny \"{}\" (the policy's [filesystem] deny)",
            path.display()
        );
        s.policy.broker.protect(path, &why);
    }
    // `$SLUICE_BIN open PATH` works from inside: the binary itself is
    // executable in every sandbox (it holds nothing secret).
    phase::mark("denied paths protected from the broker");
    let sluice_bin = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("locating the sluice binary")?;
    let execute = &mut s.policy.filesystem.execute;
    if !execute.iter().any(|root| sluice_bin.starts_with(root)) {
        execute.push(sluice_bin.clone());
    }

    // The platform's wire: SOCK_SEQPACKET here; a datagram socket beside
    // stream connections where there is none (macOS).
    let (broker_ours, broker_theirs) = proto::socket::Wire::NATIVE
        .shared_pair()
        .context("creating the broker socket")?;
    let broker_fd = broker_theirs.as_raw_fd().to_string();
    let tmp = s.dir.tmp();
    let mut extra_env = vec![
        ("TMPDIR", given_tmpdir.as_deref().unwrap_or(tmp.as_os_str())),
        ("SLUICE_SESSION", OsStr::new(&s.id)),
        ("SLUICE_BROKER_FD", OsStr::new(&broker_fd)),
        ("SLUICE_BIN", sluice_bin.as_os_str()),
    ];
    // Stacked, no network namespace can be made: the proxy listens in the
    // enclosing one, on a port the program alone may connect to.
    let stacked_proxy = match (&s.policy.network, &s.outer) {
        (NetPolicy::Hosts(hosts), Some(_)) => {
            if !hosts.loopback_services().is_empty() {
                anyhow::bail!(
                    "loopback services ([network] hosts entries such as 127.0.0.1:5432) cannot \
                     be offered inside another sluice sandbox: name them in the outer session"
                );
            }
            let listener = std::net::TcpListener::bind("127.0.0.1:0")
                .context("listening for the proxy in the enclosing sandbox's network")?;
            Some(listener)
        }
        _ => None,
    };
    let stacked_port = match &stacked_proxy {
        Some(l) => Some(l.local_addr()?.port()),
        None => None,
    };
    let proxy_url = format!(
        "http://127.0.0.1:{}",
        stacked_port.unwrap_or(policies::PROXY_PORT)
    );
    if let NetPolicy::Hosts(_) = &s.policy.network {
        // The program's only way out; loopback stays direct (its services
        // listen in its own namespace).
        for name in crate::net::PROXY_VARIABLES {
            extra_env.push((name, OsStr::new(&proxy_url)));
        }
        for name in ["NO_PROXY", "no_proxy"] {
            extra_env.push((name, OsStr::new(crate::net::NO_PROXY)));
        }
        // Node's own fetch reads the variables above only when told to.
        extra_env.push(("NODE_USE_ENV_PROXY", OsStr::new("1")));
    }
    // Under tcp:PORTS UDP is refused: glibc's resolver asks over TCP (port
    // 53, which Landlock lets through) instead.
    let res_options = match s.policy.env.set.get("RES_OPTIONS") {
        Some(set) => format!("{set} use-vc"),
        None => "use-vc".to_owned(),
    };
    if let NetPolicy::Tcp { .. } = &s.policy.network {
        extra_env.push(("RES_OPTIONS", OsStr::new(&res_options)));
    }
    let mut env = launch::child_env(&s.policy, &extra_env)?;
    if let NetPolicy::None = &s.policy.network {
        no_network_retries(&mut env);
    }
    // `--workspace DIR` starts the program there; without it the program
    // starts where sluice was started (the workspace by default).
    let cwd = match &args.workspace {
        Some(_) => s.workspace.clone(),
        None => std::env::current_dir().unwrap_or_else(|_| s.workspace.clone()),
    };
    let program = launch::find_program(&args.command[0], &env, &cwd, &s.policy.filesystem)?;
    phase::mark("environment, program found");
    let (cgroup, pid_max) =
        cgroup::process_limit(&s.id, s.policy.limits.processes, s.outer.is_some());
    // Stacked inside another sluice, the terminal belongs to the outer
    // session (and the outer program can write to it): no pty, no prompts;
    // `--approve` answers.
    let mut terminal = match s.outer {
        Some(_) => None,
        None => Terminal::take().context("giving the program its own terminal")?,
    };
    supervise::prepare_supervisor().context("preparing the supervisor")?;
    phase::mark("cgroup, terminal");
    // Stacked: the outer session's broker, with which this sandbox is
    // registered before the child is forked (its guard makes the writes).
    let outer = s.outer.as_ref().and_then(|_| OuterBroker::from_env(&s.id));
    let register = outer
        .as_ref()
        .and_then(|o| o.registrar(&s.policy.filesystem.protect));
    if s.outer.is_some() && register.is_none() {
        crate::commands::bwrap::require_guard("the enclosing session's broker is out of reach")?;
    }
    let allow = args.approve == Approve::Allow;
    // While the child runs its steps: what the broker needs, its runtime
    // and threads too, and the digest of the policy for the start record.
    // Learning asks nobody: every `ask` is refused, and learnt.
    let asks_person = terminal.is_some() && args.learn.is_none();
    let meanwhile = || -> Result<Alongside> {
        let prompter = match asks_person {
            true => Some(Arc::new(Prompter::new(prompt::Settings {
                timeout: std::time::Duration::from_secs(args.approve_timeout),
                limits: prompt::queue::Limits::default(),
                overlay_file: remember.then_some(overlay_file),
                fallback_allow: allow,
            })?)),
            false => None,
        };
        let approvals = Approvals::Layered {
            overlay: Box::new(overlay),
            person: prompter.clone(),
            allow,
        };
        let shared = Shared::new(s.id.clone(), s.policy.clone(), approvals, None, protected);
        Ok(Alongside {
            prompter,
            shared,
            policy_digest: audit::chain::sha256_hex(s.policy.to_toml().as_bytes()),
            runtime: crate::broker::Runtime::new().context("starting the broker's runtime")?,
        })
    };
    let (spawned, alongside) = launch::spawn(
        &s.policy,
        Launch {
            program,
            argv: args.command.clone(),
            env,
            cwd,
            session_dirs: s.dir.dirs(),
            veil: Some(sandbox_child::Veil {
                parent: s.dir.parent().to_path_buf(),
                keep: s.dir.tmp(),
            }),
            cgroup,
            pid_max,
            session: s.id.clone(),
            inherit: vec![broker_theirs],
            terminal: terminal.as_mut().and_then(Terminal::child_side),
            verbose: args.verbose,
            banner: banner(&s),
            nested: s.outer.is_some(),
            // The guard (`broker::guard`) needs the same listener and
            // connector. Stacked, the outer sandbox refuses listeners; its
            // own guard judges this program's calls too.
            // `[network] mode = "none"` too: the program's IP sockets are
            // refused there and the person told (`transparent::socket`).
            notify: s.policy.transparent
                || (s.outer.is_none()
                    && (!s.policy.filesystem.protect.is_empty()
                        || matches!(s.policy.network, NetPolicy::None))),
            stacked_proxy: stacked_port,
            register,
        },
        meanwhile,
    )?;
    let Alongside {
        prompter,
        shared,
        policy_digest,
        runtime,
    } = match alongside {
        Ok(alongside) => alongside,
        Err(e) => {
            abandon(spawned.pid, spawned.cgroup.as_ref());
            return Err(e);
        }
    };
    let start = StartRecord {
        sluice_version: env!("CARGO_PKG_VERSION").to_owned(),
        policy: s.policy.name.clone(),
        policy_digest,
        enforcement: audit::enforcement_json(&spawned.report),
        argv: args.command.clone(),
        workspace: s.workspace.clone(),
        supervisor_pid: std::process::id(),
        child_pid: spawned.program_pid as u32,
    };
    let audit = match AuditLog::open(&audit_dir, &s.id, &start) {
        Ok(log) => log,
        Err(e) => {
            // No record, no broker: stop the program rather than run it
            // with decisions nobody can review.
            abandon(spawned.pid, spawned.cgroup.as_ref());
            return Err(e).context("opening the audit record");
        }
    };
    phase::mark("audit start record");
    let mut shared = shared.with_sandbox_view(spawned.view);
    shared.audit = Some(audit);
    shared.outer = outer;
    shared.filters_at_exec = Some(spawned.filters_at_exec);
    // A sluice stacked inside registers its sandbox; the guard's connector
    // forks one restricted by it (`broker::guard::stacked`).
    if let Some(connector) = (spawned.transparent.as_ref()).and_then(|p| p.connector.as_ref()) {
        shared.stacked.set_connector(
            connector
                .try_clone()
                .context("copying the connector's socket")?,
        );
    }
    let shared = Arc::new(shared);
    // The guard judged every write during the session (`broker::guard`).
    let guarded = spawned.transparent.is_some();
    let (listeners, upstream) = match stacked_proxy {
        // The enclosing session's proxy, if it has one, is the way out.
        Some(listener) => (vec![listener.into()], crate::net::Upstream::from_env()),
        None => (spawned.net_listeners, crate::net::Upstream::Direct),
    };
    let proxy = match &s.policy.network {
        NetPolicy::Hosts(hosts) if !listeners.is_empty() => {
            match crate::net::Proxy::start(
                listeners,
                hosts.clone(),
                upstream,
                Some(crate::net::auditor(shared.clone())),
                Some(shared.clone()),
            ) {
                Ok(proxy) => Some(proxy),
                Err(e) => {
                    abandon(spawned.pid, spawned.cgroup.as_ref());
                    return Err(e).context("starting the proxy");
                }
            }
        }
        _ => None,
    };
    let broker = Broker::start_on(runtime, broker_ours, shared.clone(), spawned.transparent)?;
    phase::mark("broker started");
    let relay = match terminal.map(|t| t.relay(prompter)).transpose() {
        Ok(relay) => relay,
        Err(e) => {
            abandon(spawned.pid, spawned.cgroup.as_ref());
            broker.stop();
            return Err(e).context("relaying the terminal");
        }
    };
    let relayed: &[libc::c_int] = if relay.is_some() {
        &[tty::WINDOW_CHANGE]
    } else {
        &[]
    };
    let code = supervise::supervise_except(spawned.pid, spawned.cgroup.as_ref(), relayed)
        .context("supervising the program");
    phase::mark("program ran");
    if let Some(relay) = relay {
        relay.finish();
    }
    broker.stop();
    if let Some(proxy) = proxy {
        proxy.stop();
    }
    phase::mark("broker stopped");
    // The program and all it left are gone: what it made of the read-only
    // paths that had nothing to guard them can be moved aside.
    // Those `protect` covers were the guard's during the session: what is
    // there passed it (a checked git configuration, the inert hook
    // samples), so a repository the program made keeps working.
    let fs = &s.policy.filesystem;
    let unguarded: Vec<PathBuf> = fs
        .absent_read_only
        .iter()
        .filter(|p| {
            !guarded || (fs.protect.protects(p).is_none() && fs.protect.leads_to(p).is_none())
        })
        .cloned()
        .collect();
    let quarantined = quarantine::sweep(&unguarded, &fs.write, &s.id);
    // Sessions stacked inside this one wrote their records under its
    // TMPDIR, which goes now: keep them with this one's.
    let stacked = nesting::keep_stacked_records(&s.dir.tmp(), &audit_dir, &s.id);
    if !stacked.is_empty() {
        eprintln!(
            "sluice: kept the audit record of {} stacked inside this session \
             (`sluice audit show ID`): {}",
            if stacked.len() == 1 {
                "a session"
            } else {
                "sessions"
            },
            stacked.join(", ")
        );
    }
    if let Some(audit) = &shared.audit {
        let exit = match &code {
            Ok(code) => describe_exit(*code),
            Err(e) => format!("supervision failed: {e}"),
        };

        if let Err(e) = audit.finish_with(&exit, quarantined) {
            tracing::error!("audit: cannot write the end record: {e}");
        }
        if let Err(e) = tell_refusals(&args, &s, &audit.refused(), &code) {
            eprint!("sluice: {e:#}\r\n");
        }
    }
    phase::mark("quarantine, audit end record");
    // The sandbox's root (the broker's view) goes first: while a
    // descriptor holds it, the session directory's mount points are still
    // mount points, and removing each waits for an RCU grace period.
    drop(shared);
    drop(spawned.cgroup);
    drop(s.dir);
    phase::mark("cgroup, session directory removed");
    code
}

/// What the supervisor makes while the child runs its steps
/// (`launch::spawn`'s `meanwhile`).
struct Alongside {
    prompter: Option<Arc<Prompter>>,
    /// Without the audit record and the sandbox's view, which come after.
    shared: Shared,
    policy_digest: String,
    runtime: crate::broker::Runtime,
}

/// The refusals, said when the program failed (or with `-v`), and the
/// policy `--learn` writes.
fn tell_refusals(
    args: &RunArgs,
    s: &Session,
    refused: &[audit::Refused],
    code: &Result<i32>,
) -> Result<()> {
    let home = home_dir()?;
    let home = home.canonicalize().unwrap_or(home);
    let failed = !matches!(code, Ok(0));
    if !refused.is_empty() && (failed || args.verbose || args.learn.is_some()) {
        eprint!("{}", super::refusals::summary(&s.id, refused, &home));
    } else if failed && !s.policy.transparent {
        // Landlock refuses in the kernel, unseen: say how to see it.
        eprint!(
            "sluice: the program failed; if the sandbox refused it access to something, \
             `sluice run --learn FILE ...` lists what (and writes a policy allowing it), \
             `sluice explain PATH` checks one path\r\n"
        );
    }
    if let Some(file) = &args.learn {
        // A file policy is extended by its absolute path, so the learnt
        // one works from anywhere.
        let base = match s.policy_files.first() {
            Some(path) if policies::builtin_source(&args.policy).is_none() => {
                path.display().to_string()
            }
            _ => args.policy.clone(),
        };
        let text = super::refusals::learned_policy(&s.id, &base, refused, &home);
        std::fs::write(file, text)
            .with_context(|| format!("--learn: writing {}", file.display()))?;
        eprint!(
            "sluice: wrote {} (review it, then `sluice run --policy {} -- ...`)\r\n",
            file.display(),
            file.display()
        );
    }
    Ok(())
}

/// Kills a program sluice cannot serve after all, and reaps what it left.
fn abandon(pid: libc::pid_t, cgroup: Option<&SessionCgroup>) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = supervise::supervise(pid, cgroup);
}

fn banner(s: &Session) -> String {
    let mut banner = format!("session {} with policy '{}'", s.id, s.policy.name);
    if let Some(outer) = &s.outer {
        banner.push_str(&format!(", stacked inside {}", outer.describe()));
    }
    banner
}

fn describe_exit(code: i32) -> String {
    if code > 128 && code < 128 + 65 {
        format!("signal {}", code - 128)
    } else {
        format!("exit {code}")
    }
}

/// `$XDG_CONFIG_HOME/sluice` or `~/.config/sluice`: approvals remembered
/// for later sessions live there.
fn config_dir() -> Result<PathBuf> {
    Ok(crate::xdg::base_dir("XDG_CONFIG_HOME", ".config")?.join("sluice"))
}

/// The approvals overlay in `file`, and whether answers may be remembered
/// there; an empty one, with a warning naming why, where a sandbox could
/// have written it (`overlay::distrust`).
fn trusted_overlay(s: &Session, file: &Path, vars: &Vars) -> Result<(Overlay, bool)> {
    let why = prompt::overlay::distrust(
        file,
        &s.policy.filesystem.write,
        &s.workspace,
        s.outer.is_some(),
    );
    match why {
        None => Ok((Overlay::load(file, vars)?, true)),
        Some(why) => {
            tracing::warn!(
                "ignoring the approvals overlay {}: {why}. Keep it where only you can \
                 write, outside every tree a sandbox may write",
                file.display()
            );
            Ok((Overlay::default(), false))
        }
    }
}

/// The policy's own files: read-only in the sandbox's view, and pinned where
/// a sandbox could write them ([`policy_files`]). Returns the pins'
/// directory; none when stacked, where sluice has no state of its own that
/// the outer program cannot write.
fn protect_policy_files(s: &mut Session, accept: bool) -> Result<Option<PathBuf>> {
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

/// Package managers' settings that stop them retrying a network they
/// cannot have (`[network] mode = "none"`: measured, npm retries for 71 s,
/// cargo for 12 s, pip for 10 s, where each refusal is immediate). Set
/// only where the program's environment (passed or set by the policy) has
/// no value.
const NO_NETWORK_RETRIES: &[(&str, &str)] = &[
    ("npm_config_fetch_retries", "0"),
    ("PIP_RETRIES", "0"),
    ("CARGO_NET_RETRY", "0"),
];

fn no_network_retries(env: &mut Vec<(OsString, OsString)>) {
    let inherited = |name: &str| env.iter().any(|(k, _)| k.as_os_str() == name);
    let missing: Vec<_> = NO_NETWORK_RETRIES
        .iter()
        .filter(|(name, _)| !inherited(name))
        .collect();
    for (name, value) in missing {
        env.push((name.into(), value.into()));
    }
    env.sort();
}
