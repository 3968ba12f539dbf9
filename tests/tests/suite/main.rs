//! The integration and escape suite, one test binary (linked once, run with
//! one pool of test threads): a module a concern. `cargo test -p sluice-tests
//! --test suite MODULE::` runs one of them.

// The suite drives the Linux supervisor; for macOS it is type-checked empty.
#![cfg(target_os = "linux")]

mod agents;
mod attack15;
mod audit;
mod broker;
mod broker_clients;
mod broker_dirs;
mod broker_races;
mod broker_wire;
mod bwrap;
mod cli;
mod deny_walk_cache;
mod escape_fs;
mod escape_later;
mod escape_later_bare;
mod escape_later_git;
mod escape_limits;
mod escape_net;
mod escape_privs;
mod escape_proc;
mod escape_secrets;
mod explain;
mod guard_answers;
mod kernel;
mod nesting;
mod nesting_guard;
mod net_ask;
mod net_hosts;
mod net_hosts_stacked;
mod net_none;
mod net_socks;
mod newuser;
mod newuser_tools;
mod prompt_attacks;
mod prompts;
mod pyc15;
mod pycbound15;
mod redteam;
mod redteam11;
mod redteam12fs;
mod redteam12net;
mod redteam13;
mod redteam13agent;
mod redteam13pins;
mod redteam14;
mod redteam14b;
mod redteam14cache;
mod redteam14git;
mod redteam15;
mod redteam15config;
mod redteam15names;
mod redteam15net;
mod redteam_later;
mod seatbelt_cli;
mod sessions;
mod terminal;
mod transparent;
mod transparent_names;
