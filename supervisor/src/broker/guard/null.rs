//! The null device opened for writing (`> /dev/null`, by far the guard's
//! most frequent call), served by the supervisor itself instead of a round
//! trip to the connector.
//!
//! The connector exists so that a file the guard lets through is opened
//! in the program's own sandbox (its Landlock domain), never on the
//! program's say-so after a check. For the null device the domain adds
//! nothing: whatever name it has and wherever it is mounted, it is the
//! null driver, which discards what is written and reads as empty, and
//! its inode is the one a read-only open (which the program may make
//! itself) reaches already. So once the guard has resolved and judged the
//! name as for any open, the file at that name is opened here by its
//! resolved parent, without following a symlink (`O_PATH`), and only if it
//! is the character device 1:3 and the policy lets the sandbox write that
//! path ([`SandboxView`]: the same trees its Landlock rules are made from)
//! is it reopened with the access asked and placed in the program. Anything
//! else (another device, a FIFO, a file, a name the sandbox may not write,
//! an exclusive create, a call of a stacked sandbox's program) takes the
//! connector, as before.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::{Env, Place};
use crate::broker::transparent::call::OpenCall;
use crate::sys;

/// The null device's number (`Documentation/admin-guide/devices.txt`).
const NULL_MAJOR: u32 = 1;
const NULL_MINOR: u32 = 3;

/// Flags with which an existing null device cannot be opened as asked, or
/// whose answer is the connector's to give: an exclusive create (`EEXIST`),
/// a directory (`ENOTDIR`), `O_PATH` and `O_TMPFILE` (not an open of the
/// device at all).
const NOT_HERE: i32 = libc::O_EXCL | libc::O_DIRECTORY | libc::O_PATH | libc::O_TMPFILE;

/// The status flags kept from the call; `O_CREAT` and `O_TRUNC` do nothing
/// to an existing device, and the rest of the creation flags do not apply.
const KEPT: i32 = libc::O_ACCMODE | libc::O_APPEND | libc::O_NONBLOCK;

/// The null device at `place`, opened as `open` asks, if the call is one
/// the fast path serves (see the module documentation); `None` otherwise
/// (also on any error: the connector then gives the kernel's answer).
pub(super) fn serve(env: &Env<'_>, place: &Place, open: &OpenCall) -> Option<OwnedFd> {
    if env.stacked.is_some() || open.flags & NOT_HERE != 0 || !open.write() {
        return None;
    }
    if !env.guard.view.allows(&place.path(), true) {
        return None;
    }
    let found = open_path(place).ok()?;
    if !is_null_device(&sys::fs::fstat(&found).ok()?) {
        return None;
    }
    // The magic link is ours and names the very inode just checked: a plain
    // open of it reopens that file, whatever is at the name by now.
    let flags = (open.flags & KEPT) | libc::O_CLOEXEC | libc::O_NOCTTY;
    sys::fs::reopen(&found, flags).ok()
}

/// `O_PATH` of the name in its resolved parent, following no symlink (the
/// name is one component; a symlink there is the connector's to follow).
fn open_path(place: &Place) -> io::Result<OwnedFd> {
    sys::fs::openat2(
        place.parent.as_raw_fd(),
        &place.name,
        libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        0,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    )
}

fn is_null_device(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR
        && st.st_rdev == libc::makedev(NULL_MAJOR, NULL_MINOR)
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use super::*;

    #[test]
    fn only_the_null_device_is_the_null_device() {
        let stat = |p: &str| {
            let c = CString::new(p).unwrap();
            sys::fs::fstat(sys::fs::open(&c, libc::O_PATH | libc::O_CLOEXEC).unwrap()).unwrap()
        };
        assert!(is_null_device(&stat("/dev/null")));
        // Control: other devices of the same driver, a directory, a file.
        for other in ["/dev/zero", "/dev/full", "/dev", "/proc/self/status"] {
            assert!(!is_null_device(&stat(other)), "{other}");
        }
    }
}
