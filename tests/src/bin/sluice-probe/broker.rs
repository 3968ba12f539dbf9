//! Broker actions through the client SDK, as an agent would use it: ask the
//! supervisor for files the sandbox cannot open itself, and report what it
//! answered (`OK` served, `BLOCKED` denied, `NOTFOUND`, `ERROR`; see `main.rs`).
//!
//! Every descriptor received is checked for what the SDK promises: exactly the
//! access asked for, and close-on-exec. The race and the flood print their
//! totals as `key=value` words for the tests to parse.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use client_sdk::{Access, Client, Error, ErrorKind, OpenOptions, QueryAnswer};

use crate::{describe, preview, usage, Fail, Racer, Step};

/// Requests each flood connection keeps waiting at once: twice what the SDK
/// lets through, so its slot queue is exercised too.
const FLOOD_WORKERS_PER_CLIENT: u64 = 2 * client_sdk::tokio::MAX_IN_FLIGHT as u64;
/// Hang guard for the flood: with no answer at all for this long, the probe
/// reports the answers still missing instead of waiting for ever. Not a speed
/// check: a working broker answers within milliseconds.
const FLOOD_STALL: Duration = Duration::from_secs(120);

fn connect() -> Result<Client, Fail> {
    Client::from_env().map_err(|e| classify("connect to the broker", &e))
}

/// The probe's verdict on a typed SDK error.
fn classify(what: &str, err: &Error) -> Fail {
    match err {
        Error::Denied { .. } => Fail::Blocked(format!("{what}: {err}")),
        Error::Broker {
            kind: ErrorKind::NotFound,
            ..
        } => Fail::NotFound(format!("{what}: {err}")),
        _ => Fail::Error(format!("{what}: {err}")),
    }
}

/// The probe's verdict on an `open` that failed.
pub(crate) fn refusal(what: &str, err: &io::Error) -> Fail {
    match Error::from_io(err) {
        Some(typed) => classify(what, typed),
        None => Fail::Error(format!("{what}: {}", describe(err))),
    }
}

fn pid() -> u32 {
    std::process::id()
}

/// Fails unless `file`'s access mode is exactly `access` (`O_RDONLY`,
/// `O_WRONLY`, `O_RDWR`) and it is close-on-exec.
fn check_descriptor(file: &File, access: libc::c_int, what: &str) -> Result<(), Fail> {
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL and F_GETFD only read the flags of an open descriptor.
    let (status, flags) = unsafe {
        (
            libc::fcntl(fd, libc::F_GETFL),
            libc::fcntl(fd, libc::F_GETFD),
        )
    };
    if status < 0 || flags < 0 {
        return Err(usage(&format!(
            "fcntl on the served descriptor: {}",
            describe(&io::Error::last_os_error())
        )));
    }
    if status & libc::O_ACCMODE != access {
        return Err(Fail::Failed(format!(
            "{what}: the served descriptor has access mode {:#o}, not the {access:#o} asked for",
            status & libc::O_ACCMODE
        )));
    }
    if flags & libc::FD_CLOEXEC == 0 {
        return Err(Fail::Failed(format!(
            "{what}: the served descriptor is not close-on-exec"
        )));
    }
    Ok(())
}

fn read_served(client: &mut Client, path: &str) -> Result<Vec<u8>, Fail> {
    let what = format!("open {path} via the broker (pid {})", pid());
    let mut file = client
        .open(path, OpenOptions::new().read(true))
        .map_err(|e| refusal(&what, &e))?;
    check_descriptor(&file, libc::O_RDONLY, &what)?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| Fail::Error(format!("read {path} (served): {}", describe(&e))))?;
    Ok(data)
}

/// `broker-mmap-exec PATH`: open for reading through the broker, then map
/// the served descriptor executable (as `ld.so /proc/self/fd/N` would).
pub(crate) fn mmap_exec(path: &str) -> Step {
    let mut client = connect()?;
    let what = format!("open {path} via the broker (pid {})", pid());
    let file = client
        .open(path, OpenOptions::new().read(true))
        .map_err(|e| refusal(&what, &e))?;
    crate::privs::map_exec(&file, path)
}

/// `broker-read PATH`: open for reading through the broker, print the content.
pub(crate) fn read(path: &str) -> Step {
    read_as(None, path)
}

