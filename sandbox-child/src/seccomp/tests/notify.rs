//! The user-notification filters: the transparent broker's and the guard's.

use super::*;

/// The shape of the user-notification filter the supervisor will need.
#[test]
fn a_user_notification_filter_can_be_built() {
    let opens = [libc::SYS_openat, libc::SYS_openat2];
    let rules = opens
        .iter()
        .map(|&nr| SyscallRule::always("open", nr, Action::UserNotif))
        .collect();
    let prog = Program::build(&FilterSpec {
        rules,
        default: Action::Allow,
    })
    .unwrap();
    for nr in opens {
        assert_eq!(eval(&prog, nr, &[]), libc::SECCOMP_RET_USER_NOTIF);
    }
    assert_eq!(eval(&prog, libc::SYS_read, &[]), ALLOW);
}

#[test]
fn the_notify_filter_notifies_opens_and_thread_changes_only_and_guards_the_abi() {
    let prog = Program::notify_filter();
    interp::validate(prog.instructions());
    let mut notified = vec![
        libc::SYS_openat,
        libc::SYS_openat2,
        libc::SYS_mkdirat,
        libc::SYS_unlinkat,
        libc::SYS_connect,
        // A watch, made by the supervisor (`broker::transparent::watch`).
        libc::SYS_inotify_add_watch,
        libc::SYS_chdir,
        libc::SYS_fchdir,
        libc::SYS_clone,
        libc::SYS_clone3,
        libc::SYS_setns,
        libc::SYS_unshare,
        // Any but its two questions: it may add a filter.
        libc::SYS_seccomp,
        // The guard's calls (`supervisor::broker::guard`).
        libc::SYS_mknodat,
        libc::SYS_linkat,
        libc::SYS_symlinkat,
        libc::SYS_renameat,
        libc::SYS_renameat2,
        libc::SYS_fchmod,
        libc::SYS_fchmodat,
        452, // fchmodat2
        libc::SYS_setxattr,
        libc::SYS_lsetxattr,
        libc::SYS_fsetxattr,
        463, // setxattrat
    ];
    #[cfg(target_arch = "x86_64")]
    notified.extend([
        libc::SYS_chmod,
        libc::SYS_open,
        libc::SYS_creat,
        libc::SYS_mkdir,
        libc::SYS_unlink,
        libc::SYS_rmdir,
        libc::SYS_fork,
        libc::SYS_vfork,
        libc::SYS_mknod,
        libc::SYS_link,
        libc::SYS_symlink,
        libc::SYS_rename,
    ]);
    for &nr in &notified {
        // A mode that makes a file executable, for the chmod family.
        let args = [0o755, 0o755, 0o755];
        assert_eq!(eval(&prog, nr, &args), libc::SECCOMP_RET_USER_NOTIF, "{nr}");
    }
    // `prctl` only to add a filter (not in the loop: its option 0o755 is
    // none of the kernel's).
    assert_eq!(Program::notified_syscall_names().len(), notified.len() + 1);
    chmod_is_notified_when_it_makes_a_file_executable(&prog);
    a_call_that_may_add_a_filter_is_notified(&prog);
    for nr in [
        libc::SYS_read,
        libc::SYS_close,
        libc::SYS_statx,
        libc::SYS_getcwd,
        libc::SYS_execve,
        libc::SYS_exit,
    ] {
        assert_eq!(eval(&prog, nr, &[]), ALLOW, "{nr}");
    }
    // i386 `open` is 5, and the x32 openat is the bit plus 257: both kill,
    // never reach the supervisor with numbers it would misread.
    let i386_open = Syscall {
        arch: 0x4000_0003,
        ..Syscall::native(5, &[])
    };
    assert_eq!(interp::run(prog.instructions(), i386_open), KILL);
    if cfg!(target_arch = "x86_64") {
        let x32_openat = Syscall {
            nr: 0x4000_0000 | libc::SYS_openat as i32,
            ..Syscall::native(0, &[])
        };
        assert_eq!(interp::run(prog.instructions(), x32_openat), KILL);
    }
}

