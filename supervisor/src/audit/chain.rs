//! The hash chain, on raw bytes.
//!
//! A line is `{...,"prev":"<64 hex>"` (the *body*), then
//! `,"hash":"<64 hex>"}` and `\n`, where the hash is the SHA-256 of the body
//! bytes. The suffix has a fixed size, so checking a line needs no JSON
//! parser: split it off, hash the rest, compare. `prev` is inside the body,
//! so each hash also covers the one before it.

use sha2::{Digest, Sha256};

/// A SHA-256 in lowercase hex, as stored.
pub type Hex = [u8; 64];

/// The `prev` of record 0.
pub const GENESIS: Hex = [b'0'; 64];

const HASH_KEY: &[u8] = b",\"hash\":\"";
const HASH_END: &[u8] = b"\"}";

/// Length of `,"hash":"<64 hex>"}`.
pub const SUFFIX_LEN: usize = HASH_KEY.len() + 64 + HASH_END.len();

fn to_hex(bytes: &[u8; 32]) -> Hex {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
    out
}

/// The SHA-256 of `bytes` as lowercase hex bytes.
pub fn digest(bytes: &[u8]) -> Hex {
    to_hex(&Sha256::digest(bytes).into())
}

/// The SHA-256 of `bytes` as a lowercase hex string (for the policy digest).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex_str(&digest(bytes)).to_owned()
}

/// A stored hash as text (it is always ASCII hex).
pub fn hex_str(hex: &Hex) -> &str {
    std::str::from_utf8(hex).expect("hex digits are ASCII")
}

/// Parses 64 lowercase hex digits.
pub fn parse_hex(text: &str) -> Option<Hex> {
    let valid = text.len() == 64
        && text
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    valid.then(|| text.as_bytes().try_into().expect("length checked"))
}

/// Ends a body (`{...,"prev":"..."`) into a whole line: appends the hash
/// suffix and the newline, and returns the hash.
pub fn seal(line: &mut Vec<u8>) -> Hex {
    let hash = digest(line);
    line.extend_from_slice(HASH_KEY);
    line.extend_from_slice(&hash);
    line.extend_from_slice(HASH_END);
    line.push(b'\n');
    hash
}

/// What is wrong with a line on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    /// It does not end with a well-formed `,"hash":"<64 hex>"}`.
    NoHash,
    /// It does, but the body does not hash to it: the line was changed.
    Mismatch { stored: Hex },
}

/// Checks one line (without its `\n`) against its own hash and returns that
/// hash.
pub fn check(line: &[u8]) -> Result<Hex, LineError> {
    let Some(body_len) = line.len().checked_sub(SUFFIX_LEN) else {
        return Err(LineError::NoHash);
    };
    let (body, suffix) = line.split_at(body_len);
    let stored = &suffix[HASH_KEY.len()..HASH_KEY.len() + 64];
    if !suffix.starts_with(HASH_KEY) || !suffix.ends_with(HASH_END) {
        return Err(LineError::NoHash);
    }
    let Some(stored) = std::str::from_utf8(stored).ok().and_then(parse_hex) else {
        return Err(LineError::NoHash);
    };
    if digest(body) == stored {
        Ok(stored)
    } else {
        Err(LineError::Mismatch { stored })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_known_sha256() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_sealed_line_checks_and_an_edited_one_does_not() {
        let mut line = br#"{"seq":0,"prev":""#.to_vec();
        line.extend_from_slice(&GENESIS);
        line.push(b'"');
        let body_len = line.len();
        let hash = seal(&mut line);
        assert_eq!(line.len(), body_len + SUFFIX_LEN + 1);
        assert_eq!(line.last(), Some(&b'\n'));
        let whole = &line[..line.len() - 1];
        assert_eq!(check(whole), Ok(hash));
        let serde: serde_json::Value = serde_json::from_slice(whole).unwrap();
        assert_eq!(serde["hash"], hex_str(&hash));

        let mut edited = whole.to_vec();
        edited[7] = b'1';
        assert_eq!(check(&edited), Err(LineError::Mismatch { stored: hash }));
        assert_eq!(check(&whole[..whole.len() - 1]), Err(LineError::NoHash));
        assert_eq!(check(b"{}"), Err(LineError::NoHash));
        let mut not_hex = whole.to_vec();
        let n = not_hex.len();
        not_hex[n - 3] = b'G';
        assert_eq!(check(&not_hex), Err(LineError::NoHash));
    }

    #[test]
    fn parse_hex_wants_64_lowercase_digits() {
        assert_eq!(parse_hex(hex_str(&GENESIS)), Some(GENESIS));
        assert_eq!(parse_hex(&"A".repeat(64)), None);
        assert_eq!(parse_hex(&"a".repeat(63)), None);
    }
}
