//! `backup.info`: the metadata file of one backup (spec §3), with exactly the
//! 35 fields of Barman 3.19.1's `barman.infofile.BackupInfo`.
//!
//! Reading mirrors `FieldListFile.load`: lines split on `\n`; blank lines and
//! lines whose right-stripped text starts with `#` are skipped (a `#` after
//! leading spaces is *not* a comment); each line is split on the first `=`,
//! both sides stripped; the value `None` is null; ints go through Python
//! `int()`, times through dateutil (naive = local), the literal fields through
//! `ast.literal_eval`. A line without `=` or a bad value makes the file
//! unreadable (Barman skips that backup with a warning). **An unknown field
//! name is fatal**: Barman prints "Unsupported field 'X' found in backup
//! metadata..." and exits 1, killing the whole command
//! ([`BackupInfoError::is_fatal`]). The names of `BackupInfo`'s slots are not
//! unknown: `backup_id=` is accepted and overrides the id taken from the key
//! prefix ([`BackupInfo::backup_id_override`]), `backup_version=` and
//! `filename=` are accepted and ignored.
//!
//! Writing mirrors `FieldListFile.save`: every field sorted by name as
//! `name=str(value)\n`, `None` for null, `backup_name` and `snapshots_info`
//! left out when null. The literal fields are written with `repr()` when
//! truthy and as `None` otherwise (`null_repr`: an empty dict or label becomes
//! `None`), `tablespaces` as a list of tuples, `children_backup_ids` joined
//! with `,`, times with `str(datetime)`. So `to_text(parse(t)) == t` for what
//! Barman writes, and otherwise equals what Barman's load + save would write.
//!
//! Typed: ints are `i64`; LSNs, WAL names and `systemid` stay the strings
//! Barman keeps (see [`BackupInfo::begin_lsn`]). Deliberate limits: a
//! tablespace entry must be `(str, int, str)` and ints must fit in `i64`.

mod pytime;
mod snapshots;
mod write;

use chrono::{DateTime, FixedOffset};

use crate::layout::pyliteral::PyValue;
use crate::pg::{Lsn, LsnParseError};

pub use pytime::{parse_py_datetime, py_ctime, py_isoformat, py_str, py_strftime_list};
pub use write::Dumped;

/// The 35 field names, sorted as Barman writes them.
pub const FIELD_NAMES: [&str; 35] = [
    "backup_label",
    "backup_name",
    "begin_offset",
    "begin_time",
    "begin_wal",
    "begin_xlog",
    "children_backup_ids",
    "cluster_size",
    "compression",
    "config_file",
    "copy_stats",
    "data_checksums",
    "deduplicated_size",
    "encryption",
    "end_offset",
    "end_time",
    "end_wal",
    "end_xlog",
    "error",
    "hba_file",
    "ident_file",
    "included_files",
    "mode",
    "parent_backup_id",
    "pgdata",
    "server_name",
    "size",
    "snapshots_info",
    "status",
    "summarize_wal",
    "systemid",
    "tablespaces",
    "timeline",
    "version",
    "xlog_segment_size",
];

/// `xlog.DEFAULT_XLOG_SEG_SIZE`, the default of `xlog_segment_size`.
pub const DEFAULT_XLOG_SEGMENT_SIZE: i64 = 16 * 1024 * 1024;

/// Why a `backup.info` text cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupInfoError {
    /// Fatal for the whole Barman command (exit 1).
    #[error(
        "Unsupported field '{0}' found in backup metadata. This indicates the backup was \
         created with a newer version of Barman. Please upgrade to a compatible or newer version."
    )]
    UnsupportedField(String),
    /// A line without `=` (Barman's `ValueError`).
    #[error("invalid line {0} in file <UNKNOWN>")]
    InvalidLine(String),
    #[error("invalid value for {field}: {value:?}: {reason}")]
    InvalidValue {
        field: String,
        value: String,
        reason: String,
    },
    #[error("backup.info line {line} is not valid UTF-8")]
    NotUtf8 { line: usize },
}

