//! Carrying out a call the guard has let through: made by the connector,
//! inside the program's sandbox, on the directory descriptor the guard
//! resolved and the name it judged (never `CONTINUE`), a symlink at the name
//! of an open followed here and judged in its turn.

use super::python::check_module;
use super::*;

/// [`carry_out`] once it is known whose sandbox the call is made in.
pub(super) fn carry_out_as(
    env: &Env<'_>,
    target: &Target<'_>,
    call: &Call,
    umask: u32,
) -> Result<Answer, Stop> {
    let root = env.guard.root(target)?;
    match *call {
        Call::Open(open) => open_or_mkdir(env, target, root, open, umask),
        Call::Mknod {
            dirfd,
            path,
            mode,
            dev,
        } => {
            let named = read_named(target, dirfd, path)?;
            target.valid()?;
            let place = env
                .guard
                .place(root, named.base.as_deref(), &named.asked)?
                .ok_or(Stop::Errno(libc::EEXIST))?;
            check_name(&place)?;
            check(env, &place, Act::Name)?;
            check_region(env, None, &place)?;
            let req = request(Op::Mknod, &place.name, umask);
            let req = fsop::Request { mode, dev, ..req };
            done(perform(env, &req, place.parent.as_fd(), None)?)
        }
        Call::Symlink {
            target: link_target,
            dirfd,
            path,
        } => {
            let content = target.read_path(link_target)?;
            let named = read_named(target, dirfd, path)?;
            target.valid()?;
            let place = env
                .guard
                .place(root, named.base.as_deref(), &named.asked)?
                .ok_or(Stop::Errno(libc::EEXIST))?;
            check_name(&place)?;
            // `ls -l` and `find -printf %l` print where it leads.
            check_naming(&content, judge::Naming::Target, || place.path())?;
            check(env, &place, Act::Name)?;
            check_region(env, None, &place)?;
            check_module(env.guard, &place, true, None)?;
            if !judge::is_gits_probe(&content) {
                check_into_git(env, None, &place)?;
                check_leads(env, root, &place, &content)?;
            }
            let req = fsop::Request {
                target: &content,
                ..request(Op::Symlink, &place.name, 0)
            };
            done(perform(env, &req, place.parent.as_fd(), None)?)
        }
        Call::Link {
            olddir,
            old,
            newdir,
            new,
            flags,
        } => {
            if flags & !(libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) != 0 {
                return Err(Stop::Errno(libc::EINVAL));
            }
            if flags & libc::AT_EMPTY_PATH != 0 {
                // A descriptor's file given a name: the guard cannot judge
                // what it is by a name. (Needs CAP_DAC_READ_SEARCH anyway.)
                return Err(Stop::Errno(libc::ENOENT));
            }
            let from = read_named(target, olddir, old)?;
            let to = read_named(target, newdir, new)?;
            target.valid()?;
            let mut src = env
                .guard
                .place(root, from.base.as_deref(), &from.asked)?
                .ok_or(Stop::Errno(libc::EPERM))?;
            if flags & libc::AT_SYMLINK_FOLLOW != 0 {
                src = follow(env, root, src)?;
            }
            let dst = env
                .guard
                .place(root, to.base.as_deref(), &to.asked)?
                .ok_or(Stop::Errno(libc::EEXIST))?;
            check_name(&dst)?;
            if let Some(link) = read_link(&src)? {
                // A second name for a symlink: where it leads from there.
                check_leads(env, root, &dst, &link)?;
            }
            check(env, &src, Act::LinkSource)?;
            check(env, &dst, Act::Name)?;
            check_region(env, Some(&src), &dst)?;
            check_into_git(env, Some(&src), &dst)?;
            // A second name: the source stays.
            check_module(env.guard, &dst, true, None)?;
            let req = fsop::Request {
                name2: &dst.name,
                ..request(Op::Link, &src.name, 0)
            };
            done(perform(
                env,
                &req,
                src.parent.as_fd(),
                Some(dst.parent.as_fd()),
            )?)
        }
        Call::Rename {
            olddir,
            old,
            newdir,
            new,
            flags,
        } => rename(env, target, root, (olddir, old), (newdir, new), flags),
        Call::Chmod {
            dirfd,
            path,
            mode,
            flags,
        } => chmod(env, target, root, (dirfd, path), mode, flags),
        Call::Fchmod { fd, mode } => fchmod(env, target, fd, mode),
        Call::Setxattr {
            path,
            dirfd,
            at_flags,
            name,
            args,
        } => setxattr(env, target, root, (dirfd, path, at_flags), name, args),
    }
}

