//! `sluice run` on macOS: resolve the policy, generate the sealed Seatbelt
//! profile, fork; the child applies it and execs
//! (`sandbox_child::macos`); supervise with kqueue ([`super::supervise`]);
//! record the session in the audit record, its liveness record held
//! ([`crate::platform::liveness`]) while it runs.
//!
//! The broker is the shared one ([`crate::platform::broker`]): the program's end of
//! its socket at `SLUICE_BROKER_FD`, every decision in the audit record.
//!
//! The person's terminal as on Linux ([`crate::tty`]): when sluice's
//! standard input and output are a terminal and sluice is in its
//! foreground, the program gets a pty of its own (the child's controlling
//! terminal, its standard descriptors; the profile names that pty and no
//! other terminal), the relay thread copies both ways, passes window size
//! changes on and shows the prompts ([`crate::prompt`]) the broker's `ask`
//! rules put to the person. Otherwise, with standard input a terminal, the
//! program shares it as its foreground process group, and `--approve`
//! answers.
//!
//! What this launcher does not do yet, each refused or said:
//! `--transparent` and `--learn` (they need seccomp's user notification),
//! the hosts mode's proxy (`--allow-host`, `--ask-host`, `[network]
//! hosts`).

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use policies::{NetPolicy, Vars};
use sandbox_child::macos::{fork_child, MacLaunch, MacPlan, MacTerminal};
use sandbox_child::nesting::SeatbeltProbe;
use sandbox_child::seatbelt::{self, failure, SupervisorState};
use sandbox_child::{Step, StepRecord};

use super::supervise::Supervisor;
use crate::audit::{self, AuditLog, StartRecord};
use crate::commands::run_args::RunArgs;
use crate::commands::sandbox_exec;
use crate::exit;
use crate::platform::liveness;
use crate::platform::nested::{self, Nesting};
use crate::program;
use crate::prompt::{overlay, Prompter};
use crate::tty::{self, Terminal};

/// What the macOS launcher cannot give yet, refused before anything runs.
fn refuse_unsupported(args: &RunArgs) -> Result<()> {
    let refuse = |what: &str, why: &str| {
        Err(exit::with_code(
            exit::ERROR,
            format!("{what} is not available on macOS: {why}"),
        ))
    };
    if args.transparent {
        return refuse(
            "--transparent",
            "it brokers the program's own open calls through seccomp's user \
             notification, which macOS has no equivalent of; leave it out (files outside \
             the profile are then refused)",
        );
    }
    if args.learn.is_some() {
        return refuse(
            "--learn",
            "it is built on --transparent; run without it and read the refusals in \
             Console.app (Seatbelt logs each denied operation)",
        );
    }
    if !args.allow_host.is_empty() || !args.ask_host.is_empty() {
        return refuse(
            "--allow-host and --ask-host",
            "the proxy is not wired into the macOS launcher yet; use --net none, all or \
             tcp:PORTS",
        );
    }
    Ok(())
}

/// A command-line path as a policy path (relative ones from here).
fn anchored(flag: &str, written: &str) -> Result<String> {
    if written.starts_with(['/', '$', '~']) {
        return Ok(written.to_owned());
    }
    let joined = std::env::current_dir()
        .with_context(|| {
            format!("{flag} '{written}' is relative, and the current directory is unknown")
        })?
        .join(written);
    joined
        .into_os_string()
        .into_string()
        .map_err(|_| anyhow::anyhow!("{flag} '{written}': give an absolute path"))
}

