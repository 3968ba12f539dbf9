//! Every form of error message, with exact positions.

use std::path::Path;

use super::{load_error, resolve, resolve_error, spec, vars_in, TempDir};
use crate::{load, load_str, PolicyError};

#[test]
fn unknown_keys_name_line_column_and_key() {
    let error = load_str(
        "dev.toml",
        "# dev\n\n[filesystem]\nwirte = []\n",
        Path::new("/"),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "policy 'dev.toml', line 4, column 1: unknown key 'wirte'"
    );
    assert!(matches!(
        error,
        PolicyError::Parse {
            line: 4,
            column: 1,
            ..
        }
    ));
    assert_eq!(
        load_error("extend = []"),
        "policy 'p.toml', line 1, column 1: unknown key 'extend'"
    );
    assert_eq!(
        load_error("[filesystem]\nread = [\"/a\", { path = \"/b\", optinal = true }]"),
        "policy 'p.toml', line 2, column 30: unknown key 'optinal'"
    );
    assert_eq!(
        load_error("[limits]\n  processes = 1\n  memory = 1"),
        "policy 'p.toml', line 3, column 3: unknown key 'memory'"
    );
    assert_eq!(
        load_error("[sandbox]\n"),
        "policy 'p.toml', line 1, column 2: unknown key 'sandbox'"
    );
}

#[test]
fn wrong_types_name_the_key() {
    assert_eq!(
        load_error("[limits]\nopen_files = 1\nprocesses = \"x\""),
        "policy 'p.toml', line 3, column 13: key 'limits.processes': \
         expected an integer, found string \"x\""
    );
    assert_eq!(
        load_error("[limits]\ncpu_seconds = -1"),
        "policy 'p.toml', line 2, column 15: key 'limits.cpu_seconds': \
         expected a non-negative integer, found integer `-1`"
    );
    assert_eq!(
        load_error("[filesystem]\nread = [\"/a\", 1]"),
        "policy 'p.toml', line 2, column 15: key 'filesystem.read': \
         expected a path, or a table { path = \"...\", optional = true }, found integer `1`"
    );
    assert_eq!(
        load_error("[filesystem]\nread = \"/usr\""),
        "policy 'p.toml', line 2, column 8: key 'filesystem.read': \
         expected an array, found string \"/usr\""
    );
    assert_eq!(
        load_error("extends = \"default\""),
        "policy 'p.toml', line 1, column 11: key 'extends': \
         expected an array, found string \"default\""
    );
    assert_eq!(
        load_error("filesystem = 3"),
        "policy 'p.toml', line 1, column 14: key 'filesystem': expected a table, found integer `3`"
    );
    assert_eq!(
        load_error("[environment]\nset = { EDITOR = 1 }"),
        "policy 'p.toml', line 2, column 18: key 'environment.set.EDITOR': \
         expected a string, found integer `1`"
    );
    assert_eq!(
        load_error("[filesystem]\nread = [{ optional = true }]"),
        "policy 'p.toml', line 2, column 9: key 'filesystem.read': missing key 'path'"
    );
}

#[test]
fn bad_values_name_the_key() {
    assert_eq!(
        load_error("[limits]\naddress_space = \"8XB\""),
        "policy 'p.toml', line 2, column 17: key 'limits.address_space': invalid size '8XB' \
         (expected a number of bytes, optionally with K, M, G, T or KiB, MiB, GiB, TiB)"
    );
    assert_eq!(
        load_error("[limits]\nfile_size = -5"),
        "policy 'p.toml', line 2, column 13: key 'limits.file_size': size -5 is negative"
    );
    assert_eq!(
        load_error("[network]\nmode = \"some\""),
        "policy 'p.toml', line 2, column 8: key 'network.mode': \
         unknown network mode 'some' (expected none, all, tcp or hosts)"
    );
    assert_eq!(
        load_error("[network]\nhosts = [\"api.example.com\",\n  \"a.*.com\"]"),
        "policy 'p.toml', line 3, column 3: key 'network.hosts': invalid host 'a.*.com': \
         '*' only as the whole first label ('*.example.com') (expected a host name, *.DOMAIN \
         or an IP address, with an optional :PORT (api.example.com, *.github.com:443, \
         127.0.0.1:5432, [::1]:8080))"
    );
    assert_eq!(
        load_error("[network]\nmode = \"tcp\"\nhosts = [\"a.com\"]"),
        "policy 'p.toml', line 1, column 1: key 'network': \
         'hosts' and 'ask_hosts' need mode = \"hosts\" (or no mode)"
    );
    assert_eq!(
        load_error("[network]\nask_hosts = 3"),
        "policy 'p.toml', line 2, column 13: key 'network.ask_hosts': \
         expected true, false, or a list of hosts, found integer `3`"
    );
    assert_eq!(
        load_error("[network]\nmode = \"none\"\nconnect = [443]"),
        "policy 'p.toml', line 1, column 1: key 'network': 'connect' and 'bind' need mode = \"tcp\""
    );
    assert_eq!(
        load_error("network = { mode = \"tcp\", bind = [70000] }"),
        "policy 'p.toml', line 1, column 35: key 'network.bind': \
         expected a port number (0 to 65535), found integer `70000`"
    );
    assert_eq!(
        load_error("[network]\nconnect = [443]"),
        "policy 'p.toml', line 1, column 1: key 'network': \
         missing 'mode' (none, all, tcp or hosts), or 'hosts' to name the hosts"
    );
    assert_eq!(
        load_error("[layers]\nbest_effort = [\"landlock\"]"),
        "policy 'p.toml', line 2, column 16: key 'layers.best_effort': unknown layer 'landlock' \
         (expected one of filesystem, network, scopes, syscalls, namespaces, pid_namespace, no_new_privs, \
         capabilities, limits)"
    );
    assert_eq!(
        load_error("[environment]\npass = [\"LC_[\"]"),
        "policy 'p.toml', line 2, column 9: key 'environment.pass': \
         invalid pattern 'LC_[': unclosed character class; missing ']'"
    );
    assert_eq!(
        load_error("[environment.set]\n\"A=B\" = \"x\""),
        "policy 'p.toml', line 2, column 1: key 'environment.set.A=B': \
         invalid environment variable name 'A=B'"
    );
}

