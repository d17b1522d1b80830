//! `list`, `show`, `keep` and `check-wal-archive`: the catalogue commands,
//! printing exactly what Barman's tools print.

use super::{Report, connectivity_test, open};
use crate::catalog::{self, KeepTarget, load::load};
use crate::cli::{CheckWalArchiveArgs, KeepArgs, ListArgs, ShowArgs, StatusArgs};
use crate::codec::Compression;
use crate::error::Error;
use crate::layout::backup_id::resolve;
use crate::layout::backup_info::BackupStatus;
use crate::layout::{ServerPrefix, basename};
use crate::pg::WalName;
use crate::storage::{BucketState, PutAttrs, Store};

async fn open_catalog(
    common: &crate::cli::CommonArgs,
    url: &str,
    server: &str,
) -> Result<(Store, ServerPrefix), Error> {
    let (store, config) = open(common, url).await?;
    Ok((store, ServerPrefix::new(config.url.key_path(), server)))
}

fn render_err(tool: &str, e: catalog::RenderError) -> Error {
    Error::Internal(format!("Barman cloud backup {tool} exception: {e}"))
}

pub(super) async fn list(args: &ListArgs) -> Result<Report, Error> {
    let (store, prefix) = open_catalog(&args.common, &args.source_url, &args.server_name).await?;
    if args.common.test {
        return connectivity_test(&store).await;
    }
    let catalog = load(&store, &prefix).await?;
    let entries = catalog.entries();
    let text = if args.format == "console" {
        catalog::render_list_console(&entries)
    } else {
        catalog::render_list_json(&entries)
    };
    Ok(Report::print(text.map_err(|e| render_err("list", e))?))
}

/// Resolves `identifier` to a backup id of the catalogue (Barman's rules).
fn resolve_id(
    catalog: &catalog::load::Catalog,
    identifier: &str,
    server: &str,
) -> Result<String, Error> {
    resolve(identifier, server, &catalog.backups)
        .map(|r| r.backup_id)
        .map_err(|e| Error::Internal(e.to_string()))
}

pub(super) async fn show(args: &ShowArgs) -> Result<Report, Error> {
    let (store, prefix) = open_catalog(&args.common, &args.source_url, &args.server_name).await?;
    if args.common.test {
        return connectivity_test(&store).await;
    }
    let catalog = load(&store, &prefix).await?;
    let id = resolve_id(&catalog, &args.backup_id, &args.server_name)?;
    let Some(info) = catalog.get(&id) else {
        tracing::error!("Backup {id} for server {} does not exist", args.server_name);
        return Ok(Report::code(1));
    };
    let text = if args.format == "console" {
        catalog::render_show_console(&id, info)
    } else {
        catalog::render_show_json(&id, info)
    };
    Ok(Report::print(text.map_err(|e| render_err("show", e))?))
}

pub(super) async fn keep(args: &KeepArgs) -> Result<Report, Error> {
    let (store, prefix) = open_catalog(&args.common, &args.source_url, &args.server_name).await?;
    if args.common.test {
        return connectivity_test(&store).await;
    }
    let catalog = load(&store, &prefix).await?;
    let id = resolve_id(&catalog, &args.backup_id, &args.server_name)?;
    let key = prefix.keep_key(&id);
    if args.release {
        store.delete_many(&[key], 1).await?;
        return Ok(Report::code(0));
    }
    if args.status {
        return Ok(Report::print(catalog::render_keep_status(
            catalog.keep.get(&id),
        )));
    }
    let target = match args.target.as_deref() {
        Some("standalone") => KeepTarget::Standalone,
        _ => KeepTarget::Full,
    };
    // Barman crashes on a backup that does not exist (`'NoneType' object has no attribute
    // 'status'`, exit 4): the same exit code, with a sentence.
    let Some(info) = catalog.get(&id) else {
        tracing::error!("Backup {id} for server {} does not exist", args.server_name);
        return Ok(Report::code(4));
    };
    let status = info.status.clone();
    if status != Some(BackupStatus::Done) {
        let shown = status.map_or("None".to_string(), |s| s.to_string());
        tracing::error!(
            "Cannot add keep to backup {id} because it has status {shown}. Only backups with status DONE can be kept."
        );
        return Ok(Report::code(1));
    }
    let body = bytes::Bytes::copy_from_slice(target.annotation_body());
    store.put(&key, body, &PutAttrs::default()).await?;
    Ok(Report::code(0))
}

/// The WAL names in the archive (one compression suffix allowed), as
/// Barman's `get_wal_paths` collects them.
fn wal_names(keys: &[String]) -> Vec<String> {
    keys.iter()
        .filter_map(|key| {
            let name = basename(key);
            if WalName::is_valid(name) {
                return Some(name.to_string());
            }
            let (compression, stem) = Compression::from_key(name);
            (compression.is_some() && WalName::is_valid(stem)).then(|| stem.to_string())
        })
        .collect()
}

