//! What every notification shares: the broker's state, the listener, the
//! sandbox's view, the runtime a call a person must answer waits on, and
//! the guard. Its own module, so the call handlers (`serve.rs`,
//! `connect.rs`, `socket.rs`) each depend on it and not on one another.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use tokio_util::task::TaskTracker;

use super::notif::Listener;
use super::stacked::Stacking;
use super::view::SandboxView;
use crate::broker::guard::Guard;
use crate::broker::Shared;

/// What every notification shares.
pub struct Context {
    pub shared: Arc<Shared>,
    pub listener: Listener,
    pub view: SandboxView,
    pub runtime: tokio::runtime::Handle,
    pub tracker: TaskTracker,
    /// The supervisor's end of the connector's socket (`connect.rs`).
    pub connector: Option<OwnedFd>,
    /// The program's seccomp filters at exec, and whether one may have been
    /// added since: a thread under more is in a stacked sandbox
    /// (`stacked.rs`).
    pub stacking: Stacking,
    /// Judges and makes every call that writes or makes a name.
    pub guard: Guard,
    /// Transparent brokering; without it only the guard's calls come here.
    pub brokering: bool,
    /// The person has been told the program tried to reach the network
    /// (`socket.rs`).
    pub network_told: std::sync::atomic::AtomicBool,
}