#[test]
fn syntax_errors_keep_the_parser_words() {
    assert_eq!(
        load_error("[filesystem\n"),
        "policy 'p.toml', line 1, column 12: unclosed table, expected `]`"
    );
    assert_eq!(
        load_error("[limits]\nprocesses = = 1"),
        "policy 'p.toml', line 2, column 13: extra `=`, expected nothing"
    );
}

#[test]
fn resolve_errors_name_line_and_key() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    let text = "[filesystem]\nread = [\n  \"/\",\n  \"$FOO/x\",\n]";
    assert_eq!(
        resolve_error(text, &vars),
        "policy 'p.toml', line 4, key 'filesystem.read': unknown variable '$FOO'"
    );
    assert_eq!(
        resolve_error("[environment]\nset = { X = \"${BAR}\" }", &vars),
        "policy 'p.toml', line 2, key 'environment.set.X': unknown variable '${BAR}'"
    );
    let ws = vars.workspace.display();
    let text = "[filesystem]\nread = [\"/\"]\n\nwrite = [\"$WORKSPACE/build\"]";
    assert_eq!(
        resolve_error(text, &vars),
        format!(
            "policy 'p.toml', line 4, key 'filesystem.write': path '$WORKSPACE/build' \
             ({ws}/build) does not exist; mark it optional or create it"
        )
    );
    assert_eq!(
        resolve_error("[filesystem]\nexecute = [\"bin\"]", &vars),
        "policy 'p.toml', line 2, key 'filesystem.execute': \
         path 'bin' is relative; start it with /, ~ or a variable"
    );
    assert_eq!(
        resolve_error("[filesystem]\nread = [\"~root/x\"]", &vars),
        "policy 'p.toml', line 2, key 'filesystem.read': \
         path '~root/x' is relative; start it with /, ~ or a variable"
    );
    assert_eq!(
        resolve_error("[filesystem]\ndeny = [\"/a/$\"]", &vars),
        "policy 'p.toml', line 2, key 'filesystem.deny': \
         '$' in '/a/$' starts no variable (write '$$' for a literal '$')"
    );
}

#[test]
fn relative_variables_are_rejected() {
    let root = TempDir::new();
    let mut vars = vars_in(&root);
    vars.workspace = "ws".into();
    assert_eq!(
        resolve_error("[filesystem]\nwrite = [\"$WORKSPACE\"]", &vars),
        "policy 'p.toml', line 2, key 'filesystem.write': \
         path '$WORKSPACE' (ws) is relative; variables must hold absolute paths"
    );
}

#[test]
fn command_line_overrides_are_named() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    let mut spec = spec("");
    spec.allow_read("/nonexistent/policies-test");
    assert_eq!(
        spec.resolve(&vars).unwrap_err().to_string(),
        "command line, key 'filesystem.read': path '/nonexistent/policies-test' \
         (/nonexistent/policies-test) does not exist"
    );
}

#[test]
fn loading_errors() {
    assert_eq!(
        load("x").unwrap_err().to_string(),
        "unknown built-in policy 'x' (built-ins: default, macos, readonly, agent, claude-code, codex, aider)"
    );
    assert_eq!(
        load("policies-test-missing.toml").unwrap_err().to_string(),
        "cannot read policy 'policies-test-missing.toml': No such file or directory"
    );
    assert_eq!(
        load_error("# base\nextends = [\"x\"]"),
        "policy 'p.toml', line 2, key 'extends': \
         unknown built-in policy 'x' (built-ins: default, macos, readonly, agent, claude-code, codex, aider)"
    );
    let root = TempDir::new();
    let error = load_str("p.toml", "extends = [\"gone.toml\"]", root.path()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "policy 'p.toml', line 1, key 'extends': cannot read policy '{}': \
             No such file or directory",
            root.path().join("gone.toml").display()
        )
    );
    let error = load(&root.path().display().to_string()).unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("': not a regular file (a directory); a policy is a regular file"),
        "{error}"
    );
}

