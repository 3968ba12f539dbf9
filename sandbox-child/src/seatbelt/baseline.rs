//! What every program needs from macOS beyond its files: the same in every
//! profile, whatever the policy. Each allowance says why it is there; what
//! is not here is denied by `(deny default)`.
//!
//! Seatbelt's prelude allows `process-info*`, `iokit-get-properties` and
//! `nvram*` even under `(deny default)`, so the baseline denies them first
//! and then allows the narrow forms (process information within the
//! sandbox; nothing of IOKit's registry or NVRAM).
//!
//! Deliberately left out: `mach-register` (publishing services), most Mach
//! services (the pasteboard, Launch Services, the keychain through
//! securityd), `iokit-open`, `iokit-get-properties` (hardware is read
//! through sysctl), `sysctl-write`, System V IPC, POSIX shared memory (a
//! name space shared with every process of the user, as `/dev/shm` is on
//! Linux, where the built-in policies leave it out), `process-info*` and
//! `signal` beyond the sandbox, `user-preference-read`, `nvram*`,
//! `pseudo-tty` (a new pty's terminal, `/dev/ttysNNN`, can only be named by
//! a pattern that would also open every other terminal of the user to
//! reading), and every `(extension ...)`.

use super::path::SbplPath;
use super::sbpl::{
    global_name, ipc_posix_name, link_literal, literal, same_sandbox, subpath, sysctl_name,
    sysctl_name_prefix, Rule, Section,
};

/// Kernel settings read through `sysctl`: hardware (CPU count and features,
/// memory and page size), the OS name and version, `uname(3)`, limits, and
/// what libSystem reads at start-up (`kern.osvariant_status`,
/// `kern.secure_kernel`), whether the process runs translated by Rosetta
/// (`sysctl.proc_translated`, asked by Go, Python and others) or in a
/// virtual machine (`kern.hv_vmm_present`).
const SYSCTL_NAMES: [&str; 18] = [
    "kern.argmax",
    "kern.boottime",
    "kern.hostname",
    "kern.maxfiles",
    "kern.maxfilesperproc",
    "kern.maxproc",
    "kern.ngroups",
    "kern.osproductversion",
    "kern.osrelease",
    "kern.ostype",
    "kern.osversion",
    "kern.osvariant_status",
    "kern.secure_kernel",
    "kern.hv_vmm_present",
    "kern.usrstack64",
    "kern.version",
    "sysctl.proc_cputype",
    "sysctl.proc_translated",
];

/// The Mach services libSystem and the runtimes call at start-up, each for
/// a reason (see the comment written with them).
const MACH_SERVICES: [&str; 9] = [
    // notify(3): time zone and configuration change notices.
    "com.apple.system.notification_center",
    // getpwuid(3), getgrgid(3), group membership: ls -l, git, shells.
    "com.apple.system.opendirectoryd.libinfo",
    "com.apple.system.opendirectoryd.membership",
    // Logging: asl, os_log and its diagnostics.
    "com.apple.system.logger",
    "com.apple.logd",
    "com.apple.diagnosticd",
    // confstr(_CS_DARWIN_USER_TEMP_DIR) and _CACHE_DIR create the per-user
    // directories through dirhelper on first use.
    "com.apple.bsd.dirhelper",
    // CFPreferences (Foundation, the Xcode shims, Python's platform module):
    // the user's and the system's defaults, read through cfprefsd.
    "com.apple.cfprefsd.daemon",
    "com.apple.cfprefsd.agent",
];

/// The Xcode shims: `/usr/bin/git`, `cc`, `make`, `python3` and the like
/// are stubs that read the selected developer directory through this link
/// and exec the real tool under it.
const XCODE_LINK: &str = "/private/var/db/xcode_select_link";
const DEVELOPER_DIRS: [&str; 2] = [
    "/Library/Developer/CommandLineTools",
    "/Applications/Xcode.app/Contents/Developer",
];

/// `hw.` (ncpu, memsize, pagesize, machine, cache sizes, `hw.optional.*`
/// CPU features) and `machdep.cpu.` (brand string, features): what runtimes
/// read to size thread pools and pick code paths.
const SYSCTL_PREFIXES: [&str; 2] = ["hw.", "machdep.cpu."];

/// Where dyld and the shared cache of system libraries live (macOS 11 and
/// 12, then macOS 13 and later with the cryptex). Every program maps them
/// before `main`; nothing runs without them.
const DYLD: [&str; 3] = [
    "/System/Library/dyld",
    "/System/Volumes/Preboot/Cryptexes/OS/System/Library/dyld",
    "/System/Cryptexes/OS/System/Library/dyld",
];

/// What Seatbelt's prelude allows under `(deny default)` and the baseline
/// takes back first; the narrow forms are allowed after it.
pub const PRELUDE_DENIED: &[&str] = &["process-info*", "iokit-get-properties", "nvram*"];

