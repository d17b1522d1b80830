//! `--compression-level`: `low`, `medium`, `high` or an integer (negative for
//! zstd), case-insensitive, as Barman's `parse_compression_level` accepts it.

use std::str::FromStr;

/// A compression level as the user gave it, before mapping to an algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionLevel {
    Low,
    Medium,
    High,
    Number(i32),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid compression level '{0}' (must be one of low, medium, high or an integer)")]
pub struct LevelParseError(pub String);

impl FromStr for CompressionLevel {
    type Err = LevelParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(CompressionLevel::Low),
            "medium" => Ok(CompressionLevel::Medium),
            "high" => Ok(CompressionLevel::High),
            other => {
                let digits = other.strip_prefix('-').unwrap_or(other);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(LevelParseError(s.to_string()));
                }
                other
                    .parse()
                    .map(CompressionLevel::Number)
                    .map_err(|_| LevelParseError(s.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_integers() {
        assert_eq!("LOW".parse(), Ok(CompressionLevel::Low));
        assert_eq!("medium".parse(), Ok(CompressionLevel::Medium));
        assert_eq!("High".parse(), Ok(CompressionLevel::High));
        assert_eq!("7".parse(), Ok(CompressionLevel::Number(7)));
        assert_eq!("-3".parse(), Ok(CompressionLevel::Number(-3)));
        for bad in ["", "-", "fast", "1.5", "+3", "99999999999"] {
            assert!(bad.parse::<CompressionLevel>().is_err(), "{bad}");
        }
    }
}