/// `broker-read-as NAME PATH`: `broker-read` by a client that introduces
/// itself as NAME (any text: the broker must treat it as untrusted).
pub(crate) fn read_as(name: Option<&str>, path: &str) -> Step {
    let mut client = match name {
        None => connect()?,
        Some(name) => {
            Client::from_env_named(name).map_err(|e| classify("connect to the broker", &e))?
        }
    };
    let data = read_served(&mut client, path)?;
    Ok(format!(
        "read {} bytes from {path} via the broker (pid {}): {}",
        data.len(),
        pid(),
        preview(&data)
    ))
}

/// `broker-write PATH TEXT [--create] [--truncate] [--append]`: open for
/// writing through the broker and write TEXT.
pub(crate) fn write(path: &str, text: &str, flags: &[&str]) -> Step {
    let mut options = OpenOptions::new();
    options.write(true);
    for flag in flags {
        match *flag {
            "--create" => options.create(true),
            "--truncate" => options.truncate(true),
            "--append" => options.append(true),
            other => return Err(usage(&format!("broker-write: unknown flag {other}"))),
        };
    }
    let mut client = connect()?;
    let what = format!(
        "open {path} via the broker for writing {}(pid {})",
        flags.iter().map(|f| format!("{f} ")).collect::<String>(),
        pid()
    );
    let mut file = client
        .open(path, &options)
        .map_err(|e| refusal(&what, &e))?;
    check_descriptor(&file, libc::O_WRONLY, &what)?;
    file.write_all(text.as_bytes())
        .map_err(|e| Fail::Error(format!("write {path} (served): {}", describe(&e))))?;
    Ok(format!(
        "wrote {} bytes to {path} via the broker (pid {})",
        text.len(),
        pid()
    ))
}

/// `broker-query PATH read|write|read-write`: `OK allowed`, `OK would-ask`,
/// or `BLOCKED` for a denial.
pub(crate) fn query(path: &str, access: &str) -> Step {
    let wanted = match access {
        "read" => Access::Read,
        "write" => Access::Write,
        "read-write" => Access::ReadWrite,
        other => return Err(usage(&format!("broker-query: unknown access {other}"))),
    };
    let mut client = connect()?;
    let what = format!("query {path} for {access} (pid {})", pid());
    let rule = |rule: Option<String>| rule.map_or(String::new(), |r| format!(" (rule {r})"));
    match client.query(path, wanted) {
        Ok(QueryAnswer::Allowed { rule: r }) => Ok(format!("{what}: allowed{}", rule(r))),
        Ok(QueryAnswer::WouldAsk { rule: r }) => Ok(format!("{what}: would-ask{}", rule(r))),
        Ok(QueryAnswer::Denied { reason, rule: r }) => Err(Fail::Blocked(format!(
            "{what}: denied: {reason}{}",
            rule(r)
        ))),
        Err(e) => Err(classify(&what, &e)),
    }
}

/// `broker-race LINK GOOD BAD N [REQUEST]`: a thread swaps the symlink LINK
/// between GOOD and BAD as fast as it can (a new symlink renamed over it, so
/// LINK always exists), while this thread asks the broker N times to open
/// REQUEST (LINK itself by default; `LINK/name` when the links are to
/// directories). Whatever is served must be what GOOD serves: content of any
/// other file is a FAIL. Prints how often each outcome happened, so the test
/// can check both were seen (the race is real) and nothing else was.
pub(crate) fn race(link: &str, good: &str, bad: &str, n: u64, request: &str) -> Step {
    let Some(suffix) = request.strip_prefix(link) else {
        return Err(usage("broker-race: REQUEST must start with LINK"));
    };
    let mut client = connect()?;
    let expected = read_served(&mut client, &format!("{good}{suffix}"))?;

    let flipper = Flipper::start(link, good, bad)?;

    let (mut served_good, mut denied, mut other) = (0u64, 0u64, 0u64);
    let mut leaked: Vec<String> = Vec::new();
    let mut first_other = None;
    for _ in 0..n {
        match client.open(request, OpenOptions::new().read(true)) {
            Ok(mut file) => {
                let mut data = Vec::new();
                match file.read_to_end(&mut data) {
                    Ok(_) if data == expected => served_good += 1,
                    Ok(_) => leaked.push(preview(&data)),
                    Err(e) => {
                        other += 1;
                        first_other.get_or_insert(format!("read: {}", describe(&e)));
                    }
                }
            }
            Err(e) => match Error::from_io(&e) {
                Some(Error::Denied { .. }) => denied += 1,
                typed => {
                    other += 1;
                    first_other.get_or_insert(e.to_string());
                    // A broken connection fails every later call: start over.
                    if !matches!(typed, Some(Error::Broker { .. })) {
                        client = connect()?;
                    }
                }
            },
        }
    }
    let flips = flipper.finish()?;

    let mut totals = format!(
        "race requests={n} served_good={served_good} denied={denied} other={other} \
         leaked={} flips={}",
        leaked.len(),
        flips
    );
    if let Some(first) = first_other {
        write!(totals, " first_other={first:?}").ok();
    }
    match leaked.first() {
        None => Ok(totals),
        Some(first) => Err(Fail::Failed(format!(
            "{totals}: content other than {good}{suffix}'s was served; first: {first}"
        ))),
    }
}

