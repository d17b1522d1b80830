//! `barnacle sidecar`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::Report;
use crate::archive::PushOptions;
use crate::backup::take::BackupOptions;
use crate::cli::SidecarArgs;
use crate::daemon::archiver::ArchiverConfig;
use crate::daemon::{SidecarConfig, schedule};
use crate::error::Error;
use crate::layout::ServerPrefix;
use crate::pg::session::ConnectArgs;
use crate::storage::Store;
use crate::storage::upload::MIN_PART_SIZE;

pub(super) async fn sidecar(args: &SidecarArgs) -> Result<Report, Error> {
    let config = args.common.store_config(&args.destination_url, None)?;
    let prefix = ServerPrefix::new(config.url.key_path(), &args.server_name);
    let store = Store::open(&config).await?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The cores are shared among the pushes running at once: a backlog is
    // worked through a segment per core (no hand-over between threads, one
    // zlib state and one block pipeline per push), a lone segment still gets
    // its share.
    let push_threads = threads.div_ceil(args.max_parallel.max(1));
    let push = PushOptions {
        compression: args.compression.0,
        level: match args.compression.0 {
            Some(crate::codec::Compression::Gzip) if args.compression_level.is_none() => {
                crate::cli::WALPUSH_DEFAULT_GZIP_LEVEL
            }
            Some(c) => c.resolve_level(args.compression_level),
            None => 0,
        },
        tags: Vec::new(),
        history_tags: Vec::new(),
        threads: push_threads,
        staging: None, // the archiver's, beside its record
    };
    let archiver = ArchiverConfig {
        store: store.clone(),
        prefix: prefix.clone(),
        destination: format!("{} {}", args.destination_url, args.server_name),
        pgdata: args.pgdata.clone(),
        max_parallel: args.max_parallel.max(1),
        push,
        poll_interval: Duration::from_millis(args.poll_interval_ms.max(10)),
    };
    if matches!(
        args.backup_compression.0,
        Some(crate::codec::Compression::Xz | crate::codec::Compression::Zstd)
    ) {
        return Err(Error::Usage(
            "base backups support gzip, bzip2, lz4, snappy or none (as Barman's readers)".into(),
        ));
    }
    let backups = match &args.backup_schedule {
        Some(expr) => {
            let schedule = schedule::parse_cron(expr).map_err(Error::Usage)?;
            let opts = BackupOptions {
                connect: ConnectArgs {
                    host: args.pghost.clone(),
                    port: args.pgport.clone(),
                    user: args.pguser.clone(),
                    dbname: args.pgdatabase.clone(),
                },
                compression: args.backup_compression.0,
                immediate_checkpoint: true,
                jobs: 2,
                max_archive_size: 100 << 30,
                min_chunk_size: MIN_PART_SIZE,
                threads,
                name: None,
                tags: Vec::new(),
                cancel: Arc::new(AtomicBool::new(false)),
            };
            Some((schedule, opts))
        }
        None => None,
    };
    let retention = match &args.retention_policy {
        Some(policy) => Some((
            Duration::from_secs(args.retention_interval.max(1)),
            super::retention_job(
                store.clone(),
                prefix.clone(),
                args.server_name.clone(),
                policy,
                args.minimum_redundancy,
            )?,
        )),
        None => None,
    };
    crate::daemon::run(SidecarConfig {
        archiver,
        listen: args.listen,
        spool_dir: Some(args.spool_dir.clone()),
        backups,
        retention,
    })
    .await?;
    Ok(Report::code(0))
}
