//! What the reader remembers of the program's threads between their calls:
//! each one's working directory, so a relative `open` answered with
//! `CONTINUE` costs no `readlink` of `/proc/<tid>/cwd`.
//!
//! A remembered directory is only ever used to choose who answers a call
//! (the kernel, with `CONTINUE`, or the broker): a brokered call reads the
//! directory afresh and checks it came from the calling thread
//! (`NOTIF_ID_VALID`) before anything is opened, and a call left to the
//! kernel is decided by Landlock on the real path. So a stale entry can
//! cost a call the broker's service, never let one through.
//!
//! Still, entries must not go stale in normal use. What a thread id's
//! directory is changes only through calls the filter notifies as well:
//! `chdir` and `fchdir` (for every thread sharing the directory),
//! `setns` and `unshare` (a new mount namespace), and the `clone` family
//! (a new thread may take a dead one's id). Each of them empties the
//! memory. But such a call takes effect only after it is answered, while
//! the reader goes on: until it has finished, a directory read for another
//! thread may be the old one. So the thread that made it is *unsettled*,
//! and nothing is remembered until every unsettled thread is known to have
//! moved on: it has been notified again (a thread makes one call at a
//! time), it is gone, or `/proc/<tid>/syscall` shows it in another call.
//!
//! Not covered: a non-leader thread with a directory of its own (after
//! `unshare(CLONE_FS)` or `clone` without `CLONE_FS`) that calls `execve`
//! takes over the leader's id, and with it the leader's entry; and a
//! directory renamed by someone else keeps its old name here. Both only
//! change who answers, as above.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::caller::{Target, Unreadable};
use super::view::SandboxView;
use crate::broker::safe_open;

/// Past this many entries the memory is emptied (threads that exit leave
/// theirs behind until the next `clone`).
const MAX_ENTRIES: usize = 4096;

/// Fills refused in a row, while a thread stays unsettled, before
/// `/proc/<tid>/syscall` is read again.
const RECHECK_EVERY: u32 = 16;

/// A working directory as read from `/proc/<tid>/cwd`.
pub type Dir = Rc<[u8]>;

/// Where a directory came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Remembered,
    Read,
}

#[derive(Default)]
pub struct Threads {
    cwd: HashMap<libc::pid_t, Dir>,
    /// Threads whose directory-changing call was let run and may not have
    /// finished: `(tid, syscall number)`.
    unsettled: Vec<(libc::pid_t, i64)>,
    refused: u32,
}

impl Threads {
    /// Called for every notification, first: `tid` is in a new call, so
    /// whatever it called before has finished.
    pub fn notified(&mut self, tid: libc::pid_t) {
        if !self.unsettled.is_empty() {
            self.unsettled.retain(|&(t, _)| t != tid);
        }
    }

    /// `tid` is about to make `nr`, a call that may change what a thread
    /// id's directory is (see the module documentation).
    pub fn changing(&mut self, tid: libc::pid_t, nr: i64) {
        self.cwd.clear();
        if !self.unsettled.iter().any(|&(t, _)| t == tid) {
            self.unsettled.push((tid, nr));
        }
        self.refused = 0;
    }

    /// The thread's working directory: remembered, or read (and then
    /// remembered if nothing is unsettled). Not validated.
    pub fn cwd(&mut self, target: &Target<'_>) -> Result<(Dir, Source), Unreadable> {
        if let Some(dir) = self.cwd.get(&target.tid) {
            return Ok((dir.clone(), Source::Remembered));
        }
        // Settled first, then read: a directory read after every change
        // let run has finished is the thread's until the next change.
        let remember = self.settled();
        let dir: Dir = target.directory("cwd")?.into();
        if remember {
            if self.cwd.len() >= MAX_ENTRIES {
                self.cwd.clear();
            }
            self.cwd.insert(target.tid, dir.clone());
        }
        Ok((dir, Source::Read))
    }

    /// Forgets `tid`'s directory (it was found out of date).
    pub fn forget(&mut self, tid: libc::pid_t) {
        self.cwd.remove(&tid);
    }

    /// Whether every change let run has finished, checking the unsettled
    /// threads' `/proc/<tid>/syscall` now and then.
    fn settled(&mut self) -> bool {
        if self.unsettled.is_empty() {
            return true;
        }
        if self.refused > 0 {
            self.refused -= 1;
            return false;
        }
        self.unsettled.retain(|&(tid, nr)| !moved_on(tid, nr));
        if self.unsettled.is_empty() {
            return true;
        }
        self.refused = RECHECK_EVERY;
        false
    }

    #[cfg(test)]
    fn remembered(&self, tid: libc::pid_t) -> Option<&[u8]> {
        self.cwd.get(&tid).map(|d| &d[..])
    }
}

/// Whether `tid` is certainly past its call `nr`: gone, or stopped in
/// another call or outside any (`/proc/<tid>/syscall` reads `running` for a
/// thread on a CPU, which may still be in it).
fn moved_on(tid: libc::pid_t, nr: i64) -> bool {
    match std::fs::read(format!("/proc/{tid}/syscall")) {
        Ok(text) => past(&text, nr),
        Err(e) => matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)),
    }
}

/// [`moved_on`] on the text of `/proc/<tid>/syscall`: its first word is the
/// number of the call the thread is blocked in, `-1` when it is blocked
/// outside one, or `running`.
fn past(text: &[u8], nr: i64) -> bool {
    let first = text
        .split(|b| b.is_ascii_whitespace())
        .next()
        .and_then(|w| std::str::from_utf8(w).ok())
        .and_then(|w| w.parse::<i64>().ok());
    matches!(first, Some(n) if n != nr)
}