/// A base request for `op` on `name`.
pub(super) fn request(op: Op, name: &[u8], umask: u32) -> fsop::Request<'_> {
    fsop::Request {
        op,
        flags: 0,
        mode: 0,
        umask,
        dev: 0,
        name,
        name2: b"",
        target: b"",
    }
}

pub(super) fn done(result: Result<Option<OwnedFd>, i32>) -> Result<Answer, Stop> {
    match result {
        Ok(_) => Ok(Answer::Done),
        Err(errno) => Err(Stop::Errno(errno)),
    }
}

/// Follows symlinks at `place`'s name (for `linkat(AT_SYMLINK_FOLLOW)`).
pub(super) fn follow(env: &Env<'_>, root: BorrowedFd<'_>, mut place: Place) -> Result<Place, Stop> {
    for _ in 0..MAX_LINKS {
        let Some(link) = read_link(&place)? else {
            return Ok(place);
        };
        let base = place.real.as_os_str().as_bytes().to_vec();
        place = env
            .guard
            .place(root, Some(&base), &link)?
            .ok_or(Stop::Errno(libc::EPERM))?;
    }
    Err(Stop::Errno(libc::ELOOP))
}

/// Why a symlink is not made to a protected path: said with the path.
const LEADS_WHY: &str = "the person's own tools would write through this symlink later \
    (`make > build.log`, a lock file, a build's output), into a path that runs code";

/// A symlink at `at` (its directory a real path) to `link` does not lead
/// to a path the lists protect, nor to one on the way to such a path
/// (`build.log -> ~/.bashrc`, `out -> .git/hooks/pre-commit`, `bin ->
/// ~/.local/bin`): the target resolved in the program's root from `dir`,
/// symlinks at its end followed as the person's write would; a target
/// whose directory is not there yet is judged as written. Where it leads
/// otherwise (`.venv/bin/python -> ~/.pyenv/...`) is not judged.
pub(super) fn check_leads(
    env: &Env<'_>,
    root: BorrowedFd<'_>,
    at: &Place,
    link: &[u8],
) -> Result<(), Stop> {
    // A relative target that climbs (`../../.bashrc`) leads elsewhere
    // once the link's directory is renamed higher up, which is not
    // judged then: judged here from each directory above it the sandbox
    // may write (where a rename could put it), not only from its own.
    let climbs = link.first() != Some(&b'/') && link.split(|&b| b == b'/').any(|c| c == b"..");
    let view = &env.guard.view;
    let dirs = (at.real.ancestors())
        .enumerate()
        .take_while(|(i, dir)| *i == 0 || (climbs && view.allows(dir, true)));
    for (_, dir) in dirs {
        // A loop of symlinks: nothing is written through it.
        if let Some(path) = lead(env, root, dir, link)? {
            judge_lead(env, at, path)?;
        }
    }
    Ok(())
}

/// [`check_leads`]'s judgement of where a symlink at `at` leads, `path`.
fn judge_lead(env: &Env<'_>, at: &Place, path: PathBuf) -> Result<(), Stop> {
    match check_path(env, path, Act::Name) {
        Err(Stop::Refused(target, refusal)) => Err(Stop::Refused(
            at.path(),
            Refusal {
                rule: format!(
                    "{} (this symlink would lead to {})",
                    refusal.rule,
                    crate::audit::escape::for_terminal(&target.to_string_lossy())
                ),
                why: LEADS_WHY,
            },
        )),
        other => other,
    }
}

