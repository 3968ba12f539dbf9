//! The check of a git configuration the program writes into place (`git
//! init`, `git clone`, `git config`, all of which write `config.lock` and
//! rename it to `config`).
//!
//! An allow-list, not a deny-list: git grows keys that run commands
//! (`core.fsmonitor`, `core.hooksPath`, `core.sshCommand`, `core.pager`,
//! `core.editor`, `!` aliases, `filter.*`, `diff.*.textconv`,
//! `diff.external`, `credential.helper`, `include.path`, `includeIf`,
//! `remote.*.uploadpack`, `hook.*.command`, ...) faster than a list of them
//! would, so only the sections and keys a repository's own configuration
//! needs are accepted, and a configuration with any other key is refused
//! whole (the rename fails with `EACCES` and the person is told which key).
//! Nothing is stripped: a repository silently missing a setting the
//! program meant is a worse surprise than a refusal that names it.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;

use sandbox_child::fsop::{self, Op};

use super::{judge, opened, perform, request, Answer, Env, Place, Refusal, Stop};

/// The most of a git configuration read for its check.
const MAX_CONFIG: u64 = 1 << 20;

/// Sections whose keys (without a subsection) are all harmless.
/// Not `gc`: `gc.recentObjectsHook` runs its command on `git gc` (with
/// cruft packs, which `gc.cruftPacks` turns on) and `gc.repackFilterTo`
/// writes a pack where it says; its other keys are in [`KEYS`].
const PLAIN: &[&str] = &[
    "pack",
    "index",
    "fetch",
    "pull",
    "push",
    "status",
    "log",
    "commit",
    "tag",
    "rebase",
    "feature",
    "maintenance",
    "advice",
    "checkout",
    "clone",
    "grep",
    "blame",
    "am",
    "apply",
    "rerere",
    "receive",
    "transfer",
    "uploadpack",
    "repack",
    "reset",
    "stash",
    "versionsort",
    "i18n",
];

/// Sections whose keys are all harmless with or without a subsection.
/// Not `lfs`: git-lfs runs what `lfs.customtransfer.<name>.path` (with
/// `lfs.standalonetransferagent`) and `lfs.extension.<name>.clean` and
/// `.smudge` name, read from the repository's configuration too.
/// Not `http` either: `http.cookieFile` with `http.saveCookies` has git's
/// curl write its cookie jar, with what the server sent, over the file it
/// names (`~/.bashrc`) on the person's next fetch ([`HTTP`]).
const ANY: &[&str] = &["extensions", "color", "branch"];

/// `http` keys, with or without a URL subsection: where and how to
/// connect, and files read, never one written.
const HTTP: &[&str] = &[
    "proxy",
    "proxyauthmethod",
    "proxysslcert",
    "proxysslkey",
    "proxysslcertpasswordprotected",
    "proxysslcainfo",
    "emptyauth",
    "delegation",
    "extraheader",
    "version",
    "curloptresolve",
    "sslversion",
    "sslcipherlist",
    "sslverify",
    "sslcert",
    "sslkey",
    "sslcertpasswordprotected",
    "sslcainfo",
    "sslcapath",
    "sslbackend",
    "schannelcheckrevoke",
    "schannelusesslcainfo",
    "sslautoclientcert",
    "pinnedpubkey",
    "ssltry",
    "maxrequests",
    "minsessions",
    "postbuffer",
    "lowspeedlimit",
    "lowspeedtime",
    "keepaliveidle",
    "keepaliveinterval",
    "keepalivecount",
    "noepsv",
    "useragent",
    "followredirects",
];

