//! Everything the child needs, prepared before fork.
//!
//! [`prepare`] turns a resolved [`Policy`] and the launch context into a
//! [`Prepared`] plan (C strings, the Landlock ruleset descriptor, the seccomp
//! program, mount targets) and the [`EnforcementReport`] that plan achieves on
//! this kernel. After fork the child only reads the plan and makes raw system
//! calls ([`crate::child`]).

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::raw::c_char;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use policies::{Layer, NetPolicy, Policy, Ptrace};

use crate::landlock_rules;
use crate::limits::rlimits;
use crate::mounts::{self, MountKind, SHM};
use crate::prepare_error::{cstring, PrepareError};
use crate::report::{EnforcementReport, LayerReport, Status};
use crate::seccomp::{self, NetSyscalls, SyscallRules};
use crate::view::{
    prepare_mounts, prepare_private, prepare_root, prepare_veil, HostKinds, PreparedMount,
    PreparedOverlay, PreparedPrivate, PreparedRoot, PreparedVeil, RootEntry, SessionCopy,
    SessionDirs, SessionOverlay, StandIn, Veil,
};
use crate::ChildTerminal;

/// What the supervisor decided about this launch, beyond the policy.
pub struct LaunchContext {
    /// The program to execute: an absolute path, already looked up in PATH.
    pub program: PathBuf,
    /// argv, including argv[0] as the user typed it.
    pub argv: Vec<OsString>,
    /// The complete environment of the child.
    pub env: Vec<(OsString, OsString)>,
    /// The working directory (entered again after the mounts).
    pub cwd: PathBuf,
    /// The session's directory, covered in the child's view by a tmpfs
    /// holding the deny placeholders ([`SessionDirs`]).
    pub session_dirs: SessionDirs,
    /// The directory holding every session directory of this user, hidden
    /// from the sandbox but for the session's own `tmp/` (see [`Veil`]).
    pub veil: Option<Veil>,
    /// `cgroup.procs` of the session cgroup, opened for writing, when there is one.
    pub cgroup_procs: Option<OwnedFd>,
    /// The process limit as the `pid_max` of the sandbox's PID namespace
    /// (the value written: the limit plus one), where the supervisor chose
    /// it over a cgroup (root, a kernel with a `pid_max` per namespace).
    /// Only a child made in a PID namespace of its own can hold it.
    pub pid_max: Option<u64>,
    /// Descriptors handed to the program: (descriptor here, number in the child).
    pub handover: Vec<(OwnedFd, RawFd)>,
    /// The write end of the launch pipe (close-on-exec).
    pub report_pipe: OwnedFd,
    /// Transparent brokering: the child's end of a `SOCK_SEQPACKET` pair
    /// (close-on-exec) on which it sends the user-notification listener.
    pub notify_socket: Option<OwnedFd>,
    /// The program's own terminal, when the supervisor owns the person's.
    pub terminal: Option<ChildTerminal>,
    /// The child's end of a `SOCK_SEQPACKET` pair (close-on-exec) on which
    /// it sends an `O_PATH` descriptor of its root once its view is built:
    /// the broker opens the directories it serves there.
    pub root_socket: OwnedFd,
    /// The hosts mode stacked inside another sluice sandbox, which refuses
    /// new namespaces: the port on 127.0.0.1 of the enclosing network where
    /// this session's proxy listens. The program makes no namespace and
    /// may connect to this port only.
    pub stacked_proxy: Option<u16>,
    /// Files of the program's view replaced by another, read-only (sluice's
    /// bwrap stand-in at `/usr/bin/bwrap`); one the view does not hold is
    /// left out (see [`StandIn`]).
    pub stand_ins: Vec<StandIn>,
    /// Paths the sandbox sees replaced by the session's own copy, writable
    /// (see [`SessionCopy`]); a failure to bind one stops the launch.
    pub session_copies: Vec<SessionCopy>,
    /// Python's bytecode cache as an overlay (see [`SessionOverlay`]).
    pub overlay: Option<SessionOverlay>,
}

pub(crate) struct IdMaps {
    pub uid_map: Vec<u8>,
    pub gid_map: Vec<u8>,
}

