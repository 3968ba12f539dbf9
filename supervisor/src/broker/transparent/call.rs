//! A notified system call, decoded: which call, which directory, which
//! path, which flags; and what of it the broker can serve.

use crate::audit::Via;

/// `open_how` as the kernel defines it (`flags`, `mode`, `resolve`).
const OPEN_HOW_SIZE: usize = 24;

/// How a `mkdir` is served, in `open` terms: a new name (`O_CREAT |
/// O_EXCL`, an existing one of any kind being `EEXIST`, a symlink too, so
/// `O_NOFOLLOW`), for writing. [`OpenCall::mkdir`] tells the two apart.
const MKDIR_FLAGS: i32 = libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW;

/// An `open`-family call (or `mkdir`) with its arguments, before the path
/// is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenCall {
    pub via: Via,
    /// `Some(fd)` for the `*at` calls (`AT_FDCWD` included), `None` for
    /// `open` and `creat` (the working directory).
    pub dirfd: Option<i32>,
    pub path_addr: u64,
    pub flags: i32,
    pub mode: u32,
    /// openat2 only: the address and size of its `open_how`.
    pub how: Option<(u64, usize)>,
}

impl OpenCall {
    /// Decodes `data`, or `None` for a call this filter does not notify.
    pub fn decode(data: &libc::seccomp_data) -> Option<OpenCall> {
        let a = data.args;
        // Ints are taken from the low 32 bits, as the kernel does.
        let int = |v: u64| v as u32 as i32;
        let nr = libc::c_long::from(data.nr);
        let call = |via, dirfd, path_addr, flags, mode| OpenCall {
            via,
            dirfd,
            path_addr,
            flags,
            mode,
            how: None,
        };
        match nr {
            libc::SYS_openat => Some(call(
                Via::SeccompOpenat,
                Some(int(a[0])),
                a[1],
                int(a[2]),
                a[3] as u32,
            )),
            libc::SYS_openat2 => Some(OpenCall {
                how: Some((a[2], a[3] as usize)),
                ..call(Via::SeccompOpenat2, Some(int(a[0])), a[1], 0, 0)
            }),
            #[cfg(target_arch = "x86_64")]
            libc::SYS_open => Some(call(Via::SeccompOpen, None, a[0], int(a[1]), a[2] as u32)),
            libc::SYS_mkdirat => Some(call(
                Via::SeccompMkdirat,
                Some(int(a[0])),
                a[1],
                MKDIR_FLAGS,
                a[2] as u32,
            )),
            #[cfg(target_arch = "x86_64")]
            libc::SYS_mkdir => Some(call(
                Via::SeccompMkdir,
                None,
                a[0],
                MKDIR_FLAGS,
                a[1] as u32,
            )),
            #[cfg(target_arch = "x86_64")]
            libc::SYS_creat => Some(call(
                Via::SeccompCreat,
                None,
                a[0],
                libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
                a[1] as u32,
            )),
            _ => None,
        }
    }

    /// Fills in `flags` and `mode` from openat2's `open_how` bytes. `None`
    /// when the broker should not serve the call itself: a size it does not
    /// know, flags or mode the kernel would refuse (`EINVAL`), or any
    /// `resolve` restriction (`RESOLVE_BENEATH`, `IN_ROOT`, ...): those are
    /// the kernel's to apply, so such calls are left to it.
    pub fn with_how(self, how: &[u8]) -> Option<OpenCall> {
        if how.len() != OPEN_HOW_SIZE {
            return None;
        }
        let word = |i: usize| u64::from_ne_bytes(how[i * 8..i * 8 + 8].try_into().unwrap());
        let (flags, mode, resolve) = (word(0), word(1), word(2));
        if resolve != 0 || flags > u64::from(u32::MAX) || mode & !0o7777 != 0 {
            return None;
        }
        Some(OpenCall {
            flags: flags as u32 as i32,
            mode: mode as u32,
            ..self
        })
    }

    /// A `mkdir` or `mkdirat`: a directory to make, answered with 0.
    pub fn mkdir(&self) -> bool {
        matches!(self.via, Via::SeccompMkdir | Via::SeccompMkdirat)
    }

    fn has(&self, flag: i32) -> bool {
        self.flags & flag == flag
    }

    /// `O_PATH` opens are never checked by Landlock (nothing is read or
    /// written through them) and `O_TMPFILE` makes an unnamed file: both
    /// are the kernel's alone.
    pub fn kernel_only(&self) -> bool {
        self.has(libc::O_PATH) || self.has(libc::O_TMPFILE)
    }

    pub fn read(&self) -> bool {
        matches!(self.flags & libc::O_ACCMODE, libc::O_RDONLY | libc::O_RDWR)
    }

    pub fn write(&self) -> bool {
        matches!(self.flags & libc::O_ACCMODE, libc::O_WRONLY | libc::O_RDWR)
    }

    pub fn create(&self) -> bool {
        self.has(libc::O_CREAT)
    }

    pub fn exclusive(&self) -> bool {
        self.has(libc::O_CREAT | libc::O_EXCL)
    }

