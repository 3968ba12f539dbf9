//! One notification, start to finish, on the reader thread: a first look
//! (answered at once when the sandbox is who decides), then for calls the
//! broker serves, the rules' decision, the open, the record and the answer.
//! Only a call a person must answer leaves the thread, for a task that
//! waits for the answer while the reader goes on.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use proto::{Access, OpenFlags, ResponseBody};

use super::call::{self, OpenCall};
use super::caller::{Target, Unreadable};
use super::context::Context;
use super::names;
use super::notif::{Listener, Notif};
use super::stacked::Stacking;
use super::threads::{outside_the_sandbox, Threads};
use super::view::SandboxView;
use crate::audit::Op;
use crate::broker::decide::{self, Ask, Asker, CallFlags, Outcome, Settled, Step};
use crate::broker::guard;

/// A call the broker serves: its arguments, read once.
struct Brokered {
    call: OpenCall,
    /// The path bytes as the program passed them.
    asked: Vec<u8>,
    /// Made absolute against the thread's working directory or `dirfd`.
    absolute: PathBuf,
}

/// A brokered call with everything read from its thread, validated.
struct Request {
    id: u64,
    tid: libc::pid_t,
    b: Brokered,
    access: Access,
    /// The mode to create with: the call's, less the thread's umask.
    mode: u32,
    exe: Option<PathBuf>,
    started: Instant,
}

impl Request {
    fn ask(&self) -> Ask<'_> {
        let call = &self.b.call;
        Ask {
            path: &self.b.asked,
            access: self.access,
            flags: OpenFlags {
                create: call.create(),
                truncate: call.truncate(),
                append: call.append(),
                directory: call.directory(),
                mode: self.mode,
            },
            call: CallFlags {
                exclusive: call.exclusive(),
                nofollow: call.nofollow(),
                sync: call.sync_flags(),
                exact_perm: true,
                mkdir: call.mkdir(),
            },
        }
    }

    fn asker(&self) -> Asker<'_> {
        Asker {
            pid: self.tid,
            exe: self.exe.as_deref(),
            client: "transparent",
            via: self.b.call.via,
        }
    }
}

/// How a call is answered.
enum Reply {
    /// Run it in the kernel: the sandbox decides, as without the broker.
    Kernel,
    Errno(i32),
    Descriptor(OwnedFd),
    /// Done by the supervisor: the call returns 0.
    Done,
}

