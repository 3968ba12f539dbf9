//! A tiny assembler for the classic-BPF subset that seccomp accepts.
//!
//! Instructions are appended in order; jumps name a [`Label`] that is bound
//! later, and [`Assembler::finish`] resolves every label to a relative offset.
//! Classic BPF can only jump forward, and a conditional jump reaches at most 255
//! instructions ahead (its offsets are `u8`), so both are checked here rather
//! than left for the kernel to reject with a bare `EINVAL`. Errors are sticky:
//! the first one is remembered and returned by `finish`, which keeps the code
//! that emits instructions free of `?` on every line.

use std::mem::{offset_of, size_of};

/// The kernel's limit on the length of one classic BPF program.
pub const MAX_INSNS: usize = libc::BPF_MAXINSNS as usize;

/// Size of the `seccomp_data` a filter reads; loads must stay inside it.
pub const SECCOMP_DATA_SIZE: u32 = size_of::<libc::seccomp_data>() as u32;
/// Offset of `seccomp_data.nr`.
pub const NR_OFFSET: u32 = offset_of!(libc::seccomp_data, nr) as u32;
/// Offset of `seccomp_data.arch`.
pub const ARCH_OFFSET: u32 = offset_of!(libc::seccomp_data, arch) as u32;
/// Offset of `seccomp_data.args[0]`.
const ARGS_OFFSET: u32 = offset_of!(libc::seccomp_data, args) as u32;

// Opcodes, spelled out from the class, size, mode and operation bits as in
// <linux/filter.h> and <linux/bpf_common.h>.
pub const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
pub const ALU_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
pub const JMP_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
pub const JMP_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
pub const JMP_JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
pub const JMP_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
pub const JMP_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
pub const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Which 32-bit half of a 64-bit syscall argument to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    /// Bits 0..32: all that matters where the kernel takes an `int`.
    Low,
    /// Bits 32..64.
    High,
}

/// The offset of one half of `seccomp_data.args[arg]`.
///
/// Classic BPF loads 32-bit words, so a 64-bit argument is read in two halves
/// whose position depends on the byte order. Panics if `arg` is not 0..6,
/// which is a programming error in a rule table.
pub fn arg_offset(arg: usize, half: Half) -> u32 {
    assert!(arg < 6, "syscalls have six arguments, not {}", arg + 1);
    let base = ARGS_OFFSET + 8 * arg as u32;
    let low_first = cfg!(target_endian = "little");
    match (half, low_first) {
        (Half::Low, true) | (Half::High, false) => base,
        (Half::Low, false) | (Half::High, true) => base + 4,
    }
}

/// A conditional jump's comparison of the accumulator with a constant.
// The whole set of seccomp's comparisons, tested in the interpreter; which
// ones the filters use depends on the architecture (only x86_64 needs `Ge`).
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `A == k`
    Eq,
    /// `A > k` (unsigned)
    Gt,
    /// `A >= k` (unsigned)
    Ge,
    /// `A & k != 0`
    Set,
}

impl Cmp {
    fn opcode(self) -> u16 {
        match self {
            Cmp::Eq => JMP_JEQ_K,
            Cmp::Gt => JMP_JGT_K,
            Cmp::Ge => JMP_JGE_K,
            Cmp::Set => JMP_JSET_K,
        }
    }
}

/// A position in the program, bound with [`Assembler::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

/// Where a conditional jump goes on one outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Fall through to the following instruction.
    Next,
    /// Jump to a label bound later in the program.
    To(Label),
}

/// Why a program could not be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmError {
    #[error("instruction {at}: jump of {distance} instructions exceeds the 255 a conditional jump can reach")]
    JumpTooFar { at: usize, distance: usize },
    #[error(
        "instruction {at}: jump to a label bound at or before it (classic BPF only jumps forward)"
    )]
    BackwardJump { at: usize },
    #[error("instruction {at}: jump to a label bound past the last instruction")]
    JumpPastEnd { at: usize },
    #[error("label {label} was used but never bound")]
    UnboundLabel { label: usize },
    #[error("label {label} was bound twice")]
    LabelBoundTwice { label: usize },
    #[error("load from offset {offset} is not an aligned word inside seccomp_data")]
    BadLoadOffset { offset: u32 },
    #[error("program has {len} instructions, more than the kernel's limit of {MAX_INSNS}")]
    TooLong { len: usize },
    #[error("program is empty")]
    Empty,
    #[error("program does not end with a return, so the kernel would reject it")]
    MissingFinalReturn,
}

