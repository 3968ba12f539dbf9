//! The kernel features sluice relies on, checked with raw syscalls from the test
//! itself. Where they are expected (CI), a missing one fails: the escape tests'
//! results mean nothing on a kernel that cannot enforce the sandbox.

use sluice_tests::expected_landlock_abi;

const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;

#[test]
fn landlock_abi_is_at_least_the_expected_one() {
    // SAFETY: with a null attribute and size 0 this only queries the ABI version.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    let err = std::io::Error::last_os_error();
    assert!(abi >= 0, "Landlock is unavailable: {err}");
    let expected = expected_landlock_abi();
    assert!(
        abi >= i64::from(expected),
        "Landlock ABI {abi} < {expected} (SLUICE_EXPECT_LANDLOCK_ABI)"
    );
}

#[test]
fn seccomp_user_notification_is_supported() {
    let action: u32 = libc::SECCOMP_RET_USER_NOTIF;
    // SAFETY: GET_ACTION_AVAIL reads one u32 from the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    };
    assert_eq!(
        ret,
        0,
        "SECCOMP_RET_USER_NOTIF unavailable: {}",
        std::io::Error::last_os_error()
    );
    let mut sizes = [0u16; 3];
    // SAFETY: GET_NOTIF_SIZES writes struct seccomp_notif_sizes (three u16s).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_NOTIF_SIZES,
            0,
            sizes.as_mut_ptr(),
        )
    };
    assert_eq!(
        ret,
        0,
        "SECCOMP_GET_NOTIF_SIZES: {}",
        std::io::Error::last_os_error()
    );
    assert!(sizes.iter().all(|&s| s > 0), "notification sizes {sizes:?}");
}

#[test]
fn unprivileged_user_namespaces_are_available() {
    const NOBODY: libc::c_long = 65534;
    // SAFETY: the child makes only raw syscalls (async-signal-safe) and _exits;
    // the parent just waits for it.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: raw syscalls on the single thread of the forked child.
        unsafe {
            let errno = || *libc::__errno_location();
            if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setresgid, NOBODY, NOBODY, NOBODY) != 0
                || libc::syscall(libc::SYS_setresuid, NOBODY, NOBODY, NOBODY) != 0
            {
                libc::_exit(100 + errno().min(99));
            }
            if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                libc::_exit(errno().min(99));
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: pid is our child; status is a valid out-pointer.
    let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(ret, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    match libc::WEXITSTATUS(status) {
        0 => {}
        code if code >= 100 => panic!(
            "could not drop to uid 65534 for the check: {}",
            std::io::Error::from_raw_os_error(code - 100)
        ),
        errno => panic!(
            "unshare(CLONE_NEWUSER) as uid 65534 failed: {} \
             (see /proc/sys/user/max_user_namespaces, kernel.unprivileged_userns_clone, \
             kernel.apparmor_restrict_unprivileged_userns)",
            std::io::Error::from_raw_os_error(errno)
        ),
    }
}