/// A thread that keeps pointing `link` at `bad`, then `good`, until
/// [`finish`](Flipper::finish).
struct Flipper {
    link: String,
    racer: Racer,
}

impl Flipper {
    /// Points `link` at `good`, then starts flipping.
    fn start(link: &str, good: &str, bad: &str) -> Result<Flipper, Fail> {
        let link_path = PathBuf::from(link);
        point(&link_path, Path::new(good))
            .map_err(|e| usage(&format!("cannot make the link {link}: {}", describe(&e))))?;
        let targets = [PathBuf::from(bad), PathBuf::from(good)];
        let racer = Racer::start(move |i| point(&link_path, &targets[i as usize % 2]));
        Ok(Flipper {
            link: link.to_owned(),
            racer,
        })
    }

    /// Stops flipping; how many flips there were.
    fn finish(self) -> Result<u64, Fail> {
        self.racer.finish(&format!("flipping {}", self.link))
    }
}

/// Points `link` at `target` atomically: a fresh symlink renamed over it.
fn point(link: &Path, target: &Path) -> io::Result<()> {
    let mut name = link.file_name().unwrap_or_default().to_owned();
    name.push(".next");
    let next = link.with_file_name(name);
    match std::fs::remove_file(&next) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::os::unix::fs::symlink(target, &next)?;
    std::fs::rename(&next, link)
}

/// What happened to the flood's requests.
#[derive(Default)]
struct Tally {
    answered: AtomicU64,
    opened: AtomicU64,
    denied: AtomicU64,
    busy: AtomicU64,
    not_found: AtomicU64,
    errors: AtomicU64,
    /// A descriptor whose content or flags were not those of PATH read-only.
    wrong: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// `broker-flood CLIENTS REQUESTS PATH`: CLIENTS connections of the tokio
/// client, each pipelining REQUESTS opens of PATH (read-only) from many tasks.
/// Every request's answer is counted once by the task that sent it (the SDK
/// matches answers to requests by id and breaks the connection on an id it
/// does not expect, which shows here as errors); every descriptor is checked
/// and closed, and the probe's own descriptor count must be back where it
/// started. Prints the totals.
pub(crate) fn flood(clients: u64, requests: u64, path: &str) -> Step {
    let expected = read_served(&mut connect()?, path)?;
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| usage(&format!("tokio runtime: {e}")))
    };
    // The first runtime opens tokio's process-wide signal socket pair, which
    // stays open for good: let a throwaway one do that before counting.
    drop(runtime()?);
    let before = open_descriptors();
    let tally = Arc::new(Tally::default());
    let runtime = runtime()?;
    let job = Job {
        requests,
        path: Arc::from(path),
        expected: Arc::from(expected),
        tally: tally.clone(),
    };
    let connected = runtime.block_on(flood_all(clients, job));
    // Dropping the runtime drops every connection and task: the count below
    // must be back to `before`.
    drop(runtime);
    let after = open_descriptors();
    connected?;

    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let t = &*tally;
    let total = clients * requests;
    let totals = format!(
        "flood clients={clients} requests={requests} total={total} answered={} opened={} \
         denied={} busy={} not_found={} errors={} wrong={} fds_before={before} fds_after={after}",
        get(&t.answered),
        get(&t.opened),
        get(&t.denied),
        get(&t.busy),
        get(&t.not_found),
        get(&t.errors),
        get(&t.wrong),
    );
    if get(&t.answered) != total || get(&t.wrong) != 0 || after != before {
        return Err(Fail::Failed(totals));
    }
    Ok(totals)
}

/// What every flood task needs.
#[derive(Clone)]
struct Job {
    requests: u64,
    path: Arc<str>,
    expected: Arc<[u8]>,
    tally: Arc<Tally>,
}

