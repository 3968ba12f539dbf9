//! `sluice policy show NAME --seatbelt`: the macOS profile, printed on Linux.
//! (The profile itself is tested in `sandbox-child/src/seatbelt/tests/`.)

use std::fs;

use sluice_tests::{execute, Fixture};

const PROBE: &str = env!("CARGO_BIN_EXE_sluice-probe");

#[test]
fn policy_show_seatbelt_prints_the_profile_with_sluices_state_denied_last() {
    let fx = Fixture::new(PROBE);
    let ws = fx.ws("");
    let out = execute(fx.sluice_cli_command(&[
        "policy",
        "show",
        "default",
        "--seatbelt",
        "--workspace",
        &ws,
    ]));
    out.assert_code(0);
    let text = &out.stdout;
    assert!(text.starts_with("(version 1)\n"), "{out}");
    assert!(text.contains("\n(deny default)\n"), "{out}");
    // The fixture lives under /tmp, which Seatbelt sees as /private/tmp.
    let ws = ws.trim_end_matches('/');
    assert!(
        text.contains(&format!("(subpath \"/private{ws}\")")),
        "{out}"
    );
    assert!(
        text.contains(&format!("(subpath \"/private{ws}/.env\")")),
        "{out}"
    );
    let audit = format!("(subpath \"/private{}\")", fx.audit_dir().display());
    let config = format!("(subpath \"/private{}\")", fx.config_dir().display());
    let (at_audit, at_config) = (text.find(&audit), text.find(&config));
    assert!(at_audit.is_some() && at_config.is_some(), "{out}");
    // Last: after every rule that names the workspace.
    let last_ws = text.rfind(&format!("\"/private{ws}")).unwrap();
    assert!(
        at_audit.unwrap() > last_ws && at_config.unwrap() > last_ws,
        "{out}"
    );
    let code: String = text.lines().filter(|l| !l.starts_with(";;")).collect();
    assert!(!code.contains("extension"), "{out}");

    // Control: without --seatbelt the same command prints the policy as TOML.
    let toml = execute(fx.sluice_cli_command(&["policy", "show", "default", "--workspace", ws]));
    toml.assert_code(0);
    assert!(toml.stdout.contains("[filesystem]"), "{toml}");
}

#[test]
fn policy_show_seatbelt_refuses_a_path_it_cannot_quote() {
    let fx = Fixture::new(PROBE);
    let odd = fx.root().join("work\nspace");
    fs::create_dir(&odd).unwrap();
    let odd = odd.to_str().unwrap();
    let out = execute(fx.sluice_cli_command(&[
        "policy",
        "show",
        "default",
        "--seatbelt",
        "--workspace",
        odd,
    ]));
    out.assert_code(125);
    assert!(out.stdout.is_empty(), "{out}");
    assert!(out.stderr.contains("no Seatbelt profile"), "{out}");
    assert!(out.stderr.contains("control character U+000A"), "{out}");
}
