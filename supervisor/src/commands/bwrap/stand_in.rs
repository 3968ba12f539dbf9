//! sluice as bubblewrap's stand-in, as the rest of sluice needs to know it:
//! the file the sandbox's view holds in place of bubblewrap, whether sluice
//! was started under that name, how quiet a stacked session then is, and
//! whether it may launch without the enclosing session's guard.
//! The stand-in itself is [`super`].

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sandbox_child::StandIn;

/// Where programs call bubblewrap; `/usr/bin` is on every `PATH` too.
pub const PATH: &str = "/usr/bin/bwrap";

/// The name sluice answers to as the stand-in.
pub(super) const NAME: &str = "bwrap";

/// The files the sandbox sees replaced by sluice's own binary.
pub fn stand_ins() -> Vec<StandIn> {
    match std::env::current_exe().and_then(|p| p.canonicalize()) {
        Ok(source) => vec![StandIn {
            path: PathBuf::from(PATH),
            source,
        }],
        Err(e) => {
            tracing::warn!("no bwrap stand-in in the sandbox: locating sluice's binary: {e}");
            Vec::new()
        }
    }
}

/// The stand-in's logging unless `SLUICE_LOG` says otherwise: the stacked
/// session's expected warnings (no namespaces, no PID namespace, no
/// read-only copy of the mount tree) would be in every wrapped command's
/// output; the enforcement report in the audit record still says them.
pub const LOG_LEVEL: &str = "error";

/// Whether a stacked session leaves its best-effort warnings unsaid: the
/// bwrap stand-in, unless `SLUICE_LOG` is set.
pub fn quiet() -> bool {
    invoked_as_bwrap() && std::env::var_os("SLUICE_LOG").is_none()
}

/// Whether sluice was started as `bwrap` (argv[0]'s last component).
pub fn invoked_as_bwrap() -> bool {
    std::env::args_os()
        .next()
        .is_some_and(|a| Path::new(&a).file_name() == Some(OsStr::new(NAME)))
}

/// The first path the command line keeps read-only inside a tree the
/// command may write (a `protect` entry of the stacked policy), as its
/// option names it.
static MASKED: OnceLock<String> = OnceLock::new();

/// Notes the first such path (`option path`), for [`require_guard`].
pub(super) fn set_masked(option_and_path: String) {
    let _ = MASKED.set(option_and_path);
}

/// Refuses to run the command when it has masks inside a written tree and
/// the enclosing session's guard does not take the stacked `protect` list
/// (no way to its broker, or the registration refused): nothing else keeps
/// them, and the command would run wider than asked. Called where the
/// stacked launch registers, before the command is forked.
pub fn require_guard(why: &str) -> anyhow::Result<()> {
    match MASKED.get() {
        Some(option) if invoked_as_bwrap() => Err(super::args::cannot(
            option,
            &format!(
                "it would keep a path read-only inside a tree the command may write, which \
                 a stacked sandbox gives only through the enclosing session's guard, and \
                 {why}; Landlock can only add access"
            ),
        )),
        _ => Ok(()),
    }
}
