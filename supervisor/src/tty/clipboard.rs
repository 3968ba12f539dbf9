//! The program's clipboard sequences, taken out of its output on the way to
//! the person's terminal.
//!
//! OSC 52 (`ESC ] 52 ; c ; BASE64 BEL`) sets the system clipboard in most
//! terminals (kitty, WezTerm, foot, Alacritty and tmux by default; xterm and
//! iTerm2 when allowed), and with `?` as its data asks the terminal to type
//! the clipboard back into the program's input. Either way out of the
//! sandbox: a command line the person pastes later into a shell outside
//! it, or the person's copied password read in. kitty's OSC 5522 (its
//! clipboard protocol) likewise. So do the strings by which a terminal
//! acts for the program beyond its screen: kitty's remote control (a DCS
//! starting `@kitty-cmd`: where the person set `allow_remote_control yes`,
//! its `launch` runs any command outside the sandbox), kitty's file
//! transfer (OSC 5113) and iTerm2's clipboard and file transfer (OSC 1337
//! with `Copy=`, `CopyToClipboard`, `File=`, `MultipartFile=`,
//! `FilePart=`, `FileEnd`, `RequestUpload`: a file saved to the person's
//! Downloads, or one of theirs sent in), and the VT220's user-defined keys
//! (DECUDK, `DCS Ps;Ps |`: xterm then sends the program's string, a
//! command line, when the person presses a shifted function key in their
//! shell after the session). [`ClipboardFilter`] drops those
//! strings whole (inside a tmux passthrough too) and passes every other
//! byte unchanged, in order, across reads.
//!
//! The introducer is `ESC ]`, the 8-bit `0x9D` (not inside a UTF-8
//! character) or its UTF-8 form `C2 9D`; the number may have leading zeros
//! (terminals read it as a number). The string ends, as far as the filter
//! is concerned, at the first byte any terminal takes as its end or as
//! cancelling it (BEL, ST in any form, CAN, SUB, ESC): ending early is the
//! safe side, since the terminal then sees the rest as text of a string it
//! never started.

/// The OSC numbers dropped: xterm's clipboard, kitty's clipboard protocol
/// and file transfer.
const DROPPED: [u32; 3] = [52, 5522, 5113];
/// iTerm2's OSC, dropped where what follows its `;` starts with one of
/// [`DROPPED_ITERM2`].
const ITERM2: u32 = 1337;
/// iTerm2's keys that reach the clipboard or move a file.
const DROPPED_ITERM2: &[&[u8]] = &[
    b"Copy=",
    b"CopyToClipboard",
    b"File=",
    b"MultipartFile=",
    b"FilePart=",
    b"FileEnd",
    b"RequestUpload",
];
/// What a DCS dropped starts with: kitty's remote control.
const DROPPED_DCS: &[&[u8]] = &[b"@kitty-cmd"];
/// Most parameter bytes of a DCS read before passing it on.
const MAX_DCS_PARAMS: usize = 16;
/// Most digits of an OSC number read before passing the string on.
const MAX_DIGITS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Passing bytes; `utf8_left` continuation bytes of a character to come.
    Pass { utf8_left: u8 },
    /// Holding an `ESC`: an OSC if `]` follows.
    Escape,
    /// Holding a `C2`: an OSC if `9D` follows, else a character.
    C2,
    /// Holding an OSC introducer and the digits of its number so far.
    Number,
    /// Holding a DCS introducer (it ends at `start` in `held`) and the
    /// parameters after it so far: `|` after them is DECUDK.
    DcsParams { start: usize },
    /// Holding an introducer and what follows it from `start` in `held`,
    /// while that may still be the start of one of `of`.
    Prefix {
        start: usize,
        of: &'static [&'static [u8]],
    },
    /// Dropping a clipboard string until its end.
    Drop,
    /// Dropping, after an `ESC` (ST if `\` follows).
    DropEscape,
}

/// Drops the program's clipboard sequences from its output (module doc).
#[derive(Debug)]
pub(super) struct ClipboardFilter {
    state: State,
    /// The bytes held back (an introducer and its digits), at most a few.
    held: Vec<u8>,
    /// The length of the held introducer.
    introducer: usize,
}

impl Default for ClipboardFilter {
    fn default() -> Self {
        ClipboardFilter {
            state: State::Pass { utf8_left: 0 },
            held: Vec::new(),
            introducer: 0,
        }
    }
}

