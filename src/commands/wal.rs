//! `wal-push` and `wal-restore`.

use std::path::PathBuf;

use std::path::Path;

use futures::future::join_all;

use super::{Report, connectivity_test};
use crate::archive::pushed::{FileIdentity, PushedRecord};
use crate::archive::{self, RestoreOutcome};
use crate::cli::{WalArchiveArgs, WalRestoreArgs};
use crate::error::Error;
use crate::layout::ServerPrefix;
use crate::pg::WalName;
use crate::storage::Store;

/// The WAL path: the argument, or `BARMAN_FILE` in Barman hook mode.
/// Problems here exit 1, as Barman's uncaught exception does.
fn wal_path(args: &WalArchiveArgs) -> Result<PathBuf, String> {
    let hook = std::env::var("BARMAN_HOOK").ok();
    let phase = std::env::var("BARMAN_PHASE").ok();
    if let (Some(hook), Some(phase)) = (hook, phase) {
        if matches!(hook.as_str(), "archive_script" | "archive_retry_script") && phase == "pre" {
            return std::env::var_os("BARMAN_FILE")
                .map(PathBuf::from)
                .ok_or_else(|| "Expected environment variable BARMAN_FILE not set".to_string());
        }
        return Err(format!(
            "barman-cloud-wal-archive called as unsupported hook script: {phase}_{hook}"
        ));
    }
    args.wal_path
        .clone()
        .ok_or_else(|| "the following arguments are required: wal_path".to_string())
}

/// What a pushed-file marker must name: the archive and the server.
fn destination(args: &WalArchiveArgs) -> String {
    format!("{} {}", args.destination_url, args.server_name)
}

fn pushed_record(args: &WalArchiveArgs, wal_path: &Path) -> PushedRecord {
    match &args.pushed_dir {
        Some(dir) => PushedRecord::new(dir),
        None => PushedRecord::beside(wal_path),
    }
}

/// The fast path of `archive_command` beside a sidecar: the very file was
/// already pushed to this destination, so answer at once, without the store.
/// Runs before anything else is set up (no runtime, no client).
pub fn already_pushed(args: &WalArchiveArgs) -> bool {
    let Some(path) = args.wal_path.as_deref() else {
        return false;
    };
    let Ok(wal) = WalName::parse(&path.to_string_lossy()) else {
        return false;
    };
    let record = pushed_record(args, path);
    // The marker stays: the sidecar (or the next look-ahead walpush) removes
    // markers whose WAL file PostgreSQL has since removed or recycled.
    let pushed = || {
        FileIdentity::of(path)
            .is_ok_and(|id| record.is_pushed(wal.as_str(), &id, &destination(args)))
    };
    // A sidecar pushing this very file right now: wait for it rather than push
    // it a second time (bounded; a failed or stuck push leaves it to us).
    pushed() || (record.wait_for_claim(wal.as_str(), CLAIM_WAIT) && pushed())
}

/// How long `walpush` waits for a sidecar's push of the same file.
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Up to `limit` ready WAL files of `pg_wal` other than `except`, in the
/// order PostgreSQL's archiver takes them.
fn ready_files(pg_wal: &Path, except: &str, limit: usize) -> Vec<PathBuf> {
    if limit == 0 {
        return Vec::new(); // no look-ahead: not even a directory scan per segment
    }
    archive::ready_files(&pg_wal.join("archive_status"))
        .into_iter()
        .filter(|n| n != except)
        .take(limit)
        .map(|n| pg_wal.join(n))
        .collect()
}

pub(super) async fn push(args: &WalArchiveArgs, default_gzip: bool) -> Result<Report, Error> {
    let path = match wal_path(args) {
        Ok(p) => p,
        Err(msg) => {
            tracing::error!("{msg}");
            return Ok(Report::code(1));
        }
    };
    WalName::parse(&path.to_string_lossy())?;
    let config = args
        .common
        .store_config(&args.destination_url, args.encryption()?)?;
    let prefix = ServerPrefix::new(config.url.key_path(), &args.server_name);
    let store = Store::open(&config).await?;
    if args.common.test {
        return connectivity_test(&store).await;
    }
    let mut opts = args.push_options(default_gzip);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pg_wal = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let ahead = ready_files(&pg_wal, &name, args.max_parallel.saturating_sub(1));
    let record = pushed_record(args, &path);
    if args.max_parallel > 1 {
        record.forget_departed(&pg_wal);
        opts.staging = Some(archive::Staging::new(record.dir()));
    }
    let destination = destination(args);
    let others = join_all(ahead.iter().map(|p| {
        let (store, prefix, opts, record, destination) = (&store, &prefix, &opts, &record, &destination);
        async move {
            if let Err(e) = archive::push_ahead(store, prefix, p, opts, record, destination).await {
                tracing::warn!(file = %p.display(), error = %e, "look-ahead push failed; PostgreSQL will ask again");
            }
        }
    }));
    let (requested, ()) = tokio::join!(archive::push_wal(&store, &prefix, &path, &opts), async {
        others.await;
    });
    requested?;
    Ok(Report::code(0))
}

pub(super) async fn restore(args: &WalRestoreArgs) -> Result<Report, Error> {
    let wal = WalName::parse(&args.wal_name)?;
    let (store, config) = super::open(&args.common, &args.source_url).await?;
    let prefix = ServerPrefix::new(config.url.key_path(), &args.server_name);
    if args.common.test {
        return connectivity_test(&store).await;
    }
    match archive::restore_wal(
        &store,
        &prefix,
        &wal,
        &args.wal_dest,
        &args.restore_options(),
    )
    .await?
    {
        RestoreOutcome::FromSpool | RestoreOutcome::Restored { .. } => Ok(Report::code(0)),
        RestoreOutcome::NotFound => {
            tracing::error!(
                "WAL file {} for server {} does not exist",
                wal,
                args.server_name
            );
            Ok(Report::code(1))
        }
    }
}
