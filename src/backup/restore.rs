//! Restoring a base backup into an empty directory, as `barman-cloud-restore`
//! does, for backups written by Barman and by barnacle: every part of every
//! archive (`data.tar…`, `data_0001.tar…`, `<OID>.tar…`) is streamed from the
//! store, decompressed by its key suffix and extracted; then the
//! `pg_tblspc/<OID>` links and `pg_wal` are made. Parts are extracted
//! concurrently (`jobs` at a time).
//!
//! Beyond Barman: with [`RecoverySettings`] the directory also gets a
//! `restore_command`, the recovery targets and `recovery.signal`, so it
//! starts and recovers as it is.
//!
//! Only DONE backups are restored (Barman would also try FAILED ones).

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::{RESTORE_BUFFER, extract_tar};
use crate::catalog::load::Catalog;
use crate::codec::{self, Compression};
use crate::layout::ServerPrefix;
use crate::layout::backup_info::{BackupInfo, BackupStatus, parse_py_datetime};
use crate::pg::Lsn;
use crate::storage::chunk_reader::ChunkReader;
use crate::storage::{StorageError, Store};

/// The recovery settings barnacle can write (its own extension).
#[derive(Debug, Clone, Default)]
pub struct RecoverySettings {
    /// The `restore_command` line, e.g. `restore s3://b/p pg %f %p`.
    pub restore_command: String,
}

/// How to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// An id, a name, a shortcut (`latest`…) or `auto`.
    pub backup_id: String,
    pub dest: PathBuf,
    /// `--tablespace NAME:LOCATION` overrides.
    pub tablespace_map: Vec<(String, PathBuf)>,
    pub target_time: Option<String>,
    pub target_lsn: Option<String>,
    /// A timeline number, `current` or `latest`.
    pub target_tli: Option<String>,
    pub jobs: usize,
    pub recovery: Option<RecoverySettings>,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The operation cannot go ahead (exit 1).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{key}: {detail}")]
    Archive { key: String, detail: String },
}

/// What was restored.
#[derive(Debug, Clone)]
pub struct Restored {
    pub backup_id: String,
    pub parts: usize,
    pub bytes: u64,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RestoreError + '_ {
    move |source| RestoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Picks the backup for `auto`: the newest DONE one ending before the time or
/// LSN target, or on the target timeline, or the newest.
pub fn choose_auto(catalog: &Catalog, opts: &RestoreOptions) -> Result<String, RestoreError> {
    let target_time = match &opts.target_time {
        Some(t) => Some(
            parse_py_datetime(t)
                .map_err(|e| RestoreError::Refused(format!("invalid --target-time '{t}': {e}")))?,
        ),
        None => None,
    };
    let target_lsn: Option<Lsn> = match &opts.target_lsn {
        Some(l) => Some(
            l.parse()
                .map_err(|e| RestoreError::Refused(format!("invalid --target-lsn: {e}")))?,
        ),
        None => None,
    };
    let target_tli: Option<i64> = opts.target_tli.as_deref().and_then(|t| t.parse().ok());
    let candidate = catalog
        .backups
        .iter()
        .rev()
        .filter(|(_, info)| info.status == Some(BackupStatus::Done))
        .find(|(_, info)| {
            if let Some(t) = target_time {
                return info.end_time.is_some_and(|end| end <= t);
            }
            if let Some(l) = target_lsn {
                return info
                    .end_lsn()
                    .and_then(Result::ok)
                    .is_some_and(|end| end <= l);
            }
            if let Some(tli) = target_tli {
                return info.timeline == Some(tli);
            }
            true
        });
    candidate.map(|(id, _)| id.clone()).ok_or_else(|| {
        RestoreError::Refused("Cannot find any candidate backup for recovery".into())
    })
}

/// Fails unless `dir` is missing or an empty directory; then creates it.
fn prepare_empty_dir(dir: &Path) -> Result<(), RestoreError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(RestoreError::Refused(format!(
                    "Destination {} already exists and it is not empty",
                    dir.display()
                )));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        Err(e) => return Err(io_err(dir)(e)),
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err(dir))
}

/// The compression a base-backup key's ending denotes; `None` inside for plain `.tar`.
fn tar_compression(name: &str) -> Option<Option<Compression>> {
    if name.ends_with(".tar") {
        return Some(None);
    }
    [
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Snappy,
        Compression::Lz4,
    ]
    .into_iter()
    .find(|c| name.ends_with(&format!(".tar{}", c.suffix())))
    .map(Some)
}

