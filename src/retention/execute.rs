//! Carrying out a retention [`Plan`] against the store, in Barman's order:
//! per backup, its archives (in batches of at most `batch_size` keys per
//! DeleteObjects), then `backup.info` last — so an interrupted delete leaves a
//! backup that a re-run finds and finishes — then its WAL: every object under
//! each hash-directory prefix the rule allows, then the single WAL keys.
//! Deleting what is already gone is not an error, which makes re-runs and
//! concurrent runs converge on the same final state.

use std::collections::HashMap;

use super::outcome::Plan;
use crate::storage::{StorageError, Store};

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// Deleting a backup's files or its `backup.info` failed: Barman's "Could not delete
    /// backup", exit 1 (the backup stays listed; a re-run finishes it).
    #[error("Could not delete backup {backup_id}: {source}")]
    Backup {
        backup_id: String,
        #[source]
        source: StorageError,
    },
    /// Listing or deleting WAL failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a run removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub backups: u64,
    pub wal_objects: u64,
    pub bytes: u64,
}

/// Executes `plan` (made with `Mode::Execute`). `sizes` gives the size of the
/// objects listed before planning, for the bytes-freed figure.
pub async fn execute(
    store: &Store,
    plan: &Plan,
    batch_size: usize,
    sizes: &HashMap<String, u64>,
) -> Result<Removed, ExecuteError> {
    let mut removed = Removed::default();
    let size_of = |keys: &[String]| keys.iter().filter_map(|k| sizes.get(k)).sum::<u64>();
    for deletion in &plan.deletions {
        let backup_failed = |source| ExecuteError::Backup {
            backup_id: deletion.backup_id.clone(),
            source,
        };
        if let Some(label) = &deletion.snapshot_backup_label {
            store
                .delete_many(std::slice::from_ref(label), batch_size)
                .await
                .map_err(backup_failed)?;
        }
        store
            .delete_many(&deletion.files, batch_size)
            .await
            .map_err(backup_failed)?;
        store
            .delete_many(std::slice::from_ref(&deletion.backup_info), batch_size)
            .await
            .map_err(backup_failed)?;
        removed.backups += 1;
        removed.bytes +=
            size_of(&deletion.files) + size_of(std::slice::from_ref(&deletion.backup_info));
        tracing::info!(backup_id = %deletion.backup_id, "deleted backup");
        for prefix in &deletion.wal_prefixes {
            let under: Vec<String> = store
                .list(prefix)
                .await?
                .into_iter()
                .map(|o| o.key)
                .collect();
            store.delete_many(&under, batch_size).await?;
            removed.wal_objects += under.len() as u64;
            removed.bytes += size_of(&under);
        }
        store.delete_many(&deletion.wal_keys, batch_size).await?;
        removed.wal_objects += deletion.wal_keys.len() as u64;
        removed.bytes += size_of(&deletion.wal_keys);
    }
    Ok(removed)
}