async fn flood_all(clients: u64, job: Job) -> Result<(), Fail> {
    let watchdog = tokio::spawn(stall_guard(job.tally.clone(), clients * job.requests));
    let mut connections = Vec::new();
    for _ in 0..clients {
        let client = client_sdk::tokio::Client::from_env()
            .await
            .map_err(|e| classify("connect to the broker", &e))?;
        connections.push(client);
    }
    let mut tasks = Vec::new();
    for client in connections {
        let next = Arc::new(AtomicU64::new(0));
        for _ in 0..FLOOD_WORKERS_PER_CLIENT.min(job.requests) {
            let (client, next, job) = (client.clone(), next.clone(), job.clone());
            tasks.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < job.requests {
                    one_request(&client, &job).await;
                }
            }));
        }
    }
    for task in tasks {
        task.await
            .map_err(|e| usage(&format!("a flood task failed: {e}")))?;
    }
    watchdog.abort();
    Ok(())
}

async fn one_request(client: &client_sdk::tokio::Client, job: &Job) {
    let t = &*job.tally;
    match client.open(&*job.path, OpenOptions::new().read(true)).await {
        Ok(mut file) => {
            bump(&t.opened);
            let mut data = Vec::new();
            let flags_ok = check_descriptor(&file, libc::O_RDONLY, "flood").is_ok();
            // A small regular file: one read, never blocks for long.
            if !flags_ok || file.read_to_end(&mut data).is_err() || *data != *job.expected {
                bump(&t.wrong);
            }
        }
        Err(e) => match Error::from_io(&e) {
            Some(Error::Denied { .. }) => bump(&t.denied),
            Some(Error::Broker {
                kind: ErrorKind::TooManyRequests,
                ..
            }) => bump(&t.busy),
            Some(Error::Broker {
                kind: ErrorKind::NotFound,
                ..
            }) => bump(&t.not_found),
            _ => bump(&t.errors),
        },
    }
    bump(&t.answered);
}

/// Ends the probe with FAIL when answers stop coming while some are missing.
async fn stall_guard(tally: Arc<Tally>, total: u64) {
    let mut last = u64::MAX;
    loop {
        tokio::time::sleep(FLOOD_STALL).await;
        let now = tally.answered.load(Ordering::Relaxed);
        if now == last && now < total {
            println!(
                "FAIL flood: no answer for {FLOOD_STALL:?}; {now} of {total} requests answered"
            );
            io::stdout().flush().ok();
            std::process::exit(5);
        }
        last = now;
    }
}

