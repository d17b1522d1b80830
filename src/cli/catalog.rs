//! `barman-cloud-backup-list`, `-backup-show`, `-backup-keep` and
//! `barman-cloud-check-wal-archive` argument shapes.

use clap::{ArgGroup, Parser};

use super::common::CommonArgs;

#[derive(Debug, Clone, Parser)]
#[command(version, disable_help_flag = true, disable_version_flag = true)]
pub struct ListArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Output format: console, or anything else for JSON.
    #[arg(long = "format", default_value = "console")]
    pub format: String,
    /// URL of the cloud source, such as a bucket in AWS S3.
    pub source_url: String,
    /// The name of the server as configured in Barman.
    pub server_name: String,
}

#[derive(Debug, Clone, Parser)]
#[command(version, disable_help_flag = true, disable_version_flag = true)]
pub struct ShowArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Output format: console, or anything else for JSON.
    #[arg(long = "format", default_value = "console")]
    pub format: String,
    pub source_url: String,
    pub server_name: String,
    /// The backup ID, a name, or a shortcut (latest, oldest, last-failed…).
    pub backup_id: String,
}

#[derive(Debug, Clone, Parser)]
#[command(version, disable_help_flag = true, disable_version_flag = true)]
#[command(group(ArgGroup::new("action").required(true).multiple(false)))]
pub struct KeepArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Release the keep flag of this backup.
    #[arg(short = 'r', long = "release", group = "action")]
    pub release: bool,
    /// Print the keep status of the backup.
    #[arg(short = 's', long = "status", group = "action")]
    pub status: bool,
    /// Keep the backup: full (with all WAL after it) or standalone.
    #[arg(long = "target", value_parser = ["full", "standalone"], group = "action")]
    pub target: Option<String>,
    pub source_url: String,
    pub server_name: String,
    pub backup_id: String,
}

#[derive(Debug, Clone, Parser)]
#[command(version, disable_help_flag = true, disable_version_flag = true)]
pub struct CheckWalArchiveArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The earliest timeline whose WALs should cause the check to fail.
    #[arg(long = "timeline", value_parser = clap::value_parser!(u32).range(1..))]
    pub timeline: Option<u32>,
    pub destination_url: String,
    pub server_name: String,
}

#[derive(Debug, Clone, Parser)]
#[command(version, disable_help_flag = true, disable_version_flag = true)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Output format: console, or json (CloudNativePG's field names).
    #[arg(long = "format", default_value = "console")]
    pub format: String,
    pub source_url: String,
    pub server_name: String,
}