    pub fn truncate(&self) -> bool {
        self.has(libc::O_TRUNC)
    }

    pub fn append(&self) -> bool {
        self.has(libc::O_APPEND)
    }

    pub fn directory(&self) -> bool {
        self.has(libc::O_DIRECTORY)
    }

    pub fn nofollow(&self) -> bool {
        self.has(libc::O_NOFOLLOW)
    }

    pub fn cloexec(&self) -> bool {
        self.has(libc::O_CLOEXEC)
    }

    /// Whether the call changes anything: what the sandbox's write trees
    /// are for. A read-only open with `O_TRUNC` truncates (Linux allows it).
    pub fn writes(&self) -> bool {
        self.write() || self.create() || self.truncate()
    }

    /// File status flags the program asked for that a reopen does not set
    /// itself; applied with `F_SETFL` after the open.
    pub fn status_flags(&self) -> i32 {
        self.flags & (libc::O_NONBLOCK | libc::O_DIRECT | libc::O_NOATIME)
    }

    /// `O_SYNC` and `O_DSYNC` as asked: `F_SETFL` cannot set them, so the
    /// broker opens with them.
    pub fn sync_flags(&self) -> i32 {
        self.flags & (libc::O_SYNC | libc::O_DSYNC)
    }
}

/// Whether the notified call `nr` may add a seccomp filter (the filter
/// notifies `seccomp` but for its questions, and `prctl` only with
/// `PR_SET_SECCOMP`): see `stacked.rs`.
pub fn adds_filter(nr: libc::c_long) -> bool {
    nr == libc::SYS_seccomp || nr == libc::SYS_prctl
}

