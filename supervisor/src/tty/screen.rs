//! What the program's output has done to the screen, as far as a prompt
//! needs to know to interrupt it cleanly and give the screen back.
//!
//! The relay passes the program's bytes through unchanged and watches them:
//! whether the last byte left the terminal in the middle of an escape
//! sequence (a prompt written then would become part of it), the text of the
//! current line so far (written again after the prompt, so the program's
//! next bytes continue it), the colours and attributes in force (SGR
//! sequences since the last reset, replayed after the prompt), and the
//! terminal state that would garble or hide a prompt: the character set in
//! use (G0's designation, the shift in GL, UTF-8 mode), the scroll region,
//! origin mode, left and right margins, reverse video, insert mode,
//! autowrap, the cursor's visibility, 8-bit replies, and the mouse, focus
//! and paste reports that would send input while the prompt waits for a
//! key. [`Screen::interrupt`] sets what differs from what a prompt needs,
//! [`Screen::resume`] puts the program's settings back.
//!
//! Escape sequences are followed as a terminal reads them: control
//! characters inside one act at once and are not part of it, 8-bit C1
//! controls (raw, or UTF-8 encoded) start sequences like their `ESC`
//! forms, and a sequence too long to keep is never replayed in part. A
//! setting changed in a way not followed here (a soft reset, restored
//! modes, a sequence too long to read) is *unknown*: the prompt resets it
//! and does not restore it.

mod parse;

/// Longest current line kept for replaying; a longer one is not replayed.
const MAX_LINE: usize = 1024;
/// Most SGR sequences kept since the last reset; older ones are dropped.
const MAX_SGR: usize = 32;
/// Longest escape sequence kept while it is being read; a longer one is
/// followed to its end but neither replayed nor interpreted.
const MAX_SEQUENCE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Esc {
    /// Ordinary text.
    Ground,
    /// After ESC, and its intermediate bytes (0x20..=0x2f) if any.
    Escape,
    /// In a control sequence (ESC [ ..., or CSI).
    Csi,
    /// In a string (OSC, DCS, SOS, PM, APC), until BEL or ST.
    Str,
    /// In a string, after an ESC (maybe its terminator).
    StrEscape,
}

/// A setting the program may have changed: as it was set, or unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    On,
    Off,
    Unknown,
}

impl Mode {
    fn of(on: bool) -> Mode {
        if on {
            Mode::On
        } else {
            Mode::Off
        }
    }
}

/// A mode a prompt needs in a given state: its number, whether it is a DEC
/// private mode (`CSI ? N h`), its power-on value and the prompt's.
struct Needed {
    number: u16,
    private: bool,
    default: bool,
    prompt: bool,
}

const fn private(number: u16, default: bool, prompt: bool) -> Needed {
    Needed {
        number,
        private: true,
        default,
        prompt,
    }
}

/// The modes set for a prompt and restored after it.
const MODES: &[Needed] = &[
    // Insert mode (IRM) would push the screen's text along the prompt.
    Needed {
        number: 4,
        private: false,
        default: false,
        prompt: false,
    },
    private(5, false, false),  // reverse video (DECSCNM)
    private(6, false, false),  // origin mode (DECOM)
    private(7, true, true),    // autowrap (DECAWM): long lines stay visible
    private(25, true, true),   // the cursor shown (DECTCEM)
    private(69, false, false), // left and right margins (DECLRMM)
    // Reports that would send input while the prompt waits for a key.
    private(9, false, false),
    private(1000, false, false),
    private(1001, false, false),
    private(1002, false, false),
    private(1003, false, false),
    private(1004, false, false),
    private(1005, false, false),
    private(1006, false, false),
    private(1015, false, false),
    private(1016, false, false),
    // A paste comes bracketed, so it is one token, never an answer.
    private(2004, false, true),
];
const ORIGIN: usize = 2;
const MARGINS: usize = 5;

/// What a character-set designation left in G0.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Charset {
    Ascii,
    /// The designation's bytes after ESC (`(0`, `(%5`...).
    Other(Vec<u8>),
    Unknown,
}

/// What DECSC saves and DECRC restores (of what is followed here).
#[derive(Debug, Clone)]
struct Saved {
    g0: Charset,
    gl: Option<u8>,
    origin: Mode,
    sgr: Vec<Vec<u8>>,
}

