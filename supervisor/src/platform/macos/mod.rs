//! The macOS side of [`crate::platform`]: `sluice run` with a sealed
//! Seatbelt profile ([`run`]), its kqueue supervision ([`supervise`]), peer
//! identity for broker connections ([`peer`]); safe opens beneath a
//! directory are the portable [`crate::platform::walk`]. Type-checked and linted for both Apple targets;
//! never linked or run.

pub mod peer;
pub mod run;
pub mod supervise;
