//! The guard: nothing the program writes runs outside the sandbox later.
//!
//! `[filesystem] protect` names paths that make the person's own tools run
//! code (git hooks and configuration, editor and agent settings, start-up
//! files). A mount can only protect what exists at launch, so the child
//! installs a user-notification filter (`sandbox_child::seccomp`, the
//! default mode's `guard_spec`; under `--transparent`, the same calls in
//! its filter) for every call that writes a file or makes a name: `open`
//! and `openat` whose flags write, create, truncate or make an unnamed
//! file, `creat`, `openat2`, `mkdir`, `mknod`, `link`, `symlink` and
//! `rename` in all their forms, `chmod` in all its forms when the mode
//! makes a file executable, and `setxattr` in all its forms (an access ACL
//! grants execute permission). For each the reader thread
//! ([`super::transparent`]) calls [`serve`]:
//!
//! 1. The paths are read once from the program's memory.
//! 2. Each is resolved to its parent directory in the program's own root
//!    (`/proc/<tid>/root`, `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`: its
//!    mount view, its symlinks) and the kernel's name for that directory,
//!    plus the final name, is judged ([`judge`]): a protected path is
//!    never written, made, linked to or renamed onto, and no new name is
//!    made on the way to one (a file or symlink named `.git`, `mv x .git`),
//!    nor moved into a protected tree from outside (`mv x .git/modules/m`).
//!    Whatever the lists say, no name made holds a character a terminal
//!    acts on ([`judge::judge_name`], `EINVAL`), no Python extension
//!    module or package is made beside the source it would shadow
//!    ([`python`]), and no symlink leads to a protected path
//!    (`carry::check_leads`): the person's tools print the names, import
//!    the modules and write through the symlinks later.
//! 3. What passes is made by the connector, a process inside the program's
//!    sandbox (`sandbox_child::fsop`), on that directory descriptor and
//!    name, following no symlink there: the kernel is never asked to run
//!    the call again on the program's say-so (`CONTINUE`), which another
//!    thread could change after the check. A symlink at the name of an
//!    open is read and followed here, and the target judged in its turn.
//! 4. A refusal is `EACCES`, recorded in the audit and said once per path
//!    on standard error with the rule.
//!
//! A repository's own configuration (`.git/config`) written through a
//! rename, as git does, is checked instead ([`gitconfig`]) and put in
//! place as a copy the program holds no descriptor of.

mod attrs;
mod carry;
mod gitconfig;
mod null;
mod python;
// Pure and shared with the broker's own writes: `broker::protect`.
use super::protect as judge;
pub(crate) use judge::{Act, HEAD};
pub mod stacked;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use nix::errno::Errno;
use policies::{FsPolicy, Protect};
use proto::socket::{recv_frame, Blocking};
use sandbox_child::fsop::{self, Op};

use super::safe_open;
use super::transparent::call::OpenCall;
use super::transparent::caller::{Target, Unreadable};
use super::transparent::SandboxView;
use crate::audit::{self, By, Decision, DecisionRecord, Via};
use crate::sys;
use attrs::{chmod, fchmod, setxattr};
use carry::{carry_out_as, done, follow, opened, perform, request};
pub use gitconfig::{hooks_path, include_paths};
use judge::Refusal;

/// How many symlinks an open follows at its final name, as the kernel.
const MAX_LINKS: usize = 40;

/// The guard's state for one session.
pub struct Guard {
    protect: Protect,
    /// The program's root (`/proc/<tid>/root`), opened at the first call.
    root: OnceLock<OwnedFd>,
    /// Paths already reported on standard error.
    told: Mutex<HashSet<PathBuf>>,
    copies: AtomicU64,
    /// The seccomp filters the program ran under at exec: a thread under
    /// more is in a sandbox of its own (`transparent::stacked`).
    filters_at_exec: u32,
    /// What the sandbox may write itself, for [`null`].
    view: SandboxView,
    /// Python's extension modules in the directories sources are made in.
    extensions: python::Extensions,
}

impl Guard {
    /// `view` is the sandbox's own ([`SandboxView::new`] of `fs`).
    pub fn new(fs: &FsPolicy, filters_at_exec: u32, view: SandboxView) -> Guard {
        Guard {
            protect: fs.protect.clone(),
            view,
            root: OnceLock::new(),
            told: Mutex::new(HashSet::new()),
            copies: AtomicU64::new(0),
            filters_at_exec,
            extensions: python::Extensions::default(),
        }
    }
}

