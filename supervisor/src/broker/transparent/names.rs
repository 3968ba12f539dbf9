//! `rename`, `unlink` and `rmdir` under transparent brokering: a name the
//! broker may write, changed with the same rules as an open for writing.
//!
//! Editors and agents write a file through a temporary file and a
//! `rename` over it (Claude Code's settings, vim's swap files); git takes
//! `.git/index.lock` and renames it over the index. Once the broker has
//! served the temporary file's open, the rename (and the `unlink` of a lock
//! or temporary file, the `rmdir` of a directory it made) is the sandbox's
//! again, which refuses it outside its trees. So, with `--transparent`:
//!
//! - where the sandbox allows the write itself (both names of a rename
//!   inside its write trees), nothing changes: `unlink` and `rmdir` run in
//!   the kernel (`CONTINUE`, Landlock still checks them), a rename goes to
//!   the guard, which makes it in the sandbox's own domain;
//! - anything else is judged here: each name's parent directory resolved
//!   in the supervisor's tree (as an open's is: symlinks followed, no magic
//!   links), and the name judged for writing by the broker's rules, with
//!   `[filesystem] protect` first ([`decide::judge`]); a name the sandbox
//!   may write itself needs no rule. Allowed (by a rule, or by a person for
//!   an `ask` rule, on a task as for opens), the supervisor makes the call
//!   on the directories it resolved and judged and records it (`"op":
//!   "rename"`, `"unlink"` or `"rmdir"`, one record per name judged);
//! - a refusal is the sandbox's, as for opens: `unlink` and `rmdir` are
//!   let run in the kernel, which refuses them, and a rename goes to the
//!   guard, which has it made in the sandbox's domain and so refused there;
//!   the refusal is recorded.
//!
//! The broker renames no directory (`EXDEV`: `mv` then copies and removes,
//! each step judged in its turn): a directory would carry whatever a deny
//! rule or `protect` names beneath it to a name no rule names.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use nix::fcntl::{AtFlags, RenameFlags};
use nix::sys::stat::{fstatat, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use policies::{Verdict, Want};

use super::caller::{Target, Unreadable};
use super::context::Context;
use super::threads::{outside_the_sandbox, Threads};
use crate::approval::Question;
use crate::audit::{self, By, Decision, DecisionRecord, Op, Via};
use crate::broker::decide;
use crate::broker::guard;
use crate::broker::safe_open::{self, Kind, Lookup};

/// An `unlink`, `unlinkat` or `rmdir`, decoded (the path not yet read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remove {
    pub via: Via,
    pub dirfd: Option<i32>,
    pub path: u64,
    /// `rmdir`, or `unlinkat` with `AT_REMOVEDIR`.
    pub dir: bool,
    /// `unlinkat`'s flags, as passed.
    pub flags: i32,
}

impl Remove {
    fn op(&self) -> Op {
        if self.dir {
            Op::Rmdir
        } else {
            Op::Unlink
        }
    }

    /// Decodes `data`, or `None` for a call that removes no name.
    pub fn decode(data: &libc::seccomp_data) -> Option<Remove> {
        let a = data.args;
        match libc::c_long::from(data.nr) {
            libc::SYS_unlinkat => {
                let flags = a[2] as u32 as i32;
                Some(Remove {
                    via: Via::SeccompUnlinkat,
                    dirfd: Some(a[0] as u32 as i32),
                    path: a[1],
                    dir: flags & libc::AT_REMOVEDIR != 0,
                    flags,
                })
            }
            #[cfg(target_arch = "x86_64")]
            libc::SYS_unlink => Some(Remove {
                via: Via::SeccompUnlink,
                dirfd: None,
                path: a[0],
                dir: false,
                flags: 0,
            }),
            #[cfg(target_arch = "x86_64")]
            libc::SYS_rmdir => Some(Remove {
                via: Via::SeccompRmdir,
                dirfd: None,
                path: a[0],
                dir: true,
                flags: libc::AT_REMOVEDIR,
            }),
            _ => None,
        }
    }
}

/// A name outside the sandbox's write trees: its parent, resolved in the
/// supervisor's tree, and the final component.
struct Name {
    parent: OwnedFd,
    name: Vec<u8>,
    /// The parent's real path joined with `name`: what the rules judge.
    real: PathBuf,
}

