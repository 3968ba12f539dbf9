//! What the sandbox actually enforced, layer by layer.
//!
//! The plan is computed before fork from the policy and what the kernel
//! supports; the child then confirms each step or reports which one failed
//! over the launch pipe ([`StepRecord`]). The launcher refuses to run the
//! program when a layer the policy requires is not fully enforced.

use std::fmt;

pub use policies::Layer;

/// How far one layer is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything the policy asks of this layer is enforced.
    Enforced,
    /// Some of it is enforced (for example an older Landlock ABI).
    Partial,
    /// Nothing of it is enforced.
    NotEnforced,
    /// The policy asks nothing of this layer (for example `network = "all"`).
    NotNeeded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Enforced => "enforced",
            Status::Partial => "partial",
            Status::NotEnforced => "not enforced",
            Status::NotNeeded => "not needed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerReport {
    pub layer: Layer,
    pub status: Status,
    pub required: bool,
    /// What was enforced, or why not: for people, not parsed.
    pub detail: String,
}

impl LayerReport {
    /// A required layer that is not fully enforced stops the launch.
    pub fn blocks_launch(&self) -> bool {
        self.required && matches!(self.status, Status::Partial | Status::NotEnforced)
    }
}

/// The report for one launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnforcementReport {
    /// The kernel's Landlock ABI version (0 when Landlock is unavailable).
    pub landlock_abi: i32,
    pub layers: Vec<LayerReport>,
}

impl EnforcementReport {
    pub fn layer(&self, layer: Layer) -> &LayerReport {
        self.layers
            .iter()
            .find(|l| l.layer == layer)
            .expect("every layer is reported")
    }

    pub fn layer_mut(&mut self, layer: Layer) -> &mut LayerReport {
        self.layers
            .iter_mut()
            .find(|l| l.layer == layer)
            .expect("every layer is reported")
    }

    /// The layers that stop the launch.
    pub fn blocking(&self) -> impl Iterator<Item = &LayerReport> {
        self.layers.iter().filter(|l| l.blocks_launch())
    }

    /// Marks a layer as not enforced after a step failed in the child.
    pub fn degrade(&mut self, layer: Layer, why: String) {
        let l = self.layer_mut(layer);
        l.status = Status::NotEnforced;
        l.detail = why;
    }
}

impl fmt::Display for EnforcementReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.layers {
            let req = if l.required { "" } else { ", best effort" };
            writeln!(f, "{}: {} ({}{req})", l.layer, l.status.as_str(), l.detail)?;
        }
        Ok(())
    }
}

/// A step of the child sequence, as named in failure reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    SetupFds = 1,
    DeathSignal,
    Cgroup,
    UserNamespace,
    IdMaps,
    Mounts,
    Chdir,
    SecureBits,
    BoundingSet,
    Ambient,
    Capset,
    NoNewPrivs,
    Rlimit,
    Landlock,
    Seccomp,
    Signals,
    Exec,
    Root,
    /// macOS: `sandbox_init` on the Seatbelt profile. Its record's `index`
    /// is the length of the error message that follows it on the pipe.
    Seatbelt,
    Terminal,
    /// The user-notification filter and the hand-over of its listener.
    Transparent,
    /// The process that makes the program's `connect` calls for it under
    /// transparent brokering.
    Connector,
    /// The hand-over of the sandbox's root to the broker, which opens the
    /// directories it serves there.
    RootHandOver,
    /// The PID namespace's own `/proc`, and the Landlock rules for it.
    Proc,
    /// The sandbox's init forking the program.
    Init,
    /// Not a failure: the program under an init names itself by its pid as
    /// the supervisor sees it, in the record's `errno` field
    /// ([`StepRecord::program`]).
    Program,
    /// The hosts mode's network namespace, loopback, and the listening
    /// sockets sent to the supervisor's proxy.
    NetNamespace,
    /// The process limit written as the PID namespace's `pid_max`.
    PidMax,
    /// A session's copy of an agent's state bound over the host's
    /// (`mounts::MountKind::SessionCopy`): always fatal.
    SessionCopy,
    /// The bounds written for the sandbox's own IPC and user namespaces.
    NamespaceLimits,
}

impl Step {
    const ALL: [Step; 30] = [
        Step::SetupFds,
        Step::DeathSignal,
        Step::Cgroup,
        Step::UserNamespace,
        Step::IdMaps,
        Step::Mounts,
        Step::Chdir,
        Step::SecureBits,
        Step::BoundingSet,
        Step::Ambient,
        Step::Capset,
        Step::NoNewPrivs,
        Step::Rlimit,
        Step::Landlock,
        Step::Seccomp,
        Step::Signals,
        Step::Exec,
        Step::Root,
        Step::Seatbelt,
        Step::Terminal,
        Step::Transparent,
        Step::Connector,
        Step::RootHandOver,
        Step::Proc,
        Step::Init,
        Step::Program,
        Step::NetNamespace,
        Step::PidMax,
        Step::SessionCopy,
        Step::NamespaceLimits,
    ];

    pub fn from_u8(v: u8) -> Option<Step> {
        Step::ALL.into_iter().find(|s| *s as u8 == v)
    }

