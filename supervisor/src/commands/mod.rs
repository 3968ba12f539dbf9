//! One module per subcommand.

pub mod audit;
pub mod bwrap;
pub mod explain;
mod git_root;
pub mod open;
pub mod policy;
pub mod refusals;
pub mod run;
pub mod run_args;
pub mod seatbelt;