/// `(section, key)` pairs accepted without a subsection.
const KEYS: &[(&str, &str)] = &[
    ("core", "repositoryformatversion"),
    ("core", "filemode"),
    ("core", "bare"),
    ("core", "logallrefupdates"),
    ("core", "ignorecase"),
    ("core", "precomposeunicode"),
    ("core", "symlinks"),
    ("core", "autocrlf"),
    ("core", "eol"),
    ("core", "safecrlf"),
    ("core", "quotepath"),
    ("core", "abbrev"),
    ("core", "compression"),
    ("core", "loosecompression"),
    ("core", "bigfilethreshold"),
    ("core", "sparsecheckout"),
    ("core", "sparsecheckoutcone"),
    ("core", "splitindex"),
    ("core", "untrackedcache"),
    ("core", "commitgraph"),
    ("core", "multipackindex"),
    // Not `core.checkStat` nor `core.trustCtime`: with less of a file's
    // stat data compared, an edit that keeps its size and mtime (`touch -r`)
    // is not shown by the person's `git status` (the change time, which no
    // program sets back, is what shows it).
    ("core", "preloadindex"),
    ("core", "sharedrepository"),
    ("core", "whitespace"),
    ("core", "worktree"),
    ("user", "name"),
    ("user", "email"),
    ("init", "defaultbranch"),
    ("protocol", "version"),
    ("diff", "renames"),
    ("diff", "algorithm"),
    ("diff", "mnemonicprefix"),
    ("diff", "noprefix"),
    ("diff", "colormoved"),
    ("diff", "renamelimit"),
    ("merge", "conflictstyle"),
    ("merge", "ff"),
    ("merge", "log"),
    ("merge", "renames"),
    ("merge", "renamelimit"),
    ("gc", "auto"),
    ("gc", "autopacklimit"),
    ("gc", "autodetach"),
    ("gc", "bigpackthreshold"),
    ("gc", "writecommitgraph"),
    ("gc", "logexpiry"),
    ("gc", "packrefs"),
    ("gc", "cruftpacks"),
    ("gc", "maxcruftsize"),
    ("gc", "pruneexpire"),
    ("gc", "worktreepruneexpire"),
    ("gc", "reflogexpire"),
    ("gc", "reflogexpireunreachable"),
    ("gc", "rerereresolved"),
    ("gc", "rerereunresolved"),
    ("gc", "aggressivedepth"),
    ("gc", "aggressivewindow"),
    ("gc", "repackfilter"),
    // What git-lfs writes (`repositoryformatversion`) and settings that
    // name where and how it transfers, never a program.
    ("lfs", "repositoryformatversion"),
    ("lfs", "url"),
    ("lfs", "pushurl"),
    ("lfs", "locksverify"),
    ("lfs", "setlockablereadonly"),
    ("lfs", "fetchinclude"),
    ("lfs", "fetchexclude"),
    ("lfs", "concurrenttransfers"),
    ("lfs", "basictransfersonly"),
    ("lfs", "tustransfers"),
    ("lfs", "skipdownloaderrors"),
    ("lfs", "allowincompletepush"),
];

/// `(section, key)` pairs accepted with a subsection (`[remote "origin"]`).
const SUB_KEYS: &[(&str, &str)] = &[
    ("remote", "url"),
    ("remote", "pushurl"),
    ("remote", "fetch"),
    ("remote", "push"),
    ("remote", "mirror"),
    ("remote", "tagopt"),
    ("remote", "prune"),
    ("remote", "prunetags"),
    ("remote", "skipdefaultupdate"),
    ("remote", "skipfetchall"),
    ("remote", "promisor"),
    ("remote", "partialclonefilter"),
    ("submodule", "url"),
    ("submodule", "active"),
    ("submodule", "branch"),
    ("submodule", "fetchrecursesubmodules"),
    ("submodule", "ignore"),
    ("submodule", "shallow"),
    // `[lfs "https://host/info/lfs"]`, as git-lfs writes it.
    ("lfs", "access"),
    ("lfs", "locksverify"),
    ("lfs", "contenttype"),
];

/// Checks a configuration file's text: `Err` names the first key (or line)
/// that is not accepted.
pub fn check(text: &[u8]) -> Result<(), String> {
    entries(text, |section, sub, key, _| accepted(section, sub, key))
}

/// Checks a `.gitmodules` (`git submodule add`, `git mv`, `git rm` and `git
/// config -f .gitmodules` write it through a rename): only
/// `submodule.NAME.*` keys a submodule needs; `update` only as `checkout`,
/// `rebase`, `merge` or `none` (`!command` runs it on `git submodule
/// update`), and no `url` that starts with `-` (read as an option).
pub fn check_gitmodules(text: &[u8]) -> Result<(), String> {
    entries(text, |section, sub, key, value| {
        let value = value.map(|v| v.trim_matches('"'));
        sub && section == "submodule"
            && match key {
                "path" | "branch" | "fetchrecursesubmodules" | "ignore" | "shallow" => true,
                "url" => value.is_some_and(|v| !v.starts_with('-')),
                "update" => {
                    matches!(value, Some("checkout" | "rebase" | "merge" | "none"))
                }
                _ => false,
            }
    })
}