/// Handles one notification: answers it, or hands it to a task when a
/// person must decide.
pub fn dispatch(ctx: &Arc<Context>, threads: &mut Threads, notif: Notif) {
    let target = Target {
        listener: &ctx.listener,
        id: notif.id,
        tid: notif.pid as libc::pid_t,
    };
    threads.notified(target.tid);
    let nr = libc::c_long::from(notif.data.nr);
    if call::adds_filter(nr) {
        // Before it is answered: the filter is added only after.
        ctx.stacking.filter_may_be_added();
        return answer(&ctx.listener, notif.id, Reply::Kernel, None);
    }
    if call::changes_directories(nr) {
        threads.changing(target.tid, nr);
        return answer(&ctx.listener, notif.id, Reply::Kernel, None);
    }
    if nr == libc::SYS_connect {
        return super::connect::serve(ctx, &target, notif.data.args);
    }
    if nr == libc::SYS_socket {
        return super::socket::refuse(ctx, &target, notif.data.args);
    }
    if nr == libc::SYS_inotify_add_watch {
        return super::watch::serve(ctx, &target, notif.data.args);
    }
    let env = guard::Env {
        guard: &ctx.guard,
        shared: &ctx.shared,
        connector: ctx.connector.as_ref(),
        stacked: None,
    };
    if let Some(call) = guard::Call::decode_naming(&notif.data) {
        if let (true, Some(via)) = (ctx.brokering, names::rename_via(nr)) {
            return names::rename(ctx, threads, &target, call, via);
        }
        return guard::serve(&env, &target, call);
    }
    if let Some(remove) = names::Remove::decode(&notif.data) {
        return names::remove(ctx, threads, &target, remove);
    }
    let open = OpenCall::decode(&notif.data);
    if !ctx.brokering {
        // The guard's own filter notifies only calls that write.
        return match open {
            Some(open) => guard::serve(&env, &target, guard::Call::Open(open)),
            None => answer(&ctx.listener, notif.id, Reply::Errno(libc::ENOSYS), None),
        };
    }
    let brokered = match first_look(&ctx.view, threads, &target, &notif.data) {
        Ok(Some(brokered)) => brokered,
        Err(Unreadable::Gone) => return,
        Ok(None) | Err(Unreadable::Kernel) => {
            // What the sandbox would write itself is the guard's: the
            // kernel never runs it on the program's say-so after a check.
            if let Some(open) = open.filter(guard::guards_open) {
                return guard::serve(&env, &target, guard::Call::Open(open));
            }
            return answer(&ctx.listener, notif.id, Reply::Kernel, None);
        }
    };
    // The record's latency counts from here: a call answered `CONTINUE`
    // (most) needs no clock.
    let started = Instant::now();
    let request = match prepare(&target, brokered, started, &ctx.stacking) {
        Ok(request) => request,
        Err(Unreadable::Gone) => return,
        Err(Unreadable::Kernel) => return answer(&ctx.listener, notif.id, Reply::Kernel, None),
    };
    let sandbox = |real: &Path, write| ctx.view.allows(real, write);
    let (path, ask) = (&request.b.absolute, request.ask());
    match decide::decide_and_open(&ctx.shared, path, &ask, &sandbox, None) {
        Step::Done(outcome) => finish(ctx, &request, outcome),
        // Through symlinks, a file the sandbox allows after all.
        Step::Sandbox => answer(&ctx.listener, request.id, Reply::Kernel, None),
        person @ Step::Person(_) => {
            let ctx2 = ctx.clone();
            let task = async move {
                let sandbox = |real: &Path, write| ctx2.view.allows(real, write);
                let (asker, ask) = (request.asker(), request.ask());
                let path = &request.b.absolute;
                match decide::settle(&ctx2.shared, &asker, path, &ask, &sandbox, person).await {
                    Settled::Done(outcome) => finish(&ctx2, &request, outcome),
                    Settled::Sandbox => answer(&ctx2.listener, request.id, Reply::Kernel, None),
                }
            };
            ctx.tracker.spawn_on(task, &ctx.runtime);
        }
    }
}

/// Reads the call's arguments and decides whether the broker serves it
/// (`Some`) or the kernel does (`None`). Not validated: for the kernel's
/// calls it need not be.
fn first_look(
    view: &SandboxView,
    threads: &mut Threads,
    target: &Target<'_>,
    data: &libc::seccomp_data,
) -> Result<Option<Brokered>, Unreadable> {
    let mut call = OpenCall::decode(data).ok_or(Unreadable::Kernel)?;
    if let Some((addr, size)) = call.how {
        let how = target.read_struct(addr, size.min(64))?;
        call = call.with_how(&how).ok_or(Unreadable::Kernel)?;
    }
    if call.kernel_only() {
        return Ok(None);
    }
    let asked = target.read_path(call.path_addr)?;
    if asked.is_empty() {
        return Err(Unreadable::Kernel);
    }
    let Some(absolute) =
        outside_the_sandbox(view, threads, target, call.dirfd, &asked, call.writes())?
    else {
        return Ok(None);
    };
    Ok(Some(Brokered {
        call,
        asked,
        absolute,
    }))
}

