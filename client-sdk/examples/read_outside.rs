//! An "agent" that reads a file outside its sandbox by asking the broker.
//!
//! ```sh
//! sluice run -- cargo run -p client-sdk --example read_outside -- ~/notes.txt
//! ```
//!
//! Exit status: 0 when the file was printed, 1 when the broker denied it,
//! 2 for any other failure, 3 when not running under sluice.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use client_sdk::{Client, Error, OpenOptions};

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: read_outside PATH");
        return ExitCode::from(2);
    };

    let mut client = match Client::from_env() {
        Ok(client) => client,
        Err(Error::NotUnderSluice { why }) => {
            eprintln!("read_outside: not running under sluice ({why})");
            eprintln!("read_outside: start me with `sluice run -- read_outside PATH`");
            return ExitCode::from(3);
        }
        Err(e) => {
            eprintln!("read_outside: cannot reach the broker: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "read_outside: session {}, policy '{}'",
        client.session(),
        client.policy().name
    );

    let mut file = match client.open(&path, OpenOptions::new().read(true)) {
        Ok(file) => file,
        Err(e) => {
            return match Error::from_io(&e) {
                Some(denied @ Error::Denied { .. }) => {
                    eprintln!("read_outside: {}: {denied}", path.display());
                    ExitCode::from(1)
                }
                _ => {
                    eprintln!("read_outside: {}: {e}", path.display());
                    ExitCode::from(2)
                }
            };
        }
    };

    let mut out = io::stdout().lock();
    match io::copy(&mut file, &mut out).and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("read_outside: {}: {e}", path.display());
            ExitCode::from(2)
        }
    }
}
