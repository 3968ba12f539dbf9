//! Ask the sluice supervisor for file handles from inside its sandbox.
//!
//! A program started by `sluice run` cannot open files outside its policy.
//! It can ask: the supervisor (outside the sandbox) decides by policy or by
//! asking a person, opens the file itself and passes the descriptor back.
//! This crate is the asking side.
//!
//! - [`Client`]: blocking, no runtime; one request at a time per connection.
//! - `tokio::Client` (feature `tokio`): `&self` methods on a shared handle;
//!   requests from many tasks are pipelined on one connection and answered
//!   in any order.
//! - [`OpenOptions`]: what to open, checked like [`std::fs::OpenOptions`].
//! - [`Error`]: why not. `open` returns `io::Result` (a denial is
//!   `PermissionDenied`) with the typed error inside ([`Error::from_io`]).
//!
//! # Example
//!
//! ```no_run
//! use std::io::Read;
//! use client_sdk::{Client, Error, OpenOptions};
//!
//! let mut client = Client::from_env()?;
//! let mut file = client.open("/home/me/notes.txt", OpenOptions::new().read(true))?;
//! let mut text = String::new();
//! file.read_to_string(&mut text)?;
//!
//! match client.open("/home/me/.ssh/id_ed25519", OpenOptions::new().read(true)) {
//!     Ok(_) => println!("allowed"),
//!     Err(e) => match Error::from_io(&e) {
//!         Some(Error::Denied { reason, .. }) => println!("denied: {reason}"),
//!         _ => return Err(e.into()),
//!     },
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How a connection is made
//!
//! `sluice run` gives the sandboxed program one end of an `AF_UNIX`
//! `SOCK_SEQPACKET` socket (on macOS `SOCK_DGRAM`), numbered in
//! [`BROKER_FD_ENV`]. Every process of
//! the sandbox may hold that socket, so it is used for one thing only: the
//! client makes a socket pair, sends one end to the broker on it
//! (`ClientMessage::Connect`), and talks only on the other end — a private
//! connection no other process can read. Nothing is ever answered on the
//! shared socket.
//!
//! Relative paths are sent as given; the broker resolves them against the
//! working directory of the requesting process. The SDK does not make them
//! absolute, so the broker sees exactly what the program asked for.
//!
//! # Compatibility
//!
//! - Linux (`SOCK_SEQPACKET` with `SCM_RIGHTS`). On macOS, which has no
//!   unix seqpacket sockets, the shared socket is `SOCK_DGRAM` and private
//!   connections are streams ([`proto::socket::Wire::Stream`]); the client
//!   picks the wire from the shared socket's type. That wire is tested on
//!   Linux and type-checked for Apple targets, never run on macOS.
//! - Client and broker must speak the same [`proto::PROTOCOL_VERSION`]; the
//!   broker refuses other versions ([`Error::Refused`]). Both come from the
//!   same sluice release.
//! - The `tokio` feature needs a tokio 1.x runtime with I/O enabled; a
//!   client is bound to the runtime it was created in.
//!
//! # Security
//!
//! The supervisor trusts nothing the sandboxed program says, and this crate
//! makes no decisions: it only asks. What it does guarantee to the program
//! using it:
//!
//! - **Descriptors are close-on-exec.** A received file (`MSG_CMSG_CLOEXEC`)
//!   and every private connection are close-on-exec, so they do not leak
//!   into programs this one executes.
//! - **No planted descriptors.** A descriptor that arrives with a frame that
//!   should not carry one (anything but an `Opened` answer), or several, or
//!   with truncated control data, is closed at once and reported as
//!   [`Error::Protocol`]; the connection is then closed.
//! - **Never more access than asked.** A request carries exactly the
//!   [`OpenOptions`] given; nothing is widened, and the file is returned as
//!   the broker opened it.
//! - **The shared socket stays inheritable.** The descriptor named by
//!   `SLUICE_BROKER_FD` is never made close-on-exec, non-blocking or
//!   otherwise changed: child processes (a shell script calling
//!   `sluice open`, a compiler) can use the broker too. The client works on
//!   its own close-on-exec copy.
//! - **Not fork-safe.** After `fork`, a child must not use its parent's
//!   client (both would read the same connection); it makes its own with
//!   `from_env`.
//!
//! Not protected: anything the program does with the files it is given, and
//! the content of the broker's messages (reasons and rule names are text
//! for people).

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod blocking;
mod broker;
mod error;
mod options;
mod reply;
#[allow(unsafe_code)]
mod sys;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use blocking::Client;
pub use error::{Error, ProtocolError};
pub use options::OpenOptions;
pub use proto::{Access, ErrorKind, PolicySummary};
pub use reply::QueryAnswer;

/// The variable holding the number of the inherited broker socket.
pub const BROKER_FD_ENV: &str = "SLUICE_BROKER_FD";

/// The variable holding the session identifier (the same one the broker
/// gives at the handshake, [`Client::session`]).
pub const SESSION_ENV: &str = "SLUICE_SESSION";