/// What the rules say about one name.
struct Judged {
    real: PathBuf,
    verdict: Verdict,
    rule: Option<String>,
    reason: String,
    by: By,
}

/// Why a call is not made here.
enum Pass {
    /// The notification is gone: nothing to answer.
    Gone,
    /// The sandbox's own call: `CONTINUE` (unlink, rmdir) or the guard
    /// (rename), which gives exactly the sandbox's answer.
    Sandbox,
    Errno(i32),
}

impl From<Unreadable> for Pass {
    fn from(u: Unreadable) -> Pass {
        match u {
            Unreadable::Gone => Pass::Gone,
            Unreadable::Kernel => Pass::Sandbox,
        }
    }
}

/// Serves an `unlink`, `unlinkat` or `rmdir`.
pub fn remove(ctx: &Arc<Context>, threads: &mut Threads, target: &Target<'_>, call: Remove) {
    let known = libc::AT_REMOVEDIR;
    let judged = if call.flags & !known != 0 {
        Err(Pass::Sandbox)
    } else {
        look(ctx, threads, target, &[(call.dirfd, call.path)])
    };
    let names = match judged {
        Ok(names) => names,
        Err(pass) => return pass_on(ctx, target, None, pass),
    };
    let started = Instant::now();
    let asker = Asker::of(target, call.via, call.op(), None);
    decide_then(ctx, asker, names, started, move |names| {
        let name = names.into_iter().next().ok_or(libc::EINVAL)?;
        let flags = if call.dir {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        unlinkat(name.parent.as_fd(), name.name.as_slice(), flags).map_err(|e| e as i32)
    });
}

/// The record's `via` for a rename call `nr`, `None` for another call.
pub fn rename_via(nr: libc::c_long) -> Option<Via> {
    match nr {
        libc::SYS_renameat => Some(Via::SeccompRenameat),
        libc::SYS_renameat2 => Some(Via::SeccompRenameat2),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_rename => Some(Via::SeccompRename),
        _ => None,
    }
}

/// Serves a rename (`rename`, `renameat`, `renameat2`) under transparent
/// brokering; the guard serves it where the sandbox may write both names.
pub fn rename(
    ctx: &Arc<Context>,
    threads: &mut Threads,
    target: &Target<'_>,
    call: guard::Call,
    via: Via,
) {
    let guard::Call::Rename {
        olddir,
        old,
        newdir,
        new,
        flags,
    } = call
    else {
        return pass_on(ctx, target, Some(call), Pass::Sandbox);
    };
    let known = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE;
    let judged = if flags & !known != 0 {
        Err(Pass::Sandbox)
    } else {
        look(ctx, threads, target, &[(olddir, old), (newdir, new)])
    };
    let names = match judged {
        Ok(names) => names,
        Err(pass) => return pass_on(ctx, target, Some(call), pass),
    };
    let started = Instant::now();
    let asker = Asker::of(target, via, Op::Rename, Some(call));
    decide_then(ctx, asker, names, started, move |names| {
        let [from, to]: [Name; 2] = names.try_into().map_err(|_| libc::EINVAL)?;
        not_a_directory(&from)?;
        if flags & libc::RENAME_EXCHANGE != 0 {
            not_a_directory(&to)?;
        }
        nix::fcntl::renameat2(
            from.parent.as_fd(),
            from.name.as_slice(),
            to.parent.as_fd(),
            to.name.as_slice(),
            RenameFlags::from_bits_truncate(flags),
        )
        .map_err(|e| e as i32)
    });
}

/// `EXDEV` for a directory (see the module documentation), `ENOENT` for
/// nothing at all; symlinks are not followed.
fn not_a_directory(name: &Name) -> Result<(), i32> {
    let st = fstatat(
        name.parent.as_fd(),
        name.name.as_slice(),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| e as i32)?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        return Err(libc::EXDEV);
    }
    Ok(())
}

