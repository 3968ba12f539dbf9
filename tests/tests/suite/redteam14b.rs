//! Red team, round 14 (the kernel boundary): what the sandbox shares with
//! the host beyond files, sockets and processes.
//!
//! System V IPC objects (message queues, shared memory segments, semaphore
//! sets) are named by a number or a key, never by a path: Landlock has no
//! right for them, and POSIX message queues (`mq_open`) live in the IPC
//! namespace's internal mount, which Landlock lets through. Before this
//! round the sandbox shared the host's IPC namespace, so the program could
//! write into the person's shared memory, read their queues and remove
//! them all (`ipcrm`), as the person (as root, for a session run by root).
//! The child now makes an IPC namespace of its own with its user, mount and
//! PID namespaces. The harm is checked outside: after the session the
//! person's objects still exist and the segment holds what it held.
//! Controls: the same script outside sluice does the harm; inside, the
//! program's own objects work.
//!
//! The same class, what the kernel counts per user or keeps per network
//! namespace: a root session's System V memory bounded as its `/dev/shm`;
//! inotify instances bounded to half the person's, read leases on the
//! person's files refused, abstract unix names the program's own under
//! `--net none` (fixed); epoll watches (not fixed: an ignored test with its
//! reproduction and a control; see ARCHITECTURE.md, *What is not
//! protected*).

use std::ffi::CString;
use std::process::{Command, Stdio};

use sluice_tests::{execute, strs, Fixture, Outcome};

use super::escape_later::{as_nobody, give_to_nobody};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");
/// The system's Python, which every user may run, inside and outside.
const PYTHON: &str = "/usr/bin/python3";

/// `python3 ATTACK QUEUE SEGMENT MQ_NAME`: writes into the segment, reads
/// the queue, opens and removes the POSIX queue; one line per step, `NAME:
/// ok` or `NAME: ERROR`. Then the real tool removes the System V objects.
const ATTACK: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
q, m, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
def said(what, failed):
    err = ctypes.get_errno()
    print(what + (": " + os.strerror(err) if failed else ": ok"), flush=True)
at = libc.shmat(m, None, 0)
failed = at in (None, ctypes.c_void_p(-1).value)
if not failed:
    ctypes.memmove(at, b"PLANTED", 7)
said("shmat and write", failed)
buf = ctypes.create_string_buffer(64)
said("msgrcv", libc.msgrcv(q, buf, 48, 0, 0o4000) < 0)
said("mq_open", libc.mq_open(name, os.O_RDWR) < 0)
said("mq_unlink", libc.mq_unlink(name) < 0)
"#;

/// What the person keeps in their queue and segment, made outside sluice
/// (as `user`, a `setpriv` prefix, or as the test's own user).
struct PersonsIpc {
    queue: i32,
    segment: i32,
    mq: CString,
}

impl PersonsIpc {
    fn make(user: &[&str]) -> PersonsIpc {
        let ipcmk = |what: &str| {
            let out = run(user, &["ipcmk", what, "-p", "0600"]);
            out.assert_code(0);
            // "Message queue id: 3", "Shared memory id: 4"
            let id = out.stdout.split(':').next_back().unwrap_or("").trim();
            id.parse::<i32>()
                .unwrap_or_else(|e| panic!("ipcmk said no id ({e})\n{out}"))
        };
        let queue = ipcmk("-Q");
        let mq = format!("/sluice-rt14b-{}-{}", std::process::id(), queue);
        // Removed on drop from here on, whatever fails next.
        let objects = PersonsIpc {
            queue,
            segment: ipcmk("-M4096"),
            mq: CString::new(mq.clone()).unwrap(),
        };
        let make_mq = "import ctypes, os, sys\n\
                       libc = ctypes.CDLL(None, use_errno=True)\n\
                       fd = libc.mq_open(sys.argv[1].encode(), os.O_CREAT | os.O_RDWR, 0o600, None)\n\
                       sys.exit(0 if fd >= 0 else os.strerror(ctypes.get_errno()))\n";
        run(user, &[PYTHON, "-c", make_mq, &mq]).assert_code(0);
        // Something in the queue for the program to take.
        let sent = "import ctypes, sys\n\
                    libc = ctypes.CDLL(None)\n\
                    msg = ctypes.create_string_buffer(b'\\x01\\0\\0\\0\\0\\0\\0\\0SECRET-queued')\n\
                    sys.exit(libc.msgsnd(int(sys.argv[1]), msg, 13, 0))\n";
        run(user, &[PYTHON, "-c", sent, &queue.to_string()]).assert_code(0);
        objects
    }

