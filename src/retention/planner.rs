//! The plan of one `barman-cloud-backup-delete` run: which backups, which of
//! their objects and which WALs it deletes, in Barman's order, without
//! touching the store (`main`, `_delete_backup` and the decision half of
//! `_remove_wals_for_backup` in cloud_backup_delete.py, with
//! `BackupManager.should_remove_wals`, `find_previous_backup_in`,
//! `find_next_backup_in` and `get_timelines_to_protect` from backup.py).
//!
//! Order of checks: an unreadable `backup.info` stops everything (exit 1);
//! then `-b ID`: the identifier is resolved (ids as they are; shortcuts and
//! names, else exit 4), a keep annotation refuses (exit 1, even an empty or
//! orphan one), `-m N` > 0 with N ≥ the number of non-STARTED backups
//! refuses (exit 1, FAILED ones count), an id without `backup.info` is a
//! warning and nothing else (exit 0); the backup's status is not checked.
//! `-r POLICY`: every `OBSOLETE` backup of the [report](super::report), oldest
//! first.
//!
//! Deleting one backup D: snapshots and `backup_label` (snapshot backups),
//! its archives ([files](super::files)), then `backup.info`; then WALs,
//! decided here and applied by [`super::wal`]:
//! * Walk back through the previous DONE/WAITING_FOR_WALS backups by id: any
//!   one that is not keep:standalone → no WAL is removed; a standalone one
//!   → with `-b` no WAL is removed, with a policy its `(begin_wal, end_wal)`
//!   is protected and the walk goes on. Reaching the oldest → WALs go.
//! * `until` = the next DONE/WAITING_FOR_WALS backup after D, else D.
//! * Protected timelines = the timeline of every backup still in the
//!   catalogue, **D included**, minus `until`'s. (Barman means to leave D
//!   out, but compares a freshly loaded `BackupInfo` with the cached ones by
//!   identity, which never matches; so when `until` is on a newer timeline
//!   D's own timeline keeps all its WALs.)
//! * Then D leaves the catalogue (not before: the walk above sees it).
//!
//! Where Barman raises midway (exit 4) the plan says what was done before
//! ([`Plan::abort`]); a refusal before anything is a [`PlanError`].

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use chrono::{DateTime, TimeZone};

use super::Inventory;
use super::files::files_for_backup;
use super::policy::Policy;
use super::report::{self, RetentionStatus};
use super::wal::{PassRequest, WalArchive};
use crate::catalog::KeepTarget;
use crate::layout::backup_id::{ResolveError, resolve};
use crate::layout::backup_info::{BackupInfo, BackupStatus};
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
pub enum Keep<'a> {
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
         failure reading backup catalog", py_list(ids)
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
        self.deletions.iter().map(|d| d.backup_id.as_str()).collect()
    }
}

/// Python's `repr()` of a list of strings.
pub(crate) fn py_list<S: AsRef<str>>(items: &[S]) -> String {
    let inner: Vec<String> = items.iter().map(|s| repr_str(s.as_ref())).collect();
    format!("[{}]", inner.join(", "))
}