/// Reads each path, and resolves and judges it unless the sandbox writes
/// every one itself (`Err(Pass::Sandbox)`).
fn look(
    ctx: &Context,
    threads: &mut Threads,
    target: &Target<'_>,
    paths: &[(Option<i32>, u64)],
) -> Result<Vec<(Name, Option<Judged>)>, Pass> {
    let mut absolute = Vec::with_capacity(paths.len());
    let mut any_outside = false;
    for &(dirfd, addr) in paths {
        let asked = target.read_path(addr)?;
        if asked.is_empty() {
            return Err(Pass::Sandbox);
        }
        // `x/.` or `x/..` (EBUSY, EINVAL, ENOTEMPTY): the kernel's answer.
        let last = asked.rsplit(|&b| b == b'/').find(|c| !c.is_empty());
        if matches!(last, None | Some(b".") | Some(b"..")) {
            return Err(Pass::Sandbox);
        }
        let outside = outside_the_sandbox(&ctx.view, threads, target, dirfd, &asked, true)?;
        any_outside |= outside.is_some();
        absolute.push((outside, dirfd, asked));
    }
    if !any_outside {
        return Err(Pass::Sandbox);
    }
    // A thread of a sandbox stacked in the program's: its own rules are
    // not the broker's to widen (`stacked.rs`).
    if ctx.stacking.may_be_stacked() && ctx.stacking.is_stacked(target.status()?.filters) {
        return Err(Pass::Sandbox);
    }
    let mut names = Vec::with_capacity(absolute.len());
    for (outside, dirfd, asked) in absolute {
        let path = match outside {
            Some(path) => path,
            // Inside the sandbox's trees by name: made absolute all the
            // same, to resolve it with the other.
            None => match sandbox_path(threads, target, dirfd, &asked) {
                Some(path) => path,
                None => return Err(Pass::Sandbox),
            },
        };
        let name = resolve(&path)?;
        let judged = match ctx.view.allows(&name.real, true) {
            false => Some(judge(ctx, &name.real)),
            // The sandbox may write it, but the supervisor makes the call:
            // `protect` still holds, as the guard holds it for the sandbox.
            true => protected(ctx, &name.real),
        };
        names.push((name, judged));
    }
    target.valid()?;
    if names.iter().all(|(_, judged)| judged.is_none()) {
        // Through symlinks, inside the sandbox's trees after all.
        return Err(Pass::Sandbox);
    }
    Ok(names)
}

/// A path the sandbox may write by name, made absolute (not remembered:
/// read now).
fn sandbox_path(
    threads: &mut Threads,
    target: &Target<'_>,
    dirfd: Option<i32>,
    asked: &[u8],
) -> Option<PathBuf> {
    if asked.first() == Some(&b'/') {
        return Some(PathBuf::from(OsStr::from_bytes(asked)));
    }
    let base = match dirfd {
        None | Some(libc::AT_FDCWD) => {
            threads.forget(target.tid);
            threads.cwd(target).ok()?.0.to_vec()
        }
        Some(fd) if fd >= 0 => target.directory(&format!("fd/{fd}")).ok()?,
        Some(_) => return None,
    };
    Some(Path::new(OsStr::from_bytes(&base)).join(OsStr::from_bytes(asked)))
}

/// The parent of `path` resolved in the supervisor's tree (as an open's
/// is), and its final name.
fn resolve(path: &Path) -> Result<Name, Pass> {
    let name = path
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .ok_or(Pass::Sandbox)?;
    let parent = path.parent().ok_or(Pass::Sandbox)?;
    match safe_open::lookup(parent) {
        // The program's /proc is not the supervisor's: the kernel's to answer.
        Ok(Lookup::Found(dir)) if dir.real.starts_with("/proc") => Err(Pass::Sandbox),
        Ok(Lookup::Found(dir)) if dir.kind == Kind::Directory => Ok(Name {
            real: dir.real.join(OsStr::from_bytes(&name)),
            parent: dir.fd,
            name,
        }),
        Ok(Lookup::Found(_)) => Err(Pass::Errno(libc::ENOTDIR)),
        Ok(Lookup::Missing(_)) => Err(Pass::Errno(libc::ENOENT)),
        Err(_) => Err(Pass::Sandbox),
    }
}

