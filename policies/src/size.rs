//! Byte sizes in `[limits]`: `4096`, `"512M"`, `"8GiB"`.

use crate::model::Limits;

/// Units are binary: `K` and `KiB` both mean 1024.
const UNITS: [(&str, u32); 9] = [
    ("", 0),
    ("K", 10),
    ("KiB", 10),
    ("M", 20),
    ("MiB", 20),
    ("G", 30),
    ("GiB", 30),
    ("T", 40),
    ("TiB", 40),
];

impl Limits {
    /// Parses a size in bytes: an integer, optionally followed by `K`, `M`,
    /// `G`, `T` or `KiB`, `MiB`, `GiB`, `TiB` (all powers of 1024), with
    /// optional space between number and unit.
    ///
    /// ```
    /// use policies::Limits;
    /// assert_eq!(Limits::parse_size("8GiB"), Ok(8 << 30));
    /// assert_eq!(Limits::parse_size("512M"), Ok(512 << 20));
    /// assert_eq!(Limits::parse_size("4096"), Ok(4096));
    /// assert!(Limits::parse_size("8GB").is_err());
    /// ```
    pub fn parse_size(text: &str) -> Result<u64, String> {
        let invalid = || {
            format!(
                "invalid size '{text}' (expected a number of bytes, optionally with \
                 K, M, G, T or KiB, MiB, GiB, TiB)"
            )
        };
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(digits_end);
        let unit = unit.trim_start();
        if digits.is_empty() {
            return Err(invalid());
        }
        let shift = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, shift)| *shift)
            .ok_or_else(invalid)?;
        let too_large = || format!("size '{text}' is too large");
        let number: u64 = digits.parse().map_err(|_| too_large())?;
        number.checked_mul(1u64 << shift).ok_or_else(too_large)
    }
}

/// The shortest exact spelling of `bytes` that [`Limits::parse_size`] reads
/// back: `"8GiB"` for 8 << 30, `"1000"` for 1000.
pub(crate) fn format_size(bytes: u64) -> String {
    for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        let scale = 1u64 << shift;
        if bytes != 0 && bytes % scale == 0 {
            return format!("{}{unit}", bytes / scale);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(Limits::parse_size("0"), Ok(0));
        assert_eq!(Limits::parse_size("1K"), Ok(1024));
        assert_eq!(Limits::parse_size("1KiB"), Ok(1024));
        assert_eq!(Limits::parse_size("3 MiB"), Ok(3 << 20));
        assert_eq!(Limits::parse_size("2G"), Ok(2 << 30));
        assert_eq!(Limits::parse_size("16GiB"), Ok(16 << 30));
        assert_eq!(Limits::parse_size("1T"), Ok(1 << 40));
        assert_eq!(Limits::parse_size("1TiB"), Ok(1 << 40));
    }

    #[test]
    fn rejects_bad_sizes() {
        for bad in ["", "GiB", "8GB", "8 gib", "-1", "1.5G", "8GiB ", " 8"] {
            let error = Limits::parse_size(bad).unwrap_err();
            assert!(
                error.starts_with(&format!("invalid size '{bad}'")),
                "{error}"
            );
        }
        assert_eq!(
            Limits::parse_size("99999999999T"),
            Err("size '99999999999T' is too large".to_string())
        );
        assert_eq!(
            Limits::parse_size("99999999999999999999"),
            Err("size '99999999999999999999' is too large".to_string())
        );
    }

    #[test]
    fn formats_exactly() {
        for bytes in [0, 1, 1000, 1024, 1536, 8 << 30, 3 << 40, u64::MAX] {
            assert_eq!(Limits::parse_size(&format_size(bytes)), Ok(bytes));
        }
        assert_eq!(format_size(8 << 30), "8GiB");
        assert_eq!(format_size(1536), "1536");
        assert_eq!(format_size(0), "0");
    }
}
