//! `wal-push` and `wal-restore`.

use std::path::PathBuf;

use super::{Report, connectivity_test};
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
    archive::push_wal(&store, &prefix, &path, &args.push_options(default_gzip)).await?;
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