/// The plan the child executes. Immutable after fork.
pub struct Prepared {
    pub(crate) program: CString,
    _argv: Vec<CString>,
    pub(crate) argv_ptrs: Vec<*const c_char>,
    _envp: Vec<CString>,
    pub(crate) envp_ptrs: Vec<*const c_char>,
    pub(crate) cwd: CString,
    pub(crate) handover: Vec<(OwnedFd, RawFd)>,
    /// Sorted descriptors that survive the close-everything step.
    pub(crate) keep_fds: Vec<RawFd>,
    pub(crate) report_pipe: OwnedFd,
    /// The supervisor's `/proc` (a directory descriptor), through which the program
    /// learns its pid as the supervisor sees it, under an init.
    pub(crate) host_proc: OwnedFd,
    pub(crate) terminal: Option<ChildTerminal>,
    pub(crate) cgroup_procs: Option<OwnedFd>,
    /// `pid_max` for the PID namespace, as written (see [`LaunchContext`]).
    pub(crate) pid_max: Option<Vec<u8>>,
    pub(crate) id_maps: Option<IdMaps>,
    /// Mounted after every mount of `mounts` but the deny placeholders,
    /// which it holds.
    pub(crate) private: PreparedPrivate,
    pub(crate) mounts: Vec<PreparedMount>,
    /// Mounted after `mounts` but the deny placeholders, before `private`
    /// clones the tree it sits in; a failure is not reported.
    pub(crate) overlay: Option<PreparedOverlay>,
    /// Drawn after `mounts` (see [`Veil`]).
    pub(crate) veil: Option<PreparedVeil>,
    /// `None` under transparent brokering (see [`crate::root`]).
    pub(crate) root: Option<PreparedRoot>,
    pub(crate) cap_last: u32,
    /// Whether capabilities are held that must be dropped (bounding set and
    /// securebits need CAP_SETPCAP).
    pub(crate) drop_bounding: bool,
    /// Capabilities are held before any namespace is entered.
    pub(crate) caps_held: bool,
    pub(crate) rlimits: Vec<(libc::c_int, u64)>,
    pub(crate) landlock: Option<OwnedFd>,
    /// Landlock rules for the PID namespace's own `/proc` (path, access).
    pub(crate) proc_rules: Vec<(CString, u64)>,
    /// The Landlock access in the session's own [`SHM`], mounted after the
    /// protective mounts; `None`: none is mounted (the host has no
    /// `/dev/shm` to cover, or no mount namespace is made).
    pub(crate) shm: Option<u64>,
    pub(crate) seccomp: seccomp::Program,
    /// Transparent brokering (the second filter and its hand-over socket).
    pub(crate) notify: Option<crate::listener::Notify>,
    /// Where the child sends its root (see [`LaunchContext::root_socket`]),
    /// and before it, in the hosts mode, the listening sockets.
    pub(crate) root_socket: OwnedFd,
    /// The hosts mode: the addresses listened on in the program's own
    /// network namespace (the proxy first, then loopback services); empty
    /// in the other modes ([`crate::netns`]).
    pub(crate) net_listen: Vec<crate::netns::PreparedListen>,
    /// `[network] mode = "none"`: the sandbox's namespaces include an empty
    /// network namespace of its own (no interface up, no socket but Unix ones
    /// by path). Abstract Unix names are a network namespace's: in the
    /// host's, a name the program listens on is what the person's tools reach
    /// when they connect to it (an X display's `@/tmp/.X11-unix/X1` before the
    /// person starts it), and Landlock's scope stops only the program's
    /// connects. The hosts mode makes its own ([`crate::netns`]); `tcp` and
    /// `all` keep the host's by design.
    pub(crate) empty_network: bool,
    /// Per layer: does a failure stop the launch?
    pub(crate) fatal: [bool; Layer::ALL.len()],
}

// SAFETY: the raw pointers in argv_ptrs/envp_ptrs point into the CStrings
// owned by the same struct, which are never mutated.
unsafe impl Send for Prepared {}

impl Prepared {
    pub(crate) fn is_fatal(&self, layer: Option<Layer>) -> bool {
        match layer {
            Some(l) => self.fatal[Layer::ALL.iter().position(|x| *x == l).unwrap()],
            None => true,
        }
    }

    pub fn report_fd(&self) -> RawFd {
        self.report_pipe.as_raw_fd()
    }

    /// The Landlock ruleset the child restricts itself by, `None` without
    /// Landlock. Stacked (no PID namespace, no `/dev/shm` of its own) the
    /// child adds no rule to it: it is the program's whole ruleset.
    pub fn landlock_ruleset(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.landlock.as_ref().map(AsFd::as_fd)
    }

