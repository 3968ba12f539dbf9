//! What the sandbox refused the program, said back to the person: a short
//! summary when the program fails (or with `-v`), with the flag that would
//! allow each refusal, and `run --learn FILE`, a policy extending the one
//! used that allows them, for the person to review.
//!
//! The refusals are those the broker and the guard decided (recorded in the
//! audit, grouped by [`crate::audit::AuditLog`]). Under `--transparent` (and
//! `--learn`, which implies it) that is every open the sandbox's own trees
//! would refuse; without it, Landlock refuses in the kernel and sluice is
//! not told: only the guard's refusals and the SDK's requests are known.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::audit::escape::{for_terminal, path_for_terminal};
use crate::audit::{Access, By, Op, Refused};
use crate::broker::transparent::socket;

/// The most lines the summary prints; the rest are counted.
const MAX_LINES: usize = 20;

/// How a refusal could be lifted.
enum Lift {
    /// `--allow-read PATH` / `--allow-write PATH` (a directory when several
    /// refusals share it).
    Flag { write: bool, target: PathBuf },
    /// A deny rule or a protected path: no extending policy lifts it.
    Never(String),
    /// Relative to the program's directory: see the audit record.
    Relative,
    /// A connection (`tcp 1.2.3.4:443`, a unix socket).
    Connect,
    /// An IP socket under `[network] mode = "none"` (`transparent::socket`).
    Network,
}

fn writes(access: Access) -> bool {
    matches!(access, Access::Write | Access::ReadWrite)
}

/// Each refusal with how it could be lifted; refusals of several paths in
/// one directory (not `/` or the home directory) are lifted by the directory.
fn lifts<'a>(refused: &'a [Refused], home: &Path) -> Vec<(&'a Refused, Lift)> {
    let liftable = |r: &Refused| match r.by {
        By::Protected => false,
        By::Rule => !r.rule.as_deref().unwrap_or("").starts_with("deny "),
        _ => true,
    };
    let mut siblings: BTreeMap<(&Path, bool), usize> = BTreeMap::new();
    for r in refused
        .iter()
        .filter(|r| liftable(r) && r.path.is_absolute())
    {
        if let Some(parent) = r.path.parent() {
            *siblings.entry((parent, writes(r.access))).or_default() += 1;
        }
    }
    refused
        .iter()
        .map(|r| {
            let lift = if r.rule.as_deref() == Some(socket::RULE) {
                Lift::Network
            } else if r.op == Op::Connect && liftable(r) {
                Lift::Connect
            } else if !liftable(r) {
                let why = r.rule.clone().unwrap_or_else(|| r.by.as_str().to_owned());
                Lift::Never(why)
            } else if !r.path.is_absolute() {
                Lift::Relative
            } else {
                let write = writes(r.access);
                let target = match r.path.parent() {
                    Some(parent)
                        if parent != Path::new("/")
                            && parent != home
                            && siblings.get(&(parent, write)).copied().unwrap_or(0) > 1 =>
                    {
                        parent.to_path_buf()
                    }
                    _ => r.path.clone(),
                };
                Lift::Flag { write, target }
            };
            (r, lift)
        })
        .collect()
}

/// `path` with the home directory written `~`.
fn tilde(path: &Path, home: &Path) -> String {
    match path.strip_prefix(home) {
        Ok(rest) if rest.as_os_str().is_empty() => "~".to_owned(),
        Ok(rest) => format!("~/{}", rest.display()),
        Err(_) => path.display().to_string(),
    }
}

/// [`tilde`], safe to print: the program chose these names, and a control
/// or bidi character in one must not act on the person's terminal, nor end
/// a comment line of the learnt policy.
fn shown(path: &Path, home: &Path) -> String {
    let safe = path_for_terminal;
    match path.strip_prefix(home) {
        Ok(rest) if rest.as_os_str().is_empty() => "~".to_owned(),
        Ok(rest) => format!("~/{}", safe(rest)),
        Err(_) => safe(path),
    }
}

/// The summary printed on standard error: one line per refused path.
pub fn summary(session: &str, refused: &[Refused], home: &Path) -> String {
    let mut out = format!(
        "sluice: the sandbox refused the program {} path{} (`sluice audit show {session}` has each):\r\n",
        refused.len(),
        if refused.len() == 1 { "" } else { "s" }
    );
    for (r, lift) in lifts(refused, home).into_iter().take(MAX_LINES) {
        let times = if r.count > 1 {
            format!(" ({} times)", r.count)
        } else {
            String::new()
        };
        let what = match (&lift, r.op) {
            (Lift::Network, _) => "reach",
            (_, Op::Connect) => "connect",
            _ => r.access.as_str(),
        };
        let how = match lift {
            Lift::Flag { write, target } => {
                let flag = if write {
                    "--allow-write"
                } else {
                    "--allow-read"
                };
                format!("allow with {flag} {}", shown(&target, home))
            }
            Lift::Never(why) => format!("refused by {}: no flag lifts it", for_terminal(&why)),
            Lift::Relative => "a relative path: see the audit record".to_owned(),
            Lift::Connect => "a connection: allow it with --net (or [network])".to_owned(),
            Lift::Network => "allow hosts with --allow-host HOST[:PORT], or --net all".to_owned(),
        };
        let _ = write!(out, "  {what} {}{times}: {how}\r\n", shown(&r.path, home));
    }
    if refused.len() > MAX_LINES {
        let _ = write!(out, "  ... and {} more\r\n", refused.len() - MAX_LINES);
    }
    out
}

