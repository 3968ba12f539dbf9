//! The person's "always" answers: `$XDG_CONFIG_HOME/sluice/approvals.toml`.
//!
//! A policy file with a `[broker]` table holding `allow`, `allow_write` and
//! `deny` patterns, and a `[network]` table holding `hosts` and
//! `deny_hosts` entries (`example.com:443`), and nothing else (see
//! policies/FORMAT.md, "The approvals overlay"). It is read when a session starts and consulted only for
//! requests the session's policy would put to a person (`ask` rules): it
//! can answer a question, never widen what the policy allows or refuses.
//! The configuration directory is denied to the sandbox and protected from
//! the broker, so only the person (and sluice on their behalf) writes here.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use policies::{BrokerPolicy, Host, HostRule, Vars, Verdict, Want};

/// The overlay's name in the configuration directory.
pub const FILE_NAME: &str = "approvals.toml";

const LISTS: [&str; 3] = ["allow", "allow_write", "deny"];

/// The `[network]` lists: hosts allowed always, and denied always.
const HOST_LISTS: [&str; 2] = ["hosts", "deny_hosts"];

const HEADER: &str = "\
# sluice: answers given \"always\" at an approval prompt.
# Read when a session starts; consulted only for requests the session's
# policy would ask a person about. Edit freely (see policies/FORMAT.md,
# \"The approvals overlay\"); sluice rewrites this file when it adds an answer.

";

/// The overlay as loaded for one session.
#[derive(Debug, Default)]
pub struct Overlay {
    rules: BrokerPolicy,
    /// `[network] hosts` and `deny_hosts`.
    hosts: Vec<HostRule>,
    deny_hosts: Vec<HostRule>,
    /// The file's name, for the rules' text.
    name: String,
}

/// An answer the overlay gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    pub allow: bool,
    /// The rule's text, e.g. `allow "/h/notes.txt" (approvals.toml:6)`.
    pub rule: String,
}

impl Overlay {
    /// Loads `file`; a missing file is an empty overlay. A file that is not
    /// a `[broker]` table of the three lists is an error naming it: better
    /// no session than answers the person did not give.
    pub fn load(file: &Path, vars: &Vars) -> Result<Overlay> {
        let text = match policies::read_policy_file(file) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Overlay::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        let shape = || format!("approvals overlay {}", file.display());
        let mut table = check_shape(&text).with_context(shape)?;
        // The `[network]` lists are the overlay's own (a policy has no
        // `deny_hosts`): read here; the rest is a policy's `[broker]`.
        let (lists, text) = match table.remove("network") {
            None => (Default::default(), text),
            Some(network) => (
                host_lists(&network).with_context(shape)?,
                toml::to_string(&table).context("reading the overlay")?,
            ),
        };
        let dir = file.parent().unwrap_or(Path::new("/"));
        let spec =
            policies::load_str(&file.display().to_string(), &text, dir).with_context(shape)?;
        let policy = spec.resolve(vars).with_context(shape)?;
        let [hosts, deny_hosts] = lists;
        Ok(Overlay {
            rules: policy.broker,
            hosts,
            deny_hosts,
            name: file
                .file_name()
                .map_or_else(|| FILE_NAME.into(), |n| n.to_string_lossy().into_owned()),
        })
    }

    /// The remembered answer for a connection `ask_hosts` would put to the
    /// person: a `deny_hosts` entry wins over a `hosts` one.
    pub fn decide_host(&self, host: &Host, port: u16) -> Option<Remembered> {
        let found = |list: &[HostRule], key| {
            list.iter()
                .find(|r| r.matches(host, port))
                .map(|r| Remembered {
                    allow: key == "hosts",
                    rule: format!("{key} \"{r}\" ({})", self.name),
                })
        };
        found(&self.deny_hosts, "deny_hosts").or_else(|| found(&self.hosts, "hosts"))
    }

    /// The remembered answer for a request the policy asks about, if any.
    /// An `allow` entry (read only) leaves a write request to the person.
    pub fn decide(&self, path: &Path, write: bool) -> Option<Remembered> {
        let want = if write { Want::ReadWrite } else { Want::Read };
        let d = self.rules.decide(path, want);
        let rule = d.rule?;
        match (d.verdict, rule.verdict) {
            (Verdict::Allow, _) => Some(Remembered {
                allow: true,
                rule: rule.to_string(),
            }),
            (Verdict::Deny, Verdict::Deny) => Some(Remembered {
                allow: false,
                rule: rule.to_string(),
            }),
            _ => None,
        }
    }
}