    /// Whether the process limit is to be the PID namespace's `pid_max`.
    pub fn limits_by_pid_max(&self) -> bool {
        self.pid_max.is_some()
    }

    /// For a child that will not get a PID namespace of its own, where the
    /// `pid_max` chosen for the process limit cannot hold: the session
    /// cgroup whose `cgroup.procs` is `cgroup_procs` holds it instead, or,
    /// with `None`, nothing does. Returns the limits layer's report.
    pub fn limit_without_pid_max(
        &mut self,
        policy: &Policy,
        cgroup_procs: Option<OwnedFd>,
    ) -> LayerReport {
        self.pid_max = None;
        if let Some(fd) = cgroup_procs {
            let raw = fd.as_raw_fd();
            if let Err(at) = self.keep_fds.binary_search(&raw) {
                self.keep_fds.insert(at, raw);
            }
            self.cgroup_procs = Some(fd);
        }
        let holder = match self.cgroup_procs {
            Some(_) => ProcessLimit::Cgroup,
            None => ProcessLimit::Rlimit,
        };
        // SAFETY: getuid cannot fail.
        limits_report(policy, unsafe { libc::getuid() }, holder)
    }

    /// The mounts of the namespaces step, in the child's order: item `i`
    /// of a failed [`crate::Step::Mounts`] record is entry `i - 1`. For
    /// naming what a failure left unapplied.
    pub fn mount_targets(&self) -> Vec<mounts::MountOp> {
        self.mounts
            .iter()
            .map(|m| mounts::MountOp {
                kind: m.kind,
                path: PathBuf::from(OsStr::from_bytes(m.target.as_bytes())),
            })
            .collect()
    }
}

fn null_terminated(v: &[CString]) -> Vec<*const c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

fn read_proc(path: &str, what: &'static str) -> Result<String, PrepareError> {
    std::fs::read_to_string(path).map_err(|source| PrepareError::Probe { what, source })
}

