//! The child side of the launch: from fork to exec, raw system calls only.
//!
//! Order matters and follows the threat: descriptors are closed first so the
//! program inherits nothing it was not given; the namespace and mounts need
//! capabilities, so they come before capabilities are dropped; no_new_privs
//! comes before seccomp (which requires it without CAP_SYS_ADMIN); Landlock and
//! seccomp come last so that the steps before them are not restricted.

use std::os::fd::AsRawFd;
use std::os::raw::c_ulong;

use crate::connector::Filter;
use crate::mounts::MountKind;
use crate::plan::Prepared;
use crate::report::{Step, StepRecord};
use crate::seccomp;
use crate::sys::{self, MountAttr};
use crate::view::{PreparedMount, RootEntry};

mod mount_steps;
#[cfg(feature = "warm-spike")]
mod warm_spike;
use mount_steps::{
    draw_veil, make_entry, make_private, mount_one, mount_overlay, mount_proc, mount_shm,
    pivot_into, seal, writable_again,
};

/// The exit code of a child that could not set up its sandbox.
pub const EXIT_SETUP_FAILED: i32 = 125;

/// Clones the child into new user, mount, PID and IPC namespaces (and, under
/// `[network] mode = "none"`, an empty network namespace: [`net_flag`]): it
/// is pid 1 there, the sandbox's init (`init.rs`), and runs the child
/// sequence. The IPC namespace ([`SANDBOX_IPC`]) keeps the host's System V
/// objects and POSIX message queues out of reach.
/// Returns its pid, or the errno of `clone` (nothing was started).
///
/// # Safety
/// The calling process must be single-threaded (a user namespace requires
/// it, and the child runs raw system calls only), with `plan` prepared.
pub unsafe fn clone_child(plan: &Prepared) -> Result<libc::pid_t, i32> {
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | SANDBOX_IPC
        | net_flag(plan)
        | libc::SIGCHLD;
    // SAFETY: a fork-like clone (no new stack, no shared memory): the child
    // continues on a copy of this stack, as after fork().
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags as c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match pid {
        // SAFETY: in the child right after clone, single-threaded.
        0 => unsafe { exec_child(plan, true) },
        p if p < 0 => Err(sys::errno()),
        p => Ok(p as libc::pid_t),
    }
}

/// A System V IPC namespace of the sandbox's own: shared memory segments,
/// message queues and semaphore sets are found by a number or key, never by a
/// path Landlock could check, and POSIX message queues (`mq_open`) live in
/// the IPC namespace's internal mount, which Landlock lets through. In the
/// host's, the program could read, write and remove every object of the
/// person's (of root's, for a session run by root) that their modes let the
/// same user reach (`ipcrm -m ID`). Owned by the new user namespace, so
/// making it needs no privilege beyond that namespace's.
const SANDBOX_IPC: libc::c_int = libc::CLONE_NEWIPC;

/// `CLONE_NEWNET` where the plan asks for an empty network namespace
/// (`Prepared::empty_network`), made with the others, owned by the new user
/// namespace.
fn net_flag(plan: &Prepared) -> libc::c_int {
    match plan.empty_network {
        true => libc::CLONE_NEWNET,
        false => 0,
    }
}

/// The bounds of that namespace, written by the child that owns it: System V
/// shared memory and queues are memory no process holds, so neither
/// `[limits]` nor the OOM killer frees them while the session runs (as the
/// session's `/dev/shm`, whose size they follow). `shmall` is in pages: 256
/// MiB with 4 KiB pages; `msgmni` queues of 16 KiB (`msgmnb`) each; `sem`:
/// per set, in all, per call, sets. A kernel without System V IPC has none
/// of the files, and nothing to bound. Root sessions only: the kernel lets
/// only the namespace's root uid write them.
const IPC_LIMITS: [(&[u8], &[u8]); 3] = [
    (b"/proc/sys/kernel/shmall\0", b"65536"),
    (b"/proc/sys/kernel/msgmni\0", b"256"),
    (b"/proc/sys/kernel/sem\0", b"32000 65536 500 256"),
];

