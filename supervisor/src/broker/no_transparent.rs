//! Transparent brokering where there is none: it needs seccomp's user
//! notification (the program's own `open` calls stopped and answered),
//! which macOS has no equivalent of; `sluice run --transparent` is refused
//! there before anything runs. The types are uninhabited, so the broker
//! keeps one shape on both platforms and no value of them can exist.

use std::io;
use std::sync::Arc;

use super::Shared;

/// The program's notified calls: never any here.
pub enum Program {}

impl Program {
    pub fn descriptors(&self) -> usize {
        match *self {}
    }
}

/// Transparent brokering running: never here.
pub enum Transparent {}

impl Transparent {
    pub fn start(
        program: Program,
        _shared: Arc<Shared>,
        _runtime: tokio::runtime::Handle,
    ) -> io::Result<Transparent> {
        match program {}
    }

    pub fn stop(self, _runtime: &tokio::runtime::Runtime) -> bool {
        match self {}
    }
}
