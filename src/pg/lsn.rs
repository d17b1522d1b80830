//! Log sequence numbers (`XLogRecPtr`) in PostgreSQL's `%X/%X` notation, and
//! the segment arithmetic that maps them to WAL file names.

use std::fmt;
use std::str::FromStr;

/// A position in the write-ahead log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

/// The text is not an LSN of the form `16/B374D848`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a valid LSN (expected the form 16/B374D848)")]
pub struct LsnParseError(pub String);

impl Lsn {
    /// The number of the segment holding this position (`XLByteToSeg`).
    pub fn segment_number(self, segment_size: u64) -> u64 {
        self.0 / segment_size
    }

    /// The byte offset within its segment.
    pub fn segment_offset(self, segment_size: u64) -> u64 {
        self.0 % segment_size
    }

    /// The 24-hex-digit name (upper case) of the segment holding this position
    /// on `timeline` (`XLogFileName`).
    pub fn segment_name(self, timeline: u32, segment_size: u64) -> String {
        segment_file_name(timeline, self.segment_number(segment_size), segment_size)
    }
}

/// `XLogFileName`: the file name of segment number `segno` on `timeline`.
pub fn segment_file_name(timeline: u32, segno: u64, segment_size: u64) -> String {
    let per_id = segments_per_xlog_id(segment_size);
    format!("{timeline:08X}{:08X}{:08X}", segno / per_id, segno % per_id)
}

/// How many segments one "log id" (the middle 8 hex digits) spans.
pub fn segments_per_xlog_id(segment_size: u64) -> u64 {
    0x1_0000_0000 / segment_size.max(1)
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = LsnParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || LsnParseError(s.to_string());
        let (hi, lo) = s.trim().split_once('/').ok_or_else(err)?;
        let valid = |p: &str| !p.is_empty() && p.len() <= 8;
        if !valid(hi) || !valid(lo) {
            return Err(err());
        }
        let hi = u64::from_str_radix(hi, 16).map_err(|_| err())?;
        let lo = u64::from_str_radix(lo, 16).map_err(|_| err())?;
        Ok(Lsn((hi << 32) | lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::DEFAULT_SEGMENT_SIZE;

    #[test]
    fn lsn_round_trips_through_text() {
        for text in ["0/4000028", "16/B374D848", "FFFFFFFF/FFFFFFFF", "0/0"] {
            let lsn: Lsn = text.parse().unwrap();
            assert_eq!(lsn.to_string(), text);
        }
    }

    #[test]
    fn lsn_rejects_malformed_text() {
        for text in ["", "0", "/1", "1/", "G/1", "1/123456789", "1/2/3"] {
            assert!(text.parse::<Lsn>().is_err(), "{text} parsed");
        }
    }

    #[test]
    fn segment_name_matches_postgres() {
        let lsn: Lsn = "0/4000028".parse().unwrap();
        assert_eq!(
            lsn.segment_name(1, DEFAULT_SEGMENT_SIZE),
            "000000010000000000000004"
        );
        assert_eq!(lsn.segment_offset(DEFAULT_SEGMENT_SIZE), 40);
        let lsn: Lsn = "1/FF000000".parse().unwrap();
        assert_eq!(
            lsn.segment_name(2, DEFAULT_SEGMENT_SIZE),
            "0000000200000001000000FF"
        );
        let lsn: Lsn = "1/40000000".parse().unwrap();
        assert_eq!(lsn.segment_name(1, 1 << 30), "000000010000000100000001");
    }
}
