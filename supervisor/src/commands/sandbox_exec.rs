//! `sandbox-exec` inside a sluice sandbox on macOS: the command, under the
//! sandbox it is already in.
//!
//! Seatbelt cannot apply a profile inside a sandboxed process, so a tool
//! that wraps its commands in `sandbox-exec -p PROFILE CMD` (or `-f FILE`,
//! `-n NAME`) fails inside sluice with `sandbox_apply: Operation not
//! permitted` (exit 71). The macOS launcher puts a `sandbox-exec` that is
//! sluice's own binary first on the program's `PATH`
//! (`platform::macos::run`); started under that name, sluice reads
//! `sandbox-exec`'s arguments ([`parse`]) and, when the kernel says this
//! process is inside a sluice sandbox (the marker,
//! `sandbox_child::nesting::SeatbeltProbe`), runs the command directly with
//! a one-line notice: the skip of `nested = "skip"`. The command gets what
//! sluice's sandbox allows, never more; the profile it was given is not
//! applied (neither can narrow what Seatbelt already holds), which the
//! notice says. Outside a sluice sandbox, or in a sandbox that is not
//! sluice's, it refuses and names the real `/usr/bin/sandbox-exec`.
//!
//! A tool that calls `/usr/bin/sandbox-exec` by its full path reaches the
//! real one (a Seatbelt profile cannot put another file at a path), which
//! fails as before.
//!
//! The argument reading is portable and tested on Linux; the rest runs on
//! macOS only and has never run.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// The name sluice answers to as the stand-in.
pub const NAME: &str = "sandbox-exec";

/// Where macOS has the real one.
pub const REAL: &str = "/usr/bin/sandbox-exec";

/// The profile `sandbox-exec` was asked to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// `-f FILE`.
    File(OsString),
    /// `-n NAME` (a built-in profile such as `no-network`).
    Named(OsString),
    /// `-p TEXT`.
    Inline(OsString),
}

impl Profile {
    /// How the notice names it.
    pub fn describe(&self) -> String {
        match self {
            Profile::File(f) => format!("the profile in {}", f.to_string_lossy()),
            Profile::Named(n) => format!("the built-in profile '{}'", n.to_string_lossy()),
            Profile::Inline(_) => "the profile given with -p".to_owned(),
        }
    }
}

/// `sandbox-exec`'s command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub profile: Profile,
    /// `-D KEY=VALUE` parameters, in order.
    pub params: Vec<OsString>,
    /// The command and its arguments (never empty).
    pub command: Vec<OsString>,
}

/// Reads `sandbox-exec [-f FILE | -n NAME | -p TEXT] [-D KEY=VALUE ...]
/// COMMAND [ARGS...]` (getopt's way: a value attached or in the next
/// argument, options end at the first other argument or `--`). Exactly one
/// profile; a second one, an unknown option or no command is an error
/// naming it.
pub fn parse(args: &[OsString]) -> Result<Parsed, String> {
    let mut profile: Option<Profile> = None;
    let mut params = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_bytes();
        if arg == b"--" {
            i += 1;
            break;
        }
        if arg.len() < 2 || arg[0] != b'-' {
            break;
        }
        let option = arg[1];
        if !matches!(option, b'f' | b'n' | b'p' | b'D') {
            return Err(format!(
                "unknown option '{}' (sandbox-exec takes -f, -n, -p and -D)",
                String::from_utf8_lossy(arg)
            ));
        }
        let value = if arg.len() > 2 {
            OsStr::from_bytes(&arg[2..]).to_owned()
        } else {
            i += 1;
            match args.get(i) {
                Some(v) => v.clone(),
                None => return Err(format!("-{} needs a value", option as char)),
            }
        };
        i += 1;
        let given = match option {
            b'f' => Profile::File(value),
            b'n' => Profile::Named(value),
            b'p' => Profile::Inline(value),
            _ => {
                params.push(value);
                continue;
            }
        };
        if profile.is_some() {
            return Err("more than one profile (-f, -n, -p): give one".to_owned());
        }
        profile = Some(given);
    }
    let profile = profile.ok_or("no profile: give -f FILE, -n NAME or -p TEXT")?;
    let command = args[i..].to_vec();
    if command.is_empty() {
        return Err("no command to run".to_owned());
    }
    Ok(Parsed {
        profile,
        params,
        command,
    })
}

