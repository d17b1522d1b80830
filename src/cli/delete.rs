//! `barman-cloud-backup-delete` and barnacle's `prune` (the cron job).

use clap::{ArgGroup, Parser};

use super::common::CommonArgs;

#[derive(Debug, Clone, Parser)]
#[command(version, disable_help_flag = true, disable_version_flag = true)]
#[command(group(ArgGroup::new("what").required(true).multiple(false)))]
pub struct DeleteArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// URL of the cloud source, such as a bucket in AWS S3.
    pub source_url: String,
    /// The name of the server as configured in Barman.
    pub server_name: String,
    /// Backup ID (or name, or shortcut) of the backup to delete.
    #[arg(short = 'b', long = "backup-id", group = "what")]
    pub backup_id: Option<String>,
    /// Retention policy: REDUNDANCY N, RECOVERY WINDOW OF N DAYS|WEEKS|MONTHS, or 30d/4w/3m.
    #[arg(short = 'r', long = "retention-policy", group = "what")]
    pub retention_policy: Option<String>,
    /// The minimum number of backups to keep.
    #[arg(short = 'm', long = "minimum-redundancy", default_value_t = 0)]
    pub minimum_redundancy: u64,
    /// Show what would be deleted, delete nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Keys per DeleteObjects request (at most 1000).
    #[arg(long = "batch-size", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: Option<u64>,
    /// Check S3 object lock before deleting (barnacle relies on the store refusing locked objects).
    #[arg(long = "check-object-lock")]
    pub check_object_lock: bool,
}

#[derive(Debug, Clone, Parser)]
#[command(version, disable_help_flag = true, disable_version_flag = true)]
pub struct PruneArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// URL of the archive, such as s3://bucket/path.
    #[arg(env = "BARNACLE_DESTINATION_URL")]
    pub source_url: String,
    /// The name of the server in the archive.
    #[arg(env = "BARNACLE_SERVER_NAME")]
    pub server_name: String,
    /// Retention policy: REDUNDANCY N, RECOVERY WINDOW OF N DAYS|WEEKS|MONTHS, or 30d/4w/3m.
    #[arg(
        short = 'r',
        long = "retention-policy",
        env = "BARNACLE_RETENTION_POLICY"
    )]
    pub retention_policy: String,
    /// The minimum number of backups to keep.
    #[arg(
        short = 'm',
        long = "minimum-redundancy",
        env = "BARNACLE_MINIMUM_REDUNDANCY",
        default_value_t = 0
    )]
    pub minimum_redundancy: u64,
    /// Show what would be deleted, delete nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Keys per DeleteObjects request (at most 1000).
    #[arg(long = "batch-size", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: Option<u64>,
}