impl BackupInfoError {
    /// Whether Barman aborts the whole command (rather than skipping this
    /// backup with "Unable to open backup.info file for ID: ...").
    pub fn is_fatal(&self) -> bool {
        matches!(self, BackupInfoError::UnsupportedField(_))
    }
}

/// `status`. Barman writes STARTED, DONE and FAILED for cloud backups and
/// knows the others; any other text is kept as is (Barman does not check).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BackupStatus {
    Empty,
    Started,
    WaitingForWals,
    Done,
    Syncing,
    Failed,
    Other(String),
}

impl BackupStatus {
    pub fn parse(text: &str) -> BackupStatus {
        match text {
            "EMPTY" => BackupStatus::Empty,
            "STARTED" => BackupStatus::Started,
            "WAITING_FOR_WALS" => BackupStatus::WaitingForWals,
            "DONE" => BackupStatus::Done,
            "SYNCING" => BackupStatus::Syncing,
            "FAILED" => BackupStatus::Failed,
            other => BackupStatus::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            BackupStatus::Empty => "EMPTY",
            BackupStatus::Started => "STARTED",
            BackupStatus::WaitingForWals => "WAITING_FOR_WALS",
            BackupStatus::Done => "DONE",
            BackupStatus::Syncing => "SYNCING",
            BackupStatus::Failed => "FAILED",
            BackupStatus::Other(s) => s,
        }
    }

    /// `BackupInfo.STATUS_COPY_DONE`: WAITING_FOR_WALS or DONE.
    pub fn is_copy_done(&self) -> bool {
        matches!(self, BackupStatus::WaitingForWals | BackupStatus::Done)
    }
}

impl std::fmt::Display for BackupStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `tablespaces` entry: Barman's `Tablespace(name, oid, location)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tablespace {
    pub name: String,
    pub oid: i64,
    pub location: String,
}

/// The content of one `backup.info`. `None` is Python's `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupInfo {
    pub backup_label: Option<PyValue>,
    pub backup_name: Option<String>,
    pub begin_offset: Option<i64>,
    pub begin_time: Option<DateTime<FixedOffset>>,
    pub begin_wal: Option<String>,
    pub begin_xlog: Option<String>,
    pub children_backup_ids: Option<Vec<String>>,
    pub cluster_size: Option<i64>,
    pub compression: Option<String>,
    pub config_file: Option<String>,
    pub copy_stats: Option<PyValue>,
    pub data_checksums: Option<String>,
    pub deduplicated_size: Option<i64>,
    pub encryption: Option<String>,
    pub end_offset: Option<i64>,
    pub end_time: Option<DateTime<FixedOffset>>,
    pub end_wal: Option<String>,
    pub end_xlog: Option<String>,
    pub error: Option<String>,
    pub hba_file: Option<String>,
    pub ident_file: Option<String>,
    pub included_files: Option<PyValue>,
    pub mode: Option<String>,
    pub parent_backup_id: Option<String>,
    pub pgdata: Option<String>,
    pub server_name: Option<String>,
    pub size: Option<i64>,
    /// In the canonical `to_dict()` form of Barman's provider classes.
    pub snapshots_info: Option<PyValue>,
    /// Defaults to `EMPTY`; `status=None` in a file gives `None`.
    pub status: Option<BackupStatus>,
    pub summarize_wal: Option<String>,
    pub systemid: Option<String>,
    pub tablespaces: Option<Vec<Tablespace>>,
    pub timeline: Option<i64>,
    pub version: Option<i64>,
    /// Defaults to 16 MiB.
    pub xlog_segment_size: Option<i64>,
    /// A `backup_id=` line: Barman lets it replace the id from the key
    /// prefix (`Some(None)` for `backup_id=None`). Never written.
    pub backup_id_override: Option<Option<String>>,
}

