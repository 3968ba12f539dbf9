//! The supervisor's syscall layer: safe functions over the system calls
//! the supervisor makes, one file per concern. `unsafe` outside this module
//! is confined to the transparent notifier (`broker::transparent`);
//! everything else calls these wrappers (or `nix`, where it has the call),
//! the start of the sandboxed child too ([`process::clone_sandbox_child`]).
//! This is also where a second platform plugs in.

// On macOS only the audit ledger's lock uses it so far.
#[cfg_attr(target_os = "macos", allow(dead_code))]
pub mod fs;
#[cfg(target_os = "linux")]
pub mod host;
pub mod io;
#[cfg(target_os = "linux")]
pub mod process;
pub mod pty;
#[cfg(target_os = "linux")]
pub mod socket;

use std::io as stdio;

/// A libc return value as a result: negative is the thread's `errno`.
#[cfg_attr(target_os = "macos", allow(dead_code))]
fn check(ret: libc::c_int) -> stdio::Result<libc::c_int> {
    if ret < 0 {
        Err(stdio::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
