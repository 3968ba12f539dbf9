//! Exit codes of `sluice` itself, as env(1) uses them.

/// sluice failed: bad arguments or policy, or a required layer not enforced.
pub const ERROR: i32 = 125;
/// The command was found but could not be executed.
pub const CANNOT_EXECUTE: i32 = 126;
/// The command was not found.
pub const NOT_FOUND: i32 = 127;

/// A shell-style status for a waitpid() status: the exit code, or 128+N for
/// a program killed by signal N.
pub fn from_wait_status(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        ERROR
    }
}

/// An error that ends sluice with a specific code (anything else is 125).
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

pub fn with_code(code: i32, message: impl Into<String>) -> anyhow::Error {
    Exit {
        code,
        message: message.into(),
    }
    .into()
}

/// execvp(command), the environment and descriptors passed through (the
/// nested `skip`, the `sandbox-exec` stand-in); returns only on failure,
/// with 127 for a command not found and 126 for one that cannot run.
pub fn exec(command: &[std::ffi::OsString]) -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let e = std::process::Command::new(&command[0])
        .args(&command[1..])
        .exec();
    let code = match e.kind() {
        std::io::ErrorKind::NotFound => NOT_FOUND,
        _ => CANNOT_EXECUTE,
    };
    with_code(code, format!("{}: {e}", command[0].to_string_lossy()))
}

/// The exit code of a command's result; an error is said on stderr after
/// `name: ` and ends with its code (125 unless it carries one).
pub fn finish(name: &str, result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(err) => {
            let code = err.downcast_ref::<Exit>().map_or(ERROR, |e| e.code);
            crate::say!("{name}: {err:#}");
            code
        }
    }
}