/// The number of descriptors this process has open.
pub(crate) fn open_descriptors() -> usize {
    // The directory's own descriptor is counted every time alike.
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// `broker-openat DIR REL`: DIR opened through the broker as a directory
/// (read only), then REL opened relative to that descriptor by the probe
/// itself. The broker's answer must not widen the sandbox: a served
/// directory lists its entries, but opening beneath it is still the
/// sandbox's own open, which Landlock judges by path.
pub(crate) fn openat(dir: &str, rel: &str) -> Step {
    let mut client = connect()?;
    let what = format!("open {dir} via the broker as a directory (pid {})", pid());
    let dirfd = client
        .open(dir, OpenOptions::new().read(true).directory(true))
        .map_err(|e| refusal(&what, &e))?;
    check_descriptor(&dirfd, libc::O_RDONLY, &what)?;
    let c_rel = crate::cstring(rel)?;
    // SAFETY: dirfd is open; c_rel is NUL-terminated; openat returns a new
    // descriptor or -1.
    let fd = unsafe {
        libc::openat(
            dirfd.as_raw_fd(),
            c_rel.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(crate::last_error(&format!("openat({dir} served, {rel})")));
    }
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    let mut file = File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| crate::blocked(&format!("read {dir}/{rel}"), &e))?;
    Ok(format!(
        "read {} bytes from {rel} under {dir} served by the broker: {}",
        data.len(),
        preview(&data)
    ))
}

/// `broker-meta PATH [write]`: PATH opened read-only (or for reading and
/// writing) through the broker, then its metadata changed through that
/// descriptor: mode, owner (to itself), times, an extended attribute. OK
/// lists what worked; BLOCKED when nothing did.
pub(crate) fn meta(path: &str, write: bool) -> Step {
    let mut client = connect()?;
    let what = format!("open {path} via the broker (pid {})", pid());
    let file = client
        .open(path, OpenOptions::new().read(true).write(write))
        .map_err(|e| refusal(&what, &e))?;
    let access = if write { libc::O_RDWR } else { libc::O_RDONLY };
    check_descriptor(&file, access, &what)?;
    crate::files::change_metadata(file.as_raw_fd(), path)
}

/// `broker-race-write LINK GOOD BAD N REQUEST create|truncate`: the race of
/// [`race`], for writes. A thread swaps the symlink LINK (to a directory)
/// between GOOD and BAD while the probe asks N times to open
/// REQUEST for writing: with `create`, REQUEST-<i> created anew each time;
/// with `truncate`, REQUEST truncated. What the probe writes is `raced <i>`.
/// The test checks from outside that nothing under BAD changed.
pub(crate) fn race_write(
    link: &str,
    good: &str,
    bad: &str,
    n: u64,
    request: &str,
    mode: &str,
) -> Step {
    if !request.starts_with(link) {
        return Err(usage("broker-race-write: REQUEST must start with LINK"));
    }
    let create = match mode {
        "create" => true,
        "truncate" => false,
        other => return Err(usage(&format!("broker-race-write: unknown mode {other}"))),
    };
    let mut client = connect()?;
    let flipper = Flipper::start(link, good, bad)?;
    let (mut served, mut denied, mut other) = (0u64, 0u64, 0u64);
    let mut first_other = None;
    for i in 0..n {
        let mut options = OpenOptions::new();
        options.write(true);
        let path = if create {
            options.create(true);
            format!("{request}-{i}")
        } else {
            options.truncate(true);
            request.to_owned()
        };
        match client.open(&path, &options) {
            Ok(mut file) => {
                served += 1;
                if let Err(e) = write!(file, "raced {i}") {
                    first_other.get_or_insert(format!("write: {}", describe(&e)));
                }
            }
            Err(e) => match Error::from_io(&e) {
                Some(Error::Denied { .. }) => denied += 1,
                typed => {
                    other += 1;
                    first_other.get_or_insert(e.to_string());
                    if !matches!(typed, Some(Error::Broker { .. })) {
                        client = connect()?;
                    }
                }
            },
        }
    }
    let flips = flipper.finish()?;
    let mut totals = format!(
        "race-write requests={n} served={served} denied={denied} other={other} flips={}",
        flips
    );
    if let Some(first) = first_other {
        write!(totals, " first_other={first:?}").ok();
    }
    Ok(totals)
}

/// `broker-parallel MARKS PATH...`: asks for every PATH at once (reading),
/// over one pipelined connection, so requests wait for the person side by
/// side. As each answer arrives, the empty file `MARKS/<i>.served` or
/// `MARKS/<i>.denied` (`<i>`: the PATH's index from 0; `.other` for any
/// other answer) is created, so a test can see from outside which requests
/// were answered while a prompt is still open (`-` for no marks). Prints one
/// line per request, then `OK served=N denied=M other=K`.
pub(crate) fn parallel(marks: &str, paths: &[&str]) -> Step {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| usage(&format!("tokio runtime: {e}")))?;
    let marks = (marks != "-").then(|| PathBuf::from(marks));
    let results = runtime.block_on(async {
        let client = client_sdk::tokio::Client::from_env()
            .await
            .map_err(|e| classify("connect to the broker", &e))?;
        let tasks: Vec<_> = paths
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let (client, path, marks) = (client.clone(), path.to_string(), marks.clone());
                tokio::spawn(async move {
                    let got = client.open(&*path, OpenOptions::new().read(true)).await;
                    let kind = match &got {
                        Ok(_) => "served",
                        Err(e) if matches!(Error::from_io(e), Some(Error::Denied { .. })) => {
                            "denied"
                        }
                        Err(_) => "other",
                    };
                    if let Some(dir) = marks {
                        let _ = File::create(dir.join(format!("{i}.{kind}")));
                    }
                    let detail = match got {
                        Ok(_) => String::new(),
                        Err(e) => format!(": {e}"),
                    };
                    (kind, format!("{kind} {i} {path}{detail}"))
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(
                task.await
                    .map_err(|e| usage(&format!("a task failed: {e}")))?,
            );
        }
        Ok::<_, Fail>(results)
    })?;
    let count = |k: &str| results.iter().filter(|(kind, _)| *kind == k).count();
    for (_, line) in &results {
        println!("{line}");
    }
    Ok(format!(
        "parallel served={} denied={} other={}",
        count("served"),
        count("denied"),
        count("other")
    ))
}

/// Registers with the session's broker as a stacked sluice does, but with a
/// ruleset of its own choosing (`weak`: it handles only execution, so it
/// takes away no write), no `protect` list; `twice` registers again,
/// `not-ruleset` sends a pipe instead. Then forks: the steps after this one
/// run in the child (a descendant of the registrant, as a stacked program
/// is), and this process exits with the child's status.
pub(crate) fn register_stacked(how: &str) -> Step {
    let ruleset = match how {
        "weak" | "twice" | "orphan" => weak_ruleset()?,
        "not-ruleset" => {
            let mut fds = [0; 2];
            // SAFETY: pipe writes two new descriptors into `fds`.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return Err(Fail::Error(io::Error::last_os_error().to_string()));
            }
            // SAFETY: new descriptors, owned by nothing else.
            unsafe {
                drop(std::os::fd::OwnedFd::from_raw_fd(fds[1]));
                std::os::fd::OwnedFd::from_raw_fd(fds[0])
            }
        }
        _ => return Err(usage("register-stacked weak|twice|orphan|not-ruleset")),
    };
    if how == "orphan" {
        return register_and_orphan(ruleset);
    }
    let mut client = connect()?;
    use std::os::fd::AsFd;
    let times = if how == "twice" { 2 } else { 1 };
    for _ in 0..times {
        client
            .register_stacked(ruleset.as_fd(), Vec::new())
            .map_err(|e| classify("register a stacked sandbox", &e))?;
    }
    // SAFETY: the probe is single-threaded here (no broker thread runs:
    // the blocking client); the child goes on with the next steps.
    match unsafe { libc::fork() } {
        0 => Ok("registered; the next steps run in a child".to_owned()),
        pid if pid > 0 => {
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            std::process::exit(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                9
            });
        }
        _ => Err(Fail::Error(io::Error::last_os_error().to_string())),
    }
}