/// One instruction before labels are resolved.
#[derive(Clone, Copy, Debug)]
enum Item {
    Stmt {
        code: u16,
        k: u32,
    },
    Jump {
        cmp: Cmp,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Ja(Label),
}

/// Builds a classic BPF program instruction by instruction.
#[derive(Debug, Default)]
pub struct Assembler {
    items: Vec<Item>,
    /// The instruction index each label is bound to, once bound.
    labels: Vec<Option<usize>>,
    error: Option<AsmError>,
}

impl Assembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh, unbound label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Binds `label` to the next instruction to be emitted.
    pub fn bind(&mut self, label: Label) {
        let slot = &mut self.labels[label.0];
        if slot.is_some() {
            self.fail(AsmError::LabelBoundTwice { label: label.0 });
            return;
        }
        *slot = Some(self.items.len());
    }

    /// `A = *(u32 *)(seccomp_data + offset)`
    pub fn load(&mut self, offset: u32) {
        if offset % 4 != 0 || offset >= SECCOMP_DATA_SIZE {
            self.fail(AsmError::BadLoadOffset { offset });
        }
        self.items.push(Item::Stmt {
            code: LD_W_ABS,
            k: offset,
        });
    }

    /// `A &= k`
    pub fn and(&mut self, k: u32) {
        self.items.push(Item::Stmt { code: ALU_AND_K, k });
    }

    /// `if (A <cmp> k) goto jt; else goto jf;`
    pub fn jump(&mut self, cmp: Cmp, k: u32, jt: Target, jf: Target) {
        self.items.push(Item::Jump { cmp, k, jt, jf });
    }

    /// Unconditional jump; its 32-bit offset reaches anywhere in a program.
    pub fn ja(&mut self, label: Label) {
        self.items.push(Item::Ja(label));
    }

    /// `return k`
    pub fn ret(&mut self, k: u32) {
        self.items.push(Item::Stmt { code: RET_K, k });
    }