/// What the reader needs to serve a guarded call.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub guard: &'a Guard,
    pub shared: &'a super::Shared,
    pub connector: Option<&'a OwnedFd>,
    /// A stacked sluice's `protect` list, judged too, for a call of its
    /// program ([`stacked`]); `None` for the program's own calls.
    pub stacked: Option<&'a Protect>,
}

impl Env<'_> {
    /// The `protect` lists a call is judged by.
    fn lists(&self) -> impl Iterator<Item = &Protect> {
        std::iter::once(&self.guard.protect).chain(self.stacked)
    }
}

/// A guarded call, decoded (paths not yet read).
#[derive(Debug, Clone, Copy)]
pub enum Call {
    /// The `open` family and `mkdir` (as transparent brokering decodes them).
    Open(OpenCall),
    Mknod {
        dirfd: Option<i32>,
        path: u64,
        mode: u32,
        dev: u64,
    },
    Symlink {
        target: u64,
        dirfd: Option<i32>,
        path: u64,
    },
    Link {
        olddir: Option<i32>,
        old: u64,
        newdir: Option<i32>,
        new: u64,
        flags: i32,
    },
    Rename {
        olddir: Option<i32>,
        old: u64,
        newdir: Option<i32>,
        new: u64,
        flags: u32,
    },
    /// `chmod`, `fchmodat`, `fchmodat2` that make a file executable.
    Chmod {
        dirfd: Option<i32>,
        path: u64,
        mode: u32,
        flags: i32,
    },
    /// `fchmod` that makes a descriptor's file executable.
    Fchmod { fd: i32, mode: u32 },
    /// `setxattr`, `lsetxattr`, `fsetxattr`, `setxattrat` (an access ACL
    /// sets execute permission as `chmod` does).
    Setxattr {
        /// `None`: the descriptor `dirfd` (`fsetxattr`).
        path: Option<u64>,
        dirfd: Option<i32>,
        at_flags: i32,
        name: u64,
        /// `setxattrat`: the address and size of its `struct xattr_args`.
        args: XattrArgs,
    },
}

/// Where a `setxattr` call's value, size and flags are.
#[derive(Debug, Clone, Copy)]
pub enum XattrArgs {
    Registers {
        value: u64,
        size: u64,
        flags: u32,
    },
    /// `setxattrat`'s `struct xattr_args` in memory, and its size.
    Memory {
        addr: u64,
        size: u64,
    },
}

/// `setxattrat`: the same number on every architecture.
const SYS_SETXATTRAT: libc::c_long = 463;

/// `fchmodat2`: the same number on every architecture (libc names it only
/// for some).
const SYS_FCHMODAT2: libc::c_long = 452;

