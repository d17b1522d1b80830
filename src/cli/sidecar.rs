//! `barnacle sidecar`: every option also settable by an environment variable
//! (the names are in `--help`), as containers are configured.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use super::common::CommonArgs;
use crate::codec::{Compression, CompressionLevel};

/// A compression chosen by name, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecChoice(pub Option<Compression>);

fn parse_compression(text: &str) -> Result<CodecChoice, String> {
    let choice = match text.to_ascii_lowercase().as_str() {
        "none" => None,
        "gzip" => Some(Compression::Gzip),
        "bzip2" => Some(Compression::Bzip2),
        "xz" => Some(Compression::Xz),
        "snappy" => Some(Compression::Snappy),
        "zstd" => Some(Compression::Zstd),
        "lz4" => Some(Compression::Lz4),
        other => {
            return Err(format!(
                "unknown compression '{other}' (gzip, bzip2, xz, snappy, zstd, lz4 or none)"
            ));
        }
    };
    Ok(CodecChoice(choice))
}

#[derive(Debug, Clone, Parser)]
#[command(version, disable_help_flag = true, disable_version_flag = true)]
pub struct SidecarArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// URL of the archive, such as s3://bucket/path.
    #[arg(env = "BARNACLE_DESTINATION_URL")]
    pub destination_url: String,
    /// The name of the server in the archive.
    #[arg(env = "BARNACLE_SERVER_NAME")]
    pub server_name: String,
    /// PostgreSQL's data directory (its pg_wal is watched).
    #[arg(long = "pgdata", env = "PGDATA")]
    pub pgdata: PathBuf,
    /// WAL files pushed at once.
    #[arg(
        long = "max-parallel",
        env = "BARNACLE_MAX_PARALLEL",
        default_value_t = 2
    )]
    pub max_parallel: usize,
    /// Address of /metrics, /healthz and /readyz (none: no HTTP server).
    #[arg(long = "listen", env = "BARNACLE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// How often archive_status is scanned besides inotify events, in milliseconds.
    #[arg(
        long = "poll-interval-ms",
        env = "BARNACLE_POLL_INTERVAL_MS",
        default_value_t = 1000
    )]
    pub poll_interval_ms: u64,
    /// WAL compression: gzip, bzip2, xz, snappy, zstd, lz4 or none.
    #[arg(long = "compression", env = "BARNACLE_COMPRESSION", default_value = "gzip", value_parser = parse_compression)]
    pub compression: CodecChoice,
    /// WAL compression level: low, medium, high or a number.
    #[arg(
        long = "compression-level",
        env = "BARNACLE_COMPRESSION_LEVEL",
        allow_hyphen_values = true
    )]
    pub compression_level: Option<CompressionLevel>,
    /// Base backups on this 6-field cron schedule (seconds first), e.g. "0 0 2 * * *".
    #[arg(long = "backup-schedule", env = "BARNACLE_BACKUP_SCHEDULE")]
    pub backup_schedule: Option<String>,
    /// Base backup compression: gzip, bzip2, lz4, snappy or none.
    #[arg(long = "backup-compression", env = "BARNACLE_BACKUP_COMPRESSION", default_value = "gzip", value_parser = parse_compression)]
    pub backup_compression: CodecChoice,
    /// PostgreSQL host or socket directory for backups.
    #[arg(long = "pghost", env = "PGHOST")]
    pub pghost: Option<String>,
    /// PostgreSQL port for backups.
    #[arg(long = "pgport", env = "PGPORT")]
    pub pgport: Option<String>,
    /// PostgreSQL user for backups.
    #[arg(long = "pguser", env = "PGUSER")]
    pub pguser: Option<String>,
    /// Database (or conninfo) for backups.
    // A conninfo may carry `password=`: --help must not show the variable's value.
    #[arg(long = "pgdatabase", env = "PGDATABASE", hide_env_values = true)]
    pub pgdatabase: Option<String>,
    /// Retention policy run on a schedule: REDUNDANCY N, RECOVERY WINDOW OF N DAYS, or 30d/4w/3m.
    #[arg(long = "retention-policy", env = "BARNACLE_RETENTION_POLICY")]
    pub retention_policy: Option<String>,
    /// Seconds between retention runs.
    #[arg(
        long = "retention-interval",
        env = "BARNACLE_RETENTION_INTERVAL",
        default_value_t = 1800
    )]
    pub retention_interval: u64,
    /// Backups always kept by retention.
    #[arg(
        long = "minimum-redundancy",
        env = "BARNACLE_MINIMUM_REDUNDANCY",
        default_value_t = 0
    )]
    pub minimum_redundancy: u32,
    /// The restore spool whose hits /metrics reports.
    #[arg(
        long = "spool-dir",
        env = "BARNACLE_SPOOL_DIR",
        default_value = "/var/tmp/walrestore"
    )]
    pub spool_dir: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults_and_names() {
        let a = SidecarArgs::try_parse_from(["x", "--pgdata", "/pg", "s3://b/p", "pg"]).unwrap();
        assert_eq!(a.compression, CodecChoice(Some(Compression::Gzip)));
        assert_eq!(a.max_parallel, 2);
        let a = SidecarArgs::try_parse_from([
            "x",
            "--pgdata",
            "/pg",
            "--compression",
            "none",
            "s3://b/p",
            "pg",
        ])
        .unwrap();
        assert_eq!(a.compression, CodecChoice(None));
        assert!(
            SidecarArgs::try_parse_from([
                "x",
                "--pgdata",
                "/pg",
                "--compression",
                "rar",
                "s3://b/p",
                "pg"
            ])
            .is_err()
        );
    }
}
