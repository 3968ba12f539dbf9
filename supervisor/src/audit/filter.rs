//! Which records the commands show: `--session`, `--path GLOB`,
//! `--decision`, `--since`, `--access net` (the proxy's connections).

use globset::{Glob, GlobMatcher};

use super::escape::escape_os;
use super::record::{Access, Decision, Entry};

/// `--access`: read matches read and read-write, write matches write and
/// read-write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessWanted {
    Read,
    Write,
    /// Connections through the hosts mode's proxy only.
    Net,
}

/// A selection of records. The default selects everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// A session id or a prefix of one.
    pub session: Option<String>,
    /// Any of these decisions (empty: any).
    pub decisions: Vec<Decision>,
    /// Records at or after this time (microseconds since the epoch).
    pub since: Option<i64>,
    /// Decisions about this access only.
    pub access: Option<AccessWanted>,
    path: Option<GlobMatcher>,
}

impl Filter {
    /// Selects decisions whose asked or opened path matches `glob` (matched
    /// against the stored text of the path; `*` also matches `/`).
    pub fn set_path_glob(&mut self, glob: &str) -> Result<(), String> {
        let glob = Glob::new(glob).map_err(|e| format!("--path: {e}"))?;
        self.path = Some(glob.compile_matcher());
        Ok(())
    }

    pub fn session_matches(&self, session: &str) -> bool {
        self.session
            .as_deref()
            .is_none_or(|want| session.starts_with(want))
    }

    /// Whether only decision records can match (a path or decision filter
    /// is set): start and end records have neither.
    pub fn decisions_only(&self) -> bool {
        self.path.is_some() || !self.decisions.is_empty() || self.access.is_some()
    }

    pub fn matches(&self, entry: &Entry) -> bool {
        if !self.session_matches(&entry.session) {
            return false;
        }
        if let Some(since) = self.since {
            if entry.micros().is_none_or(|t| t < since) {
                return false;
            }
        }
        if let Some(c) = entry.connection() {
            // `--path` matches `host:port`.
            let target = format!("{}:{}", c.host, c.port);
            return (self.decisions.is_empty() || self.decisions.contains(&c.decision))
                && matches!(self.access, None | Some(AccessWanted::Net))
                && self.path.as_ref().is_none_or(|g| g.is_match(&*target));
        }
        let Some(d) = entry.decision() else {
            return !self.decisions_only();
        };
        if !self.decisions.is_empty() && !self.decisions.contains(&d.decision) {
            return false;
        }
        let access = match self.access {
            None => true,
            Some(AccessWanted::Read) => matches!(d.access, Access::Read | Access::ReadWrite),
            Some(AccessWanted::Write) => matches!(d.access, Access::Write | Access::ReadWrite),
            Some(AccessWanted::Net) => false,
        };
        if !access {
            return false;
        }
        match &self.path {
            None => true,
            Some(glob) => {
                glob.is_match(&*escape_os(d.path_asked.as_os_str()))
                    || d.path_opened
                        .as_ref()
                        .is_some_and(|p| glob.is_match(&*escape_os(p.as_os_str())))
            }
        }
    }
}
