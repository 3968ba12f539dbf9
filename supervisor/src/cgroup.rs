//! A cgroup per session, for the process limit and for killing the whole tree.
//!
//! The kernel never applies RLIMIT_NPROC to real uid 0, so for root a session
//! cgroup with `pids.max` is the only thing that holds a fork bomb. It also
//! makes "kill everything the program left behind" exact. Both the cgroup v1
//! `pids` hierarchy and cgroup v2 (when the pids controller is delegated to
//! our cgroup's children) are supported; where neither is writable, `create`
//! returns `None` and the launcher reports the process limit as rlimit-only.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

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

    fn members(&self) -> Vec<libc::pid_t> {
        fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
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
                // SAFETY: kill with a pid read from our own cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        tracing::warn!(cgroup = %self.dir.display(), "processes survived repeated SIGKILL");
    }
}

impl Drop for SessionCgroup {
    fn drop(&mut self) {
        // Members leave when they exit; retry briefly for the last ones.
        for _ in 0..100 {
            if fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        tracing::warn!(cgroup = %self.dir.display(), "could not remove the session cgroup");
    }
}
