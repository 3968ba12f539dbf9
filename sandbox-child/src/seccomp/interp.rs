//! A classic-BPF interpreter for the subset the assembler emits, so filter
//! logic is tested without installing anything in the kernel.
//!
//! It first checks a program the way the kernel's loader does (length, jump
//! targets inside the program, a final return, word-aligned loads inside
//! `seccomp_data`), then runs it over a `seccomp_data` laid out in memory as
//! the kernel lays it out. Anything outside the subset panics: a test that
//! reaches it has found a bug in the assembler.

use super::bpf;

/// A syscall as the filter sees it.
#[derive(Clone, Copy, Debug)]
pub struct Syscall {
    pub arch: u32,
    pub nr: i32,
    pub args: [u64; 6],
}

impl Syscall {
    /// A native syscall with these arguments (missing ones are zero).
    pub fn native(nr: libc::c_long, args: &[u64]) -> Self {
        let mut all = [0; 6];
        all[..args.len()].copy_from_slice(args);
        Self {
            arch: super::NATIVE_AUDIT_ARCH,
            nr: i32::try_from(nr).expect("syscall numbers fit in an int"),
            args: all,
        }
    }

    /// The bytes of the `seccomp_data` the kernel would build.
    fn to_bytes(self) -> [u8; bpf::SECCOMP_DATA_SIZE as usize] {
        let data = libc::seccomp_data {
            nr: self.nr,
            arch: self.arch,
            instruction_pointer: 0x7fff_dead_beef,
            args: self.args,
        };
        // seccomp_data is repr(C) integers with no padding (4+4+8+6*8 bytes).
        // SAFETY: all 64 bytes are initialised; any bit pattern is a valid [u8; 64].
        unsafe { std::mem::transmute(data) }
    }
}

/// Checks `prog` as the kernel would before accepting it. Panics on failure.
pub fn validate(prog: &[libc::sock_filter]) {
    assert!(!prog.is_empty(), "empty program");
    assert!(prog.len() <= bpf::MAX_INSNS, "{} instructions", prog.len());
    let last = prog[prog.len() - 1];
    assert_eq!(last.code, bpf::RET_K, "program must end with a return");
    for (pc, insn) in prog.iter().enumerate() {
        let remaining = prog.len() - pc - 1;
        match insn.code {
            bpf::LD_W_ABS => {
                assert!(
                    insn.k % 4 == 0 && insn.k < bpf::SECCOMP_DATA_SIZE,
                    "pc {pc}: load {}",
                    insn.k
                );
            }
            bpf::JMP_JA => assert!((insn.k as usize) < remaining, "pc {pc}: ja past end"),
            bpf::JMP_JEQ_K | bpf::JMP_JGT_K | bpf::JMP_JGE_K | bpf::JMP_JSET_K => {
                let furthest = usize::from(insn.jt.max(insn.jf));
                assert!(furthest < remaining, "pc {pc}: jump past end");
            }
            bpf::ALU_AND_K | bpf::RET_K => {}
            other => panic!("pc {pc}: opcode {other:#x} outside the seccomp subset"),
        }
    }
}

/// Validates `prog`, runs it on `call` and returns its `SECCOMP_RET_*` value.
pub fn run(prog: &[libc::sock_filter], call: Syscall) -> u32 {
    run_counted(prog, call).0
}

/// [`run`], with how many instructions ran before the return (itself
/// included): what the call costs in the filter.
pub fn run_counted(prog: &[libc::sock_filter], call: Syscall) -> (u32, usize) {
    validate(prog);
    let data = call.to_bytes();
    let mut acc: u32 = 0;
    let mut pc = 0;
    for ran in 1.. {
        let insn = prog[pc];
        pc += 1;
        match insn.code {
            bpf::LD_W_ABS => acc = load_word(&data, insn.k),
            bpf::ALU_AND_K => acc &= insn.k,
            bpf::JMP_JA => pc += insn.k as usize,
            bpf::RET_K => return (insn.k, ran),
            code => pc += usize::from(branch(code, acc, insn)),
        }
    }
    unreachable!("validate() checked that the program ends in a return")
}