/// The last `core.hooksPath` a configuration sets (quotes taken off), as
/// git reads it; `None` if it sets none or git would not read the file.
pub fn hooks_path(text: &[u8]) -> Option<String> {
    values(text, |section, sub, key| {
        section == "core" && !sub && key == "hookspath"
    })?
    .pop()
}

/// The files a configuration includes (`include.path`, and
/// `includeIf.COND.path` whatever its condition), as written (quotes taken
/// off), in order; `None` if git would not read the file. git reads each
/// as if its text stood there: a key it sets runs as the including file's.
pub fn include_paths(text: &[u8]) -> Option<Vec<String>> {
    values(text, |section, sub, key| {
        key == "path" && ((section == "include" && !sub) || (section == "includeif" && sub))
    })
}

/// Every value a configuration gives a key `want(section, has a subsection,
/// key)` names (quotes taken off), in order; `None` if git would not read
/// the file.
fn values(text: &[u8], want: impl Fn(&str, bool, &str) -> bool) -> Option<Vec<String>> {
    let found = std::cell::RefCell::new(Vec::new());
    entries(text, |section, sub, key, value| {
        if want(section, sub, key) {
            let value = value.unwrap_or("").trim();
            let value =
                (value.strip_prefix('"').and_then(|v| v.strip_suffix('"'))).unwrap_or(value);
            found.borrow_mut().push(value.to_owned());
        }
        true
    })
    .ok()?;
    Some(found.into_inner())
}

/// Walks a configuration's keys: `ok(section, has a subsection, key, value)`
/// (the value as written after `=`, `None` if it runs on to the next line)
/// says whether each is accepted; `Err` names the first that is not.
fn entries(text: &[u8], ok: impl Fn(&str, bool, &str, Option<&str>) -> bool) -> Result<(), String> {
    let text = std::str::from_utf8(text).map_err(|_| "the file is not UTF-8 text".to_owned())?;
    let mut section: Option<(String, bool)> = None;
    // While a value runs on: whether it is inside quotes there.
    let mut continued: Option<bool> = None;
    let unreadable = |n: usize| format!("line {}: a value git would not read", n + 1);
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if let Some(quoted) = continued {
            continued = match value_end(raw, quoted).ok_or_else(|| unreadable(n))? {
                ValueEnd::Done => None,
                ValueEnd::Continued { quoted } => Some(quoted),
            };
            continue;
        }
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        let rest = if let Some(after) = line.strip_prefix('[') {
            let close = after
                .find(']')
                .ok_or_else(|| format!("line {}: a section header without ']'", n + 1))?;
            section = Some(header(&after[..close]));
            after[close + 1..].trim_start()
        } else {
            line
        };
        if rest.is_empty() || rest.starts_with(['#', ';']) {
            continue;
        }
        let key: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect::<String>()
            .to_ascii_lowercase();
        let after = rest[key.len()..].trim_start();
        if key.is_empty() || !(after.is_empty() || after.starts_with(['=', '#', ';'])) {
            return Err(format!("line {}: not a key", n + 1));
        }
        let Some((name, sub)) = &section else {
            return Err(format!("line {}: a key outside any section", n + 1));
        };
        let value = after.strip_prefix('=').map(|v| {
            let v = v.trim();
            match v.find(['#', ';']) {
                Some(at) if !v.starts_with('"') => v[..at].trim_end(),
                _ => v,
            }
        });
        let end = match after.strip_prefix('=') {
            Some(v) => value_end(v, false).ok_or_else(|| unreadable(n))?,
            None => ValueEnd::Done,
        };
        let value = value.filter(|_| end == ValueEnd::Done);
        if !ok(name, *sub, &key, value) {
            let shown = if *sub {
                format!("{name}.<name>.{key}")
            } else {
                format!("{name}.{key}")
            };
            return Err(format!("key '{shown}'"));
        }
        if let ValueEnd::Continued { quoted } = end {
            continued = Some(quoted);
        }
    }
    Ok(())
}

/// `name`, `name "sub"` or `name.sub`: the section's lowercase name and
/// whether it has a subsection.
fn header(inside: &str) -> (String, bool) {
    let inside = inside.trim();
    match inside.find([' ', '\t', '"', '.']) {
        Some(at) => (inside[..at].to_ascii_lowercase(), true),
        None => (inside.to_ascii_lowercase(), false),
    }
}

