//! What every program needs from macOS beyond its files: the same in every
//! profile, whatever the policy. Each allowance says why it is there; what
//! is not here is denied by `(deny default)`.
//!
//! Deliberately left out: `mach-register` (publishing services), most Mach
//! services (preferences through cfprefsd, the pasteboard, Launch Services,
//! the keychain through securityd), `iokit-open`, `sysctl-write`, System V
//! IPC, POSIX shared memory and semaphores (a name space shared with every
//! process of the user, as `/dev/shm` is on Linux, where the built-in
//! policies leave it out), `process-info*` and `signal` beyond the sandbox,
//! `user-preference-read`, `nvram*`, and every `(extension ...)`.

use super::path::SbplPath;
use super::sbpl::{
    global_name, ipc_posix_name, literal, same_sandbox, subpath, sysctl_name, sysctl_name_prefix,
    Rule, Section,
};

/// Kernel settings read through `sysctl`: hardware (CPU count and features,
/// memory and page size), the OS name and version, `uname(3)`, limits.
const SYSCTL_NAMES: [&str; 14] = [
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
    "kern.usrstack64",
    "kern.version",
    "sysctl.proc_cputype",
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

/// The baseline sections, in profile order.
pub fn sections() -> Vec<Section> {
    let fixed = |p: &str| SbplPath::new(std::path::Path::new(p)).expect("fixed path");
    let mut dyld: Vec<String> = vec![literal(&fixed("/usr/lib/dyld"))];
    dyld.extend(DYLD.map(|p| subpath(&fixed(p))));
    let mut sysctls: Vec<String> = SYSCTL_PREFIXES.map(sysctl_name_prefix).to_vec();
    sysctls.extend(SYSCTL_NAMES.map(sysctl_name));
    vec![
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
                "sysctl: read only, and only hardware, CPU and OS-version names (thread",
                "pool sizes, uname(3), CPU feature checks). No process table, no writes.",
            ],
            vec![Rule::allow(&["sysctl-read"], sysctls)],
        ),
        Section::new(
            &[
                "Mach services libSystem itself calls: notify(3) (time zone and",
                "configuration change notices), user and group names for getpwuid(3)",
                "and getgrgid(3) (ls -l, git, shells), and logging (os_log, asl).",
                "Nothing that publishes, stores or hands out data beyond that.",
            ],
            vec![Rule::allow(
                &["mach-lookup"],
                [
                    "com.apple.system.notification_center",
                    "com.apple.system.opendirectoryd.libinfo",
                    "com.apple.system.opendirectoryd.membership",
                    "com.apple.system.logger",
                    "com.apple.logd",
                ]
                .map(global_name)
                .to_vec(),
            )],
        ),
        Section::new(
            &["notify(3) reads its state from this shared memory; read only."],
            vec![Rule::allow(
                &["ipc-posix-shm-read-data"],
                vec![ipc_posix_name("apple.shm.notification_center")],
            )],
        ),
    ]
}
