//! The vocabulary of a plan: what is asked ([`Request`], [`Mode`]), what a
//! [`Plan`] lists ([`BackupDeletion`], [`Abort`]), and Barman's texts for its
//! warnings ([`Warning`]), exceptions ([`Crash`]) and refusals
//! ([`PlanError`]), with the exit codes of `barman-cloud-backup-delete`.

use super::policy::Policy;
use super::report::RetentionStatus;
use crate::catalog::KeepTarget;
use crate::layout::backup_id::ResolveError;
use crate::layout::pyliteral::repr_str;

/// What was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `-r POLICY -m N`
    Policy {
        policy: Policy,
        minimum_redundancy: u64,
    },
    /// `-b ID -m N` (an id, a shortcut such as `oldest`, or a backup name).
    Backup {
        identifier: String,
        minimum_redundancy: u64,
    },
}

/// A real run or `--dry-run`: they differ when several backups go, because
/// a dry run deletes nothing and so lists the same WAL prefixes again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Execute,
    DryRun,
}

/// A keep annotation as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep<'a> {
    None,
    Target(&'a KeepTarget),
}

/// Barman raised an exception: it logs "Barman cloud backup delete
/// exception: MESSAGE" and exits 4. `message` is Python's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Crash {
    pub message: String,
}

impl Crash {
    pub fn new(message: impl Into<String>) -> Crash {
        Crash {
            message: message.into(),
        }
    }
}

/// A WARNING Barman logs; `Display` is its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    #[error(
        "Retention policy redundancy ({redundancy}) is lower than the required minimum \
         redundancy ({minimum}). Enforce {minimum}."
    )]
    RedundancyBelowMinimum { redundancy: u64, minimum: u64 },
    #[error(
        "Keeping obsolete backup {backup_id} for server {server} (older than {point}) due to \
         minimum redundancy requirements ({minimum})"
    )]
    KeptForMinimumRedundancy {
        backup_id: String,
        server: String,
        point: String,
        minimum: u64,
    },
    #[error("Backup {backup_id} does not exist")]
    BackupDoesNotExist { backup_id: String },
    #[error("Skipping unknown extension: {ext}")]
    UnknownExtension { ext: String },
    #[error("Missing file {base}.* for server {server}")]
    MissingFile { base: String, server: String },
    #[error("Ignoring malformed WAL object prefix: {prefix}")]
    MalformedWalPrefix { prefix: String },
}

/// Refused before anything is deleted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "Cannot read the following backups: {}\nUnsafe to proceed with deletion due to \
         failure reading backup catalog",
        py_list(ids)
    )]
    UnreadableCatalog { ids: Vec<String> },
    #[error(
        "Skipping delete of backup {backup_id} for server {server} as it has a current keep \
         request. If you really want to delete this backup please remove the keep and try again."
    )]
    KeepRequested { backup_id: String, server: String },
    #[error(
        "Skipping delete of backup {backup_id} for server {server} due to minimum redundancy \
         requirements (minimum redundancy = {minimum}, current redundancy = {current})"
    )]
    MinimumRedundancy {
        backup_id: String,
        server: String,
        minimum: u64,
        current: u64,
    },
    /// `-b` names no backup (Barman's ValueError, exit 4).
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// barnacle's own refusal: Barman builds keys from one id and looks the
    /// catalogue up by the other, deleting some objects and then crashing.
    #[error(
        "backup.info of {key_id} says backup_id={}: refusing to delete with a catalogue whose \
         ids disagree", value.as_deref().unwrap_or("None")
    )]
    BackupIdMismatch {
        key_id: String,
        value: Option<String>,
    },
}

impl PlanError {
    /// Barman's exit code (1 = refused; 4 = its exception).
    pub fn exit_code(&self) -> i32 {
        match self {
            PlanError::Resolve(_) => 4,
            _ => 1,
        }
    }

    /// The ERROR line Barman logs.
    pub fn barman_log(&self) -> String {
        match self {
            PlanError::Resolve(e) => format!("Barman cloud backup delete exception: {e}"),
            other => other.to_string(),
        }
    }
}

/// Everything deleted for one backup, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupDeletion {
    pub backup_id: String,
    /// Snapshot backups: their snapshots are deleted through the provider,
    /// then this `backup_label` key; all before the files.
    pub snapshot_backup_label: Option<String>,
    /// The archives (may be empty; Barman still sends the empty request).
    pub files: Vec<String>,
    /// Deleted only after every file: a failure leaves the backup listed.
    pub backup_info: String,
    /// WAL hash directories deleted whole (`delete_under_prefix`), in order.
    pub wal_prefixes: Vec<String>,
    /// WAL keys deleted one by one, sorted (one request, batched).
    pub wal_keys: Vec<String>,
    /// Warnings logged while this backup was handled.
    pub warnings: Vec<Warning>,
}

impl BackupDeletion {
    /// The base-backup objects: the files, then `backup.info`.
    pub fn objects(&self) -> Vec<&str> {
        let files = self.files.iter().map(String::as_str);
        files.chain([self.backup_info.as_str()]).collect()
    }
}

/// Where Barman raised, after the deletions listed before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abort {
    pub crash: Crash,
    /// When it raised while listing the files of a backup it had not
    /// deleted yet: that backup...
    pub backup_id: Option<String>,
    /// ... whose snapshots and this `backup_label` were already deleted.
    pub snapshot_backup_label: Option<String>,
    /// ... and the warnings logged for it before.
    pub warnings: Vec<Warning>,
}

/// The outcome of planning.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub mode: Mode,
    /// Policy requests: each backup's retention status, newest first.
    pub report: Vec<(String, RetentionStatus)>,
    /// Warnings logged before the first deletion.
    pub warnings: Vec<Warning>,
    pub deletions: Vec<BackupDeletion>,
    /// Barman raised after the deletions above (exit 4).
    pub abort: Option<Abort>,
}

impl Plan {
    /// 0, or 4 when Barman raised midway.
    pub fn exit_code(&self) -> i32 {
        if self.abort.is_some() { 4 } else { 0 }
    }

    /// The WARNING and ERROR lines Barman logs, in order (`LEVEL: text`).
    pub fn barman_log(&self) -> Vec<String> {
        let warn = |w: &Warning| format!("WARNING: {w}");
        let mut out: Vec<String> = self.warnings.iter().map(warn).collect();
        for d in &self.deletions {
            out.extend(d.warnings.iter().map(warn));
        }
        if let Some(abort) = &self.abort {
            out.extend(abort.warnings.iter().map(warn));
            out.push(format!(
                "ERROR: Barman cloud backup delete exception: {}",
                abort.crash
            ));
        }
        out
    }

    /// The ids of the backups whose `backup.info` goes.
    pub fn deleted_backups(&self) -> Vec<&str> {
        self.deletions
            .iter()
            .map(|d| d.backup_id.as_str())
            .collect()
    }
}

/// Python's `repr()` of a list of strings.
pub(crate) fn py_list<S: AsRef<str>>(items: &[S]) -> String {
    let inner: Vec<String> = items.iter().map(|s| repr_str(s.as_ref())).collect();
    format!("[{}]", inner.join(", "))
}
