//! The child side of the launch: from fork to exec, raw system calls only.
//!
//! Order matters and follows the threat: descriptors are closed first so the
//! program inherits nothing it was not given; the namespace and mounts need
//! capabilities, so they come before capabilities are dropped; no_new_privs
//! comes before seccomp (which requires it without CAP_SYS_ADMIN); Landlock and
//! seccomp come last so that the steps before them are not restricted.

use std::os::fd::AsRawFd;
use std::os::raw::c_ulong;

use crate::mounts::MountKind;
use crate::plan::Prepared;
use crate::report::{Step, StepRecord};
use crate::seccomp;
use crate::sys::{self, MountAttr};

/// The exit code of a child that could not set up its sandbox.
pub const EXIT_SETUP_FAILED: i32 = 125;

/// Runs the child sequence and execs the program. Never returns.
///
/// # Safety
/// Must be called in the child right after `fork()`, in a single-threaded
/// process, with `plan` prepared before the fork.
pub unsafe fn exec_child(plan: &Prepared) -> ! {
    let mut run = Runner { plan };
    run.setup_fds();
    run.step(Step::DeathSignal, 0, || {
        sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as c_ulong)?;
        // The supervisor may have died before the line above.
        // SAFETY: getppid cannot fail.
        if unsafe { libc::getppid() } != plan.parent_pid {
            return Err(libc::ESRCH);
        }
        Ok(())
    });
    run.step(Step::Signals, 0, sys::reset_signals);
    if let Some(fd) = &plan.cgroup_procs {
        run.step(Step::Cgroup, 0, || sys::write_all(fd.as_raw_fd(), b"0"));
    }
    if plan.id_maps.is_some() {
        run.namespaces();
    }
    run.drop_capabilities();
    run.step(Step::NoNewPrivs, 0, || {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1)
    });
    for (i, &(resource, value)) in plan.rlimits.iter().enumerate() {
        run.step(Step::Rlimit, i as u16, || sys::setrlimit(resource, value));
    }
    if let Some(fd) = &plan.landlock {
        run.step(Step::Landlock, 0, || {
            sys::landlock_restrict_self(fd.as_raw_fd())
        });
    }
    let fprog = plan.seccomp.as_fprog();
    run.step(Step::Seccomp, 0, || seccomp::install(&fprog, 0));
    if let Some(notify) = &plan.notify {
        let fprog = notify.program.as_fprog();
        let socket = notify.socket.as_raw_fd();
        run.step(Step::Transparent, 0, || {
            crate::notify::install_and_hand_over(&fprog, socket)
        });
    }
    // SAFETY: program, argv and envp are NUL-terminated arrays prepared before fork.
    unsafe {
        libc::execve(
            plan.program.as_ptr(),
            plan.argv_ptrs.as_ptr(),
            plan.envp_ptrs.as_ptr(),
        )
    };
    let errno = sys::errno();
    run.report(Step::Exec, 0, errno, true);
    sys::exit(if errno == libc::ENOENT { 127 } else { 126 })
}

struct Runner<'a> {
    plan: &'a Prepared,
}