impl Call {
    /// The guard's calls other than the `open` family and `mkdir`.
    pub fn decode_naming(data: &libc::seccomp_data) -> Option<Call> {
        let a = data.args;
        let int = |v: u64| Some(v as u32 as i32);
        Some(match libc::c_long::from(data.nr) {
            libc::SYS_mknodat => Call::Mknod {
                dirfd: int(a[0]),
                path: a[1],
                mode: a[2] as u32,
                dev: a[3],
            },
            libc::SYS_symlinkat => Call::Symlink {
                target: a[0],
                dirfd: int(a[1]),
                path: a[2],
            },
            libc::SYS_linkat => Call::Link {
                olddir: int(a[0]),
                old: a[1],
                newdir: int(a[2]),
                new: a[3],
                flags: a[4] as u32 as i32,
            },
            libc::SYS_renameat => Call::Rename {
                olddir: int(a[0]),
                old: a[1],
                newdir: int(a[2]),
                new: a[3],
                flags: 0,
            },
            libc::SYS_renameat2 => Call::Rename {
                olddir: int(a[0]),
                old: a[1],
                newdir: int(a[2]),
                new: a[3],
                flags: a[4] as u32,
            },
            libc::SYS_fchmod => Call::Fchmod {
                fd: a[0] as u32 as i32,
                mode: a[1] as u32,
            },
            libc::SYS_fchmodat => Call::Chmod {
                dirfd: int(a[0]),
                path: a[1],
                mode: a[2] as u32,
                flags: 0,
            },
            SYS_FCHMODAT2 => Call::Chmod {
                dirfd: int(a[0]),
                path: a[1],
                mode: a[2] as u32,
                flags: a[3] as u32 as i32,
            },
            libc::SYS_setxattr | libc::SYS_lsetxattr => Call::Setxattr {
                path: Some(a[0]),
                dirfd: None,
                at_flags: if libc::c_long::from(data.nr) == libc::SYS_lsetxattr {
                    libc::AT_SYMLINK_NOFOLLOW
                } else {
                    0
                },
                name: a[1],
                args: XattrArgs::Registers {
                    value: a[2],
                    size: a[3],
                    flags: a[4] as u32,
                },
            },
            libc::SYS_fsetxattr => Call::Setxattr {
                path: None,
                dirfd: int(a[0]),
                at_flags: libc::AT_EMPTY_PATH,
                name: a[1],
                args: XattrArgs::Registers {
                    value: a[2],
                    size: a[3],
                    flags: a[4] as u32,
                },
            },
            SYS_SETXATTRAT => Call::Setxattr {
                path: Some(a[1]),
                dirfd: int(a[0]),
                at_flags: a[2] as u32 as i32,
                name: a[3],
                args: XattrArgs::Memory {
                    addr: a[4],
                    size: a[5],
                },
            },
            #[cfg(target_arch = "x86_64")]
            libc::SYS_chmod => Call::Chmod {
                dirfd: None,
                path: a[0],
                mode: a[1] as u32,
                flags: 0,
            },
            #[cfg(target_arch = "x86_64")]
            libc::SYS_mknod => Call::Mknod {
                dirfd: None,
                path: a[0],
                mode: a[1] as u32,
                dev: a[2],
            },
            #[cfg(target_arch = "x86_64")]
            libc::SYS_symlink => Call::Symlink {
                target: a[0],
                dirfd: None,
                path: a[1],
            },
            #[cfg(target_arch = "x86_64")]
            libc::SYS_link => Call::Link {
                olddir: None,
                old: a[0],
                newdir: None,
                new: a[1],
                flags: 0,
            },
            #[cfg(target_arch = "x86_64")]
            libc::SYS_rename => Call::Rename {
                olddir: None,
                old: a[0],
                newdir: None,
                new: a[1],
                flags: 0,
            },
            _ => return None,
        })
    }

    fn op(&self) -> audit::Op {
        match self {
            Call::Open(c) if c.mkdir() => audit::Op::Mkdir,
            Call::Open(_) => audit::Op::Open,
            Call::Mknod { .. } => audit::Op::Mknod,
            Call::Symlink { .. } => audit::Op::Symlink,
            Call::Link { .. } => audit::Op::Link,
            Call::Rename { .. } => audit::Op::Rename,
            Call::Chmod { .. } | Call::Fchmod { .. } => audit::Op::Chmod,
            Call::Setxattr { .. } => audit::Op::Setxattr,
        }
    }
}

/// Whether an open (or mkdir) that transparent brokering would leave to the
/// kernel is the guard's: it writes, creates, truncates, makes an unnamed
/// file or a directory, or is an `openat2` (whose flags are in memory).
pub fn guards_open(open: &OpenCall) -> bool {
    open.mkdir()
        || open.how.is_some()
        || open.flags & sandbox_child::seccomp::GUARDED_OPEN_FLAGS as i32 != 0
}

/// How a guarded call is answered.
enum Answer {
    Errno(i32),
    Done,
    Descriptor(OwnedFd, bool),
}

/// Why a call was not carried out.
enum Stop {
    /// The notification is gone: nothing to answer.
    Gone,
    Errno(i32),
    Refused(PathBuf, Refusal),
    /// A name holding a control character ([`judge::judge_name`]):
    /// `EINVAL`, as a file system that takes no such name answers (vfat).
    BadName(PathBuf, Refusal),
}

