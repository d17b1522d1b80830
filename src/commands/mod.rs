//! The commands behind the command lines: each takes validated arguments,
//! does its work and returns a [`Report`] (exit code and standard output);
//! the binary prints it. Logging of expected conditions ("WAL file … does not
//! exist") happens here, once; errors go back to the binary.

mod backup;
mod catalog;
mod delete;
mod sidecar;
pub mod wal;

use crate::cli::{CommonArgs, Invocation};
use crate::error::Error;
use crate::storage::{BucketState, Store};

/// What a command produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub code: u8,
    pub stdout: String,
}

impl Report {
    pub fn code(code: u8) -> Report {
        Report {
            code,
            stdout: String::new(),
        }
    }

    pub fn print(stdout: String) -> Report {
        Report { code: 0, stdout }
    }
}

/// Runs a parsed invocation.
pub async fn run(invocation: Invocation) -> Result<Report, Error> {
    match invocation {
        Invocation::WalPush { args, default_gzip } => wal::push(&args, default_gzip).await,
        Invocation::WalRestore { args } => wal::restore(&args).await,
        Invocation::Backup { args, default_gzip } => backup::backup(&args, default_gzip).await,
        Invocation::Restore { args } => backup::restore(&args).await,
        Invocation::List { args } => catalog::list(&args).await,
        Invocation::Show { args } => catalog::show(&args).await,
        Invocation::Keep { args } => catalog::keep(&args).await,
        Invocation::CheckWalArchive { args } => catalog::check_wal_archive(&args).await,
        Invocation::Status { args } => catalog::status(&args).await,
        Invocation::Sidecar { args } => sidecar::sidecar(&args).await,
        Invocation::Delete { args } => delete::delete(&args).await,
        Invocation::Prune { args } => delete::prune(&args).await,
    }
}

/// The retention run the sidecar schedules: the policy applied like `prune`.
fn retention_job(
    store: Store,
    prefix: crate::layout::ServerPrefix,
    server: String,
    policy: &str,
    minimum_redundancy: u32,
) -> Result<crate::daemon::schedule::RetentionJob, Error> {
    crate::retention::parse_policy(policy).map_err(|e| Error::Usage(e.barman_log()))?;
    let policy = policy.to_string();
    Ok(std::sync::Arc::new(move || {
        let (store, prefix, server, policy) = (
            store.clone(),
            prefix.clone(),
            server.clone(),
            policy.clone(),
        );
        Box::pin(async move {
            delete::scheduled(
                &store,
                &prefix,
                &server,
                &policy,
                u64::from(minimum_redundancy),
            )
            .await
        })
    }))
}

/// Opens the store of `url` with the common options.
async fn open(
    common: &CommonArgs,
    url: &str,
) -> Result<(Store, crate::storage::StoreConfig), Error> {
    let config = common.store_config(url, None)?;
    Ok((Store::open(&config).await?, config))
}

/// `-t/--test`: 0 when the bucket exists, 1 when it does not, 2 when the
/// endpoint cannot be reached.
async fn connectivity_test(store: &Store) -> Result<Report, Error> {
    match store.check_bucket().await {
        Ok(BucketState::Exists) => Ok(Report::code(0)),
        Ok(BucketState::Missing) => {
            tracing::error!("Bucket {} does not exist", store.describe());
            Ok(Report::code(1))
        }
        Err(e) if e.is_unreachable() => {
            tracing::error!("{e}");
            Ok(Report::code(2))
        }
        Err(e) => Err(e.into()),
    }
}