    /// The layer a failure of this step weakens, if any.
    pub fn layer(self) -> Option<Layer> {
        match self {
            Step::Cgroup | Step::Rlimit | Step::PidMax | Step::NamespaceLimits => Some(Layer::Limits),
            Step::UserNamespace | Step::IdMaps | Step::Mounts | Step::Root | Step::Chdir => {
                Some(Layer::Namespaces)
            }
            Step::SecureBits | Step::BoundingSet | Step::Ambient | Step::Capset => {
                Some(Layer::Capabilities)
            }
            Step::Proc => Some(Layer::PidNamespace),
            Step::NoNewPrivs => Some(Layer::NoNewPrivs),
            Step::Landlock => Some(Layer::Filesystem),
            Step::Seccomp => Some(Layer::Syscalls),
            // The whole sandbox on macOS; the supervisor waits for the
            // listener and the root: always fatal.
            Step::SetupFds
            | Step::DeathSignal
            | Step::Signals
            | Step::Exec
            | Step::Seatbelt
            | Step::Terminal
            | Step::Transparent
            | Step::Connector
            | Step::RootHandOver
            // The hosts mode leaves TCP to the namespace: without it the
            // program would have the host's network.
            | Step::NetNamespace
            | Step::Init
            // The program would write the host's file itself.
            | Step::SessionCopy
            | Step::Program => None,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Step::SetupFds => "closing inherited descriptors",
            Step::DeathSignal => "setting the parent-death signal",
            Step::Cgroup => "joining the session cgroup",
            Step::PidMax => "limiting the PID namespace's processes (pid_max)",
            Step::UserNamespace => "creating the user and mount namespaces",
            Step::IdMaps => "writing the user namespace id maps",
            Step::Mounts => "mounting deny-within-allow protections",
            Step::Root => "building the root from the policy's trees",
            Step::Chdir => "entering the working directory",
            Step::SecureBits => "locking the securebits",
            Step::BoundingSet => "dropping the capability bounding set",
            Step::Ambient => "clearing ambient capabilities",
            Step::Capset => "dropping capabilities",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::Rlimit => "setting resource limits",
            Step::Landlock => "applying the Landlock ruleset",
            Step::Seccomp => "installing the seccomp filter",
            Step::Signals => "resetting signal dispositions",
            Step::Exec => "executing the program",
            Step::Seatbelt => "applying the Seatbelt profile",
            Step::Terminal => "moving the program to its own terminal",
            Step::Transparent => "installing the transparent-brokering filter",
            Step::Connector => "starting the connector for the program's connect calls",
            Step::RootHandOver => "handing the sandbox's root to the broker",
            Step::Proc => "mounting the PID namespace's own /proc",
            Step::Init => "starting the program under the sandbox's init",
            Step::Program => "naming the program's pid",
            Step::NetNamespace => "making the program's own network namespace for the proxy",
            Step::SessionCopy => "binding the session's copy of an agent's state over it",
            Step::NamespaceLimits => {
                "bounding what the sandbox's namespaces take (System V memory, inotify)"
            }
        }
    }
}

/// One fixed-size record the child writes to the launch pipe when a step
/// fails. A fatal record is followed by `_exit`; the pipe reaching EOF with no
/// fatal record means exec succeeded (the pipe is close-on-exec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepRecord {
    pub step: Step,
    pub fatal: bool,
    /// Which item of the step (a mount or rlimit index), or 0.
    pub index: u16,
    pub errno: i32,
}

impl StepRecord {
    pub const SIZE: usize = 8;

    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0] = self.step as u8;
        b[1] = self.fatal as u8;
        b[2..4].copy_from_slice(&self.index.to_le_bytes());
        b[4..8].copy_from_slice(&self.errno.to_le_bytes());
        b
    }

    /// The record by which the program under an init names itself: its pid
    /// as the supervisor sees it (its own is its namespace's).
    pub fn program(pid: i32) -> StepRecord {
        StepRecord {
            step: Step::Program,
            fatal: false,
            index: 0,
            errno: pid,
        }
    }

    /// The pid in a [`StepRecord::program`] record.
    pub fn program_pid(&self) -> Option<i32> {
        (self.step == Step::Program).then_some(self.errno)
    }

    pub fn decode(b: &[u8; Self::SIZE]) -> Option<StepRecord> {
        Some(StepRecord {
            step: Step::from_u8(b[0])?,
            fatal: b[1] != 0,
            index: u16::from_le_bytes([b[2], b[3]]),
            errno: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_mode_namespace_is_never_best_effort() {
        // No layer: a failure is fatal whatever `best_effort` lists.
        assert_eq!(Step::NetNamespace.layer(), None);
    }

    #[test]
    fn step_records_round_trip() {
        for step in Step::ALL {
            let r = StepRecord {
                step,
                fatal: step as u8 % 2 == 0,
                index: 513,
                errno: libc::EPERM,
            };
            assert_eq!(StepRecord::decode(&r.encode()), Some(r));
        }
        assert_eq!(StepRecord::decode(&[0; 8]), None);
        assert_eq!(StepRecord::decode(&[200, 0, 0, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn required_partial_layer_blocks_launch() {
        let mut l = LayerReport {
            layer: Layer::Filesystem,
            status: Status::Partial,
            required: true,
            detail: String::new(),
        };
        assert!(l.blocks_launch());
        l.required = false;
        assert!(!l.blocks_launch());
        l.required = true;
        l.status = Status::NotNeeded;
        assert!(!l.blocks_launch());
    }
}
