//! WAL file names, as PostgreSQL writes them to `pg_wal` and Barman accepts them.
//!
//! Grammar (hex digits in either case, checked on the basename):
//!
//! ```text
//! TTTTTTTTLLLLLLLLSSSSSSSS                    segment            000000010000000000000004
//! TTTTTTTTLLLLLLLLSSSSSSSS.partial            partial segment    000000010000000000000004.partial
//! TTTTTTTTLLLLLLLLSSSSSSSS.OOOOOOOO.backup    backup history     000000010000000000000004.00000028.backup
//! TTTTTTTT.history                            timeline history   00000002.history
//! ```
//!
//! This is Barman's `is_any_xlog_file` regex; any other name is refused (exit 3).

use std::fmt;

/// What kind of file a WAL name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WalKind {
    /// A complete segment.
    Segment,
    /// The unfinished last segment of a timeline, archived at promotion.
    Partial,
    /// A backup history file; `offset` is the start position within the segment.
    BackupHistory { offset: u32 },
    /// A timeline history file.
    History,
}

/// A validated WAL file name (the basename, as given: case is preserved).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WalName {
    name: String,
    kind: WalKind,
    timeline: u32,
    /// Log id and segment (the middle and last 8 hex digits); `None` for history files.
    log_seg: Option<(u32, u32)>,
}

/// A name that is not a WAL file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is an invalid name for a WAL file")]
pub struct WalNameError(pub String);

impl WalName {
    /// Parses the basename of `path` (a bare name or a path ending in one).
    pub fn parse(path: &str) -> Result<Self, WalNameError> {
        let name = path.rsplit('/').next().unwrap_or(path);
        Self::parse_name(name).ok_or_else(|| WalNameError(path.to_string()))
    }

    fn parse_name(name: &str) -> Option<Self> {
        let hex8 = |s: &str| -> Option<u32> {
            (s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u32::from_str_radix(s, 16).ok())
                .flatten()
        };
        let make = |kind, timeline, log_seg| WalName {
            name: name.to_string(),
            kind,
            timeline,
            log_seg,
        };
        if let Some(tli) = name.strip_suffix(".history") {
            return Some(make(WalKind::History, hex8(tli)?, None));
        }
        // ASCII first: hex8 slices at byte offsets 8 and 16.
        let segment = name.get(..24).filter(|s| s.is_ascii())?;
        let timeline = hex8(&segment[..8])?;
        let log_seg = Some((hex8(&segment[8..16])?, hex8(&segment[16..24])?));
        let kind = match &name[24..] {
            "" => WalKind::Segment,
            ".partial" => WalKind::Partial,
            rest => {
                let offset = rest.strip_prefix('.')?.strip_suffix(".backup")?;
                WalKind::BackupHistory {
                    offset: hex8(offset)?,
                }
            }
        };
        Some(make(kind, timeline, log_seg))
    }

    /// True when `name` (a basename) is any kind of WAL file name.
    pub fn is_valid(name: &str) -> bool {
        Self::parse_name(name).is_some()
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> WalKind {
        self.kind
    }

    pub fn timeline(&self) -> u32 {
        self.timeline
    }

    pub fn is_history(&self) -> bool {
        self.kind == WalKind::History
    }

    pub fn is_partial(&self) -> bool {
        self.kind == WalKind::Partial
    }

    pub fn is_backup_history(&self) -> bool {
        matches!(self.kind, WalKind::BackupHistory { .. })
    }

    /// The log id (middle 8 hex digits); `None` for history files.
    pub fn log_id(&self) -> Option<u32> {
        self.log_seg.map(|(log, _)| log)
    }

    /// The 24-character segment part of the name; `None` for history files.
    pub fn segment_part(&self) -> Option<&str> {
        self.log_seg.map(|_| &self.name[..24])
    }

    /// Barman's hash directory: `%08X%08X` of timeline and log id, upper case
    /// whatever the case of the name; empty for history files, which live
    /// directly under `wals/`.
    pub fn hash_dir(&self) -> String {
        match self.log_seg {
            Some((log, _)) => format!("{:08X}{:08X}", self.timeline, log),
            None => String::new(),
        }
    }
}

impl fmt::Display for WalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_keeps_the_name_as_given() {
        let cases = [
            (
                "000000010000000000000004",
                WalKind::Segment,
                1,
                "0000000100000000",
            ),
            (
                "000000010000000A000000FF.partial",
                WalKind::Partial,
                1,
                "000000010000000A",
            ),
            (
                "000000010000000000000004.00000028.backup",
                WalKind::BackupHistory { offset: 0x28 },
                1,
                "0000000100000000",
            ),
            ("0000000A.history", WalKind::History, 10, ""),
            (
                "0000000a0000000b0000000c",
                WalKind::Segment,
                10,
                "0000000A0000000B",
            ),
        ];
        for (name, kind, tli, hash) in cases {
            let wal = WalName::parse(name).unwrap();
            assert_eq!(wal.as_str(), name);
            assert_eq!(wal.kind(), kind, "{name}");
            assert_eq!(wal.timeline(), tli, "{name}");
            assert_eq!(wal.hash_dir(), hash, "{name}");
        }
    }

    #[test]
    fn parses_the_basename_of_a_path() {
        let wal = WalName::parse("pg_wal/000000010000000000000004").unwrap();
        assert_eq!(wal.as_str(), "000000010000000000000004");
        assert_eq!(wal.segment_part(), Some("000000010000000000000004"));
    }

    #[test]
    fn refuses_names_barman_refuses() {
        for name in [
            "",
            "00000001000000000000004",
            "0000000100000000000000044",
            "00000001000000000000000G",
            "000000010000000000000004.gz",
            "000000010000000000000004.partial.gz",
            "000000010000000000000004.0000028.backup",
            "000000010000000000000004.backup",
            "0000001.history",
            "RECOVERYXLOG",
            "000000010000000000000004/",
            "x00000010000000000000004",
        ] {
            assert!(WalName::parse(name).is_err(), "{name:?} was accepted");
        }
    }

    #[test]
    fn multibyte_characters_are_refused_not_a_panic() {
        // Found by fuzzing (fuzz/fuzz_targets/wal_name.rs): a character
        // straddling byte 8 or 16 of the first 24 bytes panicked the slicing.
        for name in [
            "000000\u{17}\u{426}bbbbbbbbbbbbbbbbbb",
            "0000000\u{e9}0000000000000000",
            "000000010000000\u{e9}00000000",
            "00000001000000000000000\u{e9}",
        ] {
            assert!(WalName::parse(name).is_err(), "{name:?}");
            assert!(!WalName::is_valid(name), "{name:?}");
        }
    }

    #[test]
    fn error_message_names_the_input() {
        let err = WalName::parse("bogus").unwrap_err();
        assert_eq!(err.to_string(), "bogus is an invalid name for a WAL file");
    }
}