/// Whether the notified call `nr` may change what a thread id's working
/// directory is (`threads`): the filter's calls other than the `open`
/// family.
pub fn changes_directories(nr: libc::c_long) -> bool {
    match nr {
        libc::SYS_chdir
        | libc::SYS_fchdir
        | libc::SYS_clone
        | libc::SYS_clone3
        | libc::SYS_setns
        | libc::SYS_unshare => true,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_fork | libc::SYS_vfork => true,
        _ => false,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A notification's data for call `nr` with `args`, for the decoders.
    pub(in crate::broker::transparent) fn data(
        nr: libc::c_long,
        args: [u64; 6],
    ) -> libc::seccomp_data {
        libc::seccomp_data {
            nr: nr as i32,
            arch: sandbox_child::seccomp::NATIVE_AUDIT_ARCH,
            instruction_pointer: 0,
            args,
        }
    }

    #[test]
    fn mkdirat_decodes_as_an_exclusive_create_that_follows_no_symlink() {
        let call = OpenCall::decode(&data(libc::SYS_mkdirat, [7, 0x1000, 0o755, 0, 0, 0])).unwrap();
        assert!(call.mkdir());
        assert_eq!(
            (call.dirfd, call.path_addr, call.mode),
            (Some(7), 0x1000, 0o755)
        );
        assert!(call.exclusive() && call.nofollow() && call.write() && !call.read());
        assert!(!call.directory() && !call.kernel_only());
        let open = OpenCall::decode(&data(libc::SYS_openat, [7, 0x1000, 0, 0, 0, 0])).unwrap();
        assert!(!open.mkdir());
    }

    #[test]
    fn every_notified_call_is_an_open_a_connect_a_watch_a_removal_or_a_directory_change() {
        // (`mkdir` decodes as an open: see `MKDIR_FLAGS`.)
        // The filter's list, by name, against the decoders here: a call
        // added to the filter and not decoded would be answered CONTINUE
        // without the memory being emptied.
        let by_name = |name: &str| -> libc::c_long {
            match name {
                "openat" => libc::SYS_openat,
                "openat2" => libc::SYS_openat2,
                "mkdirat" => libc::SYS_mkdirat,
                #[cfg(target_arch = "x86_64")]
                "mkdir" => libc::SYS_mkdir,
                "unlinkat" => libc::SYS_unlinkat,
                #[cfg(target_arch = "x86_64")]
                "unlink" => libc::SYS_unlink,
                #[cfg(target_arch = "x86_64")]
                "rmdir" => libc::SYS_rmdir,
                #[cfg(target_arch = "x86_64")]
                "open" => libc::SYS_open,
                #[cfg(target_arch = "x86_64")]
                "creat" => libc::SYS_creat,
                #[cfg(target_arch = "x86_64")]
                "fork" => libc::SYS_fork,
                #[cfg(target_arch = "x86_64")]
                "vfork" => libc::SYS_vfork,
                "chdir" => libc::SYS_chdir,
                "fchdir" => libc::SYS_fchdir,
                "clone" => libc::SYS_clone,
                "clone3" => libc::SYS_clone3,
                "setns" => libc::SYS_setns,
                "unshare" => libc::SYS_unshare,
                "connect" => libc::SYS_connect,
                "inotify_add_watch" => libc::SYS_inotify_add_watch,
                "seccomp" => libc::SYS_seccomp,
                "prctl" => libc::SYS_prctl,
                "mknodat" => libc::SYS_mknodat,
                "linkat" => libc::SYS_linkat,
                "symlinkat" => libc::SYS_symlinkat,
                "renameat" => libc::SYS_renameat,
                "renameat2" => libc::SYS_renameat2,
                "fchmod" => libc::SYS_fchmod,
                "fchmodat" => libc::SYS_fchmodat,
                "fchmodat2" => 452,
                "setxattr" => libc::SYS_setxattr,
                "lsetxattr" => libc::SYS_lsetxattr,
                "fsetxattr" => libc::SYS_fsetxattr,
                "setxattrat" => 463,
                #[cfg(target_arch = "x86_64")]
                "chmod" => libc::SYS_chmod,
                #[cfg(target_arch = "x86_64")]
                "mknod" => libc::SYS_mknod,
                #[cfg(target_arch = "x86_64")]
                "link" => libc::SYS_link,
                #[cfg(target_arch = "x86_64")]
                "symlink" => libc::SYS_symlink,
                #[cfg(target_arch = "x86_64")]
                "rename" => libc::SYS_rename,
                other => panic!("the filter notifies {other}, which is not decoded here"),
            }
        };
        for name in sandbox_child::seccomp::Program::notified_syscall_names() {
            let nr = by_name(name);
            let kinds = [
                OpenCall::decode(&data(nr, [0; 6])).is_some(),
                changes_directories(nr),
                adds_filter(nr),
                nr == libc::SYS_connect,
                nr == libc::SYS_inotify_add_watch,
                crate::broker::guard::Call::decode_naming(&data(nr, [0; 6])).is_some(),
                super::super::names::Remove::decode(&data(nr, [0; 6])).is_some(),
            ];
            assert_eq!(kinds.iter().filter(|&&k| k).count(), 1, "{name}");
        }
        assert!(!changes_directories(libc::SYS_execve));
        assert!(!changes_directories(libc::SYS_openat));
    }

    #[test]
    fn openat_takes_the_low_word_of_its_int_arguments() {
        let flags = (0xdead_0000_0000_0000 | libc::O_WRONLY as u64) | libc::O_CLOEXEC as u64;
        let fd = 0xffff_ffff_0000_0000 | (libc::AT_FDCWD as u32 as u64);
        let c =
            OpenCall::decode(&data(libc::SYS_openat, [fd, 0x1000, flags, 0o644, 0, 0])).unwrap();
        assert_eq!(c.via, Via::SeccompOpenat);
        assert_eq!(c.dirfd, Some(libc::AT_FDCWD));
        assert_eq!(c.path_addr, 0x1000);
        assert!(c.write() && !c.read() && c.cloexec() && c.writes());
        assert_eq!(c.mode, 0o644);
        assert!(OpenCall::decode(&data(libc::SYS_read, [0; 6])).is_none());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn creat_is_open_for_writing_created_and_truncated() {
        let c = OpenCall::decode(&data(libc::SYS_creat, [0x2000, 0o600, 0, 0, 0, 0])).unwrap();
        assert_eq!((c.via, c.dirfd, c.mode), (Via::SeccompCreat, None, 0o600));
        assert!(c.write() && c.create() && c.truncate() && !c.exclusive());
        let o = OpenCall::decode(&data(libc::SYS_open, [0x2000, 0, 0, 0, 0, 0])).unwrap();
        assert!(o.read() && !o.writes());
    }

    #[test]
    fn openat2_is_served_only_without_resolve_restrictions() {
        let c = OpenCall::decode(&data(libc::SYS_openat2, [3, 0x1000, 0x3000, 24, 0, 0])).unwrap();
        assert_eq!(c.how, Some((0x3000, 24)));
        let how = |flags: u64, mode: u64, resolve: u64| {
            [flags, mode, resolve]
                .iter()
                .flat_map(|w| w.to_ne_bytes())
                .collect::<Vec<u8>>()
        };
        let rdwr = c.with_how(&how(libc::O_RDWR as u64, 0, 0)).unwrap();
        assert!(rdwr.read() && rdwr.write());
        let beneath = libc::RESOLVE_BENEATH;
        assert!(c.with_how(&how(0, 0, beneath)).is_none());
        assert!(c.with_how(&how(1 << 40, 0, 0)).is_none());
        assert!(c.with_how(&how(libc::O_CREAT as u64, 0o10000, 0)).is_none());
        assert!(c.with_how(&[0; 16]).is_none());
    }

    #[test]
    fn o_path_and_o_tmpfile_are_the_kernels() {
        let at = |flags: i32| {
            OpenCall::decode(&data(libc::SYS_openat, [3, 1, flags as u64, 0, 0, 0])).unwrap()
        };
        assert!(at(libc::O_PATH).kernel_only());
        assert!(at(libc::O_TMPFILE | libc::O_RDWR).kernel_only());
        // O_TMPFILE includes O_DIRECTORY: a directory open is not one.
        assert!(!at(libc::O_DIRECTORY).kernel_only());
        assert!(at(libc::O_RDONLY | libc::O_TRUNC).writes());
    }
}