/// The person's per-user inotify limits (the host's), against which the
/// kernel charges the sandbox's instances and watches too, each with the
/// same limit of the sandbox's user namespace, set to half of it: the
/// program took every instance of the person's (of root's, for a session
/// run by root), and their editors', file watchers' and daemons'
/// `inotify_init` failed while the session ran. The child, holding every
/// capability in that namespace, may write them.
const INOTIFY_LIMITS: [(&[u8], &[u8]); 2] = [
    (
        b"/proc/sys/fs/inotify/max_user_instances\0",
        b"/proc/sys/user/max_inotify_instances\0",
    ),
    (
        b"/proc/sys/fs/inotify/max_user_watches\0",
        b"/proc/sys/user/max_inotify_watches\0",
    ),
];

/// Forks the child in the supervisor's PID namespace (where one cannot be
/// made), which runs the child sequence. Returns its pid, or fork's errno.
///
/// # Safety
/// As [`clone_child`].
pub unsafe fn fork_child(plan: &Prepared) -> Result<libc::pid_t, i32> {
    // SAFETY: single-threaded (the caller's promise); the child runs only
    // the prepared plan's raw system calls.
    match unsafe { libc::fork() } {
        // SAFETY: in the child right after fork, single-threaded.
        0 => unsafe { exec_child(plan, false) },
        p if p < 0 => Err(sys::errno()),
        p => Ok(p),
    }
}

/// Runs the child sequence and execs the program. Never returns.
/// `cloned`: made by [`clone_child`], in new user, mount and PID
/// namespaces; the child then stays as the namespace's init and forks the
/// program at the end.
///
/// # Safety
/// Must be called in the child right after `fork()` or `clone()`, in a
/// single-threaded process, with `plan` prepared before.
unsafe fn exec_child(plan: &Prepared, cloned: bool) -> ! {
    let mut run = Runner {
        plan,
        shm_mounted: false,
        layers: None,
    };
    run.setup_fds();
    match &plan.terminal {
        // Before anything else: from here on the child holds no descriptor
        // of the person's terminal, only its own pty. Under an init the
        // program takes it (it leads the terminal's session, as without).
        Some(t) if !cloned => {
            run.step(Step::Terminal, 0, || {
                sys::take_terminal(t.slave.as_raw_fd(), t.stderr)
            });
        }
        _ => {}
    }
    run.step(Step::DeathSignal, 0, || {
        sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as c_ulong)?;
        // The supervisor may have died before the line above: then nothing
        // reads the launch pipe any more. (getppid cannot tell in a PID
        // namespace: the parent outside it is pid 0 there.)
        match sys::has_reader(plan.report_fd()) {
            true => Ok(()),
            false => Err(libc::ESRCH),
        }
    });
    run.step(Step::Signals, 0, sys::reset_signals);
    if let Some(fd) = &plan.cgroup_procs {
        run.step(Step::Cgroup, 0, || sys::write_all(fd.as_raw_fd(), b"0"));
    }
    if let Some(pid_max) = &plan.pid_max {
        // The sysctl is the writer's PID namespace's, whichever /proc it
        // is reached through; the child holds CAP_SYS_ADMIN over it until
        // it drops its capabilities, the program never does. Every process
        // of the namespace (and of any nested in it) has a pid below it.
        // Outside a PID namespace of its own, it would be the host's.
        run.step(Step::PidMax, 0, || match cloned {
            true => sys::write_file(b"/proc/sys/kernel/pid_max\0", pid_max),
            false => Err(libc::EOPNOTSUPP),
        });
    }
    let in_new_userns = plan.id_maps.is_some() && run.namespaces(cloned);
    if !plan.net_listen.is_empty() {
        // With the user namespace's capabilities, before they are dropped;
        // the sockets go before the root, on the same socket.
        run.step(Step::NetNamespace, 0, || {
            crate::netns::private_network(&plan.net_listen, plan.root_socket.as_raw_fd())
        });
    }
    // The view is built (or, stacked, is the enclosing sandbox's): the
    // broker serves directories from it.
    let layers = run.layers.take();
    run.step(Step::RootHandOver, 0, || {
        hand_over_root(plan.root_socket.as_raw_fd(), layers)
    });
    run.drop_capabilities(in_new_userns);
    run.step(Step::NoNewPrivs, 0, || {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1)
    });
    for (i, &(resource, value)) in plan.rlimits.iter().enumerate() {
        run.step(Step::Rlimit, i as u16, || sys::setrlimit(resource, value));
    }
    if let Some(fd) = &plan.landlock {
        if cloned {
            // Landlock rules attach to inodes: those for /proc were made
            // on the host's, and the new /proc has its own.
            for (i, (path, access)) in plan.proc_rules.iter().enumerate() {
                run.step(Step::Proc, i as u16 + 1, || {
                    match sys::landlock_add_path_rule(fd.as_raw_fd(), path, *access) {
                        // A path of the host's /proc that this one lacks
                        // (`/proc/self` was resolved to sluice's pid): the
                        // rule would grant nothing here.
                        Err(libc::ENOENT) => Ok(()),
                        other => other,
                    }
                });
            }
        }
        if let (Some(access), true) = (plan.shm, run.shm_mounted) {
            run.step(Step::Landlock, 1, || {
                sys::landlock_add_path_rule(fd.as_raw_fd(), c"/dev/shm", access)
            });
        }
        run.step(Step::Landlock, 0, || {
            sys::landlock_restrict_self(fd.as_raw_fd())
        });
    }
    let deny = plan.seccomp.as_fprog();
    if cloned {
        // Before the notify filter, which hands fork to a supervisor that
        // is not serving yet.
        run.become_init(&deny);
    }
    run.connector(Filter::Install(&deny), false);
    run.exec_program(&deny)
}

