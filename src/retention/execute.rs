//! Carrying out a retention [`Plan`] against the store. Per backup: its
//! archives (in batches of at most `batch_size` keys per DeleteObjects), then
//! the WAL its pass may delete (every object under each hash-directory prefix
//! the rule allows, several prefixes at once, each listed when it is emptied
//! as Barman does, and the single WAL keys, less those this run already
//! deleted with their prefix), then `backup.info` last.
//!
//! Barman deletes `backup.info` before the WAL. A run killed between the two
//! leaves WAL that no later run removes: the backup is gone from the
//! catalogue, so its pass is never planned again, and when it was the last
//! backup deleted (or the next one is on a newer timeline) no other pass
//! reaches that WAL. Here the backup stays listed until its WAL is gone, so a
//! re-run plans the same pass and finishes it: an interrupted delete, re-run,
//! leaves exactly what an uninterrupted one leaves (`retention_kill` tests
//! it). What a kill can leave for a moment is a listed, obsolete backup whose
//! archives and WAL are partly gone; Barman's order leaves such a backup
//! without its archives too, and either way the next run deletes it.
//! Deleting what is already gone is not an error, which makes re-runs and
//! concurrent runs converge on the same final state.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt};

use super::outcome::Plan;
use crate::storage::{StorageError, Store};

/// Hash directories of one backup's WAL listed and emptied at the same time.
const PREFIXES_IN_FLIGHT: usize = 8;

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
    // WAL keys this run has deleted, each counted once.
    let mut wal_gone: HashSet<String> = HashSet::new();
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
        // Barman's later passes name again WALs an earlier pass deleted with
        // their whole prefix (see `super::wal`); deleting them again would
        // change nothing but double the store's work, so they are skipped.
        let pending: Vec<String> = (deletion.wal_keys.iter())
            .filter(|k| !wal_gone.contains(*k))
            .cloned()
            .collect();
        // Each prefix listed and emptied on its own, several at once, and the
        // single keys (never under this pass's prefixes) at the same time:
        // nothing of this pass is needed any more, so the order is free.
        let prefixes: Vec<_> = (deletion.wal_prefixes.iter())
            .map(|prefix| empty_prefix(store, prefix, batch_size))
            .collect();
        let (emptied, ()) = futures::try_join!(
            futures::stream::iter(prefixes)
                .buffer_unordered(PREFIXES_IN_FLIGHT)
                .try_collect::<Vec<Vec<String>>>(),
            store.delete_many(&pending, batch_size),
        )?;
        // Listed just now: they were there.
        for key in emptied.into_iter().flatten() {
            let size = sizes.get(&key).copied().unwrap_or(0);
            if wal_gone.insert(key) {
                removed.wal_objects += 1;
                removed.bytes += size;
            }
        }
        // Counted if listed before planning (a key deleted by name was).
        for key in pending {
            let size = sizes.get(&key).copied();
            if let Some(size) = size
                && wal_gone.insert(key)
            {
                removed.wal_objects += 1;
                removed.bytes += size;
            }
        }
        store
            .delete_many(std::slice::from_ref(&deletion.backup_info), batch_size)
            .await
            .map_err(backup_failed)?;
        removed.backups += 1;
        removed.bytes +=
            size_of(&deletion.files) + size_of(std::slice::from_ref(&deletion.backup_info));
        tracing::info!(backup_id = %deletion.backup_id, "deleted backup");
    }
    Ok(removed)
}

/// Deletes every object under `prefix`; returns their keys.
async fn empty_prefix(
    store: &Store,
    prefix: &str,
    batch_size: usize,
) -> Result<Vec<String>, StorageError> {
    let under: Vec<String> = (store.list(prefix).await?.into_iter())
        .map(|o| o.key)
        .collect();
    store.delete_many(&under, batch_size).await?;
    Ok(under)
}