/// `register-stacked orphan`: a child of the probe registers `ruleset` and
/// forks, then exits at once; its child goes on with the next steps once
/// it has been reparented (its registrant gone). The probe itself stays
/// until that grandchild has finished (a pipe's end of file), so the
/// session lasts; its steps' lines are the test's answer.
fn register_and_orphan(ruleset: std::os::fd::OwnedFd) -> Step {
    use std::os::fd::AsFd;
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into `fds`.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(Fail::Error(io::Error::last_os_error().to_string()));
    }
    // SAFETY: single-threaded; each side goes on with its own steps.
    let registrant = unsafe { libc::fork() };
    if registrant < 0 {
        return Err(Fail::Error(io::Error::last_os_error().to_string()));
    }
    if registrant > 0 {
        // SAFETY: our own ends of the pipe and our own child.
        unsafe {
            libc::close(fds[1]);
            let mut status = 0;
            libc::waitpid(registrant, &mut status, 0);
            let mut byte = 0u8;
            while libc::read(fds[0], (&mut byte as *mut u8).cast(), 1) > 0 {}
        }
        std::process::exit(0);
    }
    // SAFETY: the read end is the probe's.
    unsafe { libc::close(fds[0]) };
    let mut client = connect()?;
    client
        .register_stacked(ruleset.as_fd(), Vec::new())
        .map_err(|e| classify("register a stacked sandbox", &e))?;
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    // SAFETY: single-threaded (the blocking client).
    match unsafe { libc::fork() } {
        0 => {}
        pid if pid > 0 => std::process::exit(0),
        _ => return Err(Fail::Error(io::Error::last_os_error().to_string())),
    }
    for _ in 0..1000 {
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != me {
            return Ok("registered; the registrant is gone".to_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(usage("the registrant did not exit"))
}

/// A Landlock ruleset that handles only `LANDLOCK_ACCESS_FS_EXECUTE`.
fn weak_ruleset() -> Result<std::os::fd::OwnedFd, Fail> {
    let handled_access_fs: u64 = 1;
    // SAFETY: the attribute is the first field of `struct
    // landlock_ruleset_attr` (8 bytes), alive for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &handled_access_fs as *const u64,
            std::mem::size_of::<u64>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(Fail::Error(format!(
            "landlock_create_ruleset: {}",
            io::Error::last_os_error()
        )));
    }
    // SAFETY: a new descriptor, owned by nothing else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}