impl ClipboardFilter {
    /// The part of `input` to show, given what came before it; bytes that
    /// may start a clipboard sequence are held until they are known.
    pub(super) fn filter(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            self.byte(b, &mut out);
        }
        out
    }

    /// What is held back, given up when the output ends.
    pub(super) fn flush(&mut self) -> Vec<u8> {
        // An introducer that may still start a dropped string is dropped
        // too: given out, it would leave the terminal in a string that the
        // next bytes written (sluice's own) continue.
        if matches!(
            self.state,
            State::Drop | State::DropEscape | State::DcsParams { .. } | State::Prefix { .. }
        ) {
            self.held.clear();
        }
        self.state = State::Pass { utf8_left: 0 };
        std::mem::take(&mut self.held)
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.state {
            State::Pass { utf8_left } => self.pass(b, utf8_left, out),
            // `ESC ESC`: the first goes out (as sent: inside a tmux
            // passthrough it is an escaped ESC), the second is held.
            State::Escape if b == 0x1b => out.push(0x1b),
            State::Escape => {
                if b == b']' {
                    self.held.push(b);
                    self.introducer = 2;
                    self.state = State::Number;
                } else if b == b'P' {
                    self.dcs(b);
                } else {
                    self.give_back(b, out);
                }
            }
            State::C2 => {
                if b == 0x9d {
                    self.held.push(b);
                    self.introducer = 2;
                    self.state = State::Number;
                } else if b == 0x90 {
                    self.dcs(b);
                } else {
                    // A character: `C2` and its continuation byte.
                    out.append(&mut self.held);
                    self.state = State::Pass { utf8_left: 1 };
                    self.byte(b, out);
                }
            }
            State::Number => {
                let digits = self.held.len() - self.introducer;
                if b.is_ascii_digit() {
                    if digits < MAX_DIGITS {
                        self.held.push(b);
                    } else {
                        // No OSC number is this long, but a terminal may
                        // read `000000052` as 52: dropped (fail closed).
                        self.held.clear();
                        self.state = State::Drop;
                    }
                    return;
                }
                let number = std::str::from_utf8(&self.held[self.introducer..])
                    .ok()
                    .and_then(|d| d.parse::<u32>().ok());
                if number.is_some_and(|n| DROPPED.contains(&n)) {
                    self.held.clear();
                    self.state = State::Drop;
                    self.drop_byte(b);
                } else if number == Some(ITERM2) && b == b';' {
                    self.held.push(b);
                    self.state = State::Prefix {
                        start: self.held.len(),
                        of: DROPPED_ITERM2,
                    };
                } else {
                    self.give_back(b, out);
                }
            }
            State::DcsParams { start } => {
                let params = self.held.len() - start;
                if (b.is_ascii_digit() || b == b';') && params < MAX_DCS_PARAMS {
                    self.held.push(b);
                } else if b == b'|' {
                    self.held.clear();
                    self.state = State::Drop;
                } else if params == 0 {
                    self.state = State::Prefix {
                        start,
                        of: DROPPED_DCS,
                    };
                    self.byte(b, out);
                } else {
                    self.give_back(b, out);
                }
            }
            State::Prefix { start, of } => {
                self.held.push(b);
                let so_far = &self.held[start..];
                if of.contains(&so_far) {
                    self.held.clear();
                    self.state = State::Drop;
                } else if !of.iter().any(|key| key.starts_with(so_far)) {
                    self.held.pop();
                    self.give_back(b, out);
                }
            }
            State::Drop => self.drop_byte(b),
            State::DropEscape => {
                self.state = State::Pass { utf8_left: 0 };
                if b != b'\\' {
                    // The ESC cancelled the string and starts another
                    // sequence, of which `b` is the next byte (another ESC
                    // supersedes it).
                    self.held.push(0x1b);
                    self.state = State::Escape;
                    if b != 0x1b {
                        self.byte(b, out);
                    }
                }
            }
        }
    }

    fn pass(&mut self, b: u8, utf8_left: u8, out: &mut Vec<u8>) {
        if utf8_left > 0 && (0x80..=0xbf).contains(&b) {
            out.push(b);
            self.state = State::Pass {
                utf8_left: utf8_left - 1,
            };
            return;
        }
        match b {
            0x1b => {
                self.held.push(b);
                self.state = State::Escape;
            }
            0xc2 => {
                self.held.push(b);
                self.state = State::C2;
            }
            0x9d => {
                self.held.push(b);
                self.introducer = 1;
                self.state = State::Number;
            }
            0x90 => self.dcs(b),
            _ => {
                out.push(b);
                let utf8_left = match b {
                    0xc3..=0xdf => 1,
                    0xe0..=0xef => 2,
                    0xf0..=0xf4 => 3,
                    _ => 0,
                };
                self.state = State::Pass { utf8_left };
            }
        }
    }

    /// `b` ends a DCS introducer: held while what follows may be a
    /// dropped one.
    fn dcs(&mut self, b: u8) {
        self.held.push(b);
        self.state = State::DcsParams {
            start: self.held.len(),
        };
    }

    /// Not a clipboard sequence: what was held goes out, and `b` is read
    /// afresh (it may start one).
    fn give_back(&mut self, b: u8, out: &mut Vec<u8>) {
        out.append(&mut self.held);
        self.state = State::Pass { utf8_left: 0 };
        self.byte(b, out);
    }

    fn drop_byte(&mut self, b: u8) {
        match b {
            0x07 | 0x18 | 0x1a | 0x9c => self.state = State::Pass { utf8_left: 0 },
            0x1b => self.state = State::DropEscape,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<u8> {
        let mut f = ClipboardFilter::default();
        let mut out = f.filter(input);
        out.extend(f.flush());
        out
    }

    /// Every split of `input` in two reads gives `want`.
    fn check(input: &[u8], want: &[u8]) {
        assert_eq!(all(input), want, "{input:?}");
        for at in 0..=input.len() {
            let mut f = ClipboardFilter::default();
            let mut out = f.filter(&input[..at]);
            out.extend(f.filter(&input[at..]));
            out.extend(f.flush());
            assert_eq!(out, want, "{input:?} split at {at}");
        }
    }

    #[test]
    fn clipboard_strings_are_dropped_in_every_form() {
        check(b"a\x1b]52;c;ZWNobwo=\x07b", b"ab");
        check(b"a\x1b]52;c;ZWNobwo=\x1b\\b", b"ab");
        check(b"a\x1b]052;c;?\x07b", b"ab");
        check(b"a\x1b]52\x07b", b"ab");
        check(b"a\x9d52;c;ZWNobwo=\x9cb", b"ab");
        check("a\u{9d}52;c;x\u{9c}b".as_bytes(), b"ab");
        check(b"a\x1b]5522;type=write\x1b\\b", b"ab");
        // Cancelled: CAN, or an ESC starting another sequence.
        check(b"a\x1b]52;c;x\x18b", b"ab");
        check(b"a\x1b]52;c;x\x1b[1mb", b"a\x1b[1mb");
        check(b"\x1b]52;c;x\x1b\x1b]52;c;y\x07z", b"z");
        // A number too long to be any OSC's, perhaps 52 with zeros.
        check(b"a\x1b]000000052;c;x\x07b", b"ab");
        // Wrapped in a tmux passthrough (its ESC doubled).
        check(
            b"\x1bPtmux;\x1b\x1b]52;c;x\x07\x1b\\",
            b"\x1bPtmux;\x1b\x1b\\",
        );
    }

    #[test]
    fn remote_control_and_file_transfer_strings_are_dropped() {
        let launch = br#"@kitty-cmd{"cmd":"launch","payload":{"args":["sh"]}}"#;
        check(&[&b"a\x1bP"[..], launch, b"\x1b\\b"].concat(), b"ab");
        check(&[&b"a\x90"[..], launch, b"\x9cb"].concat(), b"ab");
        check(&[&b"a\xc2\x90"[..], launch, b"\x07b"].concat(), b"ab");
        check(b"a\x1b]5113;ac=send;id=x\x1b\\b", b"ab");
        for key in DROPPED_ITERM2 {
            let seq = [&b"a\x1b]1337;"[..], key, b":ZWNobwo=\x07b"].concat();
            check(&seq, b"ab");
        }
        check(b"a\x9d1337;Copy=:eA==\x9cb", b"ab");
        // User-defined keys, with and without parameters.
        check(b"a\x1bP0;1|17/6563686f0d\x1b\\b", b"ab");
        check(b"a\x1bP|23/6c730d\x07b", b"ab");
        check(b"a\x901|17/78\x9cb", b"ab");
        // Cut off at the very end while it may still be one.
        check(b"a\x1bP@kitty-cm", b"a");
        check(b"a\x1b]1337;Cop", b"a");
        // In a tmux passthrough (its ESC doubled).
        check(
            &[&b"\x1bPtmux;\x1b\x1bP"[..], launch, b"\x1b\x1b\\\x1b\\"].concat(),
            b"\x1bPtmux;\x1b\x1b\\\x1b\\",
        );
    }

    #[test]
    fn everything_else_passes_unchanged() {
        for input in [
            &b"plain text\r\n"[..],
            b"\x1b]0;title\x07\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\",
            b"\x1b]5;x\x07\x1b]521;x\x07\x1b]4;1;?\x07\x1b]12345678;x\x07",
            b"\x1b[31mred\x1b[0m\x1b\x1b]",
            b"\x1bPtmux;\x1b\x1b]0;title\x07\x1b\\",
            b"\x1bP$qm\x1b\\\x1bP@kitty\x1b\\\x1bP@kitty-cm\x07\x90q\x9c",
            b"\x1bP1;2q#0;2;0;0;0\x1b\\\x1bP+q544e\x1b\\\x1bP0;1\x07",
            b"\x1b]1337;CurrentDir=/w\x07\x1b]1337;SetUserVar=a=Yg==\x07\x1b]1337;Co\x07",
            b"\x1b]1337\x07\x1b]13370;Copy=:x\x07\x1b]511;x\x07",
            "é Ý ñ \u{1d}\u{9d}text ✓ 𝄞".as_bytes(),
            b"\xc3\x9d52;c;x\x07",
            b"\xc2\xa0\xc2",
            b"\x1b",
        ] {
            check(input, input);
        }
    }
}