    fn args(&self) -> [String; 3] {
        [
            self.queue.to_string(),
            self.segment.to_string(),
            self.mq.to_str().unwrap().to_owned(),
        ]
    }

    /// Whether the queue, the segment and the POSIX queue still exist, and
    /// the segment's first bytes (as root: every object is stat'able).
    fn state(&self) -> (bool, bool, bool, Vec<u8>) {
        // SAFETY: IPC_STAT writes one msqid_ds/shmid_ds into the zeroed
        // buffers given; shmat maps the segment read-only, read then
        // detached; mq_open/mq_close take a NUL-terminated name.
        unsafe {
            let mut q: libc::msqid_ds = std::mem::zeroed();
            let queue = libc::msgctl(self.queue, libc::IPC_STAT, &mut q) == 0;
            let mut s: libc::shmid_ds = std::mem::zeroed();
            let segment = libc::shmctl(self.segment, libc::IPC_STAT, &mut s) == 0;
            let mut head = Vec::new();
            if segment {
                let at = libc::shmat(self.segment, std::ptr::null(), libc::SHM_RDONLY);
                if at as isize != -1 {
                    head = std::slice::from_raw_parts(at as *const u8, 7).to_vec();
                    libc::shmdt(at);
                }
            }
            let fd = libc::mq_open(self.mq.as_ptr(), libc::O_RDONLY);
            let mq = fd >= 0;
            if mq {
                libc::mq_close(fd);
            }
            (queue, segment, mq, head)
        }
    }

    /// Asserts the person's objects are as they were made.
    #[track_caller]
    fn assert_untouched(&self, out: &Outcome) {
        let (queue, segment, mq, head) = self.state();
        assert!(queue, "the person's message queue was removed\n{out}");
        assert!(segment, "the person's shared memory was removed\n{out}");
        assert!(mq, "the person's POSIX message queue was removed\n{out}");
        assert_eq!(
            head,
            vec![0u8; 7],
            "the person's shared memory was written\n{out}"
        );
        assert!(!out.stdout.contains("SECRET-queued"), "{out}");
    }
}

impl Drop for PersonsIpc {
    fn drop(&mut self) {
        // SAFETY: removing objects this test made (by id; the name is
        // NUL-terminated); a failure means they are gone already.
        unsafe {
            libc::msgctl(self.queue, libc::IPC_RMID, std::ptr::null_mut());
            libc::shmctl(self.segment, libc::IPC_RMID, std::ptr::null_mut());
            libc::mq_unlink(self.mq.as_ptr());
        }
    }
}

/// `USER... PROGRAM...` outside sluice, no input.
fn run(user: &[&str], program: &[&str]) -> Outcome {
    let all: Vec<&str> = user.iter().chain(program).copied().collect();
    let mut cmd = Command::new(all[0]);
    cmd.args(&all[1..]).stdin(Stdio::null());
    execute(cmd)
}

/// The attack as a shell script: the steps in Python, then `ipcrm`.
fn attack(objects: &PersonsIpc) -> Vec<String> {
    let [q, m, mq] = objects.args();
    let script =
        format!("{PYTHON} -c '{ATTACK}' {q} {m} {mq}; ipcs; ipcrm -q {q}; ipcrm -m {m}; exit 0");
    vec!["sh".into(), "-c".into(), script]
}