impl From<Unreadable> for Stop {
    fn from(u: Unreadable) -> Stop {
        match u {
            Unreadable::Gone => Stop::Gone,
            // Never `CONTINUE` here: the kernel would read the arguments
            // again, and find what another thread put there since.
            Unreadable::Kernel => Stop::Errno(libc::EFAULT),
        }
    }
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

/// Serves one guarded call and answers it.
pub fn serve(env: &Env<'_>, target: &Target<'_>, call: Call) {
    let started = Instant::now();
    let answer = match carry_out(env, target, &call) {
        Ok(answer) => answer,
        Err(Stop::Gone) => return,
        Err(Stop::Errno(errno)) => Answer::Errno(errno),
        Err(Stop::Refused(path, refusal)) => {
            refuse(
                env,
                target,
                &call,
                &path,
                &refusal,
                started,
                (PROTECTED, By::Rule),
            );
            Answer::Errno(libc::EACCES)
        }
        Err(Stop::BadName(path, refusal)) => {
            // No policy lifts it: said so in the summary (`refusals`).
            let how = (BAD_NAME, By::Protected);
            refuse(env, target, &call, &path, &refusal, started, how);
            Answer::Errno(libc::EINVAL)
        }
    };
    let listener = target.listener;
    let result = match answer {
        Answer::Errno(errno) => listener.fail(target.id, errno),
        Answer::Done => listener.succeed(target.id),
        Answer::Descriptor(fd, cloexec) => listener
            .add_fd_as_result(target.id, fd.as_fd(), cloexec)
            .map(drop),
    };
    if let Err(e) = result {
        // A call left unanswered would hold its thread for ever: unless the
        // notification is gone (ENOENT), answer it with the error.
        if e.raw_os_error() != Some(libc::ENOENT) {
            let errno = e.raw_os_error().unwrap_or(libc::EIO);
            if let Err(e) = listener.fail(target.id, errno) {
                tracing::debug!(id = target.id, "guard: notification not answered: {e}");
            }
        }
    }
}

/// What a refusal of a protected path tells the person after the path,
/// the reason and the rule.
const PROTECTED: &str = "The sandbox never writes such a path; if the change is wanted, \
    make it yourself outside sluice.";

/// The same for a name holding a control character.
const BAD_NAME: &str = "The sandbox makes no such name (the call fails with EINVAL); \
    if it is wanted, make it yourself outside sluice.";

/// Records a refusal and tells the person, once per path: `then` is said
/// after the reason, `by` recorded as who refused.
fn refuse(
    env: &Env<'_>,
    target: &Target<'_>,
    call: &Call,
    path: &Path,
    refusal: &Refusal,
    started: Instant,
    (then, by): (&str, By),
) {
    let first = env
        .guard
        .told
        .lock()
        .map(|mut told| told.insert(path.to_path_buf()))
        .unwrap_or(true);
    if first {
        let text = format!(
            "sluice: refused writing {}: {} ({}). {then}",
            crate::audit::escape::escape_os(path.as_os_str()),
            refusal.why,
            refusal.rule,
        );
        // The program chose the name and what the rule quotes (a git
        // configuration's value): no control character reaches the person's
        // terminal, past the relay. `\r\n`: the terminal may be in raw mode
        // for the relay.
        eprint!("{}\r\n", crate::audit::escape::for_terminal(&text));
    }
    let record = DecisionRecord {
        pid: target.tid as u32,
        exe: target.exe(),
        client: "guard".to_owned(),
        via: Via::Guard,
        request_id: target.id,
        op: call.op(),
        path_asked: path.to_path_buf(),
        path_opened: None,
        access: audit::Access::Write,
        flags: proto::OpenFlags::default(),
        decision: Decision::Denied,
        by,
        rule: Some(refusal.rule.clone()),
        reason: Some(refusal.why.to_owned()),
        latency_us: started.elapsed().as_micros() as u64,
    };
    // The refusal stands without its record (`record` says why).
    let _ = env.shared.record(&record);
}

/// A path as the program named it: where it starts, and the bytes.
struct Named {
    /// The directory a relative path starts from (the program's name for
    /// it); `None` for an absolute path.
    base: Option<Vec<u8>>,
    asked: Vec<u8>,
}

/// A name to act on: its parent, resolved in the program's root, and the
/// final component.
struct Place {
    parent: OwnedFd,
    real: PathBuf,
    name: Vec<u8>,
}

fn read_named(target: &Target<'_>, dirfd: Option<i32>, addr: u64) -> Result<Named, Stop> {
    let asked = target.read_path(addr)?;
    if asked.is_empty() {
        return Err(Stop::Errno(libc::ENOENT));
    }
    let base = if asked[0] == b'/' {
        None
    } else {
        let dir = match dirfd {
            None | Some(libc::AT_FDCWD) => target.directory("cwd"),
            Some(fd) if fd >= 0 => target.directory(&format!("fd/{fd}")),
            Some(_) => return Err(Stop::Errno(libc::EBADF)),
        };
        match dir {
            Ok(dir) => Some(dir),
            Err(Unreadable::Gone) => return Err(Stop::Gone),
            // A removed directory, or a descriptor that is not one.
            Err(Unreadable::Kernel) => return Err(Stop::Errno(libc::ENOENT)),
        }
    };
    Ok(Named { base, asked })
}

impl Guard {
    fn root(&self, target: &Target<'_>) -> Result<BorrowedFd<'_>, Stop> {
        if let Some(root) = self.root.get() {
            return Ok(root.as_fd());
        }
        let path = format!("/proc/{}/root", target.tid);
        let root = safe_open::openat2(
            libc::AT_FDCWD,
            path.as_bytes(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
            0,
        )?;
        target.valid()?;
        Ok(self.root.get_or_init(|| root).as_fd())
    }

    /// Whether the directory `dir` (a real path, resolved in the program's
    /// root) holds `name` now, a symlink not followed: for
    /// [`judge::judge_as_git_directory`]. A directory that is not there
    /// holds nothing. `opened` keeps the last directory opened, for the
    /// next question about it (a `HEAD`'s directory is asked up to four).
    fn holds(
        &self,
        opened: &mut Option<(PathBuf, Option<OwnedFd>)>,
        dir: &Path,
        name: &[u8],
    ) -> io::Result<bool> {
        if opened.as_ref().is_none_or(|(at, _)| at != dir) {
            let root = (self.root.get()).ok_or(io::Error::from_raw_os_error(libc::EPERM))?;
            let fd = match safe_open::openat2(
                root.as_raw_fd(),
                dir.as_os_str().as_bytes(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                0,
                libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
            ) {
                Ok(fd) => Some(fd),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => None,
                Err(e) => return Err(e),
            };
            *opened = Some((dir.to_path_buf(), fd));
        }
        match opened {
            Some((_, Some(fd))) => has_name(fd, name),
            _ => Ok(false),
        }
    }

    /// Resolves the parent of `path` (relative to `base`) in the program's
    /// root. `Ok(None)`: the path ends in `.` or `..`, no name to make.
    fn place(
        &self,
        root: BorrowedFd<'_>,
        base: Option<&[u8]>,
        path: &[u8],
    ) -> io::Result<Option<Place>> {
        let mut full = match base {
            Some(base) if path.first() != Some(&b'/') => {
                let mut full = base.to_vec();
                full.push(b'/');
                full.extend_from_slice(path);
                full
            }
            _ => path.to_vec(),
        };
        while full.len() > 1 && full.ends_with(b"/") {
            full.pop();
        }
        let cut = full.iter().rposition(|&b| b == b'/').unwrap_or(0);
        let name = full[cut + 1..].to_vec();
        if name.is_empty() || name == b"." || name == b".." {
            return Ok(None);
        }
        let parent_path: &[u8] = if cut == 0 { b"/" } else { &full[..cut] };
        let parent = safe_open::openat2(
            root.as_raw_fd(),
            parent_path,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
            libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
        )?;
        let real = safe_open::real_path(&parent)?;
        Ok(Some(Place { parent, real, name }))
    }
}

/// Whether `dir` holds `name` (a symlink not followed).
fn has_name(dir: &OwnedFd, name: &[u8]) -> io::Result<bool> {
    let name =
        std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    match sys::fs::lstat_at(dir, &name) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

impl Place {
    fn path(&self) -> PathBuf {
        self.real.join(OsStr::from_bytes(&self.name))
    }
}

fn check(env: &Env<'_>, place: &Place, act: Act) -> Result<(), Stop> {
    check_path(env, place.path(), act)
}

/// A name about to be made at `place` (a file's, directory's, node's,
/// symlink's; a rename's or link's destination): none holding a character
/// a terminal acts on ([`judge::judge_name`]). A byte scan.
fn check_name(place: &Place) -> Result<(), Stop> {
    check_naming(&place.name, judge::Naming::File, || place.path())
}

/// `bytes`, a name of the kind `naming` made for the file at `path`,
/// judged as [`check_name`] judges a file's name.
fn check_naming(
    bytes: &[u8],
    naming: judge::Naming,
    path: impl FnOnce() -> PathBuf,
) -> Result<(), Stop> {
    match judge::judge_name(bytes, naming) {
        Some(refusal) => Err(Stop::BadName(path(), refusal)),
        None => Ok(()),
    }
}

/// A name made at `dst` from `src` (`None`: made from nothing, a symlink or
/// device node): inside a protected tree, only from within it
/// ([`judge::judge_region`]).
fn check_region(env: &Env<'_>, src: Option<&Place>, dst: &Place) -> Result<(), Stop> {
    check_made(env, src, dst, judge::judge_region)
}

/// No symlink is made beneath a guarded `.git` (but `git init`'s probe,
/// [`judge::is_gits_probe`]), and nothing is moved or linked in from
/// outside every `.git` ([`judge::judge_into_git_dir`]): so no symlink
/// made in the sandbox beneath one leads out of it, and what a
/// rename or link from within one gives a name to needs no check of its
/// kind (which another thread could change after it).
fn check_into_git(env: &Env<'_>, src: Option<&Place>, dst: &Place) -> Result<(), Stop> {
    check_made(env, src, dst, judge::judge_into_git_dir)
}

/// A name made at `dst` from `src`, judged by `judge` against each list.
fn check_made(
    env: &Env<'_>,
    src: Option<&Place>,
    dst: &Place,
    judge: fn(&Protect, Option<&Path>, &Path) -> Option<Refusal>,
) -> Result<(), Stop> {
    let path = dst.path();
    let from = src.map(Place::path);
    match (env.lists()).find_map(|list| judge(list, from.as_deref(), &path)) {
        Some(refusal) => Err(Stop::Refused(path, refusal)),
        None => Ok(()),
    }
}

fn check_path(env: &Env<'_>, path: PathBuf, act: Act) -> Result<(), Stop> {
    let by_lists = |path: &Path, act| (env.lists()).find_map(|list| judge::judge(list, path, act));
    if let Some(refusal) = by_lists(&path, act) {
        return Err(Stop::Refused(path, refusal));
    }
    let mut opened = None;
    let holds = |dir: &Path, name: &[u8]| env.guard.holds(&mut opened, dir, name);
    let keeps_head = |head: &Path| env.lists().any(|list| list.excepted(head));
    match judge::judge_as_git_directory(&path, act, by_lists, keeps_head, holds)? {
        Some(refusal) => Err(Stop::Refused(path, refusal)),
        None => Ok(()),
    }
}

fn carry_out(env: &Env<'_>, target: &Target<'_>, call: &Call) -> Result<Answer, Stop> {
    let status = target.status()?;
    let Some(umask) = status.umask else {
        return Err(Stop::Errno(libc::EPERM));
    };
    if crate::broker::transparent::stacked::is_stacked(status.filters, env.guard.filters_at_exec) {
        // A stacked sluice's program: made by a connector in its sandbox,
        // judged by its `protect` list too.
        let registrant = env.shared.stacked.find(target.tid, &status);
        target.valid()?;
        if let Some(registrant) = &registrant {
            let env = Env {
                connector: Some(&registrant.connector),
                stacked: Some(&registrant.protect),
                ..*env
            };
            return carry_out_as(&env, target, call, umask);
        }
        // A program that sandboxed itself further otherwise (its own
        // Landlock or seccomp, a sandbox inside a stacked sluice): the
        // connector, in the outer sandbox, would make its calls without
        // its own restrictions, and `CONTINUE` would let it race the check.
        let first = env
            .guard
            .told
            .lock()
            .map(|mut told| told.insert(PathBuf::from("\0nested")))
            .unwrap_or(true);
        if first {
            eprint!(
                "sluice: refused a write from a process that sandboxed itself further \
                 (pid {}): the guard cannot make it in that sandbox (only in a sluice \
                 stacked directly inside this one). Run it outside sluice, or without \
                 [filesystem] protect.\r\n",
                target.tid
            );
        }
        return Err(Stop::Errno(libc::EPERM));
    }
    carry_out_as(env, target, call, umask)
}

/// Says once per session that the sandbox's connector (the process that
/// makes the calls the guard and transparent connects allow) is gone, and
/// why; what needed it is refused (`EPERM`) from then on. It goes when the
/// sandbox ends, while the program's last calls may still arrive: one line,
/// not one per call.
pub(crate) fn connector_lost(why: &dyn std::fmt::Display) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        // At the session's end a process the program left may still call
        // (git's background gc): a warning, not an error.
        tracing::warn!(
            "the sandbox's connector is gone ({why}): calls that need it fail with EPERM from now on"
        );
    } else {
        tracing::debug!("the sandbox's connector is gone ({why})");
    }
}
