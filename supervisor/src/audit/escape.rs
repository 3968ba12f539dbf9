//! Bytes into text and back, and text made safe for a terminal.
//!
//! Unix paths and arguments are bytes, JSON strings are Unicode. A path is
//! stored as its UTF-8 text with every byte that is not part of valid UTF-8
//! written `\xNN` and a backslash written `\\`, so the mapping is one-to-one
//! and [`unescape`] recovers the exact bytes.
//!
//! Separately, anything a sandboxed program could choose (paths, its client
//! name, reasons) may hold terminal escape sequences; [`for_terminal`] makes
//! them visible instead of letting them act.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// The stored text of a byte string: UTF-8 as is, `\` as `\\`, other bytes
/// as `\xNN`. Borrows when there is nothing to escape.
pub fn escape_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        if !s.contains('\\') {
            return Cow::Borrowed(s);
        }
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    Cow::Owned(out)
}

/// The stored text of an OS string (see [`escape_bytes`]).
pub fn escape_os(s: &OsStr) -> Cow<'_, str> {
    escape_bytes(s.as_bytes())
}

/// The bytes behind a text made by [`escape_bytes`]. Fails on a backslash
/// that starts neither `\\` nor `\xNN`.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = bytes
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad \\x escape at byte {i} of '{text}'"))?;
                out.push(hex);
                i += 4;
            }
            _ => return Err(format!("bad escape at byte {i} of '{text}'")),
        }
    }
    Ok(out)
}

/// Characters that would act on a terminal or mislead a reader instead of
/// being shown: C0 and C1 controls, DEL, the line and paragraph separators,
/// and the invisible characters that reorder or hide text (Unicode's
/// default-ignorable code points: the bidirectional overrides, isolates and
/// marks, the Arabic letter mark, zero-width characters, fillers that show
/// as nothing, variation selectors, tags).
fn is_unsafe_for_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{ad}'
                | '\u{34f}'
                | '\u{61c}'
                | '\u{115f}'..='\u{1160}'
                | '\u{17b4}'..='\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff0}'..='\u{fffb}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0000}'..='\u{e0fff}'
        )
}

/// Text with control and bidi characters written as `\xNN` / `\u{NNNN}`.
/// Borrows when there is nothing to escape.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    escaped(
        text,
        |_| false,
        |out, c| {
            if (c as u32) < 0x80 {
                let _ = write!(out, "\\x{:02x}", c as u32);
            } else {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
        },
    )
}

/// A path a program may have chosen, made harmless for the terminal: its
/// stored text ([`escape_os`]) through [`for_terminal`].
pub fn path_for_terminal(path: &Path) -> String {
    for_terminal(&escape_os(path.as_os_str())).into_owned()
}

/// Lines of text for the terminal (a notice, a report): as [`for_terminal`],
/// but the line breaks and tabs the text is laid out with are kept.
pub fn lines_for_terminal(text: &str) -> Cow<'_, str> {
    escaped(
        text,
        |c| c == '\n' || c == '\t',
        |out, c| {
            if (c as u32) < 0x80 {
                let _ = write!(out, "\\x{:02x}", c as u32);
            } else {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
        },
    )
}

/// JSON text made harmless for the terminal with its value unchanged: each
/// character [`for_terminal`] would escape written as a JSON `\uNNNN`
/// escape (a surrogate pair above U+FFFF). Such characters can only stand
/// inside a JSON string, where the escape means the same character, so the
/// text parses to the same value; the line breaks between JSON lines stay.
pub fn json_for_terminal(json: &str) -> Cow<'_, str> {
    escaped(
        json,
        |c| c == '\n',
        |out, c| {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        },
    )
}