fn sluice_attack(fx: &Fixture, sluice_args: &[&str], objects: &PersonsIpc) -> Outcome {
    let program = attack(objects);
    execute(fx.sluice_command(sluice_args, &strs(&program)))
}

#[test]
fn the_persons_ipc_objects_are_out_of_the_programs_reach() {
    let fx = Fixture::new(PROBE);
    for mode in [&[][..], &["--transparent"][..]] {
        let objects = PersonsIpc::make(&[]);
        let out = sluice_attack(&fx, mode, &objects);
        out.assert_code(0);
        objects.assert_untouched(&out);
        for step in ["shmat and write", "msgrcv", "mq_open"] {
            assert!(
                !out.stdout.contains(&format!("{step}: ok")),
                "{mode:?} {step}\n{out}"
            );
        }
        let q = objects.queue;
        assert!(
            !out.stdout
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(&q.to_string()) && l.contains("root")),
            "ipcs inside lists the person's queue\n{out}"
        );
    }
}

#[test]
fn as_nobody_the_persons_ipc_objects_are_out_of_the_programs_reach() {
    let fx = Fixture::new(PROBE);
    give_to_nobody(&fx);
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
    ];
    for mode in [&[][..], &["--transparent"][..]] {
        let objects = PersonsIpc::make(&nobody);
        let sluice = sluice_tests::sluice_bin();
        let mut program = vec![sluice.to_str().unwrap(), "run"];
        program.extend_from_slice(mode);
        program.push("--");
        let attack = attack(&objects);
        program.extend(strs(&attack));
        let out = as_nobody(&fx, &program, "");
        out.assert_code(0);
        objects.assert_untouched(&out);
        assert!(
            !out.stdout.contains("shmat and write: ok"),
            "{mode:?}\n{out}"
        );
    }
}

#[test]
fn control_the_attack_reaches_ipc_objects_outside_and_the_programs_own_inside() {
    // Outside sluice the same script writes, reads and removes everything:
    // the assertions above can fail.
    let objects = PersonsIpc::make(&[]);
    let out = run(&[], &strs(&attack(&objects)));
    for step in ["shmat and write", "msgrcv", "mq_open", "mq_unlink"] {
        assert!(out.stdout.contains(&format!("{step}: ok")), "{step}\n{out}");
    }
    let (queue, segment, mq, _) = objects.state();
    assert!(!queue && !segment && !mq, "{out}");
    // Inside, the program's own objects work: a segment and a queue it
    // makes, written and read back.
    let fx = Fixture::new(PROBE);
    let own = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
m = libc.shmget(0, 4096, 0o1600)
at = libc.shmat(m, None, 0)
ctypes.memmove(at, b"own", 3)
print("segment:", ctypes.string_at(at, 3).decode(), flush=True)
q = libc.msgget(0, 0o1600)
msg = ctypes.create_string_buffer(b"\x01\0\0\0\0\0\0\0hello")
libc.msgsnd(q, msg, 5, 0)
buf = ctypes.create_string_buffer(64)
n = libc.msgrcv(q, buf, 48, 0, 0)
print("queue:", buf.raw[8:8 + n].decode(), flush=True)
"#;
    for mode in [&[][..], &["--transparent"][..]] {
        let out = execute(fx.sluice_command(mode, &[PYTHON, "-c", own]));
        out.assert_code(0);
        for line in ["segment: own", "queue: hello"] {
            assert!(out.stdout.contains(line), "{mode:?} {line}\n{out}");
        }
    }
}

/// `python3 SQUAT NAME`: listens on the abstract unix name `NAME`, says
/// `listening`, and answers the first connection with what it read.
const SQUAT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(b"\0" + sys.argv[1].encode())
s.listen(1)
print("listening", flush=True)
s.settimeout(60)
c, _ = s.accept()
c.sendall(b"PLANTED-answer to " + c.recv(100))
"#;