/// The capability sets this process holds (CapPrm), from /proc.
fn permitted_caps() -> Result<u64, PrepareError> {
    let status = read_proc("/proc/self/status", "/proc/self/status")?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix("CapPrm:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0))
}

/// The deny filter's choices; `landlock`: a Landlock ruleset is applied,
/// which confines ptrace to the sandbox's own processes.
fn syscall_rules(policy: &Policy, landlock: bool) -> SyscallRules {
    SyscallRules {
        net: match policy.network {
            NetPolicy::None => NetSyscalls::UnixOnly,
            // The namespace holds loopback only: TCP to the proxy.
            NetPolicy::Tcp { .. } | NetPolicy::Hosts(_) => NetSyscalls::TcpOnly,
            NetPolicy::All => NetSyscalls::All,
        },
        // sluice's own namespace, if any, is made before the filter.
        deny_user_namespaces: true,
        // Without the policy-built root a datagram could be sent to any
        // named socket on the host; `connect` is supervised instead.
        unix_datagrams: !policy.transparent,
        // Without Landlock nothing would confine a tracer to the sandbox.
        ptrace: policy.ptrace == Ptrace::Sandbox && landlock,
    }
}

/// Prepares the launch of `ctx.program` under `policy`, and reports what that
/// launch will enforce on this kernel.
pub fn prepare(
    policy: &Policy,
    ctx: LaunchContext,
) -> Result<(Prepared, EnforcementReport), PrepareError> {
    let abi = landlock_rules::kernel_abi();
    let placeholder_dir = ctx.session_dirs.private();
    // Each path's kind asked once for the mounts, the root and /dev/shm.
    let kinds = HostKinds::default();
    let mut mounts = prepare_mounts(policy, &placeholder_dir, &kinds)?;
    // After the writable trees they sit in were bound back.
    for copy in &ctx.session_copies {
        mounts.push(PreparedMount {
            kind: MountKind::SessionCopy,
            target: cstring(copy.path.as_os_str())?,
            source: cstring(copy.source.as_os_str())?,
        });
    }
    // Transparent brokering serves the program's own opens of paths outside
    // the policy, which it must first be able to name (stat, walk): the
    // host's tree stays in view.
    let shm = kinds.is_dir(Path::new(SHM));
    let root = match policy.transparent {
        true => None,
        false => Some(prepare_root(
            policy,
            &placeholder_dir,
            &ctx.cwd,
            ctx.terminal.as_ref(),
            shm,
            &ctx.stand_ins,
            &kinds,
        )?),
    };
    let veil = match &ctx.veil {
        Some(veil) => {
            let root_dir = root
                .as_ref()
                .map(|r| PathBuf::from(OsStr::from_bytes(r.dir.as_bytes())));
            let prepared = prepare_veil(policy, veil, root_dir.as_deref())?;
            if prepared.is_some() {
                // The veil's parent cannot be moved away with its ancestors
                // and replaced by one that later sessions would use unveiled.
                // Shallowest first, after the other mounts (recursive binds
                // bring those along).
                let mut pins = mounts::pins(&policy.filesystem, &veil.parent);
                pins.reverse();
                for pin in pins {
                    let path = cstring(pin.path.as_os_str())?;
                    mounts.push(PreparedMount {
                        kind: MountKind::Pin,
                        target: path.clone(),
                        source: path,
                    });
                }
            }
            prepared
        }
        None => None,
    };
    let private = prepare_private(&ctx.session_dirs, &mounts, root.as_ref())?;
    let overlay = match &ctx.overlay {
        Some(overlay) => overlay.prepare()?,
        None => None,
    };
    // Always: outside the writable trees every mount is made read-only.
    let userns = true;
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let caps = permitted_caps()?;
    let cap_last: u32 = read_proc("/proc/sys/kernel/cap_last_cap", "cap_last_cap")?
        .trim()
        .parse()
        .unwrap_or(40);
    let landlock = if abi > 0 {
        let own_network =
            matches!(policy.network, NetPolicy::Hosts(_)) && ctx.stacked_proxy.is_none();
        landlock_rules::build(policy, &proxy_ports(policy, ctx.stacked_proxy), own_network)?
    } else {
        None
    };
    let proc_rules = landlock_rules::proc_rules(policy)
        .into_iter()
        .map(|(path, access)| Ok((cstring(path.as_os_str())?, access)))
        .collect::<Result<_, PrepareError>>()?;
    let rules = syscall_rules(policy, landlock.is_some());
    let seccomp = seccomp::Program::deny_filter(&rules);

    let argv: Vec<CString> = ctx
        .argv
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = ctx
        .env
        .iter()
        .map(|(k, v)| {
            let mut kv = k.clone();
            kv.push("=");
            kv.push(v);
            cstring(&kv)
        })
        .collect::<Result<_, _>>()?;
    let mut keep_fds: Vec<RawFd> = ctx.handover.iter().map(|(_, dst)| *dst).collect();
    keep_fds.push(ctx.report_pipe.as_raw_fd());
    keep_fds.extend(landlock.as_ref().map(|f| f.as_raw_fd()));
    keep_fds.extend(ctx.cgroup_procs.as_ref().map(|f| f.as_raw_fd()));
    keep_fds.extend(ctx.terminal.as_ref().map(|t| t.slave.as_raw_fd()));
    keep_fds.extend(ctx.notify_socket.as_ref().map(|f| f.as_raw_fd()));
    keep_fds.push(ctx.root_socket.as_raw_fd());
    let host_proc = std::fs::File::open("/proc")
        .map(OwnedFd::from)
        .map_err(|source| PrepareError::Probe {
            what: "/proc",
            source,
        })?;
    keep_fds.push(host_proc.as_raw_fd());
    keep_fds.sort_unstable();

    // Bounding set and securebits need CAP_SETPCAP, which root and the user
    // namespace give; without any capability there is nothing to drop.
    let drop_bounding = userns || uid == 0 || caps != 0;
    let trees = root.as_ref().map(|r| {
        r.entries
            .iter()
            .filter(|e| matches!(e, RootEntry::Bind { .. }))
            .count()
    });
    let mount_count = (mounts.len(), trees);
    let report = report_for(policy, abi, &ctx, mount_count, &rules, uid, drop_bounding);
    let fatal = Layer::ALL.map(|l| policy.layers.is_required(l));
    let prepared = Prepared {
        program: cstring(ctx.program.as_os_str())?,
        argv_ptrs: null_terminated(&argv),
        _argv: argv,
        envp_ptrs: null_terminated(&envp),
        _envp: envp,
        cwd: cstring(ctx.cwd.as_os_str())?,
        handover: ctx.handover,
        keep_fds,
        report_pipe: ctx.report_pipe,
        host_proc,
        terminal: ctx.terminal,
        cgroup_procs: ctx.cgroup_procs,
        pid_max: ctx.pid_max.map(|n| n.to_string().into_bytes()),
        id_maps: userns.then(|| IdMaps {
            uid_map: format!("{uid} {uid} 1\n").into_bytes(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        }),
        private,
        mounts,
        overlay,
        veil,
        root,
        cap_last,
        drop_bounding,
        caps_held: caps != 0,
        rlimits: rlimits(policy),
        landlock,
        proc_rules,
        shm: shm.then(landlock_rules::shm_access),
        seccomp,
        notify: ctx.notify_socket.map(|socket| {
            // `[network] mode = "none"`: IP sockets go to the supervisor,
            // which refuses them and says so (`broker::transparent::socket`).
            let ip_sockets = matches!(policy.network, NetPolicy::None);
            crate::listener::Notify {
                program: seccomp::Program::supervised(&rules, policy.transparent, ip_sockets),
                socket,
            }
        }),
        root_socket: ctx.root_socket,
        empty_network: matches!(policy.network, NetPolicy::None),
        net_listen: match ctx.stacked_proxy {
            Some(_) => Vec::new(),
            None => net_listen(policy)?,
        },
        fatal,
    };
    Ok((prepared, report))
}

/// The addresses the hosts mode listens on in the program's namespace.
pub fn listen_addresses(policy: &Policy) -> Vec<std::net::SocketAddr> {
    let NetPolicy::Hosts(hosts) = &policy.network else {
        return Vec::new();
    };
    let proxy = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, policies::PROXY_PORT));
    std::iter::once(proxy)
        .chain(
            hosts
                .loopback_services()
                .into_iter()
                .map(std::net::SocketAddr::from),
        )
        .collect()
}