/// Reads the rest of what the broker needs from the thread, then checks
/// that everything read came from it. `Err(Kernel)` for calls that are the
/// sandbox's after all, and for every call of a thread inside a sandbox
/// stacked in the program's (`stacked.rs`): whatever the broker placed in
/// it would carry past that sandbox's own rules.
fn prepare(
    target: &Target<'_>,
    b: Brokered,
    started: Instant,
    stacking: &Stacking,
) -> Result<Request, Unreadable> {
    let call = b.call;
    let (Some(access), true) = (access_of(&call), servable(&call)) else {
        return Err(Unreadable::Kernel);
    };
    // Read only for a creating call's umask, or once a filter may have
    // been added (`stacked.rs`). Unreadable (a thread gone, or a kernel
    // that does not count filters): the kernel decides, as for a stacked
    // thread.
    let status = match call.create() || stacking.may_be_stacked() {
        true => Some(target.status()?),
        false => None,
    };
    if status.is_some_and(|s| stacking.is_stacked(s.filters)) {
        tracing::debug!(
            tid = target.tid,
            "transparent: a stacked sandbox's call: the kernel decides"
        );
        return Err(Unreadable::Kernel);
    }
    // Unknown: the strictest usual one.
    let umask = match (call.create(), status.and_then(|s| s.umask)) {
        (true, umask) => umask.unwrap_or(0o077),
        (false, _) => 0,
    };
    let exe = target.exe();
    target.valid()?;
    Ok(Request {
        id: target.id,
        tid: target.tid,
        mode: call.mode & !umask & 0o7777,
        b,
        access,
        exe,
        started,
    })
}

/// Records the decision, then answers the call.
fn finish(ctx: &Context, request: &Request, mut outcome: Outcome) {
    let mkdir = request.b.call.mkdir();
    let mut reply = match (&outcome.body, outcome.fd.take(), outcome.errno) {
        // The directory is made; the program gets 0, as from the kernel.
        (ResponseBody::Opened, Some(_), _) if mkdir => Reply::Done,
        (ResponseBody::Opened, Some(fd), _) => Reply::Descriptor(fd),
        (ResponseBody::Error { .. }, _, Some(errno)) => Reply::Errno(errno),
        // Denied, or an error the kernel has no number for (a FIFO, a
        // device): the sandbox answers, exactly as without the broker.
        _ => Reply::Kernel,
    };
    let (asker, ask) = (request.asker(), request.ask());
    let op = if mkdir { Op::Mkdir } else { Op::Open };
    let record = decide::record(&asker, request.id, op, &ask, &mut outcome, request.started);
    if ctx.shared.record(&record).is_err() {
        reply = Reply::Kernel;
    }
    answer(&ctx.listener, request.id, reply, Some(&request.b.call));
}

/// The access an open asks for; `None` for the invalid access mode 3.
fn access_of(call: &OpenCall) -> Option<Access> {
    match (call.read(), call.write()) {
        (true, false) => Some(Access::Read),
        (false, true) => Some(Access::Write),
        (true, true) => Some(Access::ReadWrite),
        (false, false) => None,
    }
}

/// Flag combinations the broker does not serve, left to the kernel (which
/// then answers exactly as without the broker): truncating or appending
/// without write access, writing or creating a directory.
fn servable(call: &OpenCall) -> bool {
    let truncates = call.truncate() || call.append();
    let writes_a_directory = call.directory() && (call.create() || call.write());
    (!truncates || call.write()) && !writes_a_directory
}

fn answer(listener: &Listener, id: u64, reply: Reply, call: Option<&OpenCall>) {
    let result = match reply {
        Reply::Kernel => listener.allow_kernel(id),
        Reply::Errno(errno) => listener.fail(id, errno),
        Reply::Done => listener.succeed(id),
        Reply::Descriptor(fd) => {
            let call = call.expect("a descriptor answers a decoded call");
            match set_status_flags(&fd, call.status_flags()) {
                Ok(()) => listener
                    .add_fd_and_answer(id, fd.as_fd(), call.cloexec())
                    .map(drop),
                Err(e) => listener.fail(id, e.raw_os_error().unwrap_or(libc::EINVAL)),
            }
            // Our copy of the descriptor closes here.
        }
    };
    if let Err(e) = result {
        // ENOENT: the thread was killed or its call interrupted meanwhile.
        tracing::debug!(id, "transparent: notification not answered: {e}");
    }
}

fn set_status_flags(fd: &OwnedFd, flags: i32) -> io::Result<()> {
    if flags == 0 {
        return Ok(());
    }
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
    let rc = unsafe {
        let now = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, now | flags)
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