impl Default for BackupInfo {
    /// Barman's defaults: status `EMPTY`, 16 MiB segments, the rest `None`.
    fn default() -> Self {
        BackupInfo {
            backup_label: None,
            backup_name: None,
            begin_offset: None,
            begin_time: None,
            begin_wal: None,
            begin_xlog: None,
            children_backup_ids: None,
            cluster_size: None,
            compression: None,
            config_file: None,
            copy_stats: None,
            data_checksums: None,
            deduplicated_size: None,
            encryption: None,
            end_offset: None,
            end_time: None,
            end_wal: None,
            end_xlog: None,
            error: None,
            hba_file: None,
            ident_file: None,
            included_files: None,
            mode: None,
            parent_backup_id: None,
            pgdata: None,
            server_name: None,
            size: None,
            snapshots_info: None,
            status: Some(BackupStatus::Empty),
            summarize_wal: None,
            systemid: None,
            tablespaces: None,
            timeline: None,
            version: None,
            xlog_segment_size: Some(DEFAULT_XLOG_SEGMENT_SIZE),
            backup_id_override: None,
        }
    }
}

impl BackupInfo {
    /// Reads a `backup.info` text as Barman does.
    pub fn parse(text: &str) -> Result<BackupInfo, BackupInfoError> {
        Self::parse_bytes(text.as_bytes())
    }

    /// Reads raw bytes; each line is decoded as UTF-8 when it is reached.
    pub fn parse_bytes(bytes: &[u8]) -> Result<BackupInfo, BackupInfoError> {
        let mut info = BackupInfo::default();
        for (n, raw) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
            let line =
                std::str::from_utf8(raw).map_err(|_| BackupInfoError::NotUtf8 { line: n + 1 })?;
            let blank = !line.is_empty() && line.chars().all(py_isspace);
            if blank || line.trim_end_matches(py_isspace).starts_with('#') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                return Err(BackupInfoError::InvalidLine(py_strip(line).to_string()));
            };
            info.set(py_strip(name), py_strip(value))?;
        }
        Ok(info)
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), BackupInfoError> {
        let invalid = |reason: String| BackupInfoError::InvalidValue {
            field: name.to_string(),
            value: value.to_string(),
            reason,
        };
        let null = value == "None";
        let text = || (!null).then(|| value.to_string());
        let int = || -> Result<Option<i64>, BackupInfoError> {
            if null {
                return Ok(None);
            }
            py_int(value).map(Some).ok_or_else(|| {
                invalid(format!("invalid literal for int() with base 10: '{value}'"))
            })
        };
        let time = || -> Result<Option<DateTime<FixedOffset>>, BackupInfoError> {
            if null {
                return Ok(None);
            }
            parse_py_datetime(value).map(Some).map_err(invalid)
        };
        let literal = || -> Result<Option<PyValue>, BackupInfoError> {
            if null {
                return Ok(None);
            }
            PyValue::parse(value)
                .map(Some)
                .map_err(|e| invalid(e.to_string()))
        };
        match name {
            "backup_label" => self.backup_label = literal()?,
            "backup_name" => self.backup_name = text(),
            "begin_offset" => self.begin_offset = int()?,
            "begin_time" => self.begin_time = time()?,
            "begin_wal" => self.begin_wal = text(),
            "begin_xlog" => self.begin_xlog = text(),
            "children_backup_ids" => {
                // `load_backup_ids`: "" is None, otherwise split on ",".
                self.children_backup_ids = text()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.split(',').map(str::to_string).collect());
            }
            "cluster_size" => self.cluster_size = int()?,
            "compression" => self.compression = text(),
            "config_file" => self.config_file = text(),
            "copy_stats" => self.copy_stats = literal()?,
            "data_checksums" => self.data_checksums = text(),
            "deduplicated_size" => self.deduplicated_size = int()?,
            "encryption" => self.encryption = text(),
            "end_offset" => self.end_offset = int()?,
            "end_time" => self.end_time = time()?,
            "end_wal" => self.end_wal = text(),
            "end_xlog" => self.end_xlog = text(),
            "error" => self.error = text(),
            "hba_file" => self.hba_file = text(),
            "ident_file" => self.ident_file = text(),
            "included_files" => self.included_files = literal()?,
            "mode" => self.mode = text(),
            "parent_backup_id" => self.parent_backup_id = text(),
            "pgdata" => self.pgdata = text(),
            "server_name" => self.server_name = text(),
            "size" => self.size = int()?,
            "snapshots_info" => {
                self.snapshots_info = match literal()? {
                    Some(v) => Some(snapshots::canonical(&v).map_err(invalid)?),
                    None => None,
                }
            }
            "status" => self.status = text().map(|s| BackupStatus::parse(&s)),
            "summarize_wal" => self.summarize_wal = text(),
            "systemid" => self.systemid = text(),
            "tablespaces" => {
                self.tablespaces = match literal()? {
                    Some(v) => load_tablespaces(&v).map_err(invalid)?,
                    None => None,
                }
            }
            "timeline" => self.timeline = int()?,
            "version" => self.version = int()?,
            "xlog_segment_size" => self.xlog_segment_size = int()?,
            // Slots of Barman's BackupInfo: setattr succeeds.
            "backup_id" => self.backup_id_override = Some(text()),
            "backup_version" | "filename" => {}
            "_fields" => return Err(invalid("TypeError: the field table was overwritten".into())),
            other => return Err(BackupInfoError::UnsupportedField(other.to_string())),
        }
        Ok(())
    }

    /// The label text, when `backup_label` holds a string.
    pub fn backup_label_text(&self) -> Option<&str> {
        self.backup_label.as_ref().and_then(PyValue::as_str)
    }

    pub fn status_is(&self, status: &BackupStatus) -> bool {
        self.status.as_ref() == Some(status)
    }

    /// `begin_xlog` parsed as an LSN.
    pub fn begin_lsn(&self) -> Option<Result<Lsn, LsnParseError>> {
        self.begin_xlog.as_deref().map(str::parse)
    }

    /// `end_xlog` parsed as an LSN.
    pub fn end_lsn(&self) -> Option<Result<Lsn, LsnParseError>> {
        self.end_xlog.as_deref().map(str::parse)
    }
}

