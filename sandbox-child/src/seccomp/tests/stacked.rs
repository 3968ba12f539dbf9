//! The program's one filter (`Program::supervised`): the notifying filter
//! and the deny filter in one program must decide every call exactly as
//! the kernel decides it under the two stacked.

use super::*;

/// What the kernel returns for a call that `older` and then `newer`
/// (installed after it) answer: it runs the newest first and replaces the
/// result only with one whose action, as a signed number, is lower
/// (`seccomp_run_filters`). Written from the kernel's rule, not from the
/// table code it checks.
fn kernel_stack(older: u32, newer: u32) -> u32 {
    let action = |ret: u32| (ret & libc::SECCOMP_RET_ACTION_FULL) as i32;
    match action(older) < action(newer) {
        true => older,
        false => newer,
    }
}

/// Every value a check of either table compares with, its bits one by
/// one, and what lies around them.
fn values_of(specs: &[&FilterSpec], nr: libc::c_long) -> Vec<u32> {
    let mut values = vec![0, 1, u32::MAX];
    for spec in specs {
        let Some(rule) = spec.rules.iter().find(|r| r.nr == nr) else {
            continue;
        };
        let Check::Args { clauses, .. } = &rule.check else {
            continue;
        };
        for check in clauses.iter().flat_map(|c| &c.all_of) {
            let words = match &check.test {
                Test::OneOf(values) => values.clone(),
                Test::AnySet(bits) | Test::NoneSet(bits) => {
                    let each = (0..32).map(|b| 1 << b).filter(|b| bits & b != 0);
                    each.chain([*bits]).collect()
                }
            };
            for word in words {
                values.extend([word, word | 0x80, !word]);
            }
        }
    }
    values.sort_unstable();
    values.dedup();
    values
}

/// A small fixed-seed generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick(&mut self, values: &[u32]) -> u64 {
        let word = u64::from(values[self.next() as usize % values.len()]);
        match self.next() % 4 {
            // Whatever the upper half of the register holds.
            0 => word | HIGH_GARBAGE,
            1 => word | u64::from(values[self.next() as usize % values.len()]),
            _ => word,
        }
    }
}

/// Calls for `nr`: no arguments, each argument alone at each value, and
/// random mixes of the values.
fn calls_for(values: &[u32], nr: libc::c_long, rng: &mut Rng, mixes: usize) -> Vec<Syscall> {
    let mut calls = vec![Syscall::native(nr, &[])];
    // No table checks an argument past the fourth.
    for arg in 0..4 {
        for &value in values {
            let mut args = [0u64; 6];
            args[arg] = u64::from(value);
            calls.push(Syscall::native(nr, &args));
        }
    }
    for _ in 0..mixes {
        let args: Vec<u64> = (0..6).map(|_| rng.pick(values)).collect();
        calls.push(Syscall::native(nr, &args));
    }
    calls
}

/// For every deny-rule combination, both supervised filters and both
/// network choices: every native number, and for those either table
/// checks by their arguments, thousands of argument vectors; plus the
/// foreign architecture and the x32 ABI.
#[test]
fn the_programs_one_filter_decides_as_the_two_stacked() {
    let mut rng = Rng(0x5eed_5111_ce00_0019);
    for rules in every_rule_combination() {
        for (transparent, ip_sockets) in
            [(true, false), (true, true), (false, false), (false, true)]
        {
            let supervised = match transparent {
                true => filter::notify_spec(ip_sockets),
                false => filter::guard_spec(ip_sockets),
            };
            let deny_rules = match ip_sockets {
                true => SyscallRules {
                    net: NetSyscalls::UnixOnlyIpNotified,
                    ..rules.clone()
                },
                false => rules.clone(),
            };
            let deny = filter::deny_spec(&deny_rules);
            let older = Program::build(&supervised).unwrap();
            let newer = Program::build(&deny).unwrap();
            let one = Program::supervised(&rules, transparent, ip_sockets);
            interp::validate(one.instructions());
            let name = format!("{rules:?}, transparent {transparent}, ip {ip_sockets}");
            for nr in 0..512 {
                let checked = [&supervised, &deny]
                    .iter()
                    .any(|s| s.rules.iter().any(|r| r.nr == nr));
                let values = values_of(&[&supervised, &deny], nr);
                let mixes = if checked { 24 } else { 0 };
                let mut calls = calls_for(&values, nr, &mut rng, mixes);
                calls.push(Syscall {
                    arch: 0x4000_0003,
                    ..Syscall::native(nr, &[])
                });
                #[cfg(target_arch = "x86_64")]
                calls.push(Syscall {
                    nr: 0x4000_0000 | nr as i32,
                    ..Syscall::native(0, &[])
                });
                for call in calls {
                    let expected = kernel_stack(
                        interp::run(older.instructions(), call),
                        interp::run(newer.instructions(), call),
                    );
                    assert_eq!(
                        interp::run(one.instructions(), call),
                        expected,
                        "{name}: {call:?}"
                    );
                }
            }
        }
    }
}

/// The one filter is not larger than the two were together, so a call
/// decided by its arguments runs fewer instructions, not more.
#[test]
fn the_one_filter_is_no_longer_than_the_two() {
    for rules in every_rule_combination() {
        for transparent in [true, false] {
            let one = Program::supervised(&rules, transparent, false);
            let supervised = match transparent {
                true => Program::notify_filter(),
                false => Program::guard_filter(),
            };
            let two = supervised.len() + Program::deny_filter(&rules).len();
            assert!(one.len() <= two, "{rules:?}: {} > {two}", one.len());
        }
    }
}