/// The port a stacked hosts mode's program may connect to: its proxy's.
fn proxy_ports(policy: &Policy, stacked: Option<u16>) -> Vec<u16> {
    match (&policy.network, stacked) {
        (NetPolicy::Hosts(_), Some(port)) => vec![port],
        _ => Vec::new(),
    }
}

fn net_listen(policy: &Policy) -> Result<Vec<crate::netns::PreparedListen>, PrepareError> {
    let addrs = listen_addresses(policy);
    if addrs.is_empty() {
        return Ok(Vec::new());
    }
    if addrs.len() > crate::netns::MAX_LISTENERS {
        return Err(PrepareError::Policy(format!(
            "at most {} loopback services can be named in [network] hosts",
            crate::netns::MAX_LISTENERS - 1
        )));
    }
    if addrs[1..].iter().any(|a| a.port() == policies::PROXY_PORT) {
        return Err(PrepareError::Policy(format!(
            "port {} on loopback is sluice's proxy in the program's network; \
             a loopback service there cannot be named",
            policies::PROXY_PORT
        )));
    }
    Ok(addrs
        .into_iter()
        .map(crate::netns::PreparedListen::new)
        .collect())
}

fn report_for(
    policy: &Policy,
    abi: i32,
    ctx: &LaunchContext,
    (mount_count, trees): (usize, Option<usize>),
    rules: &SyscallRules,
    uid: libc::uid_t,
    drop_bounding: bool,
) -> EnforcementReport {
    let required = |l| policy.layers.is_required(l);
    let layer = |layer, status, detail: String| LayerReport {
        layer,
        status,
        required: required(layer),
        detail,
    };
    let [fs, scopes] = landlock_rules::layer_reports(policy, abi);
    let network = match &policy.network {
        NetPolicy::All => layer(Layer::Network, Status::NotNeeded, "network: all".into()),
        NetPolicy::None => layer(
            Layer::Network,
            if abi >= 4 {
                Status::Enforced
            } else {
                Status::Partial
            },
            "AF_UNIX sockets only (seccomp), TCP denied (landlock); an empty network \
             namespace of its own (abstract Unix names the program's own)"
                .into(),
        ),
        NetPolicy::Hosts(hosts) => layer(
            Layer::Network,
            if landlock_rules::supports_tcp(abi) {
                Status::Enforced
            } else {
                Status::Partial
            },
            format!(
                "{}; {} host rule(s){}; no UDP or raw sockets (seccomp)",
                match ctx.stacked_proxy {
                    None => format!(
                        "a network namespace of its own, loopback only; out through sluice's \
                         proxy on 127.0.0.1:{} (and the loopback services named)",
                        policies::PROXY_PORT
                    ),
                    Some(port) => format!(
                        "stacked: the enclosing sandbox's network; out through this session's \
                         proxy on 127.0.0.1:{port}; TCP connect to it only, no bind (landlock)"
                    ),
                },
                hosts.allow.len(),
                match hosts.ask {
                    policies::AskHosts::No => "",
                    _ => ", others asked",
                }
            ),
        ),
        NetPolicy::Tcp { connect, bind } => layer(
            Layer::Network,
            if landlock_rules::supports_tcp(abi) {
                Status::Enforced
            } else {
                Status::NotEnforced
            },
            format!(
                "TCP connect {:?} and 53 (names over TCP: RES_OPTIONS=use-vc), bind {:?} \
                 (landlock); no UDP or raw sockets (seccomp)",
                connect, bind
            ),
        ),
    };
    // The namespace is always made: every mount in it is read-only but the
    // writable trees (mount_count counts their binds and the protective mounts).
    let root = match trees {
        Some(trees) => format!("a root of the policy's {trees} trees"),
        None => "the host's tree in view (transparent brokering)".to_owned(),
    };
    let namespaces = layer(
        Layer::Namespaces,
        Status::Enforced,
        format!(
            "private mount namespace, read-only outside the writable trees, {mount_count} mounts; \
             {root}"
        ),
    );
    let caps_detail = if drop_bounding {
        "all sets dropped, bounding and ambient included; securebits locked".to_string()
    } else {
        "none held; bounding set kept (no CAP_SETPCAP), no_new_privs stops any gain".to_string()
    };
    let denied = seccomp::denied_syscall_names(rules).len();
    let ptrace = match (rules.ptrace, policy.ptrace) {
        (true, _) => "; ptrace of the sandbox's own processes allowed (Landlock confines it)",
        (false, Ptrace::Sandbox) => "; ptrace refused: no Landlock to confine it to the sandbox",
        (false, Ptrace::None) => "",
    };
    let notified = match (ctx.notify_socket.is_some(), policy.transparent) {
        (true, true) => "; open calls brokered (user notification)",
        (true, false) => "; writes guarded against [filesystem] protect (user notification)",
        (false, _) => "",
    };
    EnforcementReport {
        landlock_abi: abi,
        layers: vec![
            fs,
            network,
            scopes,
            layer(
                Layer::Syscalls,
                Status::Enforced,
                format!(
                    "seccomp: {denied} system calls denied, foreign ABIs killed{notified}{ptrace}"
                ),
            ),
            namespaces,
            layer(
                Layer::PidNamespace,
                Status::Enforced,
                "a PID namespace of its own with an init, and its own /proc".into(),
            ),
            layer(Layer::NoNewPrivs, Status::Enforced, "set".into()),
            layer(Layer::Capabilities, Status::Enforced, caps_detail),
            limits_report(policy, uid, process_limit(ctx)),
        ],
    }
}