/// `load_tablespace_list`: an empty list is `None`.
fn load_tablespaces(v: &PyValue) -> Result<Option<Vec<Tablespace>>, String> {
    if !v.is_truthy() {
        return Ok(None);
    }
    let items = match v {
        PyValue::List(items) | PyValue::Tuple(items) => items,
        _ => return Err("tablespaces is not a list".into()),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            PyValue::List(t) | PyValue::Tuple(t) => match t.as_slice() {
                [
                    PyValue::Str(name),
                    PyValue::Int(oid),
                    PyValue::Str(location),
                ] => out.push(Tablespace {
                    name: name.clone(),
                    oid: *oid,
                    location: location.clone(),
                }),
                _ => return Err("a tablespace is not (name, oid, location)".into()),
            },
            _ => return Err("a tablespace is not a tuple".into()),
        }
    }
    Ok(Some(out))
}

/// Python's `str.isspace` for one character.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// Python's `int(text)` for base 10 (ASCII digits; `_` between digits).
pub fn py_int(text: &str) -> Option<i64> {
    let t = py_strip(text);
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let b = digits.as_bytes();
    let ok = !b.is_empty()
        && b.first().is_some_and(u8::is_ascii_digit)
        && b.last().is_some_and(u8::is_ascii_digit)
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'_')
        && !digits.contains("__");
    if !ok {
        return None;
    }
    let magnitude: i128 = digits.replace('_', "").parse().ok()?;
    i64::try_from(if neg { -magnitude } else { magnitude }).ok()
}

#[cfg(test)]
mod tests;