/// Whether the kernel's action cache allows syscall `nr` of the native
/// architecture without running the filter at all (Linux 5.11,
/// `seccomp_is_const_allow`): the program, run with only the architecture
/// and the number known, reaches a `RET ALLOW` without loading anything
/// else (an argument, the instruction pointer). A call whose verdict
/// depends on its arguments, or that is refused, runs the filter every
/// time.
pub fn const_allow(prog: &[libc::sock_filter], nr: i32) -> bool {
    validate(prog);
    let mut acc: u32 = 0;
    let mut pc = 0;
    loop {
        let insn = prog[pc];
        pc += 1;
        match insn.code {
            bpf::LD_W_ABS if insn.k == bpf::NR_OFFSET => acc = nr as u32,
            bpf::LD_W_ABS if insn.k == bpf::ARCH_OFFSET => acc = super::NATIVE_AUDIT_ARCH,
            bpf::LD_W_ABS => return false,
            bpf::ALU_AND_K => acc &= insn.k,
            bpf::JMP_JA => pc += insn.k as usize,
            bpf::RET_K => return insn.k == libc::SECCOMP_RET_ALLOW,
            code => pc += usize::from(branch(code, acc, insn)),
        }
    }
}

fn load_word(data: &[u8], offset: u32) -> u32 {
    let at = offset as usize;
    u32::from_ne_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

/// The offset a conditional jump takes for accumulator value `acc`.
fn branch(code: u16, acc: u32, insn: libc::sock_filter) -> u8 {
    let taken = match code {
        bpf::JMP_JEQ_K => acc == insn.k,
        bpf::JMP_JGT_K => acc > insn.k,
        bpf::JMP_JGE_K => acc >= insn.k,
        bpf::JMP_JSET_K => acc & insn.k != 0,
        other => unreachable!("validate() rejected opcode {other:#x}"),
    };
    if taken {
        insn.jt
    } else {
        insn.jf
    }
}

#[cfg(test)]
mod tests {
    use super::super::bpf::{Assembler, Cmp, Half, Target};
    use super::*;

    /// Returns 1 if the compared word satisfies `cmp k`, else 2.
    fn probe(cmp: Cmp, k: u32, half: Half, arg0: u64) -> u32 {
        let mut asm = Assembler::new();
        let yes = asm.label();
        asm.load(bpf::arg_offset(0, half));
        asm.jump(cmp, k, Target::To(yes), Target::Next);
        asm.ret(2);
        asm.bind(yes);
        asm.ret(1);
        let prog = asm.finish().unwrap();
        run(&prog, Syscall::native(0, &[arg0]))
    }

    #[test]
    fn comparisons_are_unsigned_32_bit() {
        assert_eq!(probe(Cmp::Eq, 5, Half::Low, 5), 1);
        assert_eq!(probe(Cmp::Eq, 5, Half::Low, 6), 2);
        assert_eq!(probe(Cmp::Gt, 5, Half::Low, 6), 1);
        assert_eq!(probe(Cmp::Gt, 5, Half::Low, 5), 2);
        assert_eq!(probe(Cmp::Ge, 5, Half::Low, 5), 1);
        assert_eq!(probe(Cmp::Ge, 5, Half::Low, 0xffff_ffff), 1);
        assert_eq!(probe(Cmp::Set, 0b100, Half::Low, 0b110), 1);
        assert_eq!(probe(Cmp::Set, 0b100, Half::Low, 0b011), 2);
    }

    #[test]
    fn halves_read_the_right_word() {
        let arg = 0x0000_0007_0000_0003;
        assert_eq!(probe(Cmp::Eq, 3, Half::Low, arg), 1);
        assert_eq!(probe(Cmp::Eq, 7, Half::High, arg), 1);
        assert_eq!(probe(Cmp::Eq, 7, Half::Low, arg), 2);
    }

    #[test]
    fn and_masks_the_accumulator() {
        let mut asm = Assembler::new();
        let yes = asm.label();
        asm.load(bpf::arg_offset(1, Half::Low));
        asm.and(0xf);
        asm.jump(Cmp::Eq, 1, Target::To(yes), Target::Next);
        asm.ret(2);
        asm.bind(yes);
        asm.ret(1);
        let prog = asm.finish().unwrap();
        assert_eq!(run(&prog, Syscall::native(0, &[0, 0x80801])), 1);
        assert_eq!(run(&prog, Syscall::native(0, &[0, 0x80802])), 2);
    }

    #[test]
    #[should_panic(expected = "jump past end")]
    fn validation_rejects_jumps_past_the_end() {
        let ret = libc::sock_filter {
            code: bpf::RET_K,
            jt: 0,
            jf: 0,
            k: 0,
        };
        let jump = libc::sock_filter {
            code: bpf::JMP_JEQ_K,
            jt: 1,
            jf: 0,
            k: 0,
        };
        validate(&[jump, ret]);
    }
}
