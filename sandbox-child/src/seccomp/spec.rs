//! A general seccomp filter: a table of "syscall → action" rules, each action
//! optionally decided by checks on the syscall's arguments, compiled to BPF.
//!
//! Every filter built here starts the same way: a syscall from a foreign
//! architecture (or, on x86_64, the x32 ABI) kills the process, because the
//! syscall numbers in the table mean something else there and a filter that
//! matched them anyway would be bypassed by switching ABI.
//!
//! Layout of the compiled program:
//!
//! ```text
//!        ld arch; jeq NATIVE ? ok : next; ret KILL_PROCESS
//! ok:    ld nr; [x86_64: jge X32_BIT ? next : nr_ok; ret KILL_PROCESS]
//! nr_ok: jeq NR_0 ? next : skip_0;  ret ACTION_0  (or ja CHECKS_0)
//! skip_0: ...one pair per rule...
//!        ret DEFAULT
//! CHECKS_0: argument checks of rule 0, each path ending in a ret
//! ```
//!
//! Every conditional jump in the dispatch skips exactly one instruction and
//! argument checks are reached by an unconditional `ja`, so the table can
//! grow to the kernel's 4096-instruction limit without any jump going out of
//! range.
//!
//! The dispatch is a linear scan, which costs nothing for most syscalls on
//! Linux 5.11+: the kernel notices that a filter allows a number without
//! looking at its arguments and caches that verdict.

use super::bpf::{self, Assembler, Cmp, Half, Label, Target};

/// What a filter tells the kernel to do with a syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Allow,
    /// Fail the syscall with this errno without running it.
    Errno(u16),
    KillProcess,
    /// Hand the syscall to the supervisor holding the listener fd.
    UserNotif,
}

impl Action {
    /// The kernel's order among the results of stacked filters, strongest
    /// first (`seccomp_run_filters`: the lowest `SECCOMP_RET_ACTION_FULL`
    /// as a signed number wins).
    fn rank(self) -> u8 {
        match self {
            Action::KillProcess => 0,
            Action::Errno(_) => 1,
            Action::UserNotif => 2,
            Action::Allow => 3,
        }
    }

    /// What the kernel does when an older filter says `self` and a newer
    /// one `newer`: the stronger; of two of a kind, the newer's (the
    /// kernel runs the newest first and replaces a result only with a
    /// stronger one).
    fn stacked_under(self, newer: Action) -> Action {
        match self.rank() < newer.rank() {
            true => self,
            false => newer,
        }
    }
}

impl Action {
    /// The `SECCOMP_RET_*` value the filter returns.
    pub fn ret_value(self) -> u32 {
        match self {
            Action::Allow => libc::SECCOMP_RET_ALLOW,
            Action::Errno(errno) => libc::SECCOMP_RET_ERRNO | u32::from(errno),
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Action::UserNotif => libc::SECCOMP_RET_USER_NOTIF,
        }
    }
}

/// A test on the 32-bit word loaded from an argument (after masking).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Test {
    /// The word equals one of these values.
    OneOf(Vec<u32>),
    /// At least one of these bits is set.
    AnySet(u32),
    /// None of these bits is set.
    NoneSet(u32),
}

/// One condition on one half of one syscall argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgCheck {
    /// Argument index, 0..6.
    pub arg: usize,
    pub half: Half,
    /// ANDed with the word before `test`; `u32::MAX` keeps every bit.
    pub mask: u32,
    pub test: Test,
}

impl ArgCheck {
    /// A check on the low 32 bits of `args[arg]`: exactly the value the
    /// kernel sees where the parameter is an `int` or `unsigned int`, whatever
    /// garbage the caller left in the upper half of the register.
    pub fn low(arg: usize, test: Test) -> Self {
        Self {
            arg,
            half: Half::Low,
            mask: u32::MAX,
            test,
        }
    }

    /// The same check, applied to `word & mask`.
    pub fn masked(self, mask: u32) -> Self {
        Self { mask, ..self }
    }
}

/// If every check holds, the syscall gets `action`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clause {
    pub all_of: Vec<ArgCheck>,
    pub action: Action,
}

