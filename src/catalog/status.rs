//! The recoverability summary CloudNativePG puts in a Cluster's status
//! (`firstRecoverabilityPoint`, `lastSuccessfulBackup`).
//!
//! CNPG (`pkg/management/barman/catalog`) reads `barman-cloud-backup-list
//! --format json`, sorts the backups chronologically by begin time, and takes
//! as "done" the backups that have both a begin and an end time. Its first
//! recoverability point is the **end** time of the oldest such backup: a
//! base backup is only consistent from its end, so no earlier target can be
//! recovered. Its last successful backup is the end time of the newest one.
//! We follow that, but also require `status=DONE`: a FAILED backup that got
//! past `pg_backup_stop` has both times and is not recoverable.

use chrono::{DateTime, FixedOffset};

use crate::layout::backup_info::{BackupInfo, BackupStatus};

/// What a CNPG plugin reports for one server's catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoverabilitySummary {
    /// End time of the oldest DONE backup.
    pub first_recoverability_point: Option<DateTime<FixedOffset>>,
    /// End time of the newest DONE backup.
    pub last_successful_backup: Option<DateTime<FixedOffset>>,
    /// Id (key prefix) of the newest DONE backup.
    pub last_successful_backup_id: Option<String>,
    /// How many backups are DONE (with both times set).
    pub done_count: usize,
}

/// Summarises a catalogue given as (id from the key prefix, `backup.info`).
/// Backups are ordered by begin time, then id.
pub fn summarize<S: AsRef<str>>(catalog: &[(S, BackupInfo)]) -> RecoverabilitySummary {
    let mut done: Vec<(DateTime<FixedOffset>, DateTime<FixedOffset>, &str)> = catalog
        .iter()
        .filter(|(_, info)| info.status_is(&BackupStatus::Done))
        .filter_map(|(id, info)| Some((info.begin_time?, info.end_time?, id.as_ref())))
        .collect();
    done.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.cmp(b.2)));
    RecoverabilitySummary {
        first_recoverability_point: done.first().map(|d| d.1),
        last_successful_backup: done.last().map(|d| d.1),
        last_successful_backup_id: done.last().map(|d| d.2.to_string()),
        done_count: done.len(),
    }
}
