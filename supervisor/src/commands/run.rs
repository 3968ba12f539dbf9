//! `sluice run`: launch a command in the sandbox and supervise it.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use anyhow::{Context, Result};
use policies::{NetPolicy, Policy};

use super::run_args::{Approve, RunArgs};
use super::run_session::{home_dir, open_session, Session};
use super::run_state::{
    hide_state, pin_protected, protect_denied, protect_policy_files, trusted_overlay, StateDirs,
};
use crate::agent_state::AgentState;
use crate::audit::{self, AuditLog, StartRecord};
use crate::broker::outer::OuterBroker;
use crate::broker::{transparent, Approvals, Broker, Shared};
use crate::cgroup::{self, SessionCgroup};
use crate::git_state;
use crate::launch::{self, Launch};
use crate::prompt::{self, overlay::Overlay, Prompter};
use crate::pycache::PyCache;
use crate::quarantine;
use crate::tty::{self, Terminal};
use crate::{nesting, phase, supervise};

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
    // Not for the bwrap stand-in's session: its policy is what bwrap was told.
    let nested_hooks = given.is_none();
    let (spec, given_tmpdir) = match given {
        Some(g) => (Some(g.spec), g.tmpdir),
        None => (None, None),
    };
    let mut s = open_session(&args, spec)?;
    let dirs = StateDirs::make(&args, &s)?;
    let overlay_file = dirs.config.join(prompt::overlay::FILE_NAME);
    let (overlay, remember) = trusted_overlay(&s, &overlay_file)?;
    let pins_dir = protect_policy_files(&mut s, args.accept_policy_change)?;
    phase::mark("state dirs, overlay, pins");
    let protected = hide_state(&mut s, &dirs, pins_dir);
    phase::mark("other sessions hidden");
    let cache = dirs.trusted_walk_cache(&s).map(Path::to_path_buf);
    let protected_found = protect_denied(&mut s, cache.as_deref(), args.verbose, nested_hooks)?;
    phase::mark("denied paths protected from the broker");
    pin_protected(&mut s, cache.as_deref(), args.verbose, protected_found)?;
    let pycache_root = dirs.trusted_pycache(&s).map(Path::to_path_buf);
    let (launch, serving, agent_state, pycache) =
        prepare_launch(&args, &mut s, given_tmpdir, pycache_root.as_deref())?;
    // While the child runs its steps: what the broker needs, its runtime
    // and threads too, the digest of the policy for the start record and
    // the audit file it goes in.
    // Learning asks nobody: every `ask` is refused, and learnt.
    let approving = Approving {
        overlay,
        overlay_file: remember.then_some(overlay_file),
        asks_person: serving.terminal.is_some() && args.learn.is_none(),
        protected,
    };
    let meanwhile = || alongside(&args, &s, &dirs.audit, approving);
    let (mut spawned, alongside) = launch::spawn(&s.policy, launch, meanwhile)?;
    let pycache_layers = spawned.pycache_layers.take();
    // From here on, however `run` returns, the program is killed and its
    // tree reaped unless it was supervised to its end.
    let mut running = Running {
        sandbox: Sandbox {
            pid: spawned.pid,
            cgroup: spawned.cgroup.take(),
            supervised: false,
        },
        relay: None,
        broker: None,
        proxy: None,
    };
    let (shared, guarded) = serve(&mut running, &args, &s, spawned, alongside?, serving)?;
    let code = running.supervise();
    phase::mark("program ran");
    running.stop_serving();
    phase::mark("broker stopped");
    finish(&args, &s, &shared, &dirs.audit, guarded, &code);
    agent_state.end(&dirs.audit.join("kept"), &s.id);
    if let Some(pycache) = pycache {
        pycache.end(&s.policy.filesystem, pycache_layers);
    }
    phase::mark("quarantine, audit end record, agents' state, bytecode kept");
    // The sandbox's root (the broker's view) goes first: while a
    // descriptor holds it, the session directory's mount points are still
    // mount points, and removing each waits for an RCU grace period.
    drop(shared);
    drop(running); // the cgroup
    drop(s.dir);
    phase::mark("cgroup, session directory removed");
    match code {
        // Nothing the session set going is left to undo (the program and
        // its tree reaped, the broker stopped, the terminal restored, the
        // records written, the directories removed): what remains is
        // memory (the policy and its patterns, the runtime's), which goes
        // with the process rather than piece by piece, a fifth of a
        // millisecond of destructors at every launch. `process::exit`
        // flushes standard output.
        Ok(code) => std::process::exit(code),
        Err(e) => Err(e),
    }
}

