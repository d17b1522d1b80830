//! `backup` and `restore` (base backups).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Report, connectivity_test, open};
use crate::backup::restore::{
    RecoverySettings, RestoreError, RestoreOptions, choose_auto, restore_backup,
};
use crate::backup::take::{BackupOptions, take_backup};
use crate::catalog::load::load;
use crate::cli::{BackupArgs, RestoreArgs};
use crate::error::Error;
use crate::layout::ServerPrefix;
use crate::layout::backup_id::resolve;
use crate::storage::upload::MIN_PART_SIZE;
use crate::storage::{Encryption, Store};

/// Sets `flag` on SIGTERM or SIGINT (a pod eviction, Ctrl-C).
fn cancel_on_signals(flag: Arc<AtomicBool>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("signal received: stopping the backup");
        flag.store(true, Ordering::Relaxed);
    });
}

pub(super) async fn backup(args: &BackupArgs, default_gzip: bool) -> Result<Report, Error> {
    args.validate()?;
    let encryption = match (args.encryption.as_deref(), &args.sse_kms_key_id) {
        (Some("aws:kms"), id) => Some(Encryption::Kms { key_id: id.clone() }),
        (_, Some(_)) => {
            return Err(Error::Usage(
                "Encryption type must be aws:kms if SSE KMS Key ID is specified".into(),
            ));
        }
        (Some(_), None) => Some(Encryption::Aes256),
        (None, None) => None,
    };
    let config = args
        .common
        .store_config(&args.destination_url, encryption)?;
    let prefix = ServerPrefix::new(config.url.key_path(), &args.server_name);
    let store = Store::open(&config).await?;
    if args.common.test {
        return connectivity_test(&store).await;
    }
    crate::memory::unmap_large_buffers_when_freed();
    let cancel = Arc::new(AtomicBool::new(false));
    cancel_on_signals(cancel.clone());
    // Barman caps -S at 1 TiB.
    let max_archive_size = args.max_archive_size.min(1 << 40);
    let opts = BackupOptions {
        connect: args.connect_args(),
        compression: args.compression(default_gzip),
        immediate_checkpoint: args.immediate_checkpoint,
        jobs: args.jobs as usize,
        max_archive_size,
        min_chunk_size: args
            .min_chunk_size
            .map_or(MIN_PART_SIZE, |s| s as usize)
            .max(MIN_PART_SIZE),
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1),
        name: args.name.clone(),
        tags: args.tags(),
        cancel,
    };
    match take_backup(&store, &prefix, &opts).await {
        Ok(done) => {
            tracing::info!(backup_id = %done.backup_id, bytes = done.bytes_stored, "backup completed");
            Ok(Report::code(0))
        }
        // Barman's tool exits 1 for any failure once connected to PostgreSQL: a store
        // that refuses or loses the STARTED or final backup.info included.
        Err(e) => {
            tracing::error!("Backup failed: {e}");
            Ok(Report::code(1))
        }
    }
}

pub(super) async fn restore(args: &RestoreArgs) -> Result<Report, Error> {
    if args.snapshot_recovery_instance.is_some() {
        return Err(Error::Usage(
            "snapshot recovery is not supported by barnacle".into(),
        ));
    }
    let (store, config) = open(&args.common, &args.source_url).await?;
    let prefix = ServerPrefix::new(config.url.key_path(), &args.server_name);
    if args.common.test {
        return connectivity_test(&store).await;
    }
    let catalog = load(&store, &prefix).await?;
    let mut opts = RestoreOptions {
        backup_id: args.backup_id.clone(),
        dest: args.recovery_dir.clone(),
        tablespace_map: args.tablespace.clone(),
        target_time: args.target_time.clone(),
        target_lsn: args.target_lsn.clone(),
        target_tli: args.target_tli.clone(),
        jobs: args.jobs.max(1),
        recovery: None,
    };
    if args.recovery_conf {
        opts.recovery = Some(RecoverySettings {
            restore_command: restore_command(args),
        });
    }
    let chosen = if args.backup_id == "auto" {
        choose_auto(&catalog, &opts)
    } else {
        resolve(&args.backup_id, &args.server_name, &catalog.backups)
            .map(|r| r.backup_id)
            .map_err(|e| RestoreError::Refused(e.to_string()))
    };
    let result = match chosen {
        Ok(id) => restore_backup(&store, &prefix, &catalog, &id, &opts).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(done) => {
            tracing::info!(backup_id = %done.backup_id, parts = done.parts, bytes = done.bytes, "restore completed");
            Ok(Report::code(0))
        }
        Err(RestoreError::Refused(msg)) => {
            tracing::error!("{msg}");
            Ok(Report::code(1))
        }
        Err(RestoreError::Storage(e)) => Err(e.into()),
        // The destination (or a tablespace) cannot be written: a full disk, a file where a
        // directory should be, too many open files. Barman's exit code for those is 4.
        Err(RestoreError::Io { path, source }) => Err(Error::WriteFile { path, source }),
        Err(RestoreError::Archive { key, detail }) => Err(Error::Restore { key, detail }),
    }
}

/// The `restore_command` a restored directory gets: this very binary's
/// `wal-restore`, reaching the same store.
fn restore_command(args: &RestoreArgs) -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "barnacle".into());
    let mut parts = vec![exe, "wal-restore".to_string()];
    if let Some(e) = &args.common.endpoint_url {
        parts.push(format!("--endpoint-url {e}"));
    }
    if let Some(style) = &args.common.addressing_style {
        parts.push(format!("--addressing-style {style}"));
    }
    if let Some(p) = &args.common.aws_profile {
        parts.push(format!("-P {p}"));
    }
    if let Some(ca) = args
        .common
        .ca_bundle
        .as_ref()
        .filter(|_| !args.source_url.starts_with("file://"))
    {
        parts.push(format!("--ca-bundle {}", ca.display()));
    }
    parts.push(args.source_url.clone());
    parts.push(args.server_name.clone());
    parts.push("%f %p".to_string());
    parts.join(" ")
}