/// The baseline sections, in profile order.
pub fn sections() -> Vec<Section> {
    let fixed = |p: &str| SbplPath::new(std::path::Path::new(p)).expect("fixed path");
    let mut dyld: Vec<String> = vec![literal(&fixed("/usr/lib/dyld"))];
    dyld.extend(DYLD.map(|p| subpath(&fixed(p))));
    let mut sysctls: Vec<String> = SYSCTL_PREFIXES.map(sysctl_name_prefix).to_vec();
    sysctls.extend(SYSCTL_NAMES.map(sysctl_name));
    let developer: Vec<String> = DEVELOPER_DIRS.map(|p| subpath(&fixed(p))).to_vec();
    vec![
        Section::new(
            &[
                "Taken back first: Seatbelt's prelude allows process information, IOKit",
                "registry properties and NVRAM even under (deny default). The narrow",
                "forms needed are allowed below.",
            ],
            vec![Rule::deny(PRELUDE_DENIED, vec![])],
        ),
        Section::new(
            &[
                "Processes: shells, build tools and test runners start other programs.",
                "Which programs may run is decided by process-exec* per path below.",
            ],
            vec![Rule::allow(&["process-fork"], vec![])],
        ),
        Section::new(
            &[
                "Signals and process information only within this sandbox (its own",
                "processes and their children): like Landlock's signal scope on Linux,",
                "the program cannot signal or inspect anything it did not start.",
            ],
            vec![
                Rule::allow(&["signal"], vec![same_sandbox()]),
                Rule::allow(&["process-info*"], vec![same_sandbox()]),
            ],
        ),
        Section::new(
            &[
                "The dynamic loader and the shared cache of system libraries, read and",
                "mapped executable by every program before main(). A policy deny below",
                "still wins over this.",
            ],
            vec![Rule::allow(&["file-read*", "file-map-executable"], dyld)],
        ),
        Section::new(
            &[
                "System resources every program may read: /System/Library (frameworks'",
                "resources, locale and character set data), the time zone database and",
                "the selected time zone.",
            ],
            vec![Rule::allow(
                &["file-read*"],
                vec![
                    subpath(&fixed("/System/Library")),
                    subpath(&fixed("/private/var/db/timezone")),
                    literal(&fixed("/private/etc/localtime")),
                ],
            )],
        ),
        Section::new(
            &[
                "The /etc, /tmp and /var links into /private: their metadata (lstat,",
                "readlink) for path lookups and realpath(3); the link, not its target.",
            ],
            vec![Rule::allow(
                &["file-read-metadata"],
                ["/etc", "/tmp", "/var"].map(link_literal).to_vec(),
            )],
        ),
        Section::new(
            &[
                "The process's own descriptors by name (/dev/fd/N, /dev/stdin, ...): they",
                "reach only what the process already holds open.",
            ],
            vec![Rule::allow(
                &["file-read*", "file-write*"],
                vec![
                    subpath(&fixed("/dev/fd")),
                    literal(&fixed("/dev/stdin")),
                    literal(&fixed("/dev/stdout")),
                    literal(&fixed("/dev/stderr")),
                ],
            )],
        ),
        Section::new(
            &[
                "The Xcode shims behind /usr/bin/git, cc, make, python3: the selected",
                "developer directory's link (read), and the tools under it (read, run,",
                "map). A policy deny below still wins over this.",
            ],
            vec![
                Rule::allow(&["file-read*"], vec![literal(&fixed(XCODE_LINK))]),
                Rule::allow(
                    &["file-read*", "process-exec*", "file-map-executable"],
                    developer,
                ),
            ],
        ),
        Section::new(
            &[
                "sysctl: read only, and only hardware, CPU and OS-version names (thread",
                "pool sizes, uname(3), CPU feature checks) and the few libSystem reads",
                "at start-up. No process table, no writes.",
            ],
            vec![Rule::allow(&["sysctl-read"], sysctls)],
        ),
        Section::new(
            &[
                "Host statistics through Mach (host_info, host_statistics: CPU count and",
                "load, memory pressure). Setting host ports needs the host privilege",
                "port, which no user process holds.",
            ],
            vec![Rule::allow(&["mach-host*"], vec![])],
        ),
        Section::new(
            &[
                "Mach services libSystem itself calls: notify(3), user and group names",
                "(getpwuid(3), getgrgid(3)), logging (asl, os_log), the per-user",
                "directories (dirhelper) and preferences (cfprefsd). Nothing that",
                "publishes, hands out secrets or reaches other programs beyond that.",
            ],
            vec![Rule::allow(
                &["mach-lookup"],
                MACH_SERVICES.map(global_name).to_vec(),
            )],
        ),
        Section::new(
            &["notify(3) reads its state from this shared memory; read only."],
            vec![Rule::allow(
                &["ipc-posix-shm-read-data"],
                vec![ipc_posix_name("apple.shm.notification_center")],
            )],
        ),
        Section::new(
            &[
                "POSIX named semaphores (Python's multiprocessing, sem_open(3)): counters",
                "only, no data; their names are shared with the user's other processes.",
            ],
            vec![Rule::allow(&["ipc-posix-sem"], vec![])],
        ),
        Section::new(
            &[
                "sluice's marker: a Mach service name no program publishes, which only",
                "sluice's profiles let a process look up (and never its decoy). A sluice",
                "started inside asks the kernel (sandbox_check) to tell its own sandbox",
                "from another; looking it up reaches nothing.",
            ],
            vec![Rule::allow(
                &["mach-lookup"],
                vec![global_name(crate::nesting::SEATBELT_MARKER)],
            )],
        ),
    ]
}
