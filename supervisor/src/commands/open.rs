//! `sluice open [OPTIONS] PATH`: from inside the sandbox, ask the broker for
//! a file, for shell scripts that cannot link the client SDK.
//!
//! Reads the file to standard output, or with `--write` copies standard
//! input into it; `--query` only asks. Exit codes: 0 done (for `--query`:
//! allowed or would ask), [`DENIED`] (1), [`FAILED`] (2: not found, I/O or
//! another broker error), and [`exit::ERROR`] (125) for bad arguments or when
//! not running under `sluice run`.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use client_sdk::{Access, Client, Error, OpenOptions, QueryAnswer};

use crate::audit::escape::for_terminal;
use crate::exit;

/// The broker (its policy, or the person asked) denied the request.
pub const DENIED: i32 = 1;
/// The file could not be opened, read or written: not found, an I/O error,
/// or another broker error.
pub const FAILED: i32 = 2;

/// The name this client gives the broker (prompts and the audit log).
const CLIENT_NAME: &str = "sluice-open";

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Copy standard input into the file instead of printing it. Without
    /// --truncate or --append, overwrites from the start in place.
    #[arg(long)]
    write: bool,
    /// Create the file if it does not exist.
    #[arg(long, requires = "write")]
    create: bool,
    /// Empty the file first.
    #[arg(long, requires = "write", conflicts_with = "append")]
    truncate: bool,
    /// Write at the end of the file.
    #[arg(long, requires = "write")]
    append: bool,
    /// Permission bits for a created file, in octal [default: 666, less
    /// the umask].
    #[arg(long, value_name = "OCTAL", requires = "create", value_parser = parse_mode)]
    mode: Option<u32>,
    /// Only ask whether reading (or, with --write, writing) would be
    /// allowed; print "allowed", "would ask" or "denied: REASON" and open
    /// nothing.
    #[arg(long, conflicts_with_all = ["create", "truncate", "append", "mode"])]
    query: bool,
    /// The file; a relative path is taken from the current directory.
    #[arg(value_name = "PATH")]
    path: PathBuf,
}

pub fn run(args: OpenArgs) -> Result<i32> {
    let mut client =
        Client::from_env_named(CLIENT_NAME).map_err(|e| failure("cannot reach the broker", &e))?;
    if args.query {
        return query(&mut client, &args);
    }
    let mut options = OpenOptions::new();
    if args.write {
        options
            .write(true)
            .create(args.create)
            .truncate(args.truncate)
            .append(args.append);
        if let Some(mode) = args.mode {
            options.mode(mode);
        }
    } else {
        options.read(true);
    }
    let what = args.path.display();
    let file = client
        .open(&args.path, &options)
        .map_err(|e| match Error::from_io(&e) {
            Some(typed) => failure(&what.to_string(), typed),
            None => exit::with_code(FAILED, format!("{what}: {e}")),
        })?;
    if args.write {
        copy(io::stdin().lock(), file, &args.path, Direction::IntoFile)
    } else {
        copy(file, io::stdout().lock(), &args.path, Direction::OutOfFile)
    }
}

fn query(client: &mut Client, args: &OpenArgs) -> Result<i32> {
    let access = if args.write {
        Access::Write
    } else {
        Access::Read
    };
    let answer = client
        .query(&args.path, access)
        .map_err(|e| failure(&args.path.display().to_string(), &e))?;
    let (line, code) = match answer {
        QueryAnswer::Allowed { rule } => (format!("allowed{}", rule_suffix(&rule)), 0),
        QueryAnswer::WouldAsk { rule } => (format!("would ask{}", rule_suffix(&rule)), 0),
        QueryAnswer::Denied { reason, rule } => {
            // The broker's reason usually names the rule already.
            let rule = rule.filter(|rule| !reason.contains(rule.as_str()));
            (
                format!("denied: {}{}", for_terminal(&reason), rule_suffix(&rule)),
                DENIED,
            )
        }
    };
    println!("{line}");
    Ok(code)
}

/// Which way `copy` moves bytes, to name the side that failed.
enum Direction {
    IntoFile,
    OutOfFile,
}

/// Copies `from` to `to` to the end. A reader of our output that went away
/// (`sluice open F | head`) ends the copy quietly, as it would for cat.
fn copy(mut from: impl Read, mut to: impl Write, path: &Path, dir: Direction) -> Result<i32> {
    let (source, sink) = match dir {
        Direction::IntoFile => ("standard input".to_owned(), path.display().to_string()),
        Direction::OutOfFile => (path.display().to_string(), "standard output".to_owned()),
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(exit::with_code(FAILED, format!("reading {source}: {e}"))),
        };
        match to.write_all(&buf[..n]) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(0),
            Err(e) => return Err(exit::with_code(FAILED, format!("writing {sink}: {e}"))),
        }
    }
    match to.flush() {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(exit::with_code(FAILED, format!("writing {sink}: {e}"))),
    }
}

/// The exit code and message for a typed SDK error.
fn failure(what: &str, err: &Error) -> anyhow::Error {
    let code = match err {
        Error::Denied { .. } => DENIED,
        Error::NotUnderSluice { .. } | Error::Refused { .. } => exit::ERROR,
        _ => FAILED,
    };
    let hint = match err {
        Error::NotUnderSluice { .. } => " (sluice open works inside `sluice run`)",
        _ => "",
    };
    exit::with_code(
        code,
        format!("{what}: {}{hint}", for_terminal(&err.to_string())),
    )
}

/// Broker text can quote a path the sandboxed program chose: it reaches the
/// terminal only through [`for_terminal`].
fn rule_suffix(rule: &Option<String>) -> String {
    match rule {
        Some(rule) => format!(" (rule {})", for_terminal(rule)),
        None => String::new(),
    }
}

fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let octal = !digits.is_empty() && digits.bytes().all(|b| matches!(b, b'0'..=b'7'));
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if octal && mode <= 0o7777 => Ok(mode),
        _ => Err(format!("'{text}' is not an octal mode between 0 and 7777")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("644"), Ok(0o644));
        assert_eq!(parse_mode("0600"), Ok(0o600));
        assert_eq!(parse_mode("0o755"), Ok(0o755));
        assert_eq!(parse_mode("7777"), Ok(0o7777));
        for bad in ["", "0o", "8", "10000", "rw-r--r--", "-1", "+644"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn control_and_bidi_characters_in_broker_text_are_escaped() {
        assert_eq!(
            rule_suffix(&Some("a\x1b[2Jb\n".into())),
            " (rule a\\x1b[2Jb\\x0a)"
        );
        assert_eq!(rule_suffix(&Some("ünïcode".into())), " (rule ünïcode)");
        // A right-to-left override would make the rest of the line read
        // backwards ("txt.exe" shown as "exe.txt").
        assert_eq!(
            rule_suffix(&Some("a\u{202e}txt.exe".into())),
            " (rule a\\u{202e}txt.exe)"
        );
        let err = failure(
            "p",
            &Error::Refused {
                reason: "x\u{202e}y".into(),
            },
        );
        assert!(format!("{err:#}").contains("x\\u{202e}y"), "{err:#}");
    }

    #[test]
    fn a_closed_reader_ends_the_copy_quietly() {
        struct Gone;
        impl Write for Gone {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let code = copy(&b"data"[..], Gone, Path::new("/f"), Direction::OutOfFile).unwrap();
        assert_eq!(code, 0);
    }
}
