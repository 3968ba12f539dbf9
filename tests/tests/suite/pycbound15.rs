//! The memory Python's bytecode cache may take (`supervisor/src/pycache.rs`,
//! `sandbox_child::SessionOverlay`): what the program writes under
//! `$TMPDIR/pycache` lands in a tmpfs of the session's own, bounded as its
//! `/dev/shm` is (256 MiB, 16,384 files), never in the host's `/dev/shm`.
//!
//! Attack: the program writes under its cache until refused, then makes
//! files there until refused; it is refused (ENOSPC) within the bounds, and
//! the host's `/dev/shm` did not grow meanwhile (measured while the
//! program holds what it wrote). Controls: the same amount written in the
//! workspace, in the same session, is written whole; the cache takes most
//! of its bound (it is not refused early); outside sluice the same program
//! with the cache in a directory of the host writes the whole amount. As
//! root and as the unprivileged user 65534.

use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use super::pyc15::{fixture, session_command, Who};

const PYTHON: &str = "/usr/bin/python3";

/// The cache's bounds (`sandbox_child::mounts::LAYERS_OPTIONS`).
const BOUND_MIB: usize = 256;
const BOUND_FILES: usize = 16_384;

/// What the program tries to write: more than the bound.
const TRY_MIB: usize = BOUND_MIB + 32;

/// Writes `argv[1]` MiB in the cache (`sys.pycache_prefix`), stopping at
/// the first refusal (a short write is followed by one), and keeps it; makes files there until refused (or
/// twice the bound), then removes them; writes the same amount in the
/// workspace (`argv[2]`, removed after). Prints the mounts at the cache
/// (how many, the kind of the one seen), each count with the error
/// that stopped it, then `filled`, and waits for a line on stdin.
const FILL: &str = r#"
import errno, os, sys
mib, elsewhere = int(sys.argv[1]), sys.argv[2]
def err(e):
    return errno.errorcode.get(e.errno, str(e.errno))
def fill(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    chunk, done = b"x" * (1 << 20), 0
    try:
        while done < mib << 20:
            done += os.write(fd, chunk[: (mib << 20) - done])
        return done >> 20, "none"
    except OSError as e:
        return done >> 20, err(e)
    finally:
        os.close(fd)
prefix = sys.pycache_prefix
kinds = [m[m.index("-") + 1] for m in map(str.split, open("/proc/self/mountinfo"))
         if m[4] == prefix]
print("mounted", len(kinds), kinds[-1] if kinds else "none", flush=True)
many, made, why = prefix + "/many", 0, "none"
os.makedirs(many)
try:
    while made < 2 * 16384:
        open("%s/f%d" % (many, made), "wb").close()
        made += 1
except OSError as e:
    why = err(e)
print("files", made, why, flush=True)
for n in range(made):
    os.unlink("%s/f%d" % (many, n))
done, why = fill(prefix + "/big/blob")
print("cache", done, why, flush=True)
done, why = fill(elsewhere + "/blob")
print("elsewhere", done, why, flush=True)
os.unlink(elsewhere + "/blob")
print("filled", flush=True)
sys.stdin.readline()
"#;

/// Bytes in use in the host's `/dev/shm`.
fn host_shm_used() -> u64 {
    let path = CString::new("/dev/shm").unwrap();
    // SAFETY: a zeroed statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and `st` is writable.
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut st) }, 0);
    (st.f_blocks - st.f_bfree) as u64 * st.f_frsize as u64
}

/// The program's report: `NAME COUNT ERROR` lines up to `filled`, and the
/// growth of the host's `/dev/shm` while it held what it wrote.
struct Filled {
    lines: Vec<(String, usize, String)>,
    host_shm_growth: i64,
}

impl Filled {
    fn get(&self, name: &str) -> (usize, &str) {
        let line = self.lines.iter().find(|l| l.0 == name);
        let line = line.unwrap_or_else(|| panic!("no {name} line in {:?}", self.lines));
        (line.1, line.2.as_str())
    }
}

/// Runs [`FILL`] by `cmd` (its stdin and stdout piped here).
fn fill(mut cmd: Command) -> Filled {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let before = host_shm_used();
    let mut child = cmd.spawn().unwrap();
    let mut lines = Vec::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut host_shm_growth = None;
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["filled"] => {
                host_shm_growth = Some(host_shm_used() as i64 - before as i64);
                child.stdin.take().unwrap().write_all(b"done\n").unwrap();
            }
            [name, count, why] => {
                lines.push((name.to_owned(), count.parse().unwrap(), why.to_owned()))
            }
            _ => {}
        }
        line.clear();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    Filled {
        lines,
        host_shm_growth: host_shm_growth.unwrap_or_else(|| panic!("never filled: {stderr}")),
    }
}

fn the_cache_takes_no_more_than_its_bound(who: Who) {
    let (fx, _) = fixture(who);
    let ws = fx.ws_dir.to_str().unwrap().to_owned();
    let elsewhere = format!("{ws}/elsewhere");
    let mib = TRY_MIB.to_string();
    let program = [PYTHON, "-c", FILL, &mib, &elsewhere];
    let filled = fill(session_command(&fx, who, &fx.ws_dir, &[], &program));
    // What is bounded is the overlay itself (not a fallback).
    assert_eq!(filled.get("mounted").1, "overlay");

    let (files, why) = filled.get("files");
    assert_eq!(why, "ENOSPC", "files refused by the bound: {files}");
    assert!(files <= BOUND_FILES, "{files} files in the cache");
    let (written, why) = filled.get("cache");
    assert_eq!(why, "ENOSPC", "refused by the bound after {written} MiB");
    assert!(written <= BOUND_MIB, "{written} MiB written in the cache");
    // Control: the bound is where it is said to be, not lower.
    assert!(files >= BOUND_FILES / 2, "only {files} files in the cache");
    assert!(
        written >= BOUND_MIB * 3 / 4,
        "only {written} MiB in the cache"
    );
    // Control: the same amount elsewhere in the session is written whole.
    assert_eq!(filled.get("elsewhere"), (TRY_MIB, "none"));
    // Nothing of it in the host's memory: the host's /dev/shm (where the
    // layers were before) grew by less than the smallest part of what
    // the cache held (other processes of the machine use it too).
    assert!(
        filled.host_shm_growth < (BOUND_MIB as i64 / 4) << 20,
        "the host's /dev/shm grew by {} MiB while the cache held {written} MiB",
        filled.host_shm_growth >> 20
    );
}

#[test]
fn the_bytecode_cache_is_bounded_and_not_in_the_hosts_memory() {
    the_cache_takes_no_more_than_its_bound(Who::Root);
}

#[test]
fn as_an_unprivileged_user_the_bytecode_cache_is_bounded() {
    the_cache_takes_no_more_than_its_bound(Who::Nobody);
}

/// Control, outside sluice: the same program, its cache in a directory of
/// the host, writes the whole amount and makes every file.
#[test]
fn outside_sluice_the_same_writes_are_not_refused() {
    let dir = sluice_tests::temp_dir("pycbound15");
    let prefix = dir.path().join("pycache");
    let elsewhere = dir.path().join("elsewhere");
    let mib = TRY_MIB.to_string();
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", FILL, &mib, elsewhere.to_str().unwrap()])
        .env("PYTHONPYCACHEPREFIX", &prefix);
    let filled = fill(cmd);
    assert_eq!(filled.get("files"), (2 * BOUND_FILES, "none"));
    assert_eq!(filled.get("cache"), (TRY_MIB, "none"));
    assert_eq!(filled.get("elsewhere"), (TRY_MIB, "none"));
}