fn accepted(section: &str, sub: bool, key: &str) -> bool {
    if ANY.contains(&section) || (!sub && PLAIN.contains(&section)) {
        return true;
    }
    if section == "http" {
        return HTTP.contains(&key);
    }
    let list = if sub { SUB_KEYS } else { KEYS };
    list.iter().any(|&(s, k)| s == section && k == key)
}

/// How a value's text on one line ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueEnd {
    Done,
    /// It runs on to the next line, inside quotes or not there.
    Continued {
        quoted: bool,
    },
}

/// Reads a value's text on one line as git does (`parse_value` in its
/// `config.c`), starting inside quotes or not: quotes carry over a
/// continued line, so a `;` or `#` inside them is text and one outside
/// them starts a comment that ends the value with the line; a `\`
/// escapes one of `\ " n t b`, or continues the value when last. `None`
/// where git refuses the file (another escape, a quote left open).
fn value_end(text: &str, mut quoted: bool) -> Option<ValueEnd> {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                None => return Some(ValueEnd::Continued { quoted }),
                Some('\\' | '"' | 'n' | 't' | 'b') => {}
                Some(_) => return None,
            },
            '"' => quoted = !quoted,
            '#' | ';' if !quoted => return Some(ValueEnd::Done),
            _ => {}
        }
    }
    (!quoted).then_some(ValueEnd::Done)
}

/// The `core.worktree` a configuration at `path` sets that git would
/// check files out to outside the repository's own tree, or `None`. A
/// repository the program made with `core.worktree = ~` had the person's
/// `git reset --hard` there write the program's `.bashrc` into the home
/// directory. Only a submodule's repository (`.git/modules/NAME/config`,
/// where `git submodule` writes it) may set one, relative and naming a
/// directory within the superproject's work tree (`../../../vendor/lib`),
/// which git reaches through the submodule's own `.git` file there.
fn worktree_elsewhere(path: &std::path::Path, text: &[u8]) -> Option<String> {
    let values = values(text, |section, sub, key| {
        section == "core" && !sub && key == "worktree"
    })?;
    let inside = |value: &str| {
        let module = path.parent()?;
        let git = judge::git_dir_above(path)?;
        let relative = !value.starts_with(['/', '~']);
        let under_modules = module.starts_with(git.join("modules"));
        let at = crate::broker::safe_open::normalize(&module.join(value));
        (relative && under_modules && at.starts_with(git.parent()?) && !at.starts_with(&git))
            .then_some(())
    };
    values.into_iter().find(|v| inside(v).is_none())
}