/// The approvals overlay in `file`, and whether answers may be remembered
/// there; an empty one, with a warning naming why, where a sandbox could
/// have written it ([`distrust`]). One home for both launchers.
pub fn load_trusted(
    file: &Path,
    writable: &[PathBuf],
    workspace: &Path,
    nested: bool,
    vars: &Vars,
) -> Result<(Overlay, bool)> {
    match distrust(file, writable, workspace, nested) {
        None => Ok((Overlay::load(file, vars)?, true)),
        Some(why) => {
            tracing::warn!(
                "ignoring the approvals overlay {}: {why}. Keep it where only you can \
                 write, outside every tree a sandbox may write",
                file.display()
            );
            Ok((Overlay::default(), false))
        }
    }
}

/// Why `file` cannot be taken for the person's own answers, or `None` if it
/// can (or does not exist). It is trusted only where no sandbox could have
/// written it: not when this sluice runs inside a sluice sandbox, not in a
/// tree the current policy makes writable (`writable`) nor in the
/// workspace, and only if it is a regular file owned by us that neither
/// group nor others can write, in directories owned by us or root that
/// neither group nor others can write (sticky ones, like `/tmp`, aside).
/// `file` is canonical but for its last component.
pub fn distrust(
    file: &Path,
    writable: &[PathBuf],
    workspace: &Path,
    nested: bool,
) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = match fs::symlink_metadata(file) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => return Some(format!("it cannot be examined: {e}")),
    };
    if nested {
        return Some(
            "this sluice runs inside another sluice sandbox, whose program could have written it"
                .to_owned(),
        );
    }
    if let Some(tree) = writable.iter().find(|tree| file.starts_with(tree)) {
        return Some(format!(
            "it lies in {}, which this session's program may write",
            tree.display()
        ));
    }
    if file.starts_with(workspace) {
        return Some(format!("it lies in the workspace {}", workspace.display()));
    }
    let us = nix::unistd::geteuid().as_raw();
    if !meta.is_file() {
        return Some("it is not a regular file".to_owned());
    }
    if meta.uid() != us {
        return Some(format!(
            "it is owned by uid {}, not by uid {us}",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "group or others may write it (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    for dir in file.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(dir) else {
            return Some(format!(
                "its directory {} cannot be examined",
                dir.display()
            ));
        };
        if meta.uid() != us && meta.uid() != 0 {
            return Some(format!(
                "its directory {} is owned by uid {}",
                dir.display(),
                meta.uid()
            ));
        }
        // 0o1000: the sticky bit (`S_ISVTX`, whose libc type is u16 on
        // macOS).
        if meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0 {
            return Some(format!(
                "group or others may write its directory {} (mode {:o})",
                dir.display(),
                meta.mode() & 0o7777
            ));
        }
    }
    None
}

/// Only `[broker]`, and in it only `allow`, `allow_write` and `deny`; and
/// `[network]`, and in it only `hosts` and `deny_hosts`.
fn check_shape(text: &str) -> Result<toml::Table> {
    let table: toml::Table = text.parse().context("not valid TOML")?;
    for (key, value) in &table {
        let lists: &[&str] = match key.as_str() {
            "broker" => &LISTS,
            "network" => &HOST_LISTS,
            _ => bail!(
                "unexpected key '{key}': the overlay holds only a [broker] and a [network] table"
            ),
        };
        let Some(inner) = value.as_table() else {
            bail!("'{key}' must be a table");
        };
        if let Some(k) = inner.keys().find(|k| !lists.contains(&k.as_str())) {
            bail!(
                "unexpected key '{key}.{k}': the overlay's [{key}] holds {}",
                lists.join(", ")
            );
        }
        if key == "network" {
            host_lists(value)?;
        }
    }
    Ok(table)
}

/// `[network] hosts` and `deny_hosts`: lists of host rules.
fn host_lists(network: &toml::Value) -> Result<[Vec<HostRule>; 2]> {
    let mut lists: [Vec<HostRule>; 2] = Default::default();
    for (list, rules) in HOST_LISTS.iter().zip(&mut lists) {
        let Some(value) = network.get(list) else {
            continue;
        };
        let Some(entries) = value.as_array() else {
            bail!("network.{list} must be a list of hosts");
        };
        for entry in entries {
            let Some(entry) = entry.as_str() else {
                bail!("network.{list} holds {entry}, not a host");
            };
            rules.push(entry.parse().map_err(anyhow::Error::msg)?);
        }
    }
    Ok(lists)
}

/// Adds `path` to the overlay: `allow` (or `allow_write` for a request that
/// writes) or `deny`. The file is rewritten whole through a new file renamed
/// over it, so a crash leaves the old or the new overlay, never half of one.
pub fn remember(file: &Path, path: &Path, write: bool, allow: bool) -> Result<()> {
    let Some(text_path) = path.to_str() else {
        bail!("{} is not UTF-8 text", path.display());
    };
    let list = match (allow, write) {
        (false, _) => "deny",
        (true, false) => "allow",
        (true, true) => "allow_write",
    };
    add_entry(file, "broker", list, policies::literal_pattern(text_path))
}

