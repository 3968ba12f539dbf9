//! Preparing a session and forking the sandboxed child.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use anyhow::{Context, Result};
use policies::Policy;
use sandbox_child::{EnforcementReport, LaunchContext, Step, StepRecord};

use crate::cgroup::SessionCgroup;
use crate::exit;

/// A random session id: 16 hex digits from the kernel's CSPRNG.
pub fn new_session_id() -> Result<String> {
    let mut buf = [0u8; 8];
    anyhow::ensure!(crate::sys::host::random(&mut buf), "getrandom failed");
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

pub use crate::program::{child_env, find_program};

/// What the caller hands to [`spawn`].
pub struct Launch {
    pub program: PathBuf,
    pub argv: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
    pub session_dirs: sandbox_child::SessionDirs,
    /// Every session directory but the program's own `tmp/` hidden.
    pub veil: Option<sandbox_child::Veil>,
    pub cgroup: Option<(SessionCgroup, OwnedFd)>,
    /// The process limit as the PID namespace's `pid_max` (see
    /// [`crate::cgroup::process_limit`]).
    pub pid_max: Option<u64>,
    /// The session's id (names its cgroup, if one is made after all).
    pub session: String,
    /// Descriptors the program inherits, at the same numbers (the broker's
    /// shared socket).
    pub inherit: Vec<OwnedFd>,
    /// Descriptors the program gets at other numbers (its standard ones,
    /// pipes in place of the person's terminal: [`crate::tty::Piped`]).
    pub std_fds: Vec<(OwnedFd, RawFd)>,
    /// The program's own terminal (see [`crate::tty`]), when sluice owns
    /// the person's.
    pub terminal: Option<sandbox_child::ChildTerminal>,
    /// Print the enforcement report (once the child has run its steps).
    pub verbose: bool,
    /// For the report's first line.
    pub banner: String,
    /// Stacked inside another sluice sandbox (which explains some failures).
    pub nested: bool,
    /// A user-notification listener and a connector: transparent
    /// brokering (`Policy::transparent`), or the guard alone.
    pub notify: bool,
    /// The hosts mode, stacked: where this session's proxy listens in the
    /// enclosing network (`sandbox_child::LaunchContext::stacked_proxy`).
    pub stacked_proxy: Option<u16>,
    /// Stacked: registers the program's Landlock ruleset with the outer
    /// session before the child is forked (`broker::outer::Registrar`).
    pub register: Option<crate::broker::outer::Registrar>,
    /// Agents' state the sandbox sees as the session's copy
    /// (`crate::agent_state`).
    pub session_copies: Vec<sandbox_child::SessionCopy>,
    /// Python's bytecode cache at the prefix (`crate::pycache`).
    pub overlay: Option<sandbox_child::SessionOverlay>,
}

/// A child that passed every required step and exec'd the program.
pub struct Spawned {
    /// sluice's child: the sandbox's init in a PID namespace of its own
    /// (`sandbox_child::clone_child`), else the program itself. It is
    /// signalled and waited for.
    pub pid: libc::pid_t,
    /// The program, as sluice sees it (for the audit record).
    pub program_pid: libc::pid_t,
    /// What was enforced after the child's steps (for the audit record).
    pub report: EnforcementReport,
    pub cgroup: Option<SessionCgroup>,
    /// With `Launch::notify`, the hand-over socket: the child sent the
    /// seccomp listener over it before exec, and it goes on as the
    /// connector's (`broker::transparent::Program::receive`).
    pub handover: Option<OwnedFd>,
    /// The sandbox's own view, where the broker opens directories.
    pub view: crate::broker::SandboxView,
    /// The child installed the deny filter (the report says why not).
    pub deny_filter_installed: bool,
    /// The hosts mode: the sockets listening in the program's own network
    /// namespace, the proxy's first (`crate::net`); empty in other modes.
    pub net_listeners: Vec<OwnedFd>,
    /// The tmpfs of Python's bytecode cache's layers, where the child
    /// mounted it (`crate::pycache`).
    pub pycache_layers: Option<OwnedFd>,
}

/// Prepares the sandbox, refuses to launch if a required layer cannot be
/// enforced, forks, and waits for the child to exec (or to report why not).
/// `meanwhile` runs once the child is cloned, while it runs its steps (on
/// the other CPU): work the supervisor needs after the exec, taken off the
/// launch's path. Threads may be started there, not before.
pub fn spawn<T>(
    policy: &Policy,
    launch: Launch,
    meanwhile: impl FnOnce() -> T,
) -> Result<(Spawned, T)> {
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating the launch pipe")?;
    let notify = match launch.notify {
        true => Some(proto::socket::seqpacket_pair().context("creating the notification socket")?),
        false => None,
    };
    let (notify_ours, notify_theirs) = notify.unzip();
    let (root_ours, root_theirs) =
        proto::socket::seqpacket_pair().context("creating the socket for the sandbox's root")?;
    let (cgroup, cgroup_procs) = match launch.cgroup {
        Some((cg, fd)) => (Some(cg), Some(fd)),
        None => (None, None),
    };
    let ctx = LaunchContext {
        program: launch.program,
        argv: launch.argv,
        env: launch.env,
        cwd: launch.cwd,
        session_dirs: launch.session_dirs,
        veil: launch.veil,
        cgroup_procs,
        pid_max: launch.pid_max,
        handover: launch
            .inherit
            .into_iter()
            .map(|fd| {
                let n = fd.as_raw_fd();
                (fd, n)
            })
            .chain(launch.std_fds)
            .collect(),
        report_pipe: write_end,
        terminal: launch.terminal,
        notify_socket: notify_theirs,
        root_socket: root_theirs,
        stacked_proxy: launch.stacked_proxy,
        stand_ins: crate::commands::bwrap::stand_in::stand_ins(),
        session_copies: launch.session_copies,
        overlay: launch.overlay,
    };
    #[cfg(feature = "warm-spike")]
    let ctx = warm_spike(ctx)?;
    let (mut plan, mut report) =
        sandbox_child::prepare(policy, ctx).context("preparing the sandbox")?;
    refuse_if_blocked(&report, launch.nested)?;
    if let Some(registrar) = launch.register {
        registrar.register(plan.landlock_ruleset())?;
    }
    crate::phase::mark("sandbox prepared");
    let mounts = plan.mount_targets();
    let mut cgroup = cgroup;
    let (pid, init) = start_child(
        &mut plan,
        &mut report,
        launch.nested,
        (policy, &launch.session, &mut cgroup),
    )?;
    drop(plan); // our copies of the pipe's write end, ruleset and cgroup fds
    crate::phase::mark("child cloned");
    let alongside = meanwhile();
    crate::phase::mark("supervisor's work meanwhile");
    let mut records = read_records(&read_end)?;
    crate::phase::mark("child's steps to exec");
    let named = records.iter().find_map(StepRecord::program_pid);
    records.retain(|r| r.program_pid().is_none());
    // What held is known only now: -v prints it after the child's steps, and
    // a best-effort layer that failed is said whatever -v says.
    let writable = &policy.filesystem.write;
    let nested = |rec: &StepRecord| describe_nested(rec, launch.nested);
    for warning in crate::enforced::settle(&mut report, writable, &mounts, &records, nested) {
        if !(launch.nested && crate::commands::bwrap::stand_in::quiet()) {
            // One write per line: the program runs already, and its output
            // must not land inside a warning (`eprintln!` writes in pieces).
            let line = format!("sluice: warning: {warning}\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
        }
    }
    let verbose = launch.verbose.then_some(launch.banner.as_str());
    for rec in &records {
        let what = describe(rec);
        if rec.fatal {
            crate::enforced::failed(&mut report, rec, &what, verbose);
            // It exits after a fatal record of its own; the connector's
            // (forked by the init, `sandbox_child::connector`) leaves it
            // running.
            crate::sys::process::kill_and_reap(pid);
            let code = match rec.step {
                Step::Exec if rec.errno == libc::ENOENT => exit::NOT_FOUND,
                Step::Exec => exit::CANNOT_EXECUTE,
                _ => exit::ERROR,
            };
            let what = match rec.step {
                Step::Transparent if launch.nested => format!(
                    "{what}: --transparent cannot run inside another sluice sandbox, \
                     which refuses seccomp listeners to the programs it runs"
                ),
                _ => what,
            };
            return Err(exit::with_code(code, what));
        }
    }
    if let Some(banner) = verbose {
        crate::enforced::print(banner, &report);
    }
    // Sent before the root, when the step that makes them succeeded.
    let made = !records.iter().any(|r| r.step == Step::NetNamespace);
    let listening = match made && launch.stacked_proxy.is_none() {
        true => sandbox_child::listen_addresses(policy).len(),
        false => 0,
    };
    let net_listeners = match receive_listeners(&root_ours, listening) {
        Ok(fds) => fds,
        Err(e) => {
            crate::sys::process::kill_and_reap(pid);
            return Err(e).context("receiving the sockets of the program's network");
        }
    };
    // Sent before exec, like the listener: nothing is waited for.
    let (view, pycache_layers) = match crate::broker::SandboxView::receive(&root_ours) {
        Ok(received) => received,
        Err(e) => {
            crate::sys::process::kill_and_reap(pid);
            return Err(e).context("receiving the sandbox's root");
        }
    };
    drop(root_ours);
    let program_pid = match (init, named) {
        (true, Some(program)) => program,
        _ => pid,
    };
    let spawned = Spawned {
        pid,
        program_pid,
        report,
        cgroup,
        handover: notify_ours,
        view,
        deny_filter_installed: !records.iter().any(|r| r.step == Step::Seccomp),
        net_listeners,
        pycache_layers,
    };
    Ok((spawned, alongside))
}

/// Receives `count` listening sockets, one `N` message each
/// (`sandbox_child::netns`); each must be a listening TCP socket.
fn receive_listeners(sock: &OwnedFd, count: usize) -> std::io::Result<Vec<OwnedFd>> {
    use proto::socket::{recv_frame, Blocking};
    use std::os::fd::AsFd;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut buf = [0u8; 8];
        let got = recv_frame(sock.as_fd(), &mut buf, Blocking::No)?;
        let mut fds = got.fds.into_iter();
        let (Some(fd), None, false, b"N") =
            (fds.next(), fds.next(), got.ctrunc, &buf[..got.len.min(1)])
        else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the child did not send a listening socket",
            ));
        };
        let listening = proto::socket::int_sockopt(fd.as_fd(), libc::SO_ACCEPTCONN)?;
        let (_, kind) = proto::socket::domain_and_type(fd.as_fd())?;
        if listening != 1 || kind != libc::SOCK_STREAM {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the child sent something other than a listening TCP socket",
            ));
        }
        out.push(fd);
    }
    Ok(out)
}

