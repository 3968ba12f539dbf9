//! The Landlock ruleset, built in the supervisor before fork.
//!
//! The child only calls `landlock_restrict_self` on the prepared descriptor.
//! Rules attach to inodes, not path names, so they keep holding inside the
//! child's private mount namespace.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, Scope, ABI,
};
use policies::{NetPolicy, Policy};

use crate::report::{Layer, LayerReport, Status};

/// The newest ABI sluice knows how to use; every right up to it is handled.
pub const TARGET_ABI: ABI = ABI::V7;
const TARGET_ABI_NUM: i32 = 7;

#[derive(Debug, thiserror::Error)]
pub enum RulesetError {
    #[error("cannot open '{path}' for a Landlock rule: {source}")]
    Path {
        path: String,
        #[source]
        source: landlock::PathFdError,
    },
    #[error("building the Landlock ruleset: {0}")]
    Ruleset(#[from] landlock::RulesetError),
}

/// The kernel's Landlock ABI version; 0 when Landlock is missing or disabled.
pub fn kernel_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    // SAFETY: the version query takes a null attribute pointer and size 0.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if v < 0 {
        0
    } else {
        v as i32
    }
}

fn read_access() -> BitFlags<AccessFs> {
    AccessFs::ReadFile | AccessFs::ReadDir
}

fn write_access() -> BitFlags<AccessFs> {
    AccessFs::from_write(TARGET_ABI) | read_access()
}

/// The rights in the session's own `/dev/shm` (see [`crate::mounts::SHM`]): read
/// and write, never execute. Added by the child once that tmpfs is mounted,
/// rules attaching to inodes.
pub fn shm_access() -> u64 {
    applicable(Path::new(crate::mounts::SHM), write_access()).bits()
}

fn exec_access() -> BitFlags<AccessFs> {
    read_access() | AccessFs::Execute
}

fn add_path(
    ruleset: landlock::RulesetCreated,
    path: &Path,
    access: BitFlags<AccessFs>,
) -> Result<landlock::RulesetCreated, RulesetError> {
    let fd = PathFd::new(path).map_err(|source| RulesetError::Path {
        path: path.display().to_string(),
        source,
    })?;
    // Asked of the descriptor the rule attaches to, not by the path again.
    let access = match is_dir(fd.as_fd()) {
        true => access,
        false => access & AccessFs::from_file(TARGET_ABI),
    };
    Ok(ruleset.add_rule(PathBeneath::new(fd, access))?)
}

/// Whether `fd` (an `O_PATH` descriptor is enough) is a directory: one
/// `fstat`, no lookup. A failure counts as not one, as for [`applicable`].
fn is_dir(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: an all-zero stat is valid; fstat overwrites it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat fills `st`; `fd` is open for the call's duration.
    let ok = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0;
    ok && st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Directory-only rights make no sense on a file; keep what applies.
fn applicable(path: &Path, access: BitFlags<AccessFs>) -> BitFlags<AccessFs> {
    if path.is_dir() {
        access
    } else {
        access & AccessFs::from_file(TARGET_ABI)
    }
}

/// The policy's rules at or beneath `/proc`, as (path, access bits). Rules
/// attach to inodes, and a PID namespace's own `/proc` has its own: the
/// child adds these again once it is mounted.
pub fn proc_rules(policy: &Policy) -> Vec<(PathBuf, u64)> {
    let fs = &policy.filesystem;
    let lists = [
        (&fs.read, read_access()),
        (&fs.execute, exec_access()),
        (&fs.write, write_access()),
    ];
    lists
        .into_iter()
        .flat_map(|(paths, access)| paths.iter().map(move |p| (p, access)))
        .filter(|(p, _)| p.starts_with("/proc"))
        .map(|(p, access)| (p.clone(), applicable(p, access).bits()))
        .collect()
}

/// Builds the ruleset for `policy` and returns its descriptor (close-on-exec),
/// or `None` when the kernel has no Landlock at all.
/// `connect`: more ports TCP may connect to (a stacked hosts mode's proxy).
/// `own_network`: the program has a network namespace of its own holding
/// loopback only, where what it can reach is its own servers and sluice's
/// listeners, and a stacked session's proxy must bind and be reached: TCP
/// is left to the namespace.
pub fn build(
    policy: &Policy,
    connect: &[u16],
    own_network: bool,
) -> Result<Option<OwnedFd>, RulesetError> {
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(TARGET_ABI))?
        .scope(Scope::from_all(TARGET_ABI))?;
    if !own_network && policy.network != NetPolicy::All {
        ruleset = ruleset.handle_access(AccessNet::from_all(TARGET_ABI))?;
    }
    let mut created = ruleset.create()?;
    let fs = &policy.filesystem;
    for p in &fs.read {
        created = add_path(created, p, read_access())?;
    }
    for p in &fs.execute {
        created = add_path(created, p, exec_access())?;
    }
    for p in &fs.write {
        created = add_path(created, p, write_access())?;
    }
    // The hosts mode: in the program's own network only the proxy and the
    // loopback services listen; connecting to those ports is all it needs.
    for &port in connect {
        created = created.add_rule(NetPort::new(port, AccessNet::ConnectTcp))?;
    }
    if let NetPolicy::Tcp { connect, bind } = &policy.network {
        // Names resolve over TCP (`RES_OPTIONS=use-vc`, set by the
        // supervisor): UDP stays refused.
        created = created.add_rule(NetPort::new(policies::DNS_PORT, AccessNet::ConnectTcp))?;
        for &port in connect {
            created = created.add_rule(NetPort::new(port, AccessNet::ConnectTcp))?;
        }
        for &port in bind {
            created = created.add_rule(NetPort::new(port, AccessNet::BindTcp))?;
        }
    }
    Ok(created.into())
}

/// The report lines for the layers Landlock carries, given the kernel ABI.
pub fn layer_reports(policy: &Policy, abi: i32) -> [LayerReport; 2] {
    let required = |l| policy.layers.is_required(l);
    let fs = match abi {
        0 => (Status::NotEnforced, "Landlock unavailable".to_string()),
        // ABI 5 completes the file-system rights sluice handles (IOCTL_DEV);
        // 6 and 7 add scopes and logging.
        1..=4 => (
            Status::Partial,
            format!("landlock ABI {abi}: file rights of ABI 5 missing"),
        ),
        _ => (Status::Enforced, format!("landlock ABI {abi}")),
    };
    let scopes = match abi {
        0..=5 => (
            Status::NotEnforced,
            format!("landlock ABI {abi}: scopes need ABI 6"),
        ),
        _ => (
            Status::Enforced,
            format!("landlock ABI {abi}: abstract unix sockets, signals"),
        ),
    };
    [
        LayerReport {
            layer: Layer::Filesystem,
            status: fs.0,
            required: required(Layer::Filesystem),
            detail: if abi > TARGET_ABI_NUM {
                format!("{}; sluice targets ABI {TARGET_ABI_NUM}", fs.1)
            } else {
                fs.1
            },
        },
        LayerReport {
            layer: Layer::Scopes,
            status: scopes.0,
            required: required(Layer::Scopes),
            detail: scopes.1,
        },
    ]
}

/// Whether the kernel can enforce Landlock's TCP rules.
pub fn supports_tcp(abi: i32) -> bool {
    abi >= 4
}