/// `text` with each unsafe character that `keep` does not keep written by
/// `write`; borrowed when there is none.
fn escaped(text: &str, keep: fn(char) -> bool, write: fn(&mut String, char)) -> Cow<'_, str> {
    let unsafe_here = |c: char| is_unsafe_for_terminal(c) && !keep(c);
    if !text.chars().any(unsafe_here) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_here(c) {
            write(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A writer for text read in a terminal (the audit commands' output, text
/// or JSON): whatever is written goes out through [`json_for_terminal`], so
/// no character a program chose, in a field a view forgot to escape or in
/// a JSON string (`--json`, `--jsonl`), acts on the terminal or reorders
/// what it shows. JSON keeps its value; text that was already escaped is
/// unchanged. Each `write` must be whole UTF-8 text, as `write!` gives.
pub struct TerminalSafe<W: std::io::Write>(pub W);

impl<W: std::io::Write> std::io::Write for TerminalSafe<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(json_for_terminal(text).as_bytes())?,
            Err(_) => {
                let text = String::from_utf8_lossy(buf);
                self.0.write_all(json_for_terminal(&text).as_bytes())?
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Writes a notice of sluice's own on stderr, one `write(2)` for the whole
/// text and a line break: anything in it a program could have chosen (a
/// name, a line of a file it wrote) is shown, never acted on by the
/// person's terminal ([`lines_for_terminal`]). These notices reach the
/// terminal directly, not through the relay's filter of the program's
/// output. Use it through [`crate::say!`].
pub fn say(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let text = args.to_string();
    let mut line = lines_for_terminal(&text).into_owned();
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The first character in `bytes` a terminal acts on if a tool prints them
/// as they are (`grep -r` a file's name), written as [`for_terminal`]
/// writes it (`\x1b`, `\u{009b}`): a C0 control (tab and newline too),
/// DEL, a C1 control (U+0080 to U+009F), or a byte 0x80 to 0x9F that is
/// not part of valid UTF-8 (a terminal reading 8-bit controls takes 0x9B
/// for CSI). `None` when there is none: one pass over the bytes.
pub fn terminal_control(bytes: &[u8]) -> Option<String> {
    if bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        return None;
    }
    for chunk in bytes.utf8_chunks() {
        if let Some(c) = chunk.valid().chars().find(|c| c.is_control()) {
            return Some(for_terminal(c.encode_utf8(&mut [0; 4])).into_owned());
        }
        if let Some(b) = chunk.invalid().iter().find(|b| (0x80..=0x9f).contains(*b)) {
            return Some(format!("\\x{b:02x}"));
        }
    }
    None
}

/// serde `with` helpers for byte strings stored as escaped text.
pub(crate) mod path {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::path::{Path, PathBuf};

    pub fn serialize<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&escape_os(p.as_os_str()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        let text = Cow::<str>::deserialize(d)?;
        unescape(&text)
            .map(|b| PathBuf::from(OsString::from_vec(b)))
            .map_err(serde::de::Error::custom)
    }
}

pub(crate) mod opt_path {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::path::PathBuf;

    pub fn serialize<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(p) => s.serialize_some(&*escape_os(p.as_os_str())),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        let text = Option::<Cow<str>>::deserialize(d)?;
        text.map(|t| {
            unescape(&t)
                .map(|b| PathBuf::from(OsString::from_vec(b)))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

pub(crate) mod os_strings {
    use super::*;
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[OsString], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for item in v {
            seq.serialize_element(&*escape_os(item))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<OsString>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| {
                unescape(t)
                    .map(OsString::from_vec)
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_without_backslash_is_borrowed_unchanged() {
        let p = "/home/ana/projet/résumé ✓.txt";
        assert!(matches!(escape_bytes(p.as_bytes()), Cow::Borrowed(s) if s == p));
    }

    #[test]
    fn non_utf8_bytes_and_backslashes_are_escaped_reversibly() {
        let cases: &[(&[u8], &str)] = &[
            (b"/tmp/\xff\xfe", "/tmp/\\xff\\xfe"),
            (b"a\\b", "a\\\\b"),
            (b"a\\xff", "a\\\\xff"),
            (b"caf\xc3\xa9\xc3", "caf\u{e9}\\xc3"),
            (b"\x80/\\\xc0\xaf", "\\x80/\\\\\\xc0\\xaf"),
            (b"", ""),
        ];
        for (bytes, text) in cases {
            assert_eq!(escape_bytes(bytes), *text, "{bytes:?}");
            assert_eq!(unescape(text).unwrap(), *bytes, "{text:?}");
        }
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for window in all.windows(3) {
            assert_eq!(unescape(&escape_bytes(window)).unwrap(), window);
        }
        assert_eq!(unescape(&escape_bytes(&all)).unwrap(), all);
    }

    #[test]
    fn unescape_rejects_stray_backslashes() {
        for bad in ["\\", "a\\n", "\\x", "\\x4", "\\xzz"] {
            assert!(unescape(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn terminal_text_shows_controls_instead_of_running_them() {
        assert!(matches!(for_terminal("/home/ana/ok.txt"), Cow::Borrowed(_)));
        assert_eq!(for_terminal("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(
            for_terminal("line\nnext\ttab\x7f"),
            "line\\x0anext\\x09tab\\x7f"
        );
        assert_eq!(for_terminal("c1\u{9b}31m"), "c1\\u{009b}31m");
        assert_eq!(for_terminal("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(for_terminal("ünïcödé"), "ünïcödé");
    }

    /// Every invisible character that reorders or hides text is shown, not
    /// only the overrides: the Arabic letter mark reorders as RLM does, the
    /// isolates and separators move text, fillers and tags show as nothing.
    #[test]
    fn invisible_characters_that_reorder_or_hide_text_are_shown() {
        for c in [
            '\u{61c}',
            '\u{200e}',
            '\u{200f}',
            '\u{2028}',
            '\u{2029}',
            '\u{2066}',
            '\u{2069}',
            '\u{2060}',
            '\u{ad}',
            '\u{115f}',
            '\u{3164}',
            '\u{fe0f}',
            '\u{e0041}',
            '\u{85}',
        ] {
            let text = format!("evil{c}hs.");
            let shown = for_terminal(&text);
            assert!(!shown.contains(c), "{c:?} kept: {shown}");
            assert!(shown.contains(&format!("{:04x}", c as u32)), "{shown}");
        }
        // Visible letters of any script stay as they are.
        assert_eq!(for_terminal("שלום/مرحبا/привет"), "שלום/مرحبا/привет");
    }

    #[test]
    fn lines_keep_their_breaks_and_nothing_else() {
        assert!(matches!(lines_for_terminal("a\n\tb"), Cow::Borrowed(_)));
        assert_eq!(
            lines_for_terminal("a\x1b]52;c;eA==\x07\nb\r\u{202e}"),
            "a\\x1b]52;c;eA==\\x07\nb\\x0d\\u{202e}"
        );
    }

    /// The JSON form keeps the value: parsed back, the same string; no
    /// character that acts on a terminal is left raw.
    #[test]
    fn json_for_the_terminal_parses_to_the_same_value() {
        let value = serde_json::json!({"p": "x\u{9b}6n\u{202e}hs.\u{61c}\u{e0041}\u{1b}y"});
        let json = serde_json::to_string(&value).unwrap();
        let safe = json_for_terminal(&json);
        assert!(safe.is_ascii(), "{safe}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&safe).unwrap(),
            value
        );
        assert!(matches!(
            json_for_terminal("{\"a\":\"é\"}\n"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_control_a_terminal_acts_on_is_found_in_any_form() {
        for ok in [
            &b"plain.txt"[..],
            "café – ünïcödé ✓.txt".as_bytes(),
            b"-rf with spaces",
            b"latin1 caf\xe9",
            // Not C1 where they are: a continuation byte of valid UTF-8
            // (U+00DB), an invalid byte above 0x9F.
            b"\xc3\x9b",
            b"\xff\xa0",
            "evil\u{202e}txt".as_bytes(),
        ] {
            assert_eq!(terminal_control(ok), None, "{ok:?}");
        }
        let cases: &[(&[u8], &str)] = &[
            (b"a\x1b]52;c;eA==\x07b", "\\x1b"),
            (b"tab\there", "\\x09"),
            (b"new\nline", "\\x0a"),
            (b"\x01", "\\x01"),
            (b"del\x7f", "\\x7f"),
            (b"c1 \xc2\x9b31m", "\\u{009b}"),
            (b"c1 \xc2\x80", "\\u{0080}"),
            (b"lone \x9b31m", "\\x9b"),
            (b"lone \x80", "\\x80"),
            (b"caf\xe9\x9d", "\\x9d"),
        ];
        for (bad, shown) in cases {
            assert_eq!(terminal_control(bad).as_deref(), Some(*shown), "{bad:?}");
        }
    }
}