/// What holds the process limit, by what the supervisor set up.
#[derive(Clone, Copy)]
enum ProcessLimit {
    Cgroup,
    PidMax,
    /// RLIMIT_NPROC alone (which the kernel never applies to real uid 0).
    Rlimit,
}

fn process_limit(ctx: &LaunchContext) -> ProcessLimit {
    match (&ctx.cgroup_procs, ctx.pid_max) {
        (Some(_), _) => ProcessLimit::Cgroup,
        (None, Some(_)) => ProcessLimit::PidMax,
        (None, None) => ProcessLimit::Rlimit,
    }
}

/// Whether the kernel exempts this process's uid 0 from RLIMIT_NPROC. It
/// exempts the initial user namespace's root (kernel uid 0) only: in a user
/// namespace whose uid 0 is another user outside (a rootless container,
/// `unshare -Ur`, a sluice stacked in one), the limit applies. The initial
/// namespace is exempt; uid 0 mapped to another uid of the parent
/// namespace is not; uid 0 mapped to the parent's uid 0 may be either (the
/// parent's own map is not visible), so a child process asks the kernel.
fn uid0_exempt_from_nproc() -> bool {
    // PROC_USER_INIT_INO: the initial user namespace.
    const INITIAL: u64 = 0xEFFF_FFFD;
    let initial = std::fs::metadata("/proc/self/ns/user")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m) == INITIAL)
        .unwrap_or(true);
    if initial {
        return true;
    }
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) if !uid0_maps_to_root(&map) => false,
        Ok(_) => nproc_exempt_by_trial(),
        Err(_) => true,
    }
}

