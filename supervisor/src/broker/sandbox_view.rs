//! Where the broker opens the directories it serves: in the sandbox's own
//! view, so a directory descriptor gives exactly what the sandbox itself
//! reaches at that path, nothing more.
//!
//! A directory descriptor is a way in to everything beneath it (`openat`,
//! `execveat`, an `O_PATH` descriptor reopened through `/proc/self/fd`) and,
//! after `fchdir`, above it (`..`, then a relative `connect`). Opened in the
//! supervisor's mount tree it would carry none of the sandbox's protective
//! mounts (deny placeholders, read-only binds) and `..` would climb to the
//! host's `/`. So the child, once its view is built (the policy-built root
//! entered, or under `--transparent` the host's tree with the protective
//! mounts), hands the supervisor an `O_PATH` descriptor of its root
//! (`sandbox_child`'s `Step::RootHandOver`), and every directory the broker
//! serves is opened beneath that root by the path the broker judged
//! (`RESOLVE_IN_ROOT`, no symlinks, no magic links). The descriptor then
//! lives in the sandbox's mount namespace: what lies beneath it is what the
//! sandbox sees there, still under Landlock for every open the program makes
//! relative to it, and `..` stops at the program's root, the same root.
//!
//! It must be the very directory judged (device and inode): a directory the
//! sandbox does not see at that path (outside the policy-built root, hidden
//! by a deny placeholder, a skeleton directory of the root, a file system
//! mounted on the host after the launch) is refused, with a reason that says
//! how to get its files. Files are not served from here: a file descriptor
//! reaches nothing but its file.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use proto::socket::{recv_frame, Blocking};

use super::decide::NotServed;
use super::safe_open::{self, Mode, Resolved};

/// The root of the sandbox's view, as the child handed it over.
pub struct SandboxView {
    root: OwnedFd,
}

impl SandboxView {
    /// A view rooted at `root` (a directory descriptor, `O_PATH` will do).
    pub fn new(root: OwnedFd) -> SandboxView {
        SandboxView { root }
    }

    /// Receives the child's root from `sock` (our end of the pair made for
    /// it), which the child sent before it exec'd: nothing is waited for.
    /// With it, where the child mounted them, the layers of Python's
    /// bytecode cache (`crate::pycache`), a directory too.
    pub fn receive(sock: &OwnedFd) -> io::Result<(SandboxView, Option<OwnedFd>)> {
        let mut buf = [0u8; 8];
        let got = recv_frame(sock.as_fd(), &mut buf, Blocking::No)?;
        let mut fds = got.fds.into_iter();
        let (Some(fd), layers, None, false, b"R") = (
            fds.next(),
            fds.next(),
            fds.next(),
            got.ctrunc,
            &buf[..got.len.min(1)],
        ) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the child did not send its root",
            ));
        };
        for fd in std::iter::once(&fd).chain(&layers) {
            if safe_open::kind_of(fd)? != safe_open::Kind::Directory {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the child sent something other than a directory as its root",
                ));
            }
        }
        Ok((SandboxView::new(fd), layers))
    }

    /// Opens the directory `found` (judged and allowed) for reading, in
    /// the sandbox's view, by its real path; it must be the same directory.
    pub fn open_directory(&self, found: &Resolved, mode: Mode) -> Result<OwnedFd, NotServed> {
        let flags = mode.flags() | libc::O_DIRECTORY;
        let resolve =
            libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
        let path = found.real.as_os_str().as_bytes();
        let fd = match safe_open::openat2(self.root.as_raw_fd(), path, flags, 0, resolve) {
            Ok(fd) => fd,
            Err(e) => match e.raw_os_error() {
                // Absent there, or a symlink or another kind of file at a
                // component: not the directory judged.
                Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP) => {
                    return Err(NotServed::NotInView(not_in_view(&found.real)))
                }
                _ => return Err(NotServed::Io(e)),
            },
        };
        let same = safe_open::identity(&fd).and_then(|a| Ok(a == safe_open::identity(&found.fd)?));
        match same {
            Ok(true) => Ok(fd),
            Ok(false) => Err(NotServed::NotInView(not_in_view(&found.real))),
            Err(e) => Err(NotServed::Io(e)),
        }
    }
}

