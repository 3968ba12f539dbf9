//! The program's `inotify_add_watch` under transparent brokering: a watch
//! only on what the sandbox may read itself.
//!
//! The host's tree stays in view under transparent brokering, and Landlock
//! has no right for inotify: a watch on a directory the policy does not let
//! the program read reported the name of every file the person made,
//! opened, read or wrote there. A check of the path then `CONTINUE` would
//! let another thread rewrite the path before the kernel reads it again, so
//! the supervisor makes the watch itself, on the program's own inotify
//! instance (its copy, `pidfd_getfd`), through an `O_PATH` descriptor of
//! the file judged (`/proc/self/fd/N`), and answers with the watch
//! descriptor. A path the sandbox may not read is `EACCES`, recorded; one
//! that does not exist is `ENOENT`, as the kernel would say. `IN_DONT_FOLLOW`
//! is honoured by the lookup (the link itself is found and watched). The
//! lookup and the watch are made with the serving thread's effective
//! capabilities cleared, so the kernel checks the directory's mode as for
//! the program (a supervisor run by root watched what the program's user
//! may not list).

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::caller::{take_descriptor, Target, Unreadable};
use super::context::Context;
use crate::audit::{self, By, Decision, DecisionRecord, Op, Via};
use crate::broker::safe_open::{self, Lookup};

/// Serves one notified `inotify_add_watch(fd, path, mask)`.
pub fn serve(ctx: &Arc<Context>, target: &Target<'_>, args: [u64; 6]) {
    let started = Instant::now();
    let result = match watch(ctx, target, args, started) {
        Ok(result) => result,
        Err(Unreadable::Gone) => return,
        Err(Unreadable::Kernel) => Err(libc::EFAULT),
    };
    let sent = match result {
        Ok(wd) => ctx.listener.succeed_with(target.id, wd),
        Err(errno) => ctx.listener.fail(target.id, errno),
    };
    if let Err(e) = sent {
        tracing::debug!(id = target.id, "transparent: watch not answered: {e}");
    }
}

/// The watch descriptor, or the errno to answer.
fn watch(
    ctx: &Context,
    target: &Target<'_>,
    args: [u64; 6],
    started: Instant,
) -> Result<Result<i64, i32>, Unreadable> {
    let (fd, path_at, mask) = (args[0] as u32 as i32, args[1], args[2] as u32);
    let instance = match take_descriptor(target.tid, fd) {
        Ok(instance) => instance,
        Err(e) => {
            target.valid()?;
            return Ok(Err(e.raw_os_error().unwrap_or(libc::EBADF)));
        }
    };
    let asked = target.read_path(path_at)?;
    let asked = PathBuf::from(OsStr::from_bytes(&asked));
    let absolute = if asked.is_absolute() {
        asked.clone()
    } else {
        match target.directory("cwd") {
            Ok(cwd) => Path::new(OsStr::from_bytes(&cwd)).join(&asked),
            Err(Unreadable::Kernel) => return Ok(Err(libc::ENOENT)),
            Err(gone) => return Err(gone),
        }
    };
    let exe = target.exe();
    target.valid()?;
    let nofollow = mask & libc::IN_DONT_FOLLOW != 0;
    // The lookup and the watch as the kernel would check the program's
    // own: the supervisor run by root holds capabilities (reading past a
    // directory's mode) that the program has dropped, and watched
    // directories the program's user may not list.
    let Ok(uncapable) = sandbox_child::clear_effective() else {
        return Ok(Err(libc::EACCES));
    };
    let found = match safe_open::lookup_with(&absolute, nofollow) {
        Ok(Lookup::Found(found)) => found,
        Ok(Lookup::Missing(_)) => return Ok(Err(libc::ENOENT)),
        Err(e) => return Ok(Err(e.raw_os_error().unwrap_or(libc::EACCES))),
    };
    // The supervisor's `/proc` is not the program's; nor is a watch there
    // of use to it.
    if found.real.starts_with("/proc") || !ctx.view.allows(&found.real, false) {
        // The record is written as any other (the state directory may be
        // the person's, written by a root supervisor's capability).
        drop(uncapable);
        let refused = DecisionRecord {
            pid: target.tid as u32,
            exe,
            client: "transparent".to_owned(),
            via: Via::SeccompInotifyAddWatch,
            request_id: target.id,
            op: Op::Watch,
            path_asked: asked,
            path_opened: Some(found.real),
            access: audit::Access::Read,
            flags: proto::OpenFlags::default(),
            decision: Decision::Denied,
            by: By::Rule,
            rule: None,
            reason: Some(OUTSIDE.to_owned()),
            latency_us: started.elapsed().as_micros() as u64,
        };
        // Refused with or without its record.
        let _ = ctx.shared.record(&refused);
        return Ok(Err(libc::EACCES));
    }
    let link = format!("/proc/self/fd/{}\0", found.fd.as_raw_fd());
    // The magic link lands on the file judged, never followed further; the
    // program's IN_DONT_FOLLOW was the lookup's.
    let mask = mask & !libc::IN_DONT_FOLLOW;
    // SAFETY: `link` is NUL-terminated; the descriptors are ours.
    let wd = unsafe { libc::inotify_add_watch(instance.as_raw_fd(), link.as_ptr().cast(), mask) };
    let failed = std::io::Error::last_os_error();
    drop(uncapable);
    if wd < 0 {
        return Ok(Err(failed.raw_os_error().unwrap_or(libc::EINVAL)));
    }
    Ok(Ok(i64::from(wd)))
}

/// Why a watch is refused, for the record.
const OUTSIDE: &str = "a watch on what the sandbox may not read: it would report the names \
    made, opened and written there";