/// `asked` (not empty), named from `dirfd` (`None` or `AT_FDCWD`: the
/// thread's working directory) made absolute, if the broker must look at
/// it: `None` when the sandbox itself allows the access (`write` or read)
/// there, or it is in the program's own `/proc`, which only the kernel can
/// show it. What the broker acts on is never a remembered directory.
pub(super) fn outside_the_sandbox(
    view: &SandboxView,
    threads: &mut Threads,
    target: &Target<'_>,
    dirfd: Option<i32>,
    asked: &[u8],
    write: bool,
) -> Result<Option<PathBuf>, Unreadable> {
    loop {
        let (base, source) = if asked.first() == Some(&b'/') {
            (None, Source::Read)
        } else {
            match dirfd {
                None | Some(libc::AT_FDCWD) => {
                    let (dir, source) = threads.cwd(target)?;
                    (Some(dir), source)
                }
                Some(fd) if fd >= 0 => {
                    let dir = target.directory(&format!("fd/{fd}"))?;
                    (Some(dir.into()), Source::Read)
                }
                Some(_) => return Err(Unreadable::Kernel),
            }
        };
        let lexical = match &base {
            None => safe_open::lexical(&[asked]),
            Some(base) => safe_open::lexical(&[base, asked]),
        };
        // The program's own /proc is the kernel's to show it: looked up
        // here, /proc/self would be the supervisor.
        let proc = lexical.starts_with(b"/proc/") || lexical == b"/proc";
        if proc || view.allows_bytes(&view.unalias(&lexical), write) {
            return Ok(None);
        }
        if source == Source::Remembered {
            // The broker acts on what it reads now, never on what it
            // remembers.
            threads.forget(target.tid);
            continue;
        }
        return Ok(Some(match base {
            None => PathBuf::from(OsStr::from_bytes(asked)),
            Some(base) => Path::new(OsStr::from_bytes(&base)).join(OsStr::from_bytes(asked)),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_is_past_a_call_only_when_seen_in_another() {
        let chdir = libc::SYS_chdir;
        assert!(past(b"-1 0x7ffc 0x7f00\n", chdir));
        assert!(past(b"61 0x1 0x2 0x3 0x4 0x5 0x6 0x7ffc 0x7f00\n", chdir));
        assert!(!past(
            format!("{chdir} 0x1 0x2 0x3 0x4 0x5 0x6 0x7ffc 0x7f00\n").as_bytes(),
            chdir
        ));
        assert!(!past(b"running\n", chdir));
        assert!(!past(b"", chdir));
    }

    /// A thread that runs until told to stop: `/proc` reads it `running`.
    /// A thread blocked in `read` on a pipe (seen there in
    /// `/proc/<tid>/syscall`, so never `running`: a thread on a CPU, or one
    /// preempted between calls, would make the answer depend on the
    /// scheduler), and what lets it finish and joins it.
    fn reader() -> (libc::pid_t, impl FnOnce()) {
        use std::io::{Read, Write};
        use std::os::fd::FromRawFd;
        let mut fds = [0; 2];
        // SAFETY: pipe writes two descriptors into `fds`.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both are new descriptors, owned by nothing else.
        let (mut r, mut w) = unsafe {
            (
                std::fs::File::from_raw_fd(fds[0]),
                std::fs::File::from_raw_fd(fds[1]),
            )
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            // SAFETY: gettid has no side effects.
            tx.send(unsafe { libc::gettid() }).unwrap();
            let mut b = [0u8; 1];
            r.read_exact(&mut b).unwrap();
        });
        let tid = rx.recv().unwrap();
        let blocked_in_read = || {
            std::fs::read_to_string(format!("/proc/{tid}/syscall"))
                .unwrap()
                .starts_with(&format!("{} ", libc::SYS_read))
        };
        while !blocked_in_read() {
            std::thread::yield_now();
        }
        (tid, move || {
            w.write_all(b"x").unwrap();
            t.join().unwrap();
        })
    }

    #[test]
    fn threads_are_seen_moving_on() {
        // Running (on a CPU): maybe still in the call.
        assert!(!past(b"running\n", libc::SYS_chdir));
        // Blocked in `read`: past `chdir`, not past `read`.
        let (tid, finish) = reader();
        assert!(moved_on(tid, libc::SYS_chdir));
        assert!(!moved_on(tid, libc::SYS_read));
        finish();
        // Gone: past everything.
        assert!(moved_on(tid, libc::SYS_read));
    }

    #[test]
    fn a_change_forgets_everything_and_holds_memory_until_settled() {
        let mut t = Threads::default();
        t.cwd.insert(7, Rc::from(&b"/a"[..]));
        t.changing(9, libc::SYS_chdir);
        assert_eq!(t.remembered(7), None);
        // The changing thread is still in its call (here: blocked in `read`).
        let (tid, finish) = reader();
        t.unsettled = vec![(tid, libc::SYS_read)];
        assert!(!t.settled());
        // Refused fills skip the check for a while.
        assert_eq!(t.refused, RECHECK_EVERY);
        assert!(!t.settled());
        // Notified again: settled at once.
        t.notified(tid);
        assert!(t.settled());
        finish();
        // A thread that is gone is settled when next checked.
        t.changing(tid, libc::SYS_chdir);
        assert!(t.settled());
    }
}