/// Whether sluice was started as `sandbox-exec`.
pub fn invoked_as_sandbox_exec() -> bool {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name)
        .is_some_and(|name| name == NAME)
}

/// Runs the stand-in: the command directly inside sluice's sandbox, with a
/// notice; refuses anywhere else. Returns only on failure.
#[cfg(target_os = "macos")]
pub fn main() -> i32 {
    use sandbox_child::nesting::{OuterSandbox, SeatbeltProbe};
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let parsed = match parse(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sandbox-exec (sluice's stand-in): {e}");
            return crate::exit::ERROR;
        }
    };
    match SeatbeltProbe::probe().outer() {
        OuterSandbox::Sluice => {}
        other => {
            let where_ = if other == OuterSandbox::None {
                "outside any sandbox"
            } else {
                "inside a sandbox that is not sluice's"
            };
            eprintln!(
                "sandbox-exec (sluice's stand-in): started {where_}; it runs commands only \
                 inside a sluice sandbox. Run {REAL} instead."
            );
            return crate::exit::ERROR;
        }
    }
    eprintln!(
        "sluice: sandbox-exec inside a sluice sandbox: running '{}' under sluice's sandbox \
         only; {} is not applied (Seatbelt cannot apply a profile inside a sandbox)",
        parsed.command[0].to_string_lossy(),
        parsed.profile.describe()
    );
    let result: anyhow::Result<i32> = Err(crate::exit::exec(&parsed.command));
    crate::exit::finish("sandbox-exec", result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn cmd(list: &[&str]) -> Vec<OsString> {
        args(list)
    }

    #[test]
    fn each_profile_form_with_its_value_apart_or_attached() {
        let p = parse(&args(&["-p", "(version 1)(allow default)", "ls", "-l"])).unwrap();
        assert_eq!(
            p.profile,
            Profile::Inline("(version 1)(allow default)".into())
        );
        assert_eq!(p.command, cmd(&["ls", "-l"]));
        let p = parse(&args(&["-f/tmp/p.sb", "make"])).unwrap();
        assert_eq!(p.profile, Profile::File("/tmp/p.sb".into()));
        assert_eq!(p.command, cmd(&["make"]));
        let p = parse(&args(&["-n", "no-network", "curl", "x"])).unwrap();
        assert_eq!(p.profile, Profile::Named("no-network".into()));
    }

    #[test]
    fn parameters_are_kept_and_options_end_at_the_command_or_dashes() {
        let p = parse(&args(&[
            "-D", "HOME=/u", "-DTMP=/t", "-f", "p.sb", "--", "-weird", "-p", "x",
        ]))
        .unwrap();
        assert_eq!(p.params, args(&["HOME=/u", "TMP=/t"]));
        assert_eq!(p.command, cmd(&["-weird", "-p", "x"]));
        // The command's own options are its own.
        let p = parse(&args(&["-p", "x", "git", "-c", "a=b", "status"])).unwrap();
        assert_eq!(p.command, cmd(&["git", "-c", "a=b", "status"]));
        // A lone "-" is a command (getopt stops there).
        let p = parse(&args(&["-p", "x", "-"])).unwrap();
        assert_eq!(p.command, cmd(&["-"]));
    }

    #[test]
    fn what_sandbox_exec_would_refuse_is_refused_with_its_reason() {
        for (given, says) in [
            (&["ls"][..], "no profile"),
            (&["-p", "x"][..], "no command"),
            (&["-p"][..], "-p needs a value"),
            (&["-x", "y", "ls"][..], "unknown option '-x'"),
            (&["-p", "x", "-f", "y", "ls"][..], "more than one profile"),
            (&["-D", "K=V", "ls"][..], "no profile"),
            (&[][..], "no profile"),
        ] {
            let err = parse(&args(given)).unwrap_err();
            assert!(err.contains(says), "{given:?}: {err}");
        }
    }

    #[test]
    fn the_notice_names_the_profile_not_applied() {
        assert_eq!(
            Profile::File("/a.sb".into()).describe(),
            "the profile in /a.sb"
        );
        assert_eq!(
            Profile::Named("pure-computation".into()).describe(),
            "the built-in profile 'pure-computation'"
        );
        // An inline profile can be long: not repeated.
        assert_eq!(
            Profile::Inline("(version 1)".into()).describe(),
            "the profile given with -p"
        );
    }
}