fn judge(ctx: &Context, real: &Path) -> Judged {
    let decide::Decision {
        verdict,
        by,
        rule,
        reason,
    } = decide::judge(&ctx.shared, real, Want::Write);
    Judged {
        real: real.to_path_buf(),
        verdict,
        rule,
        reason,
        by,
    }
}

/// The refusal of a name `[filesystem] protect` keeps: the broker's rules
/// judge a write there by that rule first (`decide::judge`).
fn protected(ctx: &Context, real: &Path) -> Option<Judged> {
    let protect = &ctx.shared.policy.filesystem.protect;
    protect.protects(real).or_else(|| protect.leads_to(real))?;
    Some(judge(ctx, real))
}

/// Who asked, owned (a task may outlive the notification's borrow).
struct Asker {
    pid: libc::pid_t,
    exe: Option<PathBuf>,
    via: Via,
    op: Op,
    id: u64,
    /// A rename: what the guard makes in the sandbox if it is refused here.
    rename: Option<guard::Call>,
}

impl Asker {
    fn of(target: &Target<'_>, via: Via, op: Op, rename: Option<guard::Call>) -> Asker {
        Asker {
            pid: target.tid,
            exe: target.exe(),
            via,
            op,
            id: target.id,
            rename,
        }
    }
}

/// Decides each judged name (by its rule, or a person on a task), then
/// makes the call with `make` if every one is allowed, records and answers.
fn decide_then<F>(
    ctx: &Arc<Context>,
    asker: Asker,
    names: Vec<(Name, Option<Judged>)>,
    started: Instant,
    make: F,
) where
    F: FnOnce(Vec<Name>) -> Result<(), i32> + Send + 'static,
{
    let asks = names
        .iter()
        .any(|(_, j)| j.as_ref().is_some_and(|j| j.verdict == Verdict::Ask));
    if !asks {
        return finish(ctx, asker, names, Vec::new(), started, make);
    }
    // A person decides: the reader goes on meanwhile.
    let ctx2 = ctx.clone();
    let task = async move {
        let mut answers = Vec::new();
        for (_, judged) in &names {
            let Some(judged) = judged.as_ref().filter(|j| j.verdict == Verdict::Ask) else {
                answers.push(None);
                continue;
            };
            let question = Question {
                pid: asker.pid,
                exe: asker.exe.as_deref(),
                path: &judged.real,
                write: true,
                rule: judged.rule.clone(),
            };
            let answer = ctx2.shared.approvals.ask(&question).await;
            answers.push(Some(answer));
        }
        finish(&ctx2, asker, names, answers, started, make);
    };
    ctx.tracker.spawn_on(task, &ctx.runtime);
}

/// Records each judged name's decision, makes the call if all are
/// allowed, and answers.
fn finish<F>(
    ctx: &Context,
    asker: Asker,
    names: Vec<(Name, Option<Judged>)>,
    answers: Vec<Option<crate::approval::Answer>>,
    started: Instant,
    make: F,
) where
    F: FnOnce(Vec<Name>) -> Result<(), i32>,
{
    let mut decided = Vec::new();
    let mut allowed = true;
    for (i, (_, judged)) in names.iter().enumerate() {
        let Some(judged) = judged else { continue };
        let answer = answers.get(i).and_then(Option::as_ref);
        let (allow, by, rule, reason) = match (judged.verdict, answer) {
            (Verdict::Allow, _) => (true, judged.by, judged.rule.clone(), None),
            (Verdict::Ask, Some(a)) => {
                let by = a.by;
                let reason = (!a.allow)
                    .then(|| format!("{}; the answer was deny ({})", judged.reason, by.as_str()));
                (a.allow, by, a.rule.clone().or(judged.rule.clone()), reason)
            }
            _ => (
                false,
                judged.by,
                judged.rule.clone(),
                Some(judged.reason.clone()),
            ),
        };
        allowed &= allow;
        decided.push((judged.real.clone(), allow, by, rule, reason));
    }
    let names: Vec<Name> = names.into_iter().map(|(name, _)| name).collect();
    let op = asker.op;
    let result = allowed.then(|| make(names));
    let mut answer = match &result {
        Some(Ok(())) => Pass::Errno(0),
        Some(Err(errno)) => Pass::Errno(*errno),
        None => Pass::Sandbox,
    };
    for (real, allow, by, rule, reason) in decided {
        let decision = match (&result, allow) {
            (_, false) => Decision::Denied,
            (Some(Err(_)), true) => Decision::Error,
            _ => Decision::Allowed,
        };
        let reason = match (&result, reason) {
            (Some(Err(errno)), None) if allow => {
                Some(std::io::Error::from_raw_os_error(*errno).to_string())
            }
            (_, reason) => reason,
        };
        let record = DecisionRecord {
            pid: asker.pid as u32,
            exe: asker.exe.clone(),
            client: "transparent".to_owned(),
            via: asker.via,
            request_id: asker.id,
            op,
            path_asked: real.clone(),
            path_opened: (decision == Decision::Allowed).then_some(real),
            access: audit::Access::Write,
            flags: proto::OpenFlags::default(),
            decision,
            by,
            rule,
            reason,
            latency_us: started.elapsed().as_micros() as u64,
        };
        // No record: the call is answered as if refused (it may have been
        // made: the record's failure is reported by `record`).
        if ctx.shared.record(&record).is_err() && result.is_none() {
            answer = Pass::Sandbox;
        }
    }
    match (answer, asker.rename) {
        (Pass::Sandbox, Some(call)) => {
            let target = Target {
                listener: &ctx.listener,
                id: asker.id,
                tid: asker.pid,
            };
            serve_in_sandbox(ctx, &target, call);
        }
        (answer, _) => answer_with(ctx, asker.id, answer),
    }
}