/// A repository's configuration renamed into place: read (through a
/// descriptor the connector opens, with the program's rights), checked,
/// and written as a new file the program never held, which is renamed
/// into place; the program's file is then removed, as a rename would.
pub(super) fn put(
    env: &Env<'_>,
    src: &Place,
    dst: &Place,
    flags: u32,
    check: fn(&[u8]) -> Result<(), String>,
) -> Result<Answer, Stop> {
    let path = dst.path();
    let read = fsop::Request {
        flags: libc::O_RDONLY,
        ..request(Op::Open, &src.name, 0)
    };
    let file = opened(perform(env, &read, src.parent.as_fd(), None)?)?;
    let mut file = std::fs::File::from(file);
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() > MAX_CONFIG {
        return Err(Stop::Refused(
            path,
            Refusal {
                rule: "a git configuration that is not a small regular file".to_owned(),
                why: "git would read it",
            },
        ));
    }
    let mut text = Vec::new();
    (&mut file).take(MAX_CONFIG).read_to_end(&mut text)?;
    if let Err(key) = check(&text) {
        return Err(Stop::Refused(
            path,
            Refusal {
                rule: format!("git configuration with {key}"),
                why: "git would run a command it names",
            },
        ));
    }
    if let Some(value) = worktree_elsewhere(&path, &text) {
        return Err(Stop::Refused(
            path,
            Refusal {
                rule: format!("git configuration with core.worktree = {value}"),
                why: "the person's next checkout or reset there would write the \
                      repository's files where it names",
            },
        ));
    }
    let n = env.guard.copies.fetch_add(1, Ordering::Relaxed);
    let mut tmp = judge::OWN_PREFIX.to_vec();
    tmp.extend_from_slice(format!("{}-{n}", std::process::id()).as_bytes());
    let create = fsop::Request {
        flags: libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
        mode: std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o666,
        ..request(Op::Open, &tmp, 0)
    };
    let copy = opened(perform(env, &create, dst.parent.as_fd(), None)?)?;
    let written = std::fs::File::from(copy).write_all(&text);
    let placed = match written {
        Ok(()) => {
            let req = fsop::Request {
                flags: flags as i32,
                name2: &dst.name,
                ..request(Op::Rename, &tmp, 0)
            };
            perform(env, &req, dst.parent.as_fd(), Some(dst.parent.as_fd()))?
        }
        Err(e) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
    };
    if let Err(errno) = placed {
        let _ = perform(env, &request(Op::Unlink, &tmp, 0), dst.parent.as_fd(), None);
        return Err(Stop::Errno(errno));
    }
    // The program's own file goes, as its rename would have taken it.
    let _ = perform(
        env,
        &request(Op::Unlink, &src.name, 0),
        src.parent.as_fd(),
        None,
    );
    Ok(Answer::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_work_tree_is_set_only_for_a_submodule_within_its_superproject() {
        let w = |path: &str, value: &str| {
            let text = format!("[core]\n\tbare = false\n\tworktree = {value}\n");
            worktree_elsewhere(std::path::Path::new(path), text.as_bytes())
        };
        // As `git submodule` writes it.
        let module = "/ws/.git/modules/vendor/lib/config";
        assert_eq!(w(module, "../../../../vendor/lib"), None);
        assert_eq!(w("/ws/p/.git/modules/m/config", "\"../../../m\""), None);
        // Out of the superproject, absolute, into `.git`, or not a submodule.
        assert!(w(module, "../../../../../home").is_some());
        assert!(w(module, "/root").is_some());
        assert!(w(module, "~").is_some());
        assert!(w(module, "..").is_some());
        assert!(w("/ws/evil/.git/config", "/root").is_some());
        assert!(w("/ws/evil/.git/config", "..").is_some());
        // Control: none set.
        assert_eq!(
            worktree_elsewhere(std::path::Path::new(module), b"[core]\n\tbare = false\n"),
            None
        );
    }

    #[test]
    fn what_git_init_and_clone_write_is_accepted() {
        let init = b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n";
        assert_eq!(check(init), Ok(()));
        let clone = b"[core]\n\trepositoryformatversion = 0\n[remote \"origin\"]\n\turl = /src/repo\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n[branch \"main\"]\n\tremote = origin\n\tmerge = refs/heads/main\n[user]\n\tname = A\n";
        assert_eq!(check(clone), Ok(()));
        let lfs = b"[lfs]\n\trepositoryformatversion = 0\n[lfs \"https://h/r.git/info/lfs\"]\n\taccess = basic\n\tlocksverify = false\n";
        assert_eq!(check(lfs), Ok(()));
        let http = b"[http]\n\tsslVerify = false\n[http \"https://h/\"]\n\textraHeader = A: b\n\tproxy = socks5://p\n";
        assert_eq!(check(http), Ok(()));
        let gc = b"[gc]\n\tauto = 0\n\tautoDetach = false\n\tcruftPacks = true\n";
        assert_eq!(check(gc), Ok(()));
    }

    #[test]
    fn keys_that_run_commands_are_refused_by_name() {
        for (text, key) in [
            (
                "[core]\n\tfsmonitor = \"touch /tmp/p; false\"\n",
                "core.fsmonitor",
            ),
            ("[core]\nhooksPath = /tmp/h\n", "core.hookspath"),
            ("[CORE]\n\tsshCommand = x\n", "core.sshcommand"),
            ("[core]\n\tpager = x\n", "core.pager"),
            ("[core]\n\ttrustCtime = false\n", "core.trustctime"),
            ("[core]\n\tcheckStat = minimal\n", "core.checkstat"),
            ("[alias]\n\tst = !sh -c x\n", "alias.st"),
            ("[filter \"x\"]\n\tsmudge = x\n", "filter.<name>.smudge"),
            ("[diff \"x\"]\n\ttextconv = x\n", "diff.<name>.textconv"),
            ("[diff]\n\texternal = x\n", "diff.external"),
            ("[credential]\n\thelper = x\n", "credential.helper"),
            ("[include]\n\tpath = /tmp/c\n", "include.path"),
            (
                "[includeIf \"gitdir:/\"]\n\tpath = /tmp/c\n",
                "includeif.<name>.path",
            ),
            (
                "[remote \"o\"]\n\tuploadpack = x\n",
                "remote.<name>.uploadpack",
            ),
            ("[core] fsmonitor = x\n", "core.fsmonitor"),
            ("[core.x]\n\tfsmonitor = x\n", "core.<name>.fsmonitor"),
            (
                "[lfs]\n\tstandalonetransferagent = x\n",
                "lfs.standalonetransferagent",
            ),
            (
                "[lfs \"customtransfer.x\"]\n\tpath = sh\n",
                "lfs.<name>.path",
            ),
            ("[lfs.extension.x]\n\tsmudge = sh\n", "lfs.<name>.smudge"),
            (
                "[http]\n\tcookieFile = /home/u/.bashrc\n",
                "http.cookiefile",
            ),
            ("[gc]\n\trecentObjectsHook = x\n", "gc.recentobjectshook"),
            ("[gc]\n\trepackFilterTo = /tmp/x\n", "gc.repackfilterto"),
            (
                "[http \"https://h/\"]\n\tsaveCookies = true\n",
                "http.<name>.savecookies",
            ),
        ] {
            let err = check(text.as_bytes()).unwrap_err();
            assert_eq!(err, format!("key '{key}'"), "{text}");
        }
    }

    #[test]
    fn gitmodules_accepts_what_git_writes_and_refuses_commands() {
        let added =
            b"[submodule \"vendor/lib\"]\n\tpath = vendor/lib\n\turl = ../lib\n\tbranch = main\n";
        assert_eq!(check_gitmodules(added), Ok(()));
        assert_eq!(
            check_gitmodules(b"[submodule \"a\"]\n\tupdate = rebase\n"),
            Ok(())
        );
        for (text, key) in [
            (
                "[submodule \"a\"]\n\tupdate = !touch /tmp/x\n",
                "submodule.<name>.update",
            ),
            (
                "[submodule \"a\"]\n\tupdate = \"!sh\"\n",
                "submodule.<name>.update",
            ),
            (
                "[submodule \"a\"]\n\tupdate = a\\\n!x\n",
                "submodule.<name>.update",
            ),
            (
                "[submodule \"a\"]\n\turl = --upload-pack=x\n",
                "submodule.<name>.url",
            ),
            ("[submodule \"a\"]\n\turl\n", "submodule.<name>.url"),
            ("[core]\n\tfsmonitor = x\n", "core.fsmonitor"),
            ("[submodule]\n\tpath = x\n", "submodule.path"),
        ] {
            let err = check_gitmodules(text.as_bytes()).unwrap_err();
            assert_eq!(err, format!("key '{key}'"), "{text}");
        }
    }

    #[test]
    fn continued_values_and_comments_do_not_hide_keys() {
        // The continuation line is part of the value, not a key.
        assert_eq!(check(b"[user]\n\tname = a \\\nfsmonitor = x\n"), Ok(()));
        // A quoted backslash at the end does not continue.
        let hidden = b"[user]\n\tname = \"a\\\\\"\n[core]\n\tfsmonitor = x\n";
        assert!(check(hidden).is_err());
        assert!(check(b"# [core] fsmonitor\n[user]\nname=a ; x\n").is_ok());
        assert!(check(b"fsmonitor = x\n").is_err());
        assert!(check(b"[core\nfsmonitor = x\n").is_err());
        assert!(check(b"[core]\n\t\"fsmonitor\" = x\n").is_err());
        // Quotes carry over a continued line, as git reads it: `;` after
        // the closing quote is a comment, so the value ends there and the
        // next line is a key (git: user.name=ab, core.fsmonitor set).
        let smuggled = b"[user]\n\tname = \"a\\\nb\" ; \\\n[core] fsmonitor = x\n";
        assert!(check(smuggled).is_err());
        let quoted = b"[user]\n\tname = \"a\\\nb ; \\\nc\"\n[core]\n\tbare = false\n";
        assert_eq!(check(quoted), Ok(()));
        // What git refuses to read is refused too.
        assert!(check(b"[user]\n\tname = \"a\n").is_err());
        assert!(check(b"[user]\n\tname = a\\x\n").is_err());
    }
}
