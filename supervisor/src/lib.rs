//! The `sluice` binary: launcher, broker, prompts, audit.
//!
//! `sluice run` resolves a policy ([`policies`]), prepares and forks the
//! sandboxed child ([`sandbox_child`]), then stays outside the sandbox to
//! supervise it: it forwards signals, reaps the whole process tree and exits
//! with the program's status. See ARCHITECTURE.md for the launch sequence.
//!
//! Exit codes follow env(1): the program's own status, 128+N when it was
//! killed by signal N, and for sluice's own failures [`exit::ERROR`] (125),
//! [`exit::CANNOT_EXECUTE`] (126) and [`exit::NOT_FOUND`] (127).

pub mod approval;
pub mod audit;
pub mod broker;
mod cgroup;
pub mod cli;
mod commands;
mod enforced;
pub mod exit;
mod launch;
mod nesting;
pub mod net;
mod phase;
mod policy_files;
pub mod prompt;
mod quarantine;
mod session_dir;
mod supervise;
mod sys;
pub mod tty;
mod xdg;