/// What the program is launched with, and what the supervisor keeps to
/// serve it (`serving`): the program's environment, where it is and starts,
/// its process limit and terminal, the broker's socket handed over;
/// Python's bytecode cache kept across sessions in `pycache_root`.
fn prepare_launch(
    args: &RunArgs,
    s: &mut Session,
    given_tmpdir: Option<OsString>,
    pycache_root: Option<&Path>,
) -> Result<(Launch, Serving, AgentState, Option<PyCache>)> {
    let sluice_bin = executable_sluice(&mut s.policy)?;
    let socket = BrokerSocket::new()?;
    let stacked_proxy = stacked_proxy_listener(s)?;
    let stacked_port = match &stacked_proxy {
        Some(l) => Some(l.local_addr()?.port()),
        None => None,
    };
    let tmpdir = given_tmpdir.unwrap_or_else(|| s.dir.tmp().into_os_string());
    let env = environment(s, &tmpdir, &socket.number(), &sluice_bin, stacked_port)?;
    // The agents' state where the program's environment puts it. Stacked,
    // no namespace of its own binds it: the enclosing session's copies hold.
    let agent_state = match s.outer {
        Some(_) => AgentState::none(),
        None => AgentState::prepare(&s.policy.filesystem, &env, &home_dir()?, &s.dir.dirs().dir)?,
    };
    // Stacked, no mount namespace of its own: Python caches in the TMPDIR.
    let pycache = match s.outer {
        Some(_) => None,
        None => PyCache::prepare(
            pycache_root,
            &s.policy.filesystem,
            &s.workspace,
            &s.dir.tmp(),
            &env,
        ),
    };
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
    // Without a pty, no descriptor the program gets is the person's
    // terminal: pipes, relayed through the same filter (`tty::Piped`).
    let mut piped = match (s.outer.is_some(), terminal.is_some()) {
        (false, false) => {
            tty::Piped::take().context("giving the program pipes for the terminal")?
        }
        _ => None,
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
        crate::commands::bwrap::stand_in::require_guard(
            "the enclosing session's broker is out of reach",
        )?;
    }
    // The child inherits these; a process under more than the program's
    // count at exec is in a sandbox of its own (`broker/transparent/stacked.rs`).
    let own_filters = transparent::filters_of("thread-self")
        .context("counting the supervisor's seccomp filters")?;
    let (program_end, broker_end) = socket.hand_over();
    let launch = Launch {
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
        inherit: vec![program_end],
        std_fds: piped
            .as_mut()
            .map(tty::Piped::child_side)
            .unwrap_or_default(),
        terminal: terminal.as_mut().and_then(Terminal::child_side),
        verbose: args.verbose,
        banner: banner(s),
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
        session_copies: agent_state.session_copies(),
        overlay: pycache.as_ref().map(PyCache::overlay),
    };
    let serving = Serving {
        broker_end,
        stacked_proxy,
        outer,
        terminal,
        piped,
        own_filters,
    };
    Ok((launch, serving, agent_state, pycache))
}

/// What the supervisor keeps from before the launch to serve the program.
struct Serving {
    /// Our end of the broker's socket ([`BrokerSocket::hand_over`]).
    broker_end: OwnedFd,
    /// Stacked, the hosts mode's proxy listens here, in the enclosing
    /// sandbox's network.
    stacked_proxy: Option<std::net::TcpListener>,
    /// Stacked: the outer session's broker.
    outer: Option<OuterBroker>,
    /// The person's terminal, when sluice owns it.
    terminal: Option<Terminal>,
    /// Without a pty: pipes for the std descriptors that were a terminal.
    piped: Option<tty::Piped>,
    /// The supervisor's own seccomp filters, counted before the clone.
    own_filters: u32,
}

