//! `[network] mode = "none"`: the program's IPv4 and IPv6 `socket()` calls,
//! notified (`sandbox_child::seccomp`, `NetSyscalls::UnixOnlyIpNotified`)
//! so that the person learns the program tried to reach the network,
//! instead of watching it wait on what looks like a DNS outage.
//!
//! Each is refused with `ENETUNREACH`, never run (`CONTINUE`): what the kernel
//! would do does not matter, so nothing the program changes afterwards can
//! either. The first is said on standard error, each is recorded (grouped
//! in the refusal summary). Costs nothing until the program makes one:
//! the filter notifies only those two families.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::caller::Target;
use super::context::Context;
use crate::audit::{self, By, Decision, DecisionRecord, Op, Via};

/// The errno of every refused socket: "Network is unreachable", what the
/// hosts mode's namespace answers a connection past its proxy, and what
/// programs report as a network failure. `EACCES` made npm blame a file's
/// permissions; glibc's resolver answers `EAI_AGAIN` whatever the errno.
pub const REFUSED: i32 = libc::ENETUNREACH;

/// The rule named in each record; the refusal summary knows it by this.
pub const RULE: &str = "[network] mode = \"none\"";

/// What each record asks for.
pub const ASKED: &str = "the network";

/// What is said, once per session.
pub const TOLD: &str = "sluice: the program tried to reach the network, which this session \
    closes ([network] mode = \"none\"); allow hosts with --allow-host HOST[:PORT], or every \
    connection with --net all";

/// Refuses one notified `socket(domain, type, protocol)`.
pub fn refuse(ctx: &Context, target: &Target<'_>, args: [u64; 6]) {
    let started = Instant::now();
    // Read before the answer, while the thread still waits in the call.
    let exe = target.exe();
    // Answered before the record is written: the program waits on nothing.
    if let Err(e) = ctx.listener.fail(target.id, REFUSED) {
        tracing::debug!(id = target.id, "socket not answered: {e}");
    }
    if !ctx.network_told.swap(true, Ordering::SeqCst) {
        // `\r\n`: the person's terminal may be in raw mode for the relay.
        eprint!("{TOLD}\r\n");
    }
    let family = match args[0] as u32 as i32 {
        libc::AF_INET => "IPv4",
        libc::AF_INET6 => "IPv6",
        _ => "IP",
    };
    let record = DecisionRecord {
        pid: target.tid as u32,
        exe,
        client: "transparent".to_owned(),
        via: Via::SeccompSocket,
        request_id: target.id,
        op: Op::Connect,
        path_asked: PathBuf::from(ASKED),
        path_opened: None,
        access: audit::Access::Write,
        flags: proto::OpenFlags::default(),
        decision: Decision::Denied,
        by: By::Rule,
        rule: Some(RULE.to_owned()),
        reason: Some(format!("an {family} socket")),
        latency_us: started.elapsed().as_micros() as u64,
    };
    // The refusal stands without its record (`record` says why).
    let _ = ctx.shared.record(&record);
}
