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
use super::outcome::{Abort, BackupDeletion, Crash, Keep, Mode, Plan, PlanError, Request, Warning};
use super::policy::Policy;
use super::report::{self, Report, RetentionStatus};
use super::wal::{PassRequest, WalArchive};
use crate::catalog::KeepTarget;
use crate::layout::backup_id::resolve;
use crate::layout::backup_info::{BackupInfo, BackupStatus};

/// The checks Barman makes on the catalogue before looking at the request:
/// every `backup.info` readable, and (barnacle's own) no `backup_id=` line
/// that disagrees with its key.
pub fn check_catalog(inv: &Inventory) -> Result<(), PlanError> {
    let base = inv.prefix.base_root();
    let readable: HashSet<&str> = inv
        .catalog
        .backups
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
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
                let current = (inv.catalog.backups.iter())
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
            let report = retention_report(inv, policy, *minimum_redundancy, now);
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

/// Barman's retention report for `policy` over the catalogue (what `-r`
/// would delete: the `OBSOLETE` ones), with the warnings it logs.
pub fn retention_report<Tz: TimeZone>(
    inv: &Inventory,
    policy: &Policy,
    minimum_redundancy: u64,
    now: &DateTime<Tz>,
) -> Report {
    let sorted: Vec<(&str, &BackupInfo)> = (inv.catalog.backups.iter())
        .map(|(id, info)| (id.as_str(), info))
        .collect();
    let keep = |id: &str| keep_of(inv, id);
    report::build(
        policy,
        minimum_redundancy,
        &sorted,
        &keep,
        now,
        &inv.server_name,
    )
}

/// `get_keep_target(id)`: the annotation, or the crash of decoding one that
/// is not UTF-8.
fn keep_of<'a>(inv: &'a Inventory, id: &str) -> Result<Keep<'a>, Crash> {
    if let Some(target) = inv.catalog.keep.get(id) {
        return Ok(Keep::Target(target));
    }
    if inv.undecodable_keep.contains(id) {
        return Err(Crash::new(format!(
            "'utf-8' codec can't decode the keep annotation of {id}"
        )));
    }
    Ok(Keep::None)
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

    fn keep(&self, id: &str) -> Result<Keep<'a>, Crash> {
        keep_of(self.inv, id)
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
        let files = match files_for_backup(&self.base_keys, source_dir, info, &self.inv.server_name)
        {
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
                .range::<str, _>((Bound::Unbounded, Bound::Excluded(cursor)))
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
        let mut protected: HashSet<i64> =
            self.backups.values().filter_map(|b| b.timeline).collect();
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
