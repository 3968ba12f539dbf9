//! What the macOS supervisor's kqueue events mean, and what it does about
//! each: portable, so it is tested on Linux.
//!
//! The supervisor registers three kinds of event on one kqueue
//! (`macos/supervise.rs`):
//! - `EVFILT_PROC` with `NOTE_EXIT | NOTE_EXITSTATUS` on the program: its
//!   wait status arrives in `data`;
//! - `EVFILT_SIGNAL` for each forwarded signal (their disposition set to
//!   ignore, so only the kqueue sees them): passed on to the program's
//!   process group;
//! - `EVFILT_USER` (ident [`STOP_IDENT`]): another thread of sluice asks the
//!   supervision to end (the session is being torn down).
//!
//! The constants are Darwin's `<sys/event.h>` values; `macos/supervise.rs`
//! asserts at compile time that they equal the `libc` crate's, so a drift
//! fails the Apple type-check.

/// `EVFILT_PROC`.
pub const EVFILT_PROC: i16 = -5;
/// `EVFILT_SIGNAL`.
pub const EVFILT_SIGNAL: i16 = -6;
/// `EVFILT_USER`.
pub const EVFILT_USER: i16 = -10;
/// `EV_ERROR`: the event reports a failed registration; `data` is the errno.
pub const EV_ERROR: u16 = 0x4000;
/// `NOTE_EXIT`: the process exited.
pub const NOTE_EXIT: u32 = 0x8000_0000;
/// `NOTE_EXITSTATUS`: with `NOTE_EXIT`, `data` holds the wait status.
pub const NOTE_EXITSTATUS: u32 = 0x0400_0000;
/// `NOTE_TRIGGER`: fires an `EVFILT_USER` event.
pub const NOTE_TRIGGER: u32 = 0x0100_0000;

/// The `EVFILT_USER` identifier that asks the supervision to stop.
pub const STOP_IDENT: usize = 1;

/// The fields of a `struct kevent` the supervisor reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KEvent {
    pub ident: usize,
    pub filter: i16,
    pub flags: u16,
    pub fflags: u32,
    pub data: i64,
}

/// What an event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Process `pid` exited with this wait status.
    Exited { pid: libc::pid_t, status: i32 },
    /// `signo` was sent to sluice (`count` times since the last report).
    Signal { signo: i32, count: i64 },
    /// Another thread asked the supervision to end.
    Stop,
    /// A registration failed: `ident` and the errno the kernel gave.
    Failed { ident: usize, errno: i32 },
    /// Anything else (another filter, a process note other than exit).
    Other,
}

/// Reads one event.
pub fn decode(ev: &KEvent) -> Event {
    if ev.flags & EV_ERROR != 0 {
        return Event::Failed {
            ident: ev.ident,
            errno: i32::try_from(ev.data).unwrap_or(i32::MAX),
        };
    }
    match ev.filter {
        EVFILT_PROC if ev.fflags & NOTE_EXIT != 0 => match libc::pid_t::try_from(ev.ident) {
            Ok(pid) => Event::Exited {
                pid,
                // Without NOTE_EXITSTATUS `data` says nothing; the status
                // then comes from waitpid alone.
                status: if ev.fflags & NOTE_EXITSTATUS != 0 {
                    i32::try_from(ev.data).unwrap_or(0)
                } else {
                    0
                },
            },
            Err(_) => Event::Other,
        },
        EVFILT_SIGNAL => match i32::try_from(ev.ident) {
            Ok(signo) => Event::Signal {
                signo,
                count: ev.data,
            },
            Err(_) => Event::Other,
        },
        EVFILT_USER if ev.ident == STOP_IDENT => Event::Stop,
        _ => Event::Other,
    }
}

/// The signals the supervisor's kqueue reads and passes on: sluice's
/// forwarded signals but those another kqueue reads (`relayed`: SIGWINCH,
/// when the terminal relay resizes the program's own pty, whose kernel then
/// signals the program).
pub fn forwarded(relayed: &[i32]) -> Vec<i32> {
    sandbox_child::FORWARDED_SIGNALS
        .into_iter()
        .filter(|sig| !relayed.contains(sig))
        .collect()
}

/// What the supervisor does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send this signal to the program's process group.
    Forward(i32),
    /// The program is gone: reap it (`waitpid`, which gives the status to
    /// keep), then kill its process group and end.
    Reap,
    /// End the session: kill the program's process group, then reap it.
    Stop,
    /// Nothing.
    Ignore,
}

