//! `sluice policy show NAME --seatbelt`: the macOS profile of a policy,
//! printable on any platform for review.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use policies::Policy;
use sandbox_child::seatbelt::{self, SupervisorState};

/// The Seatbelt profile `sluice run` would apply for `policy` (loaded as
/// `name`), with sluice's state where this user's sessions keep it.
/// `session` is the preview's session directory; each session has its own.
pub fn profile(name: &str, policy: &Policy, session: &Path) -> Result<String> {
    let audit_dir = crate::audit::AuditLog::default_dir().context("the audit directory")?;
    let config_dir = crate::xdg::base_dir("XDG_CONFIG_HOME", ".config")
        .context("the configuration directory")?
        .join("sluice");
    let is_file = name.contains('/') || name.ends_with(".toml");
    let state = SupervisorState {
        audit_dir: real(audit_dir),
        config_dir: real(config_dir),
        session_dir: Some(session.to_path_buf()),
        records_dir: crate::platform::liveness::records_dir().ok().map(real),
        policy_files: if is_file {
            vec![real(name.into())]
        } else {
            vec![]
        },
        broker_socket: None,
        terminal: None,
        user_dirs: vec![],
    };
    let profile = seatbelt::generate(policy, &state)
        .with_context(|| format!("policy '{name}': no Seatbelt profile"))?;
    Ok(profile.text().to_owned())
}

/// The canonical path where it exists (as `sluice run` would see it).
fn real(path: PathBuf) -> PathBuf {
    path.canonicalize().unwrap_or(path)
}
