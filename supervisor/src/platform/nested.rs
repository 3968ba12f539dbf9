//! `sluice run` inside a sandbox on macOS: what to do, from whose sandbox
//! it is (`sandbox_child::nesting::SeatbeltProbe`) and the policy's
//! `nested`. Portable, tested on Linux.
//!
//! Seatbelt cannot apply a profile inside a sandboxed process, so nothing
//! stacks. Inside sluice's own sandbox (the kernel answers for the marker
//! only sluice's profiles allow) the command runs under it: `skip` (also
//! what `stack` becomes, with a notice), `warn`, or `error`. Inside a
//! sandbox that is not provably sluice's, running the command there would
//! give it whatever that sandbox allows, which sluice knows nothing of: it
//! is refused unless the policy (or `--nested warn`) says `warn`, which
//! runs it with a notice naming the foreign sandbox.

use policies::Nested;
use sandbox_child::nesting::OuterSandbox;

/// What `sluice run` does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nesting {
    /// Not inside a sandbox: launch as usual.
    Launch,
    /// Run the command directly, after this notice if any.
    Skip(Option<String>),
    /// Refuse to start, saying this.
    Refuse(String),
}

/// The decision for a command named `program`.
pub fn decide(outer: OuterSandbox, mode: Nested, program: &str) -> Nesting {
    match (outer, mode) {
        (OuterSandbox::None, _) => Nesting::Launch,
        (OuterSandbox::Sluice, Nested::Skip) => Nesting::Skip(None),
        (OuterSandbox::Sluice, Nested::Warn) => Nesting::Skip(Some(format!(
            "sluice: inside a sluice sandbox: running '{program}' under the outer sandbox \
             only (nested = \"warn\")"
        ))),
        (OuterSandbox::Sluice, Nested::Stack) => Nesting::Skip(Some(format!(
            "sluice: inside a sluice sandbox: running '{program}' under the outer sandbox \
             only (nested = \"stack\" cannot stack on macOS: Seatbelt applies no profile \
             inside a sandbox)"
        ))),
        (OuterSandbox::Sluice, Nested::Error) => Nesting::Refuse(
            "refusing to start: already inside a sluice sandbox and the policy says \
             nested = \"error\""
                .to_owned(),
        ),
        (OuterSandbox::Foreign, Nested::Warn) => Nesting::Skip(Some(format!(
            "sluice: inside a sandbox that is not sluice's: running '{program}' under it \
             without sluice's profile (nested = \"warn\")"
        ))),
        (OuterSandbox::Foreign, _) => Nesting::Refuse(
            "refusing to start: this process is inside a sandbox that is not sluice's, \
             so sluice can neither apply its profile nor vouch for the one in force; \
             run sluice outside it, or pass --nested warn to run the command under it"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_any_sandbox_every_mode_launches() {
        for mode in Nested::ALL {
            assert_eq!(decide(OuterSandbox::None, mode, "ls"), Nesting::Launch);
        }
    }

    #[test]
    fn inside_sluice_the_command_runs_under_it_unless_the_policy_says_error() {
        assert_eq!(
            decide(OuterSandbox::Sluice, Nested::Skip, "ls"),
            Nesting::Skip(None)
        );
        for mode in [Nested::Warn, Nested::Stack] {
            let Nesting::Skip(Some(notice)) = decide(OuterSandbox::Sluice, mode, "ls") else {
                panic!("{mode}: not a skip with a notice");
            };
            assert!(notice.contains("'ls'"), "{notice}");
        }
        assert!(matches!(
            decide(OuterSandbox::Sluice, Nested::Error, "ls"),
            Nesting::Refuse(_)
        ));
    }

    #[test]
    fn inside_a_foreign_sandbox_only_warn_runs_and_the_default_refuses() {
        assert_eq!(Nested::PLATFORM_DEFAULT, Nested::Stack, "on Linux");
        // The macOS default (skip) refuses there, like stack and error.
        for mode in [Nested::Skip, Nested::Stack, Nested::Error] {
            let Nesting::Refuse(why) = decide(OuterSandbox::Foreign, mode, "ls") else {
                panic!("{mode}: not refused");
            };
            assert!(why.contains("--nested warn"), "{why}");
        }
        let Nesting::Skip(Some(notice)) = decide(OuterSandbox::Foreign, Nested::Warn, "ls") else {
            panic!("warn: not a skip with a notice");
        };
        assert!(notice.contains("not sluice's"), "{notice}");
    }
}
