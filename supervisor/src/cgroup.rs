//! What holds the session's process limit (`[limits] processes`), and the
//! session cgroup where that is a cgroup ([`process_limit`]).
//!
//! The kernel never applies RLIMIT_NPROC to real uid 0, so for root
//! something else must hold a fork bomb. The first choice is the `pid_max`
//! of the sandbox's own PID namespace (Linux 6.14 and later): every process
//! of the namespace has a pid below it, so at most `limit` live at once, and
//! it costs one write in the child. The fallback is a session cgroup with
//! `pids.max`, which costs the child's write to `cgroup.procs` a full RCU
//! grace period (11 to 15 ms) whenever no cgroup migration happened in the
//! last few tens of milliseconds. Both the cgroup v1 `pids` hierarchy and
//! cgroup v2 (when the pids controller is delegated to our cgroup's
//! children) are supported; where neither is writable, `create` returns
//! `None` and the launcher reports the process limit as rlimit-only.
//! Killing everything the program left behind needs no cgroup where the
//! program runs under an init of its own: the namespace dies with it.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// The smallest `pid_max` the kernel accepts (`RESERVED_PIDS + 1`).
const PID_MAX_MIN: u64 = 301;
/// The largest (`PID_MAX_LIMIT` on 64-bit).
const PID_MAX_LIMIT: u64 = 4 * 1024 * 1024;

/// What holds a process limit of `limit`: a session cgroup (with its
/// `cgroup.procs` for the child to join), or a `pid_max` for the child to
/// write in its PID namespace, or neither (RLIMIT_NPROC alone).
///
/// - Not root: RLIMIT_NPROC, which the child sets inside its own user
///   namespace, where the kernel counts only the sandbox's processes
///   (per-namespace `ucounts`); no cgroup.
/// - Root, launching into a PID namespace of its own (not stacked), on a
///   kernel with a `pid_max` per namespace, with a limit the kernel accepts
///   as one: `pid_max` = `limit` + 1. The child fails closed if it cannot
///   write it (a required `limits` layer stops the launch).
/// - Otherwise root's session cgroup.
pub fn process_limit(
    session: &str,
    limit: Option<u64>,
    stacked: bool,
) -> (Option<(SessionCgroup, OwnedFd)>, Option<u64>) {
    let Some(limit) = limit else {
        return (None, None);
    };
    if !nix::unistd::getuid().is_root() {
        return (None, None);
    }
    let pid_max = limit.saturating_add(1);
    if !stacked && (PID_MAX_MIN..=PID_MAX_LIMIT).contains(&pid_max) && pid_max_per_namespace() {
        return (None, Some(pid_max));
    }
    (SessionCgroup::create(session, limit), None)
}

/// Whether the kernel keeps a `pid_max` per PID namespace (Linux 6.14).
fn pid_max_per_namespace() -> bool {
    crate::sys::host::kernel_release().is_some_and(|release| kernel_at_least(&release, (6, 14)))
}

/// Whether a kernel release string ("6.18.44-foo") is at least `min`.
fn kernel_at_least(release: &str, min: (u32, u32)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= min,
        _ => false,
    }
}

pub struct SessionCgroup {
    dir: PathBuf,
    /// cgroup v2 offers `cgroup.kill`; v1 is killed process by process.
    v2: bool,
}

/// Where our pids controller is: (mount point, our path in it, is v2).
fn our_pids_cgroup() -> Option<(PathBuf, String, bool)> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let cgroups = fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut v2_mount = None;
    for line in mountinfo.lines() {
        // ... mount-point ... - fstype source super-options
        let (pre, post) = line.split_once(" - ")?;
        let mount_point = pre.split(' ').nth(4)?;
        let mut post = post.split(' ');
        let fstype = post.next()?;
        let opts = post.nth(1).unwrap_or("");
        if fstype == "cgroup" && opts.split(',').any(|o| o == "pids") {
            let path = cgroups.lines().find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
                ctrl.split(',')
                    .any(|c| c == "pids")
                    .then(|| path.to_string())
            })?;
            return Some((PathBuf::from(mount_point), path, false));
        }
        if fstype == "cgroup2" && v2_mount.is_none() {
            v2_mount = Some(PathBuf::from(mount_point));
        }
    }
    let mount = v2_mount?;
    let path = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some((mount, path.to_string(), true))
}

/// `sluice-<session>` beneath our cgroup `path` in the hierarchy at `mount`.
fn session_cgroup_dir(mount: &Path, path: &str, session: &str) -> PathBuf {
    mount
        .join(path.trim_start_matches('/'))
        .join(format!("sluice-{session}"))
}