#[derive(Debug)]
pub struct Screen {
    esc: Esc,
    /// The sequence being read, from its ESC (a C1 introducer is kept as
    /// its ESC form), up to [`MAX_SEQUENCE`] bytes.
    sequence: Vec<u8>,
    /// The sequence was longer than [`MAX_SEQUENCE`].
    overlong: bool,
    /// UTF-8 continuation bytes still expected, and the character's first
    /// byte (a C1 control is `C2 80..9F`).
    utf8_left: u8,
    utf8_lead: u8,
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
    modes: [Mode; MODES.len()],
    g0: Charset,
    /// Which of G0..G3 is shifted into GL (SI, SO, LS2, LS3); `None`:
    /// unknown.
    gl: Option<u8>,
    /// A single shift (SS2, SS3) waits for the next character.
    single_shift: bool,
    utf8: Mode,
    /// Replies in 8-bit C1 controls (S8C1T).
    c1_replies: Mode,
    /// The scroll region's parameters (`None`: the whole screen);
    /// `Some(None)`: unknown.
    region: Option<Option<Vec<u8>>>,
    /// The left and right margins' parameters, as for `region`.
    margins: Option<Option<Vec<u8>>>,
    saved: Option<Saved>,
    /// Primary device attributes queries written (DA1, DECID): each
    /// makes the terminal send a reply into the person's input.
    da1_queries: u64,
    /// The program wrote something a terminal may answer (a status query,
    /// ENQ, a string sequence): a reply may still be on its way.
    asked: bool,
    /// The program pushed or set the kitty keyboard protocol's flags.
    keyboard: bool,
}

