//! Reading the program's output as a terminal would: each byte moves the
//! escape-sequence state, and a finished sequence updates what
//! [`super::Screen`] keeps (the line, the attributes, the modes, the
//! saved cursor).

use super::*;

impl Screen {
    pub(super) fn byte(&mut self, b: u8) {
        // Control characters act inside a sequence too, without ending it
        // (CAN and SUB cancel it; ESC starts another).
        if b < 0x20 && !matches!(b, 0x18 | 0x1a | 0x1b) {
            if matches!(self.esc, Esc::Str | Esc::StrEscape) {
                if b == 0x07 {
                    self.esc = Esc::Ground;
                }
                return;
            }
            self.control(b);
            return;
        }
        // UTF-8: continuation bytes belong to their character; `C2 80..9F`
        // and a lone 0x80..0x9F are C1 controls.
        if self.utf8_left > 0 {
            if (0x80..=0xbf).contains(&b) {
                self.utf8_left -= 1;
                if self.utf8_lead == 0xc2 && b <= 0x9f {
                    if self.esc == Esc::Ground && self.line.last() == Some(&0xc2) {
                        self.line.pop();
                    }
                    self.c1(b);
                    return;
                }
                if self.esc == Esc::Ground {
                    self.text(b);
                }
                return;
            }
            self.utf8_left = 0;
        }
        if (0x80..=0x9f).contains(&b) {
            self.c1(b);
            return;
        }
        if (0xc2..=0xf4).contains(&b) {
            self.utf8_left = if b < 0xe0 {
                1
            } else if b < 0xf0 {
                2
            } else {
                3
            };
            self.utf8_lead = b;
        }
        match self.esc {
            Esc::Ground => self.ground(b),
            Esc::Escape => self.escape(b),
            Esc::Csi => match b {
                0x18 | 0x1a => self.esc = Esc::Ground,
                0x1b => self.start(Esc::Escape, b"\x1b"),
                0x40..=0x7e => {
                    self.keep(b);
                    self.esc = Esc::Ground;
                    self.csi_done(b);
                }
                _ => self.keep(b),
            },
            Esc::Str => match b {
                0x18 | 0x1a => self.esc = Esc::Ground,
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

    /// A C1 control, as its ESC form.
    fn c1(&mut self, b: u8) {
        match self.esc {
            Esc::Str | Esc::StrEscape => {
                if b == 0x9c {
                    self.esc = Esc::Ground;
                }
            }
            _ => {
                self.esc = Esc::Escape;
                self.sequence = b"\x1b".to_vec();
                self.overlong = false;
                self.escape(b - 0x40);
            }
        }
    }

    fn start(&mut self, esc: Esc, with: &[u8]) {
        self.esc = esc;
        self.sequence = with.to_vec();
        self.overlong = false;
    }

    fn keep(&mut self, b: u8) {
        if self.sequence.len() < MAX_SEQUENCE {
            self.sequence.push(b);
        } else {
            self.overlong = true;
        }
    }

    fn ground(&mut self, b: u8) {
        match b {
            0x1b => self.start(Esc::Escape, b"\x1b"),
            0x18 | 0x1a => self.control(b),
            _ => self.text(b),
        }
    }

    fn text(&mut self, b: u8) {
        if b < 0x80 || self.utf8_left == 0 {
            self.single_shift = false;
        }
        self.mid_line = true;
        if self.line.len() < MAX_LINE {
            self.line.push(b);
        } else {
            self.line_unreplayable = true;
        }
    }

    fn control(&mut self, b: u8) {
        match b {
            b'\n' | 0x0b | 0x0c => {
                self.line.clear();
                self.line_unreplayable = false;
                self.mid_line = false;
            }
            b'\r' => {
                // Back to the first column; what the line showed stays there.
                self.line.clear();
                self.line_unreplayable = false;
            }
            b'\t' => self.text(b),
            // ENQ: the terminal's answerback.
            0x05 => {
                self.asked = true;
                self.line_unreplayable = true;
            }
            0x0e => self.gl = Some(1),
            0x0f => self.gl = Some(0),
            // Other control characters (BEL, backspace...): the line can no
            // longer be replayed as it looks.
            _ => self.line_unreplayable = true,
        }
    }

    fn escape(&mut self, b: u8) {
        let intermediates = self.sequence.len() > 1;
        match b {
            0x20..=0x2f => self.keep(b),
            b'[' if !intermediates => self.start(Esc::Csi, b"\x1b["),
            b']' | b'P' | b'X' | b'^' | b'_' if !intermediates => {
                self.asked = true;
                self.esc = Esc::Str;
            }
            0x18 | 0x1a => self.esc = Esc::Ground,
            0x1b => self.start(Esc::Escape, b"\x1b"),
            0x30..=0x7e => {
                self.keep(b);
                self.esc = Esc::Ground;
                self.line_unreplayable = true;
                self.esc_done();
            }
            // DEL is ignored; anything else ends the sequence.
            0x7f => {}
            _ => self.esc = Esc::Ground,
        }
    }

    /// `ESC` (intermediates) final: character sets, resets, cursor saves.
    fn esc_done(&mut self) {
        let seq = std::mem::take(&mut self.sequence);
        if self.overlong {
            self.all_unknown();
            return;
        }
        match &seq[1..] {
            b"N" | b"O" => self.single_shift = true,
            b"n" => self.gl = Some(2),
            b"o" => self.gl = Some(3),
            b"7" => self.save(),
            b"8" => self.restore(),
            b"Z" => {
                self.da1_queries += 1;
                self.asked = true;
            }
            b"c" => {
                *self = Screen {
                    da1_queries: self.da1_queries,
                    asked: self.asked,
                    ..Screen::default()
                }
            }
            b"%G" | b"%8" => self.utf8 = Mode::On,
            b"%@" => self.utf8 = Mode::Off,
            b" F" => self.c1_replies = Mode::Off,
            b" G" => self.c1_replies = Mode::On,
            [b'(', rest @ ..] => {
                self.g0 = if rest == b"B" {
                    Charset::Ascii
                } else {
                    Charset::Other(seq[1..].to_vec())
                }
            }
            _ => {}
        }
    }

    fn save(&mut self) {
        self.saved = Some(Saved {
            g0: self.g0.clone(),
            gl: self.gl,
            origin: self.modes[ORIGIN],
            sgr: self.sgr.clone(),
        });
    }

    /// DECRC: what was saved, or the power-on state if nothing was.
    fn restore(&mut self) {
        let saved = self.saved.clone().unwrap_or(Saved {
            g0: Charset::Ascii,
            gl: Some(0),
            origin: Mode::Off,
            sgr: Vec::new(),
        });
        self.g0 = saved.g0;
        self.gl = saved.gl;
        self.modes[ORIGIN] = saved.origin;
        self.sgr = saved.sgr;
    }

    fn all_unknown(&mut self) {
        self.modes = [Mode::Unknown; MODES.len()];
        self.g0 = Charset::Unknown;
        self.gl = None;
        self.utf8 = Mode::Unknown;
        self.c1_replies = Mode::Unknown;
        self.region = Some(None);
        self.margins = Some(None);
        self.line_unreplayable = true;
    }

    /// A control sequence ended with `last`.
    fn csi_done(&mut self, last: u8) {
        let seq = std::mem::take(&mut self.sequence);
        let Some(parsed) = Parsed::new(&seq).filter(|_| !self.overlong) else {
            // Too long to keep, or not a form any terminal acts on alike:
            // nothing of it is replayed, and what it may have changed is
            // unknown.
            self.line_unreplayable = true;
            if last != b'm' {
                self.all_unknown();
            }
            return;
        };
        if (parsed.prefix, parsed.intermediates, last) == (None, &b""[..], b'm') {
            self.sgr_done(seq);
            return;
        }
        self.line_unreplayable = true;
        if is_query(&parsed, last) {
            self.asked = true;
        }
        match (parsed.prefix, parsed.intermediates, last) {
            (None, b"", b'c') if matches!(parsed.params, b"" | b"0") => self.da1_queries += 1,
            (p @ (None | Some(b'?')), b"", b'h' | b'l') => {
                self.set_modes(p.is_some(), parsed.params, last == b'h')
            }
            (Some(b'?'), b"", b'r') => {
                // XTRESTORE: the listed modes are back as saved, unknown here.
                for n in numbers(parsed.params) {
                    match n.and_then(|n| MODES.iter().position(|m| m.private && m.number == n)) {
                        Some(i) => self.modes[i] = Mode::Unknown,
                        None if n.is_none() => self.all_unknown(),
                        None => {}
                    }
                }
            }
            (None, b"", b'r') => {
                self.region =
                    (!matches!(parsed.params, b"" | b";" | b"0" | b"1" | b"0;0" | b"1;0"))
                        .then(|| Some(parsed.params.to_vec()));
            }
            (None, b"", b's') if self.modes[MARGINS] == Mode::On => {
                self.margins =
                    (!matches!(parsed.params, b"" | b";")).then(|| Some(parsed.params.to_vec()));
            }
            (None, b"", b's') if parsed.params.is_empty() => self.save(),
            (None, b"", b'u') if parsed.params.is_empty() => self.restore(),
            // The kitty keyboard protocol's flags, pushed or set: keys
            // then come as escape sequences (Enter, Ctrl-C among them).
            (Some(b'>' | b'='), b"", b'u') => self.keyboard = true,
            // DECSTR, a soft reset: many settings, as each terminal sees it.
            (None, b"!", b'p') => {
                self.all_unknown();
                self.sgr.clear();
            }
            _ => {}
        }
    }

    /// `CSI [?] N;M h` / `l`.
    fn set_modes(&mut self, private: bool, params: &[u8], on: bool) {
        for n in numbers(params) {
            let Some(n) = n else {
                self.all_unknown();
                return;
            };
            if private && matches!(n, 1049 | 1047 | 47) {
                self.alternate = on;
            }
            if private && matches!(n, 1049 | 1048) {
                if on {
                    self.save();
                } else {
                    self.restore();
                }
            }
            if let Some(i) = MODES
                .iter()
                .position(|m| m.private == private && m.number == n)
            {
                self.modes[i] = Mode::of(on);
                if i == MARGINS && !on {
                    self.margins = None;
                }
            }
        }
    }

    fn sgr_done(&mut self, seq: Vec<u8>) {
        if self.line.len() + seq.len() <= MAX_LINE {
            self.line.extend_from_slice(&seq);
        } else {
            self.line_unreplayable = true;
        }
        // A reset (`CSI m`, `CSI 0 m`, `CSI 0;00 m`...) ends what came before.
        let params = &seq[2..seq.len() - 1];
        if params.iter().all(|&b| b == b'0' || b == b';') {
            self.sgr.clear();
            return;
        }
        if self.sgr.len() == MAX_SGR {
            self.sgr.remove(0);
        }
        self.sgr.push(seq);
    }
}

/// A control sequence's parts, when it has the form terminals agree on:
/// `ESC [`, a private marker, parameters, intermediates, the final byte.
struct Parsed<'a> {
    prefix: Option<u8>,
    params: &'a [u8],
    intermediates: &'a [u8],
}

impl<'a> Parsed<'a> {
    fn new(seq: &'a [u8]) -> Option<Parsed<'a>> {
        let body = seq.strip_prefix(b"\x1b[")?;
        let (_, body) = body.split_last()?;
        let (prefix, body) = match body.first() {
            Some(&p @ (b'?' | b'>' | b'<' | b'=')) => (Some(p), &body[1..]),
            _ => (None, body),
        };
        let split = body
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b';' | b':'))
            .unwrap_or(body.len());
        let (params, intermediates) = body.split_at(split);
        intermediates
            .iter()
            .all(|b| (0x20..=0x2f).contains(b))
            .then_some(Parsed {
                prefix,
                params,
                intermediates,
            })
    }
}

/// Whether a control sequence asks the terminal for a reply: device
/// attributes (`c`, `>c`, `=c`), status and cursor reports (`n`), mode and
/// setting requests (`$p`, `?$p`, `$w`, `$u`...), window reports (`t`
/// but the title stack's 22 and 23), `DECREQTPARM` (`x`), and xterm's and
/// kitty's `?u`, `>q`, `?S`, `?m`, `*y`.
fn is_query(parsed: &Parsed, last: u8) -> bool {
    match (parsed.prefix, parsed.intermediates, last) {
        (_, b"", b'c' | b'n' | b'x') => true,
        (_, b"$" | b"*" | b"&" | b"\"", _) => true,
        (None, b"", b't') => !matches!(numbers(parsed.params).next(), Some(Some(22 | 23))),
        (Some(b'?'), b"", b'u' | b'S' | b'm') | (Some(b'>'), b"", b'q') => true,
        _ => false,
    }
}

/// The numbers of a parameter list (`None` for one that is not a number).
fn numbers(params: &[u8]) -> impl Iterator<Item = Option<u16>> + '_ {
    params
        .split(|&b| b == b';')
        .filter(|p| !p.is_empty())
        .map(|p| std::str::from_utf8(p).ok()?.parse().ok())
}