/// A TOML basic string (JSON's escapes are TOML's).
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// The policy `run --learn` writes: `extends` the one used (`base`, a
/// built-in name or an absolute file path) and allows, optionally, what was
/// refused and exists now; the rest are listed as comments.
pub fn learned_policy(session: &str, base: &str, refused: &[Refused], home: &Path) -> String {
    let mut read = Vec::new();
    let mut write = Vec::new();
    let mut notes = Vec::new();
    for (r, lift) in lifts(refused, home) {
        let name = shown(&r.path, home);
        match lift {
            Lift::Flag { write: w, target } if target.exists() => {
                // `$` starts a variable in a policy path.
                let entry = tilde(&target, home).replace('$', "$$");
                let list = if w { &mut write } else { &mut read };
                if !list.contains(&entry) {
                    list.push(entry);
                }
            }
            Lift::Flag { .. } => notes.push(format!(
                "{} {name}: missing now (a path must exist to be allowed)",
                r.access
            )),
            Lift::Never(why) => {
                notes.push(format!("{} {name}: {why} (no policy lifts it)", r.access))
            }
            Lift::Relative => notes.push(format!("{} {name}: a relative path", r.access)),
            Lift::Connect => notes.push(format!("connect {name}: see [network]")),
            Lift::Network => notes.push(format!("{name}: see [network] hosts")),
        }
    }
    let mut out = format!(
        "# Written by `sluice run --learn` (session {session}): what policy '{base}'\n\
         # refused the program, allowed. Review every line before you use it\n\
         # (`sluice run --policy THIS-FILE -- CMD`): each one widens the sandbox.\n\n\
         extends = [{}]\n\n[filesystem]\n",
        quoted(base)
    );
    for (key, list) in [("read", &read), ("write", &write)] {
        let _ = writeln!(out, "{key} = [");
        for entry in list {
            let _ = writeln!(out, "    {{ path = {}, optional = true }},", quoted(entry));
        }
        out.push_str("]\n");
    }
    if !notes.is_empty() {
        out.push_str("\n# Refused, not added:\n");
        for note in notes {
            let _ = writeln!(out, "#   {}", for_terminal(&note));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(path: &str, access: Access, by: By, rule: Option<&str>) -> Refused {
        Refused {
            path: PathBuf::from(path),
            op: Op::Open,
            access,
            count: 1,
            by,
            rule: rule.map(str::to_owned),
        }
    }

    #[test]
    fn siblings_are_allowed_by_their_directory_but_never_home_or_root() {
        let home = Path::new("/home/u");
        let by = By::NonInteractiveDefault;
        let list = [
            refused("/home/u/.cargo/registry/a", Access::Read, by, None),
            refused("/home/u/.cargo/registry/b", Access::Read, by, None),
            refused("/home/u/.gitconfig", Access::Read, by, None),
            refused("/home/u/.npmrc2", Access::Read, by, None),
            refused("/etc/x", Access::Write, by, None),
            refused("/a", Access::Read, by, None),
            refused("/b", Access::Read, by, None),
            refused(
                "/home/u/.ssh/id_rsa",
                Access::Read,
                By::Rule,
                Some("deny \"~/.ssh\" (default:1)"),
            ),
            refused("/home/u/.bashrc", Access::Write, By::Protected, None),
            refused("rel/x", Access::Read, by, None),
        ];
        let text = summary("s1", &list, home);
        for line in [
            "read ~/.cargo/registry/a: allow with --allow-read ~/.cargo/registry\r\n",
            "read ~/.gitconfig: allow with --allow-read ~/.gitconfig\r\n",
            "write /etc/x: allow with --allow-write /etc/x\r\n",
            "read /a: allow with --allow-read /a\r\n",
            "read ~/.ssh/id_rsa: refused by deny \"~/.ssh\" (default:1): no flag lifts it\r\n",
            "write ~/.bashrc: refused by protected: no flag lifts it\r\n",
            "read rel/x: a relative path: see the audit record\r\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
    }

    #[test]
    fn a_learnt_policy_extends_the_base_and_adds_only_what_may_be_lifted() {
        let dir = std::env::temp_dir().join(format!("sluice-learn-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let home = dir.as_path();
        let by = By::NonInteractiveDefault;
        let data = dir.join("data");
        let list = [
            refused(data.to_str().unwrap(), Access::Read, by, None),
            refused(dir.join("gone").to_str().unwrap(), Access::Read, by, None),
            refused(
                dir.join(".ssh/k").to_str().unwrap(),
                Access::Read,
                By::Rule,
                Some("deny \"~/.ssh\""),
            ),
        ];
        let text = learned_policy("s1", "/p/base.toml", &list, home);
        std::fs::remove_dir_all(&dir).ok();
        assert!(text.contains("extends = [\"/p/base.toml\"]"), "{text}");
        assert!(
            text.contains("{ path = \"~/data\", optional = true }"),
            "{text}"
        );
        assert!(text.contains("#   read ~/gone: missing now"), "{text}");
        assert!(
            text.contains("#   read ~/.ssh/k: deny \"~/.ssh\" (no policy lifts it)"),
            "{text}"
        );
        let table: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(table["filesystem"]["read"].as_array().unwrap().len(), 1);
    }
}