/// How a matched syscall's action is decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Always this action, whatever the arguments.
    Always(Action),
    /// The first clause whose checks all hold decides; if none does, `otherwise`.
    Args {
        clauses: Vec<Clause>,
        otherwise: Action,
    },
}

impl Check {
    /// Whether any outcome of this check is something other than `Allow`.
    pub fn can_refuse(&self) -> bool {
        match self {
            Check::Always(action) => *action != Action::Allow,
            Check::Args { clauses, otherwise } => {
                *otherwise != Action::Allow || clauses.iter().any(|c| c.action != Action::Allow)
            }
        }
    }
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallRule {
    /// The syscall's name, for reports and errors.
    pub name: &'static str,
    /// The native syscall number (`libc::SYS_*`).
    pub nr: libc::c_long,
    pub check: Check,
}

impl SyscallRule {
    pub fn always(name: &'static str, nr: libc::c_long, action: Action) -> Self {
        Self {
            name,
            nr,
            check: Check::Always(action),
        }
    }
}

/// A whole filter: the rules, and the action for every syscall they miss.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterSpec {
    pub rules: Vec<SyscallRule>,
    pub default: Action,
}

impl FilterSpec {
    /// One table that decides every call as the kernel decides it under
    /// `self` with `newer` installed after it: one filter to run per call
    /// instead of two, and one to compile. Each number gets the rules of
    /// both: the first clause of `newer` that holds, then the first of
    /// `self` that holds, give the two results, and the stronger is kept
    /// ([`Action::stacked_under`]); the clauses list every pair, less the
    /// pairs that cannot both hold and those whose result does not depend
    /// on `self`'s clause. The order is `newer`'s, then the numbers only
    /// `self` names.
    pub fn stacked_under(&self, newer: &FilterSpec) -> FilterSpec {
        let older = self;
        let as_rule = |nr: libc::c_long, spec: &'_ FilterSpec| -> Check {
            match spec.rules.iter().find(|r| r.nr == nr) {
                Some(rule) => rule.check.clone(),
                None => Check::Always(spec.default),
            }
        };
        let newer_rules = newer.rules.iter().map(|r| (r.name, r.nr));
        let older_only = (older.rules.iter())
            .filter(|r| newer.rules.iter().all(|n| n.nr != r.nr))
            .map(|r| (r.name, r.nr));
        let rules = newer_rules
            .chain(older_only)
            .map(|(name, nr)| SyscallRule {
                name,
                nr,
                check: stack_checks(&as_rule(nr, older), &as_rule(nr, newer)),
            })
            .collect();
        FilterSpec {
            rules,
            default: older.default.stacked_under(newer.default),
        }
    }
}

/// A check as first-match clauses and the action when none holds.
fn clauses_of(check: &Check) -> (&[Clause], Action) {
    match check {
        Check::Always(action) => (&[], *action),
        Check::Args { clauses, otherwise } => (clauses, *otherwise),
    }
}

/// One check deciding as `older` and `newer` stacked ([`FilterSpec::stacked_under`]).
fn stack_checks(older: &Check, newer: &Check) -> Check {
    let (old_clauses, old_otherwise) = clauses_of(older);
    let (new_clauses, new_otherwise) = clauses_of(newer);
    // `older`'s outcomes: each clause, then a catch-all.
    let old_outcomes: Vec<(&[ArgCheck], Action)> = (old_clauses.iter())
        .map(|c| (&c.all_of[..], c.action))
        .chain([(&[][..], old_otherwise)])
        .collect();
    let mut clauses = Vec::new();
    // For each of `newer`'s clauses (a call reaching the next one has
    // matched none before it), every outcome of `older`, in order.
    for new in new_clauses {
        let results: Vec<Action> = (old_outcomes.iter())
            .map(|(_, old)| old.stacked_under(new.action))
            .collect();
        if results.iter().all(|&r| r == results[0]) {
            clauses.push(Clause {
                all_of: new.all_of.clone(),
                action: results[0],
            });
            continue;
        }
        for ((checks, _), action) in old_outcomes.iter().zip(results) {
            let all_of: Vec<ArgCheck> = new.all_of.iter().chain(*checks).cloned().collect();
            if satisfiable(&all_of) {
                clauses.push(Clause { all_of, action });
            }
        }
    }
    // None of `newer`'s clauses held: `older`'s clauses as they are.
    for (checks, old) in &old_outcomes[..old_clauses.len()] {
        clauses.push(Clause {
            all_of: checks.to_vec(),
            action: old.stacked_under(new_otherwise),
        });
    }
    let otherwise = old_otherwise.stacked_under(new_otherwise);
    // A clause at the end that gives what `otherwise` gives changes nothing.
    while clauses.last().is_some_and(|c| c.action == otherwise) {
        clauses.pop();
    }
    match clauses.is_empty() {
        true => Check::Always(otherwise),
        false => Check::Args { clauses, otherwise },
    }
}