/// Starts `program` (the squatter), waits for its `listening` line, then
/// connects to `name` from outside sluice, as the person's tool would, and
/// returns what came back (`None`: nothing listens there for the host).
fn host_connects_to_squatter(mut program: Command, name: &str) -> (Option<String>, String) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixStream};
    let mut child = program
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    let _ = lines.read_line(&mut first);
    let reply = (first.trim() == "listening")
        .then(|| {
            let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
            let mut s = UnixStream::connect_addr(&addr).ok()?;
            s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
                .unwrap();
            s.write_all(b"the person's tool").ok()?;
            let mut got = String::new();
            s.read_to_string(&mut got).ok()?;
            Some(got)
        })
        .flatten();
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    (reply, format!("first line: {first:?}\nstderr: {err}"))
}

/// A program in a default session shares the host's network namespace:
/// Landlock's scope stops it connecting to an abstract socket outside, but
/// not listening on an abstract name of its choice, which host processes
/// then reach. The person's tool that connects to a name not yet bound (an
/// X display's `@/tmp/.X11-unix/X99` before the person's `Xvfb :99`, a
/// single-instance application's rendezvous, a warm server's name) talks to
/// the program: it can answer as that service (an X server sends key events
/// to the clients that connect). Fixed: `--net none` gives the sandbox an
/// empty network namespace of its own (as the hosts mode makes one), whose
/// abstract names are the program's alone (`Prepared::empty_network`).
#[test]
fn a_default_program_cannot_listen_on_an_abstract_name_the_host_reaches() {
    let fx = Fixture::new(PROBE);
    let name = format!("sluice-rt14b-squat-{}", std::process::id());
    let cmd = fx.sluice_command(&[], &[PYTHON, "-c", SQUAT, &name]);
    let (reply, said) = host_connects_to_squatter(cmd, &name);
    assert_eq!(reply, None, "the host reached the program\n{said}");
}

#[test]
fn control_a_host_process_reaches_an_abstract_listener_outside_sluice() {
    // The same listener outside sluice is reached: the test above can fail
    // (it does, run with --ignored, on the unfixed default mode).
    let name = format!("sluice-rt14b-control-{}", std::process::id());
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", SQUAT, &name]);
    let (reply, said) = host_connects_to_squatter(cmd, &name);
    let reply = reply.unwrap_or_else(|| panic!("nothing answered\n{said}"));
    assert!(
        reply.contains("PLANTED-answer to the person's tool"),
        "{reply}"
    );
}

/// `python3 BIG`: a System V segment larger than the session's `/dev/shm`
/// (300 MiB, made and removed; nothing is written), then a small one.
const BIG: &str = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for mib in (300, 1):
    m = libc.shmget(0, mib << 20, 0o1600)
    print("%d MiB: %s" % (mib, "ok" if m >= 0 else os.strerror(ctypes.get_errno())), flush=True)
    if m >= 0:
        libc.shmctl(m, 0, None)
"#;

/// A root session's System V memory is bounded as its `/dev/shm` is: a
/// segment no process holds is freed by no OOM kill while the session
/// runs. Control: outside sluice the same segment is made.
#[test]
fn the_programs_system_v_memory_is_bounded_as_its_dev_shm() {
    let fx = Fixture::new(PROBE);
    for mode in [&[][..], &["--transparent"][..]] {
        let out = execute(fx.sluice_command(mode, &[PYTHON, "-c", BIG]));
        out.assert_code(0);
        assert!(
            out.stdout.contains("300 MiB: No space left"),
            "{mode:?}\n{out}"
        );
        assert!(out.stdout.contains("1 MiB: ok"), "{mode:?}\n{out}");
    }
    give_to_nobody(&fx);
    let sluice = sluice_tests::sluice_bin();
    let out = as_nobody(
        &fx,
        &[sluice.to_str().unwrap(), "run", "--", PYTHON, "-c", BIG],
        "",
    );
    // Not bounded for an unprivileged user (only the namespace's root uid
    // may write the bounds, and the program keeps the person's uid), but
    // the launch goes on.
    out.assert_code(0);
    assert!(out.stdout.contains("1 MiB: ok"), "{out}");
    // Control: the host's namespace takes it.
    let out = run(&[], &[PYTHON, "-c", BIG]);
    assert!(out.stdout.contains("300 MiB: ok"), "{out}");
}

