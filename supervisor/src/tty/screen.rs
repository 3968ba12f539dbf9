//! What the program's output has done to the screen, as far as a prompt
//! needs to know to interrupt it cleanly and give the screen back.
//!
//! The relay passes the program's bytes through unchanged and watches them:
//! whether the last byte left the terminal in the middle of an escape
//! sequence (a prompt written then would become part of it), the text of the
//! current line so far (written again after the prompt, so the program's
//! next bytes continue it), and the colours and attributes in force (SGR
//! sequences since the last reset, replayed after the prompt).

/// Longest current line kept for replaying; a longer one is not replayed.
const MAX_LINE: usize = 1024;
/// Most SGR sequences kept since the last reset; older ones are dropped.
const MAX_SGR: usize = 32;
/// Longest escape sequence kept while it is being read.
const MAX_SEQUENCE: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Esc {
    /// Ordinary text.
    Ground,
    /// After ESC.
    Escape,
    /// After ESC and intermediate bytes (0x20..=0x2f).
    Intermediate,
    /// In a control sequence (ESC [ ...).
    Csi,
    /// In a string (OSC, DCS, SOS, PM, APC), until BEL or ESC \.
    Str,
    /// In a string, after an ESC (maybe its terminator).
    StrEscape,
}

#[derive(Debug)]
pub struct Screen {
    esc: Esc,
    /// The sequence being read (CSI only, for SGR).
    sequence: Vec<u8>,
    /// The current line since its start (or since a `\r`): text and SGR
    /// sequences, as written.
    line: Vec<u8>,
    /// Something was written since the last newline (or a `\r` left old
    /// text on the line): a prompt needs a new line first.
    mid_line: bool,
    /// The current line holds something that cannot be replayed safely.
    line_unreplayable: bool,
    sgr: Vec<Vec<u8>>,
    /// In the alternate screen (a full-screen program): a prompt drawn
    /// there is only cleared by the program drawing its screen again.
    alternate: bool,
}

impl Default for Screen {
    fn default() -> Self {
        Screen {
            esc: Esc::Ground,
            sequence: Vec::new(),
            line: Vec::new(),
            mid_line: false,
            line_unreplayable: false,
            sgr: Vec::new(),
            alternate: false,
        }
    }
}