/// False when two of `checks` test the same bits of the same word for
/// values that exclude each other, so no call can pass them all (a pair
/// of clauses on different socket families, say); true otherwise, which
/// only costs instructions when wrong.
fn satisfiable(checks: &[ArgCheck]) -> bool {
    let same_word = |a: &ArgCheck, b: &ArgCheck| (a.arg, a.half, a.mask) == (b.arg, b.half, b.mask);
    checks.iter().enumerate().all(|(i, a)| {
        checks[i + 1..]
            .iter()
            .filter(|b| same_word(a, b))
            .all(|b| match (&a.test, &b.test) {
                (Test::OneOf(x), Test::OneOf(y)) => x.iter().any(|v| y.contains(v)),
                (Test::AnySet(set), Test::NoneSet(none))
                | (Test::NoneSet(none), Test::AnySet(set)) => set & !none != 0,
                _ => true,
            })
    })
}

/// Why a [`FilterSpec`] could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("syscall '{name}' has more than one rule; only the first would ever match")]
    DuplicateSyscall { name: &'static str },
    #[error("syscall '{name}' has number {nr}, which is not a native syscall number")]
    BadSyscallNumber {
        name: &'static str,
        nr: libc::c_long,
    },
    #[error("syscall '{name}': argument check has no values to compare with")]
    EmptyTest { name: &'static str },
    #[error("syscall '{name}': argument index {arg} is out of range 0..6")]
    BadArgument { name: &'static str, arg: usize },
    #[error(transparent)]
    Assembly(#[from] bpf::AsmError),
}

/// The `AUDIT_ARCH_*` value of the architecture this crate is built for.
#[cfg(target_arch = "x86_64")]
pub const NATIVE_AUDIT_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
/// The `AUDIT_ARCH_*` value of the architecture this crate is built for.
#[cfg(target_arch = "aarch64")]
pub const NATIVE_AUDIT_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("sluice's seccomp filter knows only x86_64 and aarch64 syscall numbers");

/// Bit marking an x32-ABI syscall number on x86_64 (`__X32_SYSCALL_BIT`).
#[cfg(target_arch = "x86_64")]
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Compiles `spec` to BPF instructions.
pub fn compile(spec: &FilterSpec) -> Result<Vec<libc::sock_filter>, BuildError> {
    validate(spec)?;
    let mut asm = Assembler::new();
    emit_abi_guard(&mut asm);
    let check_blocks = emit_dispatch(&mut asm, spec);
    for (label, rule) in check_blocks {
        asm.bind(label);
        if let Check::Args { clauses, otherwise } = &rule.check {
            emit_clauses(&mut asm, clauses, *otherwise);
        }
    }
    Ok(asm.finish()?)
}

/// Catches table mistakes that would otherwise compile to a wrong filter.
fn validate(spec: &FilterSpec) -> Result<(), BuildError> {
    for (i, rule) in spec.rules.iter().enumerate() {
        let name = rule.name;
        if spec.rules[..i].iter().any(|earlier| earlier.nr == rule.nr) {
            return Err(BuildError::DuplicateSyscall { name });
        }
        if native_nr(rule).is_none() {
            return Err(BuildError::BadSyscallNumber { name, nr: rule.nr });
        }
        let Check::Args { clauses, .. } = &rule.check else {
            continue;
        };
        for check in clauses.iter().flat_map(|clause| &clause.all_of) {
            if check.arg >= 6 {
                return Err(BuildError::BadArgument {
                    name,
                    arg: check.arg,
                });
            }
            if check.test == Test::OneOf(Vec::new()) {
                return Err(BuildError::EmptyTest { name });
            }
        }
    }
    Ok(())
}

/// The rule's number as the filter compares it, if it is a native one.
fn native_nr(rule: &SyscallRule) -> Option<u32> {
    let nr = u32::try_from(rule.nr).ok()?;
    #[cfg(target_arch = "x86_64")]
    if nr >= X32_SYSCALL_BIT {
        return None;
    }
    Some(nr)
}

/// Kills the process on a foreign architecture or ABI, then leaves the
/// syscall number in the accumulator.
fn emit_abi_guard(asm: &mut Assembler) {
    let arch_ok = asm.label();
    asm.load(bpf::ARCH_OFFSET);
    asm.jump(
        Cmp::Eq,
        NATIVE_AUDIT_ARCH,
        Target::To(arch_ok),
        Target::Next,
    );
    asm.ret(Action::KillProcess.ret_value());
    asm.bind(arch_ok);
    asm.load(bpf::NR_OFFSET);
    // x86_64 processes can also enter the kernel through the x32 ABI, with the
    // same audit arch but numbers offset by X32_SYSCALL_BIT. Comparing with >=
    // also catches numbers with the top bit set (negative as an int).
    #[cfg(target_arch = "x86_64")]
    {
        let nr_ok = asm.label();
        asm.jump(Cmp::Ge, X32_SYSCALL_BIT, Target::Next, Target::To(nr_ok));
        asm.ret(Action::KillProcess.ret_value());
        asm.bind(nr_ok);
    }
}

/// One compare-and-act pair per rule, then the default. Returns the labels
/// where the argument checks of each rule that has them must be emitted.
fn emit_dispatch<'a>(asm: &mut Assembler, spec: &'a FilterSpec) -> Vec<(Label, &'a SyscallRule)> {
    let mut check_blocks = Vec::new();
    for rule in &spec.rules {
        let nr = native_nr(rule).expect("validated before emitting");
        let skip = asm.label();
        asm.jump(Cmp::Eq, nr, Target::Next, Target::To(skip));
        match &rule.check {
            Check::Always(action) => asm.ret(action.ret_value()),
            Check::Args { .. } => {
                let block = asm.label();
                asm.ja(block);
                check_blocks.push((block, rule));
            }
        }
        asm.bind(skip);
    }
    asm.ret(spec.default.ret_value());
    check_blocks
}

/// Tries each clause in turn; every path ends in a `ret`.
fn emit_clauses(asm: &mut Assembler, clauses: &[Clause], otherwise: Action) {
    for clause in clauses {
        let next_clause = asm.label();
        for check in &clause.all_of {
            emit_check(asm, check, next_clause);
        }
        asm.ret(clause.action.ret_value());
        asm.bind(next_clause);
    }
    asm.ret(otherwise.ret_value());
}

/// Falls through if `check` holds, jumps to `fail` if it does not.
fn emit_check(asm: &mut Assembler, check: &ArgCheck, fail: Label) {
    // Each check reloads its word: the accumulator may hold another argument
    // or a masked value from the previous check.
    asm.load(bpf::arg_offset(check.arg, check.half));
    if check.mask != u32::MAX {
        asm.and(check.mask);
    }
    match &check.test {
        Test::AnySet(bits) => asm.jump(Cmp::Set, *bits, Target::Next, Target::To(fail)),
        Test::NoneSet(bits) => asm.jump(Cmp::Set, *bits, Target::To(fail), Target::Next),
        Test::OneOf(values) => emit_one_of(asm, values, fail),
    }
}

/// `A` in `values`: every value but the last jumps to the match on equality.
fn emit_one_of(asm: &mut Assembler, values: &[u32], fail: Label) {
    let Some((last, rest)) = values.split_last() else {
        // validate() rejects empty lists; an empty set matches nothing.
        asm.ja(fail);
        return;
    };
    let matched = asm.label();
    for value in rest {
        asm.jump(Cmp::Eq, *value, Target::To(matched), Target::Next);
    }
    asm.jump(Cmp::Eq, *last, Target::Next, Target::To(fail));
    asm.bind(matched);
}