struct Runner<'a> {
    plan: &'a Prepared,
    /// The session's own /dev/shm is mounted: only then is the Landlock
    /// rule for it added (on the host's it would grant the host's).
    shm_mounted: bool,
    /// The tmpfs of the bytecode cache's layers, under its overlay
    /// (`view::SessionOverlay`): handed over with the root.
    layers: Option<libc::c_int>,
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

    /// The program's last steps: its one seccomp filter (with a notify
    /// part, whose listener is handed over, or the deny filter alone),
    /// `execve`. Never returns.
    fn exec_program(&mut self, deny: &libc::sock_fprog) -> ! {
        let plan = self.plan;
        match &plan.notify {
            // The deny filter and the notifying one in one program, the last
            // filter installed: see `listener`.
            Some(notify) => {
                let fprog = notify.program.as_fprog();
                self.step(Step::Transparent, 0, || {
                    crate::listener::install_and_hand_over(&fprog, notify.socket.as_raw_fd())
                });
            }
            None => {
                self.step(Step::Seccomp, 0, || seccomp::install(deny, 0));
            }
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
        self.report(Step::Exec, 0, errno, true);
        sys::exit(if errno == libc::ENOENT { 127 } else { 126 })
    }

    /// Under transparent brokering or the guard, forks the connector: in
    /// the program's Landlock domain and under the deny filter, but not
    /// notified (see `connector`). `under_init`: the caller is the init,
    /// which has started the program.
    fn connector(&mut self, filter: Filter, under_init: bool) {
        let plan = self.plan;
        if let Some(notify) = &plan.notify {
            let under_init = under_init.then(|| plan.report_fd());
            self.step(Step::Connector, 0, || {
                crate::connector::spawn(notify.socket.as_raw_fd(), filter, under_init)
            });
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

    /// Starts the program, which goes on to its last steps and exec, and
    /// stays as the PID namespace's init ([`crate::init`]) under the deny
    /// filter `deny`. Never returns: the program execs, init loops. Where
    /// the program cannot be started (and the init step is best effort),
    /// this process becomes the program instead.
    fn become_init(&mut self, deny: &libc::sock_fprog) -> ! {
        let mut signals = crate::init::Signals::empty();
        self.step(Step::Init, 0, || {
            // Its memory is a copy of the supervisor's: not the program's
            // to read (the id maps step made it dumpable).
            sys::prctl(libc::PR_SET_DUMPABLE, 0)?;
            signals = crate::init::Signals::block()?;
            Ok(())
        });
        #[cfg(feature = "warm-spike")]
        if let Some(listen) = warm_spike::listening_fd() {
            self.connector(Filter::Install(deny), true);
            warm_spike::serve(self, &signals, deny, listen)
        }
        let mut start = ProgramStart {
            run: self,
            signals: &signals,
            deny,
        };
        match spawn_program(&mut start) {
            Ok(program) => {
                let run = start.run;
                // After the program's start, so that the program carries
                // one filter; before the connector's, which inherits it
                // (one compile of the deny filter less). A filter the init
                // could not install, the connector installs itself.
                let filter = match run.step(Step::Seccomp, 0, || seccomp::install(deny, 0)) {
                    true => Filter::Inherited,
                    false => Filter::Install(deny),
                };
                run.connector(filter, true);
                crate::init::run(program, &signals)
            }
            Err(errno) => {
                let run = start.run;
                run.step(Step::Init, 0, || Err(errno));
                // This process becomes the program; its connector is
                // forked as before the change of order (pid 1 would take
                // it back from a double fork anyway).
                run.connector(Filter::Install(deny), true);
                run.program_side(&signals);
                run.exec_program(deny)
            }
        }
    }

    /// The program's first steps of its own, under an init: it unblocks
    /// what init blocked, names itself to the supervisor and takes its
    /// terminal.
    fn program_side(&mut self, signals: &crate::init::Signals) {
        let plan = self.plan;
        // The program: what init blocked is its own to decide.
        self.step(Step::Init, 0, || signals.unblock());
        // Named to the supervisor by its pid there: the host's /proc, opened
        // before the clone, resolves `self` in the supervisor's namespace.
        // Nothing more can be done if the supervisor stopped listening.
        if let Some(pid) = sys::pid_in(plan.host_proc.as_raw_fd()) {
            let _ = sys::write_all(plan.report_fd(), &StepRecord::program(pid).encode());
        }
        if let Some(t) = &plan.terminal {
            self.step(Step::Terminal, 0, || {
                sys::take_terminal(t.slave.as_raw_fd(), t.stderr)
            });
        }
    }

    /// Without the mount namespace no session copy is bound: the program
    /// would write the host's files themselves, so the launch stops.
    fn session_copies_lost(&mut self) {
        let plan = self.plan;
        if plan.mounts.iter().any(|m| m.kind == MountKind::SessionCopy) {
            self.step(Step::SessionCopy, 0, || Err(libc::EPERM));
        }
    }

    /// Returns whether the user namespace was entered (the process then
    /// holds every capability in it, to be dropped). `cloned`: it was,
    /// with the mount and PID namespaces, by [`clone_child`].
    fn namespaces(&mut self, cloned: bool) -> bool {
        let plan = self.plan;
        let maps = plan.id_maps.as_ref().expect("checked by the caller");
        let ok = cloned
            || self.step(Step::UserNamespace, 0, || {
                // SAFETY: unshare takes flags only; the process is single-threaded.
                let rc = unsafe {
                    libc::unshare(
                        libc::CLONE_NEWUSER | libc::CLONE_NEWNS | SANDBOX_IPC | net_flag(plan),
                    )
                };
                sys::check(rc as _).map(drop)
            });
        if !ok {
            self.session_copies_lost();
            return false;
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
            self.session_copies_lost();
            return true;
        }
        // The sysctls are the writer's IPC namespace's, which the user
        // namespace owns: the host's are not touched.
        for (i, (person, own)) in INOTIFY_LIMITS.iter().enumerate() {
            self.step(Step::NamespaceLimits, (IPC_LIMITS.len() + i) as u16, || {
                // A kernel without inotify has neither file: nothing to bound.
                let half = match sys::read_decimal(person) {
                    Err(libc::ENOENT) => return Ok(()),
                    value => value? / 2,
                };
                sys::write_file(own, sys::decimal(half, &mut [0; 20]))
            });
        }
        for (i, (path, value)) in IPC_LIMITS.iter().enumerate() {
            self.step(Step::NamespaceLimits, i as u16, || {
                match sys::write_file(path, value) {
                    Err(libc::ENOENT) => Ok(()),
                    // Only the namespace's root uid may write them, and an
                    // unprivileged user keeps its own uid inside: left at
                    // the kernel's defaults there.
                    // SAFETY: geteuid has no preconditions.
                    Err(libc::EACCES) if unsafe { libc::geteuid() } != 0 => Ok(()),
                    done => done,
                }
            });
        }
        let private = self.step(Step::Mounts, 0, || {
            // Nothing mounted here may propagate back to the host.
            sys::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                (libc::MS_REC | libc::MS_PRIVATE) as c_ulong,
            )
        });
        // Python's bytecode cache, before everything is made read-only:
        // its upper layer's file system (a tmpfs of its own) must be
        // writable when it is mounted. Not a protection: where it fails
        // the program has the plain directory, a cache of its own
        // (`view::SessionOverlay`).
        if let (Some(overlay), true) = (&plan.overlay, private) {
            self.layers = mount_overlay(overlay).ok();
        }
        let overlaid = self.layers.is_some();
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
        if cloned {
            // Before the protective mounts, so that those within /proc land
            // on this one, and before the root, which binds it.
            self.step(Step::Proc, 0, mount_proc);
        }
        // The deny placeholders last, once the session's directory is
        // covered by the tmpfs that holds them: its `tmp/` is cloned with
        // the flags the other mounts gave it. A deny mount lands on top of
        // whatever is at its path, so its place in the order changes nothing
        // the program sees.
        let deny = |m: &&PreparedMount| matches!(m.kind, MountKind::Deny { .. });
        let indexed = || plan.mounts.iter().enumerate();
        for (i, m) in indexed().filter(|(_, m)| !deny(m)) {
            let step = match m.kind {
                MountKind::SessionCopy => Step::SessionCopy,
                _ => Step::Mounts,
            };
            self.step(step, i as u16 + 1, || mount_one(m));
        }
        // Made writable again once the writable trees were bound back
        // (the bind of the TMPDIR carries it, read-only).
        if let (Some(overlay), true) = (&plan.overlay, overlaid) {
            let _ = writable_again(overlay);
        }
        // A failure here fails every deny mount too (no placeholder), each
        // reported with its own path.
        self.step(Step::Mounts, 0, || make_private(&plan.private));
        for (i, m) in indexed().filter(|(_, m)| deny(m)) {
            self.step(Step::Mounts, i as u16 + 1, || mount_one(m));
        }
        if let Some(veil) = &plan.veil {
            let index = plan.mounts.len() as u16 + 1;
            self.step(Step::Mounts, index, || draw_veil(veil));
        }
        if plan.shm.is_some() {
            let index = plan.mounts.len() as u16 + 2;
            self.shm_mounted = self.step(Step::Mounts, index, mount_shm);
        }
        self.build_root();
        // The old working directory may sit beneath a path just covered.
        self.step(Step::Chdir, 0, || {
            // SAFETY: cwd is NUL-terminated.
            sys::check(unsafe { libc::chdir(plan.cwd.as_ptr()) } as _).map(drop)
        });
        true
    }

    /// Fills a tmpfs with the policy's trees and makes it the root
    /// ([`crate::root`]). Every step is fatal to the root: a half-built one
    /// is never entered.
    fn build_root(&mut self) {
        let Some(root) = &self.plan.root else {
            return;
        };
        let ok = self.step(Step::Root, 0, || {
            sys::mount(
                c"tmpfs".as_ptr(),
                root.dir.as_ptr(),
                c"tmpfs".as_ptr(),
                (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as c_ulong,
            )
        });
        // Unbindable: a tree bound into the root below (`/tmp`, say, which
        // holds the mount point) brings an empty directory, not the root
        // itself again.
        let ok = ok
            && self.step(Step::Root, 0, || {
                sys::mount(
                    std::ptr::null(),
                    root.dir.as_ptr(),
                    std::ptr::null(),
                    libc::MS_UNBINDABLE as c_ulong,
                )
            });
        if !ok {
            return;
        }
        let mut sealed = false;
        for (i, entry) in root.entries.iter().enumerate() {
            let index = i as u16 + 1;
            if !sealed && matches!(entry, RootEntry::Bind { .. } | RootEntry::StandIn { .. }) {
                // The skeleton itself is read-only; the binds bring their
                // own mounts (and flags).
                if !self.step(Step::Root, index, || seal(&root.dir)) {
                    return;
                }
                sealed = true;
            }
            if !self.step(Step::Root, index, || make_entry(entry)) {
                return;
            }
        }
        if !sealed && !self.step(Step::Root, 0, || seal(&root.dir)) {
            return;
        }
        self.step(Step::Root, 0, || pivot_into(&root.dir));
    }

    /// `in_new_userns`: the namespace step entered a new user namespace.
    /// Without it (inside another sandbox that forbids namespaces) only
    /// capabilities actually held need dropping: securebits and the
    /// bounding set cannot be changed without CAP_SETPCAP, and the outer
    /// sandbox already locked and emptied them.
    fn drop_capabilities(&mut self, in_new_userns: bool) {
        let plan = self.plan;
        if plan.drop_bounding && (in_new_userns || plan.caps_held) {
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

/// Sends an `O_PATH` descriptor of this process's root over `socket`, with
/// the bytecode cache's `layers` when they were mounted, then closes them
/// all: the connector forked later must not hold the socket, and the
/// program never holds any (the socket is close-on-exec too).
fn hand_over_root(socket: libc::c_int, layers: Option<libc::c_int>) -> Result<(), i32> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: "/" is NUL-terminated; open returns a new descriptor or -1.
    let root = sys::check(unsafe { libc::open(c"/".as_ptr(), flags) } as _);
    let sent = match (root, layers) {
        (Ok(root), Some(layers)) => sys::send_fds(socket, b"R", &[root as _, layers]),
        (Ok(root), None) => sys::send_fds(socket, b"R", &[root as _]),
        (Err(e), _) => Err(e),
    };
    // SAFETY: closing the descriptors opened here and by the mount steps,
    // and the socket, which the plan owns but nothing uses after this step
    // (the child execs or exits).
    unsafe {
        if let Ok(root) = root {
            libc::close(root as _);
        }
        if let Some(layers) = layers {
            libc::close(layers);
        }
        libc::close(socket);
    }
    sent
}

/// What the program's side of [`spawn_program`] runs with: the init's
/// runner, the signals it blocked and the deny filter.
struct ProgramStart<'a, 'p> {
    run: &'a mut Runner<'p>,
    signals: &'a crate::init::Signals,
    deny: &'a libc::sock_fprog,
}

/// The program's stack while it shares the init's memory, up to its
/// `execve` (a guard page below it).
const PROGRAM_STACK: usize = 256 * 1024;

/// Starts the program as `posix_spawn` does: `clone(CLONE_VM |
/// CLONE_VFORK)` on a stack of its own, running [`program_entry`]. The
/// init is suspended until the program has exec'd (or exited): its memory,
/// a copy of the supervisor's, is neither copied again for the program
/// (page tables, descriptors of every mapping) nor torn down at its
/// `execve`. Returns the program's pid.
fn spawn_program(start: &mut ProgramStart) -> Result<libc::pid_t, i32> {
    // SAFETY: `program_entry` takes the `ProgramStart` given here, which
    // outlives the call (see `spawn_on_own_stack`).
    unsafe { spawn_on_own_stack(program_entry, (start as *mut ProgramStart).cast()) }
}

/// `clone(CLONE_VM | CLONE_VFORK)` running `entry(arg)` on a stack of its
/// own (a guard page below it), unmapped once the new process has exec'd
/// or exited. Returns its pid.
///
/// # Safety
/// `entry` must run raw system calls only and end in `execve` or `exit`;
/// `arg` must be what `entry` expects, alive until this returns.
unsafe fn spawn_on_own_stack(
    entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    arg: *mut libc::c_void,
) -> Result<libc::pid_t, i32> {
    let page = 4096;
    let len = PROGRAM_STACK + page;
    // SAFETY: a new private anonymous mapping; nothing else refers to it.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(sys::errno());
    }
    // SAFETY: the lowest page of the mapping just made: an overflow faults
    // instead of writing below it.
    let guarded = unsafe { libc::mprotect(stack, page, libc::PROT_NONE) };
    let pid = match guarded {
        0 => {
            // SAFETY: the stack is ours and grows down from its end (x86_64
            // and aarch64); `arg` outlives the call, since CLONE_VFORK
            // returns only once the program has exec'd or exited, and the
            // program runs raw system calls only, on its own stack, writing
            // nothing the init reads but through `arg` (the caller's promise).
            unsafe {
                libc::clone(
                    entry,
                    stack.cast::<u8>().add(len).cast(),
                    libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                    arg,
                )
            }
        }
        _ => -1,
    };
    let errno = sys::errno();
    // SAFETY: the mapping made above; the program has exec'd or exited,
    // and no longer runs on it.
    unsafe { libc::munmap(stack, len) };
    match pid {
        p if p > 0 => Ok(p),
        _ => Err(errno),
    }
}

/// The program's side of [`spawn_program`]: its own first steps, then its
/// last and `execve`. Never returns.
extern "C" fn program_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ProgramStart` that `spawn_program` was given,
    // alive and untouched by the init, which is suspended until this
    // process execs or exits.
    let start = unsafe { &mut *arg.cast::<ProgramStart>() };
    start.run.program_side(start.signals);
    start.run.exec_program(start.deny)
}

const SECBIT_NOROOT: c_ulong = 1 << 0;
const SECBIT_NOROOT_LOCKED: c_ulong = 1 << 1;
const SECBIT_NO_SETUID_FIXUP: c_ulong = 1 << 2;
const SECBIT_NO_SETUID_FIXUP_LOCKED: c_ulong = 1 << 3;
const SECBIT_KEEP_CAPS_LOCKED: c_ulong = 1 << 5;
const SECBIT_NO_CAP_AMBIENT_RAISE: c_ulong = 1 << 6;
const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: c_ulong = 1 << 7;