/// 16 hex digits from the kernel's random source.
pub(crate) fn session_id() -> Result<String> {
    let mut buf = [0u8; 8];
    // SAFETY: buf is valid for its length (at most 256 bytes).
    let rc = unsafe { libc::getentropy(buf.as_mut_ptr().cast(), buf.len()) };
    anyhow::ensure!(rc == 0, "getentropy: {}", std::io::Error::last_os_error());
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The session's directory, `$TMPDIR/sluice-<uid>/<id>/` (0700): `tmp/`
/// (the program's TMPDIR), `bin/` (the `sandbox-exec` stand-in),
/// `private/` (denied to the program), and its liveness record in
/// `records` ([`liveness::Record`], locked while the session lives, so
/// `sluice audit` tells it from a torn one). Removed when dropped, the
/// record last.
pub(crate) struct SessionDir {
    root: PathBuf,
    _record: liveness::Record,
}

impl SessionDir {
    pub(crate) fn create(id: &str, records: &Path) -> Result<SessionDir> {
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        let parent = std::env::temp_dir()
            .canonicalize()
            .context("the temporary directory")?
            .join(format!("sluice-{uid}"));
        let mut b = std::fs::DirBuilder::new();
        b.mode(0o700);
        match b.create(&parent) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", parent.display())),
        }
        let meta = std::fs::symlink_metadata(&parent)?;
        {
            use std::os::unix::fs::MetadataExt;
            anyhow::ensure!(
                meta.is_dir() && meta.uid() == uid && meta.mode() & 0o077 == 0,
                "{} is not a private directory of yours (mode 0700, not a symlink): \
                 remove it or set TMPDIR elsewhere",
                parent.display()
            );
        }
        let root = parent.join(id);
        let record = liveness::Record::hold(records, id, &root)?;
        b.create(&root)
            .with_context(|| format!("creating {}", root.display()))?;
        let dir = SessionDir {
            root,
            _record: record,
        };
        for sub in ["tmp", "bin", "private"] {
            b.create(dir.root.join(sub))?;
        }
        Ok(dir)
    }
    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    fn bin(&self) -> PathBuf {
        self.root.join("bin")
    }
    fn private(&self) -> PathBuf {
        self.root.join("private")
    }
}

impl Drop for SessionDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            tracing::warn!("removing {}: {e}", self.root.display());
        }
    }
}

/// The per-user temporary and cache directories (`confstr(3)`).
fn user_dirs() -> Vec<PathBuf> {
    [
        libc::_CS_DARWIN_USER_TEMP_DIR,
        libc::_CS_DARWIN_USER_CACHE_DIR,
    ]
    .into_iter()
    .filter_map(|name| {
        let mut buf = vec![0u8; libc::PATH_MAX as usize];
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::confstr(name, buf.as_mut_ptr().cast(), buf.len()) };
        (n > 1 && n <= buf.len()).then(|| {
            buf.truncate(n - 1);
            PathBuf::from(OsString::from(
                <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&buf),
            ))
        })
    })
    .filter_map(|p| p.canonicalize().ok())
    .collect()
}

/// The name of the terminal open at `fd` (`/dev/ttysNNN`), if it is one.
fn terminal_name(fd: RawFd) -> Option<PathBuf> {
    // SAFETY: isatty takes an integer and only reports.
    if unsafe { libc::isatty(fd) } != 1 {
        return None;
    }
    let mut buf = [0u8; 128];
    // SAFETY: buf is valid for its length.
    let rc = unsafe { libc::ttyname_r(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0)?;
    Some(PathBuf::from(OsString::from(
        <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&buf[..len]),
    )))
}

/// Both ends of the launch pipe, close-on-exec.
fn launch_pipe() -> Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let (read, write) = nix::unistd::pipe().context("the launch pipe")?;
    for fd in [&read, &write] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).context("the launch pipe")?;
    }
    Ok((read, write))
}