impl Screen {
    /// Follows the program's output.
    pub fn track(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    /// In the middle of an escape sequence.
    pub fn in_sequence(&self) -> bool {
        self.esc != Esc::Ground
    }

    /// In the alternate screen.
    pub fn alternate(&self) -> bool {
        self.alternate
    }

    fn byte(&mut self, b: u8) {
        match self.esc {
            Esc::Ground => self.ground(b),
            Esc::Escape => match b {
                b'[' => {
                    self.esc = Esc::Csi;
                    self.sequence = b"\x1b[".to_vec();
                }
                b']' | b'P' | b'X' | b'^' | b'_' => self.esc = Esc::Str,
                0x20..=0x2f => {
                    self.esc = Esc::Intermediate;
                    self.line_unreplayable = true;
                }
                0x18 | 0x1a => self.esc = Esc::Ground,
                0x1b => {}
                _ => {
                    self.esc = Esc::Ground;
                    self.line_unreplayable = true;
                }
            },
            Esc::Intermediate => match b {
                0x20..=0x2f => {}
                0x1b => self.esc = Esc::Escape,
                _ => self.esc = Esc::Ground,
            },
            Esc::Csi => {
                if self.sequence.len() < MAX_SEQUENCE {
                    self.sequence.push(b);
                }
                match b {
                    0x40..=0x7e => {
                        self.esc = Esc::Ground;
                        if b == b'm' {
                            self.sgr_done();
                        } else {
                            self.line_unreplayable = true;
                            self.private_mode(b);
                        }
                    }
                    0x18 | 0x1a => self.esc = Esc::Ground,
                    0x1b => self.esc = Esc::Escape,
                    _ => {}
                }
            }
            Esc::Str => match b {
                0x07 | 0x18 | 0x1a => self.esc = Esc::Ground,
                0x1b => self.esc = Esc::StrEscape,
                _ => {}
            },
            Esc::StrEscape => match b {
                b'\\' => self.esc = Esc::Ground,
                0x1b => {}
                _ => self.esc = Esc::Str,
            },
        }
    }

    fn ground(&mut self, b: u8) {
        match b {
            0x1b => self.esc = Esc::Escape,
            b'\n' => {
                self.line.clear();
                self.line_unreplayable = false;
                self.mid_line = false;
            }
            b'\r' => {
                // Back to the first column; what the line showed stays there.
                self.line.clear();
                self.line_unreplayable = false;
            }
            b'\t' | 0x20.. => {
                self.mid_line = true;
                if self.line.len() < MAX_LINE {
                    self.line.push(b);
                } else {
                    self.line_unreplayable = true;
                }
            }
            // Other control characters (BEL, backspace...): the line can no
            // longer be replayed as it looks.
            _ => self.line_unreplayable = true,
        }
    }

    /// `ESC [ ? N h` / `l`: the alternate screen (`1049`, `1047`, `47`)
    /// entered or left.
    fn private_mode(&mut self, last: u8) {
        let Some(params) = self.sequence.strip_prefix(b"\x1b[?") else {
            return;
        };
        let params = &params[..params.len() - 1];
        let alternate = |p: &[u8]| matches!(p, b"1049" | b"1047" | b"47");
        if params.split(|&b| b == b';').any(alternate) {
            match last {
                b'h' => self.alternate = true,
                b'l' => self.alternate = false,
                _ => {}
            }
        }
    }

    fn sgr_done(&mut self) {
        let seq = std::mem::take(&mut self.sequence);
        if self.line.len() + seq.len() <= MAX_LINE {
            self.line.extend_from_slice(&seq);
        } else {
            self.line_unreplayable = true;
        }
        if seq == b"\x1b[m" || seq == b"\x1b[0m" {
            self.sgr.clear();
            return;
        }
        if self.sgr.len() == MAX_SGR {
            self.sgr.remove(0);
        }
        self.sgr.push(seq);
    }

    /// What to write before a prompt: abandon an unfinished escape sequence
    /// (CAN), reset the attributes, and start a new line if the cursor is in
    /// the middle of one.
    pub fn interrupt(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.in_sequence() {
            out.push(0x18);
            self.esc = Esc::Ground;
            self.line_unreplayable = true;
        }
        out.extend_from_slice(b"\x1b[0m");
        if self.mid_line {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// What to write after a prompt, so the program's next bytes land as if
    /// nothing had come between: its attributes, and the current line's
    /// text (unless it held cursor movements or other controls).
    pub fn resume(&self) -> Vec<u8> {
        let mut out: Vec<u8> = self.sgr.concat();
        if self.mid_line && !self.line_unreplayable {
            out.extend_from_slice(&self.line);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked(bytes: &[u8]) -> Screen {
        let mut s = Screen::default();
        s.track(bytes);
        s
    }

    #[test]
    fn the_alternate_screen_is_followed() {
        let mut s = tracked(b"plain");
        assert!(!s.alternate());
        s.track(b"\x1b[?1049h\x1b[2J\x1b[Hfull screen");
        assert!(s.alternate());
        s.track(b"\x1b[?25l\x1b[?1049");
        assert!(s.alternate(), "an unfinished sequence changes nothing");
        s.track(b"l$ ");
        assert!(!s.alternate());
        for enter in [&b"\x1b[?47h"[..], b"\x1b[?1;1047h", b"\x1b[?1049;25h"] {
            let s = tracked(enter);
            assert!(s.alternate(), "{}", String::from_utf8_lossy(enter));
        }
        assert!(!tracked(b"\x1b[1049h").alternate(), "not a private mode");
    }

    #[test]
    fn a_partial_line_is_replayed_after_the_prompt() {
        let mut s = tracked(b"done\nprogress: 40%");
        assert!(!s.in_sequence());
        assert_eq!(s.interrupt(), b"\x1b[0m\r\n");
        assert_eq!(s.resume(), b"progress: 40%");
        let mut s = tracked(b"a whole line\n");
        assert_eq!(s.interrupt(), b"\x1b[0m");
        assert_eq!(s.resume(), b"");
    }

    #[test]
    fn attributes_in_force_are_replayed() {
        let s = tracked(b"\x1b[1m\x1b[31mred bold\n");
        assert_eq!(s.resume(), b"\x1b[1m\x1b[31m");
        let s = tracked(b"\x1b[31mred\x1b[0m plain\n");
        assert_eq!(s.resume(), b"");
    }

    #[test]
    fn an_unfinished_sequence_is_cancelled() {
        for cut in [
            &b"x\x1b"[..],
            b"\x1b[3",
            b"\x1b]0;title",
            b"\x1bP1;2",
            b"\x1b(",
            b"\x1b]0;t\x1b",
        ] {
            let mut s = tracked(cut);
            assert!(s.in_sequence(), "{cut:?}");
            assert!(s.interrupt().starts_with(b"\x18"), "{cut:?}");
            assert!(!s.in_sequence());
        }
        for whole in [
            &b"\x1b[31m"[..],
            b"\x1b]0;title\x07",
            b"\x1b]0;t\x1b\\",
            b"\x1b(B",
            b"\x1b7",
        ] {
            assert!(!tracked(whole).in_sequence(), "{whole:?}");
        }
    }

    #[test]
    fn lines_with_controls_are_not_replayed() {
        let s = tracked(b"abc\x1b[2Kdef");
        assert_eq!(s.resume(), b"");
        let s = tracked(b"abc\x08d");
        assert_eq!(s.resume(), b"");
        // After a carriage return the line starts again, on a new line.
        let mut s = tracked(b"abc\x1b[K\r12");
        assert_eq!(s.interrupt(), b"\x1b[0m\r\n");
        assert_eq!(s.resume(), b"12");
        let mut s = tracked(b"abc\r");
        assert_eq!(s.interrupt(), b"\x1b[0m\r\n");
        assert_eq!(s.resume(), b"");
    }

    #[test]
    fn a_coloured_line_is_replayed_with_its_colours() {
        let s = tracked(b"$ \x1b[32mgreen\x1b[0m> ");
        assert_eq!(s.resume(), b"$ \x1b[32mgreen\x1b[0m> ");
    }
}