impl SessionCgroup {
    /// Creates the session's cgroup with `pids_max`, and opens its
    /// `cgroup.procs` for the child to join itself to (it writes "0").
    pub fn create(session: &str, pids_max: u64) -> Option<(SessionCgroup, OwnedFd)> {
        let (mount, path, v2) = our_pids_cgroup()?;
        let dir = session_cgroup_dir(&mount, &path, session);
        fs::create_dir(&dir).ok()?;
        let cg = SessionCgroup { dir, v2 };
        // Without a pids.max file the controller is not enabled here.
        fs::write(cg.dir.join("pids.max"), pids_max.to_string()).ok()?;
        let procs = fs::OpenOptions::new()
            .write(true)
            .open(cg.dir.join("cgroup.procs"))
            .ok()?;
        Some((cg, procs.into()))
    }

    /// The cgroup of `session` if it exists (left behind by a supervisor
    /// that died), to kill what is left in it and remove it on drop.
    pub fn existing(session: &str) -> Option<SessionCgroup> {
        let (mount, path, v2) = our_pids_cgroup()?;
        let dir = session_cgroup_dir(&mount, &path, session);
        dir.is_dir().then_some(SessionCgroup { dir, v2 })
    }

    /// The processes in the cgroup and in the cgroups beneath it (a
    /// session stacked inside makes its own there): on v1 `cgroup.procs`
    /// lists only a cgroup's own members.
    fn members(&self) -> Vec<libc::pid_t> {
        std::iter::once(self.dir.clone())
            .chain(descendants(&self.dir))
            .flat_map(|dir| {
                fs::read_to_string(dir.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Kills every process in the cgroup. Processes forked meanwhile join the
    /// same cgroup (bounded by pids.max), so repeating converges.
    pub fn kill_all(&self) {
        if self.v2 && fs::write(self.dir.join("cgroup.kill"), "1").is_ok() {
            return;
        }
        for _ in 0..1000 {
            let members = self.members();
            if members.is_empty() {
                return;
            }
            for pid in members {
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        tracing::warn!(cgroup = %self.dir.display(), "processes survived repeated SIGKILL");
    }
}

impl Drop for SessionCgroup {
    fn drop(&mut self) {
        // The cgroups beneath first (a directory with any is busy); members
        // leave when they exit, so retry briefly for the last ones. Gone
        // already (a second sweep of the same dead session) is done.
        let mut last = None;
        for _ in 0..100 {
            for dir in descendants(&self.dir).iter().chain([&self.dir]) {
                match fs::remove_dir(dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => last = Some(e),
                    _ => {}
                }
            }
            if !self.dir.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        tracing::warn!(
            cgroup = %self.dir.display(),
            "could not remove the session cgroup: {}",
            last.map_or_else(|| "it is still there".to_owned(), |e| e.to_string())
        );
    }
}

/// The cgroups beneath `dir`, deepest first (the order they can be
/// removed in); a cgroup directory's subdirectories are its child cgroups.
fn descendants(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let child = entry.path();
            found.extend(descendants(&child));
            found.push(child);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::{kernel_at_least, SessionCgroup};

    /// A session stacked inside another makes its cgroup beneath the outer
    /// one's; the outer's sweep (its supervisor killed) must end the inner
    /// session's processes too and remove both cgroups. Needs root and a
    /// writable pids hierarchy (CI's: cgroup v1).
    #[test]
    fn a_session_cgroup_is_emptied_and_removed_with_the_cgroups_beneath_it() {
        let session = format!("unit-{}", std::process::id());
        let (outer, _procs) = SessionCgroup::create(&session, 64).expect("a session cgroup (root)");
        let inner = outer.dir.join("sluice-inner");
        std::fs::create_dir(&inner).unwrap();
        let mut sleeper = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        std::fs::write(inner.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
        // Control: the outer cgroup's own list does not hold it (v1).
        assert!(!std::fs::read_to_string(outer.dir.join("cgroup.procs"))
            .unwrap()
            .lines()
            .any(|l| l == sleeper.id().to_string()));
        assert_eq!(outer.members(), [sleeper.id() as libc::pid_t]);
        outer.kill_all();
        let status = sleeper.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
        let dir = outer.dir.clone();
        drop(outer);
        assert!(!dir.exists(), "{} is left", dir.display());
    }

    #[test]
    fn kernel_releases_compare_by_major_then_minor() {
        assert!(kernel_at_least("6.14.0", (6, 14)));
        assert!(kernel_at_least("6.18.44-fc-v1294", (6, 14)));
        assert!(kernel_at_least("7.0-rc1", (6, 14)));
        assert!(!kernel_at_least("6.13.12-arch1", (6, 14)));
        assert!(!kernel_at_least("5.19.0", (6, 14)));
        assert!(!kernel_at_least("garbage", (6, 14)));
    }
}
