//! The policy's resource limits as `setrlimit` arguments: prepared before
//! the fork and set by the child, on Linux and on macOS.

use policies::Policy;

/// The policy's resource limits, each kept at or below the inherited hard
/// limit (a limit can only be lowered).
pub fn rlimits(policy: &Policy) -> Vec<(libc::c_int, u64)> {
    let l = &policy.limits;
    [
        (libc::RLIMIT_AS as libc::c_int, l.address_space),
        (libc::RLIMIT_NOFILE as libc::c_int, l.open_files),
        (libc::RLIMIT_NPROC as libc::c_int, l.processes),
        (libc::RLIMIT_CPU as libc::c_int, l.cpu_seconds),
        (libc::RLIMIT_FSIZE as libc::c_int, l.file_size),
    ]
    .into_iter()
    .filter_map(|(r, v)| v.map(|v| (r, clamp_to_hard_limit(r, v))))
    .collect()
}

fn clamp_to_hard_limit(resource: libc::c_int, value: u64) -> u64 {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: cur is a valid out-pointer.
    if unsafe { libc::getrlimit(resource as _, &mut cur) } == 0 {
        value.min(cur.rlim_max)
    } else {
        value
    }
}