/// Where a symlink in `dir` to `link` leads, followed to its end (a
/// directory not there yet taken as written); `None` for a loop.
fn lead(
    env: &Env<'_>,
    root: BorrowedFd<'_>,
    dir: &Path,
    link: &[u8],
) -> Result<Option<PathBuf>, Stop> {
    let (mut dir, mut link) = (dir.to_path_buf(), link.to_vec());
    for _ in 0..MAX_LINKS {
        let written = safe_open::normalize(&dir.join(OsStr::from_bytes(&link)));
        let place = match env
            .guard
            .place(root, Some(dir.as_os_str().as_bytes()), &link)
        {
            Ok(Some(place)) => place,
            // `..` or `.`: a directory, judged as it is; or not there yet.
            Ok(None) => return Ok(Some(written)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Ok(Some(written))
            }
            Err(e) => return Err(e.into()),
        };
        match read_link(&place)? {
            Some(next) => (dir, link) = (place.real, next),
            None => return Ok(Some(place.path())),
        }
    }
    Ok(None)
}

/// Whether something (a symlink too, not followed) has the name of `place`.
fn exists(place: &Place) -> io::Result<bool> {
    has_name(&place.parent, &place.name)
}

/// The target of the symlink at `place`, or `None` if it is not one.
fn read_link(place: &Place) -> io::Result<Option<Vec<u8>>> {
    let name = std::ffi::CString::new(place.name.clone())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    match nix::fcntl::readlinkat(&place.parent, name.as_c_str()) {
        Ok(target) => Ok(Some(target.into_vec())),
        Err(Errno::EINVAL | Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn open_or_mkdir(
    env: &Env<'_>,
    target: &Target<'_>,
    root: BorrowedFd<'_>,
    mut open: OpenCall,
    umask: u32,
) -> Result<Answer, Stop> {
    let mut resolve = 0;
    if let Some((addr, size)) = open.how {
        let how = target.read_struct(addr, size.min(64))?;
        let parsed = parse_how(&how).ok_or(Stop::Errno(libc::EINVAL))?;
        (open.flags, open.mode, resolve) = parsed;
    }
    if !open.mkdir() && creates_set_id(&open) {
        // What the deny filter refuses `open` and `openat`, here for every
        // call the guard carries out: `openat2`'s mode is in memory the
        // filter cannot read, and a set-user-ID or set-group-ID file, even
        // empty, keeps its bits when root later writes into it.
        return Err(Stop::Errno(libc::EPERM));
    }
    if resolve != 0 {
        return openat2_as_asked(env, target, open, resolve, umask);
    }
    let named = read_named(target, open.dirfd, open.path_addr)?;
    target.valid()?;
    if open.mkdir() {
        let place = env
            .guard
            .place(root, named.base.as_deref(), &named.asked)?
            .ok_or(Stop::Errno(libc::EEXIST))?;
        // A name that is there already is not made: what the kernel would
        // answer, with nothing judged (`mkdir -p ~/.claude` of a protected
        // directory made before launch is not a refusal).
        if exists(&place)? {
            return Err(Stop::Errno(libc::EEXIST));
        }
        check_name(&place)?;
        check(env, &place, Act::Mkdir)?;
        let req = fsop::Request {
            mode: open.mode,
            ..request(Op::Mkdir, &place.name, umask)
        };
        return done(perform(env, &req, place.parent.as_fd(), None)?);
    }
    if open.flags & libc::O_PATH != 0 {
        // `O_PATH` ignores every flag but a few: nothing is written.
        open.flags &= libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    }
    let tmpfile = open.flags & libc::O_TMPFILE == libc::O_TMPFILE;
    let (mut base, mut asked) = (named.base, named.asked);
    for _ in 0..MAX_LINKS {
        let place = match env.guard.place(root, base.as_deref(), &asked)? {
            Some(place) => place,
            // `.` or `..`: a directory, which is never opened for writing.
            None if tmpfile => {
                let dir = safe_open::openat2(
                    root.as_raw_fd(),
                    &asked,
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                    0,
                    libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
                )?;
                let real = safe_open::real_path(&dir)?;
                Place {
                    parent: dir,
                    real,
                    name: b".".to_vec(),
                }
            }
            None => return Err(Stop::Errno(libc::EISDIR)),
        };
        // An unnamed file is judged by its directory: it can only get a
        // name there through `linkat`, which is judged in its turn.
        if open.writes() || tmpfile {
            let judged = if tmpfile {
                place.real.clone()
            } else {
                place.path()
            };
            check_path(env, judged, Act::Write)?;
            if !tmpfile {
                check_module(env.guard, &place, open.create(), None)?;
            }
        }
        if open.create() && !tmpfile {
            // A name made, unless the file is there already (one the person
            // made is opened as before): the `fstatat` only for a bad name.
            if let Err(bad) = check_name(&place) {
                if !exists(&place)? {
                    return Err(bad);
                }
            }
        }
        if let Some(fd) = super::null::serve(env, &place, &open) {
            return Ok(Answer::Descriptor(fd, open.cloexec()));
        }
        let req = fsop::Request {
            flags: open.flags,
            mode: open.mode,
            ..request(Op::Open, &place.name, umask)
        };
        match perform(env, &req, place.parent.as_fd(), None)? {
            Ok(Some(fd)) => return Ok(Answer::Descriptor(fd, open.cloexec())),
            Ok(None) => return Err(Stop::Errno(libc::EIO)),
            Err(libc::ELOOP) if !open.nofollow() && !tmpfile => {
                if open.exclusive() {
                    return Err(Stop::Errno(libc::EEXIST));
                }
                match read_link(&place)? {
                    Some(link) => {
                        base = Some(place.real.as_os_str().as_bytes().to_vec());
                        asked = link;
                    }
                    None => return Err(Stop::Errno(libc::ELOOP)),
                }
            }
            Err(errno) => return Err(Stop::Errno(errno)),
        }
    }
    Err(Stop::Errno(libc::ELOOP))
}

/// Whether an open makes a file (`O_CREAT`, `O_TMPFILE`) with a
/// set-user-ID or set-group-ID bit in its mode.
fn creates_set_id(open: &OpenCall) -> bool {
    let creates =
        open.flags & libc::O_CREAT != 0 || open.flags & libc::O_TMPFILE == libc::O_TMPFILE;
    creates && open.mode & (libc::S_ISUID | libc::S_ISGID) != 0
}

/// `open_how` (`flags`, `mode`, `resolve`), as the kernel would take it;
/// `None` where it would say `EINVAL` (or, for another size, `E2BIG`).
fn parse_how(how: &[u8]) -> Option<(i32, u32, u64)> {
    if how.len() != 24 {
        return None;
    }
    let word = |i: usize| u64::from_ne_bytes(how[i * 8..i * 8 + 8].try_into().unwrap());
    let (flags, mode, resolve) = (word(0), word(1), word(2));
    if flags > u64::from(u32::MAX) || mode & !0o7777 != 0 {
        return None;
    }
    Some((flags as u32 as i32, mode as u32, resolve))
}

/// An `openat2` with `resolve` restrictions: the program relies on them (a
/// broker of its own refusing symlinks), so the connector resolves exactly
/// as asked, from the same directory, and what it found is judged before
/// anything is changed. An open that only opens is made as asked and the
/// file it opened judged (a refusal closes it unused). One that would
/// truncate or create waits for the judgement: the file there now is opened
/// without `O_CREAT` and `O_TRUNC`, judged, then truncated through that
/// same open file (whose Landlock truncate right is the sandbox's, taken at
/// the open); none there, its directory is resolved as asked, the new name
/// in it judged, and the file made there following no symlink at the name.
fn openat2_as_asked(
    env: &Env<'_>,
    target: &Target<'_>,
    open: OpenCall,
    resolve: u64,
    umask: u32,
) -> Result<Answer, Stop> {
    let asked = target.read_path(open.path_addr)?;
    let base = match open.dirfd {
        None | Some(libc::AT_FDCWD) => "cwd".to_owned(),
        Some(fd) if fd >= 0 => format!("fd/{fd}"),
        Some(_) => return Err(Stop::Errno(libc::EBADF)),
    };
    let base = safe_open::openat2(
        libc::AT_FDCWD,
        format!("/proc/{}/{base}", target.tid).as_bytes(),
        libc::O_PATH | libc::O_CLOEXEC,
        0,
        0,
    )?;
    target.valid()?;
    // `openat2` takes a mode only with `O_CREAT` or `O_TMPFILE`.
    let as_asked = |flags: i32, mode: u32, path: &'_ [u8]| {
        let req = fsop::Request {
            flags,
            mode,
            dev: resolve,
            target: path,
            ..request(Op::Openat2, b"", umask)
        };
        perform(env, &req, base.as_fd(), None)
    };
    let tmpfile = open.flags & libc::O_TMPFILE == libc::O_TMPFILE;
    let creates = open.create() && !tmpfile;
    if tmpfile || !(creates || open.truncate()) {
        let fd = opened(as_asked(open.flags, open.mode, &asked)?)?;
        if open.writes() || tmpfile {
            check_path(env, safe_open::real_path(&fd)?, Act::Write)?;
        }
        return Ok(Answer::Descriptor(fd, open.cloexec()));
    }
    let there = open.flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC);
    match as_asked(there, 0, &asked)? {
        Ok(fd) => {
            let fd = fd.ok_or(Stop::Errno(libc::EIO))?;
            if open.exclusive() {
                return Err(Stop::Errno(libc::EEXIST));
            }
            check_path(env, safe_open::real_path(&fd)?, Act::Write)?;
            // The kernel ignores `O_TRUNC` on anything but a regular file.
            let regular = sys::fs::fstat(&fd)?.st_mode & libc::S_IFMT == libc::S_IFREG;
            if open.truncate() && regular {
                // A read-only open file cannot be truncated (`EINVAL`).
                nix::unistd::ftruncate(&fd, 0).map_err(|e| Stop::Errno(e as i32))?;
            }
            Ok(Answer::Descriptor(fd, open.cloexec()))
        }
        Err(libc::ENOENT) if creates => {
            let (parent, name) = split_last(&asked)?;
            let flags = libc::O_PATH | libc::O_DIRECTORY;
            let parent = opened(as_asked(flags, 0, parent)?)?;
            let place = Place {
                real: safe_open::real_path(&parent)?,
                parent,
                name: name.to_vec(),
            };
            check_name(&place)?;
            check(env, &place, Act::Write)?;
            check_module(env.guard, &place, true, None)?;
            let req = fsop::Request {
                flags: open.flags,
                mode: open.mode,
                ..request(Op::Open, &place.name, umask)
            };
            let fd = opened(perform(env, &req, place.parent.as_fd(), None)?)?;
            Ok(Answer::Descriptor(fd, open.cloexec()))
        }
        Err(errno) => Err(Stop::Errno(errno)),
    }
}

/// A path's directory and final name, for a file to be made there: a path
/// ending in `/`, `.` or `..` names a directory (`EISDIR`, as the kernel
/// answers a create there).
fn split_last(path: &[u8]) -> Result<(&[u8], &[u8]), Stop> {
    let (parent, name): (&[u8], &[u8]) = match path.iter().rposition(|&b| b == b'/') {
        Some(0) => (b"/", &path[1..]),
        Some(at) => (&path[..at], &path[at + 1..]),
        None => (b".", path),
    };
    if name.is_empty() || name == b"." || name == b".." {
        return Err(Stop::Errno(libc::EISDIR));
    }
    Ok((parent, name))
}

fn rename(
    env: &Env<'_>,
    target: &Target<'_>,
    root: BorrowedFd<'_>,
    (olddir, old): (Option<i32>, u64),
    (newdir, new): (Option<i32>, u64),
    flags: u32,
) -> Result<Answer, Stop> {
    let known = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE | libc::RENAME_WHITEOUT;
    if flags & !known != 0 {
        return Err(Stop::Errno(libc::EINVAL));
    }
    let from = read_named(target, olddir, old)?;
    let to = read_named(target, newdir, new)?;
    target.valid()?;
    let src = env
        .guard
        .place(root, from.base.as_deref(), &from.asked)?
        .ok_or(Stop::Errno(libc::EBUSY))?;
    let dst = env
        .guard
        .place(root, to.base.as_deref(), &to.asked)?
        .ok_or(Stop::Errno(libc::EBUSY))?;
    let exchange = flags & libc::RENAME_EXCHANGE != 0;
    if !exchange {
        // An exchange makes no name: both are there already.
        check_name(&dst)?;
    }
    check(
        env,
        &src,
        if exchange {
            Act::Name
        } else {
            Act::RenameSource
        },
    )?;
    if let Err(refused) = check(env, &dst, Act::Name) {
        let plain = flags & !libc::RENAME_NOREPLACE == 0;
        let path = dst.path();
        if plain && !dst.real.starts_with("/proc") {
            // A bare repository's (its directory holds HEAD) is checked
            // as a `.git`'s.
            let bare = || -> io::Result<bool> {
                Ok(judge::as_git_config(&path).is_some()
                    && env.guard.holds(&mut None, &dst.real, HEAD)?)
            };
            if judge::is_git_config(&path) || bare()? {
                return gitconfig::put(env, &src, &dst, flags, gitconfig::check);
            }
            if path.file_name() == Some(OsStr::new(".gitmodules")) {
                return gitconfig::put(env, &src, &dst, flags, gitconfig::check_gitmodules);
            }
        }
        return Err(refused);
    }
    check_region(env, Some(&src), &dst)?;
    check_into_git(env, Some(&src), &dst)?;
    // A symlink moved: where its target leads from its new place.
    if let Some(link) = read_link(&src)? {
        check_leads(env, root, &dst, &link)?;
    }
    if exchange {
        check_region(env, Some(&dst), &src)?;
        check_into_git(env, Some(&dst), &src)?;
        if let Some(link) = read_link(&dst)? {
            check_leads(env, root, &src, &link)?;
        }
    } else {
        check_module(env.guard, &dst, true, Some(&src))?;
    }
    let req = fsop::Request {
        flags: flags as i32,
        name2: &dst.name,
        ..request(Op::Rename, &src.name, 0)
    };
    done(perform(
        env,
        &req,
        src.parent.as_fd(),
        Some(dst.parent.as_fd()),
    )?)
}

/// The descriptor an open the connector made gave, or its error.
pub(super) fn opened(result: Result<Option<OwnedFd>, i32>) -> Result<OwnedFd, Stop> {
    match result {
        Ok(Some(fd)) => Ok(fd),
        Ok(None) => Err(Stop::Errno(libc::EIO)),
        Err(errno) => Err(Stop::Errno(errno)),
    }
}

/// Has the connector carry out `req`; the inner result is its answer.
pub(super) fn perform(
    env: &Env<'_>,
    req: &fsop::Request<'_>,
    dir: BorrowedFd<'_>,
    dir2: Option<BorrowedFd<'_>>,
) -> io::Result<Result<Option<OwnedFd>, i32>> {
    let Some(conn) = env.connector else {
        return Ok(Err(libc::EPERM));
    };
    let mut bytes = Vec::with_capacity(64);
    if fsop::encode(req, &mut bytes).is_none() {
        return Ok(Err(libc::ENAMETOOLONG));
    }
    let mut fds = vec![dir.as_raw_fd()];
    fds.extend(dir2.map(|d| d.as_raw_fd()));
    if let Err(errno) = fsop::send(conn.as_raw_fd(), &bytes, &fds) {
        connector_lost(&format_args!("guard: sending: errno {errno}"));
        return Ok(Err(libc::EPERM));
    }
    let mut buf = [0u8; 16];
    let got = recv_frame(conn.as_fd(), &mut buf, Blocking::Yes)?;
    if got.len != 4 {
        connector_lost(&"guard: no answer");
        return Ok(Err(libc::EPERM));
    }
    let rc = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let mut fds = got.fds.into_iter();
    match (rc, fds.next()) {
        (0, fd) => Ok(Ok(fd)),
        (rc, _) => Ok(Err(-rc)),
    }
}