/// The checks Barman makes on the catalogue before looking at the request:
/// every `backup.info` readable, and (barnacle's own) no `backup_id=` line
/// that disagrees with its key.
pub fn check_catalog(inv: &Inventory) -> Result<(), PlanError> {
    let base = inv.prefix.base_root();
    let readable: HashSet<&str> = inv.catalog.backups.iter().map(|(id, _)| id.as_str()).collect();
    let unreadable: Vec<String> = inv
        .catalog
        .keys
        .iter()
        .filter_map(|k| k.strip_prefix(&base)?.strip_suffix("/backup.info"))
        .filter(|id| !id.contains('/') && !readable.contains(id))
        .map(str::to_string)
        .collect();
    if !unreadable.is_empty() {
        return Err(PlanError::UnreadableCatalog { ids: unreadable });
    }
    for (id, info) in &inv.catalog.backups {
        if let Some(value) = &info.backup_id_override {
            if value.as_deref() != Some(id.as_str()) {
                return Err(PlanError::BackupIdMismatch {
                    key_id: id.clone(),
                    value: value.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Plans one run. `now` is the local time (its zone decides where a
/// recovery window starts, DST included).
pub fn plan<Tz: TimeZone>(
    inv: &Inventory,
    request: &Request,
    mode: Mode,
    now: &DateTime<Tz>,
) -> Result<Plan, PlanError> {
    check_catalog(inv)?;
    let mut run = Run::new(inv, mode);
    match request {
        Request::Backup {
            identifier,
            minimum_redundancy,
        } => {
            let id = resolve(identifier, &inv.server_name, &inv.catalog.backups)?.backup_id;
            match run.keep(&id) {
                Ok(Keep::Target(_)) => {
                    return Err(PlanError::KeepRequested {
                        backup_id: id,
                        server: inv.server_name.clone(),
                    });
                }
                Ok(Keep::None) => {}
                Err(crash) => return Ok(run.abort_before(crash)),
            }
            if *minimum_redundancy > 0 {
                let done = inv.catalog.backups.iter();
                let current = done
                    .filter(|(_, b)| !b.status_is(&BackupStatus::Started))
                    .count() as u64;
                if *minimum_redundancy >= current {
                    return Err(PlanError::MinimumRedundancy {
                        backup_id: id,
                        server: inv.server_name.clone(),
                        minimum: *minimum_redundancy,
                        current,
                    });
                }
            }
            if run.backups.contains_key(id.as_str()) {
                run.delete(&id, true);
            } else {
                run.plan
                    .warnings
                    .push(Warning::BackupDoesNotExist { backup_id: id });
            }
        }
        Request::Policy {
            policy,
            minimum_redundancy,
        } => {
            let sorted: Vec<(&str, &BackupInfo)> = run.backups.iter().map(|(k, v)| (*k, *v)).collect();
            let keep = |id: &str| run.keep(id);
            let report = report::build(
                policy,
                *minimum_redundancy,
                &sorted,
                &keep,
                now,
                &inv.server_name,
            );
            run.plan.warnings.extend(report.warnings);
            if let Some(crash) = report.crash {
                return Ok(run.abort_before(crash));
            }
            let mut obsolete: Vec<String> = report
                .statuses
                .iter()
                .filter(|(_, s)| *s == RetentionStatus::Obsolete)
                .map(|(id, _)| id.clone())
                .collect();
            obsolete.sort();
            run.plan.report = report.statuses;
            for id in obsolete {
                if !run.delete(&id, false) {
                    break;
                }
            }
        }
    }
    Ok(run.plan)
}

/// The state of one run: Barman's cached catalogue and WAL listing.
struct Run<'a> {
    inv: &'a Inventory,
    backups: BTreeMap<&'a str, &'a BackupInfo>,
    base_keys: Vec<&'a str>,
    wals: WalArchive<'a>,
    plan: Plan,
}

impl<'a> Run<'a> {
    fn new(inv: &'a Inventory, mode: Mode) -> Self {
        let mut base_keys: Vec<&str> = inv.catalog.keys.iter().map(String::as_str).collect();
        base_keys.sort_unstable();
        Run {
            inv,
            backups: inv
                .catalog
                .backups
                .iter()
                .map(|(id, info)| (id.as_str(), info))
                .collect(),
            base_keys,
            wals: WalArchive::new(mode, inv.prefix.wals_root(), &inv.wal_keys),
            plan: Plan {
                mode,
                report: Vec::new(),
                warnings: Vec::new(),
                deletions: Vec::new(),
                abort: None,
            },
        }
    }

    /// `get_keep_target(id)`: the annotation, or the crash of decoding one
    /// that is not UTF-8 (the catalogue loader drops those but lists the key).
    fn keep(&self, id: &str) -> Result<Keep<'a>, Crash> {
        let inv = self.inv;
        if let Some(target) = inv.catalog.keep.get(id) {
            return Ok(Keep::Target(target));
        }
        let key = inv.prefix.keep_key(id);
        if self.base_keys.binary_search(&key.as_str()).is_ok() {
            return Err(Crash::new(format!(
                "'utf-8' codec can't decode the keep annotation of {id}"
            )));
        }
        Ok(Keep::None)
    }

    fn abort_before(mut self, crash: Crash) -> Plan {
        self.plan.abort = Some(Abort {
            crash,
            backup_id: None,
            snapshot_backup_label: None,
            warnings: Vec::new(),
        });
        self.plan
    }

    /// `_delete_backup(id)`; false when Barman raised.
    fn delete(&mut self, id: &str, skip_wal_cleanup_if_standalone: bool) -> bool {
        let Some(info) = self.backups.get(id).copied() else {
            return true;
        };
        let prefix = &self.inv.prefix;
        let dir = prefix.backup_dir(id);
        let label = info
            .snapshots_info
            .as_ref()
            .map(|_| format!("{dir}backup_label"));
        let source_dir = dir.trim_end_matches('/');
        let files = match files_for_backup(&self.base_keys, source_dir, info, &self.inv.server_name) {
            Ok(files) => files,
            Err((warnings, crash)) => {
                self.plan.abort = Some(Abort {
                    crash,
                    backup_id: Some(id.to_string()),
                    snapshot_backup_label: label,
                    warnings,
                });
                return false;
            }
        };
        let mut deletion = BackupDeletion {
            backup_id: id.to_string(),
            snapshot_backup_label: label,
            files: files.files,
            backup_info: prefix.backup_info_key(id),
            wal_prefixes: Vec::new(),
            wal_keys: Vec::new(),
            warnings: files.warnings,
        };
        let crash = match self.remove_wals(id, info, skip_wal_cleanup_if_standalone) {
            Ok(Some(pass)) => {
                deletion.wal_prefixes = pass.prefixes;
                deletion.wal_keys = pass.keys;
                deletion.warnings.extend(pass.warnings);
                pass.crash
            }
            Ok(None) => None,
            Err(crash) => Some(crash),
        };
        self.plan.deletions.push(deletion);
        self.backups.remove(id);
        match crash {
            Some(crash) => {
                self.plan.abort = Some(Abort {
                    crash,
                    backup_id: None,
                    snapshot_backup_label: None,
                    warnings: Vec::new(),
                });
                false
            }
            None => true,
        }
    }

    /// `should_remove_wals` + the rest of `_remove_wals_for_backup`.
    fn remove_wals(
        &mut self,
        id: &str,
        info: &'a BackupInfo,
        skip_if_standalone: bool,
    ) -> Result<Option<super::wal::PassResult>, Crash> {
        let copy_done = |b: &&BackupInfo| b.status.as_ref().is_some_and(BackupStatus::is_copy_done);
        let mut ranges: Vec<(Option<&str>, Option<&str>)> = Vec::new();
        let mut cursor = id;
        loop {
            let previous = self
                .backups
                .range::<str, _>(..cursor)
                .rev()
                .find(|(_, b)| copy_done(b));
            let Some((pid, pinfo)) = previous else {
                break;
            };
            match self.keep(pid)? {
                Keep::Target(KeepTarget::Standalone) if !skip_if_standalone => {
                    ranges.push((pinfo.begin_wal.as_deref(), pinfo.end_wal.as_deref()));
                    cursor = pid;
                }
                _ => return Ok(None),
            }
        }
        let next = self
            .backups
            .range::<str, _>((Bound::Excluded(id), Bound::Unbounded))
            .map(|(_, b)| *b)
            .find(copy_done);
        let until = next.unwrap_or(info);
        let mut protected: HashSet<i64> = self.backups.values().filter_map(|b| b.timeline).collect();
        if let Some(t) = until.timeline {
            protected.remove(&t);
        }
        let request = PassRequest {
            protected: &protected,
            ranges: &ranges,
            until: until.begin_wal.as_deref(),
        };
        Ok(Some(self.wals.pass(&request)))
    }
}