/// The supervision's decision for each event, for a program `child` and
/// the signals sluice passes on (`forwarded`).
pub fn action(event: Event, child: libc::pid_t, forwarded: &[i32]) -> Action {
    match event {
        Event::Exited { pid, .. } if pid == child => Action::Reap,
        Event::Signal { signo, .. } if forwarded.contains(&signo) => Action::Forward(signo),
        Event::Stop => Action::Stop,
        // The program's registration failed (ESRCH: it exited before
        // kevent saw it): reap now, waitpid still has its status.
        Event::Failed { ident, .. } if libc::pid_t::try_from(ident).ok() == Some(child) => {
            Action::Reap
        }
        _ => Action::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORWARDED: [i32; 5] = sandbox_child::FORWARDED_SIGNALS;

    fn ev(ident: usize, filter: i16, flags: u16, fflags: u32, data: i64) -> KEvent {
        KEvent {
            ident,
            filter,
            flags,
            fflags,
            data,
        }
    }

    #[test]
    fn the_programs_exit_carries_its_wait_status_and_is_reaped() {
        // exit(3): wait status 3 << 8.
        let e = decode(&ev(
            4242,
            EVFILT_PROC,
            0,
            NOTE_EXIT | NOTE_EXITSTATUS,
            3 << 8,
        ));
        assert_eq!(
            e,
            Event::Exited {
                pid: 4242,
                status: 3 << 8
            }
        );
        assert_eq!(crate::exit::from_wait_status(3 << 8), 3);
        assert_eq!(action(e, 4242, &FORWARDED), Action::Reap);
        // Another process's exit (a grandchild is never watched, but a
        // stray event must not end the session).
        assert_eq!(action(e, 4243, &FORWARDED), Action::Ignore);
        // Without NOTE_EXITSTATUS the status is waitpid's to give.
        let e = decode(&ev(4242, EVFILT_PROC, 0, NOTE_EXIT, 77));
        assert_eq!(
            e,
            Event::Exited {
                pid: 4242,
                status: 0
            }
        );
    }

    #[test]
    fn other_process_notes_are_not_an_exit() {
        // NOTE_FORK (0x40000000), NOTE_EXEC (0x20000000).
        for note in [0x4000_0000, 0x2000_0000] {
            let e = decode(&ev(4242, EVFILT_PROC, 0, note, 0));
            assert_eq!(e, Event::Other);
            assert_eq!(action(e, 4242, &FORWARDED), Action::Ignore);
        }
    }

    #[test]
    fn forwarded_signals_go_to_the_program_and_others_do_not() {
        for sig in FORWARDED {
            let e = decode(&ev(sig as usize, EVFILT_SIGNAL, 0, 0, 1));
            assert_eq!(
                e,
                Event::Signal {
                    signo: sig,
                    count: 1
                }
            );
            assert_eq!(action(e, 1, &FORWARDED), Action::Forward(sig));
        }
        for sig in [libc::SIGCHLD, libc::SIGKILL, libc::SIGUSR1] {
            let e = decode(&ev(sig as usize, EVFILT_SIGNAL, 0, 0, 1));
            assert_eq!(action(e, 1, &FORWARDED), Action::Ignore, "signal {sig}");
        }
    }

    #[test]
    fn a_relayed_signal_is_left_to_the_relay() {
        let relayed = forwarded(&[libc::SIGWINCH]);
        let e = decode(&ev(libc::SIGWINCH as usize, EVFILT_SIGNAL, 0, 0, 1));
        assert_eq!(action(e, 1, &relayed), Action::Ignore);
        // The control: without a relay it is passed on, and the others are
        // passed on either way.
        assert_eq!(
            action(e, 1, &forwarded(&[])),
            Action::Forward(libc::SIGWINCH)
        );
        assert_eq!(forwarded(&[]), FORWARDED);
        for sig in FORWARDED.into_iter().filter(|&s| s != libc::SIGWINCH) {
            let e = decode(&ev(sig as usize, EVFILT_SIGNAL, 0, 0, 1));
            assert_eq!(action(e, 1, &relayed), Action::Forward(sig), "signal {sig}");
        }
    }

    #[test]
    fn a_stop_request_stops_and_other_user_events_do_not() {
        let e = decode(&ev(STOP_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, 0));
        assert_eq!(e, Event::Stop);
        assert_eq!(action(e, 1, &FORWARDED), Action::Stop);
        let e = decode(&ev(STOP_IDENT + 1, EVFILT_USER, 0, NOTE_TRIGGER, 0));
        assert_eq!(action(e, 1, &FORWARDED), Action::Ignore);
    }

    #[test]
    fn a_failed_registration_of_the_program_reaps_it() {
        // ESRCH: the program exited before it was registered.
        let e = decode(&ev(4242, EVFILT_PROC, EV_ERROR, 0, libc::ESRCH as i64));
        assert_eq!(
            e,
            Event::Failed {
                ident: 4242,
                errno: libc::ESRCH
            }
        );
        assert_eq!(action(e, 4242, &FORWARDED), Action::Reap);
        // A failed signal registration says nothing about the program.
        let e = decode(&ev(
            libc::SIGINT as usize,
            EVFILT_SIGNAL,
            EV_ERROR,
            0,
            libc::EINVAL as i64,
        ));
        assert_eq!(action(e, 4242, &FORWARDED), Action::Ignore);
    }
}
