//! The audit record: an append-only, tamper-evident log of every brokered
//! decision, one file per session.
//!
//! ```text
//! $XDG_STATE_HOME/sluice/audit/<session>.jsonl    (default ~/.local/state/...)
//! ```
//!
//! Each line is one JSON record. The first (`"kind":"start"`, seq 0) holds the
//! policy digest, the enforcement report and the command; then one
//! `"kind":"decision"` record per brokered request; `"kind":"end"` closes the
//! session with its exit status and decision counts. Every record carries its
//! `seq` (0, 1, 2, ...), `prev` (the hash of the record before it; 64 zeros for
//! seq 0) and, last, its own `hash`: the SHA-256 of the line's bytes up to the
//! `,"hash":` that ends it ([`chain`]). A verifier therefore works on raw
//! bytes: an edited, removed or reordered record breaks the chain at a place
//! it can name ([`verify`]).
//!
//! ```no_run
//! use supervisor::audit::{AuditLog, DecisionRecord, StartRecord};
//! # fn example(start: StartRecord, decision: DecisionRecord) -> std::io::Result<()> {
//! let log = AuditLog::open(&AuditLog::default_dir()?, "3f9a2c1d4e5b6a7f", &start)?;
//! log.append(&decision)?; // from any thread; one write(2) per record
//! log.finish("exit 0")?;
//! # Ok(())
//! # }
//! ```
//!
//! # Security
//!
//! - Files are created 0600 in a 0700 directory; an existing audit directory
//!   that is not ours or that group or others can write is refused.
//! - Each record is written whole by one `write(2)` on an `O_APPEND` file, so a
//!   crash (even `kill -9`) leaves records whole or absent; a final line
//!   without its newline is reported as torn, not as tampering, and a
//!   session without its end record that is not running as incomplete
//!   ([`verify::Status`]).
//! - The chain proves order and integrity *within* a file; the [`ledger`]
//!   chains the sessions of a directory, so a whole file removed is found.
//!   Someone who can write the directory can still drop the newest session
//!   with its ledger line, or rewrite a chain from some record on: the
//!   hashes are not anchored anywhere outside it.
//! - Paths are bytes: non-UTF-8 bytes are stored escaped ([`escape`]), and the
//!   commands escape control characters before printing anything a sandboxed
//!   program could have chosen.

pub mod chain;
mod dir;
pub mod escape;
pub mod filter;
pub mod ledger;
mod log;
pub mod read;
mod record;
pub mod stats;
pub mod time;
pub mod verify;

pub use dir::ensure_private_dir;
pub use log::{AuditLog, Created};
pub use record::{
    enforcement_json, Access, By, ConnectionRecord, Counts, Decision, DecisionRecord, EndRecord,
    Entry, Op, Quarantined, Record, Refused, StartRecord, Via,
};
