//! The multi-call binary: `barnacle`, `walpush`, `restore`,
//! `barman-cloud-wal-archive`, `barman-cloud-wal-restore` (by argv[0]).
//! Parses, runs, logs once, and maps outcomes and errors to Barman's exit codes.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use barnacle::archive::{self, PushOutcome, RestoreOutcome};
use barnacle::cli::{self, CommonArgs, Invocation, WalArchiveArgs, WalRestoreArgs};
use barnacle::error::Error;
use barnacle::layout::ServerPrefix;
use barnacle::logging::{self, Redactor};
use barnacle::pg::WalName;
use barnacle::storage::{BucketState, Store, StoreConfig};

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let program = argv
        .first()
        .map(|a| {
            a.to_string_lossy()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_else(|| "barnacle".into());
    let invocation = match cli::parse(argv) {
        Ok(inv) => inv,
        Err(failure) if failure.exit_code == 0 => {
            print!("{}", failure.message);
            return ExitCode::SUCCESS;
        }
        Err(failure) => {
            eprintln!("{program}: error: {}", failure.message);
            return ExitCode::from(failure.exit_code);
        }
    };
    let redactor = Redactor::from_env();
    let common = match &invocation {
        Invocation::WalPush { args, .. } => &args.common,
        Invocation::WalRestore { args } => &args.common,
    };
    logging::init(common.verbosity(), common.log_format, redactor.clone());

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::from(4);
        }
    };
    let code = runtime.block_on(async {
        match invocation {
            Invocation::WalPush { args, default_gzip } => wal_push(&args, default_gzip).await,
            Invocation::WalRestore { args } => wal_restore(&args).await,
        }
    });
    match code {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            tracing::error!("{}", redactor.redact(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}

/// `-t/--test`: 0 when the bucket exists, 1 when it does not, 2 when the
/// endpoint cannot be reached.
async fn connectivity_test(store: &Store) -> Result<u8, Error> {
    match store.check_bucket().await {
        Ok(BucketState::Exists) => Ok(0),
        Ok(BucketState::Missing) => {
            tracing::error!("Bucket {} does not exist", store.describe());
            Ok(1)
        }
        Err(e) if e.is_unreachable() => {
            tracing::error!("{e}");
            Ok(2)
        }
        Err(e) => Err(e.into()),
    }
}

async fn open_store(common: &CommonArgs, config: StoreConfig) -> Result<Store, Error> {
    let _ = common;
    Ok(Store::open(&config).await?)
}

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

async fn wal_push(args: &WalArchiveArgs, default_gzip: bool) -> Result<u8, Error> {
    let path = match wal_path(args) {
        Ok(p) => p,
        Err(msg) => {
            tracing::error!("{msg}");
            return Ok(1);
        }
    };
    WalName::parse(&path.to_string_lossy())?;
    let config = args
        .common
        .store_config(&args.destination_url, args.encryption()?)?;
    let prefix = ServerPrefix::new(config.url.key_path(), &args.server_name);
    let store = open_store(&args.common, config).await?;
    if args.common.test {
        return connectivity_test(&store).await;
    }
    match archive::push_wal(&store, &prefix, &path, &args.push_options(default_gzip)).await? {
        PushOutcome::Uploaded { .. } | PushOutcome::AlreadyArchived { .. } => Ok(0),
    }
}

async fn wal_restore(args: &WalRestoreArgs) -> Result<u8, Error> {
    let wal = WalName::parse(&args.wal_name)?;
    let config = args.common.store_config(&args.source_url, None)?;
    let prefix = ServerPrefix::new(config.url.key_path(), &args.server_name);
    let store = open_store(&args.common, config).await?;
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
        RestoreOutcome::FromSpool | RestoreOutcome::Restored { .. } => Ok(0),
        RestoreOutcome::NotFound => {
            tracing::error!(
                "WAL file {} for server {} does not exist",
                wal,
                args.server_name
            );
            Ok(1)
        }
    }
}