/// Who answers an `ask`, and what the broker never serves: the inputs of
/// [`alongside`].
struct Approving {
    overlay: Overlay,
    /// Where answers are remembered; none where the overlay is distrusted.
    overlay_file: Option<PathBuf>,
    /// A person at the terminal is asked (not when learning).
    asks_person: bool,
    protected: Vec<(PathBuf, &'static str)>,
}

/// What the supervisor makes while the child runs its steps (the launch's
/// `meanwhile`); the sweep of dead sessions is done there too, off the
/// launch's path (nothing before it depends on it: a dead session's record
/// is not a live one's, its lock being free, and its directory is behind
/// the veil like any other).
fn alongside(
    args: &RunArgs,
    s: &Session,
    audit_dir: &Path,
    approving: Approving,
) -> Result<Alongside> {
    crate::session_dir::sweep_stale(&s.records);
    let allow = args.approve == Approve::Allow;
    let prompter = match approving.asks_person {
        true => Some(Arc::new(Prompter::new(
            args.prompt_settings(approving.overlay_file),
        )?)),
        false => None,
    };
    let approvals = Approvals::Layered {
        overlay: Box::new(approving.overlay),
        person: prompter.clone(),
        allow,
    };
    let shared = Shared::new(
        s.id.clone(),
        s.policy.clone(),
        approvals,
        None,
        approving.protected,
    );
    Ok(Alongside {
        prompter,
        shared,
        audit: AuditLog::create(audit_dir, &s.id).context("opening the audit record")?,
        policy_digest: audit::chain::sha256_hex(s.policy.to_toml().as_bytes()),
        runtime: crate::broker::Runtime::new().context("starting the broker's runtime")?,
    })
}

/// Once the program runs: its audit record started, the broker's shared
/// state completed, the transparent listener received, the proxy, the
/// broker and the terminal relay started (each kept in `running`, so a
/// failure stops the program). The shared state, and whether the guard
/// judged the session's writes.
fn serve(
    running: &mut Running,
    args: &RunArgs,
    s: &Session,
    spawned: launch::Spawned,
    alongside: Alongside,
    serving: Serving,
) -> Result<(Arc<Shared>, bool)> {
    let Alongside {
        prompter,
        shared,
        audit,
        policy_digest,
        runtime,
    } = alongside;
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
    // No record, no broker: the program is stopped rather than run with
    // decisions nobody can review.
    let audit = audit.start(&start).context("opening the audit record")?;
    phase::mark("audit start record");
    let filters_at_exec = transparent::filters_at_exec(
        serving.own_filters,
        spawned.handover.is_some(),
        spawned.deny_filter_installed,
    );
    let notified = (spawned.handover)
        .map(|socket| transparent::Program::receive(socket, filters_at_exec))
        .transpose()
        .context("receiving the transparent-brokering listener")?;
    let mut shared = shared.with_sandbox_view(spawned.view);
    shared.audit = Some(audit);
    shared.outer = serving.outer;
    shared.filters_at_exec = Some(filters_at_exec);
    // A sluice stacked inside registers its sandbox; the guard's connector
    // forks one restricted by it (`broker::guard::stacked`).
    if let Some(connector) = (notified.as_ref()).and_then(|p| p.connector.as_ref()) {
        shared.stacked.set_connector(
            connector
                .try_clone()
                .context("copying the connector's socket")?,
        );
    }
    let shared = Arc::new(shared);
    // The guard judged every write during the session (`broker::guard`).
    let guarded = notified.is_some();
    let (listeners, upstream) = match serving.stacked_proxy {
        // The enclosing session's proxy, if it has one, is the way out.
        Some(listener) => (vec![listener.into()], crate::net::Upstream::from_env()),
        None => (spawned.net_listeners, crate::net::Upstream::Direct),
    };
    if let NetPolicy::Hosts(hosts) = &s.policy.network {
        if !listeners.is_empty() {
            let proxy = crate::net::Proxy::start(
                listeners,
                hosts.clone(),
                upstream,
                Some(crate::net::auditor(shared.clone())),
                Some(shared.clone()),
            )
            .context("starting the proxy")?;
            running.proxy = Some(proxy);
        }
    }
    running.broker = Some(Broker::start_on(
        runtime,
        serving.broker_end,
        shared.clone(),
        notified,
    )?);
    phase::mark("broker started");
    running.relay = (serving.terminal.map(|t| t.relay(prompter)).transpose())
        .context("relaying the terminal")?;
    if let Some(piped) = serving.piped {
        running.relay = Some(piped.relay().context("relaying the terminal")?);
    }
    Ok((shared, guarded))
}

/// `$SLUICE_BIN open PATH` works from inside: the binary itself is
/// executable in every sandbox (it holds nothing secret). Returns its path.
fn executable_sluice(policy: &mut Policy) -> Result<PathBuf> {
    let sluice_bin = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("locating the sluice binary")?;
    let execute = &mut policy.filesystem.execute;
    if !execute.iter().any(|root| sluice_bin.starts_with(root)) {
        execute.push(sluice_bin.clone());
    }
    Ok(sluice_bin)
}

/// The broker's shared socket, from its making to its hand-over: the
/// program's end goes into the sandbox at its own number
/// (`SLUICE_BROKER_FD`), ours to the broker. The platform's wire:
/// SOCK_SEQPACKET here; a datagram socket beside stream connections where
/// there is none (macOS).
struct BrokerSocket {
    ours: OwnedFd,
    theirs: OwnedFd,
}

impl BrokerSocket {
    fn new() -> Result<BrokerSocket> {
        let (ours, theirs) = proto::socket::Wire::NATIVE
            .shared_pair()
            .context("creating the broker socket")?;
        Ok(BrokerSocket { ours, theirs })
    }

    /// The number the program finds its end at (`SLUICE_BROKER_FD`).
    fn number(&self) -> String {
        self.theirs.as_raw_fd().to_string()
    }