impl Runner<'_> {
    fn report(&self, step: Step, index: u16, errno: i32, fatal: bool) {
        let rec = StepRecord {
            step,
            fatal,
            index,
            errno,
        };
        // Nothing more can be done if the supervisor stopped listening.
        let _ = sys::write_all(self.plan.report_fd(), &rec.encode());
    }

    /// Runs one step; on failure reports it, and exits if the layer it serves
    /// is required. Returns whether the step succeeded.
    fn step(&mut self, step: Step, index: u16, f: impl FnOnce() -> Result<(), i32>) -> bool {
        match f() {
            Ok(()) => true,
            Err(errno) => {
                let fatal = self.plan.is_fatal(step.layer());
                self.report(step, index, errno, fatal);
                if fatal {
                    sys::exit(EXIT_SETUP_FAILED);
                }
                false
            }
        }
    }

    fn setup_fds(&mut self) {
        let plan = self.plan;
        self.step(Step::SetupFds, 0, || {
            for (src, dst) in &plan.handover {
                let src = src.as_raw_fd();
                if src == *dst {
                    // SAFETY: clearing close-on-exec on a descriptor we own.
                    sys::check(unsafe { libc::fcntl(src, libc::F_SETFD, 0) } as _)?;
                } else {
                    // SAFETY: dup2 on descriptors we own; dup2 clears close-on-exec.
                    sys::check(unsafe { libc::dup2(src, *dst) } as _)?;
                }
            }
            sys::close_all_except(&plan.keep_fds)
        });
    }

    fn namespaces(&mut self) {
        let plan = self.plan;
        let maps = plan.id_maps.as_ref().expect("checked by the caller");
        // SAFETY: unshare takes flags only; the process is single-threaded.
        let ok = self.step(Step::UserNamespace, 0, || {
            sys::check(unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) } as _)
                .map(drop)
        });
        if !ok {
            return;
        }
        let ok = self.step(Step::IdMaps, 0, || {
            // The supervisor is non-dumpable and we inherited that; it makes
            // /proc/self/* owned by root, so an unprivileged user could not
            // write its own maps. exec resets the flag anyway.
            sys::prctl(libc::PR_SET_DUMPABLE, 1)?;
            sys::write_file(b"/proc/self/setgroups\0", b"deny")?;
            sys::write_file(b"/proc/self/uid_map\0", &maps.uid_map)?;
            sys::write_file(b"/proc/self/gid_map\0", &maps.gid_map)
        });
        if !ok {
            return;
        }
        self.step(Step::Mounts, 0, || {
            // Nothing mounted here may propagate back to the host.
            sys::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                (libc::MS_REC | libc::MS_PRIVATE) as c_ulong,
            )
        });
        // Everything read-only, all the way down; the writable trees are
        // bound back read-write by the first mounts of the plan.
        self.step(Step::Mounts, 0, || {
            let attr = MountAttr {
                attr_set: sys::MOUNT_ATTR_RDONLY,
                attr_clr: 0,
                propagation: 0,
                userns_fd: 0,
            };
            sys::mount_setattr(c"/".as_ptr(), &attr, true)
        });
        for (i, m) in plan.mounts.iter().enumerate() {
            self.step(Step::Mounts, i as u16 + 1, || mount_one(m));
        }
        // The old working directory may sit beneath a path just covered.
        // SAFETY: cwd is NUL-terminated.
        self.step(Step::Chdir, 0, || {
            sys::check(unsafe { libc::chdir(plan.cwd.as_ptr()) } as _).map(drop)
        });
    }

    fn drop_capabilities(&mut self) {
        let plan = self.plan;
        if plan.drop_bounding {
            // Root keeps no special powers across exec, and cannot undo this.
            let bits = SECBIT_NOROOT
                | SECBIT_NOROOT_LOCKED
                | SECBIT_NO_SETUID_FIXUP
                | SECBIT_NO_SETUID_FIXUP_LOCKED
                | SECBIT_KEEP_CAPS_LOCKED
                | SECBIT_NO_CAP_AMBIENT_RAISE
                | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
            self.step(Step::SecureBits, 0, || {
                sys::prctl(libc::PR_SET_SECUREBITS, bits)
            });
            self.step(Step::BoundingSet, 0, || {
                for cap in 0..=plan.cap_last {
                    match sys::prctl(libc::PR_CAPBSET_DROP, cap as c_ulong) {
                        Ok(()) | Err(libc::EINVAL) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            });
        }
        self.step(Step::Ambient, 0, || {
            // SAFETY: integer arguments only.
            sys::check(unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL as c_ulong,
                    0 as c_ulong,
                    0 as c_ulong,
                    0 as c_ulong,
                )
            } as _)
            .map(drop)
        });
        self.step(Step::Capset, 0, sys::capset_clear);
    }
}

const SECBIT_NOROOT: c_ulong = 1 << 0;
const SECBIT_NOROOT_LOCKED: c_ulong = 1 << 1;
const SECBIT_NO_SETUID_FIXUP: c_ulong = 1 << 2;
const SECBIT_NO_SETUID_FIXUP_LOCKED: c_ulong = 1 << 3;
const SECBIT_KEEP_CAPS_LOCKED: c_ulong = 1 << 5;
const SECBIT_NO_CAP_AMBIENT_RAISE: c_ulong = 1 << 6;
const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: c_ulong = 1 << 7;

fn mount_one(m: &crate::plan::PreparedMount) -> Result<(), i32> {
    let bind = (libc::MS_BIND | libc::MS_REC) as c_ulong;
    sys::mount(m.source.as_ptr(), m.target.as_ptr(), std::ptr::null(), bind)?;
    let attr_set = match m.kind {
        MountKind::Pin => return Ok(()),
        MountKind::Writable => {
            // Only this mount: a submount the host keeps read-only is locked
            // that way, and stays so.
            let attr = MountAttr {
                attr_set: 0,
                attr_clr: sys::MOUNT_ATTR_RDONLY,
                propagation: 0,
                userns_fd: 0,
            };
            return sys::mount_setattr(m.target.as_ptr(), &attr, false);
        }
        MountKind::ReadOnly => sys::MOUNT_ATTR_RDONLY,
        MountKind::Deny { .. } => {
            sys::MOUNT_ATTR_RDONLY
                | sys::MOUNT_ATTR_NOEXEC
                | sys::MOUNT_ATTR_NOSUID
                | sys::MOUNT_ATTR_NODEV
        }
    };
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    sys::mount_setattr(m.target.as_ptr(), &attr, true)
}