/// What the child wrote on the launch pipe before it failed: the error.
fn launch_failure(bytes: &[u8], program: &Path) -> anyhow::Error {
    let head: Option<&[u8; StepRecord::SIZE]> = bytes
        .get(..StepRecord::SIZE)
        .and_then(|h| h.try_into().ok());
    let Some(record) = head.and_then(StepRecord::decode) else {
        return exit::with_code(exit::ERROR, "the sandboxed child failed without saying why");
    };
    match record.step {
        Step::Seatbelt => match failure::decode(bytes) {
            Ok((f, _)) => exit::with_code(exit::ERROR, f.to_string()),
            Err(e) => exit::with_code(exit::ERROR, e.to_string()),
        },
        Step::Exec => {
            let code = if record.errno == libc::ENOENT {
                exit::NOT_FOUND
            } else {
                exit::CANNOT_EXECUTE
            };
            let e = std::io::Error::from_raw_os_error(record.errno);
            exit::with_code(code, format!("{}: {e}", program.display()))
        }
        step => exit::with_code(
            exit::ERROR,
            format!(
                "setting up the sandbox: {} failed: {}",
                step.describe(),
                std::io::Error::from_raw_os_error(record.errno)
            ),
        ),
    }
}

pub fn run(args: RunArgs) -> Result<i32> {
    refuse_unsupported(&args)?;
    let mut spec = policies::load(&args.policy)?;
    for p in &args.allow_read {
        spec.allow_read(&anchored("--allow-read", p)?);
    }
    for p in &args.allow_write {
        spec.allow_write(&anchored("--allow-write", p)?);
    }
    if let Some(net) = &args.net {
        let net: NetPolicy = net
            .parse()
            .map_err(|e| anyhow::anyhow!("--net '{net}': {e}"))?;
        spec.set_network(net);
    }
    if let Some(mode) = args.nested {
        spec.set_nested(mode);
    }
    let name = args.command[0].to_string_lossy().into_owned();
    match nested::decide(SeatbeltProbe::probe().outer(), spec.nested(), &name) {
        Nesting::Launch => {}
        Nesting::Skip(notice) => {
            if let Some(notice) = notice {
                eprintln!("{notice}");
            }
            return Err(exit::exec(&args.command));
        }
        Nesting::Refuse(why) => return Err(exit::with_code(exit::ERROR, why)),
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set: sluice needs it to resolve '~' in policies")?;
    let workspace = match &args.workspace {
        Some(ws) => ws.clone(),
        None => std::env::current_dir().context("the current directory")?,
    };
    let workspace = workspace
        .canonicalize()
        .with_context(|| format!("workspace '{}'", workspace.display()))?;
    let id = session_id()?;
    let records = liveness::records_dir().context("the session records directory")?;
    let dir = SessionDir::create(&id, &records)?;
    let vars = Vars {
        home,
        workspace: workspace.clone(),
        tmpdir: dir.tmp(),
    };
    let mut policy = spec.resolve(&vars)?;
    if policy.transparent {
        anyhow::bail!(
            "the policy says [broker] transparent = true, which macOS cannot give \
             (no seccomp user notification): use a policy without it"
        );
    }
    if let NetPolicy::Hosts(_) = &policy.network {
        anyhow::bail!(
            "the policy's [network] hosts mode needs sluice's proxy, not wired into the \
             macOS launcher yet: use mode none, all or tcp"
        );
    }
    // sluice's binary runs inside (`$SLUICE_BIN`, the sandbox-exec
    // stand-in), through a link first on the program's PATH.
    let sluice_bin = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("locating the sluice binary")?;
    std::os::unix::fs::symlink(&sluice_bin, dir.bin().join(sandbox_exec::NAME))
        .context("the sandbox-exec stand-in")?;
    let fs = &mut policy.filesystem;
    for path in [sluice_bin.clone(), dir.bin()] {
        fs.read.push(path.clone());
        fs.execute.push(path);
    }
    let tmp = dir.tmp();
    let broker_socket = crate::platform::broker::Socket::new()?;
    let broker_fd = broker_socket.number();
    let extra = [
        ("TMPDIR", tmp.as_os_str()),
        ("SLUICE_SESSION", OsStr::new(&id)),
        ("SLUICE_BROKER_FD", OsStr::new(&broker_fd)),
        ("SLUICE_BIN", sluice_bin.as_os_str()),
    ];
    let mut env = program::child_env(&policy, &extra)?;
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "/usr/bin:/bin:/usr/sbin:/sbin".into());
    let mut with_stand_in = dir.bin().into_os_string();
    with_stand_in.push(":");
    with_stand_in.push(&path);
    env.retain(|(k, _)| k != "PATH");
    env.push(("PATH".into(), with_stand_in));
    let cwd = match &args.workspace {
        Some(_) => workspace.clone(),
        None => std::env::current_dir().unwrap_or_else(|_| workspace.clone()),
    };
    let program = program::find_program(&args.command[0], &env, &cwd, &policy.filesystem)?;

    let audit_dir = match &args.audit_dir {
        Some(d) => d.clone(),
        None => AuditLog::default_dir()?,
    };
    let config_dir = crate::xdg::base_dir("XDG_CONFIG_HOME", ".config")?.join("sluice");
    for dir in [&audit_dir, &config_dir] {
        audit::ensure_private_dir(dir)
            .with_context(|| format!("sluice's directory {}", dir.display()))?;
    }
    // The program's terminal: a pty of its own when sluice owns the
    // person's ([`Terminal::take`]), the profile then naming that pty and
    // not the person's; else the person's terminal on standard input, if
    // any, shared.
    let mut owned = Terminal::take().context("giving the program its own terminal")?;
    let child_terminal = owned.as_mut().and_then(Terminal::child_side);
    let terminal = match &child_terminal {
        Some(t) => Some(terminal_name(t.slave.as_raw_fd()).context(
            "the program's new terminal has no name (ttyname): run sluice with its \
             standard input not a terminal",
        )?),
        None => terminal_name(0),
    };
    let shared_terminal = child_terminal.is_none() && terminal.is_some();
    let state = SupervisorState {
        audit_dir: audit_dir.canonicalize()?,
        config_dir: config_dir.canonicalize()?,
        session_dir: Some(dir.private()),
        records_dir: Some(records.canonicalize()?),
        policy_files: spec.files().to_vec(),
        broker_socket: None,
        terminal: terminal.clone(),
        user_dirs: user_dirs(),
    };
    let profile = seatbelt::generate(&policy, &state).context("the Seatbelt profile")?;
    if args.verbose {
        eprintln!(
            "sluice: session {id} with policy '{}': a sealed Seatbelt profile of {} bytes \
             (`sluice policy show {} --seatbelt` prints it)",
            policy.name,
            profile.text().len(),
            args.policy
        );
    }
    let start = StartRecord {
        sluice_version: env!("CARGO_PKG_VERSION").to_owned(),
        policy: policy.name.clone(),
        policy_digest: audit::chain::sha256_hex(policy.to_toml().as_bytes()),
        enforcement: serde_json::json!({
            "platform": "macos",
            "seatbelt": "sealed profile",
            "profile_sha256": audit::chain::sha256_hex(profile.text().as_bytes()),
        }),
        argv: args.command.clone(),
        workspace: workspace.clone(),
        supervisor_pid: std::process::id(),
        child_pid: 0,
    };
    // The record exists before the program starts: no record, no program.
    let audit = AuditLog::open(&audit_dir, &id, &start).context("opening the audit record")?;

    // What the broker never serves; made before the fork, as nothing
    // between the fork and the broker's start may fail but the start.
    let protected = crate::platform::broker::Protected {
        audit_dir: state.audit_dir.clone(),
        config_dir: state.config_dir.clone(),
        records_dir: records.canonicalize()?,
        private: dir.private(),
        sessions: (dir.root.parent().map(Path::to_path_buf)).context("the sessions' directory")?,
        own_tmp: dir.tmp(),
        policy_files: spec.files().to_vec(),
    };
    // With a relay, SIGWINCH is its own (it resizes the program's pty).
    let relayed: &[libc::c_int] = match owned {
        Some(_) => &[tty::WINDOW_CHANGE],
        None => &[],
    };
    let mut supervisor = Supervisor::new(relayed).context("preparing the supervisor")?;
    // Who answers `ask` rules, as on Linux: the person's remembered
    // answers (the overlay, believed only where no sandbox could have
    // written it, and "always" answers written back only then), then the
    // person through the relay's prompter, else `--approve`.
    let overlay_file = state.config_dir.join(overlay::FILE_NAME);
    let (overlay, remember) = overlay::load_trusted(
        &overlay_file,
        &policy.filesystem.write,
        &workspace,
        false,
        &vars,
    )?;
    let prompter = match owned {
        Some(_) => Some(Arc::new(Prompter::new(
            args.prompt_settings(remember.then_some(overlay_file)),
        )?)),
        None => None,
    };
    // SAFETY: SIGTTOU ignored in the supervisor, so it can take the
    // terminal's foreground back at the end.
    unsafe { libc::signal(libc::SIGTTOU, libc::SIG_IGN) };
    let (pipe_read, pipe_write) = launch_pipe()?;
    // SAFETY: getdtablesize takes no arguments.
    let fd_limit = unsafe { libc::getdtablesize() };
    let plan = MacPlan::new(MacLaunch {
        profile: profile.text(),
        program: &program,
        argv: &args.command,
        env: &env,
        cwd: &cwd,
        fds: &[broker_socket.kept()],
        terminal: child_terminal.as_ref().map(MacTerminal::from),
        foreground: shared_terminal.then_some(0),
        policy: &policy,
        fd_limit,
    })?;
    // SAFETY: no thread has been started: sluice forks before any runtime
    // or relay thread exists; the plan's descriptors are open.
    let pid = unsafe { fork_child(&plan, pipe_write.as_raw_fd()) }.context("fork")?;
    drop(pipe_write);
    // The slave is the program's alone: the relay sees its end when the
    // program's last process closes it.
    drop(child_terminal);
    supervisor.watch(pid).context("watching the program")?;
    let served = crate::platform::broker::serve(
        broker_socket,
        &id,
        crate::platform::broker::approvals(args.approve, overlay, prompter.clone(), &policy),
        &policy,
        audit,
        protected,
    );
    let (shared, broker) = match served {
        Ok(both) => both,
        Err(e) => {
            // No broker, no program: it would run with requests nobody answers.
            supervisor.stop()?;
            let _ = supervisor.run();
            return Err(e);
        }
    };
    let mut report = Vec::new();
    std::fs::File::from(pipe_read)
        .take(failure::MAX_ENCODED as u64)
        .read_to_end(&mut report)
        .context("reading the launch pipe")?;
    // The relay starts once the program runs (sluice forks single-threaded);
    // what the program wrote meanwhile waits in its pty.
    let relay = match owned {
        Some(t) if report.is_empty() => Some(t.relay(prompter).context("relaying the terminal")),
        _ => None,
    }
    .transpose();
    let code = match relay {
        Ok(relay) if report.is_empty() => {
            let code = supervisor.run().context("supervising the program");
            // After the program: what it left in the pty relayed, open
            // questions answered, the person's terminal's modes back.
            if let Some(relay) = relay {
                relay.finish();
            }
            code
        }
        Ok(_) => {
            supervisor.stop()?;
            let _ = supervisor.run();
            Err(launch_failure(&report, &program))
        }
        Err(e) => {
            supervisor.stop()?;
            let _ = supervisor.run();
            Err(e)
        }
    };
    if shared_terminal {
        // SAFETY: handing the terminal's foreground back to sluice's own
        // process group (SIGTTOU is ignored).
        unsafe { libc::tcsetpgrp(0, libc::getpgrp()) };
    }
    let exit = match &code {
        Ok(c) => format!("exit {c}"),
        Err(e) => format!("launch failed: {e:#}"),
    };
    // Requests in progress finish (and are recorded) before the end record.
    broker.stop();
    let finished = (shared.audit.as_ref()).map(|audit| audit.finish_with(&exit, Vec::new()));
    if let Some(Err(e)) = finished {
        tracing::error!("audit: cannot write the end record: {e}");
    }
    drop(dir);
    code
}