pub(super) async fn check_wal_archive(args: &CheckWalArchiveArgs) -> Result<Report, Error> {
    let (store, prefix) =
        open_catalog(&args.common, &args.destination_url, &args.server_name).await?;
    match store.check_bucket().await {
        Err(e) if e.is_unreachable() => {
            tracing::error!("{e}");
            return Ok(Report::code(2));
        }
        Err(e) => return Err(e.into()),
        Ok(_) if args.common.test => return Ok(Report::code(0)),
        // Barman creates a missing bucket here (and only here).
        Ok(BucketState::Missing) => {
            tracing::info!("Bucket {} does not exist: creating it", store.describe());
            store.create_bucket().await?;
        }
        Ok(BucketState::Exists) => {}
    }
    let keys: Vec<String> = store
        .list(&prefix.wals_root())
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    let mut names = wal_names(&keys);
    names.sort();
    names.dedup();
    let failure = match args.timeline {
        None if !names.is_empty() => Some("Expected empty archive".to_string()),
        None => None,
        Some(timeline) => {
            let newer = names
                .iter()
                .filter_map(|n| WalName::parse(n).ok())
                .filter(|w| w.timeline() >= timeline)
                .count();
            (newer > 0).then(|| {
                format!(
                    "Found {newer} file{} in WAL archive equal to or newer than timeline {timeline}",
                    if newer > 1 { "s" } else { "" }
                )
            })
        }
    };
    match failure {
        Some(msg) => {
            tracing::error!(
                "WAL archive check failed for server {}: {msg}",
                args.server_name
            );
            Ok(Report::code(1))
        }
        None => Ok(Report::code(0)),
    }
}

/// RFC 3339 in UTC, as Kubernetes shows times.
fn rfc3339(t: Option<chrono::DateTime<chrono::FixedOffset>>) -> Option<String> {
    t.map(|t| {
        t.with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    })
}

/// The newest WAL name in the archive (by name: timeline, then position).
fn newest_wal(keys: &[String]) -> Option<String> {
    wal_names(keys).into_iter().filter(|n| n.len() == 24).max()
}

pub(super) async fn status(args: &StatusArgs) -> Result<Report, Error> {
    let (store, prefix) = open_catalog(&args.common, &args.source_url, &args.server_name).await?;
    if args.common.test {
        return connectivity_test(&store).await;
    }
    let catalog = load(&store, &prefix).await?;
    let summary = catalog::summarize(&catalog.backups);
    let count = |status: BackupStatus| {
        catalog
            .backups
            .iter()
            .filter(|(_, i)| i.status == Some(status.clone()))
            .count()
    };
    let (done, failed, started) = (
        count(BackupStatus::Done),
        count(BackupStatus::Failed),
        count(BackupStatus::Started),
    );
    let wal_keys: Vec<String> = store
        .list(&prefix.wals_root())
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    let last_wal = newest_wal(&wal_keys);
    let first = rfc3339(summary.first_recoverability_point);
    let last = rfc3339(summary.last_successful_backup);
    let text = if args.format == "json" {
        let q = |v: &Option<String>| {
            v.as_ref()
                .map_or("null".to_string(), |s| format!("\"{s}\""))
        };
        format!(
            "{{\"firstRecoverabilityPoint\": {}, \"lastSuccessfulBackup\": {}, \"lastSuccessfulBackupId\": {}, \
             \"backups\": {{\"done\": {done}, \"failed\": {failed}, \"started\": {started}}}, \
             \"lastArchivedWal\": {}, \"walObjects\": {}}}\n",
            q(&first),
            q(&last),
            q(&summary.last_successful_backup_id),
            q(&last_wal),
            wal_keys.len()
        )
    } else {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        format!(
            "Server {}:\n  First recoverability point : {}\n  Last successful backup     : {} ({})\n  \
             Backups                    : {done} done, {failed} failed, {started} in progress\n  \
             Last archived WAL          : {}\n  WAL objects                : {}\n",
            args.server_name,
            show(&first),
            show(&last),
            show(&summary.last_successful_backup_id),
            show(&last_wal),
            wal_keys.len()
        )
    };
    Ok(Report::print(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_names_allow_one_compression_suffix() {
        let keys: Vec<String> = [
            "p/wals/0000000100000000/000000010000000000000001.gz",
            "p/wals/0000000100000000/000000010000000000000002",
            "p/wals/00000002.history.bz2",
            "p/wals/0000000100000000/junk.txt",
            "p/wals/0000000100000000/000000010000000000000003.gz.gz",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            wal_names(&keys),
            [
                "000000010000000000000001",
                "000000010000000000000002",
                "00000002.history"
            ]
        );
    }
}
