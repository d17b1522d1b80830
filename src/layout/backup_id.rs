//! Backup ids, backup names and how an identifier given on the command line
//! resolves to a backup (spec §4), as `barman.utils` and
//! `barman.cloud.CloudBackupCatalog.parse_backup_id` do it.
//!
//! * An id is the client's local start time as `%Y%m%dT%H%M%S`. Barman treats
//!   anything matching `re.match(r"(\d{8})T\d{6}$")` as an id: Python's `\d` is
//!   any Unicode decimal digit and `$` also matches before a final `\n`;
//!   [`is_backup_id`] mirrors both, [`BackupId`] itself is strict ASCII.
//! * A name (`-n`) may not be empty, id-like, or a reserved word.
//! * Resolution ([`resolve`]): an id-like identifier is returned as is
//!   (even if no such backup exists); then the shortcuts `last`/`latest` and
//!   `first`/`oldest` (the newest/oldest backup, by id, whose status is not
//!   STARTED — FAILED ones count) and `last-failed`; a shortcut that finds
//!   nothing falls through to the name lookup; then names (several matches
//!   are an error); else "Unknown backup 'X' for server 'S'". `latest-full`,
//!   `last-full` and `auto` are not shortcuts here (they are reserved names).

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDateTime;

use crate::layout::backup_info::{BackupInfo, BackupStatus};

/// `barman.utils.RESERVED_BACKUP_IDS`: words a backup name may not be.
pub const RESERVED_BACKUP_IDS: [&str; 8] = [
    "latest",
    "last",
    "oldest",
    "first",
    "last-failed",
    "latest-full",
    "last-full",
    "auto",
];

/// A backup id in Barman's form `YYYYMMDDTHHMMSS` (ASCII digits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackupId(String);

/// The text is not of the form `YYYYMMDDTHHMMSS`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a backup id (expected the form 20261127T214906)")]
pub struct BackupIdError(pub String);

impl BackupId {
    /// The id of a backup started at local time `t` (`strftime("%Y%m%dT%H%M%S")`).
    pub fn from_local_time(t: &NaiveDateTime) -> BackupId {
        BackupId(t.format("%Y%m%dT%H%M%S").to_string())
    }

    /// The id of a backup starting now, from the client's local clock.
    pub fn now() -> BackupId {
        Self::from_local_time(&chrono::Local::now().naive_local())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for BackupId {
    type Err = BackupIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let ok = b.len() == 15
            && b[8] == b'T'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 8 || c.is_ascii_digit());
        if ok {
            Ok(BackupId(s.to_string()))
        } else {
            Err(BackupIdError(s.to_string()))
        }
    }
}

impl fmt::Display for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for BackupId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// `barman.utils.is_backup_id`.
pub fn is_backup_id(identifier: &str) -> bool {
    let s = identifier.strip_suffix('\n').unwrap_or(identifier);
    let chars: Vec<char> = s.chars().collect();
    chars.len() == 15
        && chars[8] == 'T'
        && chars
            .iter()
            .enumerate()
            .all(|(i, c)| i == 8 || crate::layout::pyliteral::decimal_value(*c).is_some())
}

/// Why a backup name is refused (`barman.utils.check_backup_name`; argparse
/// prefixes the message with `argument -n/--name: `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupNameError {
    #[error("Backup name cannot be empty")]
    Empty,
    #[error("Backup name '{0}' is not allowed: backup ID")]
    LooksLikeId(String),
    #[error("Backup name '{0}' is not allowed: reserved word")]
    Reserved(String),
}

/// `check_backup_name`: not empty, not id-like, not a reserved word.
pub fn check_backup_name(name: &str) -> Result<(), BackupNameError> {
    if name.is_empty() {
        Err(BackupNameError::Empty)
    } else if is_backup_id(name) {
        Err(BackupNameError::LooksLikeId(name.to_string()))
    } else if RESERVED_BACKUP_IDS.contains(&name) {
        Err(BackupNameError::Reserved(name.to_string()))
    } else {
        Ok(())
    }
}

/// How an identifier was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedBy {
    /// It looks like an id; whether that backup exists is not checked.
    Id,
    /// `last`/`latest`, `first`/`oldest` or `last-failed`.
    Shortcut,
    /// It is the `backup_name` of exactly one backup.
    Name,
}

/// The backup an identifier designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub backup_id: String,
    pub by: ResolvedBy,
}

/// The identifier designates no backup, or several.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("Unknown backup '{identifier}' for server '{server}'")]
    Unknown { identifier: String, server: String },
    #[error("Multiple backups found matching name '{name}' (try using backup ID instead): {}", ids.join(" "))]
    AmbiguousName { name: String, ids: Vec<String> },
    /// The named backup's `backup.info` says `backup_id=None`.
    #[error("the backup named '{0}' has a null backup_id")]
    NullId(String),
}

/// The id Barman uses for a catalogue entry: the key prefix, unless the file
/// had a `backup_id=` line.
pub fn effective_backup_id<'a>(key_id: &'a str, info: &'a BackupInfo) -> Option<&'a str> {
    match &info.backup_id_override {
        Some(over) => over.as_deref(),
        None => Some(key_id),
    }
}

/// `CloudBackupCatalog.parse_backup_id` over the readable backups of
/// `server`, given as (id from the key prefix, `backup.info`) in listing
/// order (which orders the ids of an ambiguous name).
pub fn resolve<S: AsRef<str>>(
    identifier: &str,
    server: &str,
    catalog: &[(S, BackupInfo)],
) -> Result<Resolved, ResolveError> {
    if is_backup_id(identifier) {
        return Ok(Resolved {
            backup_id: identifier.to_string(),
            by: ResolvedBy::Id,
        });
    }
    if let Some(id) = shortcut(identifier, catalog) {
        return Ok(Resolved {
            backup_id: id,
            by: ResolvedBy::Shortcut,
        });
    }
    let matches: Vec<(&str, &BackupInfo)> = catalog
        .iter()
        .filter(|(_, info)| info.backup_name.as_deref() == Some(identifier))
        .map(|(id, info)| (id.as_ref(), info))
        .collect();
    match matches.as_slice() {
        [] => Err(ResolveError::Unknown {
            identifier: identifier.to_string(),
            server: server.to_string(),
        }),
        [(id, info)] => effective_backup_id(id, info)
            .map(|id| Resolved {
                backup_id: id.to_string(),
                by: ResolvedBy::Name,
            })
            .ok_or_else(|| ResolveError::NullId(identifier.to_string())),
        several => Err(ResolveError::AmbiguousName {
            name: identifier.to_string(),
            ids: several
                .iter()
                .map(|(id, info)| effective_backup_id(id, info).unwrap_or("None").to_string())
                .collect(),
        }),
    }
}

/// `CloudBackupCatalog._get_backup_id_using_shortcut`.
fn shortcut<S: AsRef<str>>(shortcut: &str, catalog: &[(S, BackupInfo)]) -> Option<String> {
    let mut sorted: Vec<(&str, &BackupInfo)> = catalog
        .iter()
        .map(|(id, info)| (id.as_ref(), info))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let not_started = |(_, info): &&(&str, &BackupInfo)| !info.status_is(&BackupStatus::Started);
    let found = match shortcut {
        "last" | "latest" => sorted.iter().rev().find(not_started),
        "first" | "oldest" => sorted.iter().find(not_started),
        "last-failed" => sorted
            .iter()
            .rev()
            .find(|(_, info)| info.status_is(&BackupStatus::Failed)),
        _ => None,
    };
    found.map(|(id, _)| id.to_string())
}

#[cfg(test)]
mod tests;
