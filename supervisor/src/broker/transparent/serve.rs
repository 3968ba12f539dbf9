//! One notification, start to finish: a first look on the reader thread
//! (which never waits for anything), then, only for calls the broker
//! serves, a task that decides, opens, records and answers.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use proto::{Access, ResponseBody};
use tokio_util::task::TaskTracker;

use super::call::OpenCall;
use super::notif::{Listener, Notif};
use super::target::{Target, Unreadable};
use super::view::SandboxView;
use crate::audit::Op;
use crate::broker::fsops;
use crate::broker::handler::{self, Ask, Asker};
use crate::broker::Shared;

/// What every notification shares.
pub struct Context {
    pub shared: Arc<Shared>,
    pub listener: Listener,
    pub view: SandboxView,
    pub runtime: tokio::runtime::Handle,
    pub tracker: TaskTracker,
}

/// A call the broker serves: its arguments, read once.
struct Brokered {
    call: OpenCall,
    /// The path bytes as the program passed them.
    asked: Vec<u8>,
    /// Made absolute against the thread's working directory or `dirfd`.
    absolute: PathBuf,
}

/// How a call is answered.
enum Reply {
    /// Run it in the kernel: the sandbox decides, as without the broker.
    Kernel,
    Errno(i32),
    Descriptor(OwnedFd),
}

/// Handles one notification: answers it at once when the broker has no
/// part in it, or hands it to a task.
pub fn dispatch(ctx: &Arc<Context>, notif: Notif) {
    let target = Target {
        listener: &ctx.listener,
        id: notif.id,
        tid: notif.pid as libc::pid_t,
    };
    let reply = match first_look(&ctx.view, &target, &notif.data) {
        Ok(Some(brokered)) => {
            let (ctx2, id, tid) = (ctx.clone(), notif.id, target.tid);
            let task = async move { serve(&ctx2, id, tid, brokered).await };
            ctx.tracker.spawn_on(task, &ctx.runtime);
            return;
        }
        Err(Unreadable::Gone) => return,
        Ok(None) | Err(Unreadable::Kernel) => Reply::Kernel,
    };
    answer(&ctx.listener, notif.id, reply, None);
}

/// Reads the call's arguments and decides whether the broker serves it
/// (`Some`) or the kernel does (`None`).
fn first_look(
    view: &SandboxView,
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
    let absolute = if asked[0] == b'/' {
        PathBuf::from(OsStr::from_bytes(&asked))
    } else {
        let base = match call.dirfd {
            None | Some(libc::AT_FDCWD) => target.directory("cwd")?,
            Some(fd) if fd >= 0 => target.directory(&format!("fd/{fd}"))?,
            Some(_) => return Err(Unreadable::Kernel),
        };
        base.join(OsStr::from_bytes(&asked))
    };
    let lexical = fsops::normalize(&absolute);
    // The program's own /proc is the kernel's to show it: looked up here,
    // /proc/self would be the supervisor.
    if lexical.starts_with("/proc") || view.allows(&view.unalias(&lexical), call.writes()) {
        return Ok(None);
    }
    Ok(Some(Brokered {
        call,
        asked,
        absolute,
    }))
}

/// Decides and opens through the broker's core, records, then answers.
async fn serve(ctx: &Context, id: u64, tid: libc::pid_t, b: Brokered) {
    let started = Instant::now();
    let target = Target {
        listener: &ctx.listener,
        id,
        tid,
    };
    let call = b.call;
    let (Some(access), true) = (access_of(&call), servable(&call)) else {
        return answer(&ctx.listener, id, Reply::Kernel, None);
    };
    // Through symlinks, the file may be one the sandbox allows after all:
    // then it is no decision of the broker's.
    if let Ok(lookup) = fsops::lookup_with(&b.absolute, call.nofollow()) {
        if ctx.view.allows(lookup.real(), call.writes()) {
            return answer(&ctx.listener, id, Reply::Kernel, None);
        }
    }
    let umask = match call.create().then(|| target.umask()) {
        None => 0,
        Some(Ok(umask)) => umask,
        Some(Err(Unreadable::Gone)) => return,
        // Unknown: the strictest usual one.
        Some(Err(Unreadable::Kernel)) => 0o077,
    };
    let exe = target.exe();
    let ask = Ask {
        path: &b.asked,
        access,
        create: call.create(),
        truncate: call.truncate(),
        append: call.append(),
        directory: call.directory(),
        mode: call.mode & !umask & 0o7777,
        exclusive: call.exclusive(),
        nofollow: call.nofollow(),
    };
    let asker = Asker {
        pid: tid,
        exe: exe.as_deref(),
        client: "transparent",
        via: call.via,
    };
    let mut outcome = handler::open_path(&ctx.shared, &asker, &b.absolute, &ask).await;
    let mut reply = match (&outcome.body, outcome.fd.take(), outcome.errno) {
        (ResponseBody::Opened, Some(fd), _) => Reply::Descriptor(fd),
        (ResponseBody::Error { .. }, _, Some(errno)) => Reply::Errno(errno),
        // Denied, or an error the kernel has no number for (a FIFO, a
        // device): the sandbox answers, exactly as without the broker.
        _ => Reply::Kernel,
    };
    let record = handler::record(&asker, id, Op::Open, &ask, &mut outcome, started);
    if let Some(audit) = &ctx.shared.audit {
        if let Err(e) = audit.append(&record) {
            // No record, no descriptor.
            tracing::error!("audit: cannot append a record: {e}");
            reply = Reply::Kernel;
        }
    }
    answer(&ctx.listener, id, reply, Some(&call));
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
