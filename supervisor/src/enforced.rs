//! What held once the child has run its steps: the enforcement report made
//! before the fork, degraded by every best-effort step the child reported
//! failed, with the `deny` and `read_only` entries such a failure left
//! unapplied named one by one. This, not the plan, is what `-v` prints and
//! what the audit's start record keeps.

use std::path::{Path, PathBuf};

use sandbox_child::mounts::{MountKind, MountOp};
use sandbox_child::{EnforcementReport, Step, StepRecord};

/// Degrades `report` for each non-fatal record and returns one warning per
/// failure (and per protection it left unapplied), for the person.
/// `writable` are the policy's `write` trees; `mounts` the namespace step's mounts in the child's order
/// ([`sandbox_child::Prepared::mount_targets`]).
pub fn settle(
    report: &mut EnforcementReport,
    writable: &[PathBuf],
    mounts: &[MountOp],
    records: &[StepRecord],
    what: impl Fn(&StepRecord) -> String,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for rec in records.iter().filter(|r| !r.fatal) {
        let mut why = what(rec);
        let lost = unapplied(rec, mounts, writable);
        if !lost.is_empty() {
            why = format!("{why}; not applied: {}", lost.join(", "));
        }
        warnings.push(what(rec));
        warnings.extend(lost.iter().map(|l| format!("{l} is not applied")));
        if let Some(layer) = rec.step.layer() {
            report.degrade(layer, why);
        }
    }
    warnings
}

/// A fatal step: its layer is not enforced, and under `-v` (`banner`) the
/// report says so before the launch fails.
pub fn failed(report: &mut EnforcementReport, rec: &StepRecord, what: &str, banner: Option<&str>) {
    if let Some(layer) = rec.step.layer() {
        report.degrade(layer, what.to_owned());
    }
    if let Some(banner) = banner {
        print(banner, report);
    }
}

/// Prints the report, one `sluice: ` line each, after `banner`.
pub fn print(banner: &str, report: &EnforcementReport) {
    eprintln!("sluice: {banner}");
    for line in report.to_string().lines() {
        eprintln!("sluice: {line}");
    }
}

/// The policy's protections a failed step leaves without effect, as
/// `deny PATH (...)` / `read_only PATH (...)`. Without the namespace every
/// protective mount is lost; a failed mount loses its own.
fn unapplied(rec: &StepRecord, mounts: &[MountOp], writable: &[PathBuf]) -> Vec<String> {
    let lost: Vec<&MountOp> = match rec.step {
        // The protections themselves are named; their pins add nothing.
        Step::UserNamespace | Step::IdMaps => {
            mounts.iter().filter(|m| m.kind != MountKind::Pin).collect()
        }
        Step::Mounts if rec.index > 0 => {
            mounts.get(usize::from(rec.index) - 1).into_iter().collect()
        }
        _ => Vec::new(),
    };
    lost.into_iter()
        .filter_map(|m| describe(m, writable))
        .collect()
}

fn describe(m: &MountOp, writable: &[PathBuf]) -> Option<String> {
    let path = m.path.display();
    let in_writable = |p: &Path| writable.iter().any(|w| p.starts_with(w));
    Some(match m.kind {
        MountKind::ReadOnly => format!("read_only {path} (this sandbox lets the program write it)"),
        MountKind::Deny { .. } if in_writable(&m.path) => {
            format!("deny {path} (this sandbox lets the program read and write it)")
        }
        MountKind::Deny { .. } => format!("deny {path} (this sandbox lets the program read it)"),
        MountKind::Pin => {
            format!("the pin of {path} (the deny and read_only paths beneath it can be moved away)")
        }
        // The tree stays read-only, or noexec: stricter than asked, nothing lost.
        MountKind::Writable { .. } | MountKind::Executable | MountKind::SessionCopy => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use policies::Layer;
    use sandbox_child::{LayerReport, Status};

    fn report() -> EnforcementReport {
        EnforcementReport {
            landlock_abi: 7,
            layers: vec![LayerReport {
                layer: Layer::Namespaces,
                status: Status::Enforced,
                required: false,
                detail: "3 mounts".into(),
            }],
        }
    }

    fn op(kind: MountKind, path: &str) -> MountOp {
        MountOp {
            kind,
            path: path.into(),
        }
    }

    #[test]
    fn a_lost_namespace_names_every_deny_and_read_only_entry() {
        let writable = [PathBuf::from("/ws")];
        let mounts = [
            op(MountKind::Writable { exec: true }, "/ws"),
            op(MountKind::ReadOnly, "/ws/.git/hooks"),
            op(MountKind::Deny { dir: false }, "/ws/.env"),
            op(MountKind::Deny { dir: true }, "/etc/ssl/private"),
        ];
        let rec = StepRecord {
            step: Step::UserNamespace,
            fatal: false,
            index: 0,
            errno: libc::EPERM,
        };
        let mut r = report();
        let warnings = settle(&mut r, &writable, &mounts, &[rec], |_| {
            "unshare failed".into()
        });
        assert_eq!(
            warnings,
            [
                "unshare failed",
                "read_only /ws/.git/hooks (this sandbox lets the program write it) is not applied",
                "deny /ws/.env (this sandbox lets the program read and write it) is not applied",
                "deny /etc/ssl/private (this sandbox lets the program read it) is not applied",
            ]
        );
        let ns = r.layer(Layer::Namespaces);
        assert_eq!(ns.status, Status::NotEnforced);
        assert!(
            ns.detail.contains("not applied: read_only /ws/.git/hooks"),
            "{}",
            ns.detail
        );

        // One failed mount loses only its own entry (item i is mount i-1).
        let rec = StepRecord {
            step: Step::Mounts,
            index: 3,
            ..rec
        };
        let warnings = settle(&mut report(), &writable, &mounts, &[rec], |_| {
            "mount".into()
        });
        assert_eq!(
            warnings[1..],
            ["deny /ws/.env (this sandbox lets the program read and write it) is not applied"]
        );
    }

    /// A fatal step's layer is shown not enforced (what `-v` prints before
    /// the launch fails), not as the plan had it.
    #[test]
    fn a_fatal_step_degrades_its_layer() {
        let mut r = report();
        let rec = StepRecord {
            step: Step::UserNamespace,
            fatal: true,
            index: 0,
            errno: libc::EPERM,
        };
        failed(&mut r, &rec, "unshare failed", None);
        let ns = r.layer(Layer::Namespaces);
        assert_eq!(
            (ns.status, ns.detail.as_str()),
            (Status::NotEnforced, "unshare failed")
        );
        // settle leaves fatal records to `failed`.
        let mut r = report();
        assert!(settle(&mut r, &[], &[], &[rec], |_| String::new()).is_empty());
        assert_eq!(r.layer(Layer::Namespaces).status, Status::Enforced);
    }
}