/// Starts the child, in new user, mount and PID namespaces where they can be
/// made; returns its pid and whether it is the PID namespace's init. Where
/// the PID namespace cannot be made the report says so, and a policy that
/// requires it stops here. sluice is single-threaded here (no runtime
/// started yet), which the calls check.
fn start_child(
    plan: &mut sandbox_child::Prepared,
    report: &mut EnforcementReport,
    nested: bool,
    (policy, session, cgroup): (&Policy, &str, &mut Option<SessionCgroup>),
) -> Result<(libc::pid_t, bool)> {
    let why = if nested {
        // Its seccomp filter refuses new user namespaces (and would answer
        // the attempt the same way).
        "a PID namespace of its own was not made (the enclosing sluice sandbox forbids it; \
         its own layer still applies)"
            .to_owned()
    } else {
        match crate::sys::process::clone_sandbox_child(plan) {
            Ok(pid) => return Ok((pid, true)),
            Err(e) => format!(
                "creating the PID namespace failed: {e}; the program sees the host's processes"
            ),
        }
    };
    report.degrade(policies::Layer::PidNamespace, why.clone());
    if plan.limits_by_pid_max() {
        // Without a PID namespace of its own, root's process limit is the
        // session cgroup's after all (`cgroup::process_limit`).
        let made = policy
            .limits
            .processes
            .and_then(|n| SessionCgroup::create(session, n));
        let (made, procs) = made.unzip();
        *report.layer_mut(policies::Layer::Limits) = plan.limit_without_pid_max(policy, procs);
        *cgroup = made;
    }
    refuse_if_blocked(report, nested)?;
    if !(nested && crate::commands::bwrap::stand_in::quiet()) {
        eprintln!("sluice: warning: {why}");
    }
    let pid = crate::sys::process::fork_sandbox_child(plan).context("fork")?;
    Ok((pid, false))
}

