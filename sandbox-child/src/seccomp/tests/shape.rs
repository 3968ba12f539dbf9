//! What the filters cost a call: which calls the kernel's action cache
//! allows without running a filter at all, and how many instructions the
//! others run (the dispatch is first match, one compare per rule).

use super::*;

/// Every number a native call could have here, and some beyond.
const NUMBERS: std::ops::Range<i32> = 0..512;

/// Calls every program makes often, none of which any filter needs to
/// look at: the kernel must allow them from its cache.
const EVERYDAY: &[libc::c_long] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_close,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_getdents64,
    libc::SYS_lseek,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_brk,
    libc::SYS_futex,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    // Not `fcntl`: its `F_SETLEASE` is refused (`filter::lease_check`).
    libc::SYS_execve,
    libc::SYS_wait4,
    libc::SYS_exit_group,
    libc::SYS_readlinkat,
    libc::SYS_faccessat2,
];

/// Every filter sluice installs, with its table.
fn every_filter() -> Vec<(String, FilterSpec)> {
    let mut all: Vec<(String, FilterSpec)> = every_rule_combination()
        .into_iter()
        .map(|rules| (format!("deny {rules:?}"), filter::deny_spec(&rules)))
        .collect();
    for ip_sockets in [false, true] {
        all.push((
            format!("guard, ip_sockets {ip_sockets}"),
            filter::guard_spec(ip_sockets),
        ));
        all.push((
            format!("notify, ip_sockets {ip_sockets}"),
            filter::notify_spec(ip_sockets),
        ));
        for rules in every_rule_combination() {
            for transparent in [true, false] {
                all.push((
                    format!(
                        "one filter, transparent {transparent}, ip_sockets {ip_sockets}, {rules:?}"
                    ),
                    filter::supervised_spec(&rules, transparent, ip_sockets),
                ));
            }
        }
    }
    all
}

/// The kernel runs a filter only for the calls whose verdict depends on
/// their arguments or is not "allow"; every other call, the everyday ones
/// among them, costs no instruction at all.
#[test]
fn only_calls_with_argument_checks_or_refusals_run_the_filters() {
    for (name, spec) in every_filter() {
        let prog = Program::build(&spec).unwrap();
        for nr in NUMBERS {
            let rule = spec.rules.iter().find(|r| r.nr == libc::c_long::from(nr));
            let cached = match rule {
                None => spec.default == Action::Allow,
                Some(rule) => rule.check == Check::Always(Action::Allow),
            };
            assert_eq!(
                interp::const_allow(prog.instructions(), nr),
                cached,
                "{name}: syscall {nr} ({:?})",
                rule.map(|r| r.name)
            );
        }
        for &nr in EVERYDAY {
            assert!(
                interp::const_allow(prog.instructions(), nr as i32),
                "{name}: syscall {nr} runs the filter"
            );
        }
    }
}

/// The frequent calls a filter must decide by their arguments come first
/// in the deny filter's dispatch, not after the ~50 calls it refuses
/// outright (where `ioctl` and `clone` took 71 to 78 instructions).
#[test]
fn frequent_calls_run_few_instructions() {
    const AT_MOST: usize = 24;
    let frequent = [
        (
            libc::SYS_openat,
            [libc::AT_FDCWD as u64, 0, libc::O_RDONLY as u64],
        ),
        (libc::SYS_ioctl, [1, libc::TCGETS, 0]),
        (libc::SYS_fcntl, [3, libc::F_GETFD as u64, 0]),
        (libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0]),
        (libc::SYS_clone3, [0, 88, 0]),
        (libc::SYS_prctl, [libc::PR_SET_NAME as u64, 0, 0]),
        (
            libc::SYS_socket,
            [libc::AF_UNIX as u64, libc::SOCK_STREAM as u64, 0],
        ),
        (libc::SYS_sendto, [3, 0, 1]),
        (libc::SYS_sendmsg, [3, 0, 0]),
    ];
    // The deny filter, and the program's one filter (guard or transparent,
    // and deny): the frequent calls come first in both.
    let tables = every_rule_combination().into_iter().flat_map(|rules| {
        [
            (format!("deny {rules:?}"), filter::deny_spec(&rules)),
            (
                format!("guard and deny {rules:?}"),
                filter::supervised_spec(&rules, false, false),
            ),
            (
                format!("transparent and deny {rules:?}"),
                filter::supervised_spec(&rules, true, false),
            ),
        ]
    });
    for (name, spec) in tables {
        let prog = Program::build(&spec).unwrap();
        for (nr, args) in frequent {
            // Not in the table: allowed from the action cache.
            if !spec.rules.iter().any(|r| r.nr == nr) {
                continue;
            }
            let call = Syscall::native(nr, &args);
            let (_, ran) = interp::run_counted(prog.instructions(), call);
            assert!(
                ran <= AT_MOST,
                "{name}: syscall {nr} runs {ran} instructions (at most {AT_MOST})"
            );
        }
    }
    // The guard's filter: a read-only open is let through at its first rule.
    let prog = Program::guard_filter();
    let read = Syscall::native(libc::SYS_openat, &[libc::AT_FDCWD as u64, 0, 0]);
    let (verdict, ran) = interp::run_counted(prog.instructions(), read);
    assert_eq!(verdict, ALLOW);
    assert!(
        ran <= 12,
        "a read-only open runs {ran} instructions of the guard's filter"
    );
    // With the deny filter in the same program, a read-only open costs
    // the two filters' checks, not two dispatches.
    for rules in every_rule_combination() {
        let prog = Program::supervised(&rules, false, false);
        let (verdict, ran) = interp::run_counted(prog.instructions(), read);
        assert_eq!(verdict, ALLOW);
        assert!(
            ran <= 14,
            "{rules:?}: a read-only open runs {ran} instructions"
        );
    }
}