/// The parts of archive `base` (`data`, or an OID) among `keys`, in order.
pub fn archive_parts(keys: &[String], dir: &str, base: &str) -> Vec<String> {
    let mut main = Vec::new();
    let mut extra = Vec::new();
    for key in keys {
        let Some(name) = key.strip_prefix(dir) else {
            continue;
        };
        if tar_compression(name).is_none() {
            continue;
        }
        if name.starts_with(&format!("{base}.tar")) {
            main.push(key.clone());
        } else if name.starts_with(&format!("{base}_")) {
            extra.push(key.clone());
        }
    }
    main.extend(extra);
    main
}

/// Downloads one part and extracts it into `dest`.
async fn extract_part(
    store: &Store,
    key: &str,
    dest: &Path,
    bar: &indicatif::ProgressBar,
) -> Result<u64, RestoreError> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let compression = tar_compression(name).flatten();
    let progress = bar.clone();
    let stream = (store.get_stream(key).await?.chunks)
        .inspect(move |chunk| {
            if let Ok(data) = chunk {
                progress.inc(data.len() as u64);
            }
        })
        .boxed();
    // Copied out in 64 KiB pieces (see `ChunkReader::spawn`): before, each
    // waiting chunk kept one of hyper's reads of up to 400 KiB alive; with
    // eight waiting they were 4.6 of the 9.8 MB at the peak (valgrind
    // --tool=massif, 2026-12-04; docs/benchmarks.md, "Base restore memory").
    let reader = ChunkReader::spawn(stream);
    let (key_owned, dest) = (key.to_string(), dest.to_path_buf());
    // Decompression and extraction run on two threads, handing over
    // `backup::RESTORE_BUFFER` buffers: inflating and writing the files each
    // take about half the time.
    // The extractor sends each buffer back once read: a handful serve the
    // whole part, instead of a fresh zeroed buffer per chunk on the
    // inflating thread, the busier of the two.
    let (plain_tx, plain_rx) = mpsc::channel::<Result<Bytes, StorageError>>(2);
    let (spare_tx, spare_rx) = std::sync::mpsc::channel::<Bytes>();
    let decompressor = tokio::task::spawn_blocking(move || -> io::Result<()> {
        let mut decoded = codec::decoder(compression, reader)?;
        loop {
            let mut buf = (spare_rx.try_iter())
                .find_map(|spare| spare.try_into_mut().ok())
                .unwrap_or_default();
            buf.resize(RESTORE_BUFFER, 0);
            let filled = codec::fill(&mut decoded, &mut buf)?;
            if filled == 0 {
                return Ok(());
            }
            buf.truncate(filled);
            if plain_tx.blocking_send(Ok(buf.freeze())).is_err() {
                return Ok(());
            }
        }
    });
    let extractor = tokio::task::spawn_blocking(move || {
        extract_tar(ChunkReader::new(plain_rx).recycling(spare_tx), &dest)
    });
    let decoded = decompressor.await.map_err(|e| RestoreError::Archive {
        key: key_owned.clone(),
        detail: e.to_string(),
    })?;
    if let Err(e) = decoded {
        return Err(RestoreError::Archive {
            key: key_owned,
            detail: format!("cannot decompress: {e}"),
        });
    }
    let stats = extractor
        .await
        .map_err(|e| RestoreError::Archive {
            key: key_owned.clone(),
            detail: e.to_string(),
        })?
        .map_err(|e| RestoreError::Archive {
            key: key_owned,
            detail: e.to_string(),
        })?;
    Ok(stats.bytes)
}

/// Appends the recovery settings and creates `recovery.signal`.
fn write_recovery(
    dest: &Path,
    settings: &RecoverySettings,
    opts: &RestoreOptions,
) -> Result<(), RestoreError> {
    let quote = |v: &str| format!("'{}'", v.replace('\'', "''"));
    let mut text = String::from("\n# Added by barnacle restore\n");
    text.push_str(&format!(
        "restore_command = {}\n",
        quote(&settings.restore_command)
    ));
    if let Some(t) = &opts.target_time {
        text.push_str(&format!("recovery_target_time = {}\n", quote(t)));
    }
    if let Some(l) = &opts.target_lsn {
        text.push_str(&format!("recovery_target_lsn = {}\n", quote(l)));
    }
    if let Some(t) = &opts.target_tli {
        text.push_str(&format!("recovery_target_timeline = {}\n", quote(t)));
    }
    if opts.target_time.is_some() || opts.target_lsn.is_some() {
        text.push_str("recovery_target_action = 'promote'\n");
    }
    let auto_conf = dest.join("postgresql.auto.conf");
    let mut current = std::fs::read_to_string(&auto_conf).unwrap_or_default();
    current.push_str(&text);
    std::fs::write(&auto_conf, current).map_err(io_err(&auto_conf))?;
    let signal = dest.join("recovery.signal");
    std::fs::write(&signal, b"").map_err(io_err(&signal))
}