/// `python3 HOARD RELEASE`: takes every inotify instance it can, says how
/// many, and holds them until the file `RELEASE` exists (60 s at most).
const HOARD: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fds = []
while len(fds) < 100000:
    fd = libc.inotify_init1(0)
    if fd < 0:
        break
    fds.append(fd)
print("took", len(fds), flush=True)
import time
for _ in range(1200):
    if os.path.exists(sys.argv[-1]):
        break
    time.sleep(0.05)
"#;

/// `python3 ONE`: whether one more inotify instance can be made.
const ONE: &str = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
print("inotify:", "ok" if fd >= 0 else os.strerror(ctypes.get_errno()), flush=True)
"#;

/// Starts `hoarder` (HOARD, its input a pipe), reads how many instances it
/// took, then runs `person` (ONE) while it holds them; returns both.
fn while_the_program_hoards(
    hoarder: Command,
    person: Command,
    release: &std::path::Path,
) -> (u64, Outcome) {
    let (said, out) = while_the_program_hoards_lines(hoarder, 1, person, release);
    let line = said.first().map(String::as_str).unwrap_or("");
    let took = line
        .trim()
        .strip_prefix("took ")
        .and_then(|n| n.parse().ok());
    (
        took.unwrap_or_else(|| panic!("the hoarder said {line:?}")),
        out,
    )
}

/// How many inotify descriptors processes of `uid` hold (at least as many
/// as the instances charged to that user: a shared one counts twice).
fn inotify_in_use(uid: u32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let of_uid = procs
        .flatten()
        .filter(|p| p.metadata().is_ok_and(|m| m.uid() == uid))
        .filter(|p| p.file_name().to_string_lossy().parse::<u32>().is_ok());
    let fds = of_uid.filter_map(|p| std::fs::read_dir(p.path().join("fd")).ok());
    let links = fds
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok());
    links
        .filter(|l| l.as_os_str() == "anon_inode:inotify")
        .count() as u64
}

/// The person's per-user inotify limit (the host's).
fn inotify_instances() -> u64 {
    let max = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances").unwrap();
    max.trim().parse().unwrap()
}

/// The sandbox takes at most half of the person's inotify instances (of
/// root's, for a session run by root): before, it took them all, and every
/// editor's, file watcher's and daemon's `inotify_init` of that user failed
/// while the session ran. Control: without sluice, the hoarder takes them
/// all and the person's next one fails.
#[test]
fn the_program_leaves_the_person_inotify_instances() {
    let fx = Fixture::new(PROBE);
    let release = fx.ws_dir.join("release");
    let person = || {
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-c", ONE]);
        cmd
    };
    let in_use = inotify_in_use(0);
    let (took, out) = while_the_program_hoards(
        fx.sluice_command(&[], &[PYTHON, "-c", HOARD]),
        person(),
        &release,
    );
    assert!(took > 0 && took <= inotify_instances() / 2, "took {took}");
    // Root's daemons may hold the other half already on a busy machine.
    if in_use + took < inotify_instances() {
        assert!(out.stdout.contains("inotify: ok"), "{in_use} in use\n{out}");
    }
    // As an unprivileged user: the person is 65534.
    give_to_nobody(&fx);
    let nobody = |program: &[&str]| {
        let mut cmd = sluice_tests::setpriv_nobody();
        cmd.args(program)
            .current_dir(&fx.ws_dir)
            .env("HOME", &fx.home_dir)
            .env("TMPDIR", fx.root().join("tmp"));
        cmd
    };
    let sluice = sluice_tests::sluice_bin();
    let sandboxed = nobody(&[sluice.to_str().unwrap(), "run", "--", PYTHON, "-c", HOARD]);
    let (took, out) = while_the_program_hoards(sandboxed, nobody(&[PYTHON, "-c", ONE]), &release);
    assert!(took > 0 && took <= inotify_instances() / 2, "took {took}");
    assert!(out.stdout.contains("inotify: ok"), "{out}");
    // Control: the same hoarder outside sluice leaves the person none.
    let outside = nobody(&[PYTHON, "-c", HOARD]);
    let (_, out) = while_the_program_hoards(outside, nobody(&[PYTHON, "-c", ONE]), &release);
    assert!(out.stdout.contains("inotify: Too many open files"), "{out}");
}

