//! The retention report: each backup's status under a policy, as
//! `RedundancyRetentionPolicy._backup_report` and
//! `RecoveryWindowRetentionPolicy._backup_report` compute it for
//! barman-cloud-backup-delete (`retention_policies.py`).
//!
//! Both walk the backups newest to oldest **by id**. Only DONE backups get a
//! retention status; every other one (FAILED, STARTED, WAITING_FOR_WALS...)
//! is `-` and is never deleted by a policy. A keep annotation reads
//! `standalone` → `KEEP:STANDALONE`, any other *non-empty* first line →
//! `KEEP:FULL`; an empty annotation is no keep here.
//!
//! * REDUNDANCY N (N raised to `-m` with a warning): the first N DONE
//!   backups are VALID, the rest OBSOLETE. **Kept backups use up slots.**
//!   `REDUNDANCY 0` marks every DONE backup without keep OBSOLETE, the newest
//!   included.
//! * RECOVERY WINDOW: point = (local wall-clock now − window), with the
//!   offset the local zone has at that wall time (dateutil's `tzlocal`: in a
//!   DST overlap the DST offset, in a gap the offset after it). DONE backups
//!   are VALID until the first whose `end_time` < point, which is still VALID.
//!   After it: the keep status, else `OBSOLETE*` (with a warning) while fewer
//!   than `-m` backups were counted as valid (kept ones count), else OBSOLETE.
//!
//! Surprises kept: a backup whose `backup.info` has `parent_backup_id` set is
//! skipped (no status, not counted); one with `children_backup_ids` set
//! crashes the report (`'BackupInfo' object has no attribute
//! 'walk_backups_tree'`); a DONE backup without `end_time` crashes the window
//! report when reached before the window's start; a window reaching before
//! year 1 crashes (`date value out of range`) as soon as one DONE backup is
//! looked at.

use chrono::{DateTime, Datelike, FixedOffset, LocalResult, Offset, TimeDelta, TimeZone};

use super::outcome::{Crash, Keep, Warning};
use super::policy::{Policy, RecoveryWindow};
use crate::layout::backup_info::{BackupInfo, BackupStatus, py_str};

/// A backup's status in Barman's retention report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetentionStatus {
    /// `VALID`
    Valid,
    /// `OBSOLETE`: the only status a policy deletes.
    Obsolete,
    /// `OBSOLETE*`: obsolete but kept for the minimum redundancy.
    PotentiallyObsolete,
    /// `KEEP:FULL`
    KeepFull,
    /// `KEEP:STANDALONE`
    KeepStandalone,
    /// `-`: not DONE.
    None,
}

impl RetentionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionStatus::Valid => "VALID",
            RetentionStatus::Obsolete => "OBSOLETE",
            RetentionStatus::PotentiallyObsolete => "OBSOLETE*",
            RetentionStatus::KeepFull => "KEEP:FULL",
            RetentionStatus::KeepStandalone => "KEEP:STANDALONE",
            RetentionStatus::None => "-",
        }
    }
}

impl std::fmt::Display for RetentionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The report for one policy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// Newest first, as Barman builds it.
    pub statuses: Vec<(String, RetentionStatus)>,
    /// Logged while the report was built.
    pub warnings: Vec<Warning>,
    /// Barman raised while building the report: nothing is deleted (exit 4).
    pub crash: Option<Crash>,
}

/// The keep status a DONE backup shows, if its annotation counts.
fn keep_status(keep: Keep<'_>) -> Option<RetentionStatus> {
    match keep {
        Keep::Target(t) if t.as_str() == "standalone" => Some(RetentionStatus::KeepStandalone),
        Keep::Target(t) if !t.as_str().is_empty() => Some(RetentionStatus::KeepFull),
        _ => None,
    }
}

/// Builds the report. `backups` is sorted by id; `keep` looks the annotation
/// up (it may crash: an annotation that is not UTF-8).
pub(crate) fn build<'a, Tz: TimeZone>(
    policy: &Policy,
    minimum_redundancy: u64,
    backups: &[(&'a str, &'a BackupInfo)],
    keep: &dyn Fn(&str) -> Result<Keep<'a>, Crash>,
    now: &DateTime<Tz>,
    server: &str,
) -> Report {
    let mut report = Report::default();
    let result = match policy {
        Policy::Redundancy(n) => redundancy(*n, minimum_redundancy, backups, keep, &mut report),
        Policy::RecoveryWindow(w) => {
            let point = point_of_recoverability(now, w);
            window(
                point,
                minimum_redundancy,
                backups,
                keep,
                server,
                &mut report,
            )
        }
    };
    if let Err(crash) = result {
        report.crash = Some(crash);
    }
    report
}