/// Answers a call not made here.
fn pass_on(ctx: &Context, target: &Target<'_>, rename: Option<guard::Call>, pass: Pass) {
    match (pass, rename) {
        (Pass::Gone, _) => {}
        (Pass::Sandbox, Some(call)) => serve_in_sandbox(ctx, target, call),
        (pass, _) => answer_with(ctx, target.id, pass),
    }
}

/// The guard makes the rename in the sandbox's own domain.
fn serve_in_sandbox(ctx: &Context, target: &Target<'_>, call: guard::Call) {
    let env = guard::Env {
        guard: &ctx.guard,
        shared: &ctx.shared,
        connector: ctx.connector.as_ref(),
        stacked: None,
    };
    guard::serve(&env, target, call);
}

/// Answers notification `id` of an unlink or rmdir (or a rename with an
/// errno): 0, an errno, or the kernel's own answer (`CONTINUE`: Landlock
/// checks the call as without the broker).
fn answer_with(ctx: &Context, id: u64, pass: Pass) {
    let listener = &ctx.listener;
    let result = match pass {
        Pass::Gone => return,
        Pass::Errno(0) => listener.succeed(id),
        Pass::Errno(errno) => listener.fail(id, errno),
        Pass::Sandbox => listener.allow_kernel(id),
    };
    if let Err(e) = result {
        tracing::debug!(id, "transparent: notification not answered: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::super::call::tests::data;
    use super::*;

    #[test]
    fn unlinkat_decodes_its_directory_its_path_and_whether_it_removes_a_directory() {
        let at = |flags: i32| {
            Remove::decode(&data(
                libc::SYS_unlinkat,
                [0xffff_ffff_0000_0007, 0x1000, flags as u64, 0, 0, 0],
            ))
            .unwrap()
        };
        let file = at(0);
        assert_eq!((file.dirfd, file.path, file.dir), (Some(7), 0x1000, false));
        assert_eq!(file.op(), Op::Unlink);
        assert_eq!(at(libc::AT_REMOVEDIR).op(), Op::Rmdir);
        assert!(at(libc::AT_REMOVEDIR).dir);
        assert!(Remove::decode(&data(libc::SYS_openat, [0; 6])).is_none());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn unlink_and_rmdir_name_from_the_working_directory() {
        let u = Remove::decode(&data(libc::SYS_unlink, [0x2000, 0, 0, 0, 0, 0])).unwrap();
        assert_eq!((u.dirfd, u.path, u.dir), (None, 0x2000, false));
        let r = Remove::decode(&data(libc::SYS_rmdir, [0x2000, 0, 0, 0, 0, 0])).unwrap();
        assert!(r.dir && r.op() == Op::Rmdir);
    }
}