/// `python3 EPOLL`: two processes, each with 2,000 epoll instances all
/// watching the same 2,000 eventfds (within `open_files`), until the
/// kernel refuses; each says how far it got, then holds them until the
/// file named last exists.
const EPOLL: &str = r#"
import os, select, sys
os.fork()
targets = [os.eventfd(0) for _ in range(2000)]
eps, total = [], 0
try:
    for _ in range(2000):
        ep = select.epoll()
        eps.append(ep)
        for t in targets:
            ep.register(t, select.EPOLLIN)
            total += 1
    print("registered", total, flush=True)
except OSError as e:
    print("stopped", total, e, flush=True)
import time
for _ in range(1200):
    if os.path.exists(sys.argv[-1]):
        break
    time.sleep(0.05)
"#;

/// `python3 EPOLL_ONE`: whether the person can still watch one descriptor.
const EPOLL_ONE: &str = r#"
import os, select
try:
    select.epoll().register(os.eventfd(0), select.EPOLLIN)
    print("epoll: ok", flush=True)
except OSError as e:
    print("epoll:", e.strerror, flush=True)
"#;

/// The kernel counts epoll watches per user (`fs.epoll.max_user_watches`,
/// 4% of low memory), not per namespace: the program, running as the
/// person, registers them all (two processes of 4,000 descriptors reach
/// 5.5 million here) and every event loop of the person's outside
/// (editors, browsers, `systemd --user`; root's daemons for a session run by
/// root) gets `ENOSPC` from `epoll_ctl` while the session runs. No limit
/// sluice sets bounds it (`open_files` times `processes` is far above); the
/// fix to weigh is running the program under a uid of its own. Run as an
/// otherwise unused uid (65533), so that no one else's watches are taken;
/// it holds ~0.7 GB of kernel memory while it runs.
#[test]
#[ignore = "not fixed: epoll watches are counted per user, not per namespace (a uid of the sandbox's own would fix it); takes ~0.7 GB of kernel memory"]
fn the_program_leaves_the_person_epoll_watches() {
    const UID: &str = "65533";
    let fx = Fixture::new(PROBE);
    fx.give_to(65533, 65533);
    std::fs::create_dir_all(fx.root().join("tmp")).unwrap();
    std::os::unix::fs::chown(fx.root().join("tmp"), Some(65533), Some(65533)).unwrap();
    let user = |program: &[&str]| {
        let mut cmd = Command::new("setpriv");
        cmd.args([&format!("--reuid={UID}"), &format!("--regid={UID}")])
            .args(["--clear-groups", "--"])
            .args(program)
            .current_dir(&fx.ws_dir)
            .env("HOME", &fx.home_dir)
            .env("TMPDIR", fx.root().join("tmp"));
        cmd
    };
    // Control: before, the person watches a descriptor.
    let before = execute(user(&[PYTHON, "-c", EPOLL_ONE]));
    assert!(before.stdout.contains("epoll: ok"), "{before}");
    let sluice = sluice_tests::sluice_bin();
    let hoarder = user(&[sluice.to_str().unwrap(), "run", "--", PYTHON, "-c", EPOLL]);
    let person = user(&[PYTHON, "-c", EPOLL_ONE]);
    let release = fx.ws_dir.join("release");
    let (_, out) = while_the_program_hoards_lines(hoarder, 2, person, &release);
    assert!(out.stdout.contains("epoll: ok"), "{out}");
}