fn refuse_if_blocked(report: &EnforcementReport, nested: bool) -> Result<()> {
    let blocked: Vec<String> = report
        .blocking()
        .map(|l| format!("{}: {} ({})", l.layer, l.status.as_str(), l.detail))
        .collect();
    if blocked.is_empty() {
        return Ok(());
    }
    let hint = if nested {
        "inside another sluice sandbox: list the layer under [layers] nested_best_effort, \
         or set nested = \"skip\""
    } else {
        "list a layer under [layers] best_effort to run without it"
    };
    Err(exit::with_code(
        exit::ERROR,
        format!(
            "refusing to launch: the policy requires layers this system cannot enforce:\n  {}\n({hint})",
            blocked.join("\n  ")
        ),
    ))
}

fn describe(rec: &StepRecord) -> String {
    let err = std::io::Error::from_raw_os_error(rec.errno);
    let item = if rec.index > 0 {
        format!(" (item {})", rec.index)
    } else {
        String::new()
    };
    match rec.step.layer() {
        Some(layer) if rec.fatal => format!(
            "{}{item} failed: {err}; the required layer '{layer}' is not enforced",
            rec.step.describe()
        ),
        _ => format!("{}{item} failed: {err}", rec.step.describe()),
    }
}

fn describe_nested(rec: &StepRecord, nested: bool) -> String {
    match nested {
        true => format!(
            "{} (the enclosing sluice sandbox forbids it; its own layer still applies)",
            describe(rec)
        ),
        false => describe(rec),
    }
}

