//! Who is at the other end of a broker connection, on macOS: the kernel's
//! audit token for the socket's peer (`LOCAL_PEERTOKEN`), with its pid and
//! effective uid, and the pid version that tells a reused pid apart
//! (`proc_pidpath_audittoken` fails for a process that is gone, as a
//! pidfd does on Linux).
//!
//! That a socket pair's peer is the process that made the pair (as
//! `SO_PEERCRED` says on Linux) is what XNU's `socketpair` records; it has
//! not been checked on a Mac here.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::PathBuf;

/// `audit_token_t`: eight words; `[1]` the effective uid, `[5]` the pid,
/// `[7]` the pid version.
pub type AuditToken = [u32; 8];

extern "C" {
    // libproc (libSystem, macOS 11+): the executable of the process the
    // token names, failing with ESRCH when that process is gone, even if
    // its pid now belongs to another.
    fn proc_pidpath_audittoken(
        token: *mut AuditToken,
        buffer: *mut libc::c_void,
        buffersize: u32,
    ) -> libc::c_int;
}

/// The process at the other end of a connection.
#[derive(Debug, Clone)]
pub struct MacPeer {
    pub pid: libc::pid_t,
    pub uid: libc::uid_t,
    pub token: AuditToken,
}

fn sockopt<T>(sock: BorrowedFd<'_>, option: libc::c_int, out: &mut T) -> io::Result<()> {
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: out is valid for size_of::<T>() bytes and len says so.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_LOCAL,
            option,
            (out as *mut T).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != std::mem::size_of::<T>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the kernel's answer about the peer has an unexpected size",
        ));
    }
    Ok(())
}

impl MacPeer {
    /// The credentials the kernel recorded for the peer of `sock`.
    pub fn of(sock: BorrowedFd<'_>) -> io::Result<MacPeer> {
        let mut token: AuditToken = [0; 8];
        sockopt(sock, libc::LOCAL_PEERTOKEN, &mut token)?;
        let mut pid: libc::pid_t = 0;
        sockopt(sock, libc::LOCAL_PEERPID, &mut pid)?;
        // Both answers are about the same process.
        if u32::try_from(pid).ok() != Some(token[5]) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the peer's pid and audit token disagree",
            ));
        }
        Ok(MacPeer {
            pid,
            uid: token[1],
            token,
        })
    }

    /// The peer's executable; fails once the process is gone.
    pub fn exe(&self) -> io::Result<PathBuf> {
        let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
        let mut token = self.token;
        // SAFETY: buf is valid for its length; token is a valid audit token.
        let n = unsafe {
            proc_pidpath_audittoken(&mut token, buf.as_mut_ptr().cast(), buf.len() as u32)
        };
        if n <= 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(n as usize);
        Ok(PathBuf::from(std::ffi::OsString::from(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&buf),
        )))
    }

    /// The peer's working directory (for relative paths), checked to
    /// belong to the same process afterwards (the token still names a live
    /// process).
    pub fn cwd(&self) -> io::Result<PathBuf> {
        // SAFETY: an all-zero proc_vnodepathinfo is a valid value.
        let mut info: libc::proc_vnodepathinfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::proc_vnodepathinfo>() as libc::c_int;
        // SAFETY: info is valid for size bytes.
        let n = unsafe {
            libc::proc_pidinfo(
                self.pid,
                libc::PROC_PIDVNODEPATHINFO,
                0,
                (&mut info as *mut libc::proc_vnodepathinfo).cast(),
                size,
            )
        };
        if n != size {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: vip_path is MAXPATHLEN bytes, NUL-terminated by the kernel.
        let path = unsafe {
            std::ffi::CStr::from_ptr(info.pvi_cdir.vip_path.as_ptr().cast::<libc::c_char>())
        };
        let path = PathBuf::from(std::ffi::OsString::from(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path.to_bytes()),
        ));
        self.exe()?;
        if !path.is_absolute() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the requester's working directory has no usable path",
            ));
        }
        Ok(path)
    }
}