/// As [`while_the_program_hoards`], for a hoarder that says `lines` lines;
/// its last argument is the file whose making lets it go (`release`, in a
/// directory it can read).
pub(super) fn while_the_program_hoards_lines(
    mut hoarder: Command,
    lines: usize,
    person: Command,
    release: &std::path::Path,
) -> (Vec<String>, Outcome) {
    use std::io::{BufRead, BufReader};
    let _ = std::fs::remove_file(release);
    let mut child = hoarder
        .arg(release)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let said: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .take(lines)
        .map_while(Result::ok)
        .collect();
    let out = execute(person);
    std::fs::write(release, "").unwrap();
    let _ = child.wait();
    (said, out)
}

/// `python3 LEASE FILE RELEASE`: takes a read lease on `FILE`
/// (`F_SETLEASE`), says so, and holds it until `RELEASE` exists; told of a
/// write (`SIGIO`, which would kill it by default), it holds on (nothing
/// reads its output any more: a line would kill it).
const LEASE: &str = r#"
import fcntl, os, signal, sys
signal.signal(signal.SIGIO, lambda *_: None)
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    fcntl.fcntl(fd, 1024, fcntl.F_RDLCK)
    print("lease taken:", fcntl.fcntl(fd, 1025) == fcntl.F_RDLCK, flush=True)
except OSError as e:
    print("lease:", e.strerror, flush=True)
import time
for _ in range(1200):
    if os.path.exists(sys.argv[-1]):
        break
    time.sleep(0.05)
"#;

/// A read lease, which the kernel grants on any file the caller owns that
/// it can open for reading, makes every open of that file for writing
/// outside wait until the program lets go or `fs.lease-break-time` (45 s)
/// passes, and tells the program of each (`SIGIO`); it can take the lease
/// again at once. The person's editor saving a workspace file waits (for a
/// root session, root's tools writing `/etc/passwd` or `/etc/hosts` too).
/// Fixed: the deny filter refuses `fcntl(F_SETLEASE)` (`EPERM`), at the
/// cost of every `fcntl` running the filter (`filter::lease_check`).
#[test]
fn a_lease_the_program_takes_never_holds_the_persons_writes() {
    let fx = Fixture::new(PROBE);
    let file = fx.ws("README.md");
    // The person's write, timed by the shell (whole seconds).
    let mut person = Command::new("sh");
    let write = format!("s=$(date +%s); echo edited >> {file}; echo waited $(($(date +%s) - s))");
    person.args(["-c", &write]);
    let program = fx.sluice_command(&[], &[PYTHON, "-c", LEASE, &file]);
    let release = fx.ws_dir.join("release");
    let (said, out) = while_the_program_hoards_lines(program, 1, person, &release);
    let waited: u64 = (out.stdout.trim().strip_prefix("waited "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    // The program got as far as asking (a line said), and was refused.
    assert!(
        said.iter().any(|l| l.starts_with("lease")),
        "the program never asked: {said:?}"
    );
    assert!(
        !said.iter().any(|l| l == "lease taken: True"),
        "the program holds a lease: {said:?}"
    );
    assert!(
        waited < 10,
        "the person's write waited {waited} s for the program's lease ({said:?})"
    );
}

#[test]
fn control_a_lease_is_granted_outside_sluice() {
    let fx = Fixture::new(PROBE);
    let out = execute({
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-c", LEASE, &fx.ws("README.md")])
            .stdin(Stdio::null());
        cmd
    });
    assert!(out.stdout.contains("lease taken: True"), "{out}");
}
