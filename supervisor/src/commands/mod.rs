//! One module per subcommand.

pub mod audit;
#[cfg(target_os = "linux")]
pub mod bwrap;
#[cfg(target_os = "linux")]
pub mod explain;
#[cfg(target_os = "linux")]
mod git_root;
#[cfg(target_os = "linux")]
mod hooks_path;
pub mod open;
pub mod policy;
#[cfg(target_os = "linux")]
pub mod refusals;
#[cfg(target_os = "linux")]
pub mod run;
#[cfg(target_os = "macos")]
pub use crate::platform::macos::run;
pub mod run_args;
#[cfg(target_os = "linux")]
pub(crate) mod run_session;
#[cfg(target_os = "linux")]
mod run_state;
#[cfg(target_os = "linux")]
mod tool_configs;
// Only macOS starts it; its argument reading is tested on Linux too.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub mod sandbox_exec;
pub mod seatbelt;