    /// Resolves labels and returns the finished instructions.
    pub fn finish(self) -> Result<Vec<libc::sock_filter>, AsmError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        self.check_shape()?;
        self.items
            .iter()
            .enumerate()
            .map(|(at, item)| self.encode(at, *item))
            .collect()
    }

    /// The kernel's whole-program rules: non-empty, bounded, ends in a return.
    fn check_shape(&self) -> Result<(), AsmError> {
        match self.items.last() {
            None => Err(AsmError::Empty),
            Some(_) if self.items.len() > MAX_INSNS => Err(AsmError::TooLong {
                len: self.items.len(),
            }),
            Some(Item::Stmt { code: RET_K, .. }) => Ok(()),
            Some(_) => Err(AsmError::MissingFinalReturn),
        }
    }

    fn encode(&self, at: usize, item: Item) -> Result<libc::sock_filter, AsmError> {
        let insn = match item {
            Item::Stmt { code, k } => stmt(code, k),
            Item::Ja(label) => {
                let distance = self.distance(at, Target::To(label))?;
                // MAX_INSNS bounds every distance, so it always fits in k.
                stmt(JMP_JA, distance as u32)
            }
            Item::Jump { cmp, k, jt, jf } => libc::sock_filter {
                code: cmp.opcode(),
                jt: self.short_distance(at, jt)?,
                jf: self.short_distance(at, jf)?,
                k,
            },
        };
        Ok(insn)
    }

    /// A conditional jump's offset, which must fit in a `u8`.
    fn short_distance(&self, at: usize, target: Target) -> Result<u8, AsmError> {
        let distance = self.distance(at, target)?;
        u8::try_from(distance).map_err(|_| AsmError::JumpTooFar { at, distance })
    }

    /// How many instructions a jump at `at` skips to reach `target`.
    fn distance(&self, at: usize, target: Target) -> Result<usize, AsmError> {
        let Target::To(label) = target else {
            return Ok(0);
        };
        let bound = self.labels[label.0].ok_or(AsmError::UnboundLabel { label: label.0 })?;
        if bound <= at {
            return Err(AsmError::BackwardJump { at });
        }
        if bound >= self.items.len() {
            return Err(AsmError::JumpPastEnd { at });
        }
        Ok(bound - at - 1)
    }

    fn fail(&mut self, error: AsmError) {
        self.error.get_or_insert(error);
    }
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ret_program(asm: &mut Assembler) {
        asm.ret(libc::SECCOMP_RET_ALLOW);
    }

    #[test]
    fn resolves_forward_labels_to_relative_offsets() {
        let mut asm = Assembler::new();
        let yes = asm.label();
        asm.load(NR_OFFSET);
        asm.jump(Cmp::Eq, 7, Target::To(yes), Target::Next);
        asm.ret(libc::SECCOMP_RET_ALLOW);
        asm.ret(libc::SECCOMP_RET_ALLOW);
        asm.bind(yes);
        asm.ret(libc::SECCOMP_RET_KILL_PROCESS);
        let insns = asm.finish().unwrap();
        assert_eq!(insns.len(), 5);
        assert_eq!((insns[1].code, insns[1].jt, insns[1].jf), (JMP_JEQ_K, 2, 0));
    }

    #[test]
    fn conditional_jump_reaches_exactly_255() {
        for (filler, ok) in [(255, true), (256, false)] {
            let mut asm = Assembler::new();
            let far = asm.label();
            asm.jump(Cmp::Eq, 0, Target::Next, Target::To(far));
            (0..filler).for_each(|_| ret_program(&mut asm));
            asm.bind(far);
            ret_program(&mut asm);
            let result = asm.finish();
            if ok {
                assert_eq!(result.unwrap()[0].jf, 255);
            } else {
                let expected = AsmError::JumpTooFar {
                    at: 0,
                    distance: 256,
                };
                assert_eq!(result.unwrap_err(), expected);
            }
        }
    }

    #[test]
    fn unconditional_jump_reaches_past_255() {
        let mut asm = Assembler::new();
        let far = asm.label();
        asm.ja(far);
        (0..1000).for_each(|_| ret_program(&mut asm));
        asm.bind(far);
        ret_program(&mut asm);
        assert_eq!(asm.finish().unwrap()[0].k, 1000);
    }

    #[test]
    fn rejects_malformed_programs() {
        let mut asm = Assembler::new();
        let label = asm.label();
        asm.bind(label);
        asm.ja(label);
        ret_program(&mut asm);
        assert_eq!(asm.finish().unwrap_err(), AsmError::BackwardJump { at: 0 });

        let mut asm = Assembler::new();
        let label = asm.label();
        asm.ja(label);
        ret_program(&mut asm);
        assert_eq!(
            asm.finish().unwrap_err(),
            AsmError::UnboundLabel { label: 0 }
        );

        let mut asm = Assembler::new();
        let label = asm.label();
        ret_program(&mut asm);
        asm.bind(label);
        asm.bind(label);
        assert_eq!(
            asm.finish().unwrap_err(),
            AsmError::LabelBoundTwice { label: 0 }
        );

        let mut asm = Assembler::new();
        let label = asm.label();
        asm.ja(label);
        ret_program(&mut asm);
        asm.bind(label);
        assert_eq!(asm.finish().unwrap_err(), AsmError::JumpPastEnd { at: 0 });

        let mut asm = Assembler::new();
        asm.load(2);
        ret_program(&mut asm);
        assert_eq!(
            asm.finish().unwrap_err(),
            AsmError::BadLoadOffset { offset: 2 }
        );

        let mut asm = Assembler::new();
        asm.load(SECCOMP_DATA_SIZE);
        ret_program(&mut asm);
        let expected = AsmError::BadLoadOffset {
            offset: SECCOMP_DATA_SIZE,
        };
        assert_eq!(asm.finish().unwrap_err(), expected);
    }

    #[test]
    fn rejects_bad_program_shapes() {
        assert_eq!(Assembler::new().finish().unwrap_err(), AsmError::Empty);

        let mut asm = Assembler::new();
        asm.load(NR_OFFSET);
        assert_eq!(asm.finish().unwrap_err(), AsmError::MissingFinalReturn);

        let mut asm = Assembler::new();
        (0..=MAX_INSNS).for_each(|_| ret_program(&mut asm));
        let expected = AsmError::TooLong { len: MAX_INSNS + 1 };
        assert_eq!(asm.finish().unwrap_err(), expected);
    }

    #[test]
    fn argument_halves_are_little_endian_words() {
        assert_eq!(SECCOMP_DATA_SIZE, 64);
        assert_eq!((NR_OFFSET, ARCH_OFFSET), (0, 4));
        if cfg!(target_endian = "little") {
            assert_eq!(arg_offset(0, Half::Low), 16);
            assert_eq!(arg_offset(0, Half::High), 20);
            assert_eq!(arg_offset(5, Half::Low), 56);
            assert_eq!(arg_offset(5, Half::High), 60);
        }
    }
}
