//! Reading the backup catalogue from the store, as Barman's
//! `CloudBackupCatalog` does: every `base/<ID>/` prefix holding a
//! `backup.info` is a backup (the id is the prefix, whatever its form), the
//! keep annotation lives at `base/<ID>/annotations/keep`.
//!
//! One recursive listing of `base/` finds every `backup.info` and annotation;
//! the files are then fetched concurrently. A `backup.info` with an unknown
//! field stops everything (Barman's "Unsupported field" kills the command);
//! any other unreadable one is skipped with a warning, as Barman does.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};

use super::KeepTarget;
use crate::layout::ServerPrefix;
use crate::layout::backup_info::{BackupInfo, BackupInfoError};
use crate::storage::{StorageError, Store};

/// Why the catalogue could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{key}: {source}")]
    Unreadable {
        key: String,
        #[source]
        source: BackupInfoError,
    },
}

/// The backups of one server, sorted by id, with their keep annotations.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub backups: Vec<(String, BackupInfo)>,
    pub keep: HashMap<String, KeepTarget>,
    /// Every key under `base/`, for the commands that need the files.
    pub keys: Vec<String>,
}

impl Catalog {
    pub fn entries(&self) -> Vec<super::Entry<'_>> {
        super::entries(&self.backups, |id| self.keep.get(id))
    }

    pub fn get(&self, backup_id: &str) -> Option<&BackupInfo> {
        self.backups
            .iter()
            .find(|(id, _)| id == backup_id)
            .map(|(_, info)| info)
    }
}

/// Reads the catalogue of the server at `prefix`.
pub async fn load(store: &Store, prefix: &ServerPrefix) -> Result<Catalog, CatalogError> {
    let base = prefix.base_root();
    let keys: Vec<String> = store
        .list(&base)
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    let ids: Vec<String> = keys
        .iter()
        .filter_map(|k| k.strip_prefix(&base)?.strip_suffix("/backup.info"))
        .filter(|id| !id.contains('/'))
        .map(str::to_string)
        .collect();
    let keep_ids: Vec<String> = keys
        .iter()
        .filter_map(|k| k.strip_prefix(&base)?.strip_suffix("/annotations/keep"))
        .filter(|id| !id.contains('/'))
        .map(str::to_string)
        .collect();

    let infos: Vec<(String, Result<BackupInfo, BackupInfoError>)> = futures::stream::iter(ids)
        .map(|id| async move {
            let object = store.get(&prefix.backup_info_key(&id)).await?;
            Ok::<_, StorageError>((id, BackupInfo::parse_bytes(&object.body)))
        })
        .buffered(8)
        .try_collect()
        .await?;
    let mut backups = Vec::new();
    for (id, info) in infos {
        match info {
            Ok(info) => backups.push((id, info)),
            Err(e) if e.is_fatal() => {
                return Err(CatalogError::Unreadable {
                    key: prefix.backup_info_key(&id),
                    source: e,
                });
            }
            Err(e) => tracing::warn!(backup = %id, error = %e, "skipping unreadable backup.info"),
        }
    }
    backups.sort_by(|a, b| a.0.cmp(&b.0));

    let keeps: Vec<(String, Vec<u8>)> = futures::stream::iter(keep_ids)
        .map(|id| async move {
            let object = store.get(&prefix.keep_key(&id)).await?;
            Ok::<_, StorageError>((id, object.body.to_vec()))
        })
        .buffered(8)
        .try_collect()
        .await?;
    let mut keep = HashMap::new();
    for (id, body) in keeps {
        match KeepTarget::from_annotation(&body) {
            Ok(target) => {
                keep.insert(id, target);
            }
            Err(e) => tracing::warn!(backup = %id, error = %e, "unreadable keep annotation"),
        }
    }
    Ok(Catalog {
        backups,
        keep,
        keys,
    })
}
