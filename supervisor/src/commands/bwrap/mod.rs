//! `bwrap` inside a sluice sandbox: bubblewrap's command line as a stacked,
//! narrower sluice session for that command.
//!
//! Agents wrap each tool call in bubblewrap (Claude Code's sandbox-runtime,
//! `codex sandbox`), which cannot make its namespaces inside sluice. The
//! sandbox's view holds sluice's own binary at `/usr/bin/bwrap` (a
//! [`StandIn`], bound read-only over the host's file) and sluice started
//! under that name reads bubblewrap's options ([`parse`]), turns the view
//! they describe into a policy ([`Request::policy_toml`]) and runs the
//! command in a session stacked on the enclosing one (`run::run_with`):
//! Landlock and seccomp only narrow, so the command gets at most what both
//! allow. A path made read-only inside a tree the command may write is a
//! `protect` entry of that policy, kept by the enclosing session's guard
//! ([`stand_in::require_guard`]). An option whose effect a stacked session cannot
//! give (a tree hidden inside one it may write, or read-only there without
//! an enclosing guard, a bind to another place, a seccomp program, another
//! uid) is refused with a message naming it: the stand-in never runs a
//! command wider than asked.

mod args;
pub mod stand_in;
mod view;

use std::ffi::OsString;

use anyhow::{Context, Result};
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::unistd::getppid;

use crate::exit;
use args::{parse, Parsed, Request};
use stand_in::NAME;

/// The stand-in's entry point: bubblewrap's arguments, its exit code.
pub fn main() -> i32 {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    exit::finish(NAME, run(args))
}

fn run(args: Vec<OsString>) -> Result<i32> {
    let mut request = match parse(args, std::env::vars_os().collect())? {
        Parsed::Run(request) => request,
        Parsed::Said(text) => {
            print!("{text}");
            return Ok(0);
        }
    };
    if crate::nesting::detect().is_none() {
        return Err(exit::with_code(
            exit::ERROR,
            "this is sluice's stand-in for bubblewrap, for use inside a sluice sandbox; \
             outside one, run bubblewrap itself",
        ));
    }
    if let Some(mask) = request.masks().into_iter().find(|m| !m.except) {
        stand_in::set_masked(format!("{} {}", mask.option, mask.path.display()));
    }
    request.relay_ports = relay_ports(&request);
    if request.die_with_parent {
        die_with_parent()?;
    }
    if let Some(dir) = &request.chdir {
        std::env::set_current_dir(dir)
            .with_context(|| format!("--chdir {}: cannot enter it", dir.display()))?;
    }
    let cwd = std::env::current_dir().context("the current directory")?;
    let spec = policies::load_str("bwrap", &request.policy_toml()?, &cwd)
        .map_err(|e| anyhow::anyhow!("the policy made from bwrap's arguments: {e}"))?;
    let mut argv: Vec<OsString> = vec!["--nested".into(), "stack".into(), "--".into()];
    argv.extend(request.command.iter().cloned());
    let args = super::run_args::RunArgs::parse_as_run(argv).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tmpdir = request
        .env
        .iter()
        .find(|(k, _)| k == "TMPDIR")
        .map(|(_, v)| v.clone());
    super::run::run_with(args, Some(super::run::Given { spec, tmpdir }))
}

/// `--die-with-parent`: the stand-in (the stacked session's supervisor,
/// whose death kills the command) goes when its caller does.
fn die_with_parent() -> Result<()> {
    let parent = getppid();
    prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(std::io::Error::from)
        .context("--die-with-parent")?;
    if getppid() != parent {
        return Err(exit::with_code(
            exit::ERROR,
            "--die-with-parent: the caller is gone",
        ));
    }
    Ok(())
}

/// `--unshare-net` gives bubblewrap's command a loopback of its own, where
/// sandboxing tools run their proxy's relay (sandbox-runtime's `socat` on
/// 3128 and 1080, named in the `*_PROXY` variables it sets with
/// `--setenv`; those the caller inherited name its own proxy, outside). Stacked, no
/// network namespace can be made, and Landlock names ports, not addresses;
/// so the command may listen on and connect to those ports only where the
/// enclosing network namespace holds nothing but loopback (the outer
/// session in the hosts mode): there a port reaches nothing else. A port
/// already taken there (sluice's own proxy holds 31280 in the hosts mode)
/// or one the enclosing sandbox does not let us bind is not granted, and
/// said. Elsewhere the command has no network, as asked.
fn relay_ports(r: &Request) -> Vec<u16> {
    if !r.no_network || !only_loopback() {
        return Vec::new();
    }
    let mut ports: Vec<u16> = r
        .env
        .iter()
        .filter(|(k, _)| r.set_here.contains(k))
        .filter(|(k, _)| {
            crate::net::PROXY_VARIABLES.iter().any(|p| k == p)
                || [
                    "FTP_PROXY",
                    "ftp_proxy",
                    "GRPC_PROXY",
                    "grpc_proxy",
                    "RSYNC_PROXY",
                ]
                .iter()
                .any(|p| k == p)
        })
        .filter_map(|(_, v)| loopback_port(v.to_str()?))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports.retain(
        |port| match std::net::TcpListener::bind(("127.0.0.1", *port)) {
            Ok(_) => true,
            Err(e) => {
                eprintln!(
                    "bwrap: the command's proxy port {port} on loopback cannot be its own \
                 ({e}: in use in the enclosing sandbox's network, such as sluice's own \
                 proxy, or not allowed there); it stays cut off"
                );
                false
            }
        },
    );
    ports
}

/// Whether this network namespace has no interface but loopback
/// (`/proc/net/dev`; unreadable counts as no).
fn only_loopback() -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/dev") else {
        return false;
    };
    let mut names = table
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim()));
    names.all(|n| n == "lo")
}

/// The port of a proxy URL on loopback (`http://user:pw@localhost:3128`,
/// `socks5h://127.0.0.1:1080`, `localhost:1080`).
fn loopback_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    port.parse().ok().filter(|p| loopback && *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_ports_on_loopback_are_read_from_their_urls() {
        for (url, port) in [
            ("http://srt.x%3D:secret@localhost:3128", Some(3128)),
            ("socks5h://u:p@127.0.0.1:1080/", Some(1080)),
            ("localhost:1080", Some(1080)),
            ("http://[::1]:8080", Some(8080)),
            ("http://proxy.example.com:3128", None),
            ("http://localhost.example.com:3128", None),
            ("http://10.0.0.1:3128", None),
            ("http://localhost", None),
        ] {
            assert_eq!(loopback_port(url), port, "{url}");
        }
    }
}
