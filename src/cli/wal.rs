//! `barman-cloud-wal-archive` and `barman-cloud-wal-restore` argument shapes.

use std::path::PathBuf;

use clap::{ArgGroup, Parser};

use super::common::CommonArgs;
use super::tags::{check_tag, parse_csv_tag};
use crate::archive::{PushOptions, RestoreOptions};
use crate::codec::{Compression, CompressionLevel};
use crate::error::Error;
use crate::storage::Encryption;

/// barnacle's gzip level for WAL under its own names when no level is given.
/// Level 2 of zlib-rs (its "fast" strategy) deflates real WAL 1.2× (easy) to
/// 1.4× (hard) faster than level 3 (the "medium" one) for objects 1.1% / 0.6%
/// larger, and within 9% of level 6's size at 5× its speed; level 1's objects
/// are 30–57% larger (`docs/benchmarks.md`, "Default gzip level 2, and code
/// grouped by workload"). Under Barman's names "medium" (6) stays the default,
/// as in Barman.
pub const WALPUSH_DEFAULT_GZIP_LEVEL: i32 = 2;

#[derive(Debug, Clone, Parser)]
#[command(version, disable_help_flag = true, disable_version_flag = true)]
#[command(group(ArgGroup::new("compression").multiple(false)))]
pub struct WalArchiveArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// URL of the cloud destination, such as a bucket in AWS S3: s3://bucket/path/to/folder
    pub destination_url: String,
    /// The name of the server as configured in Barman.
    pub server_name: String,
    /// The value of the '%p' keyword (according to 'archive_command').
    pub wal_path: Option<PathBuf>,
    /// gzip-compress the WAL while uploading to the cloud.
    #[arg(short = 'z', long = "gzip", group = "compression")]
    gzip: bool,
    /// bzip2-compress the WAL while uploading to the cloud.
    #[arg(short = 'j', long = "bzip2", group = "compression")]
    bzip2: bool,
    /// xz-compress the WAL while uploading to the cloud.
    #[arg(long = "xz", group = "compression")]
    xz: bool,
    /// snappy-compress the WAL while uploading to the cloud.
    #[arg(long = "snappy", group = "compression")]
    snappy: bool,
    /// zstd-compress the WAL while uploading to the cloud.
    #[arg(long = "zstd", group = "compression")]
    zstd: bool,
    /// lz4-compress the WAL while uploading to the cloud.
    #[arg(long = "lz4", group = "compression")]
    lz4: bool,
    /// Upload the WAL as is (barnacle; the default under Barman's name).
    #[arg(long = "no-compression", group = "compression")]
    no_compression: bool,
    /// A compression level: low, medium, high or an integer.
    #[arg(long = "compression-level", allow_hyphen_values = true)]
    compression_level: Option<CompressionLevel>,
    /// Tags to be added to all uploaded files in cloud storage (K,V pairs).
    #[arg(long = "tags", num_args = 0.., value_parser = parse_csv_tag, conflicts_with = "tag")]
    tags: Option<Vec<(String, String)>>,
    /// A tag to be added to archived WAL files (K,V; repeatable).
    #[arg(long = "tag", value_parser = check_tag)]
    tag: Vec<(String, String)>,
    /// Tags to be added to archived history files in cloud storage.
    #[arg(long = "history-tags", num_args = 0.., value_parser = parse_csv_tag, conflicts_with = "history_tag")]
    history_tags: Option<Vec<(String, String)>>,
    /// A tag to be added to archived history files (K,V; repeatable).
    #[arg(long = "history-tag", value_parser = check_tag)]
    history_tag: Vec<(String, String)>,
    /// Server-side encryption: AES256 or aws:kms.
    #[arg(short = 'e', long = "encryption", value_parser = ["AES256", "aws:kms"])]
    encryption: Option<String>,
    /// The AWS KMS key ID or ARN (requires -e aws:kms).
    #[arg(long = "sse-kms-key-id")]
    sse_kms_key_id: Option<String>,
    /// GCS only (accepted for compatibility).
    #[arg(long = "kms-key-name", hide = true)]
    kms_key_name: Option<String>,
    /// Azure only (accepted for compatibility).
    #[arg(long = "encryption-scope", hide = true)]
    encryption_scope: Option<String>,
    /// Azure only (accepted for compatibility).
    #[arg(long = "max-block-size", hide = true)]
    max_block_size: Option<String>,
    /// Azure only (accepted for compatibility).
    #[arg(long = "max-concurrency", hide = true)]
    max_concurrency: Option<String>,
    /// Azure only (accepted for compatibility).
    #[arg(long = "max-single-put-size", hide = true)]
    max_single_put_size: Option<String>,
    /// Threads used to compress (default: every core).
    #[arg(long = "threads", env = "BARNACLE_THREADS")]
    threads: Option<usize>,
    /// Also push up to N-1 further ready WAL files ahead of PostgreSQL's
    /// requests, recording them so the later calls answer at once
    /// (CloudNativePG's look-ahead, for setups without the sidecar).
    #[arg(
        long = "max-parallel",
        env = "BARNACLE_MAX_PARALLEL",
        default_value_t = 1
    )]
    pub max_parallel: usize,
    /// Where files pushed ahead are recorded (default: `barnacle_pushed/`
    /// beside WAL_PATH, i.e. in pg_wal).
    #[arg(long = "pushed-dir", env = "BARNACLE_PUSHED_DIR")]
    pub pushed_dir: Option<PathBuf>,
}

