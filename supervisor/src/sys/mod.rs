//! The supervisor's syscall layer: safe functions over the system calls
//! the supervisor makes, one file per concern. `unsafe` outside this module
//! is confined to the transparent notifier (`broker::transparent`) and the
//! launch path; everything else calls these wrappers (or `nix`, where it
//! has the call). This is also where a second platform plugs in.

pub mod fs;
pub mod io;
pub mod process;
pub mod pty;
pub mod socket;

use std::io as stdio;

/// A libc return value as a result: negative is the thread's `errno`.
fn check(ret: libc::c_int) -> stdio::Result<libc::c_int> {
    if ret < 0 {
        Err(stdio::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