fn redundancy<'a>(
    value: u64,
    minimum: u64,
    backups: &[(&'a str, &'a BackupInfo)],
    keep: &dyn Fn(&str) -> Result<Keep<'a>, Crash>,
    report: &mut Report,
) -> Result<(), Crash> {
    let mut redundancy = value;
    if redundancy < minimum {
        report.warnings.push(Warning::RedundancyBelowMinimum {
            redundancy,
            minimum,
        });
        redundancy = minimum;
    }
    let mut i: u64 = 0;
    for (id, info) in backups.iter().rev() {
        if info.parent_backup_id.is_some() {
            continue;
        }
        let status = if info.status_is(&BackupStatus::Done) {
            let status = keep_status(keep(id)?).unwrap_or(if i < redundancy {
                RetentionStatus::Valid
            } else {
                RetentionStatus::Obsolete
            });
            i += 1;
            status
        } else {
            RetentionStatus::None
        };
        report.statuses.push((id.to_string(), status));
        children(info)?;
    }
    Ok(())
}

fn window<'a>(
    point: Result<DateTime<FixedOffset>, Crash>,
    minimum: u64,
    backups: &[(&'a str, &'a BackupInfo)],
    keep: &dyn Fn(&str) -> Result<Keep<'a>, Crash>,
    server: &str,
    report: &mut Report,
) -> Result<(), Crash> {
    let mut found = false;
    let mut valid: u64 = 0;
    for (id, info) in backups.iter().rev() {
        if info.parent_backup_id.is_some() {
            continue;
        }
        if !info.status_is(&BackupStatus::Done) {
            report
                .statuses
                .push((id.to_string(), RetentionStatus::None));
            children(info)?;
            continue;
        }
        let kept = keep_status(keep(id)?);
        // The log lines evaluate `_point_of_recoverability()` except the
        // keep ones past the window start, which print the bound method.
        let point = if !found || kept.is_none() {
            Some(point.clone()?)
        } else {
            None
        };
        let status = match (found, point) {
            (true, point) if valid < minimum => {
                valid += 1;
                kept.unwrap_or_else(|| {
                    if let Some(point) = point {
                        report.warnings.push(Warning::KeptForMinimumRedundancy {
                            backup_id: id.to_string(),
                            server: server.to_string(),
                            point: py_str(&point),
                            minimum,
                        });
                    }
                    RetentionStatus::PotentiallyObsolete
                })
            }
            (true, _) => kept.unwrap_or(RetentionStatus::Obsolete),
            (false, point) => {
                valid += 1;
                report
                    .statuses
                    .push((id.to_string(), kept.unwrap_or(RetentionStatus::Valid)));
                let end = info.end_time.ok_or_else(|| {
                    Crash::new(
                        "'<' not supported between instances of 'NoneType' and \
                         'datetime.datetime'",
                    )
                })?;
                if point.is_some_and(|point| end < point) {
                    found = true;
                }
                children(info)?;
                continue;
            }
        };
        report.statuses.push((id.to_string(), status));
        children(info)?;
    }
    Ok(())
}

/// `has_children` → `_propagate_retention_status_to_children`, which a
/// cloud `BackupInfo` cannot do.
fn children(info: &BackupInfo) -> Result<(), Crash> {
    match info.children_backup_ids {
        Some(_) => Err(Crash::new(
            "'BackupInfo' object has no attribute 'walk_backups_tree'",
        )),
        None => Ok(()),
    }
}

/// `datetime.now(tz.tzlocal()) - timedelta`: wall-clock arithmetic in the
/// zone of `now`, then the offset dateutil's `tzlocal` gives that wall time.
pub fn point_of_recoverability<Tz: TimeZone>(
    now: &DateTime<Tz>,
    window: &RecoveryWindow,
) -> Result<DateTime<FixedOffset>, Crash> {
    let out_of_range = || Crash::new("date value out of range");
    let days = i64::try_from(window.days()).map_err(|_| out_of_range())?;
    let delta = TimeDelta::try_days(days).ok_or_else(out_of_range)?;
    let wall = now
        .naive_local()
        .checked_sub_signed(delta)
        .filter(|w| w.year() >= 1)
        .ok_or_else(out_of_range)?;
    let tz = now.timezone();
    let offset = match tz.offset_from_local_datetime(&wall) {
        LocalResult::Single(o) => o.fix(),
        // Ambiguous (fold=0): dateutil says DST, the larger offset.
        LocalResult::Ambiguous(a, b) => {
            std::cmp::max_by_key(a.fix(), b.fix(), |o| o.local_minus_utc())
        }
        // In a gap dateutil reads the wall time as standard time and takes
        // the offset in force at that instant: the one after the gap.
        LocalResult::None => {
            let before = tz
                .offset_from_utc_datetime(&(wall - TimeDelta::days(1)))
                .fix();
            let instant = wall - TimeDelta::seconds(i64::from(before.local_minus_utc()));
            tz.offset_from_utc_datetime(&instant).fix()
        }
    };
    offset
        .from_local_datetime(&wall)
        .single()
        .ok_or_else(out_of_range)
}
