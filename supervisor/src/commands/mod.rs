//! One module per subcommand.

pub mod audit;
pub mod bwrap;
pub mod explain;
pub mod open;
pub mod policy;
pub mod refusals;
pub mod run;
pub mod seatbelt;