impl Default for Screen {
    fn default() -> Self {
        Screen {
            esc: Esc::Ground,
            sequence: Vec::new(),
            overlong: false,
            utf8_left: 0,
            utf8_lead: 0,
            line: Vec::new(),
            mid_line: false,
            line_unreplayable: false,
            sgr: Vec::new(),
            alternate: false,
            modes: std::array::from_fn(|i| Mode::of(MODES[i].default)),
            g0: Charset::Ascii,
            gl: Some(0),
            single_shift: false,
            utf8: Mode::On,
            c1_replies: Mode::Off,
            region: None,
            margins: None,
            saved: None,
            da1_queries: 0,
            asked: false,
            keyboard: false,
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

    /// How many primary device attributes queries the program wrote.
    pub fn da1_queries(&self) -> u64 {
        self.da1_queries
    }

    /// Whether the program ever wrote something a terminal may answer
    /// into the person's input: a status or report query (DA, DSR,
    /// DECRQM, window reports...), ENQ, or any string sequence (OSC, DCS,
    /// APC, PM, SOS: colour, capability and setting queries are strings).
    /// Broad on purpose: it only costs a fence when the program ends.
    pub fn asked(&self) -> bool {
        self.asked
    }

    /// What to write before a prompt: abandon an unfinished escape sequence
    /// (CAN), reset the attributes, the character set and every mode the
    /// prompt needs in another state, and start a new line if the cursor is
    /// in the middle of one (or at the bottom of the screen if the scroll
    /// region or origin mode had confined it).
    pub fn interrupt(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.in_sequence() {
            out.push(0x18);
            self.esc = Esc::Ground;
            self.line_unreplayable = true;
        }
        self.utf8_left = 0;
        if self.single_shift {
            // Spent on a blank, not on the prompt's first letter.
            out.push(b' ');
            self.single_shift = false;
            self.mid_line = true;
            self.line_unreplayable = true;
        }
        out.extend_from_slice(b"\x1b[0m");
        self.text_to_default(&mut out);
        let mut moved = false;
        for (mode, &now) in MODES.iter().zip(&self.modes) {
            if now != Mode::of(mode.prompt) {
                set_mode(&mut out, mode, mode.prompt);
                moved |= mode.number == 6 || mode.number == 69;
            }
        }
        if self.region.is_some() {
            out.extend_from_slice(b"\x1b[r");
            moved = true;
        }
        if moved {
            // Setting these moved the cursor home: the prompt goes below
            // everything instead.
            out.extend_from_slice(b"\x1b[999;1H\r\n");
            self.line_unreplayable = true;
        } else if self.mid_line {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// What to write after a prompt, so the program's next bytes land as if
    /// nothing had come between: its scroll region and modes (the cursor at
    /// the bottom of its region), character set, attributes, and the
    /// current line's text (unless it held cursor movements or other
    /// controls). What is unknown stays as the prompt left it.
    pub fn resume(&self) -> Vec<u8> {
        self.restore_over(|mode| mode.prompt)
    }

    /// What to write when the program continues after a suspend, the
    /// terminal having been given back ([`Screen::give_back`]): the
    /// alternate screen entered again (the program draws it again: its
    /// size is nudged), then as after a prompt. The kitty keyboard
    /// protocol's flags are not pushed again (their values are not kept).
    pub fn take_back(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.alternate {
            out.extend_from_slice(b"\x1b[?1049h");
        }
        out.extend(self.restore_over(|mode| mode.default));
        out
    }

    /// The program's settings, written over a terminal whose modes are as
    /// `base` says (the prompt's, or the power-on values).
    fn restore_over(&self, base: impl Fn(&Needed) -> bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut moved = false;
        if let Some(Some(region)) = &self.region {
            csi(&mut out, b"", region, b'r');
            moved = true;
        }
        for (mode, &now) in MODES.iter().zip(&self.modes) {
            if now != Mode::Unknown && now != Mode::of(base(mode)) {
                set_mode(&mut out, mode, now == Mode::On);
                moved |= mode.number == 6 || mode.number == 69;
            }
        }
        if let Some(Some(margins)) = &self.margins {
            csi(&mut out, b"", margins, b's');
            moved = true;
        }
        if moved {
            let bottom = match (&self.region, self.modes[ORIGIN]) {
                (Some(Some(region)), Mode::Off) => region
                    .split(|&b| b == b';')
                    .nth(1)
                    .filter(|b| !b.is_empty())
                    .map(<[u8]>::to_vec),
                _ => None,
            };
            let bottom = bottom.unwrap_or_else(|| b"999".to_vec());
            csi(&mut out, b"", &[&bottom[..], b";1"].concat(), b'H');
        }
        if let Charset::Other(designation) = &self.g0 {
            out.push(0x1b);
            out.extend_from_slice(designation);
        }
        match self.gl {
            Some(1) => out.push(0x0e),
            Some(2) => out.extend_from_slice(b"\x1bn"),
            Some(3) => out.extend_from_slice(b"\x1bo"),
            _ => {}
        }
        if self.utf8 == Mode::Off {
            out.extend_from_slice(b"\x1b%@");
        }
        if self.c1_replies == Mode::On {
            out.extend_from_slice(b"\x1b G");
        }
        out.extend(self.sgr.concat());
        if self.mid_line && !self.line_unreplayable && !moved {
            out.extend_from_slice(&self.line);
        }
        out
    }

    /// What to write when the program has ended, so the person's shell
    /// gets the terminal back as a terminal starts: out of the alternate
    /// screen, and every setting followed here that the program left
    /// otherwise (or unknown) back at its power-on value. The mouse and
    /// focus reports first among them: left on, each click or change of
    /// window typed a report into the shell's input; and the kitty
    /// keyboard protocol's flags, with which Enter and Ctrl-C reach the
    /// shell as escape sequences (popped whole: a pop past the stack's
    /// bottom resets them). Nothing when nothing differs.
    pub fn give_back(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.in_sequence() {
            out.push(0x18);
        }
        if self.alternate {
            out.extend_from_slice(b"\x1b[?1049l");
        }
        if self.keyboard {
            out.extend_from_slice(b"\x1b[<99u");
        }
        let mut moved = false;
        for (mode, &now) in MODES.iter().zip(&self.modes) {
            // Origin mode and the margins' mode move the cursor home when
            // set or reset: reset only where known to be on (neither types
            // anything into the shell).
            let homes = mode.number == 6 || mode.number == 69;
            if now != Mode::of(mode.default) && !(homes && now == Mode::Unknown) {
                set_mode(&mut out, mode, mode.default);
                moved |= homes;
            }
        }
        if let Some(Some(_)) = self.region {
            out.extend_from_slice(b"\x1b[r");
            moved = true;
        }
        if moved {
            // The cursor went home: the shell's prompt goes below
            // everything instead.
            out.extend_from_slice(b"\x1b[999;1H\r\n");
        }
        if !self.sgr.is_empty() {
            out.extend_from_slice(b"\x1b[0m");
        }
        self.text_to_default(&mut out);
        out
    }

    /// What decides how text reads, put to its default where the program
    /// moved it: the G0 character set, the shift to G1, UTF-8, and 8-bit
    /// replies (for a prompt, and for the shell after the session).
    fn text_to_default(&self, out: &mut Vec<u8>) {
        if self.g0 != Charset::Ascii {
            out.extend_from_slice(b"\x1b(B");
        }
        if self.gl != Some(0) {
            out.push(0x0f);
        }
        if self.utf8 != Mode::On {
            out.extend_from_slice(b"\x1b%G");
        }
        if self.c1_replies != Mode::Off {
            out.extend_from_slice(b"\x1b F");
        }
    }
}

fn csi(out: &mut Vec<u8>, prefix: &[u8], params: &[u8], last: u8) {
    out.extend_from_slice(b"\x1b[");
    out.extend_from_slice(prefix);
    out.extend_from_slice(params);
    out.push(last);
}

fn set_mode(out: &mut Vec<u8>, mode: &Needed, on: bool) {
    let prefix: &[u8] = if mode.private { b"?" } else { b"" };
    let last = if on { b'h' } else { b'l' };
    csi(out, prefix, mode.number.to_string().as_bytes(), last);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked(bytes: &[u8]) -> Screen {
        let mut s = Screen::default();
        s.track(bytes);
        s
    }

    /// What every prompt sets: attributes off, pastes bracketed.
    const PROMPT: &[u8] = b"\x1b[0m\x1b[?2004h";
    /// What is put back after every prompt: pastes as the program had them.
    const BACK: &[u8] = b"\x1b[?2004l";

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
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
        assert_eq!(s.interrupt(), cat(&[PROMPT, b"\r\n"]));
        assert_eq!(s.resume(), cat(&[BACK, b"progress: 40%"]));
        let mut s = tracked(b"a whole line\n");
        assert_eq!(s.interrupt(), PROMPT);
        assert_eq!(s.resume(), BACK);
    }

    #[test]
    fn attributes_in_force_are_replayed() {
        let s = tracked(b"\x1b[1m\x1b[31mred bold\n");
        assert_eq!(s.resume(), cat(&[BACK, b"\x1b[1m\x1b[31m"]));
        let s = tracked(b"\x1b[31mred\x1b[0m plain\n");
        assert_eq!(s.resume(), BACK);
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
        assert_eq!(s.resume(), BACK);
        let s = tracked(b"abc\x08d");
        assert_eq!(s.resume(), BACK);
        // After a carriage return the line starts again, on a new line.
        let mut s = tracked(b"abc\x1b[K\r12");
        assert_eq!(s.interrupt(), cat(&[PROMPT, b"\r\n"]));
        assert_eq!(s.resume(), cat(&[BACK, b"12"]));
        let mut s = tracked(b"abc\r");
        assert_eq!(s.interrupt(), cat(&[PROMPT, b"\r\n"]));
        assert_eq!(s.resume(), BACK);
    }

    #[test]
    fn a_coloured_line_is_replayed_with_its_colours() {
        let s = tracked(b"$ \x1b[32mgreen\x1b[0m> ");
        assert_eq!(s.resume(), cat(&[BACK, b"$ \x1b[32mgreen\x1b[0m> "]));
    }

    /// Whether `out` holds `part`.
    fn has(out: &[u8], part: &[u8]) -> bool {
        out.windows(part.len()).any(|w| w == part)
    }

    #[test]
    fn what_would_garble_a_prompt_is_reset_and_restored() {
        // Each: what the program wrote, what the prompt must write before
        // it, and what must be written after it.
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (b"\x1b(0", b"\x1b(B", b"\x1b(0"),
            (b"\x0e", b"\x0f", b"\x0e"),
            (b"\x1bn", b"\x0f", b"\x1bn"),
            (b"\x1b%@", b"\x1b%G", b"\x1b%@"),
            (b"\x1b G", b"\x1b F", b"\x1b G"),
            (b"\x1b[?5h", b"\x1b[?5l", b"\x1b[?5h"),
            (b"\x1b[4h", b"\x1b[4l", b"\x1b[4h"),
            (b"\x1b[?7l", b"\x1b[?7h", b"\x1b[?7l"),
            (b"\x1b[?25l", b"\x1b[?25h", b"\x1b[?25l"),
            (
                b"\x1b[?1000;1006h",
                b"\x1b[?1000l\x1b[?1006l",
                b"\x1b[?1000h\x1b[?1006h",
            ),
            (b"\x1b[3;10r", b"\x1b[r\x1b[999;1H\r\n", b"\x1b[3;10r"),
            (b"\x1b[?6h", b"\x1b[?6l", b"\x1b[?6h"),
            (b"\x1b[?69h\x1b[5;40s", b"\x1b[?69l", b"2004l\x1b[5;40s"),
        ];
        for (wrote, before, after) in cases {
            let mut s = tracked(wrote);
            let out = s.interrupt();
            assert!(
                has(&out, before),
                "{wrote:?}: {:?}",
                String::from_utf8_lossy(&out)
            );
            let back = s.resume();
            assert!(
                has(&back, after),
                "{wrote:?}: {:?}",
                String::from_utf8_lossy(&back)
            );
            // Undone, nothing is left to reset.
            let mut s = tracked(&[&wrote[..], b"\x1bc"].concat());
            assert_eq!(s.interrupt(), PROMPT, "{wrote:?}");
        }
        // The cursor goes to the bottom of the program's region again.
        let mut s = tracked(b"\x1b[3;10r");
        s.interrupt();
        assert!(s.resume().ends_with(b"\x1b[10;1H"));
        let mut s = tracked(b"\x1b[3;10r\x1b[?6h");
        assert!(s.interrupt().ends_with(b"\x1b[999;1H\r\n"));
        assert!(s.resume().ends_with(b"\x1b[999;1H"));
        // Set back by the program itself: nothing to do.
        let mut s = tracked(b"\x1b(0\x1b(B\x0e\x0f\x1b[?25l\x1b[?25h\x1b[5;9r\x1b[r");
        assert_eq!(s.interrupt(), PROMPT);
    }

    #[test]
    fn c1_controls_and_saved_cursors_are_followed() {
        // 8-bit CSI, raw and UTF-8 encoded, and a UTF-8 character whose
        // last byte is in the C1 range (not a control).
        let mut s = tracked(b"\x9b?25l");
        assert!(has(&s.interrupt(), b"\x1b[?25h"));
        let mut s = tracked(b"\xc2\x9b?5h");
        assert!(has(&s.interrupt(), b"\x1b[?5l"));
        let s = tracked("“quoted”".as_bytes());
        assert_eq!(s.resume(), cat(&[BACK, "“quoted”".as_bytes()]));
        // DECRC brings back the character set DECSC saved.
        let mut s = tracked(b"\x1b(0\x1b7\x1b(B\x1b8");
        assert!(has(&s.interrupt(), b"\x1b(B"));
        // A soft reset or restored modes: unknown, reset and not restored.
        let mut s = tracked(b"\x1b[!p");
        let out = s.interrupt();
        assert!(has(&out, b"\x1b[?25h") && has(&out, b"\x1b[?7h") && has(&out, b"\x1b(B"));
        assert!(!has(&s.resume(), b"\x1b[?25l"));
        let mut s = tracked(b"\x1b[?25r");
        assert!(has(&s.interrupt(), b"\x1b[?25h"));
    }

    #[test]
    fn control_characters_inside_a_sequence_act_and_are_not_kept() {
        // The newline acts at once: the line is new, the SGR holds.
        let s = tracked(b"old\x1b[3\n1mnew");
        assert_eq!(s.resume(), cat(&[BACK, b"\x1b[31m\x1b[31mnew"]));
        let mut s = tracked(b"\x1b[?2\r5l");
        assert!(has(&s.interrupt(), b"\x1b[?25h"));
    }

    #[test]
    fn a_long_sequence_is_replayed_whole_or_not_at_all() {
        // Bold, after 31 resets: 66 bytes.
        let long = [&b"\x1b["[..], &b"0;".repeat(31), b"1m"].concat();
        let s = tracked(&[&long[..], b"text"].concat());
        assert_eq!(s.resume(), cat(&[BACK, &long, &long, b"text"]));
        // A reset however long: the line keeps it, the attributes are none.
        let reset = [&b"\x1b["[..], &[b'0'; 62], b"m"].concat();
        let s = tracked(&[&b"\x1b[1m"[..], &reset, b"text"].concat());
        assert_eq!(s.resume(), cat(&[BACK, b"\x1b[1m", &reset, b"text"]));
        // Beyond what is kept: neither replayed nor cut.
        let huge = [&b"\x1b[1"[..], &[b';'; 400], b"m"].concat();
        let s = tracked(&[&huge[..], b"text"].concat());
        assert_eq!(s.resume(), BACK);
        // A mode hidden in an overlong sequence is unknown: reset.
        let hidden = [&b"\x1b[?"[..], &[b'0'; 400], b";25l"].concat();
        let mut s = tracked(&hidden);
        assert!(has(&s.interrupt(), b"\x1b[?25h"));
        assert!(!has(&s.resume(), b"\x1b[?25l"));
    }

    #[test]
    fn device_attributes_queries_are_counted() {
        let s = tracked(b"\x1b[c\x1b[0c\x1bZ\x1b[>c\x1b[?1$p\x9bc");
        assert_eq!(s.da1_queries(), 4);
    }

    #[test]
    fn what_a_terminal_may_answer_is_seen() {
        for asks in [
            &b"\x1b[6n"[..],
            b"\x05",
            b"\x1b[>c",
            b"\x1b[?2026$p",
            b"\x1b[18t",
            b"\x1b[?u",
            b"\x1b[>q",
            b"\x1bZ",
            b"\x1b]11;?\x07",
            b"\x1bP+q544e\x1b\\",
            b"\x9b6n",
            b"\xc2\x9b5n",
            b"\x1b[6n\x1bc",
        ] {
            assert!(tracked(asks).asked(), "{asks:?}");
        }
        // Text, attributes, cursor moves, modes and the title stack ask
        // nothing: no fence for them.
        let s =
            tracked(b"plain \x1b[1;31mred\x1b[0m\x1b[2J\x1b[H\x1b[?25l\x1b[22;0t\x1b[23;0t\r\n");
        assert!(!s.asked());
    }

    /// The reports that type into the shell, the alternate screen and the
    /// kitty keyboard flags the program left on are turned off at its end;
    /// a program that left the terminal as it found it gets nothing.
    #[test]
    fn the_terminal_is_given_back_as_a_shell_expects() {
        let left = tracked(b"\x1b[?1049h\x1b[?1000;1006h\x1b[?1004h\x1b[>1u\x1b[?25l\x1b[8m");
        let back = left.give_back();
        for reset in [
            &b"\x1b[?1049l"[..],
            b"\x1b[?1000l",
            b"\x1b[?1006l",
            b"\x1b[?1004l",
            b"\x1b[<99u",
            b"\x1b[?25h",
            b"\x1b[0m",
        ] {
            assert!(has(&back, reset), "{reset:?} in {back:?}");
        }
        // Leaving the alternate screen comes first (kitty keeps a keyboard
        // stack per screen; the main screen's is popped).
        assert!(back.starts_with(b"\x1b[?1049l"), "{back:?}");
        // Unknown after a soft reset: every mode back to its power-on value,
        // but those that would move the cursor home.
        let soft = tracked(b"\x1b[!p").give_back();
        assert!(
            has(&soft, b"\x1b[?1000l") && has(&soft, b"\x1b[?7h"),
            "{soft:?}"
        );
        assert!(
            !has(&soft, b"\x1b[?6l") && !has(&soft, b"\x1b[r"),
            "{soft:?}"
        );
        // Known set: reset, the shell's prompt below everything.
        let origin = tracked(b"\x1b[3;10r\x1b[?6h").give_back();
        assert!(
            origin.ends_with(b"\x1b[?6l\x1b[r\x1b[999;1H\r\n"),
            "{origin:?}"
        );
        // Turned off again by the program itself: nothing to do.
        let tidy = tracked(b"\x1b[?1049h\x1b[?1000hfull\x1b[?1000l\x1b[?1049l\x1b[1mx\x1b[0m\r\n");
        assert_eq!(tidy.give_back(), b"");
        assert_eq!(tracked(b"plain text\r\n").give_back(), b"");
        // After a suspend: the alternate screen and the modes again.
        let back = left.take_back();
        assert!(back.starts_with(b"\x1b[?1049h"), "{back:?}");
        for again in [
            &b"\x1b[?1000h"[..],
            b"\x1b[?1006h",
            b"\x1b[?1004h",
            b"\x1b[?25l",
            b"\x1b[8m",
        ] {
            assert!(has(&back, again), "{again:?} in {back:?}");
        }
        assert_eq!(tidy.take_back(), b"");
    }
}