/// Restores a backup of `prefix` as `opts` says.
pub async fn restore_backup(
    store: &Store,
    prefix: &ServerPrefix,
    catalog: &Catalog,
    backup_id: &str,
    opts: &RestoreOptions,
) -> Result<Restored, RestoreError> {
    let info: &BackupInfo = catalog
        .get(backup_id)
        .ok_or_else(|| RestoreError::Refused(format!("Backup {backup_id} does not exist")))?;
    if info.status != Some(BackupStatus::Done) {
        let status = info
            .status
            .as_ref()
            .map_or("None".to_string(), ToString::to_string);
        return Err(RestoreError::Refused(format!(
            "Backup {backup_id} has status {status}: only DONE backups can be restored"
        )));
    }
    prepare_empty_dir(&opts.dest)?;
    let dir = prefix.backup_dir(backup_id);
    let listing = store.list(&dir).await?;
    let total: u64 = listing.iter().map(|o| o.size).sum();
    let keys: Vec<String> = listing.into_iter().map(|o| o.key).collect();

    // Where each archive goes.
    let mut jobs: Vec<(String, PathBuf)> = Vec::new();
    let mut links: Vec<(i64, PathBuf)> = Vec::new();
    for ts in info.tablespaces.iter().flatten() {
        let location = match opts
            .tablespace_map
            .iter()
            .find(|(name, _)| *name == ts.name)
        {
            Some((_, loc)) => std::fs::canonicalize(loc).unwrap_or_else(|_| loc.clone()),
            None => PathBuf::from(&ts.location),
        };
        prepare_empty_dir(&location)?;
        let parts = archive_parts(&keys, &dir, &ts.oid.to_string());
        jobs.extend(parts.into_iter().map(|k| (k, location.clone())));
        links.push((ts.oid, location));
    }
    let data_parts = archive_parts(&keys, &dir, "data");
    if data_parts.is_empty() {
        return Err(RestoreError::Refused(format!(
            "Missing file data.tar* in backup {backup_id}"
        )));
    }
    jobs.extend(data_parts.into_iter().map(|k| (k, opts.dest.clone())));

    let parts = jobs.len();
    let bar = crate::progress::bytes_bar(total, "restore");
    let results: Vec<Result<u64, RestoreError>> = futures::stream::iter(jobs)
        .map(|(key, dest)| {
            let bar = bar.clone();
            async move { extract_part(store, &key, &dest, &bar).await }
        })
        .buffer_unordered(opts.jobs.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    let mut bytes = 0;
    for r in results {
        bytes += r?;
    }

    let tblspc = opts.dest.join("pg_tblspc");
    if !links.is_empty() {
        std::fs::create_dir_all(&tblspc).map_err(io_err(&tblspc))?;
    }
    for (oid, location) in links {
        let link = tblspc.join(oid.to_string());
        std::os::unix::fs::symlink(&location, &link).map_err(io_err(&link))?;
    }
    let wal_dir = opts.dest.join(if info.version.unwrap_or(0) >= 100000 {
        "pg_wal"
    } else {
        "pg_xlog"
    });
    std::fs::create_dir_all(&wal_dir).map_err(io_err(&wal_dir))?;
    if let Some(settings) = &opts.recovery {
        write_recovery(&opts.dest, settings, opts)?;
    }
    Ok(Restored {
        backup_id: backup_id.to_string(),
        parts,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_found_by_barman_endings_in_order() {
        let dir = "p/base/20261127T214906/";
        let keys: Vec<String> = [
            "backup.info",
            "data.tar.gz",
            "data_0002.tar.gz",
            "data_0001.tar.gz",
            "16384.tar.gz",
            "16384_0001.tar.gz",
            "data.tar.zst",
            "annotations/keep",
        ]
        .iter()
        .map(|k| format!("{dir}{k}"))
        .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        let names = |v: Vec<String>| {
            v.into_iter()
                .map(|k| k[dir.len()..].to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(archive_parts(&sorted, dir, "data")),
            ["data.tar.gz", "data_0001.tar.gz", "data_0002.tar.gz"]
        );
        assert_eq!(
            names(archive_parts(&sorted, dir, "16384")),
            ["16384.tar.gz", "16384_0001.tar.gz"]
        );
    }

    #[test]
    fn only_barman_base_endings_are_tars() {
        assert_eq!(tar_compression("data.tar"), Some(None));
        assert_eq!(
            tar_compression("data.tar.lz4"),
            Some(Some(Compression::Lz4))
        );
        assert_eq!(
            tar_compression("data.tar.snappy"),
            Some(Some(Compression::Snappy))
        );
        assert_eq!(tar_compression("data.tar.zst"), None);
        assert_eq!(tar_compression("backup.info"), None);
    }
}
