//! Scheduled work inside the sidecar: base backups on a CloudNativePG-style
//! 6-field cron expression (seconds first: the reference deployment's daily
//! 02:00 UTC is `0 0 2 * * *`), and retention every interval.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use tokio::sync::watch;

use super::metrics::Metrics;
use crate::backup::take::{BackupOptions, take_backup};
use crate::layout::ServerPrefix;
use crate::storage::Store;

/// A cron expression with a seconds field, as CloudNativePG writes them.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    if fields != 6 {
        return Err(format!(
            "invalid schedule '{expr}': expected 6 fields (seconds minutes hours day-of-month month day-of-week), got {fields}"
        ));
    }
    cron::Schedule::from_str(expr).map_err(|e| format!("invalid schedule '{expr}': {e}"))
}

/// Sleeps until `at` or shutdown; false on shutdown.
async fn sleep_until(at: chrono::DateTime<Utc>, shutdown: &mut watch::Receiver<bool>) -> bool {
    let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        _ = shutdown.changed() => false,
    }
}

/// Takes a backup at every tick of `schedule`.
pub async fn backups(
    schedule: cron::Schedule,
    store: Store,
    prefix: ServerPrefix,
    opts: BackupOptions,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let Some(next) = schedule.upcoming(Utc).next() else {
            return;
        };
        tracing::info!(at = %next, "next scheduled backup");
        if !sleep_until(next, &mut shutdown).await {
            return;
        }
        match take_backup(&store, &prefix, &opts).await {
            Ok(done) => {
                metrics.backups.inc();
                metrics.last_backup_timestamp.set(Utc::now().timestamp());
                tracing::info!(backup_id = %done.backup_id, "scheduled backup done");
            }
            Err(e) => {
                metrics.backup_failures.inc();
                tracing::error!(error = %e, "scheduled backup failed");
            }
        }
    }
}

/// A retention run: deletes what the policy makes obsolete; returns
/// (backups deleted, WAL objects deleted) or an error message.
pub type RetentionJob =
    Arc<dyn Fn() -> BoxFuture<'static, Result<(u64, u64), String>> + Send + Sync>;

/// Runs `job` every `interval` (the first run after one interval).
pub async fn retention(
    interval: Duration,
    job: RetentionJob,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        match job().await {
            Ok((backups, wal)) => {
                metrics.retention_runs.inc();
                metrics.retention_deleted_backups.inc_by(backups);
                metrics.retention_deleted_wal.inc_by(wal);
                tracing::info!(backups, wal, "retention run done");
            }
            Err(e) => {
                metrics.retention_failures.inc();
                tracing::error!(error = %e, "retention run failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    #[test]
    fn cnpg_daily_two_am_schedule() {
        let s = parse_cron("0 0 2 * * *").unwrap();
        let next = s.upcoming(Utc).next().unwrap();
        assert_eq!((next.hour(), next.minute(), next.second()), (2, 0, 0));
        assert!(
            parse_cron("0 2 * * *").is_err(),
            "5-field expressions are refused"
        );
        assert!(parse_cron("0 0 25 * * *").is_err());
    }
}