/// Every way to add a filter (`seccomp(SET_MODE_FILTER)` with any flags,
/// `prctl(PR_SET_SECCOMP)`, an operation the kernel may add one day) is
/// notified, so the supervisor reads no filter count before one is seen;
/// `seccomp`'s questions and every other `prctl` stay in the kernel.
fn a_call_that_may_add_a_filter_is_notified(prog: &Program) {
    let notif = libc::SECCOMP_RET_USER_NOTIF;
    for args in [
        [u64::from(libc::SECCOMP_SET_MODE_FILTER), 0, 0x1000],
        [
            u64::from(libc::SECCOMP_SET_MODE_FILTER),
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            0x1000,
        ],
        [u64::from(libc::SECCOMP_SET_MODE_STRICT), 0, 0],
        [9, 0, 0],
        [
            u64::from(libc::SECCOMP_SET_MODE_FILTER) | HIGH_GARBAGE,
            0,
            0x1000,
        ],
    ] {
        assert_eq!(eval(prog, libc::SYS_seccomp, &args), notif, "{args:?}");
    }
    for op in [
        libc::SECCOMP_GET_ACTION_AVAIL,
        libc::SECCOMP_GET_NOTIF_SIZES,
    ] {
        assert_eq!(eval(prog, libc::SYS_seccomp, &[u64::from(op), 0, 0]), ALLOW);
    }
    let set_seccomp = libc::PR_SET_SECCOMP as u64;
    assert_eq!(
        eval(prog, libc::SYS_prctl, &[set_seccomp, 2, 0x1000]),
        notif
    );
    assert_eq!(
        eval(prog, libc::SYS_prctl, &[set_seccomp | HIGH_GARBAGE, 2]),
        notif
    );
    for option in [
        libc::PR_SET_NAME,
        libc::PR_GET_SECCOMP,
        libc::PR_SET_NO_NEW_PRIVS,
    ] {
        assert_eq!(eval(prog, libc::SYS_prctl, &[option as u64, 1]), ALLOW);
    }
}

/// The guard's filter: opens only when their flags write, create, truncate
/// or make an unnamed file; every call that makes a name; nothing else.
#[test]
fn the_guard_filter_notifies_writes_and_names_only() {
    let prog = Program::guard_filter();
    interp::validate(prog.instructions());
    let notif = libc::SECCOMP_RET_USER_NOTIF;
    let at = |flags: i32| [libc::AT_FDCWD as u64, 0x1000, flags as u32 as u64, 0o644];
    for flags in [
        libc::O_WRONLY,
        libc::O_RDWR,
        libc::O_RDONLY | libc::O_CREAT,
        libc::O_RDONLY | libc::O_TRUNC,
        libc::O_TMPFILE | libc::O_RDWR,
        libc::O_WRONLY | libc::O_CLOEXEC | libc::O_APPEND,
    ] {
        assert_eq!(
            eval(&prog, libc::SYS_openat, &at(flags)),
            notif,
            "{flags:#x}"
        );
    }
    for flags in [
        libc::O_RDONLY,
        libc::O_RDONLY | libc::O_CLOEXEC | libc::O_DIRECTORY,
        libc::O_PATH,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
    ] {
        assert_eq!(
            eval(&prog, libc::SYS_openat, &at(flags)),
            ALLOW,
            "{flags:#x}"
        );
    }
    // High garbage in the flags register does not hide a write.
    let high = [libc::AT_FDCWD as u64, 0x1000, 0xffff_0000_0000_0000 | 1, 0];
    assert_eq!(eval(&prog, libc::SYS_openat, &high), notif);
    for nr in [
        libc::SYS_setxattr,
        libc::SYS_lsetxattr,
        libc::SYS_fsetxattr,
        463, // setxattrat
        libc::SYS_openat2,
        libc::SYS_mkdirat,
        libc::SYS_mknodat,
        libc::SYS_linkat,
        libc::SYS_symlinkat,
        libc::SYS_renameat,
        libc::SYS_renameat2,
    ] {
        assert_eq!(eval(&prog, nr, &[]), notif, "{nr}");
    }
    for nr in [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_unlinkat,
        libc::SYS_connect,
        libc::SYS_chdir,
        libc::SYS_execve,
    ] {
        assert_eq!(eval(&prog, nr, &[]), ALLOW, "{nr}");
    }
    chmod_is_notified_when_it_makes_a_file_executable(&prog);
}

/// `chmod` and its forms reach the guard when the mode sets an execute bit
/// (in the low word, as the kernel reads it), and stay in the kernel
/// otherwise.
fn chmod_is_notified_when_it_makes_a_file_executable(prog: &Program) {
    let fd = libc::AT_FDCWD as u64;
    // (name, the mode's argument, the arguments before it)
    let mut calls: Vec<(&str, usize, Vec<u64>)> = vec![
        ("fchmod", 1, vec![3]),
        ("fchmodat", 2, vec![fd, 0x1000]),
        ("fchmodat2", 2, vec![fd, 0x1000]),
    ];
    #[cfg(target_arch = "x86_64")]
    calls.push(("chmod", 1, vec![0x1000]));
    for (name, at, before) in calls {
        let call = |mode: u64| {
            let mut args = before.clone();
            args.insert(at, mode);
            eval(prog, nr_of(name), &args)
        };
        for mode in [0o755, 0o100, 0o010, 0o001, 0o700 | HIGH_GARBAGE] {
            assert_eq!(call(mode), libc::SECCOMP_RET_USER_NOTIF, "{name} {mode:#o}");
        }
        for mode in [0o644, 0o600, 0o1666, 0o111 << 32] {
            assert_eq!(call(mode), ALLOW, "{name} {mode:#o}");
        }
    }
}
