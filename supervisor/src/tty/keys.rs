//! The person's input, cut into keys.
//!
//! What comes from the person's terminal is not only keys: the terminal
//! answers the queries the program writes (DA1, DSR, DECRQM, title and
//! colour reports...) into the same input, and reports mouse and focus
//! events. A prompt must be answered by a key the person pressed, so the
//! input is cut into tokens first: an escape sequence (CSI, SS3, OSC, DCS,
//! SOS, PM, APC, an `ESC` with intermediates, 7-bit or 8-bit C1, raw or
//! UTF-8 encoded), a legacy mouse report, a multi-byte character or a
//! bracketed paste is one token, and none of their bytes is ever a key.
//! The state is kept across reads: a sequence split between two reads is
//! still one token.

/// Longest part of a sequence kept to recognise it; the rest is consumed
/// without being kept.
const KEPT: usize = 64;

/// One thing the person's terminal sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// One key: an ASCII character or control (Enter is `\r`).
    Key(u8),
    /// The terminal's answer to a primary device attributes query (DA1,
    /// `CSI ? ... c`).
    DeviceAttributes,
    /// Any other escape sequence (a reply, a report, a function key).
    Sequence,
    /// A character beyond ASCII, or a bracketed paste.
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    /// After ESC, with intermediates maybe.
    Escape,
    /// In a control sequence.
    Csi,
    /// After SS2/SS3 (or `ESC O`): the next byte ends it.
    SingleShift,
    /// In a string (OSC, DCS, SOS, PM, APC) until BEL or ST.
    Str,
    /// In a string, after an ESC (maybe its terminator).
    StrEscape,
    /// After `CSI M` (a legacy mouse report): three characters follow.
    Mouse(u8),
    /// The continuation bytes of a UTF-8 character still to come.
    Utf8(u8),
    /// Inside a bracketed paste, until `CSI 201 ~`.
    Paste,
}

/// Cuts the person's input into [`Token`]s.
#[derive(Debug)]
pub struct Keys {
    state: State,
    /// The sequence being read (its start, up to [`KEPT`] bytes).
    seq: Vec<u8>,
    /// The previous byte in a string (an 8-bit ST must not be a UTF-8
    /// character's last byte).
    prev: u8,
    /// The first byte of a two-byte UTF-8 character being read.
    lead: u8,
    /// How much of the paste terminator has been seen.
    paste_end: usize,
    /// Bytes read since the last token, and the last token's length.
    len: usize,
    token_len: usize,
}

const PASTE_END: &[u8] = b"\x1b[201~";

impl Default for Keys {
    fn default() -> Self {
        Keys {
            state: State::Ground,
            seq: Vec::new(),
            prev: 0,
            lead: 0,
            paste_end: 0,
            len: 0,
            token_len: 0,
        }
    }
}

impl Keys {
    /// Feeds `bytes`; `token` is called for each token they complete.
    pub fn feed(&mut self, bytes: &[u8], mut token: impl FnMut(Token)) {
        for &b in bytes {
            if let Some(t) = self.byte(b) {
                token(t);
            }
        }
    }

    /// Feeds one byte: the token it completes, if any.
    pub fn byte(&mut self, b: u8) -> Option<Token> {
        self.len += 1;
        let token = self.next(b);
        if token.is_some() {
            self.token_len = std::mem::take(&mut self.len);
        }
        token
    }

    /// How many bytes the last token took (a token cut short by the byte
    /// that starts the next counts that byte too).
    pub fn token_len(&self) -> usize {
        self.token_len
    }

