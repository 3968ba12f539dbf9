//! [`Policy::to_toml`]: a resolved policy written back in the policy format.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::model::{Layer, NetPolicy, Policy};
use crate::resolve::GLOB_CHARS;
use crate::rule::BrokerList;
use crate::size::format_size;

impl Policy {
    /// The resolved policy as a self-contained policy file: canonical paths,
    /// variables substituted, no `extends`. Loading it again (with
    /// [`crate::load_str`]) and resolving it gives an equal `Policy`, as long
    /// as the file system has not changed. The output is deterministic.
    ///
    /// Paths that were absent at resolution are written as `deny` entries:
    /// re-checking then reports them absent again, and anything created
    /// there later stays protected rather than silently allowed.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "# Policy {}, resolved by sluice.\n",
            quote(&self.name)
        ));
        out.push_str("# Paths are canonical and variables substituted: this file stands alone.\n");
        writeln!(out, "\nnested = {}", quote(self.nested.as_str())).unwrap();
        self.write_filesystem(&mut out);
        self.write_network(&mut out);
        self.write_limits(&mut out);
        self.write_environment(&mut out);
        let names = |layers: &BTreeSet<Layer>| -> String {
            let quoted: Vec<_> = layers.iter().map(|l| quote(l.as_str())).collect();
            quoted.join(", ")
        };
        out.push_str("\n[layers]\n");
        writeln!(out, "best_effort = [{}]", names(&self.layers.best_effort)).unwrap();
        writeln!(
            out,
            "nested_best_effort = [{}]",
            names(&self.layers.nested_best_effort)
        )
        .unwrap();
        self.write_broker(&mut out);
        writeln!(out, "\n[process]\nptrace = {}", quote(self.ptrace.as_str())).unwrap();
        out
    }

    /// Resolved patterns: canonical prefixes, variables substituted (and
    /// escaped), so that they resolve to themselves again.
    fn write_broker(&self, out: &mut String) {
        out.push_str("\n[broker]\n");
        for list in BrokerList::ALL {
            let patterns = self
                .broker
                .rules()
                .iter()
                .filter(|rule| BrokerList::of(rule.verdict, rule.grants_write) == list)
                .map(|rule| quote(&rule.resolved.replace('$', "$$")));
            write_list(out, list.name(), patterns);
        }
        if self.transparent {
            out.push_str("transparent = true\n");
        }
    }

    fn write_filesystem(&self, out: &mut String) {
        let fs = &self.filesystem;
        out.push_str("\n[filesystem]\n");
        write_paths(out, "read", &fs.read, false);
        write_paths(out, "write", &fs.write, false);
        write_paths(out, "execute", &fs.execute, false);
        write_paths(out, "read_only", &fs.read_only, true);
        if !fs.protect.rules().is_empty() {
            out.push_str("protect = [\n");
            for rule in fs.protect.rules() {
                writeln!(out, "    {},", quote(&rule.as_written_resolved())).unwrap();
            }
            out.push_str("]\n");
        }
        let patterns = fs.deny_patterns.rules();
        if fs.absent.is_empty() && patterns.is_empty() {
            write_paths(out, "deny", &fs.deny, true);
            return;
        }
        out.push_str("deny = [\n");
        for path in &fs.deny {
            writeln!(out, "    {},", quote_path(path, true)).unwrap();
        }
        if !patterns.is_empty() {
            out.push_str(
                "    # Patterns: every match in the trees they apply to, found at launch.\n",
            );
        }
        for rule in patterns {
            let bang = if rule.except { "!" } else { "" };
            writeln!(out, "    {},", quote(&format!("{bang}{}", rule.resolved))).unwrap();
        }
        if fs.absent.is_empty() {
            out.push_str("]\n");
            return;
        }
        out.push_str("    # Absent when resolved (optional allows, deny and read_only targets).\n");
        for path in &fs.absent {
            // Written as resolution recorded them: glob patterns stay globs.
            writeln!(out, "    {},", quote_path(path, false)).unwrap();
        }
        out.push_str("]\n");
    }

    fn write_network(&self, out: &mut String) {
        out.push_str("\n[network]\n");
        match &self.network {
            NetPolicy::None => out.push_str("mode = \"none\"\n"),
            NetPolicy::All => out.push_str("mode = \"all\"\n"),
            NetPolicy::Tcp { connect, bind } => {
                let list = |ports: &std::collections::BTreeSet<u16>| {
                    ports
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                out.push_str("mode = \"tcp\"\n");
                writeln!(out, "connect = [{}]", list(connect)).unwrap();
                writeln!(out, "bind = [{}]", list(bind)).unwrap();
            }
            NetPolicy::Hosts(hosts) => {
                let list = |rules: &[crate::HostRule]| {
                    rules
                        .iter()
                        .map(|r| format!("\"{r}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                out.push_str("mode = \"hosts\"\n");
                writeln!(out, "hosts = [{}]", list(&hosts.allow)).unwrap();
                match &hosts.ask {
                    crate::AskHosts::No => out.push_str("ask_hosts = false\n"),
                    crate::AskHosts::Any => out.push_str("ask_hosts = true\n"),
                    crate::AskHosts::Listed(rules) => {
                        writeln!(out, "ask_hosts = [{}]", list(rules)).unwrap()
                    }
                }
            }
        }
    }

    fn write_limits(&self, out: &mut String) {
        let limits = &self.limits;
        out.push_str("\n[limits]\n# Limits not listed are inherited from sluice.\n");
        let sizes = [
            ("address_space", limits.address_space),
            ("file_size", limits.file_size),
        ];
        for (key, value) in sizes {
            if let Some(bytes) = value {
                writeln!(out, "{key} = {}", quote(&format_size(bytes))).unwrap();
            }
        }
        let counts = [
            ("open_files", limits.open_files),
            ("processes", limits.processes),
            ("cpu_seconds", limits.cpu_seconds),
        ];
        for (key, value) in counts {
            if let Some(count) = value {
                writeln!(out, "{key} = {count}").unwrap();
            }
        }
    }

    fn write_environment(&self, out: &mut String) {
        out.push_str("\n[environment]\n");
        out.push_str("pass = [");
        for name in &self.env.pass {
            write!(out, "\n    {},", quote(name)).unwrap();
        }
        out.push_str(if self.env.pass.is_empty() {
            "]\n"
        } else {
            "\n]\n"
        });
        if self.env.set.is_empty() {
            return;
        }
        out.push_str("\n[environment.set]\n");
        for (name, value) in &self.env.set {
            writeln!(out, "{} = {}", key(name), quote(&value.replace('$', "$$"))).unwrap();
        }
    }
}

fn write_paths(out: &mut String, key: &str, paths: &[PathBuf], escape_globs: bool) {
    let quoted = paths.iter().map(|path| quote_path(path, escape_globs));
    write_list(out, key, quoted);
}

/// `key = [...]`, one quoted item per line.
fn write_list(out: &mut String, key: &str, quoted: impl Iterator<Item = String>) {
    let mut quoted = quoted.peekable();
    if quoted.peek().is_none() {
        writeln!(out, "{key} = []").unwrap();
        return;
    }
    writeln!(out, "{key} = [").unwrap();
    for item in quoted {
        writeln!(out, "    {item},").unwrap();
    }
    out.push_str("]\n");
}

/// A path as a TOML string that reads back as the same path: `$` doubled,
/// and, where the last component would be taken for a glob, that component
/// escaped as a glob that matches only itself ([`crate::rule::escape`]).
fn quote_path(path: &Path, escape_globs: bool) -> String {
    let text = path.to_string_lossy().replace('$', "$$");
    let (dir, last) = text.rsplit_once('/').unwrap_or(("", &text));
    if !escape_globs || !last.contains(GLOB_CHARS) {
        return quote(&text);
    }
    quote(&format!("{dir}/{}", crate::rule::escape(last)))
}

/// A bare key where TOML allows one, else a quoted key.
fn key(name: &str) -> String {
    let bare = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare && !name.is_empty() {
        name.to_string()
    } else {
        quote(name)
    }
}

/// A TOML basic string.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => write!(out, "\\u{:04X}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_toml_strings() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn escapes_paths_that_would_be_read_differently() {
        assert_eq!(quote_path(Path::new("/a/$x"), false), "\"/a/$$x\"");
        assert_eq!(quote_path(Path::new("/a[1]/b*"), false), "\"/a[1]/b*\"");
        assert_eq!(quote_path(Path::new("/a[1]/b*"), true), "\"/a[1]/b[*]\"");
        assert_eq!(quote_path(Path::new("/a/f[1]"), true), "\"/a/f[[]1[]]\"");
        // A backslash is globset's escape: doubled, or `b\*` would read as
        // `b` then an escaped `[`.
        assert_eq!(quote_path(Path::new("/a/b\\*"), true), quote("/a/b\\\\[*]"));
    }

    #[test]
    fn keys_are_bare_where_possible() {
        assert_eq!(key("EDITOR"), "EDITOR");
        assert_eq!(key("A.B"), "\"A.B\"");
    }
}
