//! Where the broker opens what it grants for reading only: a read-only copy
//! of the mount tree (`sandbox_child::readonly_root`), so the descriptor
//! served cannot change the file's mode, times or attributes either (the
//! kernel checks those against the mount, not the descriptor's access).
//!
//! The copy is taken when the broker starts and again whenever the mount
//! table has changed since (`/proc/self/mountinfo` reports a change to
//! `poll` as `POLLPRI`), so a file system mounted later is found too. A file
//! is opened in the copy by the path the broker judged, and, where the
//! broker holds the judged file already, checked to be that same file.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use sandbox_child::readonly_root::clone_read_only_root;

use crate::sys;

pub struct ReadOnlyView {
    root: Mutex<Tree>,
    /// Open before each copy is taken: a change after it shows in `poll`.
    mounts: File,
}

/// The copy, made at the first request that needs it: making it costs a
/// fork into a user namespace for an unprivileged user (about 1 ms at every
/// launch otherwise, for programs that never ask the broker for a file).
enum Tree {
    NotYet,
    Made(Arc<OwnedFd>),
    /// The first copy could not be made (said once): none is used.
    Unavailable,
}

impl ReadOnlyView {
    pub fn new() -> io::Result<ReadOnlyView> {
        // The thread's own: the same as the process's in sluice, whose
        // threads share one mount namespace; the unit test's has its own.
        let mounts = File::open("/proc/thread-self/mountinfo")?;
        Ok(ReadOnlyView {
            root: Mutex::new(Tree::NotYet),
            mounts,
        })
    }

    /// The root of the copy, a fresh one if the mount table changed; `None`
    /// where no copy could be made at all (then a descriptor served for
    /// reading can change the file's mode, times and attributes, as the
    /// warning said).
    pub fn root(&self) -> io::Result<Option<Arc<OwnedFd>>> {
        let mut root = self.root.lock().unwrap_or_else(|p| p.into_inner());
        // Looked at first: it re-arms the notice, so a change made while
        // the copy is taken shows next time.
        let changed = self.mounts_changed();
        match &*root {
            Tree::Made(copy) if !changed => return Ok(Some(copy.clone())),
            Tree::Unavailable => return Ok(None),
            Tree::Made(_) => *root = Tree::Made(Arc::new(clone_read_only_root()?)),
            Tree::NotYet => {
                *root = match clone_read_only_root() {
                    Ok(copy) => Tree::Made(Arc::new(copy)),
                    Err(e) => {
                        tracing::warn!(
                            "no read-only copy of the mount tree ({e}): a descriptor served \
                             for reading can change the file's mode, times and attributes"
                        );
                        Tree::Unavailable
                    }
                }
            }
        }
        Ok(match &*root {
            Tree::Made(copy) => Some(copy.clone()),
            _ => None,
        })
    }

    /// The descriptors the view holds: one once a copy is made.
    pub fn descriptors(&self) -> usize {
        let root = self.root.lock().unwrap_or_else(|p| p.into_inner());
        usize::from(matches!(*root, Tree::Made(_)))
    }

    /// Whether a mount was made or removed since the last look. `poll`
    /// itself re-arms the notice.
    fn mounts_changed(&self) -> bool {
        let mut fds = [libc::pollfd {
            fd: self.mounts.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        }];
        // No waiting; revents stays 0 where poll failed.
        sys::io::poll(&mut fds, 0).is_ok() && fds[0].revents & (libc::POLLPRI | libc::POLLERR) != 0
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::path::Path;

    use nix::errno::Errno;
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    use nix::sys::stat::{fchmod, Mode as Perms};

    use super::super::safe_open::{self, Mode};
    use super::*;

    fn mount_tmpfs(dir: &Path) {
        mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount");
    }

    /// The long way opens the judged file again by its real path in the
    /// copy: if another file has taken that name since, it is refused.
    #[test]
    fn a_file_swapped_after_it_was_judged_is_not_opened_in_the_copy() {
        let dir = std::env::temp_dir().join(format!("sluice-unit-swap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (judged, other) = (dir.join("judged"), dir.join("other"));
        std::fs::write(&judged, "judged").unwrap();
        std::fs::write(&other, "other").unwrap();
        let view = ReadOnlyView::new().unwrap();
        let root = view.root().unwrap().expect("a read-only copy");
        let read = Mode {
            read: true,
            ..Mode::default()
        };
        let found = |path: &Path| match safe_open::lookup(path).unwrap() {
            safe_open::Lookup::Found(found) => found,
            safe_open::Lookup::Missing(_) => panic!("{} is missing", path.display()),
        };
        // Control: unswapped, the same file, from a read-only mount.
        let fd = safe_open::reopen(&found(&judged), read, Some(root.as_fd())).unwrap();
        assert_eq!(
            fchmod(&fd, Perms::from_bits_truncate(0o600)),
            Err(Errno::EROFS)
        );
        let resolved = found(&judged);
        std::fs::rename(&other, &judged).unwrap();
        let e = safe_open::reopen(&resolved, read, Some(root.as_fd())).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::ESTALE), "{e}");
    }

    /// In a mount namespace of this thread's own (made private, so nothing
    /// reaches the host's): a tmpfs mounted after the view was made is
    /// not in the old copy, and is in the copy the view gives after.
    #[test]
    fn a_file_system_mounted_later_is_in_the_next_copy() {
        let dir = std::env::temp_dir().join(format!("sluice-unit-view-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let in_thread = dir.clone();
        std::thread::spawn(move || {
            let dir = in_thread;
            // This thread alone changes namespace.
            unshare(CloneFlags::CLONE_NEWNS).expect("unshare");
            let rec_private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
            mount(None::<&str>, "/", None::<&str>, rec_private, None::<&str>).expect("mount");
            let view = ReadOnlyView::new().unwrap();
            let before = view.root().unwrap().expect("a read-only copy");
            mount_tmpfs(&dir);
            let file = dir.join("later.txt");
            std::fs::write(&file, "later").unwrap();
            let read = Mode {
                read: true,
                ..Mode::default()
            };
            let old = safe_open::open_plain(&file, read, Some(before.as_fd()));
            assert_eq!(old.unwrap_err().raw_os_error(), Some(libc::ENOENT));
            let after = view.root().unwrap().expect("a read-only copy");
            let fd = safe_open::open_plain(&file, read, Some(after.as_fd()))
                .unwrap()
                .unwrap();
            assert_eq!(
                fchmod(&fd, Perms::from_bits_truncate(0o777)),
                Err(Errno::EROFS)
            );
        })
        .join()
        .unwrap();
        // The tmpfs went with the thread's namespace.
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