impl WalArchiveArgs {
    fn compression(&self, default_gzip: bool) -> Option<Compression> {
        let flags = [
            (self.gzip, Compression::Gzip),
            (self.bzip2, Compression::Bzip2),
            (self.xz, Compression::Xz),
            (self.snappy, Compression::Snappy),
            (self.zstd, Compression::Zstd),
            (self.lz4, Compression::Lz4),
        ];
        match flags.into_iter().find(|(set, _)| *set) {
            Some((_, c)) => Some(c),
            None if default_gzip && !self.no_compression => Some(Compression::Gzip),
            None => None,
        }
    }

    /// Server-side encryption; `--sse-kms-key-id` without `-e aws:kms` is an
    /// error (exit 4, as in Barman).
    pub fn encryption(&self) -> Result<Option<Encryption>, Error> {
        match (self.encryption.as_deref(), &self.sse_kms_key_id) {
            (Some("aws:kms"), id) => Ok(Some(Encryption::Kms { key_id: id.clone() })),
            (_, Some(_)) => Err(Error::Storage(crate::storage::StorageError::Config(
                "Encryption type must be aws:kms if SSE KMS Key ID is specified".into(),
            ))),
            (Some(_), None) => Ok(Some(Encryption::Aes256)),
            (None, None) => Ok(None),
        }
    }

    /// How to push. `default_gzip`: barnacle's names compress with gzip
    /// (level [`WALPUSH_DEFAULT_GZIP_LEVEL`]) when no compression flag is given.
    pub fn push_options(&self, default_gzip: bool) -> PushOptions {
        let compression = self.compression(default_gzip);
        let level = match (compression, self.compression_level) {
            (Some(Compression::Gzip), None) if default_gzip => WALPUSH_DEFAULT_GZIP_LEVEL,
            (Some(c), level) => {
                if c.level_out_of_range(level) {
                    tracing::warn!(
                        "compression level {:?} out of range for {}, using {} instead",
                        level,
                        c.name(),
                        c.resolve_level(level)
                    );
                }
                c.resolve_level(level)
            }
            (None, _) => 0,
        };
        let tags = self.tags.clone().unwrap_or_else(|| self.tag.clone());
        let history_tags = self
            .history_tags
            .clone()
            .unwrap_or_else(|| self.history_tag.clone());
        PushOptions {
            compression,
            level,
            tags,
            history_tags,
            threads: self
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1),
            staging: None,
        }
    }
}

