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
/// being shown: C0 and C1 controls, DEL, and the invisible formatting and
/// bidirectional overrides that can make text read differently.
fn is_unsafe_for_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Text with control and bidi characters written as `\xNN` / `\u{NNNN}`.
/// Borrows when there is nothing to escape.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_for_terminal) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_unsafe_for_terminal(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
    }
    Cow::Owned(out)
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