/// Adds `target` (`host:port`) to the overlay's `[network] hosts`, or to
/// `deny_hosts`, as [`remember`] does for paths.
pub fn remember_host(file: &Path, target: &str, allow: bool) -> Result<()> {
    // Written only if it reads back as the one host and port.
    let rule: HostRule = target.parse().map_err(anyhow::Error::msg)?;
    if !rule.is_exact() || rule.port.is_none() {
        bail!("{target} is not one host and port");
    }
    let list = if allow { "hosts" } else { "deny_hosts" };
    add_entry(file, "network", list, target.to_owned())
}

/// Adds `entry` to `[table] list` of the overlay, rewriting it whole.
fn add_entry(file: &Path, table_name: &str, list: &str, entry: String) -> Result<()> {
    let old = match policies::read_policy_file(file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let mut table = check_shape(&old).with_context(|| format!("{} is damaged", file.display()))?;
    let inner = table
        .entry(table_name)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .expect("checked: a table");
    let entries = inner
        .entry(list)
        .or_insert_with(|| toml::Value::Array(Vec::new()));
    let Some(entries) = entries.as_array_mut() else {
        bail!("{}: {table_name}.{list} is not a list", file.display());
    };
    let entry = toml::Value::String(entry);
    if !entries.contains(&entry) {
        entries.push(entry);
    }
    let body = toml::to_string(&table).context("writing the overlay")?;
    replace(file, &format!("{HEADER}{body}"))
}

fn replace(file: &Path, text: &str) -> Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let temp: PathBuf = dir.join(format!(".{FILE_NAME}.{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&temp, file)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&temp);
        anyhow::Error::new(e).context(format!("writing {}", file.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(dir: &Path) -> Vars {
        Vars {
            home: dir.to_path_buf(),
            workspace: dir.to_path_buf(),
            tmpdir: dir.to_path_buf(),
        }
    }

    /// A fresh private directory by its canonical path, removed when the guard
    /// drops.
    fn temp_dir() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        (tmp, dir)
    }

    #[test]
    fn an_overlay_is_trusted_only_where_no_sandbox_could_have_written_it() {
        use std::os::unix::fs::PermissionsExt;
        let (_tmp, dir) = temp_dir();
        let file = dir.join(FILE_NAME);
        let elsewhere = Path::new("/nonexistent-workspace");
        let mode = |p: &Path, m| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
        assert_eq!(distrust(&file, &[], elsewhere, false), None, "no file");
        fs::write(&file, "").unwrap();
        mode(&file, 0o600);
        mode(&dir, 0o700);
        assert_eq!(distrust(&file, &[], elsewhere, false), None);

        let why = |w: &[PathBuf], ws: &Path, nested| distrust(&file, w, ws, nested).unwrap();
        assert!(why(&[], elsewhere, true).contains("inside another sluice sandbox"));
        assert!(why(std::slice::from_ref(&dir), elsewhere, false).contains("may write"));
        assert!(why(&[], &dir, false).contains("workspace"));
        mode(&file, 0o620);
        assert!(why(&[], elsewhere, false).contains("mode 620"));
        mode(&file, 0o600);
        mode(&dir, 0o777);
        assert!(why(&[], elsewhere, false).contains("its directory"));
        mode(&dir, 0o1777);
        assert_eq!(distrust(&file, &[], elsewhere, false), None, "sticky");
    }

    #[test]
    fn remembered_answers_load_in_the_next_session() {
        let (_tmp, dir) = temp_dir();
        let file = dir.join(FILE_NAME);
        assert!(Overlay::load(&file, &vars(&dir))
            .unwrap()
            .decide(&dir, false)
            .is_none());
        let odd = dir.join("we*rd [x] $HOME.txt");
        remember(&file, &odd, false, true).unwrap();
        remember(&file, &dir.join("rw.txt"), true, true).unwrap();
        remember(&file, &dir.join("no.txt"), false, false).unwrap();
        remember(&file, &odd, false, true).unwrap();
        let overlay = Overlay::load(&file, &vars(&dir)).unwrap();
        let got = overlay.decide(&odd, false).unwrap();
        assert!(got.allow, "{got:?}");
        assert!(got.rule.starts_with("allow "), "{got:?}");
        // Only the path itself: the pattern's characters are not wildcards.
        assert!(overlay
            .decide(&dir.join("weird [x] $HOME.txt"), false)
            .is_none());
        // Read only: a write is still the person's to decide.
        assert!(overlay.decide(&odd, true).is_none());
        assert!(overlay.decide(&dir.join("rw.txt"), true).unwrap().allow);
        assert!(!overlay.decide(&dir.join("no.txt"), true).unwrap().allow);
        let text = fs::read_to_string(&file).unwrap();
        assert_eq!(text.matches("we*rd").count(), 0, "{text}");
        assert_eq!(text.matches("we[*]rd").count(), 1, "{text}");
    }

    #[test]
    fn remembered_hosts_load_in_the_next_session_next_to_paths() {
        let (_tmp, dir) = temp_dir();
        let file = dir.join(FILE_NAME);
        remember(&file, &dir.join("a.txt"), false, true).unwrap();
        remember_host(&file, "api.example.com:443", true).unwrap();
        remember_host(&file, "[::1]:8080", true).unwrap();
        remember_host(&file, "evil.example.com:443", false).unwrap();
        remember_host(&file, "api.example.com:443", true).unwrap();
        assert!(remember_host(&file, "*.example.com:443", true).is_err());
        assert!(remember_host(&file, "example.com", true).is_err());
        let overlay = Overlay::load(&file, &vars(&dir)).unwrap();
        let host = |h: &str| Host::parse(h).unwrap();
        let got = overlay.decide_host(&host("api.example.com"), 443).unwrap();
        assert!(got.allow, "{got:?}");
        assert_eq!(got.rule, "hosts \"api.example.com:443\" (approvals.toml)");
        assert!(overlay.decide_host(&host("api.example.com"), 80).is_none());
        assert!(overlay
            .decide_host(&host("x.api.example.com"), 443)
            .is_none());
        assert!(overlay.decide_host(&host("::1"), 8080).unwrap().allow);
        assert!(
            !overlay
                .decide_host(&host("evil.example.com"), 443)
                .unwrap()
                .allow
        );
        // The paths are still there.
        assert!(overlay.decide(&dir.join("a.txt"), false).unwrap().allow);
        let text = fs::read_to_string(&file).unwrap();
        assert_eq!(text.matches("api.example.com:443").count(), 1, "{text}");
        // Written by hand: a pattern, and deny wins.
        fs::write(
            &file,
            "[network]\nhosts = [\"*.example.org\", \"x.example.org\"]\n\
             deny_hosts = [\"x.example.org:443\"]\n",
        )
        .unwrap();
        let overlay = Overlay::load(&file, &vars(&dir)).unwrap();
        assert!(
            overlay
                .decide_host(&host("a.example.org"), 443)
                .unwrap()
                .allow
        );
        assert!(
            !overlay
                .decide_host(&host("x.example.org"), 443)
                .unwrap()
                .allow
        );
        assert!(
            overlay
                .decide_host(&host("x.example.org"), 80)
                .unwrap()
                .allow
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_overlay_with_anything_else_is_refused() {
        let (_tmp, dir) = temp_dir();
        let file = dir.join(FILE_NAME);
        for bad in [
            "[filesystem]\nread = [\"/\"]\n",
            "extends = [\"default\"]\n",
            "[broker]\nask = [\"/\"]\n",
            "[broker]\nallow = \"/x\"\n",
            "[broker\n",
            "[network]\nmode = \"all\"\n",
            "[network]\nask_hosts = true\n",
            "[network]\nhosts = [\"not a host\"]\n",
            "[network]\nhosts = [3]\n",
            "[network]\nhosts = \"example.com\"\n",
        ] {
            fs::write(&file, bad).unwrap();
            let err = Overlay::load(&file, &vars(&dir)).unwrap_err();
            assert!(format!("{err:#}").contains(FILE_NAME), "{bad}: {err:#}");
            assert!(
                remember(&file, &dir.join("x"), false, true).is_err(),
                "{bad}"
            );
            assert_eq!(fs::read_to_string(&file).unwrap(), bad, "the file was kept");
        }
    }

    /// An overlay that is a device or larger than a policy may be is
    /// refused at once, not read until memory runs out.
    #[test]
    fn an_overlay_is_read_bounded() {
        let (_tmp, dir) = temp_dir();
        let file = dir.join(FILE_NAME);
        std::os::unix::fs::symlink("/dev/zero", &file).unwrap();
        let err = Overlay::load(&file, &vars(&dir)).unwrap_err();
        assert!(format!("{err:#}").contains("not a regular file"), "{err:#}");
        fs::remove_file(&file).unwrap();
        let big = "#".repeat(policies::MAX_POLICY_BYTES as usize + 1);
        fs::write(&file, big).unwrap();
        let err = Overlay::load(&file, &vars(&dir)).unwrap_err();
        assert!(format!("{err:#}").contains("larger than"), "{err:#}");
    }
}