/// Reads step records until EOF: EOF arrives when the child execs (the pipe is
/// close-on-exec) or exits.
fn read_records(fd: &OwnedFd) -> Result<Vec<StepRecord>> {
    let mut out = Vec::new();
    let mut buf = [0u8; StepRecord::SIZE];
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match nix::unistd::read(fd, &mut buf[filled..]) {
                Ok(0) if filled == 0 => return Ok(out),
                Ok(0) => anyhow::bail!("launch pipe: truncated record"),
                Ok(n) => filled += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    return Err(std::io::Error::from(e)).context("reading the launch pipe");
                }
            }
        }
        let rec = StepRecord::decode(&buf).context("launch pipe: unknown record")?;
        out.push(rec);
    }
}

/// Issue #19's spike (`sandbox-child`'s `child/warm_spike.rs`): with
/// `SLUICE_WARM_SPIKE_SOCKET` set, a socket listening there is handed to
/// the child, whose init serves launches on it. Measurement only.
#[cfg(feature = "warm-spike")]
fn warm_spike(mut ctx: LaunchContext) -> Result<LaunchContext> {
    let Some(path) = std::env::var_os("SLUICE_WARM_SPIKE_SOCKET") else {
        return Ok(ctx);
    };
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).context("the spike's socket")?;
    let fd = OwnedFd::from(listener);
    let n = fd.as_raw_fd();
    // sluice is single-threaded until the clone (`sys::process`).
    std::env::set_var("SLUICE_WARM_SPIKE_FD", n.to_string());
    ctx.handover.push((fd, n));
    Ok(ctx)
}