    fn next(&mut self, b: u8) -> Option<Token> {
        match self.state {
            State::Ground => self.ground(b),
            State::Utf8(left) => {
                if !(0x80..=0xbf).contains(&b) {
                    // A broken character: it ends here, this byte starts
                    // something else.
                    self.state = State::Ground;
                    return self.ground(b).or(Some(Token::Text));
                }
                if self.lead == 0xc2 && left == 1 && b <= 0x9f {
                    // U+0080..U+009F: a C1 control, UTF-8 encoded.
                    self.state = State::Ground;
                    return self.c1(b);
                }
                if left == 1 {
                    self.state = State::Ground;
                    Some(Token::Text)
                } else {
                    self.state = State::Utf8(left - 1);
                    None
                }
            }
            State::Escape => match b {
                0x20..=0x2f => {
                    self.keep(b);
                    None
                }
                b'[' if self.seq.len() == 1 => {
                    self.keep(b);
                    self.state = State::Csi;
                    None
                }
                b'O' | b'N' if self.seq.len() == 1 => {
                    self.state = State::SingleShift;
                    None
                }
                b']' | b'P' | b'X' | b'^' | b'_' if self.seq.len() == 1 => {
                    self.start_string();
                    None
                }
                0x18 | 0x1a => {
                    self.state = State::Ground;
                    Some(Token::Sequence)
                }
                0x1b => {
                    // ESC ESC: the first was a lone Escape key; the second
                    // starts again.
                    self.seq.clear();
                    self.keep(0x1b);
                    Some(Token::Sequence)
                }
                // Any other byte ends it (an Alt-modified key included).
                _ => {
                    self.state = State::Ground;
                    Some(Token::Sequence)
                }
            },
            State::Csi => match b {
                0x40..=0x7e => self.csi_done(b),
                0x18 | 0x1a => {
                    self.state = State::Ground;
                    Some(Token::Sequence)
                }
                0x1b => {
                    self.seq.clear();
                    self.keep(0x1b);
                    self.state = State::Escape;
                    Some(Token::Sequence)
                }
                _ => {
                    self.keep(b);
                    None
                }
            },
            State::SingleShift => {
                self.state = State::Ground;
                Some(Token::Sequence)
            }
            State::Str => {
                let prev = std::mem::replace(&mut self.prev, b);
                match b {
                    0x07 | 0x18 | 0x1a => {
                        self.state = State::Ground;
                        Some(Token::Sequence)
                    }
                    // ST, raw or UTF-8 encoded (C2 9C), but not the last
                    // byte of another character.
                    0x9c if prev < 0x80 || prev == 0xc2 => {
                        self.state = State::Ground;
                        Some(Token::Sequence)
                    }
                    0x1b => {
                        self.state = State::StrEscape;
                        None
                    }
                    _ => None,
                }
            }
            State::StrEscape => match b {
                b'\\' => {
                    self.state = State::Ground;
                    Some(Token::Sequence)
                }
                0x1b => None,
                _ => {
                    self.state = State::Str;
                    None
                }
            },
            State::Mouse(left) => {
                // Each coordinate is one character: a byte, or two in the
                // UTF-8 mouse mode (1005).
                if (0xc2..=0xdf).contains(&b) {
                    return None;
                }
                if left <= 1 {
                    self.state = State::Ground;
                    Some(Token::Sequence)
                } else {
                    self.state = State::Mouse(left - 1);
                    None
                }
            }
            State::Paste => {
                if b == PASTE_END[self.paste_end] {
                    self.paste_end += 1;
                } else {
                    self.paste_end = usize::from(b == PASTE_END[0]);
                }
                if self.paste_end == PASTE_END.len() {
                    self.state = State::Ground;
                    self.paste_end = 0;
                    Some(Token::Text)
                } else {
                    None
                }
            }
        }
    }

    fn ground(&mut self, b: u8) -> Option<Token> {
        match b {
            0x1b => {
                self.seq.clear();
                self.keep(b);
                self.state = State::Escape;
                None
            }
            0x00..=0x7f => Some(Token::Key(b)),
            // 8-bit C1 controls, sent raw by a terminal not in UTF-8.
            0x80..=0x9f => self.c1(b),
            0xc2..=0xdf => {
                self.lead = b;
                self.state = State::Utf8(1);
                None
            }
            0xe0..=0xef => {
                self.lead = b;
                self.state = State::Utf8(2);
                None
            }
            0xf0..=0xf4 => {
                self.lead = b;
                self.state = State::Utf8(3);
                None
            }
            _ => Some(Token::Text),
        }
    }

    /// A C1 control (0x80..=0x9f), raw or decoded from UTF-8.
    fn c1(&mut self, b: u8) -> Option<Token> {
        self.seq.clear();
        match b {
            0x9b => {
                self.seq.extend_from_slice(b"\x1b[");
                self.state = State::Csi;
                None
            }
            0x8e | 0x8f => {
                self.state = State::SingleShift;
                None
            }
            0x90 | 0x98 | 0x9d | 0x9e | 0x9f => {
                self.start_string();
                None
            }
            _ => Some(Token::Sequence),
        }
    }

    fn start_string(&mut self) {
        self.prev = 0;
        self.state = State::Str;
    }

    fn keep(&mut self, b: u8) {
        if self.seq.len() < KEPT {
            self.seq.push(b);
        }
    }

    /// A control sequence ended with `last`.
    fn csi_done(&mut self, last: u8) -> Option<Token> {
        self.state = State::Ground;
        let seq = std::mem::take(&mut self.seq);
        // Its parameters, whole only if it was short enough to keep.
        let params = seq.get(2..).unwrap_or_default();
        let whole = seq.len() < KEPT;
        match (params.first(), last) {
            (Some(b'?'), b'c') => Some(Token::DeviceAttributes),
            // A legacy mouse report: three raw characters follow.
            (None, b'M') => {
                self.state = State::Mouse(3);
                None
            }
            (_, b'~') if whole && params == b"200" => {
                self.state = State::Paste;
                self.paste_end = 0;
                None
            }
            (Some(b'0'..=b'9'), b'u') if whole => Some(kitty_key(params)),
            _ => Some(Token::Sequence),
        }
    }
}