    /// Hands the socket over, consuming it: the program's end (for
    /// `Launch::inherit`, kept at its number) and ours (for the broker).
    fn hand_over(self) -> (OwnedFd, OwnedFd) {
        (self.theirs, self.ours)
    }
}

/// Stacked, no network namespace can be made: the proxy listens in the
/// enclosing one, on a port the program alone may connect to.
fn stacked_proxy_listener(s: &Session) -> Result<Option<std::net::TcpListener>> {
    match (&s.policy.network, &s.outer) {
        (NetPolicy::Hosts(hosts), Some(_)) => {
            if !hosts.loopback_services().is_empty() {
                anyhow::bail!(
                    "loopback services ([network] hosts entries such as 127.0.0.1:5432) cannot \
                     be offered inside another sluice sandbox: name them in the outer session"
                );
            }
            let listener = std::net::TcpListener::bind("127.0.0.1:0")
                .context("listening for the proxy in the enclosing sandbox's network")?;
            Ok(Some(listener))
        }
        _ => Ok(None),
    }
}

/// The program's environment: the policy's, and what sluice sets itself
/// (`run_session::SLUICE_SET`, the proxy's variables, the resolver's).
fn environment(
    s: &Session,
    tmpdir: &OsStr,
    broker_fd: &str,
    sluice_bin: &Path,
    stacked_port: Option<u16>,
) -> Result<Vec<(OsString, OsString)>> {
    let mut extra_env = vec![
        ("TMPDIR", tmpdir),
        ("SLUICE_SESSION", OsStr::new(&s.id)),
        ("SLUICE_BROKER_FD", OsStr::new(broker_fd)),
        ("SLUICE_BIN", sluice_bin.as_os_str()),
    ];
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
    Ok(env)
}

/// The sandboxed program: killed and its whole tree reaped when dropped,
/// unless it was supervised to its end first. Holds the session cgroup,
/// removed after that.
struct Sandbox {
    /// sluice's child (`launch::Spawned::pid`).
    pid: libc::pid_t,
    cgroup: Option<SessionCgroup>,
    supervised: bool,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !self.supervised {
            // A program sluice cannot serve after all.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = supervise::supervise(self.pid, self.cgroup.as_ref());
        }
    }
}

/// What `run` set going, undone in this order however it returns: the
/// program killed (unless supervised to its end), the terminal relay
/// finished, the broker stopped (`Broker`'s drop), then the proxy. Fields
/// drop in declaration order.
struct Running {
    sandbox: Sandbox,
    relay: Option<tty::Relay>,
    broker: Option<Broker>,
    proxy: Option<crate::net::Proxy>,
}

impl Running {
    /// Forwards signals and reaps until the program and all it started are
    /// gone; its status.
    fn supervise(&mut self) -> Result<i32> {
        let relayed = self.relay.as_ref().map_or(&[][..], tty::Relay::signals);
        let sandbox = &mut self.sandbox;
        let code = supervise::supervise_except(sandbox.pid, sandbox.cgroup.as_ref(), relayed)
            .context("supervising the program")?;
        sandbox.supervised = true;
        Ok(code)
    }

    /// The program has gone: finishes the relay, stops the broker and the
    /// proxy.
    fn stop_serving(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.finish();
        }
        drop(self.broker.take());
        if let Some(proxy) = self.proxy.take() {
            proxy.stop();
        }
    }
}

/// After the program: what it left behind moved aside, the records of
/// sessions stacked inside kept, the audit record's end written, the
/// refusals told.
fn finish(
    args: &RunArgs,
    s: &Session,
    shared: &Shared,
    audit_dir: &Path,
    guarded: bool,
    code: &Result<i32>,
) {
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
    let mut quarantined = quarantine::sweep(&unguarded, &fs.write, &s.id);
    phase::mark("read-only paths swept");
    // The person's repositories: what their git would restore from or
    // hide, written during the session.
    quarantined.extend(git_state::check(&s.repositories, s.started, &s.id));
    phase::mark("git repositories checked");
    // Sessions stacked inside this one wrote their records under its
    // TMPDIR, which goes now: keep them with this one's.
    let stacked = nesting::keep_stacked_records(&s.dir.tmp(), audit_dir, &s.id);
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
        let exit = match code {
            Ok(code) => describe_exit(*code),
            Err(e) => format!("supervision failed: {e}"),
        };

        if let Err(e) = audit.finish_with(&exit, quarantined) {
            tracing::error!("audit: cannot write the end record: {e}");
        }
        if let Err(e) = tell_refusals(args, s, &audit.refused(), code) {
            eprint!("sluice: {e:#}\r\n");
        }
    }
}

/// What the supervisor makes while the child runs its steps
/// (`launch::spawn`'s `meanwhile`).
struct Alongside {
    prompter: Option<Arc<Prompter>>,
    /// Without the audit record and the sandbox's view, which come after.
    shared: Shared,
    /// The session's audit file, made; its start record comes once the
    /// program runs.
    audit: audit::Created,
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