/// Forks a child that lowers its RLIMIT_NPROC to 1 and forks again: the
/// kernel refuses that fork (`EAGAIN`) unless it exempts the uid. Only
/// raw, async-signal-safe calls after the fork. Any doubt: exempt.
fn nproc_exempt_by_trial() -> bool {
    // SAFETY: the child only makes raw system calls and exits.
    let pid = unsafe { libc::fork() };
    match pid {
        0 => {
            if crate::sys::setrlimit(libc::RLIMIT_NPROC as libc::c_int, 1).is_err() {
                crate::sys::exit(3);
            }
            // SAFETY: as above; the grandchild exits at once.
            match unsafe { libc::fork() } {
                0 => crate::sys::exit(0),
                -1 if crate::sys::errno() == libc::EAGAIN => crate::sys::exit(2),
                -1 => crate::sys::exit(3),
                grandchild => {
                    // SAFETY: waits for our own child.
                    unsafe { libc::waitpid(grandchild, std::ptr::null_mut(), 0) };
                    crate::sys::exit(1)
                }
            }
        }
        -1 => true,
        child => {
            let mut status = 0;
            // SAFETY: waits for the child forked above; status is a valid out-pointer.
            let waited = unsafe { libc::waitpid(child, &mut status, 0) };
            !(waited == child && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 2)
        }
    }
}

/// Whether `map` (uid_map's lines: inside, outside, count) maps uid 0 to
/// uid 0 outside, or does not map it at all.
fn uid0_maps_to_root(map: &str) -> bool {
    for line in map.lines() {
        let fields: Vec<u64> = line
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        if let [inside, outside, count] = fields[..] {
            if inside == 0 && count > 0 {
                return outside == 0;
            }
        }
    }
    true
}

fn limits_report(policy: &Policy, uid: libc::uid_t, holder: ProcessLimit) -> LayerReport {
    let l = &policy.limits;
    let mut parts = Vec::new();
    let mut status = Status::Enforced;
    for (name, v) in [
        ("address space", l.address_space),
        ("open files", l.open_files),
        ("cpu seconds", l.cpu_seconds),
        ("file size", l.file_size),
    ] {
        if let Some(v) = v {
            parts.push(format!("{name} {v}"));
        }
    }
    if let Some(n) = l.processes {
        match (holder, uid) {
            (ProcessLimit::Cgroup, _) => parts.push(format!("processes {n} (cgroup pids)")),
            (ProcessLimit::PidMax, _) => {
                parts.push(format!("processes {n} (the PID namespace's pid_max)"))
            }
            // The kernel never applies RLIMIT_NPROC to real uid 0; it does
            // to uid 0 of a user namespace that maps it to another user.
            (ProcessLimit::Rlimit, 0) if !uid0_exempt_from_nproc() => parts.push(format!(
                "processes {n} (rlimit: uid 0 of a user namespace, another user outside)"
            )),
            (ProcessLimit::Rlimit, 0) => {
                status = Status::Partial;
                parts.push(format!(
                    "processes {n} NOT enforced: running as root and no writable cgroup pids controller"
                ));
            }
            (ProcessLimit::Rlimit, _) => parts.push(format!("processes {n} (rlimit)")),
        }
    }
    if parts.is_empty() {
        status = Status::NotNeeded;
        parts.push("none set".into());
    }
    LayerReport {
        layer: Layer::Limits,
        status,
        required: policy.layers.is_required(Layer::Limits),
        detail: parts.join(", "),
    }
}

#[cfg(test)]
mod uid_map_tests {
    use super::uid0_maps_to_root;

    #[test]
    fn only_uid0_mapped_to_uid0_outside_is_exempt_from_nproc() {
        // The initial namespace, and a namespace root made with `0 0 1`.
        assert!(uid0_maps_to_root("         0          0 4294967295\n"));
        assert!(uid0_maps_to_root("0 0 1\n"));
        // `unshare -Ur` by uid 1000, a rootless container's range.
        assert!(!uid0_maps_to_root("         0       1000          1\n"));
        assert!(!uid0_maps_to_root("0 100000 65536\n1 1 0\n"));
        // uid 0 not mapped: taken as exempt (the strict answer).
        assert!(uid0_maps_to_root("1000 1000 1\n"));
        assert!(uid0_maps_to_root(""));
    }
}