/// The reason given for a directory the sandbox does not see.
pub fn not_in_view(path: &Path) -> String {
    let path = path.display();
    format!(
        "'{path}' is a directory the sandbox does not see as it is (outside the policy's \
         trees, or hidden in them): a directory is served only as the sandbox itself sees it, \
         since its descriptor reaches what lies beneath it; ask for each file beneath it \
         instead, or give the sandbox the directory (--allow-read {path})"
    )
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sluice-view-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.canonicalize().unwrap()
    }

    fn found(path: &Path) -> Resolved {
        match safe_open::lookup(path).unwrap() {
            safe_open::Lookup::Found(found) => found,
            safe_open::Lookup::Missing(_) => panic!("{} is missing", path.display()),
        }
    }

    fn read_dir() -> Mode {
        Mode {
            read: true,
            flags: proto::OpenFlags {
                directory: true,
                ..proto::OpenFlags::default()
            },
            ..Mode::default()
        }
    }

    fn view_of(dir: &Path) -> SandboxView {
        let fd = safe_open::openat2(
            libc::AT_FDCWD,
            dir.as_os_str().as_bytes(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
            0,
        )
        .unwrap();
        SandboxView::new(fd)
    }

    /// The child's root is taken only as one directory with its frame:
    /// nothing sent, or a file, is an error (the launch then stops).
    #[test]
    fn the_root_is_received_only_as_a_directory() {
        use proto::socket::{send_frame, seqpacket_pair};
        let send = |fd: Option<OwnedFd>| {
            let (ours, theirs) = seqpacket_pair().unwrap();
            if let Some(fd) = fd {
                send_frame(theirs.as_fd(), b"R", Some(fd.as_fd()), Blocking::Yes).unwrap();
            }
            drop(theirs);
            SandboxView::receive(&ours)
        };
        let open = |path: &[u8]| {
            safe_open::openat2(libc::AT_FDCWD, path, libc::O_PATH | libc::O_CLOEXEC, 0, 0).unwrap()
        };
        assert!(send(Some(open(b"/"))).is_ok_and(|(_, layers)| layers.is_none()));
        assert!(send(Some(open(b"/proc/self/exe"))).is_err());
        assert!(send(None).is_err());
    }

    /// With the root, the bytecode cache's layers are taken only as a
    /// directory, one at most.
    #[test]
    fn the_layers_are_received_with_the_root_only_as_one_directory() {
        use proto::socket::{send_record, seqpacket_pair};
        let send = |paths: &[&[u8]]| {
            let (ours, theirs) = seqpacket_pair().unwrap();
            let fds: Vec<OwnedFd> = paths
                .iter()
                .map(|p| {
                    safe_open::openat2(libc::AT_FDCWD, p, libc::O_PATH | libc::O_CLOEXEC, 0, 0)
                        .unwrap()
                })
                .collect();
            let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
            send_record(theirs.as_fd(), b"R", &borrowed, Blocking::Yes).unwrap();
            drop(theirs);
            SandboxView::receive(&ours)
        };
        assert!(send(&[b"/", b"/tmp"]).is_ok_and(|(_, layers)| layers.is_some()));
        assert!(send(&[b"/", b"/proc/self/exe"]).is_err());
        assert!(send(&[b"/", b"/tmp", b"/tmp"]).is_err());
    }

    /// A view rooted at `/` serves the judged directory itself; a view
    /// whose root lacks it, or holds another directory at that path,
    /// refuses it.
    #[test]
    fn only_the_very_directory_judged_is_served_from_the_view() {
        let dir = temp("same");
        let host = SandboxView::new(
            safe_open::openat2(
                libc::AT_FDCWD,
                b"/",
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                0,
                0,
            )
            .unwrap(),
        );
        // Control: the host's own root sees the directory as it is.
        let fd = host.open_directory(&found(&dir), read_dir()).unwrap();
        assert_eq!(
            safe_open::identity(&fd).unwrap(),
            safe_open::identity(&found(&dir).fd).unwrap()
        );
        // A root that lacks the path: not in view.
        let empty = temp("empty");
        let view = view_of(&empty);
        let e = view.open_directory(&found(&dir), read_dir()).unwrap_err();
        assert!(matches!(e, NotServed::NotInView(_)), "{e:?}");
        // A root with another directory at the same path (as the
        // policy-built root's skeleton directories are): not served.
        fs::create_dir_all(empty.join(dir.strip_prefix("/").unwrap())).unwrap();
        let e = view.open_directory(&found(&dir), read_dir()).unwrap_err();
        assert!(matches!(e, NotServed::NotInView(ref why) if why.contains("--allow-read")));
        fs::remove_dir_all(&dir).unwrap();
        fs::remove_dir_all(&empty).unwrap();
    }
}