/// `extends = ["/dev/zero"]` read until memory ran out; a FIFO would block
/// for ever; a huge file is no policy. Each is refused at once, naming
/// the `extends` line. Control: a regular file loads.
#[test]
fn policy_files_are_read_bounded() {
    let root = TempDir::new();
    let good = root.write(
        "good.toml",
        "[limits]
open_files = 64
",
    );
    assert_eq!(
        load(&good.display().to_string()).unwrap().limits.open_files,
        Some(64)
    );
    let fifo = root.path().join("fifo.toml");
    let c = std::ffi::CString::new(fifo.display().to_string()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let big = root.write(
        "big.toml",
        &"#".repeat(crate::MAX_POLICY_BYTES as usize + 1),
    );
    for (target, says) in [
        ("/dev/zero".to_string(), "not a regular file (a device)"),
        (
            fifo.display().to_string(),
            "not a regular file (a pipe or socket)",
        ),
        (
            big.display().to_string(),
            "larger than the 1024 KiB a policy may be",
        ),
    ] {
        let error = load(&target).unwrap_err().to_string();
        assert!(error.contains(says), "{target}: {error}");
        let text = format!("# x\nextends = [\"{target}\"]\n");
        let error = load_str("p.toml", &text, root.path())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("policy 'p.toml', line 2, key 'extends': "),
            "{error}"
        );
        assert!(error.contains(says), "{error}");
    }
}

/// A glob where the format does not expand one was taken as a literal
/// path that does not exist: accepted, and nothing was denied. Each such
/// entry is an error naming line and key. Controls: globs in the last
/// component, `${HOME}` (its braces are no glob), and a directory whose
/// real name holds a `[` are accepted.
#[test]
fn globs_where_they_are_not_expanded_are_rejected() {
    let root = TempDir::new();
    let vars = vars_in(&root);
    root.write("ws/a/secret.txt", "");
    root.write("ws/[x]/y", "");
    root.write("home/.ssh/id", "");
    for (text, says) in [
        (
            "[filesystem]\nread = [\"/\"]\nread_only = [\"$WORKSPACE/**/secret.txt\"]",
            "line 3, key 'filesystem.read_only': '$WORKSPACE/**/secret.txt' is not enforced \
             as written: `**` is not expanded in filesystem.read_only",
        ),
        (
            "[filesystem]\nread = [\"/\"]\ndeny = [\"$WORKSPACE/**/a/**/b\"]",
            "line 3, key 'filesystem.deny': pattern '$WORKSPACE/**/a/**/b': a deny pattern \
             has one '**'",
        ),
        (
            "[filesystem]\n\ndeny = [\"**/*.{pem\"]",
            "line 3, key 'filesystem.deny': invalid pattern '**/*.{pem'",
        ),
        (
            "[filesystem]\n\ndeny = [\"sub/**/.env\"]",
            "line 3, key 'filesystem.deny': pattern 'sub/**/.env' is relative",
        ),
        (
            "[filesystem]\n\ndeny = [\"!$WORKSPACE/../x/**/y\"]",
            "line 3, key 'filesystem.deny': pattern '$WORKSPACE/../x/**/y' has a '..' component",
        ),
        (
            "[filesystem]\n\nread_only = [\"$WORKSPACE/*/secret.txt\"]",
            "line 3, key 'filesystem.read_only': '$WORKSPACE/*/secret.txt' is not enforced \
             as written: only its last component may be a glob",
        ),
        (
            "[filesystem]\nread_only = [\"~/.ssh/**\"]",
            "(write '~/.ssh')",
        ),
        (
            "[filesystem]\nread = [{ path = \"$WORKSPACE/*.txt\", optional = true }]",
            "line 2, key 'filesystem.read': '$WORKSPACE/*.txt' does not exist, and globs \
             are not expanded in filesystem.read",
        ),
    ] {
        let error = resolve_error(text, &vars);
        assert!(error.contains(says), "{text}\n{error}");
    }
    assert!(resolve_error(
        "[filesystem]\nread_only = [\"$WORKSPACE/**/secret.txt\"]",
        &vars
    )
    .contains("add '**/secret.txt' to [broker] deny"));
    let policy = resolve(
        "[filesystem]\nread = [\"${WORKSPACE}\"]\n\
         deny = [\"$WORKSPACE/a/*.txt\", \"$WORKSPACE/[x]/y\", \"${HOME}/.ssh\"]",
        &vars,
    );
    let ws = vars.workspace.clone();
    assert_eq!(
        policy.filesystem.deny,
        [
            ws.join("a/secret.txt"),
            ws.join("[x]/y"),
            vars.home.join(".ssh")
        ]
    );
}