#[derive(Debug, Clone, Parser)]
#[command(version, disable_help_flag = true, disable_version_flag = true)]
pub struct WalRestoreArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// URL of the cloud source, such as a bucket in AWS S3: s3://bucket/path/to/folder
    pub source_url: String,
    /// The name of the server as configured in Barman.
    pub server_name: String,
    /// The value of the '%f' keyword (according to 'restore_command').
    pub wal_name: String,
    /// The value of the '%p' keyword (according to 'restore_command').
    pub wal_dest: PathBuf,
    /// Do not download partial WAL files.
    #[arg(long = "no-partial")]
    pub no_partial: bool,
    /// Specifies the number of files to peek and download in parallel (0: disabled).
    #[arg(
        short = 'p',
        long = "parallel",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub parallel: i64,
    /// Spool directory for extra WAL files downloaded in parallel.
    #[arg(
        long = "spool-dir",
        default_value = "/var/tmp/walrestore",
        value_name = "SPOOL_DIR"
    )]
    pub spool_dir: PathBuf,
}

impl WalRestoreArgs {
    pub fn restore_options(&self) -> RestoreOptions {
        RestoreOptions {
            no_partial: self.no_partial,
            parallel: self.parallel.max(0) as usize,
            spool_dir: self.spool_dir.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive_args(extra: &[&str]) -> WalArchiveArgs {
        let mut argv = vec!["x"];
        argv.extend_from_slice(extra);
        argv.extend_from_slice(&["s3://b", "srv", "000000010000000000000001"]);
        WalArchiveArgs::try_parse_from(argv).unwrap()
    }

    #[test]
    fn default_compression_depends_on_the_name() {
        assert_eq!(archive_args(&[]).push_options(false).compression, None);
        let walpush = archive_args(&[]).push_options(true);
        assert_eq!(
            (walpush.compression, walpush.level),
            (Some(Compression::Gzip), WALPUSH_DEFAULT_GZIP_LEVEL)
        );
        assert_eq!(
            archive_args(&["-z"]).push_options(true).level,
            WALPUSH_DEFAULT_GZIP_LEVEL
        );
        assert_eq!(
            archive_args(&["-z"]).push_options(false).level,
            6,
            "Barman's medium under its name"
        );
        assert_eq!(
            archive_args(&["--no-compression"])
                .push_options(true)
                .compression,
            None
        );
    }

    #[test]
    fn levels_map_per_algorithm() {
        let o = archive_args(&["--zstd", "--compression-level", "-3"]).push_options(false);
        assert_eq!((o.compression, o.level), (Some(Compression::Zstd), -3));
        let o = archive_args(&["--lz4", "--compression-level", "high"]).push_options(false);
        assert_eq!(o.level, 10);
        let o = archive_args(&["--compression-level", "low"]).push_options(true);
        assert_eq!(o.level, 1);
    }

    #[test]
    fn tags_and_history_tags() {
        let o = archive_args(&[
            "--tag",
            "a,1",
            "--tag",
            "b,2",
            "--history-tags",
            "h,1",
            "--",
        ])
        .push_options(false);
        assert_eq!(
            o.tags,
            [
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "2".to_string())
            ]
        );
        assert_eq!(o.history_tags, [("h".to_string(), "1".to_string())]);
    }

    #[test]
    fn kms_key_needs_kms_encryption() {
        assert!(
            archive_args(&["--sse-kms-key-id", "k"])
                .encryption()
                .is_err()
        );
        assert_eq!(
            archive_args(&["-e", "aws:kms", "--sse-kms-key-id", "k"])
                .encryption()
                .unwrap(),
            Some(Encryption::Kms {
                key_id: Some("k".into())
            })
        );
        assert_eq!(
            archive_args(&["-e", "AES256"]).encryption().unwrap(),
            Some(Encryption::Aes256)
        );
    }
}