/// A key in the kitty keyboard protocol, `CSI code [; modifiers] u`: the
/// key itself when it is plain ASCII without modifiers.
fn kitty_key(params: &[u8]) -> Token {
    let text = std::str::from_utf8(params).unwrap_or("");
    let mut fields = text.split(';');
    let code = fields.next().unwrap_or("");
    let modifiers = fields.next().unwrap_or("1");
    let code: Option<u8> = code.parse().ok();
    match code {
        Some(c) if c < 0x80 && modifiers == "1" && fields.next().is_none() => Token::Key(c),
        _ => Token::Sequence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(chunks: &[&[u8]]) -> Vec<Token> {
        let mut keys = Keys::default();
        let mut out = Vec::new();
        for chunk in chunks {
            keys.feed(chunk, |t| out.push(t));
        }
        out
    }

    #[test]
    fn keys_are_keys() {
        assert_eq!(
            tokens(&[b"y\r\x03"]),
            [Token::Key(b'y'), Token::Key(b'\r'), Token::Key(3)]
        );
    }

    #[test]
    fn a_terminal_reply_is_one_token_whatever_its_shape() {
        for reply in [
            &b"\x1b[?1;2$y"[..],
            b"\x1b[?62;22c",
            b"\x1b[24;80R",
            b"\x1b]11;rgb:0000/0000/0000\x07",
            b"\x1b]11;rgb:0000/0000/0000\x1b\\",
            b"\x1bP1$r0;1m\x1b\\",
            b"\x1bP>|xterm(390)\x1b\\",
            b"\x1b_Gi=1;OK\x1b\\",
            b"\x1bOy",
            b"\x1b[I",
            b"\x1b[<0;12;5M",
            b"\x1b[My!y",
            b"\x9b?1;2$y",
            b"\xc2\x9b?1;2$y",
            b"\x9d11;yy\x9c",
            b"\xc2\x9d11;yy\xc2\x9c",
            b"\x90yyy\x9c",
            b"\x8fy",
            b"\xc2\x8fy",
            b"\x1b[?1u",
            b"\x1b[121;5u",
        ] {
            // Whole, and cut at every place.
            let whole = tokens(&[reply]);
            assert_eq!(whole.len(), 1, "{reply:?}: {whole:?}");
            assert!(!matches!(whole[0], Token::Key(_)), "{reply:?}");
            for cut in 1..reply.len() {
                let (a, b) = reply.split_at(cut);
                assert_eq!(tokens(&[a, b]), whole, "{reply:?} cut at {cut}");
            }
        }
        assert_eq!(tokens(&[b"\x1b[?62;22c"]), [Token::DeviceAttributes]);
        let mut keys = Keys::default();
        keys.feed(b"y\x1b[?62;", |_| {});
        keys.feed(b"22c", |_| {});
        assert_eq!(keys.token_len(), 9, "counted across reads");
        assert_eq!(tokens(&[b"\xc2\x9b?62c"]), [Token::DeviceAttributes]);
    }

    #[test]
    fn characters_and_pastes_are_text() {
        assert_eq!(tokens(&[b"\xc3\xbcy"]), [Token::Text, Token::Key(b'y')]);
        assert_eq!(tokens(&[b"\xe2\x80\x9cy"]), [Token::Text, Token::Key(b'y')]);
        assert_eq!(
            tokens(&[b"\x1b[200~yes\x1b[20", b"1~n"]),
            [Token::Text, Token::Key(b'n')]
        );
        // An 8-bit ST inside a string is not the end when it is the last
        // byte of a character.
        assert_eq!(
            tokens(&[b"\x1b]2;\xe2\x80\x9cyy\x07n"]),
            [Token::Sequence, Token::Key(b'n')]
        );
    }

    #[test]
    fn kitty_keys_are_the_keys_they_encode() {
        assert_eq!(tokens(&[b"\x1b[121u"]), [Token::Key(b'y')]);
        assert_eq!(tokens(&[b"\x1b[13;1u"]), [Token::Key(b'\r')]);
        assert_eq!(tokens(&[b"\x1b[121;2u"]), [Token::Sequence]);
    }

    #[test]
    fn an_overlong_sequence_is_still_one_token() {
        let mut long = b"\x1b[?".to_vec();
        long.extend(std::iter::repeat_n(b'1', 500));
        long.extend_from_slice(b"$yy");
        assert_eq!(tokens(&[&long]), [Token::Sequence, Token::Key(b'y')]);
    }
}
